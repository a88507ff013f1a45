/*
 * mv_sort.c - stablehlo.sort (variadic operands, any dimension, comparator
 * region) and chlo.top_k.
 *
 * Sorting is always stable (a merge sort), which satisfies is_stable = true
 * and is a valid choice for is_stable = false.  Each line along the sort
 * dimension is sorted as a permutation, then every operand's line is
 * permuted.
 *
 * The comparator is a region; evaluating it per comparison (hs_exec_region)
 * is the general path.  At prepare time we look for the comparators that
 * real programs use - `compare LT|GT, %lhs_k, %rhs_k` on one operand k, with
 * an optional TOTALORDER/FLOAT/SIGNED/UNSIGNED type, where each side may be
 * JAX's NaN-canonicalising chain
 *     select(x != x, NaN, select(x == 0, 0, x))
 * - and then sort (key, index) pairs with integer keys instead:
 *   - TOTALORDER on floats: the IEEE total order (-NaN < -inf < ... < -0 <
 *     +0 < ... < +NaN), a sign-magnitude flip of the bits;
 *   - the canonicalised form: the same with -0 == +0 and all NaNs equal and
 *     largest;
 *   - FLOAT (partial order): keyed like the canonicalised form, so NaNs sort
 *     last instead of leaving an order the comparator does not define;
 *   - integers: their value.
 * GT sorts descending, still stably.
 *
 * chlo.top_k keeps the k largest of each row of the last dim, ordered by the
 * total order (NaN above everything, as XLA), ties broken by the lower index;
 * small k uses an insertion buffer, large k a full sort of the row.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels/mv_common.h"

typedef enum key_kind {
  KEY_NONE = 0, /* general path */
  KEY_TOTAL,    /* floats: total order on the bits; integers: value */
  KEY_CANON,    /* floats: -0 == +0, NaNs equal and largest */
} key_kind;

typedef struct kv {
  int64_t key;
  int64_t idx;
} kv;

/* ------------------------------------------------------- merge sorts */

#define KV_BEFORE(x, y, desc) ((desc) ? (x).key > (y).key : (x).key < (y).key)

static void msort_kv(kv *a, kv *tmp, int64_t n, bool desc) {
  if (n <= 16) {
    for (int64_t i = 1; i < n; i++) {
      kv x = a[i];
      int64_t j = i;
      while (j > 0 && KV_BEFORE(x, a[j - 1], desc)) {
        a[j] = a[j - 1];
        j--;
      }
      a[j] = x;
    }
    return;
  }
  int64_t h = n / 2;
  msort_kv(a, tmp, h, desc);
  msort_kv(a + h, tmp, n - h, desc);
  if (!KV_BEFORE(a[h], a[h - 1], desc)) return; /* already in order */
  memcpy(tmp, a, (size_t)h * sizeof *a);
  int64_t i = 0, j = h, o = 0;
  while (i < h && j < n) a[o++] = KV_BEFORE(a[j], tmp[i], desc) ? a[j++] : tmp[i++];
  while (i < h) a[o++] = tmp[i++];
}

/* The general path: a comparator region over 2n scalar arguments. */
typedef struct cmp_ctx {
  hs_exec_ctx *ctx;
  const hs_region *region;
  int n;
  hs_tensor *args;    /* 2n, data pointers set per comparison */
  hs_tensor *out;     /* one i1 scalar */
  const hs_tensor *in;
  const size_t *es;
  int64_t base, stride; /* the line: element j at base + j*stride */
  hs_status *err;
} cmp_ctx;

static bool region_less(cmp_ctx *c, int64_t a, int64_t b) {
  if (c->err) return false;
  for (int k = 0; k < c->n; k++) {
    const char *d = c->in[k].data;
    int64_t es = (int64_t)c->es[k];
    c->args[2 * k].data = (char *)d + (c->base + a * c->stride) * es;
    c->args[2 * k + 1].data = (char *)d + (c->base + b * c->stride) * es;
  }
  c->err = hs_exec_region(c->ctx, c->region, c->args, 2 * c->n, c->out, 1);
  if (c->err) return false;
  return *(const uint8_t *)c->out->data != 0;
}

