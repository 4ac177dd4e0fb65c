#include "mpdet/data_dir.h"

#include <cstdlib>

namespace mpdet {

std::filesystem::path data_dir() {
  if (const char* env = std::getenv("MPDET_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return MPDET_DEFAULT_DATA_DIR;
}

}  // namespace mpdet
