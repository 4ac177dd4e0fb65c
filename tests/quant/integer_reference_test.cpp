// The integer reference backend against a float simulation of the same quantized model: each
// layer is recomputed in double precision from the integer run's own input codes (so errors do
// not compound) and rounded to the output grid. The integer contract differs from exact real
// arithmetic only by the rounding of its fixed-point multipliers, so codes may differ by at most
// one step, and only rarely.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "import/darknet_importer.h"
#include "model/model_file.h"
#include "ops/integer_arithmetic.h"
#include "quant/calibration.h"
#include "quant/model_quantizer.h"
#include "runtime/integer_reference_backend.h"
#include "tiny_quantized.h"

namespace {

using namespace mpdet;
using test::quantize_tiny;
using test::tiny_float_model;

double real_of(std::uint8_t code, ops::QuantParams q) {
  return double(q.scale) * (int(code) - q.zero_point);
}

double activate(double y, ops::Activation a) {
  if (a == ops::Activation::Relu) return std::max(y, 0.0);
  if (a == ops::Activation::Leaky) return y >= 0 ? y : 0.1 * y;
  return y;
}

int to_code(double y, ops::QuantParams q) {
  return static_cast<int>(std::clamp<double>(std::floor(y / q.scale + 0.5) + q.zero_point, 0, 255));
}

// Real (activated, unrounded) outputs of a quantized convolution from its input codes.
std::vector<double> simulate_conv_real(const model::Model& m, int index,
                                       const std::vector<std::vector<std::uint8_t>>& codes) {
  const model::Layer& l = m.layers[index];
  const auto& in_layer = m.layers[l.inputs[0]];
  const ops::Shape is = in_layer.output;
  const auto& wq = l.weight_quant;
  const auto& w = m.tensors[wq.weights].codes;
  const auto& a = m.tensors[wq.scales].data;
  const auto& bias = m.tensors[l.bias_tensor].data;
  const int icg = is.channels / l.conv.groups, ocg = l.conv.out_channels / l.conv.groups;
  const int k = l.conv.kernel;
  const std::size_t taps = static_cast<std::size_t>(icg) * k * k;
  std::vector<double> out(l.output.elements());
  int v0 = 0;
  for (int oc = 0; oc < l.conv.out_channels; ++oc) {
    for (int oy = 0; oy < l.output.height; ++oy)
      for (int ox = 0; ox < l.output.width; ++ox) {
        double y = bias[oc];
        for (int p = 0; p < wq.points[oc]; ++p)
          for (int i = 0; i < icg; ++i)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int iy = oy * l.conv.stride + ky - l.conv.pad;
                const int ix = ox * l.conv.stride + kx - l.conv.pad;
                if (iy < 0 || iy >= is.height || ix < 0 || ix >= is.width) continue;
                const int ic = (oc / ocg) * icg + i;
                y += double(a[v0 + p]) * w[(v0 + p) * taps + (i * k + ky) * k + kx] *
                     real_of(codes[l.inputs[0]][(ic * is.height + iy) * is.width + ix],
                             in_layer.output_quant);
              }
        out[(oc * l.output.height + oy) * l.output.width + ox] = activate(y, l.activation);
      }
    v0 += wq.points[oc];
  }
  return out;
}

