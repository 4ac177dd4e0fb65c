#include "ops/integer_reference_ops.h"

#include <algorithm>
#include <vector>

namespace mpdet::ops::integer_reference {

void conv2d_multipoint(const std::uint8_t* input, const Shape& in, QuantParams in_q,
                       const std::int8_t* point_weights, std::span<const int> points,
                       const Requantization& requant, const ConvParams& p, Activation activation,
                       std::uint8_t* output, const Shape& out, QuantParams out_q,
                       std::int32_t* head_output) {
  const int in_per_group = in.channels / p.groups;
  const int out_per_group = p.out_channels / p.groups;
  const std::size_t taps = static_cast<std::size_t>(in_per_group) * p.kernel * p.kernel;
  const std::size_t out_plane = static_cast<std::size_t>(out.height) * out.width;
  const std::size_t in_plane = static_cast<std::size_t>(in.height) * in.width;
  std::vector<std::int32_t> acc(out_plane);
  std::vector<std::int64_t> t(out_plane);
  int v = 0;  // first virtual channel of the current output channel
  for (int oc = 0; oc < p.out_channels; ++oc) {
    const int group = oc / out_per_group;
    std::fill(t.begin(), t.end(), requant.bias[oc]);
    for (int k = 0; k < points[oc]; ++k, ++v) {
      // acc_v over the whole output plane, one weight tap at a time.
      const std::int8_t* w = point_weights + static_cast<std::size_t>(v) * taps;
      std::fill(acc.begin(), acc.end(), 0);
      for (int icg = 0; icg < in_per_group; ++icg) {
        const std::uint8_t* src = input + (group * in_per_group + icg) * in_plane;
        for (int ky = 0; ky < p.kernel; ++ky)
          for (int kx = 0; kx < p.kernel; ++kx) {
            const std::int32_t weight = w[(icg * p.kernel + ky) * p.kernel + kx];
            if (weight == 0) continue;
            // Output columns whose tap (ox * stride + kx - pad) lies inside the input row.
            const int ox_begin = std::max(0, (p.pad - kx + p.stride - 1) / p.stride);
            const int last_tap = in.width - 1 + p.pad - kx;
            const int ox_end = last_tap < 0 ? 0 : std::min(out.width, last_tap / p.stride + 1);
            for (int oy = 0; oy < out.height; ++oy) {
              const int iy = oy * p.stride + ky - p.pad;
              if (iy < 0 || iy >= in.height) continue;
              const std::uint8_t* src_row = src + static_cast<std::size_t>(iy) * in.width;
              std::int32_t* acc_row = acc.data() + static_cast<std::size_t>(oy) * out.width;
              for (int ox = ox_begin; ox < ox_end; ++ox)
                acc_row[ox] += weight * (src_row[ox * p.stride + kx - p.pad] - in_q.zero_point);
            }
          }
      }
      const std::int64_t multiplier = requant.multipliers[v];
      for (std::size_t i = 0; i < out_plane; ++i)
        t[i] += static_cast<std::int64_t>(acc[i]) * multiplier;
    }
    std::uint8_t* dst = output + static_cast<std::size_t>(oc) * out_plane;
    for (std::size_t i = 0; i < out_plane; ++i) {
      const std::int64_t activated = activate_fixed(t[i], activation);
      dst[i] = saturate_u8(out_q.zero_point + round_shift(activated, requant.shift));
      if (head_output)
        head_output[static_cast<std::size_t>(oc) * out_plane + i] =
            head_code(activated, requant.shift);
    }
  }
}

void max_pool(const std::uint8_t* input, const Shape& in, const PoolParams& p, std::uint8_t* output,
              const Shape& out) {
  const int offset = p.padding / 2;
  for (int c = 0; c < out.channels; ++c) {
    const std::uint8_t* src = input + static_cast<std::size_t>(c) * in.height * in.width;
    std::uint8_t* dst = output + static_cast<std::size_t>(c) * out.height * out.width;
    for (int oy = 0; oy < out.height; ++oy)
      for (int ox = 0; ox < out.width; ++ox) {
        int best = -1;  // padded positions never win; every window holds at least one input
        for (int ky = 0; ky < p.size; ++ky) {
          const int iy = oy * p.stride + ky - offset;
          if (iy < 0 || iy >= in.height) continue;
          for (int kx = 0; kx < p.size; ++kx) {
            const int ix = ox * p.stride + kx - offset;
            if (ix >= 0 && ix < in.width) best = std::max<int>(best, src[iy * in.width + ix]);
          }
        }
        dst[oy * out.width + ox] = static_cast<std::uint8_t>(std::max(best, 0));
      }
  }
}

void upsample_nearest(const std::uint8_t* input, const Shape& in, int factor,
                      std::uint8_t* output) {
  const int out_w = in.width * factor;
  for (int c = 0; c < in.channels; ++c)
    for (int oy = 0; oy < in.height * factor; ++oy) {
      const std::uint8_t* src =
          input + (static_cast<std::size_t>(c) * in.height + oy / factor) * in.width;
      std::uint8_t* dst = output + (static_cast<std::size_t>(c) * in.height * factor + oy) * out_w;
      for (int ox = 0; ox < out_w; ++ox) dst[ox] = src[ox / factor];
    }
}

void add(const std::uint8_t* a, QuantParams a_q, const std::uint8_t* b, QuantParams b_q,
         std::size_t n, const Requantization& requant, Activation activation, std::uint8_t* output,
         QuantParams out_q) {
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t t = std::int64_t{a[i] - a_q.zero_point} * requant.multipliers[0] +
                     std::int64_t{b[i] - b_q.zero_point} * requant.multipliers[1];
    t = activate_fixed(t, activation);
    output[i] = saturate_u8(out_q.zero_point + round_shift(t, requant.shift));
  }
}

void requantize(const std::uint8_t* input, QuantParams in_q, std::size_t n,
                const Requantization& requant, std::size_t index, std::uint8_t* output,
                QuantParams out_q) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t t = std::int64_t{input[i] - in_q.zero_point} * requant.multipliers[index];
    output[i] = saturate_u8(out_q.zero_point + round_shift(t, requant.shift));
  }
}

void quantize_input(const float* input, std::size_t n, QuantParams q, std::uint8_t* output) {
  const float inv_scale = static_cast<float>(1.0 / q.scale);
  for (std::size_t i = 0; i < n; ++i)
    output[i] = ops::quantize_input(input[i], inv_scale, q.zero_point);
}

void dequantize_head(const std::int32_t* input, std::size_t n, QuantParams q, float* output) {
  const float step = static_cast<float>(double(q.scale) / (1 << kHeadFractionBits));
  for (std::size_t i = 0; i < n; ++i) output[i] = static_cast<float>(input[i]) * step;
}

void dequantize(const std::uint8_t* input, std::size_t n, QuantParams q, float* output) {
  for (std::size_t i = 0; i < n; ++i)
    output[i] = q.scale * static_cast<float>(static_cast<int>(input[i]) - q.zero_point);
}

}  // namespace mpdet::ops::integer_reference
