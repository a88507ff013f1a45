/*
 * mv_scatter.c - stablehlo.scatter: variadic inputs and updates, the full
 * dimension numbers of the spec (update_window_dims, inserted_window_dims,
 * input_batching_dims, scatter_indices_batching_dims,
 * scatter_dims_to_operand_dims, index_vector_dim), and an arbitrary update
 * computation.
 *
 * The results start as copies of the inputs.  Then, for every scatter
 * position (the update dims that are not window dims, walked in row-major
 * order, which fixes the order in which duplicate indices combine), the start
 * vector is read and the batching indices added; if the whole update window
 * does not fit inside the operand it is skipped (XLA's rule, which the JAX
 * reference results follow; the spec leaves it to the implementation), else
 * every window element is combined into the result.  The window is a fixed
 * box (update strides on one side, operand strides on the other), built and
 * simplified at prepare time.
 *
 * Combining: the update computation is evaluated element by element through
 * hs_exec_region() in general, with the block arguments pointing straight
 * into the result and update tensors.  The common bodies are recognised at
 * prepare time instead - `return %update` (a plain overwrite) and
 * `return a OP b` for add/multiply/minimum/maximum/and/or/xor via
 * hs_region_binary_op() - and run as typed loops over the window's innermost
 * run, with exactly the arithmetic of the corresponding elementwise op
 * (wrapping integers, f16/bf16 through f32 and rounded once, NaN-propagating
 * float min/max with -0 < +0, logical ops on i1).
 */
#include <math.h>
#include <string.h>

#include "runtime/kernels/mv_common.h"

/* r[i*rs] = f(r[i*rs], u[i*us]) for i < n; strides in elements. */
typedef void (*comb_fn)(char *r, int64_t rs, const char *u, int64_t us, int64_t n);

typedef struct scatter_state {
  int n;                          /* inputs (= updates = results) */
  int64_t ivd, ivd_stride;
  int nk;
  int64_t dims_map[HS_MAX_RANK];  /* operand dim of each index vector element */
  int nb;                         /* scatter dims of the updates */
  int64_t batch_size[HS_MAX_RANK];
  int64_t batch_idx_stride[HS_MAX_RANK];
  int64_t batch_upd_stride[HS_MAX_RANK];
  int nbatching;
  int64_t in_batching[HS_MAX_RANK];
  int batching_pos[HS_MAX_RANK];
  int op_rank;
  int64_t op_dims[HS_MAX_RANK], op_stride[HS_MAX_RANK];
  int64_t win_size[HS_MAX_RANK];  /* window extent per operand dim */
  int64_t nscatter, window_numel;
  hs_mv_box window;               /* src: updates, dst: operand */
  comb_fn comb;                   /* typed fast path, or NULL */
  bool assign;                    /* the body returns the updates */
  const hs_region *region;        /* the general path */
} scatter_state;

/* ------------------------------------------------------ typed combiners */

static inline float f16f(uint16_t h) { return hs_f16_to_f32(h); }
static inline float bf16f(uint16_t h) { return hs_bf16_to_f32(h); }

#define DEF_COMB(NAME, T, EXPR)                                                         \
  static void NAME(char *r, int64_t rs, const char *u, int64_t us, int64_t n) {         \
    for (int64_t i = 0; i < n; i++) {                                                   \
      T a, b, c;                                                                        \
      char *rp = r + i * rs * (int64_t)sizeof(T);                                       \
      memcpy(&a, rp, sizeof(T));                                                        \
      memcpy(&b, u + i * us * (int64_t)sizeof(T), sizeof(T));                           \
      c = (EXPR);                                                                       \
      memcpy(rp, &c, sizeof(T));                                                        \
    }                                                                                   \
  }

