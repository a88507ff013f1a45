/*
 * linalg.c - stablehlo.dot_general (and the legacy stablehlo.dot), the
 * packing helpers of la_common.h, and the table of the linear-algebra kernels
 * (convolution: la_conv.c; rng, triangular_solve, cholesky: la_misc.c).
 *
 * dot_general is a batched matrix product once its dims are grouped: batch
 * dims B, the lhs's free dims M, the rhs's free dims N and the contracting
 * dims K (the result is [B..., M..., N...] row-major by definition).  prepare()
 * records each group's sizes and the operands' strides for it.
 *
 * Reference path: gather lhs into dense [B, M, K] and rhs into [B, N, K] in
 * the accumulation type, then a plain dot product per result element, then
 * convert.  Any dtype mix, any dimension numbers.
 *
 * Fast path (f32 accumulation: f16, bf16 and f32 results): when each group of
 * an operand collapses to a single stride, the operand is used in place as a
 * strided [B, rows, cols] matrix (transposes cost nothing); otherwise it is
 * gathered densely first.  The product runs in oneDNN's matmul (primitive made
 * once in prepare(), in a process-wide cache) or in our SGEMM for small
 * products and for what oneDNN refuses.
 */
#include <string.h>

#include "runtime/kernels/la_common.h"

/* ================================================================ helpers */

static bool force_reference;
void hs_la_force_reference(bool on) { force_reference = on; }
bool hs_la_reference_forced(void) { return force_reference; }

hs_la_acc hs_la_acc_for(hs_dtype lt, hs_dtype rt, hs_dtype res) {
  if (!hs_dtype_is_float(res)) return HS_LA_ACC_INT;
  if (res == HS_F64 || lt == HS_F64 || rt == HS_F64) return HS_LA_ACC_F64;
  return HS_LA_ACC_F32;
}

size_t hs_la_acc_size(hs_la_acc acc) { return acc == HS_LA_ACC_F32 ? 4 : 8; }

/* One run of n elements at stride s from src (dtype dt) to dense dst. */
#define PACK_RUN(ACCT, CONV)                                                   \
  do {                                                                         \
    ACCT *o = dst;                                                             \
    switch (dt) {                                                              \
      case HS_PRED:                                                            \
      case HS_U8: for (i = 0; i < n; i++) o[i] = CONV(((const uint8_t *)src)[i * s]); break; \
      case HS_I8: for (i = 0; i < n; i++) o[i] = CONV(((const int8_t *)src)[i * s]); break; \
      case HS_I16: for (i = 0; i < n; i++) o[i] = CONV(((const int16_t *)src)[i * s]); break; \
      case HS_U16: for (i = 0; i < n; i++) o[i] = CONV(((const uint16_t *)src)[i * s]); break; \
      case HS_I32: for (i = 0; i < n; i++) o[i] = CONV(((const int32_t *)src)[i * s]); break; \
      case HS_U32: for (i = 0; i < n; i++) o[i] = CONV(((const uint32_t *)src)[i * s]); break; \
      case HS_I64: for (i = 0; i < n; i++) o[i] = CONV(((const int64_t *)src)[i * s]); break; \
      case HS_U64: for (i = 0; i < n; i++) o[i] = CONV(((const uint64_t *)src)[i * s]); break; \
      case HS_F16:                                                             \
        for (i = 0; i < n; i++) o[i] = CONV(hs_f16_to_f32(((const uint16_t *)src)[i * s])); \
        break;                                                                 \
      case HS_BF16:                                                            \
        for (i = 0; i < n; i++) o[i] = CONV(hs_bf16_to_f32(((const uint16_t *)src)[i * s])); \
        break;                                                                 \
      case HS_F32: for (i = 0; i < n; i++) o[i] = CONV(((const float *)src)[i * s]); break; \
      case HS_F64: for (i = 0; i < n; i++) o[i] = CONV(((const double *)src)[i * s]); break; \
      default: for (i = 0; i < n; i++) o[i] = 0; break;                        \
    }                                                                          \
  } while (0)

#define CONV_F32(x) ((float)(x))
#define CONV_F64(x) ((double)(x))
/* Integers are exact through int64 (uint64 wraps the same).  Never reached
 * for float sources: pack_run converts those separately (saturating). */
#define CONV_INT(x) ((uint64_t)(int64_t)(x))

