/*
 * kernel.h - the contract between the executor (exec.c) and op kernels.
 *
 * A kernel implements one op name ("stablehlo.add").  At compile time the
 * executor looks the op's name up in the kernel registry and calls
 * prepare(), which validates attributes and operand/result types and may
 * precompute parameters into op->kernel_state (allocated from the given
 * arena, which lives as long as the compiled program).  At run time the
 * executor allocates every result tensor with its static type and calls
 * run() with the operand tensors and those result tensors; run() fills the
 * results.  Kernels never allocate their outputs and never keep pointers to
 * their inputs.
 *
 * run() must be safe to call concurrently on the same op from several threads
 * (executions of one program in parallel): kernel_state is read-only at run
 * time; per-call memory comes from hs_exec_scratch().
 *
 * Ops with regions (reduce, sort, scatter, while...) evaluate their region
 * through hs_exec_region().  Per-element region evaluation is the reference
 * path; hs_region_binary_op() lets a kernel recognise the common
 * "return a OP b" bodies and run a tight loop instead.
 *
 * Kernels are grouped into tables (one per file under kernels/) that end with an
 * all-NULL entry; kernels/registry.c lists the tables.
 */
#ifndef HLOSERVE_RUNTIME_KERNEL_H
#define HLOSERVE_RUNTIME_KERNEL_H

#include "base/arena.h"
#include "hloserve/status.h"
#include "hloserve/tensor.h"
#include "runtime/ir.h"

typedef struct hs_exec_ctx hs_exec_ctx;

typedef struct hs_kernel {
  const char *name;
  /* May be NULL. Validate op (attributes, operand and result types) and
   * optionally set op->kernel_state.  Errors via hs_op_error(). */
  hs_status *(*prepare)(hs_op *op, hs_arena *arena);
  /* in: op->n_operands tensors; out: op->n_results tensors, allocated. */
  hs_status *(*run)(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out);
  /* May be NULL.  Called once when a program's weights are bound, for an op
   * some of whose operands are then known for good: konst[i] is operand i's
   * value (valid as long as the program) or NULL when it varies per run.  The
   * kernel may precompute from them into op->kernel_state (e.g. reorder
   * convolution weights once); run() still receives the same tensors.
   * num_threads: the threads the program's runs will use (0: unknown). */
  hs_status *(*specialize)(hs_op *op, const hs_tensor *const *konst, hs_arena *arena, int num_threads);
} hs_kernel;

/* Finds the kernel for an op name; NULL if none. */
const hs_kernel *hs_kernel_lookup(const char *name);

/* Evaluates a single-block region with the given block arguments (borrowed).
 * outs must be allocated tensors matching the region's returned types; the
 * returned values are copied into them. */
hs_status *hs_exec_region(hs_exec_ctx *ctx, const hs_region *region, const hs_tensor *args,
                          int n_args, hs_tensor *outs, int n_outs);

/* If the region is exactly `^bb(%a, %b): %c = OP %a, %b; return %c` (in either
 * argument order for commutative ops it reports *swapped), returns OP's name
 * ("stablehlo.add", "stablehlo.maximum", ...); otherwise NULL. */
const char *hs_region_binary_op(const hs_region *region, bool *swapped);

/* Temporary memory valid until run() returns; 64-byte aligned; NULL on OOM. */
void *hs_exec_scratch(hs_exec_ctx *ctx, size_t bytes);

/* Threads of the executor's pool (1 when it has none); libraries with
 * threads of their own (oneDNN) use as many. */
int hs_exec_num_threads(const hs_exec_ctx *ctx);

/* Runs fn(arg, begin, end) over [0, n) split in chunks across the executor's
 * threads (or inline when there is one). `grain` is the smallest chunk. */
typedef void (*hs_range_fn)(void *arg, int64_t begin, int64_t end);
void hs_exec_parallel_for(hs_exec_ctx *ctx, int64_t n, int64_t grain, hs_range_fn fn, void *arg);

#endif /* HLOSERVE_RUNTIME_KERNEL_H */
