/*
 * test_reduce.c - reduce, reduce_window and select_and_scatter
 * (kernels/reduce.c, kernels/rd_*.c), driven through the public runtime API.
 *
 * Each kernel has a typed fast path for "return a OP b" bodies and a generic
 * path that evaluates the body region.  The tests pin semantics with small
 * self-checking programs (wrap-around, i1 ops, f16 rounding per step, spec
 * padding with a non-identity init, argmax ties), then compare both paths
 * against naive C written from the spec on random shapes: the generic path is
 * reached by writing the same body so that it is not recognised
 * (a - (-b) for a + b, select(a >= b, a, b) for max: the scalar VM runs
 * those) or so that only the executor can run it (an unused sine).  Large
 * cases run with two threads so the split paths run too.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hloserve/runtime.h"
#include "testlib.h"

/* ------------------------------------------------------------ helpers */

static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;
static unsigned rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state >> 11);
}
static int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (unsigned)(hi - lo + 1)); }

static char *type_str(char *buf, const int64_t *dims, int rank, const char *et) {
  int off = sprintf(buf, "tensor<");
  for (int i = 0; i < rank; i++) off += sprintf(buf + off, "%lldx", (long long)dims[i]);
  sprintf(buf + off, "%s>", et);
  return buf;
}

static char *ints_str(char *buf, const int64_t *v, int n) {
  int off = sprintf(buf, "array<i64");
  for (int i = 0; i < n; i++) off += sprintf(buf + off, i ? ", %lld" : ": %lld", (long long)v[i]);
  sprintf(buf + off, ">");
  return buf;
}

static int64_t numel(const int64_t *dims, int rank) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  return n;
}

static void unravel(int64_t flat, const int64_t *dims, int rank, int64_t *idx) {
  for (int d = rank - 1; d >= 0; d--) {
    idx[d] = flat % dims[d];
    flat /= dims[d];
  }
}

static hs_tensor make_f32(const int64_t *dims, int rank, bool small_ints) {
  hs_tensor t;
  t.dtype = HS_F32;
  t.shape.rank = rank;
  for (int i = 0; i < rank; i++) t.shape.dims[i] = dims[i];
  int64_t n = numel(dims, rank);
  t.data = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++)
    ((float *)t.data)[i] = small_ints ? (float)rnd_in(-50, 50) : (float)rnd_in(-100000, 100000) / 1000.0f;
  return t;
}

/* Bodies, three equivalent spellings: 0 the recognised "a OP b" (typed
 * loops), 1 one the scalar VM compiles (a - (-b), select(a >= b, a, b)),
 * 2 one with an unused sine, which only the executor can run. */
enum { B_ADD, B_MAX };
enum { V_FAST, V_VM, V_EXEC, V_COUNT };
static const char *body(int kind, int variant) {
  static const char *bodies[2][V_COUNT] = {
      {"    %r = stablehlo.add %a, %b : tensor<f32>\n",
       "    %n = stablehlo.negate %b : tensor<f32>\n"
       "    %r = stablehlo.subtract %a, %n : tensor<f32>\n",
       "    %u = stablehlo.sine %a : tensor<f32>\n"
       "    %r = stablehlo.add %a, %b : tensor<f32>\n"},
      {"    %r = stablehlo.maximum %a, %b : tensor<f32>\n",
       "    %c = stablehlo.compare GE, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
       "    %r = stablehlo.select %c, %a, %b : tensor<i1>, tensor<f32>\n",
       "    %u = stablehlo.sine %a : tensor<f32>\n"
       "    %r = stablehlo.maximum %a, %b : tensor<f32>\n"}};
  return bodies[kind][variant];
}

/* ------------------------------------------------------------ reduce */

