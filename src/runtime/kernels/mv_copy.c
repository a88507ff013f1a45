/*
 * mv_copy.c - the strided-box copy engine behind the movement kernels.
 *
 * See mv_common.h for the model (a box with a source and a destination stride
 * per dim).  Three inner shapes cover the cases that matter for speed:
 *   - a run contiguous in both tensors: one memcpy;
 *   - a run contiguous in the destination only (broadcast, slice with a step,
 *     reverse, pad's interior): a typed loop per element size;
 *   - a transpose, where the destination's contiguous dim is strided in the
 *     source and some other dim is contiguous there: the two dims are walked
 *     in square tiles so that both the reads and the writes of a tile stay in
 *     cache.
 * Elements are moved as opaque 1/2/4/8/16-byte units through memcpy with a
 * constant size (a plain load/store after optimisation, and no alignment
 * assumption: weights may sit at any offset in a mapped file).
 */
#include <string.h>

#include "runtime/kernels/mv_common.h"

enum { TILE = 32 };
#define PAR_MIN_BYTES ((int64_t)1 << 18) /* below this a copy is not worth splitting */
#define PAR_CHUNK_BYTES ((int64_t)1 << 16)

void hs_mv_strides(const hs_shape *s, int64_t st[HS_MAX_RANK]) {
  int64_t acc = 1;
  for (int i = s->rank - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s->dims[i];
  }
}

int64_t hs_mv_box_simplify(hs_mv_box *b) {
  hs_mv_box o;
  memset(&o, 0, sizeof o);
  int64_t n = 1;
  for (int i = 0; i < b->rank; i++)
    if (b->dims[i] == 0) {
      memset(b, 0, sizeof *b);
      b->rank = 1; /* an empty box stays distinguishable from a rank-0 one */
      return 0;
    }
  for (int i = 0; i < b->rank; i++) {
    int64_t d = b->dims[i];
    n *= d;
    if (d == 1) continue;
    int r = o.rank;
    if (r > 0 && o.src_stride[r - 1] == b->src_stride[i] * d &&
        o.dst_stride[r - 1] == b->dst_stride[i] * d) {
      o.dims[r - 1] *= d;
      o.src_stride[r - 1] = b->src_stride[i];
      o.dst_stride[r - 1] = b->dst_stride[i];
    } else {
      o.dims[r] = d;
      o.src_stride[r] = b->src_stride[i];
      o.dst_stride[r] = b->dst_stride[i];
      o.rank++;
    }
  }
  *b = o;
  return n;
}

/* ---------------------------------------------------------- inner loops */

#define DEF_RUN(NAME, T)                                                              \
  static void NAME(char *d, int64_t ds, const char *s, int64_t ss, int64_t n) {     \
    for (int64_t i = 0; i < n; i++) {                                                 \
      T v;                                                                            \
      memcpy(&v, s + i * ss * (int64_t)sizeof(T), sizeof(T));                         \
      memcpy(d + i * ds * (int64_t)sizeof(T), &v, sizeof(T));                         \
    }                                                                                 \
  }
DEF_RUN(run1, uint8_t)
DEF_RUN(run2, uint16_t)
DEF_RUN(run4, uint32_t)
DEF_RUN(run8, uint64_t)

typedef struct u128 {
  uint64_t a, b;
} u128;
DEF_RUN(run16, u128)

#define DEF_SPLAT(NAME, T)                                   \
  static void NAME(char *d, const char *s, int64_t n) {      \
    T v;                                                     \
    memcpy(&v, s, sizeof(T));                                \
    for (int64_t i = 0; i < n; i++) memcpy(d + i * (int64_t)sizeof(T), &v, sizeof(T)); \
  }
DEF_SPLAT(splat2, uint16_t)
DEF_SPLAT(splat4, uint32_t)
DEF_SPLAT(splat8, uint64_t)

static void run_any(char *d, int64_t ds, const char *s, int64_t ss, int64_t n, size_t es) {
  if (ds == 1 && ss == 1) {
    memcpy(d, s, (size_t)n * es);
    return;
  }
  if (ds == 1 && ss == 0) { /* broadcast of one element along the run */
    switch (es) {
      case 1: memset(d, (unsigned char)s[0], (size_t)n); return;
      case 2: splat2(d, s, n); return;
      case 4: splat4(d, s, n); return;
      case 8: splat8(d, s, n); return;
      default: break;
    }
  }
  switch (es) {
    case 1: run1(d, ds, s, ss, n); break;
    case 2: run2(d, ds, s, ss, n); break;
    case 4: run4(d, ds, s, ss, n); break;
    case 8: run8(d, ds, s, ss, n); break;
    case 16: run16(d, ds, s, ss, n); break;
    default:
      for (int64_t i = 0; i < n; i++)
        memcpy(d + i * ds * (int64_t)es, s + i * ss * (int64_t)es, es);
      break;
  }
}

