/*
 * rd_ops.c - the typed inner loops of the reductions (see rd_common.h).
 *
 * One macro, RD_GEN, stamps out the three loop shapes (vec, fold, winrow) for
 * one (element type, op) pair.  The op is a compile-time constant passed to an
 * always-inlined combine function, so each generated loop is a plain typed
 * loop the compiler can unroll and vectorise.  Tables indexed by [op][dtype]
 * hand the loops to the kernels; a NULL entry means "no fast path" (e.g. AND
 * on floats) and the kernel falls back to region evaluation.
 *
 * Integer add/mul go through the unsigned type of at least 32 bits so that
 * wrap-around is defined behaviour (UBSan runs the tests).  Folds over
 * contiguous runs of f32/f64/integers use eight partial accumulators: this
 * breaks the add latency chain (XLA vectorises its reductions the same way);
 * f16/bf16 folds stay strictly sequential because each step rounds.
 */
#include <math.h>
#include <string.h>

#include "runtime/kernels/rd_common.h"

/* The element-wise and fold loops must vectorise even in -O2 builds (GCC's
 * default -O2 cost model refuses loops that need an epilogue).  Not the
 * window rows: their inner trip counts are tiny and O3 makes them slower. */
#if defined(__GNUC__) && !defined(__clang__)
#define RD_VECTORIZE __attribute__((optimize("O3")))
#else
#define RD_VECTORIZE
#endif

#define RD_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------ combines */

#define RD_INT_COMBINE(NAME, T, UT)                                   \
  RD_INLINE T comb_##NAME(int op, T a, T b) {                         \
    switch (op) {                                                     \
      case HS_RD_ADD: return (T)((UT)a + (UT)b);                      \
      case HS_RD_MUL: return (T)((UT)a * (UT)b);                      \
      case HS_RD_MAX: return a > b ? a : b;                           \
      case HS_RD_MIN: return a < b ? a : b;                           \
      case HS_RD_AND: return (T)(a & b);                              \
      case HS_RD_OR: return (T)(a | b);                               \
      default: return (T)(a ^ b);                                     \
    }                                                                 \
  }

RD_INT_COMBINE(i8, int8_t, uint32_t)
RD_INT_COMBINE(i16, int16_t, uint32_t)
RD_INT_COMBINE(i32, int32_t, uint32_t)
RD_INT_COMBINE(i64, int64_t, uint64_t)
RD_INT_COMBINE(u8, uint8_t, uint32_t)
RD_INT_COMBINE(u16, uint16_t, uint32_t)
RD_INT_COMBINE(u32, uint32_t, uint32_t)
RD_INT_COMBINE(u64, uint64_t, uint64_t)

RD_INLINE uint8_t comb_pred(int op, uint8_t a, uint8_t b) {
  switch (op) {
    case HS_RD_ADD:
    case HS_RD_MAX:
    case HS_RD_OR: return a | b;
    case HS_RD_MUL:
    case HS_RD_MIN:
    case HS_RD_AND: return a & b;
    default: return a ^ b;
  }
}

/* NaN-propagating max/min as XLA emits them: the left operand wins ties. */
#define RD_FLOAT_COMBINE(NAME, T)                        \
  RD_INLINE T comb_##NAME(int op, T a, T b) {            \
    switch (op) {                                        \
      case HS_RD_ADD: return a + b;                      \
      case HS_RD_MUL: return a * b;                      \
      case HS_RD_MAX: return (a != a || a >= b) ? a : b; \
      default: return (a != a || a <= b) ? a : b;        \
    }                                                    \
  }

RD_FLOAT_COMBINE(f32, float)
RD_FLOAT_COMBINE(f64, double)

RD_INLINE float comb_f16(int op, float a, float b) { return comb_f32(op, a, b); }
RD_INLINE float comb_bf16(int op, float a, float b) { return comb_f32(op, a, b); }

#define LD_ID(x) (x)
#define ST_ID(x) (x)
#define LD_F16(x) hs_f16_to_f32(x)
#define ST_F16(x) hs_f32_to_f16(x)
#define LD_BF16(x) hs_bf16_to_f32(x)
#define ST_BF16(x) hs_f32_to_bf16(x)
/* Rounds an f32 intermediate to the element type (identity for the rest). */
#define RND_ID(x) (x)
#define RND_F16(x) hs_f16_to_f32(hs_f32_to_f16(x))
#define RND_BF16(x) hs_bf16_to_f32(hs_f32_to_bf16(x))

