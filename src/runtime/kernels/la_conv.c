/*
 * la_conv.c - stablehlo.convolution.
 *
 * prepare() turns the dimension numbers into strides: for each logical axis
 * (batch, feature, spatial d) of lhs, rhs and result, the element stride of
 * the dim that plays it.  Everything after that is layout-free: NCHW/OIHW as
 * torch exports, NHWC/HWIO as JAX does, or any other permutation, are the same
 * convolution with different strides.
 *
 * Three paths, tried in order:
 *  1. oneDNN (f32, 1-3 spatial dims, no lhs dilation, no window reversal,
 *     no batch groups, non-negative padding): a plan is made in prepare()
 *     (primitive from a process-wide cache, reorders from and to the user's
 *     strided layouts when oneDNN prefers blocked ones, weights reordered per
 *     call).  When the weights are bound, specialize() makes the final plan
 *     once: primitive made for the program's threads, weights packed in its
 *     format, the epilogue and layouts the bind-time pass (conv_fold.c) chose.
 *  2. im2col + SGEMM (f32 accumulation, everything else): per batch element
 *     and group, a chunk of the column matrix [Cin/G * window, positions] is
 *     gathered (zeros for padding and lhs-dilation holes, the kernel reversal
 *     folded into how the weights are gathered) and multiplied by the group's
 *     weights.
 *  3. reference (every dtype; also what the tests compare against): the
 *     spec's sum, written out, in the accumulation type of la_common.h.
 *
 * Epilogue (bind time only, f32): out = act(scale[o] * conv + bias[o] +
 * sum_scale * residual), the residual being operand 2.  oneDNN does it as
 * scaled weights plus post-ops; the other paths compute the plain
 * convolution and then one pass over the result (apply_epilogue).
 *
 * Group semantics per the spec: with feature_group_count G, output feature o
 * belongs to group o / (Cout/G) and reads input features [g*Cin/G, ...); with
 * batch_group_count BG, output feature o belongs to group o / (Cout/BG) and
 * reads input batch elements [bg*N/BG, ...).
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels/la_common.h"

typedef struct conv_state {
  int nsp;
  int64_t n_in, n_out;          /* lhs batch; result batch = n_in / bg */
  int64_t ci, co, cig;          /* lhs features, kernel output features, kernel input features */
  int64_t g, bg;                /* feature_group_count, batch_group_count */
  int64_t in[HS_MAX_RANK], k[HS_MAX_RANK], out[HS_MAX_RANK];
  int64_t stride[HS_MAX_RANK], pad_lo[HS_MAX_RANK], ldil[HS_MAX_RANK], rdil[HS_MAX_RANK];
  bool rev[HS_MAX_RANK];
  /* element strides per logical axis */
  int64_t l_b, l_f, l_sp[HS_MAX_RANK];
  int64_t r_o, r_i, r_sp[HS_MAX_RANK];
  int64_t o_b, o_f, o_sp[HS_MAX_RANK];
  int64_t kprod, pprod;         /* window positions, output positions */
  hs_la_acc acc;
  int of_dim;                   /* the result's output-feature dimension */
  /* oneDNN: the problem (kept for re-planning at bind time) and the plan */
  bool dnnl_ok;
  hs_la_dnnl_conv_desc dd;
  const hs_la_dnnl_conv *dnnl;
  /* epilogue (bind time; see la_common.h) */
  bool has_epilogue;
  hs_la_conv_epilogue ep;
  unsigned native;              /* slots stored in the primitive's format */
} conv_state;

static hs_status *get_list(const hs_op *op, const char *name, int n, int64_t dflt, int64_t *dst) {
  const int64_t *v = NULL;
  int nv = 0;
  HS_RETURN_IF_ERROR(hs_op_get_ints(op, name, false, &v, &nv));
  if (!v || nv == 0) {
    for (int i = 0; i < n; i++) dst[i] = dflt;
    return NULL;
  }
  if (nv != n)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "%s has %d entries, expected %d", name, nv, n);
  memcpy(dst, v, sizeof(int64_t) * (size_t)n);
  return NULL;
}

