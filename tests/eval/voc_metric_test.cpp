// Hand-built evaluations whose AP values are worked out on paper (see the comments at each
// expectation), so any deviation from the devkit's matching or AP rules fails a test.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "eval/voc.h"
#include "mpdet/error.h"

namespace mpdet::eval {
namespace {

constexpr int kCat = 0;
constexpr int kDog = 1;
constexpr int kBird = 2;
const std::vector<std::string> kClasses = {"cat", "dog", "bird"};
constexpr double kTolerance = 1e-12;

GroundTruthObject truth(int class_id, float x1, float y1, float x2, float y2,
                        bool difficult = false) {
  GroundTruthObject object;
  object.class_id = class_id;
  object.x1 = x1;
  object.y1 = y1;
  object.x2 = x2;
  object.y2 = y2;
  object.difficult = difficult;
  return object;
}

ImageAnnotation image(const std::string& id, std::vector<GroundTruthObject> objects) {
  ImageAnnotation annotation;
  annotation.image_id = id;
  annotation.width = 500;
  annotation.height = 500;
  annotation.objects = std::move(objects);
  return annotation;
}

// A detection given directly in 0-based coordinates.
ImageDetection detection(const std::string& id, int class_id, float score, float x1, float y1,
                         float x2, float y2) {
  ImageDetection result;
  result.image_id = id;
  result.detection.class_id = class_id;
  result.detection.score = score;
  result.detection.box = Box{x1, y1, x2, y2};
  return result;
}

// The detection that matches `object` perfectly under the devkit's +1 convention.
ImageDetection detection_on(const std::string& id, const GroundTruthObject& object, float score) {
  return detection(id, object.class_id, score, object.x1 - 1, object.y1 - 1, object.x2 - 1,
                   object.y2 - 1);
}

// A detection far from every object used below.
ImageDetection detection_elsewhere(const std::string& id, int class_id, float score) {
  return detection(id, class_id, score, 400, 400, 450, 450);
}

const ClassResult& class_result(const VocResult& result, int class_id) {
  return result.classes.at(static_cast<std::size_t>(class_id));
}

// Four well separated objects of one class, 1-based inclusive.
const GroundTruthObject kCat1 = truth(kCat, 1, 1, 50, 50);
const GroundTruthObject kCat2 = truth(kCat, 101, 1, 150, 50);
const GroundTruthObject kCat3 = truth(kCat, 201, 1, 250, 50);
const GroundTruthObject kCat4 = truth(kCat, 301, 1, 350, 50);

TEST(VocMetric, PerfectDetectionsGiveApOne) {
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1, kCat2}),
                                                    image("b", {kCat3})};
  const std::vector<ImageDetection> detections = {detection_on("a", kCat1, 0.9f),
                                                  detection_on("a", kCat2, 0.8f),
                                                  detection_on("b", kCat3, 0.7f)};
  const VocResult result = evaluate_voc(annotations, detections, kClasses);
  ASSERT_EQ(result.classes.size(), 3u);
  EXPECT_EQ(class_result(result, kCat).name, "cat");
  EXPECT_EQ(class_result(result, kCat).positives, 3);
  EXPECT_EQ(class_result(result, kCat).detections, 3);
  EXPECT_DOUBLE_EQ(class_result(result, kCat).ap_voc07, 1.0);
  EXPECT_DOUBLE_EQ(class_result(result, kCat).ap_all, 1.0);
  // dog and bird have no positives, so the mean is over cat alone.
  EXPECT_DOUBLE_EQ(result.map_voc07, 1.0);
  EXPECT_DOUBLE_EQ(result.map_all, 1.0);
}

TEST(VocMetric, MissesAndNoDetectionsGiveApZero) {
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1, kCat2})};
  const VocResult missed = evaluate_voc(
      annotations, {detection_elsewhere("a", kCat, 0.9f), detection_elsewhere("a", kCat, 0.8f)},
      kClasses);
  EXPECT_DOUBLE_EQ(class_result(missed, kCat).ap_voc07, 0.0);
  EXPECT_DOUBLE_EQ(class_result(missed, kCat).ap_all, 0.0);
  EXPECT_DOUBLE_EQ(missed.map_all, 0.0);

  const VocResult nothing = evaluate_voc(annotations, {}, kClasses);
  EXPECT_EQ(class_result(nothing, kCat).detections, 0);
  EXPECT_DOUBLE_EQ(class_result(nothing, kCat).ap_voc07, 0.0);
  EXPECT_DOUBLE_EQ(class_result(nothing, kCat).ap_all, 0.0);
}

