#version 450
// Quantized convolution with the multipoint epilogue fused (ops/integer_arithmetic.h). Dense,
// grouped and depthwise layers share this source; the weight codes are read packed at WBITS bits
// (one SPIR-V variant per bit-width), CODES_PER_WORD codes in each 32-bit word, every virtual
// channel's row starting on a word boundary.
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
// Each invocation computes TILE consecutive outputs of one row: a weight code is read once for
// TILE multiply-adds, and the loop overhead is shared.
const int TILE = 4;

int weight_code(int row, int tap) {
  const uint word = w[row * p.row_words + tap / CODES_PER_WORD];
  return bitfieldExtract(int(word), (tap % CODES_PER_WORD) * WBITS, WBITS);
}

void main() {
  const int tiles_per_row = (p.out_w + TILE - 1) / TILE;
  const int index = int(gl_GlobalInvocationID.x);
  if (index >= p.out_c * p.out_h * tiles_per_row) return;
  const int oc = index / (p.out_h * tiles_per_row);
  const int oy = (index / tiles_per_row) % p.out_h;
  const int ox0 = (index % tiles_per_row) * TILE;
  const int in_per_group = p.in_c / p.groups;
  const int group = oc / (p.out_c / p.groups);
  const int first = int(epi[p.virtual_channels + p.out_c + oc]);
  const int last = int(epi[p.virtual_channels + p.out_c + oc + 1]);

  int64_t t[TILE];
  for (int j = 0; j < TILE; ++j) t[j] = epi[p.virtual_channels + oc];
  for (int v = first; v < last; ++v) {
    int acc[TILE] = int[TILE](0, 0, 0, 0);
    for (int icg = 0; icg < in_per_group; ++icg) {
      const int base = (group * in_per_group + icg) * p.in_h * p.in_w;
      for (int ky = 0; ky < p.kernel; ++ky) {
        const int iy = oy * p.stride + ky - p.pad;
        if (iy < 0 || iy >= p.in_h) continue;
        const int row = base + iy * p.in_w;
        for (int kx = 0; kx < p.kernel; ++kx) {
          const int code = weight_code(v, (icg * p.kernel + ky) * p.kernel + kx);
          const int ix0 = ox0 * p.stride + kx - p.pad;
          for (int j = 0; j < TILE; ++j) {
            const int ix = ix0 + j * p.stride;
            // Taps outside the row are padding (real value 0); columns past out_w are unused.
            if (ix >= 0 && ix < p.in_w) acc[j] += code * (int(x[row + ix]) - p.in_zero);
          }
        }
      }
    }
    for (int j = 0; j < TILE; ++j) t[j] += int64_t(acc[j]) * epi[v];
  }
  for (int j = 0; j < TILE && ox0 + j < p.out_w; ++j) {
    const int out_index = (oc * p.out_h + oy) * p.out_w + ox0 + j;
    const int64_t activated = activate_fixed(t[j], p.activation);
    y[out_index] = uint8_t(saturate_u8(int64_t(p.out_zero) + round_shift(activated, p.shift)));
    if (p.has_head != 0) head[out_index] = head_code(activated, p.shift);
  }
}
