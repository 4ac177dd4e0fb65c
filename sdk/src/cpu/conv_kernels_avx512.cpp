// AVX-512 kernels (F, BW, DQ, VL, VNNI), compiled per function for that ISA and called only
// when the running CPU has all of it.
#include "cpu/conv_kernels.h"

#ifdef MPDET_CPU_X86
// GCC 12's AVX-512 headers start intrinsics from _mm512_undefined_*(), which -O3 reports as
// (maybe-)uninitialized (a known false positive of the header, not of this code).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <climits>

#define MPDET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

namespace mpdet::cpu {

// vpdpbusd adds four uint8·int8 products to each int32 lane without saturation (wrapping only
// beyond int32, which |Σ w·x| <= 127·255·K never reaches for real layers). 8 weight rows × 32
// pixels keep 16 accumulators in registers; each weight group is broadcast from memory.
MPDET_AVX512 void gemm_u8s8_8x32c4_avx512vnni(int k4, const std::int8_t* a, std::size_t a_stride,
                                              const std::uint8_t* b, std::int32_t* c,
                                              std::size_t c_stride) {
  __m512i acc[8][2];
  for (auto& row : acc) row[0] = row[1] = _mm512_setzero_si512();
  for (int k = 0; k < k4; ++k) {
    const __m512i b0 = _mm512_loadu_si512(b + k * 128);
    const __m512i b1 = _mm512_loadu_si512(b + k * 128 + 64);
    for (int m = 0; m < 8; ++m) {
      std::int32_t w4;
      __builtin_memcpy(&w4, a + m * a_stride + k * 4, 4);
      const __m512i w = _mm512_set1_epi32(w4);
      acc[m][0] = _mm512_dpbusd_epi32(acc[m][0], b0, w);
      acc[m][1] = _mm512_dpbusd_epi32(acc[m][1], b1, w);
    }
  }
  for (int m = 0; m < 8; ++m) {
    _mm512_storeu_si512(c + m * c_stride, acc[m][0]);
    _mm512_storeu_si512(c + m * c_stride + 16, acc[m][1]);
  }
}

// Products are exact in int16 (|w·x| <= 128·255); `chunk` of them are summed in int16 before
// widening (the caller bounds chunk·max|w|·255 <= 32767). Stride 2 takes the even bytes of 64
// by masking 16-bit lanes, which also zero-extends them.
MPDET_AVX512 void dwconv_row_u8s8_32x_avx512(const std::uint8_t* plane, int pitch, int oy,
                                             int stride, int kernel, const std::int8_t* w,
                                             int chunk, int width, std::int32_t* acc) {
  const __m512i low_bytes = _mm512_set1_epi16(0x00FF);
  for (int ox = 0; ox < width; ox += 32) {
    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
    __m512i sum = _mm512_setzero_si512();
    int pending = 0;
    for (int ky = 0; ky < kernel; ++ky) {
      const std::uint8_t* row =
          plane + static_cast<std::size_t>(oy * stride + ky) * pitch + ox * stride;
      for (int kx = 0; kx < kernel; ++kx) {
        const __m512i x = stride == 1 ? _mm512_cvtepu8_epi16(_mm256_loadu_si256(
                                            reinterpret_cast<const __m256i*>(row + kx)))
                                      : _mm512_and_si512(_mm512_loadu_si512(row + kx), low_bytes);
        sum = _mm512_add_epi16(sum, _mm512_mullo_epi16(x, _mm512_set1_epi16(w[ky * kernel + kx])));
        if (++pending == chunk) {
          lo = _mm512_add_epi32(lo, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(sum)));
          hi = _mm512_add_epi32(hi, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(sum, 1)));
          sum = _mm512_setzero_si512();
          pending = 0;
        }
      }
    }
    lo = _mm512_add_epi32(lo, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(sum)));
    hi = _mm512_add_epi32(hi, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(sum, 1)));
    _mm512_storeu_si512(acc + ox, lo);
    _mm512_storeu_si512(acc + ox + 16, hi);
  }
}

namespace {

// floor(t / 10) for any int64 t: a double estimate (off by a few hundred at most for |t| near
// 2^62), then the exact remainder r = t − 10·q0 is small enough for an exact second step.
MPDET_AVX512 inline __m512i floor_div10(__m512i t) {
  const __m512d ten = _mm512_set1_pd(10.0);
  constexpr int kFloor = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;
  const __m512i q0 =
      _mm512_cvtpd_epi64(_mm512_roundscale_pd(_mm512_div_pd(_mm512_cvtepi64_pd(t), ten), kFloor));
  const __m512i r = _mm512_sub_epi64(t, _mm512_mullo_epi64(q0, _mm512_set1_epi64(10)));
  return _mm512_add_epi64(q0, _mm512_cvtpd_epi64(_mm512_roundscale_pd(
                                  _mm512_div_pd(_mm512_cvtepi64_pd(r), ten), kFloor)));
}

}  // namespace

MPDET_AVX512 void floor_div10_avx512(const std::int64_t* t, std::int64_t* q) {
  _mm512_storeu_si512(q, floor_div10(_mm512_loadu_si512(t)));
}