static void msort_region(int64_t *a, int64_t *tmp, int64_t n, cmp_ctx *c) {
  if (n <= 16) {
    for (int64_t i = 1; i < n; i++) {
      int64_t x = a[i];
      int64_t j = i;
      while (j > 0 && region_less(c, x, a[j - 1])) {
        a[j] = a[j - 1];
        j--;
      }
      a[j] = x;
    }
    return;
  }
  int64_t h = n / 2;
  msort_region(a, tmp, h, c);
  msort_region(a + h, tmp, n - h, c);
  if (!region_less(c, a[h], a[h - 1])) return;
  memcpy(tmp, a, (size_t)h * sizeof *a);
  int64_t i = 0, j = h, o = 0;
  while (i < h && j < n) a[o++] = region_less(c, a[j], tmp[i]) ? a[j++] : tmp[i++];
  while (i < h) a[o++] = tmp[i++];
}

/* ------------------------------------------------------------- keys */

static int64_t canon_key(hs_dtype t, const void *data, int64_t i) {
  double v = hs_load_f64(t, data, i);
  if (isnan(v)) return INT64_MAX;
  if (v == 0) return 0;
  return hs_mv_total_key(t, data, i);
}

static void line_keys(key_kind kind, hs_dtype t, const void *data, int64_t base, int64_t stride,
                      int64_t len, kv *out) {
  bool fl = hs_dtype_is_float(t);
  for (int64_t j = 0; j < len; j++) {
    int64_t e = base + j * stride;
    out[j].key = (kind == KEY_CANON && fl) ? canon_key(t, data, e) : hs_mv_total_key(t, data, e);
    out[j].idx = j;
  }
}

/* ---------------------------------------------- comparator recognition */

static bool attr_word_is(const hs_op *op, const char *name, const char *word) {
  const hs_attr *a = hs_op_attr(op, name);
  if (!a || (a->kind != HS_ATTR_ENUM && a->kind != HS_ATTR_STRING) || !a->u.str.s) return false;
  size_t n = strlen(word);
  return a->u.str.len == n && memcmp(a->u.str.s, word, n) == 0;
}

static bool has_attr(const hs_op *op, const char *name) { return hs_op_attr(op, name) != NULL; }

static bool is_op(const hs_value *v, const char *name, int n_operands) {
  return v && v->def && strcmp(v->def->name, name) == 0 && v->def->n_operands == n_operands;
}

/* A scalar float constant: *out receives its value. */
static bool const_value(const hs_value *v, double *out) {
  if (!v || !v->def || strcmp(v->def->name, "stablehlo.constant") != 0) return false;
  const hs_attr *a = hs_op_attr(v->def, "value");
  if (!a || a->kind != HS_ATTR_DENSE || !a->u.dense.data) return false;
  if (a->u.dense.type.shape.rank != 0 || !hs_dtype_is_float(a->u.dense.type.dtype)) return false;
  *out = hs_load_f64(a->u.dense.type.dtype, a->u.dense.data, 0);
  return true;
}

static int arg_index(const hs_block *blk, const hs_value *v) {
  if (!v || v->def) return -1;
  for (int i = 0; i < blk->n_args; i++)
    if (blk->args[i] == v) return i;
  return -1;
}

/* A block argument, or JAX's select(x != x, NaN, select(x == 0, 0, x)) of one. */
static int match_side(const hs_block *blk, const hs_value *v, bool *canon) {
  *canon = false;
  int a = arg_index(blk, v);
  if (a >= 0) return a;
  if (!is_op(v, "stablehlo.select", 3)) return -1;
  const hs_op *outer = v->def;
  const hs_value *c = outer->operands[0], *nan_v = outer->operands[1], *inner = outer->operands[2];
  double cv;
  if (!is_op(c, "stablehlo.compare", 2) || !attr_word_is(c->def, "comparison_direction", "NE"))
    return -1;
  const hs_value *x = c->def->operands[0];
  if (c->def->operands[1] != x || (a = arg_index(blk, x)) < 0) return -1;
  if (!const_value(nan_v, &cv) || !isnan(cv)) return -1;
  if (!is_op(inner, "stablehlo.select", 3)) return -1;
  const hs_value *c2 = inner->def->operands[0];
  if (!const_value(inner->def->operands[1], &cv) || cv != 0) return -1;
  if (inner->def->operands[2] != x) return -1;
  if (!is_op(c2, "stablehlo.compare", 2) || !attr_word_is(c2->def, "comparison_direction", "EQ"))
    return -1;
  if (c2->def->operands[0] != x || !const_value(c2->def->operands[1], &cv) || cv != 0) return -1;
  *canon = true;
  return a;
}

