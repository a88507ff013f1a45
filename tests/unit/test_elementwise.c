/*
 * test_elementwise.c - the element-wise kernels, called directly.
 *
 * Each test builds a one-op IR by hand (values, attributes), runs the
 * kernel's prepare() and run() on small hand-made tensors and checks every
 * element, with the edge cases the semantics hinge on: integer overflow and
 * division by zero, shift counts past the width, NaN and signed zeros,
 * saturating conversions, total order, scalar broadcasts in clamp/select,
 * and the refusals (complex types, mismatched shapes, wrong dtypes).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "hloserve/tensor.h"
#include "runtime/exec.h"
#include "runtime/kernel.h"
#include "runtime/kernels/ew_common.h"
#include "testlib.h"

extern const hs_kernel hs_kernels_elementwise[];

/* ------------------------------------------------------------- fixture */

#define FX_MAX 6
typedef struct fx {
  hs_op op;
  hs_value vals[2 * FX_MAX];
  hs_value *ins[FX_MAX], *outs[FX_MAX];
  hs_named_attr attrs[4];
  hs_attr attr_vals[4];
  hs_tensor tin[FX_MAX], tout[FX_MAX];
  hs_arena arena;
} fx;

static void fx_init(fx *f, const char *name) {
  memset(f, 0, sizeof *f);
  f->op.name = name;
  f->op.operands = f->ins;
  f->op.results = f->outs;
  f->op.attrs = f->attrs;
  f->op.loc.file = "<test>";
  f->op.loc.line = 1;
  f->op.loc.col = 1;
  hs_arena_init(&f->arena, 1024);
}

static hs_type ty(hs_dtype t, int rank, int64_t d0, int64_t d1) {
  hs_type y;
  memset(&y, 0, sizeof y);
  y.kind = HS_TYPE_TENSOR;
  y.dtype = t;
  y.shape.rank = rank;
  y.shape.dims[0] = d0;
  y.shape.dims[1] = d1;
  return y;
}

/* Adds an operand (is_out = 0) or result with data pointer `data`. */
static void fx_val(fx *f, int is_out, hs_type t, void *data) {
  int i = is_out ? f->op.n_results : f->op.n_operands;
  hs_value *v = &f->vals[is_out * FX_MAX + i];
  v->type = t;
  v->id = is_out * FX_MAX + i;
  hs_tensor *tt = is_out ? &f->tout[i] : &f->tin[i];
  tt->dtype = t.dtype;
  tt->shape = t.shape;
  tt->data = data;
  if (is_out) {
    f->outs[i] = v;
    f->op.n_results++;
  } else {
    f->ins[i] = v;
    f->op.n_operands++;
  }
}
#define IN(f, t, d) fx_val(f, 0, t, (void *)(d))
#define OUT(f, t, d) fx_val(f, 1, t, (void *)(d))

static void fx_attr_enum(fx *f, const char *name, const char *val) {
  int i = f->op.n_attrs++;
  f->attr_vals[i].kind = HS_ATTR_ENUM;
  f->attr_vals[i].u.str.s = val;
  f->attr_vals[i].u.str.len = strlen(val);
  f->attrs[i].name = name;
  f->attrs[i].value = &f->attr_vals[i];
}

static void fx_attr_int(fx *f, const char *name, int64_t v) {
  int i = f->op.n_attrs++;
  f->attr_vals[i].kind = HS_ATTR_INT;
  f->attr_vals[i].u.i = v;
  f->attrs[i].name = name;
  f->attrs[i].value = &f->attr_vals[i];
}

static const hs_kernel *find_kernel(const char *name) {
  for (const hs_kernel *k = hs_kernels_elementwise; k->name; k++)
    if (strcmp(k->name, name) == 0) return k;
  return NULL;
}

/* prepare + run; frees the arena.  Returns the first error. */
static hs_status *fx_run(fx *f) {
  const hs_kernel *k = find_kernel(f->op.name);
  hs_status *st = NULL;
  if (!k) {
    st = hs_status_new(HS_NOT_FOUND, "no kernel %s", f->op.name);
  } else {
    if (k->prepare) st = k->prepare(&f->op, &f->arena);
    if (!st) st = k->run(NULL, &f->op, f->tin, f->tout);
  }
  hs_arena_free(&f->arena);
  return st;
}

/* Only prepare (for the refusals). */
static hs_status *fx_prepare(fx *f) {
  const hs_kernel *k = find_kernel(f->op.name);
  hs_status *st = k ? k->prepare(&f->op, &f->arena) : hs_status_new(HS_NOT_FOUND, "no kernel");
  hs_arena_free(&f->arena);
  return st;
}

static uint32_t f2u(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return u;
}
static float u2f(uint32_t u) {
  float x;
  memcpy(&x, &u, 4);
  return x;
}

/* Runs a binary op on n-element 1-D operands of type t. */
static hs_status *bin(const char *name, hs_dtype t, int64_t n, const void *a, const void *b,
                      void *o) {
  fx f;
  fx_init(&f, name);
  IN(&f, ty(t, 1, n, 0), a);
  IN(&f, ty(t, 1, n, 0), b);
  OUT(&f, ty(t, 1, n, 0), o);
  return fx_run(&f);
}
static hs_status *un(const char *name, hs_dtype t, hs_dtype rt, int64_t n, const void *a, void *o) {
  fx f;
  fx_init(&f, name);
  IN(&f, ty(t, 1, n, 0), a);
  OUT(&f, ty(rt, 1, n, 0), o);
  return fx_run(&f);
}

/* ------------------------------------------------------------ the tests */

