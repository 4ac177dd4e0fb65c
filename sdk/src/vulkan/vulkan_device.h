// The Vulkan objects every GPU backend needs, owned in one place: instance (with the validation
// layer when asked), the chosen physical device and its compute queue, a command pool, a pipeline
// cache, and buffers with their memory. Everything throws mpdet::Error with the failing call named.
#pragma once

#include <vulkan/vulkan.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mpdet::vulkan {

// Throws mpdet::Error("<what> failed: <VkResult name>") unless result is VK_SUCCESS.
void check(VkResult result, const char* what);

struct DeviceOptions {
  int device_index = -1;    // -1: the best device (discrete > integrated > virtual > CPU)
  bool validation = false;  // enable VK_LAYER_KHRONOS_validation; messages are counted
};

struct DeviceInfo {
  std::string name;
  std::string type;  // "discrete", "integrated", "virtual", "cpu", "other"
  std::uint32_t api_version = 0;
};

class Device;

// A buffer with its own memory. Device-local buffers hold tensors; host-visible ones stage
// uploads and downloads and stay mapped.
class Buffer {
 public:
  Buffer(const Device& device, std::size_t bytes, VkBufferUsageFlags usage, bool host_visible);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  VkBuffer handle() const { return buffer_; }
  std::size_t size() const { return bytes_; }
  void* mapped() const { return mapped_; }  // host-visible buffers only

 private:
  VkDevice device_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  std::size_t bytes_;
  void* mapped_ = nullptr;
};

class Device {
 public:
  explicit Device(const DeviceOptions& options = {});
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Every compute-capable device the loader reports, in its order (the --device index).
  static std::vector<DeviceInfo> list();

  VkDevice handle() const { return device_; }
  VkPhysicalDevice physical() const { return physical_; }
  VkQueue queue() const { return queue_; }
  VkCommandPool command_pool() const { return pool_; }
  VkPipelineCache pipeline_cache() const { return cache_; }
  const DeviceInfo& info() const { return info_; }
  float timestamp_period_ns() const { return timestamp_period_; }
  bool timestamps_supported() const { return timestamps_; }
  // Validation-layer errors and warnings seen so far (0 when validation is off).
  int validation_messages() const;

  // A memory type allowed by `type_bits` with all `required` properties (preferring `preferred`).
  std::uint32_t memory_type(std::uint32_t type_bits, VkMemoryPropertyFlags required,
                            VkMemoryPropertyFlags preferred) const;

  // Records commands with `record` into a one-time command buffer, submits it and waits.
  template <typename Record>
  void run_once(Record record) const {
    VkCommandBuffer cmd = begin_one_time();
    record(cmd);
    submit_and_wait(cmd);
  }
  void submit_and_wait(VkCommandBuffer cmd, bool free_after = true) const;

 private:
  VkCommandBuffer begin_one_time() const;
  void release();  // destroys whatever was created (constructor failures too)

  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  std::uint32_t queue_family_ = 0;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  DeviceInfo info_;
  float timestamp_period_ = 1;
  bool timestamps_ = false;
  std::unique_ptr<int> validation_count_ = std::make_unique<int>(0);
};

}  // namespace mpdet::vulkan
