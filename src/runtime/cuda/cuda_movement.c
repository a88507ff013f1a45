/*
 * cuda_movement.c - data movement and reductions on the GPU.
 *
 * Movement ops only move elements, so most of them are one strided copy
 * (hs_kp_strided) whose strides say where each output element comes from:
 * transpose permutes the input's strides, slice scales them and starts at an
 * offset, reverse negates them, broadcast_in_dim zeroes them; concatenate is
 * one copy per input into its box of the output; reshape is a plain
 * device-to-device copy.  pad, iota and gather have bodies of their own.
 * They work on any element type of 1, 2, 4 or 8 bytes.
 *
 * reduce and reduce_window run when the body is one recognised binary op
 * (hs_region_binary_op) on a VM kind and the init value is known at plan
 * time; one thread per output element loops over its reduced box or window.
 * Everything else (sort, scatter, while, variadic reductions...) is declined
 * and runs on the host.
 */
#include <string.h>

#include "runtime/cuda/cuda_internal.h"
#include "runtime/cuda/cuda_launch.h"
#include "runtime/kernel.h"
#include "runtime/kernels/rd_common.h"

/* Attribute readers for ops prepare() already validated: a failure only
 * declines the op (the status is dropped, not leaked). */
static bool bad(hs_status *st) {
  bool failed = st != NULL;
  hs_status_free(st);
  return failed;
}
static bool get_ints(const hs_op *op, const char *name, bool req, const int64_t **out, int *n) {
  return bad(hs_op_get_ints(op, name, req, out, n));
}
static bool get_int(const hs_op *op, const char *name, bool req, int64_t dflt, int64_t *out) {
  return bad(hs_op_get_int(op, name, req, dflt, out));
}
static bool sget_ints(const hs_op *op, const hs_attr *s, const char *f, const int64_t **out, int *n) {
  return bad(hs_struct_get_ints(op, s, f, false, out, n));
}

static bool esize_ok(hs_dtype t) {
  size_t e = hs_dtype_size(t);
  return e == 1 || e == 2 || e == 4 || e == 8;
}

/* ---------------------------------------------------------- strided copies */

typedef struct strided_state {
  int n;                  /* copies (concatenate: one per input) */
  hs_kp_strided *copies;  /* src/dst filled per run: copy k reads operand k */
} strided_state;

static hs_status *run_strided(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  const strided_state *s = d->state;
  for (int k = 0; k < s->n; k++) {
    hs_kp_strided p = s->copies[k];
    p.src = in[k];
    p.dst = out[0];
    HS_RETURN_IF_ERROR(hs_cuda_error(hs_cuda_k_strided(x->stream, &p), "copy kernel"));
  }
  return NULL;
}

static hs_status *run_reshape(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  const hs_type *t = &d->op->results[0]->type;
  size_t nb = (size_t)hs_shape_numel(&t->shape) * hs_dtype_size(t->dtype);
  if (!nb || in[0] == out[0]) return NULL;
  return hs_cuda_error(hs_cuda_k_copy(x->stream, out[0], in[0], nb), "reshape copy");
}

/* A copy over the result's shape reading operand 0 through src strides. */
static hs_kp_strided *one_copy(hs_cuda_build *b, const hs_op *op, strided_state **out) {
  strided_state *s = hs_arena_calloc(b->arena, 1, sizeof(strided_state));
  hs_kp_strided *p = hs_arena_calloc(b->arena, 1, sizeof(hs_kp_strided));
  if (!s || !p) return NULL;
  const hs_shape *rs = &op->results[0]->type.shape;
  p->esize = (int)hs_dtype_size(op->results[0]->type.dtype);
  p->rank = rs->rank;
  p->n = hs_shape_numel(rs);
  memcpy(p->dims, rs->dims, sizeof(int64_t) * (size_t)rs->rank);
  hs_shape_strides(rs, p->dst_strides);
  s->n = 1;
  s->copies = p;
  *out = s;
  return p;
}

