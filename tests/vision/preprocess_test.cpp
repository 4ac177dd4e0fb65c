#include "vision/preprocess.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mpdet/error.h"
#include "test_data.h"

namespace mpdet::vision {
namespace {

cv::Mat random_bgr_image(int width, int height, std::uint32_t seed) {
  cv::Mat image(height, width, CV_8UC3);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int y = 0; y < height; ++y) {
    auto* row = image.ptr<std::uint8_t>(y);
    for (int x = 0; x < width * 3; ++x) row[x] = static_cast<std::uint8_t>(byte(rng));
  }
  return image;
}

ImageView view_of(const cv::Mat& image, PixelFormat format = PixelFormat::BGR) {
  ImageView view;
  view.data = image.data;
  view.width = image.cols;
  view.height = image.rows;
  view.row_stride = image.step[0];
  view.format = format;
  return view;
}

// Identity normalisation, BGR in and out, so the tensor holds plain resized pixel values.
PreprocessSpec raw_spec(int width, int height) {
  PreprocessSpec spec;
  spec.width = width;
  spec.height = height;
  spec.channel_order = ChannelOrder::BGR;
  spec.scale = 1.0f;
  spec.mean = {0, 0, 0};
  return spec;
}

// Differences between our float tensor and an OpenCV resize result.
struct Difference {
  double max = 0;          // max |ours - OpenCV|
  double mean_signed = 0;  // mean (ours - OpenCV): systematic bias
  double mean_abs = 0;     // mean |ours - OpenCV|
  std::size_t count = 0;   // values compared

