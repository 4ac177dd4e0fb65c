// Output-aware rounding (OutputMetric, best_point_output, quantize_multipoint_output): never worse
// than nearest rounding in the output error it minimises, clearly better on correlated inputs,
// error non-increasing with points, codes in range, and plain rounding without information.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "mpdet/error.h"
#include "quant/weight_quantizer.h"

namespace {

using namespace mpdet::quant;

// Gram matrix of `samples` correlated inputs: x = A z with a random mixing A (plus a few dead taps
// when `dead` is set), like the patches of a convolution's input.
std::vector<double> correlated_gram(std::mt19937& rng, std::size_t n, bool dead = false) {
  std::normal_distribution<double> normal(0, 1);
  std::vector<double> mix(n * n);
  for (double& v : mix) v = normal(rng);
  for (std::size_t i = 0; i < n; ++i) mix[i * n + i] += 2.0;
  std::vector<double> gram(n * n, 0.0);
  const std::size_t samples = 4 * n + 8;
  std::vector<double> z(n), x(n);
  for (std::size_t s = 0; s < samples; ++s) {
    for (double& v : z) v = normal(rng);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = 0;
      for (std::size_t j = 0; j < n; ++j) x[i] += mix[i * n + j] * z[j];
      if (dead && i % 5 == 1) x[i] = 0;
    }
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) gram[i * n + j] += x[i] * x[j];
  }
  return gram;
}

std::vector<float> random_weights(std::mt19937& rng, std::size_t n) {
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> w(n);
  for (float& v : w) v = normal(rng) * (rng() % 40 == 0 ? 6.0f : 1.0f);
  return w;
}

// The output error of r - a·q, with the residual formed in float as the quantizer forms it.
double point_output_error(std::span<const float> r, const Point& p, const OutputMetric& metric) {
  std::vector<float> e(r.size());
  for (std::size_t i = 0; i < r.size(); ++i) e[i] = r[i] - p.scale * static_cast<float>(p.q[i]);
  return metric.error(e);
}

TEST(OutputRounding, NeverWorseThanNearestAndBetterOnAverage) {
  std::mt19937 rng(21);
  for (int bits : {2, 3, 4, 8}) {
    double nearest_total = 0, output_total = 0;
    for (int trial = 0; trial < 40; ++trial) {
      const std::size_t n = 1 + rng() % 72;
      const std::vector<double> gram = correlated_gram(rng, n, trial % 3 == 0);
      const OutputMetric metric(gram, n);
      const std::vector<float> w = random_weights(rng, n);
      const Point nearest = best_point(w, bits);
      const Point output = best_point_output(w, bits, metric);
      const double e_nearest = point_output_error(w, nearest, metric);
      const double e_output = point_output_error(w, output, metric);
      EXPECT_LE(e_output, e_nearest) << "bits " << bits << " n " << n;
      EXPECT_LE(e_output, metric.error(w)) << "bits " << bits << " n " << n;
      const int qmax = weight_qmax(bits);
      for (std::int8_t q : output.q) EXPECT_LE(std::abs(int(q)), qmax);
      nearest_total += e_nearest;
      output_total += e_output;
    }
    // Output-aware rounding pays off clearly at low bit-widths.
    if (bits <= 4) {
      EXPECT_LT(output_total, 0.9 * nearest_total) << "bits " << bits;
    }
  }
}

TEST(OutputRounding, MultipointErrorNeverGrowsWithPoints) {
  std::mt19937 rng(22);
  for (int bits : {2, 3, 4}) {
    for (int trial = 0; trial < 20; ++trial) {
      const std::size_t n = 2 + rng() % 60;
      const std::vector<double> gram = correlated_gram(rng, n);
      const OutputMetric metric(gram, n);
      const std::vector<float> w = random_weights(rng, n);
      const std::vector<Point> points = quantize_multipoint_output(w, bits, 4, metric);
      ASSERT_EQ(points.size(), 4u);
      std::vector<float> residual = w;
      double previous = metric.error(w);
      for (const Point& p : points) {
        ASSERT_EQ(p.q.size(), n);
        for (std::size_t i = 0; i < n; ++i) residual[i] -= p.scale * static_cast<float>(p.q[i]);
        const double error = metric.error(residual);
        EXPECT_LE(error, previous) << "bits " << bits;
        previous = error;
      }
      // Prefix consistency: n points are the first n of a larger construction.
      const std::vector<Point> two = quantize_multipoint_output(w, bits, 2, metric);
      for (int k = 0; k < 2; ++k) {
        EXPECT_EQ(two[k].scale, points[k].scale);
        EXPECT_EQ(two[k].q, points[k].q);
      }
    }
  }
}

TEST(OutputRounding, ZeroGramGivesNearestRounding) {
  std::mt19937 rng(23);
  const std::size_t n = 17;
  const std::vector<double> zero(n * n, 0.0);
  const OutputMetric metric(zero, n);
  const std::vector<float> w = random_weights(rng, n);
  std::vector<std::int8_t> q;
  metric.round(w, 0.25f, 7, q);
  for (std::size_t i = 0; i < n; ++i)
    EXPECT_EQ(q[i], static_cast<std::int8_t>(std::clamp(std::round(w[i] / 0.25f), -7.0f, 7.0f)));
}

TEST(OutputRounding, IdentityGramMatchesTheWeightError) {
  // With G = I the output error is the weight error: the result is at least as good as the exact
  // one-point optimum of best_point, so exactly as good.
  std::mt19937 rng(24);
  for (int bits : {2, 3, 4}) {
    const std::size_t n = 30;
    std::vector<double> identity(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) identity[i * n + i] = 1.0;
    const OutputMetric metric(identity, n);
    const std::vector<float> w = random_weights(rng, n);
    EXPECT_NEAR(point_output_error(w, best_point_output(w, bits, metric), metric),
                point_output_error(w, best_point(w, bits), metric), 1e-9);
  }
}

TEST(OutputRounding, RejectsMismatchedSizes) {
  const std::vector<double> gram(9, 0.0);
  EXPECT_THROW(OutputMetric(gram, 4), mpdet::Error);
  const OutputMetric metric(gram, 3);
  const std::vector<float> w(4, 1.0f);
  EXPECT_THROW(best_point_output(w, 4, metric), mpdet::Error);
  EXPECT_THROW(quantize_multipoint_output(w, 4, 0, metric), mpdet::Error);
}

}  // namespace
