// Decoding of YOLOv3-style heads (Darknet [yolo] layers) into scored boxes.
#pragma once

#include <vector>

#include "mpdet/detection.h"

namespace mpdet::vision {

struct YoloHeadSpec {
  std::vector<float> anchors;  // (w, h) pairs in network-input pixels, only this head's anchors
  int num_classes = 0;
  float scale_x_y = 1.0f;
};

// `head` is the raw (pre-sigmoid) output of the conv feeding the [yolo] layer, CHW with
// C = num_anchors * (5 + num_classes); channel a * (5 + num_classes) + k holds, for k = 0..4,
// tx, ty, tw, th, objectness, then the class logits.
// Box centre x = (col + sigmoid(tx) * scale_x_y - (scale_x_y - 1) / 2) / grid_w * net_w,
// width = exp(tw) * anchor_w; score = sigmoid(obj) * sigmoid(class).
// multi_label: one detection per class whose score > conf_threshold; otherwise only the best
// class, if its score > conf_threshold. Boxes are appended in network-input pixels.
void decode_yolo_head(const float* head, int grid_h, int grid_w, const YoloHeadSpec& spec,
                      int net_w, int net_h, float conf_threshold, bool multi_label,
                      Detections& out);

}  // namespace mpdet::vision