// Expected codes of one layer from its inputs' codes, in double precision.
std::vector<int> simulate_layer(const model::Model& m, int index,
                                const std::vector<std::vector<std::uint8_t>>& codes) {
  const model::Layer& l = m.layers[index];
  std::vector<int> out(l.output.elements());
  const auto& in_layer = m.layers[l.inputs[0]];
  const ops::Shape is = in_layer.output;
  if (l.kind == model::LayerKind::Conv2d) {
    const std::vector<double> real = simulate_conv_real(m, index, codes);
    for (std::size_t e = 0; e < real.size(); ++e) out[e] = to_code(real[e], l.output_quant);
  } else if (l.kind == model::LayerKind::Add) {
    const auto& b_layer = m.layers[l.inputs[1]];
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = to_code(activate(real_of(codes[l.inputs[0]][i], in_layer.output_quant) +
                                    real_of(codes[l.inputs[1]][i], b_layer.output_quant),
                                l.activation),
                       l.output_quant);
  } else if (l.kind == model::LayerKind::Concat) {
    std::size_t o = 0;
    for (int in : l.inputs)
      for (std::uint8_t c : codes[in])
        out[o++] = to_code(real_of(c, m.layers[in].output_quant), l.output_quant);
  } else if (l.kind == model::LayerKind::MaxPool) {
    const int off = l.pool.padding / 2;
    for (int c = 0; c < l.output.channels; ++c)
      for (int oy = 0; oy < l.output.height; ++oy)
        for (int ox = 0; ox < l.output.width; ++ox) {
          int best = -1;
          for (int ky = 0; ky < l.pool.size; ++ky)
            for (int kx = 0; kx < l.pool.size; ++kx) {
              const int iy = oy * l.pool.stride + ky - off, ix = ox * l.pool.stride + kx - off;
              if (iy >= 0 && iy < is.height && ix >= 0 && ix < is.width)
                best =
                    std::max<int>(best, codes[l.inputs[0]][(c * is.height + iy) * is.width + ix]);
            }
          out[(c * l.output.height + oy) * l.output.width + ox] = best;
        }
  } else if (l.kind == model::LayerKind::Upsample) {
    const int f = l.upsample_factor;
    for (int c = 0; c < l.output.channels; ++c)
      for (int y = 0; y < l.output.height; ++y)
        for (int x = 0; x < l.output.width; ++x)
          out[(c * l.output.height + y) * l.output.width + x] =
              codes[l.inputs[0]][(c * is.height + y / f) * is.width + x / f];
  }
  return out;
}

void expect_matches_float_simulation(const model::Model& q) {
  runtime::IntegerReferenceBackend backend(q);
  std::vector<std::vector<std::uint8_t>> codes(q.layers.size());
  backend.set_layer_observer(
      [&](int layer, std::span<const std::uint8_t> c) { codes[layer].assign(c.begin(), c.end()); });
  std::vector<float> input(q.input_shape().elements());
  for (std::size_t image = 0; image < 3; ++image) {
    test::tiny_calibration_input(50 + image, input);
    backend.run(input);
    std::size_t compared = 0, off_by_one = 0;
    for (int i = 1; i < static_cast<int>(q.layers.size()); ++i) {
      const std::vector<int> expected = simulate_layer(q, i, codes);
      for (std::size_t e = 0; e < expected.size(); ++e) {
        const int diff = std::abs(expected[e] - int(codes[i][e]));
        ASSERT_LE(diff, 1) << "layer " << i << " (" << q.layers[i].name << ") element " << e;
        off_by_one += diff;
        ++compared;
      }
    }
    EXPECT_LT(double(off_by_one) / compared, 0.01)
        << off_by_one << " of " << compared << " codes off by one";
    // Heads keep 8 extra fraction bits: within one fine step (s_y / 256) of the exact value,
    // finer than the uint8 grid by far.
    for (std::size_t o = 0; o < q.outputs.size(); ++o) {
      const int layer = q.outputs[o];
      const std::vector<double> expected = simulate_conv_real(q, layer, codes);
      const double step = q.layers[layer].output_quant.scale / 256.0;
      const auto actual = backend.output(o);
      for (std::size_t e = 0; e < expected.size(); ++e)
        ASSERT_NEAR(actual[e], expected[e], 1.01 * step + 1e-6 * std::abs(expected[e]))
            << "head " << o << " at " << e;
    }
  }
}

TEST(IntegerReference, MatchesFloatSimulationNaive) {
  for (int bits : {2, 3, 4, 8})
    expect_matches_float_simulation(quantize_tiny(quant::WeightMethod::Naive, bits, 1.0));
}

