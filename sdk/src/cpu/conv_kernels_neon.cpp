// NEON kernels (AArch64). Two inner-loop families, chosen at run time (conv_kernels.cpp):
//  - ARMv8.0 (every AArch64 core): widening multiply-accumulates (SMLAL) of int8 × int8 into
//    16-bit lanes. Weights of at most 4 bits keep `chunk` products per lane before one widening
//    to 32 bits (the bound comes from the bit-width); 8-bit weights widen every second product.
//  - ARMv8.2 dot product (SDOT, FEAT_DotProd): four int8 products into each 32-bit lane,
//    compiled per function for armv8.2-a+dotprod.
// Both need signed activations, so the kernels use x − 128 (x XOR 0x80, exact in int8): they
// return Σ w·(x − 128), and layers run by them store zero sums (z_x − 128)·Σ w (see
// kernel_activation_offset), so the epilogue still sees the contract's Σ w·(x − z_x).
// docs/cpu_kernels.md has the layouts, the overflow bounds and instructions per MAC.
#include "cpu/conv_kernels.h"

#ifdef MPDET_CPU_ARM
#include <arm_neon.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#define MPDET_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

namespace mpdet::cpu {

namespace {

// 16 activation codes as signed x − 128.
inline int8x16_t load_centered(const std::uint8_t* p) {
  return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vdupq_n_u8(0x80)));
}

// A row's four weights of one k4 step, repeated over the four 32-bit lanes: they meet the four
// channels of each of four pixels in a [block][4] slice of the packed activations.
inline int8x16_t broadcast4(const std::int8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

}  // namespace

// 8-bit weights: |w·(x − 128)| <= 127·128 = 16256, so an int16 lane holds two products (32512).
// Per row and 4 pixels: SMULL/SMLAL over two k4 steps (low and high halves), then SADALP widens
// the pairs into two int32 accumulators (lanes: pixel × {channels 0+1, 2+3}), added at the end.
void gemm_u8s8_4x8c4_neon(int k4, const std::int8_t* a, std::size_t a_stride, const std::uint8_t* b,
                          std::int32_t* c, std::size_t c_stride) {
  int32x4_t acc[4][2][2];
  for (auto& row : acc)
    for (auto& vec : row) vec[0] = vec[1] = vdupq_n_s32(0);
  int k = 0;
  for (; k + 2 <= k4; k += 2) {
    const std::uint8_t* bk = b + k * 32;
    const int8x16_t x0 = load_centered(bk), x1 = load_centered(bk + 16);
    const int8x16_t y0 = load_centered(bk + 32), y1 = load_centered(bk + 48);
    for (int m = 0; m < 4; ++m) {
      const int8x16_t w0 = broadcast4(a + m * a_stride + k * 4);
      const int8x16_t w1 = broadcast4(a + m * a_stride + k * 4 + 4);
      const int16x8_t lo0 =
          vmlal_s8(vmull_s8(vget_low_s8(x0), vget_low_s8(w0)), vget_low_s8(y0), vget_low_s8(w1));
      const int16x8_t hi0 = vmlal_high_s8(vmull_high_s8(x0, w0), y0, w1);
      const int16x8_t lo1 =
          vmlal_s8(vmull_s8(vget_low_s8(x1), vget_low_s8(w0)), vget_low_s8(y1), vget_low_s8(w1));
      const int16x8_t hi1 = vmlal_high_s8(vmull_high_s8(x1, w0), y1, w1);
      acc[m][0][0] = vpadalq_s16(acc[m][0][0], lo0);
      acc[m][0][1] = vpadalq_s16(acc[m][0][1], hi0);
      acc[m][1][0] = vpadalq_s16(acc[m][1][0], lo1);
      acc[m][1][1] = vpadalq_s16(acc[m][1][1], hi1);
    }
  }
  if (k < k4) {
    const std::uint8_t* bk = b + k * 32;
    const int8x16_t x0 = load_centered(bk), x1 = load_centered(bk + 16);
    for (int m = 0; m < 4; ++m) {
      const int8x16_t w = broadcast4(a + m * a_stride + k * 4);
      acc[m][0][0] = vpadalq_s16(acc[m][0][0], vmull_s8(vget_low_s8(x0), vget_low_s8(w)));
      acc[m][0][1] = vpadalq_s16(acc[m][0][1], vmull_high_s8(x0, w));
      acc[m][1][0] = vpadalq_s16(acc[m][1][0], vmull_s8(vget_low_s8(x1), vget_low_s8(w)));
      acc[m][1][1] = vpadalq_s16(acc[m][1][1], vmull_high_s8(x1, w));
    }
  }
  for (int m = 0; m < 4; ++m)
    for (int v = 0; v < 2; ++v)
      vst1q_s32(c + m * c_stride + v * 4, vpaddq_s32(acc[m][v][0], acc[m][v][1]));
}

