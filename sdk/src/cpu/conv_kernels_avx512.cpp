// AVX-512 kernels (F, BW, DQ, VL, VNNI), compiled per function for that ISA and called only
// when the running CPU has all of it.
#include "cpu/conv_kernels.h"
#include "cpu/interleave4_sse2.h"

#ifdef MPDET_CPU_X86
// GCC 12's AVX-512 headers start intrinsics from _mm512_undefined_*(), which -O3 reports as
// (maybe-)uninitialized (a known false positive of the header, not of this code).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#define MPDET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

namespace mpdet::cpu {

namespace {

// One weight row's four bytes of step k times both pixel vectors, into the row's accumulators.
MPDET_AVX512 inline __attribute__((always_inline)) void gemm_row_step(__m512i& lo, __m512i& hi,
                                                                      __m512i b0, __m512i b1,
                                                                      const std::int8_t* w4) {
  std::int32_t w;
  __builtin_memcpy(&w, w4, 4);
  const __m512i wv = _mm512_set1_epi32(w);
  lo = _mm512_dpbusd_epi32(lo, b0, wv);
  hi = _mm512_dpbusd_epi32(hi, b1, wv);
}

}  // namespace

// vpdpbusd adds four uint8·int8 products to each int32 lane without saturation (wrapping only
// beyond int32, which |Σ w·x| <= 127·255·K never reaches for real layers). 8 weight rows × 32
// pixels keep 16 accumulators in registers; each weight group is broadcast from memory. The
// accumulators are named variables (not an array), which GCC keeps in registers without copies.
MPDET_AVX512 void gemm_u8s8_8x32c4_avx512vnni(int k4, const std::int8_t* a, std::size_t a_stride,
                                              const std::uint8_t* b, std::int32_t* c,
                                              std::size_t c_stride) {
  __m512i c0l = _mm512_setzero_si512(), c0h = c0l, c1l = c0l, c1h = c0l, c2l = c0l, c2h = c0l,
          c3l = c0l, c3h = c0l, c4l = c0l, c4h = c0l, c5l = c0l, c5h = c0l, c6l = c0l, c6h = c0l,
          c7l = c0l, c7h = c0l;
  const std::int8_t* a0 = a;
  const std::int8_t* a1 = a0 + a_stride;
  const std::int8_t* a2 = a1 + a_stride;
  const std::int8_t* a3 = a2 + a_stride;
  const std::int8_t* a4 = a3 + a_stride;
  const std::int8_t* a5 = a4 + a_stride;
  const std::int8_t* a6 = a5 + a_stride;
  const std::int8_t* a7 = a6 + a_stride;
  for (int k = 0; k < k4; ++k, b += 128) {
    const __m512i b0 = _mm512_loadu_si512(b);
    const __m512i b1 = _mm512_loadu_si512(b + 64);
    gemm_row_step(c0l, c0h, b0, b1, a0 + 4 * k);
    gemm_row_step(c1l, c1h, b0, b1, a1 + 4 * k);
    gemm_row_step(c2l, c2h, b0, b1, a2 + 4 * k);
    gemm_row_step(c3l, c3h, b0, b1, a3 + 4 * k);
    gemm_row_step(c4l, c4h, b0, b1, a4 + 4 * k);
    gemm_row_step(c5l, c5h, b0, b1, a5 + 4 * k);
    gemm_row_step(c6l, c6h, b0, b1, a6 + 4 * k);
    gemm_row_step(c7l, c7h, b0, b1, a7 + 4 * k);
  }
  _mm512_storeu_si512(c, c0l);
  _mm512_storeu_si512(c + 16, c0h);
  _mm512_storeu_si512(c + c_stride, c1l);
  _mm512_storeu_si512(c + c_stride + 16, c1h);
  _mm512_storeu_si512(c + 2 * c_stride, c2l);
  _mm512_storeu_si512(c + 2 * c_stride + 16, c2h);
  _mm512_storeu_si512(c + 3 * c_stride, c3l);
  _mm512_storeu_si512(c + 3 * c_stride + 16, c3h);
  _mm512_storeu_si512(c + 4 * c_stride, c4l);
  _mm512_storeu_si512(c + 4 * c_stride + 16, c4h);
  _mm512_storeu_si512(c + 5 * c_stride, c5l);
  _mm512_storeu_si512(c + 5 * c_stride + 16, c5h);
  _mm512_storeu_si512(c + 6 * c_stride, c6l);
  _mm512_storeu_si512(c + 6 * c_stride + 16, c6h);
  _mm512_storeu_si512(c + 7 * c_stride, c7l);
  _mm512_storeu_si512(c + 7 * c_stride + 16, c7h);
}

MPDET_AVX512 void interleave4_u8_avx512(const std::uint8_t* input, std::size_t in_plane, int groups,
                                        int n, std::uint8_t* b, std::size_t kstride) {
  for (int k = 0; k < groups; ++k) {
    const std::uint8_t* r = input + static_cast<std::size_t>(4 * k) * in_plane;
    std::uint8_t* dst = b + k * kstride;
    for (int j = 0; j < n; j += 16) {
      interleave4_16_sse2(r + j, in_plane, dst + j * 4);
    }
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

namespace {

// The head epilogue (network outputs, which also need the exact activated t): eight pixels at a
// time in int64 lanes; vpmuldq multiplies the exact int32 accumulator by M_v (|M_v| < 2^31).
MPDET_AVX512 void epilogue_head_avx512(const PackedConv::Epilogue& e, int oc,
                                       const std::int32_t* acc, std::size_t acc_stride, int n,
                                       std::uint8_t* out, std::int32_t* head) {
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
    __m512i h;
    if (s > ops::kHeadFractionBits)
      h = _mm512_srav_epi64(
          _mm512_add_epi64(t,
                           _mm512_set1_epi64(std::int64_t{1} << (s - ops::kHeadFractionBits - 1))),
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

}  // namespace

// The uint8 epilogue sixteen pixels at a time, with no division and one shift (see
// ops/integer_arithmetic.h for the contract). With h = 2^(S−1) (0 for S = 0) and
// H = h + z_y·2^S, adding multiples of 2^S commutes with the arithmetic shift, so
//   t >= 0:  z_y + round_shift(t, S)            = (t + H) >> S
//   t <  0:  z_y + round_shift(floor(t/10), S)  = floor(((t + 10·H) >> S) / 10)
// (floor(floor(x/a)/b) = floor(x/(ab)) for positive integers a, b). x = t + H is clamped before
// the shift to the range where the code is not yet saturated, so the shifted value v is small and
// floor(v/10) = (v·6554 + 1024) >> 16 is exact for v in [−2560, 2564] (checked exhaustively by
// the tests). Even and odd pixels run in the int64 lanes of two registers (vpmuldq reads the low
// dword of each lane) and are interleaved back into sixteen dwords by one vpermt2d.
namespace {

constexpr int kMaxCachedPoints = 4;

// The odd dwords moved into the low halves of the qwords (where vpmuldq reads), by a shuffle on
// port 5 rather than a shift competing with the multiplies for port 0.
MPDET_AVX512 inline __m512i odd_low(__m512i a) {
  return _mm512_shuffle_epi32(a, static_cast<_MM_PERM_ENUM>(0xF5));
}

struct Epilogue16 {
  __m512i bias, big_h, big_h9, lo, hi, c6554, c1024, interleave;
  __m512i multipliers[kMaxCachedPoints], zero_sums[kMaxCachedPoints];
  __m128i count;
  bool leaky, relu;
  int nv;
  // High-dword mode (shift S' = S + d >= 33 after scaling t by 2^d): every step after the
  // products runs on sixteen dwords, see finish_high().
  bool high = false;
  __m512i odd_dwords, neg_offset, zy, bias_folded;
  __m128i count_high;
  __m512i count_high_v;
  // Shifted mode (high, with multipliers too large to pre-scale by 2^d): x = t + H is scaled by
  // 2^d after the products instead, folded into taking its dwords: the even pixels' y is the low
  // dword of x >> (32 − d), the odd pixels' y the high dword of x << d (|x|·2^d < 2^61 as above).
  bool shifted = false;
  __m512i shift_even, shift_odd;

  // One channel's constants as scalars (what the channel's vectors broadcast): the compact form
  // prepared once per layer.
  struct Scalars {
    std::int64_t bias, bias_folded, big_h, big_h9, lo, hi;
    std::int64_t multipliers[kMaxCachedPoints];
    std::int32_t zero_sums[kMaxCachedPoints];
    std::int32_t neg_offset, zy, count, count_high, nv, post_shift;
    bool leaky, relu, high, shifted;
  };

  static Scalars scalars(const PackedConv::Epilogue& e, int oc) {
    Scalars c{};
    const int v0 = e.first_virtual[oc];
    const int nv = e.first_virtual[oc + 1] - v0;
    c.nv = nv;
    const int s = e.shift;
    const std::int64_t h = s > 0 ? std::int64_t{1} << (s - 1) : 0;
    const std::int64_t bh = h + (std::int64_t{e.out_zero_point} << s);
    c.leaky = e.activation == ops::Activation::Leaky;
    c.relu = e.activation == ops::Activation::Relu;
    std::int64_t low = 0;
    if (c.leaky) low = -(std::int64_t{2560} << s);
    if (c.relu) low = std::int64_t{e.out_zero_point} << s;
    // Scale by 2^d when |t|·2^d and every |M|·2^d stay far from the lane limits.
    int d = s >= 33 ? 0 : 33 - s;
    const bool bounded = s >= 1 && d <= 30 && nv <= kMaxCachedPoints &&
                         (d == 0 || (e.t_bound >= 0 && std::ldexp(e.t_bound, d) < 0x1p61));
    bool scalable = bounded;
    for (int j = 0; j < nv && scalable; ++j)
      scalable = std::abs(e.multipliers[v0 + j]) < (std::int64_t{1} << (31 - d));
    // Multipliers too large to pre-scale by 2^d: the products are scaled instead (shifted mode).
    c.high = bounded;
    c.shifted = bounded && !scalable;
    if (!c.high) d = 0;
    c.post_shift = c.shifted ? d : 0;
    const int dm = c.shifted ? 0 : d;  // the pre-scaling of multipliers and bias
    for (int j = 0; j < nv && j < kMaxCachedPoints; ++j) {
      c.multipliers[j] = e.multipliers[v0 + j] * (std::int64_t{1} << dm);
      c.zero_sums[j] = e.zero_sums[v0 + j];
    }
    c.bias = (e.bias[oc] + bh) * (std::int64_t{1} << dm);
    c.big_h = bh;
    c.big_h9 = 9 * bh;
    c.lo = low;
    c.hi = (std::int64_t{c.leaky ? 2565 : 256} << s) - 1;
    c.count = s;
    const int zp = e.out_zero_point;
    c.count_high = s + d - 32;
    const int k = c.high ? s + d - 33 : 0;
    c.neg_offset = (9 + 18 * zp) << k;
    // High mode: z_x·Σ w folded into the bias (modulo 2^64; the raw sums Σ w·x never wrap int32,
    // |Σ w·x| <= 255·Σ|w| like the exact accumulator, so x is unchanged).
    std::uint64_t folded = static_cast<std::uint64_t>(c.bias);
    for (int j = 0; j < nv && c.high; ++j)
      folded -= static_cast<std::uint64_t>(std::int64_t{c.zero_sums[j]} * c.multipliers[j]);
    c.bias_folded = static_cast<std::int64_t>(folded);
    c.zy = c.relu ? zp : 0;
    return c;
  }

  MPDET_AVX512 Epilogue16(const PackedConv::Epilogue& e, int oc) : Epilogue16(scalars(e, oc)) {}

  MPDET_AVX512 explicit Epilogue16(const Scalars& c) {
    nv = c.nv;
    leaky = c.leaky;
    relu = c.relu;
    high = c.high;
    shifted = c.shifted;
    shift_even = _mm512_set1_epi64(32 - c.post_shift);
    shift_odd = _mm512_set1_epi64(c.post_shift);
    c6554 = _mm512_set1_epi64(6554);
    c1024 = _mm512_set1_epi64(1024);
    interleave = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    for (int j = 0; j < nv && j < kMaxCachedPoints; ++j) {
      multipliers[j] = _mm512_set1_epi64(c.multipliers[j]);
      zero_sums[j] = _mm512_set1_epi32(c.zero_sums[j]);
    }
    bias = _mm512_set1_epi64(c.bias);
    big_h = _mm512_set1_epi64(c.big_h);
    big_h9 = _mm512_set1_epi64(c.big_h9);
    lo = _mm512_set1_epi64(c.lo);
    hi = _mm512_set1_epi64(c.hi);
    count = _mm_cvtsi32_si128(c.count);
    odd_dwords = _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    count_high = _mm_cvtsi32_si128(c.count_high);
    count_high_v = _mm512_set1_epi32(c.count_high);
    neg_offset = _mm512_set1_epi32(c.neg_offset);
    bias_folded = _mm512_set1_epi64(c.bias_folded);
    zy = _mm512_set1_epi32(c.zy);
  }

  // High-dword mode: x = (t + H)·2^d in int64 (exact, |x| < 2^62), S' = S + d >= 33 and
  // H·2^d = 2^(S'−1)·(1 + 2·z_y). y = x >> 32 (the odd dwords) fits in int32; with
  // p = floor(x / 2^(S'−1)) = y >> k, k = S' − 33, and nested floors:
  //   t < 0  <=>  p < 1 + 2·z_y  <=>  y < (1 + 2·z_y)·2^k,
  //   t >= 0: code = p >> 1 = y >> (S' − 32),
  //   t < 0 (leaky): v = floor((t + 10·H) / 2^S) = (p + 9 + 18·z_y) >> 1
  //                    = (y + (9 + 18·z_y)·2^k) >> (S' − 32),  code = floor(v / 10).
  MPDET_AVX512 inline __m128i finish_high(__m512i even, __m512i odd) const {
    const __m512i y = shifted ? _mm512_mask_blend_epi32(0xAAAA, _mm512_srlv_epi64(even, shift_even),
                                                        _mm512_sllv_epi64(odd, shift_odd))
                              : _mm512_permutex2var_epi32(even, odd_dwords, odd);
    __m512i q = _mm512_srav_epi32(y, count_high_v);
    if (leaky) {
      // Both branches are computed and the larger code taken: with p = floor((t + H) / 2^S) and
      // n = floor((t / 10 + H) / 2^S) (the negative branch's code), t >= 0 gives n <= p and
      // t < 0 gives p <= n. The negative branch: v <= 10·z_y + 4 for t < 0, and v < 0 gives
      // code 0 as v = 0 does, so v is clamped at 0 and floor(v / 10) = (v·6554) >> 16 (exact on
      // [0, 2564]) is one vpmulhuw on the low words (the high words are 0). For t >= 0 with p
      // below 255, v <= 261 + 9·z_y < 2565 too; with p >= 255 any n >= 0 leaves the code 255.
      const __m512i v = _mm512_max_epi32(
          _mm512_srav_epi32(_mm512_add_epi32(y, neg_offset), count_high_v), _mm512_setzero_si512());
      q = _mm512_max_epi32(q, _mm512_mulhi_epu16(v, _mm512_set1_epi32(6554)));
    } else {
      q = _mm512_max_epi32(q, zy);  // relu: code >= z_y; linear: >= 0
    }
    return _mm512_cvtusepi32_epi8(q);
  }
  // even/odd: bias + Σ acc·M so far; returns sixteen codes.
  MPDET_AVX512 inline __m128i finish(__m512i even, __m512i odd) const {
    if (high) return finish_high(even, odd);
    __mmask8 neg_even = 0, neg_odd = 0;
    if (leaky) {
      neg_even = _mm512_cmplt_epi64_mask(even, big_h);
      neg_odd = _mm512_cmplt_epi64_mask(odd, big_h);
      even = _mm512_mask_add_epi64(even, neg_even, even, big_h9);
      odd = _mm512_mask_add_epi64(odd, neg_odd, odd, big_h9);
    }
    even = _mm512_sra_epi64(_mm512_min_epi64(_mm512_max_epi64(even, lo), hi), count);
    odd = _mm512_sra_epi64(_mm512_min_epi64(_mm512_max_epi64(odd, lo), hi), count);
    if (leaky) {
      even = _mm512_mask_srai_epi64(even, neg_even,
                                    _mm512_add_epi64(_mm512_mul_epi32(even, c6554), c1024), 16);
      odd = _mm512_mask_srai_epi64(odd, neg_odd,
                                   _mm512_add_epi64(_mm512_mul_epi32(odd, c6554), c1024), 16);
    }
    __m512i q = _mm512_permutex2var_epi32(even, interleave, odd);
    if (leaky) q = _mm512_max_epi32(q, _mm512_setzero_si512());
    return _mm512_cvtusepi32_epi8(q);
  }

  // Sixteen codes from the raw accumulators of the channel's NV (at most four) virtual channels.
  template <int NV>
  MPDET_AVX512 inline __m128i codes(const __m512i* raw) const {
    if (high) {
      __m512i even = bias_folded, odd = bias_folded;
      for (int j = 0; j < NV; ++j) {
        even = _mm512_add_epi64(even, _mm512_mul_epi32(raw[j], multipliers[j]));
        odd = _mm512_add_epi64(odd, _mm512_mul_epi32(odd_low(raw[j]), multipliers[j]));
      }
      return finish_high(even, odd);
    }
    __m512i even = bias, odd = bias;
    for (int j = 0; j < NV; ++j) {
      // Raw Σ w·x minus z_x·Σ w, modulo 2^32: the contract's exact int32 accumulator.
      const __m512i a = _mm512_sub_epi32(raw[j], zero_sums[j]);
      even = _mm512_add_epi64(even, _mm512_mul_epi32(a, multipliers[j]));
      odd = _mm512_add_epi64(odd, _mm512_mul_epi32(odd_low(a), multipliers[j]));
    }
    return finish(even, odd);
  }
};

// Channel oc's constants, from e.prepared (prepare_epilogue_avx512) when there: a const local
// object, so the compiler may keep its vectors in registers across the kernels' byte stores.
MPDET_AVX512 inline Epilogue16 channel_epilogue(const PackedConv::Epilogue& e, int oc) {
  if (e.prepared.empty()) return Epilogue16(e, oc);
  // Read in place (the Scalars object was created there by memcpy), not through a stack copy.
  return Epilogue16(*std::launder(reinterpret_cast<const Epilogue16::Scalars*>(
      e.prepared.data() + static_cast<std::size_t>(oc) * e.prepared_lines)));
}

}  // namespace

MPDET_AVX512 void prepare_epilogue_avx512(PackedConv::Epilogue& e) {
  using Line = PackedConv::Epilogue::Line;
  static_assert(alignof(Epilogue16::Scalars) <= alignof(Line));
  const std::size_t lines = (sizeof(Epilogue16::Scalars) + sizeof(Line) - 1) / sizeof(Line);
  const int channels = static_cast<int>(e.first_virtual.size()) - 1;
  std::vector<Line> prepared(static_cast<std::size_t>(channels) * lines);
  for (int oc = 0; oc < channels; ++oc) {
    const Epilogue16::Scalars c = Epilogue16::scalars(e, oc);
    std::memcpy(prepared.data() + oc * lines, &c, sizeof c);
  }
  e.prepared = std::move(prepared);
  e.prepared_lines = lines;
}

namespace {

template <int NV>
MPDET_AVX512 inline void epilogue_rows(const Epilogue16& epi, const std::int32_t* acc,
                                       std::size_t acc_stride, int n, std::uint8_t* out) {
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i raw[NV];
    for (int j = 0; j < NV; ++j) raw[j] = _mm512_loadu_si512(acc + j * acc_stride + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), epi.codes<NV>(raw));
  }
  if (i < n) {
    const auto mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512i raw[NV];
    for (int j = 0; j < NV; ++j) raw[j] = _mm512_maskz_loadu_epi32(mask, acc + j * acc_stride + i);
    _mm_mask_storeu_epi8(out + i, mask, epi.codes<NV>(raw));
  }
}

}  // namespace

MPDET_AVX512 void epilogue_avx512(const PackedConv::Epilogue& e, int oc, const std::int32_t* acc,
                                  std::size_t acc_stride, int n, std::uint8_t* out,
                                  std::int32_t* head) {
  if (head) return epilogue_head_avx512(e, oc, acc, acc_stride, n, out, head);
  const Epilogue16 epi = channel_epilogue(e, oc);
  switch (epi.nv) {
    case 1:
      return epilogue_rows<1>(epi, acc, acc_stride, n, out);
    case 2:
      return epilogue_rows<2>(epi, acc, acc_stride, n, out);
    case 3:
      return epilogue_rows<3>(epi, acc, acc_stride, n, out);
    case 4:
      return epilogue_rows<4>(epi, acc, acc_stride, n, out);
    default:
      break;
  }
  const int v0 = e.first_virtual[oc];
  for (int i = 0; i < n; i += 16) {
    const __mmask16 mask = n - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512i even = epi.bias, odd = epi.bias;
    for (int j = 0; j < epi.nv; ++j) {
      const __m512i m = _mm512_set1_epi64(e.multipliers[v0 + j]);
      const __m512i a = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(mask, acc + j * acc_stride + i),
                                         _mm512_set1_epi32(e.zero_sums[v0 + j]));
      even = _mm512_add_epi64(even, _mm512_mul_epi32(a, m));
      odd = _mm512_add_epi64(odd, _mm512_mul_epi32(odd_low(a), m));
    }
    _mm_mask_storeu_epi8(out + i, mask, epi.finish(even, odd));
  }
}

// Depthwise convolution of one output channel, fused with its epilogue: for sixteen outputs of a
// row, vpermb gathers each output's four consecutive taps of an input row (bytes ox·stride + 4g
// .. + 3) into one dword and vpdpbusd multiplies them by the packed weights (ky, 4g..4g+3)
// exactly into int32, so every virtual channel of the output costs ceil(k/4) vpdpbusd per row
// and shares the gathered bytes. `plane`: the zero-point-padded input channel (pitch bytes per
// row, 64 readable bytes past any tap), `w`: [nv][kernel][ceil(kernel/4)] dwords.
namespace {

#define MPDET_AVX512_VBMI \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi")))

// Sixteen outputs of one row at `src` (the first tap of output ox).
template <int NV, int K>
MPDET_AVX512_VBMI inline __m128i dw_block(const std::uint8_t* src, std::size_t pitch,
                                          const __m512i* gather,
                                          const __m512i (*weights)[K][(K + 3) / 4],
                                          const Epilogue16& epi) {
  constexpr int kGroups = (K + 3) / 4;
  __m512i acc[NV];
  for (int j = 0; j < NV; ++j) acc[j] = _mm512_setzero_si512();
  for (int ky = 0; ky < K; ++ky) {
    const __m512i x = _mm512_loadu_si512(src + ky * pitch);
    for (int g = 0; g < kGroups; ++g) {
      const __m512i xg = _mm512_permutexvar_epi8(gather[g], x);
      for (int j = 0; j < NV; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], xg, weights[j][ky][g]);
    }
  }
  return epi.codes<NV>(acc);
}

template <int NV, int K>
MPDET_AVX512_VBMI void dwconv_channel(const std::uint8_t* plane, int pitch, int stride,
                                      const std::int32_t* w, const Epilogue16& epi, int out_h,
                                      int out_w, std::uint8_t* out) {
  constexpr int kGroups = (K + 3) / 4;
  __m512i gather[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    alignas(64) std::uint8_t idx[64];
    for (int i = 0; i < 16; ++i)
      for (int b = 0; b < 4; ++b)
        idx[4 * i + b] = static_cast<std::uint8_t>(i * stride + 4 * g + b);
    gather[g] = _mm512_load_si512(idx);
  }
  __m512i weights[NV][K][kGroups];
  for (int j = 0; j < NV; ++j)
    for (int ky = 0; ky < K; ++ky)
      for (int g = 0; g < kGroups; ++g)
        weights[j][ky][g] = _mm512_set1_epi32(w[(j * K + ky) * kGroups + g]);
  const std::size_t row_step = static_cast<std::size_t>(stride) * pitch;
  const int full = out_w & ~15;
  for (int oy = 0; oy < out_h; ++oy) {
    std::uint8_t* dst = out + static_cast<std::size_t>(oy) * out_w;
    const std::uint8_t* top = plane + oy * row_step;
    int ox = 0;
    for (; ox < full; ox += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + ox),
                       dw_block<NV, K>(top + ox * stride, pitch, gather, weights, epi));
    if (ox < out_w)
      _mm_mask_storeu_epi8(dst + ox, static_cast<__mmask16>((1u << (out_w - ox)) - 1),
                           dw_block<NV, K>(top + ox * stride, pitch, gather, weights, epi));
  }
}

// Small planes, the output flattened: block b's sixteen outputs (row-major, crossing rows) read
// their taps of kernel row ky from the 64 bytes at plane + base[b] + ky·pitch, gathered by the
// byte indices gather[b][g] (one vector per group of four taps), so no lane is wasted on row ends.
template <int NV, int K>
MPDET_AVX512_VBMI void dwconv_channel_flat(const std::uint8_t* plane, int pitch,
                                           const std::int32_t* w, const std::uint8_t* gather,
                                           const std::int32_t* base, const Epilogue16& epi,
                                           int out_plane, std::uint8_t* out) {
  constexpr int kGroups = (K + 3) / 4;
  __m512i weights[NV][K][kGroups];
  for (int j = 0; j < NV; ++j)
    for (int ky = 0; ky < K; ++ky)
      for (int g = 0; g < kGroups; ++g)
        weights[j][ky][g] = _mm512_set1_epi32(w[(j * K + ky) * kGroups + g]);
  const int blocks = (out_plane + 15) / 16;
  for (int b = 0; b < blocks; ++b) {
    __m512i idx[kGroups];
    for (int g = 0; g < kGroups; ++g)
      idx[g] = _mm512_loadu_si512(gather + (static_cast<std::size_t>(b) * kGroups + g) * 64);
    const __m128i q = dw_block<NV, K>(plane + base[b], pitch, idx, weights, epi);
    if (b + 1 < blocks || out_plane % 16 == 0)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + b * 16), q);
    else
      _mm_mask_storeu_epi8(out + b * 16, static_cast<__mmask16>((1u << (out_plane % 16)) - 1), q);
  }
}