HS_TEST(reduce_random_f32_both_paths) {
  static char text[4096];
  for (int iter = 0; iter < 60; iter++) {
    int rank = rnd_in(1, 4);
    int64_t dims[4], rdims[4], od[4];
    bool red[4];
    int nr = 0, orank = 0;
    for (int d = 0; d < rank; d++) {
      dims[d] = rnd() % 5 == 0 ? 1 : rnd_in(1, iter < 50 ? 9 : 200);
      red[d] = rnd() % 2;
      if (red[d]) rdims[nr++] = d;
      else od[orank++] = dims[d];
    }
    int kind = rnd() % 2;
    hs_tensor in = make_f32(dims, rank, kind == B_ADD);
    /* naive */
    int64_t n = numel(dims, rank), no = numel(od, orank);
    double *want = malloc(sizeof(double) * (size_t)no);
    for (int64_t o = 0; o < no; o++) want[o] = kind == B_ADD ? 0.0 : -INFINITY;
    for (int64_t i = 0; i < n; i++) {
      int64_t idx[4], o = 0;
      unravel(i, dims, rank, idx);
      for (int d = 0; d < rank; d++)
        if (!red[d]) o = o * dims[d] + idx[d];
      double v = ((float *)in.data)[i];
      want[o] = kind == B_ADD ? want[o] + v : fmax(want[o], v);
    }
    char it[128], ot[128], dl[128];
    type_str(it, dims, rank, "f32");
    type_str(ot, od, orank, "f32");
    for (int generic = 0; generic < V_COUNT; generic++) {
      sprintf(text,
              "func.func @main(%%x: %s) -> %s {\n"
              "  %%init = stablehlo.constant dense<%s> : tensor<f32>\n"
              "  %%0 = \"stablehlo.reduce\"(%%x, %%init) <{dimensions = %s}> ({\n"
              "  ^bb0(%%a: tensor<f32>, %%b: tensor<f32>):\n%s"
              "    stablehlo.return %%r : tensor<f32>\n"
              "  }) : (%s, tensor<f32>) -> %s\n"
              "  return %%0 : %s\n}\n",
              it, ot, kind == B_ADD ? "0.0" : "0xFF800000", ints_str(dl, rdims, nr),
              body(kind, generic), it, ot, ot);
      hs_tensor out;
      CHECK_OK(hs_test_run(text, 2, &in, 1, &out, 1));
      for (int64_t o = 0; o < no; o++) {
        float got = ((float *)out.data)[o];
        CHECK_MSG(got == (float)want[o], "iter %d generic %d: out[%lld] = %g, want %g\n%s", iter,
                  generic, (long long)o, got, want[o], text);
      }
      free(out.data);
    }
    free(want);
    free(in.data);
  }
}

HS_TEST(reduce_integer_bool_and_half_semantics) {
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %x = stablehlo.constant dense<[[100, 100, 100], [-128, -1, 1]]> : tensor<2x3xi8>\n"
      "  %z = stablehlo.constant dense<0> : tensor<i8>\n"
      "  %0 = stablehlo.reduce(%x init: %z) applies stablehlo.add across dimensions = [1] : (tensor<2x3xi8>, tensor<i8>) -> tensor<2xi8>\n"
      "  check.expect_eq_const %0, dense<[44, -128]> : tensor<2xi8>\n"
      "  %one = stablehlo.constant dense<1> : tensor<i8>\n"
      "  %1 = stablehlo.reduce(%x init: %one) applies stablehlo.multiply across dimensions = [0] : (tensor<2x3xi8>, tensor<i8>) -> tensor<3xi8>\n"
      "  check.expect_eq_const %1, dense<[0, -100, 100]> : tensor<3xi8>\n"
      "  %lo = stablehlo.constant dense<-128> : tensor<i8>\n"
      "  %2 = stablehlo.reduce(%x init: %lo) applies stablehlo.maximum across dimensions = [0, 1] : (tensor<2x3xi8>, tensor<i8>) -> tensor<i8>\n"
      "  check.expect_eq_const %2, dense<100> : tensor<i8>\n"
      "  %b = stablehlo.constant dense<[[true, false], [false, false]]> : tensor<2x2xi1>\n"
      "  %f = stablehlo.constant dense<false> : tensor<i1>\n"
      "  %t = stablehlo.constant dense<true> : tensor<i1>\n"
      "  %3 = stablehlo.reduce(%b init: %f) applies stablehlo.or across dimensions = [1] : (tensor<2x2xi1>, tensor<i1>) -> tensor<2xi1>\n"
      "  check.expect_eq_const %3, dense<[true, false]> : tensor<2xi1>\n"
      "  %4 = stablehlo.reduce(%b init: %t) applies stablehlo.and across dimensions = [0] : (tensor<2x2xi1>, tensor<i1>) -> tensor<2xi1>\n"
      "  check.expect_eq_const %4, dense<[false, false]> : tensor<2xi1>\n"
      "  %5 = stablehlo.reduce(%b init: %f) applies stablehlo.add across dimensions = [0] : (tensor<2x2xi1>, tensor<i1>) -> tensor<2xi1>\n"
      "  check.expect_eq_const %5, dense<[true, false]> : tensor<2xi1>\n"
      "  %u = stablehlo.constant dense<[250, 10, 7]> : tensor<3xui8>\n"
      "  %uz = stablehlo.constant dense<0> : tensor<ui8>\n"
      "  %6 = stablehlo.reduce(%u init: %uz) applies stablehlo.add across dimensions = [0] : (tensor<3xui8>, tensor<ui8>) -> tensor<ui8>\n"
      "  check.expect_eq_const %6, dense<11> : tensor<ui8>\n"
      /* f16 accumulates in f16: each 1 + 2^-11 ties back to 1 */
      "  %h = stablehlo.constant dense<[1.0, 0.00048828125, 0.00048828125, 0.00048828125]> : tensor<4xf16>\n"
      "  %hz = stablehlo.constant dense<0.0> : tensor<f16>\n"
      "  %7 = stablehlo.reduce(%h init: %hz) applies stablehlo.add across dimensions = [0] : (tensor<4xf16>, tensor<f16>) -> tensor<f16>\n"
      "  check.expect_eq_const %7, dense<1.0> : tensor<f16>\n"
      "  %n = stablehlo.constant dense<[1.0, 0x7FC00000, 3.0]> : tensor<3xf32>\n"
      "  %ninf = stablehlo.constant dense<0xFF800000> : tensor<f32>\n"
      "  %8 = stablehlo.reduce(%n init: %ninf) applies stablehlo.maximum across dimensions = [0] : (tensor<3xf32>, tensor<f32>) -> tensor<f32>\n"
      "  check.expect_eq_const %8, dense<0x7FC00000> : tensor<f32>\n"
      "  %e = stablehlo.constant dense<> : tensor<0x3xf32>\n"
      "  %fz = stablehlo.constant dense<5.0> : tensor<f32>\n"
      "  %9 = stablehlo.reduce(%e init: %fz) applies stablehlo.add across dimensions = [0] : (tensor<0x3xf32>, tensor<f32>) -> tensor<3xf32>\n"
      "  check.expect_eq_const %9, dense<5.0> : tensor<3xf32>\n"
      "  return\n}\n"));
}

