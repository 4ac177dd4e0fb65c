// Quantized convolution for the CPU backend: uint8 activations × signed low-bit weight codes
// (2/3/4/8 bits, stored one per int8) with the multipoint epilogue of ops/integer_arithmetic.h
// fused, bit-exact with ops::integer_reference::conv2d_multipoint.
//
// Three algorithms:
//  - GEMM (dense and grouped convolutions): per group, [virtual channels × K] · [K × pixels] with
//    K = in/groups · k · k. A block of output pixels is packed (im2col; a plain channel
//    interleave for 1×1) into [K/4][block][4] bytes, the layout of the 4-way byte dot products
//    (vpdpbusd, vpmaddubsw). Padding taps are packed as the input zero point, so every tap is
//    Σ w·x and the zero point comes out once per virtual channel: acc = Σ w·x − z_x·Σ w.
//    A task is a panel of up to 512 pixels (several blocks): the microkernels write their
//    columns of one [rows][panel] accumulator (c_stride = panel width), then the epilogue runs
//    once per output channel over the panel.
//  - depthwise (one input channel per group): over a zero-point-padded copy of the input plane;
//    on AVX-512 VBMI fused with the epilogue (vpermb gathers four taps per output into a dword,
//    vpdpbusd), elsewhere per output row with every tap a vector multiply-add.
//  - direct (AVX-512 VBMI, dense with at most 4 input channels, e.g. the first 3×3 /2 layer):
//    like the fused depthwise kernel, with the gathered taps shared by every output channel.
// Kernel names say operation, data types, tile and ISA (the XNNPACK convention), e.g.
// "gemm_u8s8_8x32c4_avx512vnni"; PackedConv::kernel_name() reports the one a layer uses.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cpu/thread_pool.h"
#include "ops/integer_arithmetic.h"

#if defined(__x86_64__) || defined(__i386__)
#define MPDET_CPU_X86 1
#endif
#if defined(__aarch64__)
#define MPDET_CPU_ARM 1
#endif

namespace mpdet::cpu {

// NeonV8: ARMv8.0 Advanced SIMD (every AArch64 core); NeonDotprod: plus SDOT (ARMv8.2 DotProd).
enum class Isa { Scalar, Avx2, Avx512Vnni, NeonV8, NeonDotprod };

const char* to_string(Isa isa);
bool isa_supported(Isa isa);  // by the running CPU (Scalar always)
Isa best_isa();

// The NEON kernels need signed activations and accumulate Σ w·(x − 128) (x XOR 0x80); a layer
// packed for them stores the zero sums (z_x − offset)·Σ w, so the epilogue is unchanged.
constexpr int kernel_activation_offset(Isa isa) {
  return isa == Isa::NeonV8 || isa == Isa::NeonDotprod ? 128 : 0;
}

// One convolution layer with its weights packed once for `isa`.
class PackedConv {
 public:
  PackedConv(const ops::Shape& in, ops::QuantParams in_q, const ops::ConvParams& p,
             const std::int8_t* point_weights, std::span<const int> points,
             const ops::Requantization& requant, ops::Activation activation, const ops::Shape& out,
             ops::QuantParams out_q, Isa isa);

  // output: out shape codes; head (optional): head codes as in the reference.
  void run(const std::uint8_t* input, std::uint8_t* output, std::int32_t* head,
           ThreadPool& pool) const;

  std::string kernel_name() const;

