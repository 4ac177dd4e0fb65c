#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace mpdet::runtime {

std::size_t MemoryPlan::total_floats() const {
  return std::accumulate(buffer_floats.begin(), buffer_floats.end(), std::size_t{0});
}

MemoryPlan plan_memory(const model::Model& model) {
  const int n = static_cast<int>(model.layers.size());
  std::vector<int> last_use(n, -1);
  for (int i = 0; i < n; ++i)
    for (int in : model.layers[i].inputs) last_use[in] = std::max(last_use[in], i);
  for (int out : model.outputs) last_use[out] = n;  // outputs live past the end

  MemoryPlan plan;
  plan.buffer_of_layer.assign(n, -1);
  std::vector<int> free_buffers;
  for (int i = 0; i < n; ++i) {
    const std::size_t need = model.layers[i].output.elements();
    // Pick the best-fitting free buffer; inputs of this layer are still busy (freed below).
    int chosen = -1;
    for (int b : free_buffers) {
      const bool fits = plan.buffer_floats[b] >= need;
      if (chosen < 0) {
        chosen = b;
        continue;
      }
      const bool chosen_fits = plan.buffer_floats[chosen] >= need;
      if (fits && (!chosen_fits || plan.buffer_floats[b] < plan.buffer_floats[chosen])) chosen = b;
      if (!fits && !chosen_fits && plan.buffer_floats[b] > plan.buffer_floats[chosen]) chosen = b;
    }
    if (chosen >= 0) {
      free_buffers.erase(std::find(free_buffers.begin(), free_buffers.end(), chosen));
      plan.buffer_floats[chosen] = std::max(plan.buffer_floats[chosen], need);
    } else {
      chosen = static_cast<int>(plan.buffer_floats.size());
      plan.buffer_floats.push_back(need);
    }
    plan.buffer_of_layer[i] = chosen;
    // Release the buffers whose last reader is this layer (or that nobody reads).
    for (int j = 0; j <= i; ++j) {
      const bool dies_here = last_use[j] == i || (j == i && last_use[j] < 0);
      if (dies_here) free_buffers.push_back(plan.buffer_of_layer[j]);
    }
  }
  return plan;
}

}  // namespace mpdet::runtime
