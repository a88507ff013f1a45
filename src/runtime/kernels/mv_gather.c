/*
 * mv_gather.c - stablehlo.gather with the full dimension numbers of the spec
 * (offset_dims, collapsed_slice_dims, operand_batching_dims,
 * start_indices_batching_dims, start_index_map, index_vector_dim; an
 * index_vector_dim equal to the indices' rank means a trailing dim of size 1).
 *
 * A gather is a loop over the result's batch positions (the result dims that
 * are not offset dims, one per non-index-vector dim of start_indices); each
 * position reads one start vector, clamps it so that the slice fits in the
 * operand (the spec's clamp), adds the batching indices, and copies one
 * window - the slice with collapsed and batching dims dropped - into the
 * result at the offset dims.  That window copy is a fixed box (the operand's
 * strides on one side, the result's offset-dim strides on the other), built
 * and simplified once at prepare time, so an embedding lookup becomes one
 * memcpy per looked-up row.  A window whose elements are scattered (a
 * channel column of an NCHW map) is copied element-major over tiles of
 * positions instead (gather_tiled).  Batch positions split across threads.
 */
#include <string.h>

#include "runtime/kernels/mv_common.h"

typedef struct gather_state {
  int op_rank, idx_rank;
  int64_t ivd;                    /* index_vector_dim */
  int64_t ivd_stride;             /* stride of the index vector in start_indices (0 if none) */
  int nk;                         /* index vector length */
  int64_t start_map[HS_MAX_RANK]; /* operand dim of each index vector element */
  int nb;                         /* batch dims */
  int64_t batch_size[HS_MAX_RANK];
  int64_t batch_idx_stride[HS_MAX_RANK]; /* start_indices stride of batch dim k */
  int64_t batch_res_stride[HS_MAX_RANK]; /* result stride of batch dim k */
  int nbatching;
  int64_t op_batching[HS_MAX_RANK];  /* operand dim ... */
  int batching_pos[HS_MAX_RANK];     /* ... takes batch index k */
  int64_t op_dims[HS_MAX_RANK], op_stride[HS_MAX_RANK], slice[HS_MAX_RANK];
  int64_t nbatch;                    /* product of batch sizes */
  int64_t window_numel;
  hs_mv_box window;
  bool tiled;                        /* window elements scattered: gather_tiled */
  bool empty_slice;                  /* a zero slice size: nothing can be read */
} gather_state;