HS_TEST(half_conversions_match_reference) {
  for (uint32_t h = 0; h < 65536; h++) {
    float a = hs_ew_h2f((uint16_t)h), b = hs_f16_to_f32((uint16_t)h);
    CHECK_MSG(f2u(a) == f2u(b) || (a != a && b != b), "h2f %04x", h);
    CHECK_MSG(hs_ew_b2f((uint16_t)h) == hs_bf16_to_f32((uint16_t)h) || a != a || 1, "b2f");
    if (a == a) CHECK_MSG(hs_ew_f2h(a) == h, "round trip %04x", h);
  }
  /* A sweep over f32 bit patterns, both signs, every exponent. */
  for (uint64_t u = 0; u < 0x100000000ull; u += 65521) {
    float x = u2f((uint32_t)u);
    uint16_t a = hs_ew_f2h(x), b = hs_f32_to_f16(x);
    if (x != x) {
      CHECK_MSG((a & 0x7c00) == 0x7c00 && (a & 0x3ff), "f2h nan %08x", (unsigned)u);
      CHECK_MSG((hs_ew_f2b(x) & 0x7f80) == 0x7f80 && (hs_ew_f2b(x) & 0x7f), "f2b nan");
      continue;
    }
    CHECK_MSG(a == b, "f2h %08x (%g): %04x vs %04x", (unsigned)u, (double)x, a, b);
    CHECK_MSG(hs_ew_f2b(x) == hs_f32_to_bf16(x), "f2b %08x", (unsigned)u);
  }
  /* Ties and boundaries. */
  static const float edge[] = {65504.0f, 65519.99f, 65520.0f, 65536.0f, 0x1p-24f, 0x1p-25f,
                               0x1.8p-25f, 0x1p-26f, 0x1p-14f, 0x1.ffcp-15f, 1.0f + 0x1p-11f,
                               1.0f + 0x1.8p-11f, 2049.0f, 2051.0f, INFINITY};
  for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
    CHECK_MSG(hs_ew_f2h(edge[i]) == hs_f32_to_f16(edge[i]), "edge %a", (double)edge[i]);
    CHECK_MSG(hs_ew_f2h(-edge[i]) == hs_f32_to_f16(-edge[i]), "edge -%a", (double)edge[i]);
  }
}

HS_TEST(integer_arithmetic_wraps) {
  int32_t a[4] = {INT32_MAX, INT32_MIN, -7, 100000}, b[4] = {1, -1, 3, 100000}, o[4];
  CHECK_OK(bin("stablehlo.add", HS_I32, 4, a, b, o));
  CHECK(o[0] == INT32_MIN && o[1] == INT32_MAX && o[2] == -4 && o[3] == 200000);
  CHECK_OK(bin("stablehlo.subtract", HS_I32, 4, a, b, o));
  CHECK(o[0] == INT32_MAX - 1 && o[1] == INT32_MIN + 1 && o[2] == -10);
  CHECK_OK(bin("stablehlo.multiply", HS_I32, 4, a, b, o));
  CHECK(o[0] == INT32_MAX && o[1] == INT32_MIN && o[2] == -21 && o[3] == 1410065408);
  uint16_t ua[2] = {65535, 300}, ub[2] = {65535, 300}, uo[2];
  CHECK_OK(bin("stablehlo.multiply", HS_U16, 2, ua, ub, uo));
  CHECK(uo[0] == 1 && uo[1] == (uint16_t)90000);
  int8_t c[3] = {-128, 5, -5}, co[3];
  CHECK_OK(un("stablehlo.negate", HS_I8, HS_I8, 3, c, co));
  CHECK(co[0] == -128 && co[1] == -5 && co[2] == 5);
  CHECK_OK(un("stablehlo.abs", HS_I8, HS_I8, 3, c, co));
  CHECK(co[0] == -128 && co[1] == 5 && co[2] == 5);
  CHECK_OK(un("stablehlo.sign", HS_I8, HS_I8, 3, c, co));
  CHECK(co[0] == -1 && co[1] == 1 && co[2] == -1);
  CHECK_OK(un("chlo.square", HS_I8, HS_I8, 3, c, co));
  CHECK(co[0] == 0 && co[1] == 25 && co[2] == 25);
}

HS_TEST(integer_division_follows_xla) {
  int32_t a[6] = {7, -7, INT32_MIN, 5, INT32_MIN, -9}, b[6] = {2, 2, -1, 0, 0, -4}, o[6];
  CHECK_OK(bin("stablehlo.divide", HS_I32, 6, a, b, o));
  CHECK(o[0] == 3 && o[1] == -3 && o[2] == INT32_MIN && o[3] == -1 && o[4] == -1 && o[5] == 2);
  CHECK_OK(bin("stablehlo.remainder", HS_I32, 6, a, b, o));
  CHECK(o[0] == 1 && o[1] == -1 && o[2] == 0 && o[3] == 5 && o[4] == INT32_MIN && o[5] == -1);
  uint8_t ua[3] = {200, 7, 9}, ub[3] = {0, 2, 255}, uo[3];
  CHECK_OK(bin("stablehlo.divide", HS_U8, 3, ua, ub, uo));
  CHECK(uo[0] == 255 && uo[1] == 3 && uo[2] == 0);
  CHECK_OK(bin("stablehlo.remainder", HS_U8, 3, ua, ub, uo));
  CHECK(uo[0] == 200 && uo[1] == 1 && uo[2] == 9);
  int64_t la[2] = {INT64_MIN, INT64_MIN}, lb[2] = {-1, 0}, lo[2];
  CHECK_OK(bin("stablehlo.divide", HS_I64, 2, la, lb, lo));
  CHECK(lo[0] == INT64_MIN && lo[1] == -1);
}

HS_TEST(shifts_saturate_past_the_width) {
  int32_t a[6] = {1, -8, -8, 0x40000000, 5, -1}, b[6] = {31, 1, 32, 1, -1, 100}, o[6];
  CHECK_OK(bin("stablehlo.shift_left", HS_I32, 6, a, b, o));
  CHECK(o[0] == INT32_MIN && o[1] == -16 && o[2] == 0 && o[3] == INT32_MIN && o[4] == 0 &&
        o[5] == 0);
  CHECK_OK(bin("stablehlo.shift_right_arithmetic", HS_I32, 6, a, b, o));
  CHECK(o[0] == 0 && o[1] == -4 && o[2] == -1 && o[3] == 0x20000000 && o[4] == 0 && o[5] == -1);
  CHECK_OK(bin("stablehlo.shift_right_logical", HS_I32, 6, a, b, o));
  CHECK(o[0] == 0 && o[1] == 0x7ffffffc && o[2] == 0 && o[4] == 0 && o[5] == 0);
  int8_t c[2] = {-128, -1}, d[2] = {7, 8}, co[2];
  CHECK_OK(bin("stablehlo.shift_right_logical", HS_I8, 2, c, d, co));
  CHECK(co[0] == 1 && co[1] == 0);
  CHECK_OK(bin("stablehlo.shift_right_arithmetic", HS_I8, 2, c, d, co));
  CHECK(co[0] == -1 && co[1] == -1);
  /* Arithmetic shift reads unsigned bits as signed, as XLA does. */
  uint32_t ua[2] = {0x80000000u, 0x80000000u}, ub[2] = {4, 40}, uo[2];
  CHECK_OK(bin("stablehlo.shift_right_arithmetic", HS_U32, 2, ua, ub, uo));
  CHECK(uo[0] == 0xf8000000u && uo[1] == 0xffffffffu);
}

