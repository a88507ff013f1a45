/*
 * la_gemm.c - our own single-precision GEMM, for when oneDNN is absent or
 * refuses a case, and for products too small to be worth oneDNN's setup.
 *
 * The classic blocked scheme (Goto / BLIS): B is packed per (KC x NC) block
 * into NR-wide column panels, A per (MC x KC) block into MR-high row panels,
 * both zero-padded, so the micro-kernel always sees dense, aligned panels and
 * operand strides (transposes) only matter to the packing loops.  The
 * micro-kernel computes an MR x NR tile into registers; the tile is then added
 * to (or stored into) C through C's strides.  There is an AVX2+FMA kernel
 * selected at run time and a portable one.  Row blocks of A (or, for short
 * and wide products, column panels of B) are split across the executor's
 * threads; each thread packs its own A block.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels/la_common.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LA_HAVE_X86 1
#endif

enum { MR = 6, NR = 16, KC = 256, MC = 96, NC = 2048 };

typedef void (*ukr_fn)(int64_t kc, const float *pa, const float *pb, float *tile);

static void ukr_generic(int64_t kc, const float *pa, const float *pb, float *tile) {
  float t[MR][NR];
  memset(t, 0, sizeof t);
  for (int64_t k = 0; k < kc; k++) {
    for (int r = 0; r < MR; r++) {
      float a = pa[r];
      for (int c = 0; c < NR; c++) t[r][c] += a * pb[c];
    }
    pa += MR;
    pb += NR;
  }
  memcpy(tile, t, sizeof t);
}

#ifdef LA_HAVE_X86
__attribute__((target("avx2,fma"))) static void ukr_avx2(int64_t kc, const float *pa,
                                                         const float *pb, float *tile) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
    __m256 a;
    a = _mm256_broadcast_ss(pa + 0);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(pa + 1);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(pa + 2);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(pa + 3);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(pa + 4);
    c40 = _mm256_fmadd_ps(a, b0, c40);
    c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(pa + 5);
    c50 = _mm256_fmadd_ps(a, b0, c50);
    c51 = _mm256_fmadd_ps(a, b1, c51);
    pa += MR;
    pb += NR;
  }
  _mm256_storeu_ps(tile + 0, c00);
  _mm256_storeu_ps(tile + 8, c01);
  _mm256_storeu_ps(tile + 16, c10);
  _mm256_storeu_ps(tile + 24, c11);
  _mm256_storeu_ps(tile + 32, c20);
  _mm256_storeu_ps(tile + 40, c21);
  _mm256_storeu_ps(tile + 48, c30);
  _mm256_storeu_ps(tile + 56, c31);
  _mm256_storeu_ps(tile + 64, c40);
  _mm256_storeu_ps(tile + 72, c41);
  _mm256_storeu_ps(tile + 80, c50);
  _mm256_storeu_ps(tile + 88, c51);
}
#endif

static ukr_fn pick_ukr(void) {
#ifdef LA_HAVE_X86
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ukr_avx2;
#endif
  return ukr_generic;
}

/* A[i0.., k0..] block (mc x kc) into MR panels: pa[p][k][r]. */
static void pack_a(const float *A, int64_t ars, int64_t acs, int64_t i0, int64_t mc, int64_t k0,
                   int64_t kc, float *pa) {
  for (int64_t p = 0; p < mc; p += MR) {
    int64_t rows = mc - p < MR ? mc - p : MR;
    for (int64_t k = 0; k < kc; k++) {
      const float *col = A + (k0 + k) * acs + (i0 + p) * ars;
      int r = 0;
      for (; r < rows; r++) pa[r] = col[r * ars];
      for (; r < MR; r++) pa[r] = 0;
      pa += MR;
    }
  }
}

/* B[k0.., j0..] block (kc x nc) into NR panels: pb[q][k][c]. */
static void pack_b(const float *B, int64_t brs, int64_t bcs, int64_t k0, int64_t kc, int64_t j0,
                   int64_t nc, float *pb) {
  for (int64_t q = 0; q < nc; q += NR) {
    int64_t cols = nc - q < NR ? nc - q : NR;
    for (int64_t k = 0; k < kc; k++) {
      const float *row = B + (k0 + k) * brs + (j0 + q) * bcs;
      int c = 0;
      if (bcs == 1)
        for (; c < cols; c++) pb[c] = row[c];
      else
        for (; c < cols; c++) pb[c] = row[c * bcs];
      for (; c < NR; c++) pb[c] = 0;
      pb += NR;
    }
  }
}

