/*
 * test_conv_fold.c - the bind-time convolution rewrites (runtime/conv_fold.c,
 * kernels/la_conv.c, la_dnnl.c): BatchNorm tails folded into convolutions
 * with bias / residual / ReLU epilogues, and values kept in oneDNN's layout
 * between convolutions.
 *
 * Each random program (torch-export style: conv, then BatchNorm as subtract,
 * rsqrt(var + eps) multiply, gamma multiply, beta add over broadcasts, then
 * optionally a residual and a ReLU as maximum with zero) is compiled twice,
 * its weights bound, and run: once with the pass (HS_NO_CONV_FOLD unset)
 * and once without.  The rewrite changes rounding (the scale is multiplied
 * into the weights), so results must agree to 1e-5 relative to the output's
 * largest magnitude, not bitwise.  With oneDNN present the tails must also
 * be gone from the block after binding.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "runtime/exec.h"
#include "runtime/kernels/la_common.h"
#include "testlib.h"

static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;
static unsigned rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state >> 11);
}
static int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (unsigned)(hi - lo + 1)); }
static float rnd_u(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() % 100001) / 100000.0f; }

/* ---- program text -------------------------------------------------------- */

typedef struct buf {
  char s[1 << 16];
  size_t n;
} buf;

static void put(buf *b, const char *fmt, ...) HS_PRINTF(2, 3);
static void put(buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
  va_end(ap);
  if (k > 0) b->n += (size_t)k;
  if (b->n >= sizeof b->s) b->n = sizeof b->s - 1;
}

/* A convolution's shape. */
typedef struct conv_spec {
  int ci, co, g, k, stride, pad_lo, pad_hi, dil;
  int in, out; /* square spatial size */
} conv_spec;

static void fill_out(conv_spec *c) {
  int ext = (c->k - 1) * c->dil + 1;
  c->out = (c->in + c->pad_lo + c->pad_hi - ext) / c->stride + 1;
}

/* The parameters of the program, in order: per convolution i its weights
 * %w<i> and BatchNorm %m<i> %v<i> %g<i> %b<i>; then the inputs. */
typedef struct prog {
  buf text;
  int n_params;
  hs_tensor params[32];
  int n_inputs;
  hs_tensor inputs[4];
  hs_shape out_shape;
  bool nhwc;
} prog;

static hs_tensor tensor4(bool nhwc, int n, int c, int h, int w) {
  hs_tensor t;
  memset(&t, 0, sizeof t);
  t.dtype = HS_F32;
  t.shape.rank = 4;
  int64_t d[4] = {n, c, h, w};
  if (nhwc) d[1] = h, d[2] = w, d[3] = c;
  memcpy(t.shape.dims, d, sizeof d);
  return t;
}

static char *type4(char *s, const hs_shape *sh) {
  sprintf(s, "tensor<%lldx%lldx%lldx%lldxf32>", (long long)sh->dims[0], (long long)sh->dims[1],
          (long long)sh->dims[2], (long long)sh->dims[3]);
  return s;
}

static void add_param(prog *p, hs_tensor t, float lo, float hi) {
  int64_t n = hs_tensor_numel(&t);
  t.data = malloc(sizeof(float) * (size_t)(n + 1));
  for (int64_t i = 0; i < n; i++) ((float *)t.data)[i] = rnd_u(lo, hi);
  p->params[p->n_params++] = t;
}

static void add_input(prog *p, hs_tensor t) {
  int64_t n = hs_tensor_numel(&t);
  t.data = malloc(sizeof(float) * (size_t)(n + 1));
  for (int64_t i = 0; i < n; i++) ((float *)t.data)[i] = rnd_u(-1, 1);
  p->inputs[p->n_inputs++] = t;
}

static void free_prog(prog *p) {
  for (int i = 0; i < p->n_params; i++) free(p->params[i].data);
  for (int i = 0; i < p->n_inputs; i++) free(p->inputs[i].data);
}

