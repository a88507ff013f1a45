/*
 * ew_convert.c - stablehlo.convert, stablehlo.bitcast_convert and
 * stablehlo.reduce_precision.
 *
 * convert: every (source, destination) pair of the 13 real element types is
 * its own loop, generated from two type lists; prepare() picks the pair.
 * The rules are XLA's (the conformance data was made by XLA on CPU):
 *   - int -> int wraps (truncate / sign- or zero-extend);
 *   - anything -> i1 is `x != 0` (so NaN -> true); i1 -> anything is 0 / 1;
 *   - int -> float rounds to nearest even; int -> bf16 goes through f32
 *     (two roundings, as XLA does), int -> f16 likewise (exact: every integer
 *     that does not overflow f16 is exact in f32);
 *   - float -> int truncates toward zero and saturates, NaN -> 0;
 *   - f64 -> f16 rounds once (correctly); f64 -> bf16 goes through f32.
 *
 * bitcast_convert: on a little-endian host with row-major tensors, the
 * operand's bytes ARE the result's bytes for every width combination the spec
 * allows (the extra minor dimension holds the little-endian pieces), so run()
 * is one memmove after prepare() has checked the shapes.
 *
 * reduce_precision: XLA's bit-level algorithm on the type's own bits
 * (round the mantissa to nearest even, then flush exponents out of range to
 * zero / infinity, keeping NaNs), with the masks computed in prepare().
 */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE_SIZE__)
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#endif

#include <math.h>
#include <string.h>

#include "runtime/kernels/ew_common.h"

/* ---------------------------------------------------------------- convert */

/* f64 -> f16 with one rounding: round to f32 with round-to-odd (which keeps
 * enough information), then to f16 with round-to-nearest-even. */
static inline uint16_t d2h(double d) {
  float f = (float)d;
  if ((double)f != d && f == f) {
    uint32_t u = hs_ew_f2u(f);
    if (fabs((double)f) > fabs(d)) u -= 1; /* truncate toward zero */
    f = hs_ew_u2f(u | 1u);                  /* sticky bit */
  }
  return hs_ew_f2h(f);
}

/* Saturating float -> int with NaN -> 0.  The bounds are powers of two, exact
 * in every float type: v >= 2^(bits-1) saturates high, v <= -2^(bits-1) low. */
#define SAT_FUNCS(D, T, LO, HI, MINV, MAXV)                                              \
  static inline T fsat_##D(float v) {                                                    \
    return v != v ? (T)0 : v <= (float)(LO) ? (MINV) : v >= (float)(HI) ? (MAXV) : (T)v; \
  }                                                                                      \
  static inline T dsat_##D(double v) {                                                   \
    return v != v ? (T)0 : v <= (LO) ? (MINV) : v >= (HI) ? (MAXV) : (T)v;               \
  }
SAT_FUNCS(I8, int8_t, -0x1p7, 0x1p7, INT8_MIN, INT8_MAX)
SAT_FUNCS(I16, int16_t, -0x1p15, 0x1p15, INT16_MIN, INT16_MAX)
SAT_FUNCS(I32, int32_t, -0x1p31, 0x1p31, INT32_MIN, INT32_MAX)
SAT_FUNCS(I64, int64_t, -0x1p63, 0x1p63, INT64_MIN, INT64_MAX)
SAT_FUNCS(U8, uint8_t, 0.0, 0x1p8, 0, UINT8_MAX)
SAT_FUNCS(U16, uint16_t, 0.0, 0x1p16, 0, UINT16_MAX)
SAT_FUNCS(U32, uint32_t, 0.0, 0x1p32, 0, UINT32_MAX)
SAT_FUNCS(U64, uint64_t, 0.0, 0x1p64, 0, UINT64_MAX)

/* Conversion expressions by (source class, destination class).  Classes:
 * B i1, I integer, H f16, R bf16, S f32, D f64.  x is the source element;
 * DD / DT the destination dtype suffix and C type. */