/* Sets *key_operand, *kind, *desc for a recognised comparator. */
static void recognise(const hs_op *op, int n, int *key_operand, key_kind *kind, bool *desc) {
  *kind = KEY_NONE;
  const hs_region *rg = op->regions[0];
  if (rg->n_blocks != 1) return;
  const hs_block *blk = rg->blocks[0];
  if (blk->n_ops < 2 || blk->n_args != 2 * n) return;
  const hs_op *ret = blk->ops[blk->n_ops - 1];
  if (ret->n_operands != 1) return;
  const hs_value *v = ret->operands[0];
  if (!is_op(v, "stablehlo.compare", 2)) return;
  const hs_op *cmp = v->def;
  bool lt = attr_word_is(cmp, "comparison_direction", "LT");
  bool gt = attr_word_is(cmp, "comparison_direction", "GT");
  if (!lt && !gt) return;
  bool total = attr_word_is(cmp, "compare_type", "TOTALORDER");
  bool fl = attr_word_is(cmp, "compare_type", "FLOAT");
  bool typed_int = attr_word_is(cmp, "compare_type", "SIGNED") ||
                   attr_word_is(cmp, "compare_type", "UNSIGNED");
  bool notype = !has_attr(cmp, "compare_type") || attr_word_is(cmp, "compare_type", "NOTYPE");
  if (!total && !fl && !typed_int && !notype) return;
  bool cx, cy;
  int ax = match_side(blk, cmp->operands[0], &cx);
  int ay = match_side(blk, cmp->operands[1], &cy);
  if (ax < 0 || ay < 0 || ax / 2 != ay / 2 || ax == ay || cx != cy) return;
  int k = ax / 2;
  hs_dtype t = op->operands[k]->type.dtype;
  if (hs_dtype_is_complex(t) || hs_dtype_size(t) == 0) return;
  bool isf = hs_dtype_is_float(t);
  if (isf && typed_int) return;
  if (!isf && cx) return;
  *desc = gt != (ax % 2 == 1); /* compare(rhs, lhs) flips the direction */
  *key_operand = k;
  *kind = isf && (cx || !total) ? KEY_CANON : KEY_TOTAL;
}

/* ------------------------------------------------------------------ sort */

typedef struct sort_state {
  int n;
  int64_t outer, len, inner;
  int key_operand;
  key_kind kind;
  bool desc;
} sort_state;

hs_status *hs_mv_sort_prepare(hs_op *op, hs_arena *arena) {
  int n = op->n_operands;
  if (n < 1 || op->n_results != n)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expects as many results as operands (>= 1)");
  if (op->n_regions != 1 || op->regions[0]->n_blocks != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expects one comparator region");
  const hs_type *t0;
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, 0, &t0));
  for (int k = 0; k < n; k++) {
    const hs_type *a, *r;
    HS_RETURN_IF_ERROR(hs_mv_operand_type(op, k, &a));
    HS_RETURN_IF_ERROR(hs_mv_result_type(op, k, &r));
    if (!hs_shape_equal(&a->shape, &t0->shape) || !hs_shape_equal(&r->shape, &t0->shape) ||
        a->dtype != r->dtype || hs_dtype_size(a->dtype) == 0)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "operand/result %d differ in shape or dtype", k);
  }
  const hs_block *blk = op->regions[0]->blocks[0];
  if (blk->n_args != 2 * n)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "comparator takes %d arguments, expected %d",
                       blk->n_args, 2 * n);
  for (int k = 0; k < 2 * n; k++) {
    const hs_type *p = &blk->args[k]->type;
    if (p->kind != HS_TYPE_TENSOR || p->shape.rank != 0 || p->dtype != op->operands[k / 2]->type.dtype)
      return hs_op_error(op, HS_UNIMPLEMENTED, "comparator argument %d must be a scalar of the operand dtype", k);
  }
  const hs_op *ret = blk->n_ops > 0 ? blk->ops[blk->n_ops - 1] : NULL;
  if (!ret || ret->n_operands != 1 || ret->operands[0]->type.kind != HS_TYPE_TENSOR ||
      ret->operands[0]->type.shape.rank != 0 || ret->operands[0]->type.dtype != HS_PRED)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "comparator must return one tensor<i1>");
  int64_t dim = -1;
  HS_RETURN_IF_ERROR(hs_op_get_int(op, "dimension", false, -1, &dim));
  int r = t0->shape.rank;
  if (dim < 0) dim += r;
  if (r == 0 || dim < 0 || dim >= r)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "dimension out of range for rank %d", r);
  sort_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  st->n = n;
  st->outer = st->inner = 1;
  for (int i = 0; i < dim; i++) st->outer *= t0->shape.dims[i];
  st->len = t0->shape.dims[dim];
  for (int i = (int)dim + 1; i < r; i++) st->inner *= t0->shape.dims[i];
  recognise(op, n, &st->key_operand, &st->kind, &st->desc);
  op->kernel_state = st;
  return NULL;
}