static hs_status *check_dims(const hs_op *op, const char *what, int rank, int64_t a, int64_t b,
                             const int64_t *sp, int nsp) {
  bool used[HS_MAX_RANK] = {false};
  int64_t all[HS_MAX_RANK + 2];
  all[0] = a;
  all[1] = b;
  for (int i = 0; i < nsp; i++) all[2 + i] = sp[i];
  for (int i = 0; i < nsp + 2; i++) {
    if (all[i] < 0 || all[i] >= rank || used[all[i]])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "invalid %s dimension numbers", what);
    used[all[i]] = true;
  }
  return NULL;
}

static void dnnl_try(conv_state *st, hs_dtype lt, hs_dtype rt, hs_dtype ot, const int64_t *pad_hi,
                     hs_arena *arena) {
  if (lt != HS_F32 || rt != HS_F32 || ot != HS_F32) return;
  if (st->nsp < 1 || st->nsp > 3 || st->bg != 1) return;
  if (st->n_out == 0 || st->co == 0 || st->ci == 0 || st->pprod == 0 || st->kprod == 0) return;
  for (int d = 0; d < st->nsp; d++)
    if (st->ldil[d] != 1 || st->rev[d] || st->pad_lo[d] < 0 || pad_hi[d] < 0) return;
  hs_la_dnnl_conv_desc d;
  memset(&d, 0, sizeof d);
  d.nsp = st->nsp;
  d.n = st->n_in;
  d.ci = st->ci;
  d.co = st->co;
  d.groups = st->g;
  for (int i = 0; i < st->nsp; i++) {
    d.in[i] = st->in[i];
    d.k[i] = st->k[i];
    d.out[i] = st->out[i];
    d.stride[i] = st->stride[i];
    d.dil[i] = st->rdil[i];
    d.pad_lo[i] = st->pad_lo[i];
    /* oneDNN computes the output size as StableHLO does (floor division), so
     * the padding goes as it is (a stride that skips the last columns has
     * them unread, not negative padding) */
    d.pad_hi[i] = pad_hi[i];
    int64_t ext = (st->k[i] - 1) * st->rdil[i] + 1;
    if ((st->in[i] + d.pad_lo[i] + d.pad_hi[i] - ext) / st->stride[i] + 1 != st->out[i]) return;
  }
  d.src_strides[0] = st->l_b;
  d.src_strides[1] = st->l_f;
  d.dst_strides[0] = st->o_b;
  d.dst_strides[1] = st->o_f;
  for (int i = 0; i < st->nsp; i++) {
    d.src_strides[2 + i] = st->l_sp[i];
    d.dst_strides[2 + i] = st->o_sp[i];
  }
  d.wei_strides[0] = (st->co / st->g) * st->r_o; /* group */
  d.wei_strides[1] = st->r_o;
  d.wei_strides[2] = st->r_i;
  for (int i = 0; i < st->nsp; i++) d.wei_strides[3 + i] = st->r_sp[i];
  st->dd = d;
  st->dnnl = hs_la_dnnl_conv_plan(&d, 0, NULL, NULL, arena);
  st->dnnl_ok = st->dnnl != NULL;
}

