/*
 * cuda_conv.c - stablehlo.convolution through cuDNN.
 *
 * Taken: f32 lhs, rhs and result, 1 or 2 spatial dims (1-D runs as 2-D with a
 * unit height), batch_group_count 1, any feature_group_count (cuDNN group
 * count), and weights known at plan time (bound weights, constants, folded
 * values: b->konst[1]).  Everything else is declined and runs on the host:
 * other dtypes, 3+ spatial dims, batch groups, weights computed per run, and
 * whatever cuDNN offers no algorithm for.
 *
 * Layouts.  The dimension numbers say which dim of each tensor is batch,
 * feature and spatial; with the row-major strides of the tensor's own shape
 * that gives an (N, C, H, W) view with element strides, which is what
 * cudnnSetTensorNdDescriptor describes.  So NCHW (torch), NHWC (JAX) or any
 * other permutation is used in place, no copies.  The weights are reordered
 * once, on the host, into cuDNN's filter layout: KRSC (CUDNN_TENSOR_NHWC)
 * when the input is channels-last, else KCRS (CUDNN_TENSOR_NCHW), trying the
 * other one when cuDNN has no algorithm for the first.  window_reversal is
 * folded into that reorder.
 *
 * Padding.  cuDNN pads symmetrically.  Symmetric padding, or asymmetric
 * padding for which cuDNN's output with pad_lo on both sides has the
 * result's size (the windows start at the same places, and the extra high
 * padding is never read, or reads zeros either way), passes as pad_lo.
 * Other asymmetric padding, negative padding and lhs_dilation (interior
 * padding) pre-pad the input with the pad kernel (hs_kp_pad) into the
 * workspace, in the input's own layout, and the convolution then has no
 * padding.
 *
 * Algorithm: cuDNN's heuristics (cudnnGetConvolutionForwardAlgorithm_v7, no
 * timing runs at plan time), the first one that succeeds with a workspace of
 * at most 512 MiB.  Math: CUDNN_FMA_MATH (plain f32, results comparable with
 * the CPU's) unless HS_CUDA_TF32=1, which lets cuDNN use TF32 tensor cores.
 *
 * The descriptors are created at plan time and destroyed by
 * hs_cuda_release_op() when the plan is freed; run() only enqueues (an
 * optional pad kernel and cudnnConvolutionForward) on the context's stream.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_internal.h"
#include "runtime/cuda/cuda_launch.h"

#define WS_ALIGN 256
#define MAX_ALGO_WS ((size_t)512 << 20)

typedef struct conv_plan {
  cudnnTensorDescriptor_t in_desc, out_desc;
  cudnnFilterDescriptor_t w_desc;
  cudnnConvolutionDescriptor_t conv;
  cudnnConvolutionFwdAlgo_t algo;
  size_t algo_ws;     /* cuDNN's workspace bytes */
  const void *w;      /* device weights in the filter layout (plan-owned) */
  bool prepad;        /* input padded into the workspace first */
  size_t pad_bytes;   /* the padded input's bytes, aligned; cuDNN's workspace follows */
  hs_kp_pad pad;      /* src and dst set per run */
} conv_plan;

/* The op's geometry, read as la_conv.c reads it (prepare() validated it). */
typedef struct geom {
  int nsp;
  int64_t ib, ifd, isp[2], ko, ki, ksp[2], ob, of, osp[2];
  int64_t stride[2], lo[2], hi[2], ldil[2], rdil[2], rev[2];
  int64_t g, bg;
} geom;

/* Attribute readers for an op prepare() accepted: a failure only declines
 * (the status is dropped). */
static bool ok(hs_status *st) {
  bool good = st == NULL;
  hs_status_free(st);
  return good;
}

static bool list(const hs_op *op, const char *name, int n, int64_t dflt, int64_t *dst) {
  const int64_t *v = NULL;
  int nv = 0;
  if (!ok(hs_op_get_ints(op, name, false, &v, &nv)) || (nv != 0 && nv != n)) return false;
  for (int i = 0; i < n; i++) dst[i] = nv ? v[i] : dflt;
  return true;
}