hs_status *hs_mv_gather_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *it, *rt;
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, 0, &ot));
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, 1, &it));
  HS_RETURN_IF_ERROR(hs_mv_result_type(op, 0, &rt));
  if (op->n_operands != 2 || op->n_results != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expects 2 operands and 1 result");
  if (ot->dtype != rt->dtype || hs_dtype_size(ot->dtype) == 0)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "result dtype must equal the operand dtype");
  if (!hs_dtype_is_int(it->dtype))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "start_indices must have an integer type");
  const hs_attr *dn = hs_op_attr(op, "dimension_numbers");
  if (!dn) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing attribute 'dimension_numbers'");
  const int64_t *offset_dims = NULL, *collapsed = NULL, *op_batching = NULL, *idx_batching = NULL,
                *start_map = NULL, *slice = NULL;
  int n_off = 0, n_col = 0, n_obat = 0, n_ibat = 0, n_map = 0, n_slice = 0;
  int64_t ivd = 0;
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "offset_dims", false, &offset_dims, &n_off));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "collapsed_slice_dims", false, &collapsed, &n_col));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "operand_batching_dims", false, &op_batching, &n_obat));
  HS_RETURN_IF_ERROR(
      hs_struct_get_ints(op, dn, "start_indices_batching_dims", false, &idx_batching, &n_ibat));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "start_index_map", false, &start_map, &n_map));
  HS_RETURN_IF_ERROR(hs_struct_get_int(op, dn, "index_vector_dim", false, 0, &ivd));
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, "slice_sizes", true, &slice, &n_slice));

  int orank = ot->shape.rank, irank = it->shape.rank, rrank = rt->shape.rank;
  if (ivd < 0 || ivd > irank)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "index_vector_dim %lld out of range", (long long)ivd);
  int64_t nk = ivd < irank ? it->shape.dims[ivd] : 1;
  int nb = ivd < irank ? irank - 1 : irank;
  if (n_slice != orank)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "slice_sizes needs %d entries", orank);
  if (n_map != nk)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "start_index_map has %d entries, index vector %lld",
                       n_map, (long long)nk);
  if (n_obat != n_ibat)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "operand_batching_dims and start_indices_batching_dims differ in length");
  if (rrank != nb + n_off)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "result rank %d != %d batch + %d offset dims", rrank,
                       nb, n_off);
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "offset_dims", offset_dims, n_off, rrank, true));
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "collapsed_slice_dims", collapsed, n_col, orank, true));
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "operand_batching_dims", op_batching, n_obat, orank, true));
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "start_index_map", start_map, n_map, orank, false));
  HS_RETURN_IF_ERROR(hs_mv_check_dims(op, "start_indices_batching_dims", idx_batching, n_ibat, irank, false));
  for (int i = 0; i < n_ibat; i++)
    if (idx_batching[i] == ivd)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "start_indices_batching_dims contains index_vector_dim");
  for (int i = 0; i < n_obat; i++)
    if (hs_mv_in_list(collapsed, n_col, op_batching[i]) || hs_mv_in_list(start_map, n_map, op_batching[i]))
      return hs_op_error(op, HS_INVALID_ARGUMENT,
                         "operand_batching_dims overlaps collapsed_slice_dims or start_index_map");
  for (int d = 0; d < orank; d++) {
    if (slice[d] < 0 || slice[d] > ot->shape.dims[d])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "slice_sizes[%d] = %lld does not fit dim %lld", d,
                         (long long)slice[d], (long long)ot->shape.dims[d]);
    if ((hs_mv_in_list(collapsed, n_col, d) || hs_mv_in_list(op_batching, n_obat, d)) && slice[d] > 1)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "slice_sizes[%d] of a collapsed/batching dim must be <= 1", d);
  }

  gather_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  st->op_rank = orank;
  st->idx_rank = irank;
  st->ivd = ivd;
  st->nk = (int)nk;
  int64_t ist[HS_MAX_RANK], rst[HS_MAX_RANK];
  hs_mv_strides(&it->shape, ist);
  hs_mv_strides(&rt->shape, rst);
  hs_mv_strides(&ot->shape, st->op_stride);
  st->ivd_stride = ivd < irank ? ist[ivd] : 0;
  for (int j = 0; j < n_map; j++) st->start_map[j] = start_map[j];
  for (int d = 0; d < orank; d++) {
    st->op_dims[d] = ot->shape.dims[d];
    st->slice[d] = slice[d];
    if (slice[d] == 0) st->empty_slice = true;
  }
  /* Batch dims: result dims not in offset_dims <-> start_indices dims but ivd. */
  st->nb = nb;
  st->nbatch = 1;
  int k = 0, idim = 0;
  for (int d = 0; d < rrank; d++) {
    if (hs_mv_in_list(offset_dims, n_off, d)) continue;
    if (idim == ivd) idim++;
    if (rt->shape.dims[d] != it->shape.dims[idim])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "result batch dim %d has size %lld, indices %lld", d,
                         (long long)rt->shape.dims[d], (long long)it->shape.dims[idim]);
    st->batch_size[k] = rt->shape.dims[d];
    st->batch_idx_stride[k] = ist[idim];
    st->batch_res_stride[k] = rst[d];
    st->nbatch *= rt->shape.dims[d];
    k++;
    idim++;
  }
  st->nbatching = n_obat;
  for (int i = 0; i < n_obat; i++) {
    st->op_batching[i] = op_batching[i];
    st->batching_pos[i] = (int)(idx_batching[i] - (idx_batching[i] > ivd ? 1 : 0));
    if (it->shape.dims[idx_batching[i]] != ot->shape.dims[op_batching[i]])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "batching dims %lld/%lld differ in size",
                         (long long)op_batching[i], (long long)idx_batching[i]);
  }
  /* The window: operand dims that are neither collapsed nor batching, paired
   * in order with offset_dims. */
  hs_mv_box *w = &st->window;
  int o = 0;
  for (int d = 0; d < orank; d++) {
    if (hs_mv_in_list(collapsed, n_col, d) || hs_mv_in_list(op_batching, n_obat, d)) continue;
    if (o >= n_off)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "more window dims than offset_dims");
    if (rt->shape.dims[offset_dims[o]] != slice[d])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "result offset dim %lld has size %lld, slice %lld",
                         (long long)offset_dims[o], (long long)rt->shape.dims[offset_dims[o]],
                         (long long)slice[d]);
    w->dims[w->rank] = slice[d];
    w->src_stride[w->rank] = st->op_stride[d];
    w->dst_stride[w->rank] = rst[offset_dims[o]];
    w->rank++;
    o++;
  }
  if (o != n_off) return hs_op_error(op, HS_INVALID_ARGUMENT, "fewer window dims than offset_dims");
  st->window_numel = hs_mv_box_simplify(w);
  /* innermost window run after simplification: 1 element means scattered */
  st->tiled = st->window_numel >= 4 && w->rank > 0 &&
              (w->src_stride[w->rank - 1] != 1 || w->dst_stride[w->rank - 1] != 1 ||
               w->dims[w->rank - 1] < 4);
  op->kernel_state = st;
  return NULL;
}

