/*
 * cuda_kernels.cu - launches of the CUDA backend's own kernels.
 *
 * A thin layer: every kernel is a grid-stride loop over the output's
 * elements calling one body of cuda_bodies.h (where the semantics live and
 * are tested on the CPU).  Parameter blocks go by value, so a launch needs no
 * device allocation and a CUDA graph captures it as it is.  The launchers
 * have C linkage and return the launch's cudaError_t.
 */
#include <cuda_runtime.h>

#include "runtime/cuda/cuda_bodies.h"
#include "runtime/cuda/cuda_launch.h"

#define HS_THREADS 256

static unsigned hs_blocks(int64_t n) {
  int64_t b = (n + HS_THREADS - 1) / HS_THREADS;
  if (b < 1) b = 1;
  if (b > 65535LL * 16) b = 65535LL * 16; /* grid-stride loops cover the rest */
  return (unsigned)b;
}

#define HS_DEFINE_KERNEL(name, P, body)                                        \
  __global__ void name##_kernel(const P p) {                                   \
    int64_t stride = (int64_t)gridDim.x * blockDim.x;                          \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.n; \
         i += stride)                                                          \
      body(&p, i);                                                             \
  }                                                                            \
  extern "C" cudaError_t name(cudaStream_t s, const P *p) {                    \
    if (p->n <= 0) return cudaSuccess;                                         \
    name##_kernel<<<hs_blocks(p->n), HS_THREADS, 0, s>>>(*p);                  \
    return cudaGetLastError();                                                 \
  }

HS_DEFINE_KERNEL(hs_cuda_launch_strided, hs_kp_strided, hs_kb_strided)
HS_DEFINE_KERNEL(hs_cuda_launch_pad, hs_kp_pad, hs_kb_pad)
HS_DEFINE_KERNEL(hs_cuda_launch_vm, hs_kp_vm, hs_kb_vm)
HS_DEFINE_KERNEL(hs_cuda_launch_iota, hs_kp_iota, hs_kb_iota)
HS_DEFINE_KERNEL(hs_cuda_launch_reduce, hs_kp_reduce, hs_kb_reduce)
HS_DEFINE_KERNEL(hs_cuda_launch_rwin, hs_kp_rwin, hs_kb_rwin)
HS_DEFINE_KERNEL(hs_cuda_launch_gather, hs_kp_gather, hs_kb_gather)
