/*
 * cmd_serve.c - `hloserve serve` (the model server) and `hloserve infer`
 * (run one model of a repository in process, for tools and benchmarks).
 *
 * serve blocks SIGINT and SIGTERM before any thread starts, so every thread
 * inherits the mask and the main thread alone receives them with sigwait:
 * no async-signal-safety puzzles, the shutdown runs as ordinary code.
 * SIGPIPE is ignored (a client hanging up must never kill the server).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/npy.h"
#include "cmds.h"
#include "hloserve/runtime.h"
#include "hloserve/server.h"

static void serve_usage(FILE *f) {
  fprintf(f,
          "usage: hloserve serve --model-repository DIR [options]\n"
          "\n"
          "Serves every bundle under DIR over KServe v2 (HTTP/1.1, JSON and binary tensors).\n"
          "\n"
          "  --host ADDR               listen address (default 127.0.0.1)\n"
          "  --http-port N             port (default 8000; 0 picks a free one)\n"
          "  --threads N               worker threads (default: CPUs)\n"
          "  --intra-op-threads N      threads inside one program run (default 1)\n"
          "  --device D                where dense programs run: cpu (default) or cuda:N\n"
          "  --max-queue N             requests waiting for a worker; more get 503 (default 64)\n"
          "  --max-queue-per-model N   requests of one model waiting; more get 503 (default: off)\n"
          "  --meta-slots N            concurrent meta runs (default: threads)\n"
          "  --max-request-bytes N     larger bodies get 413 (default 64M; k/M/G suffixes)\n"
          "  --scratch-limit-bytes N   scratch pool per worker (default 4G)\n"
          "  --http-threads N          HTTP event loop threads (default 1)\n"
          "  --connection-timeout S    idle keep-alive connections close after S s (default 60)\n"
          "  --header-timeout S        a request's headers must arrive within S s (default 10)\n"
          "  --body-timeout S          a body must arrive, an answer be taken, within S s (default 60)\n"
          "  --max-connections N       open connections; more are closed at once (default 1024)\n"
          "  --max-connections-per-ip N  per client address (default 0: no limit)\n"
          "  --max-header-bytes N      request line + headers; more get 431 (default 16k)\n"
          "  --grace-ms N              on SIGTERM/SIGINT, time for in-flight requests (default 10000)\n"
          "  --cc CC                   C compiler for meta bundles (default $CC or cc)\n"
          "  --include-dir DIR         hloserve headers for meta bundles\n"
          "  --meta-cache DIR          compiled meta bundles (default DIR/.hloserve-cache)\n"
          "  --workers N               run the models in N worker processes (default 0: in this\n"
          "                            process); --threads is then split between them\n"
          "  --worker-hang-grace-ms N  fleet: a worker still running a request N ms past its\n"
          "                            deadline is killed and restarted (default 2000)\n");
}

/* A decimal integer with an optional k/M/G (binary) suffix, within [min, max]. */
static bool parse_int(const char *s, long long min, long long max, long long *out) {
  if (!s || !*s) return false;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno) return false;
  long long mul = 1;
  if (*end == 'k' || *end == 'K') mul = 1024, end++;
  else if (*end == 'm' || *end == 'M') mul = 1024 * 1024, end++;
  else if (*end == 'g' || *end == 'G') mul = 1024LL * 1024 * 1024, end++;
  if (*end || v > LLONG_MAX / mul || v < LLONG_MIN / mul) return false;
  *out = v * mul;
  return *out >= min && *out <= max;
}

/* `serve`'s numeric options: where each goes in hs_server_options and its range. */
typedef struct int_option {
  const char *name;
  long long min, max;
  size_t offset;
  bool is_size; /* a size_t field, else an int */
} int_option;

#define INT_OPT(name, min, max, field) {name, min, max, offsetof(hs_server_options, field), false}
#define SIZE_OPT(name, min, max, field) {name, min, max, offsetof(hs_server_options, field), true}

static const int_option INT_OPTIONS[] = {
    INT_OPT("--http-port", 0, 65535, http_port),
    INT_OPT("--threads", 1, 1024, threads),
    INT_OPT("--intra-op-threads", 1, 1024, intra_op_threads),
    INT_OPT("--max-queue", 1, 1 << 20, max_queue),
    INT_OPT("--max-queue-per-model", 1, 1 << 20, max_queue_per_model),
    INT_OPT("--header-timeout", 1, 86400, header_timeout_s),
    INT_OPT("--body-timeout", 1, 86400, body_timeout_s),
    INT_OPT("--max-connections", 1, 1 << 20, max_connections),
    INT_OPT("--max-connections-per-ip", 0, 1 << 20, max_connections_per_ip),
    SIZE_OPT("--max-header-bytes", 1024, 1 << 24, max_header_bytes),
    INT_OPT("--meta-slots", 1, 1024, meta_slots),
    SIZE_OPT("--max-request-bytes", 1, (long long)1 << 40, max_request_bytes),
    SIZE_OPT("--scratch-limit-bytes", 1, (long long)1 << 44, scratch_limit_bytes),
    INT_OPT("--http-threads", 1, 256, http_threads),
    INT_OPT("--connection-timeout", 1, 86400, connection_timeout_s),
    INT_OPT("--workers", 0, 256, workers),
    INT_OPT("--worker-hang-grace-ms", 1, 3600000, worker_hang_grace_ms),
};

