#include "quant/calibration.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

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

// Runs `work(thread, image)` for every image over `threads` threads (image order per thread is
// increasing); the first exception stops the others and is rethrown.
void for_each_image(std::size_t count, int threads,
                    const std::function<void(int, std::size_t)>& work) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&](int t) {
    try {
      while (!failed) {
        const std::size_t i = next++;
        if (i >= count) break;
        work(t, i);
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (std::thread& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

CalibrationData calibrate(const model::Model& m, std::size_t input_count,
                          const std::function<void(std::size_t, std::vector<float>&)>& load_input,
                          const CalibrationOptions& options) {
  if (m.quantized) throw Error("calibration needs the float model");
  if (input_count == 0) throw Error("calibration needs at least one image");
  if (options.threads < 1) throw Error("calibration needs at least one thread");
  const std::size_t n_layers = m.layers.size();
  const int threads = static_cast<int>(std::min<std::size_t>(options.threads, input_count));
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

  // Per-thread state: a backend, an input tensor and partial statistics, merged at the end.
  struct Worker {
    std::unique_ptr<runtime::ReferenceBackend> backend;
    std::vector<float> input;
    std::vector<float> min, max;
    std::vector<std::vector<float>> channel_max;
    std::vector<std::optional<Histogram>> histograms;
    std::vector<ConvGram> grams;
    std::mt19937 rng;
  };
  std::vector<Worker> workers(threads);
  for (Worker& w : workers) {
    w.backend = std::make_unique<runtime::ReferenceBackend>(m);
    w.input.resize(m.input_shape().elements());
    w.min = data.min;
    w.max = data.max;
    w.channel_max.resize(n_layers);
    for (std::size_t l = 0; l < n_layers; ++l)
      w.channel_max[l].assign(static_cast<std::size_t>(m.layers[l].output.channels), 0.0f);
  }
  std::mutex progress_mutex;
  std::size_t done = 0;
  auto report = [&](const char* stage) {
    if (!options.progress) return;
    std::lock_guard lock(progress_mutex);
    options.progress(stage, ++done, input_count);
  };

  // Pass 1: ranges.
  for (Worker& w : workers)
    w.backend->set_layer_observer([&w](int layer, std::span<const float> values) {
      auto [lo, hi] = std::minmax_element(values.begin(), values.end());
      w.min[layer] = std::min(w.min[layer], *lo);
      w.max[layer] = std::max(w.max[layer], *hi);
      std::vector<float>& cmax = w.channel_max[layer];
      const std::size_t plane = values.size() / cmax.size();
      for (std::size_t c = 0; c < cmax.size(); ++c)
        for (std::size_t k = c * plane; k < (c + 1) * plane; ++k)
          cmax[c] = std::max(cmax[c], std::abs(values[k]));
    });
  for_each_image(input_count, threads, [&](int t, std::size_t i) {
    load_input(i, workers[t].input);
    workers[t].backend->run(workers[t].input);
    report("ranges");
  });
  data.channel_max = workers[0].channel_max;
  for (const Worker& w : workers)
    for (std::size_t l = 0; l < n_layers; ++l) {
      data.min[l] = std::min(data.min[l], w.min[l]);
      data.max[l] = std::max(data.max[l], w.max[l]);
      for (std::size_t c = 0; c < w.channel_max[l].size(); ++c)
        data.channel_max[l][c] = std::max(data.channel_max[l][c], w.channel_max[l][c]);
    }
  if (options.ranges_only) return data;
  for (std::size_t l = 0; l < n_layers; ++l)
    data.histograms[l].emplace(std::min(data.min[l], 0.0f),
                               std::max({data.max[l], 0.0f, std::min(data.min[l], 0.0f) + 1e-6f}));

  // Pass 2: histograms and Gram matrices. The patch positions of image i come from a generator
  // seeded with (seed, i).
  for (Worker& w : workers) {
    w.histograms = data.histograms;
    w.grams = data.grams;
    w.backend->set_layer_observer([&w, &m, &convs_reading, &options](
                                      int layer, std::span<const float> values) {
      w.histograms[layer]->add(values.data(), values.size());
      for (int conv : convs_reading[layer])
        accumulate_gram(m, m.layers[conv], values, options.patches_per_image, w.rng, w.grams[conv]);
    });
  }
  done = 0;
  for_each_image(input_count, threads, [&](int t, std::size_t i) {
    Worker& w = workers[t];
    std::seed_seq seq{options.seed, static_cast<unsigned>(i), static_cast<unsigned>(i >> 32)};
    w.rng.seed(seq);
    load_input(i, w.input);
    w.backend->run(w.input);
    report("statistics");
  });
  for (Worker& w : workers) {
    for (std::size_t l = 0; l < n_layers; ++l) {
      data.histograms[l]->merge(*w.histograms[l]);
      ConvGram& g = data.grams[l];
      const ConvGram& wg = w.grams[l];
      for (std::size_t k = 0; k < g.values.size(); ++k) g.values[k] += wg.values[k];
      for (std::size_t k = 0; k < g.sums.size(); ++k) g.sums[k] += wg.sums[k];
      g.samples += wg.samples;
    }
    w = Worker{};  // release the thread's copies early
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