// Any kernel <= 8 and point count <= 4, loops not unrolled.
MPDET_AVX512_VBMI void dwconv_channel_generic(const std::uint8_t* plane, int pitch, int stride,
                                              int kernel, const std::int32_t* w,
                                              const Epilogue16& epi, int out_h, int out_w,
                                              std::uint8_t* out) {
  const int nv = epi.nv, groups = (kernel + 3) / 4;
  __m512i gather[2];
  for (int g = 0; g < groups; ++g) {
    alignas(64) std::uint8_t idx[64];
    for (int i = 0; i < 16; ++i)
      for (int b = 0; b < 4; ++b)
        idx[4 * i + b] = static_cast<std::uint8_t>(i * stride + 4 * g + b);
    gather[g] = _mm512_load_si512(idx);
  }
  for (int oy = 0; oy < out_h; ++oy) {
    for (int ox = 0; ox < out_w; ox += 16) {
      __m512i acc[kMaxCachedPoints];
      for (int j = 0; j < nv; ++j) acc[j] = _mm512_setzero_si512();
      const std::uint8_t* src = plane + static_cast<std::size_t>(oy) * stride * pitch +
                                static_cast<std::size_t>(ox) * stride;
      for (int ky = 0; ky < kernel; ++ky, src += pitch) {
        const __m512i x = _mm512_loadu_si512(src);
        for (int g = 0; g < groups; ++g) {
          const __m512i xg = _mm512_permutexvar_epi8(gather[g], x);
          for (int j = 0; j < nv; ++j)
            acc[j] = _mm512_dpbusd_epi32(acc[j], xg,
                                         _mm512_set1_epi32(w[(j * kernel + ky) * groups + g]));
        }
      }
      __m512i even = epi.bias, odd = epi.bias;
      for (int j = 0; j < nv; ++j) {
        const __m512i a = _mm512_sub_epi32(acc[j], epi.zero_sums[j]);
        even = _mm512_add_epi64(even, _mm512_mul_epi32(a, epi.multipliers[j]));
        odd = _mm512_add_epi64(odd, _mm512_mul_epi32(odd_low(a), epi.multipliers[j]));
      }
      const __mmask16 mask =
          out_w - ox >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (out_w - ox)) - 1);
      _mm_mask_storeu_epi8(out + static_cast<std::size_t>(oy) * out_w + ox, mask,
                           epi.finish(even, odd));
    }
  }
}

}  // namespace

