#include "api/backend_registry.h"

#include "cpu/cpu_backend.h"
#include "mpdet/error.h"
#ifdef MPDET_HAVE_VULKAN
#include "vulkan/vulkan_backend.h"
#endif

namespace mpdet::api {

std::unique_ptr<runtime::Backend> create_backend(const std::string& name, const model::Model& model,
                                                 int threads, int device) {
  if (name == "auto")
    return create_backend(model.quantized ? "cpu" : "ref", model, threads, device);
  if (name == "cpu") return cpu::create_cpu_backend(model, threads);
  if (name == "ref") return runtime::create_backend(name, model, threads);
  if (name == "vulkan") {
#ifdef MPDET_HAVE_VULKAN
    vulkan::DeviceOptions options;
    options.device_index = device;
    return vulkan::create_vulkan_backend(model, options);
#else
    throw Error("this build of mpdet has no Vulkan backend (configure with -DMPDET_VULKAN=ON)");
#endif
  }
  throw Error("unknown backend '" + name + "' (available: " + backend_names() + ")");
}

const char* backend_names() {
#ifdef MPDET_HAVE_VULKAN
  return "auto, ref, cpu, vulkan";
#else
  return "auto, ref, cpu";
#endif
}

}  // namespace mpdet::api
