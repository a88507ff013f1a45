/*
 * movement.c - kernels that move elements without looking at their values:
 * broadcast_in_dim, broadcast, reshape, transpose, slice, reverse,
 * concatenate, pad, dynamic_slice, dynamic_update_slice, plus iota and
 * get_dimension_size, and the table of the whole movement family (gather,
 * scatter, sort and top_k live in mv_*.c).
 *
 * Each op is reduced at prepare time to a box walk of the copy engine in
 * mv_copy.c: the shapes are static, so the box (dims and source/destination
 * strides, already simplified) and the start offsets are computed once and
 * kept in op->kernel_state; run() only adds the tensors' base pointers.  Ops
 * whose offsets depend on runtime values (the dynamic_* pair) keep the box
 * and compute the clamped start offsets per call.  Everything works on raw
 * elements of hs_dtype_size() bytes, so every dtype (complex included) is
 * handled by the same code.
 */
#include <stdio.h>
#include <string.h>

#include "runtime/kernels/mv_common.h"

/* A precomputed copy: out[dst_off + box] = in[src_off + box]. */
typedef struct box_state {
  hs_mv_box box;
  int64_t src_off, dst_off; /* elements */
  bool fill;                /* pad: fill the result with the padding value first */
  struct pad_rows *rows;    /* pad without interior padding: one pass over result rows */
} box_state;

/* Pad with no interior padding, done row by row over the result (innermost
 * dim): each row is either all padding or [fill | copy | fill], so every
 * result byte is written once. */
typedef struct pad_rows {
  int rank;
  int64_t odims[HS_MAX_RANK], idims[HS_MAX_RANK], lo[HS_MAX_RANK], istride[HS_MAX_RANK];
  int64_t nrows, c0, c1; /* result columns [c0, c1) come from the operand */
} pad_rows;

static hs_status *oom(const hs_op *op) {
  return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory preparing the kernel");
}

static hs_status *shape_mismatch(const hs_op *op, const hs_type *rt, const hs_shape *want) {
  char got[128], ws[128];
  hs_type_str(rt, got, sizeof got);
  hs_shape_str(want, ws, sizeof ws);
  return hs_op_error(op, HS_INVALID_ARGUMENT, "result type %s does not match the expected shape [%s]",
                     got, ws);
}

/* Operand 0 and result 0 as tensors of the same dtype. */
static hs_status *unary_types(const hs_op *op, const hs_type **ot, const hs_type **rt) {
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, 0, ot));
  HS_RETURN_IF_ERROR(hs_mv_result_type(op, 0, rt));
  if ((*ot)->dtype != (*rt)->dtype)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "operand dtype %s differs from result dtype %s",
                       hs_dtype_name((*ot)->dtype), hs_dtype_name((*rt)->dtype));
  if (hs_dtype_size((*ot)->dtype) == 0)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "invalid element type");
  return NULL;
}

static box_state *new_state(hs_arena *arena) {
  box_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  return st;
}

typedef struct pad_job {
  const pad_rows *pr;
  const char *src;
  char *dst;
  const void *value;
  size_t es;
} pad_job;

static void pad_row_range(void *arg, int64_t r0, int64_t r1) {
  const pad_job *j = arg;
  const pad_rows *pr = j->pr;
  const int64_t es = (int64_t)j->es;
  int outer = pr->rank - 1;
  int64_t ow = pr->odims[outer], idx[HS_MAX_RANK], rem = r0;
  for (int k = outer - 1; k >= 0; k--) {
    idx[k] = rem % pr->odims[k];
    rem /= pr->odims[k];
  }
  for (int64_t r = r0; r < r1; r++) {
    char *d = j->dst + r * ow * es;
    int64_t soff = 0;
    bool valid = pr->c1 > pr->c0;
    for (int k = 0; k < outer && valid; k++) {
      int64_t si = idx[k] - pr->lo[k];
      valid = si >= 0 && si < pr->idims[k];
      soff += si * pr->istride[k];
    }
    if (!valid) {
      hs_mv_fill(NULL, d, ow, j->value, j->es);
    } else {
      hs_mv_fill(NULL, d, pr->c0, j->value, j->es);
      memcpy(d + pr->c0 * es, j->src + (soff + pr->c0 - pr->lo[outer]) * es,
             (size_t)(pr->c1 - pr->c0) * j->es);
      hs_mv_fill(NULL, d + pr->c1 * es, ow - pr->c1, j->value, j->es);
    }
    for (int k = outer - 1; k >= 0; k--) {
      if (++idx[k] < pr->odims[k]) break;
      idx[k] = 0;
    }
  }
}

