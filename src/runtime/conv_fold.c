/*
 * conv_fold.c - bind-time rewrites around convolutions: BatchNorm, bias,
 * residual and ReLU become the convolution's epilogue, and values passed only
 * between oneDNN convolutions stay in oneDNN's own layout.
 *
 * Why at bind time: only then are the BatchNorm statistics known (they are
 * weights; hs_fold_constants has just computed everything that depends on
 * them alone, e.g. rsqrt(var + eps)).  Why here and not in the fusion pass:
 * fusion is exact and layout-free; this pass changes rounding (the scale is
 * multiplied into the weights, so w*s*x is computed instead of (w*x)*s) and
 * is specific to convolutions.  The results differ from the unfolded
 * program by a few ulps per element (the unit tests bound them at 1e-5
 * relative); HS_NO_CONV_FOLD=1 turns the pass off, HS_NO_CONV_LAYOUT=1 only
 * its second part (both for debugging and measuring).
 *
 * 1. Epilogues.  A convolution's only consumer is often an element-wise tail
 *    (a fused op, fuse.c, or a single element-wise op).  The pass reads the
 *    tail's arithmetic from the ops it was made of and evaluates it
 *    symbolically: every value becomes  sum_i a_i[c] * x_i + b[c], with x_i
 *    the full-size values the tail reads (at most two), a_i and b vectors
 *    along the convolution's output-feature axis c, computed from the
 *    constants (broadcasts of per-channel or scalar constants).  add,
 *    subtract, negate, multiply and divide by constants keep that form; a
 *    maximum with zero at the root is a ReLU.  When one x_i is a oneDNN
 *    convolution with bound weights whose result only the tail reads, the
 *    tail becomes its epilogue: a_i goes into its weights, b into its bias,
 *    the other x_j (if any) becomes a residual added by oneDNN's sum post-op
 *    (with a uniform scale, or after folding a_j into x_j's own convolution
 *    when x_j is one too, as in ResNet's downsampling blocks), and the ReLU a
 *    post-op.  The convolution then takes the tail's result and place in the
 *    block, and the tail is dropped.
 *
 * 2. Layouts.  oneDNN convolutions prefer their own layouts (channels-last
 *    or blocked) and reorder from and to the program's row-major tensors
 *    around every call.  A value produced by a oneDNN convolution and read
 *    only by oneDNN convolutions (as their input or residual) whose formats
 *    agree with the producer's, without padding, is kept in that format: the
 *    reorders on both sides disappear.  Nothing else ever sees such a value
 *    (it is not returned and no other op reads it), so the rest of the
 *    runtime stays row-major.  The convolutions' specialize() (run after
 *    this pass) plans the primitives accordingly.
 */
#include "runtime/conv_fold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/fuse.h"
#include "runtime/kernels/la_common.h"

#define MAX_TERMS 2
#define MAX_DEPTH 64

/* sum_i a[i][c] * x[i] + b[c] for c < C along the tail's feature axis. */
typedef struct form {
  int n;
  const hs_value *x[MAX_TERMS];
  double *a[MAX_TERMS];
  double *b;
} form;

typedef struct tail {
  hs_arena scratch; /* forms of one attempt */
  const hs_tensor *const *kval;
  hs_op *const *members;
  int n_members;
  hs_shape shape; /* the tail's result shape */
  int ax;         /* feature axis */
  int64_t C;
  form **memo;    /* per value id */
} tail;

static form *new_form(tail *t) {
  form *f = hs_arena_calloc(&t->scratch, 1, sizeof *f);
  if (!f) return NULL;
  f->b = hs_arena_calloc(&t->scratch, (size_t)t->C, sizeof(double));
  return f->b ? f : NULL;
}

static double *new_vec(tail *t, double fill) {
  double *v = hs_arena_alloc(&t->scratch, sizeof(double) * (size_t)t->C);
  if (v)
    for (int64_t c = 0; c < t->C; c++) v[c] = fill;
  return v;
}

static bool is_member(const tail *t, const hs_op *op) {
  for (int i = 0; i < t->n_members; i++)
    if (t->members[i] == op) return true;
  return false;
}

/* The per-channel vector of a constant broadcast to the tail's shape
 * (source dim k goes to output dim bd[k]; bd NULL: the identity).  False
 * when it varies along any other axis. */
