// Where mpdet's tools and samples find the shared models and datasets when no path is given:
// the environment variable MPDET_DATA_DIR, else the directory configured at build time
// (CMake cache variable MPDET_DATA_DIR, default ../shared beside the source tree).
#pragma once

#include <filesystem>

namespace mpdet {

std::filesystem::path data_dir();

}  // namespace mpdet