static hs_status *run_box(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const box_state *st = op->kernel_state;
  size_t es = hs_dtype_size(out[0].dtype);
  if (st->rows) {
    pad_job j = {st->rows, in[0].data, out[0].data, in[1].data, es};
    int64_t row_bytes = st->rows->odims[st->rows->rank - 1] * (int64_t)es;
    int64_t total = st->rows->nrows * row_bytes;
    if (total >= ((int64_t)1 << 18)) {
      int64_t grain = ((int64_t)1 << 16) / (row_bytes > 0 ? row_bytes : 1);
      hs_exec_parallel_for(ctx, st->rows->nrows, grain < 1 ? 1 : grain, pad_row_range, &j);
    } else {
      pad_row_range(&j, 0, st->rows->nrows);
    }
    return NULL;
  }
  if (st->fill) hs_mv_fill(ctx, out[0].data, hs_tensor_numel(&out[0]), in[1].data, es);
  hs_mv_box_copy(ctx, &st->box, (const char *)in[0].data + st->src_off * (int64_t)es,
                 (char *)out[0].data + st->dst_off * (int64_t)es, es);
  return NULL;
}

/* Fills a box that walks the result in order (dst strides = result strides). */
static void box_over_result(hs_mv_box *b, const hs_shape *rs) {
  int64_t rst[HS_MAX_RANK];
  hs_mv_strides(rs, rst);
  b->rank = rs->rank;
  for (int i = 0; i < rs->rank; i++) {
    b->dims[i] = rs->dims[i];
    b->dst_stride[i] = rst[i];
    b->src_stride[i] = 0;
  }
}

/* ------------------------------------------------------ broadcast_in_dim */

static hs_status *broadcast_in_dim_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt;
  HS_RETURN_IF_ERROR(unary_types(op, &ot, &rt));
  const int64_t *dims;
  int n;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "broadcast_dimensions", true, &dims, &n));
  if (n != ot->shape.rank)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "broadcast_dimensions has %d entries, operand rank is %d", n, ot->shape.rank);
  box_state *st = new_state(arena);
  if (!st) return oom(op);
  box_over_result(&st->box, &rt->shape);
  int64_t ost[HS_MAX_RANK];
  hs_mv_strides(&ot->shape, ost);
  bool used[HS_MAX_RANK] = {false};
  for (int i = 0; i < n; i++) {
    int64_t d = dims[i];
    if (d < 0 || d >= rt->shape.rank || used[d])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "broadcast_dimensions[%d] = %lld is invalid", i,
                         (long long)d);
    used[d] = true;
    int64_t od = ot->shape.dims[i];
    if (od != 1 && od != rt->shape.dims[d])
      return hs_op_error(op, HS_INVALID_ARGUMENT,
                         "operand dim %d (size %lld) cannot broadcast to result dim %lld (size %lld)",
                         i, (long long)od, (long long)d, (long long)rt->shape.dims[d]);
    if (od != 1) st->box.src_stride[d] = ost[i];
  }
  hs_mv_box_simplify(&st->box);
  op->kernel_state = st;
  return NULL;
}

