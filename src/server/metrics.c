/*
 * metrics.c - see metrics.h.  Histogram buckets are fixed (100 us to 30 s,
 * roughly 1-2.5-5 per decade), which covers a tiny dense model and a
 * detector on a slow CPU alike.
 */
#include "server/metrics.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const double BUCKETS_S[HS_HIST_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0, 30.0};

static const int CODES[HS_METRIC_CODES - 1] = {200, 400, 404, 405, 413, 431, 500, 503, 504, 501};

void hs_histogram_observe(hs_histogram *h, int64_t ns) {
  if (ns < 0) ns = 0;
  double s = (double)ns / 1e9;
  int b = 0;
  while (b < HS_HIST_BUCKETS - 1 && s > BUCKETS_S[b]) b++;
  atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, (uint_fast64_t)ns, memory_order_relaxed);
}

hs_status *hs_metrics_create(const hs_repository *repo, int workers, int meta_slots,
                             hs_metrics **out) {
  hs_metrics *m = calloc(1, sizeof *m);
  if (!m) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  m->repo = repo;
  m->workers = workers;
  m->meta_slots = meta_slots;
  int n = repo ? repo->num_models : 0;
  m->models = calloc((size_t)n + 1, sizeof *m->models);
  if (!m->models) {
    free(m);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    int g = repo->models[i]->group_size;
    if (g > 0 && !(m->models[i].stages = calloc((size_t)g, sizeof(hs_histogram)))) {
      hs_metrics_free(m);
      return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    }
  }
  *out = m;
  return NULL;
}

void hs_metrics_free(hs_metrics *m) {
  if (!m) return;
  int n = m->repo ? m->repo->num_models : 0;
  for (int i = 0; i < n; i++) free(m->models[i].stages);
  free(m->models);
  free(m);
}

hs_model_metrics *hs_metrics_for(hs_metrics *m, const hs_model *model) {
  return model ? &m->models[model->index] : &m->unknown;
}

void hs_metrics_count_request(hs_metrics *m, const hs_model *model, int http_status,
                              int64_t latency_ns) {
  hs_model_metrics *mm = hs_metrics_for(m, model);
  int slot = HS_METRIC_CODES - 1;
  for (int i = 0; i < HS_METRIC_CODES - 1; i++)
    if (CODES[i] == http_status) slot = i;
  atomic_fetch_add_explicit(&mm->requests[slot], 1, memory_order_relaxed);
  hs_histogram_observe(&mm->latency, latency_ns);
}

static void label_value(hs_buf *b, const char *s) {
  /* Prometheus label values escape backslash, quote and newline. */
  for (; *s; s++) {
    if (*s == '\\' || *s == '"') hs_buf_putc(b, '\\');
    if (*s == '\n') {
      hs_buf_puts(b, "\\n");
      continue;
    }
    hs_buf_putc(b, *s);
  }
}

