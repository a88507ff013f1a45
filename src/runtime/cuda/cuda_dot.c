/*
 * cuda_dot.c - stablehlo.dot_general (and stablehlo.dot) through cuBLAS.
 *
 * Taken: f32 operands and result, any batching and contracting dims.
 * Declined (host): other dtypes, and sizes or strides beyond cuBLAS's int.
 *
 * As in linalg.c, the dims group into batch B, the lhs's free dims M, the
 * rhs's free dims N and the contracting dims K; the result is [B..., M...,
 * N...] row-major by definition, so it is always a dense [B, M, N] row-major
 * matrix stack.  Each operand is viewed as [B, M, K] (lhs) or [B, K, N] (rhs)
 * with one element stride per group when its dims in the group nest
 * contiguously (as linalg.c's collapse()); the view is usable in place when
 * one of its row and column strides is 1 and the other (the leading
 * dimension) covers the inner extent: row-major or column-major, i.e. plain
 * or transposed for cuBLAS.  Otherwise the operand is permuted at run time
 * into a dense row-major [B, R, C] copy in the workspace
 * (hs_cuda_copy_strided), each copy 256-byte aligned.
 *
 * cuBLAS is column-major: the row-major product C = A x B is computed as the
 * column-major C^T = B^T x A^T (m = N, n = M, k = K, ldc = N), with the
 * operands' transposes chosen from their views.  One
 * cublasGemmStridedBatchedEx call, batch count B (1 included).  Math:
 * CUBLAS_COMPUTE_32F (plain f32, comparable with the CPU) unless
 * HS_CUDA_TF32=1 (CUBLAS_COMPUTE_32F_FAST_TF32).  K = 0 zero-fills the
 * result; an empty result does nothing.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_internal.h"
#include "runtime/cuda/cuda_launch.h"

#define WS_ALIGN 256

/* One group of dims of one operand: sizes and element strides. */
typedef struct grp {
  int n;
  int64_t size[HS_MAX_RANK], stride[HS_MAX_RANK];
} grp;

/* An operand as cuBLAS reads it: a stack of R x C matrices. */
typedef struct mat {
  bool col;           /* element (r, c) at c * ld + r; else at r * ld + c */
  int64_t ld, batch;  /* leading dimension, batch stride (elements) */
  bool copy;          /* permuted into the workspace first (then row-major dense) */
  size_t ws_off;      /* the copy's offset in the workspace */
  int rank;           /* the copy: dims and strides of the source and the copy */
  int64_t dims[HS_MAX_RANK], src[HS_MAX_RANK], dst[HS_MAX_RANK];
} mat;

typedef struct dot_plan {
  int B, M, N, K;
  mat a, b;           /* lhs [B, M, K], rhs [B, K, N] */
  cublasComputeType_t compute;
} dot_plan;

static bool ok(hs_status *st) {
  bool good = st == NULL;
  hs_status_free(st);
  return good;
}

static void push(grp *g, int64_t size, int64_t stride) {
  g->size[g->n] = size;
  g->stride[g->n++] = stride;
}

static int64_t total(const grp *g) {
  int64_t t = 1;
  for (int i = 0; i < g->n; i++) t *= g->size[i];
  return t;
}

/* One stride for the whole group when its dims nest contiguously (unit dims
 * ignored; 0 for a group of one element). */
static bool collapse(const grp *g, int64_t *out) {
  int64_t st = 0, inner = 0; /* the innermost non-unit dim's stride; elements spanned */
  for (int i = g->n - 1; i >= 0; i--) {
    if (g->size[i] == 1) continue;
    if (inner == 0) {
      st = g->stride[i];
      inner = g->size[i];
      continue;
    }
    if (g->stride[i] != st * inner) return false;
    inner *= g->size[i];
  }
  *out = st;
  return true;
}

/* The operand of groups (gb, gr, gc), an R x C matrix stack, as m: in place
 * when cuBLAS can read it so, else as a permuted copy.  Returns the copy's
 * bytes (0 in place). */
