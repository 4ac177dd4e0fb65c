// Reference float kernels: plain loops, written to be obviously correct. They are the oracle the
// optimised backends are tested against, so clarity wins over speed; the loop order is chosen
// only so that the innermost loop runs over contiguous output pixels.
#pragma once

#include <cstddef>

#include "ops/op_params.h"

namespace mpdet::ops::reference {

// out[oc] = bias[oc] + sum over the group's input channels and the kernel window, then activation.
// weights: [out_channels][in_channels / groups][kernel][kernel].
void conv2d(const float* input, const Shape& in, const float* weights, const float* bias,
            const ConvParams& p, Activation activation, float* output, const Shape& out);

void max_pool(const float* input, const Shape& in, const PoolParams& p, float* output,
              const Shape& out);

void upsample_nearest(const float* input, const Shape& in, int factor, float* output);

void add(const float* a, const float* b, std::size_t n, Activation activation, float* output);

void apply_activation(float* data, std::size_t n, Activation activation);

inline float activate(float x, Activation a) {
  switch (a) {
    case Activation::Leaky:
      return x > 0 ? x : x * kLeakySlope;
    case Activation::Relu:
      return x > 0 ? x : 0.0f;
    case Activation::Linear:
      break;
  }
  return x;
}

}  // namespace mpdet::ops::reference
