/*
 * scratch.h - a worker's pool of reusable buffers (the meta API's scratch,
 * sub-call outputs and response tensors all come from it).
 *
 * The pool hands out buffers in sequence: the k-th acquire of a request gets
 * slot k, grown only when too small, and releasing the request rewinds the
 * sequence.  A run that asks for the same sizes in the same order on every
 * request (every generated meta does) allocates on its first request only.
 * A limit bounds the bytes the pool keeps; acquiring past it is
 * HS_RESOURCE_EXHAUSTED, and the request fails cleanly.
 */
#ifndef HLOSERVE_SERVER_SCRATCH_H
#define HLOSERVE_SERVER_SCRATCH_H

#include <stddef.h>

#include "hloserve/status.h"

typedef struct hs_scratch_slot {
  void *data;
  size_t cap;
} hs_scratch_slot;

typedef struct hs_scratch_pool {
  hs_scratch_slot *slots;
  int num_slots, slots_cap;
  int cursor;          /* slots in use by the current request */
  size_t pooled_bytes; /* sum of slot capacities */
  size_t in_use_bytes; /* bytes handed out to the current request */
  size_t limit;        /* most pooled bytes; 0: no limit */
  size_t allocations;  /* times memory was obtained from the system (for tests) */
} hs_scratch_pool;

void hs_scratch_init(hs_scratch_pool *p, size_t limit);
void hs_scratch_destroy(hs_scratch_pool *p);
/* A 64-byte aligned buffer of at least `bytes` (contents unspecified), valid
 * until hs_scratch_release. */
hs_status *hs_scratch_acquire(hs_scratch_pool *p, size_t bytes, void **out);
/* Gives every buffer of the current request back to the pool. */
void hs_scratch_release(hs_scratch_pool *p);

#endif
