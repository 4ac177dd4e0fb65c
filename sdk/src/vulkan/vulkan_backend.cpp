#include "vulkan/vulkan_backend.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include "mpdet/error.h"
#include "ops/integer_reference_ops.h"
#include "runtime/memory_plan.h"
#include "runtime/requantization.h"
#include "vulkan/shaders_spirv.h"

namespace mpdet::vulkan {

namespace {

using model::LayerKind;

// Push-constant blocks, laid out exactly as the `Params` blocks of the shaders.
struct ConvPush {
  std::int32_t in_c, in_h, in_w, out_c, out_h, out_w, kernel, stride, pad, groups;
  std::int32_t in_zero, out_zero, shift, activation, virtual_channels, row_words, has_head;
};
struct PoolPush {
  std::int32_t channels, in_h, in_w, out_h, out_w, size, stride, padding;
};
struct UpsamplePush {
  std::int32_t channels, in_h, in_w, factor;
};
struct RequantizePush {
  std::int64_t multiplier;
  std::int32_t count, out_offset, in_zero, out_zero, shift;
};
struct AddPush {
  std::int64_t multiplier_a, multiplier_b;
  std::int32_t count, a_zero, b_zero, out_zero, shift, activation;
};
struct QuantizePush {
  float inv_scale;
  std::int32_t count, zero_point;
};
struct PreprocessPush {
  std::int32_t net_w, net_h, target_w, target_h, offset_x, offset_y, image_w;
  std::int32_t source_channel[3];
  float mean[3];
  float scale;
  float padding[3];
  float inv_scale;
  std::int32_t zero_point;
};

enum class Shader {
  ConvW2,
  ConvW3,
  ConvW4,
  ConvW8,
  MaxPool,
  Upsample,
  Requantize,
  Add,
  Quantize,
  Preprocess
};

struct ShaderInfo {
  std::span<const std::uint32_t> code;
  std::uint32_t bindings;
  std::uint32_t push_bytes;
};

ShaderInfo shader_info(Shader s) {
  switch (s) {
    case Shader::ConvW2:
      return {spirv::k_conv_w2, 5, sizeof(ConvPush)};
    case Shader::ConvW3:
      return {spirv::k_conv_w3, 5, sizeof(ConvPush)};
    case Shader::ConvW4:
      return {spirv::k_conv_w4, 5, sizeof(ConvPush)};
    case Shader::ConvW8:
      return {spirv::k_conv_w8, 5, sizeof(ConvPush)};
    case Shader::MaxPool:
      return {spirv::k_max_pool, 2, sizeof(PoolPush)};
    case Shader::Upsample:
      return {spirv::k_upsample, 2, sizeof(UpsamplePush)};
    case Shader::Requantize:
      return {spirv::k_requantize, 2, sizeof(RequantizePush)};
    case Shader::Add:
      return {spirv::k_add, 3, sizeof(AddPush)};
    case Shader::Quantize:
      return {spirv::k_quantize_input, 2, sizeof(QuantizePush)};
    case Shader::Preprocess:
      return {spirv::k_preprocess, 4, sizeof(PreprocessPush)};
  }
  throw Error("unknown shader");
}

Shader conv_shader(int bits) {
  switch (bits) {
    case 2:
      return Shader::ConvW2;
    case 3:
      return Shader::ConvW3;
    case 4:
      return Shader::ConvW4;
    case 8:
      return Shader::ConvW8;
  }
  throw Error("Vulkan backend: no convolution shader for " + std::to_string(bits) + "-bit weights");
}

constexpr std::uint32_t kWorkgroupSize = 64;  // local_size_x of every shader
constexpr int kConvTile = 4;                  // outputs per invocation of conv.comp (TILE)

// conv.comp tiles the flattened plane of a pointwise layer and single rows of the others.
std::uint32_t conv_invocations(const model::Layer& l) {
  const ops::ConvParams& c = l.conv;
  const bool pointwise = c.kernel == 1 && c.stride == 1 && c.pad == 0;
  const int plane = l.output.height * l.output.width;
  const int tiles = pointwise ? (plane + kConvTile - 1) / kConvTile
                              : l.output.height * ((l.output.width + kConvTile - 1) / kConvTile);
  return static_cast<std::uint32_t>(l.output.channels * tiles);
}

struct Pipeline {
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
};

// One recorded compute dispatch.
struct Dispatch {
  Shader shader;
  std::vector<VkBuffer> buffers;
  std::vector<std::uint8_t> push;
  std::uint32_t invocations;
  VkDescriptorSet set = VK_NULL_HANDLE;
};

template <typename T>
std::vector<std::uint8_t> bytes_of(const T& value) {
  std::vector<std::uint8_t> out(sizeof(T));
  std::memcpy(out.data(), &value, sizeof(T));
  return out;
}

class VulkanBackend final : public runtime::Backend {
 public:
  VulkanBackend(const model::Model& model, const DeviceOptions& options);
  ~VulkanBackend() override;

