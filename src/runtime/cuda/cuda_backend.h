/*
 * cuda_backend.h - what the rest of the runtime sees of the CUDA backend
 * (internal; compiled only when CMake found the CUDA toolkit, HS_HAVE_CUDA).
 *
 * A plan is one compiled function made ready for one GPU: its ops bound to
 * device kernels (or host fallbacks), its lasting values uploaded, its arena
 * laid out.  Running it takes host inputs and fills host results, as
 * hs_execute does; several threads may run one plan at once (each run takes
 * an execution context of its own: stream, handles, arena, captured graph).
 */
#ifndef HLOSERVE_RUNTIME_CUDA_BACKEND_H
#define HLOSERVE_RUNTIME_CUDA_BACKEND_H

#include "hloserve/status.h"
#include "hloserve/tensor.h"
#include "runtime/exec.h"

typedef struct hs_cuda_plan hs_cuda_plan;

/* NULL when CUDA device `device` can be used; else a status saying why
 * (no driver, no such device...). */
hs_status *hs_cuda_device_check(int device);

/* Plans function f of c (compiled with device_target, weights folded when
 * there are any) for GPU `device`.  bound: f's first n_bound arguments, fixed
 * for good (host memory; uploaded here).  c and f must outlive the plan. */
hs_status *hs_cuda_plan_build(hs_compiled *c, const hs_func *f, int device, const hs_tensor *bound,
                              int n_bound, hs_cuda_plan **out);
void hs_cuda_plan_free(hs_cuda_plan *p);

/* Runs the plan: inputs are f's arguments after the bound ones (host
 * memory); results as hs_execute describes (data NULL: malloc'd here). */
hs_status *hs_cuda_plan_run(hs_cuda_plan *p, const hs_tensor *inputs, int n_inputs, hs_tensor *results,
                            int n_results);

typedef struct hs_cuda_plan_info {
  int n_ops;            /* top-level ops that run (constants and folded ones excluded) */
  int n_device_ops;     /* of those, the ones on the GPU */
  int n_fallback_ops;   /* the ones run on the host */
  size_t device_bytes;  /* lasting device memory (weights, constants, folded) */
  size_t arena_bytes;   /* per execution context */
  size_t workspace_bytes;
  bool graphable;       /* no host fallback: runs as one CUDA graph */
  const char *first_fallback; /* the first host-run op's name, or NULL */
} hs_cuda_plan_info;
void hs_cuda_plan_get_info(const hs_cuda_plan *p, hs_cuda_plan_info *info);

#endif /* HLOSERVE_RUNTIME_CUDA_BACKEND_H */
