// The integer arithmetic contract of quantized mpdet models. Every backend (reference, NEON,
// x86, Vulkan) must produce exactly these results; this header is the single definition.
//
// Activations: uint8 codes q with a per-tensor scale s > 0 and zero point z in [0, 255]:
//   real value = s · (q − z).
// Weights: signed b-bit integers in [−(2^(b−1) − 1), 2^(b−1) − 1], b in {2, 3, 4, 8}. An output
//   channel c with n_c points owns n_c consecutive virtual channels v, each with a float scale a_v:
//   w_c ≈ Σ_v a_v · q_v.
//
// Convolution, per virtual channel v (int32, exact):
//   acc_v = Σ_{i, ky, kx} q_v[i, ky, kx] · (x[i, oy·stride + ky − pad, ox·stride + kx − pad] − z_x)
//   taps outside the input contribute 0 (padding is the real value 0).
// Epilogue, per output channel c (int64, exact):
//   t = Σ_{v of c} acc_v · M_v + B_c
//   M_v = llround(a_v · s_x / s_y · 2^S),  B_c = llround(bias_c / s_y · 2^S)   (computed in double)
//   activation on t: linear: t; relu: max(t, 0); leaky (slope 1/10): t ≥ 0 ? t : floor(t / 10)
//   q_y = clamp(z_y + round_shift(t, S), 0, 255),  round_shift(t, S) = (t + 2^(S−1)) >> S for S > 0
//   (arithmetic shift: rounds halves up), t for S = 0.
//   S is chosen per layer (choose_shift): as large as possible, at most 40, with every |M_v| < 2^31
//   and the worst case |t| < 2^62, so nothing overflows.
// Add (shortcut): t = (q_a − z_a)·M_a + (q_b − z_b)·M_b with M = llround(s_in / s_y · 2^S), then
// the
//   activation and q_y as above.
// Concat: each input is requantized alone: q_y = clamp(z_y + round_shift((q_i − z_i)·M_i, S), 0,
// 255). Max pooling and nearest upsampling work on the codes; their output shares the input's s and
// z. Network input: q = clamp(floor(x · inv_s + 0.5) + z, 0, 255) in float, inv_s = float(1 / s).
// Network outputs (detection heads) skip the uint8 rounding: a head convolution also yields
//   h = clamp(round_shift(t, S − 8), int32)   (t << (8 − S) when S < 8)
// i.e. its value in units of s_y / 256, and the float output is float(h) · float(s_y / 256).
// Eight more bits of logit precision keep low-confidence scores distinct, which VOC mAP measures.
#pragma once

#include <climits>
#include <cstdint>
#include <span>
#include <vector>

#include "ops/op_params.h"

namespace mpdet::ops {

struct QuantParams {
  float scale = 1.0f;
  int zero_point = 0;
  bool operator==(const QuantParams&) const = default;
};

inline constexpr int kMaxShift = 40;

inline std::int64_t round_shift(std::int64_t t, int shift) {
  return shift > 0 ? (t + (std::int64_t{1} << (shift - 1))) >> shift : t;
}

inline std::int64_t floor_div10(std::int64_t t) {
  return t >= 0 ? t / 10 : -((-t + 9) / 10);
}

inline std::int64_t activate_fixed(std::int64_t t, Activation a) {
  switch (a) {
    case Activation::Relu:
      return t > 0 ? t : 0;
    case Activation::Leaky:
      return t >= 0 ? t : floor_div10(t);
    case Activation::Linear:
      break;
  }
  return t;
}

inline std::uint8_t saturate_u8(std::int64_t v) {
  return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

inline constexpr int kHeadFractionBits = 8;

inline std::int32_t head_code(std::int64_t t, int shift) {
  const std::int64_t h = shift >= kHeadFractionBits
                             ? round_shift(t, shift - kHeadFractionBits)
                             : t * (std::int64_t{1} << (kHeadFractionBits - shift));
  return static_cast<std::int32_t>(h < INT32_MIN ? INT32_MIN : h > INT32_MAX ? INT32_MAX : h);
}

inline std::uint8_t quantize_input(float x, float inv_scale, int zero_point) {
  const float scaled = x * inv_scale + 0.5f;
  // Clamp in float first so the conversion to integer is always defined.
  const float clamped = scaled < -1024.0f ? -1024.0f : scaled > 1024.0f ? 1024.0f : scaled;
  return saturate_u8(static_cast<std::int64_t>(__builtin_floorf(clamped)) + zero_point);
}

// Fixed-point parameters of one layer's epilogue, derived from the model's float parameters.
struct Requantization {
  int shift = 0;
  std::vector<std::int64_t> multipliers;  // conv: per virtual channel; add/concat: per input
  std::vector<std::int64_t> bias;         // conv: per output channel
};

// Picks S (see above): `ratios` are the real multipliers (a_v·s_x/s_y or s_in/s_y), `max_abs_terms`
// bound |acc_v| (or |q − z|) for each, `bias_ratios` are bias_c / s_y.
int choose_shift(std::span<const double> ratios, std::span<const double> max_abs_terms,
                 std::span<const double> bias_ratios, std::span<const int> terms_per_output);

// Conv epilogue. point_weights: [V][K] codes; points: n_c per output channel.
Requantization conv_requantization(std::span<const float> point_scales,
                                   std::span<const std::int8_t> point_weights,
                                   std::span<const int> points, std::span<const float> bias,
                                   QuantParams input, QuantParams output);

// Add / concat: one multiplier per input.
Requantization elementwise_requantization(std::span<const QuantParams> inputs, QuantParams output);

// The uint8 range [lo, hi] (lo ≤ 0 ≤ hi) as scale and zero point.
QuantParams quant_params_for_range(float lo, float hi);

}  // namespace mpdet::ops
