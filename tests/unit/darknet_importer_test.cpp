#include <gtest/gtest.h>

#include <filesystem>

#include "import/darknet_importer.h"
#include "mpdet/error.h"
#include "test_data.h"
#include "tiny_darknet.h"

namespace {

using mpdet::import::import_darknet_from_memory;
using mpdet::model::LayerKind;

mpdet::model::Model import_tiny(
    const std::string& cfg = mpdet::test::kTinyCfg,
    const std::vector<std::uint8_t>& weights = mpdet::test::tiny_weights()) {
  return import_darknet_from_memory(cfg, weights, {"cat", "dog"}, "tiny");
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

void expect_error(const std::function<void()>& work, const std::string& fragment) {
  try {
    work();
    ADD_FAILURE() << "expected an error mentioning '" << fragment << "'";
  } catch (const mpdet::Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(DarknetImporter, BuildsTheGraphOfEverySection) {
  const auto m = import_tiny();
  // input, conv, dw conv, add, maxpool, conv(head 1), upsample, concat, conv(head 2):
  // dropout, single-input route and yolo alias existing layers.
  ASSERT_EQ(m.layers.size(), 9u);
  EXPECT_EQ(m.layers[3].kind, LayerKind::Add);
  EXPECT_EQ(m.layers[3].inputs, (std::vector<int>{2, 1}));
  EXPECT_EQ(m.layers[4].kind, LayerKind::MaxPool);
  EXPECT_EQ(m.layers[5].conv.pad, 0) << "pad=1 on a 1x1 kernel means size/2 = 0";
  EXPECT_EQ(m.layers[6].kind, LayerKind::Upsample);
  EXPECT_EQ(m.layers[6].inputs, (std::vector<int>{4})) << "route -3 from layer 7 is the maxpool";
  EXPECT_EQ(m.layers[7].kind, LayerKind::Concat);
  EXPECT_EQ(m.layers[7].inputs, (std::vector<int>{6, 2}))
      << "darknet layer 1 is the depthwise conv";
  EXPECT_EQ(m.layers[7].output, (mpdet::ops::Shape{16, 16, 16}));
  ASSERT_EQ(m.postprocess.yolo_heads.size(), 2u);
  EXPECT_EQ(m.postprocess.yolo_heads[0].layer, 5);
  EXPECT_EQ(m.postprocess.yolo_heads[0].anchors, (std::vector<float>{4, 6, 10, 12, 20, 18}));
  EXPECT_FLOAT_EQ(m.postprocess.yolo_heads[0].scale_x_y, 1.05f);
  EXPECT_EQ(m.postprocess.yolo_heads[1].anchors, (std::vector<float>{30, 28}));
  EXPECT_EQ(m.outputs, (std::vector<int>{5, 8}));
  EXPECT_EQ(m.preprocess.width, 32);
}

TEST(DarknetImporter, FoldsBatchNormAsDarknetComputesIt) {
  const auto bytes = mpdet::test::tiny_weights();
  auto f = [&](std::size_t i) {
    float v;
    std::memcpy(&v, bytes.data() + 20 + 4 * i, 4);
    return v;
  };
  // First conv: bias[8], gamma[8], mean[8], var[8], weights[8][3][3][3].
  const auto m = import_tiny();
  const auto& w = m.tensors[m.layers[1].weight_tensor].data;
  const auto& b = m.tensors[m.layers[1].bias_tensor].data;
  for (int c = 0; c < 8; ++c) {
    const double factor = f(8 + c) / std::sqrt(double(f(24 + c)) + 1e-6);
    EXPECT_NEAR(b[c], f(c) - f(16 + c) * factor, 1e-5);
    EXPECT_NEAR(w[c * 27 + 4], f(32 + c * 27 + 4) * factor, 1e-5);
  }
}

TEST(DarknetImporter, RejectsTruncatedAndOversizedWeights) {
  const std::size_t n = mpdet::test::tiny_weight_floats();
  expect_error([&] { import_tiny(mpdet::test::kTinyCfg, mpdet::test::tiny_weights(n - 1)); },
               "truncated");
  expect_error([&] { import_tiny(mpdet::test::kTinyCfg, mpdet::test::tiny_weights(n + 3)); },
               "bytes more");
  expect_error([&] { import_tiny(mpdet::test::kTinyCfg, std::vector<std::uint8_t>(7)); },
               "too short");
}

TEST(DarknetImporter, RejectsWhatItDoesNotUnderstand) {
  const std::string cfg = mpdet::test::kTinyCfg;
  expect_error([&] { import_tiny(cfg + "\n[gru]\noutput=4\n"); }, "unsupported section");
  expect_error([&] { import_tiny(replace_once(cfg, "activation=relu", "activation=mish")); },
               "mish");
  expect_error([&] { import_tiny(replace_once(cfg, "probability=.15", "probability=.15\nfoo=1")); },
               "unknown key 'foo'");
  expect_error(
      [&] {
        import_tiny(replace_once(cfg, "stride=2\npad=1\nactivation=leaky",
                                 "stride=2\npad=1\ndilation=2\nactivation=leaky"));
      },
      "dilation=2");
  expect_error([&] { import_tiny(replace_once(cfg, "layers = -3", "layers = 40")); },
               "does not precede");
  expect_error([&] { import_tiny(replace_once(cfg, "filters=21", "filters=20")); }, "channels");
  expect_error([&] { import_tiny(replace_once(cfg, "size=3\ngroups=8", "size=3\ngroups=3")); },
               "divisible");
  expect_error([&] { import_tiny(replace_once(cfg, "[net]", "net]")); }, "key=value");
  expect_error([&] { import_tiny(replace_once(cfg, "from=-3", "from=abc")); }, "from");
  expect_error([&] { import_tiny("[convolutional]\nfilters=1\n"); }, "[net]");
  expect_error([&] { import_tiny(""); }, "no sections");
}

TEST(DarknetImporter, DilationOfOneIsAccepted) {
  EXPECT_NO_THROW(
      import_tiny(replace_once(mpdet::test::kTinyCfg, "stride=2\npad=1\nactivation=leaky",
                               "stride=2\npad=1\ndilation=1\nactivation=leaky")));
}

TEST(DarknetImporter, ImportsTheSharedModels) {
  struct Case {
    const char* dir;
    const char* stem;
    double gmac;
  };
  for (const Case& c :
       {Case{"yolo-fastest-voc", "yolo-fastest", 0.119},
        Case{"yolo-fastest-xl-voc", "yolo-fastest-xl", 0.351},
        Case{"mobilenetv2-yolov3-nano-voc", "MobileNetV2-YOLOv3-Nano-voc", 0.247}}) {
    const auto dir = mpdet::test::data_dir() / "models" / c.dir;
    if (!std::filesystem::exists(dir)) GTEST_SKIP() << "shared models not found";
    const auto m = mpdet::import::import_darknet(
        {dir / (std::string(c.stem) + ".cfg"), dir / (std::string(c.stem) + ".weights"), {}});
    EXPECT_NEAR(mpdet::model::total_macs(m) / 1e9, c.gmac, 0.001) << c.stem;
    EXPECT_EQ(m.class_names.size(), 20u);
    EXPECT_EQ(m.class_names[14], "person");
    EXPECT_EQ(m.postprocess.yolo_heads.size(), 2u);
  }
}

}  // namespace