// Weights of at most 4 bits: each int16 lane (one pixel × one of four channels) takes `chunk`
// SMLAL products before ADDP folds channel pairs and SADALP widens into the pixel's int32 sum;
// the caller bounds 2·chunk·128·max|w| <= 32767 (18 steps for 4 bits, 42 for 3, 127 for 2).
void gemm_u8s8_4x8c4_acc16_neon(int k4, const std::int8_t* a, std::size_t a_stride,
                                const std::uint8_t* b, std::int32_t* c, std::size_t c_stride,
                                int chunk) {
  int32x4_t acc[4][2];
  for (auto& row : acc) row[0] = row[1] = vdupq_n_s32(0);
  for (int k0 = 0; k0 < k4; k0 += chunk) {
    const int k1 = std::min(k4, k0 + chunk);
    int16x8_t lo[4][2], hi[4][2];
    for (int m = 0; m < 4; ++m) lo[m][0] = lo[m][1] = hi[m][0] = hi[m][1] = vdupq_n_s16(0);
    for (int k = k0; k < k1; ++k) {
      const std::uint8_t* bk = b + k * 32;
      const int8x16_t x0 = load_centered(bk), x1 = load_centered(bk + 16);
      for (int m = 0; m < 4; ++m) {
        const int8x16_t w = broadcast4(a + m * a_stride + k * 4);
        lo[m][0] = vmlal_s8(lo[m][0], vget_low_s8(x0), vget_low_s8(w));
        hi[m][0] = vmlal_high_s8(hi[m][0], x0, w);
        lo[m][1] = vmlal_s8(lo[m][1], vget_low_s8(x1), vget_low_s8(w));
        hi[m][1] = vmlal_high_s8(hi[m][1], x1, w);
      }
    }
    for (int m = 0; m < 4; ++m)
      for (int v = 0; v < 2; ++v)
        acc[m][v] = vpadalq_s16(acc[m][v], vpaddq_s16(lo[m][v], hi[m][v]));
  }
  for (int m = 0; m < 4; ++m)
    for (int v = 0; v < 2; ++v) vst1q_s32(c + m * c_stride + v * 4, acc[m][v]);
}

// SDOT adds four int8 products into each int32 lane: lane j of (x, w) is pixel j's four channels
// times the row's four weights. 4 rows × 16 pixels keep 16 accumulators in registers.
MPDET_DOTPROD void gemm_u8s8_4x16c4_neondot(int k4, const std::int8_t* a, std::size_t a_stride,
                                            const std::uint8_t* b, std::int32_t* c,
                                            std::size_t c_stride) {
  int32x4_t acc[4][4];
  for (auto& row : acc)
    for (auto& vec : row) vec = vdupq_n_s32(0);
  for (int k = 0; k < k4; ++k) {
    const std::uint8_t* bk = b + k * 64;
    const int8x16_t x0 = load_centered(bk), x1 = load_centered(bk + 16);
    const int8x16_t x2 = load_centered(bk + 32), x3 = load_centered(bk + 48);
    for (int m = 0; m < 4; ++m) {
      const int8x16_t w = broadcast4(a + m * a_stride + k * 4);
      acc[m][0] = vdotq_s32(acc[m][0], x0, w);
      acc[m][1] = vdotq_s32(acc[m][1], x1, w);
      acc[m][2] = vdotq_s32(acc[m][2], x2, w);
      acc[m][3] = vdotq_s32(acc[m][3], x3, w);
    }
  }
  for (int m = 0; m < 4; ++m)
    for (int v = 0; v < 4; ++v) vst1q_s32(c + m * c_stride + v * 4, acc[m][v]);
}

