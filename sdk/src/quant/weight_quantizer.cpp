#include "quant/weight_quantizer.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <string>

#include "mpdet/error.h"

namespace mpdet::quant {
namespace {

void check_bits(int bits) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw Error("weight bits must be 2, 3, 4 or 8 (got " + std::to_string(bits) + ")");
}

float max_abs(std::span<const float> r) {
  float m = 0;
  for (float v : r) {
    if (!std::isfinite(v)) throw Error("cannot quantize a non-finite weight");
    m = std::max(m, std::abs(v));
  }
  return m;
}

// q = clamp(round(r / a)), rounding half away from zero. Written with truncation (exact, and cheap
// enough to vectorise) because this loop dominates the scale search.
void round_to_grid(std::span<const float> r, float scale, int qmax, std::vector<std::int8_t>& q) {
  const double limit = qmax;
  for (std::size_t i = 0; i < r.size(); ++i) {
    const double x = std::clamp(double(r[i]) / scale, -limit, limit);
    const int truncated = static_cast<int>(x);
    const double fraction = x - truncated;
    q[i] = static_cast<std::int8_t>(truncated + (fraction >= 0.5) - (fraction <= -0.5));
  }
}

// One residual element after subtracting a point, in float: best_point measures its error with the
// same arithmetic quantize_multipoint uses to form the next residual, so the error a caller sees
// after subtracting the point is exactly the error that was minimised (never above ||r||²).
float residual_after(float r, float scale, std::int8_t q) {
  return r - scale * static_cast<float>(q);
}

double residual_energy(std::span<const float> r, float scale, const std::vector<std::int8_t>& q) {
  double sum = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    const double e = residual_after(r[i], scale, q[i]);
    sum += e * e;
  }
  return sum;
}

// For fixed q the best scale is <r,q>/<q,q>, and the error at that scale is ||r||² - <r,q>²/<q,q>:
// candidates are compared by the score <r,q>²/<q,q> (larger is better).
struct Moments {
  double rq = 0, qq = 0;
  double score() const { return qq > 0 ? rq * rq / qq : 0; }
  double best_scale() const { return qq > 0 ? rq / qq : 0; }
};

Moments moments(std::span<const float> r, const std::vector<std::int8_t>& q) {
  Moments m;
  for (std::size_t i = 0; i < r.size(); ++i) {
    m.rq += double(r[i]) * q[i];
    m.qq += double(q[i]) * q[i];
  }
  return m;
}

// The scale search works on t = 1/a. As t grows, |q_i| = clamp(round(|r_i|·t)) steps from k to
// k + 1 at t = (k + 0.5) / |r_i|; between two such events q is constant, and the best error of that
// piece (at its own best scale) is ||r||² - <r,q>²/<q,q>. Sweeping the events of an interval of t
// in order therefore finds the exact optimum over it. Each event only needs |r_i| and k to update
// <r,q>
// (+|r_i|) and <q,q> (+2k + 1). Every intermediate state is a valid q (each element's events are
// increasing in k), so float ties between events cannot produce an unachievable score.

// Over all t in [0, ∞): with |r| sorted in descending order the events of each level k are already
// in order, so the sweep is a merge of qmax sorted lists (at most n·qmax events, no sort).
Moments sweep_all_scales(std::span<const float> r, int qmax) {
  std::vector<double> magnitudes;
  magnitudes.reserve(r.size());
  for (float v : r)
    if (v != 0) magnitudes.push_back(std::abs(double(v)));
  std::sort(magnitudes.begin(), magnitudes.end(), std::greater<>());
  const std::size_t n = magnitudes.size();
  std::vector<std::size_t> next(qmax, 0);  // per level k: the next element to step from k to k + 1
  Moments m, best;
  for (;;) {
    int level = -1;
    double level_t = 0;
    for (int k = 0; k < qmax; ++k) {
      if (next[k] >= n) continue;
      const double t = (k + 0.5) / magnitudes[next[k]];
      if (level < 0 || t < level_t) level = k, level_t = t;
    }
    if (level < 0) break;
    m.rq += magnitudes[next[level]];
    m.qq += 2.0 * level + 1.0;
    ++next[level];
    if (m.score() > best.score()) best = m;
  }
  return best;
}

