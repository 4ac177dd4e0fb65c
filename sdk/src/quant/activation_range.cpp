#include "quant/activation_range.h"

#include <algorithm>
#include <cmath>

#include "mpdet/error.h"

namespace mpdet::quant {
namespace {

constexpr double kLevels = 255.0;               // uint8 steps across [lo, hi]
constexpr double kTailFraction = 1e-4;          // Percentile: 0.01% clipped at each end
constexpr int kShrinkSteps = 256;               // Mse: candidate factors per end
constexpr double kSmallestShrink = 1.0 / 4096;  // Mse: below the resolution of a 2048-bin histogram

std::uint64_t total_count(const Histogram& h) {
  std::uint64_t total = 0;
  for (std::uint64_t c : h.counts()) total += c;
  return total;
}

double bin_width(const Histogram& h) {
  return (double(h.hi()) - h.lo()) / static_cast<double>(h.counts().size());
}

// Zero must be exactly representable, so every range is widened to contain it.
Range including_zero(double lo, double hi) {
  return {static_cast<float>(std::min(lo, 0.0)), static_cast<float>(std::max(hi, 0.0))};
}

// The observed range: from the lower edge of the first non-empty bin to the upper edge of the last.
Range observed_range(const Histogram& h) {
  const auto& counts = h.counts();
  const int bins = static_cast<int>(counts.size());
  int first = 0, last = bins - 1;
  while (first < bins && counts[first] == 0) ++first;
  if (first == bins)
    return including_zero(h.lo(), h.hi());  // nothing observed: the histogram's range
  while (counts[last] == 0) --last;
  const double width = bin_width(h);
  return including_zero(h.lo() + first * width, h.lo() + (last + 1) * width);
}

// Value below which `rank` of the counts lie, interpolating linearly inside the bin that holds it.
double quantile_from_below(const Histogram& h, double rank) {
  const auto& counts = h.counts();
  const double width = bin_width(h);
  double below = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double c = static_cast<double>(counts[i]);
    if (c > 0 && below + c >= rank)
      return h.lo() + (i + std::clamp((rank - below) / c, 0.0, 1.0)) * width;
    below += c;
  }
  return h.hi();
}

double quantile_from_above(const Histogram& h, double rank) {
  const auto& counts = h.counts();
  const double width = bin_width(h);
  double above = 0;
  for (std::size_t i = counts.size(); i-- > 0;) {
    const double c = static_cast<double>(counts[i]);
    if (c > 0 && above + c >= rank)
      return h.lo() + (i + 1 - std::clamp((rank - above) / c, 0.0, 1.0)) * width;
    above += c;
  }
  return h.lo();
}

Range percentile_range(const Histogram& h, double tail_fraction = kTailFraction) {
  const std::uint64_t total = total_count(h);
  if (total == 0) return including_zero(h.lo(), h.hi());
  const double rank = tail_fraction * static_cast<double>(total);
  const double lo = quantile_from_below(h, rank);
  const double hi = std::max(lo, quantile_from_above(h, rank));
  return including_zero(lo, hi);
}

// Clipping cost Σ c·(v - edge)² and count of the bins whose centre lies beyond `edge` on one side.
struct Tail {
  double clip_error = 0;
  double count = 0;
};

Tail tail_below(const Histogram& h, double edge) {
  Tail t;
  for (std::size_t i = 0; i < h.counts().size(); ++i) {
    const double v = h.bin_centre(static_cast<int>(i));
    if (v >= edge) break;
    const double c = static_cast<double>(h.counts()[i]);
    t.clip_error += c * (v - edge) * (v - edge);
    t.count += c;
  }
  return t;
}

Tail tail_above(const Histogram& h, double edge) {
  Tail t;
  for (std::size_t i = h.counts().size(); i-- > 0;) {
    const double v = h.bin_centre(static_cast<int>(i));
    if (v <= edge) break;
    const double c = static_cast<double>(h.counts()[i]);
    t.clip_error += c * (v - edge) * (v - edge);
    t.count += c;
  }
  return t;
}

// Minimises quantization_mse over independent shrink factors of the observed lo and hi. The cost
// separates into a lower tail, an upper tail and a rounding term that only needs the count inside,
// so the tails are computed once per candidate edge and every (lo, hi) pair costs O(1). Factors are
// geometric, to resolve both a nearly full range and one clipped far in (huge outliers). The MinMax
// and Percentile ranges are candidates too, so Mse is never worse than either.
Range mse_range(const Histogram& h) {
  const std::uint64_t total = total_count(h);
  const Range observed = observed_range(h);
  if (total == 0) return observed;
  std::vector<double> factors(kShrinkSteps);
  for (int k = 0; k < kShrinkSteps; ++k)
    factors[k] =
        std::pow(kSmallestShrink, double(k) / (kShrinkSteps - 1));  // 1 down to the smallest
  std::vector<double> los, his;
  std::vector<Tail> lower, upper;
  for (double f : factors) {
    los.push_back(observed.lo * f);
    lower.push_back(tail_below(h, los.back()));
    his.push_back(observed.hi * f);
    upper.push_back(tail_above(h, his.back()));
  }
  const double n = static_cast<double>(total);
  Range best = observed;
  double best_cost = HUGE_VAL;
  for (int i = 0; i < kShrinkSteps; ++i)
    for (int j = 0; j < kShrinkSteps; ++j) {
      const double step = (his[j] - los[i]) / kLevels;
      const double inside = n - lower[i].count - upper[j].count;
      const double cost =
          (lower[i].clip_error + upper[j].clip_error + inside * step * step / 12.0) / n;
      if (cost < best_cost) {
        best_cost = cost;
        best = {static_cast<float>(los[i]), static_cast<float>(his[j])};
      }
    }
  // Final comparison with the exact definition (the float-rounded edges can shift a bin in or out).
  Range chosen = best;
  double chosen_cost = quantization_mse(h, best);
  for (const Range& other : {observed, percentile_range(h)}) {
    const double cost = quantization_mse(h, other);
    if (cost < chosen_cost) chosen = other, chosen_cost = cost;
  }
  return chosen;
}

}  // namespace

