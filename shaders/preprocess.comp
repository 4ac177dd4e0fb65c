#version 450
// A camera frame (8-bit interleaved BGR/RGB) -> the quantized network input, on the device:
// bilinear resize with the taps of vision::ResizePlan, normalisation, letterbox padding and input
// quantization, in the float operation order of vision::preprocess and ops::quantize_input.
// `precise` keeps every multiply and add separately rounded (no fused multiply-add), so the codes
// equal the CPU path's exactly.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer Image { uint8_t pixels[]; };  // rows packed
// [x first | x second | y first | y second] source indices
layout(std430, set = 0, binding = 1) readonly buffer Taps { int taps[]; };
layout(std430, set = 0, binding = 2) readonly buffer Weights { float weights[]; };  // [x | y]
layout(std430, set = 0, binding = 3) writeonly buffer Output { uint8_t y[]; };
layout(push_constant) uniform Params {
  int net_w, net_h, target_w, target_h, offset_x, offset_y, image_w;
  int source_channel[3];
  float mean[3];
  float scale;
  float padding[3];
  float inv_scale;
  int zero_point;
} p;

float pixel(int row, int column, int channel) {
  return float(uint(pixels[(row * p.image_w + column) * 3 + channel]));
}

void main() {
  const int index = int(gl_GlobalInvocationID.x);
  const int plane = p.net_w * p.net_h;
  if (index >= 3 * plane) return;
  const int c = index / plane;
  const int ty = (index % plane) / p.net_w - p.offset_y;
  const int tx = index % p.net_w - p.offset_x;
  precise float value = p.padding[c];
  if (tx >= 0 && tx < p.target_w && ty >= 0 && ty < p.target_h) {
    const int left = taps[tx], right = taps[p.target_w + tx];
    const int top = taps[2 * p.target_w + ty], bottom = taps[2 * p.target_w + p.target_h + ty];
    const float wx = weights[tx], wy = weights[p.target_w + ty];
    const int channel = p.source_channel[c];
    precise float top_left = pixel(top, left, channel);
    precise float upper = top_left + (pixel(top, right, channel) - top_left) * wx;
    precise float bottom_left = pixel(bottom, left, channel);
    precise float lower = bottom_left + (pixel(bottom, right, channel) - bottom_left) * wx;
    precise float blended = upper + (lower - upper) * wy;
    value = (blended - p.mean[c]) * p.scale;
  }
  precise float shifted = value * p.inv_scale + 0.5;
  const float clamped = clamp(shifted, -1024.0, 1024.0);
  y[index] = uint8_t(saturate_u8(int64_t(int(floor(clamped))) + p.zero_point));
}
