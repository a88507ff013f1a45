/*
 * metrics.h - the server's counters, gauges and histograms, rendered as
 * Prometheus text (GET /metrics).
 *
 * Everything is a relaxed atomic updated in place by whichever thread sees
 * the event, so recording costs a few atomic adds and never a lock; the
 * renderer reads the atomics as they are (a scrape is a snapshot, not a
 * transaction).  Series are laid out per model when the repository is
 * loaded, so no label is ever built from request data: requests naming an
 * unknown model all count under model="".
 */
#ifndef HLOSERVE_SERVER_METRICS_H
#define HLOSERVE_SERVER_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "server/repository.h"
#include "server/util.h"

#define HS_HIST_BUCKETS 18

typedef struct hs_histogram {
  atomic_uint_fast64_t buckets[HS_HIST_BUCKETS]; /* non-cumulative; the last is +Inf */
  atomic_uint_fast64_t count;
  atomic_uint_fast64_t sum_ns;
} hs_histogram;

/* HTTP statuses that get their own series; the rest count as "other". */
#define HS_METRIC_CODES 11

typedef struct hs_model_metrics {
  atomic_uint_fast64_t requests[HS_METRIC_CODES];
  hs_histogram latency; /* arrival to answer */
  hs_histogram queue;   /* waiting for a worker */
  hs_histogram compute; /* the run on the worker */
  hs_histogram glue;    /* meta: run time outside sub-calls */
  hs_histogram *stages; /* meta: per group member, time in its sub-calls */
} hs_model_metrics;

typedef struct hs_metrics {
  const hs_repository *repo;
  hs_model_metrics *models; /* [repo->num_models] */
  hs_model_metrics unknown;
  atomic_int_fast64_t queue_depth;
  atomic_int_fast64_t running;    /* requests on workers */
  atomic_int_fast64_t meta_slots_in_use;
  atomic_int_fast64_t scratch_pooled_bytes;
  atomic_int_fast64_t scratch_in_use_bytes;
  atomic_int_fast64_t open_connections; /* requests being received or answered */
  atomic_int_fast64_t tcp_connections;  /* open TCP connections */
  atomic_uint_fast64_t connections_refused; /* over --max-connections */
  atomic_uint_fast64_t connections_abandoned; /* peer gone with its request unfinished */
  /* closed for spending too long in a phase: idle, headers, body, waiting (unused), sending */
  atomic_uint_fast64_t connections_timed_out[5];
  int meta_slots;
  int workers;
  /* fleet mode (--workers N > 0; fleet.h): rendered only then */
  int fleet_workers;
  atomic_int_fast64_t fleet_workers_up;
  atomic_uint_fast64_t fleet_restarts;
  atomic_uint_fast64_t fleet_channel_tensor_bytes; /* tensor bytes through a socket: stays 0 */
  atomic_uint_fast64_t fleet_shm_tensor_bytes;     /* tensor bytes passed by shm reference */
  atomic_int_fast64_t *fleet_pids; /* [fleet_workers], 0 while down; owned by the fleet */
  const int *fleet_placement;      /* worker of each model; owned by the fleet */
} hs_metrics;

hs_status *hs_metrics_create(const hs_repository *repo, int workers, int meta_slots,
                             hs_metrics **out);
void hs_metrics_free(hs_metrics *m);

void hs_histogram_observe(hs_histogram *h, int64_t ns);
/* model NULL: an unknown model. */
hs_model_metrics *hs_metrics_for(hs_metrics *m, const hs_model *model);
void hs_metrics_count_request(hs_metrics *m, const hs_model *model, int http_status,
                              int64_t latency_ns);
void hs_metrics_render(hs_metrics *m, hs_buf *out);

#endif
