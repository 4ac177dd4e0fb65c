// The fast CPU backend for quantized models: SIMD kernels (x86 AVX2 / AVX-512 VNNI today; NEON
// next) selected at run time from CPU features, weights pre-packed once at load, work split over
// threads. Bit-exact with the integer reference backend (ops/integer_arithmetic.h).
#pragma once

#include <memory>

#include "runtime/backend.h"

namespace mpdet::cpu {

// Throws mpdet::Error for a float model (the CPU backend runs quantized models only).
std::unique_ptr<runtime::Backend> create_cpu_backend(const model::Model& model, int threads);

}  // namespace mpdet::cpu