static hs_status *build_strided(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  const char *n = op->name;
  const hs_shape *is = &op->operands[0]->type.shape;
  int64_t ist[HS_MAX_RANK];
  hs_shape_strides(is, ist);
  strided_state *s = NULL;
  if (strcmp(n, "stablehlo.concatenate") == 0) {
    int64_t dim;
    if (get_int(op, "dimension", true, 0, &dim)) return NULL; /* prepare() validated it */
    s = hs_arena_calloc(b->arena, 1, sizeof(strided_state));
    hs_kp_strided *ps = hs_arena_calloc(b->arena, (size_t)op->n_operands + 1, sizeof(hs_kp_strided));
    if (!s || !ps) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    const hs_shape *rs = &op->results[0]->type.shape;
    int64_t rst[HS_MAX_RANK], at = 0;
    hs_shape_strides(rs, rst);
    for (int k = 0; k < op->n_operands; k++) {
      const hs_shape *ks = &op->operands[k]->type.shape;
      hs_kp_strided *p = &ps[k];
      p->esize = (int)hs_dtype_size(op->results[0]->type.dtype);
      p->rank = ks->rank;
      p->n = hs_shape_numel(ks);
      memcpy(p->dims, ks->dims, sizeof(int64_t) * (size_t)ks->rank);
      hs_shape_strides(ks, p->src_strides);
      memcpy(p->dst_strides, rst, sizeof rst);
      p->dst_off = at * rst[dim];
      at += ks->dims[dim];
    }
    s->n = op->n_operands;
    s->copies = ps;
  } else {
    hs_kp_strided *p = one_copy(b, op, &s);
    if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    const int64_t *a = NULL;
    int na = 0;
    if (strcmp(n, "stablehlo.transpose") == 0) {
      if (get_ints(op, "permutation", true, &a, &na) || na != p->rank) return NULL;
      for (int k = 0; k < na; k++) p->src_strides[k] = ist[a[k]];
    } else if (strcmp(n, "stablehlo.slice") == 0) {
      const int64_t *st = NULL;
      int ns = 0;
      if (get_ints(op, "start_indices", true, &a, &na) || na != p->rank) return NULL;
      if (get_ints(op, "strides", false, &st, &ns)) return NULL;
      for (int k = 0; k < na; k++) {
        int64_t step = st && ns == na ? st[k] : 1;
        p->src_off += a[k] * ist[k];
        p->src_strides[k] = ist[k] * step;
      }
    } else if (strcmp(n, "stablehlo.reverse") == 0) {
      if (get_ints(op, "dimensions", true, &a, &na)) return NULL;
      memcpy(p->src_strides, ist, sizeof ist);
      for (int k = 0; k < na; k++) {
        p->src_off += (is->dims[a[k]] - 1) * ist[a[k]];
        p->src_strides[a[k]] = -ist[a[k]];
      }
    } else { /* broadcast_in_dim */
      if (get_ints(op, "broadcast_dimensions", false, &a, &na) || na != is->rank) return NULL;
      for (int k = 0; k < p->rank; k++) p->src_strides[k] = 0;
      for (int k = 0; k < na; k++) p->src_strides[a[k]] = is->dims[k] == 1 ? 0 : ist[k];
    }
  }
  d->state = s;
  d->run = run_strided;
  return NULL;
}

/* ------------------------------------------------------------------- pad */

static hs_status *run_pad(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  hs_kp_pad p = *(const hs_kp_pad *)d->state;
  p.src = in[0];
  p.dst = out[0];
  return hs_cuda_error(hs_cuda_k_pad(x->stream, &p), "pad kernel");
}