  // Epilogue data, public for the kernel implementations.
  struct Epilogue {
    std::vector<std::int64_t> multipliers;  // per virtual channel (|M| < 2^31)
    std::vector<std::int32_t> zero_sums;    // per virtual channel: z_x · Σ w
    std::vector<std::int64_t> bias;         // per output channel
    std::vector<int> first_virtual;         // per output channel, and one past the end
    int shift = 0;
    ops::Activation activation = ops::Activation::Linear;
    int out_zero_point = 0;
    // An upper bound of |t| over the layer (exact accumulator bounds 255·Σ|w|), or < 0 when
    // unknown; lets the x86 epilogue pre-scale t by 2^(33 − S) for small shifts.
    double t_bound = -1;
    // x86 AVX-512: every output channel's epilogue constants, built once at packing by
    // prepare_epilogue_avx512 (opaque 64-byte lines, prepared_lines per channel); when empty the
    // kernels build them per call.
    struct alignas(64) Line {
      std::int64_t v[8];
    };
    std::vector<Line> prepared;
    std::size_t prepared_lines = 0;
  };

 private:
  void run_gemm(const std::uint8_t* input, std::uint8_t* output, std::int32_t* head,
                ThreadPool& pool) const;
  void run_depthwise(const std::uint8_t* input, std::uint8_t* output, std::int32_t* head,
                     ThreadPool& pool) const;

