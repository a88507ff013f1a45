/*
 * la_common.h - shared machinery of the linear-algebra kernels (internal to
 * kernels/linalg.c and kernels/la_*.c).
 *
 * Every dot_general and convolution has a reference path that follows the
 * spec literally and works for every real element type: operands are first
 * gathered ("packed") into dense arrays of the accumulation type, so the
 * arithmetic loops see one layout and one type whatever the dimension numbers
 * and dtypes were.  Accumulation types follow XLA on the CPU: integers wrap
 * (computed in uint64 and truncated, which is the same modulo 2^n), f16, bf16
 * and f32 accumulate in f32 and round once at the end, f64 in f64.
 *
 * f32 (and f16/bf16, through f32) then get fast paths: oneDNN primitives
 * (la_dnnl.c) created once in prepare() (and, for convolutions with bound
 * weights, again once in specialize(): weights packed, epilogue fused), and
 * our own blocked SGEMM (la_gemm.c) for what oneDNN refuses or when it is
 * absent.  The unit tests compare every fast path with the reference on
 * random shapes; hs_la_force_reference() switches the fast paths off for
 * that (bind-time rewrites too: it must be set before binding).
 *
 * Convolutions also expose a small interface to the bind-time pass
 * runtime/conv_fold.c (epilogues, layouts), below.
 */
#ifndef HLOSERVE_RUNTIME_KERNELS_LA_COMMON_H
#define HLOSERVE_RUNTIME_KERNELS_LA_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/kernel.h"

typedef enum hs_la_acc {
  HS_LA_ACC_F32 = 0, /* float */
  HS_LA_ACC_F64,     /* double */
  HS_LA_ACC_INT,     /* uint64_t, wrapping; pred results store acc != 0 */
} hs_la_acc;

/* The accumulation type for operands lt, rt and result type res. */
hs_la_acc hs_la_acc_for(hs_dtype lt, hs_dtype rt, hs_dtype res);
size_t hs_la_acc_size(hs_la_acc acc);

/* Gathers the box dims[0..rank) of src (element strides `strides`) in
 * row-major order into dense dst, converting each element to the
 * accumulation type (ints sign/zero-extend to 64 bits). */
void hs_la_pack(hs_la_acc acc, hs_dtype dt, const void *src, int rank, const int64_t *dims,
                const int64_t *strides, void *dst);
/* Converts n dense accumulators to dense dt elements (round to nearest even,
 * ints truncate modulo 2^bits, pred = value != 0). */
void hs_la_unpack(hs_la_acc acc, const void *src, int64_t n, hs_dtype dt, void *dst);

/* When true, dot_general and convolution take their reference paths (for
 * tests comparing fast and reference results).  Not thread-safe: tests only. */
void hs_la_force_reference(bool on);
bool hs_la_reference_forced(void);

/* ---- SGEMM (la_gemm.c) ----
 * C[i,j] (+)= sum_k A[i,k] * B[k,j] for i < M, j < N, with element (i,j) of X
 * at X[i*rs + j*cs] (any strides, transposes included).  accumulate=false
 * overwrites C.  ctx may be NULL (single thread). */
void hs_la_sgemm(hs_exec_ctx *ctx, int64_t M, int64_t N, int64_t K, const float *A, int64_t ars,
                 int64_t acs, const float *B, int64_t brs, int64_t bcs, float *C, int64_t crs,
                 int64_t ccs, bool accumulate);

/* ---- oneDNN (la_dnnl.c); every function fails softly (returns NULL / false)
 * when oneDNN is absent or refuses. ---- */
typedef struct hs_la_dnnl_prim hs_la_dnnl_prim;

/* oneDNN runs on its own (OpenMP) threads: make the calling thread's oneDNN
 * calls use at most n of them, to match the executor's pool (2 pools of 2
 * threads on 2 cores would oversubscribe and spin). */
void hs_la_dnnl_use_threads(int n);

/* Batched matmul dst[b] = src[b] x wei[b]: src [B, M, K], wei [B, K, N],
 * dst [B, M, N] dense; element strides for src and wei (b, row, col). */
const hs_la_dnnl_prim *hs_la_dnnl_matmul(int64_t B, int64_t M, int64_t N, int64_t K,
                                         const int64_t src_strides[3],
                                         const int64_t wei_strides[3]);
bool hs_la_dnnl_matmul_run(const hs_la_dnnl_prim *p, const float *src, const float *wei, float *dst);

/* A forward f32 convolution with 1 to 3 spatial dims.  Element strides of
 * the user's tensors: src (n, c, spatial...), wei (g, o/g, i, spatial...),
 * dst (n, o, spatial...); a residual has the dst's strides.  The epilogue
 * (bias, then `dst = conv + sum_scale * residual`, then max(., 0)) becomes
 * oneDNN post-ops.  All fields are int64 so the struct has no padding bytes
 * (it is a cache key). */
typedef struct hs_la_dnnl_conv_desc {
  int64_t nsp;               /* spatial dims, 1..3 */
  int64_t n, ci, co, groups;
  int64_t in[3], k[3], out[3];
  int64_t stride[3], dil[3]; /* dil: rhs_dilation (1 = dense) */
  int64_t pad_lo[3], pad_hi[3];
  int64_t src_strides[5], wei_strides[6], dst_strides[5];
  int64_t with_bias, with_sum, with_relu;
  int64_t sum_scale_bits;    /* the float sum scale's bits */
  int64_t nthr;              /* threads the primitive is made for (0: OpenMP's
                                maximum); oneDNN fixes them at creation */
  int64_t winograd;          /* may use Winograd: weights bound for good (their
                                transform is done once, by the plan) and no
                                HS_NO_WINOGRAD in the environment */
} hs_la_dnnl_conv_desc;