static void put_hist(hs_buf *b, const char *metric, const char *labels, const hs_histogram *h) {
  uint64_t cum = 0;
  for (int i = 0; i < HS_HIST_BUCKETS; i++) {
    cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    if (i < HS_HIST_BUCKETS - 1)
      hs_buf_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", metric, labels, BUCKETS_S[i],
                    (unsigned long long)cum);
    else
      hs_buf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", metric, labels, (unsigned long long)cum);
  }
  hs_buf_printf(b, "%s_sum{%s} %.9f\n", metric, labels,
                (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
  hs_buf_printf(b, "%s_count{%s} %llu\n", metric, labels,
                (unsigned long long)atomic_load_explicit(&h->count, memory_order_relaxed));
}

static void model_label(hs_buf *lb, const char *name) {
  lb->len = 0;
  hs_buf_puts(lb, "model=\"");
  label_value(lb, name);
  hs_buf_putc(lb, '"');
  hs_buf_putc(lb, 0);
}

void hs_metrics_render(hs_metrics *m, hs_buf *b) {
  int n = m->repo ? m->repo->num_models : 0;
  hs_buf lb;
  hs_buf_init(&lb);

  hs_buf_puts(b, "# HELP hloserve_requests_total Inference requests answered, by model and HTTP status.\n"
                 "# TYPE hloserve_requests_total counter\n");
  for (int i = -1; i < n; i++) {
    const hs_model *model = i < 0 ? NULL : m->repo->models[i];
    if (model && !model->addressable) continue;
    hs_model_metrics *mm = hs_metrics_for(m, model);
    model_label(&lb, model ? model->name : "");
    for (int c = 0; c < HS_METRIC_CODES; c++) {
      uint64_t v = atomic_load_explicit(&mm->requests[c], memory_order_relaxed);
      if (!v && (c != 0 || !model)) continue;
      if (c < HS_METRIC_CODES - 1)
        hs_buf_printf(b, "hloserve_requests_total{%s,code=\"%d\"} %llu\n", lb.data, CODES[c],
                      (unsigned long long)v);
      else
        hs_buf_printf(b, "hloserve_requests_total{%s,code=\"other\"} %llu\n", lb.data,
                      (unsigned long long)v);
    }
  }
  static const struct {
    const char *name, *help;
    size_t off;
  } hists[] = {
      {"hloserve_request_duration_seconds", "Time from a request's arrival to its answer.",
       offsetof(hs_model_metrics, latency)},
      {"hloserve_queue_duration_seconds", "Time a request waited for a worker.",
       offsetof(hs_model_metrics, queue)},
      {"hloserve_compute_duration_seconds", "Time a request ran on a worker.",
       offsetof(hs_model_metrics, compute)},
      {"hloserve_glue_duration_seconds", "Time a meta run spent outside its sub-calls (the glue).",
       offsetof(hs_model_metrics, glue)},
  };
  for (size_t h = 0; h < sizeof hists / sizeof hists[0]; h++) {
    hs_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", hists[h].name, hists[h].help,
                  hists[h].name);
    for (int i = 0; i < n; i++) {
      const hs_model *model = m->repo->models[i];
      if (!model->addressable || !model->ready) continue;
      if (h == 3 && model->kind != HS_MODEL_META) continue;
      model_label(&lb, model->name);
      put_hist(b, hists[h].name, lb.data,
               (const hs_histogram *)((const char *)&m->models[i] + hists[h].off));
    }
  }
  hs_buf_puts(b, "# HELP hloserve_stage_duration_seconds Time a meta model spent in sub-calls of "
                 "each stage of its group.\n# TYPE hloserve_stage_duration_seconds histogram\n");
  for (int i = 0; i < n; i++) {
    const hs_model *model = m->repo->models[i];
    if (model->kind != HS_MODEL_META || !model->ready) continue;
    for (int g = 0; g < model->group_size; g++) {
      lb.len = 0;
      hs_buf_puts(&lb, "model=\"");
      label_value(&lb, model->name);
      hs_buf_puts(&lb, "\",stage=\"");
      label_value(&lb, model->group_names[g]);
      hs_buf_putc(&lb, '"');
      hs_buf_putc(&lb, 0);
      put_hist(b, "hloserve_stage_duration_seconds", lb.data, &m->models[i].stages[g]);
    }
  }
  hs_buf_puts(b, "# HELP hloserve_model_ready Whether a model is loaded and ready (1) or not (0).\n"
                 "# TYPE hloserve_model_ready gauge\n");
  for (int i = 0; i < n; i++) {
    const hs_model *model = m->repo->models[i];
    if (!model->addressable) continue;
    model_label(&lb, model->name);
    hs_buf_printf(b, "hloserve_model_ready{%s} %d\n", lb.data, model->ready ? 1 : 0);
  }
  hs_buf_free(&lb);
  hs_buf_printf(b,
                "# HELP hloserve_queue_depth Requests waiting for a worker.\n"
                "# TYPE hloserve_queue_depth gauge\nhloserve_queue_depth %lld\n"
                "# HELP hloserve_running_requests Requests running on workers.\n"
                "# TYPE hloserve_running_requests gauge\nhloserve_running_requests %lld\n"
                "# HELP hloserve_workers Worker threads.\n"
                "# TYPE hloserve_workers gauge\nhloserve_workers %d\n"
                "# HELP hloserve_meta_slots Concurrent meta runs allowed (the meta gate).\n"
                "# TYPE hloserve_meta_slots gauge\nhloserve_meta_slots %d\n"
                "# HELP hloserve_meta_slots_in_use Meta runs admitted and running.\n"
                "# TYPE hloserve_meta_slots_in_use gauge\nhloserve_meta_slots_in_use %lld\n"
                "# HELP hloserve_scratch_pooled_bytes Bytes held by the workers' scratch pools.\n"
                "# TYPE hloserve_scratch_pooled_bytes gauge\nhloserve_scratch_pooled_bytes %lld\n"
                "# HELP hloserve_scratch_in_use_bytes Scratch bytes held by running requests.\n"
                "# TYPE hloserve_scratch_in_use_bytes gauge\nhloserve_scratch_in_use_bytes %lld\n"
                "# HELP hloserve_open_connections HTTP requests being received or answered.\n"
                "# TYPE hloserve_open_connections gauge\nhloserve_open_connections %lld\n",
                (long long)atomic_load(&m->queue_depth), (long long)atomic_load(&m->running),
                m->workers, m->meta_slots, (long long)atomic_load(&m->meta_slots_in_use),
                (long long)atomic_load(&m->scratch_pooled_bytes),
                (long long)atomic_load(&m->scratch_in_use_bytes),
                (long long)atomic_load(&m->open_connections));
  hs_buf_printf(b,
                "# HELP hloserve_tcp_connections Open TCP connections.\n"
                "# TYPE hloserve_tcp_connections gauge\nhloserve_tcp_connections %lld\n"
                "# HELP hloserve_connections_refused_total Connections closed at once: "
                "--max-connections were open.\n"
                "# TYPE hloserve_connections_refused_total counter\n"
                "hloserve_connections_refused_total %llu\n"
                "# HELP hloserve_connections_abandoned_total Connections whose client closed its "
                "side before its request was complete (closed by the server at once).\n"
                "# TYPE hloserve_connections_abandoned_total counter\n"
                "hloserve_connections_abandoned_total %llu\n"
                "# HELP hloserve_connections_timed_out_total Connections closed for spending too "
                "long in a phase (idle, headers, body, sending).\n"
                "# TYPE hloserve_connections_timed_out_total counter\n",
                (long long)atomic_load(&m->tcp_connections),
                (unsigned long long)atomic_load(&m->connections_refused),
                (unsigned long long)atomic_load(&m->connections_abandoned));
  static const char *const phases[5] = {"idle", "headers", "body", NULL, "sending"};
  for (int p = 0; p < 5; p++)
    if (phases[p])
      hs_buf_printf(b, "hloserve_connections_timed_out_total{phase=\"%s\"} %llu\n", phases[p],
                    (unsigned long long)atomic_load(&m->connections_timed_out[p]));
  if (m->fleet_workers > 0)
    hs_buf_printf(b,
                  "# HELP hloserve_fleet_workers Worker processes (--workers).\n"
                  "# TYPE hloserve_fleet_workers gauge\nhloserve_fleet_workers %d\n"
                  "# HELP hloserve_fleet_workers_up Worker processes loaded and serving.\n"
                  "# TYPE hloserve_fleet_workers_up gauge\nhloserve_fleet_workers_up %lld\n"
                  "# HELP hloserve_fleet_worker_restarts_total Worker processes restarted after "
                  "a crash or a hang.\n"
                  "# TYPE hloserve_fleet_worker_restarts_total counter\n"
                  "hloserve_fleet_worker_restarts_total %llu\n"
                  "# HELP hloserve_fleet_channel_tensor_bytes_total Tensor bytes copied through "
                  "the worker control channels (by design 0).\n"
                  "# TYPE hloserve_fleet_channel_tensor_bytes_total counter\n"
                  "hloserve_fleet_channel_tensor_bytes_total %llu\n"
                  "# HELP hloserve_fleet_shm_tensor_bytes_total Request and response tensor "
                  "bytes passed to and from workers by shared-memory reference.\n"
                  "# TYPE hloserve_fleet_shm_tensor_bytes_total counter\n"
                  "hloserve_fleet_shm_tensor_bytes_total %llu\n",
                  m->fleet_workers, (long long)atomic_load(&m->fleet_workers_up),
                  (unsigned long long)atomic_load(&m->fleet_restarts),
                  (unsigned long long)atomic_load(&m->fleet_channel_tensor_bytes),
                  (unsigned long long)atomic_load(&m->fleet_shm_tensor_bytes));
  if (m->fleet_workers > 0 && m->fleet_pids) {
    hs_buf_puts(b, "# HELP hloserve_fleet_worker_pid The process of each worker (0 while down).\n"
                   "# TYPE hloserve_fleet_worker_pid gauge\n");
    for (int k = 0; k < m->fleet_workers; k++)
      hs_buf_printf(b, "hloserve_fleet_worker_pid{worker=\"%d\"} %lld\n", k,
                    (long long)atomic_load(&m->fleet_pids[k]));
  }
  if (m->fleet_workers > 0 && m->fleet_placement) {
    hs_buf_init(&lb);
    hs_buf_puts(b, "# HELP hloserve_fleet_model_worker The worker each model is placed on.\n"
                   "# TYPE hloserve_fleet_model_worker gauge\n");
    for (int i = 0; i < m->repo->num_models; i++) {
      const hs_model *model = m->repo->models[i];
      if (!model->addressable) continue;
      model_label(&lb, model->name);
      hs_buf_printf(b, "hloserve_fleet_model_worker{%s} %d\n", lb.data, m->fleet_placement[i]);
    }
    hs_buf_free(&lb);
  }
}
