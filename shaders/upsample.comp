#version 450
// Nearest-neighbour upsampling by an integer factor on uint8 codes.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { uint8_t x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { uint8_t y[]; };
layout(push_constant) uniform Params { int channels, in_h, in_w, factor; } p;

void main() {
  const int out_h = p.in_h * p.factor, out_w = p.in_w * p.factor;
  const int index = int(gl_GlobalInvocationID.x);
  if (index >= p.channels * out_h * out_w) return;
  const int c = index / (out_h * out_w);
  const int oy = (index / out_w) % out_h, ox = index % out_w;
  y[index] = x[(c * p.in_h + oy / p.factor) * p.in_w + ox / p.factor];
}