namespace {

// Dense K×K convolution with few input channels, output rows [oy0, oy1): the gathered tap
// vectors of all input channels are shared by every output channel.
// C > 0: exactly C input channels (loops of compile-time length, the tap vectors in registers).
template <int K, int C = 0>
MPDET_AVX512_VBMI void conv_direct_rows(const std::uint8_t* planes, std::size_t plane_stride,
                                        int channels, int pitch, int stride, const std::int32_t* w,
                                        const PackedConv::Epilogue& e, int oy0, int oy1, int out_h,
                                        int out_w, std::uint8_t* out) {
  constexpr int kMaxVectors = 4 * K;
  const int out_channels = static_cast<int>(e.first_virtual.size()) - 1;
  // Over-aligned elements: placed by hand into a 64-byte aligned part of a byte buffer.
  std::vector<unsigned char> storage(sizeof(Epilogue16) * out_channels + 64);
  auto* epis = reinterpret_cast<Epilogue16*>(
      (reinterpret_cast<std::uintptr_t>(storage.data()) + 63) & ~std::uintptr_t{63});
  for (int oc = 0; oc < out_channels; ++oc) new (epis + oc) Epilogue16(channel_epilogue(e, oc));
  alignas(64) std::uint8_t idx[64];
  for (int i = 0; i < 16; ++i)
    for (int b = 0; b < 4; ++b) idx[4 * i + b] = static_cast<std::uint8_t>(i * stride + b);
  const __m512i gather = _mm512_load_si512(idx);
  const int vectors = C > 0 ? C * K : channels * K;
  const std::size_t out_plane = static_cast<std::size_t>(out_h) * out_w;
  for (int oy = oy0; oy < oy1; ++oy) {
    for (int ox = 0; ox < out_w; ox += 16) {
      __m512i x[kMaxVectors];
      for (int c = 0; c < (C > 0 ? C : channels); ++c)
        for (int ky = 0; ky < K; ++ky)
          x[c * K + ky] = _mm512_permutexvar_epi8(
              gather, _mm512_loadu_si512(planes + c * plane_stride +
                                         static_cast<std::size_t>(oy * stride + ky) * pitch +
                                         static_cast<std::size_t>(ox) * stride));
      const __mmask16 mask =
          out_w - ox >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (out_w - ox)) - 1);
      std::uint8_t* dst = out + static_cast<std::size_t>(oy) * out_w + ox;
      for (int oc = 0; oc < out_channels; ++oc) {
        const Epilogue16& epi = epis[oc];
        const std::int32_t* wv = w + static_cast<std::size_t>(e.first_virtual[oc]) * vectors;
        __m512i acc[kMaxCachedPoints];
        for (int j = 0; j < epi.nv; ++j) {
          // Two register accumulators (not the array element, which GCC would keep in memory):
          // shorter dependency chains.
          __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
          int i = 0;
          for (; i + 2 <= vectors; i += 2) {
            a0 = _mm512_dpbusd_epi32(a0, x[i], _mm512_set1_epi32(wv[j * vectors + i]));
            a1 = _mm512_dpbusd_epi32(a1, x[i + 1], _mm512_set1_epi32(wv[j * vectors + i + 1]));
          }
          if (i < vectors)
            a0 = _mm512_dpbusd_epi32(a0, x[i], _mm512_set1_epi32(wv[j * vectors + i]));
          acc[j] = _mm512_add_epi32(a0, a1);
        }
        __m128i q;
        switch (epi.nv) {
          case 1:
            q = epi.codes<1>(acc);
            break;
          case 2:
            q = epi.codes<2>(acc);
            break;
          case 3:
            q = epi.codes<3>(acc);
            break;
          default:
            q = epi.codes<4>(acc);
            break;
        }
        _mm_mask_storeu_epi8(dst + oc * out_plane, mask, q);
      }
    }
  }
}

}  // namespace

