/*
 * server.c - hloserve/server.h: wires the repository, metrics, scheduler
 * (with its workers) and the HTTP front end together, and takes them down
 * in the reverse order: stop accepting, drain the queue, answer what is
 * left, wait for the connections to flush, close them, stop the workers.
 */
#include "hloserve/server.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/fleet.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/repository.h"
#include "server/scheduler.h"
#include "server/util.h"
#include "server/worker.h"

struct hs_server {
  hs_server_options opt;
  hs_repository *repo;
  hs_metrics *metrics;
  hs_scheduler *sched;
  hs_http *http;
  hs_fleet *fleet; /* --workers N > 0 */
  int fleet_lanes; /* per worker process */
  hs_worker local; /* for hs_server_infer_local */
  bool local_ready;
  const hs_tensor **local_ordered;
  int local_ordered_cap;
  bool workers_stopped;
};

void hs_server_options_init(hs_server_options *o) {
  memset(o, 0, sizeof *o);
  o->host = "127.0.0.1";
  o->http_port = 8000;
}

static void resolve_defaults(hs_server_options *o) {
  if (!o->host || !*o->host) o->host = "127.0.0.1";
  if (o->threads <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = n > 0 ? (int)n : 1;
  }
  if (o->intra_op_threads <= 0) o->intra_op_threads = 1;
  if (o->max_queue <= 0) o->max_queue = 64;
  if (o->meta_slots <= 0) o->meta_slots = o->threads;
  if (o->max_request_bytes == 0) o->max_request_bytes = (size_t)64 << 20;
  if (o->scratch_limit_bytes == 0) o->scratch_limit_bytes = (size_t)4 << 30;
  if (o->http_threads <= 0) o->http_threads = 1;
  if (o->connection_timeout_s <= 0) o->connection_timeout_s = 60;
  if (o->max_connections <= 0) o->max_connections = 1024;
  if (o->max_connections_per_ip < 0) o->max_connections_per_ip = 0;
  if (o->max_header_bytes == 0) o->max_header_bytes = 16384;
  if (o->header_timeout_s <= 0) o->header_timeout_s = 10;
  if (o->body_timeout_s <= 0) o->body_timeout_s = 60;
  if (o->max_queue_per_model < 0) o->max_queue_per_model = 0;
  if (o->workers < 0) o->workers = 0;
  if (o->worker_hang_grace_ms <= 0) o->worker_hang_grace_ms = 2000;
}

/* Fleet mode: this process keeps the manifests only; the workers compile. */
static bool skip_all(const hs_model *m, void *cls) {
  (void)m;
  (void)cls;
  return true;
}

hs_status *hs_server_create(const hs_server_options *o, hs_server **out) {
  *out = NULL;
  if (!o->model_repository || !*o->model_repository)
    return hs_status_new(HS_INVALID_ARGUMENT, "no model repository given");
  if (o->http_port < 0 || o->http_port > 65535)
    return hs_status_new(HS_INVALID_ARGUMENT, "port %d is outside 0..65535", o->http_port);
  hs_server *s = calloc(1, sizeof *s);
  if (!s) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  s->opt = *o;
  resolve_defaults(&s->opt);
  hs_repository_options ro = {s->opt.model_repository, s->opt.intra_op_threads, s->opt.cc,
                              s->opt.include_dir, s->opt.cache_dir, NULL, NULL, s->opt.device};
  if (s->opt.workers > 0) {
    ro.skip = skip_all;
    s->fleet_lanes = s->opt.threads / s->opt.workers > 0 ? s->opt.threads / s->opt.workers : 1;
    s->opt.threads = s->fleet_lanes * s->opt.workers;
    if (o->meta_slots <= 0) s->opt.meta_slots = s->opt.threads;
  }
  hs_status *st = hs_repository_load(&ro, &s->repo);
  if (!st) st = hs_metrics_create(s->repo, s->opt.threads, s->opt.meta_slots, &s->metrics);
  if (st) {
    hs_server_free(s);
    return st;
  }
  *out = s;
  return NULL;
}

hs_status *hs_server_start(hs_server *s) {
  if (s->sched) return hs_status_new(HS_FAILED_PRECONDITION, "the server is already started");
  if (s->opt.workers > 0 && !s->fleet) {
    hs_fleet_options fo = {s->opt.workers, s->fleet_lanes, s->opt.worker_exe,
                           s->opt.model_repository, s->opt.intra_op_threads, s->opt.cc,
                           s->opt.include_dir, s->opt.cache_dir, s->opt.scratch_limit_bytes,
                           s->opt.worker_hang_grace_ms, 0, s->opt.device};
    HS_RETURN_IF_ERROR(hs_fleet_start(&fo, s->repo, s->metrics, &s->fleet));
  }
  hs_scheduler_options so = {s->opt.threads, s->opt.max_queue, s->opt.meta_slots,
                             s->opt.scratch_limit_bytes, s->opt.max_queue_per_model, s->fleet};
  HS_RETURN_IF_ERROR(hs_scheduler_create(&so, s->repo, s->metrics, &s->sched));
  hs_http_options ho = {s->opt.host,
                        s->opt.http_port,
                        s->opt.http_threads,
                        s->opt.connection_timeout_s,
                        s->opt.max_request_bytes,
                        s->opt.max_connections,
                        s->opt.max_connections_per_ip,
                        s->opt.max_header_bytes,
                        s->opt.header_timeout_s,
                        s->opt.body_timeout_s};
  hs_status *st = hs_http_start(&ho, s->repo, s->sched, s->metrics, &s->http);
  if (st) {
    hs_scheduler_stop(s->sched, INT64_MAX / 4);
    hs_scheduler_free(s->sched);
    s->sched = NULL;
    return st;
  }
  return NULL;
}

