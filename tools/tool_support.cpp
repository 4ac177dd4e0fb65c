#include "tool_support.h"

#include <unistd.h>

#include <opencv2/imgproc.hpp>

#include "model/model_file.h"

namespace mpdet::tools {

Stats summarize(std::vector<double> samples) {
  if (samples.empty()) return {};
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  const double median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  return {median, samples.front(), samples.back()};
}

Progress::Progress(std::string label, std::size_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::update(std::size_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? done / seconds : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  std::fprintf(stderr, "\r%s %zu/%zu  %.1f/s  ETA %dm%02ds   ", label_.c_str(), done, total_, rate,
               static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
  std::fflush(stderr);
}

void Progress::finish() {
  if (enabled_) std::fprintf(stderr, "\n");
}

void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  model::write_file_atomically(
      path, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

nlohmann::json detection_json(const Detection& d, const std::vector<std::string>& class_names) {
  return {
      {"class", d.class_id},
      {"name", d.class_id < static_cast<int>(class_names.size()) ? class_names[d.class_id] : ""},
      {"score", d.score},
      {"bbox", {d.box.x1, d.box.y1, d.box.x2, d.box.y2}}};
}

void draw_detections(cv::Mat& bgr, const Detections& detections,
                     const std::vector<std::string>& class_names) {
  for (const Detection& d : detections) {
    // A stable colour per class, spread over the hue circle.
    cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar((d.class_id * 37) % 180, 200, 255)), rgb;
    cv::cvtColor(hsv, rgb, cv::COLOR_HSV2BGR);
    const cv::Vec3b c = rgb.at<cv::Vec3b>(0, 0);
    const cv::Scalar colour(c[0], c[1], c[2]);
    const cv::Point p1(cvRound(d.box.x1), cvRound(d.box.y1)),
        p2(cvRound(d.box.x2), cvRound(d.box.y2));
    cv::rectangle(bgr, p1, p2, colour, 2);
    char label[96];
    const std::string name =
        d.class_id < static_cast<int>(class_names.size()) ? class_names[d.class_id] : "?";
    std::snprintf(label, sizeof label, "%s %.2f", name.c_str(), d.score);
    int baseline = 0;
    const cv::Size size = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, 0.45, 1, &baseline);
    const cv::Point text_origin(p1.x, std::max(p1.y, size.height + 4));
    cv::rectangle(bgr, text_origin - cv::Point(0, size.height + 4),
                  text_origin + cv::Point(size.width + 2, 0), colour, cv::FILLED);
    cv::putText(bgr, label, text_origin - cv::Point(-1, 3), cv::FONT_HERSHEY_SIMPLEX, 0.45,
                {0, 0, 0}, 1, cv::LINE_AA);
  }
}

}  // namespace mpdet::tools