static bool field(const hs_op *op, const hs_attr *dn, const char *name, int64_t *out) {
  return ok(hs_struct_get_int(op, dn, name, true, 0, out));
}

static bool fields(const hs_op *op, const hs_attr *dn, const char *name, int n, int64_t *out) {
  const int64_t *v = NULL;
  int nv = 0;
  if (!ok(hs_struct_get_ints(op, dn, name, false, &v, &nv)) || nv != n) return false;
  for (int i = 0; i < n; i++) out[i] = v[i];
  return true;
}

static bool parse(const hs_op *op, int rank, geom *g) {
  const hs_attr *dn = hs_op_attr(op, "dimension_numbers");
  int n = rank - 2;
  int64_t pad[4] = {0, 0, 0, 0};
  g->nsp = n;
  if (!dn || n < 1 || n > 2) return false;
  if (!field(op, dn, "input_batch_dimension", &g->ib) ||
      !field(op, dn, "input_feature_dimension", &g->ifd) ||
      !fields(op, dn, "input_spatial_dimensions", n, g->isp) ||
      !field(op, dn, "kernel_output_feature_dimension", &g->ko) ||
      !field(op, dn, "kernel_input_feature_dimension", &g->ki) ||
      !fields(op, dn, "kernel_spatial_dimensions", n, g->ksp) ||
      !field(op, dn, "output_batch_dimension", &g->ob) ||
      !field(op, dn, "output_feature_dimension", &g->of) ||
      !fields(op, dn, "output_spatial_dimensions", n, g->osp))
    return false;
  if (!list(op, "window_strides", n, 1, g->stride) || !list(op, "lhs_dilation", n, 1, g->ldil) ||
      !list(op, "rhs_dilation", n, 1, g->rdil) || !list(op, "window_reversal", n, 0, g->rev) ||
      !list(op, "padding", 2 * n, 0, pad) ||
      !ok(hs_op_get_int(op, "feature_group_count", false, 1, &g->g)) ||
      !ok(hs_op_get_int(op, "batch_group_count", false, 1, &g->bg)))
    return false;
  for (int i = 0; i < n; i++) {
    g->lo[i] = pad[2 * i];
    g->hi[i] = pad[2 * i + 1];
  }
  return true;
}

/* The (N, C, H, W) view of a tensor of shape s whose batch, feature and
 * spatial dims are b, f, sp; 1-D gets a unit H just outside W.  False when a
 * dim or stride does not fit cuDNN's ints. */
static bool view4(const hs_shape *s, int64_t b, int64_t f, const int64_t *sp, int nsp, int dims[4],
                  int strides[4]) {
  int64_t st[HS_MAX_RANK], d[4], t[4];
  hs_shape_strides(s, st);
  d[0] = s->dims[b], t[0] = st[b];
  d[1] = s->dims[f], t[1] = st[f];
  if (nsp == 2) {
    d[2] = s->dims[sp[0]], t[2] = st[sp[0]];
    d[3] = s->dims[sp[1]], t[3] = st[sp[1]];
  } else {
    d[3] = s->dims[sp[0]], t[3] = st[sp[0]];
    d[2] = 1, t[2] = t[3] * d[3];
  }
  for (int i = 0; i < 4; i++) {
    if (d[i] < 1 || d[i] > INT_MAX || t[i] > INT_MAX) return false;
    dims[i] = (int)d[i];
    strides[i] = (int)t[i];
  }
  return hs_shape_numel(s) <= INT_MAX;
}

/* Reorders the weights (row-major in their own shape ws) into [K, C/g, R, S]
 * (nhwc: [K, R, S, C/g]) with the window reversal applied; malloc'd. */
