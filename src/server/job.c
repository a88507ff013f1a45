/*
 * job.c - see job.h.
 */
#include "server/job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hs_job *hs_job_new(void) {
  hs_job *job = calloc(1, sizeof *job);
  if (!job) return NULL;
  atomic_init(&job->refs, 1);
  atomic_init(&job->answered, 0);
  atomic_init(&job->cancel, false);
  job->deadline_ns = INT64_MAX;
  job->program = -1;
  return job;
}

void hs_job_ref(hs_job *job) { atomic_fetch_add(&job->refs, 1); }

void hs_job_unref(hs_job *job) {
  if (!job || atomic_fetch_sub(&job->refs, 1) != 1) return;
  hs_kserve_request_free(&job->req);
  free(job->body);
  free(job->resp.body);
  free(job);
}

bool hs_job_answer(hs_job *job, int status, char *body, size_t len, size_t header_len) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&job->answered, &expected, 1)) {
    free(body);
    return false;
  }
  if (status != 200) atomic_store(&job->cancel, true);
  job->resp.status = status;
  job->resp.body = body;
  job->resp.len = len;
  job->resp.header_len = header_len;
  if (job->metrics)
    hs_metrics_count_request(job->metrics, job->model, status, hs_now_ns() - job->arrival_ns);
  if (job->on_answer) job->on_answer(job, job->on_answer_cls);
  return true;
}

bool hs_job_answer_error(hs_job *job, int status, const char *message) {
  hs_buf b;
  hs_buf_init(&b);
  hs_kserve_encode_error(&b, message);
  if (b.oom) {
    hs_buf_free(&b);
    static const char oom[] = "{\"error\":\"out of memory\"}";
    char *p = malloc(sizeof oom);
    if (p) memcpy(p, oom, sizeof oom);
    return hs_job_answer(job, 500, p, p ? sizeof oom - 1 : 0, 0);
  }
  size_t len;
  char *body = hs_buf_detach(&b, &len);
  return hs_job_answer(job, status, body, len, 0);
}

bool hs_job_answer_errorf(hs_job *job, int status, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return hs_job_answer_error(job, status, msg);
}

int hs_http_status_for(hs_status_code code) {
  switch (code) {
    case HS_OK: return 200;
    case HS_INVALID_ARGUMENT: return 400;
    case HS_DEADLINE_EXCEEDED: return 504;
    case HS_UNAVAILABLE:
    case HS_CANCELLED: return 503;
    case HS_UNIMPLEMENTED: return 501;
    default: return 500;
  }
}