static bool channel_vector(const tail *t, const hs_tensor *k, const int64_t *bd, int nbd, double *out) {
  if (k->dtype != HS_F32 || (bd ? nbd != k->shape.rank : k->shape.rank != t->shape.rank)) return false;
  int64_t st[HS_MAX_RANK];
  hs_shape_strides(&k->shape, st);
  int64_t cs = 0;
  for (int d = 0; d < k->shape.rank; d++) {
    int64_t od = bd ? bd[d] : d;
    if (od < 0 || od >= t->shape.rank) return false;
    if (od == t->ax && k->shape.dims[d] == t->C && t->C > 1) cs = st[d];
    else if (k->shape.dims[d] != 1) return false;
  }
  const float *p = k->data;
  for (int64_t c = 0; c < t->C; c++) out[c] = p[c * cs];
  return true;
}

static form *eval_value(tail *t, const hs_value *v, int depth);

/* a + s * b, merging equal terms. */
static form *combine(tail *t, const form *a, const form *b, double s) {
  form *r = new_form(t);
  if (!r) return NULL;
  for (int64_t c = 0; c < t->C; c++) r->b[c] = a->b[c] + s * b->b[c];
  for (int pass = 0; pass < 2; pass++) {
    const form *f = pass ? b : a;
    double m = pass ? s : 1.0;
    for (int i = 0; i < f->n; i++) {
      int j = 0;
      while (j < r->n && r->x[j] != f->x[i]) j++;
      if (j == r->n) {
        if (r->n == MAX_TERMS || !(r->a[j] = new_vec(t, 0.0))) return NULL;
        r->x[j] = f->x[i];
        r->n++;
      }
      for (int64_t c = 0; c < t->C; c++) r->a[j][c] += m * f->a[i][c];
    }
  }
  return r;
}

/* f scaled per channel by k (inv: divided by it). */
static form *scale(tail *t, const form *f, const double *k, bool inv) {
  form *r = new_form(t);
  if (!r) return NULL;
  r->n = f->n;
  for (int i = 0; i < f->n; i++) {
    r->x[i] = f->x[i];
    if (!(r->a[i] = new_vec(t, 0.0))) return NULL;
  }
  for (int64_t c = 0; c < t->C; c++) {
    if (inv && k[c] == 0) return NULL;
    double m = inv ? 1.0 / k[c] : k[c];
    r->b[c] = f->b[c] * m;
    for (int i = 0; i < f->n; i++) r->a[i][c] = f->a[i][c] * m;
  }
  return r;
}

static form *eval_op(tail *t, const hs_op *op, int depth) {
  if (op->n_results != 1 || op->results[0]->type.dtype != HS_F32 || op->n_regions) return NULL;
  const char *n = op->name;
  if (strcmp(n, "stablehlo.broadcast_in_dim") == 0) {
    const hs_tensor *k = t->kval[op->operands[0]->id];
    const int64_t *bd;
    int nbd;
    hs_status *st = hs_op_get_ints(op, "broadcast_dimensions", true, &bd, &nbd);
    if (st || !k) {
      hs_status_free(st);
      return NULL;
    }
    form *r = new_form(t);
    return r && channel_vector(t, k, bd, nbd, r->b) ? r : NULL;
  }
  if (op->n_operands < 1 || op->n_operands > 2) return NULL;
  form *x = eval_value(t, op->operands[0], depth + 1);
  form *y = op->n_operands == 2 ? eval_value(t, op->operands[1], depth + 1) : NULL;
  if (!x || (op->n_operands == 2 && !y)) return NULL;
  if (op->n_operands == 1) {
    if (strcmp(n, "stablehlo.negate") != 0) return NULL;
    double *m = new_vec(t, -1.0);
    return m ? scale(t, x, m, false) : NULL;
  }
  if (strcmp(n, "stablehlo.add") == 0) return combine(t, x, y, 1.0);
  if (strcmp(n, "stablehlo.subtract") == 0) return combine(t, x, y, -1.0);
  if (strcmp(n, "stablehlo.multiply") == 0) {
    if (y->n == 0) return scale(t, x, y->b, false);
    if (x->n == 0) return scale(t, y, x->b, false);
    return NULL;
  }
  if (strcmp(n, "stablehlo.divide") == 0) return y->n == 0 ? scale(t, x, y->b, true) : NULL;
  return NULL;
}