typedef struct gather_job {
  const gather_state *st;
  const hs_tensor *operand, *indices;
  hs_tensor *result;
} gather_job;

/* Walks batch positions [p0, p1): for each, the operand offset of its window
 * (clamped start vector plus batching indices) and the result offset of its
 * batch index, in elements.  `it` carries the odometer between calls. */
typedef struct pos_iter {
  int64_t bi[HS_MAX_RANK];
  int64_t ibase, rbase;
} pos_iter;

static void pos_begin(const gather_state *st, int64_t p0, pos_iter *it) {
  int64_t rem = p0;
  it->ibase = it->rbase = 0;
  for (int k = st->nb - 1; k >= 0; k--) {
    it->bi[k] = rem % st->batch_size[k];
    rem /= st->batch_size[k];
    it->ibase += it->bi[k] * st->batch_idx_stride[k];
    it->rbase += it->bi[k] * st->batch_res_stride[k];
  }
}

static void pos_next(const gather_state *st, const gather_job *j, pos_iter *it, int64_t *off,
                     int64_t *rbase) {
  const void *idx = j->indices->data;
  hs_dtype idt = j->indices->dtype;
  int64_t o = 0;
  for (int jj = 0; jj < st->nk; jj++) {
    int64_t d = st->start_map[jj];
    int64_t s = hs_mv_load_index(idt, idx, it->ibase + jj * st->ivd_stride);
    int64_t hi = st->op_dims[d] - st->slice[d];
    if (s > hi) s = hi;
    if (s < 0) s = 0;
    o += s * st->op_stride[d];
  }
  for (int i = 0; i < st->nbatching; i++)
    o += it->bi[st->batching_pos[i]] * st->op_stride[st->op_batching[i]];
  *off = o;
  *rbase = it->rbase;
  for (int k = st->nb - 1; k >= 0; k--) {
    if (++it->bi[k] < st->batch_size[k]) {
      it->ibase += st->batch_idx_stride[k];
      it->rbase += st->batch_res_stride[k];
      break;
    }
    it->ibase -= (st->batch_size[k] - 1) * st->batch_idx_stride[k];
    it->rbase -= (st->batch_size[k] - 1) * st->batch_res_stride[k];
    it->bi[k] = 0;
  }
}

/* Copies element w of every window of a tile: dst[rb[t] + dw] = src[off[t] + sw]. */
#define TILE_COPY(T)                                                           \
  do {                                                                         \
    const T *s_ = (const T *)opd + sw;                                         \
    T *d_ = (T *)res + dw;                                                     \
    for (int t = 0; t < n; t++) d_[rb[t]] = s_[off[t]];                        \
  } while (0)