hs_status *hs_la_conv_prepare(hs_op *op, hs_arena *arena) {
  if (op->n_operands != 2 || op->n_results != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected lhs, rhs and one result");
  const hs_type *lt, *rt, *ot;
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 0, &lt));
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 1, &rt));
  HS_RETURN_IF_ERROR(hs_op_tensor_result(op, 0, &ot));
  int rank = lt->shape.rank;
  if (rank < 2 || rt->shape.rank != rank || ot->shape.rank != rank)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "lhs, rhs and result must have the same rank >= 2");
  const hs_attr *dn = hs_op_attr(op, "dimension_numbers");
  if (!dn) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing dimension_numbers");
  int64_t ib, ifd, ko, ki, ob, of;
  const int64_t *isp, *ksp, *osp;
  int nisp, nksp, nosp;
  HS_RETURN_IF_ERROR(hs_struct_get_int(op, dn, "input_batch_dimension", true, 0, &ib));
  HS_RETURN_IF_ERROR(hs_struct_get_int(op, dn, "input_feature_dimension", true, 0, &ifd));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "input_spatial_dimensions", false, &isp, &nisp));
  HS_RETURN_IF_ERROR(hs_struct_get_int(op, dn, "kernel_input_feature_dimension", true, 0, &ki));
  HS_RETURN_IF_ERROR(hs_struct_get_int(op, dn, "kernel_output_feature_dimension", true, 0, &ko));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "kernel_spatial_dimensions", false, &ksp, &nksp));
  HS_RETURN_IF_ERROR(hs_struct_get_int(op, dn, "output_batch_dimension", true, 0, &ob));
  HS_RETURN_IF_ERROR(hs_struct_get_int(op, dn, "output_feature_dimension", true, 0, &of));
  HS_RETURN_IF_ERROR(hs_struct_get_ints(op, dn, "output_spatial_dimensions", false, &osp, &nosp));
  int nsp = rank - 2;
  if (nisp != nsp || nksp != nsp || nosp != nsp)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected %d spatial dimensions", nsp);
  HS_RETURN_IF_ERROR(check_dims(op, "input", rank, ib, ifd, isp, nsp));
  HS_RETURN_IF_ERROR(check_dims(op, "kernel", rank, ki, ko, ksp, nsp));
  HS_RETURN_IF_ERROR(check_dims(op, "output", rank, ob, of, osp, nsp));

  conv_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  st->nsp = nsp;
  int64_t pad[2 * HS_MAX_RANK], pad_hi[HS_MAX_RANK], revv[HS_MAX_RANK];
  HS_RETURN_IF_ERROR(get_list(op, "window_strides", nsp, 1, st->stride));
  HS_RETURN_IF_ERROR(get_list(op, "lhs_dilation", nsp, 1, st->ldil));
  HS_RETURN_IF_ERROR(get_list(op, "rhs_dilation", nsp, 1, st->rdil));
  HS_RETURN_IF_ERROR(get_list(op, "window_reversal", nsp, 0, revv));
  HS_RETURN_IF_ERROR(get_list(op, "padding", 2 * nsp, 0, pad));
  HS_RETURN_IF_ERROR(hs_op_get_int(op, "feature_group_count", false, 1, &st->g));
  HS_RETURN_IF_ERROR(hs_op_get_int(op, "batch_group_count", false, 1, &st->bg));
  for (int i = 0; i < nsp; i++) {
    if (st->stride[i] <= 0 || st->ldil[i] <= 0 || st->rdil[i] <= 0 || st->stride[i] > (1 << 30) ||
        st->ldil[i] > (1 << 20) || st->rdil[i] > (1 << 20))
      return hs_op_error(op, HS_INVALID_ARGUMENT, "strides and dilations must be positive");
    if (pad[2 * i] < -(1LL << 40) || pad[2 * i] > (1LL << 40) || pad[2 * i + 1] < -(1LL << 40) ||
        pad[2 * i + 1] > (1LL << 40))
      return hs_op_error(op, HS_INVALID_ARGUMENT, "padding out of range");
    st->pad_lo[i] = pad[2 * i];
    pad_hi[i] = pad[2 * i + 1];
    st->rev[i] = revv[i] != 0;
  }
  const hs_shape *ls = &lt->shape, *rs = &rt->shape, *os = &ot->shape;
  st->n_in = ls->dims[ib];
  st->ci = ls->dims[ifd];
  st->co = rs->dims[ko];
  st->cig = rs->dims[ki];
  if (st->g <= 0 || st->bg <= 0 || (st->g > 1 && st->bg > 1))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "invalid feature_group_count / batch_group_count");
  if (st->n_in % st->bg != 0 || st->co % st->bg != 0)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "batch_group_count must divide the batch and output features");
  if (st->ci % st->g != 0 || st->co % st->g != 0 || st->cig != st->ci / st->g)
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "kernel input features (%lld) must be input features (%lld) / feature_group_count (%lld)",
                       (long long)st->cig, (long long)st->ci, (long long)st->g);
  st->n_out = st->n_in / st->bg;
  int64_t lst[HS_MAX_RANK], rst[HS_MAX_RANK], ost[HS_MAX_RANK];
  hs_shape_strides(ls, lst);
  hs_shape_strides(rs, rst);
  hs_shape_strides(os, ost);
  st->l_b = lst[ib], st->l_f = lst[ifd];
  st->r_o = rst[ko], st->r_i = rst[ki];
  st->o_b = ost[ob], st->o_f = ost[of];
  hs_shape want = *os;
  want.dims[ob] = st->n_out;
  want.dims[of] = st->co;
  st->kprod = st->pprod = 1;
  for (int i = 0; i < nsp; i++) {
    st->in[i] = ls->dims[isp[i]];
    st->k[i] = rs->dims[ksp[i]];
    st->l_sp[i] = lst[isp[i]];
    st->r_sp[i] = rst[ksp[i]];
    st->o_sp[i] = ost[osp[i]];
    int64_t dil_in = st->in[i] == 0 ? 0 : (st->in[i] - 1) * st->ldil[i] + 1;
    int64_t padded = st->pad_lo[i] + dil_in + pad_hi[i];
    int64_t win = st->k[i] == 0 ? 0 : (st->k[i] - 1) * st->rdil[i] + 1;
    int64_t n = (padded <= 0 || win > padded) ? 0 : (padded - win) / st->stride[i] + 1;
    want.dims[osp[i]] = n;
    st->out[i] = n;
    st->kprod *= st->k[i];
    st->pprod *= n;
  }
  if (!hs_shape_equal(&want, os)) {
    char a[64], b[64];
    return hs_op_error(op, HS_INVALID_ARGUMENT, "result has shape [%s], expected [%s]",
                       hs_shape_str(os, a, sizeof a), hs_shape_str(&want, b, sizeof b));
  }
  st->acc = hs_la_acc_for(lt->dtype, rt->dtype, ot->dtype);
  st->of_dim = (int)of;
  dnnl_try(st, lt->dtype, rt->dtype, ot->dtype, pad_hi, arena);
  op->kernel_state = st;
  return NULL;
}

