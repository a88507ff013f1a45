/*
 * test_linalg.c - dot_general, convolution, rng_bit_generator,
 * triangular_solve and cholesky (kernels/linalg.c, kernels/la_*.c), driven
 * through the public runtime API with generated MLIR programs.
 *
 * The reference paths are checked against naive C written here from the
 * spec's definitions; the fast paths (oneDNN, our SGEMM / im2col) are then
 * checked against the reference paths on random shapes and dimension numbers
 * (hs_la_force_reference switches the fast paths off; HS_NO_DNNL keeps
 * oneDNN out of programs compiled while it is set).  The ResNet-like 3x3
 * convolution is timed both ways and printed (not asserted: CI machines vary).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hloserve/runtime.h"
#include "runtime/kernels/la_common.h"
#include "testlib.h"

/* ------------------------------------------------------------ helpers */

static unsigned long long rng_state = 88172645463325252ULL;
static unsigned rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state >> 11);
}
static int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (unsigned)(hi - lo + 1)); }
static float rnd_f(void) { return (float)((int)(rnd() % 2001) - 1000) / 500.0f; }

static char *type_str(char *buf, const int64_t *dims, int rank, const char *et) {
  int off = sprintf(buf, "tensor<");
  for (int i = 0; i < rank; i++) off += sprintf(buf + off, "%lldx", (long long)dims[i]);
  sprintf(buf + off, "%s>", et);
  return buf;
}

static int64_t numel(const int64_t *dims, int rank) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  return n;
}

static char *ints_str(char *buf, const int64_t *v, int n) {
  int off = sprintf(buf, "[");
  for (int i = 0; i < n; i++) off += sprintf(buf + off, i ? ", %lld" : "%lld", (long long)v[i]);
  sprintf(buf + off, "]");
  return buf;
}

static hs_tensor make_f32(const int64_t *dims, int rank) {
  hs_tensor t;
  t.dtype = HS_F32;
  t.shape.rank = rank;
  for (int i = 0; i < rank; i++) t.shape.dims[i] = dims[i];
  int64_t n = numel(dims, rank);
  t.data = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) ((float *)t.data)[i] = rnd_f();
  return t;
}

/* max |a-b| / max(1, |b|) over n floats */
static double rel_err(const float *a, const float *b, int64_t n) {
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
    if (!(d <= worst)) worst = d; /* NaN counts as worst */
  }
  return worst;
}

static void unravel(int64_t flat, const int64_t *dims, int rank, int64_t *idx) {
  for (int d = rank - 1; d >= 0; d--) {
    idx[d] = flat % dims[d];
    flat /= dims[d];
  }
}

static int64_t ravel(const int64_t *idx, const int64_t *dims, int rank) {
  int64_t f = 0;
  for (int d = 0; d < rank; d++) f = f * dims[d] + idx[d];
  return f;
}

/* ------------------------------------------------------------ dot_general */

typedef struct dot_case {
  int lr, rr;
  int64_t ld[6], rd[6];
  int nb, nc;
  int64_t lb[3], rb[3], lc[3], rc[3];
  int orank;
  int64_t od[8];
} dot_case;

static void random_dot(dot_case *c) {
  memset(c, 0, sizeof *c);
  c->nb = rnd_in(0, 2);
  c->nc = rnd_in(0, 2);
  int lf = rnd_in(0, 2), rf = rnd_in(0, 2);
  c->lr = c->nb + c->nc + lf;
  c->rr = c->nb + c->nc + rf;
  /* random permutations of roles */
  int lrole[6], rrole[6]; /* 0 batch i, 1 contract i, 2 free */
  int lidx[6], ridx[6];
  int k = 0;
  for (int i = 0; i < c->nb; i++) lrole[k] = 0, lidx[k++] = i;
  for (int i = 0; i < c->nc; i++) lrole[k] = 1, lidx[k++] = i;
  for (int i = 0; i < lf; i++) lrole[k] = 2, lidx[k++] = i;
  k = 0;
  for (int i = 0; i < c->nb; i++) rrole[k] = 0, ridx[k++] = i;
  for (int i = 0; i < c->nc; i++) rrole[k] = 1, ridx[k++] = i;
  for (int i = 0; i < rf; i++) rrole[k] = 2, ridx[k++] = i;
  for (int i = c->lr - 1; i > 0; i--) {
    int j = rnd_in(0, i), t = lrole[i], u = lidx[i];
    lrole[i] = lrole[j], lidx[i] = lidx[j], lrole[j] = t, lidx[j] = u;
  }
  for (int i = c->rr - 1; i > 0; i--) {
    int j = rnd_in(0, i), t = rrole[i], u = ridx[i];
    rrole[i] = rrole[j], ridx[i] = ridx[j], rrole[j] = t, ridx[j] = u;
  }
  int64_t bsz[3], csz[3];
  for (int i = 0; i < 3; i++) bsz[i] = rnd_in(1, 3), csz[i] = rnd_in(1, 9);
  for (int d = 0; d < c->lr; d++) {
    if (lrole[d] == 0) c->lb[lidx[d]] = d, c->ld[d] = bsz[lidx[d]];
    if (lrole[d] == 1) c->lc[lidx[d]] = d, c->ld[d] = csz[lidx[d]];
    if (lrole[d] == 2) c->ld[d] = rnd_in(1, 7);
  }
  for (int d = 0; d < c->rr; d++) {
    if (rrole[d] == 0) c->rb[ridx[d]] = d, c->rd[d] = bsz[ridx[d]];
    if (rrole[d] == 1) c->rc[ridx[d]] = d, c->rd[d] = csz[ridx[d]];
    if (rrole[d] == 2) c->rd[d] = rnd_in(1, 7);
  }
  c->orank = 0;
  for (int i = 0; i < c->nb; i++) c->od[c->orank++] = bsz[i];
  for (int d = 0; d < c->lr; d++)
    if (lrole[d] == 2) c->od[c->orank++] = c->ld[d];
  for (int d = 0; d < c->rr; d++)
    if (rrole[d] == 2) c->od[c->orank++] = c->rd[d];
}