static float *filter_host(const float *w, const hs_shape *ws, const geom *g, const int fd[4],
                          bool nhwc) {
  int64_t st[HS_MAX_RANK], sr = 0, ss, off = 0;
  hs_shape_strides(ws, st);
  int64_t K = fd[0], C = fd[1], R = fd[2], S = fd[3];
  if (g->nsp == 2) {
    sr = st[g->ksp[0]];
    ss = st[g->ksp[1]];
    if (g->rev[0]) off += (R - 1) * sr, sr = -sr;
    if (g->rev[1]) off += (S - 1) * ss, ss = -ss;
  } else {
    ss = st[g->ksp[0]];
    if (g->rev[0]) off += (S - 1) * ss, ss = -ss;
  }
  float *out = malloc(sizeof(float) * (size_t)(K * C * R * S));
  if (!out) return NULL;
  for (int64_t k = 0; k < K; k++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t r = 0; r < R; r++)
        for (int64_t s = 0; s < S; s++) {
          int64_t dst = nhwc ? ((k * R + r) * S + s) * C + c : ((k * C + c) * R + r) * S + s;
          out[dst] = w[off + k * st[g->ko] + c * st[g->ki] + r * sr + s * ss];
        }
  return out;
}

static void plan_release(conv_plan *p) {
  if (p->in_desc) cudnnDestroyTensorDescriptor(p->in_desc);
  if (p->out_desc) cudnnDestroyTensorDescriptor(p->out_desc);
  if (p->w_desc) cudnnDestroyFilterDescriptor(p->w_desc);
  if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
  p->in_desc = p->out_desc = NULL;
  p->w_desc = NULL;
  p->conv = NULL;
}

static hs_status *conv_run(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  static const float one = 1.0f, zero = 0.0f;
  const conv_plan *p = d->state;
  const void *src = in[0];
  char *ws = x->ws;
  if (p->prepad) {
    hs_kp_pad k = p->pad;
    k.src = in[0];
    k.dst = ws;
    HS_RETURN_IF_ERROR(hs_cuda_error(hs_cuda_k_pad(x->stream, &k), "padding a convolution's input"));
    src = ws;
    ws += p->pad_bytes;
  }
  HS_RETURN_IF_ERROR(hs_cudnn_error(cudnnSetStream(x->dnn, x->stream), "setting the stream"));
  return hs_cudnn_error(cudnnConvolutionForward(x->dnn, &one, p->in_desc, src, p->w_desc, p->w, p->conv,
                                                p->algo, p->algo_ws ? ws : NULL, p->algo_ws, &zero,
                                                p->out_desc, out[0]),
                        "convolution forward");
}

static hs_status *conv_empty(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  return NULL; /* the result has no elements */
}

/* With the filter format fmt: cuDNN's first algorithm that works within
 * MAX_ALGO_WS (p->algo, p->algo_ws); false when there is none. */
static bool pick_algo(hs_cuda_build *b, conv_plan *p, cudnnTensorFormat_t fmt, const int fd[4], bool tf32) {
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  if (cudnnSetFilterNdDescriptor(p->w_desc, CUDNN_DATA_FLOAT, fmt, 4, fd) != CUDNN_STATUS_SUCCESS ||
      cudnnGetConvolutionForwardAlgorithm_v7(b->dnn, p->in_desc, p->w_desc, p->conv, p->out_desc,
                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n,
                                             perf) != CUDNN_STATUS_SUCCESS)
    return false;
  for (int i = 0; i < n; i++) {
    size_t ws = 0;
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > MAX_ALGO_WS) continue;
    /* TF32 allowed: the math type the heuristic paired with the algorithm;
     * otherwise the descriptor stays FMA-only */
    if (tf32 && cudnnSetConvolutionMathType(p->conv, perf[i].mathType) != CUDNN_STATUS_SUCCESS) continue;
    if (cudnnGetConvolutionForwardWorkspaceSize(b->dnn, p->in_desc, p->w_desc, p->conv, p->out_desc,
                                                perf[i].algo, &ws) != CUDNN_STATUS_SUCCESS ||
        ws > MAX_ALGO_WS)
      continue;
    p->algo = perf[i].algo;
    p->algo_ws = ws;
    return true;
  }
  return false;
}