static form *eval_value(tail *t, const hs_value *v, int depth) {
  if (depth > MAX_DEPTH || v->type.kind != HS_TYPE_TENSOR || v->type.dtype != HS_F32) return NULL;
  if (t->memo[v->id]) return t->memo[v->id];
  form *r = NULL;
  if (v->def && is_member(t, v->def)) {
    r = eval_op(t, v->def, depth);
  } else if (t->kval[v->id]) { /* a constant of the tail's shape */
    r = new_form(t);
    if (r && !channel_vector(t, t->kval[v->id], NULL, 0, r->b)) r = NULL;
  } else if (hs_shape_equal(&v->type.shape, &t->shape)) {
    r = new_form(t);
    if (r && (r->a[0] = new_vec(t, 1.0)) != NULL) {
      r->n = 1;
      r->x[0] = v;
    } else {
      r = NULL;
    }
  }
  t->memo[v->id] = r;
  return r;
}

static bool all_equal(const double *v, int64_t n, double x) {
  for (int64_t i = 0; i < n; i++)
    if (v[i] != x) return false;
  return true;
}

static bool all_finite(const double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(v[i]) || fabs(v[i]) > 3e38) return false;
  return true;
}

/* ---- the block ----------------------------------------------------------- */

typedef struct pass {
  hs_arena *a;
  hs_func *f;
  hs_block *b;
  const hs_tensor *const *kval;
  int *count;  /* uses per value id in the block, nested regions and terminator included */
  int *nested; /* of which inside nested regions */
} pass;

static void count_uses(const hs_op *op, int *count, int *nested, bool in_region) {
  for (int i = 0; i < op->n_operands; i++) {
    count[op->operands[i]->id]++;
    if (in_region) nested[op->operands[i]->id]++;
  }
  for (int r = 0; r < op->n_regions; r++)
    for (int b = 0; b < op->regions[r]->n_blocks; b++)
      for (int k = 0; k < op->regions[r]->blocks[b]->n_ops; k++)
        count_uses(op->regions[r]->blocks[b]->ops[k], count, nested, true);
}

static void recount(pass *p) {
  memset(p->count, 0, sizeof(int) * ((size_t)p->f->n_values + 1));
  memset(p->nested, 0, sizeof(int) * ((size_t)p->f->n_values + 1));
  for (int i = 0; i < p->b->n_ops; i++) count_uses(p->b->ops[i], p->count, p->nested, false);
}

static int op_index(const hs_block *b, const hs_op *op) {
  for (int i = 0; i < b->n_ops; i++)
    if (b->ops[i] == op) return i;
  return -1;
}

static int uses_by(const hs_op *op, const hs_value *v) {
  int n = 0;
  for (int i = 0; i < op->n_operands; i++) n += op->operands[i] == v;
  return n;
}

static bool bound_weights(const pass *p, const hs_op *conv) {
  return conv->n_operands >= 2 && p->kval[conv->operands[1]->id] != NULL;
}

/* x is a oneDNN convolution's result, with bound weights and no epilogue
 * yet, read only by tail_op, with feature axis ax. */
static bool conv_candidate(const pass *p, const hs_value *x, const hs_op *tail_op, int ax) {
  const hs_op *d = x->def;
  if (!d || d->parent != tail_op->parent || d->folded || d->n_operands != 2 || d->n_results != 1) return false;
  if (!hs_la_conv_is_dnnl(d) || !bound_weights(p, d) || hs_la_conv_feature_dim(d) != ax) return false;
  return p->count[x->id] == uses_by(tail_op, x) && p->nested[x->id] == 0;
}

static float *to_floats(hs_arena *a, const double *v, int64_t n) {
  float *r = hs_arena_alloc(a, sizeof(float) * (size_t)(n + 1));
  if (r)
    for (int64_t i = 0; i < n; i++) r[i] = (float)v[i];
  return r;
}

/* Tries to fold the element-wise op at index j (fused or single) into a
 * convolution.  *done when it did. */
