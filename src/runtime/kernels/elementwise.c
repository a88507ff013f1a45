/*
 * elementwise.c - element-wise StableHLO/CHLO kernels: arithmetic, logic,
 * shifts, compare, select, clamp, rounding, optimization_barrier, and the
 * table of every element-wise kernel (those in ew_*.c included).
 *
 * Design (see ew_common.h): prepare() validates types and picks one typed
 * loop per (op, element type) - and per comparison direction for compare -
 * so run() never looks at a dtype or an attribute per element.  Semantics are
 * the StableHLO spec's, with XLA's choices where the spec leaves room:
 *   - integers wrap (two's complement), computed in unsigned arithmetic so no
 *     signed overflow is ever undefined behaviour;
 *   - x / 0 = -1 (all ones), INT_MIN / -1 = INT_MIN, x % 0 = x,
 *     INT_MIN % -1 = 0 (XLA's EmitIntegerDivide / EmitIntegerRemainder);
 *   - shifts by >= the bit width (the count read as unsigned) give 0, or the
 *     sign fill for shift_right_arithmetic, which treats the bits as signed
 *     even for unsigned types;
 *   - integer power is exponentiation by squaring over the low 6 bits of the
 *     exponent; a negative exponent gives 1 for base 1 and 0 otherwise;
 *   - i1 arithmetic behaves like `int8(x) OP int8(y) != 0`: add/max = or,
 *     multiply/min = and;
 *   - float maximum/minimum propagate NaN and order -0 < +0 (IEEE 754-2019).
 * The f32 add/multiply/... loops are plain typed loops that gcc vectorises:
 * we ask for -O3 on this file (the project default is -O2) and for
 * -fno-trapping-math / -fno-math-errno, which change no result (we never read
 * FP exception flags or errno) but let gcc if-convert the select-based half
 * conversions and inline sqrt/floor/rint.
 */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE_SIZE__)
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#endif

#include <math.h>
#include <string.h>

#include "runtime/kernels/ew_common.h"

/* ------------------------------------------------------------------ common */

hs_status *hs_ew_check_tensors(const hs_op *op, int n_in, int n_out) {
  if (op->n_operands != n_in)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected %d operand%s, got %d", n_in,
                       n_in == 1 ? "" : "s", op->n_operands);
  if (op->n_results != n_out)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected %d result%s, got %d", n_out,
                       n_out == 1 ? "" : "s", op->n_results);
  for (int i = 0; i < n_in + n_out; i++) {
    const hs_value *v = i < n_in ? op->operands[i] : op->results[i - n_in];
    const char *what = i < n_in ? "operand" : "result";
    int idx = i < n_in ? i : i - n_in;
    if (!v || v->type.kind != HS_TYPE_TENSOR)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "%s %d is not a tensor", what, idx);
    if (hs_dtype_is_complex(v->type.dtype))
      return hs_op_error(op, HS_UNIMPLEMENTED, "complex element types are not supported");
    if (v->type.dtype <= HS_DTYPE_INVALID || v->type.dtype >= HS_DTYPE_COUNT)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "%s %d has an invalid element type", what, idx);
  }
  return NULL;
}

static hs_status *shape_mismatch(const hs_op *op, const char *what, const hs_type *a,
                                 const hs_type *b) {
  char x[96], y[96];
  return hs_op_error(op, HS_INVALID_ARGUMENT, "%s: %s vs %s", what, hs_type_str(a, x, sizeof x),
                     hs_type_str(b, y, sizeof y));
}

static hs_status *new_state(const hs_op *op, hs_arena *arena, hs_ew_state **out) {
  hs_ew_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  *out = st;
  return NULL;
}

static hs_status *unsupported_type(const hs_op *op, hs_dtype t) {
  return hs_op_error(op, HS_INVALID_ARGUMENT, "element type %s is not supported by this op",
                     hs_dtype_name(t));
}

hs_status *hs_ew_prepare(hs_op *op, hs_arena *arena, const hs_range_fn *fns, int n_in,
                         hs_ew_result_rule rule, int64_t par_min, hs_ew_state **out) {
  HS_RETURN_IF_ERROR(hs_ew_check_tensors(op, n_in, 1));
  const hs_type *t0 = &op->operands[0]->type;
  for (int i = 1; i < n_in; i++) {
    const hs_type *ti = &op->operands[i]->type;
    if (ti->dtype != t0->dtype || !hs_shape_equal(&ti->shape, &t0->shape))
      return shape_mismatch(op, "operands must have the same type", t0, ti);
  }
  const hs_type *r = &op->results[0]->type;
  hs_dtype want = rule == HS_EW_PRED ? HS_PRED : t0->dtype;
  if (r->dtype != want || !hs_shape_equal(&r->shape, &t0->shape))
    return shape_mismatch(op, "result type does not match the operands", r, t0);
  hs_range_fn fn = fns[t0->dtype];
  if (!fn) return unsupported_type(op, t0->dtype);
  hs_ew_state *st = NULL;
  HS_RETURN_IF_ERROR(new_state(op, arena, &st));
  st->fn = fn;
  st->par_min = par_min;
  st->n_in = n_in;
  op->kernel_state = st;
  if (out) *out = st;
  return NULL;
}

