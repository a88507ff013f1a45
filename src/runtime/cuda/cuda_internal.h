/*
 * cuda_internal.h - the CUDA backend's pieces and how they meet (internal).
 *
 * The backend runs a compiled function (exec.h) on one GPU.  At plan time
 * (cuda_exec.c) every top-level op of the entry function gets a device op
 * from one of the builders below, or, when no builder takes it, a host
 * fallback (its operands are copied to the host, the CPU kernel runs, its
 * results are copied back).  Values live in one device arena per execution
 * context, laid out by the CPU executor's own memory plan; weights, constants
 * and bind-time folded values are uploaded once and owned by the plan.
 *
 * A builder looks at one op (attributes, operand and result types, and the
 * host values of operands known for good) and fills an hs_cuda_op: the run
 * function, a state in the plan arena, and the device workspace it needs.
 * It returns NULL with d->run left NULL to decline (the op then runs on the
 * host), and an error status only when something really failed.  run() is
 * called with device pointers of the operands and results and must only
 * enqueue work on x->stream (no synchronisation, no allocation: executions
 * are captured into CUDA graphs).
 */
#ifndef HLOSERVE_RUNTIME_CUDA_INTERNAL_H
#define HLOSERVE_RUNTIME_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "base/arena.h"
#include "hloserve/status.h"
#include "hloserve/tensor.h"
#include "runtime/cuda/cuda_bodies.h"
#include "runtime/ir.h"

/* One execution context: used by one run at a time. */
typedef struct hs_cuda_exec {
  struct hs_cuda_exec *next; /* pool link */
  cudaStream_t stream;
  cublasHandle_t blas;
  cudnnHandle_t dnn;
  void *ws;                  /* device workspace, the plan's largest need */
  void *blas_ws;             /* cuBLAS's own workspace (graph capture needs one) */
  size_t ws_bytes;
  char *arena;               /* device: planned values, then entry inputs and results */
  void *pinned;              /* host, page-locked: staging for inputs and outputs */
  size_t pinned_bytes;
  cudaGraphExec_t graph;     /* the captured ops, when the plan is graphable */
  int graph_state;           /* 0 not tried, 1 captured, -1 capture failed: run op by op */
} hs_cuda_exec;

typedef struct hs_cuda_op hs_cuda_op;
typedef hs_status *(*hs_cuda_run_fn)(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in,
                                     void *const *out);

struct hs_cuda_op {
  const hs_op *op;
  hs_cuda_run_fn run;  /* NULL: host fallback */
  void *state;         /* the builder's, in the plan arena */
  size_t workspace;    /* bytes of x->ws run() uses */
};

typedef struct hs_cuda_build {
  hs_arena *arena;               /* the plan's: states live as long as the plan */
  int device;
  cudnnHandle_t dnn;             /* for algorithm choice at plan time */
  cublasHandle_t blas;
  const hs_tensor *const *konst; /* per operand of the op being built: its value
                                    (host memory) when known for good, else NULL */
  struct hs_cuda_plan *plan;
} hs_cuda_build;

/* Device memory owned by the plan (freed with it); NULL on failure. */
void *hs_cuda_build_alloc(hs_cuda_build *b, size_t bytes);
/* Copies host bytes into new plan-owned device memory. */
hs_status *hs_cuda_build_upload(hs_cuda_build *b, const void *host, size_t bytes, void **dev);

/* An error status from a CUDA / cuBLAS / cuDNN result, naming what failed. */
hs_status *hs_cuda_error(cudaError_t e, const char *what);
hs_status *hs_cublas_error(cublasStatus_t e, const char *what);
hs_status *hs_cudnn_error(cudnnStatus_t e, const char *what);

/* The VM's value kind and width of a dtype; false for dtypes the device
 * kernels do not handle (f16, bf16, complex). */
bool hs_cuda_vm_kind(hs_dtype t, uint8_t *kind, uint8_t *bits);

/* ---- builders ---- */
/* Element-wise ops, fusion groups, broadcast_in_dim, convert, select,
 * compare, clamp (cuda_ew.c). */
hs_status *hs_cuda_build_ew(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d);
/* reshape, transpose, slice, reverse, pad, concatenate, iota, gather,
 * reduce, reduce_window (cuda_movement.c). */
hs_status *hs_cuda_build_movement(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d);
/* stablehlo.convolution through cuDNN (cuda_conv.c). */
hs_status *hs_cuda_build_conv(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d);
/* stablehlo.dot_general through cuBLAS (cuda_dot.c). */
hs_status *hs_cuda_build_dot(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d);

/* Releases what a builder made outside the plan arena (cuDNN descriptors);
 * called once per op when the plan is freed (cuda_conv.c). */
void hs_cuda_release_op(hs_cuda_op *d);

/* Enqueues a row-major permutation/strided copy (see hs_kp_strided) built
 * from rank, dims and element strides; for builders that reorder operands. */
hs_status *hs_cuda_copy_strided(cudaStream_t s, void *dst, const void *src, int esize, int rank,
                                const int64_t *dims, const int64_t *src_strides,
                                const int64_t *dst_strides);

#endif /* HLOSERVE_RUNTIME_CUDA_INTERNAL_H */