#define CV_B_B(x, DD, DT) ((x) != 0)
#define CV_B_I(x, DD, DT) ((DT)((x) != 0))
#define CV_B_H(x, DD, DT) ((uint16_t)((x) ? 0x3c00u : 0u))
#define CV_B_R(x, DD, DT) ((uint16_t)((x) ? 0x3f80u : 0u))
#define CV_B_S(x, DD, DT) ((x) ? 1.0f : 0.0f)
#define CV_B_D(x, DD, DT) ((x) ? 1.0 : 0.0)
#define CV_I_B(x, DD, DT) ((x) != 0)
#define CV_I_I(x, DD, DT) ((DT)(x))
#define CV_I_H(x, DD, DT) hs_ew_f2h((float)(x))
#define CV_I_R(x, DD, DT) hs_ew_f2b((float)(x))
#define CV_I_S(x, DD, DT) ((float)(x))
#define CV_I_D(x, DD, DT) ((double)(x))
#define CV_H_B(x, DD, DT) (hs_ew_h2f(x) != 0)
#define CV_H_I(x, DD, DT) fsat_##DD(hs_ew_h2f(x))
#define CV_H_H(x, DD, DT) (x)
#define CV_H_R(x, DD, DT) hs_ew_f2b(hs_ew_h2f(x))
#define CV_H_S(x, DD, DT) hs_ew_h2f(x)
#define CV_H_D(x, DD, DT) ((double)hs_ew_h2f(x))
#define CV_R_B(x, DD, DT) (hs_ew_b2f(x) != 0)
#define CV_R_I(x, DD, DT) fsat_##DD(hs_ew_b2f(x))
#define CV_R_H(x, DD, DT) hs_ew_f2h(hs_ew_b2f(x))
#define CV_R_R(x, DD, DT) (x)
#define CV_R_S(x, DD, DT) hs_ew_b2f(x)
#define CV_R_D(x, DD, DT) ((double)hs_ew_b2f(x))
#define CV_S_B(x, DD, DT) ((x) != 0)
#define CV_S_I(x, DD, DT) fsat_##DD(x)
#define CV_S_H(x, DD, DT) hs_ew_f2h(x)
#define CV_S_R(x, DD, DT) hs_ew_f2b(x)
#define CV_S_S(x, DD, DT) (x)
#define CV_S_D(x, DD, DT) ((double)(x))
#define CV_D_B(x, DD, DT) ((x) != 0)
#define CV_D_I(x, DD, DT) dsat_##DD(x)
#define CV_D_H(x, DD, DT) d2h(x)
#define CV_D_R(x, DD, DT) hs_ew_f2b((float)(x))
#define CV_D_S(x, DD, DT) ((float)(x))
#define CV_D_D(x, DD, DT) (x)

/* The two type lists (two copies: a macro cannot expand inside itself). */
#define SRC_TYPES(X, ...)                                           \
  X(PRED, uint8_t, B, __VA_ARGS__) X(I8, int8_t, I, __VA_ARGS__)    \
  X(I16, int16_t, I, __VA_ARGS__) X(I32, int32_t, I, __VA_ARGS__)   \
  X(I64, int64_t, I, __VA_ARGS__) X(U8, uint8_t, I, __VA_ARGS__)    \
  X(U16, uint16_t, I, __VA_ARGS__) X(U32, uint32_t, I, __VA_ARGS__) \
  X(U64, uint64_t, I, __VA_ARGS__) X(F16, uint16_t, H, __VA_ARGS__) \
  X(BF16, uint16_t, R, __VA_ARGS__) X(F32, float, S, __VA_ARGS__)   \
  X(F64, double, D, __VA_ARGS__)
#define DST_TYPES(X)                                                            \
  X(PRED, uint8_t, B) X(I8, int8_t, I) X(I16, int16_t, I) X(I32, int32_t, I)    \
  X(I64, int64_t, I) X(U8, uint8_t, I) X(U16, uint16_t, I) X(U32, uint32_t, I)  \
  X(U64, uint64_t, I) X(F16, uint16_t, H) X(BF16, uint16_t, R) X(F32, float, S) \
  X(F64, double, D)

#define CV_EXPR(SK, DK) CV_##SK##_##DK
#define CV_PAIR(SD, ST_, SK, DD, DT, DK)                                            \
  static void cv_##SD##_##DD(void *arg_, int64_t lo_, int64_t hi_) {                \
    const hs_ew_call *c_ = (const hs_ew_call *)arg_;                                \
    const ST_ *x_ = (const ST_ *)c_->in[0];                                         \
    DT *o_ = (DT *)c_->out;                                                         \
    for (int64_t i = lo_; i < hi_; i++) o_[i] = (DT)CV_EXPR(SK, DK)(x_[i], DD, DT); \
  }
#define CV_FOR_DST(DD, DT, DK) SRC_TYPES(CV_PAIR, DD, DT, DK)
DST_TYPES(CV_FOR_DST)

