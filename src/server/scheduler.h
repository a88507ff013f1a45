/*
 * scheduler.h - the bounded queue between the front end and the workers,
 * the meta gate, and deadlines.
 *
 *  - Submission never blocks: a full queue (or a model with max_queue_per_model
 *    jobs already waiting), a model that is not ready or a server that is
 *    shutting down are answered at once (HS_UNAVAILABLE, 503).
 *  - Workers take the oldest job they may run.  A dense job may always run;
 *    a meta job only while a meta slot is free (the gate).  A meta job that
 *    waits for a slot does not hold back the dense jobs behind it.
 *  - Admission commits a meta job: its sub-calls run inline on the admitting
 *    worker (capacity reserved for it), so they never wait behind new
 *    requests, and a full queue cannot deadlock a running meta.
 *  - A timer thread answers jobs whose deadline passed with 504: queued ones
 *    are dropped from the queue, running ones are answered at once and
 *    cancelled (the meta context fails their next call; the late result is
 *    dropped and their scratch goes back to the pool when the run returns).
 *
 * The scheduler talks to the workers only through hs_worker_run and
 * hs_worker_release (worker.h), or in fleet mode through hs_fleet_run and
 * hs_fleet_release (fleet.h): the same run, made in a worker process.
 */
#ifndef HLOSERVE_SERVER_SCHEDULER_H
#define HLOSERVE_SERVER_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/job.h"
#include "server/metrics.h"
#include "server/repository.h"

typedef struct hs_scheduler_options {
  int threads;          /* worker threads (>= 1) */
  int max_queue;        /* jobs waiting for a worker (>= 1) */
  int meta_slots;       /* concurrent meta runs (>= 1) */
  size_t scratch_limit; /* bytes per worker pool; 0: none */
  int max_queue_per_model; /* jobs of one model waiting; 0: bounded by max_queue only */
  struct hs_fleet *fleet; /* fleet mode (fleet.h): thread i is the fleet's lane i, runs only
                             the models placed on its worker, and runs them there; NULL: in
                             process */
} hs_scheduler_options;

typedef struct hs_scheduler hs_scheduler;

hs_status *hs_scheduler_create(const hs_scheduler_options *opt, const hs_repository *repo,
                               hs_metrics *metrics, hs_scheduler **out);
/* Queues a job (taking a reference).  The job's model is ready and its inputs
 * are matched.  Errors (nothing queued): HS_UNAVAILABLE. */
hs_status *hs_scheduler_submit(hs_scheduler *s, hs_job *job);
/* Stops taking jobs, waits up to grace_ns for queued and running ones to
 * finish, then answers the rest with 503 (running ones are cancelled).
 * Returns true when every worker is idle. */
bool hs_scheduler_drain(hs_scheduler *s, int64_t grace_ns);
/* Stops the threads.  Waits up to wait_ns for running jobs to return; true
 * when all threads have exited (then free is safe). */
bool hs_scheduler_stop(hs_scheduler *s, int64_t wait_ns);
void hs_scheduler_free(hs_scheduler *s);

/* Fleet mode: NULL while the worker of m serves, else why not (in buf).
 * Always NULL in process. */
const char *hs_scheduler_unavailable(hs_scheduler *s, const hs_model *m, char *buf, size_t cap);

/* For tests and metrics: jobs waiting and running now. */
void hs_scheduler_counts(hs_scheduler *s, int *queued, int *running);

#endif
