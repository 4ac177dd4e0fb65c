// Quantization end to end on a real shared model: calibrate Yolo-Fastest on a few VOC images,
// quantize it (W8 and W4-multipoint), write and reload the file, and check that the quantized
// detector finds what the float detector finds.
#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "api/preprocess_settings.h"
#include "eval/voc.h"
#include "import/darknet_importer.h"
#include "model/model_file.h"
#include "mpdet/detector.h"
#include "quant/calibration.h"
#include "quant/model_quantizer.h"
#include "test_data.h"
#include "vision/nms.h"

namespace {

using namespace mpdet;

class QuantizedYoloFastest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dir = test::data_dir() / "models" / "yolo-fastest-voc";
    if (!std::filesystem::exists(dir)) return;
    float_model_ = new model::Model(
        import::import_darknet({dir / "yolo-fastest.cfg", dir / "yolo-fastest.weights", {}}));
    std::vector<std::string> ids = eval::read_image_set(test::voc_root(), "calib");
    ids.resize(12);
    const auto spec = api::to_preprocess_spec(float_model_->preprocess, false);
    calibration_ = new quant::CalibrationData(quant::calibrate(
        *float_model_, ids.size(),
        [&](std::size_t i, std::vector<float>& tensor) {
          const cv::Mat image = cv::imread(eval::image_path(test::voc_root(), ids[i]).string());
          ASSERT_FALSE(image.empty());
          vision::preprocess({image.data, image.cols, image.rows, image.step[0], PixelFormat::BGR},
                             spec, tensor.data());
        },
        {}));
  }
  static void TearDownTestSuite() {
    delete float_model_;
    delete calibration_;
  }
  void SetUp() override {
    if (!float_model_) GTEST_SKIP() << "shared models not found";
  }

  // Fraction of the float detector's confident detections (score > 0.5) that the quantized one
  // also finds (same class, IoU > 0.7), over a few dev images.
  static double recall_of_float_detections(const model::Model& quantized) {
    const auto dir = std::filesystem::temp_directory_path();
    const auto float_path = dir / "mpdet_qtest_float.mpdet",
               quant_path = dir / "mpdet_qtest_quant.mpdet";
    model::save_model(*float_model_, float_path);
    model::save_model(quantized, quant_path);
    Detector reference(float_path), detector(quant_path);
    int wanted = 0, found = 0;
    for (const char* id :
         {"000005", "000007", "000012", "000016", "000017", "000020", "000021", "000023"}) {
      const cv::Mat image = cv::imread(eval::image_path(test::voc_root(), id).string());
      const ImageView view{image.data, image.cols, image.rows, image.step[0], PixelFormat::BGR};
      const Detections expected = reference.detect(view);
      const Detections actual = detector.detect(view);
      for (const Detection& e : expected) {
        if (e.score <= 0.5f) continue;
        ++wanted;
        for (const Detection& a : actual)
          if (a.class_id == e.class_id && vision::iou(a.box, e.box) > 0.7f) {
            ++found;
            break;
          }
      }
    }
    std::filesystem::remove(float_path);
    std::filesystem::remove(quant_path);
    EXPECT_GE(wanted, 8) << "too few confident float detections to compare";
    return wanted ? double(found) / wanted : 0.0;
  }

  static model::Model* float_model_;
  static quant::CalibrationData* calibration_;
};

model::Model* QuantizedYoloFastest::float_model_ = nullptr;
quant::CalibrationData* QuantizedYoloFastest::calibration_ = nullptr;

TEST_F(QuantizedYoloFastest, EightBitFindsWhatFloatFinds) {
  quant::QuantizeOptions options;
  options.method = quant::WeightMethod::Naive;
  options.weight_bits = 8;
  const model::Model q = quant::quantize_model(*float_model_, *calibration_, options);
  EXPECT_GE(recall_of_float_detections(q), 0.9);
}

TEST_F(QuantizedYoloFastest, MultipointFourBitSpendsItsBudgetAndStaysClose) {
  quant::QuantizeOptions options;
  options.method = quant::WeightMethod::Multipoint;
  options.weight_bits = 4;
  options.budget = 1.25;
  quant::QuantizeReport report;
  const model::Model q = quant::quantize_model(*float_model_, *calibration_, options, &report);
  EXPECT_LE(report.points_per_weight, 1.25 + 1e-9);
  EXPECT_GT(report.points_per_weight, 1.2) << "the budget was not used";
  // File round trip keeps everything (packed 4-bit codes included).
  const model::Model back = model::deserialize_model(model::serialize_model(q));
  for (std::size_t t = 0; t < q.tensors.size(); ++t)
    ASSERT_EQ(back.tensors[t].codes, q.tensors[t].codes);
  EXPECT_LT(model::serialize_model(q).size(), model::serialize_model(*float_model_).size() / 3);
  EXPECT_GE(recall_of_float_detections(q), 0.7);
}

TEST_F(QuantizedYoloFastest, MultipointBeatsNaiveAtFourBits) {
  // Output SQNR of the weight quantization, MAC-weighted over the 4-bit layers.
  auto mean_sqnr = [&](quant::WeightMethod method, double budget) {
    quant::QuantizeOptions options;
    options.method = method;
    options.weight_bits = 4;
    options.budget = budget;
    quant::QuantizeReport report;
    quant::quantize_model(*float_model_, *calibration_, options, &report);
    double sum = 0, weight = 0;
    for (const auto& l : report.layers)
      if (l.weight_bits == 4) {
        sum += l.output_sqnr_db * l.macs;
        weight += l.macs;
      }
    return sum / weight;
  };
  const double naive = mean_sqnr(quant::WeightMethod::Naive, 1.0);
  const double one_point = mean_sqnr(quant::WeightMethod::Multipoint, 1.0);
  const double budgeted = mean_sqnr(quant::WeightMethod::Multipoint, 1.25);
  EXPECT_GT(one_point, naive) << "the scale search should beat max-abs scaling";
  EXPECT_GT(budgeted, one_point + 1.0) << "extra points should buy at least 1 dB";
}

}  // namespace
