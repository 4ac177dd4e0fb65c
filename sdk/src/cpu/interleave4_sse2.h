// Sixteen pixels of four channel planes interleaved into the [pixel][4] byte layout of the GEMM
// packing (conv_kernels.h). SSE2 only, and always inlined, so that each caller's target decides
// the encoding: conv_kernels.cpp gets SSE2, the AVX-512 packing path gets VEX/EVEX-encoded code.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>

#include <cstddef>
#include <cstdint>

namespace mpdet::cpu {

// r: 16 bytes of channel 0; channels 1..3 follow at in_plane strides. dst: 64 bytes.
[[gnu::always_inline]] inline void interleave4_16_sse2(const std::uint8_t* r, std::size_t in_plane,
                                                       std::uint8_t* dst) {
  const __m128i c0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r));
  const __m128i c1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + in_plane));
  const __m128i c2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * in_plane));
  const __m128i c3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 3 * in_plane));
  const __m128i lo01 = _mm_unpacklo_epi8(c0, c1), hi01 = _mm_unpackhi_epi8(c0, c1);
  const __m128i lo23 = _mm_unpacklo_epi8(c2, c3), hi23 = _mm_unpackhi_epi8(c2, c3);
  __m128i* d = reinterpret_cast<__m128i*>(dst);
  _mm_storeu_si128(d + 0, _mm_unpacklo_epi16(lo01, lo23));
  _mm_storeu_si128(d + 1, _mm_unpackhi_epi16(lo01, lo23));
  _mm_storeu_si128(d + 2, _mm_unpacklo_epi16(hi01, hi23));
  _mm_storeu_si128(d + 3, _mm_unpackhi_epi16(hi01, hi23));
}

}  // namespace mpdet::cpu
#endif