// Over t in [t_begin, t_end]: events listed explicitly and sorted (used for narrow windows).
Moments sweep_scales(std::span<const float> r, int qmax, double t_begin, double t_end) {
  struct Event {
    double t, magnitude;
    int level;  // |q| before the event
  };
  std::vector<Event> events;
  Moments m;
  for (float v : r) {
    const double magnitude = std::abs(double(v));
    if (magnitude == 0) continue;
    int level = static_cast<int>(std::min<double>(qmax, std::round(magnitude * t_begin)));
    m.rq += magnitude * level;
    m.qq += double(level) * level;
    for (; level < qmax; ++level) {
      const double t = (level + 0.5) / magnitude;
      if (t > t_end) break;
      events.push_back({t, magnitude, level});
    }
  }
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.t < b.t; });
  Moments best = m;
  for (const Event& e : events) {
    m.rq += e.magnitude;
    m.qq += 2.0 * e.level + 1.0;
    if (m.score() > best.score()) best = m;
  }
  return best;
}

// Starting scales for the refinement. Small grids (qmax <= 7): the exact global optimum, sweeping
// t over [0, ∞) costs at most n·qmax events. 8 bits would cost up to 127 events per weight, and the
// naive max-abs scale is already close to optimal, so candidates are scored instead: a geometric
// scan of [max/qmax/8, max/qmax] (its top is the naive scale, so the result is never worse) and the
// scales that put the largest weight exactly on a level k in [qmax/2, qmax) (these recover weights
// on a grid that stops short of ±qmax exactly: some multiple of their codes reaches past qmax/2).
// Each scale is scored at its q's own best scale; the best few are swept exactly over a small
// window.
std::vector<double> starting_scales(std::span<const float> r, int qmax, float max_value) {
  if (qmax <= 7) return {sweep_all_scales(r, qmax).best_scale()};

  constexpr int kScanned = 64;
  constexpr int kKept = 4;
  constexpr double kWindow = 1.02;  // the sweep covers scale / kWindow .. scale · kWindow
  std::vector<double> candidates;
  const double top = double(max_value) / qmax;
  for (int c = 0; c < kScanned; ++c)
    candidates.push_back(top * std::pow(8.0, -double(c) / (kScanned - 1)));
  for (int level = qmax - 1; 2 * level >= qmax; --level)
    candidates.push_back(double(max_value) / level);

  std::vector<std::pair<double, double>> scored;  // (score, scale)
  std::vector<std::int8_t> q(r.size());
  for (double scale : candidates) {
    round_to_grid(r, static_cast<float>(scale), qmax, q);
    scored.emplace_back(moments(r, q).score(), scale);
  }
  // Highest score first; equal scores keep the candidate order (stable), for determinism.
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<double> starts;
  for (int i = 0; i < kKept; ++i) {
    const double scale = scored[i].second;
    starts.push_back(sweep_scales(r, qmax, 1 / (scale * kWindow), kWindow / scale).best_scale());
  }
  return starts;
}

}  // namespace

int weight_qmax(int bits) {
  check_bits(bits);
  return (1 << (bits - 1)) - 1;
}

Point quantize_naive(std::span<const float> w, int bits) {
  const int qmax = weight_qmax(bits);
  Point p;
  p.q.assign(w.size(), 0);
  const float max_value = max_abs(w);
  if (max_value == 0) return p;
  const double scale = double(max_value) / qmax;
  // Divide by the double scale so the max-abs element lands exactly on ±qmax.
  for (std::size_t i = 0; i < w.size(); ++i)
    p.q[i] =
        static_cast<std::int8_t>(std::clamp(std::round(w[i] / scale), double(-qmax), double(qmax)));
  p.scale = static_cast<float>(scale);
  return p;
}

