/*
 * mv_common.h - shared machinery of the data-movement kernels (internal to
 * kernels/movement.c and kernels/mv_*.c).
 *
 * Almost every movement op (broadcast, transpose, slice, reverse, pad,
 * concatenate, the windows of gather and scatter) is the same thing: walk a
 * box of element positions and move each element from a source address to a
 * destination address, where both addresses are affine in the position.  So
 * there is one engine, hs_mv_box: a box of dims with a source and a
 * destination stride per dim (in elements; a source stride of 0 broadcasts, a
 * negative one reverses).  Before walking, a box is simplified: size-1 dims
 * vanish and dims that are contiguous in both source and destination merge, so
 * that the innermost run is as long as possible and is moved by memcpy or a
 * typed loop.  Outer dims are walked with an odometer (pointer increments, no
 * divisions in the hot loop).  Large boxes split across threads by rows.
 *
 * The kernel functions of the other mv_*.c files are declared here so that
 * movement.c can list them in the one table the registry knows about.
 */
#ifndef HLOSERVE_RUNTIME_KERNELS_MV_COMMON_H
#define HLOSERVE_RUNTIME_KERNELS_MV_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/kernel.h"

typedef struct hs_mv_box {
  int rank;
  int64_t dims[HS_MAX_RANK];
  int64_t src_stride[HS_MAX_RANK]; /* elements; may be 0 or negative */
  int64_t dst_stride[HS_MAX_RANK]; /* elements; may be 0 or negative */
} hs_mv_box;

/* Drops size-1 dims and merges dims contiguous in both source and destination.
 * Returns the number of elements in the box (0: nothing to move). */
int64_t hs_mv_box_simplify(hs_mv_box *b);

/* Moves every element of a box (simplified here first): dst[pos . dst_stride] =
 * src[pos . src_stride].  ctx may be NULL (single-threaded). */
void hs_mv_box_copy(hs_exec_ctx *ctx, const hs_mv_box *b, const void *src, void *dst,
                    size_t esize);

/* Fills n elements of esize bytes at dst with the element at value. */
void hs_mv_fill(hs_exec_ctx *ctx, void *dst, int64_t n, const void *value, size_t esize);

/* memcpy, split across threads when large. */
void hs_mv_memcpy(hs_exec_ctx *ctx, void *dst, const void *src, size_t n);

/* Element i of an integer (or pred) tensor as int64; unsigned values above
 * INT64_MAX saturate to INT64_MAX (they are out of range for any index). */
int64_t hs_mv_load_index(hs_dtype t, const void *data, int64_t i);

/* Row-major strides in elements of a shape. */
void hs_mv_strides(const hs_shape *s, int64_t st[HS_MAX_RANK]);

/* Validation helpers shared by prepare() functions: operand/result i must be
 * a tensor; writes its type. */
hs_status *hs_mv_operand_type(const hs_op *op, int i, const hs_type **out);
hs_status *hs_mv_result_type(const hs_op *op, int i, const hs_type **out);

/* A total order on real values as int64 (floats: -NaN < -inf < ... < -0 < +0
 * < ... < +inf < +NaN; unsigned values offset so that signed comparison
 * orders them).  Element i of data. */
int64_t hs_mv_total_key(hs_dtype t, const void *data, int64_t i);

/* Kernels implemented in mv_gather.c, mv_scatter.c, mv_sort.c. */
hs_status *hs_mv_gather_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_mv_gather_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                            hs_tensor *out);
hs_status *hs_mv_scatter_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_mv_scatter_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                             hs_tensor *out);
hs_status *hs_mv_sort_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_mv_sort_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                          hs_tensor *out);
hs_status *hs_mv_top_k_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_mv_top_k_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                           hs_tensor *out);

/* x occurs in v[0..n). */
bool hs_mv_in_list(const int64_t *v, int n, int64_t x);
/* A dims list (gather/scatter dimension numbers) is unique, inside [0, bound)
 * and, when asked, sorted; the error names the list. */
hs_status *hs_mv_check_dims(const hs_op *op, const char *what, const int64_t *v, int n, int64_t bound,
                            bool sorted);

#endif /* HLOSERVE_RUNTIME_KERNELS_MV_COMMON_H */