static hs_status *try_tail(pass *p, int j, bool *done) {
  *done = false;
  hs_op *op = p->b->ops[j];
  hs_op *const *members = NULL;
  hs_op *self[1] = {op};
  int n_members = hs_fused_members(op, &members);
  if (n_members == 0) {
    static const char *const ew[] = {"stablehlo.add", "stablehlo.subtract", "stablehlo.multiply",
                                     "stablehlo.divide", "stablehlo.maximum", "stablehlo.negate"};
    bool ok = false;
    for (size_t k = 0; k < sizeof ew / sizeof ew[0]; k++) ok |= strcmp(op->name, ew[k]) == 0;
    if (!ok || op->folded) return NULL;
    members = self;
    n_members = 1;
  }
  if (op->n_results != 1 || op->results[0]->type.dtype != HS_F32) return NULL;
  /* The feature axis: that of a convolution the tail reads. */
  int ax = -1;
  for (int i = 0; i < op->n_operands && ax < 0; i++) {
    const hs_op *d = op->operands[i]->def;
    if (d && d->parent == op->parent && hs_la_conv_is_dnnl(d)) ax = hs_la_conv_feature_dim(d);
  }
  if (ax < 0) return NULL;
  tail t;
  memset(&t, 0, sizeof t);
  hs_arena_init(&t.scratch, 1 << 16);
  t.kval = p->kval;
  t.members = members;
  t.n_members = n_members;
  t.shape = op->results[0]->type.shape;
  t.ax = ax;
  t.C = t.shape.dims[ax];
  t.memo = hs_arena_calloc(&t.scratch, (size_t)p->f->n_values + 1, sizeof(form *));
  hs_status *st = NULL;
  if (!t.memo) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    goto out;
  }
  /* The root: a maximum with zero is the ReLU. */
  const hs_op *root = members[0];
  bool relu = false;
  form *fm = NULL;
  if (strcmp(root->name, "stablehlo.maximum") == 0 && root->n_operands == 2 &&
      root->results[0]->type.dtype == HS_F32) {
    form *x = eval_value(&t, root->operands[0], 1), *y = eval_value(&t, root->operands[1], 1);
    if (x && y && y->n == 0 && all_equal(y->b, t.C, 0.0)) fm = x;
    else if (x && y && x->n == 0 && all_equal(x->b, t.C, 0.0)) fm = y;
    relu = fm != NULL;
  } else {
    fm = eval_op(&t, root, 1);
  }
  if (!fm || fm->n < 1 || !all_finite(fm->b, t.C)) goto out;
  for (int i = 0; i < fm->n; i++)
    if (!all_finite(fm->a[i], t.C)) goto out;
  /* Which term is the convolution, which the residual. */
  bool cand[MAX_TERMS], uni[MAX_TERMS];
  for (int i = 0; i < fm->n; i++) {
    cand[i] = conv_candidate(p, fm->x[i], op, ax);
    uni[i] = fm->a[i][0] != 0 && all_equal(fm->a[i], t.C, fm->a[i][0]);
  }
  int pi = -1, ri = -1;
  if (fm->n == 1) {
    if (cand[0]) pi = 0;
  } else {
    bool ok0 = cand[0] && (uni[1] || cand[1]), ok1 = cand[1] && (uni[0] || cand[0]);
    if (ok0 && ok1) {
      const hs_op *d0 = fm->x[0]->def, *d1 = fm->x[1]->def;
      bool u0 = hs_la_conv_unit_stride(d0), u1 = hs_la_conv_unit_stride(d1);
      if (uni[1] != uni[0]) pi = uni[1] ? 0 : 1; /* no second convolution to rewrite */
      /* a strided convolution (ResNet's downsampling 1x1) has fewer oneDNN
       * kernels that take a sum post-op in blocked layouts: the residual */
      else if (u0 != u1) pi = u0 ? 0 : 1;
      else pi = op_index(p->b, d1) > op_index(p->b, d0) ? 1 : 0;
    } else if (ok0 || ok1) {
      pi = ok0 ? 0 : 1;
    }
    ri = 1 - pi;
  }
  if (pi < 0) goto out;
  hs_op *conv = (hs_op *)fm->x[pi]->def;
  const hs_value *res = ri >= 0 ? fm->x[ri] : NULL;
  /* A residual that the tail reads must be the full f32 value, defined
   * before the tail (it is: the tail reads it). */
  hs_la_conv_epilogue ep;
  memset(&ep, 0, sizeof ep);
  int64_t C = t.C;
  if (!all_equal(fm->a[pi], C, 1.0) && !(ep.scale = to_floats(&t.scratch, fm->a[pi], C))) goto oom;
  if (!all_equal(fm->b, C, 0.0) && !(ep.bias = to_floats(&t.scratch, fm->b, C))) goto oom;
  ep.relu = relu;
  if (res) {
    ep.residual = true;
    ep.sum_scale = 1.0f;
    if (uni[ri] && (!cand[ri] || fm->a[ri][0] == 1.0)) {
      ep.sum_scale = (float)fm->a[ri][0];
    } else {
      /* fold the residual's scale into its own convolution (also a uniform
       * one: a sum post-op with scale 1 is the one every kernel takes) */
      hs_la_conv_epilogue e2;
      memset(&e2, 0, sizeof e2);
      if (!(e2.scale = to_floats(&t.scratch, fm->a[ri], C))) goto oom;
      st = hs_la_conv_set_epilogue((hs_op *)res->def, &e2, p->a);
      if (st) goto out;
    }
  }
  st = hs_la_conv_set_epilogue(conv, &ep, p->a);
  if (st) goto out;
  /* The convolution reads the residual, defines the tail's result and takes
   * the tail's place. */
  hs_value **ops_in = hs_arena_calloc(p->a, 3, sizeof(hs_value *));
  hs_value **outs = hs_arena_calloc(p->a, 1, sizeof(hs_value *));
  if (!ops_in || !outs) goto oom;
  ops_in[0] = conv->operands[0];
  ops_in[1] = conv->operands[1];
  if (res) ops_in[2] = (hs_value *)res;
  conv->operands = ops_in;
  conv->n_operands = res ? 3 : 2;
  hs_value *result = op->results[0];
  result->def = conv;
  result->index = 0;
  outs[0] = result;
  conv->results = outs;
  int ci = op_index(p->b, conv);
  hs_block *b = p->b;
  int n = 0;
  for (int i = 0; i < b->n_ops; i++) {
    if (i == ci) continue;
    b->ops[n++] = i == j ? conv : b->ops[i];
  }
  b->n_ops = n;
  *done = true;
  goto out;
