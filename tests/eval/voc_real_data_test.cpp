// The shared VOC2007 tree: the reader copes with every real annotation, and the evaluator
// scores the ground truth itself as a perfect detector.
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "eval/voc.h"
#include "test_data.h"

namespace mpdet::eval {
namespace {

TEST(VocRealData, TestSetAnnotationsMatchPublishedCounts) {
  const std::filesystem::path root = test::voc_root();
  ASSERT_TRUE(std::filesystem::is_directory(root)) << "VOC2007 not found at " << root;
  const std::vector<ImageAnnotation> annotations =
      read_annotations(root, "test", voc_class_names());
  // VOC2007 test: 4952 images with 14976 objects, 2944 of them difficult.
  ASSERT_EQ(annotations.size(), 4952u);
  std::size_t objects = 0;
  std::size_t difficult = 0;
  for (const ImageAnnotation& annotation : annotations) {
    EXPECT_FALSE(annotation.objects.empty()) << annotation.image_id;
    EXPECT_GT(annotation.width, 0) << annotation.image_id;
    EXPECT_GT(annotation.height, 0) << annotation.image_id;
    for (const GroundTruthObject& object : annotation.objects) {
      ++objects;
      if (object.difficult) ++difficult;
      // 1-based inclusive boxes lie inside the image.
      EXPECT_GE(object.x1, 1) << annotation.image_id;
      EXPECT_GE(object.y1, 1) << annotation.image_id;
      EXPECT_LE(object.x2, annotation.width) << annotation.image_id;
      EXPECT_LE(object.y2, annotation.height) << annotation.image_id;
      EXPECT_LE(object.x1, object.x2) << annotation.image_id;
      EXPECT_LE(object.y1, object.y2) << annotation.image_id;
    }
  }
  EXPECT_EQ(objects, 14976u);
  EXPECT_EQ(difficult, 2944u);
  EXPECT_EQ(annotations.front().image_id, "000001");
  EXPECT_EQ(annotations.front().width, 353);
}

TEST(VocRealData, GroundTruthAsDetectionsScoresMapOne) {
  const std::filesystem::path root = test::voc_root();
  ASSERT_TRUE(std::filesystem::is_directory(root)) << "VOC2007 not found at " << root;
  const std::vector<ImageAnnotation> annotations = read_annotations(root, "dev", voc_class_names());
  ASSERT_FALSE(annotations.empty());
  std::vector<ImageDetection> detections;
  for (const ImageAnnotation& annotation : annotations) {
    for (const GroundTruthObject& object : annotation.objects) {
      if (object.difficult) continue;
      ImageDetection detection;
      detection.image_id = annotation.image_id;
      detection.detection.class_id = object.class_id;
      detection.detection.score = 1.0f;
      detection.detection.box = Box{object.x1 - 1, object.y1 - 1, object.x2 - 1, object.y2 - 1};
      detections.push_back(detection);
    }
  }
  const VocResult result = evaluate_voc(annotations, detections, voc_class_names());
  ASSERT_EQ(result.classes.size(), 20u);
  for (const ClassResult& class_result : result.classes) {
    EXPECT_GT(class_result.positives, 0) << class_result.name;
    EXPECT_DOUBLE_EQ(class_result.ap_voc07, 1.0) << class_result.name;
    EXPECT_DOUBLE_EQ(class_result.ap_all, 1.0) << class_result.name;
  }
  EXPECT_DOUBLE_EQ(result.map_voc07, 1.0);
  EXPECT_DOUBLE_EQ(result.map_all, 1.0);
}

}  // namespace
}  // namespace mpdet::eval
