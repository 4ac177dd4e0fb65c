// Writing detections in the devkit's per-class result file format, so that results can be
// scored by the official devkit as well.
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "eval/voc.h"
#include "mpdet/error.h"

namespace mpdet::eval {
namespace {

std::string format_line(const ImageDetection& detection) {
  const Box& box = detection.detection.box;
  // The devkit reads 1-based coordinates; detections are 0-based, hence + 1.
  char numbers[160];
  std::snprintf(numbers, sizeof(numbers), " %.6f %.1f %.1f %.1f %.1f\n",
                double{detection.detection.score}, double{box.x1} + 1, double{box.y1} + 1,
                double{box.x2} + 1, double{box.y2} + 1);
  return detection.image_id + numbers;
}

// Writes to a temporary name and renames it into place, so a reader (or a crash midway) never
// sees a half-written result file.
void write_atomically(const std::filesystem::path& path, const std::string& contents) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    if (!file) throw Error("VOC result file '" + temporary.string() + "': cannot open for writing");
    file << contents;
    file.flush();
    if (!file) {
      file.close();
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw Error("VOC result file '" + temporary.string() + "': write failed");
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error("VOC result file '" + path.string() + "': cannot rename into place (" +
                error.message() + ")");
  }
}

}  // namespace

void write_voc_result_files(const std::filesystem::path& dir, const std::string& set_name,
                            const std::vector<std::string>& class_names,
                            const std::vector<ImageDetection>& detections) {
  const int class_count = static_cast<int>(class_names.size());
  // Contents are built completely before anything is written, so invalid input leaves the
  // directory untouched.
  std::vector<std::string> contents(class_names.size());
  for (const ImageDetection& detection : detections) {
    const int class_id = detection.detection.class_id;
    if (class_id < 0 || class_id >= class_count) {
      throw Error("VOC result files: detection in image '" + detection.image_id + "' has class " +
                  std::to_string(class_id) + ", but only " + std::to_string(class_count) +
                  " classes are known");
    }
    contents[static_cast<std::size_t>(class_id)] += format_line(detection);
  }

  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    throw Error("VOC result directory '" + dir.string() + "': cannot create (" + error.message() +
                ")");
  }
  // Every class gets a file, empty or not: the devkit opens one file per class.
  for (std::size_t i = 0; i < class_names.size(); ++i) {
    write_atomically(dir / ("comp4_det_" + set_name + "_" + class_names[i] + ".txt"), contents[i]);
  }
}

}  // namespace mpdet::eval
