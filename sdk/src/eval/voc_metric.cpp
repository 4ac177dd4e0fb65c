// Matching detections to ground truth and computing AP exactly as the VOC devkit does.
#include <algorithm>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>

#include "eval/voc.h"
#include "mpdet/error.h"

namespace mpdet::eval {
namespace {

// Boxes in the devkit's 1-based inclusive pixel coordinates, in double like the devkit.
struct InclusiveBox {
  double x1, y1, x2, y2;
};

InclusiveBox to_inclusive(const GroundTruthObject& truth) {
  return {truth.x1, truth.y1, truth.x2, truth.y2};
}

// Detections are 0-based; the devkit (and Darknet's result writer) add 1 to every coordinate.
InclusiveBox to_inclusive(const Box& box) {
  return {double{box.x1} + 1, double{box.y1} + 1, double{box.x2} + 1, double{box.y2} + 1};
}

// The devkit counts pixels inclusively, hence the +1 on every extent.
double devkit_iou(const InclusiveBox& a, const InclusiveBox& b) {
  const double overlap_w = std::min(a.x2, b.x2) - std::max(a.x1, b.x1) + 1;
  const double overlap_h = std::min(a.y2, b.y2) - std::max(a.y1, b.y1) + 1;
  if (overlap_w <= 0 || overlap_h <= 0) return 0.0;
  const double overlap = overlap_w * overlap_h;
  const double area_a = (a.x2 - a.x1 + 1) * (a.y2 - a.y1 + 1);
  const double area_b = (b.x2 - b.x1 + 1) * (b.y2 - b.y1 + 1);
  return overlap / (area_a + area_b - overlap);
}

// One point of the precision/recall curve per scored detection.
struct CurvePoint {
  double recall, precision;
};

// VOC2007: mean over recall thresholds 0, 0.1, ..., 1 of the best precision at recall >= t.
// t is computed as i / 10 (the exactly rounded decimal) rather than accumulated 0.1 steps.
double ap_11_point(const std::vector<CurvePoint>& curve) {
  double sum = 0.0;
  for (int step = 0; step <= 10; ++step) {
    const double threshold = step / 10.0;
    double best_precision = 0.0;
    for (const CurvePoint& point : curve) {
      if (point.recall >= threshold) best_precision = std::max(best_precision, point.precision);
    }
    sum += best_precision;
  }
  return sum / 11.0;
}

// VOC2010+: area under the precision envelope (precision made monotone decreasing from the
// right) between sentinel points (recall 0, precision 0) and (recall 1, precision 0).
double ap_all_point(const std::vector<CurvePoint>& curve) {
  std::vector<double> recall{0.0};
  std::vector<double> precision{0.0};
  for (const CurvePoint& point : curve) {
    recall.push_back(point.recall);
    precision.push_back(point.precision);
  }
  recall.push_back(1.0);
  precision.push_back(0.0);
  for (std::size_t i = precision.size() - 1; i > 0; --i) {
    precision[i - 1] = std::max(precision[i - 1], precision[i]);
  }
  double area = 0.0;
  for (std::size_t i = 0; i + 1 < recall.size(); ++i) {
    if (recall[i + 1] != recall[i]) area += (recall[i + 1] - recall[i]) * precision[i + 1];
  }
  return area;
}

// The ground truth of one class in one image, with the devkit's per-object "already
// detected" flag.
struct ClassTruthInImage {
  std::vector<InclusiveBox> boxes;
  std::vector<bool> difficult;
  std::vector<bool> matched;
};

enum class Outcome { kTruePositive, kFalsePositive, kIgnored };

Outcome match_detection(const InclusiveBox& detected, ClassTruthInImage* truth,
                        double iou_threshold) {
  if (truth == nullptr) return Outcome::kFalsePositive;
  // Like the devkit, the best overlap is searched over all objects, difficult and already
  // matched ones included; only then is it decided what that best object means.
  double best_iou = -1.0;
  std::size_t best = 0;
  for (std::size_t i = 0; i < truth->boxes.size(); ++i) {
    const double iou = devkit_iou(detected, truth->boxes[i]);
    if (iou > best_iou) {  // strict: the first of equal overlaps wins, as argmax does
      best_iou = iou;
      best = i;
    }
  }
  if (best_iou <= iou_threshold) return Outcome::kFalsePositive;
  if (truth->difficult[best]) return Outcome::kIgnored;
  if (truth->matched[best]) return Outcome::kFalsePositive;  // duplicate detection
  truth->matched[best] = true;
  return Outcome::kTruePositive;
}

ClassResult evaluate_class(int class_id, const std::string& class_name,
                           const std::vector<ImageAnnotation>& annotations,
                           const std::vector<ImageDetection>& detections, double iou_threshold) {
  ClassResult result;
  result.name = class_name;

  std::unordered_map<std::string, ClassTruthInImage> truth_by_image;
  for (const ImageAnnotation& annotation : annotations) {
    for (const GroundTruthObject& object : annotation.objects) {
      if (object.class_id != class_id) continue;
      ClassTruthInImage& truth = truth_by_image[annotation.image_id];
      truth.boxes.push_back(to_inclusive(object));
      truth.difficult.push_back(object.difficult);
      truth.matched.push_back(false);
      if (!object.difficult) ++result.positives;
    }
  }

  std::vector<const ImageDetection*> ranked;
  for (const ImageDetection& detection : detections) {
    if (detection.detection.class_id == class_id) ranked.push_back(&detection);
  }
  result.detections = static_cast<int>(ranked.size());
  // Stable, so equal scores keep the caller's order and results are reproducible.
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const ImageDetection* a, const ImageDetection* b) {
                     return a->detection.score > b->detection.score;
                   });