int hs_server_port(const hs_server *s) { return s->http ? hs_http_port(s->http) : 0; }

int hs_server_num_models(const hs_server *s) {
  int n = 0;
  for (int i = 0; i < s->repo->num_models; i++) n += s->repo->models[i]->addressable;
  return n;
}

const char *hs_server_model_name(const hs_server *s, int i, bool *ready, const char **reason) {
  for (int k = 0; k < s->repo->num_models; k++) {
    const hs_model *m = s->repo->models[k];
    if (!m->addressable) continue;
    if (i-- == 0) {
      if (ready) *ready = m->ready;
      if (reason) *reason = m->ready ? NULL : m->reason;
      return m->name;
    }
  }
  return NULL;
}

bool hs_server_shutdown(hs_server *s, int grace_ms) {
  if (!s->sched) return true;
  int64_t grace = (int64_t)(grace_ms > 0 ? grace_ms : 0) * 1000000;
  if (s->http) hs_http_quiesce(s->http);
  bool idle = hs_scheduler_drain(s->sched, grace);
  /* Every job is answered now; let the connections send their answers. */
  if (s->http) {
    hs_http_wait_idle(s->http, (int64_t)2000000000);
    hs_http_stop(s->http);
    s->http = NULL;
  }
  /* the workers go (a run still waiting on one returns an error) */
  hs_fleet_stop(s->fleet);
  s->workers_stopped = hs_scheduler_stop(s->sched, idle ? INT64_MAX / 4 : (int64_t)500000000);
  return s->workers_stopped;
}

void hs_server_free(hs_server *s) {
  if (!s) return;
  if (s->http) {
    hs_http_quiesce(s->http);
    if (s->sched) hs_scheduler_drain(s->sched, 0);
    hs_http_wait_idle(s->http, (int64_t)1000000000);
    hs_http_stop(s->http);
  }
  hs_fleet_stop(s->fleet);
  if (s->sched) {
    if (!s->workers_stopped) hs_scheduler_stop(s->sched, INT64_MAX / 4);
    hs_scheduler_free(s->sched);
  }
  hs_fleet_free(s->fleet);
  if (s->local_ready) hs_worker_destroy(&s->local);
  free(s->local_ordered);
  hs_metrics_free(s->metrics);
  hs_repository_free(s->repo);
  free(s);
}

hs_status *hs_server_infer_local(hs_server *s, const char *model, const hs_named_tensor *inputs,
                                 int num_inputs, long long timeout_us,
                                 const hs_named_tensor **outputs, int *num_outputs) {
  *outputs = NULL;
  *num_outputs = 0;
  const hs_model *m = hs_repository_find(s->repo, model);
  if (!m || !m->addressable) return hs_status_new(HS_NOT_FOUND, "unknown model '%s'", model);
  if (!m->ready) return hs_status_new(HS_UNAVAILABLE, "model %s is not ready: %s", m->name, m->reason);
  if (s->opt.workers > 0)
    return hs_status_new(HS_FAILED_PRECONDITION, "in-process runs are not available in fleet mode "
                         "(the models are loaded by the worker processes)");
  if (!s->local_ready) {
    HS_RETURN_IF_ERROR(hs_worker_init(&s->local, -1, s->repo, NULL, s->opt.scratch_limit_bytes));
    s->local_ready = true;
  }
  if (m->num_inputs + 1 > s->local_ordered_cap) {
    const hs_tensor **p = realloc(s->local_ordered, sizeof *p * (size_t)(m->num_inputs + 1));
    if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    s->local_ordered = p;
    s->local_ordered_cap = m->num_inputs + 1;
  }
  int program = -1;
  HS_RETURN_IF_ERROR(hs_model_match_inputs(m, inputs, num_inputs, s->local_ordered, &program));
  hs_run run = {m, inputs, num_inputs, s->local_ordered, program,
                timeout_us > 0 ? hs_now_ns() + (int64_t)timeout_us * 1000 : INT64_MAX, NULL};
  return hs_worker_run(&s->local, &run, outputs, num_outputs);
}

void hs_server_release_local(hs_server *s) {
  if (s->local_ready) hs_worker_release(&s->local);
}