/* add */
DEF_COMB(add_u8, uint8_t, (uint8_t)(a + b))
DEF_COMB(add_u16, uint16_t, (uint16_t)(a + b))
DEF_COMB(add_u32, uint32_t, a + b)
DEF_COMB(add_u64, uint64_t, a + b)
DEF_COMB(add_pred, uint8_t, (uint8_t)((a | b) != 0))
DEF_COMB(add_f32, float, a + b)
DEF_COMB(add_f64, double, a + b)
DEF_COMB(add_f16, uint16_t, hs_f32_to_f16(f16f(a) + f16f(b)))
DEF_COMB(add_bf16, uint16_t, hs_f32_to_bf16(bf16f(a) + bf16f(b)))
/* multiply (8/16-bit products widened to unsigned 32 bits: no int overflow) */
DEF_COMB(mul_u8, uint8_t, (uint8_t)((uint32_t)a * (uint32_t)b))
DEF_COMB(mul_u16, uint16_t, (uint16_t)((uint32_t)a * (uint32_t)b))
DEF_COMB(mul_u32, uint32_t, a * b)
DEF_COMB(mul_u64, uint64_t, a * b)
DEF_COMB(mul_pred, uint8_t, (uint8_t)((a & b) != 0))
DEF_COMB(mul_f32, float, a * b)
DEF_COMB(mul_f64, double, a * b)
DEF_COMB(mul_f16, uint16_t, hs_f32_to_f16(f16f(a) * f16f(b)))
DEF_COMB(mul_bf16, uint16_t, hs_f32_to_bf16(bf16f(a) * bf16f(b)))
/* integer min / max */
DEF_COMB(min_i8, int8_t, a < b ? a : b)
DEF_COMB(min_i16, int16_t, a < b ? a : b)
DEF_COMB(min_i32, int32_t, a < b ? a : b)
DEF_COMB(min_i64, int64_t, a < b ? a : b)
DEF_COMB(min_u8, uint8_t, a < b ? a : b)
DEF_COMB(min_u16, uint16_t, a < b ? a : b)
DEF_COMB(min_u32, uint32_t, a < b ? a : b)
DEF_COMB(min_u64, uint64_t, a < b ? a : b)
DEF_COMB(max_i8, int8_t, a > b ? a : b)
DEF_COMB(max_i16, int16_t, a > b ? a : b)
DEF_COMB(max_i32, int32_t, a > b ? a : b)
DEF_COMB(max_i64, int64_t, a > b ? a : b)
DEF_COMB(max_u8, uint8_t, a > b ? a : b)
DEF_COMB(max_u16, uint16_t, a > b ? a : b)
DEF_COMB(max_u32, uint32_t, a > b ? a : b)
DEF_COMB(max_u64, uint64_t, a > b ? a : b)

/* Float min/max as IEEE-754 minimum/maximum: NaN wins, -0 < +0.  Decided on
 * the values widened to double; the chosen operand's bits are returned. */
static inline bool fmin_pick_a(double a, double b) {
  if (isnan(a)) return true;
  if (isnan(b)) return false;
  if (a == b) return signbit(a) != 0;
  return a < b;
}
static inline bool fmax_pick_a(double a, double b) {
  if (isnan(a)) return true;
  if (isnan(b)) return false;
  if (a == b) return signbit(a) == 0;
  return a > b;
}
DEF_COMB(min_f32, float, fmin_pick_a(a, b) ? a : b)
DEF_COMB(min_f64, double, fmin_pick_a(a, b) ? a : b)
DEF_COMB(min_f16, uint16_t, fmin_pick_a(f16f(a), f16f(b)) ? a : b)
DEF_COMB(min_bf16, uint16_t, fmin_pick_a(bf16f(a), bf16f(b)) ? a : b)
DEF_COMB(max_f32, float, fmax_pick_a(a, b) ? a : b)
DEF_COMB(max_f64, double, fmax_pick_a(a, b) ? a : b)
DEF_COMB(max_f16, uint16_t, fmax_pick_a(f16f(a), f16f(b)) ? a : b)
DEF_COMB(max_bf16, uint16_t, fmax_pick_a(bf16f(a), bf16f(b)) ? a : b)
/* bitwise (also logical on i1, whose bytes are 0/1) */
DEF_COMB(and_u8, uint8_t, (uint8_t)(a & b))
DEF_COMB(and_u16, uint16_t, (uint16_t)(a & b))
DEF_COMB(and_u32, uint32_t, a & b)
DEF_COMB(and_u64, uint64_t, a & b)
DEF_COMB(or_u8, uint8_t, (uint8_t)(a | b))
DEF_COMB(or_u16, uint16_t, (uint16_t)(a | b))
DEF_COMB(or_u32, uint32_t, a | b)
DEF_COMB(or_u64, uint64_t, a | b)
DEF_COMB(xor_u8, uint8_t, (uint8_t)(a ^ b))
DEF_COMB(xor_u16, uint16_t, (uint16_t)(a ^ b))
DEF_COMB(xor_u32, uint32_t, a ^ b)
DEF_COMB(xor_u64, uint64_t, a ^ b)

