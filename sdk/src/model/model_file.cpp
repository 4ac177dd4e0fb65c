#include "model/model_file.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "mpdet/error.h"
#include "quant/bit_packing.h"

namespace mpdet::model {
namespace {

using nlohmann::json;

constexpr char kMagic[8] = {'M', 'P', 'D', 'E', 'T', 'M', 'D', 'L'};
constexpr std::size_t kHeaderSize = 64;
constexpr std::size_t kAlignment = 64;

std::size_t align_up(std::size_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

void put_u32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return v;
}
std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

// ---- enums <-> names -------------------------------------------------------------------------

template <typename Enum>
Enum parse_enum(const std::string& text, const std::map<std::string, Enum>& names,
                const char* what) {
  auto it = names.find(text);
  if (it == names.end()) throw Error(std::string("unknown ") + what + " '" + text + "'");
  return it->second;
}

const std::map<std::string, LayerKind> kLayerKinds = {
    {"input", LayerKind::Input},     {"conv2d", LayerKind::Conv2d},
    {"maxpool", LayerKind::MaxPool}, {"upsample", LayerKind::Upsample},
    {"concat", LayerKind::Concat},   {"add", LayerKind::Add}};
const std::map<std::string, Activation> kActivations = {
    {"linear", Activation::Linear}, {"leaky", Activation::Leaky}, {"relu", Activation::Relu}};
// On disk, integer codes carry their bit-width in the type name: i2, i3, i4, i8.
std::string dtype_name(const Tensor& t) {
  if (t.dtype == DataType::F32) return "f32";
  std::string name =
      "i";  // appended, not "i" + ...: GCC 12 warns falsely (-Wrestrict) on that form
  name += std::to_string(t.bits);
  return name;
}

void parse_dtype(const std::string& name, Tensor& t) {
  if (name == "f32") {
    t.dtype = DataType::F32;
    return;
  }
  if (name == "i2" || name == "i3" || name == "i4" || name == "i8") {
    t.dtype = DataType::I8;
    t.bits = name[1] - '0';
    return;
  }
  throw Error("unknown tensor dtype '" + name + "'");
}

std::size_t stored_bytes(const Tensor& t, std::size_t elements) {
  return t.dtype == DataType::F32 ? elements * sizeof(float) : quant::packed_size(elements, t.bits);
}

// ---- JSON accessors with clear errors -----------------------------------------------------------

const json& field(const json& object, const char* key) {
  if (!object.is_object()) throw Error(std::string("expected an object holding '") + key + "'");
  auto it = object.find(key);
  if (it == object.end()) throw Error(std::string("missing field '") + key + "'");
  return *it;
}

int get_int(const json& object, const char* key, long long lo, long long hi) {
  const json& v = field(object, key);
  if (!v.is_number_integer()) throw Error(std::string("field '") + key + "' must be an integer");
  const long long x = v.get<long long>();
  if (x < lo || x > hi) throw Error(std::string("field '") + key + "' out of range");
  return static_cast<int>(x);
}

float get_float(const json& object, const char* key) {
  const json& v = field(object, key);
  if (!v.is_number()) throw Error(std::string("field '") + key + "' must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || std::abs(x) > 1e30)
    throw Error(std::string("field '") + key + "' is not finite");
  return static_cast<float>(x);
}

std::string get_string(const json& object, const char* key) {
  const json& v = field(object, key);
  if (!v.is_string()) throw Error(std::string("field '") + key + "' must be a string");
  return v.get<std::string>();
}

bool get_bool(const json& object, const char* key) {
  const json& v = field(object, key);
  if (!v.is_boolean()) throw Error(std::string("field '") + key + "' must be true or false");
  return v.get<bool>();
}

const json& get_array(const json& object, const char* key, std::size_t max_size) {
  const json& v = field(object, key);
  if (!v.is_array()) throw Error(std::string("field '") + key + "' must be an array");
  if (v.size() > max_size) throw Error(std::string("field '") + key + "' is too long");
  return v;
}

std::vector<float> get_floats(const json& object, const char* key, std::size_t max_size) {
  std::vector<float> out;
  for (const json& v : get_array(object, key, max_size)) {
    if (!v.is_number()) throw Error(std::string("field '") + key + "' must hold numbers");
    out.push_back(v.get<float>());
  }
  return out;
}

// ---- model -> JSON -----------------------------------------------------------------------------

json shape_json(const Shape& s) {
  return json::array({s.channels, s.height, s.width});
}

Shape shape_from_json(const json& object, const char* key) {
  const json& v = get_array(object, key, 3);
  if (v.size() != 3)
    throw Error(std::string("field '") + key + "' must be [channels, height, width]");
  Shape s;
  int* dims[3] = {&s.channels, &s.height, &s.width};
  for (int i = 0; i < 3; ++i) {
    if (!v[i].is_number_integer() || v[i].get<long long>() < 1 || v[i].get<long long>() > (1 << 15))
      throw Error(std::string("field '") + key + "' has an invalid dimension");
    *dims[i] = v[i].get<int>();
  }
  return s;
}

json layer_json(const Layer& layer) {
  json j = {{"name", layer.name},
            {"kind", to_string(layer.kind)},
            {"inputs", layer.inputs},
            {"output", shape_json(layer.output)}};
  switch (layer.kind) {
    case LayerKind::Conv2d:
      j["out_channels"] = layer.conv.out_channels;
      j["kernel"] = layer.conv.kernel;
      j["stride"] = layer.conv.stride;
      j["pad"] = layer.conv.pad;
      j["groups"] = layer.conv.groups;
      j["activation"] = to_string(layer.activation);
      j["weights"] = layer.weight_tensor;
      j["bias"] = layer.bias_tensor;
      break;
    case LayerKind::MaxPool:
      j["size"] = layer.pool.size;
      j["stride"] = layer.pool.stride;
      j["padding"] = layer.pool.padding;
      break;
    case LayerKind::Upsample:
      j["factor"] = layer.upsample_factor;
      break;
    case LayerKind::Add:
      j["activation"] = to_string(layer.activation);
      break;
    case LayerKind::Input:
    case LayerKind::Concat:
      break;
  }
  return j;
}

void add_quantization_json(const Layer& layer, json& j) {
  j["quant"] = {{"scale", layer.output_quant.scale}, {"zero_point", layer.output_quant.zero_point}};
  if (layer.kind == LayerKind::Conv2d) {
    const ConvQuantization& wq = layer.weight_quant;
    j["weight_bits"] = wq.weight_bits;
    j["points"] = wq.points;
    j["point_weights"] = wq.weights;
    j["point_scales"] = wq.scales;
    j.erase("weights");
  }
}

void read_quantization_json(const json& j, Layer& layer, int n_tensors) {
  const json& q = field(j, "quant");
  layer.output_quant.scale = get_float(q, "scale");
  layer.output_quant.zero_point = get_int(q, "zero_point", 0, 255);
  if (layer.kind != LayerKind::Conv2d) return;
  ConvQuantization& wq = layer.weight_quant;
  wq.weight_bits = get_int(j, "weight_bits", 2, 8);
  for (const json& p : get_array(j, "points", 1 << 15)) {
    if (!p.is_number_integer() || p.get<long long>() < 1 || p.get<long long>() > 16)
      throw Error("points per channel must be integers between 1 and 16");
    wq.points.push_back(p.get<int>());
  }
  wq.weights = get_int(j, "point_weights", 0, n_tensors - 1);
  wq.scales = get_int(j, "point_scales", 0, n_tensors - 1);
}

Layer layer_from_json(const json& j, int n_tensors, bool quantized) {
  Layer layer;
  layer.name = get_string(j, "name");
  layer.kind = parse_enum(get_string(j, "kind"), kLayerKinds, "layer kind");
  for (const json& in : get_array(j, "inputs", 64)) {
    if (!in.is_number_integer()) throw Error("layer inputs must be integers");
    layer.inputs.push_back(
        static_cast<int>(std::clamp<long long>(in.get<long long>(), -1, 1 << 30)));
  }
  layer.output = shape_from_json(j, "output");
  switch (layer.kind) {
    case LayerKind::Conv2d:
      layer.conv.out_channels = get_int(j, "out_channels", 1, 1 << 15);
      layer.conv.kernel = get_int(j, "kernel", 1, 15);
      layer.conv.stride = get_int(j, "stride", 1, 8);
      layer.conv.pad = get_int(j, "pad", 0, 22);
      layer.conv.groups = get_int(j, "groups", 1, 1 << 15);
      layer.activation = parse_enum(get_string(j, "activation"), kActivations, "activation");
      if (!quantized) layer.weight_tensor = get_int(j, "weights", 0, n_tensors - 1);
      layer.bias_tensor = get_int(j, "bias", 0, n_tensors - 1);
      break;
    case LayerKind::MaxPool:
      layer.pool.size = get_int(j, "size", 1, 64);
      layer.pool.stride = get_int(j, "stride", 1, 64);
      layer.pool.padding = get_int(j, "padding", 0, 64);
      break;
    case LayerKind::Upsample:
      layer.upsample_factor = get_int(j, "factor", 1, 64);
      break;
    case LayerKind::Add:
      layer.activation = parse_enum(get_string(j, "activation"), kActivations, "activation");
      break;
    case LayerKind::Input:
    case LayerKind::Concat:
      break;
  }
  if (quantized) read_quantization_json(j, layer, n_tensors);
  return layer;
}

json settings_json(const Model& m) {
  json heads = json::array();
  for (const YoloHead& h : m.postprocess.yolo_heads)
    heads.push_back({{"layer", h.layer},
                     {"anchors", h.anchors},
                     {"num_classes", h.num_classes},
                     {"scale_x_y", h.scale_x_y}});
  return {{"preprocess",
           {{"width", m.preprocess.width},
            {"height", m.preprocess.height},
            {"channel_order", m.preprocess.rgb ? "rgb" : "bgr"},
            {"scale", m.preprocess.scale},
            {"mean", m.preprocess.mean},
            {"resize", m.preprocess.letterbox ? "letterbox" : "stretch"}}},
          {"postprocess",
           {{"decoder", "yolo"},
            {"yolo_heads", heads},
            {"conf_threshold", m.postprocess.conf_threshold},
            {"nms_threshold", m.postprocess.nms_threshold},
            {"top_k", m.postprocess.top_k},
            {"multi_label", m.postprocess.multi_label}}}};
}

void settings_from_json(const json& j, Model& m) {
  const json& pre = field(j, "preprocess");
  m.preprocess.width = get_int(pre, "width", 1, 1 << 15);
  m.preprocess.height = get_int(pre, "height", 1, 1 << 15);
  const std::string order = get_string(pre, "channel_order");
  if (order != "rgb" && order != "bgr") throw Error("unknown channel_order '" + order + "'");
  m.preprocess.rgb = order == "rgb";
  m.preprocess.scale = get_float(pre, "scale");
  const std::vector<float> mean = get_floats(pre, "mean", 3);
  if (mean.size() != 3) throw Error("preprocess mean must have 3 values");
  std::copy(mean.begin(), mean.end(), m.preprocess.mean.begin());
  const std::string resize = get_string(pre, "resize");
  if (resize != "stretch" && resize != "letterbox")
    throw Error("unknown resize mode '" + resize + "'");
  m.preprocess.letterbox = resize == "letterbox";

  const json& post = field(j, "postprocess");
  if (get_string(post, "decoder") != "yolo") throw Error("unknown decoder");
  for (const json& h : get_array(post, "yolo_heads", 16)) {
    YoloHead head;
    head.layer = get_int(h, "layer", 0, 1 << 30);
    head.anchors = get_floats(h, "anchors", 64);
    head.num_classes = get_int(h, "num_classes", 1, 10000);
    head.scale_x_y = get_float(h, "scale_x_y");
    m.postprocess.yolo_heads.push_back(std::move(head));
  }
  m.postprocess.conf_threshold = get_float(post, "conf_threshold");
  m.postprocess.nms_threshold = get_float(post, "nms_threshold");
  m.postprocess.top_k = get_int(post, "top_k", 0, 1 << 20);
  m.postprocess.multi_label = get_bool(post, "multi_label");
}

}  // namespace

std::uint64_t fnv1a64(std::span<const std::uint8_t> bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::vector<std::uint8_t> serialize_model(const Model& model) {
  validate(model);
  json tensors = json::array();
  std::size_t data_size = 0;
  std::vector<std::size_t> offsets;
  std::vector<std::vector<std::uint8_t>> packed(model.tensors.size());
  for (std::size_t i = 0; i < model.tensors.size(); ++i) {
    const Tensor& t = model.tensors[i];
    if (t.dtype == DataType::I8) packed[i] = quant::pack_weights(t.codes, t.bits);
    const std::size_t bytes =
        t.dtype == DataType::F32 ? t.data.size() * sizeof(float) : packed[i].size();
    offsets.push_back(data_size);
    tensors.push_back({{"name", t.name},
                       {"dtype", dtype_name(t)},
                       {"shape", t.shape},
                       {"offset", data_size},
                       {"size", bytes}});
    data_size = align_up(data_size + bytes);
  }
  json layers = json::array();
  for (const Layer& layer : model.layers) {
    layers.push_back(layer_json(layer));
    if (model.quantized) add_quantization_json(layer, layers.back());
  }
  json doc = {{"format", "mpdet"},
              {"name", model.name},
              {"source", model.source},
              {"classes", model.class_names},
              {"layers", layers},
              {"outputs", model.outputs},
              {"tensors", tensors},
              {"quantized", model.quantized},
              {"quantization_method", model.quantization_method}};
  doc.update(settings_json(model));
  const std::string text = doc.dump(1);

  const std::size_t data_offset = align_up(kHeaderSize + text.size());
  std::vector<std::uint8_t> file(data_offset + data_size, 0);
  std::memcpy(file.data(), kMagic, sizeof kMagic);
  put_u32(&file[8], kModelFormatVersion);
  put_u64(&file[16], text.size());
  put_u64(&file[24], data_offset);
  put_u64(&file[32], data_size);
  std::memcpy(&file[kHeaderSize], text.data(), text.size());
  for (std::size_t i = 0; i < model.tensors.size(); ++i) {
    const Tensor& t = model.tensors[i];
    // Floats are stored little-endian, which is the byte order of every supported target.
    if (t.dtype == DataType::F32)
      std::memcpy(&file[data_offset + offsets[i]], t.data.data(), t.data.size() * sizeof(float));
    else
      std::memcpy(&file[data_offset + offsets[i]], packed[i].data(), packed[i].size());
  }
  put_u64(&file[40], fnv1a64(std::span(file).subspan(kHeaderSize)));
  return file;
}

Model deserialize_model(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) throw Error("file is too short to be a .mpdet model");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw Error("not a .mpdet model (bad magic)");
  const std::uint32_t version = get_u32(&bytes[8]);
  if (version != kModelFormatVersion)
    throw Error("unsupported .mpdet format version " + std::to_string(version) +
                " (this build reads " + std::to_string(kModelFormatVersion) + ")");
  // Reserved header bytes are not covered by the checksum, so they must be exactly zero.
  if (get_u32(&bytes[12]) != 0 || get_u64(&bytes[48]) != 0 || get_u64(&bytes[56]) != 0)
    throw Error("corrupt header: reserved bytes are not zero");
  const std::uint64_t json_size = get_u64(&bytes[16]);
  const std::uint64_t data_offset = get_u64(&bytes[24]);
  const std::uint64_t data_size = get_u64(&bytes[32]);
  const std::uint64_t checksum = get_u64(&bytes[40]);
  const std::uint64_t file_size = bytes.size();
  if (json_size == 0 || json_size > file_size - kHeaderSize)
    throw Error("truncated file: the JSON section runs past the end");
  if (data_offset % kAlignment != 0 || data_offset < kHeaderSize + json_size ||
      data_offset > file_size)
    throw Error("invalid tensor data offset");
  if (data_size != file_size - data_offset)
    throw Error(data_size > file_size - data_offset
                    ? "truncated file: tensor data is incomplete"
                    : "file has trailing bytes after the tensor data");
  if (fnv1a64(bytes.subspan(kHeaderSize)) != checksum)
    throw Error("checksum mismatch: the file is corrupt");

  json doc;
  try {
    doc = json::parse(bytes.begin() + kHeaderSize, bytes.begin() + kHeaderSize + json_size);
  } catch (const json::exception& e) {
    throw Error(std::string("invalid JSON graph description: ") + e.what());
  }
  Model model;
  try {
    if (get_string(doc, "format") != "mpdet") throw Error("JSON 'format' is not 'mpdet'");
    model.name = get_string(doc, "name");
    model.source = get_string(doc, "source");
    for (const json& c : get_array(doc, "classes", 100000)) {
      if (!c.is_string()) throw Error("class names must be strings");
      model.class_names.push_back(c.get<std::string>());
    }
    const json& tensors = get_array(doc, "tensors", 1000000);
    for (const json& tj : tensors) {
      Tensor t;
      t.name = get_string(tj, "name");
      parse_dtype(get_string(tj, "dtype"), t);
      std::uint64_t elements = 1;
      for (const json& d : get_array(tj, "shape", 8)) {
        if (!d.is_number_integer() || d.get<long long>() < 1 || d.get<long long>() > (1 << 24))
          throw Error("tensor '" + t.name + "' has an invalid dimension");
        t.shape.push_back(d.get<long long>());
        elements *= static_cast<std::uint64_t>(d.get<long long>());
        if (elements > (std::uint64_t{1} << 31))
          throw Error("tensor '" + t.name + "' is too large");
      }
      const json& off = field(tj, "offset");
      const json& size = field(tj, "size");
      if (!off.is_number_unsigned() || !size.is_number_unsigned())
        throw Error("tensor '" + t.name + "' offset and size must be non-negative integers");
      const std::uint64_t offset = off.get<std::uint64_t>(), nbytes = size.get<std::uint64_t>();
      if (offset % kAlignment != 0) throw Error("tensor '" + t.name + "' is not 64-byte aligned");
      if (nbytes != stored_bytes(t, elements))
        throw Error("tensor '" + t.name + "' size does not match its shape");
      if (offset > data_size || nbytes > data_size - offset)
        throw Error("tensor '" + t.name + "' lies outside the data block");
      const auto stored = bytes.subspan(data_offset + offset, nbytes);
      if (t.dtype == DataType::F32) {
        t.data.resize(elements);
        std::memcpy(t.data.data(), stored.data(), nbytes);
      } else {
        t.codes = quant::unpack_weights(stored, elements, t.bits);
      }
      model.tensors.push_back(std::move(t));
    }
    const int n_tensors = static_cast<int>(model.tensors.size());
    model.quantized = get_bool(doc, "quantized");
    model.quantization_method = get_string(doc, "quantization_method");
    for (const json& lj : get_array(doc, "layers", 100000))
      model.layers.push_back(layer_from_json(lj, n_tensors, model.quantized));
    for (const json& o : get_array(doc, "outputs", 64)) {
      if (!o.is_number_integer()) throw Error("outputs must be layer indices");
      model.outputs.push_back(
          static_cast<int>(std::clamp<long long>(o.get<long long>(), -1, 1 << 30)));
    }
    settings_from_json(doc, model);
    validate(model);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("invalid graph description: ") + e.what());
  }
  return model;
}

std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path,
                                          std::uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path.string() + "'");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error("cannot read '" + path.string() + "'");
  if (static_cast<std::uint64_t>(size) > max_bytes)
    throw Error("'" + path.string() + "' is too large");
  in.seekg(0);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw Error("cannot read '" + path.string() + "'");
  return bytes;
}

void write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  std::random_device entropy;
  std::filesystem::path temp = path;
  temp += ".tmp-" + std::to_string(entropy());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write '" + path.string() + "'");
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      throw Error("failed writing '" + path.string() + "' (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    throw Error("cannot move the new file into place at '" + path.string() + "'");
  }
}

void save_model(const Model& model, const std::filesystem::path& path) {
  write_file_atomically(path, serialize_model(model));
}

Model load_model(const std::filesystem::path& path) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path);
  try {
    return deserialize_model(bytes);
  } catch (const Error& e) {
    throw Error("'" + path.string() + "': " + e.what());
  }
}

}  // namespace mpdet::model