static void dot_text(const dot_case *c, const char *lt, const char *rt, const char *ot, char *text) {
  char a[128], b[128], o[128], s1[64], s2[64], s3[64], s4[64];
  type_str(a, c->ld, c->lr, lt);
  type_str(b, c->rd, c->rr, rt);
  type_str(o, c->od, c->orank, ot);
  sprintf(text,
          "func.func @main(%%a: %s, %%b: %s) -> %s {\n"
          "  %%0 = \"stablehlo.dot_general\"(%%a, %%b) {dot_dimension_numbers = "
          "#stablehlo.dot<lhs_batching_dimensions = %s, rhs_batching_dimensions = %s, "
          "lhs_contracting_dimensions = %s, rhs_contracting_dimensions = %s>} : (%s, %s) -> %s\n"
          "  return %%0 : %s\n}\n",
          a, b, o, ints_str(s1, c->lb, c->nb), ints_str(s2, c->rb, c->nb), ints_str(s3, c->lc, c->nc),
          ints_str(s4, c->rc, c->nc), a, b, o, o);
}

/* Naive dot_general in double straight from the definition. */
static void dot_naive(const dot_case *c, const float *a, const float *b, double *out) {
  int64_t n_out = numel(c->od, c->orank);
  int64_t nk = 1;
  for (int i = 0; i < c->nc; i++) nk *= c->ld[c->lc[i]];
  for (int64_t o = 0; o < n_out; o++) {
    int64_t oi[8];
    unravel(o, c->od, c->orank, oi);
    int64_t li[6] = {0}, ri[6] = {0};
    int p = 0;
    for (int i = 0; i < c->nb; i++, p++) li[c->lb[i]] = ri[c->rb[i]] = oi[p];
    for (int d = 0; d < c->lr; d++) {
      bool used = false;
      for (int i = 0; i < c->nb; i++) used |= c->lb[i] == d;
      for (int i = 0; i < c->nc; i++) used |= c->lc[i] == d;
      if (!used) li[d] = oi[p++];
    }
    for (int d = 0; d < c->rr; d++) {
      bool used = false;
      for (int i = 0; i < c->nb; i++) used |= c->rb[i] == d;
      for (int i = 0; i < c->nc; i++) used |= c->rc[i] == d;
      if (!used) ri[d] = oi[p++];
    }
    double s = 0;
    for (int64_t k = 0; k < nk; k++) {
      int64_t rem = k;
      for (int i = c->nc - 1; i >= 0; i--) {
        int64_t sz = c->ld[c->lc[i]];
        li[c->lc[i]] = ri[c->rc[i]] = rem % sz;
        rem /= sz;
      }
      s += (double)a[ravel(li, c->ld, c->lr)] * b[ravel(ri, c->rd, c->rr)];
    }
    out[o] = s;
  }
}

HS_TEST(dot_general_random_f32) {
  static char text[4096];
  for (int iter = 0; iter < 60; iter++) {
    dot_case c;
    random_dot(&c);
    dot_text(&c, "f32", "f32", "f32", text);
    hs_tensor in[2] = {make_f32(c.ld, c.lr), make_f32(c.rd, c.rr)};
    int64_t n = numel(c.od, c.orank);
    double *want = malloc(sizeof(double) * (size_t)n);
    dot_naive(&c, in[0].data, in[1].data, want);
    hs_tensor fast, ref;
    CHECK_OK(hs_test_run(text, 2, in, 2, &fast, 1));
    hs_la_force_reference(true);
    hs_status *st = hs_test_run(text, 1, in, 2, &ref, 1);
    hs_la_force_reference(false);
    CHECK_OK(st);
    for (int64_t i = 0; i < n; i++) {
      float r = ((float *)ref.data)[i], f = ((float *)fast.data)[i];
      CHECK_MSG(fabs(r - want[i]) <= 1e-4 * fmax(1.0, fabs(want[i])), "iter %d ref %g want %g\n%s",
                iter, r, want[i], text);
      CHECK_MSG(fabs(f - r) <= 1e-4 * fmax(1.0, fabs(r)), "iter %d fast %g ref %g\n%s", iter, f, r,
                text);
    }
    free(want);
    free(in[0].data);
    free(in[1].data);
    free(fast.data);
    free(ref.data);
  }
}