/* complex add / multiply */
static void add_c64(char *r, int64_t rs, const char *u, int64_t us, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float a[2], b[2];
    memcpy(a, r + i * rs * 8, 8);
    memcpy(b, u + i * us * 8, 8);
    a[0] += b[0];
    a[1] += b[1];
    memcpy(r + i * rs * 8, a, 8);
  }
}
static void add_c128(char *r, int64_t rs, const char *u, int64_t us, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double a[2], b[2];
    memcpy(a, r + i * rs * 16, 16);
    memcpy(b, u + i * us * 16, 16);
    a[0] += b[0];
    a[1] += b[1];
    memcpy(r + i * rs * 16, a, 16);
  }
}
static void mul_c64(char *r, int64_t rs, const char *u, int64_t us, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float a[2], b[2], c[2];
    memcpy(a, r + i * rs * 8, 8);
    memcpy(b, u + i * us * 8, 8);
    c[0] = a[0] * b[0] - a[1] * b[1];
    c[1] = a[0] * b[1] + a[1] * b[0];
    memcpy(r + i * rs * 8, c, 8);
  }
}
static void mul_c128(char *r, int64_t rs, const char *u, int64_t us, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double a[2], b[2], c[2];
    memcpy(a, r + i * rs * 16, 16);
    memcpy(b, u + i * us * 16, 16);
    c[0] = a[0] * b[0] - a[1] * b[1];
    c[1] = a[0] * b[1] + a[1] * b[0];
    memcpy(r + i * rs * 16, c, 16);
  }
}

/* By width for ops that only care about bits. */
static comb_fn by_width(hs_dtype t, comb_fn f8, comb_fn f16, comb_fn f32, comb_fn f64) {
  switch (hs_dtype_size(t)) {
    case 1: return f8;
    case 2: return f16;
    case 4: return f32;
    case 8: return f64;
    default: return NULL;
  }
}

static comb_fn pick_comb(const char *name, hs_dtype t) {
  bool is_int = hs_dtype_is_int(t), is_s = hs_dtype_is_signed(t);
  if (strcmp(name, "stablehlo.add") == 0) {
    if (t == HS_PRED) return add_pred;
    if (is_int) return by_width(t, add_u8, add_u16, add_u32, add_u64);
    switch (t) {
      case HS_F16: return add_f16;
      case HS_BF16: return add_bf16;
      case HS_F32: return add_f32;
      case HS_F64: return add_f64;
      case HS_C64: return add_c64;
      case HS_C128: return add_c128;
      default: return NULL;
    }
  }
  if (strcmp(name, "stablehlo.multiply") == 0) {
    if (t == HS_PRED) return mul_pred;
    if (is_int) return by_width(t, mul_u8, mul_u16, mul_u32, mul_u64);
    switch (t) {
      case HS_F16: return mul_f16;
      case HS_BF16: return mul_bf16;
      case HS_F32: return mul_f32;
      case HS_F64: return mul_f64;
      case HS_C64: return mul_c64;
      case HS_C128: return mul_c128;
      default: return NULL;
    }
  }
  if (strcmp(name, "stablehlo.minimum") == 0) {
    if (t == HS_PRED) return and_u8;
    if (is_s) return by_width(t, min_i8, min_i16, min_i32, min_i64);
    if (is_int) return by_width(t, min_u8, min_u16, min_u32, min_u64);
    switch (t) {
      case HS_F16: return min_f16;
      case HS_BF16: return min_bf16;
      case HS_F32: return min_f32;
      case HS_F64: return min_f64;
      default: return NULL;
    }
  }
  if (strcmp(name, "stablehlo.maximum") == 0) {
    if (t == HS_PRED) return or_u8;
    if (is_s) return by_width(t, max_i8, max_i16, max_i32, max_i64);
    if (is_int) return by_width(t, max_u8, max_u16, max_u32, max_u64);
    switch (t) {
      case HS_F16: return max_f16;
      case HS_BF16: return max_bf16;
      case HS_F32: return max_f32;
      case HS_F64: return max_f64;
      default: return NULL;
    }
  }
  if (!is_int && t != HS_PRED) return NULL;
  if (strcmp(name, "stablehlo.and") == 0) return by_width(t, and_u8, and_u16, and_u32, and_u64);
  if (strcmp(name, "stablehlo.or") == 0) return by_width(t, or_u8, or_u16, or_u32, or_u64);
  if (strcmp(name, "stablehlo.xor") == 0) return by_width(t, xor_u8, xor_u16, xor_u32, xor_u64);
  return NULL;
}