/* dst[a*da + b] = src[a + b*sb] over an na x nb block, in tiles. */
#define DEF_TILE(NAME, T)                                                              \
  static void NAME(char *dst, int64_t da, const char *src, int64_t sb, int64_t na,   \
                   int64_t nb) {                                                     \
    const int64_t es = (int64_t)sizeof(T);                                           \
    for (int64_t a0 = 0; a0 < na; a0 += TILE) {                                      \
      int64_t a1 = a0 + TILE < na ? a0 + TILE : na;                                  \
      for (int64_t b0 = 0; b0 < nb; b0 += TILE) {                                    \
        int64_t b1 = b0 + TILE < nb ? b0 + TILE : nb;                                \
        for (int64_t a = a0; a < a1; a++) {                                          \
          char *drow = dst + a * da * es;                                            \
          const char *scol = src + a * es;                                           \
          for (int64_t b = b0; b < b1; b++) {                                        \
            T v;                                                                     \
            memcpy(&v, scol + b * sb * es, sizeof(T));                               \
            memcpy(drow + b * es, &v, sizeof(T));                                    \
          }                                                                          \
        }                                                                            \
      }                                                                              \
    }                                                                                \
  }
DEF_TILE(tile1, uint8_t)
DEF_TILE(tile2, uint16_t)
DEF_TILE(tile4, uint32_t)
DEF_TILE(tile8, uint64_t)
DEF_TILE(tile16, u128)

static void tile_any(char *dst, int64_t da, const char *src, int64_t sb, int64_t na, int64_t nb,
                     size_t es) {
  switch (es) {
    case 1: tile1(dst, da, src, sb, na, nb); break;
    case 2: tile2(dst, da, src, sb, na, nb); break;
    case 4: tile4(dst, da, src, sb, na, nb); break;
    case 8: tile8(dst, da, src, sb, na, nb); break;
    case 16: tile16(dst, da, src, sb, na, nb); break;
    default:
      for (int64_t a = 0; a < na; a++)
        for (int64_t b = 0; b < nb; b++)
          memcpy(dst + (a * da + b) * (int64_t)es, src + (a + b * sb) * (int64_t)es, es);
      break;
  }
}

/* ------------------------------------------------------------- the walk */

typedef struct copy_job {
  hs_mv_box box;     /* simplified; for tiles, dims rank-2 and rank-1 form the block */
  bool tiled;
  int outer_rank;    /* dims walked by the odometer */
  int64_t nsplit;    /* pieces per row (runs split across threads; tile row blocks) */
  const char *src;
  char *dst;
  size_t es;
} copy_job;

/* Source/destination of outer row r (divisions: callers use it once per chunk). */
static void row_position(const copy_job *j, int64_t r, int64_t *idx, const char **s, char **d) {
  const hs_mv_box *b = &j->box;
  const int64_t es = (int64_t)j->es;
  *s = j->src;
  *d = j->dst;
  for (int k = j->outer_rank - 1; k >= 0; k--) {
    idx[k] = r % b->dims[k];
    r /= b->dims[k];
    *s += idx[k] * b->src_stride[k] * es;
    *d += idx[k] * b->dst_stride[k] * es;
  }
}

/* Whole rows r0..r1, walked with an odometer. */
static void copy_rows(void *arg, int64_t r0, int64_t r1) {
  const copy_job *j = arg;
  const hs_mv_box *b = &j->box;
  const int64_t es = (int64_t)j->es;
  int orank = j->outer_rank, c = b->rank - 1;
  int64_t idx[HS_MAX_RANK];
  const char *s;
  char *d;
  row_position(j, r0, idx, &s, &d);
  for (int64_t r = r0; r < r1; r++) {
    if (j->tiled)
      tile_any(d, b->dst_stride[c - 1], s, b->src_stride[c], b->dims[c - 1], b->dims[c], j->es);
    else
      run_any(d, b->dst_stride[c], s, b->src_stride[c], b->dims[c], j->es);
    if (r + 1 == r1) break;
    for (int k = orank - 1; k >= 0; k--) {
      if (++idx[k] < b->dims[k]) {
        s += b->src_stride[k] * es;
        d += b->dst_stride[k] * es;
        break;
      }
      s -= (b->dims[k] - 1) * b->src_stride[k] * es;
      d -= (b->dims[k] - 1) * b->dst_stride[k] * es;
      idx[k] = 0;
    }
  }
}

