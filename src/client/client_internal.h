/*
 * client_internal.h - small helpers shared by the client's files: a growable
 * byte buffer and whole-file reading.
 *
 * Design: the buffer records running out of memory (or past its cap) in a
 * flag instead of failing each append, so writers append freely and check
 * once at the end; callers that stream from libcurl or libpng get one simple
 * sink and one place to test for overflow.
 */
#ifndef HLOSERVE_CLIENT_INTERNAL_H
#define HLOSERVE_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hloserve/status.h"

typedef struct hs_cbuf {
  uint8_t *data;
  size_t len, cap;
  size_t limit;  /* appends past this many bytes set over (0: no limit) */
  bool oom, over;
} hs_cbuf;

/* Appends n bytes; false (and a flag set) when it could not. */
bool hs_cbuf_append(hs_cbuf *b, const void *p, size_t n);
void hs_cbuf_free(hs_cbuf *b);

/* Reads a whole file (at most max_bytes) into a malloc'd buffer with a NUL
 * after the last byte.  what names the file in messages ("image", "labels"). */
hs_status *hs_client_read_file(const char *path, const char *what, size_t max_bytes,
                               uint8_t **data, size_t *n);

#endif