/* ------------------------------------------------------------ loop shapes */

/* LANES: 1 to allow partial accumulators in contiguous folds. */
#define RD_GEN(NAME, T, A, LD, ST, RND, OPN, OP, LANES, FLT)                                        \
  RD_VECTORIZE static void vec_##NAME##_##OPN(void *acc_, const void *x_, int64_t n) {                  \
    T *restrict acc = acc_;                                                                \
    const T *restrict x = x_;                                                              \
    for (int64_t i = 0; i < n; i++) acc[i] = ST(comb_##NAME(OP, LD(acc[i]), LD(x[i])));    \
  }                                                                                        \
  RD_VECTORIZE static void fold_##NAME##_##OPN(void *acc_, const void *x_, int64_t n, int64_t stride) { \
    T *acc = acc_;                                                                         \
    const T *x = x_;                                                                       \
    A a = LD(*acc);                                                                        \
    int64_t i = 0;                                                                         \
    if (LANES && stride == 1 && n >= 32) {                                                 \
      A l[8];                                                                              \
      for (int j = 0; j < 8; j++) l[j] = LD(x[j]);                                         \
      for (i = 8; i + 8 <= n; i += 8)                                                      \
        for (int j = 0; j < 8; j++) l[j] = comb_##NAME(OP, l[j], LD(x[i + j]));            \
      for (int j = 0; j < 8; j++) a = comb_##NAME(OP, a, l[j]);                            \
    }                                                                                      \
    if (FLT && (OP == HS_RD_MAX || OP == HS_RD_MIN)) {                                    \
      /* branch-free max/min (maxss), NaN tracked on the side */                           \
      bool nan = a != a;                                                                   \
      for (; i < n; i++) {                                                                 \
        A v = LD(x[i * stride]);                                                           \
        nan |= v != v;                                                                     \
        a = (OP == HS_RD_MAX ? v > a : v < a) ? v : a;                                     \
      }                                                                                    \
      if (nan) a = (A)NAN;                                                                 \
    }                                                                                      \
    for (; i < n; i++) a = RND(comb_##NAME(OP, a, LD(x[i * stride])));                      \
    *acc = ST(a);                                                                          \
  }                                                                                        \
  static void winrow_##NAME##_##OPN(void *out_, int64_t n_out, const void *init_,          \
                                    const void *const *rows, int64_t n_rows,               \
                                    const int64_t *start, const int64_t *klo,              \
                                    const int64_t *khi, int64_t kstep) {                   \
    T *out = out_;                                                                         \
    const A init = LD(*(const T *)init_);                                                  \
    for (int64_t o = 0; o < n_out; o++) {                                                  \
      A a = init;                                                                          \
      const int64_t k0 = klo[o], k1 = khi[o], s = start[o];                                \
      if (FLT && (OP == HS_RD_MAX || OP == HS_RD_MIN)) {                                  \
        bool nan = a != a;                                                                 \
        for (int64_t r = 0; r < n_rows; r++) {                                             \
          const T *row = (const T *)rows[r] + s;                                           \
          for (int64_t k = k0; k < k1; k++) {                                              \
            A v = LD(row[k * kstep]);                                                      \
            nan |= v != v;                                                                 \
            a = (OP == HS_RD_MAX ? v > a : v < a) ? v : a;                                 \
          }                                                                                \
        }                                                                                  \
        if (nan) a = (A)NAN;                                                               \
      } else {                                                                             \
        for (int64_t r = 0; r < n_rows; r++) {                                             \
          const T *row = (const T *)rows[r];                                               \
          for (int64_t k = k0; k < k1; k++) a = RND(comb_##NAME(OP, a, LD(row[s + k * kstep]))); \
        }                                                                                  \
      }                                                                                    \
      out[o] = ST(a);                                                                      \
    }                                                                                      \
  }

#define RD_GEN_ARITH(NAME, T, A, LD, ST, RND, LANES, FLT)                \
  RD_GEN(NAME, T, A, LD, ST, RND, add, HS_RD_ADD, LANES, FLT)            \
  RD_GEN(NAME, T, A, LD, ST, RND, mul, HS_RD_MUL, LANES, FLT)            \
  RD_GEN(NAME, T, A, LD, ST, RND, max, HS_RD_MAX, LANES, FLT)            \
  RD_GEN(NAME, T, A, LD, ST, RND, min, HS_RD_MIN, LANES, FLT)

#define RD_GEN_ALL(NAME, T, A, LD, ST, RND, LANES, FLT)                  \
  RD_GEN_ARITH(NAME, T, A, LD, ST, RND, LANES, FLT)                    \
  RD_GEN(NAME, T, A, LD, ST, RND, and, HS_RD_AND, LANES, FLT)            \
  RD_GEN(NAME, T, A, LD, ST, RND, or, HS_RD_OR, LANES, FLT)              \
  RD_GEN(NAME, T, A, LD, ST, RND, xor, HS_RD_XOR, LANES, FLT)

RD_GEN_ALL(pred, uint8_t, uint8_t, LD_ID, ST_ID, RND_ID, 1, 0)
RD_GEN_ALL(i8, int8_t, int8_t, LD_ID, ST_ID, RND_ID, 1, 0)
RD_GEN_ALL(i16, int16_t, int16_t, LD_ID, ST_ID, RND_ID, 1, 0)
RD_GEN_ALL(i32, int32_t, int32_t, LD_ID, ST_ID, RND_ID, 1, 0)
RD_GEN_ALL(i64, int64_t, int64_t, LD_ID, ST_ID, RND_ID, 1, 0)
RD_GEN_ALL(u8, uint8_t, uint8_t, LD_ID, ST_ID, RND_ID, 1, 0)
RD_GEN_ALL(u16, uint16_t, uint16_t, LD_ID, ST_ID, RND_ID, 1, 0)
RD_GEN_ALL(u32, uint32_t, uint32_t, LD_ID, ST_ID, RND_ID, 1, 0)
RD_GEN_ALL(u64, uint64_t, uint64_t, LD_ID, ST_ID, RND_ID, 1, 0)
RD_GEN_ARITH(f16, uint16_t, float, LD_F16, ST_F16, RND_F16, 0, 1)
RD_GEN_ARITH(bf16, uint16_t, float, LD_BF16, ST_BF16, RND_BF16, 0, 1)
RD_GEN_ARITH(f32, float, float, LD_ID, ST_ID, RND_ID, 1, 1)
RD_GEN_ARITH(f64, double, double, LD_ID, ST_ID, RND_ID, 1, 1)

/* ------------------------------------------------------------ tables */

#define RD_ROW_ALL(KIND, NAME)                                                          \
  [HS_RD_ADD] = KIND##_##NAME##_add, [HS_RD_MUL] = KIND##_##NAME##_mul,                 \
  [HS_RD_MAX] = KIND##_##NAME##_max, [HS_RD_MIN] = KIND##_##NAME##_min,                 \
  [HS_RD_AND] = KIND##_##NAME##_and, [HS_RD_OR] = KIND##_##NAME##_or,                   \
  [HS_RD_XOR] = KIND##_##NAME##_xor
#define RD_ROW_ARITH(KIND, NAME)                                                        \
  [HS_RD_ADD] = KIND##_##NAME##_add, [HS_RD_MUL] = KIND##_##NAME##_mul,                 \
  [HS_RD_MAX] = KIND##_##NAME##_max, [HS_RD_MIN] = KIND##_##NAME##_min

#define RD_TABLE(TYPE, KIND)                                                  \
  static const TYPE KIND##_table[HS_DTYPE_COUNT][HS_RD_NOPS] = {              \
      [HS_PRED] = {RD_ROW_ALL(KIND, pred)}, [HS_I8] = {RD_ROW_ALL(KIND, i8)}, \
      [HS_I16] = {RD_ROW_ALL(KIND, i16)},   [HS_I32] = {RD_ROW_ALL(KIND, i32)}, \
      [HS_I64] = {RD_ROW_ALL(KIND, i64)},   [HS_U8] = {RD_ROW_ALL(KIND, u8)}, \
      [HS_U16] = {RD_ROW_ALL(KIND, u16)},   [HS_U32] = {RD_ROW_ALL(KIND, u32)}, \
      [HS_U64] = {RD_ROW_ALL(KIND, u64)},   [HS_F16] = {RD_ROW_ARITH(KIND, f16)}, \
      [HS_BF16] = {RD_ROW_ARITH(KIND, bf16)}, [HS_F32] = {RD_ROW_ARITH(KIND, f32)}, \
      [HS_F64] = {RD_ROW_ARITH(KIND, f64)},                                   \
  };

