// Layer preparation (weight packing), the portable scalar kernels and the drivers that split a
// convolution into tasks. The SIMD microkernels live in conv_kernels_avx2.cpp and
// conv_kernels_avx512.cpp, compiled per function for their ISA and chosen at run time.
#include "cpu/conv_kernels.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "mpdet/error.h"

#if defined(__SSE2__)
#include <emmintrin.h>

#include "cpu/interleave4_sse2.h"
#endif
#ifdef MPDET_CPU_ARM
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace mpdet::cpu {

const char* to_string(Isa isa) {
  switch (isa) {
    case Isa::Avx512Vnni:
      return "avx512vnni";
    case Isa::Avx2:
      return "avx2";
    case Isa::NeonV8:
      return "neon";
    case Isa::NeonDotprod:
      return "neondot";
    case Isa::Scalar:
      break;
  }
  return "scalar";
}

bool isa_supported(Isa isa) {
#ifdef MPDET_CPU_X86
  __builtin_cpu_init();
  switch (isa) {
    case Isa::Avx512Vnni:
      // The epilogue needs DQ (64-bit multiplies and conversions), the kernels BW and VNNI.
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Scalar:
      return true;
    default:
      return false;
  }
#elif defined(MPDET_CPU_ARM)
  // Advanced SIMD is part of AArch64; the dot product (SDOT) is an ARMv8.2 option (HWCAP bit).
  switch (isa) {
    case Isa::Scalar:
    case Isa::NeonV8:
      return true;
    case Isa::NeonDotprod:
      return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    default:
      return false;
  }
#else
  return isa == Isa::Scalar;
#endif
}

#ifdef MPDET_CPU_X86
bool avx512vbmi_supported() {
  __builtin_cpu_init();
  return isa_supported(Isa::Avx512Vnni) && __builtin_cpu_supports("avx512vbmi");
}
#endif

Isa best_isa() {
  // MPDET_CPU_ISA=scalar|avx2|avx512vnni|neon|neondot caps the choice (debugging, benchmarks of
  // each path); the candidates are tried best first, each family after its own cap.
  std::string cap;
  if (const char* env = std::getenv("MPDET_CPU_ISA")) cap = env;
  for (const auto& family : {std::vector<Isa>{Isa::Avx512Vnni, Isa::Avx2},
                             std::vector<Isa>{Isa::NeonDotprod, Isa::NeonV8}}) {
    // A cap names one ISA of a family (or "scalar"); any other value leaves the family free.
    bool allowed = cap != "scalar" && std::none_of(family.begin(), family.end(),
                                                   [&](Isa isa) { return cap == to_string(isa); });
    for (Isa isa : family) {
      allowed = allowed || cap == to_string(isa);
      if (allowed && isa_supported(isa)) return isa;
    }
  }
  return Isa::Scalar;
}

namespace {

int round_up(int v, int m) {
  return (v + m - 1) / m * m;
}

// Per-thread scratch, reused across layers and runs (the pool's threads are persistent).
template <typename T>
T* scratch(std::vector<T>& buffer, std::size_t n) {
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

}  // namespace

PackedConv::PackedConv(const ops::Shape& in, ops::QuantParams in_q, const ops::ConvParams& p,
                       const std::int8_t* point_weights, std::span<const int> points,
                       const ops::Requantization& requant, ops::Activation activation,
                       const ops::Shape& out, ops::QuantParams out_q, Isa isa)
    : in_(in), out_(out), p_(p), in_zero_point_(in_q.zero_point), isa_(isa) {
  if (!isa_supported(isa)) throw Error(std::string("CPU does not support ") + to_string(isa));
  if (p.groups < 1 || in.channels % p.groups != 0 || p.out_channels % p.groups != 0 ||
      static_cast<int>(points.size()) != p.out_channels)
    throw Error("convolution parameters do not match its weights");
  const int in_per_group = in.channels / p.groups;
  const int out_per_group = p.out_channels / p.groups;
  k_ = in_per_group * p.kernel * p.kernel;

  epi_.first_virtual.resize(p.out_channels + 1);
  for (int oc = 0; oc < p.out_channels; ++oc)
    epi_.first_virtual[oc + 1] = epi_.first_virtual[oc] + points[oc];
  const int virtual_channels = epi_.first_virtual.back();
  if (requant.multipliers.size() != static_cast<std::size_t>(virtual_channels) ||
      requant.bias.size() != static_cast<std::size_t>(p.out_channels))
    throw Error("convolution requantization does not match its weights");
  epi_.multipliers = requant.multipliers;
  epi_.bias = requant.bias;
  epi_.shift = requant.shift;
  epi_.activation = activation;
  epi_.out_zero_point = out_q.zero_point;
  epi_.zero_sums.resize(virtual_channels);
  int max_abs = 1;
  std::vector<double> acc_bound(virtual_channels);
  for (int v = 0; v < virtual_channels; ++v) {
    std::int32_t sum = 0;
    for (int i = 0; i < k_; ++i) {
      const int w = point_weights[static_cast<std::size_t>(v) * k_ + i];
      sum += w;
      max_abs = std::max(max_abs, std::abs(w));
      acc_bound[v] += 255.0 * std::abs(w);
    }
    epi_.zero_sums[v] = sum * (in_q.zero_point - kernel_activation_offset(isa));
  }
  epi_.t_bound = 0;
  for (int oc = 0; oc < p.out_channels; ++oc) {
    double bound = std::abs(static_cast<double>(epi_.bias[oc]));
    for (int v = epi_.first_virtual[oc]; v < epi_.first_virtual[oc + 1]; ++v)
      bound += acc_bound[v] * std::abs(static_cast<double>(epi_.multipliers[v]));
    epi_.t_bound = std::max(epi_.t_bound, bound);
  }

  depthwise_ = in_per_group == 1;
  if (depthwise_) {
    dw_weights_.assign(point_weights,
                       point_weights + static_cast<std::size_t>(virtual_channels) * k_);
    // An int16 lane holds this many products |w·x| <= max_abs·255 without overflow.
    dw_chunk_ = std::max(1, 32767 / (max_abs * 255));
#ifdef MPDET_CPU_X86
    const int taps = (p.kernel + 3) / 4;
    dw_fused_ = isa == Isa::Avx512Vnni && avx512vbmi_supported() && p.kernel <= 8 &&
                15 * p.stride + 4 * taps <= 64;
    for (int oc = 0; oc < p.out_channels; ++oc) dw_fused_ = dw_fused_ && points[oc] <= 4;
    if (dw_fused_) {
      dw_packed_.assign(static_cast<std::size_t>(virtual_channels) * p.kernel * taps, 0);
      for (int v = 0; v < virtual_channels; ++v)
        for (int ky = 0; ky < p.kernel; ++ky)
          for (int kx = 0; kx < p.kernel; ++kx) {
            const std::size_t word = (static_cast<std::size_t>(v) * p.kernel + ky) * taps + kx / 4;
            const auto byte = static_cast<std::uint8_t>(point_weights[v * k_ + ky * p.kernel + kx]);
            dw_packed_[word] =
                static_cast<std::int32_t>(static_cast<std::uint32_t>(dw_packed_[word]) |
                                          (std::uint32_t{byte} << (8 * (kx % 4))));
          }
    }
    // Small planes whose rows leave vector lanes idle run flattened when every block of
    // sixteen outputs (crossing rows) finds all its taps of a kernel row within 64 bytes.
    const int pitch = in.width + 2 * p.pad, out_plane = out.height * out.width;
    const int flat_blocks = (out_plane + 15) / 16;
    bool flat =
        dw_fused_ && p.kernel % 2 == 1 && flat_blocks < out.height * ((out.width + 15) / 16);
    for (int b = 0; b < flat_blocks && flat; ++b) {
      const auto offset = [&](int i) {
        const int o = std::min(16 * b + i, out_plane - 1);
        return (o / out.width) * p.stride * pitch + (o % out.width) * p.stride;
      };
      dw_base_.push_back(offset(0));
      for (int g = 0; g < taps; ++g)
        for (int i = 0; i < 16; ++i)
          for (int t = 0; t < 4; ++t) {
            const int index = offset(i) - offset(0) + 4 * g + t;
            flat = flat && index < 64;
            dw_gather_.push_back(static_cast<std::uint8_t>(index & 63));
          }
    }
    if (!flat) dw_gather_.clear(), dw_base_.clear();
    if (isa == Isa::Avx512Vnni) prepare_epilogue_avx512(epi_);
#endif
    return;
  }

  switch (isa) {
    case Isa::Avx512Vnni:
      tile_rows_ = 8, block_ = 32;
      break;
    case Isa::Avx2:
      tile_rows_ = 4, block_ = 16;
      // vpmaddubsw saturates a pair of products at int16: safe while 2·255·|w| <= 32767.
      split_nibbles_ = max_abs > 64;
      break;
    case Isa::NeonV8:
      tile_rows_ = 4, block_ = 8;
      // Products |w·(x − 128)| <= 128·max|w|; two lanes of `chunk` of them fold into one int16.
      if (max_abs <= 7) acc16_chunk_ = 32767 / (2 * 128 * max_abs);
      break;
    case Isa::NeonDotprod:
      tile_rows_ = 4, block_ = 16;
      break;
    case Isa::Scalar:
      tile_rows_ = 4, block_ = 8;
      break;
  }
#ifdef MPDET_CPU_X86
  direct_ = isa == Isa::Avx512Vnni && avx512vbmi_supported() && p.groups == 1 && in.channels <= 4 &&
            p.kernel <= 4 && 15 * p.stride + 4 <= 64;
  for (int oc = 0; oc < p.out_channels; ++oc) direct_ = direct_ && points[oc] <= 4;
  if (direct_) {
    // [V][in][ky] dwords of the taps (ky, 0..kernel−1), zero past the kernel.
    const std::size_t rows = static_cast<std::size_t>(in.channels) * p.kernel;
    dw_packed_.assign(static_cast<std::size_t>(virtual_channels) * rows, 0);
    for (int v = 0; v < virtual_channels; ++v)
      for (std::size_t r = 0; r < rows; ++r) {
        std::uint32_t word = 0;
        for (int kx = 0; kx < p.kernel; ++kx)
          word |= std::uint32_t{static_cast<std::uint8_t>(
                      point_weights[static_cast<std::size_t>(v) * k_ + r * p.kernel + kx])}
                  << (8 * kx);
        dw_packed_[v * rows + r] = static_cast<std::int32_t>(word);
      }
  }
  if (isa == Isa::Avx512Vnni) prepare_epilogue_avx512(epi_);
#endif
  k4_ = (k_ + 3) / 4;
  rows_per_group_ = 0;
  for (int g = 0; g < p.groups; ++g)
    rows_per_group_ = std::max(rows_per_group_, epi_.first_virtual[(g + 1) * out_per_group] -
                                                    epi_.first_virtual[g * out_per_group]);
  padded_rows_ = round_up(rows_per_group_, tile_rows_);
  const std::size_t row_bytes = static_cast<std::size_t>(k4_) * 4;
  packed_.assign(static_cast<std::size_t>(p.groups) * padded_rows_ * row_bytes, 0);
  if (split_nibbles_) packed_low_.assign(packed_.size(), 0);
  for (int g = 0; g < p.groups; ++g) {
    const int v0 = epi_.first_virtual[g * out_per_group];
    const int v1 = epi_.first_virtual[(g + 1) * out_per_group];
    for (int v = v0; v < v1; ++v) {
      const std::int8_t* src = point_weights + static_cast<std::size_t>(v) * k_;
      const std::size_t row = static_cast<std::size_t>(g) * padded_rows_ + (v - v0);
      std::int8_t* dst = packed_.data() + row * row_bytes;
      for (int i = 0; i < k_; ++i) {
        if (split_nibbles_) {
          // w = 16·(w >> 4) + (w & 15), both parts small enough for vpmaddubsw.
          dst[i] = static_cast<std::int8_t>(src[i] >> 4);
          packed_low_[row * row_bytes + i] = static_cast<std::int8_t>(src[i] & 15);
        } else {
          dst[i] = src[i];
        }
      }
    }
  }
}

std::string PackedConv::kernel_name() const {
  if (depthwise_) {
    const bool vector_stride = p_.stride == 1 || p_.stride == 2;
    std::string name = "dwconv" + std::to_string(p_.kernel) + "x" + std::to_string(p_.kernel) +
                       "s" + std::to_string(p_.stride) + "_u8s8_";
    if (dw_fused_) return name + (dw_base_.empty() ? "16x_avx512vbmi" : "16x_flat_avx512vbmi");
    if (isa_ == Isa::Avx512Vnni && vector_stride) return name + "32x_avx512";
    if (isa_ == Isa::Avx2 && vector_stride) return name + "16x_avx2";
    if (isa_ == Isa::NeonV8 || isa_ == Isa::NeonDotprod) return name + "16x_neon";
    return name + "scalar";
  }
  if (direct_)
    return "conv" + std::to_string(p_.kernel) + "x" + std::to_string(p_.kernel) + "s" +
           std::to_string(p_.stride) + "_u8s8_16x_avx512vbmi";
  switch (isa_) {
    case Isa::Avx512Vnni:
      return "gemm_u8s8_8x32c4_avx512vnni";
    case Isa::Avx2:
      return split_nibbles_ ? "gemm_u8s8_4x16c4_split_avx2" : "gemm_u8s8_4x16c4_avx2";
    case Isa::NeonV8:
      return acc16_chunk_ > 0 ? "gemm_u8s8_4x8c4_acc16_neon" : "gemm_u8s8_4x8c4_neon";
    case Isa::NeonDotprod:
      return "gemm_u8s8_4x16c4_neondot";
    case Isa::Scalar:
      break;
  }
  return "gemm_u8s8_4x8c4_scalar";
}

void PackedConv::run(const std::uint8_t* input, std::uint8_t* output, std::int32_t* head,
                     ThreadPool& pool) const {
  if (depthwise_)
    run_depthwise(input, output, head, pool);
  else if (direct_ && !head)
    run_direct(input, output, pool);
  else
    run_gemm(input, output, head, pool);
}

namespace {

void epilogue(Isa isa, const PackedConv::Epilogue& e, int oc, const std::int32_t* acc,
              std::size_t acc_stride, int n, std::uint8_t* out, std::int32_t* head) {
#ifdef MPDET_CPU_X86
  if (isa == Isa::Avx512Vnni) return epilogue_avx512(e, oc, acc, acc_stride, n, out, head);
#elif defined(MPDET_CPU_ARM)
  if (isa == Isa::NeonV8 || isa == Isa::NeonDotprod)
    return epilogue_neon(e, oc, acc, acc_stride, n, out, head);
#else
  (void)isa;
#endif
  epilogue_scalar(e, oc, acc, acc_stride, n, out, head);
}

struct PackGeometry {
  const std::uint8_t* input;  // first channel of the group
  int channels, in_h, in_w, out_w, kernel, stride, pad, zero_point, k, k4, block;
  bool avx512 = false;  // x86: the 1×1 interleave in VEX code (no SSE/AVX-512 mixing)
};

// Packs output pixels [p0, p0 + valid) of one group as [k4][block][4]: element (k, j) is the
// input under tap k (channel, ky, kx) of pixel p0 + j; padding taps hold the zero point.
void pack_block(const PackGeometry& g, int p0, int valid, std::uint8_t* b) {
  const std::size_t in_plane = static_cast<std::size_t>(g.in_h) * g.in_w;
  const std::size_t kstride = static_cast<std::size_t>(g.block) * 4;
  int k_done = 0;
#if defined(__SSE2__)
  // 1×1, stride 1: interleave four channel rows, 16 pixels at a time (the pixels past a partial
  // block's last sixteen one at a time, those past the plane as the zero point).
  if (g.kernel == 1 && g.stride == 1 && g.pad == 0 && g.block % 16 == 0) {
    const int full = valid / 16 * 16;
    const auto zp = static_cast<std::uint8_t>(g.zero_point);
    for (; k_done + 4 <= g.k; k_done += 4) {
      const std::uint8_t* r = g.input + k_done * in_plane + p0;
      std::uint8_t* dst = b + (k_done / 4) * kstride;
      for (int j = full; j < g.block; ++j)
        for (int q = 0; q < 4; ++q) dst[j * 4 + q] = j < valid ? r[q * in_plane + j] : zp;
#ifdef MPDET_CPU_X86
      if (g.avx512) continue;
#endif
      for (int j = 0; j < full; j += 16) {
        interleave4_16_sse2(r + j, in_plane, dst + j * 4);
      }
    }
#ifdef MPDET_CPU_X86
    if (g.avx512) interleave4_u8_avx512(g.input + p0, in_plane, k_done / 4, full, b, kstride);
#endif
  }
#endif
  if (k_done == g.k4 * 4) return;
  // Top-left input position of every pixel, computed once per block rather than per tap.
  int top[64], left[64];
  for (int j = 0, oy = p0 / g.out_w, ox = p0 % g.out_w; j < g.block; ++j) {
    top[j] = j < valid ? oy * g.stride - g.pad : -(1 << 20);  // pixels past the end: padding
    left[j] = ox * g.stride - g.pad;
    if (++ox == g.out_w) ox = 0, ++oy;
  }
  const int kk = g.kernel * g.kernel;
  const auto zp = static_cast<std::uint8_t>(g.zero_point);
  for (int k = k_done; k < g.k4 * 4; ++k) {
    std::uint8_t* dst = b + (k / 4) * kstride + (k % 4);
    if (k >= g.k) {  // K padding: the packed weights are 0 there
      for (int j = 0; j < g.block; ++j) dst[j * 4] = 0;
      continue;
    }
    const int c = k / kk, ky = (k % kk) / g.kernel, kx = k % g.kernel;
    const std::uint8_t* src = g.input + c * in_plane;
    for (int j = 0; j < g.block; ++j) {
      const int iy = top[j] + ky, ix = left[j] + kx;
      const bool inside = static_cast<unsigned>(iy) < static_cast<unsigned>(g.in_h) &&
                          static_cast<unsigned>(ix) < static_cast<unsigned>(g.in_w);
      dst[j * 4] = inside ? src[iy * g.in_w + ix] : zp;
    }
  }
}

thread_local std::vector<std::uint8_t> tls_bytes;
thread_local std::vector<std::int32_t> tls_acc;

}  // namespace

void PackedConv::run_gemm(const std::uint8_t* input, std::uint8_t* output, std::int32_t* head,
                          ThreadPool& pool) const {
  const int out_plane = out_.height * out_.width;
  const int blocks = (out_plane + block_ - 1) / block_;
  const int in_per_group = in_.channels / p_.groups;
  const int out_per_group = p_.out_channels / p_.groups;
  const std::size_t in_plane = static_cast<std::size_t>(in_.height) * in_.width;
  const std::size_t row_bytes = static_cast<std::size_t>(k4_) * 4;
  // A task is a panel of `sub` consecutive blocks: every block is packed and multiplied into
  // its columns of acc ([rows][sub·block]), then the epilogue runs once per output channel over
  // the whole panel (its set-up amortised over up to 512 pixels). Panels stay small enough for
  // acc to live in L1/L2 and numerous enough to feed every thread.
  const int acc_row_bytes = padded_rows_ * block_ * 4;
  int sub = std::clamp(131072 / std::max(acc_row_bytes, 1), 1, 512 / block_);
  if (pool.size() > 1) sub = std::max(1, std::min(sub, p_.groups * blocks / (4 * pool.size())));
  const int panels = (blocks + sub - 1) / sub;
  const int panel_width = sub * block_;
  pool.parallel_for(p_.groups * panels, [&](int task, int) {
    const int g = task / panels, panel = task % panels;
    const int panel_p0 = panel * panel_width;
    const int panel_valid = std::min(panel_width, out_plane - panel_p0);
    std::uint8_t* b = scratch(tls_bytes, row_bytes * block_);
    std::int32_t* acc = scratch(tls_acc, static_cast<std::size_t>(padded_rows_) * panel_width);
    const PackGeometry geometry{input + g * in_per_group * in_plane,
                                in_per_group,
                                in_.height,
                                in_.width,
                                out_.width,
                                p_.kernel,
                                p_.stride,
                                p_.pad,
                                in_zero_point_,
                                k_,
                                k4_,
                                block_,
                                isa_ == Isa::Avx512Vnni};
    const int v_begin = epi_.first_virtual[g * out_per_group];
    const int rows = epi_.first_virtual[(g + 1) * out_per_group] - v_begin;
    const std::int8_t* a = packed_.data() + static_cast<std::size_t>(g) * padded_rows_ * row_bytes;
    for (int p0 = panel_p0; p0 < panel_p0 + panel_valid; p0 += block_) {
      pack_block(geometry, p0, std::min(block_, out_plane - p0), b);
      for (int r = 0; r < rows; r += tile_rows_) {
        const std::int8_t* ar = a + r * row_bytes;
        std::int32_t* c = acc + static_cast<std::size_t>(r) * panel_width + (p0 - panel_p0);
        const std::size_t c_stride = panel_width;
        switch (isa_) {
#ifdef MPDET_CPU_X86
          case Isa::Avx512Vnni:
            gemm_u8s8_8x32c4_avx512vnni(k4_, ar, row_bytes, b, c, c_stride);
            break;
          case Isa::Avx2:
            if (split_nibbles_)
              gemm_u8s8_4x16c4_split_avx2(k4_, ar, packed_low_.data() + (ar - packed_.data()),
                                          row_bytes, b, c, c_stride);
            else
              gemm_u8s8_4x16c4_avx2(k4_, ar, row_bytes, b, c, c_stride);
            break;
#endif
#ifdef MPDET_CPU_ARM
          case Isa::NeonDotprod:
            gemm_u8s8_4x16c4_neondot(k4_, ar, row_bytes, b, c, c_stride);
            break;
          case Isa::NeonV8:
            if (acc16_chunk_ > 0)
              gemm_u8s8_4x8c4_acc16_neon(k4_, ar, row_bytes, b, c, c_stride, acc16_chunk_);
            else
              gemm_u8s8_4x8c4_neon(k4_, ar, row_bytes, b, c, c_stride);
            break;
#endif
          default:
            gemm_u8s8_4x8c4_scalar(k4_, ar, row_bytes, b, c, c_stride);
            break;
        }
      }
    }
    for (int oc = g * out_per_group; oc < (g + 1) * out_per_group; ++oc) {
      const std::size_t offset = static_cast<std::size_t>(oc) * out_plane + panel_p0;
      epilogue(isa_, epi_, oc,
               acc + static_cast<std::size_t>(epi_.first_virtual[oc] - v_begin) * panel_width,
               panel_width, panel_valid, output + offset, head ? head + offset : nullptr);
    }
  });
}

void PackedConv::run_direct(const std::uint8_t* input, std::uint8_t* output,
                            ThreadPool& pool) const {
#ifdef MPDET_CPU_X86
  // Zero-point-padded copies of the input channels, built once by the calling thread.
  const int pitch = in_.width + 2 * p_.pad;
  const std::size_t plane_stride =
      static_cast<std::size_t>(pitch) * (in_.height + 2 * p_.pad) + 320;
  std::uint8_t* planes = scratch(tls_bytes, plane_stride * in_.channels);
  const std::size_t in_plane = static_cast<std::size_t>(in_.height) * in_.width;
  for (int c = 0; c < in_.channels; ++c)
    pad_plane_avx512(input + c * in_plane, in_.height, in_.width, p_.pad, in_zero_point_,
                     planes + c * plane_stride, plane_stride);
  const int bands = std::min(pool.size(), out_.height);
  pool.parallel_for(bands, [&](int band, int) {
    conv_direct_u8s8_16x_avx512vbmi(planes, plane_stride, in_.channels, pitch, p_.stride, p_.kernel,
                                    dw_packed_.data(), epi_, out_.height * band / bands,
                                    out_.height * (band + 1) / bands, out_.height, out_.width,
                                    output);
  });
#else
  (void)input, (void)output, (void)pool;
#endif
}

void PackedConv::run_depthwise(const std::uint8_t* input, std::uint8_t* output, std::int32_t* head,
                               ThreadPool& pool) const {
  const int out_per_group = p_.out_channels / p_.groups;
  const int pitch = in_.width + 2 * p_.pad;
  const int padded_h = in_.height + 2 * p_.pad;
  const std::size_t plane_bytes = static_cast<std::size_t>(pitch) * padded_h;
  const std::size_t slack = 64 * 4 + 64;  // vector rows read up to 32 outputs · stride past
  const std::size_t in_plane = static_cast<std::size_t>(in_.height) * in_.width;
  const int out_plane = out_.height * out_.width;
  const std::size_t acc_stride = static_cast<std::size_t>(out_plane) + 64;
  const int kk = p_.kernel * p_.kernel;
  const bool vector_stride = p_.stride == 1 || p_.stride == 2;
  pool.parallel_for(p_.out_channels, [&](int oc, int) {
    const int g = oc / out_per_group;
    std::uint8_t* plane = scratch(tls_bytes, plane_bytes + slack);
    // The padded copy of input channel g (rebuilt per channel: cheap next to the taps); only the
    // border is filled with the zero point, the rest is overwritten by the rows.
    const int zp = in_zero_point_;
    const std::uint8_t* src = input + g * in_plane;
#ifdef MPDET_CPU_X86
    if (dw_fused_)
      pad_plane_avx512(src, in_.height, in_.width, p_.pad, zp, plane, plane_bytes + slack);
    else
#endif
      std::memset(plane, zp, static_cast<std::size_t>(p_.pad) * pitch + p_.pad);
    for (int y = 0; y < in_.height && !dw_fused_; ++y) {
      std::uint8_t* row = plane + static_cast<std::size_t>(y + p_.pad) * pitch + p_.pad;
      std::memcpy(row, src + static_cast<std::size_t>(y) * in_.width, in_.width);
      std::memset(row + in_.width, zp, 2 * p_.pad);  // right pad, then next row's left pad
    }
    const std::size_t tail = static_cast<std::size_t>(in_.height + p_.pad) * pitch + p_.pad;
    if (!dw_fused_) std::memset(plane + tail, zp, plane_bytes + slack - tail);
    const std::size_t offset = static_cast<std::size_t>(oc) * out_plane;
#ifdef MPDET_CPU_X86
    if (dw_fused_ && !head && !dw_base_.empty()) {
      const int taps = (p_.kernel + 3) / 4;
      dwconv_flat_u8s8_16x_avx512vbmi(
          plane, pitch, p_.kernel,
          dw_packed_.data() + static_cast<std::size_t>(epi_.first_virtual[oc]) * p_.kernel * taps,
          dw_gather_.data(), dw_base_.data(), epi_, oc, out_plane, output + offset);
      return;
    }
    if (dw_fused_ && !head) {
      const int taps = (p_.kernel + 3) / 4;
      dwconv_u8s8_16x_avx512vbmi(
          plane, pitch, p_.stride, p_.kernel,
          dw_packed_.data() + static_cast<std::size_t>(epi_.first_virtual[oc]) * p_.kernel * taps,
          epi_, oc, out_.height, out_.width, output + offset);
      return;
    }
#endif
    const int v0 = epi_.first_virtual[oc], nv = epi_.first_virtual[oc + 1] - v0;
    std::int32_t* acc = scratch(tls_acc, acc_stride * nv);
    for (int j = 0; j < nv; ++j) {
      const std::int8_t* w = dw_weights_.data() + static_cast<std::size_t>(v0 + j) * kk;
      for (int oy = 0; oy < out_.height; ++oy) {
        std::int32_t* row = acc + j * acc_stride + static_cast<std::size_t>(oy) * out_.width;
#ifdef MPDET_CPU_X86
        if (isa_ == Isa::Avx512Vnni && vector_stride) {
          dwconv_row_u8s8_32x_avx512(plane, pitch, oy, p_.stride, p_.kernel, w, dw_chunk_,
                                     out_.width, row);
          continue;
        }
        if (isa_ == Isa::Avx2 && vector_stride) {
          dwconv_row_u8s8_16x_avx2(plane, pitch, oy, p_.stride, p_.kernel, w, dw_chunk_, out_.width,
                                   row);
          continue;
        }
#elif defined(MPDET_CPU_ARM)
        (void)vector_stride;
        if (isa_ == Isa::NeonV8 || isa_ == Isa::NeonDotprod) {  // every stride (zero-sum offset)
          dwconv_row_u8s8_16x_neon(plane, pitch, oy, p_.stride, p_.kernel, w, dw_chunk_, out_.width,
                                   row);
          continue;
        }
#else
        (void)vector_stride;
#endif
        dwconv_row_u8s8_scalar(plane, pitch, oy, p_.stride, p_.kernel, w, dw_chunk_, out_.width,
                               row);
      }
    }
    epilogue(isa_, epi_, oc, acc, acc_stride, out_plane, output + offset,
             head ? head + offset : nullptr);
  });
}

void epilogue_scalar(const PackedConv::Epilogue& e, int oc, const std::int32_t* acc,
                     std::size_t acc_stride, int n, std::uint8_t* out, std::int32_t* head) {
  const int v0 = e.first_virtual[oc], nv = e.first_virtual[oc + 1] - v0;
  for (int i = 0; i < n; ++i) {
    std::int64_t t = e.bias[oc];
    for (int j = 0; j < nv; ++j) {
      // Raw Σ w·x minus z_x·Σ w, modulo 2^32 (vpdpbusd wraps); the difference is the contract's
      // exact int32 accumulator.
      const auto a = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc[j * acc_stride + i]) -
                                               static_cast<std::uint32_t>(e.zero_sums[v0 + j]));
      t += std::int64_t{a} * e.multipliers[v0 + j];
    }
    t = ops::activate_fixed(t, e.activation);
    out[i] = ops::saturate_u8(e.out_zero_point + ops::round_shift(t, e.shift));
    if (head) head[i] = ops::head_code(t, e.shift);
  }
}