/* argmax as JAX writes it: values and indices reduced together. */
HS_TEST(reduce_variadic_argmax) {
  static const char *text =
      "func.func @main(%x: tensor<7x33xf32>) -> tensor<7xi32> {\n"
      "  %i = stablehlo.iota dim = 1 : tensor<7x33xi32>\n"
      "  %ninf = stablehlo.constant dense<0xFF800000> : tensor<f32>\n"
      "  %z = stablehlo.constant dense<0> : tensor<i32>\n"
      "  %0:2 = stablehlo.reduce(%x init: %ninf), (%i init: %z) across dimensions = [1] : "
      "(tensor<7x33xf32>, tensor<7x33xi32>, tensor<f32>, tensor<i32>) -> (tensor<7xf32>, tensor<7xi32>)\n"
      "   reducer(%a: tensor<f32>, %b: tensor<f32>) (%ai: tensor<i32>, %bi: tensor<i32>)  {\n"
      "    %1 = stablehlo.compare  GT, %a, %b,  FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    %2 = stablehlo.compare  NE, %a, %a,  FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    %3 = stablehlo.or %1, %2 : tensor<i1>\n"
      "    %4 = stablehlo.compare  EQ, %a, %b,  FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    %5 = stablehlo.compare  LT, %ai, %bi,  SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>\n"
      "    %6 = stablehlo.and %4, %5 : tensor<i1>\n"
      "    %7 = stablehlo.or %3, %6 : tensor<i1>\n"
      "    %8 = stablehlo.select %3, %a, %b : tensor<i1>, tensor<f32>\n"
      "    %9 = stablehlo.select %7, %ai, %bi : tensor<i1>, tensor<i32>\n"
      "    stablehlo.return %8, %9 : tensor<f32>, tensor<i32>\n"
      "  }\n"
      "  return %0#1 : tensor<7xi32>\n}\n";
  int64_t dims[2] = {7, 33};
  hs_tensor in = make_f32(dims, 2, true); /* small ints: many ties */
  float *x = in.data;
  x[3 * 33 + 5] = NAN; /* a NaN wins */
  hs_tensor out;
  CHECK_OK(hs_test_run(text, 1, &in, 1, &out, 1));
  for (int r = 0; r < 7; r++) {
    int best = 0;
    for (int c = 1; c < 33; c++) {
      float v = x[r * 33 + c], b = x[r * 33 + best];
      if (isnan(b)) break;
      if (isnan(v) || v > b) best = c;
    }
    CHECK_MSG(((int32_t *)out.data)[r] == best, "row %d: %d vs %d", r, ((int32_t *)out.data)[r], best);
  }
  free(in.data);
  free(out.data);
}

/* The scalar VM against the executor on bodies with integer wrap-around,
 * signed/unsigned and total-order compares (NaNs, -0), converts and selects. */
