/*
 * testlib.h - a tiny test harness for the C unit tests.
 *
 * Each tests/unit/test_*.c defines test functions with HS_TEST(name) and a
 * main() that calls HS_RUN(name) for each, then returns hs_test_summary().
 * A failed CHECK prints file:line and the expression, marks the current test
 * failed and returns from it.
 */
#ifndef HLOSERVE_TESTLIB_H
#define HLOSERVE_TESTLIB_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "hloserve/runtime.h"
#include "hloserve/status.h"

extern int hs_test_failed_current;
extern int hs_tests_run, hs_tests_failed;

#define HS_TEST(name) static void name(void)
#define HS_RUN(name)                                             \
  do {                                                           \
    hs_test_failed_current = 0;                                  \
    name();                                                      \
    hs_tests_run++;                                              \
    if (hs_test_failed_current) hs_tests_failed++;               \
    printf("%s %s\n", hs_test_failed_current ? "FAIL" : "ok  ", #name); \
  } while (0)

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      hs_test_failed_current = 1;                                           \
      return;                                                               \
    }                                                                       \
  } while (0)

#define CHECK_MSG(cond, ...)                                              \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                       \
      fputc('\n', stderr);                                                \
      hs_test_failed_current = 1;                                         \
      return;                                                             \
    }                                                                     \
  } while (0)

/* Expects a NULL status; on error prints its message and frees it. */
#define CHECK_OK(expr)                                                           \
  do {                                                                           \
    hs_status *st_ = (expr);                                                     \
    if (st_) {                                                                   \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,        \
              hs_status_message(st_));                                           \
      hs_status_free(st_);                                                       \
      hs_test_failed_current = 1;                                                \
      return;                                                                    \
    }                                                                            \
  } while (0)

/* Expects an error with the given code; frees it. */
#define CHECK_ERR(expr, code)                                                    \
  do {                                                                           \
    hs_status *st_ = (expr);                                                     \
    if (hs_status_code_of(st_) != (code)) {                                      \
      fprintf(stderr, "%s:%d: %s: expected %s, got %s (%s)\n", __FILE__, __LINE__, \
              #expr, hs_status_code_name(code),                                  \
              hs_status_code_name(hs_status_code_of(st_)), hs_status_message(st_)); \
      hs_status_free(st_);                                                       \
      hs_test_failed_current = 1;                                                \
      return;                                                                    \
    }                                                                            \
    hs_status_free(st_);                                                         \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                     \
  CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)",    \
            (double)(a), (double)(b), (double)(tol))

int hs_test_summary(void);

/* Compiles MLIR text (as "test.mlir") and runs @main on the inputs; the
 * outputs' buffers are allocated by the runtime (free them). */
hs_status *hs_test_run(const char *text, int threads, const hs_tensor *in, int n_in, hs_tensor *out,
                       int n_out);
/* Compiles MLIR text and discards the program (for compile-error tests). */
hs_status *hs_test_compile(const char *text);
/* Compiles and runs a self-checking @main() -> (). */
hs_status *hs_test_run_checked(const char *text);
/* Path of a file under the source tree (uses $HS_SOURCE_DIR); static buffer. */
const char *hs_test_source_path(const char *rel);

#endif
