/*
 * cmd_run.c - `hloserve run-hlo MODEL.mlir [--weights W.safetensors]
 * [--weight-names a,b,...] [--entry NAME] [--threads N] --input NAME=FILE.npy ...
 * --output-dir DIR`.
 *
 * Inputs are matched to the entry function's unbound parameters in the order
 * given (NAME is a label for messages; argN by convention).  Outputs are
 * written as DIR/output_<i>.npy.
 *
 * --repeat N runs the program N more times after a first (warm-up) run and
 * prints one line of timing and memory figures for benchmarks:
 *   run-hlo: repeat=N median_ms=... min_ms=... peak_intermediate_bytes=...
 *            weights_bytes=... arena_bytes=... max_live_bytes=...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/npy.h"
#include "cmds.h"
#include "hloserve/runtime.h"

static int fail(hs_status *st) {
  fprintf(stderr, "hloserve run-hlo: %s\n", hs_status_message(st));
  hs_status_free(st);
  return 1;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: hloserve run-hlo MODEL.mlir [--weights W.safetensors] [--weight-names a,b,...]\n"
          "                        [--entry NAME] [--threads N] [--device cpu|cuda:N]\n"
          "                        [--repeat N] --input NAME=FILE.npy ...\n"
          "                        --output-dir DIR\n");
}

int hs_cmd_run_hlo(int argc, char **argv) {
  const char *model = NULL, *weights = NULL, *outdir = NULL, *names_csv = NULL;
  hs_program_options opt = {NULL, 1};
  const char *inputs[64];
  int n_in = 0, repeat = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--weights") == 0 && v) {
      weights = v;
      i++;
    } else if (strcmp(a, "--weight-names") == 0 && v) {
      names_csv = v;
      i++;
    } else if (strcmp(a, "--entry") == 0 && v) {
      opt.entry = v;
      i++;
    } else if (strcmp(a, "--threads") == 0 && v) {
      opt.num_threads = atoi(v);
      i++;
    } else if (strcmp(a, "--device") == 0 && v) {
      opt.device = v;
      i++;
    } else if (strcmp(a, "--repeat") == 0 && v) {
      repeat = atoi(v);
      i++;
    } else if (strcmp(a, "--input") == 0 && v) {
      if (n_in == 64) {
        fprintf(stderr, "hloserve run-hlo: too many inputs\n");
        return 2;
      }
      const char *eq = strchr(v, '=');
      inputs[n_in++] = eq ? eq + 1 : v;
      i++;
    } else if (strcmp(a, "--output-dir") == 0 && v) {
      outdir = v;
      i++;
    } else if (a[0] != '-' && !model) {
      model = a;
    } else {
      fprintf(stderr, "hloserve run-hlo: unexpected argument '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!model || !outdir) {
    usage(stderr);
    return 2;
  }
  hs_program *p = NULL;
  hs_status *st = hs_program_load(model, &opt, &p);
  if (st) return fail(st);
  if (weights) {
    char *names_buf = NULL;
    const char *names[4096];
    int n_names = 0;
    if (names_csv) {
      names_buf = strdup(names_csv);
      for (char *tok = strtok(names_buf, ","); tok && n_names < 4096; tok = strtok(NULL, ",")) names[n_names++] = tok;
    }
    st = hs_program_bind_weights(p, weights, names_csv ? names : NULL, n_names);
    free(names_buf);
    if (st) {
      hs_program_free(p);
      return fail(st);
    }
  }
  int want = hs_program_num_inputs(p);
  if (want != n_in) {
    fprintf(stderr, "hloserve run-hlo: the program takes %d inputs, %d given\n", want, n_in);
    hs_program_free(p);
    return 2;
  }
  hs_tensor in[64], out[64];
  memset(in, 0, sizeof in);
  memset(out, 0, sizeof out);
  int n_out = hs_program_num_outputs(p);
  int rc = 0;
  if (n_out > 64) {
    fprintf(stderr, "hloserve run-hlo: more than 64 outputs\n");
    rc = 1;
    goto done;
  }
  for (int i = 0; i < n_in; i++) {
    st = hs_npy_read(inputs[i], &in[i]);
    if (st) {
      rc = fail(st);
      goto done;
    }
  }
  st = hs_program_run(p, in, n_in, out, n_out);
  if (st) {
    rc = fail(st);
    goto done;
  }
  if (repeat > 0) {
    double *ms = malloc(sizeof(double) * (size_t)repeat);
    if (!ms) {
      rc = 1;
      goto done;
    }
    for (int r = 0; r < repeat && !st; r++) {
      double t0 = now_ms();
      st = hs_program_run(p, in, n_in, out, n_out); /* into the buffers of the first run */
      ms[r] = now_ms() - t0;
    }
    if (st) {
      free(ms);
      rc = fail(st);
      goto done;
    }
    qsort(ms, (size_t)repeat, sizeof(double), cmp_double);
    hs_program_memory mem;
    hs_program_memory_info(p, &mem);
    printf("run-hlo: repeat=%d median_ms=%.3f min_ms=%.3f peak_intermediate_bytes=%zu weights_bytes=%zu "
           "folded_bytes=%zu arena_bytes=%zu max_live_bytes=%zu\n",
           repeat, ms[repeat / 2], ms[0], hs_program_last_peak_bytes(), mem.weights_bytes, mem.folded_bytes,
           mem.arena_bytes, mem.max_live_bytes);
    free(ms);
  }
  mkdir(outdir, 0777);
  for (int i = 0; i < n_out; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/output_%d.npy", outdir, i);
    st = hs_npy_write(path, &out[i]);
    if (st) {
      rc = fail(st);
      goto done;
    }
  }
done:
  for (int i = 0; i < 64; i++) {
    free(in[i].data);
    free(out[i].data);
  }
  hs_program_free(p);
  return rc;
}