HS_TEST(reduce_vm_matches_executor) {
  static const struct {
    const char *et, *ops;
  } cases[] = {
      {"i8",
       "    %s = stablehlo.add %a, %b : tensor<i8>\n"
       "    %c = stablehlo.compare LT, %s, %a, SIGNED : (tensor<i8>, tensor<i8>) -> tensor<i1>\n"
       "    %m = stablehlo.multiply %s, %b : tensor<i8>\n"
       "    %r = stablehlo.select %c, %m, %s : tensor<i1>, tensor<i8>\n"},
      {"ui16",
       "    %s = stablehlo.subtract %a, %b : tensor<ui16>\n"
       "    %c = stablehlo.compare GT, %s, %a, UNSIGNED : (tensor<ui16>, tensor<ui16>) -> tensor<i1>\n"
       "    %x = stablehlo.xor %s, %b : tensor<ui16>\n"
       "    %n = stablehlo.not %x : tensor<ui16>\n"
       "    %r = stablehlo.select %c, %n, %x : tensor<i1>, tensor<ui16>\n"},
      {"f32",
       "    %c = stablehlo.compare GT, %a, %b, TOTALORDER : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
       "    %r = stablehlo.select %c, %a, %b : tensor<i1>, tensor<f32>\n"},
      {"bf16",
       "    %h = stablehlo.convert %a : (tensor<bf16>) -> tensor<f32>\n"
       "    %k = stablehlo.convert %b : (tensor<bf16>) -> tensor<f32>\n"
       "    %p = stablehlo.multiply %h, %k : tensor<f32>\n"
       "    %q = stablehlo.convert %p : (tensor<f32>) -> tensor<bf16>\n"
       "    %d = stablehlo.divide %q, %a : tensor<bf16>\n"
       "    %m = stablehlo.minimum %d, %b : tensor<bf16>\n"
       "    %r = stablehlo.add %m, %a : tensor<bf16>\n"},
  };
  static char text[4096];
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    const char *et = cases[ci].et;
    hs_tensor in;
    in.dtype = strcmp(et, "i8") == 0 ? HS_I8 : strcmp(et, "ui16") == 0 ? HS_U16 : strcmp(et, "f32") == 0 ? HS_F32 : HS_BF16;
    in.shape.rank = 2;
    in.shape.dims[0] = 13;
    in.shape.dims[1] = 57;
    int64_t n = 13 * 57;
    in.data = malloc(hs_dtype_size(in.dtype) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
      double v = rnd_in(-300, 300) / 8.0;
      if (in.dtype == HS_F32 && i % 17 == 0) v = i % 2 ? NAN : -0.0;
      if (in.dtype == HS_I8 || in.dtype == HS_U16) hs_store_i64(in.dtype, in.data, i, rnd_in(-40000, 40000));
      else hs_store_f64(in.dtype, in.data, i, v);
    }
    hs_tensor out[2];
    for (int variant = 0; variant < 2; variant++) {
      sprintf(text,
              "func.func @main(%%x: tensor<13x57x%s>) -> tensor<13x%s> {\n"
              "  %%init = stablehlo.constant dense<1> : tensor<%s>\n"
              "  %%0 = \"stablehlo.reduce\"(%%x, %%init) <{dimensions = array<i64: 1>}> ({\n"
              "  ^bb0(%%a: tensor<%s>, %%b: tensor<%s>):\n%s%s"
              "    stablehlo.return %%r : tensor<%s>\n"
              "  }) : (tensor<13x57x%s>, tensor<%s>) -> tensor<13x%s>\n"
              "  return %%0 : tensor<13x%s>\n}\n",
              et, et, et, et, et, cases[ci].ops,
              /* the executor variant: an unused popcnt, which the VM refuses */
              variant ? "    %w = stablehlo.constant dense<3> : tensor<i32>\n"
                        "    %u = stablehlo.popcnt %w : tensor<i32>\n"
                      : "",
              et, et, et, et, et);
      CHECK_OK(hs_test_run(text, 1, &in, 1, &out[variant], 1));
    }
    for (int64_t i = 0; i < 13; i++) {
      double a = hs_load_f64(in.dtype, out[0].data, i), b = hs_load_f64(in.dtype, out[1].data, i);
      CHECK_MSG(a == b || (isnan(a) && isnan(b)), "%s row %lld: vm %g, executor %g\n%s", et, (long long)i, a, b, text);
    }
    free(in.data), free(out[0].data), free(out[1].data);
  }
}

HS_TEST(reduce_bad_input_is_an_error) {
#define REDUCE_FMT \
      "func.func @main(%%x: tensor<2x3xf32>) -> %s {\n" \
      "  %%z = stablehlo.constant dense<0.0> : tensor<f32>\n" \
      "  %%0 = stablehlo.reduce(%%x init: %%z) applies stablehlo.add across dimensions = %s : (tensor<2x3xf32>, tensor<f32>) -> %s\n" \
      "  return %%0 : %s\n}\n"
  char text[1024];
  sprintf(text, REDUCE_FMT, "tensor<2xf32>", "[2]", "tensor<2xf32>", "tensor<2xf32>");
  CHECK_ERR(hs_test_compile(text), HS_INVALID_ARGUMENT);
  sprintf(text, REDUCE_FMT, "tensor<f32>", "[1, 1]", "tensor<f32>", "tensor<f32>");
  CHECK_ERR(hs_test_compile(text), HS_INVALID_ARGUMENT);
  sprintf(text, REDUCE_FMT, "tensor<3xf32>", "[1]", "tensor<3xf32>", "tensor<3xf32>");
  CHECK_ERR(hs_test_compile(text), HS_INVALID_ARGUMENT);
  /* a body returning the wrong type */
  CHECK_ERR(hs_test_compile("func.func @main(%x: tensor<2xf32>) -> tensor<f32> {\n"
                         "  %z = stablehlo.constant dense<0.0> : tensor<f32>\n"
                         "  %0 = \"stablehlo.reduce\"(%x, %z) <{dimensions = array<i64: 0>}> ({\n"
                         "  ^bb0(%a: tensor<f32>, %b: tensor<f32>):\n"
                         "    %c = stablehlo.compare GT, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
                         "    stablehlo.return %c : tensor<i1>\n"
                         "  }) : (tensor<2xf32>, tensor<f32>) -> tensor<f32>\n"
                         "  return %0 : tensor<f32>\n}\n"),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_test_compile("func.func @main(%x: tensor<2xcomplex<f32>>, %z: tensor<complex<f32>>) -> tensor<complex<f32>> {\n"
                         "  %0 = stablehlo.reduce(%x init: %z) applies stablehlo.add across dimensions = [0] : "
                         "(tensor<2xcomplex<f32>>, tensor<complex<f32>>) -> tensor<complex<f32>>\n"
                         "  return %0 : tensor<complex<f32>>\n}\n"),
            HS_UNIMPLEMENTED);
}

