#version 450
// Network input: q = clamp(floor(x · inv_s + 0.5) + z, 0, 255), in float exactly as the CPU does
// it (`precise` forbids fusing the multiply-add, which would round differently).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { uint8_t y[]; };
layout(push_constant) uniform Params { float inv_scale; int count, zero_point; } p;

void main() {
  const int i = int(gl_GlobalInvocationID.x);
  if (i >= p.count) return;
  precise float scaled = x[i] * p.inv_scale;
  precise float shifted = scaled + 0.5;
  const float clamped = clamp(shifted, -1024.0, 1024.0);
  y[i] = uint8_t(saturate_u8(int64_t(int(floor(clamped))) + p.zero_point));
}