TEST(VocMetric, DuplicateDetectionIsFalsePositive) {
  // Ranked TP, FP (duplicate of cat1), TP with 2 positives:
  // recall .5 .5 1, precision 1 .5 2/3.
  // All-point: .5 * 1 + .5 * 2/3 = 5/6.
  // 11-point: t = 0..0.5 -> 1 (6 thresholds), t = 0.6..1 -> 2/3 (5 thresholds) = 28/33.
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1}), image("b", {kCat2})};
  const std::vector<ImageDetection> detections = {detection_on("a", kCat1, 0.9f),
                                                  detection_on("a", kCat1, 0.8f),
                                                  detection_on("b", kCat2, 0.7f)};
  const VocResult result = evaluate_voc(annotations, detections, kClasses);
  EXPECT_NEAR(class_result(result, kCat).ap_all, 5.0 / 6.0, kTolerance);
  EXPECT_NEAR(class_result(result, kCat).ap_voc07, 28.0 / 33.0, kTolerance);
}

TEST(VocMetric, DetectionOfDifficultObjectIsIgnored) {
  const GroundTruthObject hard = truth(kCat, 101, 1, 150, 50, /*difficult=*/true);
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1, hard})};
  // The top-ranked detection hits only the difficult object. Counted as a false positive it
  // would halve the AP; ignored, the single true positive gives AP 1.
  const std::vector<ImageDetection> detections = {detection_on("a", hard, 0.95f),
                                                  detection_on("a", kCat1, 0.9f)};
  const VocResult result = evaluate_voc(annotations, detections, kClasses);
  EXPECT_EQ(class_result(result, kCat).positives, 1);
  EXPECT_EQ(class_result(result, kCat).detections, 2);
  EXPECT_DOUBLE_EQ(class_result(result, kCat).ap_all, 1.0);
  EXPECT_DOUBLE_EQ(class_result(result, kCat).ap_voc07, 1.0);
}

TEST(VocMetric, BestOverlapWithDifficultObjectWinsOverNormalObject) {
  // The devkit picks the highest-IoU object first, difficult or not. The detection overlaps
  // the normal object with IoU 100/110 and the difficult one exactly, so it is ignored, and
  // the normal object stays unmatched: AP 0.
  const GroundTruthObject normal = truth(kCat, 1, 1, 10, 10);
  const GroundTruthObject hard = truth(kCat, 1, 1, 11, 10, /*difficult=*/true);
  const std::vector<ImageAnnotation> annotations = {image("a", {normal, hard})};
  const VocResult result = evaluate_voc(annotations, {detection_on("a", hard, 0.9f)}, kClasses);
  EXPECT_DOUBLE_EQ(class_result(result, kCat).ap_all, 0.0);
  EXPECT_DOUBLE_EQ(class_result(result, kCat).ap_voc07, 0.0);
}

TEST(VocMetric, BestOverlapWithMatchedObjectIsDuplicateEvenIfAnotherWouldMatch) {
  // first = [1,10]x[1,10], second = [3,12]x[1,10]. The second detection, [1,11]x[1,10] after
  // the +1 shift, has IoU 100/110 with `first` (already matched) and 90/120 with `second`:
  // the devkit takes the best one and calls it a duplicate instead of matching `second`.
  // Ranked TP, FP with 2 positives: recall .5 .5, precision 1 .5.
  // All-point: .5 * 1 = .5. 11-point: t = 0..0.5 -> 1 (6 of 11) = 6/11.
  const GroundTruthObject first = truth(kCat, 1, 1, 10, 10);
  const GroundTruthObject second = truth(kCat, 3, 1, 12, 10);
  const std::vector<ImageAnnotation> annotations = {image("a", {first, second})};
  const std::vector<ImageDetection> detections = {detection_on("a", first, 0.9f),
                                                  detection("a", kCat, 0.8f, 0, 0, 10, 9)};
  const VocResult result = evaluate_voc(annotations, detections, kClasses);
  EXPECT_NEAR(class_result(result, kCat).ap_all, 0.5, kTolerance);
  EXPECT_NEAR(class_result(result, kCat).ap_voc07, 6.0 / 11.0, kTolerance);
}