oom:
  st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory folding convolution epilogues");
out:
  hs_arena_free(&t.scratch);
  return st;
}

/* Keeps v (a oneDNN convolution's result) in the convolutions' own format
 * when every reader agrees on it. */
static void try_native(pass *p, hs_op *prod) {
  const hs_value *v = prod->results[0];
  if (p->count[v->id] == 0 || p->nested[v->id]) return;
  int seen = 0;
  for (int i = 0; i < p->b->n_ops; i++) {
    const hs_op *u = p->b->ops[i];
    for (int k = 0; k < u->n_operands; k++) {
      if (u->operands[k] != v) continue;
      if (u->n_results != 1 || !hs_la_conv_is_dnnl(u) || u->folded || !bound_weights(p, u)) return;
      if (k == 1 || !hs_la_conv_formats_match(prod, u, k == 0 ? HS_LA_SRC : HS_LA_RES)) return;
      seen++;
    }
  }
  if (seen != p->count[v->id]) return; /* read by the terminator */
  hs_la_conv_set_native(prod, HS_LA_DST);
  for (int i = 0; i < p->b->n_ops; i++) {
    hs_op *u = p->b->ops[i];
    for (int k = 0; k < u->n_operands; k++)
      if (u->operands[k] == v) hs_la_conv_set_native(u, k == 0 ? HS_LA_SRC : HS_LA_RES);
  }
}

hs_status *hs_conv_fold(hs_arena *a, hs_func *f, const hs_tensor *const *kval, int *n_rewrites) {
  if (n_rewrites) *n_rewrites = 0;
  pass p = {a, f, f->body->blocks[0], kval, NULL, NULL};
  p.count = calloc((size_t)f->n_values + 1, sizeof(int));
  p.nested = calloc((size_t)f->n_values + 1, sizeof(int));
  hs_status *st = NULL;
  if (!p.count || !p.nested) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory folding convolutions of @%s", f->name);
    goto done;
  }
  recount(&p);
  for (int j = 0; j < p.b->n_ops - 1 && !st; j++) {
    bool done = false;
    st = try_tail(&p, j, &done);
    if (done) {
      recount(&p);
      j--; /* the convolution now sits at j, and the ops after it moved down */
      if (n_rewrites) ++*n_rewrites;
    }
  }
  if (st || getenv("HS_NO_CONV_LAYOUT")) goto done;
  for (int i = 0; i < p.b->n_ops - 1; i++) {
    hs_op *op = p.b->ops[i];
    if (op->n_results == 1 && !op->folded && hs_la_conv_is_dnnl(op) && bound_weights(&p, op)) try_native(&p, op);
  }
done:
  free(p.count);
  free(p.nested);
  return st;
}
