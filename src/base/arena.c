/*
 * arena.c - see arena.h.  Blocks form a singly linked list, newest first;
 * allocation bumps an offset inside the newest block.
 */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct hs_arena_block {
  hs_arena_block *next;
  size_t size;
  size_t used;
  _Alignas(16) unsigned char data[];
};

struct hs_arena_cleanup {
  hs_arena_cleanup *next;
  void (*fn)(void *arg);
  void *arg;
};

void hs_arena_init(hs_arena *a, size_t first_block) {
  a->head = NULL;
  a->next_size = first_block ? first_block : 4096;
  a->total = 0;
  a->cleanups = NULL;
}

bool hs_arena_defer(hs_arena *a, void (*fn)(void *arg), void *arg) {
  hs_arena_cleanup *c = hs_arena_alloc(a, sizeof *c);
  if (!c) return false;
  c->fn = fn;
  c->arg = arg;
  c->next = a->cleanups;
  a->cleanups = c;
  return true;
}

void hs_arena_free(hs_arena *a) {
  for (hs_arena_cleanup *c = a->cleanups; c; c = c->next) c->fn(c->arg);
  a->cleanups = NULL;
  hs_arena_block *b = a->head;
  while (b) {
    hs_arena_block *n = b->next;
    free(b);
    b = n;
  }
  a->head = NULL;
  a->total = 0;
}

void *hs_arena_alloc(hs_arena *a, size_t size) {
  size_t need = (size + 15) & ~(size_t)15;
  if (need < size) return NULL;
  hs_arena_block *b = a->head;
  if (!b || b->size - b->used < need) {
    size_t bs = a->next_size;
    if (bs < need) bs = need;
    if (bs > SIZE_MAX - sizeof(hs_arena_block)) return NULL;
    b = malloc(sizeof(hs_arena_block) + bs);
    if (!b) return NULL;
    b->size = bs;
    b->used = 0;
    b->next = a->head;
    a->head = b;
    a->total += bs;
    if (a->next_size < ((size_t)1 << 26)) a->next_size *= 2;
  }
  void *p = b->data + b->used;
  b->used += need;
  return p;
}

void *hs_arena_calloc(hs_arena *a, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  void *p = hs_arena_alloc(a, n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

char *hs_arena_strndup(hs_arena *a, const char *s, size_t n) {
  char *p = hs_arena_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *hs_arena_strdup(hs_arena *a, const char *s) { return hs_arena_strndup(a, s, strlen(s)); }

void *hs_arena_memdup(hs_arena *a, const void *p, size_t n) {
  void *q = hs_arena_alloc(a, n ? n : 1);
  if (q && n) memcpy(q, p, n);
  return q;
}
