/*
 * threadpool.h - a fixed set of worker threads for data-parallel loops.
 *
 * One primitive: parallel_for over [0, n) in chunks of at least `grain`.
 * The calling thread takes part, so a pool of N threads uses N-1 workers.
 * Jobs from several callers are serialised (one loop at a time per pool):
 * kernels are short, and this keeps the pool simple and allocation-free.
 */
#ifndef HLOSERVE_BASE_THREADPOOL_H
#define HLOSERVE_BASE_THREADPOOL_H

#include <stdint.h>

#include "hloserve/status.h"

typedef struct hs_threadpool hs_threadpool;

hs_status *hs_threadpool_create(int n_threads, hs_threadpool **out);
void hs_threadpool_destroy(hs_threadpool *p);
int hs_threadpool_size(const hs_threadpool *p);
void hs_threadpool_parallel_for(hs_threadpool *p, int64_t n, int64_t grain,
                                void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);

#endif
