#include "runtime/requantization.h"

namespace mpdet::runtime {

std::vector<ops::Requantization> plan_requantization(const model::Model& model) {
  std::vector<ops::Requantization> requant(model.layers.size());
  for (std::size_t i = 1; i < model.layers.size(); ++i) {
    const model::Layer& l = model.layers[i];
    std::vector<ops::QuantParams> inputs;
    for (int in : l.inputs) inputs.push_back(model.layers[in].output_quant);
    if (l.kind == model::LayerKind::Conv2d) {
      const auto& wq = l.weight_quant;
      requant[i] = ops::conv_requantization(
          model.tensors[wq.scales].data, model.tensors[wq.weights].codes, wq.points,
          model.tensors[l.bias_tensor].data, inputs[0], l.output_quant);
    } else if (l.kind == model::LayerKind::Add || l.kind == model::LayerKind::Concat) {
      requant[i] = ops::elementwise_requantization(inputs, l.output_quant);
    }
  }
  return requant;
}

}  // namespace mpdet::runtime