static int bad_value(const char *cmd, const char *opt, const char *v) {
  fprintf(stderr, "hloserve %s: bad value for %s: '%s'\n", cmd, opt, v ? v : "");
  return 2;
}

int hs_cmd_serve(int argc, char **argv) {
  hs_server_options o;
  hs_server_options_init(&o);
  long long grace_ms = 10000;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    long long n;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      serve_usage(stdout);
      return 0;
    }
    if (!v) {
      fprintf(stderr, "hloserve serve: %s needs a value (or is unknown)\n\n", a);
      serve_usage(stderr);
      return 2;
    }
    i++;
    const int_option *io = NULL;
    for (size_t k = 0; k < sizeof INT_OPTIONS / sizeof INT_OPTIONS[0] && !io; k++)
      if (strcmp(a, INT_OPTIONS[k].name) == 0) io = &INT_OPTIONS[k];
    if (io) {
      if (!parse_int(v, io->min, io->max, &n)) return bad_value("serve", a, v);
      char *field = (char *)&o + io->offset;
      if (io->is_size) {
        size_t z = (size_t)n;
        memcpy(field, &z, sizeof z);
      } else {
        int x = (int)n;
        memcpy(field, &x, sizeof x);
      }
    } else if (strcmp(a, "--model-repository") == 0) {
      o.model_repository = v;
    } else if (strcmp(a, "--host") == 0) {
      o.host = v;
    } else if (strcmp(a, "--grace-ms") == 0) {
      if (!parse_int(v, 0, 3600000, &n)) return bad_value("serve", a, v);
      grace_ms = n;
    } else if (strcmp(a, "--device") == 0) {
      hs_status *dst = hs_device_check(v);
      if (dst) {
        fprintf(stderr, "hloserve serve: --device %s: %s\n", v, hs_status_message(dst));
        hs_status_free(dst);
        return 2;
      }
      o.device = v;
    } else if (strcmp(a, "--cc") == 0) {
      o.cc = v;
    } else if (strcmp(a, "--include-dir") == 0) {
      o.include_dir = v;
    } else if (strcmp(a, "--meta-cache") == 0) {
      o.cache_dir = v;
    } else {
      fprintf(stderr, "hloserve serve: unknown option '%s'\n\n", a);
      serve_usage(stderr);
      return 2;
    }
  }
  if (!o.model_repository) {
    fprintf(stderr, "hloserve serve: --model-repository is required\n\n");
    serve_usage(stderr);
    return 2;
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
  signal(SIGPIPE, SIG_IGN);

  hs_server *s = NULL;
  hs_status *st = hs_server_create(&o, &s);
  if (!st) st = hs_server_start(s);
  if (st) {
    fprintf(stderr, "hloserve serve: %s\n", hs_status_message(st));
    hs_status_free(st);
    hs_server_free(s);
    return 1;
  }
  int n_models = hs_server_num_models(s), n_ready = 0;
  for (int i = 0; i < n_models; i++) {
    bool ready;
    hs_server_model_name(s, i, &ready, NULL);
    n_ready += ready;
  }
  printf("hloserve: serving %d model%s (%d ready) on http://%s%s%s:%d\n", n_models,
         n_models == 1 ? "" : "s", n_ready, strchr(o.host, ':') ? "[" : "", o.host,
         strchr(o.host, ':') ? "]" : "", hs_server_port(s));
  fflush(stdout);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  fprintf(stderr, "hloserve: %s received; finishing in-flight requests (grace %lld ms)\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM", grace_ms);
  if (hs_server_shutdown(s, (int)grace_ms)) {
    hs_server_free(s);
    fprintf(stderr, "hloserve: stopped\n");
  } else {
    /* A run is stuck on a worker (model code that ignores its deadline):
     * every client got its answer, so leave without waiting for it. */
    fprintf(stderr, "hloserve: stopped (a worker was still busy)\n");
    fflush(stderr);
    _exit(0);
  }
  return 0;
}

/* ---- infer -------------------------------------------------------------------- */

