/*
 * tensor.c - element type facts, shapes, half-precision conversions and the
 * slow generic element accessors used by checks, tools and tests.
 */
#include "hloserve/tensor.h"

#include <math.h>
#include <stdio.h>

static const struct {
  const char *mlir, *kserve, *numpy;
  size_t size;
} dtype_info[HS_DTYPE_COUNT] = {
    [HS_DTYPE_INVALID] = {"invalid", NULL, NULL, 0},
    [HS_PRED] = {"i1", "BOOL", "b1", 1},
    [HS_I8] = {"i8", "INT8", "i1", 1},
    [HS_I16] = {"i16", "INT16", "i2", 2},
    [HS_I32] = {"i32", "INT32", "i4", 4},
    [HS_I64] = {"i64", "INT64", "i8", 8},
    [HS_U8] = {"ui8", "UINT8", "u1", 1},
    [HS_U16] = {"ui16", "UINT16", "u2", 2},
    [HS_U32] = {"ui32", "UINT32", "u4", 4},
    [HS_U64] = {"ui64", "UINT64", "u8", 8},
    [HS_F16] = {"f16", "FP16", "f2", 2},
    [HS_BF16] = {"bf16", "BF16", NULL, 2},
    [HS_F32] = {"f32", "FP32", "f4", 4},
    [HS_F64] = {"f64", "FP64", "f8", 8},
    [HS_C64] = {"complex<f32>", NULL, "c8", 8},
    [HS_C128] = {"complex<f64>", NULL, "c16", 16},
};

static bool valid(hs_dtype t) { return t > HS_DTYPE_INVALID && t < HS_DTYPE_COUNT; }

size_t hs_dtype_size(hs_dtype t) { return valid(t) ? dtype_info[t].size : 0; }
const char *hs_dtype_name(hs_dtype t) { return valid(t) ? dtype_info[t].mlir : "invalid"; }
const char *hs_dtype_kserve_name(hs_dtype t) { return valid(t) ? dtype_info[t].kserve : NULL; }
const char *hs_dtype_numpy_code(hs_dtype t) { return valid(t) ? dtype_info[t].numpy : NULL; }

hs_dtype hs_dtype_from_kserve_name(const char *name) {
  if (!name) return HS_DTYPE_INVALID;
  for (int t = 1; t < HS_DTYPE_COUNT; t++)
    if (dtype_info[t].kserve && strcmp(dtype_info[t].kserve, name) == 0) return (hs_dtype)t;
  return HS_DTYPE_INVALID;
}

bool hs_dtype_is_float(hs_dtype t) { return t == HS_F16 || t == HS_BF16 || t == HS_F32 || t == HS_F64; }
bool hs_dtype_is_signed(hs_dtype t) { return t >= HS_I8 && t <= HS_I64; }
bool hs_dtype_is_unsigned(hs_dtype t) { return t >= HS_U8 && t <= HS_U64; }
bool hs_dtype_is_int(hs_dtype t) { return hs_dtype_is_signed(t) || hs_dtype_is_unsigned(t); }
bool hs_dtype_is_complex(hs_dtype t) { return t == HS_C64 || t == HS_C128; }
int hs_dtype_bits(hs_dtype t) { return t == HS_PRED ? 1 : (int)(8 * hs_dtype_size(t)); }

int64_t hs_shape_numel(const hs_shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) n *= s->dims[i];
  return n;
}