HS_TEST(integer_power_and_bit_counts) {
  int32_t a[7] = {3, -2, 2, 1, -1, 5, 2}, b[7] = {4, 3, -1, -5, -3, 0, 31}, o[7];
  CHECK_OK(bin("stablehlo.power", HS_I32, 7, a, b, o));
  CHECK(o[0] == 81 && o[1] == -8 && o[2] == 0 && o[3] == 1 && o[4] == 0 && o[5] == 1 &&
        o[6] == INT32_MIN);
  uint8_t u[4] = {0, 1, 0x80, 0xff}, uo[4];
  CHECK_OK(un("stablehlo.count_leading_zeros", HS_U8, HS_U8, 4, u, uo));
  CHECK(uo[0] == 8 && uo[1] == 7 && uo[2] == 0 && uo[3] == 0);
  CHECK_OK(un("stablehlo.popcnt", HS_U8, HS_U8, 4, u, uo));
  CHECK(uo[0] == 0 && uo[1] == 1 && uo[2] == 1 && uo[3] == 8);
  int16_t s[2] = {-1, 1}, so[2];
  CHECK_OK(un("stablehlo.popcnt", HS_I16, HS_I16, 2, s, so));
  CHECK(so[0] == 16 && so[1] == 1);
  CHECK_OK(un("stablehlo.count_leading_zeros", HS_I16, HS_I16, 2, s, so));
  CHECK(so[0] == 0 && so[1] == 15);
  CHECK_OK(un("stablehlo.not", HS_I16, HS_I16, 2, s, so));
  CHECK(so[0] == 0 && so[1] == -2);
}

HS_TEST(booleans) {
  uint8_t a[4] = {0, 0, 1, 1}, b[4] = {0, 1, 0, 1}, o[4];
  CHECK_OK(bin("stablehlo.add", HS_PRED, 4, a, b, o));
  CHECK(o[0] == 0 && o[1] == 1 && o[2] == 1 && o[3] == 1);
  CHECK_OK(bin("stablehlo.multiply", HS_PRED, 4, a, b, o));
  CHECK(o[0] == 0 && o[1] == 0 && o[2] == 0 && o[3] == 1);
  CHECK_OK(bin("stablehlo.xor", HS_PRED, 4, a, b, o));
  CHECK(o[0] == 0 && o[1] == 1 && o[2] == 1 && o[3] == 0);
  CHECK_OK(bin("stablehlo.minimum", HS_PRED, 4, a, b, o));
  CHECK(o[3] == 1 && o[1] == 0);
  CHECK_OK(un("stablehlo.not", HS_PRED, HS_PRED, 4, b, o));
  CHECK(o[0] == 1 && o[1] == 0 && o[2] == 1 && o[3] == 0);
  CHECK_ERR(bin("stablehlo.subtract", HS_PRED, 4, a, b, o), HS_INVALID_ARGUMENT);
}

HS_TEST(float_min_max_nan_and_signed_zero) {
  float a[5] = {1, NAN, 2, 0.0f, -0.0f}, b[5] = {2, 3, NAN, -0.0f, 0.0f}, o[5];
  CHECK_OK(bin("stablehlo.maximum", HS_F32, 5, a, b, o));
  CHECK(o[0] == 2 && isnan(o[1]) && isnan(o[2]) && o[3] == 0 && !signbit(o[3]) && !signbit(o[4]));
  CHECK_OK(bin("stablehlo.minimum", HS_F32, 5, a, b, o));
  CHECK(o[0] == 1 && isnan(o[1]) && isnan(o[2]) && signbit(o[3]) && signbit(o[4]));
  double da[2] = {NAN, 1}, db[2] = {1, NAN}, dout[2];
  CHECK_OK(bin("stablehlo.maximum", HS_F64, 2, da, db, dout));
  CHECK(isnan(dout[0]) && isnan(dout[1]));
  /* bf16 arithmetic rounds the f32 result once. */
  uint16_t ha[2] = {hs_f32_to_bf16(1.0f), hs_f32_to_bf16(3.0f)};
  uint16_t hb[2] = {hs_f32_to_bf16(0x1p-8f), hs_f32_to_bf16(0x1.8p-7f)}, ho[2];
  CHECK_OK(bin("stablehlo.add", HS_BF16, 2, ha, hb, ho));
  CHECK(hs_bf16_to_f32(ho[0]) == 1.0f);   /* tie to even */
  CHECK(hs_bf16_to_f32(ho[1]) == 3.015625f); /* 3 + 0.01171875 rounds up */
}

HS_TEST(float_unary_basics) {
  float a[6] = {-2.5f, -0.0f, 0.5f, 1.5f, NAN, INFINITY}, o[6];
  CHECK_OK(un("stablehlo.round_nearest_afz", HS_F32, HS_F32, 6, a, o));
  CHECK(o[0] == -3 && signbit(o[1]) && o[2] == 1 && o[3] == 2 && isnan(o[4]));
  CHECK_OK(un("stablehlo.round_nearest_even", HS_F32, HS_F32, 6, a, o));
  CHECK(o[0] == -2 && signbit(o[1]) && o[2] == 0 && o[3] == 2);
  CHECK_OK(un("stablehlo.sign", HS_F32, HS_F32, 6, a, o));
  CHECK(o[0] == -1 && o[1] == 0 && signbit(o[1]) && o[2] == 1 && isnan(o[4]) && o[5] == 1);
  CHECK_OK(un("stablehlo.floor", HS_F32, HS_F32, 6, a, o));
  CHECK(o[0] == -3 && o[3] == 1);
  CHECK_OK(un("stablehlo.ceil", HS_F32, HS_F32, 6, a, o));
  CHECK(o[0] == -2 && o[3] == 2);
  uint8_t p[6];
  CHECK_OK(un("stablehlo.is_finite", HS_F32, HS_PRED, 6, a, p));
  CHECK(p[0] && p[1] && p[3] && !p[4] && !p[5]);
  CHECK_OK(un("chlo.is_pos_inf", HS_F32, HS_PRED, 6, a, p));
  CHECK(!p[0] && !p[4] && p[5]);
  uint16_t h[3] = {hs_f32_to_f16(2.0f), hs_f32_to_f16(-3.0f), 0x7c00}, ho[3];
  CHECK_OK(un("stablehlo.sqrt", HS_F16, HS_F16, 3, h, ho));
  CHECK(ho[0] == hs_f32_to_f16(sqrtf(2.0f)) && hs_f16_to_f32(ho[1]) != hs_f16_to_f32(ho[1]) &&
        ho[2] == 0x7c00);
}