/* True when the body is `return %u0, ..., %u(n-1)` of its update arguments. */
static bool body_returns_updates(const hs_region *rg, int n) {
  if (rg->n_blocks != 1) return false;
  const hs_block *b = rg->blocks[0];
  if (b->n_args != 2 * n || b->n_ops != 1) return false;
  const hs_op *ret = b->ops[0];
  if (ret->n_operands != n) return false;
  for (int i = 0; i < n; i++)
    if (ret->operands[i] != b->args[n + i]) return false;
  return true;
}

/* ----------------------------------------------------------------- prepare */

hs_status *hs_mv_scatter_prepare(hs_op *op, hs_arena *arena) {
  if (op->n_operands < 3 || op->n_operands % 2 != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expects inputs..., scatter_indices, updates...");
  int n = (op->n_operands - 1) / 2;
  if (op->n_results != n)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expects %d results, has %d", n, op->n_results);
  if (op->n_regions != 1 || op->regions[0]->n_blocks != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expects one update computation region");
  const hs_type *ot, *it, *ut0;
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, 0, &ot));
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, n, &it));
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, n + 1, &ut0));
  if (!hs_dtype_is_int(it->dtype))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "scatter_indices must have an integer type");
  const hs_block *blk = op->regions[0]->blocks[0];
  if (blk->n_args != 2 * n)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "update computation takes %d arguments, expected %d",
                       blk->n_args, 2 * n);
  for (int k = 0; k < n; k++) {
    const hs_type *a, *u, *r;
    HS_RETURN_IF_ERROR(hs_mv_operand_type(op, k, &a));
    HS_RETURN_IF_ERROR(hs_mv_operand_type(op, n + 1 + k, &u));
    HS_RETURN_IF_ERROR(hs_mv_result_type(op, k, &r));
    if (!hs_shape_equal(&a->shape, &ot->shape) || !hs_shape_equal(&u->shape, &ut0->shape) ||
        !hs_shape_equal(&r->shape, &ot->shape))
      return hs_op_error(op, HS_INVALID_ARGUMENT, "inputs/updates/results %d differ in shape", k);
    if (a->dtype != u->dtype || a->dtype != r->dtype || hs_dtype_size(a->dtype) == 0)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "input, update and result %d differ in dtype", k);
    const hs_type *p0 = &blk->args[k]->type, *p1 = &blk->args[n + k]->type;
    if (p0->kind != HS_TYPE_TENSOR || p1->kind != HS_TYPE_TENSOR || p0->shape.rank != 0 ||
        p1->shape.rank != 0 || p0->dtype != a->dtype || p1->dtype != a->dtype)
      return hs_op_error(op, HS_UNIMPLEMENTED,
                         "update computation arguments must be scalars of the input dtype %s",
                         hs_dtype_name(a->dtype));
  }

  const hs_op *ret = blk->n_ops > 0 ? blk->ops[blk->n_ops - 1] : NULL;
  if (!ret || ret->n_operands != n)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "update computation must return %d values", n);
  for (int k = 0; k < n; k++) {
    const hs_type *t = &ret->operands[k]->type;
    if (t->kind != HS_TYPE_TENSOR || t->shape.rank != 0 || t->dtype != op->operands[k]->type.dtype)
      return hs_op_error(op, HS_INVALID_ARGUMENT,
                         "update computation must return scalars of the input dtypes (value %d)", k);
  }

  const hs_attr *dn = hs_op_attr(op, "scatter_dimension_numbers");
  if (!dn) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing attribute 'scatter_dimension_numbers'");
  const int64_t *uwd = NULL, *iwd = NULL, *ibat = NULL, *sibat = NULL, *sdod = NULL;
  int n_uwd = 0, n_iwd = 0, n_ibat = 0, n_sibat = 0, n_sdod = 0;
  int64_t ivd = 0;
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "update_window_dims", false, &uwd, &n_uwd));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "inserted_window_dims", false, &iwd, &n_iwd));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "input_batching_dims", false, &ibat, &n_ibat));
  HS_RETURN_IF_ERROR(
      hs_struct_get_ints(op, dn, "scatter_indices_batching_dims", false, &sibat, &n_sibat));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "scatter_dims_to_operand_dims", false, &sdod, &n_sdod));
  HS_RETURN_IF_ERROR(hs_struct_get_int(op, dn, "index_vector_dim", false, 0, &ivd));

  int orank = ot->shape.rank, irank = it->shape.rank, urank = ut0->shape.rank;
  if (ivd < 0 || ivd > irank)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "index_vector_dim %lld out of range", (long long)ivd);
  int64_t nk = ivd < irank ? it->shape.dims[ivd] : 1;
  int nb = ivd < irank ? irank - 1 : irank;
  if (n_sdod != nk)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "scatter_dims_to_operand_dims has %d entries, index vector %lld", n_sdod,
                       (long long)nk);
  if (n_ibat != n_sibat)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "input_batching_dims and scatter_indices_batching_dims differ in length");
  if (urank != nb + n_uwd)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "updates rank %d != %d scatter + %d window dims",
                       urank, nb, n_uwd);
  if (n_uwd + n_iwd + n_ibat != orank)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "update_window_dims + inserted_window_dims + input_batching_dims != rank %d",
                       orank);
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "update_window_dims", uwd, n_uwd, urank, true));
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "inserted_window_dims", iwd, n_iwd, orank, true));
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "input_batching_dims", ibat, n_ibat, orank, true));
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "scatter_dims_to_operand_dims", sdod, n_sdod, orank, false));
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "scatter_indices_batching_dims", sibat, n_sibat, irank, false));
  for (int i = 0; i < n_sibat; i++)
    if (sibat[i] == ivd)
      return hs_op_error(op, HS_INVALID_ARGUMENT,
                         "scatter_indices_batching_dims contains index_vector_dim");
  for (int i = 0; i < n_ibat; i++)
    if (hs_mv_in_list(iwd, n_iwd, ibat[i]) || hs_mv_in_list(sdod, n_sdod, ibat[i]))
      return hs_op_error(op, HS_INVALID_ARGUMENT,
                         "input_batching_dims overlaps inserted_window_dims or scatter_dims_to_operand_dims");

  scatter_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  st->n = n;
  st->ivd = ivd;
  st->nk = (int)nk;
  st->op_rank = orank;
  int64_t ist[HS_MAX_RANK], ust[HS_MAX_RANK];
  hs_mv_strides(&it->shape, ist);
  hs_mv_strides(&ut0->shape, ust);
  hs_mv_strides(&ot->shape, st->op_stride);
  st->ivd_stride = ivd < irank ? ist[ivd] : 0;
  for (int j = 0; j < n_sdod; j++) st->dims_map[j] = sdod[j];
  for (int d = 0; d < orank; d++) {
    st->op_dims[d] = ot->shape.dims[d];
    st->win_size[d] = 1;
  }
  /* Scatter dims: update dims not in update_window_dims <-> indices dims but ivd. */
  st->nb = nb;
  st->nscatter = 1;
  int k = 0, idim = 0;
  for (int d = 0; d < urank; d++) {
    if (hs_mv_in_list(uwd, n_uwd, d)) continue;
    if (idim == ivd) idim++;
    if (ut0->shape.dims[d] != it->shape.dims[idim])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "updates scatter dim %d has size %lld, indices %lld",
                         d, (long long)ut0->shape.dims[d], (long long)it->shape.dims[idim]);
    st->batch_size[k] = ut0->shape.dims[d];
    st->batch_idx_stride[k] = ist[idim];
    st->batch_upd_stride[k] = ust[d];
    st->nscatter *= ut0->shape.dims[d];
    k++;
    idim++;
  }
  st->nbatching = n_ibat;
  for (int i = 0; i < n_ibat; i++) {
    st->in_batching[i] = ibat[i];
    st->batching_pos[i] = (int)(sibat[i] - (sibat[i] > ivd ? 1 : 0));
    if (it->shape.dims[sibat[i]] != ot->shape.dims[ibat[i]])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "batching dims %lld/%lld differ in size",
                         (long long)ibat[i], (long long)sibat[i]);
  }
  /* Window: operand dims neither inserted nor batching, paired in order with
   * update_window_dims. */
  hs_mv_box *w = &st->window;
  int o = 0;
  for (int d = 0; d < orank; d++) {
    if (hs_mv_in_list(iwd, n_iwd, d) || hs_mv_in_list(ibat, n_ibat, d)) continue;
    int64_t sz = ut0->shape.dims[uwd[o]];
    if (sz > ot->shape.dims[d])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "update window dim %lld (size %lld) exceeds operand dim %d",
                         (long long)uwd[o], (long long)sz, d);
    st->win_size[d] = sz;
    w->dims[w->rank] = sz;
    w->src_stride[w->rank] = ust[uwd[o]];
    w->dst_stride[w->rank] = st->op_stride[d];
    w->rank++;
    o++;
  }
  st->window_numel = hs_mv_box_simplify(w);

  st->region = op->regions[0];
  if (body_returns_updates(st->region, n)) {
    st->assign = true;
  } else if (n == 1) {
    bool swapped = false;
    const char *name = hs_region_binary_op(st->region, &swapped);
    if (name) st->comb = pick_comb(name, ot->dtype);
  }
  op->kernel_state = st;
  return NULL;
}