Point best_point(std::span<const float> r, int bits) {
  const int qmax = weight_qmax(bits);
  Point best;
  best.q.assign(r.size(), 0);
  const float max_value = max_abs(r);
  if (max_value == 0) return best;

  const std::vector<double> starts = starting_scales(r, qmax, max_value);

  double best_error = residual_energy(r, 0, best.q);  // the zero point: ||r||²
  std::vector<std::int8_t> q(r.size());
  for (double start : starts) {
    // Alternate re-rounding and the closed-form scale: neither step can increase the error, so this
    // only polishes float effects for the exact sweep and climbs to a local optimum for the scan.
    double scale = start;
    double previous_error = HUGE_VAL;
    for (int iteration = 0; iteration < 8 && scale > 0; ++iteration) {
      const float stored = static_cast<float>(scale);
      round_to_grid(r, stored, qmax, q);
      const double error = residual_energy(r, stored, q);
      if (error < best_error) {
        best_error = error;
        best.scale = stored;
        best.q = q;
      }
      if (!(error < previous_error)) break;  // converged
      previous_error = error;
      scale = moments(r, q).best_scale();
    }
  }
  return best;
}

namespace {

// The greedy construction shared by both metrics: each point is `best(residual)`, the best single
// point for what the earlier points left over.
template <typename BestPoint>
std::vector<Point> greedy_points(std::span<const float> w, int bits, int points, BestPoint best) {
  check_bits(bits);
  if (points < 1)
    throw Error("a channel needs at least one point (got " + std::to_string(points) + ")");
  std::vector<float> residual(w.begin(), w.end());
  std::vector<Point> result;
  result.reserve(points);
  for (int k = 0; k < points; ++k) {
    Point p = best(residual);
    for (std::size_t i = 0; i < residual.size(); ++i)
      residual[i] = residual_after(residual[i], p.scale, p.q[i]);
    result.push_back(std::move(p));
  }
  return result;
}

}  // namespace

std::vector<Point> quantize_multipoint(std::span<const float> w, int bits, int points) {
  return greedy_points(w, bits, points,
                       [&](const std::vector<float>& r) { return best_point(r, bits); });
}

std::vector<float> reconstruct(const std::vector<Point>& points, std::size_t length) {
  std::vector<double> sum(length, 0.0);
  for (const Point& p : points) {
    if (p.q.size() != length)
      throw Error("point has " + std::to_string(p.q.size()) + " weights, expected " +
                  std::to_string(length));
    for (std::size_t i = 0; i < length; ++i) sum[i] += double(p.scale) * p.q[i];
  }
  return std::vector<float>(sum.begin(), sum.end());
}

double output_error(std::span<const float> error, std::span<const double> gram) {
  const std::size_t n = error.size();
  if (gram.empty()) {
    double sum = 0;
    for (float e : error) sum += double(e) * e;
    return sum;
  }
  if (gram.size() != n * n)
    throw Error("Gram matrix has " + std::to_string(gram.size()) + " entries, expected " +
                std::to_string(n) + "²");
  // eᵀGe using the symmetry of G: Σ_i e_i (G_ii e_i + 2 Σ_{j>i} G_ij e_j), half the work.
  const std::vector<double> e(error.begin(), error.end());
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double* row = gram.data() + i * n;
    double off_diagonal = 0;
    for (std::size_t j = i + 1; j < n; ++j) off_diagonal += row[j] * e[j];
    sum += e[i] * (row[i] * e[i] + 2.0 * off_diagonal);
  }
  return sum;
}