TEST(VocMetric, IouMustStrictlyExceedThreshold) {
  // Object [1,10]x[1,10] has 100 pixels. After the +1 shift a detection [0,9]x[0,h] covers
  // [1,10]x[1,h+1]: 10 * (h + 1) pixels all inside the object, IoU = (h + 1) / 10.
  const std::vector<ImageAnnotation> annotations = {image("a", {truth(kCat, 1, 1, 10, 10)})};
  auto ap_with_height = [&](float h, double threshold) {
    return class_result(evaluate_voc(annotations, {detection("a", kCat, 0.9f, 0, 0, 9, h)},
                                     kClasses, threshold),
                        kCat)
        .ap_all;
  };
  EXPECT_DOUBLE_EQ(ap_with_height(5, 0.5), 1.0);  // IoU 0.6
  EXPECT_DOUBLE_EQ(ap_with_height(4, 0.5), 0.0);  // IoU exactly 0.5 is not enough
  EXPECT_DOUBLE_EQ(ap_with_height(3, 0.5), 0.0);  // IoU 0.4
  EXPECT_DOUBLE_EQ(ap_with_height(3, 0.3), 1.0);  // the threshold argument is honoured
}

TEST(VocMetric, DetectionOneLessThanTruthHasIouOne) {
  // A 2x2-pixel object makes the convention visible: the detection (gt - 1) in 0-based
  // coordinates is a perfect match (passes even a 0.9999 threshold), while the unshifted box
  // overlaps one pixel of seven (IoU 1/7) and misses even at 0.5.
  const GroundTruthObject tiny = truth(kCat, 1, 1, 2, 2);
  const std::vector<ImageAnnotation> annotations = {image("a", {tiny})};
  const VocResult shifted =
      evaluate_voc(annotations, {detection("a", kCat, 0.9f, 0, 0, 1, 1)}, kClasses, 0.9999);
  EXPECT_DOUBLE_EQ(class_result(shifted, kCat).ap_all, 1.0);
  const VocResult unshifted =
      evaluate_voc(annotations, {detection("a", kCat, 0.9f, 1, 1, 2, 2)}, kClasses);
  EXPECT_DOUBLE_EQ(class_result(unshifted, kCat).ap_all, 0.0);
  // A real-sized case from VOC2007 image 000001.
  const GroundTruthObject dog = truth(kCat, 48, 240, 195, 371);
  const VocResult real =
      evaluate_voc({image("000001", {dog})}, {detection("000001", kCat, 0.9f, 47, 239, 194, 370)},
                   kClasses, 0.9999);
  EXPECT_DOUBLE_EQ(class_result(real, kCat).ap_all, 1.0);
}

TEST(VocMetric, TwoClassesAndTheirMean) {
  // cat: the duplicate case above (all-point 5/6, 11-point 28/33); dog: perfect (1, 1).
  const GroundTruthObject dog = truth(kDog, 1, 101, 50, 150);
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1, dog}), image("b", {kCat2})};
  const std::vector<ImageDetection> detections = {
      detection_on("a", kCat1, 0.9f), detection_on("a", kCat1, 0.8f),
      detection_on("b", kCat2, 0.7f), detection_on("a", dog, 0.6f)};
  const VocResult result = evaluate_voc(annotations, detections, kClasses);
  EXPECT_NEAR(class_result(result, kCat).ap_all, 5.0 / 6.0, kTolerance);
  EXPECT_NEAR(class_result(result, kCat).ap_voc07, 28.0 / 33.0, kTolerance);
  EXPECT_DOUBLE_EQ(class_result(result, kDog).ap_all, 1.0);
  EXPECT_DOUBLE_EQ(class_result(result, kDog).ap_voc07, 1.0);
  EXPECT_NEAR(result.map_all, (5.0 / 6.0 + 1.0) / 2.0, kTolerance);      // 11/12
  EXPECT_NEAR(result.map_voc07, (28.0 / 33.0 + 1.0) / 2.0, kTolerance);  // 61/66
}

