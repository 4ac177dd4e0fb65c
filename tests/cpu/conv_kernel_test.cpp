// Every CPU convolution kernel against ops::integer_reference::conv2d_multipoint on random
// quantized layers: exact equality of the uint8 codes and of the head int32 codes, for every ISA
// path the machine supports (forced) plus the scalar fallback, with 1, 2 and 3 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "cpu/conv_kernels.h"
#include "ops/integer_reference_ops.h"

namespace {

using namespace mpdet;
using cpu::Isa;

struct ConvCase {
  int in_c = 1, height = 1, width = 1, out_c = 1, kernel = 1, stride = 1, groups = 1;
  int bits = 4, max_points = 1;
  ops::Activation activation = ops::Activation::Linear;
  bool head = false;
  // Worst case for saturating kernels: every weight ±max and every input 255 (or 0).
  bool extreme = false;

  std::string describe() const {
    return std::to_string(in_c) + "x" + std::to_string(height) + "x" + std::to_string(width) +
           " -> " + std::to_string(out_c) + " k" + std::to_string(kernel) + " s" +
           std::to_string(stride) + " g" + std::to_string(groups) + " w" + std::to_string(bits) +
           " p<=" + std::to_string(max_points) + " act" +
           std::to_string(static_cast<int>(activation)) + (head ? " head" : "") +
           (extreme ? " extreme" : "");
  }
};

std::vector<Isa> isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni, Isa::NeonV8, Isa::NeonDotprod})
    if (cpu::isa_supported(isa)) out.push_back(isa);
  return out;
}

struct Layer {
  ops::Shape in, out;
  ops::QuantParams in_q, out_q;
  ops::ConvParams p;
  std::vector<std::uint8_t> input;
  std::vector<std::int8_t> weights;
  std::vector<int> points;
  ops::Requantization requant;
};

Layer make_layer(const ConvCase& c, std::mt19937& rng) {
  Layer l;
  l.in = {c.in_c, c.height, c.width};
  l.p = {c.out_c, c.kernel, c.stride, c.kernel / 2, c.groups};
  l.out = {c.out_c, ops::conv_output_size(c.height, l.p), ops::conv_output_size(c.width, l.p)};
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto real = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  const int qmax = (1 << (c.bits - 1)) - 1;
  const int k = c.in_c / c.groups * c.kernel * c.kernel;
  int virtual_channels = 0;
  for (int oc = 0; oc < c.out_c; ++oc) {
    l.points.push_back(uniform(1, c.max_points));
    virtual_channels += l.points.back();
  }
  l.in_q = {static_cast<float>(real(0.005, 0.05)),
            c.extreme ? uniform(0, 1) * 255 : uniform(0, 255)};
  l.input.resize(l.in.elements());
  for (auto& x : l.input)
    x = static_cast<std::uint8_t>(c.extreme ? 255 - l.in_q.zero_point : uniform(0, 255));
  l.weights.resize(static_cast<std::size_t>(virtual_channels) * k);
  std::vector<float> scales(virtual_channels);
  for (int v = 0; v < virtual_channels; ++v) {
    for (int i = 0; i < k; ++i)
      l.weights[static_cast<std::size_t>(v) * k + i] = static_cast<std::int8_t>(
          c.extreme ? (uniform(0, 1) ? qmax : -qmax) : uniform(-qmax, qmax));
    scales[v] = static_cast<float>(real(0.2, 1.0) / qmax / std::sqrt(double(k)));
  }
  std::vector<float> bias(c.out_c);
  for (float& b : bias) b = static_cast<float>(real(-1.0, 1.0));
  // Output scale about the spread of the real outputs, so codes use the range without mostly
  // saturating (checked below); the extreme case saturates on purpose.
  const double spread = 0.6 * 74.0 * l.in_q.scale * c.max_points;
  l.out_q = {static_cast<float>(spread * 6.0 / 255.0 * real(0.5, 2.0)), uniform(40, 215)};
  l.requant = ops::conv_requantization(scales, l.weights, l.points, bias, l.in_q, l.out_q);
  return l;
}