/* `stablehlo.broadcast`: broadcast_sizes are prepended to the operand's dims. */
static hs_status *broadcast_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt;
  HS_RETURN_IF_ERROR(unary_types(op, &ot, &rt));
  const int64_t *sizes;
  int n;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "broadcast_sizes", true, &sizes, &n));
  hs_shape want = {0};
  if (n + ot->shape.rank > HS_MAX_RANK)
    return hs_op_error(op, HS_UNIMPLEMENTED, "result rank above %d", HS_MAX_RANK);
  want.rank = n + ot->shape.rank;
  for (int i = 0; i < n; i++) want.dims[i] = sizes[i];
  for (int i = 0; i < ot->shape.rank; i++) want.dims[n + i] = ot->shape.dims[i];
  if (!hs_shape_equal(&want, &rt->shape)) return shape_mismatch(op, rt, &want);
  box_state *st = new_state(arena);
  if (!st) return oom(op);
  box_over_result(&st->box, &rt->shape);
  int64_t ost[HS_MAX_RANK];
  hs_mv_strides(&ot->shape, ost);
  for (int i = 0; i < ot->shape.rank; i++) st->box.src_stride[n + i] = ost[i];
  hs_mv_box_simplify(&st->box);
  op->kernel_state = st;
  return NULL;
}

/* --------------------------------------------------------------- reshape */

static hs_status *reshape_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt;
  HS_RETURN_IF_ERROR(unary_types(op, &ot, &rt));
  if (hs_shape_numel(&ot->shape) != hs_shape_numel(&rt->shape))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "reshape changes the element count (%lld -> %lld)",
                       (long long)hs_shape_numel(&ot->shape), (long long)hs_shape_numel(&rt->shape));
  return NULL;
}

static hs_status *reshape_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                              hs_tensor *out) {
  hs_mv_memcpy(ctx, out[0].data, in[0].data, hs_tensor_nbytes(&out[0]));
  return NULL;
}

/* ------------------------------------------------------------- transpose */

static hs_status *transpose_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt;
  HS_RETURN_IF_ERROR(unary_types(op, &ot, &rt));
  const int64_t *perm;
  int n;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "permutation", true, &perm, &n));
  int r = ot->shape.rank;
  if (n != r || rt->shape.rank != r)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "permutation has %d entries for rank %d", n, r);
  bool used[HS_MAX_RANK] = {false};
  hs_shape want = {0};
  want.rank = r;
  for (int i = 0; i < r; i++) {
    if (perm[i] < 0 || perm[i] >= r || used[perm[i]])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "permutation is not a permutation of 0..%d",
                         r - 1);
    used[perm[i]] = true;
    want.dims[i] = ot->shape.dims[perm[i]];
  }
  if (!hs_shape_equal(&want, &rt->shape)) return shape_mismatch(op, rt, &want);
  box_state *st = new_state(arena);
  if (!st) return oom(op);
  box_over_result(&st->box, &rt->shape);
  int64_t ost[HS_MAX_RANK];
  hs_mv_strides(&ot->shape, ost);
  for (int i = 0; i < r; i++) st->box.src_stride[i] = ost[perm[i]];
  hs_mv_box_simplify(&st->box);
  op->kernel_state = st;
  return NULL;
}

/* ----------------------------------------------------------------- slice */

static hs_status *slice_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt;
  HS_RETURN_IF_ERROR(unary_types(op, &ot, &rt));
  const int64_t *start, *limit, *step = NULL;
  int ns, nl, nst = 0;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "start_indices", true, &start, &ns));
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "limit_indices", true, &limit, &nl));
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "strides", false, &step, &nst));
  int r = ot->shape.rank;
  if (ns != r || nl != r || (step && nst != r))
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "start/limit/strides need %d entries (got %d, %d, %d)", r, ns, nl, nst);
  box_state *st = new_state(arena);
  if (!st) return oom(op);
  hs_shape want = {0};
  want.rank = r;
  int64_t ost[HS_MAX_RANK];
  hs_mv_strides(&ot->shape, ost);
  for (int i = 0; i < r; i++) {
    int64_t s = step ? step[i] : 1;
    if (start[i] < 0 || start[i] > limit[i] || limit[i] > ot->shape.dims[i] || s <= 0)
      return hs_op_error(op, HS_INVALID_ARGUMENT,
                         "invalid slice of dim %d: [%lld:%lld:%lld] of size %lld", i,
                         (long long)start[i], (long long)limit[i], (long long)s,
                         (long long)ot->shape.dims[i]);
    want.dims[i] = (limit[i] - start[i] + s - 1) / s;
    st->src_off += start[i] * ost[i];
  }
  if (!hs_shape_equal(&want, &rt->shape)) return shape_mismatch(op, rt, &want);
  box_over_result(&st->box, &rt->shape);
  for (int i = 0; i < r; i++) st->box.src_stride[i] = ost[i] * (step ? step[i] : 1);
  if (hs_shape_numel(&rt->shape) == 0) st->src_off = 0;
  hs_mv_box_simplify(&st->box);
  op->kernel_state = st;
  return NULL;
}

