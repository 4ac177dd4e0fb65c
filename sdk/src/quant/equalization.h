// Cross-layer equalization (design.md §3: a standard PTQ aid for depthwise-separable networks).
// Per-tensor uint8 activations lose the channels whose range is far below the tensor's largest:
// after batch-norm folding, a depthwise block's channels can differ by orders of magnitude. When a
// convolution A feeds only one convolution B, and A's activation is positively homogeneous
// (linear, relu, leaky: f(x / s) = f(x) / s for s > 0), dividing A's output channel c (its weights
// and bias) by s_c and multiplying B's weights that read channel c by s_c leaves B's output
// unchanged, while the tensor between them gets the ranges r_c / s_c.
#pragma once

#include <vector>

#include "model/graph.h"

namespace mpdet::quant {

// Per layer: the scale s_c of each output channel of every equalized A (empty for other layers),
// from the per-channel ranges r_c = max |x| of the float model's outputs (calibration pass 1).
// When B is depthwise (its per-channel weights do not care), s_c = r_c / max r: every channel gets
// the tensor's full range. Otherwise the range is balanced against B's input-column weight range
// w_c = max |W_B[:, c]|: s_c = sqrt(r_c / w_c) · k, with k chosen so the largest channel range is
// kept, leaving r_c / s_c and w_c · s_c closer together. Dead channels (r_c ≈ 0) keep s_c = 1.
std::vector<std::vector<float>> equalization_scales(
    const model::Model& float_model, const std::vector<std::vector<float>>& channel_max);

// The float model with the scales applied (same outputs up to float rounding).
model::Model apply_equalization(const model::Model& float_model,
                                const std::vector<std::vector<float>>& scales);

}  // namespace mpdet::quant