RD_TABLE(hs_rd_vec_fn, vec)
RD_TABLE(hs_rd_fold_fn, fold)
RD_TABLE(hs_rd_winrow_fn, winrow)

static bool in_table(hs_rd_op op, hs_dtype dt) {
  return op > HS_RD_NONE && op < HS_RD_NOPS && dt > HS_DTYPE_INVALID && dt < HS_DTYPE_COUNT;
}

hs_rd_vec_fn hs_rd_vec(hs_rd_op op, hs_dtype dt) { return in_table(op, dt) ? vec_table[dt][op] : NULL; }
hs_rd_fold_fn hs_rd_fold(hs_rd_op op, hs_dtype dt) {
  return in_table(op, dt) ? fold_table[dt][op] : NULL;
}
hs_rd_winrow_fn hs_rd_winrow(hs_rd_op op, hs_dtype dt) {
  return in_table(op, dt) ? winrow_table[dt][op] : NULL;
}

/* ------------------------------------------------------------ op facts */

hs_rd_op hs_rd_op_from_name(const char *name) {
  static const struct {
    const char *name;
    hs_rd_op op;
  } names[] = {
      {"stablehlo.add", HS_RD_ADD},     {"stablehlo.multiply", HS_RD_MUL},
      {"stablehlo.maximum", HS_RD_MAX}, {"stablehlo.minimum", HS_RD_MIN},
      {"stablehlo.and", HS_RD_AND},     {"stablehlo.or", HS_RD_OR},
      {"stablehlo.xor", HS_RD_XOR},
  };
  if (!name) return HS_RD_NONE;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i].name, name) == 0) return names[i].op;
  return HS_RD_NONE;
}