MPDET_AVX512_VBMI void conv_direct_u8s8_16x_avx512vbmi(
    const std::uint8_t* planes, std::size_t plane_stride, int channels, int pitch, int stride,
    int kernel, const std::int32_t* w, const PackedConv::Epilogue& e, int oy0, int oy1, int out_h,
    int out_w, std::uint8_t* out) {
  switch (kernel) {
    case 1:
      return conv_direct_rows<1>(planes, plane_stride, channels, pitch, stride, w, e, oy0, oy1,
                                 out_h, out_w, out);
    case 2:
      return conv_direct_rows<2>(planes, plane_stride, channels, pitch, stride, w, e, oy0, oy1,
                                 out_h, out_w, out);
    case 3:
      if (channels == 3)  // RGB input layers
        return conv_direct_rows<3, 3>(planes, plane_stride, channels, pitch, stride, w, e, oy0, oy1,
                                      out_h, out_w, out);
      return conv_direct_rows<3>(planes, plane_stride, channels, pitch, stride, w, e, oy0, oy1,
                                 out_h, out_w, out);
    default:
      return conv_direct_rows<4>(planes, plane_stride, channels, pitch, stride, w, e, oy0, oy1,
                                 out_h, out_w, out);
  }
}

MPDET_AVX512_VBMI void dwconv_u8s8_16x_avx512vbmi(const std::uint8_t* plane, int pitch, int stride,
                                                  int kernel, const std::int32_t* w,
                                                  const PackedConv::Epilogue& e, int oc, int out_h,
                                                  int out_w, std::uint8_t* out) {
  const Epilogue16 epi = channel_epilogue(e, oc);
#define MPDET_DW_CASE(NV, K)       \
  if (epi.nv == NV && kernel == K) \
    return dwconv_channel<NV, K>(plane, pitch, stride, w, epi, out_h, out_w, out);
  MPDET_DW_CASE(1, 3)
  MPDET_DW_CASE(2, 3)
  MPDET_DW_CASE(3, 3)
  MPDET_DW_CASE(4, 3)
  MPDET_DW_CASE(1, 5)
  MPDET_DW_CASE(2, 5)
  MPDET_DW_CASE(3, 5)
  MPDET_DW_CASE(4, 5)
#undef MPDET_DW_CASE
  dwconv_channel_generic(plane, pitch, stride, kernel, w, epi, out_h, out_w, out);
}