void check_case(const ConvCase& c, unsigned seed) {
  SCOPED_TRACE(c.describe() + " seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const Layer l = make_layer(c, rng);
  std::vector<std::uint8_t> expected(l.out.elements());
  std::vector<std::int32_t> expected_head(l.out.elements());
  ops::integer_reference::conv2d_multipoint(
      l.input.data(), l.in, l.in_q, l.weights.data(), l.points, l.requant, l.p, c.activation,
      expected.data(), l.out, l.out_q, c.head ? expected_head.data() : nullptr);
  if (!c.extreme && l.out.elements() >= 16) {
    // The comparison is only meaningful if the codes are not all clamped.
    const auto inside = std::count_if(expected.begin(), expected.end(),
                                      [](std::uint8_t q) { return q != 0 && q != 255; });
    EXPECT_GT(inside, static_cast<long>(expected.size() / 4));
  }
  for (Isa isa : isas()) {
    const cpu::PackedConv conv(l.in, l.in_q, l.p, l.weights.data(), l.points, l.requant,
                               c.activation, l.out, l.out_q, isa);
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(conv.kernel_name() + " threads " + std::to_string(threads));
      cpu::ThreadPool pool(threads);
      std::vector<std::uint8_t> got(l.out.elements(), 77);
      std::vector<std::int32_t> head(l.out.elements(), 77);
      conv.run(l.input.data(), got.data(), c.head ? head.data() : nullptr, pool);
      ASSERT_EQ(got, expected);
      if (c.head) {
        ASSERT_EQ(head, expected_head);
      }
    }
  }
}

const int kBits[] = {2, 3, 4, 8};
const ops::Activation kActivations[] = {ops::Activation::Linear, ops::Activation::Leaky,
                                        ops::Activation::Relu};

TEST(CpuConvKernels, PointwiseChannelAndSpatialRemainders) {
  unsigned seed = 1;
  for (int in_c : {1, 3, 7, 17, 33, 65})
    for (int out_c : {1, 5, 17, 33})
      for (auto [h, w] : {std::pair{1, 1}, {5, 7}, {13, 13}}) {
        ConvCase c;
        c.in_c = in_c, c.out_c = out_c, c.height = h, c.width = w;
        c.bits = kBits[seed % 4];
        c.max_points = 1 + seed % 4;
        c.activation = kActivations[seed % 3];
        c.head = seed % 2 == 0;
        check_case(c, seed++);
      }
}

TEST(CpuConvKernels, DenseKxK) {
  unsigned seed = 100;
  for (int kernel : {1, 3, 5})
    for (int stride : {1, 2})
      for (int in_c : {3, 8, 17})
        for (int bits : {2, 3, 4, 8}) {
          ConvCase c;
          c.in_c = in_c, c.out_c = 9 + seed % 11, c.height = 13, c.width = 11;
          c.kernel = kernel, c.stride = stride, c.bits = bits;
          c.max_points = 1 + seed % 4;
          c.activation = kActivations[seed % 3];
          c.head = seed % 3 == 0;
          check_case(c, seed++);
        }
}

TEST(CpuConvKernels, Depthwise) {
  unsigned seed = 200;
  for (int kernel : {3, 5})
    for (int stride : {1, 2})
      for (int channels : {1, 7, 33})
        for (int multiplier : {1, 2})
          for (auto [h, w] : {std::pair{1, 1}, {5, 7}, {13, 13}, {9, 70}}) {
            ConvCase c;
            c.in_c = channels, c.groups = channels, c.out_c = channels * multiplier;
            c.height = h, c.width = w, c.kernel = kernel, c.stride = stride;
            c.bits = kBits[seed % 4];
            c.max_points = 1 + seed % 4;
            c.activation = kActivations[seed % 3];
            c.head = seed % 2 == 1;
            check_case(c, seed++);
          }
}