/* Larger products take oneDNN (when present) or the blocked SGEMM. */
HS_TEST(dot_general_large_fast_vs_reference) {
  static const char *text =
      "func.func @main(%a: tensor<3x70x130xf32>, %b: tensor<3x90x130xf32>) -> tensor<3x70x90xf32> {\n"
      "  %0 = stablehlo.dot_general %a, %b, batching_dims = [0] x [0], contracting_dims = [2] x [2]"
      " : (tensor<3x70x130xf32>, tensor<3x90x130xf32>) -> tensor<3x70x90xf32>\n"
      "  return %0 : tensor<3x70x90xf32>\n}\n";
  static const char *text_t =
      "func.func @main(%a: tensor<300x257xf32>, %b: tensor<129x300xf32>) -> tensor<257x129xf32> {\n"
      "  %0 = stablehlo.dot_general %a, %b, contracting_dims = [0] x [1]"
      " : (tensor<300x257xf32>, tensor<129x300xf32>) -> tensor<257x129xf32>\n"
      "  return %0 : tensor<257x129xf32>\n}\n";
  /* a classifier head: one row times a [K, N] weight (rows of size 1 once
   * made oneDNN choose its reference matmul) */
  static const char *text_fc =
      "func.func @main(%a: tensor<1x2048xf32>, %b: tensor<2048x1000xf32>) -> tensor<1x1000xf32> {\n"
      "  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0]"
      " : (tensor<1x2048xf32>, tensor<2048x1000xf32>) -> tensor<1x1000xf32>\n"
      "  return %0 : tensor<1x1000xf32>\n}\n";
  const char *texts[3] = {text, text_t, text_fc};
  int64_t shapes[3][2][3] = {
      {{3, 70, 130}, {3, 90, 130}}, {{300, 257, 0}, {129, 300, 0}}, {{1, 2048, 0}, {2048, 1000, 0}}};
  int ranks[3] = {3, 2, 2};
  for (int t = 0; t < 3; t++)
    for (int dn = 0; dn < 2; dn++) {
      if (dn) setenv("HS_NO_DNNL", "1", 1);
      hs_tensor in[2] = {make_f32(shapes[t][0], ranks[t]), make_f32(shapes[t][1], ranks[t])};
      hs_tensor fast, ref;
      hs_status *st = hs_test_run(texts[t], 2, in, 2, &fast, 1);
      unsetenv("HS_NO_DNNL");
      CHECK_OK(st);
      hs_la_force_reference(true);
      st = hs_test_run(texts[t], 1, in, 2, &ref, 1);
      hs_la_force_reference(false);
      CHECK_OK(st);
      double e = rel_err(fast.data, ref.data, hs_tensor_numel(&ref));
      CHECK_MSG(e <= 1e-4, "case %d dnnl-off %d: rel err %g", t, dn, e);
      free(in[0].data), free(in[1].data), free(fast.data), free(ref.data);
    }
}

HS_TEST(dot_general_int_wraps_and_mixed_types) {
  /* i8 x i8 -> i8 wraps: 100*3 + 100*1 = 400 = 144 mod 256 = -112 */
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %a = stablehlo.constant dense<[[100, 100], [-128, 1]]> : tensor<2x2xi8>\n"
      "  %b = stablehlo.constant dense<[[3, 0], [1, 2]]> : tensor<2x2xi8>\n"
      "  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<2x2xi8>, tensor<2x2xi8>) -> tensor<2x2xi8>\n"
      "  check.expect_eq_const %0, dense<[[-112, -56], [-127, 2]]> : tensor<2x2xi8>\n"
      "  %1 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<2x2xi8>, tensor<2x2xi8>) -> tensor<2x2xi32>\n"
      "  check.expect_eq_const %1, dense<[[400, 200], [-383, 2]]> : tensor<2x2xi32>\n"
      "  %u = stablehlo.constant dense<[[65535, 2]]> : tensor<1x2xui16>\n"
      "  %v = stablehlo.constant dense<[[2], [3]]> : tensor<2x1xui16>\n"
      "  %2 = stablehlo.dot_general %u, %v, contracting_dims = [1] x [0] : (tensor<1x2xui16>, tensor<2x1xui16>) -> tensor<1x1xui16>\n"
      "  check.expect_eq_const %2, dense<[[4]]> : tensor<1x1xui16>\n"
      "  %3 = stablehlo.dot %u, %v : (tensor<1x2xui16>, tensor<2x1xui16>) -> tensor<1x1xui16>\n"
      "  check.expect_eq_const %3, dense<[[4]]> : tensor<1x1xui16>\n"
      "  return\n}\n"));
}

HS_TEST(dot_general_half_types_round_once) {
  /* 1 + 2^-11 + 2^-11 in f32 then rounded once to f16 is 1 + 2^-10; a
   * per-step f16 accumulation would give 1 (ties to even twice). */
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %a = stablehlo.constant dense<[[1.0, 0.00048828125, 0.00048828125]]> : tensor<1x3xf16>\n"
      "  %b = stablehlo.constant dense<[[1.0], [1.0], [1.0]]> : tensor<3x1xf16>\n"
      "  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<1x3xf16>, tensor<3x1xf16>) -> tensor<1x1xf16>\n"
      "  check.expect_eq_const %0, dense<[[1.0009765625]]> : tensor<1x1xf16>\n"
      "  %c = stablehlo.constant dense<[[1.0, 0.00390625, 0.00390625]]> : tensor<1x3xbf16>\n"
      "  %d = stablehlo.constant dense<[[1.0], [1.0], [1.0]]> : tensor<3x1xbf16>\n"
      "  %1 = stablehlo.dot_general %c, %d, contracting_dims = [1] x [0] : (tensor<1x3xbf16>, tensor<3x1xbf16>) -> tensor<1x1xbf16>\n"
      "  check.expect_eq_const %1, dense<[[1.0078125]]> : tensor<1x1xbf16>\n"
      "  %2 = stablehlo.dot_general %c, %d, contracting_dims = [1] x [0] : (tensor<1x3xbf16>, tensor<3x1xbf16>) -> tensor<1x1xf32>\n"
      "  check.expect_eq_const %2, dense<[[1.0078125]]> : tensor<1x1xf32>\n"
      "  return\n}\n"));
}