TEST(IntegerReference, MatchesFloatSimulationMultipoint) {
  for (int bits : {2, 4}) {
    const model::Model q = quantize_tiny(quant::WeightMethod::Multipoint, bits, 2.0);
    int extra = 0;
    for (const auto& l : q.layers)
      if (l.kind == model::LayerKind::Conv2d)
        extra += l.weight_quant.virtual_channels() - l.conv.out_channels;
    EXPECT_GT(extra, 0) << "the budget bought no extra points";
    expect_matches_float_simulation(q);
  }
}

TEST(IntegerReference, QuantizedModelRoundTripsThroughTheFile) {
  const model::Model q = quantize_tiny(quant::WeightMethod::Multipoint, 3, 1.5, true);
  const model::Model back = model::deserialize_model(model::serialize_model(q));
  ASSERT_TRUE(back.quantized);
  std::vector<float> input(q.input_shape().elements());
  test::tiny_calibration_input(7, input);
  runtime::IntegerReferenceBackend a(q), b(back);
  a.run(input);
  b.run(input);
  for (std::size_t o = 0; o < q.outputs.size(); ++o) {
    const auto x = a.output(o), y = b.output(o);
    ASSERT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << "output " << o;
  }
  for (std::size_t t = 0; t < q.tensors.size(); ++t)
    EXPECT_EQ(back.tensors[t].codes, q.tensors[t].codes);
}

TEST(IntegerArithmetic, RoundingAndLeakyFollowTheContract) {
  EXPECT_EQ(ops::round_shift(5, 1), 3);    // 2.5 -> 3 (halves up)
  EXPECT_EQ(ops::round_shift(-5, 1), -2);  // -2.5 -> -2 (halves up)
  EXPECT_EQ(ops::round_shift(-6, 1), -3);
  EXPECT_EQ(ops::round_shift(7, 0), 7);
  EXPECT_EQ(ops::floor_div10(-1), -1);
  EXPECT_EQ(ops::floor_div10(-10), -1);
  EXPECT_EQ(ops::floor_div10(-11), -2);
  EXPECT_EQ(ops::floor_div10(19), 1);
  EXPECT_EQ(ops::activate_fixed(-25, ops::Activation::Leaky), -3);
  EXPECT_EQ(ops::activate_fixed(-25, ops::Activation::Relu), 0);
  EXPECT_EQ(ops::quantize_input(0.5f, 255.0f, 0), 128);  // 127.5 rounds up
  EXPECT_EQ(ops::quantize_input(-3.0f, 255.0f, 0), 0);
  EXPECT_EQ(ops::quantize_input(9.0f, 255.0f, 0), 255);
}

TEST(IntegerArithmetic, ShiftKeepsMultipliersAndSumsInRange) {
  const std::vector<float> scales = {0.02f, 0.0001f, 0.5f};
  const std::vector<std::int8_t> weights(3 * 4608, 7);  // a 3x3x512 conv at 4 bits, all max
  const std::vector<int> points = {2, 1};
  const std::vector<float> bias = {3.0f, -1000.0f};
  const auto r =
      ops::conv_requantization(scales, weights, points, bias, {0.05f, 10}, {0.001f, 128});
  EXPECT_GT(r.shift, 10);
  for (auto mlt : r.multipliers) EXPECT_LT(std::llabs(mlt), std::int64_t{1} << 31);
  // Worst case |t| stays below 2^62 (checked independently of choose_shift's own arithmetic).
  long double worst = std::fabs(static_cast<long double>(r.bias[1]));
  worst += static_cast<long double>(std::llabs(r.multipliers[2])) * 7 * 4608 * 255;
  long double worst0 =
      std::fabs(static_cast<long double>(r.bias[0])) +
      static_cast<long double>(std::llabs(r.multipliers[0]) + std::llabs(r.multipliers[1])) * 7 *
          4608 * 255;
  EXPECT_LT(std::max(worst, worst0), std::ldexp(1.0L, 62));
  // The fixed-point multiplier is the real ratio to within one part in 2^20.
  EXPECT_NEAR(double(r.multipliers[0]) / std::ldexp(1.0, r.shift), 0.02 * 0.05 / 0.001,
              1e-6 * 0.02 * 0.05 / 0.001 + 1e-9);
}

}  // namespace