#define CV_CELL(SD, ST_, SK, DD) [HS_##SD] = cv_##SD##_##DD,
#define CV_COLUMN(DD, DT, DK) [HS_##DD] = {SRC_TYPES(CV_CELL, DD)},
/* Indexed [destination][source]. */
static const hs_range_fn cv_fns[HS_DTYPE_COUNT][HS_DTYPE_COUNT] = {DST_TYPES(CV_COLUMN)};

hs_status *hs_ew_prepare_convert(hs_op *op, hs_arena *arena) {
  HS_RETURN_IF_ERROR(hs_ew_check_tensors(op, 1, 1));
  const hs_type *a = &op->operands[0]->type, *r = &op->results[0]->type;
  if (!hs_shape_equal(&a->shape, &r->shape)) {
    char x[96], y[96];
    return hs_op_error(op, HS_INVALID_ARGUMENT, "operand and result shapes differ: %s vs %s",
                       hs_type_str(a, x, sizeof x), hs_type_str(r, y, sizeof y));
  }
  hs_ew_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  st->fn = cv_fns[r->dtype][a->dtype];
  if (!st->fn)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "cannot convert %s to %s",
                       hs_dtype_name(a->dtype), hs_dtype_name(r->dtype));
  st->n_in = 1;
  st->par_min = HS_EW_PAR_CHEAP;
  op->kernel_state = st;
  return NULL;
}

/* -------------------------------------------------------- bitcast_convert */

hs_status *hs_ew_prepare_bitcast_convert(hs_op *op, hs_arena *arena) {
  (void)arena;
  if (op->n_operands != 1 || op->n_results != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected 1 operand and 1 result");
  const hs_type *a = &op->operands[0]->type, *r = &op->results[0]->type;
  if (a->kind != HS_TYPE_TENSOR || r->kind != HS_TYPE_TENSOR)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "operand and result must be tensors");
  if (a->dtype <= HS_DTYPE_INVALID || a->dtype >= HS_DTYPE_COUNT || r->dtype <= HS_DTYPE_INVALID ||
      r->dtype >= HS_DTYPE_COUNT)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "invalid element type");
  /* Complex to the same complex type is a plain copy; anything else with
   * complex is refused like every other element-wise op. */
  if ((hs_dtype_is_complex(a->dtype) || hs_dtype_is_complex(r->dtype)) && a->dtype != r->dtype)
    return hs_op_error(op, HS_UNIMPLEMENTED, "complex element types are not supported");
  if ((a->dtype == HS_PRED) != (r->dtype == HS_PRED))
    return hs_op_error(op, HS_UNIMPLEMENTED, "bitcast between i1 and %s is not supported",
                       hs_dtype_name(a->dtype == HS_PRED ? r->dtype : a->dtype));
  size_t ea = hs_dtype_size(a->dtype), er = hs_dtype_size(r->dtype);
  char x[96], y[96];
  bool ok = true;
  if (ea == er) {
    ok = hs_shape_equal(&a->shape, &r->shape);
  } else if (er < ea) { /* result gets a minor dimension of ea/er pieces */
    ok = r->shape.rank == a->shape.rank + 1 && r->shape.dims[a->shape.rank] == (int64_t)(ea / er);
    for (int i = 0; ok && i < a->shape.rank; i++) ok = a->shape.dims[i] == r->shape.dims[i];
  } else { /* the operand's minor dimension is folded */
    ok = a->shape.rank == r->shape.rank + 1 && a->shape.dims[r->shape.rank] == (int64_t)(er / ea);
    for (int i = 0; ok && i < r->shape.rank; i++) ok = a->shape.dims[i] == r->shape.dims[i];
  }
  if (!ok)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "bitcast from %s to %s: shapes do not match",
                       hs_type_str(a, x, sizeof x), hs_type_str(r, y, sizeof y));
  return NULL;
}

hs_status *hs_ew_run_bitcast_convert(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                                     hs_tensor *out) {
  (void)ctx;
  (void)op;
  size_t nb = hs_tensor_nbytes(&out[0]);
  if (nb != hs_tensor_nbytes(&in[0]))
    return hs_op_error(op, HS_INTERNAL, "bitcast_convert: operand and result sizes differ");
  if (nb && out[0].data != in[0].data) memmove(out[0].data, in[0].data, nb);
  return NULL;
}

/* ------------------------------------------------------- reduce_precision */

typedef struct rp_params {
  uint64_t sign, exp_mask, last_bit, base_bias, trunc, max_exp, min_exp;
  int shift;
  bool do_mant, do_exp, keep_nan;
} rp_params;

