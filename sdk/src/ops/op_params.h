// Parameters of the network operations, shared by the graph description (sdk/src/model) and
// every backend's kernels. Plain data: no parsing, no allocation.
#pragma once

#include <cstddef>

namespace mpdet::ops {

// Tensors are single images in CHW order.
struct Shape {
  int channels = 0, height = 0, width = 0;
  std::size_t elements() const {
    return static_cast<std::size_t>(channels) * static_cast<std::size_t>(height) *
           static_cast<std::size_t>(width);
  }
  bool operator==(const Shape&) const = default;
};

enum class Activation { Linear, Leaky, Relu };
inline constexpr float kLeakySlope = 0.1f;  // Darknet's leaky ReLU slope

struct ConvParams {
  int out_channels = 0;
  int kernel = 1;  // square kernels only (all supported models use them)
  int stride = 1;
  int pad = 0;  // zero padding on every side
  int groups = 1;
};

// Max pooling with Darknet's padding rule: `padding` extra rows/columns in total, padding / 2 of
// them before the first row/column; padded positions never win the max.
struct PoolParams {
  int size = 2;
  int stride = 2;
  int padding = 1;  // total, as in Darknet (default size - 1)
};

inline int conv_output_size(int in, const ConvParams& p) {
  return (in + 2 * p.pad - p.kernel) / p.stride + 1;
}
inline int pool_output_size(int in, const PoolParams& p) {
  return (in + p.padding - p.size) / p.stride + 1;
}

}  // namespace mpdet::ops
