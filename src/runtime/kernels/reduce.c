/*
 * reduce.c - stablehlo.reduce, and the table of the reduction-family kernels
 * (reduce_window and select_and_scatter live in rd_window.c).
 *
 * Two paths.  The generic one follows the spec literally: every result
 * element starts at the init values and folds in the input elements of its
 * reduced index space in row-major order through the body, any number of
 * inputs at once (argmax reduces values and indices together); the body runs
 * in the scalar VM of rd_vm.c when it compiles there, else through the
 * executor.  The fast
 * one handles the common single-input "return a OP b" body with typed loops
 * (rd_ops.c): the input is walked once in memory order with an odometer over
 * the outer dims (no divisions per element), after dropping size-1 dims and
 * merging neighbours that are both reduced or both kept.  The innermost run is
 * then either reduced into one accumulator (fold) or combined element-wise
 * into a row of accumulators (vec), which are the two cache-friendly shapes.
 * Every output element still sees its inputs in the same row-major order as
 * the generic path, except that long contiguous f32/f64/integer folds use
 * partial accumulators as XLA does.
 */
#include <string.h>

#include "runtime/kernels/rd_common.h"

typedef struct reduce_state {
  int n;                         /* inputs (= init values = results) */
  int rank;
  bool reduced[HS_MAX_RANK];
  hs_rd_op fast;                 /* HS_RD_NONE: generic path */
  hs_rd_vm *vm;                  /* generic path without the executor, or NULL */
} reduce_state;

static hs_status *reduce_prepare(hs_op *op, hs_arena *arena) {
  if (op->n_operands < 2 || op->n_operands % 2 != 0 || op->n_results != op->n_operands / 2)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "expected N inputs, N init values and N results (got %d operands, %d results)",
                       op->n_operands, op->n_results);
  if (op->n_regions != 1 || op->regions[0]->n_blocks != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected one body region with one block");
  int n = op->n_results;
  const hs_type *in0;
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 0, &in0));
  HS_RETURN_IF_ERROR(hs_rd_check_inputs(op, n, in0, NULL));
  const int64_t *dims = NULL;
  int nd = 0;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "dimensions", true, &dims, &nd));
  reduce_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  st->n = n;
  st->rank = in0->shape.rank;
  for (int i = 0; i < nd; i++) {
    if (dims[i] < 0 || dims[i] >= st->rank)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "dimension %lld out of range for rank %d",
                         (long long)dims[i], st->rank);
    if (st->reduced[dims[i]])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "dimension %lld listed twice", (long long)dims[i]);
    st->reduced[dims[i]] = true;
  }
  hs_shape want = {0};
  for (int d = 0; d < st->rank; d++)
    if (!st->reduced[d]) want.dims[want.rank++] = in0->shape.dims[d];
  for (int k = 0; k < n; k++)
    if (!hs_shape_equal(&op->results[k]->type.shape, &want)) {
      char a[64], b[64];
      return hs_op_error(op, HS_INVALID_ARGUMENT, "result %d has shape [%s], expected [%s]", k,
                         hs_shape_str(&op->results[k]->type.shape, a, sizeof a),
                         hs_shape_str(&want, b, sizeof b));
    }
  const hs_block *body = op->regions[0]->blocks[0];
  hs_dtype ret[HS_MAX_RANK];
  if (n > HS_MAX_RANK) return hs_op_error(op, HS_UNIMPLEMENTED, "too many inputs");
  for (int k = 0; k < n; k++) ret[k] = op->results[k]->type.dtype;
  HS_RETURN_IF_ERROR(hs_rd_check_body(op, op->regions[0], 2 * n, ret, n));
  st->fast = HS_RD_NONE;
  if (n == 1 && op->operands[0]->type.dtype == op->results[0]->type.dtype)
    st->fast = hs_rd_region_op(op->regions[0], op->results[0]->type.dtype);
  if (st->fast == HS_RD_NONE) {
    st->vm = hs_rd_vm_compile(op->regions[0], arena);
    if (st->vm && hs_rd_vm_num_outputs(st->vm) != n) st->vm = NULL;
    for (int k = 0; st->vm && k < n; k++)
      if (body->args[k]->type.dtype != op->results[k]->type.dtype ||
          body->args[n + k]->type.dtype != op->operands[k]->type.dtype)
        st->vm = NULL;
  }
  op->kernel_state = st;
  return NULL;
}

