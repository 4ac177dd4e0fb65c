#include "quant/bit_packing.h"

#include <string>

#include "mpdet/error.h"

namespace mpdet::quant {
namespace {

void check_bits(int bits) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw Error("packed weight bits must be 2, 3, 4 or 8 (got " + std::to_string(bits) + ")");
}

}  // namespace

std::size_t packed_size(std::size_t count, int bits) {
  check_bits(bits);
  return (count * static_cast<std::size_t>(bits) + 7) / 8;
}

std::vector<std::uint8_t> pack_weights(std::span<const std::int8_t> values, int bits) {
  const std::size_t size = packed_size(values.size(), bits);
  const int qmax = (1 << (bits - 1)) - 1;
  const std::uint32_t mask = (1u << bits) - 1;
  std::vector<std::uint8_t> packed;
  packed.reserve(size);
  // Bits enter the accumulator at the top of what is pending and leave it a byte at a time from the
  // bottom, so value i lands at stream bits [i·b, i·b + b) whatever b is (3-bit values straddle
  // bytes).
  std::uint32_t pending = 0;
  int pending_bits = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const int v = values[i];
    if (v < -qmax || v > qmax)
      throw Error("weight code " + std::to_string(v) + " at " + std::to_string(i) +
                  " is outside the " + std::to_string(bits) + "-bit range ±" +
                  std::to_string(qmax));
    pending |= (static_cast<std::uint32_t>(v) & mask) << pending_bits;
    pending_bits += bits;
    while (pending_bits >= 8) {
      packed.push_back(static_cast<std::uint8_t>(pending & 0xFF));
      pending >>= 8;
      pending_bits -= 8;
    }
  }
  if (pending_bits > 0) packed.push_back(static_cast<std::uint8_t>(pending & 0xFF));  // zero padded
  return packed;
}

std::vector<std::int8_t> unpack_weights(std::span<const std::uint8_t> packed, std::size_t count,
                                        int bits) {
  const std::size_t size = packed_size(count, bits);
  if (packed.size() < size)
    throw Error("packed weights too short: " + std::to_string(packed.size()) + " bytes for " +
                std::to_string(count) + " " + std::to_string(bits) + "-bit values (need " +
                std::to_string(size) + ")");
  const std::uint32_t mask = (1u << bits) - 1;
  const std::uint32_t sign_bit = 1u << (bits - 1);
  std::vector<std::int8_t> values(count);
  std::uint32_t pending = 0;
  int pending_bits = 0;
  std::size_t next_byte = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (pending_bits < bits) {
      pending |= static_cast<std::uint32_t>(packed[next_byte++]) << pending_bits;
      pending_bits += 8;
    }
    const std::uint32_t field = pending & mask;
    pending >>= bits;
    pending_bits -= bits;
    // Two's complement sign extension; the lone pattern "sign bit only" is -2^(b-1), never written.
    if (field == sign_bit)
      throw Error("corrupt packed weights: value " + std::to_string(i) + " decodes to -" +
                  std::to_string(sign_bit) + ", outside the symmetric " + std::to_string(bits) +
                  "-bit range");
    values[i] = static_cast<std::int8_t>(field & sign_bit ? static_cast<int>(field) - (1 << bits)
                                                          : static_cast<int>(field));
  }
  return values;
}

}  // namespace mpdet::quant
