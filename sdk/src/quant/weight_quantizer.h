// Weight quantizers (design.md §3). An output channel's float weights w (its in/groups x k x k
// values) are approximated as a sum of "points": w ≈ Σ_k a_k · q_k with q_k signed b-bit integer
// vectors in [-(2^(b-1) - 1), 2^(b-1) - 1] and a_k > 0 float scales. A channel with n points is
// executed as n virtual output channels of plain b-bit weights whose integer accumulators are
// combined in the epilogue.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace mpdet::quant {

// Largest magnitude of a signed b-bit weight: 2^(b-1) - 1 (symmetric range, no -2^(b-1)).
int weight_qmax(int bits);

struct Point {
  float scale = 0;             // a_k
  std::vector<std::int8_t> q;  // q_k, same length as the channel's weights
};

// The baseline: one point, max-abs scale, round to nearest.
Point quantize_naive(std::span<const float> w, int bits);

// One greedy step: the point (a, q = clamp(round(r / a))) minimising ||r - a·q||² over the scale a.
// The search scans candidate scales between max|r| / qmax / 8 and max|r| / qmax and refines the
// best by alternating the closed-form a = <r,q>/<q,q> with re-rounding, keeping the best seen.
// Returns a zero point (scale 0, q = 0) when r is all zeros.
Point best_point(std::span<const float> r, int bits);

// Greedy construction of `points` points: r = w; repeat { p = best_point(r); r -= p.scale·p.q }.
std::vector<Point> quantize_multipoint(std::span<const float> w, int bits, int points);

// Σ_k a_k · q_k.
std::vector<float> reconstruct(const std::vector<Point>& points, std::size_t length);

// Output error of a channel's weight error e = w - ŵ on calibration inputs with Gram matrix
// G = Σ_x x xᵀ (x = the input patch the channel sees): ||X e||² = eᵀ G e. `gram` is length x
// length, row-major; when empty, the plain weight error ||e||² is returned.
double output_error(std::span<const float> error, std::span<const double> gram);

// The output-error metric of one convolution group, for output-aware rounding. Rounding each
// weight to nearest minimises ||e||², not the output error eᵀ G e; sequential rounding with error
// feedback (optimal-brain-quantization style) rounds one weight at a time and spreads its rounding
// error over the weights not yet rounded, along the directions G says the output is least
// sensitive to. The feedback uses the upper Cholesky factor U of (G + λI)⁻¹, λ = `damping` · mean
// diagonal of G (keeps it invertible when inputs are dead or collinear).
class OutputMetric {
 public:
  // `gram` is n x n, row-major, symmetric (Σ x xᵀ). An all-zero Gram matrix gives plain rounding.
  OutputMetric(std::span<const double> gram, std::size_t n, double damping = 0.01);
  std::size_t size() const { return n_; }
  std::span<const double> gram() const { return gram_; }
  // eᵀ G e (undamped): the same value as output_error(e, gram()).
  double error(std::span<const float> e) const { return output_error(e, gram_); }
  // q = codes for r at a fixed scale, rounded in order 0..n-1 with error feedback.
  void round(std::span<const float> r, float scale, int qmax, std::vector<std::int8_t>& q) const;

 private:
  std::size_t n_;
  std::span<const double> gram_;
  std::vector<double> feedback_;  // U, row-major upper triangle; empty: plain rounding
};

// best_point under the output metric: starts from best_point(r) (nearest rounding, the scale that
// minimises ||r - a·q||²), then alternates error-feedback rounding and the scale that minimises
// (r - a·q)ᵀ G (r - a·q) for that q, and keeps the candidate with the lowest output error. The
// result's output error is never above best_point's, nor above ||r||²_G (the zero point).
Point best_point_output(std::span<const float> r, int bits, const OutputMetric& metric);

// Greedy construction as quantize_multipoint, each point from best_point_output.
std::vector<Point> quantize_multipoint_output(std::span<const float> w, int bits, int points,
                                              const OutputMetric& metric);

// Adaptive allocation of points under a budget.
struct ChannelCandidate {
  int layer = 0;
  int channel = 0;
  // errors[n - 1] = output error with n points, n = 1..max_points (non-increasing).
  std::vector<double> errors;
  double error_weight = 1.0;  // normalisation of this layer's errors (e.g. 1 / layer output energy)
  double cost = 1.0;          // MACs of one more point (= one virtual channel)
};

// Starts every channel at one point, then repeatedly gives one more point to the channel with
// the largest weighted error reduction per unit cost, while the total cost of all points stays
// within `budget_cost` (the MAC total allowed, e.g. budget × Σ one-point costs). Returns the
// number of points per candidate, in input order.
std::vector<int> allocate_points(const std::vector<ChannelCandidate>& candidates,
                                 double budget_cost);

}  // namespace mpdet::quant