/* The state comes first, so op->kernel_state points at both. */
typedef struct rp_state {
  hs_ew_state st;
  rp_params p;
} rp_state;

static inline uint64_t rp_bits(uint64_t x, const rp_params *p) {
  uint64_t orig = x;
  bool is_nan = (x & ~p->sign) > p->exp_mask;
  if (p->do_mant) {
    uint64_t bias = ((x & p->last_bit) >> p->shift) + p->base_bias;
    x = (x + bias) & p->trunc;
  }
  if (p->do_exp) {
    uint64_t e = x & p->exp_mask;
    uint64_t signed_zero = x & p->sign;
    if (e > p->max_exp) x = signed_zero | p->exp_mask;
    if (e <= p->min_exp) x = signed_zero;
  }
  if (is_nan) x = p->keep_nan ? orig : p->exp_mask; /* +inf when no mantissa */
  return x;
}

#define RP_LOOP(D, T)                                                   \
  static void rp_##D(void *arg_, int64_t lo_, int64_t hi_) {            \
    const hs_ew_call *c_ = (const hs_ew_call *)arg_;                    \
    const T *x_ = (const T *)c_->in[0];                                 \
    T *o_ = (T *)c_->out;                                               \
    const rp_params *p_ = &((const rp_state *)(const void *)c_->st)->p; \
    for (int64_t i = lo_; i < hi_; i++) o_[i] = (T)rp_bits(x_[i], p_);  \
  }
RP_LOOP(H, uint16_t)
RP_LOOP(S, uint32_t)
RP_LOOP(D, uint64_t)

hs_status *hs_ew_prepare_reduce_precision(hs_op *op, hs_arena *arena) {
  HS_RETURN_IF_ERROR(hs_ew_check_tensors(op, 1, 1));
  const hs_type *a = &op->operands[0]->type, *r = &op->results[0]->type;
  if (!hs_dtype_is_float(a->dtype))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "element type %s is not supported by this op",
                       hs_dtype_name(a->dtype));
  if (a->dtype != r->dtype || !hs_shape_equal(&a->shape, &r->shape)) {
    char x[96], y[96];
    return hs_op_error(op, HS_INVALID_ARGUMENT, "result type does not match the operand: %s vs %s",
                       hs_type_str(r, x, sizeof x), hs_type_str(a, y, sizeof y));
  }
  int64_t eb, mb;
  HS_RETURN_IF_ERROR(hs_op_get_int(op, "exponent_bits", true, 0, &eb));
  HS_RETURN_IF_ERROR(hs_op_get_int(op, "mantissa_bits", true, 0, &mb));
  if (eb < 1 || eb > 1000 || mb < 0 || mb > 1000)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "exponent_bits must be >= 1 and mantissa_bits >= 0 (got %lld, %lld)",
                       (long long)eb, (long long)mb);
  int nbits, src_m;
  hs_range_fn fn;
  switch (a->dtype) {
    case HS_F16: nbits = 16; src_m = 10; fn = rp_H; break;
    case HS_BF16: nbits = 16; src_m = 7; fn = rp_H; break;
    case HS_F32: nbits = 32; src_m = 23; fn = rp_S; break;
    default: nbits = 64; src_m = 52; fn = rp_D; break;
  }
  int src_e = nbits - 1 - src_m;
  rp_state *blk = hs_arena_calloc(arena, 1, sizeof *blk);
  if (!blk) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  rp_params *p = &blk->p;
  p->sign = (uint64_t)1 << (nbits - 1);
  p->exp_mask = (((uint64_t)1 << src_e) - 1) << src_m;
  p->do_mant = mb < src_m;
  if (p->do_mant) {
    p->shift = (int)(src_m - mb);
    p->last_bit = (uint64_t)1 << p->shift;
    p->base_bias = (p->last_bit >> 1) - 1;
    p->trunc = ~(p->last_bit - 1);
  }
  p->do_exp = eb < src_e;
  if (p->do_exp) {
    uint64_t bias = ((uint64_t)1 << (src_e - 1)) - 1;
    uint64_t rbias = ((uint64_t)1 << (eb - 1)) - 1;
    p->max_exp = (bias + rbias) << src_m;
    p->min_exp = (bias - rbias) << src_m;
  }
  p->keep_nan = mb > 0;
  blk->st.fn = fn;
  blk->st.n_in = 1;
  blk->st.par_min = HS_EW_PAR_CHEAP;
  op->kernel_state = &blk->st;
  return NULL;
}