/* Weights and BatchNorm parameters of convolution i. */
static void conv_params(prog *p, const conv_spec *c) {
  hs_tensor w = tensor4(p->nhwc, c->co, c->ci / c->g, c->k, c->k);
  if (p->nhwc) { /* HWIO */
    w.shape.dims[0] = c->k, w.shape.dims[1] = c->k, w.shape.dims[2] = c->ci / c->g, w.shape.dims[3] = c->co;
  }
  add_param(p, w, -0.5f, 0.5f);
  hs_tensor v = {HS_F32, {1, {c->co}}, NULL};
  add_param(p, v, -0.1f, 0.1f); /* mean */
  add_param(p, v, 0.5f, 1.5f);  /* var */
  add_param(p, v, 0.5f, 1.5f);  /* gamma */
  add_param(p, v, -0.5f, 0.5f); /* beta */
}

/* %out = BatchNorm(conv_i(%in)) as torch export writes it. */
static void emit_conv_bn(prog *p, int i, const conv_spec *c, const char *in, const char *out) {
  buf *b = &p->text;
  char ti[64], to[64], tw[64], tc[64];
  hs_tensor x = tensor4(p->nhwc, 1, c->ci, c->in, c->in), y = tensor4(p->nhwc, 1, c->co, c->out, c->out);
  hs_tensor w = tensor4(p->nhwc, c->co, c->ci / c->g, c->k, c->k);
  if (p->nhwc) w.shape.dims[0] = c->k, w.shape.dims[1] = c->k, w.shape.dims[2] = c->ci / c->g, w.shape.dims[3] = c->co;
  type4(ti, &x.shape);
  type4(to, &y.shape);
  type4(tw, &w.shape);
  const char *dn = p->nhwc ? "[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]" : "[b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1]";
  put(b,
      "  %%c%d = stablehlo.convolution(%s, %%w%d) dim_numbers = %s, window = {stride = [%d, %d], pad = [[%d, %d], "
      "[%d, %d]], rhs_dilate = [%d, %d]} {batch_group_count = 1 : i64, feature_group_count = %d : i64} : (%s, %s) -> "
      "%s\n",
      i, in, i, dn, c->stride, c->stride, c->pad_lo, c->pad_hi, c->pad_lo, c->pad_hi, c->dil, c->dil, c->g, ti, tw, to);
  /* per-channel vectors reshaped to 1xCox1x1 (or 1x1x1xCo) and broadcast */
  if (p->nhwc) sprintf(tc, "tensor<1x1x1x%dxf32>", c->co);
  else sprintf(tc, "tensor<1x%dx1x1xf32>", c->co);
  const char *names[4] = {"m", "v", "g", "b"};
  for (int k = 0; k < 4; k++) {
    put(b, "  %%%sr%d = stablehlo.reshape %%%s%d : (tensor<%dxf32>) -> %s\n", names[k], i, names[k], i, c->co, tc);
    if (k == 1) {
      put(b, "  %%eps%d = stablehlo.broadcast_in_dim %%eps, dims = [] : (tensor<f32>) -> %s\n", i, tc);
      put(b, "  %%ve%d = stablehlo.add %%vr%d, %%eps%d : %s\n", i, i, i, tc);
      put(b, "  %%vs%d = stablehlo.rsqrt %%ve%d : %s\n", i, i, tc);
      put(b, "  %%vb%d = stablehlo.broadcast_in_dim %%vs%d, dims = [0, 1, 2, 3] : (%s) -> %s\n", i, i, tc, to);
    } else {
      put(b, "  %%%sb%d = stablehlo.broadcast_in_dim %%%sr%d, dims = [0, 1, 2, 3] : (%s) -> %s\n", names[k], i,
          names[k], i, tc, to);
    }
  }
  put(b, "  %%s%d = stablehlo.subtract %%c%d, %%mb%d : %s\n", i, i, i, to);
  put(b, "  %%n%d = stablehlo.multiply %%s%d, %%vb%d : %s\n", i, i, i, to);
  put(b, "  %%a%d = stablehlo.multiply %%n%d, %%gb%d : %s\n", i, i, i, to);
  put(b, "  %s = stablehlo.add %%a%d, %%bb%d : %s\n", out, i, i, to);
}

