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
 * (la_dnnl.c) created once in prepare(), and our own blocked SGEMM (la_gemm.c)
 * for what oneDNN refuses or when it is absent.  The unit tests compare every
 * fast path with the reference on random shapes; hs_la_force_reference()
 * switches the fast paths off for that.
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

/* Batched matmul dst[b] = src[b] x wei[b]: src [B, M, K], wei [B, K, N],
 * dst [B, M, N] dense; element strides for src and wei (b, row, col). */
const hs_la_dnnl_prim *hs_la_dnnl_matmul(int64_t B, int64_t M, int64_t N, int64_t K,
                                         const int64_t src_strides[3],
                                         const int64_t wei_strides[3]);
bool hs_la_dnnl_matmul_run(const hs_la_dnnl_prim *p, const float *src, const float *wei, float *dst);

/* A forward f32 convolution with 1 to 3 spatial dims.  Element strides of
 * the user's tensors: src (n, c, spatial...), wei (g, o/g, i, spatial...),
 * dst (n, o, spatial...). */
typedef struct hs_la_dnnl_conv_desc {
  int64_t nsp;               /* spatial dims, 1..3 (int64: no padding bytes in the cache key) */
  int64_t n, ci, co, groups;
  int64_t in[3], k[3], out[3];
  int64_t stride[3], dil[3]; /* dil: rhs_dilation (1 = dense) */
  int64_t pad_lo[3], pad_hi[3];
  int64_t src_strides[5], wei_strides[6], dst_strides[5];
} hs_la_dnnl_conv_desc;

const hs_la_dnnl_prim *hs_la_dnnl_conv(const hs_la_dnnl_conv_desc *d);
/* Workspace bytes run() needs (reordered copies). */
size_t hs_la_dnnl_workspace(const hs_la_dnnl_prim *p);
bool hs_la_dnnl_conv_run(const hs_la_dnnl_prim *p, const float *src, const float *wei, float *dst,
                         void *workspace);
/* The implementation oneDNN picked ("jit:avx512_core", ...), for reports. */
const char *hs_la_dnnl_impl(const hs_la_dnnl_prim *p);

/* ---- kernels of la_*.c listed in linalg.c's table ---- */
hs_status *hs_la_conv_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_la_conv_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out);
hs_status *hs_la_rng_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_la_rng_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out);
hs_status *hs_la_trsm_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_la_trsm_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out);
hs_status *hs_la_cholesky_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_la_cholesky_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                              hs_tensor *out);

/* Operand / result i must be a real tensor (complex: HS_UNIMPLEMENTED). */
hs_status *hs_la_tensor_operand(const hs_op *op, int i, const hs_type **out);
hs_status *hs_la_tensor_result(const hs_op *op, int i, const hs_type **out);

#endif /* HLOSERVE_RUNTIME_KERNELS_LA_COMMON_H */
