// mpdet::Detector — load a .mpdet model and detect objects in images.
//
// Thread safety: one Detector runs one image at a time; detect() on the same Detector from two
// threads at once is not allowed. Separate Detector objects are independent and may run
// concurrently (each holds its own activation buffers; the model weights are shared read-only).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mpdet/detection.h"
#include "mpdet/error.h"
#include "mpdet/image.h"

namespace mpdet {

struct DetectorOptions {
  // "auto" (cpu for quantized models, ref for float ones), "ref" (reference float/integer
  // kernels), "cpu" (SIMD, quantized models), "vulkan" (GPU compute, quantized models).
  std::string backend = "auto";
  int threads = 1;  // CPU backend: threads splitting each layer
  int device = -1;
  // When the chosen backend cannot start (no Vulkan device, a pipeline that fails to build), use
  // the CPU backend instead of throwing; backend_note() says why.
  bool cpu_fallback =
      false;  // Vulkan device index (as `mpdet info --devices` lists them); -1: the best
  // Unset values come from the model file.
  std::optional<float> conf_threshold;
  std::optional<float> nms_threshold;
  std::optional<int> top_k;
  std::optional<bool> multi_label;
  std::optional<bool> letterbox;
};

struct StageTimes {
  double preprocess_ms = 0;  // CPU preprocessing (0 when the backend preprocesses on its device)
  double network_ms = 0;     // includes device preprocessing and the frame upload, if any
  double postprocess_ms = 0;
};

class Model;  // a loaded model, shareable between detectors

// Loads and validates a .mpdet file; throws mpdet::Error naming the file and the problem.
std::shared_ptr<const Model> load_model(const std::filesystem::path& path);

class Detector {
 public:
  explicit Detector(const std::filesystem::path& model_path, const DetectorOptions& options = {});
  Detector(std::shared_ptr<const Model> model, const DetectorOptions& options = {});
  ~Detector();
  Detector(Detector&&) noexcept;
  Detector& operator=(Detector&&) noexcept;

  // Boxes in pixels of `image`, sorted by descending score.
  Detections detect(const ImageView& image);

  const std::vector<std::string>& class_names() const;
  int input_width() const;
  int input_height() const;
  std::string backend_name() const;
  // Why the requested backend was replaced (cpu_fallback), or empty.
  const std::string& backend_note() const;
  const StageTimes& last_times() const;

  // Raw outputs of the last detect() (the detection heads before decoding), for tools and tests.
  std::vector<std::vector<float>> raw_outputs() const;
  // Runs only the network on an already preprocessed CHW input (for benchmarks and tests).
  void run_network(const std::vector<float>& input_chw);
  // The network input for `image` as the CPU preprocessing computes it (CHW floats), for
  // benchmarks and tests. detect() itself may preprocess on the backend's device instead
  // (Vulkan): the frame then crosses to the device once and StageTimes::network_ms includes it.
  std::vector<float> preprocess(const ImageView& image) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpdet
