#version 450
// Shortcut add of two uint8 tensors, each rescaled by its own multiplier, then the activation.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer InputA { uint8_t a[]; };
layout(std430, set = 0, binding = 1) readonly buffer InputB { uint8_t b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Output { uint8_t y[]; };
layout(push_constant) uniform Params {
  int64_t multiplier_a, multiplier_b;
  int count, a_zero, b_zero, out_zero, shift, activation;
} p;

void main() {
  const int i = int(gl_GlobalInvocationID.x);
  if (i >= p.count) return;
  int64_t t = int64_t(int(a[i]) - p.a_zero) * p.multiplier_a +
              int64_t(int(b[i]) - p.b_zero) * p.multiplier_b;
  t = activate_fixed(t, p.activation);
  y[i] = uint8_t(saturate_u8(int64_t(p.out_zero) + round_shift(t, p.shift)));
}