Histogram::Histogram(float lo, float hi, int bins) : lo_(lo), hi_(hi) {
  if (bins < 1) throw Error("a histogram needs at least one bin");
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
    throw Error("histogram range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "] is empty or not finite");
  counts_.assign(static_cast<std::size_t>(bins), 0);
}

void Histogram::add(const float* values, std::size_t n) {
  const int bins = static_cast<int>(counts_.size());
  const double bins_per_unit = bins / (double(hi_) - lo_);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = values[i];
    if (std::isnan(v)) continue;
    // Clamp in double before converting, so ±inf and far outliers land in the end bins.
    const double position = std::floor((double(v) - lo_) * bins_per_unit);
    const int bin = static_cast<int>(std::clamp(position, 0.0, double(bins - 1)));
    ++counts_[bin];
  }
}

void Histogram::merge(const Histogram& other) {
  if (other.lo_ != lo_ || other.hi_ != hi_ || other.counts_.size() != counts_.size())
    throw Error("cannot merge histograms with different ranges or bins");
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

void Histogram::set_counts(std::vector<std::uint64_t> counts) {
  if (counts.size() != counts_.size())
    throw Error("histogram has " + std::to_string(counts_.size()) + " bins, got " +
                std::to_string(counts.size()) + " counts");
  counts_ = std::move(counts);
}

double Histogram::bin_centre(int i) const {
  if (i < 0 || i >= static_cast<int>(counts_.size()))
    throw Error("histogram bin " + std::to_string(i) + " out of range");
  return lo_ + (i + 0.5) * ((double(hi_) - lo_) / static_cast<double>(counts_.size()));
}

RangeMethod parse_range_method(const std::string& name) {
  if (name == "minmax") return RangeMethod::MinMax;
  if (name == "percentile") return RangeMethod::Percentile;
  if (name == "mse") return RangeMethod::Mse;
  throw Error("unknown activation range method '" + name + "' (minmax, percentile or mse)");
}

Range choose_range(const Histogram& histogram, RangeMethod method, double tail_fraction) {
  switch (method) {
    case RangeMethod::MinMax:
      return observed_range(histogram);
    case RangeMethod::Percentile:
      return percentile_range(histogram, tail_fraction);
    case RangeMethod::Mse:
      return mse_range(histogram);
  }
  throw Error("unknown activation range method");
}

double quantization_mse(const Histogram& histogram, Range range) {
  if (!(range.lo <= range.hi)) throw Error("quantization range has lo > hi");
  const std::uint64_t total = total_count(histogram);
  if (total == 0) return 0;
  const double step = (double(range.hi) - range.lo) / kLevels;
  const double rounding_error = step * step / 12.0;
  double sum = 0;
  const auto& counts = histogram.counts();
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    const double v = histogram.bin_centre(static_cast<int>(i));
    const double c = static_cast<double>(counts[i]);
    if (v < range.lo || v > range.hi) {
      const double clipped = std::clamp(v, double(range.lo), double(range.hi));
      sum += c * (v - clipped) * (v - clipped);
    } else {
      sum += c * rounding_error;
    }
  }
  return sum / static_cast<double>(total);
}

}  // namespace mpdet::quant
