// Reading annotation XMLs and image-set lists, including every kind of broken input the
// reader must reject with an mpdet::Error that names the file.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "eval/voc.h"
#include "mpdet/error.h"

namespace mpdet::eval {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kClasses = {"cat", "dog"};

// A fresh directory per test, removed afterwards.
class VocFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string test_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ =
        fs::temp_directory_path() / ("mpdet_eval_" + test_name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& contents) {
    const fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  // Expects read_annotation to throw mpdet::Error whose message names the file and contains
  // `problem`.
  void expect_rejected(const std::string& file_name, const std::string& xml,
                       const std::string& problem) {
    const fs::path path = write(file_name, xml);
    try {
      read_annotation(path, kClasses);
      ADD_FAILURE() << file_name << " was accepted";
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(file_name), std::string::npos) << message;
      EXPECT_NE(message.find(problem), std::string::npos) << message;
    }
  }

  fs::path dir_;
};

std::string annotation_xml(const std::string& size, const std::string& objects) {
  return "<annotation><filename>x.jpg</filename>" + size + objects + "</annotation>";
}

const std::string kSize = "<size><width>353</width><height>500</height><depth>3</depth></size>";

std::string object_xml(const std::string& name, const std::string& box,
                       const std::string& extra = "") {
  return "<object>" + name + extra + box + "</object>";
}

const std::string kCatName = "<name>cat</name>";
const std::string kBox =
    "<bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox>";

TEST_F(VocFilesTest, ReadsSizeObjectsAndDifficultFlag) {
  const fs::path path =
      write("000001.xml",
            annotation_xml(kSize, object_xml(kCatName, kBox, "<difficult>0</difficult>") +
                                      object_xml("<name>dog</name>",
                                                 "<bndbox><xmin>8</xmin><ymin>12</ymin>"
                                                 "<xmax>352</xmax><ymax>498</ymax></bndbox>",
                                                 "<difficult>1</difficult>")));
  const ImageAnnotation annotation = read_annotation(path, kClasses);
  EXPECT_EQ(annotation.image_id, "000001");
  EXPECT_EQ(annotation.width, 353);
  EXPECT_EQ(annotation.height, 500);
  ASSERT_EQ(annotation.objects.size(), 2u);
  const GroundTruthObject& cat = annotation.objects[0];
  EXPECT_EQ(cat.class_id, 0);
  EXPECT_FLOAT_EQ(cat.x1, 48);
  EXPECT_FLOAT_EQ(cat.y1, 240);
  EXPECT_FLOAT_EQ(cat.x2, 195);
  EXPECT_FLOAT_EQ(cat.y2, 371);
  EXPECT_FALSE(cat.difficult);
  const GroundTruthObject& dog = annotation.objects[1];
  EXPECT_EQ(dog.class_id, 1);
  EXPECT_FLOAT_EQ(dog.x1, 8);
  EXPECT_FLOAT_EQ(dog.y2, 498);
  EXPECT_TRUE(dog.difficult);
}

TEST_F(VocFilesTest, AcceptsFloatCoordinatesWhitespaceAndMissingDifficult) {
  const fs::path path =
      write("floats.xml",
            annotation_xml(kSize, object_xml("<name> cat\n</name>",
                                             "<bndbox><xmin>48.0</xmin><ymin> 240.5 </ymin>"
                                             "<xmax>\n195</xmax><ymax>371.25</ymax></bndbox>")));
  const ImageAnnotation annotation = read_annotation(path, kClasses);
  ASSERT_EQ(annotation.objects.size(), 1u);
  EXPECT_FLOAT_EQ(annotation.objects[0].x1, 48.0f);
  EXPECT_FLOAT_EQ(annotation.objects[0].y1, 240.5f);
  EXPECT_FLOAT_EQ(annotation.objects[0].x2, 195.0f);
  EXPECT_FLOAT_EQ(annotation.objects[0].y2, 371.25f);
  EXPECT_FALSE(annotation.objects[0].difficult);
}

TEST_F(VocFilesTest, SkipsObjectsOfUnknownClasses) {
  const fs::path path = write(
      "unknown.xml",
      annotation_xml(kSize, object_xml("<name>unicorn</name>", kBox) + object_xml(kCatName, kBox)));
  const ImageAnnotation annotation = read_annotation(path, kClasses);
  ASSERT_EQ(annotation.objects.size(), 1u);
  EXPECT_EQ(annotation.objects[0].class_id, 0);
}

TEST_F(VocFilesTest, ImageWithoutObjectsIsValid) {
  const ImageAnnotation annotation =
      read_annotation(write("empty.xml", annotation_xml(kSize, "")), kClasses);
  EXPECT_TRUE(annotation.objects.empty());
}