/* ------------------------------------------------------------ fast path */

typedef struct fast_plan {
  int m;                        /* merged dims */
  int64_t size[HS_MAX_RANK];
  int64_t in_stride[HS_MAX_RANK];
  int64_t out_stride[HS_MAX_RANK]; /* 0 for reduced dims */
  bool reduced[HS_MAX_RANK];
  size_t esize;
  hs_rd_vec_fn vec;
  hs_rd_fold_fn fold;
  const unsigned char *in;
  unsigned char *out;
  int par_dim;                  /* -1: no split; 0: split dim 0 (kept); m-1: split columns */
} fast_plan;

/* Walks outer positions [0..m-2] of the plan restricted to dim par_dim range
 * [lo, hi) (or columns [lo, hi) of the last dim when par_dim == m-1). */
static void fast_walk(const fast_plan *p, int64_t lo, int64_t hi) {
  int m = p->m;
  int64_t size[HS_MAX_RANK];
  memcpy(size, p->size, sizeof size);
  int64_t in_off = 0, out_off = 0;
  if (p->par_dim == 0 && m > 1) {
    size[0] = hi - lo;
    in_off = lo * p->in_stride[0];
    out_off = lo * p->out_stride[0];
  } else if (p->par_dim == m - 1) {
    size[m - 1] = hi - lo;
    in_off = lo * p->in_stride[m - 1];
    out_off = lo * p->out_stride[m - 1];
  }
  int64_t idx[HS_MAX_RANK] = {0};
  int64_t inner = size[m - 1];
  for (;;) {
    const unsigned char *src = p->in + (size_t)in_off * p->esize;
    unsigned char *dst = p->out + (size_t)out_off * p->esize;
    if (p->reduced[m - 1])
      p->fold(dst, src, inner, 1);
    else
      p->vec(dst, src, inner);
    int d = m - 2;
    for (; d >= 0; d--) {
      in_off += p->in_stride[d];
      out_off += p->out_stride[d];
      if (++idx[d] < size[d]) break;
      in_off -= p->in_stride[d] * size[d];
      out_off -= p->out_stride[d] * size[d];
      idx[d] = 0;
    }
    if (d < 0) break;
  }
}

static void fast_range(void *arg, int64_t begin, int64_t end) { fast_walk(arg, begin, end); }

static void reduce_fast(hs_exec_ctx *ctx, const reduce_state *st, const hs_tensor *in,
                        const hs_tensor *init, hs_tensor *out) {
  fast_plan p;
  memset(&p, 0, sizeof p);
  p.esize = hs_dtype_size(in->dtype);
  p.vec = hs_rd_vec(st->fast, in->dtype);
  p.fold = hs_rd_fold(st->fast, in->dtype);
  p.in = in->data;
  p.out = out->data;
  int64_t n_out = hs_tensor_numel(out);
  hs_rd_fill(out->data, n_out, init->data, p.esize);
  if (hs_tensor_numel(in) == 0) return;

  int64_t in_st[HS_MAX_RANK], out_st[HS_MAX_RANK];
  hs_rd_strides(&in->shape, in_st);
  hs_rd_strides(&out->shape, out_st);
  int od = 0;
  for (int d = 0; d < in->shape.rank; d++) {
    bool red = st->reduced[d];
    int64_t os = red ? 0 : out_st[od];
    if (!red) od++;
    if (in->shape.dims[d] == 1) continue;
    if (p.m > 0 && p.reduced[p.m - 1] == red) {
      /* merge into the previous dim: contiguous by construction */
      p.size[p.m - 1] *= in->shape.dims[d];
      p.in_stride[p.m - 1] = in_st[d];
      p.out_stride[p.m - 1] = os;
      continue;
    }
    p.size[p.m] = in->shape.dims[d];
    p.in_stride[p.m] = in_st[d];
    p.out_stride[p.m] = os;
    p.reduced[p.m] = red;
    p.m++;
  }
  if (p.m == 0) { /* a single element */
    p.fold(p.out, p.in, 1, 1);
    return;
  }
  int64_t total = hs_tensor_numel(in);
  p.par_dim = -1;
  int64_t parts = 0;
  if (total >= (1 << 16)) {
    if (!p.reduced[0] && p.m > 1 && p.size[0] >= 2) {
      p.par_dim = 0;
      parts = p.size[0];
    } else if (!p.reduced[p.m - 1] && p.size[p.m - 1] >= 64) {
      p.par_dim = p.m - 1;
      parts = p.size[p.m - 1];
    }
  }
  if (p.par_dim < 0) {
    fast_walk(&p, 0, 0);
    return;
  }
  int64_t per = total / parts;
  int64_t grain = per >= (1 << 15) ? 1 : ((1 << 15) + per - 1) / per;
  hs_exec_parallel_for(ctx, parts, grain, fast_range, &p);
}