  ops::Shape in_, out_;
  ops::ConvParams p_;
  int in_zero_point_ = 0;
  Isa isa_;
  bool depthwise_ = false;
  Epilogue epi_;
  // GEMM: per group, weights [rows padded to the tile][k4 · 4] (and, for the AVX2 path of
  // layers with |w| > 64, the high and low nibbles as two such matrices).
  int k_ = 0, k4_ = 0, rows_per_group_ = 0, padded_rows_ = 0, block_ = 0, tile_rows_ = 0;
  bool split_nibbles_ = false;
  std::vector<std::int8_t> packed_, packed_low_;
  // Depthwise: the codes as given ([V][k][k]) and how many int16 products may be summed.
  std::vector<std::int8_t> dw_weights_;
  int dw_chunk_ = 1;
  // x86 fused depthwise (AVX-512 VBMI): weights as [V][k][ceil(k/4)] dwords of four taps.
  bool dw_fused_ = false;
  std::vector<std::int32_t> dw_packed_;
  // Its flattened form for small planes (dwconv_flat_u8s8_16x_avx512vbmi), empty when unused.
  std::vector<std::uint8_t> dw_gather_;
  std::vector<std::int32_t> dw_base_;
  // x86 direct dense convolution for few input channels (AVX-512 VBMI), weights as above.
  bool direct_ = false;
  void run_direct(const std::uint8_t* input, std::uint8_t* output, ThreadPool& pool) const;
  // NeonV8 GEMM with weights of at most 4 bits: k4 steps summed in int16 lanes (0: 8-bit kernel).
  int acc16_chunk_ = 0;
};

// Shared epilogue over raw accumulators acc[v][i] (row stride `acc_stride`) of one output
// channel's virtual channels: writes n output codes (and head codes when head != nullptr).
void epilogue_scalar(const PackedConv::Epilogue& e, int oc, const std::int32_t* acc,
                     std::size_t acc_stride, int n, std::uint8_t* out, std::int32_t* head);
#ifdef MPDET_CPU_X86
void epilogue_avx512(const PackedConv::Epilogue& e, int oc, const std::int32_t* acc,
                     std::size_t acc_stride, int n, std::uint8_t* out, std::int32_t* head);
// Fills e.prepared (needs AVX-512 as epilogue_avx512); the other fields must be final.
void prepare_epilogue_avx512(PackedConv::Epilogue& e);
// Eight exact floor(t / 10) (the leaky slope), exposed for tests.
void floor_div10_avx512(const std::int64_t* t, std::int64_t* q);

// Elementwise ops of ops::integer_reference (add, concat's requantize) eight codes at a time;
// multipliers must satisfy |M| < 2^31 (choose_shift guarantees it).
void add_u8_avx512(const std::uint8_t* a, int a_zero, std::int64_t a_multiplier,
                   const std::uint8_t* b, int b_zero, std::int64_t b_multiplier, std::size_t n,
                   int shift, ops::Activation activation, int out_zero, std::uint8_t* out);
void requantize_u8_avx512(const std::uint8_t* in, int in_zero, std::int64_t multiplier,
                          std::size_t n, int shift, int out_zero, std::uint8_t* out);
// ops::quantize_input (network input codes), sixteen values at a time.
void quantize_input_avx512(const float* in, std::size_t n, float inv_scale, int zero_point,
                           std::uint8_t* out);
#endif

#ifdef MPDET_CPU_ARM
void epilogue_neon(const PackedConv::Epilogue& e, int oc, const std::int32_t* acc,
                   std::size_t acc_stride, int n, std::uint8_t* out, std::int32_t* head);
// Two exact floor(t / 10), exposed for tests.
void floor_div10_neon(const std::int64_t* t, std::int64_t* q);
// Elementwise add and requantize as ops::integer_reference, eight codes at a time (|M| < 2^31).
void add_u8_neon(const std::uint8_t* a, int a_zero, std::int64_t a_multiplier,
                 const std::uint8_t* b, int b_zero, std::int64_t b_multiplier, std::size_t n,
                 int shift, ops::Activation activation, int out_zero, std::uint8_t* out);
void requantize_u8_neon(const std::uint8_t* in, int in_zero, std::int64_t multiplier, std::size_t n,
                        int shift, int out_zero, std::uint8_t* out);
#endif

// GEMM microkernels: c[m][j] = Σ_k a[m][k] · b[k][j] for m < tile rows, j < block, with
// a: rows of k4·4 int8 (stride a_stride), b: [k4][block][4] uint8, c: row stride c_stride.
void gemm_u8s8_4x8c4_scalar(int k4, const std::int8_t* a, std::size_t a_stride,
                            const std::uint8_t* b, std::int32_t* c, std::size_t c_stride);
#ifdef MPDET_CPU_X86
void gemm_u8s8_4x16c4_avx2(int k4, const std::int8_t* a, std::size_t a_stride,
                           const std::uint8_t* b, std::int32_t* c, std::size_t c_stride);
// 8-bit weights: a holds the high nibbles (w >> 4), a_low the low ones (w & 15).
void gemm_u8s8_4x16c4_split_avx2(int k4, const std::int8_t* a, const std::int8_t* a_low,
                                 std::size_t a_stride, const std::uint8_t* b, std::int32_t* c,
                                 std::size_t c_stride);
void gemm_u8s8_8x32c4_avx512vnni(int k4, const std::int8_t* a, std::size_t a_stride,
                                 const std::uint8_t* b, std::int32_t* c, std::size_t c_stride);
// The GEMM's 1×1 packing for AVX-512 layers: for each of `groups` groups of four channel rows
// (in_plane bytes apart, from `input`), pixels [0, n) (n a multiple of 16) interleaved into
// b + group·kstride as [n][4].
void interleave4_u8_avx512(const std::uint8_t* input, std::size_t in_plane, int groups, int n,
                           std::uint8_t* b, std::size_t kstride);
#endif
#ifdef MPDET_CPU_ARM
// NEON GEMMs compute c[m][j] = Σ_k a[m][k] · (b[k][j] − 128) (see kernel_activation_offset).
// ARMv8.0, any weights (int16 pairs of products widened by SADALP).
void gemm_u8s8_4x8c4_neon(int k4, const std::int8_t* a, std::size_t a_stride, const std::uint8_t* b,
                          std::int32_t* c, std::size_t c_stride);
// ARMv8.0, weights of at most 4 bits: `chunk` k4 steps accumulate in int16 lanes before
// widening; requires 2·chunk·128·max|w| <= 32767.
void gemm_u8s8_4x8c4_acc16_neon(int k4, const std::int8_t* a, std::size_t a_stride,
                                const std::uint8_t* b, std::int32_t* c, std::size_t c_stride,
                                int chunk);
// ARMv8.2 dot product (SDOT).
void gemm_u8s8_4x16c4_neondot(int k4, const std::int8_t* a, std::size_t a_stride,
                              const std::uint8_t* b, std::int32_t* c, std::size_t c_stride);
#endif

// Depthwise rows: acc[ox] = Σ_{ky,kx} w[ky·k+kx] · plane[(oy·stride+ky)·pitch + ox·stride + kx]
// for ox < width; `chunk` int16 products may be summed before widening. The plane must allow
// reads 64·stride bytes past the last used one.
void dwconv_row_u8s8_scalar(const std::uint8_t* plane, int pitch, int oy, int stride, int kernel,
                            const std::int8_t* w, int chunk, int width, std::int32_t* acc);
#ifdef MPDET_CPU_X86
void dwconv_row_u8s8_16x_avx2(const std::uint8_t* plane, int pitch, int oy, int stride, int kernel,
                              const std::int8_t* w, int chunk, int width, std::int32_t* acc);
void dwconv_row_u8s8_32x_avx512(const std::uint8_t* plane, int pitch, int oy, int stride,
                                int kernel, const std::int8_t* w, int chunk, int width,
                                std::int32_t* acc);
// Whole depthwise output channel `oc` with its epilogue fused (no head codes): w holds, per
// virtual channel and kernel row, ceil(kernel/4) dwords of four taps (zero past the kernel).
// Needs AVX-512 VBMI, at most 4 points, kernel <= 8 and 15·stride + 4·ceil(kernel/4) <= 64; the
// plane must allow 64-byte reads from any tap.
bool avx512vbmi_supported();
// The zero-point-padded copy of an h×w plane: (h + 2·pad) rows of w + 2·pad bytes, then the
// rest of `bytes` filled with the zero point too. Needs AVX-512 BW.
void pad_plane_avx512(const std::uint8_t* src, int h, int w, int pad, int zero_point,
                      std::uint8_t* dst, std::size_t bytes);
// Dense convolution (groups 1) with at most 4 input channels and kernel <= 4, output rows
// [oy0, oy1) of every output channel, epilogue fused (no head codes): `planes` holds the
// zero-point-padded input channels plane_stride bytes apart; w: [V][in][kernel] dwords of the
// taps (ky, 0..3) (zero past the kernel). Needs 15·stride + 4 <= 64 and at most 4 points.
void conv_direct_u8s8_16x_avx512vbmi(const std::uint8_t* planes, std::size_t plane_stride,
                                     int channels, int pitch, int stride, int kernel,
                                     const std::int32_t* w, const PackedConv::Epilogue& e, int oy0,
                                     int oy1, int out_h, int out_w, std::uint8_t* out);
void dwconv_u8s8_16x_avx512vbmi(const std::uint8_t* plane, int pitch, int stride, int kernel,
                                const std::int32_t* w, const PackedConv::Epilogue& e, int oc,
                                int out_h, int out_w, std::uint8_t* out);
// The same over the flattened output plane (small planes whose rows waste lanes; kernel 1, 3, 5
// or 7): block b of sixteen outputs reads kernel row ky at plane + base[b] + ky·pitch and gathers
// group g of its taps with the 64 byte indices at gather + (b·ceil(kernel/4) + g)·64.
void dwconv_flat_u8s8_16x_avx512vbmi(const std::uint8_t* plane, int pitch, int kernel,
                                     const std::int32_t* w, const std::uint8_t* gather,
                                     const std::int32_t* base, const PackedConv::Epilogue& e,
                                     int oc, int out_plane, std::uint8_t* out);
#endif
#ifdef MPDET_CPU_ARM
// Σ w·(plane − 128) (see kernel_activation_offset), every stride (vectors for 1 and 2).
void dwconv_row_u8s8_16x_neon(const std::uint8_t* plane, int pitch, int oy, int stride, int kernel,
                              const std::int8_t* w, int chunk, int width, std::int32_t* acc);
#endif

}  // namespace mpdet::cpu
