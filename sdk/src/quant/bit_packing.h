// Storage of low-bit signed weights: values in [-(2^(b-1)-1), 2^(b-1)-1] packed little-endian
// bit by bit (value i occupies bits [i·b, i·b + b) of the stream, two's complement), for
// b = 2, 3, 4 and 8. The stream is padded with zero bits to a whole byte.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace mpdet::quant {

std::size_t packed_size(std::size_t count, int bits);
std::vector<std::uint8_t> pack_weights(std::span<const std::int8_t> values, int bits);
// Throws mpdet::Error if `packed` is shorter than packed_size(count, bits) or a value decodes to
// -2^(b-1) (outside the symmetric range; corrupt data).
std::vector<std::int8_t> unpack_weights(std::span<const std::uint8_t> packed, std::size_t count,
                                        int bits);

}  // namespace mpdet::quant