/* --------------------------------------------------------------------- run */

/* The generic path: one region evaluation per window element. */
typedef struct region_ctx {
  hs_exec_ctx *ctx;
  const scatter_state *st;
  hs_tensor *args, *outs; /* 2n borrowed scalar args, n scratch outs */
  hs_tensor *results;
  const hs_tensor *updates;
  size_t *es;
} region_ctx;

static hs_status *region_element(region_ctx *rc, int64_t roff, int64_t uoff) {
  int n = rc->st->n;
  for (int k = 0; k < n; k++) {
    rc->args[k].data = (char *)rc->results[k].data + roff * (int64_t)rc->es[k];
    rc->args[n + k].data = (char *)rc->updates[k].data + uoff * (int64_t)rc->es[k];
  }
  HS_RETURN_IF_ERROR(hs_exec_region(rc->ctx, rc->st->region, rc->args, 2 * n, rc->outs, n));
  for (int k = 0; k < n; k++)
    memcpy((char *)rc->results[k].data + roff * (int64_t)rc->es[k], rc->outs[k].data, rc->es[k]);
  return NULL;
}

/* Walks the window box for one scatter position; roff/uoff: base offsets. */
static hs_status *apply_window(region_ctx *rc, int64_t roff, int64_t uoff) {
  const scatter_state *st = rc->st;
  const hs_mv_box *w = &st->window;
  if (st->window_numel == 0) return NULL;
  int n = st->n;
  if (st->assign && n == 1) {
    hs_mv_box_copy(NULL, w, (const char *)rc->updates[0].data + uoff * (int64_t)rc->es[0],
                   (char *)rc->results[0].data + roff * (int64_t)rc->es[0], rc->es[0]);
    return NULL;
  }
  if (st->assign) {
    for (int k = 0; k < n; k++)
      hs_mv_box_copy(NULL, w, (const char *)rc->updates[k].data + uoff * (int64_t)rc->es[k],
                     (char *)rc->results[k].data + roff * (int64_t)rc->es[k], rc->es[k]);
    return NULL;
  }
  /* Odometer over all dims but the innermost run. */
  int rank = w->rank;
  int outer = rank > 0 ? rank - 1 : 0;
  int64_t run = rank > 0 ? w->dims[rank - 1] : 1;
  int64_t rs = rank > 0 ? w->dst_stride[rank - 1] : 0, us = rank > 0 ? w->src_stride[rank - 1] : 0;
  int64_t rows = 1, idx[HS_MAX_RANK] = {0};
  for (int i = 0; i < outer; i++) rows *= w->dims[i];
  for (int64_t r = 0; r < rows; r++) {
    if (st->comb) {
      int64_t es = (int64_t)rc->es[0];
      st->comb((char *)rc->results[0].data + roff * es, rs,
               (const char *)rc->updates[0].data + uoff * es, us, run);
    } else {
      for (int64_t i = 0; i < run; i++) HS_RETURN_IF_ERROR(region_element(rc, roff + i * rs, uoff + i * us));
    }
    for (int k = outer - 1; k >= 0; k--) {
      if (++idx[k] < w->dims[k]) {
        roff += w->dst_stride[k];
        uoff += w->src_stride[k];
        break;
      }
      roff -= (w->dims[k] - 1) * w->dst_stride[k];
      uoff -= (w->dims[k] - 1) * w->src_stride[k];
      idx[k] = 0;
    }
  }
  return NULL;
}