static void emit_relu(prog *p, const char *in, const char *out, const hs_shape *s) {
  char t[64];
  type4(t, s);
  put(&p->text, "  %s_z = stablehlo.broadcast_in_dim %%zero, dims = [] : (tensor<f32>) -> %s\n", out, t);
  put(&p->text, "  %s = stablehlo.maximum %s, %s_z : %s\n", out, in, out, t);
}

static void random_conv(conv_spec *c, int ci, int in, bool allow_groups) {
  c->ci = ci;
  c->g = allow_groups && ci % 2 == 0 && rnd() % 3 == 0 ? 2 : 1;
  c->co = c->g * rnd_in(2, 9);
  c->k = rnd_in(1, 3);
  c->stride = rnd_in(1, 2);
  c->dil = c->k > 1 && rnd() % 4 == 0 ? 2 : 1;
  c->pad_lo = rnd_in(0, c->k / 2 + (c->dil > 1));
  c->pad_hi = rnd_in(0, c->k / 2 + (c->dil > 1));
  c->in = in;
  fill_out(c);
}

/* Modes: 0 conv+BN(+relu); 1 conv+BN + residual input (+relu); 2 two
 * convolutions of one input, both BN'd, summed, relu (ResNet downsampling);
 * 3 a chain conv-BN-relu, conv-BN + the first's output, relu, then a 1x1
 * conv-BN-relu (values passed between convolutions); 4 like 0 in NHWC/HWIO. */
static void make_prog(prog *p, int mode) {
  memset(p, 0, sizeof *p);
  p->nhwc = mode == 4;
  conv_spec c[3];
  int n_conv = mode == 2 || mode == 3 ? (mode == 3 ? 3 : 2) : 1;
  int ci = rnd_in(1, 4) * (rnd() % 2 ? 2 : 3), in = rnd_in(5, 12);
  random_conv(&c[0], ci, in, true);
  bool relu = mode >= 2 || rnd() % 2;
  if (mode == 1 || mode == 3) { /* keep the shape for the residual */
    c[0].stride = 1;
    c[0].dil = 1;
    c[0].pad_lo = c[0].pad_hi = c[0].k / 2;
    if (c[0].k == 2) c[0].pad_hi = 1, c[0].pad_lo = 0;
    fill_out(&c[0]);
  }
  if (mode == 2) { /* a 1x1 strided convolution to the same output shape */
    c[1] = c[0];
    c[1].g = 1;
    c[1].k = 1;
    c[1].dil = 1;
    c[1].pad_lo = 0;
    c[1].pad_hi = 0;
    c[1].stride = c[0].stride;
    fill_out(&c[1]);
    while (c[1].out > c[0].out) c[1].pad_hi--, fill_out(&c[1]);
    if (c[1].out < c[0].out) c[1].pad_hi += c[0].out - c[1].out, fill_out(&c[1]);
  }
  if (mode == 3) {
    c[1] = c[0];
    c[1].ci = c[0].co;
    c[1].g = 1;
    c[1].k = 3;
    c[1].pad_lo = c[1].pad_hi = 1;
    c[1].in = c[0].out;
    fill_out(&c[1]);
    memset(&c[2], 0, sizeof c[2]);
    c[2].ci = c[1].co;
    c[2].co = rnd_in(2, 8);
    c[2].g = 1;
    c[2].k = 1;
    c[2].stride = 1;
    c[2].dil = 1;
    c[2].in = c[1].out;
    fill_out(&c[2]);
  }
  for (int i = 0; i < n_conv; i++) conv_params(p, &c[i]);
  hs_tensor x = tensor4(p->nhwc, 1, c[0].ci, c[0].in, c[0].in);
  add_input(p, x);
  hs_tensor y0 = tensor4(p->nhwc, 1, c[0].co, c[0].out, c[0].out);
  if (mode == 1) add_input(p, y0);
  const conv_spec *last = &c[n_conv - 1];
  if (mode == 2) last = &c[0];
  p->out_shape = tensor4(p->nhwc, 1, last->co, last->out, last->out).shape;
  /* signature */
  buf *b = &p->text;
  char t[64];
  put(b, "func.func public @main(");
  for (int i = 0; i < n_conv; i++) {
    put(b, "%s%%w%d: %s", i ? ", " : "", i, type4(t, &p->params[5 * i].shape));
    const char *names[4] = {"m", "v", "g", "b"};
    for (int k = 0; k < 4; k++) put(b, ", %%%s%d: tensor<%dxf32>", names[k], i, c[i].co);
  }
  put(b, ", %%x: %s", type4(t, &x.shape));
  if (mode == 1) put(b, ", %%r: %s", type4(t, &y0.shape));
  put(b, ") -> %s {\n", type4(t, &p->out_shape));
  put(b, "  %%eps = stablehlo.constant dense<9.99999974E-6> : tensor<f32>\n");
  put(b, "  %%zero = stablehlo.constant dense<0.000000e+00> : tensor<f32>\n");
  const char *result = "%y";
  switch (mode) {
    case 0:
    case 4:
      emit_conv_bn(p, 0, &c[0], "%x", relu ? "%t0" : "%y");
      if (relu) emit_relu(p, "%t0", "%y", &p->out_shape);
      break;
    case 1:
      emit_conv_bn(p, 0, &c[0], "%x", "%t0");
      put(b, "  %%t1 = stablehlo.add %%t0, %%r : %s\n", type4(t, &p->out_shape));
      if (relu) emit_relu(p, "%t1", "%y", &p->out_shape);
      else result = "%t1";
      break;
    case 2:
      emit_conv_bn(p, 0, &c[0], "%x", "%t0");
      emit_conv_bn(p, 1, &c[1], "%x", "%t1");
      put(b, "  %%t2 = stablehlo.add %%t0, %%t1 : %s\n", type4(t, &p->out_shape));
      emit_relu(p, "%t2", "%y", &p->out_shape);
      break;
    default: {
      hs_shape s1 = tensor4(p->nhwc, 1, c[1].co, c[1].out, c[1].out).shape;
      emit_conv_bn(p, 0, &c[0], "%x", "%t0");
      emit_relu(p, "%t0", "%u0", &y0.shape);
      emit_conv_bn(p, 1, &c[1], "%u0", "%t1");
      if (c[1].co == c[0].co) {
        put(b, "  %%t2 = stablehlo.add %%t1, %%u0 : %s\n", type4(t, &s1));
        emit_relu(p, "%t2", "%u1", &s1);
      } else {
        emit_relu(p, "%t1", "%u1", &s1);
      }
      emit_conv_bn(p, 2, &c[2], "%u1", "%t3");
      emit_relu(p, "%t3", "%y", &p->out_shape);
    }
  }
  put(b, "  return %s : %s\n}\n", result, type4(t, &p->out_shape));
}

