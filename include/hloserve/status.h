/*
 * status.h - error values for every fallible call in hloserve.
 *
 * Design (after IREE's iree_status_t): a fallible function returns an
 * hs_status pointer.  NULL means success, so the happy path costs nothing and
 * reads naturally:
 *
 *     HS_RETURN_IF_ERROR(hs_parse(...));
 *
 * A non-NULL status owns a heap-allocated message; the caller either returns
 * it upward (optionally annotating it with context) or frees it.  Running out
 * of memory while building a status yields a static "out of memory" status
 * that hs_status_free() recognises and never frees, so error reporting itself
 * cannot fail.
 */
#ifndef HLOSERVE_STATUS_H
#define HLOSERVE_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hs_status_code {
  HS_OK = 0,
  HS_INVALID_ARGUMENT,   /* bad input: syntax, types, shapes, values */
  HS_NOT_FOUND,          /* a named thing (model, weight, function) is missing */
  HS_UNIMPLEMENTED,      /* valid input we do not support (yet) */
  HS_OUT_OF_MEMORY,
  HS_FAILED_PRECONDITION,/* e.g. a check.expect_* op did not hold */
  HS_DEADLINE_EXCEEDED,
  HS_UNAVAILABLE,        /* not ready, queue full */
  HS_IO_ERROR,
  HS_RESOURCE_EXHAUSTED, /* over a configured limit */
  HS_CANCELLED,
  HS_INTERNAL
} hs_status_code;

typedef struct hs_status hs_status;

#if defined(__GNUC__)
#define HS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HS_MUST_USE __attribute__((warn_unused_result))
#else
#define HS_PRINTF(f, a)
#define HS_MUST_USE
#endif

/* Creates a status with a printf-style message.  Never returns NULL for a
 * code other than HS_OK (HS_OK returns NULL). */
hs_status *hs_status_new(hs_status_code code, const char *fmt, ...) HS_PRINTF(2, 3);
hs_status *hs_status_newv(hs_status_code code, const char *fmt, va_list ap) HS_PRINTF(2, 0);

/* Prepends "context: " to the message of st and returns st.  NULL stays NULL. */
hs_status *hs_status_annotate(hs_status *st, const char *fmt, ...) HS_PRINTF(2, 3);

hs_status_code hs_status_code_of(const hs_status *st);
/* The message; "OK" for NULL.  Valid until the status is freed. */
const char *hs_status_message(const hs_status *st);
/* A short name for a code, e.g. "INVALID_ARGUMENT". */
const char *hs_status_code_name(hs_status_code code);
void hs_status_free(hs_status *st);

#define HS_RETURN_IF_ERROR(expr)           \
  do {                                     \
    hs_status *hs_status_tmp_ = (expr);    \
    if (hs_status_tmp_) return hs_status_tmp_; \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif /* HLOSERVE_STATUS_H */
