// Adaptive allocation of multipoint points under a MAC budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "mpdet/error.h"
#include "quant/weight_quantizer.h"

namespace {

using namespace mpdet::quant;

ChannelCandidate candidate(std::vector<double> errors, double weight = 1.0, double cost = 1.0,
                           int channel = 0) {
  return {0, channel, std::move(errors), weight, cost};
}

std::vector<ChannelCandidate> random_candidates(std::mt19937& rng, std::size_t count) {
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<ChannelCandidate> candidates;
  for (std::size_t i = 0; i < count; ++i) {
    std::vector<double> errors(1 + rng() % 4);
    double e = unit(rng) * 10;
    for (double& v : errors) v = e, e *= unit(rng);  // non-increasing
    candidates.push_back({static_cast<int>(i % 7), static_cast<int>(i), errors, 0.1 + unit(rng),
                          static_cast<double>(1 + rng() % 1000)});
  }
  return candidates;
}

double one_point_cost(const std::vector<ChannelCandidate>& candidates) {
  double total = 0;
  for (const auto& c : candidates) total += c.cost;
  return total;
}

double spent(const std::vector<ChannelCandidate>& candidates, const std::vector<int>& points) {
  double total = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) total += points[i] * candidates[i].cost;
  return total;
}

TEST(AllocatePoints, StaysWithinBudgetWithAtLeastOnePoint) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 20; ++trial) {
    const auto candidates = random_candidates(rng, 300);
    const double base = one_point_cost(candidates);
    for (double budget : {1.0, 1.1, 1.25, 1.5, 2.0, 4.0}) {
      const std::vector<int> points = allocate_points(candidates, budget * base);
      ASSERT_EQ(points.size(), candidates.size());
      EXPECT_LE(spent(candidates, points), budget * base);
      for (std::size_t i = 0; i < points.size(); ++i) {
        EXPECT_GE(points[i], 1);
        EXPECT_LE(points[i], static_cast<int>(candidates[i].errors.size()));
      }
    }
  }
}

TEST(AllocatePoints, OnePointBudgetGivesEveryoneOne) {
  std::mt19937 rng(2);
  const auto candidates = random_candidates(rng, 100);
  const std::vector<int> points = allocate_points(candidates, one_point_cost(candidates));
  EXPECT_EQ(points, std::vector<int>(candidates.size(), 1));
  // Below the one-point total nobody can be dropped: still one each.
  EXPECT_EQ(allocate_points(candidates, 0.0), std::vector<int>(candidates.size(), 1));
}

TEST(AllocatePoints, PointsGoWhereTheErrorFallsFastest) {
  // Channel 1's second point saves 8, channel 0's saves 1: one spare point goes to channel 1.
  const std::vector<ChannelCandidate> candidates = {candidate({10, 9, 8.5}),
                                                    candidate({10, 2, 1.5})};
  EXPECT_EQ(allocate_points(candidates, 3), (std::vector<int>{1, 2}));
  // Next: channel 0's second (saves 1) beats channel 1's third (saves 0.5).
  EXPECT_EQ(allocate_points(candidates, 4), (std::vector<int>{2, 2}));
  EXPECT_EQ(allocate_points(candidates, 5), (std::vector<int>{3, 2}));
  EXPECT_EQ(allocate_points(candidates, 6), (std::vector<int>{3, 3}));
}

TEST(AllocatePoints, GainIsWeightedAndPerUnitCost) {
  // Weighted: channel 0 saves 10 × 1 = 10 weighted, channel 1 saves 8 × 1 = 8.
  const std::vector<ChannelCandidate> weighted = {candidate({10, 9}, 10.0),
                                                  candidate({10, 2}, 1.0)};
  EXPECT_EQ(allocate_points(weighted, 3), (std::vector<int>{2, 1}));
  // Cost: channel 1 saves 8 per 10 MACs (0.8 per MAC), channel 0 saves 1 per MAC.
  const std::vector<ChannelCandidate> costly = {candidate({10, 9}, 1.0, 1.0),
                                                candidate({10, 2}, 1.0, 10.0)};
  EXPECT_EQ(allocate_points(costly, 11 + 1), (std::vector<int>{2, 1}));
  EXPECT_EQ(allocate_points(costly, 11 + 11), (std::vector<int>{2, 2}));
}

