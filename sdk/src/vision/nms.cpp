#include "vision/nms.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace mpdet::vision {

float iou(const Box& a, const Box& b) {
  const float iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  const float ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0.0f;
  const float inter = iw * ih;
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0f;
}

Detections nms_class_aware(const Detections& detections, float iou_threshold, int top_k) {
  // Indices grouped by class, each group in descending score (stable: input order on ties).
  std::map<int, std::vector<std::size_t>> by_class;
  for (std::size_t i = 0; i < detections.size(); ++i) by_class[detections[i].class_id].push_back(i);
  std::vector<std::size_t> kept;
  for (auto& [cls, indices] : by_class) {
    std::stable_sort(indices.begin(), indices.end(), [&](std::size_t a, std::size_t b) {
      return detections[a].score > detections[b].score;
    });
    std::vector<std::size_t> survivors;
    for (std::size_t i : indices) {
      bool suppressed = false;
      for (std::size_t k : survivors)
        if (iou(detections[i].box, detections[k].box) > iou_threshold) {
          suppressed = true;
          break;
        }
      if (!suppressed) survivors.push_back(i);
    }
    kept.insert(kept.end(), survivors.begin(), survivors.end());
  }
  std::stable_sort(kept.begin(), kept.end(), [&](std::size_t a, std::size_t b) {
    if (detections[a].score != detections[b].score) return detections[a].score > detections[b].score;
    if (detections[a].class_id != detections[b].class_id)
      return detections[a].class_id < detections[b].class_id;
    return a < b;
  });
  if (top_k > 0 && kept.size() > static_cast<std::size_t>(top_k)) kept.resize(top_k);
  Detections result;
  result.reserve(kept.size());
  for (std::size_t i : kept) result.push_back(detections[i]);
  return result;
}

}  // namespace mpdet::vision
