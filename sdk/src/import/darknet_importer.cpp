#include "import/darknet_importer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "model/model_file.h"
#include "mpdet/error.h"

namespace mpdet::import {
namespace {

using model::Activation;
using model::Layer;
using model::LayerKind;
using model::Model;

struct Section {
  std::string type;  // e.g. "convolutional"
  int line = 0;
  std::map<std::string, std::string> values;
  std::set<std::string> used;
};

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

std::vector<Section> parse_cfg(const std::string& text) {
  std::vector<Section> sections;
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    std::string line = trim(raw.substr(0, raw.find_first_of("#;")));
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3)
        throw Error("cfg line " + std::to_string(line_no) + ": malformed section header '" + line +
                    "'");
      sections.push_back({trim(line.substr(1, line.size() - 2)), line_no, {}, {}});
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      throw Error("cfg line " + std::to_string(line_no) + ": expected key=value, got '" + line +
                  "'");
    if (sections.empty())
      throw Error("cfg line " + std::to_string(line_no) + ": key outside any section");
    const std::string key = trim(line.substr(0, eq));
    if (key.empty()) throw Error("cfg line " + std::to_string(line_no) + ": empty key");
    sections.back().values[key] = trim(line.substr(eq + 1));
  }
  if (sections.empty()) throw Error("cfg has no sections");
  if (sections.front().type != "net" && sections.front().type != "network")
    throw Error("cfg must start with a [net] section");
  return sections;
}

[[noreturn]] void fail(const Section& s, const std::string& what) {
  throw Error("cfg [" + s.type + "] at line " + std::to_string(s.line) + ": " + what);
}

// Typed accessors that also record which keys the importer understood.
std::string get_text(Section& s, const std::string& key, const std::string& fallback) {
  s.used.insert(key);
  auto it = s.values.find(key);
  return it == s.values.end() ? fallback : it->second;
}

int get_int(Section& s, const std::string& key, int fallback, int lo, int hi) {
  const std::string text = get_text(s, key, "");
  if (text.empty()) return fallback;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0')
    fail(s, "'" + key + "' must be an integer, got '" + text + "'");
  if (v < lo || v > hi) fail(s, "'" + key + "' = " + text + " is out of range");
  return static_cast<int>(v);
}

float get_float(Section& s, const std::string& key, float fallback) {
  const std::string text = get_text(s, key, "");
  if (text.empty()) return fallback;
  char* end = nullptr;
  const float v = std::strtof(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(v))
    fail(s, "'" + key + "' must be a number, got '" + text + "'");
  return v;
}

// A comma-separated list; `parse` converts one trimmed item and says whether it was valid.
template <typename T, typename Parse>
std::vector<T> get_list(Section& s, const std::string& key, Parse parse) {
  std::vector<T> out;
  std::stringstream ss(get_text(s, key, ""));
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    T value{};
    if (!parse(item, value)) fail(s, "'" + key + "' holds a bad value '" + item + "'");
    out.push_back(value);
  }
  return out;
}

std::vector<int> get_ints(Section& s, const std::string& key) {
  return get_list<int>(s, key, [](const std::string& item, int& value) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    value = static_cast<int>(v);
    return *end == '\0' && v >= -100000 && v <= 100000;
  });
}

std::vector<float> get_floats(Section& s, const std::string& key) {
  return get_list<float>(s, key, [](const std::string& item, float& value) {
    char* end = nullptr;
    value = std::strtof(item.c_str(), &end);
    return *end == '\0' && std::isfinite(value);
  });
}

// Keys that only matter for training: accepted and ignored.
const std::set<std::string> kTrainingKeys = {
    // [net]
    "batch", "subdivisions", "momentum", "decay", "angle", "saturation", "exposure", "hue",
    "learning_rate", "burn_in", "max_batches", "policy", "steps", "scales", "mosaic", "flip",
    "blur", "gaussian_noise", "mixup", "cutmix", "max_chart_loss", "power", "track", "time_steps",
    "adam", "B1", "B2", "eps", "aspect", "letter_box_train", "label_smooth_eps",
    "dynamic_minibatch", "optimized_memory", "workspace_size_limit_MB", "seed",
    // [dropout]
    "probability", "dropblock", "dropblock_size_rel", "dropblock_size_abs",
    // [yolo]
    "jitter", "ignore_thresh", "truth_thresh", "random", "iou_thresh", "cls_normalizer",
    "iou_normalizer", "obj_normalizer", "iou_loss", "nms_kind", "beta_nms", "max_delta",
    "counters_per_class", "resize", "max", "objectness_smooth", "focal_loss", "num",
    "track_history_size", "sim_thresh", "dets_for_track", "dets_for_show", "track_ciou_norm",
    "embedding_layer", "uc_normalizer", "delta_normalizer", "label_smooth_eps",
    // [convolutional]
    "stopbackward", "train", "dontload", "dontloadscales", "learning_rate_scale"};

