// A non-owning view of an 8-bit interleaved image in caller memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mpdet {

enum class PixelFormat { BGR, RGB };

struct ImageView {
  const std::uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  std::size_t row_stride = 0;  // bytes from one row to the next; 0 means tightly packed
  PixelFormat format = PixelFormat::BGR;

  int channels() const { return 3; }
  std::size_t stride() const {
    return row_stride != 0 ? row_stride : static_cast<std::size_t>(width) * channels();
  }
};

}  // namespace mpdet
