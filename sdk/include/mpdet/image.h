// A non-owning view of a camera or decoded image in caller memory, plus how the frame is shown.
//
// The buffer is described as stored (width x height, formats below, any row stride). `rotation`
// and `mirror` say how the app displays it; detections come back in pixels of that *displayed*
// frame, so an app draws them without further transforms. `roi`, also in displayed-frame
// pixels, restricts detection to a region; boxes are still in whole-frame coordinates.
//
// Formats (8 bits per sample):
//   BGR, RGB, BGRA, RGBA, GRAY: interleaved, `data` points at the first pixel of the first row.
//   NV21, NV12: YUV 4:2:0 semi-planar. Y plane at `data`; one interleaved chroma plane of
//     ceil(height/2) rows of ceil(width/2) pairs, V then U (NV21, Android's camera default) or
//     U then V (NV12). When `u_data`/`v_data` are null the chroma plane follows the Y plane
//     directly (at data + row_stride * height) with the Y plane's row stride.
//   I420: YUV 4:2:0 planar (Y, U, V). With null `u_data`/`v_data` the U and V planes follow the
//     Y plane contiguously, each with row stride ceil(width/2). Android's YUV_420_888 maps here
//     with its own plane pointers and strides: set u_data, v_data, chroma_row_stride and
//     chroma_pixel_stride (1 for planar, 2 when the planes interleave).
//   YUV is BT.601 "video range" (Y 16..235), as Android cameras and OpenCV's cvtColor use it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace mpdet {

enum class PixelFormat { BGR, RGB, BGRA, RGBA, GRAY, NV21, NV12, I420 };

// Clockwise rotation that turns the stored buffer into the displayed frame (Android's
// sensor orientation / iOS's image orientation).
enum class Rotation { Deg0 = 0, Deg90 = 90, Deg180 = 180, Deg270 = 270 };

struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
};

struct ImageView {
  const std::uint8_t* data = nullptr;  // interleaved pixels, or the Y plane
  int width = 0;                       // of the stored buffer, in pixels
  int height = 0;
  std::size_t row_stride = 0;  // bytes between rows of `data`; 0 means tightly packed
  PixelFormat format = PixelFormat::BGR;

  // Chroma planes of NV21, NV12 and I420 (see above); null: contiguous after the Y plane.
  const std::uint8_t* u_data = nullptr;
  const std::uint8_t* v_data = nullptr;
  std::size_t chroma_row_stride = 0;    // 0: the default of the format
  std::size_t chroma_pixel_stride = 0;  // 0: the default of the format (NV: 2, I420: 1)

  Rotation rotation = Rotation::Deg0;
  bool mirror = false;      // flip the displayed frame left-right (front cameras), after rotation
  std::optional<Rect> roi;  // displayed-frame pixels; must lie inside the displayed frame

  // Bytes per pixel of `data` (the Y plane for YUV formats).
  int bytes_per_pixel() const {
    switch (format) {
      case PixelFormat::BGRA:
      case PixelFormat::RGBA:
        return 4;
      case PixelFormat::BGR:
      case PixelFormat::RGB:
        return 3;
      default:
        return 1;
    }
  }
  bool is_yuv() const {
    return format == PixelFormat::NV21 || format == PixelFormat::NV12 ||
           format == PixelFormat::I420;
  }
  std::size_t stride() const {
    return row_stride != 0 ? row_stride : static_cast<std::size_t>(width) * bytes_per_pixel();
  }
  bool rotated_quarter() const {
    return rotation == Rotation::Deg90 || rotation == Rotation::Deg270;
  }
  int display_width() const { return rotated_quarter() ? height : width; }
  int display_height() const { return rotated_quarter() ? width : height; }
};

}  // namespace mpdet