/* For spatial dim d: table[y * k + j] = input index read by output position
 * y and window offset j, or -1 for padding / lhs-dilation holes. */
static int64_t *index_tables(hs_exec_ctx *ctx, const conv_state *st, int64_t **tab) {
  int64_t total = 0;
  for (int d = 0; d < st->nsp; d++) total += st->out[d] * st->k[d];
  int64_t *buf = hs_exec_scratch(ctx, sizeof(int64_t) * (size_t)(total + 1));
  if (!buf) return NULL;
  int64_t *p = buf;
  for (int d = 0; d < st->nsp; d++) {
    tab[d] = p;
    int64_t dil_in = st->in[d] == 0 ? 0 : (st->in[d] - 1) * st->ldil[d] + 1;
    for (int64_t y = 0; y < st->out[d]; y++)
      for (int64_t j = 0; j < st->k[d]; j++) {
        int64_t q = y * st->stride[d] + j * st->rdil[d] - st->pad_lo[d];
        p[y * st->k[d] + j] = (q < 0 || q >= dil_in || q % st->ldil[d]) ? -1 : q / st->ldil[d];
      }
    p += st->out[d] * st->k[d];
  }
  return buf;
}

/* Gathers lhs into dense [N, C, in...] and rhs into dense [Co, Cig, k...]
 * with the window reversal applied (accumulation type). */
static hs_status *pack_operands(hs_exec_ctx *ctx, const hs_op *op, const conv_state *st,
                                const hs_tensor *in, void **lhs, void **rhs) {
  size_t as = hs_la_acc_size(st->acc);
  int64_t dims[HS_MAX_RANK], strides[HS_MAX_RANK];
  int64_t lin = st->n_in * st->ci, rin = st->co * st->cig;
  for (int d = 0; d < st->nsp; d++) {
    lin *= st->in[d];
    rin *= st->k[d];
  }
  *lhs = hs_exec_scratch(ctx, as * (size_t)(lin + 1));
  *rhs = hs_exec_scratch(ctx, as * (size_t)(rin + 1));
  if (!*lhs || !*rhs) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  dims[0] = st->n_in, strides[0] = st->l_b;
  dims[1] = st->ci, strides[1] = st->l_f;
  for (int d = 0; d < st->nsp; d++) dims[2 + d] = st->in[d], strides[2 + d] = st->l_sp[d];
  hs_la_pack(st->acc, in[0].dtype, in[0].data, st->nsp + 2, dims, strides, *lhs);
  const unsigned char *r = in[1].data;
  size_t es = hs_dtype_size(in[1].dtype);
  dims[0] = st->co, strides[0] = st->r_o;
  dims[1] = st->cig, strides[1] = st->r_i;
  for (int d = 0; d < st->nsp; d++) {
    dims[2 + d] = st->k[d];
    strides[2 + d] = st->r_sp[d];
    if (st->rev[d] && st->k[d] > 0) { /* walk the reversed dim backwards */
      r += (size_t)((st->k[d] - 1) * st->r_sp[d]) * es;
      strides[2 + d] = -st->r_sp[d];
    }
  }
  hs_la_pack(st->acc, in[1].dtype, r, st->nsp + 2, dims, strides, *rhs);
  return NULL;
}