static void launch(hs_exec_ctx *ctx, const hs_ew_state *st, hs_ew_call *c, int64_t n) {
  if (n <= 0) return;
  if (ctx && n >= st->par_min)
    hs_exec_parallel_for(ctx, n, st->par_min / 4, st->fn, c);
  else
    st->fn(c, 0, n);
}

hs_status *hs_ew_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const hs_ew_state *st = (const hs_ew_state *)op->kernel_state;
  if (!st) return hs_op_error(op, HS_INTERNAL, "kernel was not prepared");
  hs_ew_call c = {{NULL, NULL, NULL}, out[0].data, st};
  for (int i = 0; i < st->n_in; i++) c.in[i] = in[i].data;
  launch(ctx, st, &c, hs_tensor_numel(&out[0]));
  return NULL;
}

/* Declares the prepare function of a kernel whose loops are in table `fns`. */
#define EW_PREP(id, fns, n_in, rule, par)                        \
  static hs_status *prep_##id(hs_op *op, hs_arena *arena) {      \
    return hs_ew_prepare(op, arena, fns, n_in, rule, par, NULL); \
  }

/* ------------------------------------------------------------- i1 loops */

#define EW_PRED_BINARY(name, EXPR)                                \
  static void name##_PRED(void *arg_, int64_t lo_, int64_t hi_) { \
    const hs_ew_call *c_ = (const hs_ew_call *)arg_;              \
    const uint8_t *x_ = c_->in[0], *y_ = c_->in[1];               \
    uint8_t *o_ = c_->out;                                        \
    for (int64_t i = lo_; i < hi_; i++) {                         \
      unsigned a = x_[i] != 0, b = y_[i] != 0;                    \
      o_[i] = (uint8_t)(EXPR);                                    \
    }                                                             \
  }
EW_PRED_BINARY(or, a | b)
EW_PRED_BINARY(and, a & b)
EW_PRED_BINARY(xor, a ^ b)

static void not_PRED(void *arg_, int64_t lo_, int64_t hi_) {
  const hs_ew_call *c_ = (const hs_ew_call *)arg_;
  const uint8_t *x_ = c_->in[0];
  uint8_t *o_ = c_->out;
  for (int64_t i = lo_; i < hi_; i++) o_[i] = x_[i] == 0;
}

/* ------------------------------------------------------ scalar functions */

static inline float add_f32(float a, float b) { return a + b; }
static inline double add_f64(double a, double b) { return a + b; }
static inline float sub_f32(float a, float b) { return a - b; }
static inline double sub_f64(double a, double b) { return a - b; }
static inline float mul_f32(float a, float b) { return a * b; }
static inline double mul_f64(double a, double b) { return a * b; }
static inline float div_f32(float a, float b) { return a / b; }
static inline double div_f64(double a, double b) { return a / b; }
static inline float rem_f32(float a, float b) { return fmodf(a, b); }
static inline double rem_f64(double a, double b) { return fmod(a, b); }
static inline float pow_f32(float a, float b) { return (float)pow(a, b); }
static inline double pow_f64(double a, double b) { return pow(a, b); }

/* IEEE 754-2019 maximum/minimum: NaN wins, -0 < +0. */
static inline float max_f32(float a, float b) {
  return a > b ? a : b > a ? b : a != a ? a : b != b ? b : signbit(a) ? b : a;
}
static inline double max_f64(double a, double b) {
  return a > b ? a : b > a ? b : a != a ? a : b != b ? b : signbit(a) ? b : a;
}
static inline float min_f32(float a, float b) {
  return a < b ? a : b < a ? b : a != a ? a : b != b ? b : signbit(a) ? a : b;
}
static inline double min_f64(double a, double b) {
  return a < b ? a : b < a ? b : a != a ? a : b != b ? b : signbit(a) ? a : b;
}

static inline float neg_f32(float a) { return -a; }
static inline double neg_f64(double a) { return -a; }
static inline float abs_f32(float a) { return fabsf(a); }
static inline double abs_f64(double a) { return fabs(a); }
static inline float square_f32(float a) { return a * a; }
static inline double square_f64(double a) { return a * a; }
static inline float ceil_f32(float a) { return ceilf(a); }
static inline double ceil_f64(double a) { return ceil(a); }
static inline float floor_f32(float a) { return floorf(a); }
static inline double floor_f64(double a) { return floor(a); }
static inline float rafz_f32(float a) { return roundf(a); }
static inline double rafz_f64(double a) { return round(a); }
static inline float reven_f32(float a) { return rintf(a); }
static inline double reven_f64(double a) { return rint(a); }
/* sign: NaN stays NaN, +-0 stays +-0, else +-1. */
static inline float sign_f32(float a) { return a != a ? a : a == 0 ? a : copysignf(1.0f, a); }
static inline double sign_f64(double a) { return a != a ? a : a == 0 ? a : copysign(1.0, a); }

