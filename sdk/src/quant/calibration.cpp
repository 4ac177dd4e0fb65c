#include "quant/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "mpdet/error.h"
#include "runtime/reference_backend.h"

namespace mpdet::quant {
namespace {

using model::LayerKind;

// Adds x xᵀ for the patches of `layer` at a few random output positions.
void accumulate_gram(const model::Model& m, const model::Layer& layer, std::span<const float> input,
                     int samples, std::mt19937& rng, ConvGram& gram) {
  const ops::Shape& in = m.layers[layer.inputs[0]].output;
  const ops::ConvParams& p = layer.conv;
  const int in_per_group = in.channels / p.groups;
  std::vector<double> patch(gram.taps);
  std::uniform_int_distribution<int> pick_y(0, layer.output.height - 1),
      pick_x(0, layer.output.width - 1);
  for (int s = 0; s < samples; ++s) {
    const int oy = pick_y(rng), ox = pick_x(rng);
    for (int g = 0; g < p.groups; ++g) {
      int t = 0;
      for (int icg = 0; icg < in_per_group; ++icg)
        for (int ky = 0; ky < p.kernel; ++ky)
          for (int kx = 0; kx < p.kernel; ++kx, ++t) {
            const int iy = oy * p.stride + ky - p.pad, ix = ox * p.stride + kx - p.pad;
            const bool inside = iy >= 0 && iy < in.height && ix >= 0 && ix < in.width;
            patch[t] =
                inside ? input[(static_cast<std::size_t>(g * in_per_group + icg) * in.height + iy) *
                                   in.width +
                               ix]
                       : 0.0;
          }
      double* sum = gram.sums.data() + static_cast<std::size_t>(g) * gram.taps;
      for (int a = 0; a < gram.taps; ++a) sum[a] += patch[a];
      double* G = gram.values.data() + static_cast<std::size_t>(g) * gram.taps * gram.taps;
      for (int a = 0; a < gram.taps; ++a) {
        const double pa = patch[a];
        if (pa == 0.0) continue;
        double* row = G + static_cast<std::size_t>(a) * gram.taps;
        for (int b = a; b < gram.taps; ++b)
          row[b] += pa * patch[b];  // upper triangle; mirrored at the end
      }
    }
  }
  gram.samples += samples;
}

}  // namespace

CalibrationData calibrate(const model::Model& m, std::size_t input_count,
                          const std::function<void(std::size_t, std::vector<float>&)>& load_input,
                          const CalibrationOptions& options) {
  if (m.quantized) throw Error("calibration needs the float model");
  if (input_count == 0) throw Error("calibration needs at least one image");
  const std::size_t n_layers = m.layers.size();
  CalibrationData data;
  data.images = input_count;
  data.min.assign(n_layers, std::numeric_limits<float>::infinity());
  data.max.assign(n_layers, -std::numeric_limits<float>::infinity());
  data.histograms.resize(n_layers);
  data.grams.resize(n_layers);
  // Convolutions grouped by the layer they read, so a layer's output is sampled while it is live.
  std::vector<std::vector<int>> convs_reading(n_layers);
  for (std::size_t i = 1; i < n_layers; ++i) {
    const model::Layer& l = m.layers[i];
    if (l.kind != LayerKind::Conv2d) continue;
    convs_reading[l.inputs[0]].push_back(static_cast<int>(i));
    ConvGram& g = data.grams[i];
    g.groups = l.conv.groups;
    g.taps = m.layers[l.inputs[0]].output.channels / l.conv.groups * l.conv.kernel * l.conv.kernel;
    g.values.assign(static_cast<std::size_t>(g.groups) * g.taps * g.taps, 0.0);
    g.sums.assign(static_cast<std::size_t>(g.groups) * g.taps, 0.0);
  }

  runtime::ReferenceBackend backend(m);
  std::vector<float> input(m.input_shape().elements());
  // Pass 1: ranges.
  backend.set_layer_observer([&](int layer, std::span<const float> values) {
    auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    data.min[layer] = std::min(data.min[layer], *lo);
    data.max[layer] = std::max(data.max[layer], *hi);
  });
  for (std::size_t i = 0; i < input_count; ++i) {
    load_input(i, input);
    backend.run(input);
    if (options.progress) options.progress("ranges", i + 1, input_count);
  }
  for (std::size_t l = 0; l < n_layers; ++l)
    data.histograms[l].emplace(std::min(data.min[l], 0.0f),
                               std::max({data.max[l], 0.0f, std::min(data.min[l], 0.0f) + 1e-6f}));

  // Pass 2: histograms and Gram matrices.
  std::mt19937 rng(options.seed);
  backend.set_layer_observer([&](int layer, std::span<const float> values) {
    data.histograms[layer]->add(values.data(), values.size());
    for (int conv : convs_reading[layer])
      accumulate_gram(m, m.layers[conv], values, options.patches_per_image, rng, data.grams[conv]);
  });
  for (std::size_t i = 0; i < input_count; ++i) {
    load_input(i, input);
    backend.run(input);
    if (options.progress) options.progress("statistics", i + 1, input_count);
  }
  for (ConvGram& g : data.grams)
    for (int grp = 0; grp < g.groups; ++grp) {
      double* G = g.values.data() + static_cast<std::size_t>(grp) * g.taps * g.taps;
      for (int a = 0; a < g.taps; ++a)
        for (int b = 0; b < a; ++b) G[a * g.taps + b] = G[b * g.taps + a];
    }
  return data;
}

}  // namespace mpdet::quant
