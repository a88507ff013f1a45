/*
 * rd_window.c - stablehlo.reduce_window and stablehlo.select_and_scatter.
 *
 * reduce_window, generic path: literally the spec.  For each result index and
 * each window position (row-major), the position in the padded, base-dilated
 * input is either an input element or padding (which reads as the init
 * value); the body folds it into the accumulators (in the scalar VM of
 * rd_vm.c when the body compiles there, else through the executor).
 *
 * reduce_window, fast path (one input, a "return a OP b" body, no base
 * dilation): the classic pooling loop.  Per dim and per output index we
 * precompute the range of window offsets that land inside the input, so the
 * inner loops never test bounds and never divide.  Padding positions are
 * skipped, which is exact when the op is idempotent (max, min, and, or) or the
 * init value is the op's identity (XLA skips them the same way); any other
 * case with padding takes the generic path.  Two loop shapes:
 *  - vector mode: when the last dim is untouched by the window (NHWC pooling,
 *    cumulative sums along an outer dim) each window position combines a whole
 *    contiguous row of channels at once;
 *  - row mode: otherwise one typed call computes a full output row, given the
 *    input rows the outer window dims select (NCHW pooling).
 * Size-1 untouched dims vanish and neighbouring untouched dims merge first.
 * Output rows are split across the executor's threads.
 *
 * select_and_scatter: for each source element the select body picks one
 * operand position in its window (padding positions are never selected, as in
 * XLA); the scatter body then folds the source value into the result there,
 * in source order.  The max-pool-gradient pattern (compare GE/GT/LE/LT +
 * add-like scatter) runs typed; other bodies run in the VM or the executor.
 */
#include <math.h>
#include <string.h>

#include "runtime/kernels/rd_common.h"

/* ================================================================ reduce_window */

typedef struct rw_state {
  int n;
  hs_rd_window w;
  hs_rd_op fast;         /* HS_RD_NONE: generic path only */
  hs_rd_vm *vm;          /* generic path without the executor, or NULL */
} rw_state;

hs_status *hs_rd_reduce_window_prepare(hs_op *op, hs_arena *arena) {
  if (op->n_operands < 2 || op->n_operands % 2 != 0 || op->n_results != op->n_operands / 2)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "expected N inputs, N init values and N results (got %d operands, %d results)",
                       op->n_operands, op->n_results);
  if (op->n_regions != 1 || op->regions[0]->n_blocks != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected one body region with one block");
  int n = op->n_results;
  const hs_type *in0;
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 0, &in0));
  rw_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  st->n = n;
  HS_RETURN_IF_ERROR(hs_rd_window_read(op, in0->shape.rank, true, &st->w));
  hs_shape want;
  hs_rd_window_out_shape(&st->w, &in0->shape, &want);
  HS_RETURN_IF_ERROR(hs_rd_check_inputs(op, n, in0, &want));
  hs_dtype ret[HS_MAX_RANK];
  if (n > HS_MAX_RANK) return hs_op_error(op, HS_UNIMPLEMENTED, "too many inputs");
  for (int k = 0; k < n; k++) ret[k] = op->results[k]->type.dtype;
  HS_RETURN_IF_ERROR(hs_rd_check_body(op, op->regions[0], 2 * n, ret, n));
  st->fast = HS_RD_NONE;
  bool base_dil = false;
  for (int d = 0; d < st->w.rank; d++) base_dil |= st->w.base_dil[d] != 1;
  if (n == 1 && !base_dil && op->operands[0]->type.dtype == op->results[0]->type.dtype)
    st->fast = hs_rd_region_op(op->regions[0], op->results[0]->type.dtype);
  st->vm = hs_rd_vm_compile(op->regions[0], arena);
  const hs_block *body = op->regions[0]->blocks[0];
  if (st->vm && hs_rd_vm_num_outputs(st->vm) != n) st->vm = NULL;
  for (int k = 0; st->vm && k < n; k++)
    if (body->args[k]->type.dtype != op->results[k]->type.dtype ||
        body->args[n + k]->type.dtype != op->operands[k]->type.dtype)
      st->vm = NULL;
  op->kernel_state = st;
  return NULL;
}

