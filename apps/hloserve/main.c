/*
 * main.c - the `hloserve` command: a thin dispatcher over the libraries.
 *
 *   hloserve check-hlo FILE...        run self-checking StableHLO programs
 *   hloserve run-hlo MODEL.mlir ...   run any program on .npy inputs
 *   hloserve serve --model-repository DIR ...   the KServe v2 model server
 *   hloserve infer --model-repository DIR --model M ...   one model, in process
 *
 * Each subcommand lives in its own file (cmd_*.c) and gets argv after the
 * subcommand name.
 */
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "server/fleet.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: hloserve COMMAND [ARGS]\n"
          "\n"
          "commands:\n"
          "  check-hlo FILE...                 run self-checking StableHLO programs\n"
          "  run-hlo MODEL.mlir [--weights W.safetensors] --input NAME=FILE.npy ...\n"
          "          --output-dir DIR          run a program on .npy inputs\n"
          "  serve --model-repository DIR      serve a model repository (KServe v2 over HTTP)\n"
          "  infer --model-repository DIR --model NAME --input NAME=FILE.npy ...\n"
          "                                    run one model of a repository in process\n"
          "\n"
          "Run `hloserve COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "check-hlo") == 0) return hs_cmd_check_hlo(argc - 2, argv + 2);
  if (strcmp(cmd, "run-hlo") == 0) return hs_cmd_run_hlo(argc - 2, argv + 2);
  if (strcmp(cmd, "serve") == 0) return hs_cmd_serve(argc - 2, argv + 2);
  if (strcmp(cmd, "infer") == 0) return hs_cmd_infer(argc - 2, argv + 2);
  /* internal: a worker process of `serve --workers N` (not listed in the usage) */
  if (strcmp(cmd, "__fleet-worker") == 0) return hs_fleet_worker_main(argc - 2, argv + 2);
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "hloserve: unknown command '%s'\n\n", cmd);
  usage(stderr);
  return 2;
}
