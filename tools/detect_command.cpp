// mpdet detect model.mpdet INPUT -o OUTPUT [--json dets.jsonl] — annotate an image or a video.
#include <cstdio>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <random>
#include <set>

#include "commands.h"
#include "mpdet/detector.h"
#include "tool_support.h"

namespace mpdet::tools {
namespace {

bool is_image_path(const std::filesystem::path& p) {
  static const std::set<std::string> kImageExtensions = {".jpg",  ".jpeg", ".png",  ".bmp",
                                                         ".webp", ".tif",  ".tiff", ".ppm"};
  std::string ext = p.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return kImageExtensions.count(ext) > 0;
}

// A temporary path beside `final_path` that keeps its extension (OpenCV picks the encoder from it).
std::filesystem::path temp_beside(const std::filesystem::path& final_path) {
  std::filesystem::path temp = final_path;
  temp.replace_filename("." + final_path.stem().string() + ".tmp-" +
                        std::to_string(std::random_device{}()) + final_path.extension().string());
  return temp;
}

void move_into_place(const std::filesystem::path& temp, const std::filesystem::path& final_path) {
  std::error_code ec;
  std::filesystem::rename(temp, final_path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    throw Error("cannot write '" + final_path.string() + "'");
  }
}

}  // namespace

Command add_detect_command(CLI::App& app) {
  struct Args {
    std::string model, input, output, json, backend = "auto";
    int threads = 1;
    int device = -1;
    bool cpu_fallback = false;
    float conf = 0.25f, nms = 0.45f;
    int max_frames = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("detect", "Detect objects in an image or a video and draw them");
  cmd->add_option("model", a->model, ".mpdet file")->required();
  cmd->add_option("input", a->input, "Image or video file")->required();
  cmd->add_option("-o,--output", a->output, "Annotated image or video (.mp4, .avi)")->required();
  cmd->add_option("--json", a->json, "Write detections as JSON Lines (one line per frame)");
  cmd->add_option("--backend", a->backend,
                  "Backend: auto (cpu for quantized models, ref for float), ref, cpu, vulkan")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads")
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
  cmd->add_option("--max-frames", a->max_frames, "Stop after N frames (0 = all)");
  return [a]() {
    DetectorOptions options;
    options.backend = a->backend;
    options.device = a->device;
    options.cpu_fallback = a->cpu_fallback;
    options.threads = a->threads;
    options.conf_threshold = a->conf;
    options.nms_threshold = a->nms;
    Detector detector(a->model, options);
    if (!detector.backend_note().empty())
      std::fprintf(stderr, "note: %s\n", detector.backend_note().c_str());
    const auto& names = detector.class_names();
    if (!std::filesystem::exists(a->input)) throw Error("input '" + a->input + "' does not exist");

    std::ostringstream jsonl;
    auto record = [&](int frame, double time_ms, const Detections& dets) {
      nlohmann::json list = nlohmann::json::array();
      for (const Detection& d : dets) list.push_back(detection_json(d, names));
      jsonl << nlohmann::json{{"frame", frame}, {"time_ms", time_ms}, {"detections", list}}.dump()
            << "\n";
    };

    const std::filesystem::path output = a->output;
    const std::filesystem::path temp = temp_beside(output);
    if (is_image_path(a->input)) {
      cv::Mat image = cv::imread(a->input, cv::IMREAD_COLOR);
      if (image.empty()) throw Error("cannot decode image '" + a->input + "'");
      const Detections dets = detector.detect(view_of(image));
      record(0, 0.0, dets);
      draw_detections(image, dets, names);
      if (!is_image_path(output)) throw Error("output for an image input must be an image file");
      if (!cv::imwrite(temp.string(), image)) throw Error("cannot write '" + output.string() + "'");
      move_into_place(temp, output);
      std::printf("%zu detections -> %s\n", dets.size(), output.c_str());
    } else {
      cv::VideoCapture capture(a->input);
      if (!capture.isOpened())
        throw Error("cannot open video '" + a->input + "' (unreadable or unsupported)");
      double fps = capture.get(cv::CAP_PROP_FPS);
      if (!(fps > 0 && fps < 1000)) fps = 25;
      const int frame_count = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_COUNT));
      const std::string ext = output.extension().string();
      const int fourcc = ext == ".avi" ? cv::VideoWriter::fourcc('M', 'J', 'P', 'G')
                                       : cv::VideoWriter::fourcc('m', 'p', '4', 'v');
      cv::VideoWriter writer;
      Progress progress("detect", frame_count > 0 ? frame_count : 0);
      std::vector<double> network_ms;
      cv::Mat frame;
      int index = 0;
      try {
        while (capture.read(frame) && !frame.empty()) {
          if (a->max_frames > 0 && index >= a->max_frames) break;
          if (!writer.isOpened() && !writer.open(temp.string(), fourcc, fps, frame.size()))
            throw Error("cannot write video '" + output.string() + "' (use .mp4 or .avi)");
          const Detections dets = detector.detect(view_of(frame));
          network_ms.push_back(detector.last_times().network_ms);
          record(index, 1000.0 * index / fps, dets);
          draw_detections(frame, dets, names);
          writer.write(frame);
          progress.update(++index);
        }
      } catch (...) {
        writer.release();
        std::error_code ec;
        std::filesystem::remove(temp, ec);
        throw;
      }
      progress.finish();
      if (index == 0) throw Error("video '" + a->input + "' has no readable frames");
      writer.release();
      move_into_place(temp, output);
      std::printf("%d frames -> %s (network median %.1f ms/frame, backend %s)\n", index,
                  output.c_str(), summarize(network_ms).median, detector.backend_name().c_str());
    }
    if (!a->json.empty()) write_text_atomically(a->json, jsonl.str());
    return 0;
  };
}

}  // namespace mpdet::tools