/* ---- generic ---- */

static hs_status *rw_generic(hs_exec_ctx *ctx, const hs_op *op, const rw_state *st,
                             const hs_tensor *in, hs_tensor *out) {
  int n = st->n;
  const hs_rd_window *w = &st->w;
  int rank = w->rank;
  int64_t n_out = hs_tensor_numel(&out[0]);
  if (n_out == 0) return NULL;
  hs_rd_body_scratch bs;
  HS_RETURN_IF_ERROR(hs_rd_body_scratch_init(ctx, op, n, in, out, &bs));
  hs_tensor *acc = bs.acc, *tmp = bs.tmp, *xs = bs.xs, *args = bs.args;
  const void **vargs = bs.vargs;
  void **vouts = bs.vouts;
  int64_t in_st[HS_MAX_RANK];
  hs_rd_strides(&in[0].shape, in_st);
  int64_t n_win = 1;
  for (int d = 0; d < rank; d++) n_win *= w->dims[d];
  int64_t oidx[HS_MAX_RANK] = {0};
  for (int64_t o = 0; o < n_out; o++) {
    for (int k = 0; k < n; k++) memcpy(acc[k].data, in[n + k].data, hs_dtype_size(out[k].dtype));
    int64_t widx[HS_MAX_RANK] = {0};
    for (int64_t p = 0; p < n_win; p++) {
      int64_t off = 0;
      bool inside = true;
      for (int d = 0; d < rank && inside; d++) {
        int64_t q = oidx[d] * w->strides[d] + widx[d] * w->win_dil[d] - w->pad_lo[d];
        int64_t dilated = in[0].shape.dims[d] == 0 ? 0 : (in[0].shape.dims[d] - 1) * w->base_dil[d] + 1;
        if (q < 0 || q >= dilated || q % w->base_dil[d] != 0)
          inside = false;
        else
          off += (q / w->base_dil[d]) * in_st[d];
      }
      for (int k = 0; k < n; k++)
        xs[k].data = inside ? (unsigned char *)in[k].data + (size_t)off * hs_dtype_size(in[k].dtype)
                            : in[n + k].data;
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
      for (int d = rank - 1; d >= 0; d--) {
        if (++widx[d] < w->dims[d]) break;
        widx[d] = 0;
      }
    }
    for (int k = 0; k < n; k++) {
      size_t es = hs_dtype_size(out[k].dtype);
      memcpy((unsigned char *)out[k].data + (size_t)o * es, acc[k].data, es);
    }
    for (int d = rank - 1; d >= 0; d--) {
      if (++oidx[d] < out[0].shape.dims[d]) break;
      oidx[d] = 0;
    }
  }
  return NULL;
}

/* ---- fast ---- */

typedef struct rw_dim {
  int64_t in, out, win, stride, pad_lo, dil;
  int64_t in_stride, out_stride;
  /* per output index: window offsets [klo, khi) land inside; start = o*stride - pad_lo */
  int64_t *klo, *khi, *start;
} rw_dim;

typedef struct rw_plan {
  int m;                  /* dims; the last is the row (or the vector) */
  rw_dim d[HS_MAX_RANK];
  bool vector;            /* last dim untouched: combine whole rows */
  size_t esize;
  const unsigned char *in;
  unsigned char *out;
  const void *init;
  hs_rd_vec_fn vec;
  hs_rd_winrow_fn winrow;
  int64_t n_rows;         /* output rows: product of out sizes of dims [0, m-1) */
  int64_t rows_cap;       /* pointers per chunk in rows */
  const void **rows;      /* n_chunks * rows_cap */
  bool separable;         /* row mode: combine the window's rows first, then
                             slide over one row (exact for max/min/and/or and
                             integers, whose ops are associative) */
  unsigned char *rowbuf;  /* separable: n_chunks rows of the input's last dim */
  int64_t n_chunks;
} rw_plan;

