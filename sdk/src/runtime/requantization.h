// The fixed-point epilogue parameters of every layer of a quantized model, derived once from the
// model's float scales (ops/integer_arithmetic.h). Every integer backend starts from this, so
// they cannot disagree on a multiplier or a shift.
#pragma once

#include <vector>

#include "model/graph.h"
#include "ops/integer_arithmetic.h"

namespace mpdet::runtime {

// Per layer: conv layers get their multipoint epilogue, add and concat one multiplier per input,
// every other layer an empty Requantization.
std::vector<ops::Requantization> plan_requantization(const model::Model& model);

}  // namespace mpdet::runtime
