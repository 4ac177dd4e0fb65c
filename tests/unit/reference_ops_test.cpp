// The reference kernels against direct transcriptions of the definitions, on random data of
// many shapes (odd sizes, strides, padding, groups, depthwise).
#include <gtest/gtest.h>

#include <random>

#include "ops/reference_ops.h"

namespace {

using mpdet::ops::Activation;
using mpdet::ops::ConvParams;
using mpdet::ops::PoolParams;
using mpdet::ops::Shape;
namespace ref = mpdet::ops::reference;

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// out(oc, oy, ox) = act(bias + sum_{ic in group, ky, kx} w * in(ic, oy*s+ky-p, ox*s+kx-p)),
// evaluated one output at a time in double precision.
std::vector<float> conv_by_definition(const std::vector<float>& in, const Shape& is,
                                      const std::vector<float>& w, const std::vector<float>& b,
                                      const ConvParams& p, Activation act, const Shape& os) {
  std::vector<float> out(os.elements());
  const int icg = is.channels / p.groups, ocg = p.out_channels / p.groups;
  for (int oc = 0; oc < os.channels; ++oc)
    for (int oy = 0; oy < os.height; ++oy)
      for (int ox = 0; ox < os.width; ++ox) {
        double acc = b[oc];
        for (int i = 0; i < icg; ++i)
          for (int ky = 0; ky < p.kernel; ++ky)
            for (int kx = 0; kx < p.kernel; ++kx) {
              const int iy = oy * p.stride + ky - p.pad, ix = ox * p.stride + kx - p.pad;
              if (iy < 0 || iy >= is.height || ix < 0 || ix >= is.width) continue;
              const int ic = (oc / ocg) * icg + i;
              acc += double(w[((oc * icg + i) * p.kernel + ky) * p.kernel + kx]) *
                     in[(ic * is.height + iy) * is.width + ix];
            }
        out[(oc * os.height + oy) * os.width + ox] = ref::activate(static_cast<float>(acc), act);
      }
  return out;
}

TEST(ReferenceConv2d, MatchesDefinitionOnRandomShapes) {
  std::mt19937 rng(1234);
  int cases = 0;
  for (int kernel : {1, 3, 5})
    for (int stride : {1, 2})
      for (int groups_kind : {0, 1, 2})  // dense, depthwise, grouped
        for (int size : {1, 2, 5, 8, 13}) {
          const int in_c = groups_kind == 2 ? 6 : 5;
          const int groups = groups_kind == 0 ? 1 : groups_kind == 1 ? in_c : 3;
          const int out_c = groups_kind == 1 ? in_c : groups_kind == 2 ? 9 : 7;
          for (int pad : {0, kernel / 2}) {
            const Shape is{in_c, size, size + 3};
            ConvParams p{out_c, kernel, stride, pad, groups};
            if (is.height + 2 * pad < kernel) continue;
            const Shape os{out_c, mpdet::ops::conv_output_size(is.height, p),
                           mpdet::ops::conv_output_size(is.width, p)};
            const auto in = random_vector(is.elements(), rng);
            const auto w =
                random_vector(std::size_t(out_c) * (in_c / groups) * kernel * kernel, rng);
            const auto b = random_vector(out_c, rng);
            for (Activation act : {Activation::Linear, Activation::Leaky, Activation::Relu}) {
              std::vector<float> out(os.elements(), 99.0f);
              ref::conv2d(in.data(), is, w.data(), b.data(), p, act, out.data(), os);
              const auto expected = conv_by_definition(in, is, w, b, p, act, os);
              for (std::size_t i = 0; i < out.size(); ++i)
                ASSERT_NEAR(out[i], expected[i], 1e-4)
                    << "k" << kernel << " s" << stride << " g" << groups << " size " << size
                    << " pad " << pad << " at " << i;
              ++cases;
            }
          }
        }
  EXPECT_GT(cases, 200);
}

TEST(ReferenceMaxPool, DarknetPaddingRule) {
  // 1x3x3 input, size 2 stride 1 with Darknet's default padding (size - 1 = 1, 0 before):
  // the output keeps the size and the last row/column only sees the valid inputs.
  const std::vector<float> in = {1, 5, 2, /**/ 7, 3, 4, /**/ -1, -2, -9};
  const Shape is{1, 3, 3};
  const PoolParams p{2, 1, 1};
  const Shape os{1, mpdet::ops::pool_output_size(3, p), mpdet::ops::pool_output_size(3, p)};
  ASSERT_EQ(os.height, 3);
  std::vector<float> out(os.elements());
  ref::max_pool(in.data(), is, p, out.data(), os);
  EXPECT_EQ(out, (std::vector<float>{7, 5, 4, 7, 4, 4, -1, -2, -9}));
}

TEST(ReferenceMaxPool, SppStyleSameSizePooling) {
  // size 5 stride 1 padding 4: centred 5x5 window, output size equals input size.
  std::mt19937 rng(7);
  const Shape is{2, 6, 7};
  const auto in = random_vector(is.elements(), rng);
  const PoolParams p{5, 1, 4};
  std::vector<float> out(is.elements());
  ref::max_pool(in.data(), is, p, out.data(), is);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 7; ++x) {
        float best = -1e9f;
        for (int yy = std::max(0, y - 2); yy <= std::min(5, y + 2); ++yy)
          for (int xx = std::max(0, x - 2); xx <= std::min(6, x + 2); ++xx)
            best = std::max(best, in[(c * 6 + yy) * 7 + xx]);
        EXPECT_EQ(out[(c * 6 + y) * 7 + x], best);
      }
}

TEST(ReferenceUpsample, NearestNeighbour) {
  const std::vector<float> in = {1, 2, 3, 4, 5, 6};  // 1x2x3
  std::vector<float> out(24);
  ref::upsample_nearest(in.data(), {1, 2, 3}, 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3,
                                     4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6}));
}

TEST(ReferenceAdd, AddsThenActivates) {
  const std::vector<float> a = {1, -2, 3}, b = {-3, 1, 1};
  std::vector<float> out(3);
  ref::add(a.data(), b.data(), 3, Activation::Leaky, out.data());
  EXPECT_FLOAT_EQ(out[0], -0.2f);
  EXPECT_FLOAT_EQ(out[1], -0.1f);
  EXPECT_FLOAT_EQ(out[2], 4.0f);
}

}  // namespace
