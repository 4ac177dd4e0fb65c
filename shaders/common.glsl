// Shared by every mpdet compute shader: the integer arithmetic contract of
// sdk/src/ops/integer_arithmetic.h written in GLSL. Any change there must be mirrored here.
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_shader_8bit_storage : require

const int kLinear = 0;
const int kLeaky = 1;
const int kRelu = 2;
const int kHeadFractionBits = 8;

int64_t round_shift(int64_t t, int shift) {
  return shift > 0 ? (t + (int64_t(1) << (shift - 1))) >> shift : t;
}

int64_t floor_div10(int64_t t) {
  return t >= 0 ? t / 10 : -((-t + 9) / 10);
}

int64_t activate_fixed(int64_t t, int activation) {
  if (activation == kRelu) return t > 0 ? t : int64_t(0);
  if (activation == kLeaky) return t >= 0 ? t : floor_div10(t);
  return t;
}

uint saturate_u8(int64_t v) {
  return uint(clamp(v, int64_t(0), int64_t(255)));
}

int head_code(int64_t t, int shift) {
  const int64_t h = shift >= kHeadFractionBits ? round_shift(t, shift - kHeadFractionBits)
                                               : t * (int64_t(1) << (kHeadFractionBits - shift));
  return int(clamp(h, int64_t(-2147483648L), int64_t(2147483647L)));
}