/* Computes output rows [r0, r1) using row-pointer buffer `rows`. */
static void rw_rows(const rw_plan *p, int64_t r0, int64_t r1, const void **rows,
                    unsigned char *rowbuf) {
  int m = p->m;
  int outer = m - 1;
  int64_t oidx[HS_MAX_RANK] = {0};
  int64_t rem = r0;
  for (int d = outer - 1; d >= 0; d--) {
    oidx[d] = rem % p->d[d].out;
    rem /= p->d[d].out;
  }
  const rw_dim *last = &p->d[m - 1];
  for (int64_t r = r0; r < r1; r++) {
    int64_t out_off = 0, base = 0;
    int64_t klo[HS_MAX_RANK], khi[HS_MAX_RANK], k[HS_MAX_RANK];
    bool empty = false;
    for (int d = 0; d < outer; d++) {
      const rw_dim *dd = &p->d[d];
      out_off += oidx[d] * dd->out_stride;
      klo[d] = dd->klo[oidx[d]];
      khi[d] = dd->khi[oidx[d]];
      k[d] = klo[d];
      if (klo[d] >= khi[d]) empty = true;
      base += (dd->start[oidx[d]] + klo[d] * dd->dil) * dd->in_stride;
    }
    unsigned char *dst = p->out + (size_t)out_off * p->esize;
    if (p->vector) {
      hs_rd_fill(dst, last->out, p->init, p->esize);
      if (!empty) {
        int64_t off = base;
        for (;;) {
          p->vec(dst, p->in + (size_t)off * p->esize, last->out);
          int d = outer - 1;
          for (; d >= 0; d--) {
            const rw_dim *dd = &p->d[d];
            off += dd->dil * dd->in_stride;
            if (++k[d] < khi[d]) break;
            off -= (khi[d] - klo[d]) * dd->dil * dd->in_stride;
            k[d] = klo[d];
          }
          if (d < 0) break;
        }
      }
    } else {
      int64_t nr = 0;
      if (!empty) {
        int64_t off = base;
        for (;;) {
          rows[nr++] = p->in + (size_t)off * p->esize;
          int d = outer - 1;
          for (; d >= 0; d--) {
            const rw_dim *dd = &p->d[d];
            off += dd->dil * dd->in_stride;
            if (++k[d] < khi[d]) break;
            off -= (khi[d] - klo[d]) * dd->dil * dd->in_stride;
            k[d] = klo[d];
          }
          if (d < 0) break;
        }
      }
      if (p->separable && nr > 1) {
        memcpy(rowbuf, rows[0], (size_t)last->in * p->esize);
        for (int64_t i = 1; i < nr; i++) p->vec(rowbuf, rows[i], last->in);
        rows[0] = rowbuf;
        nr = 1;
      }
      p->winrow(dst, last->out, p->init, (const void *const *)rows, nr, last->start, last->klo,
                last->khi, last->dil);
    }
    for (int d = outer - 1; d >= 0; d--) {
      if (++oidx[d] < p->d[d].out) break;
      oidx[d] = 0;
    }
  }
}

static void rw_chunk(void *arg, int64_t begin, int64_t end) {
  const rw_plan *p = arg;
  for (int64_t c = begin; c < end; c++) {
    int64_t r0 = p->n_rows * c / p->n_chunks, r1 = p->n_rows * (c + 1) / p->n_chunks;
    rw_rows(p, r0, r1, p->rows ? p->rows + c * p->rows_cap : NULL,
            p->rowbuf ? p->rowbuf + (size_t)(c * p->d[p->m - 1].in) * p->esize : NULL);
  }
}

/* Returns false when the fast path does not apply (padding with a
 * non-identity init for a non-idempotent op); then nothing was written. */