HS_TEST(dot_general_bad_input_is_an_error) {
  CHECK_ERR(hs_test_compile("func.func @main(%a: tensor<2x3xf32>, %b: tensor<4x2xf32>) -> tensor<2x2xf32> {\n"
                         "  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : "
                         "(tensor<2x3xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>\n"
                         "  return %0 : tensor<2x2xf32>\n}\n"),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_test_compile("func.func @main(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) -> tensor<2x3xf32> {\n"
                         "  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : "
                         "(tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>\n"
                         "  return %0 : tensor<2x3xf32>\n}\n"),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_test_compile("func.func @main(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) -> tensor<2x2xf32> {\n"
                         "  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [3] : "
                         "(tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x2xf32>\n"
                         "  return %0 : tensor<2x2xf32>\n}\n"),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_test_compile("func.func @main(%a: tensor<2x3xcomplex<f32>>, %b: tensor<3x2xcomplex<f32>>) -> tensor<2x2xcomplex<f32>> {\n"
                         "  %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : "
                         "(tensor<2x3xcomplex<f32>>, tensor<3x2xcomplex<f32>>) -> tensor<2x2xcomplex<f32>>\n"
                         "  return %0 : tensor<2x2xcomplex<f32>>\n}\n"),
            HS_UNIMPLEMENTED);
}

/* ------------------------------------------------------------ convolution */

typedef struct conv_case {
  int nsp;
  bool nhwc, hwio;
  int64_t n, ci, co, g, bg;
  int64_t in[3], k[3], out[3], stride[3], pad_lo[3], pad_hi[3], ldil[3], rdil[3];
  bool rev[3];
  int64_t ld[5], rd[5], od[5];
} conv_case;

/* Fills in the derived fields; false if the output would be empty. */
static bool conv_finish(conv_case *c) {
  int r = c->nsp + 2;
  for (int i = 0; i < c->nsp; i++) {
    int64_t din = (c->in[i] - 1) * c->ldil[i] + 1;
    int64_t padded = c->pad_lo[i] + din + c->pad_hi[i];
    int64_t win = (c->k[i] - 1) * c->rdil[i] + 1;
    if (padded <= 0 || win > padded) return false;
    c->out[i] = (padded - win) / c->stride[i] + 1;
  }
  int64_t cig = c->ci / c->g;
  if (c->nhwc) {
    c->ld[0] = c->n, c->ld[r - 1] = c->ci;
    c->od[0] = c->n / c->bg, c->od[r - 1] = c->co;
    for (int i = 0; i < c->nsp; i++) c->ld[1 + i] = c->in[i], c->od[1 + i] = c->out[i];
  } else {
    c->ld[0] = c->n, c->ld[1] = c->ci;
    c->od[0] = c->n / c->bg, c->od[1] = c->co;
    for (int i = 0; i < c->nsp; i++) c->ld[2 + i] = c->in[i], c->od[2 + i] = c->out[i];
  }
  if (c->hwio) {
    for (int i = 0; i < c->nsp; i++) c->rd[i] = c->k[i];
    c->rd[r - 2] = cig, c->rd[r - 1] = c->co;
  } else {
    c->rd[0] = c->co, c->rd[1] = cig;
    for (int i = 0; i < c->nsp; i++) c->rd[2 + i] = c->k[i];
  }
  return true;
}

static void random_conv(conv_case *c, bool dnnl_friendly) {
  for (;;) {
    memset(c, 0, sizeof *c);
    c->nsp = rnd_in(1, 3);
    c->nhwc = rnd() % 2;
    c->hwio = rnd() % 2;
    c->g = rnd() % 3 == 0 ? rnd_in(2, 3) : 1;
    c->bg = (!dnnl_friendly && c->g == 1 && rnd() % 4 == 0) ? 2 : 1;
    int64_t cig = rnd_in(1, 4), cog = rnd_in(1, 4);
    c->ci = cig * c->g;
    c->co = cog * c->g * c->bg;
    c->n = rnd_in(1, 2) * c->bg;
    for (int i = 0; i < c->nsp; i++) {
      c->in[i] = rnd_in(c->nsp == 3 ? 2 : 3, c->nsp == 3 ? 5 : 9);
      c->k[i] = rnd_in(1, 3);
      c->stride[i] = rnd_in(1, 2);
      c->rdil[i] = rnd_in(1, 2);
      c->ldil[i] = dnnl_friendly ? 1 : rnd_in(1, 2);
      c->pad_lo[i] = rnd_in(dnnl_friendly ? 0 : -1, 2);
      c->pad_hi[i] = rnd_in(dnnl_friendly ? 0 : -1, 2);
      c->rev[i] = !dnnl_friendly && rnd() % 4 == 0;
    }
    if (conv_finish(c)) return;
  }
}