/* ---- running ------------------------------------------------------------- */

static int natives_seen; /* convolutions with a tensor in oneDNN's layout */
static int dnnl_seen;    /* programs whose convolutions all had oneDNN */

static int count_ops(const hs_func *f, const char *name) {
  const hs_block *b = f->body->blocks[0];
  int n = 0;
  for (int i = 0; i < b->n_ops; i++) n += !b->ops[i]->folded && strcmp(b->ops[i]->name, name) == 0;
  return n;
}

/* Compiles, binds the weights, runs; *tails: fused ops left in the block. */
static hs_status *run_prog(const prog *p, bool fold, int threads, float *out, int *tails, int *convs_dnnl) {
  if (fold) unsetenv("HS_NO_CONV_FOLD");
  else setenv("HS_NO_CONV_FOLD", "1", 1);
  hs_module *m = NULL;
  hs_compiled *c = NULL;
  hs_threadpool *pool = NULL;
  hs_status *st = hs_parse_module(p->text.s, p->text.n, "conv_fold.mlir", &m);
  if (!st) st = hs_compile_module(m, &c);
  hs_func *f = c ? hs_module_find_func(c->module, "main") : NULL;
  if (!st && convs_dnnl) {
    *convs_dnnl = 1;
    const hs_block *b = f->body->blocks[0];
    for (int i = 0; i < b->n_ops; i++)
      if (strcmp(b->ops[i]->name, "stablehlo.convolution") == 0 && !hs_la_conv_is_dnnl(b->ops[i])) *convs_dnnl = 0;
  }
  if (!st) {
    c->num_threads = threads;
    st = hs_fold_constants(c, f, p->params, p->n_params);
  }
  if (!st && threads > 1) st = hs_threadpool_create(threads, &pool);
  if (!st) {
    hs_tensor args[40];
    memcpy(args, p->params, sizeof(hs_tensor) * (size_t)p->n_params);
    memcpy(args + p->n_params, p->inputs, sizeof(hs_tensor) * (size_t)p->n_inputs);
    hs_tensor res = {HS_F32, p->out_shape, out};
    hs_exec_options opt = {pool};
    st = hs_execute(c, f, args, p->n_params + p->n_inputs, &res, 1, &opt);
    if (tails) *tails = count_ops(f, "hloserve.fused_elementwise");
    const hs_block *b = f->body->blocks[0];
    for (int i = 0; i < b->n_ops; i++)
      if (strcmp(b->ops[i]->name, "stablehlo.convolution") == 0 && hs_la_conv_native(b->ops[i])) natives_seen++;
  }
  unsetenv("HS_NO_CONV_FOLD");
  hs_threadpool_destroy(pool);
  hs_compiled_free(c);
  return st;
}