static inline int isfin_f32(float a) { return fabsf(a) < INFINITY; }
static inline int isfin_f64(double a) { return fabs(a) < INFINITY; }
static inline int isinf_f32(float a) { return fabsf(a) == INFINITY; }
static inline int isinf_f64(double a) { return fabs(a) == INFINITY; }
static inline int isposinf_f32(float a) { return a == INFINITY; }
static inline int isposinf_f64(double a) { return a == INFINITY; }
static inline int isneginf_f32(float a) { return a == -INFINITY; }
static inline int isneginf_f64(double a) { return a == -INFINITY; }

/* XLA's integer power: squaring over the low 6 exponent bits (anything more
 * overflows every type anyway), modulo 2^64; the caller truncates. */
static inline uint64_t ipow6(uint64_t base, uint64_t e) {
  uint64_t acc = 1;
  for (int k = 0; k < 6; k++) {
    if (e & 1) acc *= base;
    base *= base;
    e >>= 1;
  }
  return acc;
}

static inline int clz_u64(uint64_t v, int bits) {
  return v == 0 ? bits : __builtin_clzll(v) - (64 - bits);
}

/* ------------------------------------------------------------ the loops */

#define BITS(T) ((int)(sizeof(T) * 8))

/* Binary, all integer types. */
EW_INT_TYPES(EW_INT_BINARY_LOOP, add, (WT)a + (WT)b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, sub, (WT)a - (WT)b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, mul, (WT)a * (WT)b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, max, a > b ? a : b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, min, a < b ? a : b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, and, a & b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, or, a | b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, xor, a ^ b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, shl, (UET)b >= BITS(ET) ? 0 : (WT)a << (UET)b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, shrl, (UET)b >= BITS(ET) ? 0 : (UET)a >> (UET)b)
EW_INT_TYPES(EW_INT_BINARY_LOOP, shra,
             (UET)b >= BITS(ET) ? ((SET)a < 0 ? (SET)-1 : (SET)0) : (SET)((SET)a >> (UET)b))
EW_INT_TYPES(EW_INT_BINARY_LOOP, pow, (SET)b < 0 ? (a == 1) : (ET)ipow6((uint64_t)a, (UET)b))
EW_SINT_TYPES(EW_INT_BINARY_LOOP, div,
              b == 0 ? (ET)-1 : b == -1 ? (ET)((WT)0 - (WT)a) : (ET)(a / b))
EW_UINT_TYPES(EW_INT_BINARY_LOOP, div, b == 0 ? (ET)~(ET)0 : (ET)(a / b))
EW_SINT_TYPES(EW_INT_BINARY_LOOP, rem, b == 0 ? a : b == -1 ? (ET)0 : (ET)(a % b))
EW_UINT_TYPES(EW_INT_BINARY_LOOP, rem, b == 0 ? a : (ET)(a % b))

/* Unary, integer types. */
EW_INT_TYPES(EW_INT_UNARY_LOOP, neg, (WT)0 - (WT)a)
EW_INT_TYPES(EW_INT_UNARY_LOOP, not, ~a)
EW_INT_TYPES(EW_INT_UNARY_LOOP, square, (WT)a * (WT)a)
EW_INT_TYPES(EW_INT_UNARY_LOOP, popcnt, __builtin_popcountll((uint64_t)(UET)a))
EW_INT_TYPES(EW_INT_UNARY_LOOP, clz, clz_u64((uint64_t)(UET)a, BITS(ET)))
EW_SINT_TYPES(EW_INT_UNARY_LOOP, abs, a < 0 ? (WT)0 - (WT)a : (WT)a)
EW_UINT_TYPES(EW_INT_UNARY_LOOP, abs, a)
EW_SINT_TYPES(EW_INT_UNARY_LOOP, sign, (a > 0) - (a < 0))
EW_UINT_TYPES(EW_INT_UNARY_LOOP, sign, a != 0)

/* Floats. */
EW_FLOAT_BINARY(add, add_f32, add_f64)
EW_FLOAT_BINARY(sub, sub_f32, sub_f64)
EW_FLOAT_BINARY(mul, mul_f32, mul_f64)
EW_FLOAT_BINARY(div, div_f32, div_f64)
EW_FLOAT_BINARY(rem, rem_f32, rem_f64)
EW_FLOAT_BINARY(pow, pow_f32, pow_f64)
EW_FLOAT_BINARY(max, max_f32, max_f64)
EW_FLOAT_BINARY(min, min_f32, min_f64)
EW_FLOAT_UNARY(neg, neg_f32, neg_f64)
EW_FLOAT_UNARY(abs, abs_f32, abs_f64)
EW_FLOAT_UNARY(square, square_f32, square_f64)
EW_FLOAT_UNARY(ceil, ceil_f32, ceil_f64)
EW_FLOAT_UNARY(floor, floor_f32, floor_f64)
EW_FLOAT_UNARY(rafz, rafz_f32, rafz_f64)
EW_FLOAT_UNARY(reven, reven_f32, reven_f64)
EW_FLOAT_UNARY(sign, sign_f32, sign_f64)
EW_FLOAT_PRED(isfin, isfin_f32, isfin_f64)
EW_FLOAT_PRED(isinf, isinf_f32, isinf_f64)
EW_FLOAT_PRED(isposinf, isposinf_f32, isposinf_f64)
EW_FLOAT_PRED(isneginf, isneginf_f32, isneginf_f64)