static void conv_text(const conv_case *c, char *text) {
  static const char sp[] = "012";
  char dn[128], a[128], b[128], o[128], win[512];
  int off = 0;
  int r = c->nsp + 2;
  /* dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1] or NHWC/HWIO */
  off += sprintf(dn + off, "[b, ");
  if (!c->nhwc) off += sprintf(dn + off, "f, ");
  for (int i = 0; i < c->nsp; i++) off += sprintf(dn + off, "%c, ", sp[i]);
  if (c->nhwc) off += sprintf(dn + off, "f, ");
  off -= 2;
  off += sprintf(dn + off, "]x[");
  if (!c->hwio) off += sprintf(dn + off, "o, i, ");
  for (int i = 0; i < c->nsp; i++) off += sprintf(dn + off, "%c, ", sp[i]);
  if (c->hwio) off += sprintf(dn + off, "i, o, ");
  off -= 2;
  off += sprintf(dn + off, "]->[b, ");
  if (!c->nhwc) off += sprintf(dn + off, "f, ");
  for (int i = 0; i < c->nsp; i++) off += sprintf(dn + off, "%c, ", sp[i]);
  if (c->nhwc) off += sprintf(dn + off, "f, ");
  off -= 2;
  sprintf(dn + off, "]");
  off = sprintf(win, "stride = [");
  for (int i = 0; i < c->nsp; i++) off += sprintf(win + off, i ? ", %lld" : "%lld", (long long)c->stride[i]);
  off += sprintf(win + off, "], pad = [");
  for (int i = 0; i < c->nsp; i++)
    off += sprintf(win + off, i ? ", [%lld, %lld]" : "[%lld, %lld]", (long long)c->pad_lo[i],
                   (long long)c->pad_hi[i]);
  off += sprintf(win + off, "], lhs_dilate = [");
  for (int i = 0; i < c->nsp; i++) off += sprintf(win + off, i ? ", %lld" : "%lld", (long long)c->ldil[i]);
  off += sprintf(win + off, "], rhs_dilate = [");
  for (int i = 0; i < c->nsp; i++) off += sprintf(win + off, i ? ", %lld" : "%lld", (long long)c->rdil[i]);
  off += sprintf(win + off, "], reverse = [");
  for (int i = 0; i < c->nsp; i++) off += sprintf(win + off, i ? ", %s" : "%s", c->rev[i] ? "true" : "false");
  sprintf(win + off, "]");
  type_str(a, c->ld, r, "f32");
  type_str(b, c->rd, r, "f32");
  type_str(o, c->od, r, "f32");
  sprintf(text,
          "func.func @main(%%x: %s, %%w: %s) -> %s {\n"
          "  %%0 = stablehlo.convolution(%%x, %%w) dim_numbers = %s, window = {%s} "
          "{batch_group_count = %lld : i64, feature_group_count = %lld : i64} : (%s, %s) -> %s\n"
          "  return %%0 : %s\n}\n",
          a, b, o, dn, win, (long long)c->bg, (long long)c->g, a, b, o, o);
}

/* Naive convolution from the spec's definition (double accumulation). */
static void conv_naive(const conv_case *c, const float *x, const float *w, double *out) {
  int r = c->nsp + 2;
  int64_t n_out = numel(c->od, r), cig = c->ci / c->g;
  int64_t cog_g = c->co / c->g, cog_b = c->co / c->bg, nout = c->n / c->bg;
  for (int64_t flat = 0; flat < n_out; flat++) {
    int64_t oi[5] = {0}, b, o, y[3] = {0};
    unravel(flat, c->od, r, oi);
    b = oi[0];
    o = c->nhwc ? oi[r - 1] : oi[1];
    for (int i = 0; i < c->nsp; i++) y[i] = oi[c->nhwc ? 1 + i : 2 + i];
    int64_t g = o / cog_g, bg = o / cog_b;
    double s = 0;
    int64_t kn = numel(c->k, c->nsp);
    for (int64_t i = 0; i < cig; i++)
      for (int64_t kk = 0; kk < kn; kk++) {
        int64_t kx[3];
        unravel(kk, c->k, c->nsp, kx);
        int64_t xi[5], wi[5];
        bool ok = true;
        for (int d = 0; d < c->nsp; d++) {
          int64_t q = y[d] * c->stride[d] + kx[d] * c->rdil[d] - c->pad_lo[d];
          if (q < 0 || q % c->ldil[d] || q / c->ldil[d] >= c->in[d]) ok = false;
          int64_t xd = q / c->ldil[d];
          int64_t kd = c->rev[d] ? c->k[d] - 1 - kx[d] : kx[d];
          if (c->nhwc) xi[1 + d] = xd;
          else xi[2 + d] = xd;
          if (c->hwio) wi[d] = kd;
          else wi[2 + d] = kd;
        }
        if (!ok) continue;
        xi[0] = bg * nout + b;
        int64_t f = g * cig + i;
        if (c->nhwc) xi[r - 1] = f;
        else xi[1] = f;
        if (c->hwio) wi[r - 2] = i, wi[r - 1] = o;
        else wi[0] = o, wi[1] = i;
        s += (double)x[ravel(xi, c->ld, r)] * w[ravel(wi, c->rd, r)];
      }
    out[flat] = s;
  }
}

static void run_conv_case(const conv_case *c, int iter) {
  static char text[4096];
  conv_text(c, text);
  int r = c->nsp + 2;
  hs_tensor in[2] = {make_f32(c->ld, r), make_f32(c->rd, r)};
  int64_t n = numel(c->od, r);
  double *want = malloc(sizeof(double) * (size_t)n);
  conv_naive(c, in[0].data, in[1].data, want);
  hs_tensor ref, fast, own;
  hs_la_force_reference(true);
  hs_status *st = hs_test_run(text, 1, in, 2, &ref, 1);
  hs_la_force_reference(false);
  CHECK_OK(st);
  CHECK_OK(hs_test_run(text, 2, in, 2, &fast, 1));
  setenv("HS_NO_DNNL", "1", 1);
  st = hs_test_run(text, 2, in, 2, &own, 1);
  unsetenv("HS_NO_DNNL");
  CHECK_OK(st);
  for (int64_t i = 0; i < n; i++) {
    float rv = ((float *)ref.data)[i];
    CHECK_MSG(fabs(rv - want[i]) <= 1e-4 * fmax(1.0, fabs(want[i])),
              "iter %d: reference %g, naive %g at %lld\n%s", iter, rv, want[i], (long long)i, text);
  }
  double e1 = rel_err(fast.data, ref.data, n), e2 = rel_err(own.data, ref.data, n);
  CHECK_MSG(e1 <= 1e-4, "iter %d: fast path rel err %g\n%s", iter, e1, text);
  CHECK_MSG(e2 <= 1e-4, "iter %d: im2col path rel err %g\n%s", iter, e2, text);
  free(want);
  free(in[0].data), free(in[1].data), free(ref.data), free(fast.data), free(own.data);
}

