#include "ops/integer_arithmetic.h"

#include <algorithm>
#include <cmath>

#include "mpdet/error.h"

namespace mpdet::ops {

int choose_shift(std::span<const double> ratios, std::span<const double> max_abs_terms,
                 std::span<const double> bias_ratios, std::span<const int> terms_per_output) {
  // Worst case |t| for output c: Σ over its terms |ratio|·2^S·max|term| + |bias|·2^S. With several
  // outputs, the largest such sum bounds them all.
  double worst_unit = 0, largest_ratio = 0;
  std::size_t term = 0;
  for (std::size_t c = 0; c < terms_per_output.size(); ++c) {
    double sum = c < bias_ratios.size() ? std::abs(bias_ratios[c]) : 0.0;
    for (int k = 0; k < terms_per_output[c]; ++k, ++term) {
      sum += std::abs(ratios[term]) * max_abs_terms[term] + std::abs(ratios[term]);
      largest_ratio = std::max(largest_ratio, std::abs(ratios[term]));
    }
    worst_unit = std::max(worst_unit, sum);
  }
  for (int s = kMaxShift; s > 0; --s) {
    const double scale = std::ldexp(1.0, s);
    if (largest_ratio * scale < 2147483647.0 && worst_unit * scale < 4.0e18) return s;
  }
  if (largest_ratio >= 2147483647.0 || worst_unit >= 4.0e18)
    throw Error("quantization parameters out of range (a requantization multiplier overflows)");
  return 0;
}

Requantization conv_requantization(std::span<const float> point_scales,
                                   std::span<const std::int8_t> point_weights,
                                   std::span<const int> points, std::span<const float> bias,
                                   QuantParams input, QuantParams output) {
  const std::size_t virtual_channels = point_scales.size();
  const std::size_t per_channel = virtual_channels ? point_weights.size() / virtual_channels : 0;
  std::vector<double> ratios(virtual_channels), max_terms(virtual_channels),
      bias_ratios(bias.size());
  for (std::size_t v = 0; v < virtual_channels; ++v) {
    ratios[v] = double(point_scales[v]) * input.scale / output.scale;
    double sum_abs = 0;
    for (std::size_t k = 0; k < per_channel; ++k)
      sum_abs += std::abs(point_weights[v * per_channel + k]);
    max_terms[v] = sum_abs * 255.0;  // |x − z| ≤ 255
  }
  for (std::size_t c = 0; c < bias.size(); ++c) bias_ratios[c] = double(bias[c]) / output.scale;
  Requantization r;
  r.shift = choose_shift(ratios, max_terms, bias_ratios, points);
  const double scale = std::ldexp(1.0, r.shift);
  for (double ratio : ratios) r.multipliers.push_back(std::llround(ratio * scale));
  for (double b : bias_ratios) r.bias.push_back(std::llround(b * scale));
  return r;
}

Requantization elementwise_requantization(std::span<const QuantParams> inputs, QuantParams output) {
  std::vector<double> ratios, max_terms;
  for (const QuantParams& in : inputs) {
    ratios.push_back(double(in.scale) / output.scale);
    max_terms.push_back(255.0);
  }
  // Add sums all inputs into one t; concat uses one at a time. The sum is the safe bound for both.
  const int all = static_cast<int>(inputs.size());
  Requantization r;
  r.shift = choose_shift(ratios, max_terms, {}, std::span<const int>(&all, 1));
  const double scale = std::ldexp(1.0, r.shift);
  for (double ratio : ratios) r.multipliers.push_back(std::llround(ratio * scale));
  return r;
}

QuantParams quant_params_for_range(float lo, float hi) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  if (!(hi - lo > 1e-12f) || !std::isfinite(hi - lo))
    return {1e-6f, static_cast<int>(lo < 0 ? 255 : 0)};
  const float scale = (hi - lo) / 255.0f;
  const int zero_point = static_cast<int>(std::clamp<long>(std::lround(-lo / scale), 0, 255));
  return {scale, zero_point};
}

}  // namespace mpdet::ops
