#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hs_test_failed_current, hs_tests_run, hs_tests_failed;

int hs_test_summary(void) {
  printf("%d passed, %d failed\n", hs_tests_run - hs_tests_failed, hs_tests_failed);
  return hs_tests_failed ? 1 : 0;
}

const char *hs_test_source_path(const char *rel) {
  static char buf[4096];
  const char *root = getenv("HS_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
  return buf;
}

hs_status *hs_test_run(const char *text, int threads, const hs_tensor *in, int n_in, hs_tensor *out,
                       int n_out) {
  hs_program_options opt = {NULL, threads};
  hs_program *p = NULL;
  HS_RETURN_IF_ERROR(hs_program_from_text(text, strlen(text), "test.mlir", &opt, &p));
  for (int i = 0; i < n_out; i++) out[i].data = NULL;
  hs_status *st = hs_program_run(p, in, n_in, out, n_out);
  hs_program_free(p);
  return st;
}

hs_status *hs_test_compile(const char *text) {
  hs_program *p = NULL;
  HS_RETURN_IF_ERROR(hs_program_from_text(text, strlen(text), "test.mlir", NULL, &p));
  hs_program_free(p);
  return NULL;
}

hs_status *hs_test_run_checked(const char *text) { return hs_test_run(text, 1, NULL, 0, NULL, 0); }
