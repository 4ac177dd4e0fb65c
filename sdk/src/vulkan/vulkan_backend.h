// The Vulkan backend for quantized models: every layer is a compute dispatch of a shader from
// shaders/ (SPIR-V embedded at build time), recorded once into a command buffer that each frame
// replays; the float input crosses to the device once and only the detection heads come back.
// Bit-exact with the integer reference backend (ops/integer_arithmetic.h).
#pragma once

#include <memory>

#include "runtime/backend.h"
#include "vulkan/vulkan_device.h"

namespace mpdet::vulkan {

// Throws mpdet::Error for a float model, when no usable Vulkan device exists, or when a
// pipeline cannot be built. MPDET_VULKAN_VALIDATION=1 in the environment turns on the
// Khronos validation layer (messages go to stderr and are counted).
std::unique_ptr<runtime::Backend> create_vulkan_backend(const model::Model& model,
                                                        const DeviceOptions& options = {});

// Validation messages counted by a backend made above (0 without validation), for tests.
int vulkan_validation_messages(const runtime::Backend& backend);

}  // namespace mpdet::vulkan