static bool rw_fast(hs_exec_ctx *ctx, const rw_state *st, const hs_tensor *in, const hs_tensor *init,
                    hs_tensor *out, hs_status **err) {
  *err = NULL;
  const hs_rd_window *w = &st->w;
  rw_plan p;
  memset(&p, 0, sizeof p);
  p.esize = hs_dtype_size(in->dtype);
  p.in = in->data;
  p.out = out->data;
  p.init = init->data;
  p.vec = hs_rd_vec(st->fast, in->dtype);
  p.winrow = hs_rd_winrow(st->fast, in->dtype);
  int64_t n_out = hs_tensor_numel(out);
  if (n_out == 0) return true;
  if (hs_tensor_numel(in) == 0) return false;
  int64_t in_st[HS_MAX_RANK], out_st[HS_MAX_RANK];
  hs_rd_strides(&in->shape, in_st);
  hs_rd_strides(&out->shape, out_st);
  int rank = w->rank;
  for (int d = 0; d < rank; d++) {
    bool trivial = w->dims[d] == 1 && w->strides[d] == 1 && w->pad_lo[d] == 0 && w->pad_hi[d] == 0;
    int64_t size = in->shape.dims[d];
    if (trivial && size == 1 && !(d == rank - 1 && p.m == 0)) continue;
    if (trivial && p.m > 0) {
      rw_dim *prev = &p.d[p.m - 1];
      bool prev_trivial = prev->win == 1 && prev->stride == 1 && prev->pad_lo == 0 &&
                          prev->in == prev->out;
      if (prev_trivial && prev->in_stride == in_st[d] * size && prev->out_stride == out_st[d] * size) {
        prev->in *= size;
        prev->out *= size;
        prev->in_stride = in_st[d];
        prev->out_stride = out_st[d];
        continue;
      }
    }
    rw_dim *dd = &p.d[p.m++];
    dd->in = size;
    dd->out = out->shape.dims[d];
    dd->win = w->dims[d];
    dd->stride = w->strides[d];
    dd->pad_lo = w->pad_lo[d];
    dd->dil = w->win_dil[d];
    dd->in_stride = in_st[d];
    dd->out_stride = out_st[d];
  }
  if (p.m == 0) return false; /* cannot happen: the last dim is always kept */
  rw_dim *last = &p.d[p.m - 1];
  p.vector = last->win == 1 && last->stride == 1 && last->pad_lo == 0 && last->in == last->out &&
             last->out >= 8;
  /* window ranges per dim and output index */
  int64_t total = 0;
  for (int d = 0; d < p.m; d++) total += p.d[d].out;
  int64_t *buf = hs_exec_scratch(ctx, sizeof(int64_t) * (size_t)(3 * total));
  if (!buf) {
    *err = hs_status_new(HS_OUT_OF_MEMORY, "reduce_window: out of memory");
    return true;
  }
  bool padded = false;
  for (int d = 0; d < p.m; d++) {
    rw_dim *dd = &p.d[d];
    dd->klo = buf;
    dd->khi = buf + dd->out;
    dd->start = buf + 2 * dd->out;
    buf += 3 * dd->out;
    for (int64_t o = 0; o < dd->out; o++) {
      int64_t s = o * dd->stride - dd->pad_lo;
      /* first k with s + k*dil >= 0; last k with s + k*dil <= in-1 */
      int64_t lo = s >= 0 ? 0 : (-s + dd->dil - 1) / dd->dil;
      int64_t hi = s > dd->in - 1 ? 0 : (dd->in - 1 - s) / dd->dil + 1;
      if (hi > dd->win) hi = dd->win;
      if (lo > hi) lo = hi;
      if (lo > 0 || hi < dd->win) padded = true;
      dd->klo[o] = lo;
      dd->khi[o] = hi;
      dd->start[o] = s;
    }
  }
  if (padded && !hs_rd_op_idempotent(st->fast) && !hs_rd_is_identity(st->fast, in->dtype, init->data))
    return false;
  p.n_rows = 1;
  p.rows_cap = 1;
  for (int d = 0; d < p.m - 1; d++) {
    p.n_rows *= p.d[d].out;
    p.rows_cap *= p.d[d].win;
  }
  int64_t work = n_out;
  for (int d = 0; d < p.m; d++) work *= p.d[d].win;
  p.n_chunks = work >= (1 << 16) ? (p.n_rows < 64 ? p.n_rows : 64) : 1;
  if (p.n_chunks < 1) p.n_chunks = 1;
  p.separable = !p.vector && p.rows_cap > 1 &&
                 (hs_rd_op_idempotent(st->fast) || !hs_dtype_is_float(in->dtype));
  if (p.separable) {
    p.rowbuf = hs_exec_scratch(ctx, p.esize * (size_t)(p.n_chunks * p.d[p.m - 1].in));
    if (!p.rowbuf) {
      *err = hs_status_new(HS_OUT_OF_MEMORY, "reduce_window: out of memory");
      return true;
    }
  }
  if (!p.vector) {
    p.rows = hs_exec_scratch(ctx, sizeof(void *) * (size_t)(p.rows_cap * p.n_chunks));
    if (!p.rows) {
      *err = hs_status_new(HS_OUT_OF_MEMORY, "reduce_window: out of memory");
      return true;
    }
  }
  hs_exec_parallel_for(ctx, p.n_chunks, 1, rw_chunk, &p);
  return true;
}

