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
#endif

namespace mpdet::cpu {

const char* to_string(Isa isa) {
  switch (isa) {
    case Isa::Avx512Vnni:
      return "avx512vnni";
    case Isa::Avx2:
      return "avx2";
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
  }
  return false;
#else
  return isa == Isa::Scalar;
#endif
}

Isa best_isa() {
  // MPDET_CPU_ISA=scalar|avx2|avx512vnni caps the choice (debugging, benchmarks of each path).
  Isa cap = Isa::Avx512Vnni;
  if (const char* env = std::getenv("MPDET_CPU_ISA")) {
    const std::string name = env;
    if (name == "scalar") cap = Isa::Scalar;
    if (name == "avx2") cap = Isa::Avx2;
  }
  for (Isa isa : {Isa::Avx512Vnni, Isa::Avx2})
    if (static_cast<int>(isa) <= static_cast<int>(cap) && isa_supported(isa)) return isa;
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
  for (int v = 0; v < virtual_channels; ++v) {
    std::int32_t sum = 0;
    for (int i = 0; i < k_; ++i) {
      const int w = point_weights[static_cast<std::size_t>(v) * k_ + i];
      sum += w;
      max_abs = std::max(max_abs, std::abs(w));
    }
    epi_.zero_sums[v] = sum * in_q.zero_point;
  }

  depthwise_ = in_per_group == 1;
  if (depthwise_) {
    dw_weights_.assign(point_weights,
                       point_weights + static_cast<std::size_t>(virtual_channels) * k_);
    // An int16 lane holds this many products |w·x| <= max_abs·255 without overflow.
    dw_chunk_ = std::max(1, 32767 / (max_abs * 255));
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
    case Isa::Scalar:
      tile_rows_ = 4, block_ = 8;
      break;
  }
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
    if (isa_ == Isa::Avx512Vnni && vector_stride) return name + "32x_avx512";
    if (isa_ == Isa::Avx2 && vector_stride) return name + "16x_avx2";
    return name + "scalar";
  }
  switch (isa_) {
    case Isa::Avx512Vnni:
      return "gemm_u8s8_8x32c4_avx512vnni";
    case Isa::Avx2:
      return split_nibbles_ ? "gemm_u8s8_4x16c4_split_avx2" : "gemm_u8s8_4x16c4_avx2";
    case Isa::Scalar:
      break;
  }
  return "gemm_u8s8_4x8c4_scalar";
}

void PackedConv::run(const std::uint8_t* input, std::uint8_t* output, std::int32_t* head,
                     ThreadPool& pool) const {
  if (depthwise_)
    run_depthwise(input, output, head, pool);
  else
    run_gemm(input, output, head, pool);
}

namespace {

void epilogue(Isa isa, const PackedConv::Epilogue& e, int oc, const std::int32_t* acc,
              std::size_t acc_stride, int n, std::uint8_t* out, std::int32_t* head) {
#ifdef MPDET_CPU_X86
  if (isa == Isa::Avx512Vnni) return epilogue_avx512(e, oc, acc, acc_stride, n, out, head);
#else
  (void)isa;
#endif
  epilogue_scalar(e, oc, acc, acc_stride, n, out, head);
}

struct PackGeometry {
  const std::uint8_t* input;  // first channel of the group
  int channels, in_h, in_w, out_w, kernel, stride, pad, zero_point, k, k4, block;
};

// Packs output pixels [p0, p0 + valid) of one group as [k4][block][4]: element (k, j) is the
// input under tap k (channel, ky, kx) of pixel p0 + j; padding taps hold the zero point.
void pack_block(const PackGeometry& g, int p0, int valid, std::uint8_t* b) {
  const std::size_t in_plane = static_cast<std::size_t>(g.in_h) * g.in_w;
  const std::size_t kstride = static_cast<std::size_t>(g.block) * 4;
  int k_done = 0;
#if defined(__SSE2__)
  // 1×1, stride 1: interleave four channel rows, 16 pixels at a time.
  if (g.kernel == 1 && g.stride == 1 && g.pad == 0 && valid == g.block && g.block % 16 == 0) {
    for (; k_done + 4 <= g.k; k_done += 4) {
      const std::uint8_t* r = g.input + k_done * in_plane + p0;
      std::uint8_t* dst = b + (k_done / 4) * kstride;
      for (int j = 0; j < g.block; j += 16) {
        const __m128i c0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + j));
        const __m128i c1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + in_plane + j));
        const __m128i c2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * in_plane + j));
        const __m128i c3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 3 * in_plane + j));
        const __m128i lo01 = _mm_unpacklo_epi8(c0, c1), hi01 = _mm_unpackhi_epi8(c0, c1);
        const __m128i lo23 = _mm_unpacklo_epi8(c2, c3), hi23 = _mm_unpackhi_epi8(c2, c3);
        __m128i* d = reinterpret_cast<__m128i*>(dst + j * 4);
        _mm_storeu_si128(d + 0, _mm_unpacklo_epi16(lo01, lo23));
        _mm_storeu_si128(d + 1, _mm_unpackhi_epi16(lo01, lo23));
        _mm_storeu_si128(d + 2, _mm_unpacklo_epi16(hi01, hi23));
        _mm_storeu_si128(d + 3, _mm_unpackhi_epi16(hi01, hi23));
      }
    }
  }
