/*
 * exec.h - compiling and executing functions of a parsed module (internal).
 *
 * Compiling binds every op to its kernel (or to a control-flow builtin here
 * in exec.c), runs the kernels' prepare() and computes, per block, which
 * values die after which op.  Executing walks a function's ops in order with
 * one frame slot per value id; results of each op are allocated from the
 * frame's buffers and released after their last use, so peak memory follows
 * the live set, not the program size.
 */
#ifndef HLOSERVE_RUNTIME_EXEC_H
#define HLOSERVE_RUNTIME_EXEC_H

#include <pthread.h>

#include "hloserve/status.h"
#include "hloserve/tensor.h"
#include "runtime/ir.h"

typedef struct hs_threadpool hs_threadpool;

typedef struct hs_compiled {
  hs_module *module;     /* owned */
  hs_arena arena;        /* kernel states, liveness tables and memory plans */
  pthread_mutex_t stacks_mu;
  void *free_stacks;     /* pooled execution stacks (exec.c) */
  size_t stack_bytes;    /* high-water mark of the deepest call chain */
  void **folded_bufs;    /* buffers of folded constants (hs_fold_constants) */
  int n_folded_bufs;
  size_t folded_bytes;
  bool folded;           /* hs_fold_constants ran */
  int num_threads;       /* threads runs will use (set before binding; 0 = unknown):
                            kernels' specialize() may plan for it */
  bool device_target;    /* runs on a device backend (cuda/): binding folds
                            constants but skips the CPU-only rewrites
                            (conv_fold) and kernels' specialize() */
} hs_compiled;

/* Takes ownership of m (also on failure). */
hs_status *hs_compile_module(hs_module *m, hs_compiled **out);
void hs_compiled_free(hs_compiled *c);

typedef struct hs_exec_options {
  hs_threadpool *pool; /* may be NULL: run everything on the calling thread */
} hs_exec_options;

/* Runs function f of c with the given arguments (borrowed; dtype and shape
 * must match f's argument types).  Results: for each i, if results[i].data
 * is NULL the runtime mallocs a buffer (free it with free()); otherwise it
 * must point to hs_tensor_nbytes() of the result type and is filled. */
hs_status *hs_execute(hs_compiled *c, const hs_func *f, const hs_tensor *args, int n_args,
                      hs_tensor *results, int n_results, const hs_exec_options *opt);

/* Binds the first n_bound arguments of f for good (weights: the tensors must
 * outlive c) and evaluates, once, every top-level op of f computable from
 * them and from constants; those ops are skipped at run time.  Kernels of
 * ops with some constant operands get to specialize on them.  The memory
 * plan is redone without the folded values.  Once per compiled module. */
hs_status *hs_fold_constants(hs_compiled *c, hs_func *f, const hs_tensor *bound, int n_bound);

/* Offset of value id of f's top-level block in f's planned arena, or -1
 * when it has none (constants, folded values, arguments). */
int64_t hs_exec_value_offset(const hs_func *f, int id);

/* Runs one op of f's top-level block on the CPU, for a device backend's
 * host fallback.  slots (f->n_values + 1 tensors, indexed by value id) must
 * hold every value the op reads, its regions' captured values included;
 * own (as many bytes, zeroed) receives 1 for each result the runtime
 * malloc'd into slots (release with free()).  On error nothing is left
 * allocated. */
hs_status *hs_exec_op_on_host(hs_compiled *c, const hs_func *f, const hs_op *op, hs_tensor *slots,
                              unsigned char *own);

/* Memory statistics of the calling thread's last hs_execute (for benchmarks
 * and tests): peak bytes of live intermediate buffers. */
size_t hs_exec_last_peak_bytes(void);

/* The memory plan of f's top-level block: arena size and the largest set of
 * simultaneously live values (a lower bound for any plan). */
void hs_exec_plan_info(const hs_func *f, size_t *arena_bytes, size_t *max_live_bytes);

#endif