/* Writes the dense [Nout, Co, out...] accumulators into the result layout. */
static hs_status *store_result(hs_exec_ctx *ctx, const hs_op *op, const conv_state *st,
                               const void *acc, hs_tensor *out) {
  int64_t n = hs_tensor_numel(out);
  size_t es = hs_dtype_size(out->dtype);
  unsigned char *tmp = hs_exec_scratch(ctx, es * (size_t)n + 1);
  if (!tmp) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  hs_la_unpack(st->acc, acc, n, out->dtype, tmp);
  int rank = st->nsp + 2;
  int64_t dims[HS_MAX_RANK], strides[HS_MAX_RANK], idx[HS_MAX_RANK] = {0};
  dims[0] = st->n_out, strides[0] = st->o_b;
  dims[1] = st->co, strides[1] = st->o_f;
  for (int d = 0; d < st->nsp; d++) dims[2 + d] = st->out[d], strides[2 + d] = st->o_sp[d];
  unsigned char *o = out->data;
  int64_t off = 0;
  for (int64_t i = 0; i < n; i++) {
    memcpy(o + (size_t)off * es, tmp + (size_t)i * es, es);
    for (int d = rank - 1; d >= 0; d--) {
      off += strides[d];
      if (++idx[d] < dims[d]) break;
      off -= strides[d] * dims[d];
      idx[d] = 0;
    }
  }
  return NULL;
}

/* ------------------------------------------------------------ reference */

static hs_status *conv_reference(hs_exec_ctx *ctx, const hs_op *op, const conv_state *st,
                                 const hs_tensor *in, hs_tensor *out) {
  void *lhs, *rhs;
  HS_RETURN_IF_ERROR(pack_operands(ctx, op, st, in, &lhs, &rhs));
  int64_t *tab[HS_MAX_RANK];
  if (!index_tables(ctx, st, tab)) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  int nsp = st->nsp;
  int64_t in_plane = 1;
  for (int d = 0; d < nsp; d++) in_plane *= st->in[d];
  int64_t lsp[HS_MAX_RANK]; /* dense lhs spatial strides */
  {
    int64_t s = 1;
    for (int d = nsp - 1; d >= 0; d--) {
      lsp[d] = s;
      s *= st->in[d];
    }
  }
  size_t as = hs_la_acc_size(st->acc);
  int64_t n_acc = st->n_out * st->co * st->pprod;
  unsigned char *acc = hs_exec_scratch(ctx, as * (size_t)(n_acc + 1));
  if (!acc) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  int64_t cog_f = st->co / st->g, cog_b = st->co / st->bg;
  int64_t ci_i = 0;
  for (int64_t n = 0; n < st->n_out; n++)
    for (int64_t o = 0; o < st->co; o++) {
      int64_t gi = st->g > 1 ? o / cog_f : 0, bgi = st->bg > 1 ? o / cog_b : 0;
      int64_t lb = bgi * st->n_out + n;
      int64_t y[HS_MAX_RANK] = {0};
      for (int64_t p = 0; p < st->pprod; p++, ci_i++) {
        double sd = 0;
        float sf = 0;
        uint64_t si = 0;
        for (int64_t i = 0; i < st->cig; i++) {
          int64_t lbase = (lb * st->ci + gi * st->cig + i) * in_plane;
          int64_t rbase = (o * st->cig + i) * st->kprod;
          int64_t j[HS_MAX_RANK] = {0};
          for (int64_t kp = 0; kp < st->kprod; kp++) {
            int64_t off = lbase;
            bool ok = true;
            for (int d = 0; d < nsp; d++) {
              int64_t x = tab[d][y[d] * st->k[d] + j[d]];
              if (x < 0) {
                ok = false;
                break;
              }
              off += x * lsp[d];
            }
            if (ok) {
              if (st->acc == HS_LA_ACC_F32)
                sf += ((const float *)lhs)[off] * ((const float *)rhs)[rbase + kp];
              else if (st->acc == HS_LA_ACC_F64)
                sd += ((const double *)lhs)[off] * ((const double *)rhs)[rbase + kp];
              else
                si += ((const uint64_t *)lhs)[off] * ((const uint64_t *)rhs)[rbase + kp];
            }
            for (int d = nsp - 1; d >= 0; d--) {
              if (++j[d] < st->k[d]) break;
              j[d] = 0;
            }
          }
        }
        if (st->acc == HS_LA_ACC_F32)
          ((float *)acc)[ci_i] = sf;
        else if (st->acc == HS_LA_ACC_F64)
          ((double *)acc)[ci_i] = sd;
        else
          ((uint64_t *)acc)[ci_i] = si;
        for (int d = nsp - 1; d >= 0; d--) {
          if (++y[d] < st->out[d]) break;
          y[d] = 0;
        }
      }
    }
  return store_result(ctx, op, st, acc, out);
}

