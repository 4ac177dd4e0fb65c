// Activation memory planning: layers whose outputs are no longer needed hand their buffers to
// later layers, so a network needs a few buffers instead of one per layer.
#pragma once

#include <cstddef>
#include <vector>

#include "model/graph.h"

namespace mpdet::runtime {

struct MemoryPlan {
  std::vector<int> buffer_of_layer;        // layer index -> buffer index
  std::vector<std::size_t> buffer_floats;  // buffer index -> capacity in floats
  std::size_t total_floats() const;
};

// Greedy plan over the topological order: a layer's output takes the smallest free buffer that
// is large enough (else the largest free one, grown; else a new one). A buffer becomes free after
// the last layer reading it has run; model outputs are never freed. A layer never writes into a
// buffer one of its own inputs is using.
MemoryPlan plan_memory(const model::Model& model);

}  // namespace mpdet::runtime