/* ------------------------------------------------------------ the tables */

#define FNS static const hs_range_fn
FNS add_fns[HS_DTYPE_COUNT] = {[HS_PRED] = or_PRED, EW_INT_ENTRIES(add) EW_FLOAT_ENTRIES(add)};
FNS sub_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(sub) EW_FLOAT_ENTRIES(sub)};
FNS mul_fns[HS_DTYPE_COUNT] = {[HS_PRED] = and_PRED, EW_INT_ENTRIES(mul) EW_FLOAT_ENTRIES(mul)};
FNS div_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(div) EW_FLOAT_ENTRIES(div)};
FNS rem_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(rem) EW_FLOAT_ENTRIES(rem)};
FNS pow_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(pow) EW_FLOAT_ENTRIES(pow)};
FNS max_fns[HS_DTYPE_COUNT] = {[HS_PRED] = or_PRED, EW_INT_ENTRIES(max) EW_FLOAT_ENTRIES(max)};
FNS min_fns[HS_DTYPE_COUNT] = {[HS_PRED] = and_PRED, EW_INT_ENTRIES(min) EW_FLOAT_ENTRIES(min)};
FNS and_fns[HS_DTYPE_COUNT] = {[HS_PRED] = and_PRED, EW_INT_ENTRIES(and)};
FNS or_fns[HS_DTYPE_COUNT] = {[HS_PRED] = or_PRED, EW_INT_ENTRIES(or)};
FNS xor_fns[HS_DTYPE_COUNT] = {[HS_PRED] = xor_PRED, EW_INT_ENTRIES(xor)};
FNS shl_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(shl)};
FNS shrl_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(shrl)};
FNS shra_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(shra)};
FNS neg_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(neg) EW_FLOAT_ENTRIES(neg)};
FNS not_fns[HS_DTYPE_COUNT] = {[HS_PRED] = not_PRED, EW_INT_ENTRIES(not)};
FNS abs_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(abs) EW_FLOAT_ENTRIES(abs)};
FNS sign_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(sign) EW_FLOAT_ENTRIES(sign)};
FNS square_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(square) EW_FLOAT_ENTRIES(square)};
FNS popcnt_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(popcnt)};
FNS clz_fns[HS_DTYPE_COUNT] = {EW_INT_ENTRIES(clz)};
FNS ceil_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(ceil)};
FNS floor_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(floor)};
FNS rafz_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(rafz)};
FNS reven_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(reven)};
FNS isfin_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(isfin)};
FNS isinf_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(isinf)};
FNS isposinf_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(isposinf)};
FNS isneginf_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(isneginf)};

#define C HS_EW_PAR_CHEAP
#define H HS_EW_PAR_HEAVY
EW_PREP(add, add_fns, 2, HS_EW_SAME, C)
EW_PREP(sub, sub_fns, 2, HS_EW_SAME, C)
EW_PREP(mul, mul_fns, 2, HS_EW_SAME, C)
EW_PREP(div, div_fns, 2, HS_EW_SAME, C)
EW_PREP(rem, rem_fns, 2, HS_EW_SAME, H)
EW_PREP(pow, pow_fns, 2, HS_EW_SAME, H)
EW_PREP(max, max_fns, 2, HS_EW_SAME, C)
EW_PREP(min, min_fns, 2, HS_EW_SAME, C)
EW_PREP(and, and_fns, 2, HS_EW_SAME, C)
EW_PREP(or, or_fns, 2, HS_EW_SAME, C)
EW_PREP(xor, xor_fns, 2, HS_EW_SAME, C)
EW_PREP(shl, shl_fns, 2, HS_EW_SAME, C)
EW_PREP(shrl, shrl_fns, 2, HS_EW_SAME, C)
EW_PREP(shra, shra_fns, 2, HS_EW_SAME, C)
EW_PREP(neg, neg_fns, 1, HS_EW_SAME, C)
EW_PREP(not, not_fns, 1, HS_EW_SAME, C)
EW_PREP(abs, abs_fns, 1, HS_EW_SAME, C)
EW_PREP(sign, sign_fns, 1, HS_EW_SAME, C)
EW_PREP(square, square_fns, 1, HS_EW_SAME, C)
EW_PREP(popcnt, popcnt_fns, 1, HS_EW_SAME, C)
EW_PREP(clz, clz_fns, 1, HS_EW_SAME, C)
EW_PREP(ceil, ceil_fns, 1, HS_EW_SAME, C)
EW_PREP(floor, floor_fns, 1, HS_EW_SAME, C)
EW_PREP(rafz, rafz_fns, 1, HS_EW_SAME, C)
EW_PREP(reven, reven_fns, 1, HS_EW_SAME, C)
EW_PREP(isfin, isfin_fns, 1, HS_EW_PRED, C)
EW_PREP(isinf, isinf_fns, 1, HS_EW_PRED, C)
EW_PREP(isposinf, isposinf_fns, 1, HS_EW_PRED, C)
EW_PREP(isneginf, isneginf_fns, 1, HS_EW_PRED, C)
#undef C
#undef H