TEST(VocMetric, ClassWithoutPositivesIsExcludedFromMean) {
  // cat: perfect (1). dog: one of two found, rank TP -> recall .5 precision 1:
  // all-point .5, 11-point 6/11. bird: no objects, only detections -> AP 0, not averaged.
  const GroundTruthObject dog1 = truth(kDog, 1, 101, 50, 150);
  const GroundTruthObject dog2 = truth(kDog, 101, 101, 150, 150);
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1, dog1, dog2})};
  const std::vector<ImageDetection> detections = {detection_on("a", kCat1, 0.9f),
                                                  detection_on("a", dog1, 0.9f),
                                                  detection_elsewhere("a", kBird, 0.9f)};
  const VocResult result = evaluate_voc(annotations, detections, kClasses);
  EXPECT_EQ(class_result(result, kBird).positives, 0);
  EXPECT_EQ(class_result(result, kBird).detections, 1);
  EXPECT_DOUBLE_EQ(class_result(result, kBird).ap_all, 0.0);
  EXPECT_DOUBLE_EQ(class_result(result, kBird).ap_voc07, 0.0);
  EXPECT_NEAR(class_result(result, kDog).ap_all, 0.5, kTolerance);
  EXPECT_NEAR(class_result(result, kDog).ap_voc07, 6.0 / 11.0, kTolerance);
  EXPECT_NEAR(result.map_all, (1.0 + 0.5) / 2.0, kTolerance);
  EXPECT_NEAR(result.map_voc07, (1.0 + 6.0 / 11.0) / 2.0, kTolerance);  // 17/22
}

TEST(VocMetric, ElevenPointAndAllPointDiffer) {
  // 4 positives, ranked TP FP TP FP TP:
  //   recall    .25 .25 .5  .5  .75
  //   precision 1   .5  2/3 .5  .6
  // All-point (envelope 1, 2/3, .6): .25*1 + .25*2/3 + .25*.6 + .25*0 = 17/30.
  // 11-point: t = 0, .1, .2 -> 1; t = .3, .4, .5 -> 2/3; t = .6, .7 -> .6; t = .8, .9, 1 -> 0;
  //   (3 + 2 + 1.2) / 11 = 31/55.
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1, kCat2, kCat3, kCat4})};
  const std::vector<ImageDetection> detections = {
      detection_on("a", kCat1, 0.9f), detection_elsewhere("a", kCat, 0.8f),
      detection_on("a", kCat2, 0.7f), detection_elsewhere("a", kCat, 0.6f),
      detection_on("a", kCat3, 0.5f)};
  const VocResult result = evaluate_voc(annotations, detections, kClasses);
  EXPECT_NEAR(class_result(result, kCat).ap_all, 17.0 / 30.0, kTolerance);
  EXPECT_NEAR(class_result(result, kCat).ap_voc07, 31.0 / 55.0, kTolerance);
}

TEST(VocMetric, DetectionsAreRankedByScoreNotInputOrder) {
  // Input order FP, TP but the TP scores higher: ranked TP, FP -> recall 1 at precision 1.
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1})};
  const VocResult result = evaluate_voc(
      annotations, {detection_elsewhere("a", kCat, 0.3f), detection_on("a", kCat1, 0.9f)},
      kClasses);
  EXPECT_DOUBLE_EQ(class_result(result, kCat).ap_all, 1.0);
}

TEST(VocMetric, EqualScoresKeepInputOrder) {
  // Ties are broken by input order: FP then TP gives recall 1 at precision .5 (AP .5),
  // TP then FP gives AP 1.
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1})};
  const VocResult miss_first = evaluate_voc(
      annotations, {detection_elsewhere("a", kCat, 0.5f), detection_on("a", kCat1, 0.5f)},
      kClasses);
  EXPECT_NEAR(class_result(miss_first, kCat).ap_all, 0.5, kTolerance);
  EXPECT_NEAR(class_result(miss_first, kCat).ap_voc07, 0.5, kTolerance);
  const VocResult hit_first = evaluate_voc(
      annotations, {detection_on("a", kCat1, 0.5f), detection_elsewhere("a", kCat, 0.5f)},
      kClasses);
  EXPECT_DOUBLE_EQ(class_result(hit_first, kCat).ap_all, 1.0);
}

