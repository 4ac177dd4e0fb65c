#include "vision/nms.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include <opencv2/dnn.hpp>

namespace mpdet::vision {
namespace {

Detection make(int class_id, float score, float x1, float y1, float x2, float y2) {
  return Detection{class_id, score, Box{x1, y1, x2, y2}};
}

TEST(Iou, ContinuousCoordinates) {
  EXPECT_FLOAT_EQ(iou(Box{0, 0, 10, 10}, Box{0, 0, 10, 10}), 1.0f);
  EXPECT_FLOAT_EQ(iou(Box{0, 0, 10, 10}, Box{5, 0, 15, 10}), 50.0f / 150.0f);
  // Touching edges share no area (no +1 pixel convention).
  EXPECT_EQ(iou(Box{0, 0, 10, 10}, Box{10, 0, 20, 10}), 0.0f);
  EXPECT_EQ(iou(Box{0, 0, 10, 10}, Box{20, 20, 30, 30}), 0.0f);
  // Empty or inverted boxes.
  EXPECT_EQ(iou(Box{0, 0, 0, 10}, Box{0, 0, 10, 10}), 0.0f);
  EXPECT_EQ(iou(Box{5, 5, 5, 5}, Box{5, 5, 5, 5}), 0.0f);
  EXPECT_EQ(iou(Box{10, 0, 0, 10}, Box{0, 0, 10, 10}), 0.0f);
}

TEST(Nms, SuppressesOverlappingBoxesOfOneClass) {
  const Detections in = {make(0, 0.9f, 0, 0, 10, 10), make(0, 0.8f, 1, 0, 11, 10),
                         make(0, 0.7f, 50, 50, 60, 60)};
  const Detections out = nms_class_aware(in, 0.5f, 0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);
  EXPECT_FLOAT_EQ(out[1].score, 0.7f);
}

TEST(Nms, DifferentClassesDoNotSuppressEachOther) {
  const Detections in = {make(0, 0.9f, 0, 0, 10, 10), make(1, 0.8f, 0, 0, 10, 10)};
  const Detections out = nms_class_aware(in, 0.5f, 0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].class_id, 0);
  EXPECT_EQ(out[1].class_id, 1);
}

// IoU 50/150 = 1/3 computed in float; a threshold of exactly that value keeps the box.
TEST(Nms, IouEqualToThresholdIsKept) {
  const Detections in = {make(0, 0.9f, 0, 0, 10, 10), make(0, 0.8f, 5, 0, 15, 10)};
  const float exact = iou(in[0].box, in[1].box);
  EXPECT_EQ(nms_class_aware(in, exact, 0).size(), 2u);
  EXPECT_EQ(nms_class_aware(in, std::nextafter(exact, 0.0f), 0).size(), 1u);
  // Exact binary fractions: IoU 0.5 at threshold 0.5.
  const Detections half = {make(2, 0.6f, 0, 0, 4, 3), make(2, 0.5f, 0, 0, 2, 3)};
  EXPECT_EQ(iou(half[0].box, half[1].box), 0.5f);
  EXPECT_EQ(nms_class_aware(half, 0.5f, 0).size(), 2u);
}

// A suppressed box does not suppress others: only kept boxes count.
TEST(Nms, OnlyKeptBoxesSuppress) {
  const Detections in = {make(0, 0.9f, 0, 0, 10, 10), make(0, 0.8f, 4, 0, 14, 10),
                         make(0, 0.7f, 8, 0, 18, 10)};
  const Detections out = nms_class_aware(in, 0.3f, 0);
  ASSERT_EQ(out.size(), 2u);  // box 1 goes (IoU 0.43); box 2 overlaps box 0 by 0.11 only
  EXPECT_FLOAT_EQ(out[1].score, 0.7f);
}

TEST(Nms, TopKTruncatesAfterSorting) {
  Detections in;
  for (int i = 0; i < 10; ++i) {
    in.push_back(make(i % 3, 0.1f * (i + 1) - 0.05f, 20.0f * i, 0, 20.0f * i + 10, 10));
  }
  const Detections out = nms_class_aware(in, 0.5f, 4);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_FLOAT_EQ(out[0].score, 0.95f);
  EXPECT_FLOAT_EQ(out[3].score, 0.65f);
  EXPECT_EQ(nms_class_aware(in, 0.5f, 0).size(), 10u);
  EXPECT_EQ(nms_class_aware(in, 0.5f, 100).size(), 10u);
  EXPECT_TRUE(nms_class_aware({}, 0.5f, 5).empty());
}

// Equal scores: lower class id first, then input order; the same input gives the same output.
TEST(Nms, DeterministicTieOrder) {
  const Detections in = {make(3, 0.5f, 0, 0, 1, 1),    make(1, 0.5f, 10, 0, 11, 1),
                         make(1, 0.5f, 20, 0, 21, 1),  make(0, 0.5f, 30, 0, 31, 1),
                         make(2, 0.75f, 40, 0, 41, 1), make(1, 0.5f, 20, 0, 21, 1)};
  const Detections out = nms_class_aware(in, 0.5f, 0);
  ASSERT_EQ(out.size(), 5u);  // the last box duplicates in[2] and loses the input-order tie
  const std::vector<std::tuple<int, float>> expected = {
      {2, 40.0f}, {0, 30.0f}, {1, 10.0f}, {1, 20.0f}, {3, 0.0f}};
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].class_id, std::get<0>(expected[i])) << i;
    EXPECT_EQ(out[i].box.x1, std::get<1>(expected[i])) << i;
  }
}