/* out line j = in line perm[j], for element size es. */
static void permute_line(const char *in, char *out, int64_t base, int64_t stride, const kv *perm,
                         const int64_t *iperm, int64_t len, size_t es) {
  for (int64_t j = 0; j < len; j++) {
    int64_t src = perm ? perm[j].idx : iperm[j];
    memcpy(out + (base + j * stride) * (int64_t)es, in + (base + src * stride) * (int64_t)es, es);
  }
}

typedef struct sort_job {
  const sort_state *st;
  const hs_tensor *in;
  hs_tensor *out;
  kv *bufs;       /* per group: 2*len */
  int64_t groups;
} sort_job;

static void sort_groups(void *arg, int64_t g0, int64_t g1) {
  const sort_job *j = arg;
  const sort_state *st = j->st;
  int64_t lines = st->outer * st->inner;
  const hs_tensor *key = &j->in[st->key_operand];
  for (int64_t g = g0; g < g1; g++) {
    kv *a = j->bufs + g * 2 * st->len, *tmp = a + st->len;
    int64_t l0 = lines * g / j->groups, l1 = lines * (g + 1) / j->groups;
    for (int64_t l = l0; l < l1; l++) {
      int64_t base = (l / st->inner) * st->len * st->inner + l % st->inner;
      line_keys(st->kind, key->dtype, key->data, base, st->inner, st->len, a);
      msort_kv(a, tmp, st->len, st->desc);
      for (int k = 0; k < st->n; k++)
        permute_line(j->in[k].data, j->out[k].data, base, st->inner, a, NULL, st->len,
                     hs_dtype_size(j->in[k].dtype));
    }
  }
}

hs_status *hs_mv_sort_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                          hs_tensor *out) {
  const sort_state *st = op->kernel_state;
  int64_t lines = st->outer * st->inner, len = st->len;
  if (lines == 0 || len == 0) return NULL;
  if (st->kind != KEY_NONE) {
    int64_t total = lines * len;
    int64_t groups = total >= (1 << 16) && lines > 1 ? (lines < 16 ? lines : 16) : 1;
    kv *bufs = hs_exec_scratch(ctx, sizeof(kv) * 2 * (size_t)len * (size_t)groups);
    if (!bufs) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of scratch memory for sort");
    sort_job j = {st, in, out, bufs, groups};
    if (groups > 1)
      hs_exec_parallel_for(ctx, groups, 1, sort_groups, &j);
    else
      sort_groups(&j, 0, 1);
    return NULL;
  }
  /* General path: the comparator region, one line at a time. */
  int n = st->n;
  int64_t *perm = hs_exec_scratch(ctx, sizeof(int64_t) * 2 * (size_t)len);
  hs_tensor *args = hs_exec_scratch(ctx, sizeof(hs_tensor) * (size_t)(2 * n + 1));
  size_t *es = hs_exec_scratch(ctx, sizeof(size_t) * (size_t)n);
  uint8_t *obuf = hs_exec_scratch(ctx, 16);
  if (!perm || !args || !es || !obuf)
    return hs_op_error(op, HS_OUT_OF_MEMORY, "out of scratch memory for sort");
  for (int k = 0; k < n; k++) {
    es[k] = hs_dtype_size(in[k].dtype);
    memset(&args[2 * k], 0, 2 * sizeof *args);
    args[2 * k].dtype = args[2 * k + 1].dtype = in[k].dtype;
  }
  hs_tensor *o = &args[2 * n];
  memset(o, 0, sizeof *o);
  o->dtype = HS_PRED;
  o->data = obuf;
  cmp_ctx c = {ctx, op->regions[0], n, args, o, in, es, 0, st->inner, NULL};
  for (int64_t l = 0; l < lines; l++) {
    int64_t base = (l / st->inner) * len * st->inner + l % st->inner;
    for (int64_t j = 0; j < len; j++) perm[j] = j;
    c.base = base;
    msort_region(perm, perm + len, len, &c);
    if (c.err) return c.err;
    for (int k = 0; k < n; k++)
      permute_line(in[k].data, out[k].data, base, st->inner, NULL, perm, len, es[k]);
  }
  return NULL;
}