  // A detection that hits a difficult object is neither a TP nor an FP; the devkit keeps it as
  // a repeated curve point, which changes neither AP, so it is simply left out here.
  std::vector<CurvePoint> curve;
  int true_positives = 0;
  int false_positives = 0;
  for (const ImageDetection* detection : ranked) {
    const auto truth = truth_by_image.find(detection->image_id);
    ClassTruthInImage* image_truth = truth == truth_by_image.end() ? nullptr : &truth->second;
    switch (match_detection(to_inclusive(detection->detection.box), image_truth, iou_threshold)) {
      case Outcome::kTruePositive:
        ++true_positives;
        break;
      case Outcome::kFalsePositive:
        ++false_positives;
        break;
      case Outcome::kIgnored:
        continue;
    }
    if (result.positives > 0) {
      curve.push_back({static_cast<double>(true_positives) / result.positives,
                       static_cast<double>(true_positives) / (true_positives + false_positives)});
    }
  }

  // Without positives recall is undefined; the class reports 0 and is left out of the mean.
  if (result.positives > 0) {
    result.ap_voc07 = ap_11_point(curve);
    result.ap_all = ap_all_point(curve);
  }
  return result;
}

}  // namespace

VocResult evaluate_voc(const std::vector<ImageAnnotation>& annotations,
                       const std::vector<ImageDetection>& detections,
                       const std::vector<std::string>& class_names, double iou_threshold) {
  const int class_count = static_cast<int>(class_names.size());
  for (const ImageDetection& detection : detections) {
    const int class_id = detection.detection.class_id;
    if (class_id < 0 || class_id >= class_count) {
      throw Error("VOC evaluation: detection in image '" + detection.image_id + "' has class " +
                  std::to_string(class_id) + ", but only " + std::to_string(class_count) +
                  " classes are evaluated");
    }
  }
  // Two annotations under one id would silently merge their objects; refuse instead.
  std::unordered_map<std::string, int> seen_ids;
  for (const ImageAnnotation& annotation : annotations) {
    if (++seen_ids[annotation.image_id] > 1) {
      throw Error("VOC evaluation: image '" + annotation.image_id + "' is annotated twice");
    }
  }

  VocResult result;
  int classes_with_positives = 0;
  for (int class_id = 0; class_id < class_count; ++class_id) {
    ClassResult class_result =
        evaluate_class(class_id, class_names[class_id], annotations, detections, iou_threshold);
    if (class_result.positives > 0) {
      ++classes_with_positives;
      result.map_voc07 += class_result.ap_voc07;
      result.map_all += class_result.ap_all;
    }
    result.classes.push_back(std::move(class_result));
  }
  if (classes_with_positives > 0) {
    result.map_voc07 /= classes_with_positives;
    result.map_all /= classes_with_positives;
  }
  return result;
}

}  // namespace mpdet::eval
