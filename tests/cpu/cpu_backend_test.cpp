// The CPU backend on whole quantized models against runtime::IntegerReferenceBackend: identical
// float outputs (head codes dequantized the same way) for every ISA path and thread count.
#include <gtest/gtest.h>

#include <random>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_backend_isa.h"
#include "import/darknet_importer.h"
#include "mpdet/error.h"
#include "quant/calibration.h"
#include "quant/model_quantizer.h"
#include "runtime/integer_reference_backend.h"
#include "tiny_quantized.h"

namespace {

using namespace mpdet;
using test::quantize_tiny;
using test::tiny_float_model;

void expect_same_outputs(const model::Model& m) {
  runtime::IntegerReferenceBackend reference(m);
  std::vector<std::unique_ptr<runtime::Backend>> backends;
  for (cpu::Isa isa : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512Vnni, cpu::Isa::NeonV8,
                       cpu::Isa::NeonDotprod})
    if (cpu::isa_supported(isa))
      for (int threads : {1, 2}) backends.push_back(cpu::create_cpu_backend(m, threads, isa));
  backends.push_back(cpu::create_cpu_backend(m, 2));
  std::vector<float> input(m.input_shape().elements());
  for (std::size_t image = 0; image < 3; ++image) {
    test::tiny_calibration_input(1000 + image, input);
    reference.run(input);
    for (auto& backend : backends) {
      EXPECT_EQ(backend->name(), "cpu");
      backend->run(input);
      for (std::size_t o = 0; o < m.outputs.size(); ++o) {
        const auto want = reference.output(o), got = backend->output(o);
        ASSERT_EQ(std::vector<float>(got.begin(), got.end()),
                  std::vector<float>(want.begin(), want.end()))
            << "output " << o << " image " << image << " kernels "
            << cpu::cpu_backend_kernels(*backend)[1];
      }
    }
  }
}

TEST(CpuBackend, MatchesIntegerReferenceMultipointW4) {
  expect_same_outputs(quantize_tiny(quant::WeightMethod::Multipoint, 4, 2.0, false));
}

TEST(CpuBackend, MatchesIntegerReferenceW3FirstLast8Bit) {
  expect_same_outputs(quantize_tiny(quant::WeightMethod::Multipoint, 3, 1.5, true));
}

TEST(CpuBackend, MatchesIntegerReferenceNaiveW8AndW2) {
  expect_same_outputs(quantize_tiny(quant::WeightMethod::Naive, 8, 1.0, false));
  expect_same_outputs(quantize_tiny(quant::WeightMethod::Naive, 2, 1.0, false));
}

TEST(CpuBackend, RejectsFloatModelsAndWrongInputs) {
  const model::Model f = tiny_float_model();
  EXPECT_THROW(cpu::create_cpu_backend(f, 1), Error);
  const model::Model q = quantize_tiny(quant::WeightMethod::Naive, 4, 1.0, false);
  auto backend = cpu::create_cpu_backend(q, 1);
  std::vector<float> wrong(3);
  EXPECT_THROW(backend->run(wrong), Error);
  EXPECT_GT(backend->activation_bytes(), 0u);
}

TEST(CpuBackend, ProfilingRecordsEveryLayer) {
  const model::Model q = quantize_tiny(quant::WeightMethod::Naive, 4, 1.0, false);
  auto backend = cpu::create_cpu_backend(q, 2);
  backend->set_profiling(true);
  std::vector<float> input(q.input_shape().elements(), 0.5f);
  backend->run(input);
  EXPECT_EQ(backend->layer_timings().size(), q.layers.size() - 1);
}

}  // namespace
