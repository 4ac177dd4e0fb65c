// The in-memory model: a topologically ordered list of layers over single-image CHW tensors,
// the weight tensors they use, and the pre/post-processing settings that travel with them.
// Importers build it, the .mpdet reader and writer (model_file.h) serialise it, backends run it.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ops/integer_arithmetic.h"
#include "ops/op_params.h"

namespace mpdet::model {

using ops::Activation;
using ops::ConvParams;
using ops::PoolParams;
using ops::QuantParams;
using ops::Shape;

enum class LayerKind {
  Input,     // the network input; always layer 0
  Conv2d,    // inputs: 1; tensors: weights [out, in/groups, k, k], bias [out]
  MaxPool,   // inputs: 1
  Upsample,  // inputs: 1; nearest neighbour, integer factor
  Concat,    // inputs: >= 1, along channels
  Add,       // inputs: 2 of equal shape, then activation (Darknet [shortcut])
};

// F32: float payload in `data`. I8: signed integer codes in `codes`, stored on disk packed at
// `bits` bits each (2, 3, 4 or 8; see quant/bit_packing.h).
enum class DataType { F32, I8 };

struct Tensor {
  std::string name;
  DataType dtype = DataType::F32;
  std::vector<std::int64_t> shape;
  std::vector<float> data;
  std::vector<std::int8_t> codes;
  int bits = 8;
  std::size_t elements() const;
};

// Multipoint low-bit weights of a quantized convolution (ops/integer_arithmetic.h): output channel
// c owns points[c] consecutive virtual channels; their codes are the rows of `weights`.
struct ConvQuantization {
  int weight_bits = 0;      // 0: not quantized
  std::vector<int> points;  // per output channel, >= 1
  int weights = -1;         // I8 tensor [virtual channels, in / groups, k, k]
  int scales = -1;          // F32 tensor [virtual channels]: a_v
  int virtual_channels() const;
};

struct Layer {
  std::string name;
  LayerKind kind = LayerKind::Input;
  std::vector<int> inputs;  // indices of earlier layers
  Shape output;
  Activation activation = Activation::Linear;  // Conv2d and Add
  ConvParams conv;                             // Conv2d
  PoolParams pool;                             // MaxPool
  int upsample_factor = 2;                     // Upsample
  int weight_tensor = -1;                      // Conv2d, float models: index into Model::tensors
  int bias_tensor = -1;                        // Conv2d (float bias, also in quantized models)
  QuantParams output_quant;                    // quantized models: uint8 scale and zero point
  ConvQuantization weight_quant;               // quantized models, Conv2d
};

struct PreprocessSettings {
  int width = 0, height = 0;
  bool rgb = true;  // channel order the network expects
  float scale = 1.0f / 255.0f;
  std::array<float, 3> mean = {0, 0, 0};
  bool letterbox = false;
};

struct YoloHead {
  int layer = -1;              // the layer whose output is the raw head
  std::vector<float> anchors;  // (w, h) pairs in input pixels, this head's anchors only
  int num_classes = 0;
  float scale_x_y = 1.0f;
};

struct PostprocessSettings {
  std::vector<YoloHead> yolo_heads;
  float conf_threshold = 0.25f;
  float nms_threshold = 0.45f;
  int top_k = 100;
  bool multi_label = true;
};

struct Model {
  std::string name;
  std::string source;  // where it was imported from (informational)
  std::vector<Layer> layers;
  std::vector<Tensor> tensors;
  std::vector<int> outputs;  // layers whose outputs the caller reads (the YOLO heads, in order)
  std::vector<std::string> class_names;
  PreprocessSettings preprocess;
  PostprocessSettings postprocess;
  bool quantized = false;  // integer model: every layer has output_quant, convs weight_quant
  std::string quantization_method;  // e.g. "multipoint w4 budget 1.25" (informational)

  const Shape& input_shape() const { return layers.at(0).output; }
};

// Recomputes every layer's output shape from its inputs and parameters.
Shape infer_output_shape(const Model& model, const Layer& layer);

// Checks everything a backend relies on: layer 0 is the only Input; inputs refer to earlier
// layers; parameters are in range; stored output shapes equal the inferred ones; weight and
// bias tensors exist with the right shapes and finite values; outputs and heads are valid.
// Throws mpdet::Error describing the first problem.
void validate(const Model& model);

// MACs of a convolution as float (one point per weight); the executed MACs of a multipoint layer
// are that times virtual_channels / out_channels.
std::int64_t conv_macs(const Model& model, const Layer& layer);
std::int64_t executed_macs(const Model& model, const Layer& layer);
std::int64_t total_macs(const Model& model);
std::int64_t total_parameters(const Model& model);

const char* to_string(LayerKind kind);
const char* to_string(Activation activation);

}  // namespace mpdet::model
