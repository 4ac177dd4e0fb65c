// The smallest camera-app integration of mpdet: frames from OpenCV's VideoCapture (a file or a
// camera index) go to mpdet::Detector through an ImageView that points into the frame — no copy —
// and each frame's detections are printed. Only the public headers (include/mpdet) are used.
//
//   sample_video_detect MODEL.mpdet VIDEO|CAMERA_INDEX [MAX_FRAMES]
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <opencv2/videoio.hpp>
#include <string>

#include "mpdet/detector.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.mpdet VIDEO|CAMERA_INDEX [MAX_FRAMES]\n", argv[0]);
    return 2;
  }
  const std::string source = argv[2];
  const long max_frames = argc > 3 ? std::strtol(argv[3], nullptr, 10) : -1;
  try {
    mpdet::Detector detector(argv[1]);
    cv::VideoCapture capture;
    const bool is_camera =
        !source.empty() && source.find_first_not_of("0123456789") == std::string::npos;
    if (is_camera) {
      capture.open(std::stoi(source));
    } else {
      capture.open(source);
    }
    if (!capture.isOpened()) {
      std::fprintf(stderr, "error: cannot open video source '%s'\n", source.c_str());
      return 1;
    }
    cv::Mat frame;
    long index = 0;
    while ((max_frames < 0 || index < max_frames) && capture.read(frame)) {
      if (frame.type() != CV_8UC3) {
        std::fprintf(stderr, "error: frame %ld is not 8-bit BGR\n", index);
        return 1;
      }
      const mpdet::ImageView view{frame.data, frame.cols, frame.rows, frame.step[0],
                                  mpdet::PixelFormat::BGR};
      const mpdet::Detections detections = detector.detect(view);
      std::printf("frame %ld: %zu objects, network %.1f ms\n", index, detections.size(),
                  detector.last_times().network_ms);
      for (const auto& d : detections)
        std::printf("  %-12s %.2f  [%.0f %.0f %.0f %.0f]\n",
                    detector.class_names().at(d.class_id).c_str(), d.score, d.box.x1, d.box.y1,
                    d.box.x2, d.box.y2);
      ++index;
    }
    if (index == 0) {
      std::fprintf(stderr, "error: no frame could be read from '%s'\n", source.c_str());
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