/* ------------------------------------------------------------ reduce_window */

typedef struct rw_case {
  int rank;
  int64_t in[4], win[4], str[4], bdil[4], wdil[4], plo[4], phi[4], out[4];
} rw_case;

static bool rw_finish(rw_case *c) {
  for (int d = 0; d < c->rank; d++) {
    int64_t di = (c->in[d] - 1) * c->bdil[d] + 1;
    int64_t padded = c->plo[d] + di + c->phi[d];
    int64_t w = (c->win[d] - 1) * c->wdil[d] + 1;
    if (padded <= 0 || w > padded) return false;
    c->out[d] = (padded - w) / c->str[d] + 1;
  }
  return true;
}

/* Naive reduce_window per the spec: padding and holes read as init. */
static void rw_naive(const rw_case *c, int kind, const float *x, double init, double *out) {
  int64_t no = numel(c->out, c->rank), nw = numel(c->win, c->rank);
  for (int64_t o = 0; o < no; o++) {
    int64_t oi[4], wi[4];
    unravel(o, c->out, c->rank, oi);
    double acc = init;
    for (int64_t w = 0; w < nw; w++) {
      unravel(w, c->win, c->rank, wi);
      int64_t flat = 0;
      bool inside = true;
      for (int d = 0; d < c->rank; d++) {
        int64_t q = oi[d] * c->str[d] + wi[d] * c->wdil[d] - c->plo[d];
        if (q < 0 || q % c->bdil[d] || q / c->bdil[d] >= c->in[d]) inside = false;
        flat = flat * c->in[d] + (inside ? q / c->bdil[d] : 0);
      }
      double v = inside ? x[flat] : init;
      acc = kind == B_ADD ? acc + v : fmax(acc, v);
    }
    out[o] = acc;
  }
}

static void rw_text(const rw_case *c, int kind, int generic, const char *init, char *text) {
  char it[128], ot[128], a[5][128], pad[256];
  type_str(it, c->in, c->rank, "f32");
  type_str(ot, c->out, c->rank, "f32");
  int off = sprintf(pad, "dense<[");
  for (int d = 0; d < c->rank; d++)
    off += sprintf(pad + off, d ? ", [%lld, %lld]" : "[%lld, %lld]", (long long)c->plo[d], (long long)c->phi[d]);
  sprintf(pad + off, "]> : tensor<%dx2xi64>", c->rank);
  sprintf(text,
          "func.func @main(%%x: %s) -> %s {\n"
          "  %%init = stablehlo.constant dense<%s> : tensor<f32>\n"
          "  %%0 = \"stablehlo.reduce_window\"(%%x, %%init) <{window_dimensions = %s, window_strides = %s, "
          "base_dilations = %s, window_dilations = %s, padding = %s}> ({\n"
          "  ^bb0(%%a: tensor<f32>, %%b: tensor<f32>):\n%s"
          "    stablehlo.return %%r : tensor<f32>\n"
          "  }) : (%s, tensor<f32>) -> %s\n"
          "  return %%0 : %s\n}\n",
          it, ot, init, ints_str(a[0], c->win, c->rank), ints_str(a[1], c->str, c->rank),
          ints_str(a[2], c->bdil, c->rank), ints_str(a[3], c->wdil, c->rank), pad,
          body(kind, generic), it, ot, ot);
}