static hs_status *build_pad(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  if (!b->konst[1]) return NULL; /* the padding value must be known */
  const int64_t *lo, *hi, *inr;
  int nl, nh, ni;
  if (get_ints(op, "edge_padding_low", true, &lo, &nl) || get_ints(op, "edge_padding_high", true, &hi, &nh) ||
      get_ints(op, "interior_padding", true, &inr, &ni))
    return NULL;
  hs_kp_pad *p = hs_arena_calloc(b->arena, 1, sizeof(hs_kp_pad));
  if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  const hs_shape *rs = &op->results[0]->type.shape, *is = &op->operands[0]->type.shape;
  if (nl != rs->rank || ni != rs->rank) return NULL;
  p->esize = (int)hs_dtype_size(op->results[0]->type.dtype);
  p->rank = rs->rank;
  p->n = hs_shape_numel(rs);
  memcpy(&p->pad_bits, b->konst[1]->data, (size_t)p->esize);
  for (int k = 0; k < rs->rank; k++) {
    p->out_dims[k] = rs->dims[k];
    p->in_dims[k] = is->dims[k];
    p->lo[k] = lo[k];
    p->interior[k] = inr[k];
  }
  d->state = p;
  d->run = run_pad;
  return NULL;
}

/* ------------------------------------------------------------------ iota */

static hs_status *run_iota(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  hs_kp_iota p = *(const hs_kp_iota *)d->state;
  p.dst = out[0];
  return hs_cuda_error(hs_cuda_k_iota(x->stream, &p), "iota kernel");
}

static hs_status *build_iota(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  int64_t dim;
  hs_kp_iota *p = hs_arena_calloc(b->arena, 1, sizeof(hs_kp_iota));
  if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  const hs_type *rt = &op->results[0]->type;
  if (get_int(op, "iota_dimension", true, 0, &dim) || !hs_cuda_vm_kind(rt->dtype, &p->kind, &p->bits))
    return NULL;
  p->rank = rt->shape.rank;
  p->dim = (int)dim;
  p->n = hs_shape_numel(&rt->shape);
  memcpy(p->dims, rt->shape.dims, sizeof(int64_t) * (size_t)p->rank);
  d->state = p;
  d->run = run_iota;
  return NULL;
}

/* ---------------------------------------------------------------- gather */

static hs_status *run_gather(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  hs_kp_gather p = *(const hs_kp_gather *)d->state;
  p.src = in[0];
  p.idx = in[1];
  p.dst = out[0];
  return hs_cuda_error(hs_cuda_k_gather(x->stream, &p), "gather kernel");
}

static bool in_list(int64_t v, const int64_t *l, int n) {
  for (int i = 0; i < n; i++)
    if (l[i] == v) return true;
  return false;
}

static hs_status *build_gather(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  const hs_attr *dn = hs_op_attr(op, "dimension_numbers");
  const int64_t *off = NULL, *col = NULL, *obat = NULL, *ibat = NULL, *smap = NULL, *ss = NULL;
  int noff = 0, ncol = 0, nob = 0, nib = 0, nsm = 0, nss = 0;
  int64_t ivd = 0;
  if (!dn || sget_ints(op, dn, "offset_dims", &off, &noff) ||
      sget_ints(op, dn, "collapsed_slice_dims", &col, &ncol) ||
      sget_ints(op, dn, "operand_batching_dims", &obat, &nob) ||
      sget_ints(op, dn, "start_indices_batching_dims", &ibat, &nib) ||
      sget_ints(op, dn, "start_index_map", &smap, &nsm) ||
      bad(hs_struct_get_int(op, dn, "index_vector_dim", false, 0, &ivd)) ||
      get_ints(op, "slice_sizes", true, &ss, &nss))
    return NULL;
  const hs_type *it = &op->operands[0]->type, *xt = &op->operands[1]->type, *rt = &op->results[0]->type;
  if (!esize_ok(it->dtype) || !hs_dtype_is_int(xt->dtype) || nob != nib) return NULL;
  hs_kp_gather *p = hs_arena_calloc(b->arena, 1, sizeof(hs_kp_gather));
  if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  p->esize = (int)hs_dtype_size(it->dtype);
  p->idx_bits = hs_dtype_bits(xt->dtype);
  p->idx_signed = hs_dtype_is_signed(xt->dtype);
  p->out_rank = rt->shape.rank;
  p->in_rank = it->shape.rank;
  p->idx_rank = xt->shape.rank;
  p->n_offset = noff;
  p->n_start_map = nsm;
  p->index_vector_dim = (int)ivd;
  p->n = hs_shape_numel(&rt->shape);
  p->n_batching = nob;
  memcpy(p->out_dims, rt->shape.dims, sizeof(int64_t) * (size_t)p->out_rank);
  memcpy(p->in_dims, it->shape.dims, sizeof(int64_t) * (size_t)p->in_rank);
  memcpy(p->idx_dims, xt->shape.dims, sizeof(int64_t) * (size_t)p->idx_rank);
  for (int k = 0; k < nss; k++) p->slice_sizes[k] = ss[k];
  for (int k = 0; k < noff; k++) p->offset_dims[k] = off[k];
  for (int k = 0; k < nsm; k++) p->start_index_map[k] = smap[k];
  for (int k = 0; k < nob; k++) {
    p->batch_operand[k] = obat[k];
    p->batch_indices[k] = ibat[k];
  }
  int j = 0;
  for (int dd = 0; dd < p->in_rank; dd++)
    if (!in_list(dd, col, ncol) && !in_list(dd, obat, nob)) {
      if (j >= noff) return NULL;
      p->offset_operand[j++] = dd;
    }
  if (j != noff) return NULL;
  d->state = p;
  d->run = run_gather;
  return NULL;
}