static void pack_run(hs_la_acc acc, hs_dtype dt, const void *src, int64_t n, int64_t s, void *dst) {
  int64_t i;
  if (acc == HS_LA_ACC_F32) {
    PACK_RUN(float, CONV_F32);
  } else if (acc == HS_LA_ACC_F64) {
    PACK_RUN(double, CONV_F64);
  } else if (hs_dtype_is_float(dt)) {
    uint64_t *o = dst;
    for (i = 0; i < n; i++) {
      double v = hs_load_f64(dt, src, i * s);
      int64_t t = v != v ? 0 : v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
      o[i] = (uint64_t)t;
    }
  } else if (dt == HS_U64) {
    uint64_t *o = dst;
    for (i = 0; i < n; i++) o[i] = ((const uint64_t *)src)[i * s];
  } else {
    PACK_RUN(uint64_t, CONV_INT);
  }
}

void hs_la_pack(hs_la_acc acc, hs_dtype dt, const void *src, int rank, const int64_t *dims,
                const int64_t *strides, void *dst) {
  size_t es = hs_dtype_size(dt), as = hs_la_acc_size(acc);
  int64_t total = 1;
  for (int d = 0; d < rank; d++) total *= dims[d];
  if (total == 0) return;
  if (rank == 0) {
    pack_run(acc, dt, src, 1, 1, dst);
    return;
  }
  int64_t idx[HS_MAX_RANK] = {0};
  int64_t inner = dims[rank - 1], istride = strides[rank - 1];
  int64_t off = 0;
  unsigned char *o = dst;
  for (;;) {
    pack_run(acc, dt, (const unsigned char *)src + (size_t)off * es, inner, istride, o);
    o += (size_t)inner * as;
    int d = rank - 2;
    for (; d >= 0; d--) {
      off += strides[d];
      if (++idx[d] < dims[d]) break;
      off -= strides[d] * dims[d];
      idx[d] = 0;
    }
    if (d < 0) break;
  }
}

void hs_la_unpack(hs_la_acc acc, const void *src, int64_t n, hs_dtype dt, void *dst) {
  if (acc == HS_LA_ACC_INT) {
    const uint64_t *s = src;
    for (int64_t i = 0; i < n; i++) {
      if (dt == HS_PRED)
        ((uint8_t *)dst)[i] = s[i] != 0;
      else if (hs_dtype_is_float(dt))
        hs_store_f64(dt, dst, i, (double)(int64_t)s[i]);
      else
        switch (hs_dtype_size(dt)) {
          case 1: ((uint8_t *)dst)[i] = (uint8_t)s[i]; break;
          case 2: ((uint16_t *)dst)[i] = (uint16_t)s[i]; break;
          case 4: ((uint32_t *)dst)[i] = (uint32_t)s[i]; break;
          default: ((uint64_t *)dst)[i] = s[i]; break;
        }
    }
    return;
  }
  if (acc == HS_LA_ACC_F32) {
    const float *s = src;
    switch (dt) {
      case HS_F32: memcpy(dst, s, (size_t)n * 4); return;
      case HS_F16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = hs_f32_to_f16(s[i]); return;
      case HS_BF16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = hs_f32_to_bf16(s[i]); return;
      case HS_F64: for (int64_t i = 0; i < n; i++) ((double *)dst)[i] = s[i]; return;
      default: for (int64_t i = 0; i < n; i++) hs_store_f64(dt, dst, i, s[i]); return;
    }
  }
  const double *s = src;
  switch (dt) {
    case HS_F64: memcpy(dst, s, (size_t)n * 8); return;
    case HS_F32: for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = (float)s[i]; return;
    case HS_F16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = hs_f64_to_f16(s[i]); return;
    case HS_BF16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = hs_f64_to_bf16(s[i]); return;
    default: for (int64_t i = 0; i < n; i++) hs_store_f64(dt, dst, i, s[i]); return;
  }
}

/* ================================================================ dot_general */

typedef struct dot_group {
  int n;
  int64_t size[HS_MAX_RANK];
  int64_t ls[HS_MAX_RANK]; /* lhs strides (0 for groups the lhs lacks) */
  int64_t rs[HS_MAX_RANK]; /* rhs strides */
  int64_t total;
} dot_group;

enum { G_B, G_M, G_N, G_K };

typedef struct dot_state {
  dot_group g[4];
  hs_la_acc acc;
  bool fast;
  /* fast path: matrix views (batch, row, col strides) of lhs [B,M,K] and
   * rhs [B,K,N]; *_dense: the operand is gathered densely first. */
  bool lhs_dense, rhs_dense;
  int64_t lv[3], rv[3];
  const hs_la_dnnl_prim *dnnl;
} dot_state;

