// Float model + calibration data -> quantized model (uint8 activations, b-bit weights, naive or
// multipoint), with a report of what it cost and how close it stays.
#pragma once

#include <string>
#include <vector>

#include "model/graph.h"
#include "quant/activation_range.h"
#include "quant/calibration.h"

namespace mpdet::quant {

enum class WeightMethod { Naive, Multipoint };
WeightMethod parse_weight_method(const std::string& name);  // "naive" | "multipoint"

// How multipoint rounds each point: to nearest (minimises the weight error), or with error
// feedback on the calibration Gram matrix (minimises the output error; OutputMetric).
enum class WeightRounding { Nearest, Feedback };
WeightRounding parse_weight_rounding(const std::string& name);  // "nearest" | "feedback"

struct QuantizeOptions {
  WeightMethod method = WeightMethod::Multipoint;
  int weight_bits = 4;
  double budget = 1.25;  // multipoint: average points per weight, weighted by MACs
  int max_points = 4;    // multipoint: most points one channel may get
  RangeMethod activation_range = RangeMethod::Percentile;  // measured best on VOC dev
  double percentile = 0.01;  // Percentile: % of values clipped at each end
  WeightRounding rounding = WeightRounding::Feedback;  // multipoint only
  // Layers kept at 8-bit weights (one point): the first convolution and the detection heads.
  bool first_last_8bit = true;
  // Adds E[x]ᵀ(w − ŵ) to each bias, so weight rounding does not shift the output mean.
  bool bias_correction = true;
};

struct LayerReport {
  int layer = 0;
  std::string name;
  int weight_bits = 0;
  int out_channels = 0;
  int virtual_channels = 0;
  std::vector<int> points_histogram;  // [n] = channels with n points (index 0 unused)
  double output_sqnr_db = 0;          // weight quantization only, on calibration inputs
  double seconds = 0;
  std::int64_t macs = 0;  // float MACs (one point per weight)
};

struct QuantizeReport {
  double points_per_weight = 1.0;  // Σ executed MACs / Σ float MACs over convolutions
  std::size_t model_bytes = 0;     // filled by the caller after writing
  double seconds = 0;
  std::vector<LayerReport> layers;
};

model::Model quantize_model(const model::Model& float_model, const CalibrationData& calibration,
                            const QuantizeOptions& options, QuantizeReport* report = nullptr);

}  // namespace mpdet::quant