#endif
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
  pool.parallel_for(p_.groups * blocks, [&](int task, int) {
    const int g = task / blocks, blk = task % blocks;
    const int p0 = blk * block_, valid = std::min(block_, out_plane - p0);
    std::uint8_t* b = scratch(tls_bytes, row_bytes * block_);
    std::int32_t* acc = scratch(tls_acc, static_cast<std::size_t>(padded_rows_) * block_);
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
                                block_};
    pack_block(geometry, p0, valid, b);
    const int v_begin = epi_.first_virtual[g * out_per_group];
    const int rows = epi_.first_virtual[(g + 1) * out_per_group] - v_begin;
    const std::int8_t* a = packed_.data() + static_cast<std::size_t>(g) * padded_rows_ * row_bytes;
    for (int r = 0; r < rows; r += tile_rows_) {
      const std::int8_t* ar = a + r * row_bytes;
      std::int32_t* c = acc + static_cast<std::size_t>(r) * block_;
      switch (isa_) {
#ifdef MPDET_CPU_X86
        case Isa::Avx512Vnni:
          gemm_u8s8_8x32c4_avx512vnni(k4_, ar, row_bytes, b, c, block_);
          break;
        case Isa::Avx2:
          if (split_nibbles_)
            gemm_u8s8_4x16c4_split_avx2(k4_, ar, packed_low_.data() + (ar - packed_.data()),
                                        row_bytes, b, c, block_);
          else
            gemm_u8s8_4x16c4_avx2(k4_, ar, row_bytes, b, c, block_);
          break;
#endif
        default:
          gemm_u8s8_4x8c4_scalar(k4_, ar, row_bytes, b, c, block_);
          break;
      }
    }
    for (int oc = g * out_per_group; oc < (g + 1) * out_per_group; ++oc) {
      const std::size_t offset = static_cast<std::size_t>(oc) * out_plane + p0;
      epilogue(isa_, epi_, oc, acc + (epi_.first_virtual[oc] - v_begin) * block_, block_, valid,
               output + offset, head ? head + offset : nullptr);
    }
  });
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
    // The padded copy of input channel g (rebuilt per channel: cheap next to the taps).
    std::memset(plane, in_zero_point_, plane_bytes + slack);
    const std::uint8_t* src = input + g * in_plane;
    for (int y = 0; y < in_.height; ++y)
      std::memcpy(plane + static_cast<std::size_t>(y + p_.pad) * pitch + p_.pad,
                  src + static_cast<std::size_t>(y) * in_.width, in_.width);
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
#else
        (void)vector_stride;
#endif
        dwconv_row_u8s8_scalar(plane, pitch, oy, p_.stride, p_.kernel, w, dw_chunk_, out_.width,
                               row);
      }
    }
    const std::size_t offset = static_cast<std::size_t>(oc) * out_plane;
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
