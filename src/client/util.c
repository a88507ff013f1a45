/*
 * util.c - the client's byte buffer and file reading (client_internal.h).
 *
 * Design: the buffer doubles its capacity, so streaming a response of n bytes
 * costs O(n) copies; a limit protects the client from a server (or a file)
 * that would make it allocate without bound.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client/client_internal.h"

bool hs_cbuf_append(hs_cbuf *b, const void *p, size_t n) {
  if (b->oom || b->over) return false;
  if (b->limit && (n > b->limit || b->len > b->limit - n)) {
    b->over = true;
    return false;
  }
  if (n > SIZE_MAX - 1 - b->len) {
    b->oom = true;
    return false;
  }
  if (b->len + n + 1 > b->cap) {  /* +1: room for a terminating NUL */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) {
      if (cap > SIZE_MAX / 2) {
        cap = b->len + n + 1;
        break;
      }
      cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
      b->oom = true;
      return false;
    }
    b->data = d;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = 0;
  return true;
}

void hs_cbuf_free(hs_cbuf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

hs_status *hs_client_read_file(const char *path, const char *what, size_t max_bytes,
                               uint8_t **data, size_t *n) {
  *data = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return hs_status_new(HS_IO_ERROR, "cannot open %s '%s': %s", what, path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    return hs_status_new(HS_IO_ERROR, "cannot read %s '%s': it is a directory", what, path);
  }
  hs_cbuf b = {0};
  b.limit = max_bytes;
  char chunk[65536];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (!hs_cbuf_append(&b, chunk, k)) break;
  int err = ferror(f) ? errno : 0;
  fclose(f);
  if (err) {
    hs_cbuf_free(&b);
    return hs_status_new(HS_IO_ERROR, "cannot read %s '%s': %s", what, path, strerror(err));
  }
  if (b.over) {
    hs_cbuf_free(&b);
    return hs_status_new(HS_RESOURCE_EXHAUSTED, "%s '%s' is larger than %zu bytes", what, path,
                         max_bytes);
  }
  if (b.oom) {
    hs_cbuf_free(&b);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory reading %s '%s'", what, path);
  }
  if (!b.data && !hs_cbuf_append(&b, "", 0)) /* an empty file still gets its NUL */
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory reading %s '%s'", what, path);
  *data = b.data;
  *n = b.len;
  return NULL;
}