void gemm_u8s8_4x8c4_scalar(int k4, const std::int8_t* a, std::size_t a_stride,
                            const std::uint8_t* b, std::int32_t* c, std::size_t c_stride) {
  for (int m = 0; m < 4; ++m) {
    std::int32_t sum[8] = {};
    const std::int8_t* row = a + m * a_stride;
    for (int k = 0; k < k4; ++k) {
      const std::uint8_t* bk = b + k * 32;
      for (int j = 0; j < 8; ++j)
        for (int q = 0; q < 4; ++q) sum[j] += row[k * 4 + q] * bk[j * 4 + q];
    }
    std::memcpy(c + m * c_stride, sum, sizeof sum);
  }
}

void dwconv_row_u8s8_scalar(const std::uint8_t* plane, int pitch, int oy, int stride, int kernel,
                            const std::int8_t* w, int /*chunk*/, int width, std::int32_t* acc) {
  for (int ox = 0; ox < width; ++ox) acc[ox] = 0;
  for (int ky = 0; ky < kernel; ++ky) {
    const std::uint8_t* row = plane + static_cast<std::size_t>(oy * stride + ky) * pitch;
    for (int kx = 0; kx < kernel; ++kx) {
      const std::int32_t weight = w[ky * kernel + kx];
      for (int ox = 0; ox < width; ++ox) acc[ox] += weight * row[ox * stride + kx];
    }
  }
}

}  // namespace mpdet::cpu
