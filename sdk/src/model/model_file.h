// The .mpdet model file.
//
// Layout (all integers little-endian):
//   0   char[8]  magic "MPDETMDL"
//   8   u32      format version (kModelFormatVersion)
//   12  u32      reserved, 0
//   16  u64      JSON size in bytes
//   24  u64      offset of the tensor data block (multiple of 64, after the JSON)
//   32  u64      size of the tensor data block
//   40  u64      FNV-1a 64 checksum of bytes [64, end of file)
//   48  16 bytes reserved, 0
//   64  JSON graph description (UTF-8): layers, tensors (name, dtype, shape, offset, size
//       relative to the data block, each offset a multiple of 64), pre/post-processing,
//       class names.
//   data block: tensors, each 64-byte aligned, zero padding between them.
// The reader checks every field, offset, size, shape and enum before use and throws
// mpdet::Error naming the file and the problem. The writer writes a temporary file in the same
// directory and renames it into place, so a failed write never leaves a half-written model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "model/graph.h"

namespace mpdet::model {

inline constexpr std::uint32_t kModelFormatVersion = 1;

std::vector<std::uint8_t> serialize_model(const Model& model);
Model deserialize_model(std::span<const std::uint8_t> bytes);  // throws mpdet::Error

void save_model(const Model& model, const std::filesystem::path& path);
Model load_model(const std::filesystem::path& path);

// Reads a whole file with a size limit; throws mpdet::Error naming the file on failure.
std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path,
                                          std::uint64_t max_bytes = std::uint64_t{1} << 31);
// Writes to "<path>.tmp-<random>" in the same directory, then renames.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);

std::uint64_t fnv1a64(std::span<const std::uint8_t> bytes);

}  // namespace mpdet::model