/* --------------------------------------------------------------- reverse */

static hs_status *reverse_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt;
  HS_RETURN_IF_ERROR(unary_types(op, &ot, &rt));
  if (!hs_shape_equal(&ot->shape, &rt->shape)) return shape_mismatch(op, rt, &ot->shape);
  const int64_t *dims;
  int n;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "dimensions", true, &dims, &n));
  box_state *st = new_state(arena);
  if (!st) return oom(op);
  box_over_result(&st->box, &rt->shape);
  int64_t ost[HS_MAX_RANK];
  hs_mv_strides(&ot->shape, ost);
  for (int i = 0; i < ot->shape.rank; i++) st->box.src_stride[i] = ost[i];
  bool used[HS_MAX_RANK] = {false};
  bool empty = hs_shape_numel(&ot->shape) == 0;
  for (int i = 0; i < n; i++) {
    int64_t d = dims[i];
    if (d < 0 || d >= ot->shape.rank || used[d])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "dimensions[%d] = %lld is invalid", i,
                         (long long)d);
    used[d] = true;
    if (!empty) st->src_off += (ot->shape.dims[d] - 1) * ost[d];
    st->box.src_stride[d] = -ost[d];
  }
  hs_mv_box_simplify(&st->box);
  op->kernel_state = st;
  return NULL;
}

/* ----------------------------------------------------------- concatenate */

typedef struct concat_state {
  int n;
  hs_mv_box *boxes;  /* one per input */
  int64_t *dst_off;  /* elements */
} concat_state;

static hs_status *concatenate_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *rt;
  HS_RETURN_IF_ERROR(hs_mv_result_type(op, 0, &rt));
  int64_t dim;
  HS_RETURN_IF_ERROR(hs_op_get_int(op, "dimension", true, 0, &dim));
  int r = rt->shape.rank;
  if (dim < 0 || dim >= r)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "dimension %lld out of range for rank %d",
                       (long long)dim, r);
  if (op->n_operands < 1) return hs_op_error(op, HS_INVALID_ARGUMENT, "needs at least one operand");
  concat_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return oom(op);
  st->n = op->n_operands;
  st->boxes = hs_arena_calloc(arena, (size_t)st->n, sizeof *st->boxes);
  st->dst_off = hs_arena_calloc(arena, (size_t)st->n, sizeof *st->dst_off);
  if (!st->boxes || !st->dst_off) return oom(op);
  int64_t rst[HS_MAX_RANK];
  hs_mv_strides(&rt->shape, rst);
  int64_t off = 0;
  for (int k = 0; k < st->n; k++) {
    const hs_type *ot;
    HS_RETURN_IF_ERROR(hs_mv_operand_type(op, k, &ot));
    if (ot->dtype != rt->dtype || ot->shape.rank != r)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "operand %d has a different dtype or rank", k);
    for (int i = 0; i < r; i++)
      if (i != dim && ot->shape.dims[i] != rt->shape.dims[i])
        return hs_op_error(op, HS_INVALID_ARGUMENT, "operand %d differs from the result in dim %d",
                           k, i);
    int64_t ost[HS_MAX_RANK];
    hs_mv_strides(&ot->shape, ost);
    hs_mv_box *b = &st->boxes[k];
    b->rank = r;
    for (int i = 0; i < r; i++) {
      b->dims[i] = ot->shape.dims[i];
      b->src_stride[i] = ost[i];
      b->dst_stride[i] = rst[i];
    }
    hs_mv_box_simplify(b);
    st->dst_off[k] = off * rst[dim];
    off += ot->shape.dims[dim];
  }
  if (off != rt->shape.dims[dim])
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "operands add up to %lld along dim %lld, result has %lld", (long long)off,
                       (long long)dim, (long long)rt->shape.dims[dim]);
  op->kernel_state = st;
  return NULL;
}

