#include "vision/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mpdet/error.h"

namespace mpdet::vision {

namespace {

// Half-pixel-centre mapping, src = (dst + 0.5) * in / out - 0.5, as cv::resize INTER_LINEAR
// does. Out-of-range neighbours are clamped to the edge pixel, which is what OpenCV's edge
// handling amounts to (a tap outside the image collapses onto the border pixel).
AxisTaps compute_axis_taps(int in_size, int out_size) {
  AxisTaps taps;
  taps.first.resize(out_size);
  taps.second.resize(out_size);
  taps.second_weight.resize(out_size);
  // Double precision for the position so large images do not lose the fractional part.
  const double ratio = static_cast<double>(in_size) / out_size;
  for (int i = 0; i < out_size; ++i) {
    const double position = (i + 0.5) * ratio - 0.5;
    const double floor_position = std::floor(position);
    const int index = static_cast<int>(floor_position);
    taps.first[i] = std::clamp(index, 0, in_size - 1);
    taps.second[i] = std::clamp(index + 1, 0, in_size - 1);
    taps.second_weight[i] = static_cast<float>(position - floor_position);
  }
  return taps;
}

void validate(const ImageView& image, const PreprocessSpec& spec) {
  if (image.data == nullptr) throw Error("preprocess: image has no pixel data (null pointer)");
  if (image.width <= 0 || image.height <= 0) {
    throw Error("preprocess: image size " + std::to_string(image.width) + "x" +
                std::to_string(image.height) + " is empty");
  }
  if (image.format != PixelFormat::BGR && image.format != PixelFormat::RGB)
    throw Error("preprocess: only BGR and RGB images are supported so far");
  if (image.rotation != Rotation::Deg0 || image.mirror || image.roi)
    throw Error("preprocess: rotation, mirror and region of interest are not supported so far");
  const std::size_t row_bytes = static_cast<std::size_t>(image.width) * image.bytes_per_pixel();
  if (image.stride() < row_bytes) {
    throw Error("preprocess: image row stride " + std::to_string(image.stride()) +
                " bytes is smaller than one row of " + std::to_string(image.width) +
                " BGR/RGB pixels (" + std::to_string(row_bytes) + " bytes)");
  }
  if (spec.width <= 0 || spec.height <= 0) {
    throw Error("preprocess: network input size " + std::to_string(spec.width) + "x" +
                std::to_string(spec.height) + " is invalid");
  }
}

// Bilinear resize of `image` to target_width x target_height, normalised and written into
// the spec.width x spec.height CHW tensor at (offset_x, offset_y). Rows are first
// interpolated horizontally into float buffers (cached, since consecutive output rows mostly
// share source rows), then blended vertically straight into the output planes.
void resize_into(const ImageView& image, const PreprocessSpec& spec, const ResizePlan& plan,
                 float* chw_out) {
  const AxisTaps& x_taps = plan.x_taps;
  const AxisTaps& y_taps = plan.y_taps;
  const int target_width = plan.target_width, target_height = plan.target_height;
  const int offset_x = plan.offset_x, offset_y = plan.offset_y;
  const auto& source_channel = plan.source_channel;

  // One horizontally resized source row per buffer, stored as three planar runs of
  // target_width floats (output channel order) so the vertical pass reads contiguously.
  std::vector<float> row_buffers[2] = {std::vector<float>(3 * std::size_t(target_width)),
                                       std::vector<float>(3 * std::size_t(target_width))};
  int buffered_row[2] = {-1, -1};

  const auto interpolate_row = [&](int source_row, std::vector<float>& buffer) {
    const std::uint8_t* row = image.data + static_cast<std::size_t>(source_row) * image.stride();
    for (int c = 0; c < 3; ++c) {
      float* out = buffer.data() + static_cast<std::size_t>(c) * target_width;
      const int channel = source_channel[c];
      for (int x = 0; x < target_width; ++x) {
        const float left = row[3 * x_taps.first[x] + channel];
        const float right = row[3 * x_taps.second[x] + channel];
        out[x] = left + (right - left) * x_taps.second_weight[x];
      }
    }
  };
  // Returns the buffer holding `source_row`, filling a slot that is not needed by `keep_row`.
  const auto row_for = [&](int source_row, int keep_row) -> const float* {
    for (int slot = 0; slot < 2; ++slot) {
      if (buffered_row[slot] == source_row) return row_buffers[slot].data();
    }
    const int slot = buffered_row[0] == keep_row ? 1 : 0;
    interpolate_row(source_row, row_buffers[slot]);
    buffered_row[slot] = source_row;
    return row_buffers[slot].data();
  };

  const std::size_t plane_size = static_cast<std::size_t>(spec.width) * spec.height;
  for (int y = 0; y < target_height; ++y) {
    const int top_row = y_taps.first[y];
    const int bottom_row = y_taps.second[y];
    const float* top = row_for(top_row, bottom_row);
    const float* bottom = row_for(bottom_row, top_row);
    const float weight = y_taps.second_weight[y];
    for (int c = 0; c < 3; ++c) {
      const float* top_channel = top + static_cast<std::size_t>(c) * target_width;
      const float* bottom_channel = bottom + static_cast<std::size_t>(c) * target_width;
      float* out =
          chw_out + c * plane_size + static_cast<std::size_t>(offset_y + y) * spec.width + offset_x;
      const float mean = spec.mean[c];
      const float scale = spec.scale;
      for (int x = 0; x < target_width; ++x) {
        const float value = top_channel[x] + (bottom_channel[x] - top_channel[x]) * weight;
        out[x] = (value - mean) * scale;
      }
    }
  }
}

}  // namespace

Box InputTransform::to_image(const Box& network_box) const {
  const auto map_x = [&](float x) {
    return std::clamp((x - offset_x) / scale_x, 0.0f, static_cast<float>(image_width));
  };
  const auto map_y = [&](float y) {
    return std::clamp((y - offset_y) / scale_y, 0.0f, static_cast<float>(image_height));
  };
  return Box{map_x(network_box.x1), map_y(network_box.y1), map_x(network_box.x2),
             map_y(network_box.y2)};
}

ResizePlan plan_resize(const ImageView& image, const PreprocessSpec& spec) {
  validate(image, spec);
  ResizePlan plan;
  InputTransform& transform = plan.transform;
  transform.image_width = image.width;
  transform.image_height = image.height;
  // source_channel[c] = which interleaved source channel feeds output channel c.
  const bool same_order =
      (image.format == PixelFormat::RGB) == (spec.channel_order == ChannelOrder::RGB);
  plan.source_channel = {same_order ? 0 : 2, 1, same_order ? 2 : 0};

  if (spec.resize == ResizeMode::Stretch) {
    plan.target_width = spec.width;
    plan.target_height = spec.height;
    transform.scale_x = static_cast<float>(spec.width) / image.width;
    transform.scale_y = static_cast<float>(spec.height) / image.height;
  } else {
    // Letterbox: keep the aspect ratio, centre the resized image, pad the rest.
    const double scale = std::min(static_cast<double>(spec.width) / image.width,
                                  static_cast<double>(spec.height) / image.height);
    plan.target_width =
        std::clamp(static_cast<int>(std::lround(image.width * scale)), 1, spec.width);
    plan.target_height =
        std::clamp(static_cast<int>(std::lround(image.height * scale)), 1, spec.height);
    plan.offset_x = (spec.width - plan.target_width) / 2;  // non-negative, so this is floor
    plan.offset_y = (spec.height - plan.target_height) / 2;
    for (int c = 0; c < 3; ++c) plan.padding[c] = (spec.letterbox_fill - spec.mean[c]) * spec.scale;
    // The actual per-axis resize ratio (new size / old size), so that mapping back is exact
    // for the pixels that were resized; it differs from `scale` only by the rounding of the
    // resized size.
    transform.scale_x = static_cast<float>(plan.target_width) / image.width;
    transform.scale_y = static_cast<float>(plan.target_height) / image.height;
    transform.offset_x = static_cast<float>(plan.offset_x);
    transform.offset_y = static_cast<float>(plan.offset_y);
  }
  plan.x_taps = compute_axis_taps(image.width, plan.target_width);
  plan.y_taps = compute_axis_taps(image.height, plan.target_height);
  return plan;
}

InputTransform preprocess(const ImageView& image, const PreprocessSpec& spec, float* chw_out) {
  if (chw_out == nullptr) throw Error("preprocess: output tensor pointer is null");
  const ResizePlan plan = plan_resize(image, spec);
  execute_plan(image, spec, plan, chw_out);
  return plan.transform;
}

void execute_plan(const ImageView& image, const PreprocessSpec& spec, const ResizePlan& plan,
                  float* chw_out) {
  if (chw_out == nullptr) throw Error("preprocess: output tensor pointer is null");
  if (spec.resize == ResizeMode::Letterbox) {
    const std::size_t plane_size = static_cast<std::size_t>(spec.width) * spec.height;
    for (int c = 0; c < 3; ++c) std::fill_n(chw_out + c * plane_size, plane_size, plan.padding[c]);
  }
  resize_into(image, spec, plan, chw_out);
}

}  // namespace mpdet::vision
