// The calibration cache (quant/calibration_cache.h) and parallel calibration: a cache reads back
// exactly what was written, a corrupt, truncated, foreign or stale file is a clear mpdet::Error,
// and calibration over several threads collects the same statistics as over one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "import/darknet_importer.h"
#include "mpdet/error.h"
#include "quant/calibration.h"
#include "quant/calibration_cache.h"
#include "quant/model_quantizer.h"
#include "tiny_quantized.h"

namespace {

using namespace mpdet;
using test::tiny_float_model;

quant::CalibrationData calibrate_tiny(const model::Model& m, int threads, std::size_t images = 7) {
  quant::CalibrationOptions options;
  options.threads = threads;
  return quant::calibrate(m, images, test::tiny_calibration_input, options);
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("mpdet_calib_" + std::to_string(::getpid()) + "_" + name);
}

void expect_same(const quant::CalibrationData& a, const quant::CalibrationData& b,
                 double gram_tolerance) {
  ASSERT_EQ(a.images, b.images);
  ASSERT_EQ(a.min.size(), b.min.size());
  for (std::size_t l = 0; l < a.min.size(); ++l) {
    EXPECT_EQ(a.min[l], b.min[l]) << l;
    EXPECT_EQ(a.max[l], b.max[l]) << l;
    ASSERT_EQ(a.histograms[l].has_value(), b.histograms[l].has_value()) << l;
    if (a.histograms[l]) {
      EXPECT_EQ(a.histograms[l]->lo(), b.histograms[l]->lo());
      EXPECT_EQ(a.histograms[l]->hi(), b.histograms[l]->hi());
      EXPECT_EQ(a.histograms[l]->counts(), b.histograms[l]->counts()) << l;
    }
    if (l < a.channel_max.size() || l < b.channel_max.size()) {
      EXPECT_EQ(a.channel_max.at(l), b.channel_max.at(l)) << l;
    }
    const std::vector<float> none;
    EXPECT_EQ(l < a.equalization.size() ? a.equalization[l] : none,
              l < b.equalization.size() ? b.equalization[l] : none)
        << l;
    const quant::ConvGram &ga = a.grams[l], &gb = b.grams[l];
    EXPECT_EQ(ga.groups, gb.groups);
    EXPECT_EQ(ga.taps, gb.taps);
    EXPECT_EQ(ga.samples, gb.samples);
    ASSERT_EQ(ga.values.size(), gb.values.size());
    ASSERT_EQ(ga.sums.size(), gb.sums.size());
    for (std::size_t k = 0; k < ga.values.size(); ++k)
      EXPECT_NEAR(ga.values[k], gb.values[k], gram_tolerance * (1 + std::abs(ga.values[k])));
    for (std::size_t k = 0; k < ga.sums.size(); ++k)
      EXPECT_NEAR(ga.sums[k], gb.sums[k], gram_tolerance * (1 + std::abs(ga.sums[k])));
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Calibration, ThreadsCollectTheSameStatistics) {
  const model::Model m = tiny_float_model();
  const quant::CalibrationData one = calibrate_tiny(m, 1);
  // Histograms and ranges are exact; Gram sums differ only in summation order.
  expect_same(one, calibrate_tiny(m, 3), 1e-12);
  expect_same(one, calibrate_tiny(m, 16), 1e-12);  // more threads than images
  std::size_t sampled = 0;
  for (const quant::ConvGram& g : one.grams) sampled += g.samples;
  EXPECT_GT(sampled, 0u);
}

TEST(Calibration, ErrorsInsideAThreadReachTheCaller) {
  const model::Model m = tiny_float_model();
  quant::CalibrationOptions options;
  options.threads = 2;
  const std::string message = error_of([&] {
    quant::calibrate(
        m, 6,
        [](std::size_t i, std::vector<float>& t) {
          if (i == 4) throw Error("cannot read image 4");
          test::tiny_calibration_input(i, t);
        },
        options);
  });
  EXPECT_NE(message.find("image 4"), std::string::npos) << message;
  options.threads = 0;
  EXPECT_THROW(quant::calibrate(m, 6, test::tiny_calibration_input, options), Error);
}

TEST(CalibrationCache, RoundTripIsExactAndQuantizesIdentically) {
  const model::Model m = tiny_float_model();
  quant::CalibrationData data = calibrate_tiny(m, 2);
  data.equalization.resize(m.layers.size());
  data.equalization[1] = {0.5f, 2.0f, 1.0f, 3.0f, 0.25f, 1.0f, 1.0f, 7.0f};
  const quant::CalibrationKey key{quant::calibration_fingerprint(m),
                                  quant::settings_fingerprint("ids=a,b")};
  const auto path = temp_file("roundtrip.bin");
  quant::save_calibration(data, key, path);
  const quant::CalibrationData back = quant::load_calibration(path, key);
  expect_same(data, back, 0.0);
  quant::QuantizeOptions options;
  options.weight_bits = 3;
  options.budget = 1.5;
  const model::Model a = quant::quantize_model(m, data, options);
  const model::Model b = quant::quantize_model(m, back, options);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t t = 0; t < a.tensors.size(); ++t) {
    EXPECT_EQ(a.tensors[t].codes, b.tensors[t].codes);
    EXPECT_EQ(a.tensors[t].data, b.tensors[t].data);
  }
  std::filesystem::remove(path);
}

TEST(CalibrationCache, FingerprintsFollowTheModelAndSettings) {
  const model::Model m = tiny_float_model();
  model::Model other = m;
  other.tensors[0].data[0] += 1e-3f;
  EXPECT_EQ(quant::calibration_fingerprint(m), quant::calibration_fingerprint(tiny_float_model()));
  EXPECT_NE(quant::calibration_fingerprint(m), quant::calibration_fingerprint(other));
  EXPECT_NE(quant::settings_fingerprint("ids=a"), quant::settings_fingerprint("ids=b"));
}

TEST(CalibrationCache, CorruptTruncatedForeignAndStaleFilesAreClearErrors) {
  const model::Model m = tiny_float_model();
  const quant::CalibrationData data = calibrate_tiny(m, 1, 3);
  const quant::CalibrationKey key{quant::calibration_fingerprint(m),
                                  quant::settings_fingerprint("ids=a")};
  const auto path = temp_file("bad.bin");
  quant::save_calibration(data, key, path);
  std::vector<char> bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(bytes.size(), 100u);
  auto write = [&](const std::vector<char>& b) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  auto load_error = [&](quant::CalibrationKey k) {
    return error_of([&] { quant::load_calibration(path, k); });
  };
  auto contains = [](const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  };

  // Stale: another model, other images.
  EXPECT_TRUE(contains(load_error({key.model + 1, key.settings}), "different model"));
  EXPECT_TRUE(contains(load_error({key.model, key.settings + 1}), "other calibration images"));
  // One flipped payload byte.
  std::vector<char> flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  write(flipped);
  EXPECT_TRUE(contains(load_error(key), "checksum"));
  // Truncated, and trailing bytes.
  write(std::vector<char>(bytes.begin(), bytes.end() - 5));
  EXPECT_TRUE(contains(load_error(key), "truncated"));
  std::vector<char> longer = bytes;
  longer.push_back(0);
  write(longer);
  EXPECT_TRUE(contains(load_error(key), "truncated"));
  // Not a cache at all, and an empty file.
  write(std::vector<char>{'h', 'e', 'l', 'l', 'o'});
  EXPECT_TRUE(contains(load_error(key), "not an mpdet calibration cache"));
  write({});
  EXPECT_TRUE(contains(load_error(key), "not an mpdet calibration cache"));
  // Another format version.
  std::vector<char> version = bytes;
  version[8] = static_cast<char>(quant::kCalibrationCacheVersion + 1);
  write(version);
  EXPECT_TRUE(contains(load_error(key), "format version"));
  // Missing file.
  std::filesystem::remove(path);
  EXPECT_TRUE(contains(load_error(key), "cannot open"));
}

}  // namespace
