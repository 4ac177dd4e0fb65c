#include "vision/nms.h"

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <vector>

namespace mpdet::vision {

namespace {

// IoU of two boxes whose areas (Box::area, 0 when empty) are already known.
inline float overlap_ratio(const Box& a, float area_a, const Box& b, float area_b) {
  if (area_a <= 0 || area_b <= 0) return 0.0f;
  const float overlap_w = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  const float overlap_h = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (overlap_w <= 0 || overlap_h <= 0) return 0.0f;
  const float intersection = overlap_w * overlap_h;
  return intersection / (area_a + area_b - intersection);
}

}  // namespace

float iou(const Box& a, const Box& b) {
  return overlap_ratio(a, a.area(), b, b.area());
}

Detections nms_class_aware(const Detections& detections, float iou_threshold, int top_k) {
  // One sort groups the classes and orders each group by descending score; input order breaks
  // ties, which keeps the result independent of the sort implementation.
  std::vector<std::size_t> order(detections.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t lhs, std::size_t rhs) {
    const Detection& a = detections[lhs];
    const Detection& b = detections[rhs];
    if (a.class_id != b.class_id) return a.class_id < b.class_id;
    if (a.score != b.score) return a.score > b.score;
    return lhs < rhs;
  });

  // The survivors of the current class, copied contiguously with their areas so the inner
  // loop (the hot one with thousands of candidates) streams through memory.
  struct KeptBox {
    Box box;
    float area;
  };
  std::vector<KeptBox> class_kept;
  std::vector<std::size_t> kept;
  kept.reserve(order.size());
  std::size_t group_begin = 0;
  while (group_begin < order.size()) {
    const int class_id = detections[order[group_begin]].class_id;
    std::size_t group_end = group_begin;
    while (group_end < order.size() && detections[order[group_end]].class_id == class_id) {
      ++group_end;
    }
    class_kept.clear();
    for (std::size_t i = group_begin; i < group_end; ++i) {
      const Box& candidate = detections[order[i]].box;
      const float candidate_area = candidate.area();
      bool suppressed = false;
      for (const KeptBox& other : class_kept) {
        if (overlap_ratio(candidate, candidate_area, other.box, other.area) > iou_threshold) {
          suppressed = true;
          break;
        }
      }
      if (suppressed) continue;
      kept.push_back(order[i]);
      class_kept.push_back({candidate, candidate_area});
    }
    group_begin = group_end;
  }

  std::sort(kept.begin(), kept.end(), [&](std::size_t lhs, std::size_t rhs) {
    const Detection& a = detections[lhs];
    const Detection& b = detections[rhs];
    if (a.score != b.score) return a.score > b.score;
    if (a.class_id != b.class_id) return a.class_id < b.class_id;
    return lhs < rhs;
  });
  if (top_k > 0 && kept.size() > static_cast<std::size_t>(top_k)) kept.resize(top_k);

  Detections result;
  result.reserve(kept.size());
  for (std::size_t index : kept) result.push_back(detections[index]);
  return result;
}

}  // namespace mpdet::vision
