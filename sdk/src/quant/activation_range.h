// Choosing the clipping range of an 8-bit activation tensor from calibration statistics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mpdet::quant {

// A fixed-range histogram of observed values (range set from a first min/max pass).
class Histogram {
 public:
  Histogram(float lo, float hi, int bins = 2048);
  void add(const float* values, std::size_t n);  // values outside [lo, hi] go to the end bins
  // Adds another histogram's counts; it must have the same range and bins.
  void merge(const Histogram& other);
  // Replaces the counts (e.g. read back from a calibration cache); the bin count must match.
  void set_counts(std::vector<std::uint64_t> counts);
  float lo() const { return lo_; }
  float hi() const { return hi_; }
  const std::vector<std::uint64_t>& counts() const { return counts_; }
  double bin_centre(int i) const;

 private:
  float lo_, hi_;
  std::vector<std::uint64_t> counts_;
};

enum class RangeMethod { MinMax, Percentile, Mse };
RangeMethod parse_range_method(const std::string& name);  // "minmax" | "percentile" | "mse"

struct Range {
  float lo = 0, hi = 0;  // lo <= 0 <= hi always (zero must be exactly representable)
};

// MinMax: the observed range. Percentile: the 0.01% and 99.99% quantiles. Mse: the [lo, hi] that
// minimises the expected squared error of uint8 quantization over the histogram (clipping error of
// values outside plus rounding error Δ²/12 of values inside, Δ = (hi - lo) / 255), searched over
// shrinking lo and hi independently.
// `tail_fraction`: the fraction clipped at each end by Percentile (default 0.01%).
Range choose_range(const Histogram& histogram, RangeMethod method, double tail_fraction = 1e-4);

// Expected squared quantization error of the histogram's values for a given range (used by Mse).
double quantization_mse(const Histogram& histogram, Range range);

}  // namespace mpdet::quant
