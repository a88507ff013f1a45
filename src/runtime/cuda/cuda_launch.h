/*
 * cuda_launch.h - how the builders' run functions start the own kernels
 * (internal).
 *
 * hs_cuda_launch_*: C entry points of cuda_kernels.cu; each launches one
 * kernel of cuda_bodies.h over p->n output elements on stream s and returns
 * the launch's error (cudaSuccess when queued).
 *
 * hs_cuda_k_* (cuda_launch.c): what run functions call.  They launch, unless
 * hs_cuda_emulate(true) was called: then they run the same bodies on the
 * calling thread over host pointers.  That is for tests on machines without
 * a GPU (test_cuda_emulated runs the builders' ops on the conformance suite
 * this way), never for serving.
 */
#ifndef HLOSERVE_RUNTIME_CUDA_LAUNCH_H
#define HLOSERVE_RUNTIME_CUDA_LAUNCH_H

#include <cuda_runtime_api.h>
#include <stdbool.h>

#include "runtime/cuda/cuda_bodies.h"

#ifdef __cplusplus
extern "C" {
#endif

cudaError_t hs_cuda_launch_strided(cudaStream_t s, const hs_kp_strided *p);
cudaError_t hs_cuda_launch_pad(cudaStream_t s, const hs_kp_pad *p);
cudaError_t hs_cuda_launch_vm(cudaStream_t s, const hs_kp_vm *p);
cudaError_t hs_cuda_launch_iota(cudaStream_t s, const hs_kp_iota *p);
cudaError_t hs_cuda_launch_reduce(cudaStream_t s, const hs_kp_reduce *p);
cudaError_t hs_cuda_launch_rwin(cudaStream_t s, const hs_kp_rwin *p);
cudaError_t hs_cuda_launch_gather(cudaStream_t s, const hs_kp_gather *p);

void hs_cuda_emulate(bool on);
bool hs_cuda_emulating(void);
cudaError_t hs_cuda_k_strided(cudaStream_t s, const hs_kp_strided *p);
cudaError_t hs_cuda_k_pad(cudaStream_t s, const hs_kp_pad *p);
cudaError_t hs_cuda_k_vm(cudaStream_t s, const hs_kp_vm *p);
cudaError_t hs_cuda_k_iota(cudaStream_t s, const hs_kp_iota *p);
cudaError_t hs_cuda_k_reduce(cudaStream_t s, const hs_kp_reduce *p);
cudaError_t hs_cuda_k_rwin(cudaStream_t s, const hs_kp_rwin *p);
cudaError_t hs_cuda_k_gather(cudaStream_t s, const hs_kp_gather *p);
/* Device-to-device bytes (a host memcpy when emulating). */
cudaError_t hs_cuda_k_copy(cudaStream_t s, void *dst, const void *src, size_t n);

#ifdef __cplusplus
}
#endif
#endif
