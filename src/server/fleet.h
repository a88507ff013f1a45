/*
 * fleet.h - `hloserve serve --workers N`: the models run in N worker
 * processes; this process keeps HTTP, routing and the scheduler.
 *
 *  - Placement: a meta and the members of its group always go to the same
 *    worker (its sub-calls and its scratch never leave that process); the
 *    groups (and the dense models outside any group, each its own group) are
 *    dealt round-robin in repository order.  Each worker loads only its own
 *    models (hs_repository_options.skip) and is pinned to an equal share of
 *    the cores this process may use (none when N exceeds them).
 *  - Lanes: each worker serves `lanes` requests at once; a lane is one
 *    scheduler thread here, one thread there, a SOCK_SEQPACKET socketpair
 *    (the control channel: small fixed-layout messages with the model name,
 *    offsets, shapes, status) and a memfd both sides map.  Request inputs are
 *    written to the memfd, outputs come back in it; the socket never carries
 *    tensor bytes.  The memfd grows to fit the largest request so far.
 *  - Faults: a worker that dies (signal, exit) or does not answer a request
 *    `hang_grace_ms` after its deadline is killed (SIGKILL) and restarted by a
 *    supervisor thread; the requests it was running get 503 naming the worker
 *    and the cause, and its models answer 503 (not ready) until it is back.
 *
 * Protocol and process details are in fleet_proto.h; docs/server.md ("Fleet")
 * has the whole picture.
 */
#ifndef HLOSERVE_SERVER_FLEET_H
#define HLOSERVE_SERVER_FLEET_H

#include <stdbool.h>
#include <stddef.h>

#include "server/metrics.h"
#include "server/repository.h"
#include "server/worker.h"

typedef struct hs_fleet hs_fleet;

typedef struct hs_fleet_options {
  int workers;           /* processes (>= 1) */
  int lanes;             /* concurrent requests per process (>= 1) */
  const char *exe;       /* the hloserve binary; NULL: /proc/self/exe */
  const char *repo_dir;  /* the model repository, loaded again by each worker */
  int intra_op_threads;
  const char *cc, *include_dir, *cache_dir; /* as in hs_repository_options; may be NULL */
  size_t scratch_limit;  /* per lane scratch pool */
  int hang_grace_ms;     /* past a request's deadline before its worker is killed; <= 0: 2000 */
  int start_timeout_s;   /* for the first start of every worker; <= 0: 600 */
  const char *device;    /* as in hs_repository_options; may be NULL */
} hs_fleet_options;

/* Starts the workers and waits until each has loaded its models.  `repo` is
 * this process's copy (manifests only); it must outlive the fleet. */
hs_status *hs_fleet_start(const hs_fleet_options *o, const hs_repository *repo,
                          hs_metrics *metrics, hs_fleet **out);
/* Scheduler threads the fleet needs: workers * lanes; thread i is lane i. */
int hs_fleet_num_lanes(const hs_fleet *f);
/* Whether lane i runs model m (m is placed on the lane's worker).  No lock. */
bool hs_fleet_lane_serves(const hs_fleet *f, int lane, const hs_model *m);
/* NULL when m's worker is serving; else why not (written to buf). */
const char *hs_fleet_unavailable(hs_fleet *f, const hs_model *m, char *buf, size_t cap);
/* Runs one request on lane i's worker.  *outputs point into the lane's
 * shared memory and stay valid until hs_fleet_release(f, i), which must
 * follow every call (the lane's channel and memory are not replaced while
 * it is held). */
hs_status *hs_fleet_run(hs_fleet *f, int lane, const hs_run *run, const hs_named_tensor **outputs,
                        int *num_outputs, hs_run_timing *timing);
void hs_fleet_release(hs_fleet *f, int lane);
/* Kills the workers and stops restarting them; runs still waiting return
 * errors.  Call before stopping the scheduler's threads. */
void hs_fleet_stop(hs_fleet *f);
/* After hs_fleet_stop and once no lane runs. */
void hs_fleet_free(hs_fleet *f);

/* The worker process: `hloserve __fleet-worker ...` (argv after the name).
 * Returns the exit code. */
int hs_fleet_worker_main(int argc, char **argv);

#endif
