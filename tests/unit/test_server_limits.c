/*
 * test_server_limits.c - the server's own limits, below HTTP: which model names are valid
 * (names are never paths), and the scheduler's per-model queue bound.  The HTTP-level limits
 * (connections, headers, slow clients) are tested against a real server in
 * tests/python/test_server_limits.py.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/job.h"
#include "server/metrics.h"
#include "server/repository.h"
#include "server/scheduler.h"
#include "server/util.h"
#include "server_testlib.h"
#include "testlib.h"

HS_TEST(model_names) {
  const char *good[] = {"tiny", "my_detector_stage1", "resnet50-v1.5", "A.b-c_d", "x", "a..b"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    CHECK_MSG(hs_model_name_problem(good[i], strlen(good[i])) == NULL, "%s", good[i]);
  struct {
    const char *name;
    size_t len;
    const char *why;
  } bad[] = {
      {"", 0, "empty"},
      {"..", 2, "starts with '.'"},
      {".hidden", 7, "starts with '.'"},
      {"../etc", 6, "starts with '.'"},
      {"a/b", 3, "'/'"},
      {"tiny/../../etc", 14, "'/'"},
      {"a\0b", 3, "NUL"},
      {"a b", 3, "ASCII letters"},
      {"a%2Fb", 5, "ASCII letters"},
      {"a\\b", 3, "ASCII letters"},
      {"caf\xc3\xa9", 5, "ASCII letters"},
      {"a\nb", 3, "ASCII letters"},
      {"a\"b", 3, "ASCII letters"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *why = hs_model_name_problem(bad[i].name, bad[i].len);
    CHECK_MSG(why && strstr(why, bad[i].why), "case %zu: %s", i, why ? why : "(valid)");
  }
  char long_name[HS_MODEL_NAME_MAX + 2];
  memset(long_name, 'a', sizeof long_name);
  CHECK(hs_model_name_problem(long_name, HS_MODEL_NAME_MAX) == NULL);
  CHECK(strstr(hs_model_name_problem(long_name, HS_MODEL_NAME_MAX + 1), "longer"));
}

/* ---- the per-model queue bound --------------------------------------------------------------- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static atomic_int runs_started, answers;

/* A meta run that waits while the gate is closed, then returns OUT = [0]. */
static hs_status *held_run(hs_meta_ctx *ctx, const hs_named_tensor *in, int n) {
  (void)in;
  (void)n;
  atomic_fetch_add(&runs_started, 1);
  pthread_mutex_lock(&gate_mu);
  while (gate_closed) pthread_cond_wait(&gate_cv, &gate_mu);
  pthread_mutex_unlock(&gate_mu);
  hs_shape os = {1, {1}};
  hs_tensor o;
  hs_status *st = hs_meta_output(ctx, "OUT", HS_F32, &os, &o);
  if (!st) *(float *)o.data = 0.0f;
  return st;
}

static void set_gate(bool closed) {
  pthread_mutex_lock(&gate_mu);
  gate_closed = closed;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
}

static hs_model *held_model(const char *name, int index) {
  return test_meta_model(name, index, held_run);
}

static void count_answer(hs_job *job, void *cls) {
  (void)job;
  (void)cls;
  atomic_fetch_add(&answers, 1);
}

static hs_job *job_for(hs_model *m, hs_metrics *metrics) {
  hs_job *job = hs_job_new();
  job->model = m;
  job->metrics = metrics;
  job->arrival_ns = hs_now_ns();
  job->on_answer = count_answer;
  return job;
}

static bool wait_for(atomic_int *v, int n) {
  for (int i = 0; i < 5000 && atomic_load(v) < n; i++) usleep(1000);
  return atomic_load(v) >= n;
}

HS_TEST(queue_bound_per_model) {
  hs_model *models[2] = {held_model("a", 0), held_model("b", 1)};
  hs_repository repo = {NULL, 2, models};
  hs_metrics *metrics;
  CHECK_OK(hs_metrics_create(&repo, 1, 2, &metrics));
  hs_scheduler *s;
  hs_scheduler_options so = {1, 8, 2, 0, 2}; /* 1 worker, queue 8, 2 per model */
  CHECK_OK(hs_scheduler_create(&so, &repo, metrics, &s));
  set_gate(true);
  hs_job *jobs[8];
  int n = 0;
  /* a0 runs; a1 and a2 wait; a3 is refused; b0 still waits in the queue */
  jobs[n++] = job_for(models[0], metrics);
  CHECK_OK(hs_scheduler_submit(s, jobs[0]));
  CHECK(wait_for(&runs_started, 1));
  for (int i = 0; i < 2; i++) {
    jobs[n] = job_for(models[0], metrics);
    CHECK_OK(hs_scheduler_submit(s, jobs[n]));
    n++;
  }
  hs_job *refused = job_for(models[0], metrics);
  hs_status *st = hs_scheduler_submit(s, refused);
  CHECK(st && hs_status_code_of(st) == HS_UNAVAILABLE);
  CHECK_MSG(strstr(hs_status_message(st), "queue of model a is full") &&
                strstr(hs_status_message(st), "--max-queue-per-model"),
            "%s", hs_status_message(st));
  hs_status_free(st);
  jobs[n] = job_for(models[1], metrics);
  CHECK_OK(hs_scheduler_submit(s, jobs[n]));
  n++;
  int queued = 0, running = 0;
  hs_scheduler_counts(s, &queued, &running);
  CHECK(queued == 3 && running == 1);
  set_gate(false);
  CHECK(wait_for(&answers, n));
  for (int i = 0; i < n; i++) CHECK_MSG(jobs[i]->resp.status == 200, "job %d: %d", i, jobs[i]->resp.status);
  /* the counters went back down: a is admitted again, up to its bound */
  set_gate(true);
  atomic_store(&runs_started, 0);
  jobs[n] = job_for(models[0], metrics);
  CHECK_OK(hs_scheduler_submit(s, jobs[n]));
  n++;
  CHECK(wait_for(&runs_started, 1));
  for (int i = 0; i < 2; i++) {
    jobs[n] = job_for(models[0], metrics);
    CHECK_OK(hs_scheduler_submit(s, jobs[n]));
    n++;
  }
  st = hs_scheduler_submit(s, refused);
  CHECK(st != NULL);
  hs_status_free(st);
  set_gate(false);
  CHECK(wait_for(&answers, n));
  CHECK(hs_scheduler_stop(s, (int64_t)5000000000));
  hs_scheduler_free(s);
  for (int i = 0; i < n; i++) hs_job_unref(jobs[i]);
  hs_job_unref(refused);
  hs_metrics_free(metrics);
  for (int i = 0; i < 2; i++) {
    hs_arena_free(&models[i]->arena);
    free(models[i]);
  }
}

int main(void) {
  hs_log_set_quiet(true);
  HS_RUN(model_names);
  HS_RUN(queue_bound_per_model);
  return hs_test_summary();
}
