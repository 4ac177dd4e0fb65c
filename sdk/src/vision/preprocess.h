// Image -> network input tensor: resize (stretch or letterbox), channel order, normalisation,
// in one pass over the destination. Also the inverse mapping used to put boxes back into
// input-image pixels.
#pragma once

#include <array>

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

// Writes spec.height x spec.width x 3 floats in CHW order to `chw_out`.
// Throws mpdet::Error for an empty image, null data, or a stride smaller than a row.
InputTransform preprocess(const ImageView& image, const PreprocessSpec& spec, float* chw_out);

}  // namespace mpdet::vision