/* Collapses a group to one stride if its dims are nested contiguously. */
static bool collapse(const dot_group *g, const int64_t *strides, int64_t *out) {
  int64_t st = 0;
  int64_t inner_size = 1;
  bool have = false;
  for (int i = g->n - 1; i >= 0; i--) {
    if (g->size[i] == 1) continue;
    if (!have) {
      st = strides[i];
      inner_size = g->size[i];
      have = true;
      continue;
    }
    /* this dim must step over the whole inner block */
    if (strides[i] != st * inner_size) return false;
    inner_size *= g->size[i];
  }
  *out = have ? st : 0;
  return true;
}

static hs_status *dot_dims(const hs_op *op, const int64_t **lb, int *nlb, const int64_t **rb, int *nrb,
                           const int64_t **lc, int *nlc, const int64_t **rc, int *nrc) {
  static const int64_t one = 1, zero = 0;
  if (strcmp(op->name, "stablehlo.dot") == 0) {
    int lr = op->operands[0]->type.shape.rank;
    *nlb = *nrb = 0;
    *lb = *rb = NULL;
    *nlc = *nrc = 1;
    *lc = lr == 1 ? &zero : &one;
    *rc = &zero;
    return NULL;
  }
  const hs_attr *dn = hs_op_attr(op, "dot_dimension_numbers");
  if (!dn) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing dot_dimension_numbers");
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "lhs_batching_dimensions", false, lb, nlb));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "rhs_batching_dimensions", false, rb, nrb));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "lhs_contracting_dimensions", false, lc, nlc));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "rhs_contracting_dimensions", false, rc, nrc));
  return NULL;
}

static hs_status *dot_prepare(hs_op *op, hs_arena *arena) {
  if (op->n_operands != 2 || op->n_results != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected two operands and one result");
  const hs_type *lt, *rt, *ot;
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 0, &lt));
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 1, &rt));
  HS_RETURN_IF_ERROR(hs_op_tensor_result(op, 0, &ot));
  if (strcmp(op->name, "stablehlo.dot") == 0 &&
      (lt->shape.rank < 1 || lt->shape.rank > 2 || rt->shape.rank < 1 || rt->shape.rank > 2))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "stablehlo.dot takes rank-1 or rank-2 operands");
  const int64_t *lb, *rb, *lc, *rc;
  int nlb, nrb, nlc, nrc;
  HS_RETURN_IF_ERROR(dot_dims(op, &lb, &nlb, &rb, &nrb, &lc, &nlc, &rc, &nrc));
  if (nlb != nrb) return hs_op_error(op, HS_INVALID_ARGUMENT, "batching dimension lists differ in length");
  if (nlc != nrc)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "contracting dimension lists differ in length");
  const hs_shape *ls = &lt->shape, *rs = &rt->shape;
  bool lused[HS_MAX_RANK] = {false}, rused[HS_MAX_RANK] = {false};
  int64_t lst[HS_MAX_RANK], rst[HS_MAX_RANK];
  hs_shape_strides(ls, lst);
  hs_shape_strides(rs, rst);
  dot_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  for (int pass = 0; pass < 2; pass++) {
    const int64_t *l = pass ? lc : lb, *r = pass ? rc : rb;
    int n = pass ? nlc : nlb;
    dot_group *g = &st->g[pass ? G_K : G_B];
    for (int i = 0; i < n; i++) {
      if (l[i] < 0 || l[i] >= ls->rank || r[i] < 0 || r[i] >= rs->rank)
        return hs_op_error(op, HS_INVALID_ARGUMENT, "dimension number out of range");
      if (lused[l[i]] || rused[r[i]])
        return hs_op_error(op, HS_INVALID_ARGUMENT, "a dimension is listed twice");
      lused[l[i]] = rused[r[i]] = true;
      if (ls->dims[l[i]] != rs->dims[r[i]])
        return hs_op_error(op, HS_INVALID_ARGUMENT,
                           "%s dimension sizes differ: lhs dim %lld is %lld, rhs dim %lld is %lld",
                           pass ? "contracting" : "batching", (long long)l[i],
                           (long long)ls->dims[l[i]], (long long)r[i], (long long)rs->dims[r[i]]);
      g->size[g->n] = ls->dims[l[i]];
      g->ls[g->n] = lst[l[i]];
      g->rs[g->n] = rst[r[i]];
      g->n++;
    }
  }
  for (int d = 0; d < ls->rank; d++)
    if (!lused[d]) {
      dot_group *g = &st->g[G_M];
      g->size[g->n] = ls->dims[d];
      g->ls[g->n] = lst[d];
      g->rs[g->n] = 0;
      g->n++;
    }
  for (int d = 0; d < rs->rank; d++)
    if (!rused[d]) {
      dot_group *g = &st->g[G_N];
      g->size[g->n] = rs->dims[d];
      g->ls[g->n] = 0;
      g->rs[g->n] = rst[d];
      g->n++;
    }
  hs_shape want = {0};
  for (int k = G_B; k <= G_N; k++)
    for (int i = 0; i < st->g[k].n; i++) {
      if (want.rank >= HS_MAX_RANK) return hs_op_error(op, HS_INVALID_ARGUMENT, "result rank too large");
      want.dims[want.rank++] = st->g[k].size[i];
    }
  if (!hs_shape_equal(&want, &ot->shape)) {
    char a[64], b[64];
    return hs_op_error(op, HS_INVALID_ARGUMENT, "result has shape [%s], expected [%s]",
                       hs_shape_str(&ot->shape, a, sizeof a), hs_shape_str(&want, b, sizeof b));
  }
  for (int k = 0; k < 4; k++) {
    st->g[k].total = 1;
    for (int i = 0; i < st->g[k].n; i++) st->g[k].total *= st->g[k].size[i];
  }
  st->acc = hs_la_acc_for(lt->dtype, rt->dtype, ot->dtype);
  st->fast = st->acc == HS_LA_ACC_F32;
  if (st->fast) {
    int64_t B = st->g[G_B].total, M = st->g[G_M].total, N = st->g[G_N].total, K = st->g[G_K].total;
    int64_t sb = 0, sm = 0, sk = 0, tb = 0, tk = 0, tn = 0;
    st->lhs_dense = !(lt->dtype == HS_F32 && collapse(&st->g[G_B], st->g[G_B].ls, &sb) &&
                      collapse(&st->g[G_M], st->g[G_M].ls, &sm) &&
                      collapse(&st->g[G_K], st->g[G_K].ls, &sk));
    st->rhs_dense = !(rt->dtype == HS_F32 && collapse(&st->g[G_B], st->g[G_B].rs, &tb) &&
                      collapse(&st->g[G_K], st->g[G_K].rs, &tk) &&
                      collapse(&st->g[G_N], st->g[G_N].rs, &tn));
    if (st->lhs_dense) {
      st->lv[0] = M * K, st->lv[1] = K, st->lv[2] = 1;
    } else {
      st->lv[0] = sb, st->lv[1] = sm, st->lv[2] = sk;
    }
    if (st->rhs_dense) {
      st->rv[0] = K * N, st->rv[1] = N, st->rv[2] = 1;
    } else {
      st->rv[0] = tb, st->rv[1] = tk, st->rv[2] = tn;
    }
    if (B * M * N * K >= 32768 && M > 0 && N > 0 && K > 0)
      st->dnnl = hs_la_dnnl_matmul(B, M, N, K, st->lv, st->rv);
  }
  op->kernel_state = st;
  return NULL;
}