static void infer_usage(FILE *f) {
  fprintf(f,
          "usage: hloserve infer --model-repository DIR --model NAME --input NAME=FILE.npy ...\n"
          "                      [--repeat N] [--output-dir DIR] [--intra-op-threads N]\n"
          "\n"
          "Runs one model of a repository in process, the way a server worker runs it (no\n"
          "HTTP, no queue).  Outputs are written as DIR/<output>.npy.  --repeat N runs it N\n"
          "more times after a warm-up run and prints one line of timings:\n"
          "  infer: model=NAME repeat=N mean_ms=... median_ms=... min_ms=... p99_ms=...\n");
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

int hs_cmd_infer(int argc, char **argv) {
  hs_server_options o;
  hs_server_options_init(&o);
  o.threads = 1;
  const char *model = NULL, *outdir = NULL;
  enum { MAX_IN = 64 };
  hs_named_tensor inputs[MAX_IN];
  char *names[MAX_IN];
  int n_in = 0, rc = 1;
  long long repeat = 0, n;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      infer_usage(stdout);
      rc = 0;
      goto out;
    }
    if (!v) {
      fprintf(stderr, "hloserve infer: %s needs a value (or is unknown)\n", a);
      rc = 2;
      goto out;
    }
    i++;
    if (strcmp(a, "--model-repository") == 0) {
      o.model_repository = v;
    } else if (strcmp(a, "--model") == 0) {
      model = v;
    } else if (strcmp(a, "--output-dir") == 0) {
      outdir = v;
    } else if (strcmp(a, "--repeat") == 0) {
      if (!parse_int(v, 0, 1000000, &repeat)) {
        rc = bad_value("infer", a, v);
        goto out;
      }
    } else if (strcmp(a, "--intra-op-threads") == 0) {
      if (!parse_int(v, 1, 1024, &n)) {
        rc = bad_value("infer", a, v);
        goto out;
      }
      o.intra_op_threads = (int)n;
    } else if (strcmp(a, "--device") == 0) {
      hs_status *dst = hs_device_check(v);
      if (dst) {
        fprintf(stderr, "hloserve serve: --device %s: %s\n", v, hs_status_message(dst));
        hs_status_free(dst);
        return 2;
      }
      o.device = v;
    } else if (strcmp(a, "--cc") == 0) {
      o.cc = v;
    } else if (strcmp(a, "--include-dir") == 0) {
      o.include_dir = v;
    } else if (strcmp(a, "--meta-cache") == 0) {
      o.cache_dir = v;
    } else if (strcmp(a, "--input") == 0) {
      const char *eq = strchr(v, '=');
      if (!eq || eq == v || n_in == MAX_IN) {
        fprintf(stderr, "hloserve infer: --input wants NAME=FILE.npy (at most %d)\n", MAX_IN);
        rc = 2;
        goto out;
      }
      names[n_in] = strndup(v, (size_t)(eq - v));
      hs_status *st = hs_npy_read(eq + 1, &inputs[n_in].tensor);
      if (st || !names[n_in]) {
        fprintf(stderr, "hloserve infer: %s\n", st ? hs_status_message(st) : "out of memory");
        hs_status_free(st);
        free(names[n_in]);
        rc = 1;
        goto out;
      }
      inputs[n_in].name = names[n_in];
      n_in++;
    } else {
      fprintf(stderr, "hloserve infer: unknown option '%s'\n\n", a);
      infer_usage(stderr);
      rc = 2;
      goto out;
    }
  }
  if (!o.model_repository || !model) {
    fprintf(stderr, "hloserve infer: --model-repository and --model are required\n\n");
    infer_usage(stderr);
    rc = 2;
    goto out;
  }
  hs_server *s = NULL;
  hs_status *st = hs_server_create(&o, &s);
  double *times = NULL;
  if (!st) {
    const hs_named_tensor *outs;
    int n_out;
    st = hs_server_infer_local(s, model, inputs, n_in, 0, &outs, &n_out);
    if (!st && outdir) {
      mkdir(outdir, 0755);
      for (int k = 0; k < n_out && !st; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.npy", outdir, outs[k].name);
        st = hs_npy_write(path, &outs[k].tensor);
      }
    }
    hs_server_release_local(s);
    times = repeat > 0 ? malloc(sizeof(double) * (size_t)repeat) : NULL;
    for (long long r = 0; !st && r < repeat && times; r++) {
      double t0 = now_ms();
      st = hs_server_infer_local(s, model, inputs, n_in, 0, &outs, &n_out);
      times[r] = now_ms() - t0;
      hs_server_release_local(s);
    }
    if (!st && repeat > 0 && times) {
      double sum = 0;
      for (long long r = 0; r < repeat; r++) sum += times[r];
      qsort(times, (size_t)repeat, sizeof *times, cmp_double);
      long long p99 = (long long)((double)(repeat - 1) * 0.99 + 0.5);
      printf("infer: model=%s repeat=%lld mean_ms=%.4f median_ms=%.4f min_ms=%.4f p99_ms=%.4f\n",
             model, repeat, sum / (double)repeat, times[repeat / 2], times[0], times[p99]);
    }
  }
  free(times);
  if (st) {
    fprintf(stderr, "hloserve infer: %s\n", hs_status_message(st));
    hs_status_free(st);
    rc = 1;
  } else {
    rc = 0;
  }
  hs_server_free(s);
out:
  for (int k = 0; k < n_in; k++) {
    free(inputs[k].tensor.data);
    free(names[k]);
  }
  return rc;
}