MPDET_AVX512_VBMI void dwconv_flat_u8s8_16x_avx512vbmi(const std::uint8_t* plane, int pitch,
                                                       int kernel, const std::int32_t* w,
                                                       const std::uint8_t* gather,
                                                       const std::int32_t* base,
                                                       const PackedConv::Epilogue& e, int oc,
                                                       int out_plane, std::uint8_t* out) {
  const Epilogue16 epi = channel_epilogue(e, oc);
#define MPDET_DW_CASE(NV, K)       \
  if (epi.nv == NV && kernel == K) \
    return dwconv_channel_flat<NV, K>(plane, pitch, w, gather, base, epi, out_plane, out);
  MPDET_DW_CASE(1, 3)
  MPDET_DW_CASE(2, 3)
  MPDET_DW_CASE(3, 3)
  MPDET_DW_CASE(4, 3)
  MPDET_DW_CASE(1, 5)
  MPDET_DW_CASE(2, 5)
  MPDET_DW_CASE(3, 5)
  MPDET_DW_CASE(4, 5)
  MPDET_DW_CASE(1, 1)
  MPDET_DW_CASE(2, 1)
  MPDET_DW_CASE(3, 1)
  MPDET_DW_CASE(4, 1)
  MPDET_DW_CASE(1, 7)
  MPDET_DW_CASE(2, 7)
  MPDET_DW_CASE(3, 7)
  MPDET_DW_CASE(4, 7)
#undef MPDET_DW_CASE
  std::abort();  // the layer checks kernel in {1, 3, 5, 7} and at most 4 points
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
  // Sixteen codes at a time (linear, relu) when the shifted sum fits an int32 lane with room:
  // x = q_a·M_a + q_b·M_b + C, C = 2^(S−1) + z_y·2^S − z_a·M_a − z_b·M_b (exact in int64, the zero
  // points folded), y = x >> S = z_y + round_shift(t, S) (adding multiples of 2^S commutes with
  // the shift); relu: z_y + round_shift(max(t, 0), S) = max(y, z_y); then the uint8 saturation.
  const double y_bound = (255.0 * (std::abs(static_cast<double>(a_multiplier)) +
                                   std::abs(static_cast<double>(b_multiplier)))) /
                             std::ldexp(1.0, shift) +
                         512.0;
  if (activation != ops::Activation::Leaky && shift >= 1 && shift <= ops::kMaxShift &&
      y_bound < 0x1p30) {
    const __m512i c = _mm512_set1_epi64(
        (std::int64_t{1} << (shift - 1)) + (std::int64_t{out_zero} << shift) -
        std::int64_t{a_zero} * a_multiplier - std::int64_t{b_zero} * b_multiplier);
    const __m512i count = _mm512_set1_epi64(shift);
    const __m512i floor_code =
        _mm512_set1_epi32(activation == ops::Activation::Relu ? out_zero : 0);
    const __m512i even_dwords =
        _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    for (std::size_t i = 0; i < n; i += 16) {
      const __mmask16 mask = n - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - i)) - 1);
      const __m512i va = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, a + i));
      const __m512i vb = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, b + i));
      __m512i even =
          _mm512_add_epi64(_mm512_add_epi64(_mm512_mul_epi32(va, ma), _mm512_mul_epi32(vb, mb)), c);
      __m512i odd =
          _mm512_add_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(va, 32), ma),
                                            _mm512_mul_epi32(_mm512_srli_epi64(vb, 32), mb)),
                           c);
      even = _mm512_srav_epi64(even, count);
      odd = _mm512_srav_epi64(odd, count);
      const __m512i y =
          _mm512_max_epi32(_mm512_permutex2var_epi32(even, even_dwords, odd), floor_code);
      _mm_mask_storeu_epi8(out + i, mask, _mm512_cvtusepi32_epi8(y));
    }
    return;
  }
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

