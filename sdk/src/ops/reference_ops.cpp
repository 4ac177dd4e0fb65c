#include "ops/reference_ops.h"

#include <algorithm>
#include <limits>

namespace mpdet::ops::reference {

void conv2d(const float* input, const Shape& in, const float* weights, const float* bias,
            const ConvParams& p, Activation activation, float* output, const Shape& out) {
  const int in_per_group = in.channels / p.groups;
  const int out_per_group = p.out_channels / p.groups;
  const std::size_t out_plane = static_cast<std::size_t>(out.height) * out.width;
  const std::size_t in_plane = static_cast<std::size_t>(in.height) * in.width;
  for (int oc = 0; oc < p.out_channels; ++oc) {
    float* dst = output + oc * out_plane;
    std::fill(dst, dst + out_plane, bias[oc]);
    const int group = oc / out_per_group;
    for (int icg = 0; icg < in_per_group; ++icg) {
      const float* src = input + (group * in_per_group + icg) * in_plane;
      for (int ky = 0; ky < p.kernel; ++ky) {
        for (int kx = 0; kx < p.kernel; ++kx) {
          const float w =
              weights[((static_cast<std::size_t>(oc) * in_per_group + icg) * p.kernel + ky) *
                          p.kernel +
                      kx];
          // Output columns whose tap (ox * stride + kx - pad) falls inside the input row.
          const int ox_begin = std::max(0, (p.pad - kx + p.stride - 1) / p.stride);
          const int last_tap = in.width - 1 + p.pad - kx;  // largest ox * stride allowed
          const int ox_end = last_tap < 0 ? 0 : std::min(out.width, last_tap / p.stride + 1);
          for (int oy = 0; oy < out.height; ++oy) {
            const int iy = oy * p.stride + ky - p.pad;
            if (iy < 0 || iy >= in.height) continue;
            const float* src_row = src + static_cast<std::size_t>(iy) * in.width;
            float* dst_row = dst + static_cast<std::size_t>(oy) * out.width;
            for (int ox = ox_begin; ox < ox_end; ++ox)
              dst_row[ox] += w * src_row[ox * p.stride + kx - p.pad];
          }
        }
      }
    }
    apply_activation(dst, out_plane, activation);
  }
}

void max_pool(const float* input, const Shape& in, const PoolParams& p, float* output,
              const Shape& out) {
  const int offset = p.padding / 2;
  for (int c = 0; c < out.channels; ++c) {
    const float* src = input + static_cast<std::size_t>(c) * in.height * in.width;
    float* dst = output + static_cast<std::size_t>(c) * out.height * out.width;
    for (int oy = 0; oy < out.height; ++oy) {
      for (int ox = 0; ox < out.width; ++ox) {
        float best = -std::numeric_limits<float>::infinity();
        for (int ky = 0; ky < p.size; ++ky) {
          const int iy = oy * p.stride + ky - offset;
          if (iy < 0 || iy >= in.height) continue;
          for (int kx = 0; kx < p.size; ++kx) {
            const int ix = ox * p.stride + kx - offset;
            if (ix >= 0 && ix < in.width) best = std::max(best, src[iy * in.width + ix]);
          }
        }
        dst[oy * out.width + ox] = best;
      }
    }
  }
}

void upsample_nearest(const float* input, const Shape& in, int factor, float* output) {
  const int out_w = in.width * factor;
  for (int c = 0; c < in.channels; ++c) {
    for (int oy = 0; oy < in.height * factor; ++oy) {
      const float* src = input + (static_cast<std::size_t>(c) * in.height + oy / factor) * in.width;
      float* dst = output + (static_cast<std::size_t>(c) * in.height * factor + oy) * out_w;
      for (int ox = 0; ox < out_w; ++ox) dst[ox] = src[ox / factor];
    }
  }
}

void add(const float* a, const float* b, std::size_t n, Activation activation, float* output) {
  for (std::size_t i = 0; i < n; ++i) output[i] = activate(a[i] + b[i], activation);
}

void apply_activation(float* data, std::size_t n, Activation activation) {
  if (activation == Activation::Linear) return;
  for (std::size_t i = 0; i < n; ++i) data[i] = activate(data[i], activation);
}

}  // namespace mpdet::ops::reference
