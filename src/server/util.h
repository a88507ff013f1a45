/*
 * util.h - small helpers the server pieces share: a monotonic clock, a
 * growable byte buffer that JSON and Prometheus text are written into, and
 * the server log.
 *
 * The buffer records an allocation failure in a flag instead of failing each
 * append, so writers append freely and check once at the end; a response we
 * could not build becomes one "out of memory" error, never a partial body.
 */
#ifndef HLOSERVE_SERVER_UTIL_H
#define HLOSERVE_SERVER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hloserve/status.h"

/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t hs_now_ns(void);

typedef struct hs_buf {
  char *data;
  size_t len, cap;
  bool oom; /* an append failed; the contents are incomplete */
} hs_buf;

void hs_buf_init(hs_buf *b);
void hs_buf_free(hs_buf *b);
/* Makes room for `extra` more bytes; false (and oom set) on failure. */
bool hs_buf_reserve(hs_buf *b, size_t extra);
void hs_buf_append(hs_buf *b, const void *p, size_t n);
void hs_buf_puts(hs_buf *b, const char *s);
void hs_buf_putc(hs_buf *b, char c);
void hs_buf_printf(hs_buf *b, const char *fmt, ...) HS_PRINTF(2, 3);
/* A JSON string literal (quotes included) of n bytes of UTF-8. */
void hs_buf_json_string(hs_buf *b, const char *s, size_t n);
/* Hands the bytes to the caller (free() them); the buffer is empty again. */
char *hs_buf_detach(hs_buf *b, size_t *len);

/* One line on stderr, prefixed "hloserve: ". Thread-safe. */
void hs_log(const char *fmt, ...) HS_PRINTF(1, 2);
/* Silences hs_log (tests and fuzzers). */
void hs_log_set_quiet(bool quiet);

#endif