// Plain 64-byte stores only, in increasing address order: each row starts with a zero-point
// store over its left pad, copies its input in whole vectors and ends with a zero-point store
// over its right pad; the bytes every store spills past those are rewritten by the stores after
// it (the slack covers the last row's). Only vectors that would read past the input plane are
// read with a mask, and only the end of the buffer is written with one.
MPDET_AVX512 void pad_plane_avx512(const std::uint8_t* src, int h, int w, int pad, int zero_point,
                                   std::uint8_t* dst, std::size_t bytes) {
  const __m512i zp = _mm512_set1_epi8(static_cast<char>(zero_point));
  const std::size_t pitch = static_cast<std::size_t>(w) + 2 * pad;
  const std::size_t top = static_cast<std::size_t>(pad) * pitch;
  for (std::size_t i = 0; i < top; i += 64) _mm512_storeu_si512(dst + i, zp);
  if (pitch <= 64) {
    // Narrow rows: each padded row is one masked load over the zero point (the input bytes
    // placed after the left pad) and one store.
    const __mmask64 m = (~__mmask64{0} >> (64 - w)) << pad;
    for (int y = 0; y < h; ++y) {
      const auto* in = reinterpret_cast<const std::uint8_t*>(
          reinterpret_cast<std::uintptr_t>(src + static_cast<std::size_t>(y) * w) - pad);
      _mm512_storeu_si512(dst + top + static_cast<std::size_t>(y) * pitch,
                          _mm512_mask_loadu_epi8(zp, m, in));
    }
  }
  for (int y = 0; y < h && pitch > 64; ++y) {
    std::uint8_t* row = dst + top + static_cast<std::size_t>(y) * pitch;
    const std::uint8_t* in = src + static_cast<std::size_t>(y) * w;
    if (pad > 0) _mm512_storeu_si512(row, zp);
    const std::size_t left = static_cast<std::size_t>(h - y) * w;  // input bytes from `in` on
    for (int x = 0; x < w; x += 64) {
      __m512i v;
      if (left - x >= 64) {
        v = _mm512_loadu_si512(in + x);
      } else {
        const __mmask64 m = w - x >= 64 ? ~__mmask64{0} : ~__mmask64{0} >> (64 - (w - x));
        v = _mm512_maskz_loadu_epi8(m, in + x);
      }
      _mm512_storeu_si512(row + pad + x, v);
    }
    if (pad > 0) _mm512_storeu_si512(row + pad + w, zp);
  }
  for (std::size_t i = top + static_cast<std::size_t>(h) * pitch; i < bytes; i += 64) {
    const std::size_t n = bytes - i;
    _mm512_mask_storeu_epi8(dst + i, n >= 64 ? ~__mmask64{0} : ~__mmask64{0} >> (64 - n), zp);
  }
}