OutputMetric::OutputMetric(std::span<const double> gram, std::size_t n, double damping)
    : n_(n), gram_(gram) {
  if (gram.size() != n * n)
    throw Error("Gram matrix has " + std::to_string(gram.size()) + " entries, expected " +
                std::to_string(n) + "²");
  if (!(damping > 0)) throw Error("the output metric needs a positive damping");
  double trace = 0;
  for (std::size_t i = 0; i < n; ++i) trace += gram[i * n + i];
  if (!(trace > 0) || !std::isfinite(trace)) return;  // no information: plain rounding
  const double lambda = damping * trace / static_cast<double>(n);
  // H = G + λI = L Lᵀ (lower Cholesky, in place).
  std::vector<double> L(gram.begin(), gram.end());
  for (std::size_t i = 0; i < n; ++i) L[i * n + i] += lambda;
  auto cholesky = [n](std::vector<double>& A) {  // lower, in place; false if not positive
    for (std::size_t j = 0; j < n; ++j) {
      double d = A[j * n + j];
      for (std::size_t k = 0; k < j; ++k) d -= A[j * n + k] * A[j * n + k];
      if (!(d > 0)) return false;
      d = std::sqrt(d);
      A[j * n + j] = d;
      for (std::size_t i = j + 1; i < n; ++i) {
        double v = A[i * n + j];
        for (std::size_t k = 0; k < j; ++k) v -= A[i * n + k] * A[j * n + k];
        A[i * n + j] = v / d;
      }
      for (std::size_t k = j + 1; k < n; ++k) A[j * n + k] = 0;
    }
    return true;
  };
  if (!cholesky(L)) return;
  // L⁻¹ (lower), column by column by forward substitution.
  std::vector<double> Li(n * n, 0.0);
  for (std::size_t c = 0; c < n; ++c) {
    Li[c * n + c] = 1.0 / L[c * n + c];
    for (std::size_t i = c + 1; i < n; ++i) {
      double v = 0;
      for (std::size_t k = c; k < i; ++k) v -= L[i * n + k] * Li[k * n + c];
      Li[i * n + c] = v / L[i * n + i];
    }
  }
  // H⁻¹ = L⁻ᵀ L⁻¹, then H⁻¹ = M Mᵀ (lower) and U = Mᵀ.
  std::vector<double> Hi(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j <= i; ++j) {
      double v = 0;
      for (std::size_t k = i; k < n; ++k) v += Li[k * n + i] * Li[k * n + j];
      Hi[i * n + j] = Hi[j * n + i] = v;
    }
  if (!cholesky(Hi)) return;
  feedback_.assign(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i; j < n; ++j) feedback_[i * n + j] = Hi[j * n + i];
}

void OutputMetric::round(std::span<const float> r, float scale, int qmax,
                         std::vector<std::int8_t>& q) const {
  if (r.size() != n_) throw Error("output metric: residual has the wrong length");
  q.resize(n_);
  if (feedback_.empty() || !(scale > 0)) {
    if (scale > 0) {
      round_to_grid(r, scale, qmax, q);
    } else {
      std::fill(q.begin(), q.end(), std::int8_t{0});
    }
    return;
  }
  std::vector<double> w(r.begin(), r.end());
  const double limit = qmax;
  for (std::size_t j = 0; j < n_; ++j) {
    const double code = std::clamp(std::round(w[j] / scale), -limit, limit);
    q[j] = static_cast<std::int8_t>(code);
    const double* u = feedback_.data() + j * n_;
    const double err = (w[j] - double(scale) * code) / u[j];
    for (std::size_t k = j + 1; k < n_; ++k) w[k] -= err * u[k];
  }
}

namespace {

// The float residual r - a·q (as quantize_multipoint forms it) and its output error.
double metric_error(std::span<const float> r, float scale, const std::vector<std::int8_t>& q,
                    const OutputMetric& metric, std::vector<float>& residual) {
  residual.resize(r.size());
  for (std::size_t i = 0; i < r.size(); ++i) residual[i] = residual_after(r[i], scale, q[i]);
  return metric.error(residual);
}

// argmin_a (r - a·q)ᵀ G (r - a·q) = qᵀGr / qᵀGq (0 when qᵀGq is not positive).
double metric_scale(std::span<const float> r, const std::vector<std::int8_t>& q,
                    std::span<const double> G) {
  const std::size_t n = r.size();
  double qgr = 0, qgq = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (q[i] == 0) continue;
    const double* row = G.data() + i * n;
    double gr = 0, gq = 0;
    for (std::size_t j = 0; j < n; ++j) {
      gr += row[j] * r[j];
      gq += row[j] * q[j];
    }
    qgr += q[i] * gr;
    qgq += q[i] * gq;
  }
  return qgq > 0 ? qgr / qgq : 0;
}

}  // namespace