namespace {

// 3×3 and 5×5 rows whose taps all fit one int16 sum (K²·128·max|w| <= 32767: weights of up to
// 4 bits): weights broadcast once, taps unrolled, one widening per 16 outputs.
template <int K, int S>
void dwconv_row_unrolled(const std::uint8_t* plane, int pitch, int oy, const std::int8_t* w,
                         int width, std::int32_t* acc) {
  int8x16_t taps[K * K];
  for (int i = 0; i < K * K; ++i) taps[i] = vdupq_n_s8(w[i]);
  const std::uint8_t* top = plane + static_cast<std::size_t>(oy * S) * pitch;
  for (int ox = 0; ox < width; ox += 16) {
    int16x8_t lo = vdupq_n_s16(0), hi = lo;
    for (int ky = 0; ky < K; ++ky) {
      const std::uint8_t* row = top + static_cast<std::size_t>(ky) * pitch + ox * S;
      for (int kx = 0; kx < K; ++kx) {
        const uint8x16_t codes = S == 1 ? vld1q_u8(row + kx) : vld2q_u8(row + kx).val[0];
        const int8x16_t x = vreinterpretq_s8_u8(veorq_u8(codes, vdupq_n_u8(0x80)));
        lo = vmlal_s8(lo, vget_low_s8(x), vget_low_s8(taps[ky * K + kx]));
        hi = vmlal_high_s8(hi, x, taps[ky * K + kx]);
      }
    }
    vst1q_s32(acc + ox, vmovl_s16(vget_low_s16(lo)));
    vst1q_s32(acc + ox + 4, vmovl_high_s16(lo));
    vst1q_s32(acc + ox + 8, vmovl_s16(vget_low_s16(hi)));
    vst1q_s32(acc + ox + 12, vmovl_high_s16(hi));
  }
}

}  // namespace

// 16 outputs per step, Σ w·(x − 128) like the GEMM kernels: SMLAL of the centred codes by the
// broadcast tap weight into int16 lanes (|w·(x − 128)| <= 128·max|w|, so the caller's `chunk`,
// bounded for 255·max|w|, is safe), widened to int32 every `chunk` taps. Stride 2 takes the even
// bytes of 32 with LD2. Other strides gather the taps one by one.
void dwconv_row_u8s8_16x_neon(const std::uint8_t* plane, int pitch, int oy, int stride, int kernel,
                              const std::int8_t* w, int chunk, int width, std::int32_t* acc) {
  int max_w = 1;
  for (int i = 0; i < kernel * kernel; ++i) max_w = std::max(max_w, std::abs(int{w[i]}));
  if (kernel * kernel * 128 * max_w <= 32767) {
    if (kernel == 3 && stride == 1)
      return dwconv_row_unrolled<3, 1>(plane, pitch, oy, w, width, acc);
    if (kernel == 3 && stride == 2)
      return dwconv_row_unrolled<3, 2>(plane, pitch, oy, w, width, acc);
    if (kernel == 5 && stride == 1)
      return dwconv_row_unrolled<5, 1>(plane, pitch, oy, w, width, acc);
    if (kernel == 5 && stride == 2)
      return dwconv_row_unrolled<5, 2>(plane, pitch, oy, w, width, acc);
  }
  if (stride != 1 && stride != 2) {
    for (int ox = 0; ox < width; ++ox) {
      std::int32_t sum = 0;
      for (int ky = 0; ky < kernel; ++ky) {
        const std::uint8_t* row =
            plane + static_cast<std::size_t>(oy * stride + ky) * pitch + ox * stride;
        for (int kx = 0; kx < kernel; ++kx) sum += w[ky * kernel + kx] * (row[kx] - 128);
      }
      acc[ox] = sum;
    }
    return;
  }
  for (int ox = 0; ox < width; ox += 16) {
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
    int16x8_t lo = vdupq_n_s16(0), hi = lo;
    int pending = 0;
    for (int ky = 0; ky < kernel; ++ky) {
      const std::uint8_t* row =
          plane + static_cast<std::size_t>(oy * stride + ky) * pitch + ox * stride;
      for (int kx = 0; kx < kernel; ++kx) {
        const uint8x16_t codes = stride == 1 ? vld1q_u8(row + kx) : vld2q_u8(row + kx).val[0];
        const int8x16_t x = vreinterpretq_s8_u8(veorq_u8(codes, vdupq_n_u8(0x80)));
        const int8x16_t tap = vdupq_n_s8(w[ky * kernel + kx]);
        lo = vmlal_s8(lo, vget_low_s8(x), vget_low_s8(tap));
        hi = vmlal_high_s8(hi, x, tap);
        if (++pending == chunk) {
          s0 = vaddw_s16(s0, vget_low_s16(lo));
          s1 = vaddw_high_s16(s1, lo);
          s2 = vaddw_s16(s2, vget_low_s16(hi));
          s3 = vaddw_high_s16(s3, hi);
          lo = hi = vdupq_n_s16(0);
          pending = 0;
        }
      }
    }
    vst1q_s32(acc + ox, vaddw_s16(s0, vget_low_s16(lo)));
    vst1q_s32(acc + ox + 4, vaddw_high_s16(s1, lo));
    vst1q_s32(acc + ox + 8, vaddw_s16(s2, vget_low_s16(hi)));
    vst1q_s32(acc + ox + 12, vaddw_high_s16(s3, hi));
  }
}

