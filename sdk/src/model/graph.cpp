#include "model/graph.h"

#include <cmath>
#include <limits>
#include <string>

#include "mpdet/error.h"

namespace mpdet::model {
namespace {

// Shapes beyond this are certainly hostile input, and keeping every dimension small keeps all
// index arithmetic in backends far from overflow.
constexpr int kMaxDimension = 1 << 15;
constexpr std::size_t kMaxElements = std::size_t{1} << 31;

[[noreturn]] void fail(const Layer& layer, int index, const std::string& what) {
  throw Error("layer " + std::to_string(index) + " ('" + layer.name + "', " +
              to_string(layer.kind) + "): " + what);
}

bool valid_shape(const Shape& s) {
  return s.channels > 0 && s.height > 0 && s.width > 0 && s.channels <= kMaxDimension &&
         s.height <= kMaxDimension && s.width <= kMaxDimension && s.elements() <= kMaxElements;
}

std::string shape_text(const Shape& s) {
  return std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" +
         std::to_string(s.width);
}

void check_tensor(const Model& model, const Layer& layer, int index, int tensor_index,
                  const std::vector<std::int64_t>& expected_shape, const char* role) {
  if (tensor_index < 0 || tensor_index >= static_cast<int>(model.tensors.size()))
    fail(layer, index, std::string(role) + " tensor index out of range");
  const Tensor& t = model.tensors[tensor_index];
  if (t.shape != expected_shape)
    fail(layer, index, std::string(role) + " tensor '" + t.name + "' has the wrong shape");
  if (t.dtype == DataType::F32) {
    if (t.data.size() != t.elements())
      fail(layer, index, std::string(role) + " tensor '" + t.name + "' has the wrong size");
    for (float v : t.data)
      if (!std::isfinite(v))
        fail(layer, index, std::string(role) + " tensor '" + t.name + "' holds NaN or infinity");
  } else {
    if (t.codes.size() != t.elements())
      fail(layer, index, std::string(role) + " tensor '" + t.name + "' has the wrong size");
    if (t.bits != 2 && t.bits != 3 && t.bits != 4 && t.bits != 8)
      fail(layer, index,
           std::string(role) + " tensor '" + t.name + "' has an unsupported bit-width");
    const int qmax = (1 << (t.bits - 1)) - 1;
    for (std::int8_t v : t.codes)
      if (v < -qmax || v > qmax)
        fail(layer, index,
             std::string(role) + " tensor '" + t.name + "' holds a code outside its bit-width");
  }
}

void check_dtype(const Model& model, const Layer& layer, int index, int tensor_index,
                 DataType dtype, const char* role) {
  if (tensor_index >= 0 && tensor_index < static_cast<int>(model.tensors.size()) &&
      model.tensors[tensor_index].dtype != dtype)
    fail(layer, index, std::string(role) + " tensor has the wrong data type");
}

void validate_quantization(const Model& model, const Layer& layer, int index) {
  const QuantParams& q = layer.output_quant;
  if (!(q.scale > 0) || !std::isfinite(q.scale) || q.zero_point < 0 || q.zero_point > 255)
    fail(layer, index, "invalid output scale or zero point");
  const bool passes_codes_through =
      layer.kind == LayerKind::MaxPool || layer.kind == LayerKind::Upsample;
  if (passes_codes_through && !(q == model.layers[layer.inputs[0]].output_quant))
    fail(layer, index, "must keep its input's scale and zero point");
  if (layer.kind != LayerKind::Conv2d) return;
  const ConvQuantization& wq = layer.weight_quant;
  if (wq.weight_bits != 2 && wq.weight_bits != 3 && wq.weight_bits != 4 && wq.weight_bits != 8)
    fail(layer, index, "unsupported weight bit-width");
  if (static_cast<int>(wq.points.size()) != layer.conv.out_channels)
    fail(layer, index, "needs a point count per output channel");
  for (int p : wq.points)
    if (p < 1 || p > 16) fail(layer, index, "points per channel must be between 1 and 16");
  const int in_c = model.layers[layer.inputs[0]].output.channels;
  const std::int64_t v = wq.virtual_channels();
  check_tensor(model, layer, index, wq.weights,
               {v, in_c / layer.conv.groups, layer.conv.kernel, layer.conv.kernel}, "point weight");
  check_dtype(model, layer, index, wq.weights, DataType::I8, "point weight");
  if (model.tensors[wq.weights].bits != wq.weight_bits)
    fail(layer, index, "point weights are stored at another bit-width than declared");
  check_tensor(model, layer, index, wq.scales, {v}, "point scale");
  check_dtype(model, layer, index, wq.scales, DataType::F32, "point scale");
  for (float a : model.tensors[wq.scales].data)
    if (a < 0) fail(layer, index, "point scales must not be negative");
}

}  // namespace

int ConvQuantization::virtual_channels() const {
  int n = 0;
  for (int p : points) n += p;
  return n;
}

std::size_t Tensor::elements() const {
  std::size_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

Shape infer_output_shape(const Model& model, const Layer& layer) {
  auto input = [&](std::size_t i) -> const Shape& { return model.layers[layer.inputs[i]].output; };
  switch (layer.kind) {
    case LayerKind::Input:
      return layer.output;
    case LayerKind::Conv2d:
      return {layer.conv.out_channels, ops::conv_output_size(input(0).height, layer.conv),
              ops::conv_output_size(input(0).width, layer.conv)};
    case LayerKind::MaxPool:
      return {input(0).channels, ops::pool_output_size(input(0).height, layer.pool),
              ops::pool_output_size(input(0).width, layer.pool)};
    case LayerKind::Upsample:
      return {input(0).channels, input(0).height * layer.upsample_factor,
              input(0).width * layer.upsample_factor};
    case LayerKind::Concat: {
      Shape s = input(0);
      for (std::size_t i = 1; i < layer.inputs.size(); ++i) s.channels += input(i).channels;
      return s;
    }
    case LayerKind::Add:
      return input(0);
  }
  return {};
}

void validate(const Model& model) {
  if (model.layers.empty()) throw Error("model has no layers");
  if (model.layers.size() > 100000) throw Error("model has too many layers");
  for (int i = 0; i < static_cast<int>(model.layers.size()); ++i) {
    const Layer& layer = model.layers[i];
    if ((layer.kind == LayerKind::Input) != (i == 0))
      fail(layer, i, "layer 0 must be the only Input layer");
    for (int in : layer.inputs)
      if (in < 0 || in >= i)
        fail(layer, i, "input " + std::to_string(in) + " is not an earlier layer");
    const std::size_t n_inputs = layer.inputs.size();
    switch (layer.kind) {
      case LayerKind::Input:
        if (n_inputs != 0) fail(layer, i, "an Input layer takes no inputs");
        if (!valid_shape(layer.output)) fail(layer, i, "invalid input shape");
        continue;  // nothing to infer
      case LayerKind::Conv2d: {
        if (n_inputs != 1) fail(layer, i, "needs exactly one input");
        const ConvParams& p = layer.conv;
        const int in_c = model.layers[layer.inputs[0]].output.channels;
        if (p.kernel < 1 || p.kernel > 15 || p.stride < 1 || p.stride > 8 || p.pad < 0 ||
            p.pad >= p.kernel + 8 || p.groups < 1 || p.out_channels < 1)
          fail(layer, i, "convolution parameters out of range");
        if (in_c % p.groups != 0 || p.out_channels % p.groups != 0)
          fail(layer, i, "channels are not divisible by groups");
        if (!model.quantized) {
          check_tensor(model, layer, i, layer.weight_tensor,
                       {p.out_channels, in_c / p.groups, p.kernel, p.kernel}, "weight");
          check_dtype(model, layer, i, layer.weight_tensor, DataType::F32, "weight");
        }
        check_tensor(model, layer, i, layer.bias_tensor, {p.out_channels}, "bias");
        check_dtype(model, layer, i, layer.bias_tensor, DataType::F32, "bias");
        break;
      }
      case LayerKind::MaxPool:
        if (n_inputs != 1) fail(layer, i, "needs exactly one input");
        if (layer.pool.size < 1 || layer.pool.size > 64 || layer.pool.stride < 1 ||
            layer.pool.stride > 64 || layer.pool.padding < 0 || layer.pool.padding > 64)
          fail(layer, i, "pooling parameters out of range");
        break;
      case LayerKind::Upsample:
        if (n_inputs != 1) fail(layer, i, "needs exactly one input");
        if (layer.upsample_factor < 1 || layer.upsample_factor > 64)
          fail(layer, i, "upsample factor out of range");
        break;
      case LayerKind::Concat:
        if (n_inputs < 1) fail(layer, i, "needs at least one input");
        for (int in : layer.inputs) {
          const Shape& s = model.layers[in].output;
          const Shape& first = model.layers[layer.inputs[0]].output;
          if (s.height != first.height || s.width != first.width)
            fail(layer, i, "inputs differ in spatial size");
        }
        break;
      case LayerKind::Add:
        if (n_inputs != 2) fail(layer, i, "needs exactly two inputs");
        if (!(model.layers[layer.inputs[0]].output == model.layers[layer.inputs[1]].output))
          fail(layer, i, "inputs differ in shape");
        break;
    }
    const Shape inferred = infer_output_shape(model, layer);
    if (!valid_shape(inferred)) fail(layer, i, "output shape is empty or too large");
    if (!(inferred == layer.output))
      fail(layer, i,
           "stored output shape " + shape_text(layer.output) + " differs from inferred " +
               shape_text(inferred));
  }
  if (model.quantized)
    for (int i = 0; i < static_cast<int>(model.layers.size()); ++i)
      validate_quantization(model, model.layers[i], i);
  const int n_layers = static_cast<int>(model.layers.size());
  if (model.outputs.empty()) throw Error("model declares no outputs");
  for (int out : model.outputs)
    if (out < 1 || out >= n_layers) throw Error("model output refers to a missing layer");
  const PreprocessSettings& pre = model.preprocess;
  if (pre.width != model.input_shape().width || pre.height != model.input_shape().height ||
      model.input_shape().channels != 3)
    throw Error("preprocessing size does not match the 3-channel network input");
  if (!std::isfinite(pre.scale) || pre.scale == 0.0f) throw Error("invalid preprocessing scale");
  if (model.class_names.empty()) throw Error("model has no class names");
  const PostprocessSettings& post = model.postprocess;
  if (post.yolo_heads.empty()) throw Error("model has no detection heads");
  if (post.yolo_heads.size() != model.outputs.size())
    throw Error("every output must be a detection head");
  for (std::size_t h = 0; h < post.yolo_heads.size(); ++h) {
    const YoloHead& head = post.yolo_heads[h];
    if (head.layer != model.outputs[h]) throw Error("detection heads and outputs disagree");
    if (head.layer < 1 || head.layer >= n_layers)
      throw Error("YOLO head refers to a missing layer");
    if (head.anchors.empty() || head.anchors.size() % 2 != 0)
      throw Error("YOLO head anchors must be (w, h) pairs");
    if (head.num_classes != static_cast<int>(model.class_names.size()))
      throw Error("YOLO head class count differs from the class list");
    const int per_anchor = 5 + head.num_classes;
    const int anchors = static_cast<int>(head.anchors.size() / 2);
    if (model.layers[head.layer].output.channels != anchors * per_anchor)
      throw Error("YOLO head layer '" + model.layers[head.layer].name +
                  "' has the wrong number of channels for its anchors and classes");
    for (float a : head.anchors)
      if (!std::isfinite(a) || a <= 0) throw Error("YOLO anchors must be positive");
    if (!std::isfinite(head.scale_x_y) || head.scale_x_y <= 0)
      throw Error("YOLO scale_x_y must be positive");
  }
  if (!(post.conf_threshold >= 0 && post.conf_threshold <= 1) ||
      !(post.nms_threshold >= 0 && post.nms_threshold <= 1) || post.top_k < 0)
    throw Error("post-processing thresholds out of range");
}

std::int64_t conv_macs(const Model& model, const Layer& layer) {
  if (layer.kind != LayerKind::Conv2d) return 0;
  const int in_c = model.layers[layer.inputs[0]].output.channels;
  return static_cast<std::int64_t>(layer.output.elements()) * (in_c / layer.conv.groups) *
         layer.conv.kernel * layer.conv.kernel;
}

std::int64_t executed_macs(const Model& model, const Layer& layer) {
  const std::int64_t macs = conv_macs(model, layer);
  if (!model.quantized || layer.kind != LayerKind::Conv2d) return macs;
  return macs / layer.conv.out_channels * layer.weight_quant.virtual_channels();
}

std::int64_t total_macs(const Model& model) {
  std::int64_t macs = 0;
  for (const Layer& layer : model.layers) macs += conv_macs(model, layer);
  return macs;
}

std::int64_t total_parameters(const Model& model) {
  std::int64_t n = 0;
  for (const Tensor& t : model.tensors) n += static_cast<std::int64_t>(t.elements());
  return n;
}

const char* to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::Input:
      return "input";
    case LayerKind::Conv2d:
      return "conv2d";
    case LayerKind::MaxPool:
      return "maxpool";
    case LayerKind::Upsample:
      return "upsample";
    case LayerKind::Concat:
      return "concat";
    case LayerKind::Add:
      return "add";
  }
  return "?";
}

const char* to_string(Activation activation) {
  switch (activation) {
    case Activation::Linear:
      return "linear";
    case Activation::Leaky:
      return "leaky";
    case Activation::Relu:
      return "relu";
  }
  return "?";
}

}  // namespace mpdet::model