static double rel_to_max(const float *a, const float *b, int64_t n) {
  double worst = 0, mx = 1e-30;
  for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)b[i]));
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (!(d <= worst)) worst = d;
  }
  return worst / mx;
}

static void check_mode(int mode, int cases) {
  for (int t = 0; t < cases; t++) {
    prog *p = calloc(1, sizeof *p);
    CHECK(p);
    make_prog(p, mode);
    int64_t n = hs_shape_numel(&p->out_shape);
    float *a = malloc(sizeof(float) * (size_t)(n + 1)), *b = malloc(sizeof(float) * (size_t)(n + 1));
    int tails = -1, dnnl = 0, threads = 1 + t % 2;
    hs_status *s1 = run_prog(p, true, threads, a, &tails, &dnnl);
    hs_status *s2 = run_prog(p, false, threads, b, NULL, NULL);
    double e = (!s1 && !s2) ? rel_to_max(a, b, n) : 1;
    if (s1 || s2) fprintf(stderr, "mode %d case %d: %s\n%s\n", mode, t, hs_status_message(s1 ? s1 : s2), p->text.s);
    else if (e > 1e-5 || (dnnl && tails != 0))
      fprintf(stderr, "mode %d case %d: rel err %g, %d tails left\n%s\n", mode, t, e, tails, p->text.s);
    hs_status_free(s1);
    hs_status_free(s2);
    free(a);
    free(b);
    free_prog(p);
    free(p);
    CHECK_MSG(e <= 1e-5, "mode %d case %d: rel err %g", mode, t, e);
    dnnl_seen += dnnl;
    if (dnnl) CHECK_MSG(tails == 0, "mode %d case %d: %d element-wise tails left", mode, t, tails);
  }
}

HS_TEST(conv_bn_relu_folds) { check_mode(0, 24); }
HS_TEST(conv_bn_residual_folds) { check_mode(1, 16); }
HS_TEST(downsample_sum_of_two_convs_folds) { check_mode(2, 16); }
HS_TEST(chain_keeps_native_layouts) {
  natives_seen = dnnl_seen = 0;
  check_mode(3, 16);
  if (dnnl_seen) CHECK_MSG(natives_seen > 0, "no value stayed in oneDNN's layout");
  printf("  %d convolutions with tensors in oneDNN's layout\n", natives_seen);
}
HS_TEST(nhwc_conv_folds) { check_mode(4, 12); }

/* The plain (reference) paths apply the same epilogue when oneDNN is not
 * used at run time (layouts stay row-major: HS_NO_CONV_LAYOUT). */
