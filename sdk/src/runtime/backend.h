// The interface every backend implements: run one preprocessed input through the network and
// expose the model's outputs (the raw detection heads) until the next run.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/graph.h"
#include "mpdet/image.h"
#include "vision/preprocess.h"

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
  // Preprocessing on the backend's device: backends that can resize and normalise there take
  // the frame itself (it crosses to the device once) and run the network as run() would on
  // vision::preprocess's output. Returns false when this backend cannot; the caller then
  // preprocesses on the CPU and calls run().
  virtual bool run_image(const ImageView& /*image*/, const vision::PreprocessSpec& /*spec*/,
                         const vision::ResizePlan& /*plan*/) {
    return false;
  }
};

// Runs layers 1..n-1 through `run_layer`, recording each one's wall time when `profiling`, and
// calling `after_layer(i)` after each (observers).
template <typename RunLayer, typename AfterLayer>
void run_layers(int layer_count, bool profiling, std::vector<LayerTiming>& timings,
                RunLayer run_layer, AfterLayer after_layer) {
  timings.clear();
  for (int i = 1; i < layer_count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run_layer(i);
    if (profiling)
      timings.push_back(
          {i, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count()});
    after_layer(i);
  }
}

// Names accepted by create_backend: "ref" (reference float kernels).
std::unique_ptr<Backend> create_backend(const std::string& name, const model::Model& model,
                                        int threads);

}  // namespace mpdet::runtime
