// mpdet devices: what each backend can run on here — the CPU kernel family the cpu backend
// picks, and every Vulkan device with the index that --device takes.
#include <cstdio>

#include "commands.h"
#include "cpu/conv_kernels.h"
#include "mpdet/error.h"
#ifdef MPDET_HAVE_VULKAN
#include "vulkan/vulkan_device.h"
#endif

namespace mpdet::tools {

Command add_devices_command(CLI::App& app) {
  app.add_subcommand("devices", "List the CPU kernels and Vulkan devices backends can use");
  return []() {
    std::printf("cpu     kernels %s\n", cpu::to_string(cpu::best_isa()));
#ifdef MPDET_HAVE_VULKAN
    try {
      const auto devices = vulkan::Device::list();
      if (devices.empty()) std::printf("vulkan  no device\n");
      for (std::size_t i = 0; i < devices.size(); ++i)
        std::printf("vulkan  --device %zu: %s (%s, Vulkan %u.%u)\n", i, devices[i].name.c_str(),
                    devices[i].type.c_str(), VK_API_VERSION_MAJOR(devices[i].api_version),
                    VK_API_VERSION_MINOR(devices[i].api_version));
    } catch (const Error& e) {
      std::printf("vulkan  unavailable: %s\n", e.what());
    }
#else
    std::printf("vulkan  not built (configure with -DMPDET_VULKAN=ON)\n");
#endif
    return 0;
  };
}

}  // namespace mpdet::tools
