#include "runtime/reference_backend.h"

#include <algorithm>
#include <chrono>

#include "mpdet/error.h"
#include "ops/reference_ops.h"
#include "runtime/integer_reference_backend.h"

namespace mpdet::runtime {

using model::LayerKind;

ReferenceBackend::ReferenceBackend(const model::Model& model)
    : model_(model), plan_(plan_memory(model)) {
  buffers_.reserve(plan_.buffer_floats.size());
  for (std::size_t floats : plan_.buffer_floats) buffers_.emplace_back(floats);
}

std::span<const float> ReferenceBackend::layer_output(int layer) const {
  const auto& buffer = buffers_[plan_.buffer_of_layer.at(layer)];
  return {buffer.data(), model_.layers[layer].output.elements()};
}

std::span<const float> ReferenceBackend::output(std::size_t i) const {
  return layer_output(model_.outputs.at(i));
}

void ReferenceBackend::run(std::span<const float> input) {
  if (input.size() != model_.input_shape().elements())
    throw Error("input tensor has " + std::to_string(input.size()) + " values, the model needs " +
                std::to_string(model_.input_shape().elements()));
  std::copy(input.begin(), input.end(), buffers_[plan_.buffer_of_layer[0]].begin());
  if (observer_) observer_(0, layer_output(0));
  run_layers(
      static_cast<int>(model_.layers.size()), profiling_, timings_, [&](int i) { run_layer(i); },
      [&](int i) {
        if (observer_) observer_(i, layer_output(i));
      });
}

void ReferenceBackend::run_layer(int index) {
  const model::Layer& layer = model_.layers[index];
  float* out = buffers_[plan_.buffer_of_layer[index]].data();
  auto in = [&](std::size_t k) { return layer_output(layer.inputs[k]).data(); };
  auto in_shape = [&](std::size_t k) -> const ops::Shape& {
    return model_.layers[layer.inputs[k]].output;
  };
  switch (layer.kind) {
    case LayerKind::Input:
      break;
    case LayerKind::Conv2d:
      ops::reference::conv2d(in(0), in_shape(0), model_.tensors[layer.weight_tensor].data.data(),
                             model_.tensors[layer.bias_tensor].data.data(), layer.conv,
                             layer.activation, out, layer.output);
      break;
    case LayerKind::MaxPool:
      ops::reference::max_pool(in(0), in_shape(0), layer.pool, out, layer.output);
      break;
    case LayerKind::Upsample:
      ops::reference::upsample_nearest(in(0), in_shape(0), layer.upsample_factor, out);
      break;
    case LayerKind::Concat: {
      float* dst = out;
      for (std::size_t k = 0; k < layer.inputs.size(); ++k) {
        const std::size_t n = in_shape(k).elements();
        std::copy(in(k), in(k) + n, dst);
        dst += n;
      }
      break;
    }
    case LayerKind::Add:
      ops::reference::add(in(0), in(1), layer.output.elements(), layer.activation, out);
      break;
  }
}

std::unique_ptr<Backend> create_backend(const std::string& name, const model::Model& model,
                                        int threads) {
  (void)threads;  // the reference backends are single-threaded; callers parallelise over images
  if (name == "ref") {
    if (model.quantized) return std::make_unique<IntegerReferenceBackend>(model);
    return std::make_unique<ReferenceBackend>(model);
  }
  throw Error("unknown backend '" + name + "' (available: ref)");
}

}  // namespace mpdet::runtime
