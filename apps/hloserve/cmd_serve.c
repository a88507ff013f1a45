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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/npy.h"
#include "cmds.h"
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

static bool parse_int(const char *s, long long min, long long max, long long *out) {
  if (!s || !*s) return false;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno || v < min || v > max) return false;
  long long mul = 1;
  if (*end == 'k' || *end == 'K') mul = 1024, end++;
  else if (*end == 'm' || *end == 'M') mul = 1024 * 1024, end++;
  else if (*end == 'g' || *end == 'G') mul = 1024LL * 1024 * 1024, end++;
  if (*end || (mul > 1 && v > max / mul)) return false;
  *out = v * mul;
  return *out <= max;
}

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
    if (strcmp(a, "--model-repository") == 0) {
      o.model_repository = v;
    } else if (strcmp(a, "--host") == 0) {
      o.host = v;
    } else if (strcmp(a, "--http-port") == 0) {
      if (!parse_int(v, 0, 65535, &n)) return bad_value("serve", a, v);
      o.http_port = (int)n;
    } else if (strcmp(a, "--threads") == 0) {
      if (!parse_int(v, 1, 1024, &n)) return bad_value("serve", a, v);
      o.threads = (int)n;
    } else if (strcmp(a, "--intra-op-threads") == 0) {
      if (!parse_int(v, 1, 1024, &n)) return bad_value("serve", a, v);
      o.intra_op_threads = (int)n;
    } else if (strcmp(a, "--max-queue") == 0) {
      if (!parse_int(v, 1, 1 << 20, &n)) return bad_value("serve", a, v);
      o.max_queue = (int)n;
    } else if (strcmp(a, "--max-queue-per-model") == 0) {
      if (!parse_int(v, 1, 1 << 20, &n)) return bad_value("serve", a, v);
      o.max_queue_per_model = (int)n;
    } else if (strcmp(a, "--header-timeout") == 0) {
      if (!parse_int(v, 1, 86400, &n)) return bad_value("serve", a, v);
      o.header_timeout_s = (int)n;
    } else if (strcmp(a, "--body-timeout") == 0) {
      if (!parse_int(v, 1, 86400, &n)) return bad_value("serve", a, v);
      o.body_timeout_s = (int)n;
    } else if (strcmp(a, "--max-connections") == 0) {
      if (!parse_int(v, 1, 1 << 20, &n)) return bad_value("serve", a, v);
      o.max_connections = (int)n;
    } else if (strcmp(a, "--max-connections-per-ip") == 0) {
      if (!parse_int(v, 0, 1 << 20, &n)) return bad_value("serve", a, v);
      o.max_connections_per_ip = (int)n;
    } else if (strcmp(a, "--max-header-bytes") == 0) {
      if (!parse_int(v, 1, 1 << 24, &n) || n < 1024) return bad_value("serve", a, v);
      o.max_header_bytes = (size_t)n;
    } else if (strcmp(a, "--meta-slots") == 0) {
      if (!parse_int(v, 1, 1024, &n)) return bad_value("serve", a, v);
      o.meta_slots = (int)n;
    } else if (strcmp(a, "--max-request-bytes") == 0) {
      if (!parse_int(v, 1, (long long)1 << 40, &n)) return bad_value("serve", a, v);
      o.max_request_bytes = (size_t)n;
    } else if (strcmp(a, "--scratch-limit-bytes") == 0) {
      if (!parse_int(v, 1, (long long)1 << 44, &n)) return bad_value("serve", a, v);
      o.scratch_limit_bytes = (size_t)n;
    } else if (strcmp(a, "--http-threads") == 0) {
      if (!parse_int(v, 1, 256, &n)) return bad_value("serve", a, v);
      o.http_threads = (int)n;
    } else if (strcmp(a, "--connection-timeout") == 0) {
      if (!parse_int(v, 1, 86400, &n)) return bad_value("serve", a, v);
      o.connection_timeout_s = (int)n;
    } else if (strcmp(a, "--grace-ms") == 0) {
      if (!parse_int(v, 0, 3600000, &n)) return bad_value("serve", a, v);
      grace_ms = n;
    } else if (strcmp(a, "--cc") == 0) {
      o.cc = v;
    } else if (strcmp(a, "--include-dir") == 0) {
      o.include_dir = v;
    } else if (strcmp(a, "--meta-cache") == 0) {
      o.cache_dir = v;
    } else if (strcmp(a, "--workers") == 0) {
      if (!parse_int(v, 0, 256, &n)) return bad_value("serve", a, v);
      o.workers = (int)n;
    } else if (strcmp(a, "--worker-hang-grace-ms") == 0) {
      if (!parse_int(v, 1, 3600000, &n)) return bad_value("serve", a, v);
      o.worker_hang_grace_ms = (int)n;
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
    } else if (strcmp(a, "--cc") == 0) {
      o.cc = v;
    } else if (strcmp(a, "--include-dir") == 0) {
      o.include_dir = v;
    } else if (strcmp(a, "--meta-cache") == 0) {
      o.cache_dir = v;
    } else if (strcmp(a, "--workers") == 0) {
      if (!parse_int(v, 0, 256, &n)) return bad_value("serve", a, v);
      o.workers = (int)n;
    } else if (strcmp(a, "--worker-hang-grace-ms") == 0) {
      if (!parse_int(v, 1, 3600000, &n)) return bad_value("serve", a, v);
      o.worker_hang_grace_ms = (int)n;
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
