#include "quant/equalization.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "mpdet/error.h"

namespace mpdet::quant {
namespace {

using model::LayerKind;

// The single convolution that reads layer `a`'s output, or -1 when there is none, several readers,
// or `a` is a network output.
std::vector<int> sole_conv_reader(const model::Model& m) {
  const std::size_t n = m.layers.size();
  std::vector<int> readers(n, 0), reader(n, -1);
  for (std::size_t i = 1; i < n; ++i)
    for (int in : m.layers[i].inputs) {
      ++readers[in];
      reader[in] = static_cast<int>(i);
    }
  for (int out : m.outputs) readers[out] += 2;
  for (std::size_t i = 0; i < n; ++i)
    if (readers[i] != 1 || m.layers[reader[i]].kind != LayerKind::Conv2d) reader[i] = -1;
  return reader;
}

bool homogeneous(model::Activation a) {
  return a == model::Activation::Linear || a == model::Activation::Relu ||
         a == model::Activation::Leaky;
}

}  // namespace

std::vector<std::vector<float>> equalization_scales(
    const model::Model& m, const std::vector<std::vector<float>>& channel_max) {
  if (m.quantized) throw Error("cross-layer equalization needs the float model");
  if (channel_max.size() != m.layers.size())
    throw Error("per-channel ranges belong to another model");
  std::vector<std::vector<float>> scales(m.layers.size());
  const std::vector<int> reader = sole_conv_reader(m);
  for (std::size_t a = 1; a < m.layers.size(); ++a) {
    const model::Layer& A = m.layers[a];
    if (A.kind != LayerKind::Conv2d || reader[a] < 0 || !homogeneous(A.activation)) continue;
    const model::Layer& B = m.layers[reader[a]];
    const int channels = A.conv.out_channels;
    const std::vector<float>& r = channel_max[a];
    if (static_cast<int>(r.size()) != channels)
      throw Error("per-channel ranges of layer '" + A.name + "' have the wrong size");
    const float r_max = *std::max_element(r.begin(), r.end());
    if (!(r_max > 0) || !std::isfinite(r_max)) continue;
    const bool depthwise = B.conv.groups == channels && B.conv.out_channels == channels;
    // Column ranges of B: w_c = max |W_B[o, c mod icg, :, :]| over the outputs o of c's group.
    const std::vector<float>& wb = m.tensors[B.weight_tensor].data;
    const int icg = channels / B.conv.groups, ocg = B.conv.out_channels / B.conv.groups;
    const int kk = B.conv.kernel * B.conv.kernel;
    std::vector<double> s(channels, 1.0);
    for (int c = 0; c < channels; ++c) {
      if (!(r[c] > 1e-6f * r_max)) continue;  // dead channel: leave it
      if (depthwise) {
        s[c] = double(r[c]) / r_max;
        continue;
      }
      double w = 0;
      const int g = c / icg;
      for (int o = g * ocg; o < (g + 1) * ocg; ++o)
        for (int t = 0; t < kk; ++t)
          w = std::max(
              w, double(std::abs(wb[(static_cast<std::size_t>(o) * icg + c % icg) * kk + t])));
      if (w > 0) s[c] = std::sqrt(double(r[c]) / w);
    }
    if (!depthwise) {  // keep the largest range: k = max_c (r_c / s_c) / r_max
      double largest = 0;
      for (int c = 0; c < channels; ++c) largest = std::max(largest, r[c] / s[c]);
      if (largest > 0)
        for (int c = 0; c < channels; ++c)
          if (r[c] > 1e-6f * r_max) s[c] *= largest / r_max;
    }
    std::vector<float>& out = scales[a];
    out.resize(channels);
    for (int c = 0; c < channels; ++c) out[c] = static_cast<float>(std::clamp(s[c], 1e-4, 1e4));
  }
  return scales;
}

model::Model apply_equalization(const model::Model& float_model,
                                const std::vector<std::vector<float>>& scales) {
  if (scales.empty()) return float_model;
  if (scales.size() != float_model.layers.size())
    throw Error("equalization scales belong to another model");
  model::Model m = float_model;
  const std::vector<int> reader = sole_conv_reader(m);
  for (std::size_t a = 1; a < m.layers.size(); ++a) {
    if (scales[a].empty()) continue;
    const model::Layer& A = m.layers[a];
    if (A.kind != LayerKind::Conv2d || reader[a] < 0 || !homogeneous(A.activation) ||
        static_cast<int>(scales[a].size()) != A.conv.out_channels)
      throw Error("equalization scales do not fit layer '" + A.name + "'");
    const model::Layer& B = m.layers[reader[a]];
    std::vector<float>& wa = m.tensors[A.weight_tensor].data;
    std::vector<float>& ba = m.tensors[A.bias_tensor].data;
    std::vector<float>& wb = m.tensors[B.weight_tensor].data;
    const int channels = A.conv.out_channels;
    const std::size_t row = wa.size() / channels;
    const int icg = channels / B.conv.groups, ocg = B.conv.out_channels / B.conv.groups;
    const int kk = B.conv.kernel * B.conv.kernel;
    for (int c = 0; c < channels; ++c) {
      const float s = scales[a][c];
      if (!(s > 0) || !std::isfinite(s)) throw Error("equalization scale must be positive");
      for (std::size_t k = 0; k < row; ++k) wa[c * row + k] /= s;
      ba[c] /= s;
      const int g = c / icg;
      for (int o = g * ocg; o < (g + 1) * ocg; ++o)
        for (int t = 0; t < kk; ++t)
          wb[(static_cast<std::size_t>(o) * icg + c % icg) * kk + t] *= s;
    }
  }
  return m;
}

}  // namespace mpdet::quant
