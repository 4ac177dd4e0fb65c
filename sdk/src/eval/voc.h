// PASCAL VOC detection evaluation following the official devkit rules: a VOCdevkit tree is read
// (Annotations/<id>.xml, ImageSets/Main/<set>.txt, JPEGImages/<id>.jpg), detections are matched
// to ground truth greedily in descending score order with IoU > threshold using the devkit's
// +1 pixel convention, difficult objects are neither true nor false positives, and AP is
// reported with the VOC2007 11-point metric and the VOC2010+ all-point metric.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "mpdet/detection.h"

namespace mpdet::eval {

// The 20 VOC class names in the devkit's order.
const std::vector<std::string>& voc_class_names();

struct GroundTruthObject {
  int class_id = 0;
  // 1-based inclusive pixel coordinates exactly as written in the XML.
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  bool difficult = false;
};

struct ImageAnnotation {
  std::string image_id;
  int width = 0, height = 0;
  std::vector<GroundTruthObject> objects;
};

// Image ids listed in <voc_root>/ImageSets/Main/<set_name>.txt (blank lines skipped).
// Throws mpdet::Error naming the file when it is missing or unreadable.
std::vector<std::string> read_image_set(const std::filesystem::path& voc_root,
                                        const std::string& set_name);

// Parses one annotation XML. Objects whose <name> is not in class_names are skipped.
// Throws mpdet::Error naming the file and the problem for unreadable XML or missing or
// malformed fields (size, bndbox coordinates).
ImageAnnotation read_annotation(const std::filesystem::path& xml_path,
                                const std::vector<std::string>& class_names);

// Reads the annotations of every image of the set.
std::vector<ImageAnnotation> read_annotations(const std::filesystem::path& voc_root,
                                              const std::string& set_name,
                                              const std::vector<std::string>& class_names);

std::filesystem::path image_path(const std::filesystem::path& voc_root,
                                 const std::string& image_id);

struct ImageDetection {
  std::string image_id;
  Detection detection;  // box in 0-based continuous pixels (shifted +1 for matching)
};

struct ClassResult {
  std::string name;
  int positives = 0;      // non-difficult ground-truth objects
  int detections = 0;     // detections of this class that were scored
  double ap_voc07 = 0.0;  // 11-point interpolated AP
  double ap_all = 0.0;    // all-point (area under the monotone precision envelope)
};

struct VocResult {
  std::vector<ClassResult> classes;
  double map_voc07 = 0.0;  // mean over classes with at least one positive
  double map_all = 0.0;
};

VocResult evaluate_voc(const std::vector<ImageAnnotation>& annotations,
                       const std::vector<ImageDetection>& detections,
                       const std::vector<std::string>& class_names, double iou_threshold = 0.5);

// Writes the devkit's per-class result files <dir>/comp4_det_<set>_<class>.txt, one line per
// detection: "<image_id> <score> <x1> <y1> <x2> <y2>" with 1-based coordinates (box + 1).
// Each file is written to a temporary name and renamed into place.
void write_voc_result_files(const std::filesystem::path& dir, const std::string& set_name,
                            const std::vector<std::string>& class_names,
                            const std::vector<ImageDetection>& detections);

}  // namespace mpdet::eval