  // Against 8-bit cv::resize INTER_LINEAR. Its result is rounded to integers, so the absolute
  // difference is about uniform on [0, 0.5] (mean ~0.25) from rounding alone; and its
  // fixed-point pipeline (11-bit weights, intermediate right shifts) truncates, which leaves
  // OpenCV ~0.1 below the exact bilinear value on average. The float-path test below shows
  // the algorithm itself agrees to float precision.
  void expect_close_to_8bit(const std::string& label) const {
    EXPECT_LE(max, 1.0) << label;
    // A handful of values (a 1x1 output) says nothing about the averages.
    if (count < 300) return;
    EXPECT_LT(std::abs(mean_signed), 0.15) << label;
    EXPECT_LT(mean_abs, 0.3) << label;
  }
  // Against cv::resize INTER_LINEAR on the same image converted to float: same sample
  // positions and weights, so only float rounding remains.
  void expect_close_to_float(const std::string& label) const {
    EXPECT_LT(max, 0.01) << label;
    EXPECT_LT(std::abs(mean_signed), 1e-4) << label;
    EXPECT_LT(mean_abs, 1e-3) << label;
  }
};

// Compares a CHW float tensor (channel order BGR) against an interleaved BGR image, 8-bit or
// float.
Difference compare_with(const std::vector<float>& chw, const cv::Mat& expected) {
  Difference difference;
  const std::size_t plane = static_cast<std::size_t>(expected.cols) * expected.rows;
  double sum = 0, sum_abs = 0;
  for (int y = 0; y < expected.rows; ++y) {
    for (int x = 0; x < expected.cols; ++x) {
      for (int c = 0; c < 3; ++c) {
        const double reference = expected.depth() == CV_8U
                                     ? expected.at<cv::Vec3b>(y, x)[c]
                                     : static_cast<double>(expected.at<cv::Vec3f>(y, x)[c]);
        const double d =
            chw[c * plane + static_cast<std::size_t>(y) * expected.cols + x] - reference;
        difference.max = std::max(difference.max, std::abs(d));
        sum += d;
        sum_abs += std::abs(d);
      }
    }
  }
  difference.count = 3 * plane;
  difference.mean_signed = sum / (3.0 * plane);
  difference.mean_abs = sum_abs / (3.0 * plane);
  return difference;
}

struct SizePair {
  int in_w, in_h, out_w, out_h;
};

// Stretch mode is cv::resize INTER_LINEAR computed in float straight from the 8-bit pixels.
TEST(Preprocess, StretchMatchesCvResizeAcrossSizes) {
  const std::vector<SizePair> sizes = {
      {640, 480, 320, 320}, {500, 333, 320, 320}, {333, 500, 416, 416}, {1, 1, 7, 3},
      {1, 31, 320, 320},    {31, 1, 320, 320},    {2, 2, 3, 3},         {3, 7, 2, 5},
      {7, 3, 31, 31},       {320, 320, 320, 320}, {640, 480, 320, 192}, {333, 333, 1, 1},
      {500, 375, 608, 352}, {31, 7, 1, 2},        {2, 3, 500, 333},     {640, 480, 160, 120},
      {7, 7, 3, 3},         {320, 320, 333, 31},  {1, 2, 1, 1},         {3, 1, 640, 480}};
  Difference worst_8bit, worst_float;
  const auto track = [](Difference& worst, const Difference& d) {
    if (d.count < 300) return;
    worst.max = std::max(worst.max, d.max);
    if (std::abs(d.mean_signed) > std::abs(worst.mean_signed)) worst.mean_signed = d.mean_signed;
    worst.mean_abs = std::max(worst.mean_abs, d.mean_abs);
  };
  std::uint32_t seed = 1;
  for (const SizePair& size : sizes) {
    const cv::Mat image = random_bgr_image(size.in_w, size.in_h, seed++);
    std::vector<float> tensor(3 * static_cast<std::size_t>(size.out_w) * size.out_h);
    preprocess(view_of(image), raw_spec(size.out_w, size.out_h), tensor.data());
    const std::string label = std::to_string(size.in_w) + "x" + std::to_string(size.in_h) + " -> " +
                              std::to_string(size.out_w) + "x" + std::to_string(size.out_h);

    cv::Mat expected_8bit;
    cv::resize(image, expected_8bit, cv::Size(size.out_w, size.out_h), 0, 0, cv::INTER_LINEAR);
    const Difference vs_8bit = compare_with(tensor, expected_8bit);
    vs_8bit.expect_close_to_8bit(label);
    track(worst_8bit, vs_8bit);

    cv::Mat image_float, expected_float;
    image.convertTo(image_float, CV_32FC3);
    cv::resize(image_float, expected_float, cv::Size(size.out_w, size.out_h), 0, 0,
               cv::INTER_LINEAR);
    const Difference vs_float = compare_with(tensor, expected_float);
    vs_float.expect_close_to_float(label);
    track(worst_float, vs_float);
  }
  std::printf("worst vs 8-bit cv::resize: max |d| %.4f, mean d %+.4f, mean |d| %.4f\n",
              worst_8bit.max, worst_8bit.mean_signed, worst_8bit.mean_abs);
  std::printf("worst vs float cv::resize: max |d| %.6f, mean d %+.7f, mean |d| %.6f\n",
              worst_float.max, worst_float.mean_signed, worst_float.mean_abs);
}

TEST(Preprocess, StretchMatchesCvResizeOnRealImage) {
  const std::filesystem::path path = test::voc_root() / "JPEGImages" / "000005.jpg";
  const cv::Mat image = cv::imread(path.string(), cv::IMREAD_COLOR);
  if (image.empty()) GTEST_SKIP() << "missing " << path;
  for (const cv::Size target : {cv::Size(320, 320), cv::Size(416, 416), cv::Size(608, 352)}) {
    cv::Mat expected;
    cv::resize(image, expected, target, 0, 0, cv::INTER_LINEAR);
    std::vector<float> tensor(3 * static_cast<std::size_t>(target.area()));
    preprocess(view_of(image), raw_spec(target.width, target.height), tensor.data());
    const Difference difference = compare_with(tensor, expected);
    difference.expect_close_to_8bit("000005.jpg");
    std::printf("000005.jpg -> %dx%d: max |diff| %.4f, mean diff %.4f, mean |diff| %.4f\n",
                target.width, target.height, difference.max, difference.mean_signed,
                difference.mean_abs);
  }
}

// Rows padded beyond width * 3 must be walked by the stride, never by the packed width.
TEST(Preprocess, HonoursPaddedRowStride) {
  const int width = 37, height = 23, padded_stride = width * 3 + 13;
  const cv::Mat packed = random_bgr_image(width, height, 99);
  std::vector<std::uint8_t> padded(static_cast<std::size_t>(padded_stride) * height, 0xEE);
  for (int y = 0; y < height; ++y) {
    std::copy_n(packed.ptr<std::uint8_t>(y), width * 3, padded.data() + y * padded_stride);
  }
  ImageView padded_view = view_of(packed);
  padded_view.data = padded.data();
  padded_view.row_stride = padded_stride;

  const PreprocessSpec spec = raw_spec(50, 17);
  std::vector<float> from_packed(3 * 50 * 17), from_padded(3 * 50 * 17);
  preprocess(view_of(packed), spec, from_packed.data());
  preprocess(padded_view, spec, from_padded.data());
  EXPECT_EQ(from_packed, from_padded);
}

TEST(Preprocess, SwapsChannelsAndNormalises) {
  // A uniform image makes every output value exact: (pixel - mean) * scale.
  const int width = 5, height = 4;
  const std::uint8_t blue = 10, green = 100, red = 250;
  cv::Mat bgr(height, width, CV_8UC3, cv::Scalar(blue, green, red));
  PreprocessSpec spec;
  spec.width = 3;
  spec.height = 2;
  spec.channel_order = ChannelOrder::RGB;
  spec.scale = 0.5f;
  spec.mean = {1, 2, 3};
  std::vector<float> tensor(3 * 6);
  preprocess(view_of(bgr), spec, tensor.data());
  for (int i = 0; i < 6; ++i) {
    EXPECT_FLOAT_EQ(tensor[i], (red - 1.0f) * 0.5f);
    EXPECT_FLOAT_EQ(tensor[6 + i], (green - 2.0f) * 0.5f);
    EXPECT_FLOAT_EQ(tensor[12 + i], (blue - 3.0f) * 0.5f);
  }

  // The same pixels stored as RGB, requested as RGB: no swap.
  cv::Mat rgb(height, width, CV_8UC3, cv::Scalar(red, green, blue));
  std::vector<float> from_rgb(3 * 6);
  preprocess(view_of(rgb, PixelFormat::RGB), spec, from_rgb.data());
  EXPECT_EQ(tensor, from_rgb);

  // RGB input requested as BGR: swapped back.
  spec.channel_order = ChannelOrder::BGR;
  preprocess(view_of(rgb, PixelFormat::RGB), spec, from_rgb.data());
  EXPECT_FLOAT_EQ(from_rgb[0], (blue - 1.0f) * 0.5f);
  EXPECT_FLOAT_EQ(from_rgb[12], (red - 3.0f) * 0.5f);
}

TEST(Preprocess, StretchTransformMapsBoxesBack) {
  const cv::Mat image = random_bgr_image(640, 480, 3);
  std::vector<float> tensor(3 * 320 * 320);
  const InputTransform transform = preprocess(view_of(image), raw_spec(320, 320), tensor.data());
  EXPECT_FLOAT_EQ(transform.scale_x, 0.5f);
  EXPECT_FLOAT_EQ(transform.scale_y, 320.0f / 480.0f);
  EXPECT_EQ(transform.offset_x, 0.0f);
  EXPECT_EQ(transform.offset_y, 0.0f);
  const Box box = transform.to_image(Box{10, 20, 160, 320});
  EXPECT_FLOAT_EQ(box.x1, 20);
  EXPECT_FLOAT_EQ(box.y1, 30);
  EXPECT_FLOAT_EQ(box.x2, 320);
  EXPECT_FLOAT_EQ(box.y2, 480);
  // Outside the network input: clipped to the image.
  const Box clipped = transform.to_image(Box{-5, -7, 400, 330});
  EXPECT_EQ(clipped.x1, 0);
  EXPECT_EQ(clipped.y1, 0);
  EXPECT_EQ(clipped.x2, 640);
  EXPECT_EQ(clipped.y2, 480);
}

// Letterbox = cv::resize to the aspect-preserving size, centred on a fill-coloured canvas.
TEST(Preprocess, LetterboxMatchesResizeAndPad) {
  const std::vector<SizePair> sizes = {
      {640, 480, 320, 320}, {333, 500, 416, 416}, {500, 375, 608, 352}, {7, 31, 20, 20}};
  for (const SizePair& size : sizes) {
    const cv::Mat image = random_bgr_image(size.in_w, size.in_h, 7);
    const double scale = std::min(static_cast<double>(size.out_w) / size.in_w,
                                  static_cast<double>(size.out_h) / size.in_h);
    const int new_w = static_cast<int>(std::lround(size.in_w * scale));
    const int new_h = static_cast<int>(std::lround(size.in_h * scale));
    const int left = (size.out_w - new_w) / 2, top = (size.out_h - new_h) / 2;
    cv::Mat resized, expected;
    cv::resize(image, resized, cv::Size(new_w, new_h), 0, 0, cv::INTER_LINEAR);
    cv::copyMakeBorder(resized, expected, top, size.out_h - new_h - top, left,
                       size.out_w - new_w - left, cv::BORDER_CONSTANT, cv::Scalar::all(114));

    PreprocessSpec spec = raw_spec(size.out_w, size.out_h);
    spec.resize = ResizeMode::Letterbox;
    spec.letterbox_fill = 114;
    std::vector<float> tensor(3 * static_cast<std::size_t>(size.out_w) * size.out_h);
    const InputTransform transform = preprocess(view_of(image), spec, tensor.data());
    compare_with(tensor, expected).expect_close_to_8bit("letterbox");
    EXPECT_EQ(transform.offset_x, static_cast<float>(left));
    EXPECT_EQ(transform.offset_y, static_cast<float>(top));

    // The resized region maps back onto the whole image.
    const Box whole =
        transform.to_image(Box{static_cast<float>(left), static_cast<float>(top),
                               static_cast<float>(left + new_w), static_cast<float>(top + new_h)});
    EXPECT_NEAR(whole.x1, 0, 1e-4);
    EXPECT_NEAR(whole.y1, 0, 1e-4);
    EXPECT_NEAR(whole.x2, size.in_w, 1e-3);
    EXPECT_NEAR(whole.y2, size.in_h, 1e-3);
  }
}

TEST(Preprocess, LetterboxPaddingIsNormalisedFill) {
  // 4x2 into 8x8: resized 8x4 at offset_y 2; rows 0-1 and 6-7 are padding.
  const cv::Mat image(2, 4, CV_8UC3, cv::Scalar(0, 0, 0));
  PreprocessSpec spec;
  spec.width = 8;
  spec.height = 8;
  spec.resize = ResizeMode::Letterbox;
  spec.letterbox_fill = 127.5f;
  spec.mean = {0.5f, 1.5f, 2.5f};
  spec.scale = 2.0f;
  std::vector<float> tensor(3 * 64);
  const InputTransform transform = preprocess(view_of(image), spec, tensor.data());
  EXPECT_EQ(transform.offset_x, 0);
  EXPECT_EQ(transform.offset_y, 2);
  for (int c = 0; c < 3; ++c) {
    const float pad = (127.5f - spec.mean[c]) * 2.0f;
    const float inside = (0.0f - spec.mean[c]) * 2.0f;
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        EXPECT_FLOAT_EQ(tensor[c * 64 + y * 8 + x], (y < 2 || y >= 6) ? pad : inside);
      }
    }
  }
}

TEST(Preprocess, RejectsInvalidInput) {
  const cv::Mat image = random_bgr_image(8, 8, 5);
  std::vector<float> tensor(3 * 4 * 4);
  const PreprocessSpec spec = raw_spec(4, 4);

  ImageView null_data = view_of(image);
  null_data.data = nullptr;
  EXPECT_THROW(preprocess(null_data, spec, tensor.data()), Error);

  ImageView empty = view_of(image);
  empty.width = 0;
  EXPECT_THROW(preprocess(empty, spec, tensor.data()), Error);
  empty = view_of(image);
  empty.height = -1;
  EXPECT_THROW(preprocess(empty, spec, tensor.data()), Error);

  ImageView short_stride = view_of(image);
  short_stride.row_stride = 8 * 3 - 1;
  EXPECT_THROW(preprocess(short_stride, spec, tensor.data()), Error);

  EXPECT_THROW(preprocess(view_of(image), raw_spec(0, 4), tensor.data()), Error);
  EXPECT_THROW(preprocess(view_of(image), raw_spec(4, -2), tensor.data()), Error);

  try {
    preprocess(short_stride, spec, tensor.data());
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("stride"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace mpdet::vision