typedef struct gemm_job {
  int64_t M, kc, nc, j0, k0;
  const float *A;
  int64_t ars, acs;
  const float *pb;        /* packed B block */
  const float *pa;        /* packed A block shared by all tasks (column split), or NULL */
  float *C;
  int64_t crs, ccs;
  bool overwrite;         /* first K block and not accumulating */
  bool split_rows;        /* tasks are MC row blocks; else NR column panels */
  int64_t n_tasks;
  ukr_fn ukr;
} gemm_job;

static void store_tile(const gemm_job *j, const float *tile, int64_t i, int64_t jj, int64_t mr,
                       int64_t nr) {
  for (int64_t r = 0; r < mr; r++) {
    float *c = j->C + (i + r) * j->crs + jj * j->ccs;
    const float *t = tile + r * NR;
    if (j->overwrite) {
      if (j->ccs == 1)
        memcpy(c, t, sizeof(float) * (size_t)nr);
      else
        for (int64_t q = 0; q < nr; q++) c[q * j->ccs] = t[q];
    } else {
      for (int64_t q = 0; q < nr; q++) c[q * j->ccs] += t[q];
    }
  }
}

static void gemm_task(void *arg, int64_t begin, int64_t end) {
  const gemm_job *j = arg;
  float *own = j->pa ? NULL : malloc(sizeof(float) * MC * KC);
  float *pa = j->pa ? (float *)j->pa : own;
  if (!pa) return; /* cannot happen in practice; result stays partial */
  float tile[MR * NR];
  int64_t n_panels = (j->nc + NR - 1) / NR;
  for (int64_t t = begin; t < end; t++) {
    int64_t i_lo, i_hi, q_lo, q_hi;
    if (j->split_rows) {
      i_lo = t * MC;
      i_hi = i_lo + MC < j->M ? i_lo + MC : j->M;
      q_lo = 0;
      q_hi = n_panels;
    } else {
      i_lo = 0;
      i_hi = j->M;
      q_lo = n_panels * t / j->n_tasks;
      q_hi = n_panels * (t + 1) / j->n_tasks;
    }
    for (int64_t ic = i_lo; ic < i_hi; ic += MC) {
      int64_t mc = i_hi - ic < MC ? i_hi - ic : MC;
      if (!j->pa) pack_a(j->A, j->ars, j->acs, ic, mc, j->k0, j->kc, pa);
      for (int64_t q = q_lo; q < q_hi; q++) {
        int64_t jj = q * NR;
        int64_t nr = j->nc - jj < NR ? j->nc - jj : NR;
        const float *pbq = j->pb + q * NR * j->kc;
        for (int64_t p = 0; p < mc; p += MR) {
          int64_t mr = mc - p < MR ? mc - p : MR;
          j->ukr(j->kc, pa + p * j->kc, pbq, tile);
          store_tile(j, tile, ic + p, j->j0 + jj, mr, nr);
        }
      }
    }
  }
  free(own);
}

void hs_la_sgemm(hs_exec_ctx *ctx, int64_t M, int64_t N, int64_t K, const float *A, int64_t ars,
                 int64_t acs, const float *B, int64_t brs, int64_t bcs, float *C, int64_t crs,
                 int64_t ccs, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * crs + j * ccs] = 0;
    return;
  }
  ukr_fn ukr = pick_ukr(); /* two cached CPUID bits: cheap enough per call */
  float *pb = malloc(sizeof(float) * KC * (size_t)((NC + NR - 1) / NR * NR));
  float *pa = M <= MC ? malloc(sizeof(float) * MC * KC) : NULL;
  if (!pb || (M <= MC && !pa)) {
    free(pb);
    free(pa);
    return;
  }
  for (int64_t jc = 0; jc < N; jc += NC) {
    int64_t nc = N - jc < NC ? N - jc : NC;
    for (int64_t pc = 0; pc < K; pc += KC) {
      int64_t kc = K - pc < KC ? K - pc : KC;
      pack_b(B, brs, bcs, pc, kc, jc, nc, pb);
      /* a single row block (M <= MC) is packed once here for all tasks */
      if (pa) pack_a(A, ars, acs, 0, M, pc, kc, pa);
      gemm_job j = {M, kc, nc, jc, pc, A, ars, acs, pb, pa, C, crs, ccs, !accumulate && pc == 0,
                    M > MC, 0, ukr};
      int64_t n_panels = (nc + NR - 1) / NR;
      j.n_tasks = j.split_rows ? (M + MC - 1) / MC : (n_panels < 8 ? n_panels : 8);
      int64_t flops = 2 * M * nc * kc;
      if (flops < (1 << 21) || !ctx)
        gemm_task(&j, 0, j.n_tasks);
      else
        hs_exec_parallel_for(ctx, j.n_tasks, 1, gemm_task, &j);
    }
  }
  free(pb);
  free(pa);
}