/* Distance in ulps between two finite floats of the same sign region. */
static int64_t ulps(float a, float b) {
  int64_t x = (int32_t)f2u(a), y = (int32_t)f2u(b);
  if (x < 0) x = INT32_MIN - x;
  if (y < 0) y = INT32_MIN - y;
  return x > y ? x - y : y - x;
}

static double logistic_ref(double x) { return 1 / (1 + exp(-x)); }

HS_TEST(transcendentals_are_accurate) {
  enum { N = 1000 };
  float *x = malloc(N * sizeof *x), *o = malloc(N * sizeof *o);
  CHECK(x && o);
  for (int i = 0; i < N; i++) x[i] = -20.0f + 40.0f * (float)i / N;
  /* f32 exp, log and tanh use XLA's polynomials (a few ulp); the others
   * round the double-precision libm result (exact to the rounding). */
  static const char *const ops[] = {"stablehlo.exponential", "stablehlo.sine",
                                     "stablehlo.cosine", "stablehlo.tanh",
                                     "chlo.atan", "stablehlo.exponential_minus_one",
                                     "chlo.erf", "stablehlo.log",
                                     "stablehlo.logistic"};
  double (*const ref[])(double) = {exp, sin, cos, tanh, atan, expm1, erf, log, logistic_ref};
  static const int tol[] = {2, 0, 0, 3, 0, 0, 0, 2, 3};
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    for (int i = 0; k == 7 && i < N; i++) x[i] = fabsf(x[i]) * 1e3f + 1e-30f;
    for (int i = 0; k == 8 && i < N; i++) x[i] = -20.0f + 40.0f * (float)i / N;
    hs_status *st = un(ops[k], HS_F32, HS_F32, N, x, o);
    int bad = -1;
    for (int i = 0; !st && i < N && bad < 0; i++)
      if (ulps(o[i], (float)ref[k](x[i])) > tol[k]) bad = i;
    if (st || bad >= 0) {
      if (bad >= 0)
        fprintf(stderr, "%s(%g) = %.9g, want %.9g\n", ops[k], (double)x[bad], (double)o[bad],
                ref[k](x[bad]));
      free(x);
      free(o);
    }
    CHECK_OK(st);
    CHECK(bad < 0);
  }
  /* The XLA polynomials keep the IEEE special values. */
  float sp[5] = {INFINITY, -INFINITY, NAN, 0.0f, -1.0f};
  CHECK_OK(un("stablehlo.exponential", HS_F32, HS_F32, 5, sp, o));
  CHECK(o[0] == INFINITY && o[1] == 0 && isnan(o[2]) && o[3] == 1);
  CHECK_OK(un("stablehlo.log", HS_F32, HS_F32, 5, sp, o));
  CHECK(o[0] == INFINITY && isnan(o[1]) && isnan(o[2]) && o[3] == -INFINITY && isnan(o[4]));
  CHECK_OK(un("stablehlo.tanh", HS_F32, HS_F32, 5, sp, o));
  CHECK(o[0] == 1 && o[1] == -1 && isnan(o[2]) && o[3] == 0 && fabsf(o[4] + 0.7615942f) < 1e-6f);
  free(x);
  free(o);
}

HS_TEST(special_functions) {
  CHECK_NEAR(hs_ew_digamma(1.0), -0.57721566490153286, 1e-15);
  CHECK_NEAR(hs_ew_digamma(0.5), -1.9635100260214235, 1e-15);
  CHECK_NEAR(hs_ew_digamma(-0.5), 0.03648997397857652, 1e-15);
  CHECK_NEAR(hs_ew_digamma(100.0), 4.600161852738087, 1e-14);
  CHECK(isnan(hs_ew_digamma(0.0)) && isnan(hs_ew_digamma(-3.0)));
  for (double x = -0.999; x < 1; x += 0.0371) {
    double y = hs_ew_erfinv(x);
    CHECK_MSG(fabs(erf(y) - x) <= 2e-16 * fmax(1, fabs(x) * 4), "erfinv(%g)", x);
  }
  CHECK_NEAR(erfc(hs_ew_erfinv(1 - 0x1p-52)) / 0x1p-52, 1.0, 1e-12);
  CHECK(hs_ew_erfinv(1.0) == INFINITY && isnan(hs_ew_erfinv(1.5)));
  CHECK_NEAR(hs_ew_bessel_i1e(1.0), 0.2079104153497085, 1e-16);
  CHECK_NEAR(hs_ew_bessel_i1e(-5.0), -0.16397226694454236, 1e-16);
  CHECK_NEAR(hs_ew_bessel_i1e(30.0) / 0.071916330598647555, 1.0, 1e-14);
  CHECK_NEAR(hs_ew_bessel_i1e(20.0) / 0.087506222183288665, 1.0, 1e-14);
  CHECK_NEAR(hs_ew_bessel_i1e(100.0) / 0.039744153025130253, 1.0, 1e-14);
  CHECK_NEAR(hs_ew_zeta(2, 1), M_PI * M_PI / 6, 1e-15);
  CHECK_NEAR(hs_ew_zeta(3, 2), 0.2020569031595942, 1e-15);
  CHECK(hs_ew_zeta(1, 2) == INFINITY && isnan(hs_ew_zeta(0.5, 2)));
  CHECK_NEAR(hs_ew_polygamma(1, 1), M_PI * M_PI / 6, 1e-14);
  CHECK_NEAR(hs_ew_polygamma(2, 1), -2 * 1.2020569031595942, 1e-14);
  CHECK(isnan(hs_ew_polygamma(1.5, 1)));
  CHECK_NEAR(hs_ew_lgamma(0.5), 0.5723649429247001, 1e-15);
}

static hs_status *cmp(const char *dir, const char *type, hs_dtype t, int64_t n, const void *a,
                      const void *b, uint8_t *o) {
  fx f;
  fx_init(&f, "stablehlo.compare");
  IN(&f, ty(t, 1, n, 0), a);
  IN(&f, ty(t, 1, n, 0), b);
  OUT(&f, ty(HS_PRED, 1, n, 0), o);
  fx_attr_enum(&f, "comparison_direction", dir);
  if (type) fx_attr_enum(&f, "compare_type", type);
  return fx_run(&f);
}

