// The one place that maps a backend name to an implementation. It lives in the api module because
// it is the only module that links every backend (runtime cannot depend on cpu or vulkan: they
// depend on runtime).
#pragma once

#include <memory>
#include <string>

#include "runtime/backend.h"

namespace mpdet::api {

// "ref": reference float kernels, or the integer reference for a quantized model.
// "cpu": SIMD kernels for quantized models (throws for a float model).
// "vulkan": compute shaders for quantized models on Vulkan device `device` (-1: the best one).
// "auto": "cpu" for a quantized model, "ref" for a float one.
std::unique_ptr<runtime::Backend> create_backend(const std::string& name, const model::Model& model,
                                                 int threads, int device = -1);

// The names accepted above, for help texts.
const char* backend_names();

}  // namespace mpdet::api