hs_rd_op hs_rd_region_op(const hs_region *region, hs_dtype dtype) {
  if (!region || region->n_blocks != 1) return HS_RD_NONE;
  const hs_block *b = region->blocks[0];
  if (b->n_args != 2 || b->n_ops != 2) return HS_RD_NONE;
  /* The body must compute in the element type itself (no promotion). */
  for (int i = 0; i < 2; i++) {
    const hs_type *t = &b->args[i]->type;
    if (t->kind != HS_TYPE_TENSOR || t->dtype != dtype || t->shape.rank != 0) return HS_RD_NONE;
  }
  const hs_op *op = b->ops[0];
  if (op->n_results != 1 || op->results[0]->type.dtype != dtype) return HS_RD_NONE;
  bool swapped = false;
  hs_rd_op r = hs_rd_op_from_name(hs_region_binary_op(region, &swapped));
  if (r == HS_RD_NONE || !hs_rd_vec(r, dtype)) return HS_RD_NONE;
  return r; /* every op we have loops for is commutative: swapped is fine */
}

bool hs_rd_op_idempotent(hs_rd_op op) {
  return op == HS_RD_MAX || op == HS_RD_MIN || op == HS_RD_AND || op == HS_RD_OR;
}

bool hs_rd_is_identity(hs_rd_op op, hs_dtype dt, const void *v) {
  if (hs_dtype_is_float(dt)) {
    double x = hs_load_f64(dt, v, 0);
    switch (op) {
      case HS_RD_ADD: return x == 0.0;
      case HS_RD_MUL: return x == 1.0;
      case HS_RD_MAX: return isinf(x) && x < 0;
      case HS_RD_MIN: return isinf(x) && x > 0;
      default: return false;
    }
  }
  uint64_t u = hs_load_u64(dt, v, 0);
  int bits = hs_dtype_bits(dt);
  uint64_t all = bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
  u &= all;
  bool is_signed = hs_dtype_is_signed(dt);
  uint64_t smin = is_signed ? (uint64_t)1 << (bits - 1) : 0;  /* lowest, as bits */
  uint64_t smax = is_signed ? smin - 1 : all;                  /* highest, as bits */
  switch (op) {
    case HS_RD_ADD:
    case HS_RD_XOR:
    case HS_RD_OR: return u == 0;
    case HS_RD_MUL: return u == 1;
    case HS_RD_AND: return u == all;
    case HS_RD_MAX: return dt == HS_PRED ? u == 0 : u == smin;
    case HS_RD_MIN: return dt == HS_PRED ? u == 1 : u == smax;
    default: return false;
  }
}

/* ------------------------------------------------------------ helpers */

