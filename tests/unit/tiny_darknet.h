// A small Darknet network using every supported section, with deterministic random weights,
// for tests that need a complete model without the shared files.
#pragma once

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace mpdet::test {

inline const char* kTinyCfg = R"([net]
batch=64
width=32
height=32
channels=3
learning_rate=0.001

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=8
size=3
groups=8
stride=1
pad=1
batch_normalize=1
activation=relu

[dropout]
probability=.15

[shortcut]
from=-3
activation=linear

[maxpool]
size=2
stride=2

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask = 0,1,2
anchors = 4,6, 10,12, 20,18, 30,28
classes=2
num=4
jitter=.3
scale_x_y = 1.05

[route]
layers = -3

[upsample]
stride=2

[route]
layers = -1, 1

[convolutional]
filters=7
size=1
stride=1
pad=0
activation=linear

[yolo]
mask = 3
anchors = 4,6, 10,12, 20,18, 30,28
classes=2
num=4
)";

// Number of floats the tiny cfg's convolutions read: per conv, biases (+ 3 x batch-norm) + weights.
inline std::size_t tiny_weight_floats() {
  return (8 + 3 * 8 + 8 * 3 * 9) + (8 + 3 * 8 + 8 * 1 * 9) + (21 + 21 * 8) + (7 + 7 * 16);
}

inline std::vector<std::uint8_t> tiny_weights(std::size_t floats = tiny_weight_floats(),
                                              unsigned seed = 5) {
  std::vector<std::uint8_t> bytes(20 + floats * 4);
  const std::int32_t header[3] = {0, 2, 5};
  std::memcpy(bytes.data(), header, 12);  // then a 64-bit "seen" counter, left zero
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(0.1f, 1.0f);  // positive: valid batch-norm variances
  for (std::size_t i = 0; i < floats; ++i) {
    const float v = dist(rng);
    std::memcpy(bytes.data() + 20 + 4 * i, &v, 4);
  }
  return bytes;
}

}  // namespace mpdet::test
