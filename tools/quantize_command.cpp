// mpdet quantize model.mpdet --calib DIR --calib-set calib --method naive|multipoint --wbits B
//                 [--budget X] -o out.mpdet [--report q.json]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "api/preprocess_settings.h"
#include "commands.h"
#include "eval/voc.h"
#include "model/model_file.h"
#include "mpdet/data_dir.h"
#include "mpdet/error.h"
#include "quant/calibration.h"
#include "quant/calibration_cache.h"
#include "quant/equalization.h"
#include "quant/model_quantizer.h"
#include "runtime/integer_reference_backend.h"
#include "runtime/reference_backend.h"
#include "tool_support.h"

namespace mpdet::tools {
namespace {

// Per-layer SQNR (dB) of the quantized model against the float model over `count` inputs: both
// run end to end, so a layer's figure includes everything before it; where it drops is where the
// quantization hurts. Heads are compared on their float outputs.
std::vector<double> layer_sqnr(const model::Model& float_model, const model::Model& quantized,
                               std::size_t count,
                               const std::function<void(std::size_t, std::vector<float>&)>& load) {
  const std::size_t n = float_model.layers.size();
  std::vector<double> signal(n, 0.0), noise(n, 0.0);
  std::vector<std::vector<float>> reference(n);
  runtime::ReferenceBackend fb(float_model);
  runtime::IntegerReferenceBackend qb(quantized);
  fb.set_layer_observer(
      [&](int layer, std::span<const float> v) { reference[layer].assign(v.begin(), v.end()); });
  std::vector<bool> is_head(n, false);
  for (int o : float_model.outputs) is_head[o] = true;
  qb.set_layer_observer([&](int layer, std::span<const std::uint8_t> codes) {
    if (is_head[layer]) return;
    const ops::QuantParams q = quantized.layers[layer].output_quant;
    const std::vector<float>& r = reference[layer];
    for (std::size_t i = 0; i < codes.size(); ++i) {
      const double e = double(q.scale) * (int(codes[i]) - q.zero_point) - r[i];
      signal[layer] += double(r[i]) * r[i];
      noise[layer] += e * e;
    }
  });
  std::vector<float> input(float_model.input_shape().elements());
  for (std::size_t i = 0; i < count; ++i) {
    load(i, input);
    fb.run(input);
    qb.run(input);
    for (std::size_t o = 0; o < float_model.outputs.size(); ++o) {
      const int layer = float_model.outputs[o];
      const auto f = fb.output(o), q = qb.output(o);
      for (std::size_t k = 0; k < f.size(); ++k) {
        signal[layer] += double(f[k]) * f[k];
        noise[layer] += (double(q[k]) - f[k]) * (double(q[k]) - f[k]);
      }
    }
  }
  std::vector<double> sqnr(n, 0.0);
  for (std::size_t l = 0; l < n; ++l)
    sqnr[l] = noise[l] > 0 ? 10 * std::log10(signal[l] / noise[l]) : 999.0;
  return sqnr;
}

}  // namespace

Command add_quantize_command(CLI::App& app) {
  struct Args {
    std::string model, calib, calib_set = "calib", method = "multipoint", output, report,
                              ranges = "percentile", rounding = "feedback", calib_cache;
    int wbits = 4, max_points = 4, patches = 32,
        threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    double budget = 1.25, percentile = 0.01;
    std::size_t limit = 0;
    bool all_low_bit = false, no_bias_correction = false, no_equalization = false;
    std::size_t diagnose = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "quantize", "Post-training quantization (naive or multipoint) of a float model");
  cmd->add_option("model", a->model, "float .mpdet file")->required();
  cmd->add_option("--calib", a->calib,
                  "VOC-style devkit directory with calibration images (default: <data "
                  "dir>/data/VOCdevkit/VOC2007)");
  cmd->add_option("--calib-set", a->calib_set, "Image set of calibration images")
      ->capture_default_str();
  cmd->add_option("--method", a->method, "naive | multipoint")->capture_default_str();
  cmd->add_option("--wbits", a->wbits, "Weight bits: 2, 3, 4 or 8")
      ->check(CLI::IsMember({2, 3, 4, 8}))
      ->capture_default_str();
  cmd->add_option("--budget", a->budget, "Multipoint: average points per weight, weighted by MACs")
      ->capture_default_str();
  cmd->add_option("--max-points", a->max_points, "Multipoint: most points per channel")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--act-range", a->ranges, "Activation clipping: minmax | percentile | mse")
      ->capture_default_str();
  cmd->add_option("--act-percentile", a->percentile,
                  "Percentile ranges: percent of values clipped at each end")
      ->check(CLI::Range(0.0, 49.0))
      ->capture_default_str();
  cmd->add_option("--rounding", a->rounding,
                  "Multipoint rounding: nearest | feedback (output-aware, on calibration Gram)")
      ->capture_default_str();
  cmd->add_option("--calib-cache", a->calib_cache,
                  "Calibration cache file: read when it exists (it must match the model, images "
                  "and settings), else calibrate and write it");
  cmd->add_option("--threads", a->threads, "Calibration threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--no-equalization", a->no_equalization,
                "No cross-layer equalization of depthwise-block activations before calibration");
  cmd->add_flag("--no-bias-correction", a->no_bias_correction, "Keep the float biases as they are");
  cmd->add_flag("--all-low-bit", a->all_low_bit,
                "Quantize the first layer and the heads at --wbits too (default: 8-bit)");
  cmd->add_option("--patches", a->patches,
                  "Input patches sampled per image for output-error estimates")
      ->capture_default_str();
  cmd->add_option("--limit", a->limit, "Use only the first N calibration images");
  cmd->add_option("--diagnose", a->diagnose,
                  "Per-layer SQNR of the quantized model against the float one over the first N "
                  "calibration images (end to end; in the report, worst layers printed)");
  cmd->add_option("-o,--output", a->output, "Quantized .mpdet file")->required();
  cmd->add_option("--report", a->report, "Write the quantization report as JSON");
  return [a]() {
    const model::Model float_model = model::load_model(a->model);
    if (float_model.quantized)
      throw Error("'" + a->model + "' is already quantized (" + float_model.quantization_method +
                  "); quantize the float model it came from");
    const std::filesystem::path voc = a->calib.empty()
                                          ? data_dir() / "data" / "VOCdevkit" / "VOC2007"
                                          : std::filesystem::path(a->calib);
    std::vector<std::string> ids = eval::read_image_set(voc, a->calib_set);
    if (a->limit > 0 && a->limit < ids.size()) ids.resize(a->limit);
    const vision::PreprocessSpec spec =
        api::to_preprocess_spec(float_model.preprocess, float_model.preprocess.letterbox);

    quant::CalibrationOptions options;
    options.patches_per_image = a->patches;
    options.threads = a->threads;
    Progress progress_ranges("calibration: ranges", ids.size()),
        progress_stats("calibration: statistics", ids.size());
    options.progress = [&](const char* stage, std::size_t done, std::size_t) {
      (std::string(stage) == "ranges" ? progress_ranges : progress_stats).update(done);
      if (done == ids.size())
        (std::string(stage) == "ranges" ? progress_ranges : progress_stats).finish();
    };
    const auto load = [&](std::size_t i, std::vector<float>& tensor) {
      const auto path = eval::image_path(voc, ids[i]);
      const cv::Mat image = cv::imread(path.string(), cv::IMREAD_COLOR);
      if (image.empty()) throw Error("cannot read calibration image '" + path.string() + "'");
      vision::preprocess(view_of(image), spec, tensor.data());
    };
    // The cache key: the float model's content, and the images and sampling settings (not the
    // thread count, which changes only the last bits of the Gram sums).
    std::string settings = "set=" + a->calib_set +
                           ";patches=" + std::to_string(options.patches_per_image) +
                           ";seed=" + std::to_string(options.seed) +
                           ";equalization=" + (a->no_equalization ? "off" : "on") + ";ids=";
    for (const std::string& id : ids) settings += id + ",";
    const quant::CalibrationKey key{quant::calibration_fingerprint(float_model),
                                    quant::settings_fingerprint(settings)};
    const auto calibration_start = std::chrono::steady_clock::now();
    const bool cached = !a->calib_cache.empty() && std::filesystem::exists(a->calib_cache);
    quant::CalibrationData calibration;
    if (cached) {
      calibration = quant::load_calibration(a->calib_cache, key);
    } else {
      std::vector<std::vector<float>> scales;
      if (!a->no_equalization) {
        // Per-channel ranges of the float model decide the equalization; the statistics are then
        // collected on the equalized model.
        quant::CalibrationOptions ranges = options;
        ranges.ranges_only = true;
        const quant::CalibrationData first =
            quant::calibrate(float_model, ids.size(), load, ranges);
        scales = quant::equalization_scales(float_model, first.channel_max);
      }
      calibration = quant::calibrate(quant::apply_equalization(float_model, scales), ids.size(),
                                     load, options);
      calibration.equalization = std::move(scales);
      if (!a->calib_cache.empty()) quant::save_calibration(calibration, key, a->calib_cache);
    }
    const model::Model prepared = quant::apply_equalization(float_model, calibration.equalization);
    const double calibration_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - calibration_start).count();

    quant::QuantizeOptions q;
    q.method = quant::parse_weight_method(a->method);
    q.weight_bits = a->wbits;
    q.budget = a->budget;
    q.max_points = a->max_points;
    q.activation_range = quant::parse_range_method(a->ranges);
    q.percentile = a->percentile;
    q.rounding = quant::parse_weight_rounding(a->rounding);
    q.first_last_8bit = !a->all_low_bit;
    q.bias_correction = !a->no_bias_correction;
    quant::QuantizeReport report;
    model::Model quantized = quant::quantize_model(prepared, calibration, q, &report);
    if (!calibration.equalization.empty()) quantized.quantization_method += ", equalized";
    model::save_model(quantized, a->output);
    report.model_bytes = std::filesystem::file_size(a->output);

    std::printf("%s\n", quantized.quantization_method.c_str());
    std::printf("points per weight (MAC-weighted) %.4f, model %zu bytes (float: %lld), %.1f s\n",
                report.points_per_weight, report.model_bytes,
                static_cast<long long>(std::filesystem::file_size(a->model)), report.seconds);
    std::printf("calibration %.1f s over %zu images%s\n", calibration_seconds, ids.size(),
                cached ? " (read from the cache)" : "");
    std::vector<double> sqnr;
    if (a->diagnose > 0) {
      sqnr = layer_sqnr(prepared, quantized, std::min(a->diagnose, ids.size()), load);
      std::vector<int> order;
      for (std::size_t l = 1; l < sqnr.size(); ++l) order.push_back(static_cast<int>(l));
      std::printf("end-to-end SQNR per layer (dB), layer order:\n");
      for (int l : order)
        std::printf("  %3d %-18s %-8s %6.2f\n", l, float_model.layers[l].name.c_str(),
                    model::to_string(float_model.layers[l].kind), sqnr[l]);
    }
    if (!a->report.empty()) {
      nlohmann::json layers = nlohmann::json::array();
      for (const auto& l : report.layers)
        layers.push_back({{"layer", l.layer},
                          {"name", l.name},
                          {"weight_bits", l.weight_bits},
                          {"out_channels", l.out_channels},
                          {"points", l.virtual_channels},
                          {"points_histogram", l.points_histogram},
                          {"output_sqnr_db", l.output_sqnr_db},
                          {"seconds", l.seconds},
                          {"macs", l.macs}});
      nlohmann::json doc = {{"points_per_weight", report.points_per_weight},
                            {"model_bytes", report.model_bytes},
                            {"method", a->method},
                            {"weight_bits", a->wbits},
                            {"budget", a->budget},
                            {"activation_range", a->ranges},
                            {"activation_percentile", a->percentile},
                            {"rounding", a->rounding},
                            {"first_last_8bit", !a->all_low_bit},
                            {"calibration_cached", cached},
                            {"bias_correction", !a->no_bias_correction},
                            {"calibration_images", ids.size()},
                            {"seconds", report.seconds},
                            {"calibration_seconds", calibration_seconds},
                            {"description", quantized.quantization_method},
                            {"layers", layers}};
      if (!sqnr.empty()) doc["end_to_end_sqnr_db"] = sqnr;
      write_text_atomically(a->report, doc.dump(2) + "\n");
    }
    return 0;
  };
}

}  // namespace mpdet::tools