/* ------------------------------------------------------------ im2col + SGEMM */

static hs_status *conv_im2col(hs_exec_ctx *ctx, const hs_op *op, const conv_state *st,
                              const hs_tensor *in, hs_tensor *out) {
  void *lhs_, *rhs_;
  HS_RETURN_IF_ERROR(pack_operands(ctx, op, st, in, &lhs_, &rhs_));
  const float *lhs = lhs_, *rhs = rhs_;
  int64_t *tab[HS_MAX_RANK];
  if (!index_tables(ctx, st, tab)) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  int nsp = st->nsp;
  int64_t in_plane = 1, lsp[HS_MAX_RANK];
  for (int d = nsp - 1; d >= 0; d--) {
    lsp[d] = in_plane;
    in_plane *= st->in[d];
  }
  int64_t P = st->pprod, Kd = st->cig * st->kprod;
  int64_t pc = Kd > 0 ? ((int64_t)1 << 18) / Kd : P;
  if (pc < 16) pc = 16;
  if (pc > P) pc = P;
  float *acc = hs_exec_scratch(ctx, sizeof(float) * (size_t)(st->n_out * st->co * P + 1));
  float *col = hs_exec_scratch(ctx, sizeof(float) * (size_t)(Kd * pc + 1));
  if (!acc || !col) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  int64_t groups = st->g > 1 ? st->g : st->bg;
  int64_t cog = st->co / groups;
  for (int64_t n = 0; n < st->n_out; n++)
    for (int64_t gi = 0; gi < groups; gi++) {
      int64_t lb = st->bg > 1 ? gi * st->n_out + n : n;
      int64_t cbase = st->g > 1 ? gi * st->cig : 0;
      for (int64_t p0 = 0; p0 < P; p0 += pc) {
        int64_t np = P - p0 < pc ? P - p0 : pc;
        /* column rows: (i, window position); positions walk the outer
         * spatial dims with an odometer and the last one in a tight loop */
        for (int64_t i = 0; i < st->cig; i++) {
          const float *plane = lhs + (lb * st->ci + cbase + i) * in_plane;
          int64_t j[HS_MAX_RANK] = {0};
          for (int64_t kp = 0; kp < st->kprod; kp++) {
            float *row = col + (i * st->kprod + kp) * np;
            if (nsp == 0) {
              row[0] = plane[0];
            } else {
              int64_t y[HS_MAX_RANK];
              int64_t rem = p0;
              for (int d = nsp - 1; d >= 0; d--) {
                y[d] = rem % st->out[d];
                rem /= st->out[d];
              }
              const int64_t L = nsp - 1, ol = st->out[L], kl = st->k[L];
              const int64_t *tl = tab[L] + j[L];
              int64_t p = 0;
              while (p < np) {
                int64_t off = 0;
                bool ok = true;
                for (int d = 0; d < L; d++) {
                  int64_t x = tab[d][y[d] * st->k[d] + j[d]];
                  if (x < 0) ok = false;
                  off += x * lsp[d];
                }
                int64_t run = ol - y[L] < np - p ? ol - y[L] : np - p;
                if (ok) {
                  const float *src = plane + off;
                  for (int64_t q = 0; q < run; q++) {
                    int64_t x = tl[(y[L] + q) * kl];
                    row[p + q] = x >= 0 ? src[x] : 0.0f;
                  }
                } else {
                  memset(row + p, 0, sizeof(float) * (size_t)run);
                }
                p += run;
                y[L] += run;
                if (y[L] == ol) {
                  y[L] = 0;
                  for (int d = L - 1; d >= 0; d--) {
                    if (++y[d] < st->out[d]) break;
                    y[d] = 0;
                  }
                }
              }
            }
            for (int d = nsp - 1; d >= 0; d--) {
              if (++j[d] < st->k[d]) break;
              j[d] = 0;
            }
          }
        }
        /* acc[n, o, p0..] = W[o, (i,k)] x col[(i,k), p] for o in this group */
        float *c = acc + (n * st->co + gi * cog) * P + p0;
        hs_la_sgemm(ctx, cog, np, Kd, rhs + gi * cog * Kd, Kd, 1, col, np, 1, c, P, 1, false);
      }
    }
  return store_result(ctx, op, st, acc, out);
}