// Small planes (the flattened fused depthwise kernel, blocks of sixteen outputs crossing rows)
// and the sizes around its limits: 1×1 to 7×7 kernels, both strides, every point count.
TEST(CpuConvKernels, DepthwiseSmallPlanes) {
  unsigned seed = 250;
  for (int kernel : {1, 3, 5, 7})
    for (int stride : {1, 2})
      for (auto [h, w] : {std::pair{10, 10}, {5, 5}, {20, 20}, {40, 40}, {3, 17}, {11, 6}, {2, 1}})
        for (int points : {1, 4}) {
          ConvCase c;
          c.in_c = 19, c.groups = 19, c.out_c = 19 * (1 + seed % 2);
          c.height = h, c.width = w, c.kernel = kernel, c.stride = stride;
          c.bits = kBits[seed % 4];
          c.max_points = points;
          c.activation = kActivations[seed % 3];
          c.head = seed % 5 == 0;
          check_case(c, seed++);
        }
#ifdef MPDET_CPU_X86
  if (cpu::isa_supported(Isa::Avx512Vnni) && cpu::avx512vbmi_supported()) {
    std::mt19937 rng(1);
    ConvCase c;
    c.in_c = c.groups = c.out_c = 8, c.height = c.width = 10, c.kernel = 3;
    const Layer l = make_layer(c, rng);
    const cpu::PackedConv conv(l.in, l.in_q, l.p, l.weights.data(), l.points, l.requant,
                               c.activation, l.out, l.out_q, Isa::Avx512Vnni);
    EXPECT_EQ(conv.kernel_name(), "dwconv3x3s1_u8s8_16x_flat_avx512vbmi");
  }
#endif
}

TEST(CpuConvKernels, Grouped) {
  unsigned seed = 300;
  for (int groups : {2, 4})
    for (int kernel : {1, 3})
      for (int bits : {3, 4, 8}) {
        ConvCase c;
        c.in_c = 4 * groups + (seed % 2) * groups, c.groups = groups, c.out_c = 3 * groups;
        c.height = 9, c.width = 6, c.kernel = kernel, c.stride = 1 + seed % 2, c.bits = bits;
        c.max_points = 4;
        c.activation = kActivations[seed % 3];
        c.head = true;
        check_case(c, seed++);
      }
}

// Many output pixels (many blocks and tasks per thread) and wide rows for the depthwise vectors.
TEST(CpuConvKernels, LargerPlanes) {
  ConvCase pointwise;
  pointwise.in_c = 48, pointwise.out_c = 40, pointwise.height = 41, pointwise.width = 39;
  pointwise.max_points = 3, pointwise.activation = ops::Activation::Leaky;
  check_case(pointwise, 400);
  ConvCase depthwise = pointwise;
  depthwise.groups = 48, depthwise.out_c = 48, depthwise.kernel = 3, depthwise.height = 80;
  depthwise.width = 80;
  check_case(depthwise, 401);
  depthwise.stride = 2, depthwise.kernel = 5, depthwise.bits = 8;
  check_case(depthwise, 402);
  // The direct kernel (few input channels) over rows wider than one 64-byte vector.
  ConvCase first;
  first.in_c = 3, first.out_c = 16, first.height = 67, first.width = 70, first.kernel = 3;
  first.stride = 2, first.bits = 8, first.max_points = 2;
  first.activation = ops::Activation::Leaky;
  check_case(first, 403);
  first.in_c = 4, first.kernel = 1, first.stride = 1, first.width = 131, first.bits = 4;
  check_case(first, 404);
}

// All weights ±max over inputs at max distance from the zero point: vpmaddubsw would saturate on
// 8-bit weights, int16 depthwise sums would overflow with a wrong chunk bound.
TEST(CpuConvKernels, ExtremeAccumulators) {
  unsigned seed = 500;
  for (int bits : {2, 4, 8})
    for (int groups : {1, 64}) {
      ConvCase c;
      c.in_c = 64, c.groups = groups, c.out_c = 64, c.height = 7, c.width = 9;
      c.kernel = groups == 1 ? 3 : 5, c.bits = bits, c.max_points = 2, c.extreme = true;
      c.head = true;
      check_case(c, seed++);
    }
}

TEST(CpuConvKernels, RandomShapes) {
  std::mt19937 rng(7);
  auto pick = [&](std::initializer_list<int> values) {
    return *(values.begin() +
             std::uniform_int_distribution<std::size_t>(0, values.size() - 1)(rng));
  };
  for (unsigned seed = 1000; seed < 1150; ++seed) {
    ConvCase c;
    c.kernel = pick({1, 1, 3, 5});
    c.stride = pick({1, 2});
    const int kind = pick({0, 1, 2});  // dense, depthwise, grouped
    c.in_c = pick({1, 2, 3, 7, 16, 17, 33});
    c.groups = kind == 1 ? c.in_c : kind == 2 && c.in_c % 2 == 0 ? 2 : 1;
    c.out_c = c.groups * pick({1, 2, 3, 5});
    c.height = pick({1, 2, 5, 13, 20});
    c.width = pick({1, 3, 7, 13, 33});
    c.bits = pick({2, 3, 4, 8});
    c.max_points = pick({1, 2, 3, 4});
    c.activation = kActivations[pick({0, 1, 2})];
    c.head = pick({0, 1}) == 1;
    check_case(c, seed);
  }
}

