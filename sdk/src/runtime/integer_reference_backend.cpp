#include "runtime/integer_reference_backend.h"

#include <chrono>

#include "mpdet/error.h"
#include "ops/integer_reference_ops.h"
#include "runtime/requantization.h"

namespace mpdet::runtime {

using model::LayerKind;
namespace iref = ops::integer_reference;

IntegerReferenceBackend::IntegerReferenceBackend(const model::Model& model)
    : model_(model), plan_(plan_memory(model)) {
  if (!model.quantized) throw Error("the integer backend needs a quantized model");
  for (std::size_t elements : plan_.buffer_floats) buffers_.emplace_back(elements);
  requant_ = plan_requantization(model);
  head_codes_.resize(model.layers.size());
  for (int out : model.outputs) {
    outputs_.emplace_back(model.layers[out].output.elements());
    if (model.layers[out].kind == LayerKind::Conv2d)
      head_codes_[out].resize(model.layers[out].output.elements());
  }
}

std::span<const std::uint8_t> IntegerReferenceBackend::layer_codes(int layer) const {
  const auto& buffer = buffers_[plan_.buffer_of_layer.at(layer)];
  return {buffer.data(), model_.layers[layer].output.elements()};
}

void IntegerReferenceBackend::run(std::span<const float> input) {
  if (input.size() != model_.input_shape().elements())
    throw Error("input tensor has " + std::to_string(input.size()) + " values, the model needs " +
                std::to_string(model_.input_shape().elements()));
  iref::quantize_input(input.data(), input.size(), model_.layers[0].output_quant,
                       buffers_[plan_.buffer_of_layer[0]].data());
  if (observer_) observer_(0, layer_codes(0));
  run_layers(
      static_cast<int>(model_.layers.size()), profiling_, timings_, [&](int i) { run_layer(i); },
      [&](int i) {
        if (observer_) observer_(i, layer_codes(i));
      });

  for (std::size_t o = 0; o < model_.outputs.size(); ++o) {
    const int layer = model_.outputs[o];
    if (!head_codes_[layer].empty())
      iref::dequantize_head(head_codes_[layer].data(), outputs_[o].size(),
                            model_.layers[layer].output_quant, outputs_[o].data());
    else
      iref::dequantize(layer_codes(layer).data(), outputs_[o].size(),
                       model_.layers[layer].output_quant, outputs_[o].data());
  }
}

void IntegerReferenceBackend::run_layer(int index) {
  const model::Layer& l = model_.layers[index];
  std::uint8_t* out = buffers_[plan_.buffer_of_layer[index]].data();
  auto in = [&](std::size_t k) { return layer_codes(l.inputs[k]).data(); };
  auto in_layer = [&](std::size_t k) -> const model::Layer& { return model_.layers[l.inputs[k]]; };
  switch (l.kind) {
    case LayerKind::Input:
      break;
    case LayerKind::Conv2d:
      iref::conv2d_multipoint(in(0), in_layer(0).output, in_layer(0).output_quant,
                              model_.tensors[l.weight_quant.weights].codes.data(),
                              l.weight_quant.points, requant_[index], l.conv, l.activation, out,
                              l.output, l.output_quant,
                              head_codes_[index].empty() ? nullptr : head_codes_[index].data());
      break;
    case LayerKind::MaxPool:
      iref::max_pool(in(0), in_layer(0).output, l.pool, out, l.output);
      break;
    case LayerKind::Upsample:
      iref::upsample_nearest(in(0), in_layer(0).output, l.upsample_factor, out);
      break;
    case LayerKind::Concat: {
      std::uint8_t* dst = out;
      for (std::size_t k = 0; k < l.inputs.size(); ++k) {
        const std::size_t n = in_layer(k).output.elements();
        iref::requantize(in(k), in_layer(k).output_quant, n, requant_[index], k, dst,
                         l.output_quant);
        dst += n;
      }
      break;
    }
    case LayerKind::Add:
      iref::add(in(0), in_layer(0).output_quant, in(1), in_layer(1).output_quant,
                l.output.elements(), requant_[index], l.activation, out, l.output_quant);
      break;
  }
}

}  // namespace mpdet::runtime