/* ----------------------------------------------------------------- top_k */

typedef struct topk_state {
  int64_t rows, len, k;
} topk_state;

hs_status *hs_mv_top_k_prepare(hs_op *op, hs_arena *arena) {
  const hs_type *ot, *vt, *it;
  HS_RETURN_IF_ERROR(hs_mv_operand_type(op, 0, &ot));
  HS_RETURN_IF_ERROR(hs_mv_result_type(op, 0, &vt));
  HS_RETURN_IF_ERROR(hs_mv_result_type(op, 1, &it));
  int64_t k;
  HS_RETURN_IF_ERROR(hs_op_get_int(op, "k", true, 0, &k));
  int r = ot->shape.rank;
  if (r < 1) return hs_op_error(op, HS_INVALID_ARGUMENT, "operand must have rank >= 1");
  if (hs_dtype_is_complex(ot->dtype) || hs_dtype_size(ot->dtype) == 0)
    return hs_op_error(op, HS_UNIMPLEMENTED, "top_k of %s", hs_dtype_name(ot->dtype));
  int64_t len = ot->shape.dims[r - 1];
  if (k < 0 || k > len)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "k = %lld out of range for a last dim of %lld",
                       (long long)k, (long long)len);
  hs_shape want = ot->shape;
  want.dims[r - 1] = k;
  if (vt->dtype != ot->dtype || !hs_shape_equal(&vt->shape, &want) || !hs_shape_equal(&it->shape, &want) ||
      !hs_dtype_is_int(it->dtype))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "results must be values [..., k] and integer indices");
  topk_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  st->len = len;
  st->k = k;
  st->rows = len ? hs_shape_numel(&ot->shape) / len : 0;
  op->kernel_state = st;
  return NULL;
}

hs_status *hs_mv_top_k_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                           hs_tensor *out) {
  const topk_state *st = op->kernel_state;
  int64_t len = st->len, k = st->k;
  if (st->rows == 0 || k == 0) return NULL;
  hs_dtype t = in[0].dtype;
  size_t es = hs_dtype_size(t);
  bool small = k <= 64;
  kv *buf = hs_exec_scratch(ctx, sizeof(kv) * (small ? (size_t)k : 2 * (size_t)len));
  if (!buf) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of scratch memory for top_k");
  const char *src = in[0].data;
  char *vals = out[0].data;
  for (int64_t r = 0; r < st->rows; r++) {
    int64_t base = r * len;
    if (small) {
      int64_t cnt = 0;
      for (int64_t i = 0; i < len; i++) {
        int64_t key = hs_mv_total_key(t, src, base + i);
        if (cnt == k && key <= buf[k - 1].key) continue;
        int64_t p = cnt < k ? cnt++ : k - 1;
        while (p > 0 && buf[p - 1].key < key) {
          buf[p] = buf[p - 1];
          p--;
        }
        buf[p].key = key;
        buf[p].idx = i;
      }
    } else {
      for (int64_t i = 0; i < len; i++) {
        buf[i].key = hs_mv_total_key(t, src, base + i);
        buf[i].idx = i;
      }
      msort_kv(buf, buf + len, len, true);
    }
    for (int64_t j = 0; j < k; j++) {
      memcpy(vals + (r * k + j) * (int64_t)es, src + (base + buf[j].idx) * (int64_t)es, es);
      hs_store_i64(out[1].dtype, out[1].data, r * k + j, buf[j].idx);
    }
  }
  return NULL;
}