HS_TEST(reference_path_applies_epilogue) {
  setenv("HS_NO_CONV_LAYOUT", "1", 1);
  for (int mode = 0; mode < 4; mode++) {
    prog *p = calloc(1, sizeof *p);
    CHECK(p);
    make_prog(p, mode);
    int64_t n = hs_shape_numel(&p->out_shape);
    float *a = malloc(sizeof(float) * (size_t)(n + 1)), *b = malloc(sizeof(float) * (size_t)(n + 1));
    /* bind with the fold (oneDNN decides), run on the reference path */
    unsetenv("HS_NO_CONV_FOLD");
    hs_module *m = NULL;
    hs_compiled *c = NULL;
    hs_status *st = hs_parse_module(p->text.s, p->text.n, "ref.mlir", &m);
    if (!st) st = hs_compile_module(m, &c);
    hs_func *f = c ? hs_module_find_func(c->module, "main") : NULL;
    if (!st) st = hs_fold_constants(c, f, p->params, p->n_params);
    if (!st) {
      hs_tensor args[40];
      memcpy(args, p->params, sizeof(hs_tensor) * (size_t)p->n_params);
      memcpy(args + p->n_params, p->inputs, sizeof(hs_tensor) * (size_t)p->n_inputs);
      hs_tensor res = {HS_F32, p->out_shape, a};
      hs_la_force_reference(true);
      st = hs_execute(c, f, args, p->n_params + p->n_inputs, &res, 1, NULL);
      hs_la_force_reference(false);
    }
    hs_compiled_free(c);
    hs_status *s2 = st ? NULL : run_prog(p, false, 1, b, NULL, NULL);
    double e = (!st && !s2) ? rel_to_max(a, b, n) : 1;
    if (st || s2) fprintf(stderr, "mode %d: %s\n", mode, hs_status_message(st ? st : s2));
    hs_status_free(st);
    hs_status_free(s2);
    free(a);
    free(b);
    free_prog(p);
    free(p);
    CHECK_MSG(e <= 1e-5, "mode %d: rel err %g", mode, e);
  }
  unsetenv("HS_NO_CONV_LAYOUT");
}

/* Tails that are not affine in the convolution, or whose convolution has
 * other readers, stay as they are (and the results are exact). */
static const char *k_not_folded =
    "func.func public @main(%w: tensor<4x3x3x3xf32>, %x: tensor<1x3x8x8xf32>) -> (tensor<1x4x8x8xf32>, "
    "tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {\n"
    "  %c = stablehlo.convolution(%x, %w) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], window = {pad = "
    "[[1, 1], [1, 1]]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x3x8x8xf32>, "
    "tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>\n"
    "  %e = stablehlo.exponential %c : tensor<1x4x8x8xf32>\n"
    "  %k = stablehlo.constant dense<2.0> : tensor<f32>\n"
    "  %kb = stablehlo.broadcast_in_dim %k, dims = [] : (tensor<f32>) -> tensor<1x4x8x8xf32>\n"
    "  %m = stablehlo.multiply %e, %kb : tensor<1x4x8x8xf32>\n"
    "  %c2 = stablehlo.convolution(%x, %w) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], window = {pad = "
    "[[1, 1], [1, 1]]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x3x8x8xf32>, "
    "tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>\n"
    "  %q = stablehlo.multiply %c2, %c2 : tensor<1x4x8x8xf32>\n"
    "  %c3 = stablehlo.convolution(%x, %w) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], window = {pad = "
    "[[1, 1], [1, 1]]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x3x8x8xf32>, "
    "tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>\n"
    "  %s = stablehlo.add %c3, %kb : tensor<1x4x8x8xf32>\n"
    "  %u = stablehlo.add %s, %c3 : tensor<1x4x8x8xf32>\n"
    "  return %m, %q, %c3 : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>\n"
    "}\n";

