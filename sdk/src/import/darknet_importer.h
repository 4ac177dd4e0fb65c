// Darknet (.cfg + .weights) -> mpdet float model.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "model/graph.h"

namespace mpdet::import {

struct DarknetFiles {
  std::filesystem::path cfg;
  std::filesystem::path weights;
  std::filesystem::path names;  // optional class list, one per line; empty = look beside the cfg
};

// Builds the float model. Batch normalisation is folded into the convolutions; [dropout] is
// dropped (a no-op at inference); each [yolo] section becomes a detection head on the layer it
// reads. Unknown sections, unsupported values of keys that change inference semantics, and
// weights files that are truncated or longer than the cfg needs are errors (mpdet::Error).
model::Model import_darknet(const DarknetFiles& files);

// The same from in-memory text and bytes (used by tests and fuzzing).
model::Model import_darknet_from_memory(const std::string& cfg_text,
                                        const std::vector<std::uint8_t>& weights,
                                        const std::vector<std::string>& class_names,
                                        const std::string& name);

}  // namespace mpdet::import