static hs_status *dot_reference(hs_exec_ctx *ctx, const hs_op *op, const dot_state *st,
                                const hs_tensor *in, hs_tensor *out) {
  int64_t B = st->g[G_B].total, M = st->g[G_M].total, N = st->g[G_N].total, K = st->g[G_K].total;
  size_t as = hs_la_acc_size(st->acc);
  int64_t dims[HS_MAX_RANK * 3], lsd[HS_MAX_RANK * 3], rsd[HS_MAX_RANK * 3];
  void *a = hs_exec_scratch(ctx, as * (size_t)(B * M * K + 1));
  void *b = hs_exec_scratch(ctx, as * (size_t)(B * N * K + 1));
  void *c = hs_exec_scratch(ctx, as * (size_t)(B * M * N + 1));
  if (!a || !b || !c) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  /* lhs as [B..., M..., K...], rhs as [B..., N..., K...] */
  int r = 0;
  static const int lorder[3] = {G_B, G_M, G_K}, rorder[3] = {G_B, G_N, G_K};
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < st->g[lorder[j]].n; i++) {
      dims[r] = st->g[lorder[j]].size[i];
      lsd[r++] = st->g[lorder[j]].ls[i];
    }
  hs_la_pack(st->acc, in[0].dtype, in[0].data, r, dims, lsd, a);
  r = 0;
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < st->g[rorder[j]].n; i++) {
      dims[r] = st->g[rorder[j]].size[i];
      rsd[r++] = st->g[rorder[j]].rs[i];
    }
  hs_la_pack(st->acc, in[1].dtype, in[1].data, r, dims, rsd, b);
  for (int64_t bi = 0; bi < B; bi++)
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        int64_t ai = (bi * M + m) * K, bj = (bi * N + n) * K, ci = (bi * M + m) * N + n;
        if (st->acc == HS_LA_ACC_F32) {
          const float *x = (const float *)a + ai, *y = (const float *)b + bj;
          float s = 0;
          for (int64_t k = 0; k < K; k++) s += x[k] * y[k];
          ((float *)c)[ci] = s;
        } else if (st->acc == HS_LA_ACC_F64) {
          const double *x = (const double *)a + ai, *y = (const double *)b + bj;
          double s = 0;
          for (int64_t k = 0; k < K; k++) s += x[k] * y[k];
          ((double *)c)[ci] = s;
        } else {
          const uint64_t *x = (const uint64_t *)a + ai, *y = (const uint64_t *)b + bj;
          uint64_t s = 0;
          for (int64_t k = 0; k < K; k++) s += x[k] * y[k];
          ((uint64_t *)c)[ci] = s;
        }
      }
  hs_la_unpack(st->acc, c, B * M * N, out->dtype, out->data);
  return NULL;
}

