/*
 * job.h - one inference request on its way through the server.
 *
 * A job is shared by whoever is working on it: the front end that received
 * it (until the answer is sent), the scheduler's queue, and the worker that
 * runs it.  Each holds a reference; the last release frees it, so a client
 * that times out or disconnects never frees memory a worker still reads.
 *
 * The answer is given exactly once (an atomic flag): by the worker when the
 * run ends, or earlier by the deadline timer or the shutdown path.  A run
 * that was answered early sees `cancel` and its late result is dropped.  The
 * answer callback hands the response to whoever waits (an HTTP connection,
 * an in-process caller) and must not block.
 */
#ifndef HLOSERVE_SERVER_JOB_H
#define HLOSERVE_SERVER_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/kserve.h"
#include "server/metrics.h"
#include "server/repository.h"

typedef struct hs_job hs_job;
typedef void (*hs_job_answer_fn)(hs_job *job, void *cls);

typedef struct hs_response {
  int status;         /* HTTP status */
  char *body;         /* malloc'd */
  size_t len;
  size_t header_len;  /* Inference-Header-Content-Length, 0 when the body is all JSON */
} hs_response;

struct hs_job {
  atomic_int refs;
  atomic_int answered;
  atomic_bool cancel;     /* answered early: the run should stop at its next check */
  const hs_model *model;
  hs_kserve_request req;  /* parsed; binary inputs may point into body */
  void *body;             /* the request body (owned) */
  const hs_tensor **ordered; /* inputs in the model's order (arena of req) */
  int program;            /* dense: the matching program */
  int64_t arrival_ns, deadline_ns, start_ns; /* deadline INT64_MAX: none */
  hs_metrics *metrics;
  hs_response resp;       /* valid once answered */
  hs_job_answer_fn on_answer;
  void *on_answer_cls;
  hs_job *prev, *next;    /* scheduler queue */
  bool queued;
};

/* A job with one reference. */
hs_job *hs_job_new(void);
void hs_job_ref(hs_job *job);
void hs_job_unref(hs_job *job);

/* Answers the job with a response body (ownership passes to the job).
 * Returns false, freeing body, when it was answered already. */
bool hs_job_answer(hs_job *job, int status, char *body, size_t len, size_t header_len);
/* Answers with {"error": message}. */
bool hs_job_answer_error(hs_job *job, int status, const char *message);
bool hs_job_answer_errorf(hs_job *job, int status, const char *fmt, ...) HS_PRINTF(3, 4);

/* The HTTP status for an hs_status code coming out of a run. */
int hs_http_status_for(hs_status_code code);

#endif