Point best_point_output(std::span<const float> r, int bits, const OutputMetric& metric) {
  if (r.size() != metric.size()) throw Error("output metric: residual has the wrong length");
  const int qmax = weight_qmax(bits);
  const Point nearest = best_point(r, bits);
  Point best = nearest;
  if (best.scale == 0) return best;
  std::vector<float> residual;
  double best_error = metric_error(r, best.scale, best.q, metric, residual);
  const double zero_error = metric.error(r);
  if (zero_error < best_error) {  // the zero point beats it (possible only under G)
    best = Point{0, std::vector<std::int8_t>(r.size(), 0)};
    best_error = zero_error;
  }
  auto consider = [&](float scale, const std::vector<std::int8_t>& q) {
    if (!(scale > 0) || !std::isfinite(scale)) return HUGE_VAL;
    const double e = metric_error(r, scale, q, metric, residual);
    if (e < best_error) {
      best_error = e;
      best.scale = scale;
      best.q = q;
    }
    return e;
  };
  // Nearest rounding at the best scale under G.
  std::vector<std::int8_t> q = nearest.q;
  consider(static_cast<float>(metric_scale(r, q, metric.gram())), q);
  // Error-feedback rounding, alternating with the scale refit.
  float scale = nearest.scale;
  double previous = HUGE_VAL;
  for (int iteration = 0; iteration < 4 && scale > 0; ++iteration) {
    metric.round(r, scale, qmax, q);
    consider(scale, q);
    const float refit = static_cast<float>(metric_scale(r, q, metric.gram()));
    const double e = consider(refit, q);
    if (!(e < previous)) break;
    previous = e;
    scale = refit;
  }
  return best;
}

std::vector<Point> quantize_multipoint_output(std::span<const float> w, int bits, int points,
                                              const OutputMetric& metric) {
  return greedy_points(w, bits, points, [&](const std::vector<float>& r) {
    return best_point_output(r, bits, metric);
  });
}

std::vector<int> allocate_points(const std::vector<ChannelCandidate>& candidates,
                                 double budget_cost) {
  if (!(budget_cost >= 0)) throw Error("the point budget must be a non-negative cost");
  double total_cost = 0;
  for (const ChannelCandidate& c : candidates) {
    const std::string where =
        "layer " + std::to_string(c.layer) + " channel " + std::to_string(c.channel);
    if (c.errors.empty())
      throw Error(where + ": no errors given (need at least the one-point error)");
    if (!(c.cost > 0) || !std::isfinite(c.cost))
      throw Error(where + ": the cost of a point must be positive");
    if (!(c.error_weight >= 0) || !std::isfinite(c.error_weight))
      throw Error(where + ": the error weight must be non-negative");
    for (double e : c.errors)
      if (!std::isfinite(e)) throw Error(where + ": non-finite error");
    total_cost += c.cost;
  }

  // Every channel needs its first point, even when the budget does not cover them all.
  std::vector<int> points(candidates.size(), 1);

  struct Step {
    double gain_per_cost;
    std::size_t candidate;
  };
  // Largest gain per cost first; on equal gains the lower index first (deterministic).
  auto after = [](const Step& a, const Step& b) {
    if (a.gain_per_cost != b.gain_per_cost) return a.gain_per_cost < b.gain_per_cost;
    return a.candidate > b.candidate;
  };
  std::priority_queue<Step, std::vector<Step>, decltype(after)> queue(after);
  // Offers the candidate's next point if it has one and it lowers the weighted error.
  auto offer_next = [&](std::size_t i) {
    const ChannelCandidate& c = candidates[i];
    const std::size_t n = static_cast<std::size_t>(points[i]);
    if (n >= c.errors.size()) return;
    const double gain = c.error_weight * (c.errors[n - 1] - c.errors[n]) / c.cost;
    if (gain > 0) queue.push({gain, i});
  };
  for (std::size_t i = 0; i < candidates.size(); ++i) offer_next(i);

  while (!queue.empty()) {
    const Step step = queue.top();
    queue.pop();
    const ChannelCandidate& c = candidates[step.candidate];
    // A point that does not fit now never will (the spent cost only grows): drop the channel, but
    // keep going, since cheaper points of other channels may still fit.
    if (total_cost + c.cost > budget_cost) continue;
    total_cost += c.cost;
    ++points[step.candidate];
    offer_next(step.candidate);
  }
  return points;
}

}  // namespace mpdet::quant