TEST(AllocatePoints, UnaffordablePointIsSkippedForCheaperOnes) {
  // Channel 0 has the best gain per cost but its point (cost 10) does not fit in the 5 left;
  // channel 1's cheaper points (cost 1) still do.
  const std::vector<ChannelCandidate> candidates = {candidate({100, 0}, 1.0, 10.0),
                                                    candidate({10, 5, 3, 2}, 1.0, 1.0)};
  EXPECT_EQ(allocate_points(candidates, 11 + 5), (std::vector<int>{1, 4}));
}

TEST(AllocatePoints, StopsWhenNoChannelCanImprove) {
  const std::vector<ChannelCandidate> candidates = {
      candidate({5, 4, 3, 2}),  // all four points help
      candidate({5, 5, 5}),     // flat: more points do not help
      candidate({5, 6, 1}),     // the second point would hurt: stays at one
      candidate({5}),           // only one point computed
      candidate({5, 1}, 0.0),   // zero weight: its error does not count
  };
  EXPECT_EQ(allocate_points(candidates, 1e9), (std::vector<int>{4, 1, 1, 1, 1}));
}

TEST(AllocatePoints, TiesGoToTheLowerIndex) {
  const std::vector<ChannelCandidate> candidates(5, candidate({4, 2}));
  EXPECT_EQ(allocate_points(candidates, 5 + 2), (std::vector<int>{2, 2, 1, 1, 1}));
  // And the result does not depend on anything but the input.
  std::mt19937 rng(3);
  const auto many = random_candidates(rng, 1000);
  EXPECT_EQ(allocate_points(many, 1.3 * one_point_cost(many)),
            allocate_points(many, 1.3 * one_point_cost(many)));
}

TEST(AllocatePoints, GreedyOrderOnRandomCandidates) {
  // With unit costs and convex errors (diminishing returns) greedy allocation is optimal: compare
  // the total weighted error with taking the globally best marginal gains directly.
  std::mt19937 rng(4);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<ChannelCandidate> candidates;
  std::vector<double> gains;
  for (int i = 0; i < 200; ++i) {
    std::vector<double> errors = {10 * unit(rng)};
    double drop = errors[0] * unit(rng);
    for (int k = 1; k < 4; ++k)
      errors.push_back(errors.back() - drop), gains.push_back(drop), drop *= unit(rng);
    candidates.push_back(candidate(errors));
  }
  const int extra = 150;
  std::sort(gains.begin(), gains.end(), std::greater<>());
  double best_total = 0;
  for (const auto& c : candidates) best_total += c.errors[0];
  for (int k = 0; k < extra; ++k) best_total -= gains[k];
  const std::vector<int> points = allocate_points(candidates, 200 + extra);
  double total = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) total += candidates[i].errors[points[i] - 1];
  EXPECT_NEAR(total, best_total, 1e-9 * best_total);
}

TEST(AllocatePoints, ScalesToManyCandidates) {
  std::mt19937 rng(5);
  const auto candidates = random_candidates(rng, 20000);
  const std::vector<int> points = allocate_points(candidates, 1.5 * one_point_cost(candidates));
  EXPECT_LE(spent(candidates, points), 1.5 * one_point_cost(candidates));
  EXPECT_GT(spent(candidates, points), 1.4 * one_point_cost(candidates));  // the budget is used
}

TEST(AllocatePoints, RejectsInvalidArguments) {
  EXPECT_THROW(allocate_points({candidate({1, 0})}, -1), mpdet::Error);
  EXPECT_THROW(allocate_points({candidate({1, 0})}, NAN), mpdet::Error);
  EXPECT_THROW(allocate_points({candidate({})}, 10), mpdet::Error);
  EXPECT_THROW(allocate_points({candidate({1, 0}, 1.0, 0.0)}, 10), mpdet::Error);
  EXPECT_THROW(allocate_points({candidate({1, 0}, -1.0)}, 10), mpdet::Error);
  EXPECT_THROW(allocate_points({candidate({1, NAN})}, 10), mpdet::Error);
  EXPECT_TRUE(allocate_points({}, 0).empty());
}

}  // namespace
