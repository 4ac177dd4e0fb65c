// The tiny Darknet network of unit/tiny_darknet.h as a float model, deterministic calibration
// inputs, and its quantized versions: the common fixture of the quantizer and backend tests.
#pragma once

#include <random>
#include <vector>

#include "import/darknet_importer.h"
#include "quant/calibration.h"
#include "quant/model_quantizer.h"
#include "unit/tiny_darknet.h"

namespace mpdet::test {

inline model::Model tiny_float_model() {
  return import::import_darknet_from_memory(kTinyCfg, tiny_weights(), {"cat", "dog"}, "tiny");
}

// Calibration input i: uniform [0, 1) values from a seed of its own.
inline void tiny_calibration_input(std::size_t i, std::vector<float>& tensor) {
  std::mt19937 rng(static_cast<unsigned>(100 + i));
  std::uniform_real_distribution<float> dist(0, 1);
  for (float& v : tensor) v = dist(rng);
}

// Calibrated on six inputs, quantized with the given weight settings (other options default).
inline model::Model quantize_tiny(quant::WeightMethod method, int bits, double budget,
                                  bool first_last_8bit = false) {
  const model::Model m = tiny_float_model();
  const quant::CalibrationData data = quant::calibrate(m, 6, tiny_calibration_input, {});
  quant::QuantizeOptions options;
  options.method = method;
  options.weight_bits = bits;
  options.budget = budget;
  options.first_last_8bit = first_last_8bit;
  return quant::quantize_model(m, data, options);
}

}  // namespace mpdet::test
