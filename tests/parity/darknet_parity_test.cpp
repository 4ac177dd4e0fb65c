// The whole float pipeline against an independent implementation: OpenCV dnn runs the same
// Darknet models. Raw head outputs are compared on identical input blobs (tight tolerance), and
// final detections are compared against boxes decoded from OpenCV's own YOLO (Region) layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "import/darknet_importer.h"
#include "model/model_file.h"
#include "mpdet/detector.h"
#include "test_data.h"
#include "vision/nms.h"

namespace {

struct DarknetCase {
  const char* dir;
  const char* stem;
};

const DarknetCase kModels[] = {{"yolo-fastest-voc", "yolo-fastest"},
                               {"yolo-fastest-xl-voc", "yolo-fastest-xl"},
                               {"mobilenetv2-yolov3-nano-voc", "MobileNetV2-YOLOv3-Nano-voc"}};
// VOC images of different sizes and content (dev set ids and one test image).
const char* kImages[] = {"000005", "000007", "000012", "000016", "000017", "000001", "004545"};

class DarknetParity : public ::testing::TestWithParam<DarknetCase> {
 protected:
  void SetUp() override {
    const auto dir = mpdet::test::data_dir() / "models" / GetParam().dir;
    cfg_ = (dir / (std::string(GetParam().stem) + ".cfg")).string();
    weights_ = (dir / (std::string(GetParam().stem) + ".weights")).string();
    if (!std::filesystem::exists(cfg_)) GTEST_SKIP() << "shared model not found: " << cfg_;
    model_path_ = std::filesystem::temp_directory_path() /
                  ("mpdet_parity_" + std::string(GetParam().stem) + ".mpdet");
    mpdet::model::save_model(mpdet::import::import_darknet({cfg_, weights_, {}}), model_path_);
    net_ = cv::dnn::readNetFromDarknet(cfg_, weights_);
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  }
  void TearDown() override { std::filesystem::remove(model_path_); }

  std::string cfg_, weights_;
  std::filesystem::path model_path_;
  cv::dnn::Net net_;
};

cv::Mat read_image(const std::string& id) {
  const auto path = mpdet::test::voc_root() / "JPEGImages" / (id + ".jpg");
  cv::Mat image = cv::imread(path.string(), cv::IMREAD_COLOR);
  EXPECT_FALSE(image.empty()) << path;
  return image;
}

mpdet::ImageView view_of(const cv::Mat& bgr) {
  return {bgr.data, bgr.cols, bgr.rows, bgr.step[0], mpdet::PixelFormat::BGR};
}

// OpenCV names the layers of a Darknet net "<type>_<darknet index>"; mpdet keeps the index too.
std::string opencv_conv_name(const std::string& mpdet_layer_name) {
  return "conv_" + mpdet_layer_name.substr(mpdet_layer_name.rfind('_') + 1);
}

TEST_P(DarknetParity, RawHeadOutputsMatchOpenCV) {
  mpdet::Detector detector(model_path_);
  const mpdet::model::Model graph = mpdet::model::load_model(model_path_);
  std::vector<std::string> head_names;
  for (const auto& head : graph.postprocess.yolo_heads)
    head_names.push_back(opencv_conv_name(graph.layers[head.layer].name));

  double worst = 0;
  for (const char* id : kImages) {
    const cv::Mat image = read_image(id);
    const cv::Mat blob =
        cv::dnn::blobFromImage(image, 1.0 / 255, {320, 320}, {}, /*swapRB=*/true, false);
    net_.setInput(blob);
    std::vector<cv::Mat> expected;
    net_.forward(expected, head_names);

    detector.run_network(std::vector<float>(blob.ptr<float>(), blob.ptr<float>() + blob.total()));
    const auto actual = detector.raw_outputs();
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t h = 0; h < actual.size(); ++h) {
      ASSERT_EQ(actual[h].size(), expected[h].total()) << head_names[h];
      const float* e = expected[h].ptr<float>();
      for (std::size_t i = 0; i < actual[h].size(); ++i) {
        const double diff = std::abs(actual[h][i] - e[i]);
        worst = std::max(worst, diff);
        // Logits are O(10); only float summation order may differ (measured: <= 1.2e-4).
        ASSERT_LE(diff, 5e-4 * std::max(1.0, std::abs(double(e[i]))))
            << GetParam().stem << " image " << id << " head " << h << " index " << i;
      }
    }
  }
  std::printf("[parity] %s: largest raw head output difference %.3g\n", GetParam().stem, worst);
  RecordProperty("max_raw_difference", std::to_string(worst));
}