TEST(VocMetric, ManyEqualScoresKeepInputOrder) {
  // Enough ties that an unstable sort would reorder them: 63 misses then one hit, all at the
  // same score, rank the hit last -> recall 1 at precision 1/64.
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1})};
  std::vector<ImageDetection> detections;
  for (int i = 0; i < 63; ++i) detections.push_back(detection_elsewhere("a", kCat, 0.5f));
  detections.push_back(detection_on("a", kCat1, 0.5f));
  const VocResult result = evaluate_voc(annotations, detections, kClasses);
  EXPECT_NEAR(class_result(result, kCat).ap_all, 1.0 / 64.0, kTolerance);
  EXPECT_NEAR(class_result(result, kCat).ap_voc07, 1.0 / 64.0, kTolerance);
}

TEST(VocMetric, PrecisionEnvelopeFillsDips) {
  // 2 positives, ranked FP TP TP: recall 0 .5 1, precision 0 .5 2/3. The envelope lifts the
  // precision at recall .5 to 2/3, so all-point AP is 2/3 (not .5*.5 + .5*2/3 = 7/12), and the
  // 11-point AP is 2/3 as well.
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1, kCat2})};
  const VocResult result =
      evaluate_voc(annotations,
                   {detection_elsewhere("a", kCat, 0.9f), detection_on("a", kCat1, 0.8f),
                    detection_on("a", kCat2, 0.7f)},
                   kClasses);
  EXPECT_NEAR(class_result(result, kCat).ap_all, 2.0 / 3.0, kTolerance);
  EXPECT_NEAR(class_result(result, kCat).ap_voc07, 2.0 / 3.0, kTolerance);
}

TEST(VocMetric, DetectionInUnannotatedImageIsFalsePositive) {
  // Ranked FP (unknown image), TP: recall 0 then 1 at precision .5 -> AP .5 for both metrics.
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1})};
  const VocResult result = evaluate_voc(
      annotations, {detection_on("not-annotated", kCat1, 0.9f), detection_on("a", kCat1, 0.5f)},
      kClasses);
  EXPECT_NEAR(class_result(result, kCat).ap_all, 0.5, kTolerance);
  EXPECT_NEAR(class_result(result, kCat).ap_voc07, 0.5, kTolerance);
}

TEST(VocMetric, DetectionOfOtherClassDoesNotMatch) {
  // A dog detection exactly on a cat is a dog false positive and leaves the cat unmatched.
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1})};
  const VocResult result = evaluate_voc(
      annotations,
      {detection("a", kDog, 0.9f, kCat1.x1 - 1, kCat1.y1 - 1, kCat1.x2 - 1, kCat1.y2 - 1)},
      kClasses);
  EXPECT_DOUBLE_EQ(class_result(result, kCat).ap_all, 0.0);
  EXPECT_EQ(class_result(result, kDog).detections, 1);
}

TEST(VocMetric, RejectsInvalidInput) {
  const std::vector<ImageAnnotation> annotations = {image("a", {kCat1})};
  EXPECT_THROW(evaluate_voc(annotations, {detection_elsewhere("a", 3, 0.9f)}, kClasses), Error);
  EXPECT_THROW(evaluate_voc(annotations, {detection_elsewhere("a", -1, 0.9f)}, kClasses), Error);
  EXPECT_THROW(evaluate_voc({image("a", {kCat1}), image("a", {kCat2})}, {}, kClasses), Error);
}

TEST(VocMetric, ClassNamesAreTheDevkitOrder) {
  const std::vector<std::string>& names = voc_class_names();
  ASSERT_EQ(names.size(), 20u);
  EXPECT_EQ(names.front(), "aeroplane");
  EXPECT_EQ(names[11], "dog");
  EXPECT_EQ(names[14], "person");
  EXPECT_EQ(names.back(), "tvmonitor");
}

}  // namespace
}  // namespace mpdet::eval