HS_TEST(convolution_random_any_parameters) {
  for (int iter = 0; iter < 40; iter++) {
    conv_case c;
    random_conv(&c, false);
    run_conv_case(&c, iter);
    if (hs_test_failed_current) return;
  }
}

HS_TEST(convolution_random_onednn_friendly) {
  for (int iter = 0; iter < 40; iter++) {
    conv_case c;
    random_conv(&c, true);
    run_conv_case(&c, iter);
    if (hs_test_failed_current) return;
  }
}

HS_TEST(convolution_integer_and_half) {
  /* i8 wraps; f16 accumulates in f32 and rounds once */
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %x = stablehlo.constant dense<[[[100, 100, 100]]]> : tensor<1x1x3xi8>\n"
      "  %w = stablehlo.constant dense<[[[1, 2]]]> : tensor<1x1x2xi8>\n"
      "  %0 = stablehlo.convolution(%x, %w) dim_numbers = [b, f, 0]x[o, i, 0]->[b, f, 0], window = {} "
      "{batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x1x3xi8>, tensor<1x1x2xi8>) -> tensor<1x1x2xi8>\n"
      "  check.expect_eq_const %0, dense<[[[44, 44]]]> : tensor<1x1x2xi8>\n"
      "  %h = stablehlo.constant dense<[[[1.0, 0.00048828125, 0.00048828125]]]> : tensor<1x1x3xf16>\n"
      "  %k = stablehlo.constant dense<[[[1.0, 1.0, 1.0]]]> : tensor<1x1x3xf16>\n"
      "  %1 = stablehlo.convolution(%h, %k) dim_numbers = [b, f, 0]x[o, i, 0]->[b, f, 0], window = {} "
      "{batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x1x3xf16>, tensor<1x1x3xf16>) -> tensor<1x1x1xf16>\n"
      "  check.expect_eq_const %1, dense<[[[1.0009765625]]]> : tensor<1x1x1xf16>\n"
      "  return\n}\n"));
}

HS_TEST(convolution_bad_input_is_an_error) {
  /* kernel input features do not match */
  CHECK_ERR(hs_test_compile(
                "func.func @main(%x: tensor<1x3x8x8xf32>, %w: tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32> {\n"
                "  %0 = stablehlo.convolution(%x, %w) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], window = {} "
                "{batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32>\n"
                "  return %0 : tensor<1x4x6x6xf32>\n}\n"),
            HS_INVALID_ARGUMENT);
  /* wrong result shape */
  CHECK_ERR(hs_test_compile(
                "func.func @main(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x4x7x6xf32> {\n"
                "  %0 = stablehlo.convolution(%x, %w) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], window = {} "
                "{batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x7x6xf32>\n"
                "  return %0 : tensor<1x4x7x6xf32>\n}\n"),
            HS_INVALID_ARGUMENT);
}

/* One compiled program run from several threads at once (oneDNN primitives,
 * SGEMM and the reduce-free conv paths must not share per-call state). */
typedef struct conc_arg {
  hs_program *p;
  const hs_tensor *in;
  const float *want;
  int64_t n;
  int bad;
} conc_arg;

static void *conc_worker(void *arg) {
  conc_arg *a = arg;
  for (int rep = 0; rep < 4; rep++) {
    hs_tensor out = {HS_F32, {0}, NULL};
    hs_status *st = hs_program_run(a->p, a->in, 2, &out, 1);
    if (st) {
      hs_status_free(st);
      a->bad = 1;
      return NULL;
    }
    if (rel_err(out.data, a->want, a->n) > 1e-5) a->bad = 1;
    free(out.data);
  }
  return NULL;
}