TEST(CpuConvKernels, NamesSayTypesTileAndIsa) {
  std::mt19937 rng(1);
  ConvCase c;
  c.in_c = 8, c.out_c = 8, c.height = 4, c.width = 4;
  const Layer dense = make_layer(c, rng);
  c.groups = 8, c.kernel = 3;
  const Layer depthwise = make_layer(c, rng);
  for (Isa isa : isas()) {
    const cpu::PackedConv a(dense.in, dense.in_q, dense.p, dense.weights.data(), dense.points,
                            dense.requant, c.activation, dense.out, dense.out_q, isa);
    const cpu::PackedConv b(depthwise.in, depthwise.in_q, depthwise.p, depthwise.weights.data(),
                            depthwise.points, depthwise.requant, c.activation, depthwise.out,
                            depthwise.out_q, isa);
    // Depthwise has no dot-product variant: NeonDotprod runs the ARMv8.0 rows.
    const std::string suffix = isa == Isa::Avx512Vnni    ? "avx512"
                               : isa == Isa::NeonDotprod ? "neon"
                                                         : cpu::to_string(isa);
    EXPECT_EQ(a.kernel_name().rfind("gemm_u8s8_", 0), 0u) << a.kernel_name();
    EXPECT_NE(a.kernel_name().find(cpu::to_string(isa)), std::string::npos) << a.kernel_name();
    EXPECT_EQ(b.kernel_name().rfind("dwconv3x3s1_u8s8_", 0), 0u) << b.kernel_name();
    EXPECT_NE(b.kernel_name().find(suffix), std::string::npos) << b.kernel_name();
  }
  EXPECT_TRUE(cpu::isa_supported(Isa::Scalar));
}

// The ISAs the tests above ran. MPDET_EXPECT_CPU_ISAS (e.g. "scalar,neon,neondot", set per qemu
// CPU model by scripts/run_arm_tests.sh) makes sure detection found every path to be covered.
TEST(CpuConvKernels, DetectsExpectedIsas) {
  std::string names;
  for (Isa isa : isas()) {
    if (!names.empty()) names += ',';
    names += cpu::to_string(isa);
  }
  RecordProperty("isas", names);
  if (const char* want = std::getenv("MPDET_EXPECT_CPU_ISAS")) {
    EXPECT_EQ(names, want);
  }
}

// MPDET_CPU_ISA caps best_isa() at the named path.
TEST(CpuConvKernels, IsaCapFromEnvironment) {
  const char* old = std::getenv("MPDET_CPU_ISA");
  const std::string saved = old ? old : "";
  for (Isa isa : isas()) {
    ::setenv("MPDET_CPU_ISA", cpu::to_string(isa), 1);
    EXPECT_EQ(cpu::best_isa(), isa) << cpu::to_string(isa);
  }
  if (old)
    ::setenv("MPDET_CPU_ISA", saved.c_str(), 1);
  else
    ::unsetenv("MPDET_CPU_ISA");
}

}  // namespace