/* ---------------------------------------------------------------- compare
 *
 * One loop per (element type, direction).  Integers compare by their own
 * signedness (the spec ties compare_type to it), i1 as unsigned.  Floats with
 * compare_type FLOAT use IEEE quiet comparisons (C's operators: NaN makes
 * every direction false except NE); with TOTALORDER they compare keys that
 * order -NaN < -Inf < ... < -0 < +0 < ... < +Inf < +NaN. */

enum { CMP_EQ, CMP_NE, CMP_GE, CMP_GT, CMP_LE, CMP_LT, CMP_N };

#define CMP_LOOP(name, T, KEY, OP)                                        \
  static void name(void *arg_, int64_t lo_, int64_t hi_) {                \
    const hs_ew_call *c_ = (const hs_ew_call *)arg_;                      \
    const T *x_ = (const T *)c_->in[0], *y_ = (const T *)c_->in[1];       \
    uint8_t *o_ = (uint8_t *)c_->out;                                     \
    for (int64_t i = lo_; i < hi_; i++) o_[i] = KEY(x_[i]) OP KEY(y_[i]); \
  }
#define CMP_LOOPS(D, T, KEY)       \
  CMP_LOOP(cmp_EQ_##D, T, KEY, ==) \
  CMP_LOOP(cmp_NE_##D, T, KEY, !=) \
  CMP_LOOP(cmp_GE_##D, T, KEY, >=) \
  CMP_LOOP(cmp_GT_##D, T, KEY, >)  \
  CMP_LOOP(cmp_LE_##D, T, KEY, <=) \
  CMP_LOOP(cmp_LT_##D, T, KEY, <)
#define CMP_ROW(D) {cmp_EQ_##D, cmp_NE_##D, cmp_GE_##D, cmp_GT_##D, cmp_LE_##D, cmp_LT_##D}

#define KEY_ID(v) (v)
static inline int32_t tkey_f32(float f) {
  uint32_t u = hs_ew_f2u(f);
  return (int32_t)(u ^ ((uint32_t)((int32_t)u >> 31) >> 1));
}
static inline int64_t tkey_f64(double d) {
  uint64_t u = hs_ew_d2u(d);
  return (int64_t)(u ^ ((uint64_t)((int64_t)u >> 63) >> 1));
}
static inline int32_t tkey_h(uint16_t h) {
  int32_t v = (int16_t)h;
  return v < 0 ? v ^ 0x7fff : v;
}
#define CMP_INT_LOOPS(D, T, W, UT, ST, unused) CMP_LOOPS(D, T, KEY_ID)
EW_INT_TYPES(CMP_INT_LOOPS, 0)
CMP_LOOPS(PRED, uint8_t, KEY_ID)
CMP_LOOPS(F32, float, KEY_ID)
CMP_LOOPS(F64, double, KEY_ID)
CMP_LOOPS(F16, uint16_t, hs_ew_h2f)
CMP_LOOPS(BF16, uint16_t, hs_ew_b2f)
CMP_LOOPS(TF32, float, tkey_f32)
CMP_LOOPS(TF64, double, tkey_f64)
CMP_LOOPS(TH, uint16_t, tkey_h)

static const hs_range_fn cmp_fns[HS_DTYPE_COUNT][CMP_N] = {
    [HS_PRED] = CMP_ROW(PRED), [HS_I8] = CMP_ROW(I8),   [HS_I16] = CMP_ROW(I16),
    [HS_I32] = CMP_ROW(I32),   [HS_I64] = CMP_ROW(I64), [HS_U8] = CMP_ROW(U8),
    [HS_U16] = CMP_ROW(U16),   [HS_U32] = CMP_ROW(U32), [HS_U64] = CMP_ROW(U64),
    [HS_F16] = CMP_ROW(F16),   [HS_BF16] = CMP_ROW(BF16), [HS_F32] = CMP_ROW(F32),
    [HS_F64] = CMP_ROW(F64),
};
static const hs_range_fn cmp_total_fns[HS_DTYPE_COUNT][CMP_N] = {
    [HS_F16] = CMP_ROW(TH), [HS_BF16] = CMP_ROW(TH),
    [HS_F32] = CMP_ROW(TF32), [HS_F64] = CMP_ROW(TF64),
};

static hs_status *prep_compare(hs_op *op, hs_arena *arena) {
  static const char *const dirs[CMP_N] = {"EQ", "NE", "GE", "GT", "LE", "LT"};
  const char *dir, *ctype;
  HS_RETURN_IF_ERROR(hs_op_get_enum(op, "comparison_direction", true, NULL, &dir));
  HS_RETURN_IF_ERROR(hs_op_get_enum(op, "compare_type", false, "NOTYPE", &ctype));
  int d = -1;
  for (int i = 0; i < CMP_N; i++)
    if (strcmp(dir, dirs[i]) == 0) d = i;
  if (d < 0)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "unknown comparison_direction '%s'", dir);
  bool total = strcmp(ctype, "TOTALORDER") == 0;
  if (!total && strcmp(ctype, "FLOAT") != 0 && strcmp(ctype, "SIGNED") != 0 &&
      strcmp(ctype, "UNSIGNED") != 0 && strcmp(ctype, "NOTYPE") != 0)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "unknown compare_type '%s'", ctype);
  HS_RETURN_IF_ERROR(hs_ew_check_tensors(op, 2, 1));
  hs_dtype t = op->operands[0]->type.dtype;
  if (total && !hs_dtype_is_float(t))
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "compare_type TOTALORDER needs a floating-point element type, got %s",
                       hs_dtype_name(t));
  hs_range_fn fns[HS_DTYPE_COUNT] = {0};
  fns[t] = total ? cmp_total_fns[t][d] : cmp_fns[t][d];
  return hs_ew_prepare(op, arena, fns, 2, HS_EW_PRED, HS_EW_PAR_CHEAP, NULL);
}

/* ----------------------------------------------------------------- select
 *
 * Select moves bits, so its loops are per element size, not per type (and
 * complex operands are fine).  A scalar predicate picks a whole operand:
 * run() copies it. */

#define SEL_LOOP(T)                                                        \
  static void sel_##T(void *arg_, int64_t lo_, int64_t hi_) {              \
    const hs_ew_call *c_ = (const hs_ew_call *)arg_;                       \
    const uint8_t *p_ = (const uint8_t *)c_->in[0];                        \
    const T *t_ = (const T *)c_->in[1], *f_ = (const T *)c_->in[2];        \
    T *o_ = (T *)c_->out;                                                  \
    for (int64_t i = lo_; i < hi_; i++) {                                  \
      T tv_ = t_[i], fv_ = f_[i]; /* both read: lets the loop vectorise */ \
      o_[i] = p_[i] ? tv_ : fv_;                                           \
    }                                                                      \
  }
SEL_LOOP(uint8_t)
SEL_LOOP(uint16_t)
SEL_LOOP(uint32_t)
SEL_LOOP(uint64_t)
typedef struct sel_u128 {
  uint64_t lo, hi;
} sel_u128;
SEL_LOOP(sel_u128)

static hs_status *prep_select(hs_op *op, hs_arena *arena) {
  /* Select only moves bits, so unlike the arithmetic kernels it takes complex
   * operands too (as the data-movement kernels do). */
  if (op->n_operands != 3 || op->n_results != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected 3 operands and 1 result");
  for (int i = 0; i < 4; i++) {
    const hs_value *v = i < 3 ? op->operands[i] : op->results[0];
    if (!v || v->type.kind != HS_TYPE_TENSOR || v->type.dtype <= HS_DTYPE_INVALID ||
        v->type.dtype >= HS_DTYPE_COUNT)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "operands and result must be tensors");
  }
  const hs_type *p = &op->operands[0]->type, *t = &op->operands[1]->type,
                *f = &op->operands[2]->type, *r = &op->results[0]->type;
  if (p->dtype != HS_PRED)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "pred must have element type i1, got %s",
                       hs_dtype_name(p->dtype));
  if (t->dtype != f->dtype || !hs_shape_equal(&t->shape, &f->shape))
    return shape_mismatch(op, "on_true and on_false must have the same type", t, f);
  if (r->dtype != t->dtype || !hs_shape_equal(&r->shape, &t->shape))
    return shape_mismatch(op, "result type does not match on_true", r, t);
  bool scalar_pred = p->shape.rank == 0;
  if (!scalar_pred && !hs_shape_equal(&p->shape, &t->shape))
    return shape_mismatch(op, "pred must be a scalar or have the shape of on_true", p, t);
  hs_ew_state *st = NULL;
  HS_RETURN_IF_ERROR(new_state(op, arena, &st));
  switch (hs_dtype_size(t->dtype)) {
    case 1: st->fn = sel_uint8_t; break;
    case 2: st->fn = sel_uint16_t; break;
    case 4: st->fn = sel_uint32_t; break;
    case 8: st->fn = sel_uint64_t; break;
    case 16: st->fn = sel_sel_u128; break;
    default: return unsupported_type(op, t->dtype);
  }
  st->n_in = 3;
  st->scalar[0] = scalar_pred;
  st->par_min = HS_EW_PAR_CHEAP;
  op->kernel_state = st;
  return NULL;
}

static hs_status *run_select(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                             hs_tensor *out) {
  const hs_ew_state *st = (const hs_ew_state *)op->kernel_state;
  if (!st) return hs_op_error(op, HS_INTERNAL, "kernel was not prepared");
  if (st->scalar[0]) {
    const hs_tensor *src = *(const uint8_t *)in[0].data ? &in[1] : &in[2];
    size_t nb = hs_tensor_nbytes(&out[0]);
    if (nb && out[0].data != src->data) memmove(out[0].data, src->data, nb);
    return NULL;
  }
  return hs_ew_run(ctx, op, in, out);
}

/* ------------------------------------------------------------------ clamp
 *
 * result = min(max(operand, min), max) with the op's own maximum/minimum
 * semantics (NaN propagates for floats).  min and max may each be a scalar:
 * three loop shapes per type (all full, both scalar - the relu6 case, and a
 * general strided one for the mixed cases). */

#define CLAMP_LOOPS(D, T, MAXF, MINF)                                                        \
  static void clamp_full_##D(void *arg_, int64_t lo_, int64_t hi_) {                         \
    const hs_ew_call *c_ = (const hs_ew_call *)arg_;                                         \
    const T *l_ = c_->in[0], *x_ = c_->in[1], *h_ = c_->in[2];                               \
    T *o_ = c_->out;                                                                         \
    for (int64_t i = lo_; i < hi_; i++) o_[i] = MINF(MAXF(x_[i], l_[i]), h_[i]);             \
  }                                                                                          \
  static void clamp_scal_##D(void *arg_, int64_t lo_, int64_t hi_) {                         \
    const hs_ew_call *c_ = (const hs_ew_call *)arg_;                                         \
    const T *x_ = c_->in[1];                                                                 \
    const T l_ = *(const T *)c_->in[0], h_ = *(const T *)c_->in[2];                          \
    T *o_ = c_->out;                                                                         \
    for (int64_t i = lo_; i < hi_; i++) o_[i] = MINF(MAXF(x_[i], l_), h_);                   \
  }                                                                                          \
  static void clamp_mixed_##D(void *arg_, int64_t lo_, int64_t hi_) {                        \
    const hs_ew_call *c_ = (const hs_ew_call *)arg_;                                         \
    const T *l_ = c_->in[0], *x_ = c_->in[1], *h_ = c_->in[2];                               \
    int64_t sl_ = c_->st->scalar[0] ? 0 : 1, sh_ = c_->st->scalar[2] ? 0 : 1;                \
    T *o_ = c_->out;                                                                         \
    for (int64_t i = lo_; i < hi_; i++) o_[i] = MINF(MAXF(x_[i], l_[i * sl_]), h_[i * sh_]); \
  }

