// Low-bit weight storage: exact layout, sizes and round trips (3-bit values straddle bytes).
#include <gtest/gtest.h>

#include <random>

#include "mpdet/error.h"
#include "quant/bit_packing.h"

namespace {

using namespace mpdet::quant;

using Bytes = std::vector<std::uint8_t>;
using Codes = std::vector<std::int8_t>;

TEST(BitPacking, PackedSize) {
  EXPECT_EQ(packed_size(0, 2), 0u);
  EXPECT_EQ(packed_size(1, 2), 1u);
  EXPECT_EQ(packed_size(4, 2), 1u);
  EXPECT_EQ(packed_size(5, 2), 2u);
  EXPECT_EQ(packed_size(1, 3), 1u);
  EXPECT_EQ(packed_size(3, 3), 2u);       // 9 bits
  EXPECT_EQ(packed_size(8, 3), 3u);       // 24 bits
  EXPECT_EQ(packed_size(9, 3), 4u);       // 27 bits
  EXPECT_EQ(packed_size(1001, 3), 376u);  // 3003 bits
  EXPECT_EQ(packed_size(7, 4), 4u);
  EXPECT_EQ(packed_size(1001, 8), 1001u);
  EXPECT_THROW(packed_size(4, 5), mpdet::Error);
}

TEST(BitPacking, KnownLayouts) {
  // Value 0 in the low bits: {1, -1, 0, 1} → 01 00 11 01.
  EXPECT_EQ(pack_weights(Codes{1, -1, 0, 1}, 2), Bytes{0x4D});
  // Padding bits are zero.
  EXPECT_EQ(pack_weights(Codes{-1}, 2), Bytes{0x03});
  // 4 bits: low nibble first; -2 is 0xE in two's complement.
  EXPECT_EQ(pack_weights(Codes{3, -2, 7}, 4), (Bytes{0xE3, 0x07}));
  // 3 bits: 001, 111, 010 → bits 0..8 = 1 0 0 1 1 1 0 1 | 0 — the third value straddles the bytes.
  EXPECT_EQ(pack_weights(Codes{1, -1, 2}, 3), (Bytes{0xB9, 0x00}));
  EXPECT_EQ(pack_weights(Codes{0, 0, -3}, 3), (Bytes{0x40, 0x01}));  // 101 at bits 6..8
  EXPECT_EQ(pack_weights(Codes{-127, 127, 5}, 8), (Bytes{0x81, 0x7F, 0x05}));

  EXPECT_EQ(unpack_weights(Bytes{0x4D}, 4, 2), (Codes{1, -1, 0, 1}));
  EXPECT_EQ(unpack_weights(Bytes{0xB9, 0x00}, 3, 3), (Codes{1, -1, 2}));
  EXPECT_EQ(unpack_weights(Bytes{0x40, 0x01}, 3, 3), (Codes{0, 0, -3}));
  EXPECT_EQ(unpack_weights(Bytes{0xE3, 0x07}, 3, 4), (Codes{3, -2, 7}));
}

TEST(BitPacking, RoundTripsEveryBitWidth) {
  std::mt19937 rng(1);
  for (int bits : {2, 3, 4, 8}) {
    const int qmax = (1 << (bits - 1)) - 1;
    std::uniform_int_distribution<int> code(-qmax, qmax);
    for (std::size_t count : {0u, 1u, 7u, 8u, 9u, 1000u, 1001u}) {
      Codes values(count);
      for (auto& v : values) v = static_cast<std::int8_t>(code(rng));
      if (count >= 2)
        values[0] = static_cast<std::int8_t>(-qmax), values[1] = static_cast<std::int8_t>(qmax);
      const Bytes packed = pack_weights(values, bits);
      EXPECT_EQ(packed.size(), packed_size(count, bits)) << bits << " " << count;
      EXPECT_EQ(unpack_weights(packed, count, bits), values) << bits << " " << count;
    }
  }
}

TEST(BitPacking, UnpackIgnoresExtraBytes) {
  EXPECT_EQ(unpack_weights(Bytes{0x4D, 0xFF}, 4, 2), (Codes{1, -1, 0, 1}));
}

TEST(BitPacking, RejectsShortBuffersAndForbiddenValues) {
  EXPECT_THROW(unpack_weights(Bytes{0x4D}, 5, 2), mpdet::Error);
  EXPECT_THROW(unpack_weights(Bytes{0xB9}, 3, 3), mpdet::Error);
  EXPECT_THROW(unpack_weights(Bytes{}, 1, 8), mpdet::Error);
  // -2^(b-1) is outside the symmetric range: corrupt data.
  EXPECT_THROW(unpack_weights(Bytes{0x02}, 1, 2), mpdet::Error);
  EXPECT_THROW(unpack_weights(Bytes{0x20}, 3, 2), mpdet::Error);        // third value
  EXPECT_THROW(unpack_weights(Bytes{0x00, 0x01}, 3, 3), mpdet::Error);  // 100 at bits 6..8
  EXPECT_THROW(unpack_weights(Bytes{0x08}, 1, 4), mpdet::Error);
  EXPECT_THROW(unpack_weights(Bytes{0x80}, 1, 8), mpdet::Error);
  // Only the values asked for are decoded: a forbidden pattern in the padding is not an error.
  EXPECT_NO_THROW(unpack_weights(Bytes{0x80}, 1, 4));
  EXPECT_THROW(unpack_weights(Bytes{0x00}, 1, 5), mpdet::Error);
}

TEST(BitPacking, PackRejectsOutOfRangeValues) {
  EXPECT_THROW(pack_weights(Codes{-2}, 2), mpdet::Error);
  EXPECT_THROW(pack_weights(Codes{2}, 2), mpdet::Error);
  EXPECT_THROW(pack_weights(Codes{0, 4}, 3), mpdet::Error);
  EXPECT_THROW(pack_weights(Codes{-8}, 4), mpdet::Error);
  EXPECT_THROW(pack_weights(Codes{-128}, 8), mpdet::Error);
  EXPECT_THROW(pack_weights(Codes{0}, 6), mpdet::Error);
}

}  // namespace