void hs_rd_fill(void *dst, int64_t n, const void *value, size_t esize) {
  unsigned char *d = dst;
  if (n <= 0) return;
  switch (esize) {
    case 1: memset(d, *(const unsigned char *)value, (size_t)n); return;
    case 2: {
      uint16_t v;
      memcpy(&v, value, 2);
      for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = v;
      return;
    }
    case 4: {
      uint32_t v;
      memcpy(&v, value, 4);
      for (int64_t i = 0; i < n; i++) ((uint32_t *)dst)[i] = v;
      return;
    }
    case 8: {
      uint64_t v;
      memcpy(&v, value, 8);
      for (int64_t i = 0; i < n; i++) ((uint64_t *)dst)[i] = v;
      return;
    }
    default:
      for (int64_t i = 0; i < n; i++) memcpy(d + (size_t)i * esize, value, esize);
  }
}

void hs_rd_strides(const hs_shape *s, int64_t st[HS_MAX_RANK]) {
  int64_t acc = 1;
  for (int i = s->rank - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s->dims[i];
  }
}

static hs_status *read_list(const hs_op *op, const char *name, int rank, int64_t dflt, bool required,
                            int64_t *dst) {
  const int64_t *v = NULL;
  int n = 0;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, name, required, &v, &n));
  if (!v || n == 0) {
    if (required && rank > 0) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing %s", name);
    for (int i = 0; i < rank; i++) dst[i] = dflt;
    return NULL;
  }
  if (n != rank)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "%s has %d entries, expected %d (the rank)", name, n,
                       rank);
  for (int i = 0; i < rank; i++) {
    if (v[i] <= 0)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "%s[%d] = %lld must be positive", name, i,
                         (long long)v[i]);
    dst[i] = v[i];
  }
  return NULL;
}

hs_status *hs_rd_window_read(const hs_op *op, int rank, bool with_dilations, hs_rd_window *w) {
  memset(w, 0, sizeof *w);
  w->rank = rank;
  HS_RETURN_IF_ERROR(read_list(op, "window_dimensions", rank, 1, true, w->dims));
  HS_RETURN_IF_ERROR(read_list(op, "window_strides", rank, 1, false, w->strides));
  if (with_dilations) {
    HS_RETURN_IF_ERROR(read_list(op, "base_dilations", rank, 1, false, w->base_dil));
    HS_RETURN_IF_ERROR(read_list(op, "window_dilations", rank, 1, false, w->win_dil));
  } else {
    for (int i = 0; i < rank; i++) w->base_dil[i] = w->win_dil[i] = 1;
  }
  const int64_t *p = NULL;
  int n = 0;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "padding", false, &p, &n));
  if (p && n > 0) {
    if (n != 2 * rank)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "padding has %d entries, expected %d x 2", n, rank);
    for (int i = 0; i < rank; i++) {
      w->pad_lo[i] = p[2 * i];
      w->pad_hi[i] = p[2 * i + 1];
      if (w->pad_lo[i] < -((int64_t)1 << 40) || w->pad_lo[i] > ((int64_t)1 << 40) ||
          w->pad_hi[i] < -((int64_t)1 << 40) || w->pad_hi[i] > ((int64_t)1 << 40))
        return hs_op_error(op, HS_INVALID_ARGUMENT, "padding out of range");
    }
  }
  for (int i = 0; i < rank; i++)
    if (w->dims[i] > ((int64_t)1 << 40) || w->strides[i] > ((int64_t)1 << 40) ||
        w->base_dil[i] > ((int64_t)1 << 20) || w->win_dil[i] > ((int64_t)1 << 20))
      return hs_op_error(op, HS_INVALID_ARGUMENT, "window attribute out of range");
  return NULL;
}

void hs_rd_window_out_shape(const hs_rd_window *w, const hs_shape *in, hs_shape *out) {
  out->rank = w->rank;
  for (int i = 0; i < w->rank; i++) {
    int64_t d = in->dims[i];
    int64_t dilated = d == 0 ? 0 : (d - 1) * w->base_dil[i] + 1;
    int64_t padded = w->pad_lo[i] + dilated + w->pad_hi[i];
    int64_t win = w->dims[i] == 0 ? 0 : (w->dims[i] - 1) * w->win_dil[i] + 1;
    out->dims[i] = (padded <= 0 || win > padded) ? 0 : (padded - win) / w->strides[i] + 1;
  }
}