static void run_rw_case(const rw_case *c, int kind, int iter, int threads) {
  static char text[8192];
  hs_tensor in = make_f32(c->in, c->rank, kind == B_ADD);
  int64_t no = numel(c->out, c->rank);
  double *want = malloc(sizeof(double) * (size_t)no);
  rw_naive(c, kind, in.data, kind == B_ADD ? 0.0 : -INFINITY, want);
  for (int generic = 0; generic < V_COUNT; generic++) {
    rw_text(c, kind, generic, kind == B_ADD ? "0.0" : "0xFF800000", text);
    hs_tensor out;
    CHECK_OK(hs_test_run(text, threads, &in, 1, &out, 1));
    for (int64_t o = 0; o < no; o++) {
      float got = ((float *)out.data)[o];
      CHECK_MSG(got == (float)want[o], "iter %d generic %d: out[%lld] = %g, want %g\n%s", iter,
                generic, (long long)o, got, want[o], text);
    }
    free(out.data);
  }
  free(want);
  free(in.data);
}

HS_TEST(reduce_window_random_both_paths) {
  for (int iter = 0; iter < 80; iter++) {
    rw_case c;
    do {
      memset(&c, 0, sizeof c);
      c.rank = rnd_in(1, 4);
      for (int d = 0; d < c.rank; d++) {
        bool trivial = rnd() % 3 == 0;
        c.in[d] = rnd_in(1, 8);
        c.win[d] = trivial ? 1 : rnd_in(1, 3);
        c.str[d] = trivial ? 1 : rnd_in(1, 3);
        c.bdil[d] = trivial || rnd() % 4 ? 1 : 2;
        c.wdil[d] = trivial || rnd() % 3 ? 1 : 2;
        c.plo[d] = trivial ? 0 : rnd_in(-1, 2);
        c.phi[d] = trivial ? 0 : rnd_in(-1, 2);
      }
    } while (!rw_finish(&c));
    run_rw_case(&c, rnd() % 2, iter, 1);
    if (hs_test_failed_current) return;
  }
}

/* Pooling shapes big enough for the threaded fast path: NCHW and NHWC max
 * pooling 3x3 stride 2 pad 1, and a cumulative sum along an outer dim. */
HS_TEST(reduce_window_pooling_shapes_threaded) {
  rw_case nchw = {4, {2, 8, 37, 41}, {1, 1, 3, 3}, {1, 1, 2, 2}, {1, 1, 1, 1}, {1, 1, 1, 1},
                  {0, 0, 1, 1}, {0, 0, 1, 1}, {0}};
  rw_case nhwc = {4, {2, 37, 41, 16}, {1, 3, 3, 1}, {1, 2, 2, 1}, {1, 1, 1, 1}, {1, 1, 1, 1},
                  {0, 1, 1, 0}, {0, 1, 1, 0}, {0}};
  rw_case cum = {2, {64, 33}, {64, 1}, {1, 1}, {1, 1}, {1, 1}, {63, 0}, {0, 0}, {0}};
  CHECK(rw_finish(&nchw) && rw_finish(&nhwc) && rw_finish(&cum));
  run_rw_case(&nchw, B_MAX, 0, 2);
  run_rw_case(&nhwc, B_MAX, 1, 2);
  run_rw_case(&cum, B_ADD, 2, 2);
  run_rw_case(&nchw, B_ADD, 3, 2);
}

HS_TEST(reduce_window_spec_padding_semantics) {
  /* Padding reads as the init value: with init 10 and add, a window over one
   * padding element and x[0] sums 10 (init) + 10 (pad) + 1. */
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %x = stablehlo.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>\n"
      "  %i = stablehlo.constant dense<10.0> : tensor<f32>\n"
      "  %0 = \"stablehlo.reduce_window\"(%x, %i) <{window_dimensions = array<i64: 2>, padding = dense<[[1, 1]]> : tensor<1x2xi64>}> ({\n"
      "  ^bb0(%a: tensor<f32>, %b: tensor<f32>):\n"
      "    %r = stablehlo.add %a, %b : tensor<f32>\n"
      "    stablehlo.return %r : tensor<f32>\n"
      "  }) : (tensor<3xf32>, tensor<f32>) -> tensor<4xf32>\n"
      "  check.expect_eq_const %0, dense<[21.0, 13.0, 15.0, 23.0]> : tensor<4xf32>\n"
      /* the spec's own example: base and window dilations, strides, padding */
      "  %y = stablehlo.constant dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi32>\n"
      "  %z = stablehlo.constant dense<0> : tensor<i32>\n"
      "  %1 = \"stablehlo.reduce_window\"(%y, %z) <{window_dimensions = array<i64: 2, 1>, window_strides = array<i64: 4, 1>, "
      "base_dilations = array<i64: 2, 1>, window_dilations = array<i64: 3, 1>, padding = dense<[[2, 1], [0, 0]]> : tensor<2x2xi64>}> ({\n"
      "  ^bb0(%a: tensor<i32>, %b: tensor<i32>):\n"
      "    %r = stablehlo.add %a, %b : tensor<i32>\n"
      "    stablehlo.return %r : tensor<i32>\n"
      "  }) : (tensor<3x2xi32>, tensor<i32>) -> tensor<2x2xi32>\n"
      "  check.expect_eq_const %1, dense<[[0, 0], [3, 4]]> : tensor<2x2xi32>\n"
      "  return\n}\n"));
}