static hs_status *concatenate_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                                  hs_tensor *out) {
  const concat_state *st = op->kernel_state;
  size_t es = hs_dtype_size(out[0].dtype);
  if (hs_tensor_numel(&out[0]) == 0) return NULL;
  for (int k = 0; k < st->n; k++)
    hs_mv_box_copy(ctx, &st->boxes[k], in[k].data,
                   (char *)out[0].data + st->dst_off[k] * (int64_t)es, es);
  return NULL;
}

/* ------------------------------------------------------------------- pad */

static int64_t floor_div(int64_t a, int64_t b) { /* b > 0 */
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

static hs_status *pad_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt, *pt;
  HS_RETURN_IF_ERROR(unary_types(op, &ot, &rt));
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, 1, &pt));
  if (pt->dtype != ot->dtype || pt->shape.rank != 0)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "padding value must be a scalar of the operand dtype");
  const int64_t *lo, *hi, *interior = NULL;
  int nlo, nhi, nin = 0;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "edge_padding_low", true, &lo, &nlo));
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "edge_padding_high", true, &hi, &nhi));
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "interior_padding", false, &interior, &nin));
  int r = ot->shape.rank;
  if (nlo != r || nhi != r || (interior && nin != r))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "padding lists need %d entries", r);
  box_state *st = new_state(arena);
  if (!st) return oom(op);
  hs_shape want = {0};
  want.rank = r;
  int64_t ost[HS_MAX_RANK], rst[HS_MAX_RANK];
  hs_mv_strides(&ot->shape, ost);
  for (int i = 0; i < r; i++) {
    int64_t in_ = interior ? interior[i] : 0, d = ot->shape.dims[i];
    if (in_ < 0)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "interior padding of dim %d is negative", i);
    want.dims[i] = lo[i] + hi[i] + d + (d > 0 ? (d - 1) * in_ : 0);
    if (want.dims[i] < 0)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "padding makes dim %d negative", i);
  }
  if (!hs_shape_equal(&want, &rt->shape)) return shape_mismatch(op, rt, &want);
  hs_mv_strides(&rt->shape, rst);
  st->box.rank = r;
  bool empty = false;
  for (int i = 0; i < r; i++) {
    int64_t s = (interior ? interior[i] : 0) + 1, d = ot->shape.dims[i], od = rt->shape.dims[i];
    /* Operand index j lands at lo + j*s; keep those inside [0, od). */
    int64_t j0 = lo[i] >= 0 ? 0 : floor_div(-lo[i] + s - 1, s);
    int64_t j1 = floor_div(od - 1 - lo[i], s) + 1;
    if (j1 > d) j1 = d;
    if (j0 < 0) j0 = 0;
    if (j1 <= j0) {
      empty = true;
      j1 = j0;
    }
    st->box.dims[i] = j1 - j0;
    st->box.src_stride[i] = ost[i];
    st->box.dst_stride[i] = s * rst[i];
    st->src_off += j0 * ost[i];
    st->dst_off += (lo[i] + j0 * s) * rst[i];
    if (lo[i] > 0 || hi[i] > 0 || s > 1) st->fill = true;
  }
  if (empty || hs_shape_numel(&rt->shape) == 0) {
    st->box.rank = 1;
    st->box.dims[0] = 0;
    st->src_off = st->dst_off = 0;
    st->fill = hs_shape_numel(&rt->shape) > 0;
  }
  bool no_interior = true;
  for (int i = 0; i < r; i++) no_interior = no_interior && (!interior || interior[i] == 0);
  if (no_interior && r >= 1 && st->fill && hs_shape_numel(&rt->shape) > 0) {
    pad_rows *pr = hs_arena_calloc(arena, 1, sizeof *pr);
    if (!pr) return oom(op);
    pr->rank = r;
    for (int i = 0; i < r; i++) {
      pr->odims[i] = rt->shape.dims[i];
      pr->idims[i] = ot->shape.dims[i];
      pr->lo[i] = lo[i];
      pr->istride[i] = ost[i];
    }
    int64_t ow = pr->odims[r - 1];
    pr->c0 = lo[r - 1] > 0 ? lo[r - 1] : 0;
    pr->c1 = lo[r - 1] + pr->idims[r - 1];
    if (pr->c1 > ow) pr->c1 = ow;
    if (pr->c0 > ow) pr->c0 = ow;
    if (pr->c1 < pr->c0) pr->c1 = pr->c0;
    pr->nrows = ow ? hs_shape_numel(&rt->shape) / ow : 0;
    st->rows = pr;
  }
  hs_mv_box_simplify(&st->box);
  op->kernel_state = st;
  return NULL;
}

