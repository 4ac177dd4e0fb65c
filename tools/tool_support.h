// Small pieces shared by the mpdet subcommands: timing statistics, a terminal progress line,
// atomic text output, and image/box helpers over OpenCV.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "mpdet/detection.h"
#include "mpdet/image.h"

namespace mpdet::tools {

struct Stats {
  double median = 0, min = 0, max = 0;
};
Stats summarize(std::vector<double> samples);

// Prints "\r<label> done/total, rate/s, ETA" to stderr at most a few times a second, only when
// stderr is a terminal; finish() ends the line.
class Progress {
 public:
  Progress(std::string label, std::size_t total);
  void update(std::size_t done);
  void finish();

 private:
  std::string label_;
  std::size_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
};

// Writes text to a temporary file beside `path` and renames it into place.
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

inline ImageView view_of(const cv::Mat& bgr) {
  return {bgr.data, bgr.cols, bgr.rows, bgr.step[0], PixelFormat::BGR};
}

nlohmann::json detection_json(const Detection& d, const std::vector<std::string>& class_names);

// Draws boxes with class names and scores.
void draw_detections(cv::Mat& bgr, const Detections& detections,
                     const std::vector<std::string>& class_names);

}  // namespace mpdet::tools