namespace {

// 10·q without a 64-bit vector multiply.
inline int64x2_t times10(int64x2_t q) {
  return vaddq_s64(vshlq_n_s64(q, 3), vshlq_n_s64(q, 1));
}

// floor(t / 10) for any int64 t: a double estimate (off by a few hundred at most for |t| near
// 2^62), then the exact remainder r = t − 10·q0 is small enough for an exact second step.
inline int64x2_t floor_div10(int64x2_t t) {
  const float64x2_t ten = vdupq_n_f64(10.0);
  const int64x2_t q0 = vcvtq_s64_f64(vrndmq_f64(vdivq_f64(vcvtq_f64_s64(t), ten)));
  const int64x2_t r = vsubq_s64(t, times10(q0));
  return vaddq_s64(q0, vcvtq_s64_f64(vrndmq_f64(vdivq_f64(vcvtq_f64_s64(r), ten))));
}

inline int64x2_t activate(int64x2_t t, ops::Activation activation) {
  if (activation == ops::Activation::Relu) return vbicq_s64(t, vshrq_n_s64(t, 63));
  if (activation == ops::Activation::Leaky &&
      (vgetq_lane_s64(t, 0) < 0 || vgetq_lane_s64(t, 1) < 0))
    return vbslq_s64(vcltzq_s64(t), floor_div10(t), t);
  return t;
}

// clamp(zero + round_shift(t, S), 0, 255) for four values: SRSHL by −S is the contract's
// (t + 2^(S−1)) >> S, the saturating narrows clamp (int32, then 0..65535; 0..255 comes last).
inline uint16x4_t shift_clamp4(int64x2_t t0, int64x2_t t1, int64x2_t neg_shift, int32x4_t zero) {
  const int32x4_t q =
      vcombine_s32(vqmovn_s64(vrshlq_s64(t0, neg_shift)), vqmovn_s64(vrshlq_s64(t1, neg_shift)));
  return vqmovun_s32(vqaddq_s32(q, zero));
}

}  // namespace

void floor_div10_neon(const std::int64_t* t, std::int64_t* q) {
  vst1q_s64(q, floor_div10(vld1q_s64(t)));
}

// The integer epilogue eight pixels at a time in int64 lanes: SMLAL (32 → 64 bits) multiplies
// the exact int32 accumulator by M_v (|M_v| < 2^31) into an exact int64 sum. Remainders of
// fewer than eight pixels go to the scalar epilogue.
void epilogue_neon(const PackedConv::Epilogue& e, int oc, const std::int32_t* acc,
                   std::size_t acc_stride, int n, std::uint8_t* out, std::int32_t* head) {
  const int v0 = e.first_virtual[oc], nv = e.first_virtual[oc + 1] - v0;
  const int64x2_t bias = vdupq_n_s64(e.bias[oc]);
  const int64x2_t neg_shift = vdupq_n_s64(-e.shift);
  // round_shift(t, S − 8) for S >= 8, t << (8 − S) below: SRSHL by 8 − S does both.
  const int64x2_t head_shift = vdupq_n_s64(ops::kHeadFractionBits - e.shift);
  const int32x4_t zy = vdupq_n_s32(e.out_zero_point);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    int64x2_t t[4] = {bias, bias, bias, bias};
    for (int j = 0; j < nv; ++j) {
      const std::int32_t* aj = acc + j * acc_stride + i;
      const int32x4_t zs = vdupq_n_s32(e.zero_sums[v0 + j]);
      const int32x4_t m = vdupq_n_s32(static_cast<std::int32_t>(e.multipliers[v0 + j]));
      const int32x4_t a0 = vsubq_s32(vld1q_s32(aj), zs), a1 = vsubq_s32(vld1q_s32(aj + 4), zs);
      t[0] = vmlal_s32(t[0], vget_low_s32(a0), vget_low_s32(m));
      t[1] = vmlal_high_s32(t[1], a0, m);
      t[2] = vmlal_s32(t[2], vget_low_s32(a1), vget_low_s32(m));
      t[3] = vmlal_high_s32(t[3], a1, m);
    }
    for (auto& v : t) v = activate(v, e.activation);
    vst1_u8(out + i, vqmovn_u16(vcombine_u16(shift_clamp4(t[0], t[1], neg_shift, zy),
                                             shift_clamp4(t[2], t[3], neg_shift, zy))));
    if (head)
      for (int h = 0; h < 2; ++h)
        vst1q_s32(head + i + 4 * h, vcombine_s32(vqmovn_s64(vrshlq_s64(t[2 * h], head_shift)),
                                                 vqmovn_s64(vrshlq_s64(t[2 * h + 1], head_shift))));
  }
  if (i < n) epilogue_scalar(e, oc, acc + i, acc_stride, n - i, out + i, head ? head + i : nullptr);
}