HS_TEST(non_affine_tails_and_shared_results_stay) {
  static float w[108], x[192], a[3][256], b[3][256];
  for (int i = 0; i < 108; i++) w[i] = rnd_u(-0.3f, 0.3f);
  for (int i = 0; i < 192; i++) x[i] = rnd_u(-1, 1);
  for (int pass = 0; pass < 2; pass++) {
    if (pass) setenv("HS_NO_CONV_FOLD", "1", 1);
    hs_module *m = NULL;
    hs_compiled *c = NULL;
    CHECK_OK(hs_parse_module(k_not_folded, strlen(k_not_folded), "nf.mlir", &m));
    CHECK_OK(hs_compile_module(m, &c));
    hs_func *f = hs_module_find_func(c->module, "main");
    hs_tensor wt = {HS_F32, {4, {4, 3, 3, 3}}, w};
    hs_status *st = hs_fold_constants(c, f, &wt, 1);
    int convs = count_ops(f, "stablehlo.convolution");
    hs_tensor args[2] = {wt, {HS_F32, {4, {1, 3, 8, 8}}, x}};
    float (*o)[256] = pass ? b : a;
    hs_tensor res[3];
    for (int i = 0; i < 3; i++) res[i] = (hs_tensor){HS_F32, {4, {1, 4, 8, 8}}, o[i]};
    if (!st) st = hs_execute(c, f, args, 2, res, 3, NULL);
    hs_compiled_free(c);
    unsetenv("HS_NO_CONV_FOLD");
    CHECK_OK(st);
    CHECK(convs == 3);
  }
  CHECK(memcmp(a, b, sizeof a) == 0);
}

/* One bound program run from several threads at once (plans are read-only;
 * workspaces and oneDNN memory objects are per call). */
typedef struct job {
  hs_compiled *c;
  hs_func *f;
  const prog *p;
  float *out;
  hs_status *st;
} job;

static void *run_job(void *arg) {
  job *j = arg;
  hs_tensor args[40];
  memcpy(args, j->p->params, sizeof(hs_tensor) * (size_t)j->p->n_params);
  memcpy(args + j->p->n_params, j->p->inputs, sizeof(hs_tensor) * (size_t)j->p->n_inputs);
  for (int rep = 0; rep < 3 && !j->st; rep++) {
    hs_tensor res = {HS_F32, j->p->out_shape, j->out};
    j->st = hs_execute(j->c, j->f, args, j->p->n_params + j->p->n_inputs, &res, 1, NULL);
  }
  return NULL;
}

HS_TEST(concurrent_runs_of_a_folded_program) {
  prog *p = calloc(1, sizeof *p);
  CHECK(p);
  make_prog(p, 3);
  int64_t n = hs_shape_numel(&p->out_shape);
  hs_module *m = NULL;
  hs_compiled *c = NULL;
  CHECK_OK(hs_parse_module(p->text.s, p->text.n, "mt.mlir", &m));
  CHECK_OK(hs_compile_module(m, &c));
  hs_func *f = hs_module_find_func(c->module, "main");
  CHECK_OK(hs_fold_constants(c, f, p->params, p->n_params));
  job jobs[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (job){c, f, p, malloc(sizeof(float) * (size_t)(n + 1)), NULL};
    pthread_create(&th[i], NULL, run_job, &jobs[i]);
  }
  double e = 0;
  int bad = 0;
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++) {
    if (jobs[i].st) {
      fprintf(stderr, "%s\n", hs_status_message(jobs[i].st));
      hs_status_free(jobs[i].st);
      bad++;
    } else {
      e = fmax(e, rel_to_max(jobs[i].out, jobs[0].out, n));
    }
  }
  for (int i = 0; i < 4; i++) free(jobs[i].out);
  hs_compiled_free(c);
  free_prog(p);
  free(p);
  CHECK(bad == 0);
  CHECK_MSG(e <= 1e-6, "runs differ by %g", e);
}

/* A 3x3 stride-1 convolution with bound weights runs oneDNN's Winograd; it
 * agrees with the direct algorithm (HS_NO_WINOGRAD=1) to 1e-3 of the output's
 * largest magnitude, and concurrent runs of the bound program agree exactly
 * with a single one (the transformed weights are read-only; workspaces are
 * per call). */
static hs_status *compile_bound(const char *text, hs_tensor *w, hs_compiled **c, hs_func **f) {
  hs_module *m = NULL;
  HS_RETURN_IF_ERROR(hs_parse_module(text, strlen(text), "wino.mlir", &m));
  HS_RETURN_IF_ERROR(hs_compile_module(m, c));
  *f = hs_module_find_func((*c)->module, "main");
  return hs_fold_constants(*c, *f, w, 1);
}

typedef struct wino_job {
  hs_compiled *c;
  hs_func *f;
  hs_tensor args[2];
  const float *want;
  int64_t n;
  int bad;
} wino_job;

