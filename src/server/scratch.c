/*
 * scratch.c - see scratch.h.  Slots grow to the next multiple of 4 KiB (at
 * least 1/8 more than asked) so that small size changes between requests do
 * not reallocate every time.
 */
#include "server/scratch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void hs_scratch_init(hs_scratch_pool *p, size_t limit) {
  memset(p, 0, sizeof *p);
  p->limit = limit;
}

void hs_scratch_destroy(hs_scratch_pool *p) {
  for (int i = 0; i < p->num_slots; i++) free(p->slots[i].data);
  free(p->slots);
  memset(p, 0, sizeof *p);
}

hs_status *hs_scratch_acquire(hs_scratch_pool *p, size_t bytes, void **out) {
  *out = NULL;
  if (bytes == 0) bytes = 1;
  if (p->cursor < p->num_slots && p->slots[p->cursor].cap >= bytes) {
    *out = p->slots[p->cursor++].data;
    p->in_use_bytes += bytes;
    return NULL;
  }
  if (bytes > SIZE_MAX / 2)
    return hs_status_new(HS_RESOURCE_EXHAUSTED, "scratch request of %zu bytes is too large", bytes);
  size_t cap = bytes + bytes / 8;
  cap = (cap + 4095) & ~(size_t)4095;
  size_t old = p->cursor < p->num_slots ? p->slots[p->cursor].cap : 0;
  if (p->limit && p->pooled_bytes - old + cap > p->limit) {
    cap = bytes; /* try without the slack */
    if (p->pooled_bytes - old + cap > p->limit)
      return hs_status_new(HS_RESOURCE_EXHAUSTED,
                           "scratch limit reached: %zu bytes more would exceed the worker's "
                           "%zu-byte pool", bytes, p->limit);
  }
  if (p->cursor == p->num_slots && p->num_slots == p->slots_cap) {
    int nc = p->slots_cap ? p->slots_cap * 2 : 16;
    hs_scratch_slot *s = realloc(p->slots, sizeof *s * (size_t)nc);
    if (!s) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory growing the scratch pool");
    p->slots = s;
    p->slots_cap = nc;
  }
  void *data = NULL;
  if (posix_memalign(&data, 64, cap) != 0)
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory for %zu bytes of scratch", cap);
  p->allocations++;
  if (p->cursor < p->num_slots) {
    free(p->slots[p->cursor].data);
    p->pooled_bytes -= p->slots[p->cursor].cap;
  } else {
    p->num_slots++;
  }
  p->slots[p->cursor].data = data;
  p->slots[p->cursor].cap = cap;
  p->pooled_bytes += cap;
  p->cursor++;
  p->in_use_bytes += bytes;
  *out = data;
  return NULL;
}

void hs_scratch_release(hs_scratch_pool *p) {
  p->cursor = 0;
  p->in_use_bytes = 0;
}
