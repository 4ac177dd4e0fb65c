// mpdet eval model.mpdet --voc DIR --set NAME — detection mAP on a VOCdevkit tree.
#include <atomic>
#include <cstdio>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "commands.h"
#include "eval/voc.h"
#include "mpdet/data_dir.h"
#include "mpdet/detector.h"
#include "tool_support.h"

namespace mpdet::tools {

Command add_eval_command(CLI::App& app) {
  struct Args {
    std::string model, voc, set = "dev", backend = "auto", dets_out, report, results_dir;
    int threads = 1, top_k = 100;
    int device = -1;
    bool cpu_fallback = false;
    float conf = 0.005f, nms = 0.45f;
    std::size_t limit = 0;
    bool letterbox = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("eval", "VOC mAP of a model on a VOCdevkit image set");
  cmd->add_option("model", a->model, ".mpdet file")->required();
  cmd->add_option("--voc", a->voc,
                  "VOC2007-style devkit directory (default: <data dir>/data/VOCdevkit/VOC2007)");
  cmd->add_option("--set", a->set, "Image set name in ImageSets/Main")->capture_default_str();
  cmd->add_option("--backend", a->backend,
                  "Backend: auto (cpu for quantized models, ref for float), ref, cpu, vulkan")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Images evaluated in parallel")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--device", a->device, "Vulkan device index (see `mpdet devices`), -1: the best");
  cmd->add_flag("--fallback-cpu", a->cpu_fallback,
                "Use the CPU backend if the chosen one cannot start");
  cmd->add_option("--conf", a->conf, "Score threshold")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--nms", a->nms, "NMS IoU threshold")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--topk", a->top_k, "Detections kept per image (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--letterbox", a->letterbox, "Letterbox resize instead of the model's default");
  cmd->add_option("--limit", a->limit, "Evaluate only the first N images of the set");
  cmd->add_option("--dets-out", a->dets_out, "Write all detections as JSON");
  cmd->add_option("--report", a->report, "Write the mAP report as JSON");
  cmd->add_option("--results-dir", a->results_dir,
                  "Write the devkit's per-class result files here");
  return [a]() {
    const std::filesystem::path voc = a->voc.empty() ? data_dir() / "data" / "VOCdevkit" / "VOC2007"
                                                     : std::filesystem::path(a->voc);
    const auto model = load_model(a->model);
    DetectorOptions options;
    options.backend = a->backend;
    options.device = a->device;
    options.cpu_fallback = a->cpu_fallback;
    options.conf_threshold = a->conf;
    options.nms_threshold = a->nms;
    options.top_k = a->top_k;
    if (a->letterbox) options.letterbox = true;
    std::vector<Detector> detectors;
    for (int t = 0; t < a->threads; ++t) detectors.emplace_back(model, options);
    if (!detectors[0].backend_note().empty())
      std::fprintf(stderr, "note: %s\n", detectors[0].backend_note().c_str());
    const std::vector<std::string>& model_classes = detectors[0].class_names();

    std::vector<std::string> ids = eval::read_image_set(voc, a->set);
    if (a->limit > 0 && a->limit < ids.size()) ids.resize(a->limit);
    if (ids.empty()) throw Error("image set '" + a->set + "' is empty");
    // The model's classes are scored against the VOC annotations by name.
    const std::vector<eval::ImageAnnotation> annotations = [&] {
      std::vector<eval::ImageAnnotation> out;
      for (const std::string& id : ids)
        out.push_back(eval::read_annotation(voc / "Annotations" / (id + ".xml"), model_classes));
      return out;
    }();

    std::vector<Detections> per_image(ids.size());
    // Each thread owns a Detector and takes the next image index; the main thread reports progress.
    std::atomic<std::size_t> next{0}, done{0};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::string first_error;
    auto worker = [&](Detector& detector) {
      for (std::size_t i; !failed && (i = next++) < ids.size(); ++done) {
        try {
          const auto path = eval::image_path(voc, ids[i]);
          const cv::Mat image = cv::imread(path.string(), cv::IMREAD_COLOR);
          if (image.empty()) throw Error("cannot read image '" + path.string() + "'");
          per_image[i] = detector.detect(view_of(image));
        } catch (const std::exception& e) {
          std::lock_guard lock(error_mutex);
          if (first_error.empty()) first_error = e.what();
          failed = true;
        }
      }
    };
    const auto start = std::chrono::steady_clock::now();
    Progress progress("eval " + a->set, ids.size());
    std::vector<std::thread> pool;
    for (Detector& detector : detectors) pool.emplace_back(worker, std::ref(detector));
    while (done < ids.size() && !failed) {
      progress.update(done);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (auto& t : pool) t.join();
    progress.update(done);
    progress.finish();
    if (failed) throw Error(first_error);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::vector<eval::ImageDetection> all;
    for (std::size_t i = 0; i < ids.size(); ++i)
      for (const Detection& d : per_image[i]) all.push_back({ids[i], d});
    const eval::VocResult result = eval::evaluate_voc(annotations, all, model_classes);

    std::printf("%-14s %6s %8s %9s %9s\n", "class", "gt", "dets", "AP(07)", "AP(all)");
    nlohmann::json per_class = nlohmann::json::object();
    for (const eval::ClassResult& c : result.classes) {
      std::printf("%-14s %6d %8d %9.2f %9.2f\n", c.name.c_str(), c.positives, c.detections,
                  100 * c.ap_voc07, 100 * c.ap_all);
      per_class[c.name] = {{"ap_voc07", c.ap_voc07},
                           {"ap_voc12", c.ap_all},
                           {"positives", c.positives},
                           {"detections", c.detections}};
    }
    std::printf(
        "mAP VOC07 11-point %.2f   all-point %.2f   (%zu images, backend %s, %.1f s, %.1f img/s)\n",
        100 * result.map_voc07, 100 * result.map_all, ids.size(),
        detectors[0].backend_name().c_str(), seconds, ids.size() / seconds);

    if (!a->report.empty()) {
      const nlohmann::json report = {{"map_voc07", result.map_voc07},
                                     {"map_voc12", result.map_all},
                                     {"per_class", per_class},
                                     {"images", ids.size()},
                                     {"set", a->set},
                                     {"backend", detectors[0].backend_name()},
                                     {"model", a->model},
                                     {"conf", a->conf},
                                     {"nms", a->nms},
                                     {"topk", a->top_k},
                                     {"seconds", seconds}};
      write_text_atomically(a->report, report.dump(2) + "\n");
    }
    if (!a->dets_out.empty()) {
      nlohmann::json dets = nlohmann::json::array();
      for (const auto& d : all)
        dets.push_back(
            {{"image_id", d.image_id},
             {"class", d.detection.class_id},
             {"score", d.detection.score},
             {"bbox",
              {d.detection.box.x1, d.detection.box.y1, d.detection.box.x2, d.detection.box.y2}}});
      write_text_atomically(a->dets_out, dets.dump() + "\n");
    }
    if (!a->results_dir.empty())
      eval::write_voc_result_files(a->results_dir, a->set, model_classes, all);
    return 0;
  };
}

}  // namespace mpdet::tools
