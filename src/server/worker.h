/*
 * worker.h - runs requests: a dense program, or a meta model whose
 * sub-calls run inline on the same worker.
 *
 * A worker owns what must not be shared between concurrent runs: its
 * scratch pool (every tensor a run obtains: sub-call outputs, meta scratch,
 * the request's outputs) and the per-worker state slot of each meta.  The
 * scheduler owns the workers and gives each at most one run at a time; the
 * programs and the repository are shared read-only.
 *
 * Fleet mode (fleet.c, docs/server.md "Fleet") keeps this boundary: each
 * worker process runs its lanes' requests through the same hs_worker_run;
 * only the request's inputs and outputs cross processes, in shared memory.
 * A meta's sub-calls and scratch stay inside the worker process (its group
 * is placed there), so its pool is ordinary memory.
 */
#ifndef HLOSERVE_SERVER_WORKER_H
#define HLOSERVE_SERVER_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hloserve/meta.h"
#include "server/metrics.h"
#include "server/repository.h"
#include "server/scratch.h"

typedef struct hs_meta_state_slot {
  void *state;
  void (*destroy)(void *state);
} hs_meta_state_slot;

/* Where the worker's last meta run spent its time: in the sub-calls of each
 * member of the meta's group (in group order; members past
 * HS_MAX_TIMED_STAGES are not listed) and in the rest of the run (the glue).
 * The scheduler sends it back as the response's parameters. */
#define HS_MAX_TIMED_STAGES 16
typedef struct hs_run_timing {
  int num_stages; /* 0: the last run was not a meta run */
  int64_t stage_ns[HS_MAX_TIMED_STAGES];
  int64_t glue_ns;
} hs_run_timing;

typedef struct hs_worker {
  int id;
  const hs_repository *repo;
  hs_metrics *metrics; /* may be NULL */
  hs_scratch_pool pool;
  hs_meta_state_slot *states; /* [repo->num_models] */
  size_t reported_pooled;     /* last pool size added to the metrics gauge */
  hs_run_timing timing;       /* of the last run (hs_worker_run resets it) */
} hs_worker;

typedef struct hs_run {
  const hs_model *model;
  const hs_named_tensor *inputs; /* as the client sent them */
  int num_inputs;
  const hs_tensor *const *ordered; /* dense: inputs in model order (hs_model_match_inputs) */
  int program;                     /* dense: the matching program */
  int64_t deadline_ns;             /* INT64_MAX: none */
  const atomic_bool *cancel;       /* may be NULL */
} hs_run;

hs_status *hs_worker_init(hs_worker *w, int id, const hs_repository *repo, hs_metrics *metrics,
                          size_t scratch_limit);
/* Destroys the metas' per-worker states and the pool. */
void hs_worker_destroy(hs_worker *w);

/* Runs one request.  On success *outputs (*num_outputs) are the results,
 * valid until hs_worker_release; on error too, call hs_worker_release. */
hs_status *hs_worker_run(hs_worker *w, const hs_run *run, const hs_named_tensor **outputs,
                         int *num_outputs);
/* Returns everything the last run obtained to the pool. */
void hs_worker_release(hs_worker *w);

#endif
