// Non-maximum suppression.
#pragma once

#include "mpdet/detection.h"

namespace mpdet::vision {

// Intersection over union of two boxes in continuous coordinates (0 when either is empty).
float iou(const Box& a, const Box& b);

// Class-aware greedy NMS: within each class, in descending score order, a box is dropped when
// its IoU with an already kept box exceeds iou_threshold. The survivors of all classes are
// returned sorted by descending score (ties: lower class id first, then input order), truncated
// to top_k when top_k > 0.
Detections nms_class_aware(const Detections& detections, float iou_threshold, int top_k);

}  // namespace mpdet::vision