/* One convolution op's use of a (cached, shared) primitive: the user layouts
 * of its tensors, the reorders between those and the primitive's formats,
 * the workspace layout, and optionally weights packed once.  Lives in the
 * program arena. */
typedef struct hs_la_dnnl_conv hs_la_dnnl_conv;

/* Slots of a convolution's tensors. */
enum { HS_LA_SRC = 0, HS_LA_WEI = 1, HS_LA_DST = 2, HS_LA_RES = 3 };

/* Plans d.  native_mask bit (1 << slot) for HS_LA_SRC, HS_LA_DST, HS_LA_RES:
 * that tensor is stored in the format `like`'s primitive uses for it (the
 * caller made sure of it: hs_la_dnnl_conv_format_equal), not in d's strided
 * layout; like NULL: this plan's own primitive.  wei,
 * when not NULL, are weights known for good (d's strides): they are
 * reordered into the primitive's format once, into arena memory, and run()
 * then ignores its weights argument. */
hs_la_dnnl_conv *hs_la_dnnl_conv_plan(const hs_la_dnnl_conv_desc *d, unsigned native_mask,
                                      const hs_la_dnnl_conv *like, const float *wei, hs_arena *arena);
/* True when slot sa of a and slot sb of b use the same primitive format (a
 * value in that format can pass between them without a reorder); the
 * residual's format is the dst's.  *bytes: that format's size. */
bool hs_la_dnnl_conv_format_equal(const hs_la_dnnl_conv *a, int sa, const hs_la_dnnl_conv *b, int sb,
                                  size_t *bytes);
/* The bias (co floats, kept by reference: must outlive c) when d->with_bias. */
void hs_la_dnnl_conv_set_bias(hs_la_dnnl_conv *c, const float *bias);
/* Workspace bytes run() needs (reordered copies, scratchpad). */
size_t hs_la_dnnl_conv_workspace(const hs_la_dnnl_conv *c);
/* res: the residual (d->with_sum), else NULL. */
bool hs_la_dnnl_conv_run(const hs_la_dnnl_conv *c, const float *src, const float *wei, const float *res,
                         float *dst, void *workspace);
/* The implementation oneDNN picked ("brgconv:avx512_core", ...), for reports. */
const char *hs_la_dnnl_conv_impl(const hs_la_dnnl_conv *c);

/* ---- bind-time rewrites of convolutions (used by runtime/conv_fold.c) ----
 * A convolution may get an epilogue: out = act(scale[o] * conv + bias[o] +
 * sum_scale * residual), with o the output feature.  The scale is folded into
 * a copy of the weights, the rest becomes oneDNN post-ops (or a plain pass
 * after the im2col / reference paths).  The caller appends the residual as
 * operand 2 (it has the result's type). */
typedef struct hs_la_conv_epilogue {
  const float *scale; /* per output feature, or NULL (1) */
  const float *bias;  /* per output feature, or NULL (0) */
  bool residual;      /* operand 2 is added, times sum_scale */
  float sum_scale;
  bool relu;
} hs_la_conv_epilogue;

/* True for a prepared f32 convolution with a oneDNN primitive. */
bool hs_la_conv_is_dnnl(const hs_op *op);
/* The result's output-feature dimension. */
int hs_la_conv_feature_dim(const hs_op *op);
/* True when every window stride is 1. */
bool hs_la_conv_unit_stride(const hs_op *op);
/* oneDNN's implementation name for the op's primitive ("none" without one). */
const char *hs_la_conv_impl(const hs_op *op);
/* Copies e into the op's state (arena); at most once per op. */
hs_status *hs_la_conv_set_epilogue(hs_op *op, const hs_la_conv_epilogue *e, hs_arena *arena);
/* True when a value in the oneDNN format of producer's result can be read
 * by consumer as its operand `slot` (HS_LA_SRC or HS_LA_RES) as is, and has
 * no padding (fits the value's buffer).  Both must be oneDNN convolutions
 * with their final epilogues. */
bool hs_la_conv_formats_match(const hs_op *producer, const hs_op *consumer, int slot);
/* Declares the op's tensor `slot` (HS_LA_SRC, HS_LA_DST, HS_LA_RES) to be in
 * its primitive's format; the op's specialize() plans accordingly. */
void hs_la_conv_set_native(hs_op *op, int slot);
/* The slots set native (bit 1 << slot), for tests and reports. */
unsigned hs_la_conv_native(const hs_op *op);

/* ---- kernels of la_*.c listed in linalg.c's table ---- */
hs_status *hs_la_conv_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_la_conv_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out);
hs_status *hs_la_conv_specialize(hs_op *op, const hs_tensor *const *konst, hs_arena *arena,
                                  int num_threads);
hs_status *hs_la_rng_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_la_rng_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out);
hs_status *hs_la_trsm_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_la_trsm_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out);
hs_status *hs_la_cholesky_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_la_cholesky_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                              hs_tensor *out);


#endif /* HLOSERVE_RUNTIME_KERNELS_LA_COMMON_H */