static size_t as_matrix(const grp *gb, const grp *gr, const grp *gc, int64_t R, int64_t C, mat *m) {
  int64_t sb, sr, sc;
  memset(m, 0, sizeof *m);
  if (collapse(gb, &sb) && collapse(gr, &sr) && collapse(gc, &sc)) {
    m->batch = total(gb) > 1 ? sb : 0;
    if ((C <= 1 || sc == 1) && (R <= 1 || sr >= C)) {
      m->ld = R <= 1 ? C : sr;
    } else if ((R <= 1 || sr == 1) && (C <= 1 || sc >= R)) {
      m->col = true;
      m->ld = C <= 1 ? R : sc;
    } else {
      m->ld = -1;
    }
    if (m->ld >= 0) {
      if (m->ld < 1) m->ld = 1;
      return 0;
    }
  }
  /* a row-major [B..., R..., C...] copy; unit dims dropped */
  const grp *gs[3] = {gb, gr, gc};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < gs[k]->n; i++)
      if (gs[k]->size[i] != 1) {
        m->dims[m->rank] = gs[k]->size[i];
        m->src[m->rank++] = gs[k]->stride[i];
      }
  int64_t st = 1;
  for (int i = m->rank - 1; i >= 0; i--) {
    m->dst[i] = st;
    st *= m->dims[i];
  }
  if (m->rank == 0) m->dims[0] = 1, m->src[0] = m->dst[0] = 1, m->rank = 1;
  m->copy = true;
  m->col = false;
  m->ld = C < 1 ? 1 : C;
  m->batch = R * C;
  return (size_t)total(gb) * (size_t)(R * C) * sizeof(float);
}

/* Groups per linalg.c's dot_prepare (which validated the numbers). */
static bool groups(const hs_op *op, grp g[6]) {
  static const int64_t zero = 0, one = 1;
  const hs_shape *ls = &op->operands[0]->type.shape, *rs = &op->operands[1]->type.shape;
  const int64_t *lb = NULL, *rb = NULL, *lc = NULL, *rc = NULL;
  int nlb = 0, nrb = 0, nlc = 0, nrc = 0;
  if (strcmp(op->name, "stablehlo.dot") == 0) {
    nlc = nrc = 1;
    lc = ls->rank == 1 ? &zero : &one;
    rc = &zero;
  } else {
    const hs_attr *dn = hs_op_attr(op, "dot_dimension_numbers");
    if (!dn || !ok(hs_struct_get_ints(op, dn, "lhs_batching_dimensions", false, &lb, &nlb)) ||
        !ok(hs_struct_get_ints(op, dn, "rhs_batching_dimensions", false, &rb, &nrb)) ||
        !ok(hs_struct_get_ints(op, dn, "lhs_contracting_dimensions", false, &lc, &nlc)) ||
        !ok(hs_struct_get_ints(op, dn, "rhs_contracting_dimensions", false, &rc, &nrc)))
      return false;
  }
  if (nlb != nrb || nlc != nrc) return false;
  /* g: 0 lhs batch, 1 lhs free (M), 2 lhs contracting, 3 rhs batch,
   * 4 rhs contracting, 5 rhs free (N) */
  int64_t lst[HS_MAX_RANK], rst[HS_MAX_RANK];
  bool lused[HS_MAX_RANK] = {false}, rused[HS_MAX_RANK] = {false};
  hs_shape_strides(ls, lst);
  hs_shape_strides(rs, rst);
  memset(g, 0, 6 * sizeof(grp));
  for (int i = 0; i < nlb + nlc; i++) {
    bool batch = i < nlb;
    int64_t l = batch ? lb[i] : lc[i - nlb], r = batch ? rb[i] : rc[i - nlb];
    if (l < 0 || l >= ls->rank || r < 0 || r >= rs->rank || lused[l] || rused[r]) return false;
    lused[l] = rused[r] = true;
    push(&g[batch ? 0 : 2], ls->dims[l], lst[l]);
    push(&g[batch ? 3 : 4], rs->dims[r], rst[r]);
  }
  for (int d = 0; d < ls->rank; d++)
    if (!lused[d]) push(&g[1], ls->dims[d], lst[d]);
  for (int d = 0; d < rs->rank; d++)
    if (!rused[d]) push(&g[5], rs->dims[d], rst[d]);
  return true;
}

