// The reference backend: runs the float graph with the reference kernels (sdk/src/ops) over a
// planned set of activation buffers. Single-threaded by design: it is the oracle.
#pragma once

#include <functional>

#include "runtime/backend.h"
#include "runtime/memory_plan.h"

namespace mpdet::runtime {

class ReferenceBackend final : public Backend {
 public:
  explicit ReferenceBackend(const model::Model& model);

  std::string name() const override { return "ref"; }
  void run(std::span<const float> input) override;
  std::span<const float> output(std::size_t i) const override;
  void set_profiling(bool enabled) override { profiling_ = enabled; }
  const std::vector<LayerTiming>& layer_timings() const override { return timings_; }
  std::size_t activation_bytes() const override { return plan_.total_floats() * sizeof(float); }

  // Output of any layer after run() while its buffer is live (tests compare intermediate results);
  // the observer sees every layer's output as it is produced (calibration collects statistics).
  std::span<const float> layer_output(int layer) const;
  void set_layer_observer(std::function<void(int, std::span<const float>)> observer) {
    observer_ = std::move(observer);
  }

 private:
  void run_layer(int index);

  const model::Model& model_;
  MemoryPlan plan_;
  std::vector<std::vector<float>> buffers_;
  bool profiling_ = false;
  std::vector<LayerTiming> timings_;
  std::function<void(int, std::span<const float>)> observer_;
};

}  // namespace mpdet::runtime