/* Fills p; *taken false declines (p's descriptors are then the caller's to
 * release, as on error). */
static hs_status *plan(hs_cuda_build *b, const hs_op *op, const geom *g, conv_plan *p, bool *taken) {
  const hs_shape *ls = &op->operands[0]->type.shape, *ks = &op->operands[1]->type.shape;
  const hs_shape *os = &op->results[0]->type.shape;
  *taken = false;
  /* Padding: as cuDNN's symmetric pad_lo, or by the pad kernel. */
  hs_shape padded = *ls;
  int pad[2] = {0, 0}, stride[2] = {1, 1}, dil[2] = {1, 1};
  int64_t sp = g->nsp == 2 ? 0 : 1; /* cuDNN's spatial slot of op spatial dim 0 */
  for (int i = 0; i < g->nsp; i++) {
    int64_t in = ls->dims[g->isp[i]], ext = (ks->dims[g->ksp[i]] - 1) * g->rdil[i] + 1;
    int64_t sym = in + 2 * g->lo[i] >= ext ? (in + 2 * g->lo[i] - ext) / g->stride[i] + 1 : 0;
    if (g->ldil[i] != 1 || g->lo[i] < 0 || g->hi[i] < 0 || sym != os->dims[g->osp[i]]) p->prepad = true;
    if (g->stride[i] > INT_MAX || g->rdil[i] > INT_MAX || g->lo[i] > INT_MAX) return NULL;
    stride[sp + i] = (int)g->stride[i];
    dil[sp + i] = (int)g->rdil[i];
    pad[sp + i] = (int)g->lo[i];
  }
  if (p->prepad) {
    hs_kp_pad *k = &p->pad;
    memset(k, 0, sizeof *k);
    k->esize = 4;
    k->rank = ls->rank;
    for (int r = 0; r < ls->rank; r++) k->in_dims[r] = ls->dims[r];
    for (int i = 0; i < g->nsp; i++) {
      int64_t d = g->isp[i], in = ls->dims[d];
      padded.dims[d] = g->lo[i] + (in - 1) * g->ldil[i] + 1 + g->hi[i];
      k->lo[d] = g->lo[i];
      k->interior[d] = g->ldil[i] - 1;
      pad[sp + i] = 0;
    }
    for (int r = 0; r < ls->rank; r++) k->out_dims[r] = padded.dims[r];
    k->n = hs_shape_numel(&padded);
    p->pad_bytes = ((size_t)k->n * 4 + WS_ALIGN - 1) & ~(size_t)(WS_ALIGN - 1);
  }
  /* Descriptors. */
  int id[4], is[4], od[4], ostr[4], fd[4], got[4];
  if (!view4(&padded, g->ib, g->ifd, g->isp, g->nsp, id, is) ||
      !view4(os, g->ob, g->of, g->osp, g->nsp, od, ostr) || hs_shape_numel(ks) > INT_MAX)
    return NULL;
  fd[0] = (int)ks->dims[g->ko];
  fd[1] = (int)ks->dims[g->ki];
  fd[2] = g->nsp == 2 ? (int)ks->dims[g->ksp[0]] : 1;
  fd[3] = (int)ks->dims[g->ksp[g->nsp - 1]];
  if (cudnnCreateTensorDescriptor(&p->in_desc) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateTensorDescriptor(&p->out_desc) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateFilterDescriptor(&p->w_desc) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateConvolutionDescriptor(&p->conv) != CUDNN_STATUS_SUCCESS)
    return hs_op_error(op, HS_OUT_OF_MEMORY, "cuDNN: cannot create descriptors");
  const char *env = getenv("HS_CUDA_TF32");
  bool tf32 = env && strcmp(env, "1") == 0;
  if (cudnnSetTensorNdDescriptor(p->in_desc, CUDNN_DATA_FLOAT, 4, id, is) != CUDNN_STATUS_SUCCESS ||
      cudnnSetTensorNdDescriptor(p->out_desc, CUDNN_DATA_FLOAT, 4, od, ostr) != CUDNN_STATUS_SUCCESS ||
      cudnnSetConvolutionNdDescriptor(p->conv, 2, pad, stride, dil, CUDNN_CROSS_CORRELATION,
                                      CUDNN_DATA_FLOAT) != CUDNN_STATUS_SUCCESS ||
      cudnnSetConvolutionGroupCount(p->conv, (int)g->g) != CUDNN_STATUS_SUCCESS ||
      cudnnSetConvolutionMathType(p->conv, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH) != CUDNN_STATUS_SUCCESS ||
      cudnnSetFilterNdDescriptor(p->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, fd) != CUDNN_STATUS_SUCCESS ||
      cudnnGetConvolutionNdForwardOutputDim(p->conv, p->in_desc, p->w_desc, 4, got) != CUDNN_STATUS_SUCCESS)
    return NULL;
  for (int i = 0; i < 4; i++)
    if (got[i] != od[i]) return NULL;
  /* Algorithm, trying the filter layout that matches the input's first. */
  bool nhwc = is[1] == 1 && id[1] > 1;
  if (!pick_algo(b, p, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, fd, tf32)) {
    nhwc = !nhwc;
    if (!pick_algo(b, p, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, fd, tf32)) return NULL;
  }
  float *w = filter_host(b->konst[1]->data, ks, g, fd, nhwc);
  if (!w) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  void *dev = NULL;
  hs_status *st = hs_cuda_build_upload(b, w, sizeof(float) * (size_t)hs_shape_numel(ks), &dev);
  free(w);
  HS_RETURN_IF_ERROR(st);
  p->w = dev;
  *taken = true;
  return NULL;
}

