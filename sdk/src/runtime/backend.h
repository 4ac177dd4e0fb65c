// The interface every backend implements: run one preprocessed input through the network and
// expose the model's outputs (the raw detection heads) until the next run.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/graph.h"

namespace mpdet::runtime {

struct LayerTiming {
  int layer = 0;
  double milliseconds = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // `input` holds the model's input tensor (CHW floats, model.input_shape()).
  virtual void run(std::span<const float> input) = 0;
  // Output i of model.outputs, valid until the next run().
  virtual std::span<const float> output(std::size_t i) const = 0;
  // Per-layer wall time of the last run, when profiling was enabled.
  virtual void set_profiling(bool enabled) = 0;
  virtual const std::vector<LayerTiming>& layer_timings() const = 0;
  // Bytes held for activations.
  virtual std::size_t activation_bytes() const = 0;
};

// Names accepted by create_backend: "ref" (reference float kernels).
std::unique_ptr<Backend> create_backend(const std::string& name, const model::Model& model,
                                        int threads);

}  // namespace mpdet::runtime