  std::string name() const override { return "vulkan"; }
  void run(std::span<const float> input) override;
  std::span<const float> output(std::size_t i) const override { return outputs_.at(i); }
  void set_profiling(bool enabled) override {
    profiling_ = enabled && device_.timestamps_supported();
  }
  const std::vector<runtime::LayerTiming>& layer_timings() const override { return timings_; }
  std::size_t activation_bytes() const override { return plan_.total_floats(); }
  bool run_image(const ImageView& image, const vision::PreprocessSpec& spec,
                 const vision::ResizePlan& plan) override;
  int validation_messages() const { return device_.validation_messages(); }

 private:
  Buffer& upload(const void* data, std::size_t bytes);
  Buffer& device_buffer(std::size_t bytes);
  const Pipeline& pipeline(Shader s);
  void add_conv(int index, const ops::Requantization& r);
  void record();
  void prepare(VkDescriptorPool pool, Dispatch& dispatch);
  // A command buffer for one frame: staging -> device copy, `first` (layer 0: the input
  // quantization or the device preprocessing), every later layer, outputs -> staging.
  VkCommandBuffer record_frame(const Dispatch& first, const Buffer& staging, const Buffer& target);
  void submit_and_read(VkCommandBuffer cmd);
  void prepare_image_path(const ImageView& image, const vision::PreprocessSpec& spec,
                          const vision::ResizePlan& plan);
  void release_image_path();
  void release();  // Vulkan objects in dependency order (constructor failures too)