/* ------------------------------------------------------------ generic path */

static hs_status *reduce_generic(hs_exec_ctx *ctx, const hs_op *op, const reduce_state *st,
                                 const hs_tensor *in, hs_tensor *out) {
  int n = st->n;
  const hs_shape *shape = &in[0].shape;
  int64_t n_out = hs_tensor_numel(&out[0]);
  if (n_out == 0) return NULL;
  hs_rd_body_scratch bs;
  HS_RETURN_IF_ERROR(hs_rd_body_scratch_init(ctx, op, n, in, out, &bs));
  hs_tensor *acc = bs.acc, *tmp = bs.tmp, *xs = bs.xs, *args = bs.args;
  const void **vargs = bs.vargs;
  void **vouts = bs.vouts;
  int64_t in_st[HS_MAX_RANK];
  hs_rd_strides(shape, in_st);
  /* kept dims (outer odometer) and reduced dims (inner odometer) */
  int nk = 0, nr = 0;
  int64_t ksz[HS_MAX_RANK], kst[HS_MAX_RANK], rsz[HS_MAX_RANK], rst[HS_MAX_RANK];
  int64_t n_red = 1;
  for (int d = 0; d < shape->rank; d++) {
    if (st->reduced[d]) {
      rsz[nr] = shape->dims[d];
      rst[nr++] = in_st[d];
      n_red *= shape->dims[d];
    } else {
      ksz[nk] = shape->dims[d];
      kst[nk++] = in_st[d];
    }
  }
  int64_t kidx[HS_MAX_RANK] = {0};
  int64_t base = 0;
  for (int64_t o = 0; o < n_out; o++) {
    for (int k = 0; k < n; k++) memcpy(acc[k].data, in[n + k].data, hs_dtype_size(out[k].dtype));
    if (n_red > 0) {
      int64_t ridx[HS_MAX_RANK] = {0};
      int64_t off = base;
      for (int64_t r = 0; r < n_red; r++) {
        for (int k = 0; k < n; k++)
          xs[k].data = (unsigned char *)in[k].data + (size_t)off * hs_dtype_size(in[k].dtype);
        if (st->vm) {
          for (int k = 0; k < n; k++) {
            vargs[k] = acc[k].data;
            vargs[n + k] = xs[k].data;
            vouts[k] = acc[k].data;
          }
          hs_rd_vm_run(st->vm, vargs, vouts);
        } else {
          HS_RETURN_IF_ERROR(hs_rd_region_step(ctx, op->regions[0], acc, tmp, xs, n, args));
        }
        for (int d = nr - 1; d >= 0; d--) {
          off += rst[d];
          if (++ridx[d] < rsz[d]) break;
          off -= rst[d] * rsz[d];
          ridx[d] = 0;
        }
      }
    }
    for (int k = 0; k < n; k++) {
      size_t es = hs_dtype_size(out[k].dtype);
      memcpy((unsigned char *)out[k].data + (size_t)o * es, acc[k].data, es);
    }
    for (int d = nk - 1; d >= 0; d--) {
      base += kst[d];
      if (++kidx[d] < ksz[d]) break;
      base -= kst[d] * ksz[d];
      kidx[d] = 0;
    }
  }
  return NULL;
}

static hs_status *reduce_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const reduce_state *st = op->kernel_state;
  if (st->fast != HS_RD_NONE) {
    reduce_fast(ctx, st, &in[0], &in[1], &out[0]);
    return NULL;
  }
  return reduce_generic(ctx, op, st, in, out);
}

const hs_kernel hs_kernels_reduce[] = {
    {"stablehlo.reduce", reduce_prepare, reduce_run},
    {"stablehlo.reduce_window", hs_rd_reduce_window_prepare, hs_rd_reduce_window_run},
    {"stablehlo.select_and_scatter", hs_rd_select_and_scatter_prepare,
     hs_rd_select_and_scatter_run},
    {NULL, NULL, NULL},
};
