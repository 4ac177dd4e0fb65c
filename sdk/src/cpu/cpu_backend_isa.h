// Internal entry point of the CPU backend with an explicit kernel ISA: tests force each path the
// machine supports (and the scalar fallback) to compare them with the integer reference.
#pragma once

#include <memory>

#include "cpu/conv_kernels.h"
#include "runtime/backend.h"

namespace mpdet::cpu {

// Throws mpdet::Error for a float model or an ISA the running CPU lacks.
std::unique_ptr<runtime::Backend> create_cpu_backend(const model::Model& model, int threads,
                                                     Isa isa);

// The kernel each layer runs (empty for layers without one), for logs and tests.
std::vector<std::string> cpu_backend_kernels(const runtime::Backend& backend);

}  // namespace mpdet::cpu