/* Pieces u0..u1 when each row is split in nsplit parts (large units: one
 * position computation per piece is negligible). */
static void copy_pieces(void *arg, int64_t u0, int64_t u1) {
  const copy_job *j = arg;
  const hs_mv_box *b = &j->box;
  const int64_t es = (int64_t)j->es;
  int c = b->rank - 1;
  int64_t idx[HS_MAX_RANK];
  for (int64_t u = u0; u < u1; u++) {
    const char *s;
    char *d;
    row_position(j, u / j->nsplit, idx, &s, &d);
    int64_t piece = u % j->nsplit;
    if (j->tiled) {
      /* a row block of the tile walk: dim c-1 split in nsplit parts */
      int64_t na = b->dims[c - 1], a0 = na * piece / j->nsplit, a1 = na * (piece + 1) / j->nsplit;
      tile_any(d + a0 * b->dst_stride[c - 1] * es, b->dst_stride[c - 1], s + a0 * es,
               b->src_stride[c], a1 - a0, b->dims[c], j->es);
    } else {
      int64_t n = b->dims[c], i0 = n * piece / j->nsplit, i1 = n * (piece + 1) / j->nsplit;
      run_any(d + i0 * b->dst_stride[c] * es, b->dst_stride[c], s + i0 * b->src_stride[c] * es,
              b->src_stride[c], i1 - i0, j->es);
    }
  }
}

void hs_mv_box_copy(hs_exec_ctx *ctx, const hs_mv_box *box, const void *src, void *dst,
                    size_t esize) {
  copy_job j;
  j.box = *box;
  j.src = src;
  j.dst = dst;
  j.es = esize;
  j.tiled = false;
  j.nsplit = 1;
  hs_mv_box *b = &j.box;
  int64_t numel = hs_mv_box_simplify(b);
  if (numel == 0) return;
  if (b->rank == 0) {
    memcpy(dst, src, esize);
    return;
  }
  int c = b->rank - 1;
  if (b->rank >= 2 && b->dst_stride[c] == 1 && b->src_stride[c] != 1 && b->src_stride[c] != 0 &&
      b->dims[c] >= 4) {
    /* A transpose-like walk: find the dim contiguous in the source. */
    int t = -1;
    for (int i = 0; i < c; i++)
      if (b->src_stride[i] == 1 && b->dims[i] >= 4) t = i;
    if (t >= 0) {
      /* Move dim t next to the innermost one (any walk order is valid). */
      int64_t td = b->dims[t], ts = b->src_stride[t], tds = b->dst_stride[t];
      for (int i = t; i < c - 1; i++) {
        b->dims[i] = b->dims[i + 1];
        b->src_stride[i] = b->src_stride[i + 1];
        b->dst_stride[i] = b->dst_stride[i + 1];
      }
      b->dims[c - 1] = td;
      b->src_stride[c - 1] = ts;
      b->dst_stride[c - 1] = tds;
      j.tiled = true;
    }
  }
  j.outer_rank = j.tiled ? b->rank - 2 : b->rank - 1;
  int64_t rows = 1;
  for (int i = 0; i < j.outer_rank; i++) rows *= b->dims[i];
  int64_t row_bytes = (numel / rows) * (int64_t)esize;
  if (!ctx || numel * (int64_t)esize < PAR_MIN_BYTES) {
    copy_rows(&j, 0, rows);
    return;
  }
  if (row_bytes >= 2 * PAR_CHUNK_BYTES) {
    /* Few long rows: split each one so that every thread gets work. */
    j.nsplit = row_bytes / PAR_CHUNK_BYTES;
    if (j.tiled) {
      int64_t blocks = (b->dims[c - 1] + TILE - 1) / TILE;
      if (j.nsplit > blocks) j.nsplit = blocks;
    }
    if (j.nsplit > 1) {
      hs_exec_parallel_for(ctx, rows * j.nsplit, 1, copy_pieces, &j);
      return;
    }
    j.nsplit = 1;
  }
  int64_t grain = PAR_CHUNK_BYTES / (row_bytes > 0 ? row_bytes : 1);
  hs_exec_parallel_for(ctx, rows, grain < 1 ? 1 : grain, copy_rows, &j);
}