HS_TEST(reduce_window_variadic) {
  /* max with its index over windows of 2 (ties keep the first) */
  CHECK_OK(hs_test_run_checked(
      "func.func @main() {\n"
      "  %x = stablehlo.constant dense<[3.0, 1.0, 4.0, 4.0, 5.0]> : tensor<5xf32>\n"
      "  %i = stablehlo.iota dim = 0 : tensor<5xi32>\n"
      "  %n = stablehlo.constant dense<0xFF800000> : tensor<f32>\n"
      "  %z = stablehlo.constant dense<-1> : tensor<i32>\n"
      "  %0:2 = \"stablehlo.reduce_window\"(%x, %i, %n, %z) <{window_dimensions = array<i64: 2>}> ({\n"
      "  ^bb0(%a: tensor<f32>, %ai: tensor<i32>, %b: tensor<f32>, %bi: tensor<i32>):\n"
      "    %c = stablehlo.compare GE, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    %v = stablehlo.select %c, %a, %b : tensor<i1>, tensor<f32>\n"
      "    %w = stablehlo.select %c, %ai, %bi : tensor<i1>, tensor<i32>\n"
      "    stablehlo.return %v, %w : tensor<f32>, tensor<i32>\n"
      "  }) : (tensor<5xf32>, tensor<5xi32>, tensor<f32>, tensor<i32>) -> (tensor<4xf32>, tensor<4xi32>)\n"
      "  check.expect_eq_const %0#0, dense<[3.0, 4.0, 4.0, 5.0]> : tensor<4xf32>\n"
      "  check.expect_eq_const %0#1, dense<[0, 2, 2, 4]> : tensor<4xi32>\n"
      "  return\n}\n"));
}

HS_TEST(reduce_window_bad_input_is_an_error) {
#define RW_FMT                                                                                  \
  "func.func @main(%%x: tensor<4x4xf32>) -> tensor<%s> {\n"                                      \
  "  %%z = stablehlo.constant dense<0.0> : tensor<f32>\n"                                        \
  "  %%0 = \"stablehlo.reduce_window\"(%%x, %%z) <{window_dimensions = array<i64: %s>%s}> ({\n" \
  "  ^bb0(%%a: tensor<f32>, %%b: tensor<f32>):\n"                                               \
  "    %%r = stablehlo.add %%a, %%b : tensor<f32>\n"                                             \
  "    stablehlo.return %%r : tensor<f32>\n"                                                     \
  "  }) : (tensor<4x4xf32>, tensor<f32>) -> tensor<%s>\n"                                        \
  "  return %%0 : tensor<%s>\n}\n"
  char text[2048];
  sprintf(text, RW_FMT, "3x3xf32", "2, 2", "", "3x4xf32", "3x4xf32"); /* wrong result shape */
  CHECK_ERR(hs_test_compile(text), HS_INVALID_ARGUMENT);
  sprintf(text, RW_FMT, "3xf32", "2", "", "3xf32", "3xf32"); /* wrong window rank */
  CHECK_ERR(hs_test_compile(text), HS_INVALID_ARGUMENT);
  sprintf(text, RW_FMT, "3x3xf32", "2, 2", ", window_strides = array<i64: 0, 1>", "3x3xf32", "3x3xf32");
  CHECK_ERR(hs_test_compile(text), HS_INVALID_ARGUMENT);
}

/* ------------------------------------------------------------ select_and_scatter */