namespace {

// Eight codes minus their zero point, as int32 (low and high four).
inline int32x4x2_t centered8(const std::uint8_t* p, int zero) {
  const int16x8_t x =
      vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vld1_u8(p))), vdupq_n_s16(static_cast<short>(zero)));
  return {{vmovl_s16(vget_low_s16(x)), vmovl_high_s16(x)}};
}

inline void store8(std::uint8_t* out, const int64x2_t (&t)[4], ops::Activation activation,
                   int shift, int zero) {
  const int64x2_t neg_shift = vdupq_n_s64(-shift);
  const int32x4_t zy = vdupq_n_s32(zero);
  int64x2_t v[4];
  for (int k = 0; k < 4; ++k) v[k] = activate(t[k], activation);
  vst1_u8(out, vqmovn_u16(vcombine_u16(shift_clamp4(v[0], v[1], neg_shift, zy),
                                       shift_clamp4(v[2], v[3], neg_shift, zy))));
}

}  // namespace

void add_u8_neon(const std::uint8_t* a, int a_zero, std::int64_t a_multiplier,
                 const std::uint8_t* b, int b_zero, std::int64_t b_multiplier, std::size_t n,
                 int shift, ops::Activation activation, int out_zero, std::uint8_t* out) {
  const int32x4_t ma = vdupq_n_s32(static_cast<std::int32_t>(a_multiplier));
  const int32x4_t mb = vdupq_n_s32(static_cast<std::int32_t>(b_multiplier));
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int32x4x2_t xa = centered8(a + i, a_zero), xb = centered8(b + i, b_zero);
    const int64x2_t t[4] = {vmlal_s32(vmull_s32(vget_low_s32(xa.val[0]), vget_low_s32(ma)),
                                      vget_low_s32(xb.val[0]), vget_low_s32(mb)),
                            vmlal_high_s32(vmull_high_s32(xa.val[0], ma), xb.val[0], mb),
                            vmlal_s32(vmull_s32(vget_low_s32(xa.val[1]), vget_low_s32(ma)),
                                      vget_low_s32(xb.val[1]), vget_low_s32(mb)),
                            vmlal_high_s32(vmull_high_s32(xa.val[1], ma), xb.val[1], mb)};
    store8(out + i, t, activation, shift, out_zero);
  }
  for (; i < n; ++i) {
    const std::int64_t t =
        std::int64_t{a[i] - a_zero} * a_multiplier + std::int64_t{b[i] - b_zero} * b_multiplier;
    out[i] =
        ops::saturate_u8(out_zero + ops::round_shift(ops::activate_fixed(t, activation), shift));
  }
}

void requantize_u8_neon(const std::uint8_t* in, int in_zero, std::int64_t multiplier, std::size_t n,
                        int shift, int out_zero, std::uint8_t* out) {
  const int32x4_t m = vdupq_n_s32(static_cast<std::int32_t>(multiplier));
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int32x4x2_t x = centered8(in + i, in_zero);
    const int64x2_t t[4] = {
        vmull_s32(vget_low_s32(x.val[0]), vget_low_s32(m)), vmull_high_s32(x.val[0], m),
        vmull_s32(vget_low_s32(x.val[1]), vget_low_s32(m)), vmull_high_s32(x.val[1], m)};
    store8(out + i, t, ops::Activation::Linear, shift, out_zero);
  }
  for (; i < n; ++i)
    out[i] = ops::saturate_u8(out_zero +
                              ops::round_shift(std::int64_t{in[i] - in_zero} * multiplier, shift));
}

}  // namespace mpdet::cpu

#endif  // MPDET_CPU_ARM