static size_t align_ws(size_t n) { return (n + WS_ALIGN - 1) & ~(size_t)(WS_ALIGN - 1); }

static hs_status *copy_in(cudaStream_t s, const mat *m, char *ws, const void *src, const void **use) {
  if (!m->copy) {
    *use = src;
    return NULL;
  }
  *use = ws + m->ws_off;
  return hs_cuda_copy_strided(s, ws + m->ws_off, src, 4, m->rank, m->dims, m->src, m->dst);
}

static hs_status *dot_run(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  static const float one = 1.0f, zero = 0.0f;
  const dot_plan *p = d->state;
  if (p->K == 0)
    return hs_cuda_error(cudaMemsetAsync(out[0], 0, sizeof(float) * (size_t)p->B * (size_t)p->M * (size_t)p->N,
                                         x->stream),
                         "zeroing an empty product");
  const void *a, *b;
  HS_RETURN_IF_ERROR(copy_in(x->stream, &p->a, x->ws, in[0], &a));
  HS_RETURN_IF_ERROR(copy_in(x->stream, &p->b, x->ws, in[1], &b));
  /* x->blas is bound to x->stream (and its graph-capture workspace) once, by
   * cuda_exec.c: cublasSetStream here would reset that workspace. */
  /* column-major C^T [N x M] = op(rhs) [N x K] * op(lhs) [K x M]: a row-major
   * operand is its own transpose read column-major */
  cublasOperation_t ta = p->b.col ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t tb = p->a.col ? CUBLAS_OP_T : CUBLAS_OP_N;
  return hs_cublas_error(
      cublasGemmStridedBatchedEx(x->blas, ta, tb, p->N, p->M, p->K, &one, b, CUDA_R_32F, (int)p->b.ld,
                                 p->b.batch, a, CUDA_R_32F, (int)p->a.ld, p->a.batch, &zero, out[0],
                                 CUDA_R_32F, p->N, (long long)p->M * p->N, p->B, p->compute,
                                 CUBLAS_GEMM_DEFAULT),
      "batched matrix product");
}

static hs_status *dot_empty(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  return NULL; /* the result has no elements */
}

hs_status *hs_cuda_build_dot(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  d->run = NULL;
  if (op->n_operands != 2 || op->n_results != 1 || !b->blas || hs_cuda_emulating()) return NULL;
  const hs_type *lt = &op->operands[0]->type, *rt = &op->operands[1]->type, *ot = &op->results[0]->type;
  if (lt->kind != HS_TYPE_TENSOR || rt->kind != HS_TYPE_TENSOR || ot->kind != HS_TYPE_TENSOR ||
      lt->dtype != HS_F32 || rt->dtype != HS_F32 || ot->dtype != HS_F32)
    return NULL;
  grp g[6];
  if (!groups(op, g)) return NULL;
  int64_t B = total(&g[0]), M = total(&g[1]), K = total(&g[2]), N = total(&g[5]);
  if (B * M * N == 0) {
    d->run = dot_empty;
    return NULL;
  }
  if (B > INT_MAX || M > INT_MAX || N > INT_MAX || K > INT_MAX) return NULL;
  dot_plan p;
  memset(&p, 0, sizeof p);
  p.B = (int)B, p.M = (int)M, p.N = (int)N, p.K = (int)K;
  size_t ws = 0;
  if (K > 0) {
    size_t na = as_matrix(&g[0], &g[1], &g[2], M, K, &p.a);
    size_t nb = as_matrix(&g[3], &g[4], &g[5], K, N, &p.b);
    p.b.ws_off = align_ws(na);
    ws = na || nb ? align_ws(na) + align_ws(nb) : 0;
    if (p.a.ld > INT_MAX || p.b.ld > INT_MAX) return NULL;
  }
  const char *env = getenv("HS_CUDA_TF32");
  p.compute = env && strcmp(env, "1") == 0 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  dot_plan *keep = hs_arena_memdup(b->arena, &p, sizeof p);
  if (!keep) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  d->state = keep;
  d->workspace = ws;
  d->run = dot_run;
  return NULL;
}
