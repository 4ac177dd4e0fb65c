// A calibration cache: the statistics calibrate() collects, written to one binary file so that a
// sweep of quantizations (bit-widths, budgets, methods) calibrates each model once.
//
// Layout (little-endian, as written by this machine kind):
//   0   8   magic "MPDCALIB"
//   8   u32 format version (kCalibrationCacheVersion)
//   12  u32 0
//   16  u64 model fingerprint (calibration_fingerprint of the float model)
//   24  u64 settings fingerprint (images and sampling options, computed by the caller)
//   32  u64 payload size in bytes
//   40  u64 FNV-1a 64 checksum of the payload
//   48  payload: images, layer count, then per layer: min, max, histogram (lo, hi, bins, counts),
//       Gram matrix (groups, taps, samples, values, sums)
// A cache is only used when magic, version, size, checksum and both fingerprints match; anything
// else is an mpdet::Error that says which and what to do (delete the file to recalibrate).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "model/graph.h"
#include "quant/calibration.h"

namespace mpdet::quant {

inline constexpr std::uint32_t kCalibrationCacheVersion = 1;

struct CalibrationKey {
  std::uint64_t model = 0;     // calibration_fingerprint(float model)
  std::uint64_t settings = 0;  // e.g. settings_fingerprint(image ids, options)
};

// Hash of everything in a float model that calibration depends on: layers, shapes, parameters,
// preprocessing and every weight value.
std::uint64_t calibration_fingerprint(const model::Model& float_model);

// Hash of a text description of the calibration inputs and sampling settings.
std::uint64_t settings_fingerprint(const std::string& description);

void save_calibration(const CalibrationData& data, const CalibrationKey& key,
                      const std::filesystem::path& path);

// Throws mpdet::Error when the file is unreadable, truncated, corrupt, of another format version,
// or made for another model or other settings.
CalibrationData load_calibration(const std::filesystem::path& path, const CalibrationKey& key);

}  // namespace mpdet::quant
