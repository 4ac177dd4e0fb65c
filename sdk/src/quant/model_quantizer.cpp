#include "quant/model_quantizer.h"

#include <chrono>
#include <cmath>

#include "mpdet/error.h"
#include "quant/weight_quantizer.h"

namespace mpdet::quant {
namespace {

using model::LayerKind;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One convolution's candidate quantizations: the greedy points of every output channel (greedy
// is prefix-consistent, so n points are the first n of the largest construction) and the output
// error after each prefix.
struct ConvCandidates {
  int layer = 0;
  int bits = 0;
  int taps = 0;
  std::vector<std::vector<Point>> points;   // per output channel
  std::vector<std::vector<double>> errors;  // per output channel, per prefix length
  double output_energy = 0;                 // Σ_c w_cᵀ G w_c
  double cost_per_point = 0;                // MACs of one virtual channel
};

ConvCandidates build_candidates(const model::Model& m, int index, const ConvGram& gram, int bits,
                                int max_points, WeightMethod method, WeightRounding rounding) {
  const model::Layer& l = m.layers[index];
  const std::vector<float>& w = m.tensors[l.weight_tensor].data;
  ConvCandidates c;
  c.layer = index;
  c.bits = bits;
  c.taps = gram.taps;
  c.cost_per_point = static_cast<double>(l.output.height) * l.output.width * gram.taps;
  const int out_per_group = l.conv.out_channels / l.conv.groups;
  const bool feedback = method == WeightMethod::Multipoint &&
                        rounding == WeightRounding::Feedback && gram.samples > 0;
  std::vector<OutputMetric> metrics;
  if (feedback)
    for (int g = 0; g < l.conv.groups; ++g)
      metrics.emplace_back(gram.group(g), static_cast<std::size_t>(c.taps));
  for (int oc = 0; oc < l.conv.out_channels; ++oc) {
    const std::span<const float> channel(w.data() + static_cast<std::size_t>(oc) * c.taps, c.taps);
    const std::span<const double> g =
        gram.samples > 0 ? gram.group(oc / out_per_group) : std::span<const double>();
    std::vector<Point> pts =
        method == WeightMethod::Naive ? std::vector<Point>{quantize_naive(channel, bits)}
        : feedback
            ? quantize_multipoint_output(channel, bits, max_points, metrics[oc / out_per_group])
            : quantize_multipoint(channel, bits, max_points);
    std::vector<double> errors;
    std::vector<float> residual(channel.begin(), channel.end());
    for (const Point& p : pts) {
      for (int t = 0; t < c.taps; ++t) residual[t] -= p.scale * p.q[t];
      errors.push_back(output_error(residual, g));
    }
    c.output_energy += output_error(channel, g);
    c.points.push_back(std::move(pts));
    c.errors.push_back(std::move(errors));
  }
  return c;
}

}  // namespace

WeightMethod parse_weight_method(const std::string& name) {
  if (name == "naive") return WeightMethod::Naive;
  if (name == "multipoint") return WeightMethod::Multipoint;
  throw Error("unknown quantization method '" + name + "' (naive or multipoint)");
}

WeightRounding parse_weight_rounding(const std::string& name) {
  if (name == "nearest") return WeightRounding::Nearest;
  if (name == "feedback") return WeightRounding::Feedback;
  throw Error("unknown weight rounding '" + name + "' (nearest or feedback)");
}

model::Model quantize_model(const model::Model& float_model, const CalibrationData& calibration,
                            const QuantizeOptions& options, QuantizeReport* report) {
  const auto start = std::chrono::steady_clock::now();
  const model::Model& m = float_model;
  if (m.quantized) throw Error("the model is already quantized");
  if (options.weight_bits != 2 && options.weight_bits != 3 && options.weight_bits != 4 &&
      options.weight_bits != 8)
    throw Error("weight bits must be 2, 3, 4 or 8");
  if (options.max_points < 1 || options.max_points > 16)
    throw Error("max points must be between 1 and 16");
  if (options.method == WeightMethod::Multipoint && !(options.budget >= 1.0))
    throw Error("the multipoint budget is an average number of points per weight: at least 1");
  if (!(options.percentile >= 0 && options.percentile < 50))
    throw Error("the activation percentile must be in [0, 50) percent");
  if (calibration.grams.size() != m.layers.size())
    throw Error("calibration data belongs to another model");

  model::Model q = m;
  q.quantized = true;
  // Activations: the input grid follows from the preprocessing; pooling and upsampling keep their
  // input's grid (they move codes); everything else gets the calibrated clipping range.
  {
    const auto& pre = m.preprocess;
    const float lo = (0.0f - std::max({pre.mean[0], pre.mean[1], pre.mean[2]})) * pre.scale;
    const float hi = (255.0f - std::min({pre.mean[0], pre.mean[1], pre.mean[2]})) * pre.scale;
    q.layers[0].output_quant = ops::quant_params_for_range(std::min(lo, hi), std::max(lo, hi));
  }
  for (std::size_t i = 1; i < q.layers.size(); ++i) {
    model::Layer& l = q.layers[i];
    if (l.kind == LayerKind::MaxPool || l.kind == LayerKind::Upsample) {
      l.output_quant = q.layers[l.inputs[0]].output_quant;
      continue;
    }
    const Range r = choose_range(*calibration.histograms[i], options.activation_range,
                                 options.percentile / 100.0);
    l.output_quant = ops::quant_params_for_range(r.lo, r.hi);
  }

  // Weights.
  std::vector<bool> is_head(m.layers.size(), false);
  for (int out : m.outputs) is_head[out] = true;
  int first_conv = -1;
  std::vector<ConvCandidates> convs;
  for (std::size_t i = 1; i < m.layers.size(); ++i) {
    if (m.layers[i].kind != LayerKind::Conv2d) continue;
    if (first_conv < 0) first_conv = static_cast<int>(i);
    const bool keep_8bit =
        options.first_last_8bit && (static_cast<int>(i) == first_conv || is_head[i]);
    const int bits = keep_8bit ? 8 : options.weight_bits;
    const int max_points =
        options.method == WeightMethod::Multipoint && !keep_8bit ? options.max_points : 1;
    const auto layer_start = std::chrono::steady_clock::now();
    convs.push_back(build_candidates(m, static_cast<int>(i), calibration.grams[i], bits, max_points,
                                     options.method, options.rounding));
    if (report)
      report->layers.push_back({static_cast<int>(i),
                                m.layers[i].name,
                                bits,
                                m.layers[i].conv.out_channels,
                                0,
                                {},
                                0,
                                seconds_since(layer_start),
                                model::conv_macs(m, m.layers[i])});
  }

  // Points per channel: one each, then the budget goes where the output error falls fastest.
  std::vector<ChannelCandidate> candidates;
  double one_point_cost = 0;
  for (const ConvCandidates& c : convs)
    for (std::size_t oc = 0; oc < c.points.size(); ++oc) {
      one_point_cost += c.cost_per_point;
      candidates.push_back({c.layer, static_cast<int>(oc), c.errors[oc],
                            c.output_energy > 0 ? 1.0 / c.output_energy : 1.0, c.cost_per_point});
    }
  const double budget = options.method == WeightMethod::Multipoint ? options.budget : 1.0;
  const std::vector<int> allocation =
      allocate_points(candidates, budget * one_point_cost * (1 + 1e-12));

  // Build the quantized tensors: float weights are replaced by codes and point scales.
  std::vector<model::Tensor> tensors;
  std::size_t next = 0;
  double executed = 0;
  for (std::size_t ci = 0; ci < convs.size(); ++ci) {
    const ConvCandidates& c = convs[ci];
    model::Layer& l = q.layers[c.layer];
    model::ConvQuantization& wq = l.weight_quant;
    wq.weight_bits = c.bits;
    model::Tensor codes{l.name + ".points", model::DataType::I8, {}, {}, {}, c.bits};
    model::Tensor scales{l.name + ".point_scales", model::DataType::F32, {}, {}, {}, 8};
    double error = 0;
    std::vector<int> histogram(options.max_points + 1, 0);
    for (std::size_t oc = 0; oc < c.points.size(); ++oc, ++next) {
      const int n = allocation[next];
      wq.points.push_back(n);
      ++histogram[n];
      error += c.errors[oc][n - 1];
      for (int k = 0; k < n; ++k) {
        scales.data.push_back(c.points[oc][k].scale);
        codes.codes.insert(codes.codes.end(), c.points[oc][k].q.begin(), c.points[oc][k].q.end());
      }
    }
    const auto& ws = m.tensors[m.layers[c.layer].weight_tensor].shape;
    codes.shape = {wq.virtual_channels(), ws[1], ws[2], ws[3]};
    scales.shape = {wq.virtual_channels()};
    executed += c.cost_per_point * wq.virtual_channels();
    if (report) {
      LayerReport& r = report->layers[ci];
      r.virtual_channels = wq.virtual_channels();
      r.points_histogram = histogram;
      r.output_sqnr_db = error > 0 ? 10 * std::log10(c.output_energy / error) : 999.0;
    }
    // Tensor indices are assigned below, once every float weight tensor is dropped.
    tensors.push_back(std::move(codes));
    tensors.push_back(std::move(scales));
  }
  // Keep the biases (float, bias-corrected if asked) and renumber: biases first in layer order,
  // then codes and scales.
  q.tensors.clear();
  std::size_t conv_index = 0;
  for (std::size_t i = 0; i < q.layers.size(); ++i) {
    model::Layer& l = q.layers[i];
    if (l.kind != LayerKind::Conv2d) continue;
    model::Tensor bias = m.tensors[l.bias_tensor];
    const ConvGram& gram = calibration.grams[i];
    if (options.bias_correction && gram.samples > 0) {
      const std::vector<float>& w = m.tensors[m.layers[i].weight_tensor].data;
      const ConvCandidates& c = convs[conv_index];
      const int out_per_group = l.conv.out_channels / l.conv.groups;
      for (int oc = 0; oc < l.conv.out_channels; ++oc) {
        const auto sum = gram.patch_sum(oc / out_per_group);
        double shift = 0;
        for (int t = 0; t < c.taps; ++t) {
          double approx = 0;
          for (int k = 0; k < l.weight_quant.points[oc]; ++k)
            approx += double(c.points[oc][k].scale) * c.points[oc][k].q[t];
          shift += sum[t] / gram.samples * (w[static_cast<std::size_t>(oc) * c.taps + t] - approx);
        }
        bias.data[oc] = static_cast<float>(bias.data[oc] + shift);
      }
    }
    ++conv_index;
    q.tensors.push_back(std::move(bias));
    l.bias_tensor = static_cast<int>(q.tensors.size()) - 1;
    l.weight_tensor = -1;
  }
  for (std::size_t ci = 0; ci < convs.size(); ++ci) {
    model::Layer& l = q.layers[convs[ci].layer];
    q.tensors.push_back(std::move(tensors[2 * ci]));
    l.weight_quant.weights = static_cast<int>(q.tensors.size()) - 1;
    q.tensors.push_back(std::move(tensors[2 * ci + 1]));
    l.weight_quant.scales = static_cast<int>(q.tensors.size()) - 1;
  }
  char method[200];
  std::snprintf(
      method, sizeof method,
      "%s%s w%d%s a8 (%s ranges), %.4f points/weight, %zu calibration images",
      options.method == WeightMethod::Multipoint ? "multipoint" : "naive",
      options.method == WeightMethod::Multipoint && options.rounding == WeightRounding::Feedback
          ? " (feedback rounding)"
          : "",
      options.weight_bits, options.first_last_8bit ? " (first/heads w8)" : "",
      options.activation_range == RangeMethod::Mse          ? "mse"
      : options.activation_range == RangeMethod::Percentile ? "percentile"
                                                            : "minmax",
      executed / one_point_cost, calibration.images);
  q.quantization_method = std::string(method) + (options.bias_correction ? ", bias-corrected" : "");
  model::validate(q);
  if (report) {
    report->points_per_weight = executed / one_point_cost;
    report->seconds = seconds_since(start);
  }
  return q;
}

}  // namespace mpdet::quant