// ops::quantize_input sixteen values at a time: the same float operations in the same order
// (an explicitly rounded multiply, then add, never fused), clamp, floor, zero point, saturation.
MPDET_AVX512 void quantize_input_avx512(const float* in, std::size_t n, float inv_scale,
                                        int zero_point, std::uint8_t* out) {
  constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512 inv = _mm512_set1_ps(inv_scale), half = _mm512_set1_ps(0.5f);
  const __m512 lo = _mm512_set1_ps(-1024.0f), hi = _mm512_set1_ps(1024.0f);
  const __m512i zp = _mm512_set1_epi32(zero_point), zero = _mm512_setzero_si512();
  for (std::size_t i = 0; i < n; i += 16) {
    const __mmask16 mask = n - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(mask, in + i);
    __m512 scaled = _mm512_add_round_ps(_mm512_mul_round_ps(x, inv, kNearest), half, kNearest);
    scaled = _mm512_min_ps(_mm512_max_ps(scaled, lo), hi);
    const __m512i q = _mm512_add_epi32(
        _mm512_cvtps_epi32(_mm512_roundscale_ps(scaled, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)),
        zp);
    _mm_mask_storeu_epi8(out + i, mask, _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, zero)));
  }
}

}  // namespace mpdet::cpu

#endif  // MPDET_CPU_X86