/* -------------------------------------------------------- fill and copy */

typedef struct fill_job {
  char *dst;
  const void *value;
  size_t es;
} fill_job;

static void fill_range(void *arg, int64_t i0, int64_t i1) {
  const fill_job *f = arg;
  const unsigned char *v = f->value;
  bool same = true;
  for (size_t k = 1; k < f->es; k++) same = same && v[k] == v[0];
  char *d = f->dst + i0 * (int64_t)f->es;
  int64_t n = i1 - i0;
  if (same) {
    memset(d, v[0], (size_t)n * f->es);
    return;
  }
  run_any(d, 1, f->value, 0, n, f->es);
}

void hs_mv_fill(hs_exec_ctx *ctx, void *dst, int64_t n, const void *value, size_t esize) {
  if (n <= 0) return;
  fill_job f = {dst, value, esize};
  if (ctx && n * (int64_t)esize >= PAR_MIN_BYTES * 4)
    hs_exec_parallel_for(ctx, n, PAR_CHUNK_BYTES * 4 / (int64_t)esize, fill_range, &f);
  else
    fill_range(&f, 0, n);
}

typedef struct memcpy_job {
  char *dst;
  const char *src;
} memcpy_job;

static void memcpy_range(void *arg, int64_t i0, int64_t i1) {
  const memcpy_job *m = arg;
  memcpy(m->dst + i0, m->src + i0, (size_t)(i1 - i0));
}

void hs_mv_memcpy(hs_exec_ctx *ctx, void *dst, const void *src, size_t n) {
  if (n == 0 || dst == src) return;
  if (ctx && (int64_t)n >= PAR_MIN_BYTES * 4) {
    memcpy_job m = {dst, src};
    hs_exec_parallel_for(ctx, (int64_t)n, PAR_CHUNK_BYTES * 4, memcpy_range, &m);
  } else {
    memcpy(dst, src, n);
  }
}

/* ------------------------------------------------------------ elements */

int64_t hs_mv_load_index(hs_dtype t, const void *data, int64_t i) {
  const char *p = data;
  switch (t) {
    case HS_PRED: case HS_U8: { uint8_t v; memcpy(&v, p + i, 1); return v; }
    case HS_I8: { int8_t v; memcpy(&v, p + i, 1); return v; }
    case HS_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case HS_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case HS_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case HS_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case HS_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    case HS_U64: {
      uint64_t v;
      memcpy(&v, p + 8 * i, 8);
      return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
    }
    default: return hs_load_i64(t, data, i);
  }
}

int64_t hs_mv_total_key(hs_dtype t, const void *data, int64_t i) {
  const char *p = data;
  switch (t) {
    case HS_F16: case HS_BF16: {
      int16_t v;
      memcpy(&v, p + 2 * i, 2);
      return v >= 0 ? v : (int16_t)(v ^ INT16_MAX);
    }
    case HS_F32: {
      int32_t v;
      memcpy(&v, p + 4 * i, 4);
      return v >= 0 ? v : (v ^ INT32_MAX);
    }
    case HS_F64: {
      int64_t v;
      memcpy(&v, p + 8 * i, 8);
      return v >= 0 ? v : (v ^ INT64_MAX);
    }
    case HS_U64: {
      uint64_t v;
      memcpy(&v, p + 8 * i, 8);
      return (int64_t)(v ^ ((uint64_t)1 << 63));
    }
    default: return hs_mv_load_index(t, data, i);
  }
}

/* ----------------------------------------------------------- validation */

hs_status *hs_mv_operand_type(const hs_op *op, int i, const hs_type **out) {
  if (i >= op->n_operands)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected at least %d operands, got %d", i + 1,
                       op->n_operands);
  const hs_type *t = &op->operands[i]->type;
  if (t->kind != HS_TYPE_TENSOR)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "operand %d must be a tensor", i);
  *out = t;
  return NULL;
}

hs_status *hs_mv_result_type(const hs_op *op, int i, const hs_type **out) {
  if (i >= op->n_results)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected at least %d results, got %d", i + 1,
                       op->n_results);
  const hs_type *t = &op->results[i]->type;
  if (t->kind != HS_TYPE_TENSOR)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "result %d must be a tensor", i);
  *out = t;
  return NULL;
}