// Detections from OpenCV's Region layers (which apply sigmoid, anchors and objectness x class
// themselves), made class-aware with cv::dnn::NMSBoxes.
mpdet::Detections opencv_detections(cv::dnn::Net& net, const cv::Mat& image, float conf,
                                    float nms) {
  net.setInput(cv::dnn::blobFromImage(image, 1.0 / 255, {320, 320}, {}, true, false));
  std::vector<cv::Mat> outs;
  net.forward(outs, net.getUnconnectedOutLayersNames());
  mpdet::Detections result;
  const int classes = outs[0].cols - 5;
  for (int c = 0; c < classes; ++c) {
    std::vector<cv::Rect2d> boxes;
    std::vector<float> scores;
    for (const cv::Mat& out : outs) {
      for (int r = 0; r < out.rows; ++r) {
        const float* row = out.ptr<float>(r);
        if (row[5 + c] <= conf) continue;
        const double cx = row[0] * image.cols, cy = row[1] * image.rows;
        const double w = row[2] * image.cols, h = row[3] * image.rows;
        const double x1 = std::clamp(cx - w / 2, 0.0, double(image.cols));
        const double y1 = std::clamp(cy - h / 2, 0.0, double(image.rows));
        const double x2 = std::clamp(cx + w / 2, 0.0, double(image.cols));
        const double y2 = std::clamp(cy + h / 2, 0.0, double(image.rows));
        boxes.emplace_back(x1, y1, x2 - x1, y2 - y1);
        scores.push_back(row[5 + c]);
      }
    }
    std::vector<int> keep;
    cv::dnn::NMSBoxes(boxes, scores, 0.0f, nms, keep);
    for (int k : keep) {
      const cv::Rect2d& b = boxes[k];
      result.push_back(
          {c, scores[k], {float(b.x), float(b.y), float(b.x + b.width), float(b.y + b.height)}});
    }
  }
  return result;
}

// Every confident detection on one side has a twin (same class, near-identical box and score) on
// the other. A small margin below the reporting threshold absorbs the two preprocessings' last-bit
// resize differences.
void expect_matched(const mpdet::Detections& from, const mpdet::Detections& to, float report_above,
                    const std::string& what) {
  for (const mpdet::Detection& d : from) {
    if (d.score <= report_above) continue;
    bool found = false;
    for (const mpdet::Detection& t : to)
      if (t.class_id == d.class_id && mpdet::vision::iou(t.box, d.box) > 0.97f &&
          std::abs(t.score - d.score) < 0.03f)
        found = true;
    EXPECT_TRUE(found) << what << ": class " << d.class_id << " score " << d.score << " box "
                       << d.box.x1 << "," << d.box.y1 << "," << d.box.x2 << "," << d.box.y2;
  }
}

TEST_P(DarknetParity, DetectionsMatchOpenCVDecode) {
  mpdet::DetectorOptions options;
  options.conf_threshold = 0.2f;
  options.nms_threshold = 0.45f;
  options.top_k = 0;
  mpdet::Detector detector(model_path_, options);
  int compared = 0;
  for (const char* id : kImages) {
    const cv::Mat image = read_image(id);
    const mpdet::Detections ours = detector.detect(view_of(image));
    const mpdet::Detections theirs = opencv_detections(net_, image, 0.2f, 0.45f);
    expect_matched(ours, theirs, 0.3f, std::string("mpdet->opencv ") + id);
    expect_matched(theirs, ours, 0.3f, std::string("opencv->mpdet ") + id);
    compared += static_cast<int>(
        std::count_if(ours.begin(), ours.end(), [](auto& d) { return d.score > 0.3f; }));
  }
  EXPECT_GT(compared, 5) << "too few confident detections for a meaningful comparison";
}

INSTANTIATE_TEST_SUITE_P(SharedModels, DarknetParity, ::testing::ValuesIn(kModels),
                         [](const auto& param_info) {
                           std::string n = param_info.param.stem;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