hs_status *hs_rd_reduce_window_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                                   hs_tensor *out) {
  const rw_state *st = op->kernel_state;
  if (st->fast != HS_RD_NONE) {
    hs_status *err = NULL;
    if (rw_fast(ctx, st, &in[0], &in[1], &out[0], &err)) return err;
  }
  return rw_generic(ctx, op, st, in, out);
}

/* ================================================================ select_and_scatter */

typedef enum { SEL_NONE, SEL_GE, SEL_GT, SEL_LE, SEL_LT } sel_kind;

typedef struct ss_state {
  hs_rd_window w;
  sel_kind sel;       /* SEL_NONE: select region */
  hs_rd_op scatter;   /* HS_RD_NONE: scatter region */
  hs_rd_vm *sel_vm, *scatter_vm; /* the regions without the executor, or NULL */
} ss_state;

/* Recognises `return compare DIR, %arg0, %arg1` with a plain compare type. */
static sel_kind match_select(const hs_region *r, hs_dtype dt) {
  if (r->n_blocks != 1) return SEL_NONE;
  const hs_block *b = r->blocks[0];
  if (b->n_args != 2 || b->n_ops != 2) return SEL_NONE;
  const hs_op *c = b->ops[0], *ret = b->ops[1];
  if (strcmp(c->name, "stablehlo.compare") != 0 || c->n_operands != 2 || c->n_results != 1)
    return SEL_NONE;
  if (ret->n_operands != 1 || ret->operands[0] != c->results[0]) return SEL_NONE;
  bool swapped;
  if (c->operands[0] == b->args[0] && c->operands[1] == b->args[1])
    swapped = false;
  else if (c->operands[0] == b->args[1] && c->operands[1] == b->args[0])
    swapped = true;
  else
    return SEL_NONE;
  for (int i = 0; i < 2; i++)
    if (b->args[i]->type.dtype != dt || b->args[i]->type.shape.rank != 0) return SEL_NONE;
  const hs_attr *dir = hs_op_attr(c, "comparison_direction");
  const hs_attr *ty = hs_op_attr(c, "compare_type");
  if (!dir || dir->kind != HS_ATTR_ENUM || !dir->u.str.s) return SEL_NONE;
  if (ty) {
    if (ty->kind != HS_ATTR_ENUM || !ty->u.str.s) return SEL_NONE;
    const char *t = ty->u.str.s;
    bool ok = hs_dtype_is_float(dt) ? strcmp(t, "FLOAT") == 0
              : hs_dtype_is_signed(dt) ? strcmp(t, "SIGNED") == 0
                                       : strcmp(t, "UNSIGNED") == 0;
    if (!ok && strcmp(t, "NOTYPE") != 0) return SEL_NONE;
  }
  if (dt == HS_PRED) return SEL_NONE;
  const char *d = dir->u.str.s;
  sel_kind k = strcmp(d, "GE") == 0   ? SEL_GE
               : strcmp(d, "GT") == 0 ? SEL_GT
               : strcmp(d, "LE") == 0 ? SEL_LE
               : strcmp(d, "LT") == 0 ? SEL_LT
                                      : SEL_NONE;
  if (swapped) { /* b OP a == a OP' b */
    static const sel_kind flip[] = {SEL_NONE, SEL_LE, SEL_LT, SEL_GE, SEL_GT};
    k = flip[k];
  }
  return k;
}