bool hs_shape_equal(const hs_shape *a, const hs_shape *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

char *hs_shape_str(const hs_shape *s, char *buf, size_t cap) {
  size_t off = 0;
  if (cap) buf[0] = 0;
  for (int i = 0; i < s->rank && off < cap; i++) {
    int n = snprintf(buf + off, cap - off, i ? "x%lld" : "%lld", (long long)s->dims[i]);
    if (n < 0) break;
    off += (size_t)n;
  }
  return buf;
}

void hs_shape_strides(const hs_shape *s, int64_t strides[HS_MAX_RANK]) {
  int64_t st = 1;
  for (int i = s->rank - 1; i >= 0; i--) {
    strides[i] = st;
    st *= s->dims[i];
  }
}

/* ---- half precision ---------------------------------------------------- */

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint64_t d2u(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

float hs_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0x1f) return u2f(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    float v = (float)man * 0x1p-24f;
    return sign ? -v : v;
  }
  return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

float hs_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

/* Round a double to a binary format with `man_bits` explicit mantissa bits,
 * exponent range [emin, emax] (unbiased, for normals) and subnormals; returns
 * the encoded bits.  Used for f16 and bf16 so both are correctly rounded from
 * f64 and from f32 alike. */
static uint16_t round_to_small_float(double d, int man_bits, int exp_bits) {
  uint64_t u = d2u(d);
  uint16_t sign = (uint16_t)((u >> 63) << 15);
  int bias = (1 << (exp_bits - 1)) - 1;
  uint16_t inf = (uint16_t)(((1u << exp_bits) - 1) << man_bits);
  if (isnan(d)) return (uint16_t)(sign | inf | (1u << (man_bits - 1)));
  double a = fabs(d);
  if (isinf(a)) return sign | inf;
  if (a == 0) return sign;
  int e;
  frexp(a, &e);        /* a = m * 2^e, m in [0.5,1) */
  int unb = e - 1;     /* a in [2^unb, 2^(unb+1)) */
  int emin = 1 - bias;
  if (unb < emin) unb = emin; /* subnormal range: fixed quantum */
  double quantum = ldexp(1.0, unb - man_bits);
  double q = nearbyint(a / quantum); /* round half even (default mode) */
  double r = q * quantum;
  if (r == 0) return sign; /* underflow to zero */
  /* Rounding may carry past the largest finite value. */
  if (r > ldexp(2.0 - ldexp(1.0, -man_bits), bias)) return sign | inf;
  int e2;
  frexp(r, &e2);
  int unb2 = e2 - 1;
  if (unb2 < emin) { /* subnormal */
    uint16_t m = (uint16_t)(r / ldexp(1.0, emin - man_bits));
    return sign | m;
  }
  uint16_t m = (uint16_t)((r / ldexp(1.0, unb2) - 1.0) * ldexp(1.0, man_bits));
  return (uint16_t)(sign | ((uint16_t)(unb2 + bias) << man_bits) | m);
}

uint16_t hs_f64_to_f16(double d) { return round_to_small_float(d, 10, 5); }
uint16_t hs_f64_to_bf16(double d) { return round_to_small_float(d, 7, 8); }

uint16_t hs_f32_to_f16(float f) { return hs_f64_to_f16((double)f); }

uint16_t hs_f32_to_bf16(float f) {
  uint32_t u = f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  uint32_t lsb = (u >> 16) & 1;
  u += 0x7fffu + lsb;
  return (uint16_t)(u >> 16);
}

/* ---- generic accessors ------------------------------------------------- */

double hs_load_f64(hs_dtype t, const void *p, int64_t i) {
  switch (t) {
    case HS_PRED: return ((const uint8_t *)p)[i] ? 1.0 : 0.0;
    case HS_I8: return ((const int8_t *)p)[i];
    case HS_I16: return ((const int16_t *)p)[i];
    case HS_I32: return ((const int32_t *)p)[i];
    case HS_I64: return (double)((const int64_t *)p)[i];
    case HS_U8: return ((const uint8_t *)p)[i];
    case HS_U16: return ((const uint16_t *)p)[i];
    case HS_U32: return ((const uint32_t *)p)[i];
    case HS_U64: return (double)((const uint64_t *)p)[i];
    case HS_F16: return hs_f16_to_f32(((const uint16_t *)p)[i]);
    case HS_BF16: return hs_bf16_to_f32(((const uint16_t *)p)[i]);
    case HS_F32: return ((const float *)p)[i];
    case HS_F64: return ((const double *)p)[i];
    default: return NAN;
  }
}

int64_t hs_load_i64(hs_dtype t, const void *p, int64_t i) {
  switch (t) {
    case HS_PRED: return ((const uint8_t *)p)[i] ? 1 : 0;
    case HS_I8: return ((const int8_t *)p)[i];
    case HS_I16: return ((const int16_t *)p)[i];
    case HS_I32: return ((const int32_t *)p)[i];
    case HS_I64: return ((const int64_t *)p)[i];
    case HS_U8: return ((const uint8_t *)p)[i];
    case HS_U16: return ((const uint16_t *)p)[i];
    case HS_U32: return ((const uint32_t *)p)[i];
    case HS_U64: return (int64_t)((const uint64_t *)p)[i];
    default: {
      double d = hs_load_f64(t, p, i);
      if (isnan(d)) return 0;
      if (d >= 9223372036854775807.0) return INT64_MAX;
      if (d <= -9223372036854775808.0) return INT64_MIN;
      return (int64_t)d;
    }
  }
}

uint64_t hs_load_u64(hs_dtype t, const void *p, int64_t i) {
  if (t == HS_U64) return ((const uint64_t *)p)[i];
  return (uint64_t)hs_load_i64(t, p, i);
}

void hs_store_f64(hs_dtype t, void *p, int64_t i, double v) {
  switch (t) {
    case HS_F16: ((uint16_t *)p)[i] = hs_f64_to_f16(v); return;
    case HS_BF16: ((uint16_t *)p)[i] = hs_f64_to_bf16(v); return;
    case HS_F32: ((float *)p)[i] = (float)v; return;
    case HS_F64: ((double *)p)[i] = v; return;
    case HS_PRED: ((uint8_t *)p)[i] = v != 0; return;
    default: break;
  }
  /* float -> integer: truncate toward zero, saturate, NaN -> 0 (XLA's rule). */
  if (isnan(v)) {
    hs_store_i64(t, p, i, 0);
    return;
  }
  if (hs_dtype_is_unsigned(t)) {
    int bits = hs_dtype_bits(t);
    double maxv = ldexp(1.0, bits) - 1.0;
    uint64_t u;
    if (v <= 0) u = 0;
    else if (v >= maxv) u = bits == 64 ? UINT64_MAX : (uint64_t)maxv;
    else u = (uint64_t)v;
    switch (t) {
      case HS_U8: ((uint8_t *)p)[i] = (uint8_t)u; break;
      case HS_U16: ((uint16_t *)p)[i] = (uint16_t)u; break;
      case HS_U32: ((uint32_t *)p)[i] = (uint32_t)u; break;
      default: ((uint64_t *)p)[i] = u; break;
    }
    return;
  }
  int bits = hs_dtype_bits(t);
  double hi = ldexp(1.0, bits - 1), lo = -hi;
  int64_t s;
  if (v >= hi) s = (int64_t)((bits == 64) ? INT64_MAX : (int64_t)hi - 1);
  else if (v <= lo) s = (bits == 64) ? INT64_MIN : (int64_t)lo;
  else s = (int64_t)v;
  hs_store_i64(t, p, i, s);
}

void hs_store_i64(hs_dtype t, void *p, int64_t i, int64_t v) {
  switch (t) {
    case HS_PRED: ((uint8_t *)p)[i] = v != 0; break;
    case HS_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case HS_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case HS_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case HS_I64: ((int64_t *)p)[i] = v; break;
    case HS_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case HS_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case HS_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case HS_U64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    default: hs_store_f64(t, p, i, (double)v); break;
  }
}