/* ------------------------------------------------------------- reductions */

static int binary_opcode(const char *name) {
  if (!name) return -1;
  if (strcmp(name, "stablehlo.add") == 0) return HS_VM_ADD;
  if (strcmp(name, "stablehlo.multiply") == 0) return HS_VM_MUL;
  if (strcmp(name, "stablehlo.maximum") == 0) return HS_VM_MAX;
  if (strcmp(name, "stablehlo.minimum") == 0) return HS_VM_MIN;
  if (strcmp(name, "stablehlo.and") == 0) return HS_VM_AND;
  if (strcmp(name, "stablehlo.or") == 0) return HS_VM_OR;
  if (strcmp(name, "stablehlo.xor") == 0) return HS_VM_XOR;
  return -1;
}

/* The reduction's opcode, element kind and init register, or false. */
static bool reducer(hs_cuda_build *b, const hs_op *op, uint8_t *opc, uint8_t *kind, uint8_t *bits, hs_vreg *init) {
  if (op->n_operands != 2 || op->n_results != 1 || op->n_regions != 1 || !b->konst[1]) return false;
  int code = binary_opcode(hs_region_binary_op(op->regions[0], NULL));
  hs_dtype t = op->operands[0]->type.dtype;
  if (code < 0 || t != op->results[0]->type.dtype || !hs_cuda_vm_kind(t, kind, bits)) return false;
  if ((*kind == HS_VK_F32 || *kind == HS_VK_F64) && code >= HS_VM_AND) return false;
  *opc = (uint8_t)code;
  *init = hs_kb_load(*kind, *bits, b->konst[1]->data, 0);
  return true;
}

static hs_status *run_reduce(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  hs_kp_reduce p = *(const hs_kp_reduce *)d->state;
  p.src = in[0];
  p.dst = out[0];
  return hs_cuda_error(hs_cuda_k_reduce(x->stream, &p), "reduce kernel");
}

static hs_status *build_reduce(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  hs_kp_reduce *p = hs_arena_calloc(b->arena, 1, sizeof(hs_kp_reduce));
  if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  const int64_t *dims;
  int nd;
  if (!reducer(b, op, &p->op, &p->kind, &p->bits, &p->init) || get_ints(op, "dimensions", true, &dims, &nd))
    return NULL;
  const hs_shape *is = &op->operands[0]->type.shape;
  int64_t ist[HS_MAX_RANK];
  hs_shape_strides(is, ist);
  p->n = hs_shape_numel(&op->results[0]->type.shape);
  p->red_n = 1;
  for (int k = 0; k < is->rank; k++) {
    if (in_list(k, dims, nd)) {
      p->red_dims[p->red_rank] = is->dims[k];
      p->red_strides[p->red_rank++] = ist[k];
      p->red_n *= is->dims[k];
    } else {
      p->out_dims[p->out_rank] = is->dims[k];
      p->out_strides[p->out_rank++] = ist[k];
    }
  }
  d->state = p;
  d->run = run_reduce;
  return NULL;
}

