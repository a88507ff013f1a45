/*
 * rd_common.h - shared machinery of the reduction-family kernels (internal to
 * kernels/reduce.c and kernels/rd_*.c).
 *
 * Reductions in real programs are nearly always "return a OP b" bodies (sum,
 * max pooling, any/all).  Evaluating those through hs_exec_region() costs a
 * region call per element, so the kernels recognise the body and use typed
 * loops instead.  All typed loops live in rd_ops.c, generated once per
 * (element type, op) pair, and are reached through small function-pointer
 * tables; the kernels themselves only walk shapes and call them on contiguous
 * runs, so the dtype switch happens once per run, never per element.
 *
 * Element-type arithmetic follows StableHLO: integer add/mul wrap around,
 * i1 add/max is OR and mul/min is AND, float max/min propagate NaN, and
 * f16/bf16 are computed in f32 and rounded back after every step (which equals
 * computing in the element type: f32 has more than twice their precision).
 */
#ifndef HLOSERVE_RUNTIME_KERNELS_RD_COMMON_H
#define HLOSERVE_RUNTIME_KERNELS_RD_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/kernel.h"

typedef enum hs_rd_op {
  HS_RD_NONE = -1,
  HS_RD_ADD = 0,
  HS_RD_MUL,
  HS_RD_MAX,
  HS_RD_MIN,
  HS_RD_AND,
  HS_RD_OR,
  HS_RD_XOR,
  HS_RD_NOPS
} hs_rd_op;

/* "stablehlo.add" -> HS_RD_ADD ...; HS_RD_NONE for anything else. */
hs_rd_op hs_rd_op_from_name(const char *name);
/* The op recognised in a single-op region body that is valid for dtype, or
 * HS_RD_NONE. */
hs_rd_op hs_rd_region_op(const hs_region *region, hs_dtype dtype);
/* Max, min, and, or: applying the op again with a value already folded in
 * changes nothing. */
bool hs_rd_op_idempotent(hs_rd_op op);
/* Whether the element at v is the identity of op for dtype (0 for add and
 * xor, 1 for mul, -inf/lowest for max, ...). */
bool hs_rd_is_identity(hs_rd_op op, hs_dtype dtype, const void *v);

/* acc[i] = op(acc[i], x[i]) for i in [0, n). */
typedef void (*hs_rd_vec_fn)(void *acc, const void *x, int64_t n);
/* *acc = op(*acc, x[i * stride]) for i in [0, n).  Float f32/f64 and integer
 * folds of contiguous runs may use several partial accumulators. */
typedef void (*hs_rd_fold_fn)(void *acc, const void *x, int64_t n, int64_t stride);
/* One output row of a windowed reduction whose last dim is contiguous:
 *   for o in [0, n_out): a = *init;
 *     for r in [0, n_rows): for k in [klo[o], khi[o]): a = op(a, rows[r][start[o] + k*kstep]);
 *     out[o] = a;
 * rows are the input rows selected by the outer window dims (row-major
 * order); start[o] + k*kstep is always a valid index for k in range. */
typedef void (*hs_rd_winrow_fn)(void *out, int64_t n_out, const void *init,
                                const void *const *rows, int64_t n_rows, const int64_t *start,
                                const int64_t *klo, const int64_t *khi, int64_t kstep);

/* NULL when the (op, dtype) pair has no typed loop. */
hs_rd_vec_fn hs_rd_vec(hs_rd_op op, hs_dtype dtype);
hs_rd_fold_fn hs_rd_fold(hs_rd_op op, hs_dtype dtype);
hs_rd_winrow_fn hs_rd_winrow(hs_rd_op op, hs_dtype dtype);

/* Fills n elements of esize bytes at dst with the element at value. */
void hs_rd_fill(void *dst, int64_t n, const void *value, size_t esize);

/* Row-major strides in elements. */
void hs_rd_strides(const hs_shape *s, int64_t st[HS_MAX_RANK]);


/* The window attributes shared by reduce_window and select_and_scatter,
 * validated against an input rank; absent optional lists become 1s / 0s. */
typedef struct hs_rd_window {
  int rank;
  int64_t dims[HS_MAX_RANK];
  int64_t strides[HS_MAX_RANK];
  int64_t base_dil[HS_MAX_RANK];
  int64_t win_dil[HS_MAX_RANK];
  int64_t pad_lo[HS_MAX_RANK];
  int64_t pad_hi[HS_MAX_RANK];
} hs_rd_window;

/* Reads window_dimensions, window_strides, base_dilations (when
 * with_dilations), window_dilations (likewise) and padding. */
hs_status *hs_rd_window_read(const hs_op *op, int rank, bool with_dilations, hs_rd_window *w);
/* Number of windows along each dim (the StableHLO result shape rule). */
void hs_rd_window_out_shape(const hs_rd_window *w, const hs_shape *in, hs_shape *out);

/* A region body compiled to a scalar register program (rd_vm.c): bodies made
 * of exactly-defined scalar ops (compare, select, logic, arithmetic, max/min,
 * constants) run without the executor.  NULL when the body uses anything
 * else.  run() loads every argument before storing any output, so outputs may
 * alias arguments; it is thread-safe. */
typedef struct hs_rd_vm hs_rd_vm;
hs_rd_vm *hs_rd_vm_compile(const hs_region *region, hs_arena *arena);
int hs_rd_vm_num_outputs(const hs_rd_vm *vm);
void hs_rd_vm_run(const hs_rd_vm *vm, const void *const *args, void *const *outs);

/* Validates a body: one block of n_args scalar arguments, returning n_ret
 * scalars of the given element types. */
hs_status *hs_rd_check_body(const hs_op *op, const hs_region *region, int n_args,
                            const hs_dtype *ret_types, int n_ret);

/* Region evaluation with ping-pong accumulators: the generic (reference) path
 * for bodies we do not recognise. */
hs_status *hs_rd_region_step(hs_exec_ctx *ctx, const hs_region *region, hs_tensor *acc,
                             hs_tensor *tmp, const hs_tensor *xs, int n, hs_tensor *args);

/* The N inputs / N init values / N results of a variadic reduction: inputs
 * of in0's shape, scalar inits, results of their init's dtype (and, when
 * want is not NULL, of shape *want). */
hs_status *hs_rd_check_inputs(const hs_op *op, int n, const hs_type *in0, const hs_shape *want);

/* Per-call scratch of the generic (region or VM) reduction paths: n scalar
 * accumulators, temporaries and element views, and pointer arrays for the
 * VM.  acc/tmp have out[k]'s dtypes, xs in[k]'s. */
typedef struct hs_rd_body_scratch {
  hs_tensor *acc, *tmp, *xs, *args;
  const void **vargs;
  void **vouts;
} hs_rd_body_scratch;
hs_status *hs_rd_body_scratch_init(hs_exec_ctx *ctx, const hs_op *op, int n, const hs_tensor *in,
                                   const hs_tensor *out, hs_rd_body_scratch *s);

/* Kernels of rd_window.c, listed in reduce.c's table. */
hs_status *hs_rd_reduce_window_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_rd_reduce_window_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                                   hs_tensor *out);
hs_status *hs_rd_select_and_scatter_prepare(hs_op *op, hs_arena *arena);
hs_status *hs_rd_select_and_scatter_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                                        hs_tensor *out);

#endif /* HLOSERVE_RUNTIME_KERNELS_RD_COMMON_H */