hs_status *hs_rd_check_body(const hs_op *op, const hs_region *region, int n_args,
                            const hs_dtype *ret_types, int n_ret) {
  if (!region || region->n_blocks != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "a region must have exactly one block");
  const hs_block *b = region->blocks[0];
  if (b->n_args != n_args)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "a body takes %d arguments, expected %d", b->n_args,
                       n_args);
  for (int i = 0; i < b->n_args; i++)
    if (b->args[i]->type.kind != HS_TYPE_TENSOR || b->args[i]->type.shape.rank != 0)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "body arguments must be scalar tensors");
  if (b->n_ops < 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "a body must end with a return");
  const hs_op *ret = b->ops[b->n_ops - 1];
  if (ret->n_operands != n_ret)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "a body returns %d values, expected %d",
                       ret->n_operands, n_ret);
  for (int i = 0; i < n_ret; i++) {
    const hs_type *t = &ret->operands[i]->type;
    if (t->kind != HS_TYPE_TENSOR || t->shape.rank != 0 || t->dtype != ret_types[i])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "body result %d must be a tensor<%s>", i,
                         hs_dtype_name(ret_types[i]));
  }
  return NULL;
}

hs_status *hs_rd_region_step(hs_exec_ctx *ctx, const hs_region *region, hs_tensor *acc,
                             hs_tensor *tmp, const hs_tensor *xs, int n, hs_tensor *args) {
  for (int k = 0; k < n; k++) {
    args[k] = acc[k];
    args[n + k] = xs[k];
  }
  HS_RETURN_IF_ERROR(hs_exec_region(ctx, region, args, 2 * n, tmp, n));
  for (int k = 0; k < n; k++) {
    void *t = acc[k].data;
    acc[k].data = tmp[k].data;
    tmp[k].data = t;
  }
  return NULL;
}

hs_status *hs_rd_body_scratch_init(hs_exec_ctx *ctx, const hs_op *op, int n, const hs_tensor *in,
                                   const hs_tensor *out, hs_rd_body_scratch *s) {
  hs_tensor *t = hs_exec_scratch(ctx, sizeof(hs_tensor) * (size_t)(5 * n));
  s->vargs = hs_exec_scratch(ctx, sizeof(void *) * (size_t)(2 * n));
  s->vouts = hs_exec_scratch(ctx, sizeof(void *) * (size_t)n);
  if (!t || !s->vargs || !s->vouts) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  s->acc = t;
  s->tmp = t + n;
  s->xs = t + 2 * n;
  s->args = t + 3 * n;
  for (int k = 0; k < n; k++) {
    size_t es = hs_dtype_size(out[k].dtype);
    s->acc[k].dtype = s->tmp[k].dtype = out[k].dtype;
    s->acc[k].shape.rank = s->tmp[k].shape.rank = 0;
    s->acc[k].data = hs_exec_scratch(ctx, es);
    s->tmp[k].data = hs_exec_scratch(ctx, es);
    if (!s->acc[k].data || !s->tmp[k].data) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
    s->xs[k].dtype = in[k].dtype;
    s->xs[k].shape.rank = 0;
  }
  return NULL;
}

hs_status *hs_rd_check_inputs(const hs_op *op, int n, const hs_type *in0, const hs_shape *want) {
  for (int k = 0; k < n; k++) {
    const hs_type *in, *init, *res;
    HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, k, &in));
    HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, n + k, &init));
    HS_RETURN_IF_ERROR(hs_op_tensor_result(op, k, &res));
    if (!hs_shape_equal(&in->shape, &in0->shape))
      return hs_op_error(op, HS_INVALID_ARGUMENT, "inputs must all have the same shape");
    if (init->shape.rank != 0)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "init value %d must be a scalar", k);
    if (res->dtype != init->dtype)
      return hs_op_error(op, HS_INVALID_ARGUMENT,
                         "result %d element type %s differs from its init value's %s", k,
                         hs_dtype_name(res->dtype), hs_dtype_name(init->dtype));
    if (want && !hs_shape_equal(&res->shape, want)) {
      char a[64], b[64];
      return hs_op_error(op, HS_INVALID_ARGUMENT, "result %d has shape [%s], expected [%s]", k,
                         hs_shape_str(&res->shape, a, sizeof a), hs_shape_str(want, b, sizeof b));
    }
  }
  return NULL;
}