static hs_status *dot_fast(hs_exec_ctx *ctx, const hs_op *op, const dot_state *st,
                           const hs_tensor *in, hs_tensor *out) {
  int64_t B = st->g[G_B].total, M = st->g[G_M].total, N = st->g[G_N].total, K = st->g[G_K].total;
  const float *a = in[0].data, *b = in[1].data;
  float *c = out->data;
  if (st->lhs_dense) {
    int64_t dims[HS_MAX_RANK * 3], sd[HS_MAX_RANK * 3];
    int r = 0;
    static const int order[3] = {G_B, G_M, G_K};
    for (int j = 0; j < 3; j++)
      for (int i = 0; i < st->g[order[j]].n; i++) {
        dims[r] = st->g[order[j]].size[i];
        sd[r++] = st->g[order[j]].ls[i];
      }
    float *p = hs_exec_scratch(ctx, sizeof(float) * (size_t)(B * M * K + 1));
    if (!p) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
    hs_la_pack(HS_LA_ACC_F32, in[0].dtype, in[0].data, r, dims, sd, p);
    a = p;
  }
  if (st->rhs_dense) {
    int64_t dims[HS_MAX_RANK * 3], sd[HS_MAX_RANK * 3];
    int r = 0;
    static const int order[3] = {G_B, G_K, G_N};
    for (int j = 0; j < 3; j++)
      for (int i = 0; i < st->g[order[j]].n; i++) {
        dims[r] = st->g[order[j]].size[i];
        sd[r++] = st->g[order[j]].rs[i];
      }
    float *p = hs_exec_scratch(ctx, sizeof(float) * (size_t)(B * K * N + 1));
    if (!p) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
    hs_la_pack(HS_LA_ACC_F32, in[1].dtype, in[1].data, r, dims, sd, p);
    b = p;
  }
  if (out->dtype != HS_F32) {
    c = hs_exec_scratch(ctx, sizeof(float) * (size_t)(B * M * N + 1));
    if (!c) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  }
  if (st->dnnl) hs_la_dnnl_use_threads(hs_exec_num_threads(ctx));
  if (!(st->dnnl && hs_la_dnnl_matmul_run(st->dnnl, a, b, c)))
    for (int64_t bi = 0; bi < B; bi++)
      hs_la_sgemm(ctx, M, N, K, a + bi * st->lv[0], st->lv[1], st->lv[2], b + bi * st->rv[0],
                  st->rv[1], st->rv[2], c + bi * M * N, N, 1, false);
  if (out->dtype != HS_F32) hs_la_unpack(HS_LA_ACC_F32, c, B * M * N, out->dtype, out->data);
  return NULL;
}

static hs_status *dot_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const dot_state *st = op->kernel_state;
  if (hs_tensor_numel(out) == 0) return NULL;
  if (st->fast && !force_reference) return dot_fast(ctx, op, st, in, out);
  return dot_reference(ctx, op, st, in, out);
}

const hs_kernel hs_kernels_linalg[] = {
    {"stablehlo.dot_general", dot_prepare, dot_run},
    {"stablehlo.dot", dot_prepare, dot_run},
    {"stablehlo.convolution", hs_la_conv_prepare, hs_la_conv_run, hs_la_conv_specialize},
    {"stablehlo.rng_bit_generator", hs_la_rng_prepare, hs_la_rng_run},
    {"stablehlo.triangular_solve", hs_la_trsm_prepare, hs_la_trsm_run},
    {"stablehlo.cholesky", hs_la_cholesky_prepare, hs_la_cholesky_run},
    {NULL, NULL, NULL},
};
