/*
 * arena.h - a bump allocator for things that live and die together.
 *
 * A parsed module, a compiled program's constant tables and a request's
 * temporaries each get an arena: many small allocations, one free.  Blocks
 * grow geometrically; big requests get a block of their own.  Allocation
 * failure returns NULL (callers turn that into HS_OUT_OF_MEMORY).
 */
#ifndef HLOSERVE_BASE_ARENA_H
#define HLOSERVE_BASE_ARENA_H

#include <stddef.h>

#include <stdbool.h>

typedef struct hs_arena_block hs_arena_block;
typedef struct hs_arena_cleanup hs_arena_cleanup;

typedef struct hs_arena {
  hs_arena_block *head;
  size_t next_size;   /* size of the next block to allocate */
  size_t total;       /* bytes obtained from malloc, for accounting */
  hs_arena_cleanup *cleanups; /* hs_arena_defer, newest first */
} hs_arena;

void hs_arena_init(hs_arena *a, size_t first_block);
void hs_arena_free(hs_arena *a); /* releases everything; the arena can be reused */
/* Runs fn(arg) when the arena is freed (newest first, before its memory
 * goes): for things the arena's objects hold that live elsewhere, e.g. a
 * reference to a buffer shared between programs.  False when out of memory
 * (fn is then not registered). */
bool hs_arena_defer(hs_arena *a, void (*fn)(void *arg), void *arg);
/* 16-byte aligned; NULL on failure or size overflow. Contents are undefined. */
void *hs_arena_alloc(hs_arena *a, size_t size);
/* Zeroed; n*size checked for overflow. */
void *hs_arena_calloc(hs_arena *a, size_t n, size_t size);
/* Copies of strings and buffers. */
char *hs_arena_strndup(hs_arena *a, const char *s, size_t n);
char *hs_arena_strdup(hs_arena *a, const char *s);
void *hs_arena_memdup(hs_arena *a, const void *p, size_t n);

#endif