HS_TEST(concurrent_runs_of_one_program) {
  static const char *text =
      "func.func @main(%x: tensor<2x16x20x20xf32>, %w: tensor<32x16x3x3xf32>) -> tensor<2x32x32xf32> {\n"
      "  %0 = stablehlo.convolution(%x, %w) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], window = {pad = [[1, 1], [1, 1]]} "
      "{batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<2x16x20x20xf32>, tensor<32x16x3x3xf32>) -> tensor<2x32x20x20xf32>\n"
      "  %1 = stablehlo.reshape %0 : (tensor<2x32x20x20xf32>) -> tensor<2x32x400xf32>\n"
      "  %2 = stablehlo.slice %1 [0:2, 0:32, 0:32] : (tensor<2x32x400xf32>) -> tensor<2x32x32xf32>\n"
      "  %3 = stablehlo.dot_general %2, %2, batching_dims = [0] x [0], contracting_dims = [2] x [1] : "
      "(tensor<2x32x32xf32>, tensor<2x32x32xf32>) -> tensor<2x32x32xf32>\n"
      "  return %3 : tensor<2x32x32xf32>\n}\n";
  int64_t xd[4] = {2, 16, 20, 20}, wd[4] = {32, 16, 3, 3};
  hs_tensor in[2] = {make_f32(xd, 4), make_f32(wd, 4)};
  for (int dn = 0; dn < 2; dn++) {
    if (dn) setenv("HS_NO_DNNL", "1", 1);
    hs_program_options opt = {NULL, 2};
    hs_program *p = NULL;
    hs_status *st = hs_program_from_text(text, strlen(text), "t.mlir", &opt, &p);
    unsetenv("HS_NO_DNNL");
    CHECK_OK(st);
    hs_tensor want = {HS_F32, {0}, NULL};
    st = hs_program_run(p, in, 2, &want, 1);
    if (st) hs_program_free(p);
    CHECK_OK(st);
    pthread_t th[4];
    conc_arg args[4];
    for (int t = 0; t < 4; t++) {
      args[t] = (conc_arg){p, in, want.data, hs_tensor_numel(&want), 0};
      pthread_create(&th[t], NULL, conc_worker, &args[t]);
    }
    int bad = 0;
    for (int t = 0; t < 4; t++) {
      pthread_join(th[t], NULL);
      bad |= args[t].bad;
    }
    hs_program_free(p);
    free(want.data);
    CHECK_MSG(!bad, "a concurrent run differed (oneDNN %s)", dn ? "off" : "on");
  }
  free(in[0].data), free(in[1].data);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The ResNet-50-like 3x3 conv, NCHW (torch) and NHWC (JAX), both ways. */
HS_TEST(convolution_resnet_timing) {
  if (getenv("HS_SKIP_TIMING")) return;
  static const char *texts[2] = {
      "func.func @main(%x: tensor<1x64x160x160xf32>, %w: tensor<64x64x3x3xf32>) -> tensor<1x64x160x160xf32> {\n"
      "  %0 = stablehlo.convolution(%x, %w) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], window = {pad = [[1, 1], [1, 1]]} "
      "{batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x64x160x160xf32>, tensor<64x64x3x3xf32>) -> tensor<1x64x160x160xf32>\n"
      "  return %0 : tensor<1x64x160x160xf32>\n}\n",
      "func.func @main(%x: tensor<1x160x160x64xf32>, %w: tensor<3x3x64x64xf32>) -> tensor<1x160x160x64xf32> {\n"
      "  %0 = stablehlo.convolution(%x, %w) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], window = {pad = [[1, 1], [1, 1]]} "
      "{batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x160x160x64xf32>, tensor<3x3x64x64xf32>) -> tensor<1x160x160x64xf32>\n"
      "  return %0 : tensor<1x160x160x64xf32>\n}\n"};
  static const int64_t xs[2][4] = {{1, 64, 160, 160}, {1, 160, 160, 64}};
  static const int64_t ws[2][4] = {{64, 64, 3, 3}, {3, 3, 64, 64}};
  for (int t = 0; t < 2; t++) {
    hs_tensor in[2] = {make_f32(xs[t], 4), make_f32(ws[t], 4)};
    hs_tensor out[2];
    double best[2] = {1e9, 1e9};
    for (int way = 0; way < 2; way++) {
      if (way) setenv("HS_NO_DNNL", "1", 1);
      hs_program_options opt = {NULL, 2};
      hs_program *p = NULL;
      hs_status *st = hs_program_from_text(texts[t], strlen(texts[t]), "t.mlir", &opt, &p);
      unsetenv("HS_NO_DNNL");
      CHECK_OK(st);
      out[way].data = NULL;
      for (int rep = 0; rep < 3; rep++) {
        free(out[way].data);
        out[way].data = NULL;
        double t0 = now_s();
        st = hs_program_run(p, in, 2, &out[way], 1);
        double dt = now_s() - t0;
        if (dt < best[way]) best[way] = dt;
        if (st) break;
      }
      hs_program_free(p);
      CHECK_OK(st);
    }
    double e = rel_err(out[0].data, out[1].data, hs_tensor_numel(&out[0]));
    printf("  conv 1x64x160x160 3x3 64->64 %s: oneDNN path %.1f ms, own im2col+SGEMM %.1f ms (rel diff %.1e)\n",
           t ? "NHWC/HWIO" : "NCHW/OIHW", best[0] * 1e3, best[1] * 1e3, e);
    CHECK(e <= 1e-4);
    free(in[0].data), free(in[1].data), free(out[0].data), free(out[1].data);
  }
}

/* ------------------------------------------------------------ rng_bit_generator */

/* Known-answer vectors of the Random123 reference implementation: with a
 * zero key and counter, Threefry-2x32-20 gives (0x6b200159, 0x99ba4efe) and
 * Philox-4x32-10 gives (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8). */
HS_TEST(rng_bit_generator_known_answers) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %s = stablehlo.constant dense<[0, 0]> : tensor<2xui64>\n"
      "  %0:2 = \"stablehlo.rng_bit_generator\"(%s) <{rng_algorithm = #stablehlo<rng_algorithm THREE_FRY>}> : (tensor<2xui64>) -> (tensor<2xui64>, tensor<3xui64>)\n"
      "  check.expect_eq_const %0#0, dense<[0, 3]> : tensor<2xui64>\n"
      "  %1 = stablehlo.slice %0#1 [0:1] : (tensor<3xui64>) -> tensor<1xui64>\n"
      "  check.expect_eq_const %1, dense<[11077253088097075545]> : tensor<1xui64>\n"
      "  %p = stablehlo.constant dense<[0, 0, 0]> : tensor<3xui64>\n"
      "  %2:2 = \"stablehlo.rng_bit_generator\"(%p) <{rng_algorithm = #stablehlo<rng_algorithm PHILOX>}> : (tensor<3xui64>) -> (tensor<3xui64>, tensor<2x3xui32>)\n"
      "  check.expect_eq_const %2#0, dense<[0, 2, 0]> : tensor<3xui64>\n"
      "  %3 = stablehlo.slice %2#1 [0:1, 0:3] : (tensor<2x3xui32>) -> tensor<1x3xui32>\n"
      "  check.expect_eq_const %3, dense<[[1713891541, 3781805453, 3159862348]]> : tensor<1x3xui32>\n"
      "  %4 = stablehlo.slice %2#1 [1:2, 0:1] : (tensor<2x3xui32>) -> tensor<1x1xui32>\n"
      "  check.expect_eq_const %4, dense<[[2600524760]]> : tensor<1x1xui32>\n"
      "  return\n}\n"));
}

