#version 450
// One input of a concat: q_y = clamp(z_y + round_shift((q − z_x)·M, S)), written at an offset of
// the output (the channel block this input fills).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { uint8_t x[]; };
layout(std430, set = 0, binding = 1) buffer Output { uint8_t y[]; };
layout(push_constant) uniform Params {
  int64_t multiplier;
  int count, out_offset, in_zero, out_zero, shift;
} p;

void main() {
  const int i = int(gl_GlobalInvocationID.x);
  if (i >= p.count) return;
  const int64_t t = int64_t(int(x[i]) - p.in_zero) * p.multiplier;
  y[p.out_offset + i] = uint8_t(saturate_u8(int64_t(p.out_zero) + round_shift(t, p.shift)));
}
