#include "vision/yolo_decode.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <vector>

#include "mpdet/error.h"

namespace mpdet::vision {
namespace {

float sigmoid_reference(double x) {
  return static_cast<float>(1.0 / (1.0 + std::exp(-x)));
}

// A head tensor in the documented layout; every objectness starts very negative so that only
// the cells a test sets up can produce detections.
class HeadBuilder {
 public:
  HeadBuilder(int num_anchors, int num_classes, int grid_h, int grid_w)
      : num_classes_(num_classes),
        grid_h_(grid_h),
        grid_w_(grid_w),
        values_(static_cast<std::size_t>(num_anchors) * (5 + num_classes) * grid_h * grid_w, 0.0f) {
    for (int a = 0; a < num_anchors; ++a) {
      for (int cell = 0; cell < grid_h * grid_w; ++cell) values_[index(a, 4, cell)] = -30.0f;
    }
  }
  // Channel k of anchor a at (row, col): k = 0..4 tx, ty, tw, th, obj, then class logits.
  void set(int a, int k, int row, int col, float value) {
    values_[index(a, k, row * grid_w_ + col)] = value;
  }
  const float* data() const { return values_.data(); }

 private:
  std::size_t index(int a, int k, int cell) const {
    const std::size_t channel = static_cast<std::size_t>(a) * (5 + num_classes_) + k;
    return channel * grid_h_ * grid_w_ + cell;
  }
  int num_classes_, grid_h_, grid_w_;
  std::vector<float> values_;
};

// Network 96x64, grid 3x2 (32-pixel cells); cell (row 1, col 2), anchor (10, 14).
// tx = ty = 0 -> centre of the cell (80, 48); tw = 0 -> w = 10; th = ln 2 -> h = 28.
TEST(YoloDecode, SingleCellHandComputedBoxAndScore) {
  HeadBuilder head(1, 2, 2, 3);
  head.set(0, 2, 1, 2, 0.0f);
  head.set(0, 3, 1, 2, std::log(2.0f));
  head.set(0, 4, 1, 2, 2.0f);   // objectness 0.880797
  head.set(0, 5, 1, 2, -1.0f);  // class 0: 0.268941
  head.set(0, 6, 1, 2, 1.0f);   // class 1: 0.731059
  YoloHeadSpec spec{{10, 14}, 2, 1.0f};
  Detections out;
  decode_yolo_head(head.data(), 2, 3, spec, 96, 64, 0.5f, false, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].class_id, 1);
  EXPECT_NEAR(out[0].score, sigmoid_reference(2.0) * sigmoid_reference(1.0), 1e-6);
  EXPECT_NEAR(out[0].score, 0.643914, 1e-5);
  EXPECT_NEAR(out[0].box.x1, 75, 1e-4);
  EXPECT_NEAR(out[0].box.x2, 85, 1e-4);
  EXPECT_NEAR(out[0].box.y1, 34, 1e-4);
  EXPECT_NEAR(out[0].box.y2, 62, 1e-4);
}

TEST(YoloDecode, MultiLabelEmitsEveryPassingClass) {
  HeadBuilder head(1, 3, 1, 1);
  head.set(0, 4, 0, 0, 5.0f);   // objectness 0.993307
  head.set(0, 5, 0, 0, 1.0f);   // 0.726 -> passes 0.3
  head.set(0, 6, 0, 0, -3.0f);  // 0.047 -> fails
  head.set(0, 7, 0, 0, 0.0f);   // 0.497 -> passes
  YoloHeadSpec spec{{16, 16}, 3, 1.0f};

  Detections multi;
  decode_yolo_head(head.data(), 1, 1, spec, 32, 32, 0.3f, true, multi);
  ASSERT_EQ(multi.size(), 2u);
  EXPECT_EQ(multi[0].class_id, 0);
  EXPECT_EQ(multi[1].class_id, 2);
  EXPECT_NEAR(multi[1].score, sigmoid_reference(5.0) * 0.5, 1e-6);
  // Both labels share one box: the centre of the single cell, anchor-sized.
  EXPECT_NEAR(multi[1].box.x1, 8, 1e-4);
  EXPECT_NEAR(multi[1].box.x2, 24, 1e-4);

  Detections best;
  decode_yolo_head(head.data(), 1, 1, spec, 32, 32, 0.3f, false, best);
  ASSERT_EQ(best.size(), 1u);
  EXPECT_EQ(best[0].class_id, 0);
  EXPECT_FLOAT_EQ(best[0].score, multi[0].score);
}

// Darknet's scale_x_y stretches the sigmoid around the cell centre:
// x = (col + sigmoid(tx) * s - (s - 1) / 2) / grid_w * net_w.
TEST(YoloDecode, ScaleXYOffset) {
  HeadBuilder head(1, 1, 2, 3);
  head.set(0, 0, 1, 2, std::log(3.0f));   // sigmoid = 0.75
  head.set(0, 1, 1, 2, -std::log(3.0f));  // sigmoid = 0.25
  head.set(0, 4, 1, 2, 4.0f);
  head.set(0, 5, 1, 2, 4.0f);
  YoloHeadSpec spec{{10, 10}, 1, 1.05f};
  Detections out;
  decode_yolo_head(head.data(), 2, 3, spec, 96, 64, 0.5f, false, out);
  ASSERT_EQ(out.size(), 1u);
  const float centre_x = (2 + 0.75f * 1.05f - 0.025f) * 32;  // 88.4
  const float centre_y = (1 + 0.25f * 1.05f - 0.025f) * 32;  // 39.6
  EXPECT_NEAR((out[0].box.x1 + out[0].box.x2) / 2, centre_x, 1e-4);
  EXPECT_NEAR((out[0].box.y1 + out[0].box.y2) / 2, centre_y, 1e-4);
  EXPECT_NEAR(centre_x, 88.4f, 1e-4);

  spec.scale_x_y = 1.0f;
  out.clear();
  decode_yolo_head(head.data(), 2, 3, spec, 96, 64, 0.5f, false, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NEAR((out[0].box.x1 + out[0].box.x2) / 2, 88.0f, 1e-4);
  EXPECT_NEAR((out[0].box.y1 + out[0].box.y2) / 2, 40.0f, 1e-4);
}

// A score exactly at the threshold is not reported: objectness 0.5 * class 0.5 = 0.25.
TEST(YoloDecode, ThresholdIsStrictlyGreater) {
  HeadBuilder head(1, 1, 1, 1);
  head.set(0, 4, 0, 0, 0.0f);
  head.set(0, 5, 0, 0, 0.0f);
  YoloHeadSpec spec{{4, 4}, 1, 1.0f};
  for (bool multi_label : {false, true}) {
    Detections out;
    decode_yolo_head(head.data(), 1, 1, spec, 8, 8, 0.25f, multi_label, out);
    EXPECT_TRUE(out.empty());
    decode_yolo_head(head.data(), 1, 1, spec, 8, 8, 0.2499f, multi_label, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FLOAT_EQ(out[0].score, 0.25f);
    // Objectness at the threshold skips the cell even though the class probability is 1.
    HeadBuilder certain(1, 1, 1, 1);
    certain.set(0, 4, 0, 0, 0.0f);
    certain.set(0, 5, 0, 0, 40.0f);
    out.clear();
    decode_yolo_head(certain.data(), 1, 1, spec, 8, 8, 0.5f, multi_label, out);
    EXPECT_TRUE(out.empty());
  }
}

// Anchor a reads channels a * (5 + C) + k and uses anchor pair a; cells are row-major.
TEST(YoloDecode, ChannelLayoutPerAnchor) {
  const int classes = 2;
  HeadBuilder head(3, classes, 4, 5);
  head.set(2, 4, 3, 1, 6.0f);  // anchor 2, row 3, col 1
  head.set(2, 6, 3, 1, 6.0f);  // its class 1
  head.set(2, 2, 3, 1, std::log(0.5f));
  YoloHeadSpec spec{{10, 13, 16, 30, 33, 23}, classes, 1.0f};
  Detections out;
  decode_yolo_head(head.data(), 4, 5, spec, 160, 128, 0.5f, false, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].class_id, 1);
  EXPECT_NEAR(out[0].box.width(), 33 * 0.5f, 1e-4);
  EXPECT_NEAR(out[0].box.height(), 23, 1e-4);
  EXPECT_NEAR((out[0].box.x1 + out[0].box.x2) / 2, 1.5f * 32, 1e-4);
  EXPECT_NEAR((out[0].box.y1 + out[0].box.y2) / 2, 3.5f * 32, 1e-4);
}

TEST(YoloDecode, ExtremeLogitsStayFinite) {
  HeadBuilder head(1, 1, 1, 1);
  head.set(0, 0, 0, 0, -1000.0f);
  head.set(0, 1, 0, 0, 1000.0f);
  head.set(0, 4, 0, 0, 1000.0f);
  head.set(0, 5, 0, 0, -1000.0f);
  YoloHeadSpec spec{{4, 4}, 1, 1.0f};
  Detections out;
  decode_yolo_head(head.data(), 1, 1, spec, 8, 8, -1.0f, true, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].score, 0.0f);
  EXPECT_TRUE(std::isfinite(out[0].box.x1));
  EXPECT_NEAR((out[0].box.x1 + out[0].box.x2) / 2, 0.0f, 1e-5);
  EXPECT_NEAR((out[0].box.y1 + out[0].box.y2) / 2, 8.0f, 1e-5);
}

TEST(YoloDecode, RejectsMalformedSpec) {
  HeadBuilder head(1, 1, 1, 1);
  Detections out;
  EXPECT_THROW(
      decode_yolo_head(head.data(), 1, 1, YoloHeadSpec{{4, 4, 4}, 1, 1.0f}, 8, 8, 0.5f, false, out),
      Error);
  EXPECT_THROW(
      decode_yolo_head(head.data(), 1, 1, YoloHeadSpec{{4, 4}, 0, 1.0f}, 8, 8, 0.5f, false, out),
      Error);
  EXPECT_THROW(
      decode_yolo_head(nullptr, 1, 1, YoloHeadSpec{{4, 4}, 1, 1.0f}, 8, 8, 0.5f, false, out),
      Error);
}

}  // namespace
}  // namespace mpdet::vision
