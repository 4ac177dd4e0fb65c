// Calibration: runs the float model over preprocessed calibration inputs and collects what the
// quantizers need: per-layer output ranges and histograms (activation clipping), and for every
// convolution the Gram matrix of its input patches (output error of weight quantization).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "model/graph.h"
#include "quant/activation_range.h"

namespace mpdet::quant {

struct CalibrationOptions {
  int patches_per_image = 32;  // output positions sampled per image for the Gram matrices
  unsigned seed = 1;
  // Images are spread over this many threads (one float reference backend each). Patch sampling
  // is seeded per image, so the samples do not depend on the thread count; the Gram sums are added
  // in a different order, which changes only their last bits.
  int threads = 1;
  bool ranges_only = false;  // only the first pass (min, max, channel_max)
  std::function<void(const char* stage, std::size_t done, std::size_t total)> progress;
};

// Σ x xᵀ over sampled input patches of one convolution, one matrix per group.
struct ConvGram {
  int groups = 0;
  int taps = 0;                // (in / groups) · k · k
  std::vector<double> values;  // [groups][taps][taps], symmetric
  std::vector<double> sums;    // [groups][taps]: Σ x, for the mean input patch (bias correction)
  std::size_t samples = 0;
  std::span<const double> patch_sum(int g) const {
    return {sums.data() + static_cast<std::size_t>(g) * taps, static_cast<std::size_t>(taps)};
  }
  std::span<const double> group(int g) const {
    return {values.data() + static_cast<std::size_t>(g) * taps * taps,
            static_cast<std::size_t>(taps) * taps};
  }
};

struct CalibrationData {
  std::size_t images = 0;
  std::vector<float> min, max;                       // per layer output
  std::vector<std::vector<float>> channel_max;       // per layer output, per channel: max |x|
  std::vector<std::optional<Histogram>> histograms;  // per layer output
  std::vector<ConvGram> grams;                       // per layer (empty unless Conv2d)
  // Cross-layer equalization applied to the float model before these statistics were collected
  // (quant/equalization.h): per layer, the scale of each output channel; empty when none.
  std::vector<std::vector<float>> equalization;
};

// Memory is bounded by the model, not the number of images: inputs are visited one at a time
// (twice: ranges first, then histograms and Gram matrices). `input_count` inputs are produced by
// `load_input(i, tensor)`, which fills a CHW tensor of the model's input shape; with more than one
// thread it is called concurrently (for different i) and must be thread-safe. `progress` is called
// from one thread at a time.
CalibrationData calibrate(const model::Model& float_model, std::size_t input_count,
                          const std::function<void(std::size_t, std::vector<float>&)>& load_input,
                          const CalibrationOptions& options);

}  // namespace mpdet::quant