#define IMAX(a, b) ((a) > (b) ? (a) : (b))
#define IMIN(a, b) ((a) < (b) ? (a) : (b))
#define CLAMP_INT(D, T, W, UT, ST, unused) CLAMP_LOOPS(D, T, IMAX, IMIN)
EW_INT_TYPES(CLAMP_INT, 0)
CLAMP_LOOPS(PRED, uint8_t, IMAX, IMIN)
CLAMP_LOOPS(F32, float, max_f32, min_f32)
CLAMP_LOOPS(F64, double, max_f64, min_f64)
static inline uint16_t max_f16(uint16_t a, uint16_t b) {
  return hs_ew_f2h(max_f32(hs_ew_h2f(a), hs_ew_h2f(b)));
}
static inline uint16_t min_f16(uint16_t a, uint16_t b) {
  return hs_ew_f2h(min_f32(hs_ew_h2f(a), hs_ew_h2f(b)));
}
static inline uint16_t max_bf16(uint16_t a, uint16_t b) {
  return hs_ew_f2b(max_f32(hs_ew_b2f(a), hs_ew_b2f(b)));
}
static inline uint16_t min_bf16(uint16_t a, uint16_t b) {
  return hs_ew_f2b(min_f32(hs_ew_b2f(a), hs_ew_b2f(b)));
}
CLAMP_LOOPS(F16, uint16_t, max_f16, min_f16)
CLAMP_LOOPS(BF16, uint16_t, max_bf16, min_bf16)

