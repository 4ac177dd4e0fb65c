#version 450
// Max pooling on uint8 codes with Darknet's padding (ops::PoolParams): padded positions never win.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { uint8_t x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { uint8_t y[]; };
layout(push_constant) uniform Params {
  int channels, in_h, in_w, out_h, out_w, size, stride, padding;
} p;

void main() {
  const int plane = p.out_h * p.out_w;
  const int index = int(gl_GlobalInvocationID.x);
  if (index >= p.channels * plane) return;
  const int c = index / plane, oy = (index % plane) / p.out_w, ox = index % p.out_w;
  const int offset = p.padding / 2;
  uint best = 0;
  for (int ky = 0; ky < p.size; ++ky) {
    const int iy = oy * p.stride + ky - offset;
    if (iy < 0 || iy >= p.in_h) continue;
    for (int kx = 0; kx < p.size; ++kx) {
      const int ix = ox * p.stride + kx - offset;
      if (ix >= 0 && ix < p.in_w) best = max(best, uint(x[(c * p.in_h + iy) * p.in_w + ix]));
    }
  }
  y[index] = uint8_t(best);
}