// Keys that change inference but are accepted when they hold their neutral value.
const std::map<std::string, std::string> kNeutralKeys = {
    {"dilation", "1"},     {"binary", "0"},          {"xnor", "0"},
    {"antialiasing", "0"}, {"stride_x", ""},         {"stride_y", ""},
    {"group_id", "0"},     {"maxpool_depth", "0"},   {"new_coords", "0"},
    {"scale", "1"},        {"weights_type", "none"}, {"weights_normalization", "none"},
    {"reverse", "0"},      {"flipped", "0"},         {"deform", "0"},
    {"mean", ""},          {"share_index", ""}};

void check_unknown_keys(const Section& s) {
  for (const auto& [key, value] : s.values) {
    if (s.used.count(key) || kTrainingKeys.count(key)) continue;
    auto neutral = kNeutralKeys.find(key);
    if (neutral != kNeutralKeys.end()) {
      if (value == neutral->second || (key == "groups" && value == "1")) continue;
      fail(s, "'" + key + "=" + value + "' is not supported");
    }
    fail(s, "unknown key '" + key + "'");
  }
}

Activation parse_activation(Section& s) {
  const std::string a = get_text(s, "activation", "linear");
  if (a == "linear") return Activation::Linear;
  if (a == "leaky") return Activation::Leaky;
  if (a == "relu") return Activation::Relu;
  fail(s, "activation '" + a + "' is not supported");
}

// Reads the .weights stream: a header, then per [convolutional] its parameters in cfg order.
class WeightsReader {
 public:
  explicit WeightsReader(const std::vector<std::uint8_t>& bytes) : bytes_(bytes) {
    if (bytes_.size() < 12) throw Error("weights file is too short for its header");
    const std::int32_t major = read_i32(), minor = read_i32();
    read_i32();  // revision
    // Darknet writes the "images seen" counter as 64 bits from format 0.2 on.
    const bool seen_is_64 = major * 10 + minor >= 2 && major < 1000 && minor < 1000;
    pos_ += seen_is_64 ? 8 : 4;
    if (pos_ > bytes_.size()) throw Error("weights file is too short for its header");
  }

  std::vector<float> floats(std::size_t count, const std::string& what) {
    if (count > (bytes_.size() - pos_) / sizeof(float))
      throw Error("weights file is truncated: it ends while reading " + what);
    std::vector<float> out(count);
    std::memcpy(out.data(), bytes_.data() + pos_, count * sizeof(float));
    pos_ += count * sizeof(float);
    for (float v : out)
      if (!std::isfinite(v)) throw Error("weights file holds NaN or infinity in " + what);
    return out;
  }

  void expect_end() const {
    if (pos_ != bytes_.size())
      throw Error("weights file has " + std::to_string(bytes_.size() - pos_) +
                  " bytes more than the cfg describes (wrong cfg for these weights?)");
  }

 private:
  std::int32_t read_i32() {
    std::int32_t v;
    std::memcpy(&v, bytes_.data() + pos_, 4);
    pos_ += 4;
    return v;
  }
  const std::vector<std::uint8_t>& bytes_;
  std::size_t pos_ = 0;
};

int add_tensor(Model& m, std::string name, std::vector<std::int64_t> shape,
               std::vector<float> data) {
  m.tensors.push_back({std::move(name), model::DataType::F32, std::move(shape), std::move(data)});
  return static_cast<int>(m.tensors.size()) - 1;
}

}  // namespace

