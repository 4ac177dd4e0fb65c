// The CPU backend: the integer reference backend's executor (same memory plan and
// requantization), with convolutions run by pre-packed SIMD kernels and every layer split over
// a persistent thread pool.
#include "cpu/cpu_backend.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "cpu/cpu_backend_isa.h"
#include "mpdet/error.h"
#include "ops/integer_reference_ops.h"
#include "runtime/memory_plan.h"
#include "runtime/requantization.h"

namespace mpdet::cpu {

namespace {

using model::LayerKind;
namespace iref = ops::integer_reference;

// iref::upsample_nearest without a division per code: each input row is widened once and the
// widened row copied to the other factor − 1 output rows.
void upsample_nearest(const std::uint8_t* input, const ops::Shape& in, int factor,
                      std::uint8_t* output) {
  const std::size_t out_w = static_cast<std::size_t>(in.width) * factor;
  for (int c = 0; c < in.channels; ++c)
    for (int y = 0; y < in.height; ++y) {
      const std::uint8_t* src = input + (static_cast<std::size_t>(c) * in.height + y) * in.width;
      std::uint8_t* dst = output + (static_cast<std::size_t>(c) * in.height + y) * factor * out_w;
      if (factor == 2) {
        for (int x = 0; x < in.width; ++x) dst[2 * x] = dst[2 * x + 1] = src[x];
      } else {
        for (int x = 0; x < in.width; ++x)
          for (int f = 0; f < factor; ++f) dst[static_cast<std::size_t>(x) * factor + f] = src[x];
      }
      for (int f = 1; f < factor; ++f) std::memcpy(dst + f * out_w, dst, out_w);
    }
}

class CpuBackend final : public runtime::Backend {
 public:
  CpuBackend(const model::Model& model, int threads, Isa isa);

  std::string name() const override { return "cpu"; }
  void run(std::span<const float> input) override;
  std::span<const float> output(std::size_t i) const override { return outputs_.at(i); }
  void set_profiling(bool enabled) override { profiling_ = enabled; }
  const std::vector<runtime::LayerTiming>& layer_timings() const override { return timings_; }
  std::size_t activation_bytes() const override { return plan_.total_floats(); }

  std::vector<std::string> kernels() const {
    std::vector<std::string> names(model_.layers.size());
    for (std::size_t i = 0; i < convs_.size(); ++i)
      if (convs_[i]) names[i] = convs_[i]->kernel_name();
    return names;
  }

 private:
  const std::uint8_t* codes(int layer) const {
    return buffers_[plan_.buffer_of_layer[layer]].data();
  }
  void run_layer(int index);
  // Splits [0, n) into one contiguous range per thread.
  template <typename Fn>
  void split(std::size_t n, Fn fn) {
    const int parts = static_cast<int>(std::min<std::size_t>(pool_.size(), n));
    pool_.parallel_for(parts, [&](int t, int) { fn(n * t / parts, n * (t + 1) / parts); });
  }

