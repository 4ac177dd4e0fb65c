// Reading a VOCdevkit tree: image-set lists and per-image annotation XMLs.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include <pugixml.hpp>

#include "eval/voc.h"
#include "mpdet/error.h"

namespace mpdet::eval {
namespace {

std::string_view trim(std::string_view text) {
  constexpr std::string_view kWhitespace = " \t\r\n\v\f";
  const auto first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

// Every problem in one annotation file is reported with the file's path in front, so a user
// evaluating thousands of images knows which one to fix.
[[noreturn]] void fail(const std::filesystem::path& xml_path, const std::string& problem) {
  throw Error("VOC annotation '" + xml_path.string() + "': " + problem);
}

// The whole trimmed text must be a number; "48", "48.0" and " 48 " are accepted because
// annotation tools disagree on how they write pixel coordinates.
bool parse_number(std::string_view text, double& value) {
  text = trim(text);
  if (text.empty()) return false;
  if (text.front() == '+') text.remove_prefix(1);  // from_chars rejects a leading '+'
  const char* end = text.data() + text.size();
  const auto [parsed_to, error] = std::from_chars(text.data(), end, value);
  return error == std::errc() && parsed_to == end && std::isfinite(value);
}

// Text of the required child element `name` of `parent`, failing with the element's path
// (e.g. "object 3 <bndbox>/<xmin>") when it is absent.
std::string_view required_text(const std::filesystem::path& xml_path, const pugi::xml_node& parent,
                               const char* name, const std::string& where) {
  const pugi::xml_node child = parent.child(name);
  if (!child) fail(xml_path, "missing " + where + "<" + name + ">");
  return child.text().get();
}

double required_number(const std::filesystem::path& xml_path, const pugi::xml_node& parent,
                       const char* name, const std::string& where) {
  const std::string_view text = required_text(xml_path, parent, name, where);
  double value = 0;
  if (!parse_number(text, value)) {
    fail(xml_path, where + "<" + name + "> is not a number: '" + std::string(text) + "'");
  }
  return value;
}

int required_size(const std::filesystem::path& xml_path, const pugi::xml_node& size,
                  const char* name) {
  const double value = required_number(xml_path, size, name, "<size>/");
  if (value < 0 || value != std::floor(value) || value > 1e9) {
    fail(xml_path,
         std::string("<size>/<") + name + "> is not a pixel count: " + std::to_string(value));
  }
  return static_cast<int>(value);
}

}  // namespace

const std::vector<std::string>& voc_class_names() {
  static const std::vector<std::string> names = {
      "aeroplane", "bicycle",     "bird",  "boat",        "bottle", "bus",      "car",
      "cat",       "chair",       "cow",   "diningtable", "dog",    "horse",    "motorbike",
      "person",    "pottedplant", "sheep", "sofa",        "train",  "tvmonitor"};
  return names;
}

std::vector<std::string> read_image_set(const std::filesystem::path& voc_root,
                                        const std::string& set_name) {
  const std::filesystem::path list_path = voc_root / "ImageSets" / "Main" / (set_name + ".txt");
  std::ifstream file(list_path);
  if (!file) throw Error("VOC image set '" + list_path.string() + "': cannot open file");
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(file, line)) {
    // Trimming also removes the '\r' of lists written on Windows.
    const std::string_view id = trim(line);
    if (!id.empty()) ids.emplace_back(id);
  }
  if (file.bad()) throw Error("VOC image set '" + list_path.string() + "': read error");
  return ids;
}

ImageAnnotation read_annotation(const std::filesystem::path& xml_path,
                                const std::vector<std::string>& class_names) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(xml_path, error)) fail(xml_path, "file not found");

  pugi::xml_document document;
  const pugi::xml_parse_result parsed = document.load_file(xml_path.c_str());
  if (!parsed) {
    fail(xml_path, std::string("malformed XML (") + parsed.description() + " at byte " +
                       std::to_string(parsed.offset) + ")");
  }
  const pugi::xml_node root = document.child("annotation");
  if (!root) fail(xml_path, "missing root element <annotation>");

  ImageAnnotation annotation;
  annotation.image_id = xml_path.stem().string();

  const pugi::xml_node size = root.child("size");
  if (!size) fail(xml_path, "missing <size>");
  annotation.width = required_size(xml_path, size, "width");
  annotation.height = required_size(xml_path, size, "height");

  int object_index = 0;
  for (const pugi::xml_node object : root.children("object")) {
    ++object_index;
    const std::string where = "object " + std::to_string(object_index) + " ";
    const std::string_view name = trim(required_text(xml_path, object, "name", where));
    const auto known = std::find(class_names.begin(), class_names.end(), name);
    if (known == class_names.end()) continue;  // a class the evaluation does not cover

    const pugi::xml_node box = object.child("bndbox");
    if (!box) fail(xml_path, "missing " + where + "<bndbox>");
    const std::string box_where = where + "<bndbox>/";

    GroundTruthObject truth;
    truth.class_id = static_cast<int>(known - class_names.begin());
    truth.x1 = static_cast<float>(required_number(xml_path, box, "xmin", box_where));
    truth.y1 = static_cast<float>(required_number(xml_path, box, "ymin", box_where));
    truth.x2 = static_cast<float>(required_number(xml_path, box, "xmax", box_where));
    truth.y2 = static_cast<float>(required_number(xml_path, box, "ymax", box_where));
    // The devkit treats an absent <difficult> as 0.
    if (object.child("difficult")) {
      truth.difficult = required_number(xml_path, object, "difficult", where) != 0;
    }
    annotation.objects.push_back(truth);
  }
  return annotation;
}

std::vector<ImageAnnotation> read_annotations(const std::filesystem::path& voc_root,
                                              const std::string& set_name,
                                              const std::vector<std::string>& class_names) {
  const std::vector<std::string> ids = read_image_set(voc_root, set_name);
  std::vector<ImageAnnotation> annotations;
  annotations.reserve(ids.size());
  for (const std::string& id : ids) {
    annotations.push_back(read_annotation(voc_root / "Annotations" / (id + ".xml"), class_names));
  }
  return annotations;
}

std::filesystem::path image_path(const std::filesystem::path& voc_root,
                                 const std::string& image_id) {
  return voc_root / "JPEGImages" / (image_id + ".jpg");
}

}  // namespace mpdet::eval