namespace {

// The fused epilogue alone at the contract's extremes (|M| near 2^31, shifts 0..40, t far beyond
// 2^53 where a double estimate of floor(t / 10) is off), every SIMD epilogue vs the scalar one,
// which is checked against the formula of ops/integer_arithmetic.h here too.
TEST(CpuConvKernels, EpilogueExtremes) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 400; ++round) {
    mpdet::cpu::PackedConv::Epilogue e;
    const int nv = 1 + static_cast<int>(rng() % 4), n = 1 + static_cast<int>(rng() % 37);
    e.first_virtual = {0, nv};
    e.shift = static_cast<int>(rng() % 41);
    e.activation = kActivations[rng() % 3];
    e.out_zero_point = static_cast<int>(rng() % 256);
    e.bias = {static_cast<std::int64_t>(rng() % (1ull << 61)) - (std::int64_t{1} << 60)};
    std::vector<std::int32_t> acc(static_cast<std::size_t>(nv) * n);
    for (int j = 0; j < nv; ++j) {
      const int magnitude_bits = 1 + static_cast<int>(rng() % 31);
      e.multipliers.push_back(static_cast<std::int64_t>(rng() % (1ull << magnitude_bits)) *
                              (rng() % 2 ? 1 : -1));
      e.zero_sums.push_back(static_cast<std::int32_t>(rng() % 200000) - 100000);
      for (int i = 0; i < n; ++i)
        acc[j * n + i] = static_cast<std::int32_t>(rng() % (1u << 26)) - (1 << 25);
    }
    std::vector<std::uint8_t> want(n), got(n);
    std::vector<std::int32_t> want_head(n), got_head(n);
    mpdet::cpu::epilogue_scalar(e, 0, acc.data(), n, n, want.data(), want_head.data());
    for (int i = 0; i < n; ++i) {
      std::int64_t t = e.bias[0];
      for (int j = 0; j < nv; ++j)
        t += std::int64_t{acc[j * n + i] - e.zero_sums[j]} * e.multipliers[j];
      t = ops::activate_fixed(t, e.activation);
      ASSERT_EQ(want[i], ops::saturate_u8(e.out_zero_point + ops::round_shift(t, e.shift)));
      ASSERT_EQ(want_head[i], ops::head_code(t, e.shift));
    }
#ifdef MPDET_CPU_X86
    if (mpdet::cpu::isa_supported(Isa::Avx512Vnni)) {
      mpdet::cpu::epilogue_avx512(e, 0, acc.data(), n, n, got.data(), got_head.data());
      ASSERT_EQ(got, want) << "round " << round;
      ASSERT_EQ(got_head, want_head) << "round " << round;
      std::fill(got.begin(), got.end(), 77);
      mpdet::cpu::epilogue_avx512(e, 0, acc.data(), n, n, got.data(), nullptr);
      ASSERT_EQ(got, want) << "codes only, round " << round;
      // The same constants prepared once (as a packed layer does).
      mpdet::cpu::PackedConv::Epilogue prepared = e;
      mpdet::cpu::prepare_epilogue_avx512(prepared);
      std::fill(got.begin(), got.end(), 77);
      mpdet::cpu::epilogue_avx512(prepared, 0, acc.data(), n, n, got.data(), nullptr);
      ASSERT_EQ(got, want) << "prepared, round " << round;
    }
#endif
#ifdef MPDET_CPU_ARM
    mpdet::cpu::epilogue_neon(e, 0, acc.data(), n, n, got.data(), got_head.data());
    ASSERT_EQ(got, want) << "neon, round " << round;
    ASSERT_EQ(got_head, want_head) << "neon, round " << round;
    std::fill(got.begin(), got.end(), 77);
    mpdet::cpu::epilogue_neon(e, 0, acc.data(), n, n, got.data(), nullptr);
    ASSERT_EQ(got, want) << "neon codes only, round " << round;
#endif
  }
}

// The exact bound of |t| over these accumulators, which allows the pre-scaled (shift < 33) path.
void set_exact_t_bound(mpdet::cpu::PackedConv::Epilogue& e, const std::vector<std::int32_t>& acc,
                       int n, int nv) {
  e.t_bound = std::abs(static_cast<double>(e.bias[0]));
  for (int j = 0; j < nv; ++j) {
    std::int64_t max_acc = 0;
    for (int i = 0; i < n; ++i)
      max_acc =
          std::max<std::int64_t>(max_acc, std::abs(std::int64_t{acc[j * n + i]} - e.zero_sums[j]));
    e.t_bound += static_cast<double>(max_acc) * std::abs(static_cast<double>(e.multipliers[j]));
  }
}