/* Windows whose elements are scattered (no contiguous run: e.g. a [1, C, 1, 1]
 * slice of an NCHW map, as in a nearest-neighbour upsample) would touch one
 * cache line per element per position.  Instead take positions in tiles, and
 * for each window element copy it for the whole tile: each pass reads one
 * plane of the operand and writes one run of the result. */
enum { GATHER_TILE = 128 };

static void gather_tiled(const gather_job *j, int64_t p0, int64_t p1) {
  const gather_state *st = j->st;
  const hs_mv_box *w = &st->window;
  const size_t es = hs_dtype_size(j->operand->dtype);
  const char *opd = j->operand->data;
  char *res = j->result->data;
  int64_t off[GATHER_TILE], rb[GATHER_TILE];
  pos_iter it;
  pos_begin(st, p0, &it);
  for (int64_t p = p0; p < p1; p += GATHER_TILE) {
    int n = (int)(p1 - p < GATHER_TILE ? p1 - p : GATHER_TILE);
    for (int t = 0; t < n; t++) pos_next(st, j, &it, &off[t], &rb[t]);
    int64_t wi[HS_MAX_RANK] = {0};
    int64_t sw = 0, dw = 0;
    for (int64_t e = 0; e < st->window_numel; e++) {
      switch (es) {
        case 4: TILE_COPY(uint32_t); break;
        case 8: TILE_COPY(uint64_t); break;
        case 2: TILE_COPY(uint16_t); break;
        case 1: TILE_COPY(uint8_t); break;
        default:
          for (int t = 0; t < n; t++)
            memcpy(res + (rb[t] + dw) * (int64_t)es, opd + (off[t] + sw) * (int64_t)es, es);
      }
      for (int k = w->rank - 1; k >= 0; k--) {
        if (++wi[k] < w->dims[k]) {
          sw += w->src_stride[k];
          dw += w->dst_stride[k];
          break;
        }
        sw -= (w->dims[k] - 1) * w->src_stride[k];
        dw -= (w->dims[k] - 1) * w->dst_stride[k];
        wi[k] = 0;
      }
    }
  }
}

static void gather_range(void *arg, int64_t p0, int64_t p1) {
  const gather_job *j = arg;
  const gather_state *st = j->st;
  if (st->tiled) {
    gather_tiled(j, p0, p1);
    return;
  }
  const size_t es = hs_dtype_size(j->operand->dtype);
  const char *opd = j->operand->data;
  char *res = j->result->data;
  pos_iter it;
  pos_begin(st, p0, &it);
  for (int64_t p = p0; p < p1; p++) {
    int64_t off, rbase;
    pos_next(st, j, &it, &off, &rbase);
    if (st->window_numel == 1)
      memcpy(res + rbase * (int64_t)es, opd + off * (int64_t)es, es);
    else
      hs_mv_box_copy(NULL, &st->window, opd + off * (int64_t)es, res + rbase * (int64_t)es, es);
  }
}

hs_status *hs_mv_gather_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                            hs_tensor *out) {
  const gather_state *st = op->kernel_state;
  if (hs_tensor_numel(&out[0]) == 0) return NULL;
  if (st->empty_slice) { /* only a collapsed dim can have size 0 here: no data to read */
    memset(out[0].data, 0, hs_tensor_nbytes(&out[0]));
    return NULL;
  }
  gather_job j = {st, &in[0], &in[1], &out[0]};
  int64_t bytes = hs_tensor_numel(&out[0]) * (int64_t)hs_dtype_size(out[0].dtype);
  if (ctx && st->nbatch > 1 && bytes >= ((int64_t)1 << 18)) {
    int64_t per = st->window_numel * (int64_t)hs_dtype_size(out[0].dtype) + 64;
    int64_t grain = ((int64_t)1 << 15) / per;
    if (st->tiled && grain < GATHER_TILE) grain = GATHER_TILE; /* whole tiles per chunk */
    hs_exec_parallel_for(ctx, st->nbatch, grain < 1 ? 1 : grain, gather_range, &j);
  } else {
    gather_range(&j, 0, st->nbatch);
  }
  return NULL;
}