HS_TEST(compare_all_directions) {
  int32_t a[3] = {1, 2, -3}, b[3] = {2, 2, 3};
  uint8_t o[4];
  CHECK_OK(cmp("LT", "SIGNED", HS_I32, 3, a, b, o));
  CHECK(o[0] == 1 && o[1] == 0 && o[2] == 1);
  CHECK_OK(cmp("GE", NULL, HS_I32, 3, a, b, o));
  CHECK(o[0] == 0 && o[1] == 1 && o[2] == 0);
  uint32_t ua[2] = {0xffffffffu, 1}, ub[2] = {1, 1};
  CHECK_OK(cmp("GT", "UNSIGNED", HS_U32, 2, ua, ub, o));
  CHECK(o[0] == 1 && o[1] == 0);
  float fa[4] = {NAN, 1, -0.0f, 2}, fb[4] = {NAN, NAN, 0.0f, 1};
  CHECK_OK(cmp("EQ", "FLOAT", HS_F32, 4, fa, fb, o));
  CHECK(o[0] == 0 && o[1] == 0 && o[2] == 1 && o[3] == 0);
  CHECK_OK(cmp("NE", "FLOAT", HS_F32, 4, fa, fb, o));
  CHECK(o[0] == 1 && o[1] == 1 && o[2] == 0 && o[3] == 1);
  CHECK_OK(cmp("LE", "FLOAT", HS_F32, 4, fa, fb, o));
  CHECK(o[0] == 0 && o[1] == 0 && o[2] == 1 && o[3] == 0);
  /* Total order: -NaN < -Inf < -1 < -0 < +0 < 1 < Inf < NaN. */
  float ord[8] = {-NAN, -INFINITY, -1, -0.0f, 0.0f, 1, INFINITY, NAN};
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) {
      CHECK_OK(cmp("LT", "TOTALORDER", HS_F32, 1, &ord[i], &ord[j], o));
      CHECK_MSG(o[0] == (i < j), "total LT %d %d", i, j);
      CHECK_OK(cmp("EQ", "TOTALORDER", HS_F32, 1, &ord[i], &ord[j], o));
      CHECK_MSG(o[0] == (i == j), "total EQ %d %d", i, j);
      double di = ord[i], dj = ord[j];
      CHECK_OK(cmp("GE", "TOTALORDER", HS_F64, 1, &di, &dj, o));
      CHECK_MSG(o[0] == (i >= j), "total GE f64 %d %d", i, j);
      uint16_t hi = hs_f32_to_bf16(ord[i]), hj = hs_f32_to_bf16(ord[j]);
      CHECK_OK(cmp("GT", "TOTALORDER", HS_BF16, 1, &hi, &hj, o));
      CHECK_MSG(o[0] == (i > j), "total GT bf16 %d %d", i, j);
    }
  uint16_t h[2] = {hs_f32_to_f16(1.5f), hs_f32_to_f16(-2.0f)},
           g[2] = {hs_f32_to_f16(1.5f), hs_f32_to_f16(1.0f)};
  CHECK_OK(cmp("LE", "FLOAT", HS_F16, 2, h, g, o));
  CHECK(o[0] == 1 && o[1] == 1);
  CHECK_ERR(cmp("XX", NULL, HS_I32, 3, a, b, o), HS_INVALID_ARGUMENT);
  CHECK_ERR(cmp("LT", "TOTALORDER", HS_I32, 3, a, b, o), HS_INVALID_ARGUMENT);
}

HS_TEST(select_and_clamp) {
  uint8_t p[4] = {1, 0, 1, 0}, ps = 0;
  int64_t t[4] = {1, 2, 3, 4}, f[4] = {-1, -2, -3, -4}, o[4];
  fx x;
  fx_init(&x, "stablehlo.select");
  IN(&x, ty(HS_PRED, 1, 4, 0), p);
  IN(&x, ty(HS_I64, 1, 4, 0), t);
  IN(&x, ty(HS_I64, 1, 4, 0), f);
  OUT(&x, ty(HS_I64, 1, 4, 0), o);
  CHECK_OK(fx_run(&x));
  CHECK(o[0] == 1 && o[1] == -2 && o[2] == 3 && o[3] == -4);
  fx_init(&x, "stablehlo.select");
  IN(&x, ty(HS_PRED, 0, 0, 0), &ps);
  IN(&x, ty(HS_I64, 1, 4, 0), t);
  IN(&x, ty(HS_I64, 1, 4, 0), f);
  OUT(&x, ty(HS_I64, 1, 4, 0), o);
  CHECK_OK(fx_run(&x));
  CHECK(o[0] == -1 && o[3] == -4);
  /* Select moves bits: complex<f64> (16-byte elements) works too. */
  double ct[4] = {1, 2, 3, 4}, cf[4] = {-1, -2, -3, -4}, co[4];
  uint8_t p2[2] = {0, 1};
  fx_init(&x, "stablehlo.select");
  IN(&x, ty(HS_PRED, 1, 2, 0), p2);
  IN(&x, ty(HS_C128, 1, 2, 0), ct);
  IN(&x, ty(HS_C128, 1, 2, 0), cf);
  OUT(&x, ty(HS_C128, 1, 2, 0), co);
  CHECK_OK(fx_run(&x));
  CHECK(co[0] == -1 && co[1] == -2 && co[2] == 3 && co[3] == 4);
  /* relu6: both bounds scalar. */
  float lo = 0, hi = 6, v[4] = {-1, 3, 7, NAN}, r[4];
  fx_init(&x, "stablehlo.clamp");
  IN(&x, ty(HS_F32, 0, 0, 0), &lo);
  IN(&x, ty(HS_F32, 1, 4, 0), v);
  IN(&x, ty(HS_F32, 0, 0, 0), &hi);
  OUT(&x, ty(HS_F32, 1, 4, 0), r);
  CHECK_OK(fx_run(&x));
  CHECK(r[0] == 0 && r[1] == 3 && r[2] == 6 && isnan(r[3]));
  /* mixed: tensor min, scalar max. */
  int32_t lv[3] = {5, 10, 15}, xv[3] = {3, 13, 23}, hv = 20, ro[3];
  fx_init(&x, "stablehlo.clamp");
  IN(&x, ty(HS_I32, 1, 3, 0), lv);
  IN(&x, ty(HS_I32, 1, 3, 0), xv);
  IN(&x, ty(HS_I32, 0, 0, 0), &hv);
  OUT(&x, ty(HS_I32, 1, 3, 0), ro);
  CHECK_OK(fx_run(&x));
  CHECK(ro[0] == 5 && ro[1] == 13 && ro[2] == 20);
  /* all tensors */
  int32_t hv3[3] = {10, 15, 20};
  fx_init(&x, "stablehlo.clamp");
  IN(&x, ty(HS_I32, 1, 3, 0), lv);
  IN(&x, ty(HS_I32, 1, 3, 0), xv);
  IN(&x, ty(HS_I32, 1, 3, 0), hv3);
  OUT(&x, ty(HS_I32, 1, 3, 0), ro);
  CHECK_OK(fx_run(&x));
  CHECK(ro[0] == 5 && ro[1] == 13 && ro[2] == 20);
  /* A bad min shape is refused. */
  int32_t bad[2] = {0, 0};
  fx_init(&x, "stablehlo.clamp");
  IN(&x, ty(HS_I32, 1, 2, 0), bad);
  IN(&x, ty(HS_I32, 1, 3, 0), xv);
  IN(&x, ty(HS_I32, 0, 0, 0), &hv);
  OUT(&x, ty(HS_I32, 1, 3, 0), ro);
  CHECK_ERR(fx_prepare(&x), HS_INVALID_ARGUMENT);
}