/* ------------------------------------------------------------------ iota */

typedef struct iota_state {
  int64_t outer, n, inner;
} iota_state;

static hs_status *iota_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *rt;
  HS_RETURN_IF_ERROR(hs_mv_result_type(op, 0, &rt));
  int64_t dim;
  HS_RETURN_IF_ERROR(hs_op_get_int(op, "iota_dimension", true, 0, &dim));
  if (rt->shape.rank == 0 || dim < 0 || dim >= rt->shape.rank)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "iota_dimension %lld out of range for rank %d",
                       (long long)dim, rt->shape.rank);
  if (hs_dtype_size(rt->dtype) == 0)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "invalid element type");
  iota_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return oom(op);
  st->outer = st->inner = 1;
  for (int i = 0; i < dim; i++) st->outer *= rt->shape.dims[i];
  st->n = rt->shape.dims[dim];
  for (int i = (int)dim + 1; i < rt->shape.rank; i++) st->inner *= rt->shape.dims[i];
  op->kernel_state = st;
  return NULL;
}

/* The value v as one element of dtype t. */
static void iota_value(hs_dtype t, int64_t v, void *dst) {
  if (t == HS_C64) {
    float re[2] = {(float)v, 0.0f};
    memcpy(dst, re, sizeof re);
  } else if (t == HS_C128) {
    double re[2] = {(double)v, 0.0};
    memcpy(dst, re, sizeof re);
  } else {
    hs_store_i64(t, dst, 0, v);
  }
}

static hs_status *iota_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                           hs_tensor *out) {
  const iota_state *st = op->kernel_state;
  hs_dtype t = out[0].dtype;
  size_t es = hs_dtype_size(t);
  char *d = out[0].data;
  int64_t block = st->n * st->inner; /* elements of one outer slice */
  if (block == 0 || st->outer == 0) return NULL;
  if (st->inner == 1) {
    for (int64_t i = 0; i < st->n; i++) iota_value(t, i, d + i * (int64_t)es);
  } else {
    unsigned char v[16];
    for (int64_t i = 0; i < st->n; i++) {
      iota_value(t, i, v);
      hs_mv_fill(NULL, d + i * st->inner * (int64_t)es, st->inner, v, es);
    }
  }
  for (int64_t o = 1; o < st->outer; o++)
    memcpy(d + o * block * (int64_t)es, d, (size_t)block * es);
  return NULL;
}

/* ------------------------------------------------- dynamic_slice / update */

typedef struct dyn_state {
  hs_mv_box box;    /* the slice (or the update) walked over the operand's strides */
  int rank;
  int64_t dims[HS_MAX_RANK];   /* operand dims */
  int64_t sizes[HS_MAX_RANK];  /* slice sizes / update dims */
  int64_t stride[HS_MAX_RANK]; /* operand strides */
  int first_index;             /* operand number of the first start index */
  bool vector_indices;         /* one rank-1 tensor instead of scalars */
} dyn_state;