hs_status *hs_cuda_build_conv(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  d->run = NULL;
  if (op->n_operands != 2 || op->n_results != 1 || !b->dnn || hs_cuda_emulating()) return NULL;
  const hs_type *lt = &op->operands[0]->type, *kt = &op->operands[1]->type, *ot = &op->results[0]->type;
  const hs_tensor *w = b->konst[1];
  if (lt->kind != HS_TYPE_TENSOR || kt->kind != HS_TYPE_TENSOR || ot->kind != HS_TYPE_TENSOR ||
      lt->dtype != HS_F32 || kt->dtype != HS_F32 || ot->dtype != HS_F32 || !w || w->dtype != HS_F32)
    return NULL;
  geom g;
  memset(&g, 0, sizeof g);
  if (!parse(op, lt->shape.rank, &g) || g.bg != 1 || g.g < 1 || g.g > INT_MAX) return NULL;
  if (hs_shape_numel(&ot->shape) == 0) {
    d->run = conv_empty;
    return NULL;
  }
  /* nothing to read (no input features, empty window...): the host writes the zeros */
  if (hs_shape_numel(&lt->shape) == 0 || hs_shape_numel(&kt->shape) == 0) return NULL;
  conv_plan p;
  memset(&p, 0, sizeof p);
  bool taken = false;
  hs_status *st = plan(b, op, &g, &p, &taken);
  conv_plan *keep = !st && taken ? hs_arena_memdup(b->arena, &p, sizeof p) : NULL;
  if (!keep) {
    plan_release(&p);
    if (!st && taken) st = hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
    return st;
  }
  d->state = keep;
  d->run = conv_run;
  d->workspace = (p.prepad ? p.pad_bytes : 0) + p.algo_ws;
  return NULL;
}

void hs_cuda_release_op(hs_cuda_op *d) {
  if (d && d->run == conv_run && d->state) plan_release(d->state);
}
