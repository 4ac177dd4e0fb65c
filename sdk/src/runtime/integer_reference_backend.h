// The integer reference backend: runs a quantized model with the scalar integer kernels of
// ops/integer_reference_ops.h over planned uint8 activation buffers. It defines what every fast
// backend must reproduce bit for bit.
#pragma once

#include <functional>

#include "ops/integer_arithmetic.h"
#include "runtime/backend.h"
#include "runtime/memory_plan.h"

namespace mpdet::runtime {

class IntegerReferenceBackend final : public Backend {
 public:
  explicit IntegerReferenceBackend(const model::Model& model);

  std::string name() const override { return "ref"; }
  void run(std::span<const float> input) override;
  std::span<const float> output(std::size_t i) const override { return outputs_.at(i); }
  void set_profiling(bool enabled) override { profiling_ = enabled; }
  const std::vector<LayerTiming>& layer_timings() const override { return timings_; }
  std::size_t activation_bytes() const override { return plan_.total_floats(); }

  // Codes of any layer after run() while its buffer is live; the observer sees every layer.
  std::span<const std::uint8_t> layer_codes(int layer) const;
  void set_layer_observer(std::function<void(int, std::span<const std::uint8_t>)> observer) {
    observer_ = std::move(observer);
  }

 private:
  void run_layer(int index);

  const model::Model& model_;
  MemoryPlan plan_;
  std::vector<std::vector<std::uint8_t>> buffers_;
  std::vector<ops::Requantization> requant_;  // per layer (conv, add, concat)
  std::vector<std::vector<float>> outputs_;
  std::vector<std::vector<std::int32_t>>
      head_codes_;  // per layer; non-empty for output convolutions
  bool profiling_ = false;
  std::vector<LayerTiming> timings_;
  std::function<void(int, std::span<const std::uint8_t>)> observer_;
};

}  // namespace mpdet::runtime