  const model::Model& model_;
  runtime::MemoryPlan plan_;
  std::vector<std::vector<std::uint8_t>> buffers_;
  std::vector<ops::Requantization> requant_;  // add, concat
  std::vector<bool> vector_elementwise_;  // add, concat with AVX-512 or NEON (multipliers < 2^31)
  std::vector<std::unique_ptr<PackedConv>> convs_;
  std::vector<std::vector<float>> outputs_;
  std::vector<std::vector<std::int32_t>> head_codes_;  // non-empty for output convolutions
  bool profiling_ = false;
  std::vector<runtime::LayerTiming> timings_;
  Isa isa_;
  ThreadPool pool_;
};

CpuBackend::CpuBackend(const model::Model& model, int threads, Isa isa)
    : model_(model), plan_(runtime::plan_memory(model)), isa_(isa), pool_(threads) {
  if (!model.quantized) throw Error("the cpu backend needs a quantized model");
  if (!isa_supported(isa)) throw Error(std::string("this CPU lacks ") + to_string(isa));
  for (std::size_t elements : plan_.buffer_floats) buffers_.emplace_back(elements);
  requant_ = runtime::plan_requantization(model);
  convs_.resize(model.layers.size());
  vector_elementwise_.resize(model.layers.size());
  for (std::size_t i = 1; i < model.layers.size(); ++i) {
    const model::Layer& l = model.layers[i];
    if (l.kind == LayerKind::Conv2d) {
      const auto& wq = l.weight_quant;
      const model::Layer& in = model.layers[l.inputs[0]];
      convs_[i] = std::make_unique<PackedConv>(
          in.output, in.output_quant, l.conv, model.tensors[wq.weights].codes.data(), wq.points,
          requant_[i], l.activation, l.output, l.output_quant, isa);
    } else if (l.kind == LayerKind::Add || l.kind == LayerKind::Concat) {
      vector_elementwise_[i] =
          (isa == Isa::Avx512Vnni || isa == Isa::NeonV8 || isa == Isa::NeonDotprod) &&
          std::all_of(requant_[i].multipliers.begin(), requant_[i].multipliers.end(),
                      [](std::int64_t m) { return m > INT32_MIN && m < INT32_MAX; });
    }
  }
  head_codes_.resize(model.layers.size());
  for (int out : model.outputs) {
    outputs_.emplace_back(model.layers[out].output.elements());
    if (model.layers[out].kind == LayerKind::Conv2d)
      head_codes_[out].resize(model.layers[out].output.elements());
  }
}

void CpuBackend::run(std::span<const float> input) {
  if (input.size() != model_.input_shape().elements())
    throw Error("input tensor has " + std::to_string(input.size()) + " values, the model needs " +
                std::to_string(model_.input_shape().elements()));
  std::uint8_t* first = buffers_[plan_.buffer_of_layer[0]].data();
  const ops::QuantParams in_q = model_.layers[0].output_quant;
  split(input.size(), [&](std::size_t b, std::size_t e) {
#ifdef MPDET_CPU_X86
    if (isa_ == Isa::Avx512Vnni)
      return quantize_input_avx512(input.data() + b, e - b, static_cast<float>(1.0 / in_q.scale),
                                   in_q.zero_point, first + b);
#endif
    iref::quantize_input(input.data() + b, e - b, in_q, first + b);
  });
  runtime::run_layers(
      static_cast<int>(model_.layers.size()), profiling_, timings_, [&](int i) { run_layer(i); },
      [](int) {});
  for (std::size_t o = 0; o < model_.outputs.size(); ++o) {
    const int layer = model_.outputs[o];
    const ops::QuantParams q = model_.layers[layer].output_quant;
    if (!head_codes_[layer].empty())
      iref::dequantize_head(head_codes_[layer].data(), outputs_[o].size(), q, outputs_[o].data());
    else
      iref::dequantize(codes(layer), outputs_[o].size(), q, outputs_[o].data());
  }
}

void CpuBackend::run_layer(int index) {
  const model::Layer& l = model_.layers[index];
  std::uint8_t* out = buffers_[plan_.buffer_of_layer[index]].data();
  auto in = [&](std::size_t k) { return codes(l.inputs[k]); };
  auto in_layer = [&](std::size_t k) -> const model::Layer& { return model_.layers[l.inputs[k]]; };
  switch (l.kind) {
    case LayerKind::Input:
      break;
    case LayerKind::Conv2d:
      convs_[index]->run(in(0), out,
                         head_codes_[index].empty() ? nullptr : head_codes_[index].data(), pool_);
      break;
    case LayerKind::MaxPool: {
      // Channels are independent: each thread pools a range of them with the reference kernel.
      const ops::Shape is = in_layer(0).output;
      const std::size_t in_plane = static_cast<std::size_t>(is.height) * is.width;
      const std::size_t out_plane = static_cast<std::size_t>(l.output.height) * l.output.width;
      split(is.channels, [&](std::size_t b, std::size_t e) {
        iref::max_pool(in(0) + b * in_plane, {static_cast<int>(e - b), is.height, is.width}, l.pool,
                       out + b * out_plane,
                       {static_cast<int>(e - b), l.output.height, l.output.width});
      });
      break;
    }
    case LayerKind::Upsample: {
      const ops::Shape is = in_layer(0).output;
      const std::size_t in_plane = static_cast<std::size_t>(is.height) * is.width;
      const std::size_t factor2 = static_cast<std::size_t>(l.upsample_factor) * l.upsample_factor;
      split(is.channels, [&](std::size_t b, std::size_t e) {
        upsample_nearest(in(0) + b * in_plane, {static_cast<int>(e - b), is.height, is.width},
                         l.upsample_factor, out + b * in_plane * factor2);
      });
      break;
    }
    case LayerKind::Concat: {
      std::uint8_t* dst = out;
      for (std::size_t k = 0; k < l.inputs.size(); ++k) {
        const std::size_t n = in_layer(k).output.elements();
        const std::uint8_t* src = in(k);
        split(n, [&](std::size_t b, std::size_t e) {
#ifdef MPDET_CPU_X86
          if (vector_elementwise_[index])
            return requantize_u8_avx512(src + b, in_layer(k).output_quant.zero_point,
                                        requant_[index].multipliers[k], e - b,
                                        requant_[index].shift, l.output_quant.zero_point, dst + b);
#elif defined(MPDET_CPU_ARM)
          if (vector_elementwise_[index])
            return requantize_u8_neon(src + b, in_layer(k).output_quant.zero_point,
                                      requant_[index].multipliers[k], e - b, requant_[index].shift,
                                      l.output_quant.zero_point, dst + b);
#endif
          iref::requantize(src + b, in_layer(k).output_quant, e - b, requant_[index], k, dst + b,
                           l.output_quant);
        });
        dst += n;
      }
      break;
    }
    case LayerKind::Add:
      split(l.output.elements(), [&](std::size_t b, std::size_t e) {
#ifdef MPDET_CPU_X86
        if (vector_elementwise_[index])
          return add_u8_avx512(
              in(0) + b, in_layer(0).output_quant.zero_point, requant_[index].multipliers[0],
              in(1) + b, in_layer(1).output_quant.zero_point, requant_[index].multipliers[1], e - b,
              requant_[index].shift, l.activation, l.output_quant.zero_point, out + b);
#elif defined(MPDET_CPU_ARM)
        if (vector_elementwise_[index])
          return add_u8_neon(
              in(0) + b, in_layer(0).output_quant.zero_point, requant_[index].multipliers[0],
              in(1) + b, in_layer(1).output_quant.zero_point, requant_[index].multipliers[1], e - b,
              requant_[index].shift, l.activation, l.output_quant.zero_point, out + b);
#endif
        iref::add(in(0) + b, in_layer(0).output_quant, in(1) + b, in_layer(1).output_quant, e - b,
                  requant_[index], l.activation, out + b, l.output_quant);
      });
      break;
  }
}

}  // namespace

std::unique_ptr<runtime::Backend> create_cpu_backend(const model::Model& model, int threads,
                                                     Isa isa) {
  return std::make_unique<CpuBackend>(model, threads, isa);
}

std::unique_ptr<runtime::Backend> create_cpu_backend(const model::Model& model, int threads) {
  return create_cpu_backend(model, threads, best_isa());
}

std::vector<std::string> cpu_backend_kernels(const runtime::Backend& backend) {
  const auto* cpu = dynamic_cast<const CpuBackend*>(&backend);
  return cpu ? cpu->kernels() : std::vector<std::string>{};
}

}  // namespace mpdet::cpu
