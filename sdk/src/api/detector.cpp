#include "mpdet/detector.h"

#include <chrono>

#include "api/backend_registry.h"
#include "api/preprocess_settings.h"
#include "model/model_file.h"
#include "vision/nms.h"
#include "vision/preprocess.h"
#include "vision/yolo_decode.h"

namespace mpdet {

class Model {
 public:
  explicit Model(model::Model m) : graph(std::move(m)) {}
  model::Model graph;
};

std::shared_ptr<const Model> load_model(const std::filesystem::path& path) {
  return std::make_shared<const Model>(model::load_model(path));
}

namespace {

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

}  // namespace

struct Detector::Impl {
  std::shared_ptr<const Model> model;
  std::unique_ptr<runtime::Backend> backend;
  vision::PreprocessSpec preprocess;
  model::PostprocessSettings postprocess;
  std::vector<float> input;
  StageTimes times;
  std::string backend_note;
};

Detector::Detector(const std::filesystem::path& model_path, const DetectorOptions& options)
    : Detector(load_model(model_path), options) {}

Detector::Detector(std::shared_ptr<const Model> model, const DetectorOptions& options)
    : impl_(std::make_unique<Impl>()) {
  if (!model) throw Error("Detector needs a model");
  if (options.threads < 1 || options.threads > 256)
    throw Error("threads must be between 1 and 256");
  const model::Model& g = model->graph;
  impl_->model = std::move(model);
  try {
    impl_->backend = api::create_backend(options.backend, g, options.threads, options.device);
  } catch (const Error& e) {
    if (!options.cpu_fallback || options.backend == "cpu" || !g.quantized) throw;
    impl_->backend_note = "backend '" + options.backend + "' unavailable (" + e.what() +
                          "); running on the CPU backend";
    impl_->backend = api::create_backend("cpu", g, options.threads);
  }

  impl_->preprocess =
      api::to_preprocess_spec(g.preprocess, options.letterbox.value_or(g.preprocess.letterbox));
  impl_->postprocess = g.postprocess;
  auto& post = impl_->postprocess;
  post.conf_threshold = options.conf_threshold.value_or(post.conf_threshold);
  post.nms_threshold = options.nms_threshold.value_or(post.nms_threshold);
  post.top_k = options.top_k.value_or(post.top_k);
  post.multi_label = options.multi_label.value_or(post.multi_label);
  if (!(post.conf_threshold >= 0 && post.conf_threshold <= 1))
    throw Error("confidence threshold must be in [0, 1]");
  if (!(post.nms_threshold >= 0 && post.nms_threshold <= 1))
    throw Error("NMS threshold must be in [0, 1]");
  if (post.top_k < 0) throw Error("top-k must be >= 0");
  impl_->input.resize(g.input_shape().elements());
}

Detector::~Detector() = default;
Detector::Detector(Detector&&) noexcept = default;
Detector& Detector::operator=(Detector&&) noexcept = default;

Detections Detector::detect(const ImageView& image) {
  const model::Model& g = impl_->model->graph;
  auto start = std::chrono::steady_clock::now();
  const vision::ResizePlan plan = vision::plan_resize(image, impl_->preprocess);
  const vision::InputTransform& transform = plan.transform;
  // A backend that preprocesses on its device takes the frame as it is.
  if (impl_->backend->run_image(image, impl_->preprocess, plan)) {
    impl_->times.preprocess_ms = 0;
    impl_->times.network_ms = elapsed_ms(start);
  } else {
    vision::execute_plan(image, impl_->preprocess, plan, impl_->input.data());
    impl_->times.preprocess_ms = elapsed_ms(start);
    start = std::chrono::steady_clock::now();
    impl_->backend->run(impl_->input);
    impl_->times.network_ms = elapsed_ms(start);
  }

  start = std::chrono::steady_clock::now();
  const model::PostprocessSettings& post = impl_->postprocess;
  Detections candidates;
  for (std::size_t h = 0; h < post.yolo_heads.size(); ++h) {
    const model::YoloHead& head = post.yolo_heads[h];
    const ops::Shape& shape = g.layers[head.layer].output;
    const vision::YoloHeadSpec spec{head.anchors, head.num_classes, head.scale_x_y};
    vision::decode_yolo_head(impl_->backend->output(h).data(), shape.height, shape.width, spec,
                             impl_->preprocess.width, impl_->preprocess.height, post.conf_threshold,
                             post.multi_label, candidates);
  }
  for (Detection& d : candidates) d.box = transform.to_image(d.box);
  Detections result = vision::nms_class_aware(candidates, post.nms_threshold, post.top_k);
  impl_->times.postprocess_ms = elapsed_ms(start);
  return result;
}

const std::vector<std::string>& Detector::class_names() const {
  return impl_->model->graph.class_names;
}
int Detector::input_width() const {
  return impl_->preprocess.width;
}
int Detector::input_height() const {
  return impl_->preprocess.height;
}
const std::string& Detector::backend_note() const {
  return impl_->backend_note;
}
std::string Detector::backend_name() const {
  return impl_->backend->name();
}
const StageTimes& Detector::last_times() const {
  return impl_->times;
}
std::vector<float> Detector::preprocess(const ImageView& image) const {
  std::vector<float> input(impl_->input.size());
  vision::preprocess(image, impl_->preprocess, input.data());
  return input;
}

std::vector<std::vector<float>> Detector::raw_outputs() const {
  std::vector<std::vector<float>> out;
  for (std::size_t i = 0; i < impl_->model->graph.outputs.size(); ++i) {
    const auto span = impl_->backend->output(i);
    out.emplace_back(span.begin(), span.end());
  }
  return out;
}

void Detector::run_network(const std::vector<float>& input_chw) {
  const auto start = std::chrono::steady_clock::now();
  impl_->backend->run(input_chw);
  impl_->times.network_ms = elapsed_ms(start);
}

}  // namespace mpdet