static hs_status *dyn_indices(const hs_op *op, dyn_state *st) {
  int r = st->rank, nidx = op->n_operands - st->first_index;
  if (nidx == 1 && r != 1) {
    const hs_type *it;
    HS_RETURN_IF_ERROR(hs_mv_operand_type(op, st->first_index, &it));
    if (it->shape.rank == 1 && it->shape.dims[0] == r && hs_dtype_is_int(it->dtype)) {
      st->vector_indices = true;
      return NULL;
    }
  }
  if (nidx != r)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected %d start indices, got %d", r, nidx);
  for (int i = 0; i < r; i++) {
    const hs_type *it;
    HS_RETURN_IF_ERROR(hs_mv_operand_type(op, st->first_index + i, &it));
    if (it->shape.rank != 0 || !hs_dtype_is_int(it->dtype))
      return hs_op_error(op, HS_INVALID_ARGUMENT, "start index %d must be an integer scalar", i);
  }
  return NULL;
}

/* Clamped start offset (elements) into the operand. */
static int64_t dyn_offset(const dyn_state *st, const hs_tensor *in) {
  int64_t off = 0;
  for (int i = 0; i < st->rank; i++) {
    int64_t s = st->vector_indices
                    ? hs_mv_load_index(in[st->first_index].dtype, in[st->first_index].data, i)
                    : hs_mv_load_index(in[st->first_index + i].dtype, in[st->first_index + i].data, 0);
    int64_t hi = st->dims[i] - st->sizes[i];
    if (s > hi) s = hi;
    if (s < 0) s = 0;
    off += s * st->stride[i];
  }
  return off;
}

static hs_status *dynamic_slice_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt;
  HS_RETURN_IF_ERROR(unary_types(op, &ot, &rt));
  const int64_t *sizes;
  int n;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "slice_sizes", true, &sizes, &n));
  int r = ot->shape.rank;
  if (n != r) return hs_op_error(op, HS_INVALID_ARGUMENT, "slice_sizes needs %d entries", r);
  dyn_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return oom(op);
  st->rank = r;
  st->first_index = 1;
  HS_RETURN_IF_ERROR(dyn_indices(op, st));
  hs_shape want = {0};
  want.rank = r;
  hs_mv_strides(&ot->shape, st->stride);
  for (int i = 0; i < r; i++) {
    if (sizes[i] < 0 || sizes[i] > ot->shape.dims[i])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "slice_sizes[%d] = %lld exceeds the dim %lld", i,
                         (long long)sizes[i], (long long)ot->shape.dims[i]);
    want.dims[i] = st->sizes[i] = sizes[i];
    st->dims[i] = ot->shape.dims[i];
  }
  if (!hs_shape_equal(&want, &rt->shape)) return shape_mismatch(op, rt, &want);
  box_over_result(&st->box, &rt->shape);
  for (int i = 0; i < r; i++) st->box.src_stride[i] = st->stride[i];
  hs_mv_box_simplify(&st->box);
  op->kernel_state = st;
  return NULL;
}

static hs_status *dynamic_slice_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                                    hs_tensor *out) {
  const dyn_state *st = op->kernel_state;
  size_t es = hs_dtype_size(out[0].dtype);
  if (hs_tensor_numel(&out[0]) == 0) return NULL;
  int64_t off = dyn_offset(st, in);
  hs_mv_box_copy(ctx, &st->box, (const char *)in[0].data + off * (int64_t)es, out[0].data, es);
  return NULL;
}

static hs_status *dynamic_update_slice_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt, *ut;
  HS_RETURN_IF_ERROR(unary_types(op, &ot, &rt));
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, 1, &ut));
  if (!hs_shape_equal(&ot->shape, &rt->shape)) return shape_mismatch(op, rt, &ot->shape);
  int r = ot->shape.rank;
  if (ut->dtype != ot->dtype || ut->shape.rank != r)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "update must have the operand's dtype and rank");
  dyn_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return oom(op);
  st->rank = r;
  st->first_index = 2;
  HS_RETURN_IF_ERROR(dyn_indices(op, st));
  hs_mv_strides(&ot->shape, st->stride);
  int64_t ust[HS_MAX_RANK];
  hs_mv_strides(&ut->shape, ust);
  st->box.rank = r;
  for (int i = 0; i < r; i++) {
    if (ut->shape.dims[i] > ot->shape.dims[i])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "update dim %d is larger than the operand's", i);
    st->dims[i] = ot->shape.dims[i];
    st->sizes[i] = ut->shape.dims[i];
    st->box.dims[i] = ut->shape.dims[i];
    st->box.src_stride[i] = ust[i];
    st->box.dst_stride[i] = st->stride[i];
  }
  hs_mv_box_simplify(&st->box);
  op->kernel_state = st;
  return NULL;
}