#define CLAMP_ROW(D) {clamp_full_##D, clamp_scal_##D, clamp_mixed_##D}
static const hs_range_fn clamp_fns[HS_DTYPE_COUNT][3] = {
    [HS_PRED] = CLAMP_ROW(PRED), [HS_I8] = CLAMP_ROW(I8),     [HS_I16] = CLAMP_ROW(I16),
    [HS_I32] = CLAMP_ROW(I32),   [HS_I64] = CLAMP_ROW(I64),   [HS_U8] = CLAMP_ROW(U8),
    [HS_U16] = CLAMP_ROW(U16),   [HS_U32] = CLAMP_ROW(U32),   [HS_U64] = CLAMP_ROW(U64),
    [HS_F16] = CLAMP_ROW(F16),   [HS_BF16] = CLAMP_ROW(BF16), [HS_F32] = CLAMP_ROW(F32),
    [HS_F64] = CLAMP_ROW(F64),
};

static hs_status *prep_clamp(hs_op *op, hs_arena *arena) {
  HS_RETURN_IF_ERROR(hs_ew_check_tensors(op, 3, 1));
  const hs_type *l = &op->operands[0]->type, *x = &op->operands[1]->type,
                *h = &op->operands[2]->type, *r = &op->results[0]->type;
  if (l->dtype != x->dtype || h->dtype != x->dtype)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "min, operand and max must have the same element type (%s, %s, %s)",
                       hs_dtype_name(l->dtype), hs_dtype_name(x->dtype), hs_dtype_name(h->dtype));
  if (l->shape.rank != 0 && !hs_shape_equal(&l->shape, &x->shape))
    return shape_mismatch(op, "min must be a scalar or have the operand's shape", l, x);
  if (h->shape.rank != 0 && !hs_shape_equal(&h->shape, &x->shape))
    return shape_mismatch(op, "max must be a scalar or have the operand's shape", h, x);
  if (r->dtype != x->dtype || !hs_shape_equal(&r->shape, &x->shape))
    return shape_mismatch(op, "result type does not match the operand", r, x);
  hs_ew_state *st = NULL;
  HS_RETURN_IF_ERROR(new_state(op, arena, &st));
  /* A rank-0 operand is broadcast; so is a 1-element min/max of a 1-element
   * operand, harmlessly. */
  st->scalar[0] = l->shape.rank == 0;
  st->scalar[2] = h->shape.rank == 0;
  int variant = st->scalar[0] && st->scalar[2] ? 1 : (!st->scalar[0] && !st->scalar[2]) ? 0 : 2;
  if (x->shape.rank == 0) variant = 0; /* everything is one element */
  st->fn = clamp_fns[x->dtype][variant];
  if (!st->fn) return unsupported_type(op, x->dtype);
  st->n_in = 3;
  st->par_min = HS_EW_PAR_CHEAP;
  op->kernel_state = st;
  return NULL;
}