static hs_status *run_rwin(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  hs_kp_rwin p = *(const hs_kp_rwin *)d->state;
  p.src = in[0];
  p.dst = out[0];
  return hs_cuda_error(hs_cuda_k_rwin(x->stream, &p), "reduce_window kernel");
}

/* Padded window positions are skipped, which equals reducing the init value
 * in only when op(acc, init) == acc: idempotent ops, or init the identity. */
static bool init_neutral(uint8_t op, uint8_t kind, hs_vreg init) {
  if (op == HS_VM_MAX || op == HS_VM_MIN || op == HS_VM_AND || op == HS_VM_OR) return true;
  double v = kind == HS_VK_F32 ? init.f : kind == HS_VK_F64 ? init.d : (double)init.i;
  if (op == HS_VM_ADD || op == HS_VM_XOR) return v == 0;
  if (op == HS_VM_MUL) return v == 1;
  return false;
}

static hs_status *build_rwin(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  hs_kp_rwin *p = hs_arena_calloc(b->arena, 1, sizeof(hs_kp_rwin));
  if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  if (!reducer(b, op, &p->op, &p->kind, &p->bits, &p->init)) return NULL;
  const hs_shape *is = &op->operands[0]->type.shape, *rs = &op->results[0]->type.shape;
  hs_rd_window w;
  hs_status *st = hs_rd_window_read(op, is->rank, true, &w);
  if (st) {
    hs_status_free(st);
    return NULL;
  }
  p->rank = is->rank;
  p->n = hs_shape_numel(rs);
  p->win_n = 1;
  for (int k = 0; k < is->rank; k++) {
    if (w.base_dil[k] != 1) return NULL;
    p->in_dims[k] = is->dims[k];
    p->out_dims[k] = rs->dims[k];
    p->win[k] = w.dims[k];
    p->stride[k] = w.strides[k];
    p->wdil[k] = w.win_dil[k];
    p->pad_lo[k] = w.pad_lo[k];
    p->win_n *= w.dims[k];
  }
  if (!init_neutral(p->op, p->kind, p->init)) return NULL;
  d->state = p;
  d->run = run_rwin;
  return NULL;
}

/* ------------------------------------------------------------------ entry */

hs_status *hs_cuda_build_movement(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  const char *n = op->name;
  if (op->n_results != 1 || op->n_operands < 1) {
    if (strcmp(n, "stablehlo.iota") == 0 && op->n_results == 1) return build_iota(b, op, d);
    return NULL;
  }
  if (!esize_ok(op->results[0]->type.dtype)) return NULL;
  if (strcmp(n, "stablehlo.reshape") == 0) {
    d->run = run_reshape;
    return NULL;
  }
  if (strcmp(n, "stablehlo.transpose") == 0 || strcmp(n, "stablehlo.slice") == 0 ||
      strcmp(n, "stablehlo.reverse") == 0 || strcmp(n, "stablehlo.broadcast_in_dim") == 0 ||
      strcmp(n, "stablehlo.concatenate") == 0)
    return build_strided(b, op, d);
  if (strcmp(n, "stablehlo.pad") == 0) return build_pad(b, op, d);
  if (strcmp(n, "stablehlo.gather") == 0) return build_gather(b, op, d);
  if (strcmp(n, "stablehlo.reduce") == 0) return build_reduce(b, op, d);
  if (strcmp(n, "stablehlo.reduce_window") == 0) return build_rwin(b, op, d);
  return NULL;
}
