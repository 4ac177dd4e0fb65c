// Cross-layer equalization (quant/equalization.h): the equalized float model computes the same
// outputs, a depthwise block's activation channels end up with equal ranges, and dead channels,
// shared tensors and wrong inputs are handled.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "import/darknet_importer.h"
#include "mpdet/error.h"
#include "quant/calibration.h"
#include "quant/equalization.h"
#include "runtime/reference_backend.h"
#include "unit/tiny_darknet.h"

namespace {

using namespace mpdet;

// 1x1 conv (leaky) -> 3x3 depthwise (leaky) -> 1x1 conv (linear, the head): two equalizable pairs.
constexpr const char* kBlockCfg = R"([net]
width=16
height=16
channels=3
[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=0
activation=leaky
[convolutional]
batch_normalize=1
filters=8
size=3
groups=8
stride=1
pad=1
activation=leaky
[convolutional]
filters=7
size=1
stride=1
pad=0
activation=linear
[yolo]
mask=0
anchors=4,6
classes=2
num=1
)";

model::Model block_model() {
  const std::size_t floats = (8 + 3 * 8 + 8 * 3) + (8 + 3 * 8 + 8 * 9) + (7 + 7 * 8);
  model::Model m = import::import_darknet_from_memory(kBlockCfg, test::tiny_weights(floats, 9),
                                                      {"cat", "dog"}, "block");
  // Channel ranges over four orders of magnitude, and one dead channel, in the first conv.
  model::Layer& a = m.layers[1];
  std::vector<float>& w = m.tensors[a.weight_tensor].data;
  std::vector<float>& b = m.tensors[a.bias_tensor].data;
  for (int c = 0; c < 8; ++c) {
    const float f = c == 5 ? 0.0f : std::pow(10.0f, float(c % 4) - 2.0f);
    for (int k = 0; k < 3; ++k) w[c * 3 + k] *= f;
    b[c] *= f;
  }
  return m;
}

void random_input(std::size_t i, std::vector<float>& tensor) {
  std::mt19937 rng(static_cast<unsigned>(40 + i));
  std::uniform_real_distribution<float> dist(-1, 1);
  for (float& v : tensor) v = dist(rng);
}

quant::CalibrationData ranges_of(const model::Model& m) {
  quant::CalibrationOptions options;
  options.ranges_only = true;
  return quant::calibrate(m, 5, random_input, options);
}

TEST(Equalization, ScalesForSoleConvReadersOnly) {
  const model::Model m = block_model();
  const auto scales = quant::equalization_scales(m, ranges_of(m).channel_max);
  ASSERT_EQ(scales.size(), m.layers.size());
  EXPECT_EQ(scales[1].size(), 8u);  // -> depthwise
  EXPECT_EQ(scales[2].size(), 8u);  // -> head
  EXPECT_TRUE(scales[3].empty());   // the head is a network output
  EXPECT_EQ(scales[1][5], 1.0f);    // dead channel left alone
  for (const auto& layer : scales)
    for (float s : layer) EXPECT_TRUE(s > 0 && std::isfinite(s));
}

TEST(Equalization, KeepsOutputsAndEqualizesDepthwiseInputs) {
  const model::Model m = block_model();
  const quant::CalibrationData before = ranges_of(m);
  const auto scales = quant::equalization_scales(m, before.channel_max);
  const model::Model e = quant::apply_equalization(m, scales);
  runtime::ReferenceBackend rf(m), re(e);
  std::vector<float> input(m.input_shape().elements());
  for (std::size_t i = 0; i < 3; ++i) {
    random_input(i, input);
    rf.run(input);
    re.run(input);
    const auto a = rf.output(0), b = re.output(0);
    double scale = 0;
    for (float v : a) scale = std::max(scale, double(std::abs(v)));
    for (std::size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-4 * scale) << k;
  }
  // Same inputs, so the equalized ranges are r_c / s_c: every live channel at the largest range.
  const quant::CalibrationData after = ranges_of(e);
  const std::vector<float>& r = before.channel_max[1];
  const float largest = *std::max_element(r.begin(), r.end());
  for (int c = 0; c < 8; ++c) {
    if (c == 5) continue;
    EXPECT_NEAR(after.channel_max[1][c], largest, 1e-4 * largest) << c;
  }
  // Before, the per-tensor range hid the small channels (what equalization is for).
  float smallest = largest;
  for (int c = 0; c < 8; ++c)
    if (c != 5) smallest = std::min(smallest, r[c]);
  EXPECT_LT(smallest, 0.02f * largest);
}

TEST(Equalization, NoScalesIsTheSameModelAndBadInputsThrow) {
  const model::Model m = block_model();
  const model::Model same = quant::apply_equalization(m, {});
  EXPECT_EQ(same.tensors[0].data, m.tensors[0].data);
  EXPECT_THROW(quant::equalization_scales(m, {}), Error);
  std::vector<std::vector<float>> wrong(m.layers.size());
  wrong[3] = std::vector<float>(7, 2.0f);  // the head has no sole reader
  EXPECT_THROW(quant::apply_equalization(m, wrong), Error);
  std::vector<std::vector<float>> negative(m.layers.size());
  negative[1] = std::vector<float>(8, -1.0f);
  EXPECT_THROW(quant::apply_equalization(m, negative), Error);
}

}  // namespace