// The integer epilogue eight pixels at a time in int64 lanes: vpmuldq multiplies the exact
// int32 accumulator by M_v (|M_v| < 2^31) into an exact int64.
MPDET_AVX512 void epilogue_avx512(const PackedConv::Epilogue& e, int oc, const std::int32_t* acc,
                                  std::size_t acc_stride, int n, std::uint8_t* out,
                                  std::int32_t* head) {
  const int v0 = e.first_virtual[oc], nv = e.first_virtual[oc + 1] - v0;
  const __m512i bias = _mm512_set1_epi64(e.bias[oc]);
  const __m512i zero = _mm512_setzero_si512();
  const int s = e.shift;
  const __m512i half = _mm512_set1_epi64(s > 0 ? std::int64_t{1} << (s - 1) : 0);
  const __m512i shift = _mm512_set1_epi64(s);
  const __m512i zy = _mm512_set1_epi64(e.out_zero_point);
  const __m512i u8max = _mm512_set1_epi64(255);
  for (int i = 0; i < n; i += 8) {
    const __mmask8 mask = n - i >= 8 ? 0xFF : static_cast<__mmask8>((1u << (n - i)) - 1);
    __m512i t = bias;
    for (int j = 0; j < nv; ++j) {
      __m256i a = _mm256_maskz_loadu_epi32(mask, acc + j * acc_stride + i);
      a = _mm256_sub_epi32(a, _mm256_set1_epi32(e.zero_sums[v0 + j]));
      t = _mm512_add_epi64(
          t, _mm512_mul_epi32(_mm512_cvtepi32_epi64(a), _mm512_set1_epi64(e.multipliers[v0 + j])));
    }
    if (e.activation == ops::Activation::Relu) {
      t = _mm512_max_epi64(t, zero);
    } else if (e.activation == ops::Activation::Leaky) {
      const __mmask8 negative = _mm512_cmplt_epi64_mask(t, zero);
      if (negative) t = _mm512_mask_blend_epi64(negative, t, floor_div10(t));
    }
    __m512i q = s > 0 ? _mm512_srav_epi64(_mm512_add_epi64(t, half), shift) : t;
    q = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(q, zy), zero), u8max);
    _mm512_mask_cvtepi64_storeu_epi8(out + i, mask, q);
    if (head) {
      __m512i h;
      if (s > ops::kHeadFractionBits)
        h = _mm512_srav_epi64(
            _mm512_add_epi64(
                t, _mm512_set1_epi64(std::int64_t{1} << (s - ops::kHeadFractionBits - 1))),
            _mm512_set1_epi64(s - ops::kHeadFractionBits));
      else if (s == ops::kHeadFractionBits)
        h = t;
      else
        h = _mm512_sllv_epi64(t, _mm512_set1_epi64(ops::kHeadFractionBits - s));
      h = _mm512_min_epi64(_mm512_max_epi64(h, _mm512_set1_epi64(INT32_MIN)),
                           _mm512_set1_epi64(INT32_MAX));
      _mm512_mask_cvtepi64_storeu_epi32(head + i, mask, h);
    }
  }
}

namespace {

MPDET_AVX512 inline __m512i activate_shift_clamp(__m512i t, ops::Activation activation, int shift,
                                                 int zero_point) {
  const __m512i zero = _mm512_setzero_si512();
  if (activation == ops::Activation::Relu) {
    t = _mm512_max_epi64(t, zero);
  } else if (activation == ops::Activation::Leaky) {
    const __mmask8 negative = _mm512_cmplt_epi64_mask(t, zero);
    if (negative) t = _mm512_mask_blend_epi64(negative, t, floor_div10(t));
  }
  if (shift > 0)
    t = _mm512_srav_epi64(_mm512_add_epi64(t, _mm512_set1_epi64(std::int64_t{1} << (shift - 1))),
                          _mm512_set1_epi64(shift));
  t = _mm512_add_epi64(t, _mm512_set1_epi64(zero_point));
  return _mm512_min_epi64(_mm512_max_epi64(t, zero), _mm512_set1_epi64(255));
}

// Eight codes minus their zero point as int64 lanes.
MPDET_AVX512 inline __m512i load_centered(const std::uint8_t* p, __mmask8 mask, int zero_point) {
  return _mm512_sub_epi64(_mm512_cvtepu8_epi64(_mm_maskz_loadu_epi8(mask, p)),
                          _mm512_set1_epi64(zero_point));
}

}  // namespace

MPDET_AVX512 void add_u8_avx512(const std::uint8_t* a, int a_zero, std::int64_t a_multiplier,
                                const std::uint8_t* b, int b_zero, std::int64_t b_multiplier,
                                std::size_t n, int shift, ops::Activation activation, int out_zero,
                                std::uint8_t* out) {
  const __m512i ma = _mm512_set1_epi64(a_multiplier), mb = _mm512_set1_epi64(b_multiplier);
  for (std::size_t i = 0; i < n; i += 8) {
    const __mmask8 mask = n - i >= 8 ? 0xFF : static_cast<__mmask8>((1u << (n - i)) - 1);
    const __m512i t = _mm512_add_epi64(_mm512_mul_epi32(load_centered(a + i, mask, a_zero), ma),
                                       _mm512_mul_epi32(load_centered(b + i, mask, b_zero), mb));
    _mm512_mask_cvtepi64_storeu_epi8(out + i, mask,
                                     activate_shift_clamp(t, activation, shift, out_zero));
  }
}

MPDET_AVX512 void requantize_u8_avx512(const std::uint8_t* in, int in_zero, std::int64_t multiplier,
                                       std::size_t n, int shift, int out_zero, std::uint8_t* out) {
  const __m512i m = _mm512_set1_epi64(multiplier);
  for (std::size_t i = 0; i < n; i += 8) {
    const __mmask8 mask = n - i >= 8 ? 0xFF : static_cast<__mmask8>((1u << (n - i)) - 1);
    const __m512i t = _mm512_mul_epi32(load_centered(in + i, mask, in_zero), m);
    _mm512_mask_cvtepi64_storeu_epi8(
        out + i, mask, activate_shift_clamp(t, ops::Activation::Linear, shift, out_zero));
  }
}

}  // namespace mpdet::cpu

#endif  // MPDET_CPU_X86