// Output channel 0 over n pixels of nv virtual channels: the scalar epilogue and every vector
// epilogue this CPU runs (AVX-512 with and without prepared constants; NEON) against the contract.
void expect_epilogues_match_reference(const mpdet::cpu::PackedConv::Epilogue& e,
                                      const std::vector<std::int32_t>& acc, int n, int nv,
                                      int round) {
  std::vector<std::uint8_t> want(n), got(n, 77);
  for (int i = 0; i < n; ++i) {
    std::int64_t t = e.bias[0];
    for (int j = 0; j < nv; ++j)
      t += std::int64_t{acc[j * n + i] - e.zero_sums[j]} * e.multipliers[j];
    t = ops::activate_fixed(t, e.activation);
    want[i] = ops::saturate_u8(e.out_zero_point + ops::round_shift(t, e.shift));
  }
  std::vector<std::uint8_t> scalar(n);
  mpdet::cpu::epilogue_scalar(e, 0, acc.data(), n, n, scalar.data(), nullptr);
  ASSERT_EQ(scalar, want) << "round " << round;
#ifdef MPDET_CPU_X86
  if (mpdet::cpu::isa_supported(Isa::Avx512Vnni)) {
    mpdet::cpu::epilogue_avx512(e, 0, acc.data(), n, n, got.data(), nullptr);
    ASSERT_EQ(got, want) << "round " << round << " shift " << e.shift;
    mpdet::cpu::PackedConv::Epilogue prepared = e;
    mpdet::cpu::prepare_epilogue_avx512(prepared);
    std::fill(got.begin(), got.end(), 77);
    mpdet::cpu::epilogue_avx512(prepared, 0, acc.data(), n, n, got.data(), nullptr);
    ASSERT_EQ(got, want) << "prepared, round " << round << " shift " << e.shift;
  }
#endif
#ifdef MPDET_CPU_ARM
  mpdet::cpu::epilogue_neon(e, 0, acc.data(), n, n, got.data(), nullptr);
  ASSERT_EQ(got, want) << "neon, round " << round << " shift " << e.shift;
#endif
}

// The code-only epilogue where it is not saturated: t within a few hundred codes of zero (every
// shift, leaky's floor on both sides of multiples of ten), 1..6 points, every tail length.
TEST(CpuConvKernels, EpilogueUnsaturatedRange) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 3000; ++round) {
    mpdet::cpu::PackedConv::Epilogue e;
    const int nv = 1 + static_cast<int>(rng() % 6), n = 1 + static_cast<int>(rng() % 50);
    e.first_virtual = {0, nv};
    e.shift = static_cast<int>(rng() % 41);
    e.activation = kActivations[rng() % 3];
    e.out_zero_point = static_cast<int>(rng() % 256);
    const std::int64_t unit = std::int64_t{1} << e.shift;
    e.bias = {static_cast<std::int64_t>(rng() % 600) * unit - 300 * unit +
              static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(unit))};
    // |acc·M| of a few hundred codes: M about 2^S / 2^mbits, |acc| < 2^(mbits − 2) · 40.
    const int mbits = std::min(e.shift, 20);
    std::vector<std::int32_t> acc(static_cast<std::size_t>(nv) * n);
    for (int j = 0; j < nv; ++j) {
      e.multipliers.push_back(std::max<std::int64_t>(
          1, static_cast<std::int64_t>((unit >> mbits) + rng() % ((unit >> mbits) + 1))));
      if (rng() % 2) e.multipliers.back() = -e.multipliers.back();
      e.zero_sums.push_back(static_cast<std::int32_t>(rng() % 2000) - 1000);
      const std::int32_t range = (1 << std::max(mbits - 2, 0)) * 40 + 1;
      for (int i = 0; i < n; ++i)
        acc[j * n + i] = static_cast<std::int32_t>(rng() % (2 * range)) - range;
    }
    // Half the rounds give the exact bound of |t|, which allows the pre-scaled (shift < 33) path.
    if (round % 2 == 0) set_exact_t_bound(e, acc, n, nv);
    expect_epilogues_match_reference(e, acc, n, nv, round);
    if (HasFatalFailure()) return;
  }
}

