/*
 * util.c - see util.h.  The buffer grows geometrically; the log formats a
 * whole line first and writes it with one call so that lines from several
 * threads never interleave.
 */
#include "server/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t hs_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void hs_buf_init(hs_buf *b) { memset(b, 0, sizeof *b); }

void hs_buf_free(hs_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

bool hs_buf_reserve(hs_buf *b, size_t extra) {
  if (b->oom) return false;
  if (extra <= b->cap - b->len) return true;
  if (extra > SIZE_MAX / 2 - b->len) {
    b->oom = true;
    return false;
  }
  size_t need = b->len + extra, cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->data = p;
  b->cap = cap;
  return true;
}

void hs_buf_append(hs_buf *b, const void *p, size_t n) {
  if (n == 0 || !hs_buf_reserve(b, n)) return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

void hs_buf_puts(hs_buf *b, const char *s) { hs_buf_append(b, s, strlen(s)); }

void hs_buf_putc(hs_buf *b, char c) {
  if (!hs_buf_reserve(b, 1)) return;
  b->data[b->len++] = c;
}

void hs_buf_printf(hs_buf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    hs_buf_append(b, small, (size_t)n);
    return;
  }
  if (!hs_buf_reserve(b, (size_t)n + 1)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if ((c & 0xE0) == 0xC0) {
    len = 2, min = 0x80, c &= 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, min = 0x800, c &= 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, c &= 0x07;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  return len;
}

void hs_buf_json_string(hs_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (!hs_buf_reserve(b, n + 2)) return;
  hs_buf_putc(b, '"');
  size_t run = 0; /* start of the bytes not yet copied */
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      i++;
      continue;
    }
    if (c >= 0x80) {
      size_t k = utf8_len((const unsigned char *)s + i, n - i);
      if (k) {
        i += k;
        continue;
      }
    }
    /* An escape, or invalid UTF-8 (made U+FFFD so the JSON stays valid). */
    hs_buf_append(b, s + run, i - run);
    switch (c) {
      case '"': hs_buf_puts(b, "\\\""); break;
      case '\\': hs_buf_puts(b, "\\\\"); break;
      case '\n': hs_buf_puts(b, "\\n"); break;
      case '\r': hs_buf_puts(b, "\\r"); break;
      case '\t': hs_buf_puts(b, "\\t"); break;
      default:
        if (c >= 0x80) {
          hs_buf_puts(b, "\\ufffd");
        } else {
          char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
          hs_buf_append(b, e, 6);
        }
    }
    i++;
    run = i;
  }
  hs_buf_append(b, s + run, n - run);
  hs_buf_putc(b, '"');
}

char *hs_buf_detach(hs_buf *b, size_t *len) {
  char *p = b->data;
  if (len) *len = b->len;
  memset(b, 0, sizeof *b);
  return p;
}

static bool log_quiet;

void hs_log_set_quiet(bool quiet) { log_quiet = quiet; }

void hs_log(const char *fmt, ...) {
  if (log_quiet) return;
  char line[2048];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  int k = snprintf(line, sizeof line, "hloserve: %02d:%02d:%02d.%03d ", tm.tm_hour, tm.tm_min,
                   tm.tm_sec, (int)(ts.tv_nsec / 1000000));
  if (k < 0) k = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + k, sizeof line - (size_t)k - 1, fmt, ap);
  va_end(ap);
  size_t n = strlen(line);
  line[n++] = '\n';
  fwrite(line, 1, n, stderr);
  fflush(stderr);
}