hs_status *hs_mv_scatter_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                             hs_tensor *out) {
  const scatter_state *st = op->kernel_state;
  int n = st->n;
  const hs_tensor *indices = &in[n];
  const hs_tensor *updates = &in[n + 1];
  size_t es[16];
  hs_tensor *args = NULL, *outs = NULL;
  size_t *esp = es;
  if (n > 16) {
    esp = hs_exec_scratch(ctx, sizeof(size_t) * (size_t)n);
    if (!esp) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of scratch memory");
  }
  for (int k = 0; k < n; k++) {
    esp[k] = hs_dtype_size(out[k].dtype);
    hs_mv_memcpy(ctx, out[k].data, in[k].data, hs_tensor_nbytes(&out[k]));
  }
  if (st->nscatter == 0 || st->window_numel == 0 || hs_tensor_numel(&out[0]) == 0) return NULL;

  region_ctx rc = {ctx, st, NULL, NULL, out, updates, esp};
  if (!st->assign && !st->comb) {
    args = hs_exec_scratch(ctx, sizeof(hs_tensor) * (size_t)(3 * n));
    char *obuf = hs_exec_scratch(ctx, 16 * (size_t)n);
    if (!args || !obuf) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of scratch memory");
    outs = args + 2 * n;
    for (int k = 0; k < n; k++) {
      hs_tensor s;
      memset(&s, 0, sizeof s);
      s.dtype = out[k].dtype;
      s.shape.rank = 0;
      args[k] = s;
      args[n + k] = s;
      s.data = obuf + 16 * k;
      outs[k] = s;
    }
    rc.args = args;
    rc.outs = outs;
  }

  const void *idx = indices->data;
  hs_dtype idt = indices->dtype;
  int64_t bi[HS_MAX_RANK] = {0};
  int64_t ibase = 0, ubase = 0;
  for (int64_t p = 0; p < st->nscatter; p++) {
    int64_t full[HS_MAX_RANK] = {0};
    for (int j = 0; j < st->nk; j++) {
      int64_t v = hs_mv_load_index(idt, idx, ibase + j * st->ivd_stride);
      full[st->dims_map[j]] = v;
    }
    for (int i = 0; i < st->nbatching; i++) full[st->in_batching[i]] += bi[st->batching_pos[i]];
    bool ok = true;
    int64_t roff = 0;
    for (int d = 0; d < st->op_rank; d++) {
      /* The whole window must fit: 0 <= start <= dim - window. */
      if (full[d] < 0 || full[d] > st->op_dims[d] - st->win_size[d]) {
        ok = false;
        break;
      }
      roff += full[d] * st->op_stride[d];
    }
    if (ok) HS_RETURN_IF_ERROR(apply_window(&rc, roff, ubase));
    for (int k = st->nb - 1; k >= 0; k--) {
      if (++bi[k] < st->batch_size[k]) {
        ibase += st->batch_idx_stride[k];
        ubase += st->batch_upd_stride[k];
        break;
      }
      ibase -= (st->batch_size[k] - 1) * st->batch_idx_stride[k];
      ubase -= (st->batch_size[k] - 1) * st->batch_upd_stride[k];
      bi[k] = 0;
    }
  }
  return NULL;
}
