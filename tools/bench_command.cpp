// mpdet bench model.mpdet — median and spread of preprocess, network and post-process times,
// optionally next to OpenCV dnn's float network on the same input blob in the same run.
#include <cstdio>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include "api/backend_registry.h"
#include "commands.h"
#include "model/model_file.h"
#include "mpdet/data_dir.h"
#include "mpdet/detector.h"
#include "tool_support.h"

namespace mpdet::tools {
namespace {

nlohmann::json stats_json(const Stats& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}};
}

double time_ms(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  struct Args {
    std::string model, backend = "auto", image;
    std::vector<std::string> peer;
    int threads = 1, runs = 20, warmup = 2;
    int device = -1;
    bool cpu_fallback = false;
    bool json = false, per_layer = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("bench", "Time preprocessing, network and post-processing");
  cmd->add_option("model", a->model, ".mpdet file")->required();
  cmd->add_option("--backend", a->backend,
                  "Backend: auto (cpu for quantized models, ref for float), ref, cpu, vulkan")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--device", a->device, "Vulkan device index (see `mpdet devices`), -1: the best");
  cmd->add_flag("--fallback-cpu", a->cpu_fallback,
                "Use the CPU backend if the chosen one cannot start");
  cmd->add_option("--runs", a->runs, "Timed runs")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "Untimed runs first")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  cmd->add_option("--image", a->image,
                  "Input image (default: VOC2007 000005.jpg from the data dir)");
  cmd->add_option("--peer-darknet", a->peer,
                  "Darknet CFG WEIGHTS: also time OpenCV dnn's float network, interleaved")
      ->expected(2);
  cmd->add_flag("--per-layer", a->per_layer, "Per-layer time, MACs and GMAC/s");
  cmd->add_flag("--json", a->json, "Print JSON instead of a table");
  return [a]() {
    const std::string image_path =
        a->image.empty()
            ? (data_dir() / "data" / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000005.jpg").string()
            : a->image;
    const cv::Mat image = cv::imread(image_path, cv::IMREAD_COLOR);
    if (image.empty()) throw Error("cannot read image '" + image_path + "'");
    DetectorOptions options;
    options.backend = a->backend;
    options.device = a->device;
    options.cpu_fallback = a->cpu_fallback;
    options.threads = a->threads;
    Detector detector(a->model, options);
    if (!detector.backend_note().empty())
      std::fprintf(stderr, "note: %s\n", detector.backend_note().c_str());

    // The peer sees exactly the blob mpdet's network sees.
    detector.detect(view_of(image));
    const std::vector<float> input = detector.preprocess(view_of(image));
    cv::dnn::Net peer;
    cv::Mat peer_blob;
    if (!a->peer.empty()) {
      cv::setNumThreads(a->threads);
      peer = cv::dnn::readNetFromDarknet(a->peer[0], a->peer[1]);
      peer.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      peer_blob = cv::Mat({1, 3, detector.input_height(), detector.input_width()}, CV_32F,
                          const_cast<float*>(input.data()))
                      .clone();
    }
    auto run_peer = [&] {
      peer.setInput(peer_blob);
      std::vector<cv::Mat> outs;
      peer.forward(outs, peer.getUnconnectedOutLayersNames());
    };

    std::vector<double> pre, net, post, total, peer_ms;
    for (int r = 0; r < a->warmup + a->runs; ++r) {
      detector.detect(view_of(image));
      const double peer_time = a->peer.empty() ? 0 : time_ms(run_peer);
      if (r < a->warmup) continue;
      pre.push_back(detector.last_times().preprocess_ms);
      net.push_back(detector.last_times().network_ms);
      post.push_back(detector.last_times().postprocess_ms);
      total.push_back(pre.back() + net.back() + post.back());
      if (!a->peer.empty()) peer_ms.push_back(peer_time);
    }
    const Stats s_pre = summarize(pre), s_net = summarize(net), s_post = summarize(post),
                s_total = summarize(total), s_peer = summarize(peer_ms);

    nlohmann::json layers = nlohmann::json::array();
    if (a->per_layer) {
      // Profiled separately so that the per-layer clock reads do not disturb the totals above.
      const model::Model graph = model::load_model(a->model);
      auto backend = api::create_backend(a->backend, graph, a->threads, a->device);
      backend->set_profiling(true);
      std::vector<std::vector<double>> samples(graph.layers.size());
      for (int r = 0; r < std::max(3, a->runs / 2); ++r) {
        backend->run(input);
        for (const auto& t : backend->layer_timings()) samples[t.layer].push_back(t.milliseconds);
      }
      for (std::size_t i = 1; i < graph.layers.size(); ++i) {
        const double ms = summarize(samples[i]).median;
        const double macs = static_cast<double>(model::conv_macs(graph, graph.layers[i]));
        layers.push_back({{"layer", i},
                          {"name", graph.layers[i].name},
                          {"kind", model::to_string(graph.layers[i].kind)},
                          {"ms", ms},
                          {"macs", macs},
                          {"gmacs", ms > 0 ? macs / ms / 1e6 : 0.0}});
      }
    }

    if (a->json) {
      nlohmann::json out = {{"backend", detector.backend_name()},
                            {"threads", a->threads},
                            {"runs", a->runs},
                            {"model", a->model},
                            {"image", image_path},
                            {"preprocess_ms", stats_json(s_pre)},
                            {"network_ms", stats_json(s_net)},
                            {"postprocess_ms", stats_json(s_post)},
                            {"end_to_end_ms", stats_json(s_total)}};
      if (!a->peer.empty()) {
        out["opencv_dnn_float_network_ms"] = stats_json(s_peer);
        out["network_ratio_to_opencv"] = s_net.median / s_peer.median;
      }
      if (a->per_layer) out["layers"] = layers;
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::printf("model %s, backend %s, %d thread(s), %d runs (+%d warm-up), image %dx%d\n",
                a->model.c_str(), detector.backend_name().c_str(), a->threads, a->runs, a->warmup,
                image.cols, image.rows);
    std::printf("%-26s %10s %10s %10s\n", "stage (ms)", "median", "min", "max");
    auto row = [](const char* name, const Stats& s) {
      std::printf("%-26s %10.3f %10.3f %10.3f\n", name, s.median, s.min, s.max);
    };
    row("preprocess", s_pre);
    row("network", s_net);
    row("postprocess", s_post);
    row("end to end", s_total);
    if (!a->peer.empty()) {
      row("opencv dnn float network", s_peer);
      std::printf("network time / OpenCV dnn float: %.2fx\n", s_net.median / s_peer.median);
    }
    if (a->per_layer) {
      std::printf("\n%4s %-20s %-9s %10s %12s %9s\n", "#", "layer", "kind", "ms", "MACs", "GMAC/s");
      for (const auto& l : layers)
        std::printf("%4d %-20s %-9s %10.4f %12.0f %9.2f\n", l["layer"].get<int>(),
                    l["name"].get<std::string>().c_str(), l["kind"].get<std::string>().c_str(),
                    l["ms"].get<double>(), l["macs"].get<double>(), l["gmacs"].get<double>());
    }
    return 0;
  };
}

}  // namespace mpdet::tools
