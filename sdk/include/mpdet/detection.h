// A detection as every part of mpdet hands it out: class index into the model's class list,
// score in [0, 1], and a box in 0-based continuous pixel coordinates of the input image
// (x1, y1 is the top-left corner, x2, y2 the bottom-right; a box covering pixel columns 0..9
// entirely has x1 = 0, x2 = 10).
#pragma once

#include <vector>

namespace mpdet {

struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float width() const { return x2 - x1; }
  float height() const { return y2 - y1; }
  float area() const { return width() > 0 && height() > 0 ? width() * height() : 0.0f; }
};

struct Detection {
  int class_id = 0;
  float score = 0;
  Box box;
};

using Detections = std::vector<Detection>;

}  // namespace mpdet