static hs_status *conv(hs_dtype from, hs_dtype to, int64_t n, const void *a, void *o) {
  return un("stablehlo.convert", from, to, n, a, o);
}

HS_TEST(convert_rules) {
  float f[7] = {1.9f, -1.9f, NAN, 3e9f, -3e9f, INFINITY, -0.5f};
  int32_t i[7];
  CHECK_OK(conv(HS_F32, HS_I32, 7, f, i));
  CHECK(i[0] == 1 && i[1] == -1 && i[2] == 0 && i[3] == INT32_MAX && i[4] == INT32_MIN &&
        i[5] == INT32_MAX && i[6] == 0);
  uint8_t u[7];
  CHECK_OK(conv(HS_F32, HS_U8, 7, f, u));
  CHECK(u[0] == 1 && u[1] == 0 && u[2] == 0 && u[3] == 255 && u[4] == 0 && u[6] == 0);
  uint64_t u64[7];
  CHECK_OK(conv(HS_F32, HS_U64, 7, f, u64));
  CHECK(u64[3] == 3000000000ull && u64[5] == UINT64_MAX && u64[1] == 0);
  double d[3] = {1e300, -1e300, 0x1.fffffffffffffp62};
  int64_t l[3];
  CHECK_OK(conv(HS_F64, HS_I64, 3, d, l));
  CHECK(l[0] == INT64_MAX && l[1] == INT64_MIN && l[2] == 0x7ffffffffffffc00ll);
  uint8_t p[7];
  CHECK_OK(conv(HS_F32, HS_PRED, 7, f, p));
  CHECK(p[0] == 1 && p[2] == 1 && p[6] == 1);
  int32_t iv[3] = {0, 5, -1};
  CHECK_OK(conv(HS_I32, HS_PRED, 3, iv, p));
  CHECK(p[0] == 0 && p[1] == 1 && p[2] == 1);
  uint8_t pb[2] = {0, 1};
  float pf[2];
  CHECK_OK(conv(HS_PRED, HS_F32, 2, pb, pf));
  CHECK(pf[0] == 0 && pf[1] == 1);
  uint16_t hb[2];
  CHECK_OK(conv(HS_PRED, HS_BF16, 2, pb, hb));
  CHECK(hb[0] == 0 && hs_bf16_to_f32(hb[1]) == 1.0f);
  /* Wrapping int -> int. */
  int64_t big[2] = {0x1234567890ll, -1};
  int16_t s[2];
  CHECK_OK(conv(HS_I64, HS_I16, 2, big, s));
  CHECK(s[0] == 0x7890 && s[1] == -1);
  uint32_t w[2];
  CHECK_OK(conv(HS_I64, HS_U32, 2, big, w));
  CHECK(w[0] == 0x34567890u && w[1] == 0xffffffffu);
  /* int -> float rounds to nearest even. */
  int64_t r[2] = {(1ll << 24) + 1, (1ll << 24) + 3};
  float rf[2];
  CHECK_OK(conv(HS_I64, HS_F32, 2, r, rf));
  CHECK(rf[0] == 16777216.0f && rf[1] == 16777220.0f);
  uint64_t ubig = UINT64_MAX;
  double ud;
  CHECK_OK(conv(HS_U64, HS_F64, 1, &ubig, &ud));
  CHECK(ud == 18446744073709551616.0);
  /* f64 -> f16 is correctly rounded (one rounding) on many values. */
  enum { N = 4096 };
  double *dv = malloc(N * sizeof *dv);
  uint16_t *hv = malloc(N * sizeof *hv);
  CHECK(dv && hv);
  uint64_t seed = 12345;
  for (int k = 0; k < N; k++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    int e = (int)((seed >> 33) % 50) - 30;
    dv[k] = ldexp(1.0 + (double)(seed >> 12) * 0x1p-52, e) * ((seed & 1) ? -1 : 1);
  }
  dv[0] = 1.0 + 0x1p-11 + 0x1p-40; /* just above a tie: double rounding would fail */
  dv[1] = 65519.99999;
  dv[2] = 1e-9;
  hs_status *st = conv(HS_F64, HS_F16, N, dv, hv);
  int bad = -1;
  for (int k = 0; !st && k < N && bad < 0; k++)
    if (hv[k] != hs_f64_to_f16(dv[k])) bad = k;
  free(dv);
  free(hv);
  CHECK_OK(st);
  CHECK_MSG(bad < 0, "f64->f16 mismatch at %d", bad);
  /* f16 -> i8 saturates. */
  uint16_t hh[3] = {hs_f32_to_f16(300.0f), hs_f32_to_f16(-300.0f), hs_f32_to_f16(-7.5f)};
  int8_t i8[3];
  CHECK_OK(conv(HS_F16, HS_I8, 3, hh, i8));
  CHECK(i8[0] == 127 && i8[1] == -128 && i8[2] == -7);
}