hs_status *hs_rd_select_and_scatter_prepare(hs_op *op, hs_arena *arena) {
  if (op->n_operands != 3 || op->n_results != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected operand, source, init_value and one result");
  if (op->n_regions != 2 || op->regions[0]->n_blocks != 1 || op->regions[1]->n_blocks != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected select and scatter regions");
  const hs_type *operand, *source, *init, *res;
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 0, &operand));
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 1, &source));
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 2, &init));
  HS_RETURN_IF_ERROR(hs_op_tensor_result(op, 0, &res));
  if (source->dtype != operand->dtype || init->dtype != operand->dtype || res->dtype != operand->dtype)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "operand, source, init value and result must share an element type");
  if (init->shape.rank != 0) return hs_op_error(op, HS_INVALID_ARGUMENT, "init value must be a scalar");
  if (!hs_shape_equal(&res->shape, &operand->shape))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "result shape must equal the operand shape");
  ss_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  HS_RETURN_IF_ERROR(hs_rd_window_read(op, operand->shape.rank, false, &st->w));
  hs_shape want;
  hs_rd_window_out_shape(&st->w, &operand->shape, &want);
  if (!hs_shape_equal(&want, &source->shape)) {
    char a[64], b[64];
    return hs_op_error(op, HS_INVALID_ARGUMENT, "source has shape [%s], expected [%s]",
                       hs_shape_str(&source->shape, a, sizeof a), hs_shape_str(&want, b, sizeof b));
  }
  hs_dtype pred = HS_PRED;
  HS_RETURN_IF_ERROR(hs_rd_check_body(op, op->regions[0], 2, &pred, 1));
  HS_RETURN_IF_ERROR(hs_rd_check_body(op, op->regions[1], 2, &operand->dtype, 1));
  st->sel = match_select(op->regions[0], operand->dtype);
  st->scatter = hs_rd_region_op(op->regions[1], operand->dtype);
  for (int r = 0; r < 2; r++) {
    const hs_block *b = op->regions[r]->blocks[0];
    hs_rd_vm *vm = hs_rd_vm_compile(op->regions[r], arena);
    hs_dtype ret_dt = r == 0 ? HS_PRED : operand->dtype;
    if (vm && (hs_rd_vm_num_outputs(vm) != 1 || b->args[0]->type.dtype != operand->dtype ||
               b->args[1]->type.dtype != operand->dtype ||
               b->ops[b->n_ops - 1]->operands[0]->type.dtype != ret_dt))
      vm = NULL;
    if (r == 0)
      st->sel_vm = vm;
    else
      st->scatter_vm = vm;
  }
  op->kernel_state = st;
  return NULL;
}

/* a OP b for the fast select kinds, on doubles (exact for every real type
 * except 64-bit integers, which compare as integers). */
static bool sel_holds(sel_kind k, hs_dtype dt, const void *a, const void *b) {
  if (dt == HS_I64 || dt == HS_U64) {
    bool lt, eq;
    if (dt == HS_I64) {
      int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
      lt = x < y;
      eq = x == y;
    } else {
      uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
      lt = x < y;
      eq = x == y;
    }
    switch (k) {
      case SEL_GE: return !lt;
      case SEL_GT: return !lt && !eq;
      case SEL_LE: return lt || eq;
      default: return lt;
    }
  }
  double x = hs_load_f64(dt, a, 0), y = hs_load_f64(dt, b, 0);
  switch (k) {
    case SEL_GE: return x >= y;
    case SEL_GT: return x > y;
    case SEL_LE: return x <= y;
    default: return x < y;
  }
}