  const model::Model& model_;
  Device device_;
  runtime::MemoryPlan plan_;
  std::vector<std::unique_ptr<Buffer>> owned_;  // every buffer, freed before the device
  std::vector<Buffer*> activations_;            // per memory-plan buffer
  Buffer* input_staging_ = nullptr;
  Buffer* input_floats_ = nullptr;
  Buffer* dummy_ = nullptr;
  std::map<Shader, Pipeline> pipelines_;
  std::vector<std::vector<Dispatch>> dispatches_;  // per layer (layer 0: input quantization)
  struct OutputCopy {
    Buffer* device;
    Buffer* staging;
    bool head;
  };
  std::vector<OutputCopy> output_copies_;
  std::vector<Buffer*> head_buffers_;  // per layer; non-null for output convolutions
  VkDescriptorPool descriptor_pool_ = VK_NULL_HANDLE;
  VkQueryPool query_pool_ = VK_NULL_HANDLE;
  VkCommandBuffer command_buffer_ = VK_NULL_HANDLE;
  std::vector<std::vector<float>> outputs_;
  bool profiling_ = false;
  std::vector<runtime::LayerTiming> timings_;
  // Device preprocessing, rebuilt when the frame geometry changes (a camera keeps it fixed).
  struct ImagePath {
    std::array<int, 8> key{};
    std::unique_ptr<Buffer> staging, pixels, taps, weights;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    VkCommandBuffer command_buffer = VK_NULL_HANDLE;
  } image_path_;
};

VulkanBackend::VulkanBackend(const model::Model& model, const DeviceOptions& options)
    : model_(model), device_(options), plan_(runtime::plan_memory(model)) {
  try {
    constexpr VkBufferUsageFlags storage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                           VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                           VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    for (std::size_t elements : plan_.buffer_floats)
      activations_.push_back(&device_buffer(elements));  // one uint8 code per element
    const std::size_t input_bytes = model.input_shape().elements() * sizeof(float);
    owned_.push_back(std::make_unique<Buffer>(device_, input_bytes, storage, true));
    input_staging_ = owned_.back().get();
    input_floats_ = &device_buffer(input_bytes);
    dummy_ = &device_buffer(4);

    const std::vector<ops::Requantization> requant = runtime::plan_requantization(model);
    dispatches_.resize(model.layers.size());
    head_buffers_.assign(model.layers.size(), nullptr);
    for (int out : model.outputs)
      if (model.layers[out].kind == LayerKind::Conv2d)
        head_buffers_[out] = &device_buffer(model.layers[out].output.elements() * 4);

    const model::Layer& input_layer = model.layers[0];
    dispatches_[0].push_back(
        {Shader::Quantize,
         {input_floats_->handle(), activations_[plan_.buffer_of_layer[0]]->handle()},
         bytes_of(QuantizePush{static_cast<float>(1.0 / input_layer.output_quant.scale),
                               static_cast<std::int32_t>(model.input_shape().elements()),
                               input_layer.output_quant.zero_point}),
         static_cast<std::uint32_t>(model.input_shape().elements())});

    for (std::size_t i = 1; i < model.layers.size(); ++i) {
      const model::Layer& l = model.layers[i];
      auto in_buffer = [&](std::size_t k) {
        return activations_[plan_.buffer_of_layer[l.inputs[k]]]->handle();
      };
      auto in_layer = [&](std::size_t k) -> const model::Layer& {
        return model.layers[l.inputs[k]];
      };
      const VkBuffer out = activations_[plan_.buffer_of_layer[i]]->handle();
      const auto count = static_cast<std::int32_t>(l.output.elements());
      switch (l.kind) {
        case LayerKind::Input:
          throw Error("model has a second input layer");
        case LayerKind::Conv2d:
          add_conv(static_cast<int>(i), requant[i]);
          break;
        case LayerKind::MaxPool: {
          const auto& s = in_layer(0).output;
          dispatches_[i].push_back(
              {Shader::MaxPool,
               {in_buffer(0), out},
               bytes_of(PoolPush{s.channels, s.height, s.width, l.output.height, l.output.width,
                                 l.pool.size, l.pool.stride, l.pool.padding}),
               static_cast<std::uint32_t>(count)});
          break;
        }
        case LayerKind::Upsample: {
          const auto& s = in_layer(0).output;
          dispatches_[i].push_back(
              {Shader::Upsample,
               {in_buffer(0), out},
               bytes_of(UpsamplePush{s.channels, s.height, s.width, l.upsample_factor}),
               static_cast<std::uint32_t>(count)});
          break;
        }
        case LayerKind::Concat: {
          const ops::Requantization& r = requant[i];
          std::int32_t offset = 0;
          for (std::size_t k = 0; k < l.inputs.size(); ++k) {
            const auto n = static_cast<std::int32_t>(in_layer(k).output.elements());
            dispatches_[i].push_back({Shader::Requantize,
                                      {in_buffer(k), out},
                                      bytes_of(RequantizePush{r.multipliers[k], n, offset,
                                                              in_layer(k).output_quant.zero_point,
                                                              l.output_quant.zero_point, r.shift}),
                                      static_cast<std::uint32_t>(n)});
            offset += n;
          }
          break;
        }
        case LayerKind::Add: {
          const ops::QuantParams a = in_layer(0).output_quant, b = in_layer(1).output_quant;
          const ops::Requantization& r = requant[i];
          dispatches_[i].push_back(
              {Shader::Add,
               {in_buffer(0), in_buffer(1), out},
               bytes_of(AddPush{r.multipliers[0], r.multipliers[1], count, a.zero_point,
                                b.zero_point, l.output_quant.zero_point, r.shift,
                                static_cast<std::int32_t>(l.activation)}),
               static_cast<std::uint32_t>(count)});
          break;
        }
      }
    }

    for (std::size_t o = 0; o < model.outputs.size(); ++o) {
      const int layer = model.outputs[o];
      Buffer* head = head_buffers_[layer];
      Buffer* source = head ? head : activations_[plan_.buffer_of_layer[layer]];
      const std::size_t bytes = model.layers[layer].output.elements() * (head ? 4 : 1);
      owned_.push_back(std::make_unique<Buffer>(device_, bytes, storage, true));
      output_copies_.push_back({source, owned_.back().get(), head != nullptr});
      outputs_.emplace_back(model.layers[layer].output.elements());
    }
    record();
  } catch (...) {
    release();
    throw;
  }
}

VulkanBackend::~VulkanBackend() {
  release();
}

void VulkanBackend::release() {
  VkDevice d = device_.handle();
  if (d == VK_NULL_HANDLE) return;
  vkDeviceWaitIdle(d);
  release_image_path();
  if (command_buffer_ != VK_NULL_HANDLE)
    vkFreeCommandBuffers(d, device_.command_pool(), 1, &command_buffer_);
  command_buffer_ = VK_NULL_HANDLE;
  if (query_pool_ != VK_NULL_HANDLE) vkDestroyQueryPool(d, query_pool_, nullptr);
  query_pool_ = VK_NULL_HANDLE;
  if (descriptor_pool_ != VK_NULL_HANDLE) vkDestroyDescriptorPool(d, descriptor_pool_, nullptr);
  descriptor_pool_ = VK_NULL_HANDLE;
  for (auto& [shader, p] : pipelines_) {
    vkDestroyPipeline(d, p.pipeline, nullptr);
    vkDestroyPipelineLayout(d, p.layout, nullptr);
    vkDestroyDescriptorSetLayout(d, p.set_layout, nullptr);
  }
  pipelines_.clear();
  owned_.clear();
}

Buffer& VulkanBackend::device_buffer(std::size_t bytes) {
  owned_.push_back(std::make_unique<Buffer>(device_, bytes,
                                            VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                                VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                                VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                            false));
  return *owned_.back();
}

Buffer& VulkanBackend::upload(const void* data, std::size_t bytes) {
  Buffer& target = device_buffer(bytes);
  Buffer staging(device_, bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, true);
  std::memcpy(staging.mapped(), data, bytes);
  device_.run_once([&](VkCommandBuffer cmd) {
    const VkBufferCopy region{0, 0, bytes};
    vkCmdCopyBuffer(cmd, staging.handle(), target.handle(), 1, &region);
  });
  return target;
}

// Packs b-bit codes (32 / b per word, every virtual channel row word-aligned) and the epilogue
// table [multipliers | biases | first virtual channel per output channel].
void VulkanBackend::add_conv(int index, const ops::Requantization& r) {
  const model::Layer& l = model_.layers[index];
  const model::Layer& in = model_.layers[l.inputs[0]];
  const auto& wq = l.weight_quant;
  const model::Tensor& weights = model_.tensors[wq.weights];
  const int bits = wq.weight_bits;
  const int per_word = 32 / bits;
  const int virtual_channels = wq.virtual_channels();
  const std::size_t taps = weights.codes.size() / static_cast<std::size_t>(virtual_channels);
  const std::size_t row_words = (taps + per_word - 1) / per_word;
  std::vector<std::uint32_t> packed(row_words * virtual_channels, 0);
  const std::uint32_t mask = bits == 32 ? ~0u : (1u << bits) - 1;
  for (int v = 0; v < virtual_channels; ++v)
    for (std::size_t t = 0; t < taps; ++t) {
      const auto code = static_cast<std::uint32_t>(weights.codes[v * taps + t]) & mask;
      packed[v * row_words + t / per_word] |= code << ((t % per_word) * bits);
    }
  std::vector<std::int64_t> epilogue(r.multipliers);
  epilogue.insert(epilogue.end(), r.bias.begin(), r.bias.end());
  std::int64_t first = 0;
  for (int p : wq.points) {
    epilogue.push_back(first);
    first += p;
  }
  epilogue.push_back(first);

  Buffer& w = upload(packed.data(), packed.size() * 4);
  Buffer& e = upload(epilogue.data(), epilogue.size() * 8);
  Buffer* head = head_buffers_[index];
  const ConvPush push{in.output.channels,
                      in.output.height,
                      in.output.width,
                      l.output.channels,
                      l.output.height,
                      l.output.width,
                      l.conv.kernel,
                      l.conv.stride,
                      l.conv.pad,
                      l.conv.groups,
                      in.output_quant.zero_point,
                      l.output_quant.zero_point,
                      r.shift,
                      static_cast<std::int32_t>(l.activation),
                      virtual_channels,
                      static_cast<std::int32_t>(row_words),
                      head != nullptr};
  dispatches_[index].push_back(
      {conv_shader(bits),
       {activations_[plan_.buffer_of_layer[l.inputs[0]]]->handle(), w.handle(), e.handle(),
        activations_[plan_.buffer_of_layer[index]]->handle(),
        head ? head->handle() : dummy_->handle()},
       bytes_of(push),
       conv_invocations(l)});
}

const Pipeline& VulkanBackend::pipeline(Shader s) {
  if (auto it = pipelines_.find(s); it != pipelines_.end()) return it->second;
  const ShaderInfo info = shader_info(s);
  VkDevice d = device_.handle();
  Pipeline& p = pipelines_[s];
  std::vector<VkDescriptorSetLayoutBinding> bindings(info.bindings);
  for (std::uint32_t b = 0; b < info.bindings; ++b)
    bindings[b] = {b, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo set{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  set.bindingCount = info.bindings;
  set.pBindings = bindings.data();
  check(vkCreateDescriptorSetLayout(d, &set, nullptr, &p.set_layout),
        "vkCreateDescriptorSetLayout");
  const VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, info.push_bytes};
  VkPipelineLayoutCreateInfo layout{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  layout.setLayoutCount = 1;
  layout.pSetLayouts = &p.set_layout;
  layout.pushConstantRangeCount = 1;
  layout.pPushConstantRanges = &range;
  check(vkCreatePipelineLayout(d, &layout, nullptr, &p.layout), "vkCreatePipelineLayout");
  VkShaderModuleCreateInfo module_info{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  module_info.codeSize = info.code.size_bytes();
  module_info.pCode = info.code.data();
  VkShaderModule module = VK_NULL_HANDLE;
  check(vkCreateShaderModule(d, &module_info, nullptr, &module), "vkCreateShaderModule");
  VkComputePipelineCreateInfo create{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  create.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  create.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  create.stage.module = module;
  create.stage.pName = "main";
  create.layout = p.layout;
  const VkResult result =
      vkCreateComputePipelines(d, device_.pipeline_cache(), 1, &create, nullptr, &p.pipeline);
  vkDestroyShaderModule(d, module, nullptr);
  check(result, "vkCreateComputePipelines");
  return p;
}

void VulkanBackend::prepare(VkDescriptorPool pool, Dispatch& dispatch) {
  VkDevice d = device_.handle();
  const Pipeline& p = pipeline(dispatch.shader);
  VkDescriptorSetAllocateInfo alloc{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  alloc.descriptorPool = pool;
  alloc.descriptorSetCount = 1;
  alloc.pSetLayouts = &p.set_layout;
  check(vkAllocateDescriptorSets(d, &alloc, &dispatch.set), "vkAllocateDescriptorSets");
  std::vector<VkDescriptorBufferInfo> infos;
  for (VkBuffer b : dispatch.buffers) infos.push_back({b, 0, VK_WHOLE_SIZE});
  std::vector<VkWriteDescriptorSet> writes;
  for (std::uint32_t b = 0; b < infos.size(); ++b) {
    VkWriteDescriptorSet w{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    w.dstSet = dispatch.set;
    w.dstBinding = b;
    w.descriptorCount = 1;
    w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    w.pBufferInfo = &infos[b];
    writes.push_back(w);
  }
  vkUpdateDescriptorSets(d, static_cast<std::uint32_t>(writes.size()), writes.data(), 0, nullptr);
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties(device_.physical(), &props);
  const std::uint32_t groups = (dispatch.invocations + kWorkgroupSize - 1) / kWorkgroupSize;
  if (groups > props.limits.maxComputeWorkGroupCount[0])
    throw Error("Vulkan backend: a layer needs " + std::to_string(groups) +
                " workgroups, the device allows " +
                std::to_string(props.limits.maxComputeWorkGroupCount[0]));
}

VkDescriptorPool create_pool(VkDevice d, std::uint32_t sets) {
  const VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets * 5};
  VkDescriptorPoolCreateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  info.maxSets = sets;
  info.poolSizeCount = 1;
  info.pPoolSizes = &size;
  VkDescriptorPool pool = VK_NULL_HANDLE;
  check(vkCreateDescriptorPool(d, &info, nullptr, &pool), "vkCreateDescriptorPool");
  return pool;
}

void VulkanBackend::record() {
  VkDevice d = device_.handle();
  std::uint32_t sets = 0;
  for (const auto& layer : dispatches_) sets += static_cast<std::uint32_t>(layer.size());
  descriptor_pool_ = create_pool(d, sets);
  for (auto& layer : dispatches_)
    for (Dispatch& dispatch : layer) prepare(descriptor_pool_, dispatch);
  if (device_.timestamps_supported()) {
    VkQueryPoolCreateInfo query{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    query.queryType = VK_QUERY_TYPE_TIMESTAMP;
    query.queryCount = static_cast<std::uint32_t>(model_.layers.size() + 1);
    check(vkCreateQueryPool(d, &query, nullptr, &query_pool_), "vkCreateQueryPool");
  }
  command_buffer_ = record_frame(dispatches_[0][0], *input_staging_, *input_floats_);
}

VkCommandBuffer VulkanBackend::record_frame(const Dispatch& first, const Buffer& staging,
                                            const Buffer& target) {
  VkCommandBufferAllocateInfo alloc{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  alloc.commandPool = device_.command_pool();
  alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  alloc.commandBufferCount = 1;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  check(vkAllocateCommandBuffers(device_.handle(), &alloc, &cmd), "vkAllocateCommandBuffers");
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  check(vkBeginCommandBuffer(cmd, &begin), "vkBeginCommandBuffer");

  auto barrier = [&](VkPipelineStageFlags src_stage, VkAccessFlags src,
                     VkPipelineStageFlags dst_stage, VkAccessFlags dst) {
    VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    b.srcAccessMask = src;
    b.dstAccessMask = dst;
    vkCmdPipelineBarrier(cmd, src_stage, dst_stage, 0, 1, &b, 0, nullptr, 0, nullptr);
  };
  const auto timestamps = static_cast<std::uint32_t>(model_.layers.size() + 1);
  if (query_pool_ != VK_NULL_HANDLE) vkCmdResetQueryPool(cmd, query_pool_, 0, timestamps);
  const VkBufferCopy input_copy{0, 0, staging.size()};
  vkCmdCopyBuffer(cmd, staging.handle(), target.handle(), 1, &input_copy);
  barrier(VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
          VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT);
  if (query_pool_ != VK_NULL_HANDLE)
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, query_pool_, 0);
  for (std::size_t i = 0; i < dispatches_.size(); ++i) {
    const std::span<const Dispatch> layer =
        i == 0 ? std::span<const Dispatch>(&first, 1) : std::span<const Dispatch>(dispatches_[i]);
    for (const Dispatch& dispatch : layer) {
      const Pipeline& p = pipelines_.at(dispatch.shader);
      vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
      vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &dispatch.set, 0,
                              nullptr);
      vkCmdPushConstants(cmd, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                         static_cast<std::uint32_t>(dispatch.push.size()), dispatch.push.data());
      vkCmdDispatch(cmd, (dispatch.invocations + kWorkgroupSize - 1) / kWorkgroupSize, 1, 1);
    }
    // Every layer reads what earlier layers wrote, and a reused buffer must not be overwritten
    // while an earlier reader runs: one full compute-to-compute barrier per layer.
    barrier(VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT);
    if (query_pool_ != VK_NULL_HANDLE)
      vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, query_pool_,
                          static_cast<std::uint32_t>(i + 1));
  }
  for (const OutputCopy& copy : output_copies_) {
    const VkBufferCopy region{0, 0, copy.staging->size()};
    vkCmdCopyBuffer(cmd, copy.device->handle(), copy.staging->handle(), 1, &region);
  }
  barrier(VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_HOST_BIT,
          VK_ACCESS_HOST_READ_BIT);
  check(vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
  return cmd;
}

void VulkanBackend::release_image_path() {
  VkDevice d = device_.handle();
  if (image_path_.command_buffer != VK_NULL_HANDLE)
    vkFreeCommandBuffers(d, device_.command_pool(), 1, &image_path_.command_buffer);
  if (image_path_.pool != VK_NULL_HANDLE) vkDestroyDescriptorPool(d, image_path_.pool, nullptr);
  image_path_ = {};
}

void VulkanBackend::prepare_image_path(const ImageView& image, const vision::PreprocessSpec& spec,
                                       const vision::ResizePlan& plan) {
  const std::array<int, 8> key{
      image.width,   image.height,  plan.target_width,      plan.target_height,
      plan.offset_x, plan.offset_y, plan.source_channel[0], static_cast<int>(spec.resize)};
  if (image_path_.command_buffer != VK_NULL_HANDLE && image_path_.key == key) return;
  vkDeviceWaitIdle(device_.handle());
  release_image_path();
  image_path_.key = key;
  const std::size_t pixel_bytes = static_cast<std::size_t>(image.width) * image.height * 3;
  image_path_.staging =
      std::make_unique<Buffer>(device_, pixel_bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, true);
  image_path_.pixels = std::make_unique<Buffer>(
      device_, pixel_bytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
      false);
  std::vector<std::int32_t> taps;
  taps.insert(taps.end(), plan.x_taps.first.begin(), plan.x_taps.first.end());
  taps.insert(taps.end(), plan.x_taps.second.begin(), plan.x_taps.second.end());
  taps.insert(taps.end(), plan.y_taps.first.begin(), plan.y_taps.first.end());
  taps.insert(taps.end(), plan.y_taps.second.begin(), plan.y_taps.second.end());
  std::vector<float> weights(plan.x_taps.second_weight);
  weights.insert(weights.end(), plan.y_taps.second_weight.begin(), plan.y_taps.second_weight.end());
  auto upload_owned = [&](const void* data, std::size_t bytes) {
    auto target = std::make_unique<Buffer>(
        device_, bytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        false);
    Buffer staging(device_, bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, true);
    std::memcpy(staging.mapped(), data, bytes);
    device_.run_once([&](VkCommandBuffer cmd) {
      const VkBufferCopy region{0, 0, bytes};
      vkCmdCopyBuffer(cmd, staging.handle(), target->handle(), 1, &region);
    });
    return target;
  };
  image_path_.taps = upload_owned(taps.data(), taps.size() * sizeof(std::int32_t));
  image_path_.weights = upload_owned(weights.data(), weights.size() * sizeof(float));

  const ops::QuantParams q = model_.layers[0].output_quant;
  PreprocessPush push{spec.width,
                      spec.height,
                      plan.target_width,
                      plan.target_height,
                      plan.offset_x,
                      plan.offset_y,
                      image.width,
                      {plan.source_channel[0], plan.source_channel[1], plan.source_channel[2]},
                      {spec.mean[0], spec.mean[1], spec.mean[2]},
                      spec.scale,
                      {plan.padding[0], plan.padding[1], plan.padding[2]},
                      static_cast<float>(1.0 / q.scale),
                      q.zero_point};
  Dispatch dispatch{
      Shader::Preprocess,
      {image_path_.pixels->handle(), image_path_.taps->handle(), image_path_.weights->handle(),
       activations_[plan_.buffer_of_layer[0]]->handle()},
      bytes_of(push),
      static_cast<std::uint32_t>(model_.input_shape().elements())};
  image_path_.pool = create_pool(device_.handle(), 1);
  prepare(image_path_.pool, dispatch);
  image_path_.command_buffer = record_frame(dispatch, *image_path_.staging, *image_path_.pixels);
}

bool VulkanBackend::run_image(const ImageView& image, const vision::PreprocessSpec& spec,
                              const vision::ResizePlan& plan) {
  const ops::Shape& in = model_.input_shape();
  if (in.channels != 3 || in.width != spec.width || in.height != spec.height)
    throw Error("preprocessing size does not match the model input");
  // The device path reads unrotated interleaved BGR/RGB; other frames go through the CPU pass.
  const bool interleaved_rgb = image.format == PixelFormat::BGR || image.format == PixelFormat::RGB;
  if (!interleaved_rgb || image.rotation != Rotation::Deg0 || image.mirror || image.roi)
    return false;
  prepare_image_path(image, spec, plan);
  // Rows are packed as they are copied, so any row stride works.
  auto* dst = static_cast<std::uint8_t*>(image_path_.staging->mapped());
  const std::size_t row = static_cast<std::size_t>(image.width) * 3;
  for (int r = 0; r < image.height; ++r)
    std::memcpy(dst + r * row, image.data + r * image.stride(), row);
  submit_and_read(image_path_.command_buffer);
  return true;
}

void VulkanBackend::run(std::span<const float> input) {
  if (input.size() != model_.input_shape().elements())
    throw Error("input tensor has " + std::to_string(input.size()) + " values, the model needs " +
                std::to_string(model_.input_shape().elements()));
  std::memcpy(input_staging_->mapped(), input.data(), input.size_bytes());
  submit_and_read(command_buffer_);
}

void VulkanBackend::submit_and_read(VkCommandBuffer cmd) {
  device_.submit_and_wait(cmd, false);

  for (std::size_t o = 0; o < output_copies_.size(); ++o) {
    const model::Layer& l = model_.layers[model_.outputs[o]];
    if (output_copies_[o].head)
      ops::integer_reference::dequantize_head(
          static_cast<const std::int32_t*>(output_copies_[o].staging->mapped()), outputs_[o].size(),
          l.output_quant, outputs_[o].data());
    else
      ops::integer_reference::dequantize(
          static_cast<const std::uint8_t*>(output_copies_[o].staging->mapped()), outputs_[o].size(),
          l.output_quant, outputs_[o].data());
  }

  timings_.clear();
  if (profiling_ && query_pool_ != VK_NULL_HANDLE) {
    std::vector<std::uint64_t> ticks(model_.layers.size() + 1);
    check(vkGetQueryPoolResults(
              device_.handle(), query_pool_, 0, static_cast<std::uint32_t>(ticks.size()),
              ticks.size() * sizeof(std::uint64_t), ticks.data(), sizeof(std::uint64_t),
              VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
          "vkGetQueryPoolResults");
    // Timestamp 0 precedes the input quantization (layer 0's dispatch); layer i ends at i + 1.
    for (std::size_t i = 1; i < model_.layers.size(); ++i)
      timings_.push_back({static_cast<int>(i), static_cast<double>(ticks[i + 1] - ticks[i]) *
                                                   device_.timestamp_period_ns() * 1e-6});
  }
}

}  // namespace

std::unique_ptr<runtime::Backend> create_vulkan_backend(const model::Model& model,
                                                        const DeviceOptions& options) {
  if (!model.quantized)
    throw Error("the Vulkan backend runs quantized models only (run `mpdet quantize` first)");
  DeviceOptions o = options;
  if (const char* v = std::getenv("MPDET_VULKAN_VALIDATION"); v != nullptr && v[0] == '1')
    o.validation = true;
  return std::make_unique<VulkanBackend>(model, o);
}

int vulkan_validation_messages(const runtime::Backend& backend) {
  const auto* vk = dynamic_cast<const VulkanBackend*>(&backend);
  return vk ? vk->validation_messages() : 0;
}

}  // namespace mpdet::vulkan