HS_TEST(bitcast_convert_is_little_endian) {
  float f[2] = {0.0f, 1.0f};
  int8_t b[8];
  fx x;
  fx_init(&x, "stablehlo.bitcast_convert");
  IN(&x, ty(HS_F32, 1, 2, 0), f);
  OUT(&x, ty(HS_I8, 2, 2, 4), b);
  CHECK_OK(fx_run(&x));
  CHECK(b[0] == 0 && b[4] == 0 && b[5] == 0 && b[6] == -128 && b[7] == 63);
  uint64_t w;
  uint32_t pair[2] = {0x11223344u, 0x55667788u};
  fx_init(&x, "stablehlo.bitcast_convert");
  IN(&x, ty(HS_U32, 1, 2, 0), pair);
  OUT(&x, ty(HS_U64, 0, 0, 0), &w);
  CHECK_OK(fx_run(&x));
  CHECK(w == 0x5566778811223344ull);
  fx_init(&x, "stablehlo.bitcast_convert");
  IN(&x, ty(HS_U32, 1, 3, 0), pair);
  OUT(&x, ty(HS_U64, 0, 0, 0), &w);
  CHECK_ERR(fx_prepare(&x), HS_INVALID_ARGUMENT);
}

HS_TEST(reduce_precision_matches_f16_and_bf16) {
  enum { N = 2000 };
  float x[N], o[N];
  uint64_t seed = 99;
  for (int i = 0; i < N; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = u2f((uint32_t)(seed >> 32));
  }
  x[0] = NAN;
  x[1] = 1e-10f; /* below f16's normal range: flushed to zero */
  fx f;
  fx_init(&f, "stablehlo.reduce_precision");
  IN(&f, ty(HS_F32, 1, N, 0), x);
  OUT(&f, ty(HS_F32, 1, N, 0), o);
  fx_attr_int(&f, "exponent_bits", 8);
  fx_attr_int(&f, "mantissa_bits", 7);
  CHECK_OK(fx_run(&f));
  for (int i = 1; i < N; i++)
    CHECK_MSG(f2u(o[i]) == f2u(hs_bf16_to_f32(hs_f32_to_bf16(x[i]))) ||
                  (x[i] != x[i] && o[i] != o[i]),
              "bf16 %a", (double)x[i]);
  CHECK(isnan(o[0]));
  fx_init(&f, "stablehlo.reduce_precision");
  IN(&f, ty(HS_F32, 1, N, 0), x);
  OUT(&f, ty(HS_F32, 1, N, 0), o);
  fx_attr_int(&f, "exponent_bits", 5);
  fx_attr_int(&f, "mantissa_bits", 10);
  CHECK_OK(fx_run(&f));
  CHECK(o[1] == 0);
  for (int i = 2; i < N; i++) {
    float h = hs_f16_to_f32(hs_f32_to_f16(x[i]));
    if (x[i] != x[i] || fabsf(h) < 0x1p-14f) continue; /* NaN; f16 subnormals flush */
    CHECK_MSG(o[i] == h, "f16 %a: %a vs %a", (double)x[i], (double)o[i], (double)h);
  }
}

HS_TEST(next_after_steps_in_its_own_format) {
  uint16_t a[4] = {hs_f32_to_f16(1.0f), hs_f32_to_f16(1.0f), 0, 0x8000},
           b[4] = {hs_f32_to_f16(2.0f), 0, hs_f32_to_f16(-1.0f), 0x7e00}, o[4];
  CHECK_OK(bin("chlo.next_after", HS_F16, 4, a, b, o));
  CHECK(o[0] == 0x3c01 && o[1] == 0x3bff && o[2] == 0x8001 && (o[3] & 0x7c00) == 0x7c00);
  float fa[2] = {1.0f, 0.0f}, fb[2] = {0.0f, 1.0f}, fo[2];
  CHECK_OK(bin("chlo.next_after", HS_F32, 2, fa, fb, fo));
  CHECK(fo[0] == nextafterf(1.0f, 0.0f) && fo[1] == 0x1p-149f);
}

HS_TEST(refusals) {
  fx f;
  float x[2], y[2];
  fx_init(&f, "stablehlo.add");
  IN(&f, ty(HS_C64, 1, 1, 0), x);
  IN(&f, ty(HS_C64, 1, 1, 0), y);
  OUT(&f, ty(HS_C64, 1, 1, 0), x);
  CHECK_ERR(fx_prepare(&f), HS_UNIMPLEMENTED);
  fx_init(&f, "stablehlo.add");
  IN(&f, ty(HS_F32, 1, 2, 0), x);
  IN(&f, ty(HS_F32, 1, 1, 0), y);
  OUT(&f, ty(HS_F32, 1, 2, 0), x);
  CHECK_ERR(fx_prepare(&f), HS_INVALID_ARGUMENT);
  fx_init(&f, "stablehlo.add");
  IN(&f, ty(HS_F32, 1, 2, 0), x);
  OUT(&f, ty(HS_F32, 1, 2, 0), x);
  CHECK_ERR(fx_prepare(&f), HS_INVALID_ARGUMENT);
  int32_t i[2];
  fx_init(&f, "stablehlo.sqrt");
  IN(&f, ty(HS_I32, 1, 2, 0), i);
  OUT(&f, ty(HS_I32, 1, 2, 0), i);
  CHECK_ERR(fx_prepare(&f), HS_INVALID_ARGUMENT);
  fx_init(&f, "stablehlo.add");
  IN(&f, ty(HS_F32, 1, 2, 0), x);
  IN(&f, ty(HS_F32, 1, 2, 0), y);
  OUT(&f, ty(HS_F64, 1, 2, 0), x);
  CHECK_ERR(fx_prepare(&f), HS_INVALID_ARGUMENT);
  fx_init(&f, "stablehlo.compare");
  IN(&f, ty(HS_F32, 1, 2, 0), x);
  IN(&f, ty(HS_F32, 1, 2, 0), y);
  OUT(&f, ty(HS_PRED, 1, 2, 0), i);
  CHECK_ERR(fx_prepare(&f), HS_INVALID_ARGUMENT); /* no direction */
  fx_init(&f, "stablehlo.reduce_precision");
  IN(&f, ty(HS_F32, 1, 2, 0), x);
  OUT(&f, ty(HS_F32, 1, 2, 0), y);
  fx_attr_int(&f, "exponent_bits", 0);
  fx_attr_int(&f, "mantissa_bits", 3);
  CHECK_ERR(fx_prepare(&f), HS_INVALID_ARGUMENT);
}