static hs_status *dynamic_update_slice_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                                           hs_tensor *out) {
  const dyn_state *st = op->kernel_state;
  size_t es = hs_dtype_size(out[0].dtype);
  hs_mv_memcpy(ctx, out[0].data, in[0].data, hs_tensor_nbytes(&out[0]));
  if (hs_tensor_numel(&in[1]) == 0) return NULL;
  int64_t off = dyn_offset(st, in);
  hs_mv_box_copy(ctx, &st->box, in[1].data, (char *)out[0].data + off * (int64_t)es, es);
  return NULL;
}

/* ---------------------------------------------------- get_dimension_size */

static hs_status *get_dimension_size_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *rt;
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, 0, &ot));
  HS_RETURN_IF_ERROR(hs_mv_result_type(op, 0, &rt));
  int64_t dim;
  HS_RETURN_IF_ERROR(hs_op_get_int(op, "dimension", true, 0, &dim));
  if (dim < 0 || dim >= ot->shape.rank)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "dimension %lld out of range", (long long)dim);
  if (rt->shape.rank != 0 || !hs_dtype_is_int(rt->dtype))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "result must be an integer scalar");
  int64_t *st = hs_arena_alloc(arena, sizeof *st);
  if (!st) return oom(op);
  *st = ot->shape.dims[dim];
  op->kernel_state = st;
  return NULL;
}

static hs_status *get_dimension_size_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                                         hs_tensor *out) {
  hs_store_i64(out[0].dtype, out[0].data, 0, *(const int64_t *)op->kernel_state);
  return NULL;
}

/* ----------------------------------------------------------------- table */

const hs_kernel hs_kernels_movement[] = {
    {"stablehlo.broadcast_in_dim", broadcast_in_dim_prepare, run_box},
    {"stablehlo.broadcast", broadcast_prepare, run_box},
    {"stablehlo.reshape", reshape_prepare, reshape_run},
    {"stablehlo.transpose", transpose_prepare, run_box},
    {"stablehlo.slice", slice_prepare, run_box},
    {"stablehlo.reverse", reverse_prepare, run_box},
    {"stablehlo.concatenate", concatenate_prepare, concatenate_run},
    {"stablehlo.pad", pad_prepare, run_box},
    {"stablehlo.iota", iota_prepare, iota_run},
    {"stablehlo.dynamic_slice", dynamic_slice_prepare, dynamic_slice_run},
    {"stablehlo.dynamic_update_slice", dynamic_update_slice_prepare, dynamic_update_slice_run},
    {"stablehlo.get_dimension_size", get_dimension_size_prepare, get_dimension_size_run},
    {"stablehlo.gather", hs_mv_gather_prepare, hs_mv_gather_run},
    {"stablehlo.scatter", hs_mv_scatter_prepare, hs_mv_scatter_run},
    {"stablehlo.sort", hs_mv_sort_prepare, hs_mv_sort_run},
    {"chlo.top_k", hs_mv_top_k_prepare, hs_mv_top_k_run},
    {NULL, NULL, NULL},
};

bool hs_mv_in_list(const int64_t *v, int n, int64_t x) {
  for (int i = 0; i < n; i++)
    if (v[i] == x) return true;
  return false;
}

hs_status *hs_mv_check_dims(const hs_op *op, const char *what, const int64_t *v, int n, int64_t bound,
                            bool sorted) {
  for (int i = 0; i < n; i++) {
    if (v[i] < 0 || v[i] >= bound)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "%s[%d] = %lld out of range [0, %lld)", what, i,
                         (long long)v[i], (long long)bound);
    for (int j = 0; j < i; j++)
      if (v[j] == v[i] || (sorted && v[j] > v[i]))
        return hs_op_error(op, HS_INVALID_ARGUMENT, "%s must be sorted and unique", what);
  }
  return NULL;
}
