#version 450
// Quantized convolution with the multipoint epilogue fused (ops/integer_arithmetic.h). Dense,
// grouped and depthwise layers share this source; the weight codes are read packed at WBITS bits
// (one SPIR-V variant per bit-width), CODES_PER_WORD codes in each 32-bit word, every virtual
// channel's row starting on a word boundary.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;

// Activations are uint8 codes; read as 32-bit words (faster on every device we measured).
layout(std430, set = 0, binding = 0) readonly buffer Input { uint xw[]; };
int load_x(int i) { return int((xw[i >> 2] >> ((i & 3) * 8)) & 0xffu); }
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
  // Pointwise layers (1x1, stride 1, no padding) tile the flattened plane, others one row.
  const bool pointwise = p.kernel == 1 && p.stride == 1 && p.pad == 0;
  const int plane = p.out_h * p.out_w;
  const int tiles = pointwise ? (plane + TILE - 1) / TILE : p.out_h * ((p.out_w + TILE - 1) / TILE);
  const int index = int(gl_GlobalInvocationID.x);
  if (index >= p.out_c * tiles) return;
  const int oc = index / tiles;
  const int tile = index % tiles;
  const int oy = pointwise ? 0 : tile / ((p.out_w + TILE - 1) / TILE);
  const int ox0 = pointwise ? tile * TILE : (tile % ((p.out_w + TILE - 1) / TILE)) * TILE;
  const int row_end = pointwise ? plane : p.out_w;  // ox0 + j must stay below this
  const int in_per_group = p.in_c / p.groups;
  const int group = oc / (p.out_c / p.groups);
  const int first = int(epi[p.virtual_channels + p.out_c + oc]);
  const int last = int(epi[p.virtual_channels + p.out_c + oc + 1]);

  int64_t t[TILE];
  for (int j = 0; j < TILE; ++j) t[j] = epi[p.virtual_channels + oc];
  for (int v = first; v < last; ++v) {
    int acc[TILE] = int[TILE](0, 0, 0, 0);
    if (pointwise) {
      int base = group * in_per_group * plane + ox0;
      if (plane % 4 == 0) {
        // The TILE inputs of a channel are one aligned 32-bit word.
        for (int icg = 0; icg < in_per_group; ++icg, base += plane) {
          const int code = weight_code(v, icg);
          const uint word = xw[base >> 2];
          for (int j = 0; j < TILE; ++j)
            acc[j] += code * (int((word >> (8 * j)) & 0xffu) - p.in_zero);
        }
      } else {
        for (int icg = 0; icg < in_per_group; ++icg, base += plane) {
          const int code = weight_code(v, icg);
          for (int j = 0; j < TILE; ++j)
            if (ox0 + j < plane) acc[j] += code * (load_x(base + j) - p.in_zero);
        }
      }
    } else {
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
              if (ix >= 0 && ix < p.in_w) acc[j] += code * (load_x(row + ix) - p.in_zero);
            }
          }
        }
      }
    }
    for (int j = 0; j < TILE; ++j) t[j] += int64_t(acc[j]) * epi[v];
  }
  for (int j = 0; j < TILE && ox0 + j < row_end; ++j) {
    const int out_index = oc * plane + oy * p.out_w + ox0 + j;
    const int64_t activated = activate_fixed(t[j], p.activation);
    y[out_index] = uint8_t(saturate_u8(int64_t(p.out_zero) + round_shift(activated, p.shift)));
    if (p.has_head != 0) head[out_index] = head_code(activated, p.shift);
  }
}
