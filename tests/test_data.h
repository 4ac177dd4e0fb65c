// Where tests find the shared models and data: $MPDET_DATA_DIR, else the build-time setting.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace mpdet::test {

inline std::filesystem::path data_dir() {
  if (const char* env = std::getenv("MPDET_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return MPDET_TEST_DATA_DIR;
}

inline std::filesystem::path voc_root() {
  return data_dir() / "data" / "VOCdevkit" / "VOC2007";
}

}  // namespace mpdet::test