HS_TEST(select_and_scatter_random_both_paths) {
  static char text[8192];
  for (int iter = 0; iter < 40; iter++) {
    int rank = rnd_in(1, 3);
    int64_t in[3], win[3], str[3], plo[3], phi[3], src[3];
    bool ok = true;
    for (int d = 0; d < rank; d++) {
      in[d] = rnd_in(1, iter < 30 ? 7 : 40);
      win[d] = rnd_in(1, 3);
      str[d] = rnd_in(1, 3);
      plo[d] = rnd_in(0, 1);
      phi[d] = rnd_in(0, 1);
      int64_t padded = in[d] + plo[d] + phi[d];
      if (win[d] > padded) ok = false;
      else src[d] = (padded - win[d]) / str[d] + 1;
    }
    if (!ok) {
      iter--;
      continue;
    }
    hs_tensor ins[2] = {make_f32(in, rank, true), make_f32(src, rank, true)};
    int64_t n = numel(in, rank), ns = numel(src, rank);
    float *x = ins[0].data, *s = ins[1].data;
    double *want = calloc((size_t)n, sizeof(double));
    for (int64_t si = 0; si < ns; si++) {
      int64_t sidx[3];
      unravel(si, src, rank, sidx);
      int64_t nw = numel(win, rank), sel = -1;
      for (int64_t w = 0; w < nw; w++) {
        int64_t widx[3], flat = 0;
        unravel(w, win, rank, widx);
        bool inside = true;
        for (int d = 0; d < rank; d++) {
          int64_t q = sidx[d] * str[d] + widx[d] - plo[d];
          if (q < 0 || q >= in[d]) inside = false;
          flat = flat * in[d] + (inside ? q : 0);
        }
        if (!inside) continue;
        if (sel < 0 || !(x[sel] >= x[flat])) sel = flat;
      }
      if (sel >= 0) want[sel] += s[si];
    }
    char it[128], st[128], a[3][128], pad[256];
    type_str(it, in, rank, "f32");
    type_str(st, src, rank, "f32");
    int off = sprintf(pad, "dense<[");
    for (int d = 0; d < rank; d++)
      off += sprintf(pad + off, d ? ", [%lld, %lld]" : "[%lld, %lld]", (long long)plo[d], (long long)phi[d]);
    sprintf(pad + off, "]> : tensor<%dx2xi64>", rank);
    for (int generic = 0; generic < V_COUNT; generic++) {
      sprintf(text,
              "func.func @main(%%x: %s, %%s: %s) -> %s {\n"
              "  %%z = stablehlo.constant dense<0.0> : tensor<f32>\n"
              "  %%0 = \"stablehlo.select_and_scatter\"(%%x, %%s, %%z) <{window_dimensions = %s, "
              "window_strides = %s, padding = %s}> ({\n"
              "  ^bb0(%%a: tensor<f32>, %%b: tensor<f32>):\n"
              "    %%c = stablehlo.compare GE, %%a, %%b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
              "%s"
              "  }, {\n"
              "  ^bb0(%%a: tensor<f32>, %%b: tensor<f32>):\n%s"
              "    stablehlo.return %%r : tensor<f32>\n"
              "  }) : (%s, %s, tensor<f32>) -> %s\n"
              "  return %%0 : %s\n}\n",
              it, st, it, ints_str(a[0], win, rank), ints_str(a[1], str, rank), pad,
              generic == V_VM     ? "    %t = stablehlo.and %c, %c : tensor<i1>\n    stablehlo.return %t : tensor<i1>\n"
              : generic == V_EXEC ? "    %u = stablehlo.sine %a : tensor<f32>\n    stablehlo.return %c : tensor<i1>\n"
                                  : "    stablehlo.return %c : tensor<i1>\n",
              body(B_ADD, generic), it, st, it, it);
      hs_tensor out;
      CHECK_OK(hs_test_run(text, 1, ins, 2, &out, 1));
      for (int64_t i = 0; i < n; i++) {
        float got = ((float *)out.data)[i];
        CHECK_MSG(got == (float)want[i], "iter %d generic %d: out[%lld] = %g, want %g\n%s", iter,
                  generic, (long long)i, got, want[i], text);
      }
      free(out.data);
    }
    free(want);
    free(ins[0].data), free(ins[1].data);
  }
}

HS_TEST(select_and_scatter_bad_input_is_an_error) {
  CHECK_ERR(hs_test_compile(
                "func.func @main(%x: tensor<4xf32>, %s: tensor<3xf32>) -> tensor<4xf32> {\n"
                "  %z = stablehlo.constant dense<0.0> : tensor<f32>\n"
                "  %0 = \"stablehlo.select_and_scatter\"(%x, %s, %z) <{window_dimensions = array<i64: 2>, window_strides = array<i64: 2>}> ({\n"
                "  ^bb0(%a: tensor<f32>, %b: tensor<f32>):\n"
                "    %c = stablehlo.compare GE, %a, %b, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
                "    stablehlo.return %c : tensor<i1>\n"
                "  }, {\n"
                "  ^bb0(%a: tensor<f32>, %b: tensor<f32>):\n"
                "    %r = stablehlo.add %a, %b : tensor<f32>\n"
                "    stablehlo.return %r : tensor<f32>\n"
                "  }) : (tensor<4xf32>, tensor<3xf32>, tensor<f32>) -> tensor<4xf32>\n"
                "  return %0 : tensor<4xf32>\n}\n"),
            HS_INVALID_ARGUMENT);
}

int main(void) {
  HS_RUN(reduce_random_f32_both_paths);
  HS_RUN(reduce_integer_bool_and_half_semantics);
  HS_RUN(reduce_variadic_argmax);
  HS_RUN(reduce_vm_matches_executor);
  HS_RUN(reduce_bad_input_is_an_error);
  HS_RUN(reduce_window_random_both_paths);
  HS_RUN(reduce_window_pooling_shapes_threaded);
  HS_RUN(reduce_window_spec_padding_semantics);
  HS_RUN(reduce_window_variadic);
  HS_RUN(reduce_window_bad_input_is_an_error);
  HS_RUN(select_and_scatter_random_both_paths);
  HS_RUN(select_and_scatter_bad_input_is_an_error);
  return hs_test_summary();
}
