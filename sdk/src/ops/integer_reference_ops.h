// Reference integer kernels: the scalar, obviously-correct implementation of the contract in
// ops/integer_arithmetic.h. They are the bit-exact oracle for the NEON, x86 and Vulkan kernels.
#pragma once

#include <cstdint>
#include <span>

#include "ops/integer_arithmetic.h"

namespace mpdet::ops::integer_reference {

// Multipoint convolution with the fused epilogue. point_weights: [V][in/groups][k][k] codes;
// points[c] virtual channels (consecutive) belong to output channel c. When `head_output` is
// not null, the layer is a network output and its head codes are written there too.
void conv2d_multipoint(const std::uint8_t* input, const Shape& in, QuantParams in_q,
                       const std::int8_t* point_weights, std::span<const int> points,
                       const Requantization& requant, const ConvParams& p, Activation activation,
                       std::uint8_t* output, const Shape& out, QuantParams out_q,
                       std::int32_t* head_output = nullptr);

void max_pool(const std::uint8_t* input, const Shape& in, const PoolParams& p, std::uint8_t* output,
              const Shape& out);

void upsample_nearest(const std::uint8_t* input, const Shape& in, int factor, std::uint8_t* output);

void add(const std::uint8_t* a, QuantParams a_q, const std::uint8_t* b, QuantParams b_q,
         std::size_t n, const Requantization& requant, Activation activation, std::uint8_t* output,
         QuantParams out_q);

// Requantizes one input of a concatenation into the output's scale (requant.multipliers[index]).
void requantize(const std::uint8_t* input, QuantParams in_q, std::size_t n,
                const Requantization& requant, std::size_t index, std::uint8_t* output,
                QuantParams out_q);

void quantize_input(const float* input, std::size_t n, QuantParams q, std::uint8_t* output);
void dequantize(const std::uint8_t* input, std::size_t n, QuantParams q, float* output);
void dequantize_head(const std::int32_t* input, std::size_t n, QuantParams q, float* output);

}  // namespace mpdet::ops::integer_reference
