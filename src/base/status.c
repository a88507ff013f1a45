/*
 * status.c - see hloserve/status.h.  A status is one malloc'd block holding
 * the code and the message.  The static out-of-memory status is returned when
 * that malloc fails and is never freed.
 */
#include "hloserve/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hs_status {
  hs_status_code code;
  char *msg;
};

static hs_status hs_oom_status = {HS_OUT_OF_MEMORY, (char *)"out of memory"};

hs_status *hs_status_newv(hs_status_code code, const char *fmt, va_list ap) {
  if (code == HS_OK) return NULL;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  hs_status *st = malloc(sizeof(*st));
  char *msg = malloc((size_t)n + 1);
  if (!st || !msg) {
    free(st);
    free(msg);
    return &hs_oom_status;
  }
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  st->code = code;
  st->msg = msg;
  return st;
}

hs_status *hs_status_new(hs_status_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  hs_status *st = hs_status_newv(code, fmt, ap);
  va_end(ap);
  return st;
}

hs_status *hs_status_annotate(hs_status *st, const char *fmt, ...) {
  if (!st || st == &hs_oom_status) return st;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return st;
  size_t old = strlen(st->msg);
  char *msg = malloc((size_t)n + 2 + old + 1);
  if (!msg) return st;
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  memcpy(msg + n, ": ", 2);
  memcpy(msg + n + 2, st->msg, old + 1);
  free(st->msg);
  st->msg = msg;
  return st;
}

hs_status_code hs_status_code_of(const hs_status *st) { return st ? st->code : HS_OK; }

const char *hs_status_message(const hs_status *st) { return st ? st->msg : "OK"; }

const char *hs_status_code_name(hs_status_code code) {
  switch (code) {
    case HS_OK: return "OK";
    case HS_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case HS_NOT_FOUND: return "NOT_FOUND";
    case HS_UNIMPLEMENTED: return "UNIMPLEMENTED";
    case HS_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case HS_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case HS_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case HS_UNAVAILABLE: return "UNAVAILABLE";
    case HS_IO_ERROR: return "IO_ERROR";
    case HS_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case HS_CANCELLED: return "CANCELLED";
    case HS_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

void hs_status_free(hs_status *st) {
  if (!st || st == &hs_oom_status) return;
  free(st->msg);
  free(st);
}
