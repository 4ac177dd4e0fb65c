#include "vision/yolo_decode.h"

#include <cmath>
#include <cstddef>
#include <string>

#include "mpdet/error.h"

namespace mpdet::vision {

namespace {

// Never evaluates exp of a large positive argument, so it cannot overflow to inf/inf = NaN
// for very negative logits.
inline float sigmoid(float x) {
  if (x >= 0) return 1.0f / (1.0f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.0f + e);
}

}  // namespace

void decode_yolo_head(const float* head, int grid_h, int grid_w, const YoloHeadSpec& spec,
                      int net_w, int net_h, float conf_threshold, bool multi_label,
                      Detections& out) {
  if (head == nullptr) throw Error("decode_yolo_head: head tensor pointer is null");
  if (grid_h <= 0 || grid_w <= 0) {
    throw Error("decode_yolo_head: grid " + std::to_string(grid_w) + "x" + std::to_string(grid_h) +
                " is empty");
  }
  if (spec.anchors.empty() || spec.anchors.size() % 2 != 0) {
    throw Error("decode_yolo_head: anchors must be non-empty (w, h) pairs, got " +
                std::to_string(spec.anchors.size()) + " values");
  }
  if (spec.num_classes <= 0) {
    throw Error("decode_yolo_head: num_classes must be positive, got " +
                std::to_string(spec.num_classes));
  }

  const int num_anchors = static_cast<int>(spec.anchors.size() / 2);
  const int channels_per_anchor = 5 + spec.num_classes;
  const std::size_t plane = static_cast<std::size_t>(grid_h) * grid_w;
  const float centre_shift = (spec.scale_x_y - 1.0f) / 2.0f;

  for (int a = 0; a < num_anchors; ++a) {
    const float* anchor_base = head + static_cast<std::size_t>(a) * channels_per_anchor * plane;
    const float anchor_w = spec.anchors[2 * a];
    const float anchor_h = spec.anchors[2 * a + 1];
    for (int row = 0; row < grid_h; ++row) {
      for (int col = 0; col < grid_w; ++col) {
        const std::size_t cell = static_cast<std::size_t>(row) * grid_w + col;
        const auto channel = [&](int k) { return anchor_base[k * plane + cell]; };

        // Every score is objectness times a class probability <= 1, so a cell-anchor whose
        // objectness does not pass cannot produce a detection.
        const float objectness = sigmoid(channel(4));
        if (!(objectness > conf_threshold)) continue;

        const float centre_x =
            (col + sigmoid(channel(0)) * spec.scale_x_y - centre_shift) / grid_w * net_w;
        const float centre_y =
            (row + sigmoid(channel(1)) * spec.scale_x_y - centre_shift) / grid_h * net_h;
        const float half_w = std::exp(channel(2)) * anchor_w / 2.0f;
        const float half_h = std::exp(channel(3)) * anchor_h / 2.0f;
        const Box box{centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h};

        if (multi_label) {
          for (int k = 0; k < spec.num_classes; ++k) {
            const float score = objectness * sigmoid(channel(5 + k));
            if (score > conf_threshold) out.push_back(Detection{k, score, box});
          }
        } else {
          // sigmoid is monotonic, so the best class is the largest logit (lowest id on ties).
          int best_class = 0;
          float best_logit = channel(5);
          for (int k = 1; k < spec.num_classes; ++k) {
            if (channel(5 + k) > best_logit) {
              best_logit = channel(5 + k);
              best_class = k;
            }
          }
          const float score = objectness * sigmoid(best_logit);
          if (score > conf_threshold) out.push_back(Detection{best_class, score, box});
        }
      }
    }
  }
}

}  // namespace mpdet::vision