HS_TEST(rng_bit_generator_bad_state_is_an_error) {
  CHECK_ERR(hs_test_compile(
                "func.func @main(%s: tensor<3xui64>) -> tensor<4xui32> {\n"
                "  %0:2 = \"stablehlo.rng_bit_generator\"(%s) <{rng_algorithm = #stablehlo<rng_algorithm THREE_FRY>}> : (tensor<3xui64>) -> (tensor<3xui64>, tensor<4xui32>)\n"
                "  return %0#1 : tensor<4xui32>\n}\n"),
            HS_INVALID_ARGUMENT);
}

/* ------------------------------------------------------------ solvers */

HS_TEST(triangular_solve_all_variants) {
  static char text[2048];
  const int64_t m = 5, nrhs = 3;
  for (int v = 0; v < 16; v++) {
    bool left = v & 1, lower = v & 2, trans = v & 4, unit = v & 8;
    int64_t ad[3] = {2, m, m}, bd[3] = {2, left ? m : nrhs, left ? nrhs : m};
    hs_tensor in[2] = {make_f32(ad, 3), make_f32(bd, 3)};
    float *a = in[0].data;
    for (int64_t b = 0; b < 2; b++)
      for (int64_t i = 0; i < m; i++) a[(b * m + i) * m + i] = 4.0f + (float)i; /* well conditioned */
    char at[64], bt[64];
    type_str(at, ad, 3, "f32");
    type_str(bt, bd, 3, "f32");
    sprintf(text,
            "func.func @main(%%a: %s, %%b: %s) -> %s {\n"
            "  %%0 = \"stablehlo.triangular_solve\"(%%a, %%b) <{left_side = %s, lower = %s, "
            "transpose_a = #stablehlo<transpose %s>, unit_diagonal = %s}> : (%s, %s) -> %s\n"
            "  return %%0 : %s\n}\n",
            at, bt, bt, left ? "true" : "false", lower ? "true" : "false",
            trans ? "TRANSPOSE" : "NO_TRANSPOSE", unit ? "true" : "false", at, bt, bt, bt);
    hs_tensor x;
    CHECK_OK(hs_test_run(text, 1, in, 2, &x, 1));
    /* check op(A) X = B or X op(A) = B with the used triangle only */
    const float *xb = x.data, *bb = in[1].data;
    for (int64_t b = 0; b < 2; b++) {
      double T[5][5];
      for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) {
          bool inside = lower ? j <= i : j >= i;
          double e = inside ? a[(b * m + i) * m + j] : 0.0;
          if (i == j && unit) e = 1.0;
          if (trans) T[j][i] = e;
          else T[i][j] = e;
        }
      for (int64_t r = 0; r < bd[1]; r++)
        for (int64_t c = 0; c < bd[2]; c++) {
          double s = 0;
          if (left)
            for (int64_t k = 0; k < m; k++) s += T[r][k] * xb[(b * m + k) * nrhs + c];
          else
            for (int64_t k = 0; k < m; k++) s += xb[(b * nrhs + r) * m + k] * T[k][c];
          double want = bb[(b * bd[1] + r) * bd[2] + c];
          CHECK_MSG(fabs(s - want) <= 1e-4 * fmax(1.0, fabs(want)), "variant %d: %g vs %g", v, s, want);
        }
    }
    free(in[0].data), free(in[1].data), free(x.data);
  }
}

HS_TEST(cholesky_lower_and_upper) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %a = stablehlo.constant dense<[[4.0, 2.0, -2.0], [2.0, 10.0, 2.0], [-2.0, 2.0, 5.0]]> : tensor<3x3xf32>\n"
      "  %0 = \"stablehlo.cholesky\"(%a) <{lower = true}> : (tensor<3x3xf32>) -> tensor<3x3xf32>\n"
      "  %l = stablehlo.constant dense<[[2.0, 0.0, 0.0], [1.0, 3.0, 0.0], [-1.0, 1.0, 1.7320508]]> : tensor<3x3xf32>\n"
      "  stablehlo.custom_call @check.expect_close(%0, %l) {has_side_effect = true} : (tensor<3x3xf32>, tensor<3x3xf32>) -> ()\n"
      "  %1 = \"stablehlo.cholesky\"(%a) <{lower = false}> : (tensor<3x3xf32>) -> tensor<3x3xf32>\n"
      "  %u = stablehlo.constant dense<[[2.0, 1.0, -1.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.7320508]]> : tensor<3x3xf32>\n"
      "  stablehlo.custom_call @check.expect_close(%1, %u) {has_side_effect = true} : (tensor<3x3xf32>, tensor<3x3xf32>) -> ()\n"
      "  return\n}\n"));
}

int main(void) {
  HS_RUN(dot_general_random_f32);
  HS_RUN(dot_general_large_fast_vs_reference);
  HS_RUN(dot_general_int_wraps_and_mixed_types);
  HS_RUN(dot_general_half_types_round_once);
  HS_RUN(dot_general_bad_input_is_an_error);
  HS_RUN(convolution_random_any_parameters);
  HS_RUN(convolution_random_onednn_friendly);
  HS_RUN(convolution_integer_and_half);
  HS_RUN(convolution_bad_input_is_an_error);
  HS_RUN(concurrent_runs_of_one_program);
  HS_RUN(convolution_resnet_timing);
  HS_RUN(rng_bit_generator_known_answers);
  HS_RUN(rng_bit_generator_bad_state_is_an_error);
  HS_RUN(triangular_solve_all_variants);
  HS_RUN(cholesky_lower_and_upper);
  return hs_test_summary();
}
