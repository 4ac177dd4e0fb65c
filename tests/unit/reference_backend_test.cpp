// The executor with buffer reuse against a plain run that keeps every layer's output.
#include <gtest/gtest.h>

#include <random>

#include "import/darknet_importer.h"
#include "mpdet/error.h"
#include "ops/reference_ops.h"
#include "runtime/memory_plan.h"
#include "runtime/reference_backend.h"
#include "tiny_darknet.h"

namespace {

using namespace mpdet;

model::Model tiny_model() {
  return import::import_darknet_from_memory(test::kTinyCfg, test::tiny_weights(), {"cat", "dog"},
                                            "tiny");
}

TEST(MemoryPlan, LiveOutputsNeverShareABuffer) {
  const model::Model m = tiny_model();
  const runtime::MemoryPlan plan = runtime::plan_memory(m);
  const int n = static_cast<int>(m.layers.size());
  std::vector<int> last_use(n, -1);
  for (int i = 0; i < n; ++i)
    for (int in : m.layers[i].inputs) last_use[in] = std::max(last_use[in], i);
  for (int out : m.outputs) last_use[out] = n;
  for (int a = 0; a < n; ++a) {
    EXPECT_GE(plan.buffer_floats[plan.buffer_of_layer[a]], m.layers[a].output.elements());
    for (int b = a + 1; b < n; ++b) {
      // b is written while a is still needed (a is read by b or later) => different buffers.
      if (last_use[a] >= b) {
        EXPECT_NE(plan.buffer_of_layer[a], plan.buffer_of_layer[b]) << a << " vs " << b;
      }
    }
  }
  EXPECT_LT(plan.buffer_floats.size(), m.layers.size()) << "no reuse happened";
}

TEST(ReferenceBackend, MatchesUnplannedExecution) {
  const model::Model m = tiny_model();
  runtime::ReferenceBackend backend(m);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(0, 1);
  std::vector<float> input(m.input_shape().elements());
  for (float& v : input) v = dist(rng);
  backend.run(input);

  // Straightforward execution: one fresh vector per layer.
  std::vector<std::vector<float>> outs(m.layers.size());
  outs[0] = input;
  for (std::size_t i = 1; i < m.layers.size(); ++i) {
    const auto& l = m.layers[i];
    outs[i].resize(l.output.elements());
    const auto& in_shape = m.layers[l.inputs[0]].output;
    switch (l.kind) {
      case model::LayerKind::Conv2d:
        ops::reference::conv2d(
            outs[l.inputs[0]].data(), in_shape, m.tensors[l.weight_tensor].data.data(),
            m.tensors[l.bias_tensor].data.data(), l.conv, l.activation, outs[i].data(), l.output);
        break;
      case model::LayerKind::MaxPool:
        ops::reference::max_pool(outs[l.inputs[0]].data(), in_shape, l.pool, outs[i].data(),
                                 l.output);
        break;
      case model::LayerKind::Upsample:
        ops::reference::upsample_nearest(outs[l.inputs[0]].data(), in_shape, l.upsample_factor,
                                         outs[i].data());
        break;
      case model::LayerKind::Concat:
        outs[i].clear();
        for (int in : l.inputs) outs[i].insert(outs[i].end(), outs[in].begin(), outs[in].end());
        break;
      case model::LayerKind::Add:
        ops::reference::add(outs[l.inputs[0]].data(), outs[l.inputs[1]].data(), outs[i].size(),
                            l.activation, outs[i].data());
        break;
      case model::LayerKind::Input:
        break;
    }
  }
  for (std::size_t o = 0; o < m.outputs.size(); ++o) {
    const auto actual = backend.output(o);
    const auto& expected = outs[m.outputs[o]];
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(actual[i], expected[i]) << "output " << o << " at " << i;
  }
  EXPECT_THROW(backend.run(std::vector<float>(5)), mpdet::Error);
}

}  // namespace