/* ------------------------------------------------------------ epilogue */

/* The epilogue after a path that computed the plain convolution into out
 * (f32 only: the pass sets epilogues on f32 convolutions alone). */
static void apply_epilogue(const conv_state *st, const hs_tensor *res, hs_tensor *out) {
  const hs_la_conv_epilogue *e = &st->ep;
  float *o = out->data;
  const float *r = e->residual ? res->data : NULL;
  int64_t n = hs_tensor_numel(out);
  for (int64_t i = 0; i < n; i++) {
    int64_t c = (i / st->o_f) % st->co;
    float v = o[i];
    if (e->scale) v *= e->scale[c];
    if (e->bias) v += e->bias[c];
    if (r) v += e->sum_scale * r[i];
    if (e->relu && !(v > 0)) v = v != v ? v : 0.0f;
    o[i] = v;
  }
}

bool hs_la_conv_is_dnnl(const hs_op *op) {
  const conv_state *st = op->kernel_state;
  return op->kernel && op->kernel->run == hs_la_conv_run && st && st->dnnl_ok &&
         op->results[0]->type.dtype == HS_F32 && !hs_la_reference_forced();
}

int hs_la_conv_feature_dim(const hs_op *op) { return ((const conv_state *)op->kernel_state)->of_dim; }

const char *hs_la_conv_impl(const hs_op *op) {
  const conv_state *st = op->kernel_state;
  return st && st->dnnl ? hs_la_dnnl_conv_impl(st->dnnl) : "none";
}

bool hs_la_conv_unit_stride(const hs_op *op) {
  const conv_state *st = op->kernel_state;
  for (int i = 0; i < st->nsp; i++)
    if (st->stride[i] != 1) return false;
  return true;
}

hs_status *hs_la_conv_set_epilogue(hs_op *op, const hs_la_conv_epilogue *e, hs_arena *arena) {
  conv_state *st = op->kernel_state;
  if (st->has_epilogue) return hs_op_error(op, HS_INTERNAL, "convolution epilogue set twice");
  if (op->results[0]->type.dtype != HS_F32)
    return hs_op_error(op, HS_INTERNAL, "convolution epilogues are for f32 only");
  st->ep = *e;
  size_t nb = sizeof(float) * (size_t)st->co;
  if (e->scale && !(st->ep.scale = hs_arena_memdup(arena, e->scale, nb)))
    return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  if (e->bias && !(st->ep.bias = hs_arena_memdup(arena, e->bias, nb)))
    return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  st->has_epilogue = true;
  if (st->dnnl_ok) {
    st->dd.with_bias = e->bias != NULL;
    st->dd.with_sum = e->residual;
    st->dd.with_relu = e->relu;
    uint32_t bits;
    memcpy(&bits, &e->sum_scale, sizeof bits);
    st->dd.sum_scale_bits = e->residual ? (int64_t)bits : 0;
    /* A plan for comparing formats; specialize() makes the final one.  When
     * oneDNN refuses the post-ops, the plain paths apply the epilogue. */
    hs_la_dnnl_conv *c = hs_la_dnnl_conv_plan(&st->dd, 0, NULL, NULL, arena);
    if (c) hs_la_dnnl_conv_set_bias(c, st->ep.bias);
    st->dnnl = c;
    st->dnnl_ok = c != NULL;
  }
  return NULL;
}

