// Image -> network input tensor: resize (stretch or letterbox), channel order, normalisation,
// in one pass over the destination. Also the inverse mapping used to put boxes back into
// input-image pixels.
#pragma once

#include <array>
#include <vector>

#include "mpdet/detection.h"
#include "mpdet/image.h"

namespace mpdet::vision {

enum class ResizeMode { Stretch, Letterbox };
enum class ChannelOrder { RGB, BGR };

struct PreprocessSpec {
  int width = 0;   // network input width
  int height = 0;  // network input height
  ChannelOrder channel_order = ChannelOrder::RGB;
  // value = (pixel - mean[c]) * scale, mean given per network-input channel, in pixel units.
  float scale = 1.0f / 255.0f;
  std::array<float, 3> mean = {0, 0, 0};
  ResizeMode resize = ResizeMode::Stretch;
  float letterbox_fill = 127.5f;  // pixel value of the padding (before mean/scale)
};

// Affine map from network-input pixel coordinates to input-image pixel coordinates:
// image_x = (net_x - offset_x) / scale_x, likewise for y; results clipped to the image.
struct InputTransform {
  float scale_x = 1, scale_y = 1;
  float offset_x = 0, offset_y = 0;
  int image_width = 0, image_height = 0;
  Box to_image(const Box& network_box) const;
};

// Source sample positions for one output axis of the bilinear resize: output index i blends
// source indices first[i] and second[i] (clamped to the image) with weight second_weight[i] on
// the second one.
struct AxisTaps {
  std::vector<int> first;
  std::vector<int> second;
  std::vector<float> second_weight;
};

// Everything the resize needs, computed once per image size: where the resized image lands in
// the network input, the taps of each axis, and which interleaved source channel feeds each
// network channel. CPU and GPU preprocessing both execute this plan, so they agree bit for bit.
struct ResizePlan {
  InputTransform transform;
  int target_width = 0, target_height = 0;  // the resized image (the whole input when stretching)
  int offset_x = 0, offset_y = 0;           // its top-left corner in the network input
  AxisTaps x_taps, y_taps;
  std::array<int, 3> source_channel = {0, 1, 2};
  std::array<float, 3> padding = {0, 0, 0};  // letterbox padding per channel, normalised
};

// Throws mpdet::Error for an empty image, null data, or a stride smaller than a row.
ResizePlan plan_resize(const ImageView& image, const PreprocessSpec& spec);

// Writes spec.height x spec.width x 3 floats in CHW order to `chw_out` following `plan` (made by
// plan_resize for this image and spec).
void execute_plan(const ImageView& image, const PreprocessSpec& spec, const ResizePlan& plan,
                  float* chw_out);

// plan_resize + execute_plan: writes spec.height x spec.width x 3 floats in CHW order to `chw_out`:
//   h = left + (right − left) · wx  (per source row),  v = top + (bottom − top) · wy,
//   value = (v − mean[c]) · scale,
// each step rounded to float in this order (the GPU path repeats it exactly).
InputTransform preprocess(const ImageView& image, const PreprocessSpec& spec, float* chw_out);

}  // namespace mpdet::vision