// Shifts below 33 with multipliers too large to pre-scale (|M| >= 2^(S − 2)): the vector
// epilogue scales the products instead (x86 "shifted" mode); t within a few hundred codes of 0.
TEST(CpuConvKernels, EpilogueLargeMultipliersSmallShift) {
  std::mt19937_64 rng(9);
  for (int round = 0; round < 3000; ++round) {
    mpdet::cpu::PackedConv::Epilogue e;
    const int nv = 1 + static_cast<int>(rng() % 4), n = 1 + static_cast<int>(rng() % 50);
    e.first_virtual = {0, nv};
    e.shift = 1 + static_cast<int>(rng() % 32);
    e.activation = kActivations[rng() % 3];
    e.out_zero_point = static_cast<int>(rng() % 256);
    const std::int64_t unit = std::int64_t{1} << e.shift;
    e.bias = {static_cast<std::int64_t>(rng() % 600) * unit - 300 * unit +
              static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(unit))};
    std::vector<std::int32_t> acc(static_cast<std::size_t>(nv) * n);
    for (int j = 0; j < nv; ++j) {
      const std::int64_t m =
          (std::int64_t{1} << 30) + static_cast<std::int64_t>(rng() % (1u << 30));
      e.multipliers.push_back(rng() % 2 ? m : -m);
      e.zero_sums.push_back(static_cast<std::int32_t>(rng() % 200) - 100);
      const std::int64_t range = std::max<std::int64_t>(2, (std::int64_t{400} << e.shift) / m);
      for (int i = 0; i < n; ++i)
        acc[j * n + i] = static_cast<std::int32_t>(static_cast<std::int64_t>(rng() % (2 * range)) -
                                                   range + e.zero_sums[j]);
    }
    set_exact_t_bound(e, acc, n, nv);
    expect_epilogues_match_reference(e, acc, n, nv, round);
    if (HasFatalFailure()) return;
  }
}

// The vector epilogue's floor(v / 10) = (v·6554 + 1024) >> 16 over its whole domain.
TEST(CpuConvKernels, FloorDiv10ByMultiplyDomain) {
  for (std::int64_t v = -2560; v <= 2564; ++v)
    ASSERT_EQ((v * 6554 + 1024) >> 16, ops::floor_div10(v)) << v;
  // The high-dword path's form on [0, 2564] (negative v clamp to 0: their codes saturate to 0).
  for (std::int64_t v = 0; v <= 2564; ++v) ASSERT_EQ((v * 6554) >> 16, ops::floor_div10(v)) << v;
}

// Vector floor(t / 10) over the whole int64 range, where its double estimate alone is wrong.
TEST(CpuConvKernels, FloorDiv10FullRange) {
#ifdef MPDET_CPU_X86
  if (!mpdet::cpu::isa_supported(Isa::Avx512Vnni)) GTEST_SKIP() << "no AVX-512 VNNI";
  std::mt19937_64 rng(11);
  for (int round = 0; round < 20000; ++round) {
    std::int64_t t[8], q[8];
    for (auto& v : t) {
      const int bits = static_cast<int>(rng() % 63);
      v = static_cast<std::int64_t>(rng() >> (63 - bits)) * (rng() % 2 ? 1 : -1);
    }
    if (round == 0) t[0] = INT64_MAX - 5, t[1] = INT64_MIN + 10, t[2] = -1, t[3] = -10;
    mpdet::cpu::floor_div10_avx512(t, q);
    for (int i = 0; i < 8; ++i) ASSERT_EQ(q[i], ops::floor_div10(t[i])) << t[i];
  }
#elif defined(MPDET_CPU_ARM)
  std::mt19937_64 rng(11);
  for (int round = 0; round < 20000; ++round) {
    std::int64_t t[2], q[2];
    for (auto& v : t) {
      const int bits = static_cast<int>(rng() % 63);
      v = static_cast<std::int64_t>(rng() >> (63 - bits)) * (rng() % 2 ? 1 : -1);
    }
    if (round == 0) t[0] = INT64_MAX - 5, t[1] = INT64_MIN + 10;
    if (round == 1) t[0] = -1, t[1] = -10;
    mpdet::cpu::floor_div10_neon(t, q);
    for (int i = 0; i < 2; ++i) ASSERT_EQ(q[i], ops::floor_div10(t[i])) << t[i];
  }
#else
  GTEST_SKIP() << "x86 and ARM only";
#endif
}

}  // namespace

