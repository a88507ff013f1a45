/*
 * cmd_check.c - `hloserve check-hlo [--device D] FILE...`: runs self-checking
 * programs (on the CPU, or with --device cuda:N on a GPU) and prints one line per file (PASS, FAIL: a check did not hold, ERROR: the
 * file could not be parsed, compiled or run), then "N passed, N failed".
 * Exit status 0 only when every file passed.
 */
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "hloserve/runtime.h"

int hs_cmd_check_hlo(int argc, char **argv) {
  const char *device = NULL;
  if (argc >= 2 && strcmp(argv[0], "--device") == 0) {
    device = argv[1];
    argc -= 2;
    argv += 2;
    hs_status *st = hs_device_check(device);
    if (st) {
      fprintf(stderr, "hloserve check-hlo: %s\n", hs_status_message(st));
      hs_status_free(st);
      return 2;
    }
  }
  if (argc == 0 || strcmp(argv[0], "--help") == 0) {
    fprintf(argc ? stdout : stderr, "usage: hloserve check-hlo [--device cpu|cuda:N] FILE...\n");
    return argc ? 0 : 2;
  }
  int passed = 0, failed = 0;
  for (int i = 0; i < argc; i++) {
    hs_status *st = hs_check_file_on(argv[i], device);
    if (!st) {
      printf("PASS %s\n", argv[i]);
      passed++;
    } else {
      /* One line per file: fold newlines in the message. */
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", hs_status_message(st));
      for (char *p = msg; *p; p++)
        if (*p == '\n') *p = ' ';
      printf("%s %s: %s\n", hs_status_code_of(st) == HS_FAILED_PRECONDITION ? "FAIL" : "ERROR", argv[i], msg);
      hs_status_free(st);
      failed++;
    }
    fflush(stdout);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
