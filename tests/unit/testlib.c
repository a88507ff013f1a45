#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>

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