TEST_F(VocFilesTest, MissingFileIsAnError) {
  try {
    read_annotation(dir_ / "does_not_exist.xml", kClasses);
    ADD_FAILURE() << "missing file was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("does_not_exist.xml"), std::string::npos);
  }
}

TEST_F(VocFilesTest, MalformedXmlIsAnError) {
  expect_rejected("truncated.xml", "<annotation><size><width>353</width>", "malformed XML");
  expect_rejected("garbage.xml", "this is not xml <<<", "malformed XML");
  expect_rejected("wrong_root.xml", "<other/>", "<annotation>");
}

TEST_F(VocFilesTest, MissingSizeFieldsAreErrors) {
  expect_rejected("no_size.xml", annotation_xml("", object_xml(kCatName, kBox)), "<size>");
  expect_rejected("no_width.xml", annotation_xml("<size><height>500</height></size>", ""),
                  "<width>");
  expect_rejected("no_height.xml", annotation_xml("<size><width>353</width></size>", ""),
                  "<height>");
  expect_rejected("bad_width.xml",
                  annotation_xml("<size><width>wide</width><height>500</height></size>", ""),
                  "<width>");
}

TEST_F(VocFilesTest, MissingObjectFieldsAreErrors) {
  expect_rejected("no_name.xml", annotation_xml(kSize, object_xml("", kBox)), "<name>");
  expect_rejected("no_bndbox.xml", annotation_xml(kSize, object_xml(kCatName, "")), "<bndbox>");
  expect_rejected(
      "no_xmax.xml",
      annotation_xml(kSize, object_xml(kCatName,
                                       "<bndbox><xmin>1</xmin><ymin>2</ymin><ymax>4</ymax>"
                                       "</bndbox>")),
      "<xmax>");
}

TEST_F(VocFilesTest, NonNumericCoordinatesAreErrors) {
  expect_rejected(
      "letters.xml",
      annotation_xml(kSize, object_xml(kCatName,
                                       "<bndbox><xmin>abc</xmin><ymin>2</ymin><xmax>3</xmax>"
                                       "<ymax>4</ymax></bndbox>")),
      "abc");
  expect_rejected(
      "trailing.xml",
      annotation_xml(kSize, object_xml(kCatName,
                                       "<bndbox><xmin>1</xmin><ymin>2px</ymin><xmax>3</xmax>"
                                       "<ymax>4</ymax></bndbox>")),
      "<ymin>");
  expect_rejected(
      "empty_coordinate.xml",
      annotation_xml(kSize, object_xml(kCatName,
                                       "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax></xmax>"
                                       "<ymax>4</ymax></bndbox>")),
      "<xmax>");
}

TEST_F(VocFilesTest, ImageSetTrimsAndSkipsBlankLines) {
  write("ImageSets/Main/mini.txt", "000001\r\n  000002  \n\n\r\n\t000003\n000004");
  EXPECT_EQ(read_image_set(dir_, "mini"),
            (std::vector<std::string>{"000001", "000002", "000003", "000004"}));
}

TEST_F(VocFilesTest, MissingImageSetNamesThePath) {
  try {
    read_image_set(dir_, "nope");
    ADD_FAILURE() << "missing image set was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("ImageSets/Main/nope.txt"), std::string::npos)
        << error.what();
  }
}

TEST_F(VocFilesTest, ReadAnnotationsFollowsTheImageSet) {
  write("ImageSets/Main/mini.txt", "b\na\n");
  write("Annotations/a.xml", annotation_xml(kSize, object_xml(kCatName, kBox)));
  write("Annotations/b.xml", annotation_xml(kSize, ""));
  const std::vector<ImageAnnotation> annotations = read_annotations(dir_, "mini", kClasses);
  ASSERT_EQ(annotations.size(), 2u);
  EXPECT_EQ(annotations[0].image_id, "b");
  EXPECT_TRUE(annotations[0].objects.empty());
  EXPECT_EQ(annotations[1].image_id, "a");
  EXPECT_EQ(annotations[1].objects.size(), 1u);

  // A listed image without its XML is an error naming that XML.
  write("ImageSets/Main/broken.txt", "a\nc\n");
  try {
    read_annotations(dir_, "broken", kClasses);
    ADD_FAILURE() << "missing annotation was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("c.xml"), std::string::npos) << error.what();
  }
}

TEST(VocPaths, ImagePathIsInJpegImages) {
  EXPECT_EQ(image_path("/voc/VOC2007", "000001"), fs::path("/voc/VOC2007/JPEGImages/000001.jpg"));
}

}  // namespace
}  // namespace mpdet::eval
