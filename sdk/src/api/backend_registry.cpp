#include "api/backend_registry.h"

#include "cpu/cpu_backend.h"
#include "mpdet/error.h"

namespace mpdet::api {

std::unique_ptr<runtime::Backend> create_backend(const std::string& name, const model::Model& model,
                                                 int threads) {
  if (name == "auto") return create_backend(model.quantized ? "cpu" : "ref", model, threads);
  if (name == "cpu") return cpu::create_cpu_backend(model, threads);
  if (name == "ref") return runtime::create_backend(name, model, threads);
  throw Error("unknown backend '" + name + "' (available: " + backend_names() + ")");
}

const char* backend_names() {
  return "auto, ref, cpu";
}

}  // namespace mpdet::api