Model import_darknet_from_memory(const std::string& cfg_text,
                                 const std::vector<std::uint8_t>& weights,
                                 const std::vector<std::string>& class_names,
                                 const std::string& name) {
  std::vector<Section> sections = parse_cfg(cfg_text);
  WeightsReader reader(weights);
  Model m;
  m.name = name;
  m.class_names = class_names;

  Section& net = sections.front();
  const int width = get_int(net, "width", 416, 1, 8192);
  const int height = get_int(net, "height", 416, 1, 8192);
  const int channels = get_int(net, "channels", 3, 1, 4);
  if (channels != 3) fail(net, "only 3-channel inputs are supported");
  m.preprocess = {width,         height,    /*rgb=*/true,
                  1.0f / 255.0f, {0, 0, 0}, get_int(net, "letter_box", 0, 0, 1) == 1};
  check_unknown_keys(net);

  Layer input;
  input.name = "input";
  input.kind = LayerKind::Input;
  input.output = {channels, height, width};
  m.layers.push_back(input);

  // Darknet layer index -> the mpdet layer holding that layer's output. Layers that are no-ops
  // at inference (dropout, single-input route, yolo) alias an existing layer.
  std::vector<int> output_of;
  auto resolve = [&](Section& s, int index, int current) {
    const int darknet_index = index < 0 ? current + index : index;
    if (darknet_index < 0 || darknet_index >= current)
      fail(s, "refers to layer " + std::to_string(index) + ", which does not precede it");
    return output_of[darknet_index];
  };

  for (std::size_t si = 1; si < sections.size(); ++si) {
    Section& s = sections[si];
    const int current = static_cast<int>(si) - 1;  // Darknet layer index
    const int previous = current == 0 ? 0 : output_of[current - 1];
    const model::Shape in_shape = m.layers[previous].output;
    Layer layer;
    layer.name = s.type + "_" + std::to_string(current);
    int aliased = -1;

    if (s.type == "convolutional" || s.type == "conv") {
      layer.kind = LayerKind::Conv2d;
      layer.inputs = {previous};
      auto& p = layer.conv;
      p.out_channels = get_int(s, "filters", 1, 1, 1 << 15);
      p.kernel = get_int(s, "size", 1, 1, 15);
      p.stride = get_int(s, "stride", 1, 1, 8);
      p.pad = get_int(s, "pad", 0, 0, 1) ? p.kernel / 2 : get_int(s, "padding", 0, 0, 15);
      p.groups = get_int(s, "groups", 1, 1, 1 << 15);
      const bool batch_norm = get_int(s, "batch_normalize", 0, 0, 1) == 1;
      layer.activation = parse_activation(s);
      check_unknown_keys(s);
      if (in_shape.channels % p.groups != 0 || p.out_channels % p.groups != 0)
        fail(s, "channels are not divisible by groups");
      const int n = p.out_channels;
      const std::size_t per_filter =
          static_cast<std::size_t>(in_shape.channels / p.groups) * p.kernel * p.kernel;
      const std::string what = "layer " + std::to_string(current) + " (" + s.type + ")";
      std::vector<float> bias = reader.floats(n, what);
      std::vector<float> gamma, mean, variance;
      if (batch_norm) {
        gamma = reader.floats(n, what);
        mean = reader.floats(n, what);
        variance = reader.floats(n, what);
      }
      std::vector<float> w = reader.floats(per_filter * n, what);
      if (batch_norm) {
        // The Darknet fork these models were trained with (AlexeyAB's; scale_x_y and iou_loss
        // come from it) normalises as (x - mean) / sqrt(var + 1e-6) * gamma + beta. Folding it
        // into the convolution leaves one multiply-add per weight.
        for (int c = 0; c < n; ++c) {
          if (variance[c] < 0) fail(s, "batch-norm variance is negative");
          const double factor = gamma[c] / std::sqrt(static_cast<double>(variance[c]) + 1e-6);
          for (std::size_t k = 0; k < per_filter; ++k)
            w[c * per_filter + k] = static_cast<float>(w[c * per_filter + k] * factor);
          bias[c] = static_cast<float>(bias[c] - mean[c] * factor);
        }
      }
      layer.weight_tensor =
          add_tensor(m, layer.name + ".weight",
                     {n, in_shape.channels / p.groups, p.kernel, p.kernel}, std::move(w));
      layer.bias_tensor = add_tensor(m, layer.name + ".bias", {n}, std::move(bias));
    } else if (s.type == "maxpool") {
      layer.kind = LayerKind::MaxPool;
      layer.inputs = {previous};
      layer.pool.stride = get_int(s, "stride", 1, 1, 64);
      layer.pool.size = get_int(s, "size", layer.pool.stride, 1, 64);
      layer.pool.padding = get_int(s, "padding", layer.pool.size - 1, 0, 64);
      check_unknown_keys(s);
    } else if (s.type == "upsample") {
      layer.kind = LayerKind::Upsample;
      layer.inputs = {previous};
      layer.upsample_factor = get_int(s, "stride", 2, 1, 64);
      check_unknown_keys(s);
    } else if (s.type == "route") {
      const std::vector<int> refs = get_ints(s, "layers");
      if (get_int(s, "groups", 1, 1, 1) != 1) fail(s, "grouped route is not supported");
      check_unknown_keys(s);
      if (refs.empty()) fail(s, "'layers' is empty");
      for (int r : refs) layer.inputs.push_back(resolve(s, r, current));
      if (layer.inputs.size() == 1) {
        aliased = layer.inputs[0];
      } else {
        layer.kind = LayerKind::Concat;
        const model::Shape first = m.layers[layer.inputs[0]].output;
        for (int in : layer.inputs)
          if (m.layers[in].output.height != first.height ||
              m.layers[in].output.width != first.width)
            fail(s, "routed layers differ in spatial size");
      }
    } else if (s.type == "shortcut") {
      const std::vector<int> from = get_ints(s, "from");
      layer.activation = parse_activation(s);
      check_unknown_keys(s);
      if (from.size() != 1) fail(s, "'from' must name exactly one layer");
      layer.kind = LayerKind::Add;
      layer.inputs = {previous, resolve(s, from[0], current)};
      if (!(m.layers[layer.inputs[1]].output == in_shape))
        fail(s, "shortcut between layers of different shapes is not supported");
    } else if (s.type == "dropout") {
      check_unknown_keys(s);
      aliased = previous;  // inverted dropout: identity at inference
    } else if (s.type == "yolo") {
      const std::vector<int> mask = get_ints(s, "mask");
      const std::vector<float> anchors = get_floats(s, "anchors");
      model::YoloHead head;
      head.layer = previous;
      head.num_classes = get_int(s, "classes", 20, 1, 10000);
      head.scale_x_y = get_float(s, "scale_x_y", 1.0f);
      check_unknown_keys(s);
      if (anchors.size() % 2 != 0) fail(s, "'anchors' must hold (w, h) pairs");
      if (mask.empty()) fail(s, "'mask' is empty");
      for (int a : mask) {
        if (a < 0 || 2 * static_cast<std::size_t>(a) + 1 >= anchors.size())
          fail(s, "mask refers to a missing anchor");
        head.anchors.push_back(anchors[2 * a]);
        head.anchors.push_back(anchors[2 * a + 1]);
      }
      if (in_shape.channels != static_cast<int>(mask.size()) * (5 + head.num_classes))
        fail(s, "the preceding layer has " + std::to_string(in_shape.channels) +
                    " channels; masks x (5 + classes) need " +
                    std::to_string(mask.size() * (5 + head.num_classes)));
      if (previous == 0) fail(s, "a [yolo] layer cannot read the network input");
      m.postprocess.yolo_heads.push_back(head);
      m.outputs.push_back(previous);
      aliased = previous;
    } else {
      fail(s, "unsupported section type");
    }

    if (aliased >= 0) {
      output_of.push_back(aliased);
      continue;
    }
    layer.output = model::infer_output_shape(m, layer);
    if (layer.output.channels < 1 || layer.output.height < 1 || layer.output.width < 1)
      fail(s, "produces an empty output");
    m.layers.push_back(std::move(layer));
    output_of.push_back(static_cast<int>(m.layers.size()) - 1);
  }
  reader.expect_end();

  if (m.postprocess.yolo_heads.empty()) throw Error("cfg has no [yolo] layer: not a YOLO detector");
  const int classes = m.postprocess.yolo_heads.front().num_classes;
  for (const auto& head : m.postprocess.yolo_heads)
    if (head.num_classes != classes) throw Error("[yolo] layers disagree on the number of classes");
  if (m.class_names.empty())
    for (int c = 0; c < classes; ++c) m.class_names.push_back("class" + std::to_string(c));
  if (static_cast<int>(m.class_names.size()) != classes)
    throw Error("the class list has " + std::to_string(m.class_names.size()) + " names, the cfg " +
                std::to_string(classes) + " classes");
  model::validate(m);
  return m;
}

Model import_darknet(const DarknetFiles& files) {
  const std::vector<std::uint8_t> cfg_bytes = model::read_file_bytes(files.cfg, 16 << 20);
  const std::vector<std::uint8_t> weights = model::read_file_bytes(files.weights);
  std::filesystem::path names_path = files.names;
  if (names_path.empty()) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(files.cfg.parent_path(), ec))
      if (entry.path().extension() == ".names") names_path = entry.path();
  }
  std::vector<std::string> names;
  if (!names_path.empty()) {
    std::ifstream in(names_path);
    if (!in) throw Error("cannot open class names '" + names_path.string() + "'");
    std::string line;
    while (std::getline(in, line))
      if (!trim(line).empty()) names.push_back(trim(line));
  }
  try {
    Model m = import_darknet_from_memory(std::string(cfg_bytes.begin(), cfg_bytes.end()), weights,
                                         names, files.cfg.stem().string());
    m.source = files.cfg.filename().string() + " + " + files.weights.filename().string();
    return m;
  } catch (const Error& e) {
    throw Error("importing '" + files.cfg.string() + "': " + e.what());
  }
}

}  // namespace mpdet::import