namespace {

// The vector add and concat requantization against ops::integer_reference on random parameters
// (every activation, lengths with tails, multipliers up to the 2^31 bound).
// Network input quantization against ops::integer_reference (values on and near the rounding
// boundaries, far outside the range, every tail length).
TEST(CpuElementwiseKernels, QuantizeInputMatchesReference) {
#ifdef MPDET_CPU_X86
  if (!mpdet::cpu::isa_supported(Isa::Avx512Vnni)) GTEST_SKIP() << "no AVX-512 VNNI";
  std::mt19937 rng(22);
  for (int round = 0; round < 300; ++round) {
    const ops::QuantParams q{std::uniform_real_distribution<float>(0.001f, 0.05f)(rng),
                             std::uniform_int_distribution<int>(0, 255)(rng)};
    const std::size_t n = 1 + rng() % 70;
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) {
      const int kind = static_cast<int>(rng() % 4);
      const float code = static_cast<float>(static_cast<int>(rng() % 700) - 350);
      x[i] = kind == 0   ? std::uniform_real_distribution<float>(-1.5f, 1.5f)(rng)
             : kind == 1 ? (code - 0.5f) * q.scale  // on a rounding boundary
             : kind == 2 ? std::nextafter((code + 0.5f) * q.scale, 0.0f)
                         : std::uniform_real_distribution<float>(-100.0f, 100.0f)(rng);
    }
    std::vector<std::uint8_t> want(n), got(n);
    ops::integer_reference::quantize_input(x.data(), n, q, want.data());
    mpdet::cpu::quantize_input_avx512(x.data(), n, static_cast<float>(1.0 / q.scale), q.zero_point,
                                      got.data());
    ASSERT_EQ(got, want) << "round " << round;
  }
#else
  GTEST_SKIP() << "x86 only";
#endif
}

TEST(CpuElementwiseKernels, AddAndRequantizeMatchReference) {
#if defined(MPDET_CPU_X86) || defined(MPDET_CPU_ARM)
#ifdef MPDET_CPU_X86
  if (!mpdet::cpu::isa_supported(Isa::Avx512Vnni)) GTEST_SKIP() << "no AVX-512 VNNI";
  const auto add = mpdet::cpu::add_u8_avx512;
  const auto requantize = mpdet::cpu::requantize_u8_avx512;
#else
  const auto add = mpdet::cpu::add_u8_neon;
  const auto requantize = mpdet::cpu::requantize_u8_neon;
#endif
  std::mt19937 rng(21);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int round = 0; round < 300; ++round) {
    const std::size_t n = static_cast<std::size_t>(uniform(1, 70));
    std::vector<ops::QuantParams> q(3);
    for (auto& p : q)
      p = {std::uniform_real_distribution<float>(0.01f, 0.3f)(rng), uniform(0, 255)};
    const ops::Requantization rq = ops::elementwise_requantization({q.data(), 2}, q[2]);
    std::vector<std::uint8_t> a(n), b(n), want(n), got(n);
    for (std::size_t i = 0; i < n; ++i)
      a[i] = static_cast<std::uint8_t>(uniform(0, 255)),
      b[i] = static_cast<std::uint8_t>(uniform(0, 255));
    const ops::Activation act = kActivations[round % 3];
    ops::integer_reference::add(a.data(), q[0], b.data(), q[1], n, rq, act, want.data(), q[2]);
    add(a.data(), q[0].zero_point, rq.multipliers[0], b.data(), q[1].zero_point, rq.multipliers[1],
        n, rq.shift, act, q[2].zero_point, got.data());
    ASSERT_EQ(got, want) << "add round " << round;
    ops::integer_reference::requantize(a.data(), q[0], n, rq, 0, want.data(), q[2]);
    requantize(a.data(), q[0].zero_point, rq.multipliers[0], n, rq.shift, q[2].zero_point,
               got.data());
    ASSERT_EQ(got, want) << "requantize round " << round;
  }
#else
  GTEST_SKIP() << "x86 and ARM only";
#endif
}

}  // namespace

namespace {

// The pool runs every task exactly once per call, over many consecutive calls (the workers'
// spin-then-sleep hand-over), for task counts below, at and above the thread count.
TEST(CpuThreadPool, EveryTaskExactlyOnce) {
  for (int threads : {1, 2, 3, 4}) {
    mpdet::cpu::ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int round = 0; round < 2000; ++round) {
      const int tasks = round % 37;
      std::vector<std::atomic<int>> runs(tasks);
      std::atomic<int> bad_thread{0};
      pool.parallel_for(tasks, [&](int task, int thread) {
        runs[task].fetch_add(1);
        if (thread < 0 || thread >= threads) bad_thread.fetch_add(1);
      });
      for (int t = 0; t < tasks; ++t) ASSERT_EQ(runs[t].load(), 1) << threads << " " << round;
      ASSERT_EQ(bad_thread.load(), 0);
      if (round % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

}  // namespace
