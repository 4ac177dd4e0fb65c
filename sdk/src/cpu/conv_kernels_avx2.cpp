// AVX2 kernels, compiled for AVX2 per function (the library itself targets baseline x86-64) and
// called only when the running CPU has AVX2.
#include "cpu/conv_kernels.h"

#ifdef MPDET_CPU_X86
#include <immintrin.h>

namespace mpdet::cpu {

namespace {

__attribute__((target("avx2,fma"))) inline __m256i broadcast4(const std::int8_t* p) {
  std::int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

}  // namespace

// vpmaddubsw multiplies 32 uint8 activations by int8 weights and adds adjacent pairs with int16
// saturation; the caller guarantees 2·255·|w| <= 32767 so it never saturates. vpmaddwd by ones
// then adds the pairs into exact int32 sums of four products (one 4-channel group per lane).
__attribute__((target("avx2,fma"))) void gemm_u8s8_4x16c4_avx2(int k4, const std::int8_t* a,
                                                               std::size_t a_stride,
                                                               const std::uint8_t* b,
                                                               std::int32_t* c,
                                                               std::size_t c_stride) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[4][2];
  for (auto& row : acc) row[0] = row[1] = _mm256_setzero_si256();
  for (int k = 0; k < k4; ++k) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k * 64));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k * 64 + 32));
    for (int m = 0; m < 4; ++m) {
      const __m256i w = broadcast4(a + m * a_stride + k * 4);
      acc[m][0] = _mm256_add_epi32(acc[m][0], _mm256_madd_epi16(_mm256_maddubs_epi16(b0, w), ones));
      acc[m][1] = _mm256_add_epi32(acc[m][1], _mm256_madd_epi16(_mm256_maddubs_epi16(b1, w), ones));
    }
  }
  for (int m = 0; m < 4; ++m) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + m * c_stride), acc[m][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + m * c_stride + 8), acc[m][1]);
  }
}

// 8-bit weights would saturate vpmaddubsw (2·255·127 > 32767), so w = 16·hi + lo is applied as
// two small-weight products: vpmaddwd by 16 scales the high part while widening.
__attribute__((target("avx2,fma"))) void gemm_u8s8_4x16c4_split_avx2(
    int k4, const std::int8_t* a, const std::int8_t* a_low, std::size_t a_stride,
    const std::uint8_t* b, std::int32_t* c, std::size_t c_stride) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i sixteen = _mm256_set1_epi16(16);
  __m256i acc[4][2];
  for (auto& row : acc) row[0] = row[1] = _mm256_setzero_si256();
  for (int k = 0; k < k4; ++k) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k * 64));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k * 64 + 32));
    for (int m = 0; m < 4; ++m) {
      const __m256i hi = broadcast4(a + m * a_stride + k * 4);
      const __m256i lo = broadcast4(a_low + m * a_stride + k * 4);
      acc[m][0] = _mm256_add_epi32(
          acc[m][0], _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(b0, hi), sixteen),
                                      _mm256_madd_epi16(_mm256_maddubs_epi16(b0, lo), ones)));
      acc[m][1] = _mm256_add_epi32(
          acc[m][1], _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(b1, hi), sixteen),
                                      _mm256_madd_epi16(_mm256_maddubs_epi16(b1, lo), ones)));
    }
  }
  for (int m = 0; m < 4; ++m) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + m * c_stride), acc[m][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + m * c_stride + 8), acc[m][1]);
  }
}

// 16 outputs per step: products are exact in int16 (|w·x| <= 128·255); `chunk` of them are
// summed in int16 before widening to int32 (the caller bounds chunk·max|w|·255 <= 32767).
__attribute__((target("avx2,fma"))) void dwconv_row_u8s8_16x_avx2(const std::uint8_t* plane,
                                                                  int pitch, int oy, int stride,
                                                                  int kernel, const std::int8_t* w,
                                                                  int chunk, int width,
                                                                  std::int32_t* acc) {
  const __m256i low_bytes = _mm256_set1_epi16(0x00FF);
  for (int ox = 0; ox < width; ox += 16) {
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    __m256i sum = _mm256_setzero_si256();
    int pending = 0;
    for (int ky = 0; ky < kernel; ++ky) {
      const std::uint8_t* row =
          plane + static_cast<std::size_t>(oy * stride + ky) * pitch + ox * stride;
      for (int kx = 0; kx < kernel; ++kx) {
        __m256i x;
        if (stride == 1)
          x = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + kx)));
        else  // even bytes of 32: the stride-2 taps, zero-extended in 16-bit lanes
          x = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + kx)),
                               low_bytes);
        sum = _mm256_add_epi16(sum, _mm256_mullo_epi16(x, _mm256_set1_epi16(w[ky * kernel + kx])));
        if (++pending == chunk) {
          lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(sum)));
          hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(sum, 1)));
          sum = _mm256_setzero_si256();
          pending = 0;
        }
      }
    }
    lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(sum)));
    hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(sum, 1)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + ox), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + ox + 8), hi);
  }
}

}  // namespace mpdet::cpu

#endif  // MPDET_CPU_X86
