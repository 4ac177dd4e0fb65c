#version 450
// Quantized convolution with the multipoint epilogue fused (ops/integer_arithmetic.h): one
// invocation per output value. Dense, grouped and depthwise layers share this source; the weight
// codes are read packed at WBITS bits (one SPIR-V variant per bit-width), CODES_PER_WORD codes in
// each 32-bit word, every virtual channel's row starting on a word boundary.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;

layout(std430, set = 0, binding = 0) readonly buffer Input { uint8_t x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Weights { uint w[]; };
// [V] multipliers, then [C] biases, then [C + 1] first virtual channel of each output channel.
layout(std430, set = 0, binding = 2) readonly buffer Epilogue { int64_t epi[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Output { uint8_t y[]; };
layout(std430, set = 0, binding = 4) writeonly buffer Head { int head[]; };

layout(push_constant) uniform Params {
  int in_c, in_h, in_w;
  int out_c, out_h, out_w;
  int kernel, stride, pad, groups;
  int in_zero, out_zero, shift, activation;
  int virtual_channels, row_words, has_head;
} p;

const int CODES_PER_WORD = 32 / WBITS;

int weight_code(int row, int tap) {
  const uint word = w[row * p.row_words + tap / CODES_PER_WORD];
  return bitfieldExtract(int(word), (tap % CODES_PER_WORD) * WBITS, WBITS);
}

void main() {
  const int plane = p.out_h * p.out_w;
  const int index = int(gl_GlobalInvocationID.x);
  if (index >= p.out_c * plane) return;
  const int oc = index / plane;
  const int oy = (index % plane) / p.out_w;
  const int ox = index % p.out_w;
  const int in_per_group = p.in_c / p.groups;
  const int group = oc / (p.out_c / p.groups);
  const int first = int(epi[p.virtual_channels + p.out_c + oc]);
  const int last = int(epi[p.virtual_channels + p.out_c + oc + 1]);

  int64_t t = epi[p.virtual_channels + oc];
  for (int v = first; v < last; ++v) {
    int acc = 0;
    for (int icg = 0; icg < in_per_group; ++icg) {
      const int base = (group * in_per_group + icg) * p.in_h * p.in_w;
      for (int ky = 0; ky < p.kernel; ++ky) {
        const int iy = oy * p.stride + ky - p.pad;
        if (iy < 0 || iy >= p.in_h) continue;
        for (int kx = 0; kx < p.kernel; ++kx) {
          const int ix = ox * p.stride + kx - p.pad;
          if (ix < 0 || ix >= p.in_w) continue;
          const int code = weight_code(v, (icg * p.kernel + ky) * p.kernel + kx);
          acc += code * (int(x[base + iy * p.in_w + ix]) - p.in_zero);
        }
      }
    }
    t += int64_t(acc) * epi[v];
  }
  const int64_t activated = activate_fixed(t, p.activation);
  y[index] = uint8_t(saturate_u8(int64_t(p.out_zero) + round_shift(activated, p.shift)));
  if (p.has_head != 0) head[index] = head_code(activated, p.shift);
}
