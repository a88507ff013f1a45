/*
 * cuda_launch.c - the own kernels' launches, or their host emulation (see
 * cuda_launch.h).
 */
#include "runtime/cuda/cuda_launch.h"

#include <stdatomic.h>
#include <string.h>

static atomic_bool emulate;

void hs_cuda_emulate(bool on) { atomic_store(&emulate, on); }
bool hs_cuda_emulating(void) { return atomic_load(&emulate); }

#define HS_K(name, P)                                              \
  cudaError_t hs_cuda_k_##name(cudaStream_t s, const P *p) {       \
    if (!atomic_load(&emulate)) return hs_cuda_launch_##name(s, p); \
    for (int64_t i = 0; i < p->n; i++) hs_kb_##name(p, i);         \
    return cudaSuccess;                                            \
  }
HS_K(strided, hs_kp_strided)
HS_K(pad, hs_kp_pad)
HS_K(vm, hs_kp_vm)
HS_K(iota, hs_kp_iota)
HS_K(reduce, hs_kp_reduce)
HS_K(rwin, hs_kp_rwin)
HS_K(gather, hs_kp_gather)

cudaError_t hs_cuda_k_copy(cudaStream_t s, void *dst, const void *src, size_t n) {
  if (!atomic_load(&emulate)) return cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s);
  memmove(dst, src, n);
  return cudaSuccess;
}