bool hs_la_conv_formats_match(const hs_op *producer, const hs_op *consumer, int slot) {
  if (!hs_la_conv_is_dnnl(producer) || !hs_la_conv_is_dnnl(consumer)) return false;
  const conv_state *p = producer->kernel_state, *c = consumer->kernel_state;
  size_t bytes = 0;
  if (!hs_la_dnnl_conv_format_equal(p->dnnl, HS_LA_DST, c->dnnl, slot, &bytes)) return false;
  hs_tensor t = {HS_F32, producer->results[0]->type.shape, NULL};
  return bytes == hs_tensor_nbytes(&t);
}

void hs_la_conv_set_native(hs_op *op, int slot) {
  conv_state *st = op->kernel_state;
  st->native |= 1u << slot;
}

unsigned hs_la_conv_native(const hs_op *op) { return ((const conv_state *)op->kernel_state)->native; }

/* Weights known for good: the oneDNN plan packs them (scaled by the
 * epilogue) once, with the layouts the bind-time passes chose. */
hs_status *hs_la_conv_specialize(hs_op *op, const hs_tensor *const *konst, hs_arena *arena,
                                  int num_threads) {
  conv_state *st = op->kernel_state;
  /* The plan made with the epilogue has unscaled weights: without a final
   * plan, a scaling epilogue must run on the plain paths. */
  bool scales = st->has_epilogue && st->ep.scale;
  if (!st->dnnl_ok || !konst[1] || konst[1]->dtype != HS_F32 || hs_la_reference_forced()) {
    if (scales) st->dnnl = NULL;
    return NULL;
  }
  const float *w = konst[1]->data;
  float *scaled = NULL;
  if (st->has_epilogue && st->ep.scale) {
    int64_t n = hs_tensor_numel(konst[1]);
    scaled = malloc(sizeof(float) * (size_t)(n + 1));
    if (!scaled) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
    /* the weights are row-major, so element i has output feature (i / r_o) % co */
    for (int64_t i = 0; i < n; i++) scaled[i] = (float)((double)w[i] * (double)st->ep.scale[(i / st->r_o) % st->co]);
    w = scaled;
  }
  /* The final primitive is made for the program's threads; native tensors
   * keep the formats the passes compared (those of the probe plan). */
  hs_la_dnnl_conv_desc d = st->dd;
  d.nthr = num_threads;
  d.winograd = getenv("HS_NO_WINOGRAD") == NULL; /* part of the primitive's cache key */
  hs_la_dnnl_conv *c = hs_la_dnnl_conv_plan(&d, st->native, st->dnnl, w, arena);
  free(scaled);
  if (!c) {
    if (st->native) return hs_op_error(op, HS_INTERNAL, "oneDNN refused a convolution planned in its own layouts");
    if (scales) st->dnnl = NULL;
    return NULL; /* keep the earlier plan */
  }
  if (st->has_epilogue) hs_la_dnnl_conv_set_bias(c, st->ep.bias);
  st->dnnl = c;
  return NULL;
}

/* ------------------------------------------------------------ run */

hs_status *hs_la_conv_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const conv_state *st = op->kernel_state;
  if (hs_tensor_numel(out) == 0) return NULL;
  bool ref = hs_la_reference_forced();
  const hs_tensor *res = st->has_epilogue && st->ep.residual ? &in[2] : NULL;
  if (st->dnnl && !ref) {
    size_t ws = hs_la_dnnl_conv_workspace(st->dnnl);
    void *w = ws ? hs_exec_scratch(ctx, ws) : NULL;
    if (ws && !w) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
    hs_la_dnnl_use_threads(hs_exec_num_threads(ctx));
    if (hs_la_dnnl_conv_run(st->dnnl, in[0].data, in[1].data, res ? res->data : NULL, out->data, w))
      return NULL;
  }
  if (st->native)
    return hs_op_error(op, HS_INTERNAL, "oneDNN failed on a convolution whose tensors are in its own layout");
  hs_status *s;
  if (st->acc == HS_LA_ACC_F32 && !ref) s = conv_im2col(ctx, op, st, in, out);
  else s = conv_reference(ctx, op, st, in, out);
  if (!s && st->has_epilogue) apply_epilogue(st, res, out);
  return s;
}
