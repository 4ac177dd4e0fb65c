// The Vulkan backend against the integer reference backend, bit for bit: every op on random
// layers of many shapes (one op per model, its uint8 codes and, for convolutions, its head codes
// compared), whole quantized models, and clear errors. Runs on whatever device the loader offers
// (lavapipe in CI); with no Vulkan device at all the tests are skipped, saying why.
#include <gtest/gtest.h>

#include <random>

#include "import/darknet_importer.h"
#include "mpdet/error.h"
#include "quant/calibration.h"
#include "quant/model_quantizer.h"
#include "runtime/integer_reference_backend.h"
#include "test_data.h"
#include "tiny_quantized.h"
#include "vulkan/vulkan_backend.h"

namespace {

using namespace mpdet;
using model::LayerKind;
using test::quantize_tiny;

bool vulkan_available(std::string* why) {
  try {
    return !vulkan::Device::list().empty() || (*why = "no Vulkan device", false);
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
}

#define REQUIRE_VULKAN()                                            \
  do {                                                              \
    std::string why;                                                \
    if (!vulkan_available(&why)) GTEST_SKIP() << "Vulkan: " << why; \
  } while (0)

ops::QuantParams random_quant(std::mt19937& rng) {
  std::uniform_real_distribution<float> scale(0.005f, 0.1f);
  std::uniform_int_distribution<int> zero(0, 255);
  return {scale(rng), zero(rng)};
}

// Input (random quantization) -> op -> identity concat; outputs: the op (head codes for a
// convolution) and the concat (the op's uint8 codes).
struct OpModel {
  model::Model m;
  model::Layer& add(model::Layer layer) {
    m.layers.push_back(std::move(layer));
    return m.layers.back();
  }
  void finish(std::mt19937& rng) {
    const int op = static_cast<int>(m.layers.size()) - 1;
    model::Layer identity;
    identity.name = "identity";
    identity.kind = LayerKind::Concat;
    identity.inputs = {op};
    identity.output = m.layers[op].output;
    identity.output_quant = m.layers[op].output_quant;
    (void)rng;
    m.layers.push_back(identity);
    m.outputs = {op, op + 1};
    m.quantized = true;
  }
};

OpModel with_input(std::mt19937& rng, ops::Shape shape) {
  OpModel om;
  model::Layer in;
  in.name = "input";
  in.output = shape;
  in.output_quant = random_quant(rng);
  om.add(in);
  return om;
}

model::Model random_conv(std::mt19937& rng, ops::Shape in_shape, ops::ConvParams p, int bits,
                         int max_points, ops::Activation activation) {
  OpModel om = with_input(rng, in_shape);
  model::Layer conv;
  conv.name = "conv";
  conv.kind = LayerKind::Conv2d;
  conv.inputs = {0};
  conv.conv = p;
  conv.activation = activation;
  conv.output = {p.out_channels, ops::conv_output_size(in_shape.height, p),
                 ops::conv_output_size(in_shape.width, p)};
  conv.output_quant = random_quant(rng);
  const int taps = in_shape.channels / p.groups * p.kernel * p.kernel;
  const int limit = (1 << (bits - 1)) - 1;
  std::uniform_int_distribution<int> points(1, max_points), code(-limit, limit);
  std::uniform_real_distribution<float> scale(0.0005f, 0.02f), bias(-1.0f, 1.0f);
  model::Tensor codes{"w", model::DataType::I8}, scales{"a"}, biases{"b"};
  codes.bits = bits;
  for (int oc = 0; oc < p.out_channels; ++oc) {
    conv.weight_quant.points.push_back(points(rng));
    biases.data.push_back(bias(rng));
    for (int k = 0; k < conv.weight_quant.points.back(); ++k) {
      scales.data.push_back(scale(rng) / static_cast<float>(1 << k));
      for (int t = 0; t < taps; ++t) codes.codes.push_back(static_cast<std::int8_t>(code(rng)));
    }
  }
  const auto virtual_channels = static_cast<std::int64_t>(scales.data.size());
  codes.shape = {virtual_channels, in_shape.channels / p.groups, p.kernel, p.kernel};
  scales.shape = {virtual_channels};
  biases.shape = {p.out_channels};
  om.m.tensors = {codes, scales, biases};
  conv.weight_quant.weight_bits = bits;
  conv.weight_quant.weights = 0;
  conv.weight_quant.scales = 1;
  conv.bias_tensor = 2;
  om.add(conv);
  om.finish(rng);
  return om.m;
}

void random_input(std::mt19937& rng, std::vector<float>& input) {
  std::uniform_real_distribution<float> value(-1.5f, 3.0f);
  for (float& v : input) v = value(rng);
}

// Runs both backends on two random inputs; every output must be identical.
void expect_bit_exact(const model::Model& m, const std::string& what, std::mt19937& rng) {
  runtime::IntegerReferenceBackend reference(m);
  auto gpu = vulkan::create_vulkan_backend(m);
  std::vector<float> input(m.input_shape().elements());
  for (int image = 0; image < 2; ++image) {
    random_input(rng, input);
    reference.run(input);
    gpu->run(input);
    for (std::size_t o = 0; o < m.outputs.size(); ++o) {
      const auto want = reference.output(o), got = gpu->output(o);
      ASSERT_EQ(std::vector<float>(got.begin(), got.end()),
                std::vector<float>(want.begin(), want.end()))
          << what << ", output " << o;
    }
  }
}

TEST(VulkanOps, ConvolutionRandomShapesBitsAndPoints) {
  REQUIRE_VULKAN();
  std::mt19937 rng(7);
  struct Case {
    int in_c, h, w, out_c, kernel, stride, groups;
  };
  const Case cases[] = {
      {3, 17, 13, 8, 3, 2, 1},   {5, 9, 11, 7, 1, 1, 1},  {16, 10, 10, 16, 3, 1, 16},
      {12, 15, 9, 12, 3, 2, 12}, {8, 7, 7, 12, 3, 1, 4},  {6, 5, 19, 10, 1, 2, 2},
      {33, 4, 6, 5, 3, 1, 1},    {1, 12, 12, 3, 3, 1, 1}, {20, 8, 8, 20, 5, 1, 20},
  };
  const ops::Activation activations[] = {ops::Activation::Linear, ops::Activation::Leaky,
                                         ops::Activation::Relu};
  int n = 0;
  for (const Case& c : cases)
    for (int bits : {2, 3, 4, 8}) {
      const ops::ConvParams p{c.out_c, c.kernel, c.stride, c.kernel / 2, c.groups};
      const int max_points = 1 + n % 4;
      const auto activation = activations[n++ % 3];
      expect_bit_exact(random_conv(rng, {c.in_c, c.h, c.w}, p, bits, max_points, activation),
                       "conv " + std::to_string(c.in_c) + "x" + std::to_string(c.h) + "x" +
                           std::to_string(c.w) + " -> " + std::to_string(c.out_c) + " k" +
                           std::to_string(c.kernel) + " s" + std::to_string(c.stride) + " g" +
                           std::to_string(c.groups) + " w" + std::to_string(bits),
                       rng);
    }
}

model::Model pool_model(std::mt19937& rng, ops::Shape s, ops::PoolParams p) {
  OpModel om = with_input(rng, s);
  model::Layer pool;
  pool.name = "pool";
  pool.kind = LayerKind::MaxPool;
  pool.inputs = {0};
  pool.pool = p;
  pool.output = {s.channels, ops::pool_output_size(s.height, p), ops::pool_output_size(s.width, p)};
  pool.output_quant = om.m.layers[0].output_quant;
  om.add(pool);
  om.finish(rng);
  return om.m;
}

TEST(VulkanOps, MaxPoolAndUpsample) {
  REQUIRE_VULKAN();
  std::mt19937 rng(11);
  for (ops::Shape s : {ops::Shape{3, 9, 7}, ops::Shape{8, 16, 16}, ops::Shape{5, 1, 3}}) {
    expect_bit_exact(pool_model(rng, s, {2, 2, 1}), "maxpool 2/2", rng);
    expect_bit_exact(pool_model(rng, s, {3, 1, 2}), "maxpool 3/1", rng);
    OpModel om = with_input(rng, s);
    model::Layer up;
    up.name = "up";
    up.kind = LayerKind::Upsample;
    up.inputs = {0};
    up.upsample_factor = 2;
    up.output = {s.channels, s.height * 2, s.width * 2};
    up.output_quant = om.m.layers[0].output_quant;
    om.add(up);
    om.finish(rng);
    expect_bit_exact(om.m, "upsample", rng);
  }
}

TEST(VulkanOps, ConcatAndAddRequantize) {
  REQUIRE_VULKAN();
  std::mt19937 rng(13);
  for (int trial = 0; trial < 6; ++trial) {
    const ops::Shape s{1 + trial, 5 + trial, 7};
    // Two differently quantized branches of the input (1x1 convs), then add and concat them.
    model::Model m = random_conv(rng, s, {s.channels, 1, 1, 0, 1}, 8, 1, ops::Activation::Linear);
    m.layers.pop_back();  // drop the identity concat
    model::Layer second = m.layers[1];
    second.name = "conv2";
    second.output_quant = random_quant(rng);
    m.layers.push_back(second);
    model::Layer add;
    add.name = "add";
    add.kind = LayerKind::Add;
    add.inputs = {1, 2};
    add.output = m.layers[1].output;
    add.activation = trial % 2 ? ops::Activation::Leaky : ops::Activation::Linear;
    add.output_quant = random_quant(rng);
    m.layers.push_back(add);
    model::Layer cat;
    cat.name = "concat";
    cat.kind = LayerKind::Concat;
    cat.inputs = {3, 0, 2};
    cat.output = {s.channels * 3, s.height, s.width};
    cat.output_quant = random_quant(rng);
    m.layers.push_back(cat);
    m.outputs = {3, 4};
    expect_bit_exact(m, "add + concat trial " + std::to_string(trial), rng);
  }
}

TEST(VulkanBackend, WholeTinyModelsMatchIntegerReference) {
  REQUIRE_VULKAN();
  std::mt19937 rng(17);
  expect_bit_exact(quantize_tiny(quant::WeightMethod::Multipoint, 4, 1.5), "tiny w4 mp", rng);
  expect_bit_exact(quantize_tiny(quant::WeightMethod::Multipoint, 3, 2.0), "tiny w3 mp", rng);
  expect_bit_exact(quantize_tiny(quant::WeightMethod::Naive, 8, 1.0), "tiny w8", rng);
  expect_bit_exact(quantize_tiny(quant::WeightMethod::Naive, 2, 1.0), "tiny w2", rng);
}

// A real network: Yolo-Fastest (VOC) quantized W4 multipoint on a few calibration images.
TEST(VulkanBackend, YoloFastestW4MultipointMatchesIntegerReference) {
  REQUIRE_VULKAN();
  const auto dir = test::data_dir() / "models" / "yolo-fastest-voc";
  if (!std::filesystem::exists(dir / "yolo-fastest.cfg")) GTEST_SKIP() << "no shared models";
  const model::Model f = import::import_darknet(
      {dir / "yolo-fastest.cfg", dir / "yolo-fastest.weights", dir / "voc.names"});
  auto fill = [](std::size_t i, std::vector<float>& t) {
    std::mt19937 rng(static_cast<unsigned>(i));
    std::uniform_real_distribution<float> dist(0, 1);
    for (float& v : t) v = dist(rng);
  };
  quant::QuantizeOptions options;
  options.method = quant::WeightMethod::Multipoint;
  options.weight_bits = 4;
  options.budget = 1.25;
  const model::Model q = quant::quantize_model(f, quant::calibrate(f, 2, fill, {}), options);
  std::mt19937 rng(19);
  expect_bit_exact(q, "yolo-fastest w4mp", rng);
}

// Frames of many sizes, strides, channel orders and both resize modes: preprocessing on the
// device must give the same network outputs as vision::preprocess on the CPU.
TEST(VulkanBackend, DevicePreprocessingMatchesCpu) {
  REQUIRE_VULKAN();
  const model::Model q = quantize_tiny(quant::WeightMethod::Multipoint, 4, 1.5);
  runtime::IntegerReferenceBackend reference(q);
  auto gpu = vulkan::create_vulkan_backend(q);
  std::mt19937 rng(23);
  std::uniform_int_distribution<int> pixel(0, 255);
  struct Frame {
    int width, height, padding;
  };
  const ops::Shape in = q.input_shape();
  for (const Frame f : {Frame{640, 480, 0}, Frame{33, 17, 5}, Frame{in.width, in.height, 0},
                        Frame{7, 301, 1}, Frame{1, 1, 0}, Frame{500, 375, 3}})
    for (const auto resize : {vision::ResizeMode::Stretch, vision::ResizeMode::Letterbox})
      for (const auto format : {PixelFormat::BGR, PixelFormat::RGB}) {
        const std::size_t stride = static_cast<std::size_t>(f.width) * 3 + f.padding;
        std::vector<std::uint8_t> pixels(stride * f.height);
        for (auto& p : pixels) p = static_cast<std::uint8_t>(pixel(rng));
        const ImageView image{pixels.data(), f.width, f.height, stride, format};
        vision::PreprocessSpec spec;
        spec.width = in.width;
        spec.height = in.height;
        spec.mean = {10.5f, 0.0f, 3.25f};
        spec.scale = 1.0f / 200.0f;
        spec.resize = resize;
        std::vector<float> input(in.elements());
        const vision::ResizePlan plan = vision::plan_resize(image, spec);
        vision::execute_plan(image, spec, plan, input.data());
        reference.run(input);
        ASSERT_TRUE(gpu->run_image(image, spec, plan));
        for (std::size_t o = 0; o < q.outputs.size(); ++o) {
          const auto want = reference.output(o), got = gpu->output(o);
          ASSERT_EQ(std::vector<float>(got.begin(), got.end()),
                    std::vector<float>(want.begin(), want.end()))
              << f.width << "x" << f.height << " letterbox "
              << (resize == vision::ResizeMode::Letterbox);
        }
      }
}

TEST(VulkanBackend, ValidationLayerStaysQuiet) {
  REQUIRE_VULKAN();
  const model::Model q = quantize_tiny(quant::WeightMethod::Multipoint, 4, 1.5);
  vulkan::DeviceOptions options;
  options.validation = true;
  std::unique_ptr<runtime::Backend> gpu;
  try {
    gpu = vulkan::create_vulkan_backend(q, options);
  } catch (const Error& e) {
    GTEST_SKIP() << "validation layer unavailable: " << e.what();
  }
  std::vector<float> input(q.input_shape().elements(), 0.25f);
  gpu->set_profiling(true);
  gpu->run(input);
  gpu->run(input);
  std::vector<std::uint8_t> pixels(40 * 30 * 3, 99);
  const ImageView image{pixels.data(), 40, 30, 0, PixelFormat::BGR};
  vision::PreprocessSpec spec;
  spec.width = q.input_shape().width;
  spec.height = q.input_shape().height;
  EXPECT_TRUE(gpu->run_image(image, spec, vision::plan_resize(image, spec)));
  EXPECT_EQ(vulkan::vulkan_validation_messages(*gpu), 0);
  EXPECT_EQ(gpu->layer_timings().size(), q.layers.size() - 1);
}

TEST(VulkanBackend, ClearErrors) {
  REQUIRE_VULKAN();
  EXPECT_THROW(vulkan::create_vulkan_backend(test::tiny_float_model()), Error);
  const model::Model q = quantize_tiny(quant::WeightMethod::Naive, 4, 1.0);
  vulkan::DeviceOptions options;
  options.device_index = 99;
  EXPECT_THROW(vulkan::create_vulkan_backend(q, options), Error);
  auto gpu = vulkan::create_vulkan_backend(q);
  std::vector<float> wrong(5);
  EXPECT_THROW(gpu->run(wrong), Error);
}

}  // namespace
