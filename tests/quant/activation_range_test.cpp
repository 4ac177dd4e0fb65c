// Activation clipping ranges from calibration histograms.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "mpdet/error.h"
#include "quant/activation_range.h"

namespace {

using namespace mpdet::quant;

constexpr RangeMethod kAllMethods[] = {RangeMethod::MinMax, RangeMethod::Percentile,
                                       RangeMethod::Mse};

Histogram histogram_of(const std::vector<float>& values, int bins = 2048) {
  float lo = 0, hi = 0;  // as calibration does: the range includes 0
  for (float v : values) lo = std::min(lo, v), hi = std::max(hi, v);
  Histogram h(lo, std::max(hi, lo + 1e-6f), bins);
  h.add(values.data(), values.size());
  return h;
}

std::vector<float> gaussian(std::mt19937& rng, std::size_t n, float mean = 0, float sigma = 1) {
  std::normal_distribution<float> normal(mean, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

TEST(Histogram, CountsOnAHandBuiltCase) {
  Histogram h(0, 4, 4);  // bins [0,1) [1,2) [2,3) [3,4]
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> values = {0, 0.5f, 1, 3.99f, 4, -1, 5, nan, 2.5f, inf, -inf};
  h.add(values.data(), values.size());
  EXPECT_EQ(h.counts(), (std::vector<std::uint64_t>{4, 1, 1, 4}));
  EXPECT_DOUBLE_EQ(h.bin_centre(0), 0.5);
  EXPECT_DOUBLE_EQ(h.bin_centre(3), 3.5);
  EXPECT_EQ(h.lo(), 0.0f);
  EXPECT_EQ(h.hi(), 4.0f);
  EXPECT_THROW(h.bin_centre(4), mpdet::Error);
}

TEST(Histogram, RejectsEmptyRanges) {
  EXPECT_THROW(Histogram(1, 1), mpdet::Error);
  EXPECT_THROW(Histogram(2, 1), mpdet::Error);
  EXPECT_THROW(Histogram(0, std::numeric_limits<float>::quiet_NaN()), mpdet::Error);
  EXPECT_THROW(Histogram(0, std::numeric_limits<float>::infinity()), mpdet::Error);
  EXPECT_THROW(Histogram(0, 1, 0), mpdet::Error);
}

TEST(RangeMethod, Parse) {
  EXPECT_EQ(parse_range_method("minmax"), RangeMethod::MinMax);
  EXPECT_EQ(parse_range_method("percentile"), RangeMethod::Percentile);
  EXPECT_EQ(parse_range_method("mse"), RangeMethod::Mse);
  EXPECT_THROW(parse_range_method("kl"), mpdet::Error);
}

TEST(QuantizationMse, HandComputed) {
  Histogram h(0, 4, 4);
  const std::vector<float> values = {0.5f, 1.5f, 1.5f, 2.5f, 3.5f};  // centres 0.5 1.5 2.5 3.5
  h.add(values.data(), values.size());
  const double step = 2.0 / 255;
  // Inside [0, 2]: 0.5 and 1.5 ×2 round; clipped: 2.5 → 2 and 3.5 → 2.
  const double expected = (3 * step * step / 12 + 0.25 + 2.25) / 5;
  EXPECT_NEAR(quantization_mse(h, {0, 2}), expected, 1e-12);
  // A bin centre on the edge counts as inside.
  EXPECT_NEAR(quantization_mse(h, {0, 3.5f}), 3.5 * 3.5 / 255 / 255 / 12, 1e-12);
}

TEST(ChooseRange, MinMaxIsTheObservedRange) {
  Histogram h(-4, 4, 8);  // unit bins
  const std::vector<float> values = {-1.5f, 0.2f, 2.5f};
  h.add(values.data(), values.size());
  const Range r = choose_range(h, RangeMethod::MinMax);
  EXPECT_FLOAT_EQ(r.lo, -2.0f);
  EXPECT_FLOAT_EQ(r.hi, 3.0f);
}

TEST(ChooseRange, AlwaysContainsZero) {
  for (RangeMethod method : kAllMethods) {
    Histogram positive(5, 6, 64);
    const std::vector<float> values = {5.2f, 5.5f, 5.9f};
    positive.add(values.data(), values.size());
    const Range above = choose_range(positive, method);
    EXPECT_EQ(above.lo, 0.0f);
    EXPECT_GE(above.hi, 5.5f);

    Histogram negative(-6, -5, 64);
    negative.add(std::vector<float>{-5.5f}.data(), 1);
    const Range below = choose_range(negative, method);
    EXPECT_LE(below.lo, -5.0f);
    EXPECT_EQ(below.hi, 0.0f);

    std::mt19937 rng(1);
    const Range r = choose_range(histogram_of(gaussian(rng, 10000, 3)), method);
    EXPECT_LE(r.lo, 0.0f);
    EXPECT_GE(r.hi, 0.0f);
    EXPECT_LT(r.lo, r.hi);

    const Range empty = choose_range(Histogram(-1, 2, 16), method);  // nothing observed
    EXPECT_LE(empty.lo, 0.0f);
    EXPECT_GE(empty.hi, 0.0f);
  }
}

TEST(ChooseRange, PercentileClipsRareOutliers) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> uniform(0, 1);
  std::vector<float> values(1000000);
  for (float& v : values) v = uniform(rng);
  for (int i = 0; i < 50; ++i) values[i] = 100;  // 0.005% < 0.01%
  const Range r = choose_range(histogram_of(values), RangeMethod::Percentile);
  EXPECT_NEAR(r.hi, 0.9999, 0.06);  // within a bin (100 / 2048) of the 99.99% quantile
  EXPECT_EQ(r.lo, 0.0f);
  EXPECT_EQ(choose_range(histogram_of(values), RangeMethod::MinMax).hi, 100.0f);
}

TEST(ChooseRange, MseNeverWorseThanTheOthers) {
  std::mt19937 rng(3);
  std::vector<std::vector<float>> samples = {gaussian(rng, 20000), gaussian(rng, 20000, 2, 0.5f)};
  std::vector<float> outliers = gaussian(rng, 20000);
  for (int i = 0; i < 10; ++i) outliers[i] = 50.0f * (i % 2 ? 1 : -0.2f);
  samples.push_back(outliers);
  std::exponential_distribution<float> exponential(1);
  std::vector<float> skewed(20000);
  for (float& v : skewed) v = exponential(rng);
  samples.push_back(skewed);
  samples.push_back({1.0f});
  for (const auto& values : samples)
    for (int bins : {16, 2048}) {
      const Histogram h = histogram_of(values, bins);
      const double mse = quantization_mse(h, choose_range(h, RangeMethod::Mse));
      EXPECT_LE(mse, quantization_mse(h, choose_range(h, RangeMethod::MinMax)));
      EXPECT_LE(mse, quantization_mse(h, choose_range(h, RangeMethod::Percentile)));
    }
}

TEST(ChooseRange, MseClipsHugeOutliers) {
  // Rounding over [lo, hi] costs (hi - lo)²/(255²·12) per value, clipping a fraction p at D costs
  // p·(D - hi)²: with 3 values in 4M at 100 and the Gaussian body in [-5.3, 5.3], the optimum is
  // hi ≈ 34: a third of the maximum, at about a third of the minmax error.
  std::mt19937 rng(4);
  std::vector<float> values = gaussian(rng, 4000000);
  for (int i = 0; i < 3; ++i) values[i] = 100;
  const Histogram h = histogram_of(values);
  const Range r = choose_range(h, RangeMethod::Mse);
  EXPECT_LT(r.hi, 45.0f);
  EXPECT_GT(r.hi, 25.0f);
  EXPECT_LT(r.lo, -2.0f);
  EXPECT_LT(quantization_mse(h, r),
            0.5 * quantization_mse(h, choose_range(h, RangeMethod::MinMax)));
  // Many outliers are part of the distribution: clipping them would cost more than rounding.
  for (int i = 0; i < 100000; ++i) values[i] = 100;
  EXPECT_GT(choose_range(histogram_of(values), RangeMethod::Mse).hi, 95.0f);
}

TEST(ChooseRange, MseKeepsAUniformRange) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-1, 3);
  std::vector<float> values(200000);
  for (float& v : values) v = uniform(rng);
  const Range r = choose_range(histogram_of(values), RangeMethod::Mse);
  EXPECT_GT(r.hi, 0.95f * 3);
  EXPECT_LT(r.lo, 0.95f * -1);
}

TEST(ChooseRange, ReluOutputsGetZeroLow) {
  std::mt19937 rng(6);
  std::vector<float> values = gaussian(rng, 50000);
  for (float& v : values) v = std::max(v, 0.0f);
  const Histogram h = histogram_of(values);
  for (RangeMethod method : kAllMethods) {
    const Range r = choose_range(h, method);
    EXPECT_EQ(r.lo, 0.0f);
    EXPECT_GT(r.hi, 2.0f);
  }
}

}  // namespace
