// The devkit's comp4 result files: names, line format, 1-based coordinates, atomic writes.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "eval/voc.h"
#include "mpdet/error.h"

namespace mpdet::eval {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

ImageDetection detection(const std::string& id, int class_id, float score, Box box) {
  ImageDetection result;
  result.image_id = id;
  result.detection.class_id = class_id;
  result.detection.score = score;
  result.detection.box = box;
  return result;
}

class VocResultFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("mpdet_eval_results_" + std::to_string(::getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(VocResultFilesTest, WritesOneFilePerClassWithOneBasedBoxes) {
  const fs::path dir = root_ / "nested" / "results";  // does not exist yet
  const std::vector<std::string> classes = {"cat", "dog", "bird"};
  write_voc_result_files(dir, "test", classes,
                         {detection("000001", 1, 0.875f, Box{47, 239, 194, 370}),
                          detection("000002", 0, 0.5f, Box{0.25f, 1.5f, 10, 20.75f}),
                          detection("000001", 1, 0.125f, Box{0, 0, 1, 1})});
  EXPECT_EQ(read_file(dir / "comp4_det_test_cat.txt"),
            "000002 0.500000 1.2 2.5 11.0 21.8\n");  // %.1f rounds half to even on 1.25
  EXPECT_EQ(read_file(dir / "comp4_det_test_dog.txt"),
            "000001 0.875000 48.0 240.0 195.0 371.0\n"
            "000001 0.125000 1.0 1.0 2.0 2.0\n");
  // Classes without detections still get an (empty) file, as the devkit opens every class.
  ASSERT_TRUE(fs::exists(dir / "comp4_det_test_bird.txt"));
  EXPECT_EQ(fs::file_size(dir / "comp4_det_test_bird.txt"), 0u);
  // Nothing but the three result files is left behind (no temporaries).
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 3);
}

TEST_F(VocResultFilesTest, OverwritesPreviousResults) {
  const std::vector<std::string> classes = {"cat"};
  write_voc_result_files(root_, "val", classes, {detection("a", 0, 0.9f, Box{0, 0, 9, 9})});
  write_voc_result_files(root_, "val", classes, {detection("b", 0, 0.1f, Box{1, 1, 2, 2})});
  EXPECT_EQ(read_file(root_ / "comp4_det_val_cat.txt"), "b 0.100000 2.0 2.0 3.0 3.0\n");
}

TEST_F(VocResultFilesTest, RejectsUnknownClassWithoutWriting) {
  EXPECT_THROW(
      write_voc_result_files(root_, "test", {"cat"}, {detection("a", 1, 0.9f, Box{0, 0, 9, 9})}),
      Error);
  EXPECT_FALSE(fs::exists(root_ / "comp4_det_test_cat.txt"));
}

}  // namespace
}  // namespace mpdet::eval