static void *wino_run(void *arg) {
  wino_job *j = arg;
  float *out = malloc(sizeof(float) * (size_t)j->n);
  for (int rep = 0; rep < 3 && out; rep++) {
    hs_tensor res = {HS_F32, {4, {1, 32, 24, 24}}, out};
    hs_status *st = hs_execute(j->c, j->f, j->args, 2, &res, 1, NULL);
    if (st || memcmp(out, j->want, sizeof(float) * (size_t)j->n) != 0) j->bad = 1;
    hs_status_free(st);
  }
  if (!out) j->bad = 1;
  free(out);
  return NULL;
}

HS_TEST(winograd_for_bound_3x3_convs) {
  static const char *text =
      "func.func public @main(%w: tensor<32x32x3x3xf32>, %x: tensor<1x32x24x24xf32>) -> tensor<1x32x24x24xf32> {\n"
      "  %y = stablehlo.convolution(%x, %w) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1], "
      "window = {pad = [[1, 1], [1, 1]]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : "
      "(tensor<1x32x24x24xf32>, tensor<32x32x3x3xf32>) -> tensor<1x32x24x24xf32>\n"
      "  return %y : tensor<1x32x24x24xf32>\n}\n";
  enum { N = 32 * 24 * 24 };
  hs_tensor args[2] = {tensor4(false, 32, 32, 3, 3), tensor4(false, 1, 32, 24, 24)};
  float *wd = malloc(sizeof(float) * 32 * 32 * 9), *xd = malloc(sizeof(float) * N);
  for (int i = 0; i < 32 * 32 * 9; i++) wd[i] = rnd_u(-0.1f, 0.1f);
  for (int i = 0; i < N; i++) xd[i] = rnd_u(-1.0f, 1.0f);
  args[0].data = wd;
  args[1].data = xd;
  float *out[2] = {malloc(sizeof(float) * N), malloc(sizeof(float) * N)};
  hs_compiled *c[2] = {NULL, NULL};
  hs_func *f[2] = {NULL, NULL};
  for (int way = 0; way < 2; way++) {
    if (way) setenv("HS_NO_WINOGRAD", "1", 1);
    hs_status *st = compile_bound(text, args, &c[way], &f[way]);
    unsetenv("HS_NO_WINOGRAD");
    CHECK_OK(st);
    const hs_block *b = f[way]->body->blocks[0];
    for (int i = 0; i < b->n_ops; i++) {
      if (strcmp(b->ops[i]->name, "stablehlo.convolution") != 0) continue;
      const char *impl = hs_la_conv_impl(b->ops[i]);
      if (strcmp(impl, "none") != 0) /* built with oneDNN */
        CHECK_MSG((strstr(impl, "wino") != NULL) == (way == 0), "way %d: %s", way, impl);
    }
    hs_tensor res = {HS_F32, {4, {1, 32, 24, 24}}, out[way]};
    CHECK_OK(hs_execute(c[way], f[way], args, 2, &res, 1, NULL));
  }
  double e = rel_to_max(out[0], out[1], N);
  CHECK_MSG(e <= 1e-3, "Winograd vs direct: %g of the largest output", e);
  wino_job jobs[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (wino_job){c[0], f[0], {args[0], args[1]}, out[0], N, 0};
    pthread_create(&th[i], NULL, wino_run, &jobs[i]);
  }
  int bad = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    bad += jobs[i].bad;
  }
  CHECK_MSG(bad == 0, "%d concurrent runs differed", bad);
  for (int way = 0; way < 2; way++) hs_compiled_free(c[way]);
  free(out[0]), free(out[1]), free(wd), free(xd);
}

int main(void) {
  HS_RUN(conv_bn_relu_folds);
  HS_RUN(conv_bn_residual_folds);
  HS_RUN(downsample_sum_of_two_convs_folds);
  HS_RUN(chain_keeps_native_layouts);
  HS_RUN(nhwc_conv_folds);
  HS_RUN(reference_path_applies_epilogue);
  HS_RUN(non_affine_tails_and_shared_results_stay);
  HS_RUN(concurrent_runs_of_a_folded_program);
  HS_RUN(winograd_for_bound_3x3_convs);
  return hs_test_summary();
}