/* ---------------------------------------------------- optimization_barrier
 *
 * The identity on any number of values (tensors of any type, tokens). */

static hs_status *prep_barrier(hs_op *op, hs_arena *arena) {
  (void)arena;
  if (op->n_operands != op->n_results)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "%d operands but %d results", op->n_operands,
                       op->n_results);
  for (int i = 0; i < op->n_operands; i++) {
    const hs_type *a = &op->operands[i]->type, *r = &op->results[i]->type;
    if (a->kind != r->kind || (a->kind == HS_TYPE_TENSOR &&
                               (a->dtype != r->dtype || !hs_shape_equal(&a->shape, &r->shape))))
      return shape_mismatch(op, "result type does not match its operand", r, a);
  }
  return NULL;
}

static hs_status *run_barrier(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                              hs_tensor *out) {
  (void)ctx;
  for (int i = 0; i < op->n_operands; i++) {
    if (op->operands[i]->type.kind != HS_TYPE_TENSOR) continue;
    size_t nb = hs_tensor_nbytes(&out[i]);
    if (nb && out[i].data != in[i].data) memmove(out[i].data, in[i].data, nb);
  }
  return NULL;
}

/* ------------------------------------------------------------------ table */

#define K(name, id) {name, prep_##id, hs_ew_run},
#define KM(name, id) {name, hs_ew_prep_##id, hs_ew_run},
const hs_kernel hs_kernels_elementwise[] = {
    K("stablehlo.add", add)
    K("stablehlo.subtract", sub)
    K("stablehlo.multiply", mul)
    K("stablehlo.divide", div)
    K("stablehlo.remainder", rem)
    K("stablehlo.power", pow)
    K("stablehlo.maximum", max)
    K("stablehlo.minimum", min)
    K("stablehlo.and", and)
    K("stablehlo.or", or)
    K("stablehlo.xor", xor)
    K("stablehlo.not", not)
    K("stablehlo.shift_left", shl)
    K("stablehlo.shift_right_logical", shrl)
    K("stablehlo.shift_right_arithmetic", shra)
    K("stablehlo.negate", neg)
    K("stablehlo.abs", abs)
    K("stablehlo.sign", sign)
    K("stablehlo.popcnt", popcnt)
    K("stablehlo.count_leading_zeros", clz)
    K("stablehlo.ceil", ceil)
    K("stablehlo.floor", floor)
    K("stablehlo.round_nearest_afz", rafz)
    K("stablehlo.round_nearest_even", reven)
    K("stablehlo.is_finite", isfin)
    K("stablehlo.compare", compare)
    K("stablehlo.clamp", clamp)
    {"stablehlo.select", prep_select, run_select},
    {"stablehlo.optimization_barrier", prep_barrier, run_barrier},
    {"stablehlo.convert", hs_ew_prepare_convert, hs_ew_run},
    {"stablehlo.bitcast_convert", hs_ew_prepare_bitcast_convert, hs_ew_run_bitcast_convert},
    {"stablehlo.reduce_precision", hs_ew_prepare_reduce_precision, hs_ew_run},
    K("chlo.square", square)
    K("chlo.is_inf", isinf)
    K("chlo.is_pos_inf", isposinf)
    K("chlo.is_neg_inf", isneginf)
    HS_EW_MATH_OPS(KM)
    {NULL, NULL, NULL},
};