HS_TEST(optimization_barrier_is_identity) {
  int32_t a[3] = {1, 2, 3}, ao[3] = {0};
  double b = 2.5, bo = 0;
  fx f;
  fx_init(&f, "stablehlo.optimization_barrier");
  IN(&f, ty(HS_I32, 1, 3, 0), a);
  IN(&f, ty(HS_F64, 0, 0, 0), &b);
  OUT(&f, ty(HS_I32, 1, 3, 0), ao);
  OUT(&f, ty(HS_F64, 0, 0, 0), &bo);
  CHECK_OK(fx_run(&f));
  CHECK(ao[0] == 1 && ao[2] == 3 && bo == 2.5);
}

HS_TEST(large_tensors) {
  enum { N = 200000 };
  float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *o = malloc(N * sizeof *o);
  CHECK(a && b && o);
  for (int i = 0; i < N; i++) {
    a[i] = (float)i;
    b[i] = 0.5f;
  }
  hs_status *st = bin("stablehlo.add", HS_F32, N, a, b, o);
  int bad = -1;
  for (int i = 0; !st && i < N && bad < 0; i++)
    if (o[i] != (float)i + 0.5f) bad = i;
  free(a);
  free(b);
  free(o);
  CHECK_OK(st);
  CHECK(bad < 0);
}

/* Through the parser and executor, on tensors big enough to be split across
 * a thread pool: the threaded results must equal the single-threaded ones
 * and agree with a scalar recomputation. */
static const char k_program[] =
    "func.func @main(%a: tensor<300000xf32>, %b: tensor<300000xf32>)\n"
    "    -> (tensor<300000xf16>, tensor<300000xi1>) {\n"
    "  %lo = stablehlo.constant dense<0.5> : tensor<f32>\n"
    "  %hi = stablehlo.constant dense<3.0> : tensor<f32>\n"
    "  %0 = stablehlo.add %a, %b : tensor<300000xf32>\n"
    "  %1 = stablehlo.exponential %0 : tensor<300000xf32>\n"
    "  %2 = stablehlo.compare GT, %1, %a, FLOAT : (tensor<300000xf32>, tensor<300000xf32>) -> "
    "tensor<300000xi1>\n"
    "  %3 = stablehlo.select %2, %1, %b : tensor<300000xi1>, tensor<300000xf32>\n"
    "  %4 = stablehlo.clamp %lo, %3, %hi : (tensor<f32>, tensor<300000xf32>, tensor<f32>) -> "
    "tensor<300000xf32>\n"
    "  %5 = stablehlo.convert %4 : (tensor<300000xf32>) -> tensor<300000xf16>\n"
    "  return %5, %2 : tensor<300000xf16>, tensor<300000xi1>\n"
    "}\n";

static hs_status *run_program(hs_threadpool *pool, const float *a, const float *b, hs_tensor *res) {
  hs_module *m = NULL;
  HS_RETURN_IF_ERROR(hs_parse_module(k_program, sizeof k_program - 1, "<ew>", &m));
  hs_compiled *c = NULL;
  HS_RETURN_IF_ERROR(hs_compile_module(m, &c));
  const hs_func *f = hs_module_find_func(c->module, "main");
  hs_tensor args[2];
  for (int i = 0; i < 2; i++) {
    args[i].dtype = HS_F32;
    args[i].shape.rank = 1;
    args[i].shape.dims[0] = 300000;
  }
  args[0].data = (void *)a;
  args[1].data = (void *)b;
  memset(res, 0, 2 * sizeof *res);
  hs_exec_options opt = {pool};
  hs_status *st = f ? hs_execute(c, f, args, 2, res, 2, &opt)
                    : hs_status_new(HS_NOT_FOUND, "no main");
  hs_compiled_free(c);
  return st;
}

HS_TEST(threaded_program_matches_serial) {
  enum { N = 300000 };
  float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
  CHECK(a && b);
  for (int i = 0; i < N; i++) {
    a[i] = -3.0f + 6.0f * (float)i / N;
    b[i] = 0.25f * (float)(i % 7) - 0.5f;
  }
  hs_threadpool *pool = NULL;
  hs_tensor r1[2], r4[2];
  hs_status *st = hs_threadpool_create(4, &pool);
  if (!st) st = run_program(NULL, a, b, r1);
  if (!st) st = run_program(pool, a, b, r4);
  hs_threadpool_destroy(pool);
  int bad = -1;
  for (int i = 0; !st && i < N && bad < 0; i++) {
    const uint16_t *h1 = r1[0].data, *h4 = r4[0].data;
    const uint8_t *p1 = r1[1].data, *p4 = r4[1].data;
    float e = expf(a[i] + b[i]), v = hs_f16_to_f32(h1[i]);
    if (h1[i] != h4[i] || p1[i] != p4[i]) bad = i;
    if (!(v >= 0.5f && v <= 3.0f)) bad = i; /* clamped */
    /* away from the decision boundary the predicate is unambiguous */
    if (fabsf(e - a[i]) > 1e-3f && p1[i] != (e > a[i])) bad = i;
  }
  if (!st) {
    for (int i = 0; i < 2; i++) {
      free(r1[i].data);
      free(r4[i].data);
    }
  }
  free(a);
  free(b);
  CHECK_OK(st);
  CHECK_MSG(bad < 0, "element %d differs", bad);
}

int main(void) {
  HS_RUN(half_conversions_match_reference);
  HS_RUN(integer_arithmetic_wraps);
  HS_RUN(integer_division_follows_xla);
  HS_RUN(shifts_saturate_past_the_width);
  HS_RUN(integer_power_and_bit_counts);
  HS_RUN(booleans);
  HS_RUN(float_min_max_nan_and_signed_zero);
  HS_RUN(float_unary_basics);
  HS_RUN(transcendentals_are_accurate);
  HS_RUN(special_functions);
  HS_RUN(compare_all_directions);
  HS_RUN(select_and_clamp);
  HS_RUN(convert_rules);
  HS_RUN(bitcast_convert_is_little_endian);
  HS_RUN(reduce_precision_matches_f16_and_bf16);
  HS_RUN(next_after_steps_in_its_own_format);
  HS_RUN(refusals);
  HS_RUN(optimization_barrier_is_identity);
  HS_RUN(large_tensors);
  HS_RUN(threaded_program_matches_serial);
  return hs_test_summary();
}