hs_status *hs_rd_select_and_scatter_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                                        hs_tensor *out) {
  const ss_state *st = op->kernel_state;
  const hs_rd_window *w = &st->w;
  const hs_tensor *operand = &in[0], *source = &in[1], *init = &in[2];
  hs_dtype dt = operand->dtype;
  size_t es = hs_dtype_size(dt);
  int rank = w->rank;
  hs_rd_fill(out->data, hs_tensor_numel(out), init->data, es);
  int64_t n_src = hs_tensor_numel(source);
  if (n_src == 0 || hs_tensor_numel(operand) == 0) return NULL;

  hs_tensor pred = {HS_PRED, {0}, NULL}, a = {dt, {0}, NULL}, b = {dt, {0}, NULL};
  hs_tensor sargs[2], acc = {dt, {0}, NULL};
  hs_rd_fold_fn fold = st->scatter != HS_RD_NONE ? hs_rd_fold(st->scatter, dt) : NULL;
  if (st->sel == SEL_NONE || !fold) {
    pred.data = hs_exec_scratch(ctx, 1);
    acc.data = hs_exec_scratch(ctx, es);
    if (!pred.data || !acc.data) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  }
  int64_t in_st[HS_MAX_RANK];
  hs_rd_strides(&operand->shape, in_st);
  const unsigned char *opd = operand->data, *src = source->data;
  unsigned char *res = out->data;
  int64_t sidx[HS_MAX_RANK] = {0};
  for (int64_t s = 0; s < n_src; s++) {
    /* window range per dim */
    int64_t klo[HS_MAX_RANK], khi[HS_MAX_RANK], k[HS_MAX_RANK], base = 0;
    bool empty = false;
    for (int d = 0; d < rank; d++) {
      int64_t start = sidx[d] * w->strides[d] - w->pad_lo[d];
      int64_t lo = start >= 0 ? 0 : -start;
      int64_t hi = operand->shape.dims[d] - start;
      if (hi > w->dims[d]) hi = w->dims[d];
      if (lo >= hi) empty = true;
      klo[d] = lo;
      khi[d] = hi;
      k[d] = lo;
      base += (start + lo) * in_st[d];
    }
    if (!empty) {
      int64_t sel = base, off = base;
      bool first = true;
      for (;;) {
        if (first) {
          first = false;
        } else {
          bool keep;
          if (st->sel != SEL_NONE) {
            keep = sel_holds(st->sel, dt, opd + (size_t)sel * es, opd + (size_t)off * es);
          } else if (st->sel_vm) {
            unsigned char p = 0;
            const void *va[2] = {opd + (size_t)sel * es, opd + (size_t)off * es};
            void *vo[1] = {&p};
            hs_rd_vm_run(st->sel_vm, va, vo);
            keep = p != 0;
          } else {
            a.data = (void *)(opd + (size_t)sel * es);
            b.data = (void *)(opd + (size_t)off * es);
            hs_tensor sa[2] = {a, b};
            HS_RETURN_IF_ERROR(hs_exec_region(ctx, op->regions[0], sa, 2, &pred, 1));
            keep = *(const unsigned char *)pred.data != 0;
          }
          if (!keep) sel = off;
        }
        int d = rank - 1;
        for (; d >= 0; d--) {
          off += in_st[d];
          if (++k[d] < khi[d]) break;
          off -= (khi[d] - klo[d]) * in_st[d];
          k[d] = klo[d];
        }
        if (d < 0) break;
      }
      unsigned char *dst = res + (size_t)sel * es;
      const unsigned char *sv = src + (size_t)s * es;
      if (fold) {
        fold(dst, sv, 1, 1);
      } else if (st->scatter_vm) {
        const void *va[2] = {dst, sv};
        void *vo[1] = {dst};
        hs_rd_vm_run(st->scatter_vm, va, vo);
      } else {
        sargs[0] = (hs_tensor){dt, {0}, dst};
        sargs[1] = (hs_tensor){dt, {0}, (void *)sv};
        HS_RETURN_IF_ERROR(hs_exec_region(ctx, op->regions[1], sargs, 2, &acc, 1));
        memcpy(dst, acc.data, es);
      }
    }
    for (int d = rank - 1; d >= 0; d--) {
      if (++sidx[d] < source->shape.dims[d]) break;
      sidx[d] = 0;
    }
  }
  return NULL;
}