// Random boxes on a quarter-pixel grid (exact in float and double), per-class NMS against
// cv::dnn::NMSBoxes on Rect2d, whose IoU is the same continuous-coordinate formula.
TEST(Nms, MatchesOpenCvNmsBoxesPerClass) {
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int> coordinate(0, 4 * 200);
  std::uniform_int_distribution<int> extent(4, 4 * 80);
  std::uniform_int_distribution<int> class_of(0, 4);
  std::uniform_real_distribution<float> score_of(0.001f, 1.0f);
  for (int trial = 0; trial < 20; ++trial) {
    for (const float threshold : {0.3f, 0.45f, 0.6f}) {
      Detections in;
      for (int i = 0; i < 300; ++i) {
        const float x = coordinate(rng) / 4.0f, y = coordinate(rng) / 4.0f;
        const float w = extent(rng) / 4.0f, h = extent(rng) / 4.0f;
        in.push_back(make(class_of(rng), score_of(rng), x, y, x + w, y + h));
      }
      std::set<std::size_t> expected;
      std::map<int, std::vector<std::size_t>> by_class;
      for (std::size_t i = 0; i < in.size(); ++i) by_class[in[i].class_id].push_back(i);
      for (const auto& [class_id, members] : by_class) {
        std::vector<cv::Rect2d> rects;
        std::vector<float> scores;
        for (std::size_t i : members) {
          rects.emplace_back(in[i].box.x1, in[i].box.y1, in[i].box.width(), in[i].box.height());
          scores.push_back(in[i].score);
        }
        std::vector<int> kept;
        cv::dnn::NMSBoxes(rects, scores, 0.0f, threshold, kept, 1.0f, 0);
        for (int k : kept) expected.insert(members[k]);
      }

      const Detections out = nms_class_aware(in, threshold, 0);
      std::set<std::size_t> actual;
      for (const Detection& d : out) {
        // Recover the input index: boxes are (almost surely) unique with their scores.
        const auto it = std::find_if(in.begin(), in.end(), [&](const Detection& c) {
          return c.score == d.score && c.class_id == d.class_id && c.box.x1 == d.box.x1 &&
                 c.box.y1 == d.box.y1 && c.box.x2 == d.box.x2 && c.box.y2 == d.box.y2;
        });
        ASSERT_NE(it, in.end());
        actual.insert(static_cast<std::size_t>(it - in.begin()));
      }
      EXPECT_EQ(actual, expected) << "trial " << trial << " threshold " << threshold;
      EXPECT_TRUE(std::is_sorted(out.begin(), out.end(),
                                 [](const auto& a, const auto& b) { return a.score > b.score; }));
    }
  }
}

// Several thousand low-confidence candidates, as at conf 0.005, must stay cheap.
TEST(Nms, ManyCandidatesAreFast) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> position(0, 600), size(5, 200), score(0.005f, 1.0f);
  std::uniform_int_distribution<int> class_of(0, 19);
  Detections in;
  for (int i = 0; i < 8000; ++i) {
    const float x = position(rng), y = position(rng);
    in.push_back(make(class_of(rng), score(rng), x, y, x + size(rng), y + size(rng)));
  }
  const auto start = std::chrono::steady_clock::now();
  const Detections out = nms_class_aware(in, 0.45f, 0);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("nms: %zu -> %zu boxes in %.2f ms\n", in.size(), out.size(), ms);
  EXPECT_FALSE(out.empty());
  EXPECT_LT(ms, 500.0);
}

}  // namespace
}  // namespace mpdet::vision
