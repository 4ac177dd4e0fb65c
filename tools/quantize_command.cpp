// mpdet quantize model.mpdet --calib DIR --calib-set calib --method naive|multipoint --wbits B
//                 [--budget X] -o out.mpdet [--report q.json]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "api/preprocess_settings.h"
#include "commands.h"
#include "eval/voc.h"
#include "model/model_file.h"
#include "mpdet/data_dir.h"
#include "mpdet/error.h"
#include "quant/calibration.h"
#include "quant/model_quantizer.h"
#include "tool_support.h"

namespace mpdet::tools {

Command add_quantize_command(CLI::App& app) {
  struct Args {
    std::string model, calib, calib_set = "calib", method = "multipoint", output, report,
                              ranges = "percentile";
    int wbits = 4, max_points = 4, patches = 32;
    double budget = 1.25;
    std::size_t limit = 0;
    bool all_low_bit = false, no_bias_correction = false;
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
  cmd->add_flag("--no-bias-correction", a->no_bias_correction, "Keep the float biases as they are");
  cmd->add_flag("--all-low-bit", a->all_low_bit,
                "Quantize the first layer and the heads at --wbits too (default: 8-bit)");
  cmd->add_option("--patches", a->patches,
                  "Input patches sampled per image for output-error estimates")
      ->capture_default_str();
  cmd->add_option("--limit", a->limit, "Use only the first N calibration images");
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
    const auto calibration_start = std::chrono::steady_clock::now();
    const quant::CalibrationData calibration =
        quant::calibrate(float_model, ids.size(), load, options);
    const double calibration_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - calibration_start).count();

    quant::QuantizeOptions q;
    q.method = quant::parse_weight_method(a->method);
    q.weight_bits = a->wbits;
    q.budget = a->budget;
    q.max_points = a->max_points;
    q.activation_range = quant::parse_range_method(a->ranges);
    q.first_last_8bit = !a->all_low_bit;
    q.bias_correction = !a->no_bias_correction;
    quant::QuantizeReport report;
    const model::Model quantized = quant::quantize_model(float_model, calibration, q, &report);
    model::save_model(quantized, a->output);
    report.model_bytes = std::filesystem::file_size(a->output);

    std::printf("%s\n", quantized.quantization_method.c_str());
    std::printf("points per weight (MAC-weighted) %.4f, model %zu bytes (float: %lld), %.1f s\n",
                report.points_per_weight, report.model_bytes,
                static_cast<long long>(std::filesystem::file_size(a->model)), report.seconds);
    std::printf("calibration %.1f s over %zu images\n", calibration_seconds, ids.size());
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
      const nlohmann::json doc = {{"points_per_weight", report.points_per_weight},
                                  {"model_bytes", report.model_bytes},
                                  {"method", a->method},
                                  {"weight_bits", a->wbits},
                                  {"budget", a->budget},
                                  {"activation_range", a->ranges},
                                  {"bias_correction", !a->no_bias_correction},
                                  {"calibration_images", ids.size()},
                                  {"seconds", report.seconds},
                                  {"calibration_seconds", calibration_seconds},
                                  {"description", quantized.quantization_method},
                                  {"layers", layers}};
      write_text_atomically(a->report, doc.dump(2) + "\n");
    }
    return 0;
  };
}

}  // namespace mpdet::tools
