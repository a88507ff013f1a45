/*
 * scheduler.c - see scheduler.h.
 *
 * One mutex guards the queue (a doubly linked list, oldest first), the
 * running jobs (one slot per worker) and the counters.  Three condition
 * variables on CLOCK_MONOTONIC: workers wait for work, the timer waits for
 * the earliest deadline, drain/stop wait for idleness.  Jobs are always
 * answered outside the mutex: an answer runs the front end's callback, which
 * takes the connection's own lock, and we never nest the two.
 *
 * Picking is a scan from the head for the first job the worker may run
 * (dense, or meta with a free slot).  The queue is bounded by --max-queue,
 * so the scan is short; the gate only skips metas while no slot is free.
 */
#include "server/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/fleet.h"
#include "server/worker.h"

typedef struct worker_slot {
  hs_scheduler *s;
  hs_worker w;
  pthread_t thread;
  bool started;
  hs_job *job; /* running now */
} worker_slot;

struct hs_scheduler {
  hs_scheduler_options opt;
  const hs_repository *repo;
  hs_metrics *metrics;
  pthread_mutex_t mu;
  pthread_cond_t work_cv, timer_cv, idle_cv;
  hs_job *head, *tail;
  int queued, running, meta_running, alive;
  int *queued_of; /* jobs waiting per model (by hs_model.index) */
  bool accepting, stop;
  worker_slot *workers;
  int num_workers;
  pthread_t timer;
  bool timer_started;
};

static void deadline_to_timespec(int64_t ns, struct timespec *ts) {
  ts->tv_sec = (time_t)(ns / 1000000000);
  ts->tv_nsec = (long)(ns % 1000000000);
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_ns) {
  if (until_ns == INT64_MAX) {
    pthread_cond_wait(cv, mu);
    return;
  }
  struct timespec ts;
  deadline_to_timespec(until_ns, &ts);
  pthread_cond_timedwait(cv, mu, &ts);
}

/* The waiting-jobs counter of a model (NULL for a model outside the repository's table). */
static int *model_queued(hs_scheduler *s, const hs_model *m) {
  if (!s->queued_of || m->index < 0 || m->index >= s->repo->num_models) return NULL;
  return &s->queued_of[m->index];
}

static void unlink_job(hs_scheduler *s, hs_job *job) {
  if (job->prev)
    job->prev->next = job->next;
  else
    s->head = job->next;
  if (job->next)
    job->next->prev = job->prev;
  else
    s->tail = job->prev;
  job->prev = job->next = NULL;
  job->queued = false;
  s->queued--;
  int *mq = model_queued(s, job->model);
  if (mq) (*mq)--;
  if (s->metrics) atomic_fetch_sub(&s->metrics->queue_depth, 1);
}

static hs_job *pick(hs_scheduler *s, int lane) {
  for (hs_job *j = s->head; j; j = j->next) {
    if (s->opt.fleet && !hs_fleet_lane_serves(s->opt.fleet, lane, j->model)) continue;
    if (j->model->kind != HS_MODEL_META || s->meta_running < s->opt.meta_slots) return j;
  }
  return NULL;
}

static void signal_idle_locked(hs_scheduler *s) {
  if (s->queued == 0 && s->running == 0) pthread_cond_broadcast(&s->idle_cv);
}

/* A meta run's timing as response parameters: {"<stage>_us": N, ..., "glue_us": N}, integer
 * microseconds per member of the group (the member's name without the "<meta>_" prefix, so the
 * detector's are stage1_us and stage2_us) and for the rest of the run. */
static void timing_parameters(const hs_model *m, const hs_run_timing *t, hs_buf *b) {
  if (m->kind != HS_MODEL_META || t->num_stages <= 0) return;
  const size_t prefix = strlen(m->name);
  hs_buf_putc(b, '{');
  for (int i = 0; i < t->num_stages && i < m->group_size; i++) {
    const char *name = m->group_names[i];
    if (strncmp(name, m->name, prefix) == 0 && name[prefix] == '_' && name[prefix + 1])
      name += prefix + 1;
    char key[160];
    snprintf(key, sizeof key, "%s_us", name);
    hs_buf_json_string(b, key, strlen(key));
    hs_buf_printf(b, ":%lld,", (long long)((t->stage_ns[i] + 500) / 1000));
  }
  hs_buf_printf(b, "\"glue_us\":%lld}", (long long)((t->glue_ns + 500) / 1000));
}

/* Builds the 200 response body from a run's outputs. */
static hs_status *encode(hs_job *job, const hs_named_tensor *outs, int n_out,
                         const hs_run_timing *timing, char **body, size_t *len,
                         size_t *header_len) {
  const char *names[64];
  int order[64];
  bool binary[64];
  hs_kserve_output kos[64];
  const bool small = n_out <= 64;
  const char **np = small ? names : malloc(sizeof(char *) * (size_t)n_out);
  int *op = small ? order : malloc(sizeof(int) * (size_t)n_out);
  bool *bp = small ? binary : malloc(sizeof(bool) * (size_t)n_out);
  hs_kserve_output *ko = small ? kos : malloc(sizeof *ko * (size_t)n_out);
  hs_status *st = NULL;
  if (!np || !op || !bp || !ko) st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory writing the response");
  int n_sel = 0;
  if (!st) {
    for (int i = 0; i < n_out; i++) np[i] = outs[i].name;
    st = hs_kserve_select_outputs(&job->req, np, n_out, op, bp, &n_sel);
  }
  if (!st) {
    for (int k = 0; k < n_sel; k++) {
      ko[k].name = outs[op[k]].name;
      ko[k].tensor = &outs[op[k]].tensor;
      ko[k].binary = bp[k];
    }
    hs_buf b, params;
    hs_buf_init(&b);
    hs_buf_init(&params);
    timing_parameters(job->model, timing, &params);
    hs_buf_putc(&params, '\0');
    if (params.oom) st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory writing the response");
    if (!st)
      st = hs_kserve_encode_response_params(&b, job->model->name, job->req.id, params.data, ko,
                                            n_sel, header_len);
    if (!st)
      *body = hs_buf_detach(&b, len);
    hs_buf_free(&b);
    hs_buf_free(&params);
  }
  if (!small) {
    free((void *)np);
    free(op);
    free(bp);
    free(ko);
  }
  return st;
}

/* Runs one job on a worker and answers it (unless answered already).  The
 * worker's scratch goes back to the pool before the answer, so a client that
 * got its answer never sees the previous run still holding memory. */
static void execute(hs_scheduler *s, worker_slot *slot, hs_job *job) {
  hs_worker *w = &slot->w;
  const hs_model *m = job->model;
  job->start_ns = hs_now_ns();
  hs_model_metrics *mm = s->metrics ? hs_metrics_for(s->metrics, m) : NULL;
  if (mm) hs_histogram_observe(&mm->queue, job->start_ns - job->arrival_ns);
  if (atomic_load(&job->answered)) return;
  hs_run run = {m, job->req.inputs, job->req.num_inputs, job->ordered, job->program,
                job->deadline_ns, &job->cancel};
  const hs_named_tensor *outs = NULL;
  int n_out = 0;
  hs_status *st = NULL;
  hs_run_timing fleet_timing;
  const hs_run_timing *timing = &w->timing;
  if (job->start_ns > job->deadline_ns) {
    st = hs_status_new(HS_DEADLINE_EXCEEDED, "deadline exceeded before %s started", m->name);
  } else if (s->opt.fleet) {
    st = hs_fleet_run(s->opt.fleet, (int)(slot - s->workers), &run, &outs, &n_out, &fleet_timing);
    timing = &fleet_timing;
  } else {
    st = hs_worker_run(w, &run, &outs, &n_out);
  }
  int64_t end = hs_now_ns();
  if (mm) hs_histogram_observe(&mm->compute, end - job->start_ns);
  if (!st && end > job->deadline_ns)
    st = hs_status_new(HS_DEADLINE_EXCEEDED, "deadline exceeded: %s finished %.1f ms late",
                       m->name, (double)(end - job->deadline_ns) / 1e6);
  char *body = NULL;
  size_t len = 0, header_len = 0;
  if (!st && !atomic_load(&job->answered))
    st = encode(job, outs, n_out, timing, &body, &len, &header_len);
  hs_worker_release(w);
  if (s->opt.fleet) hs_fleet_release(s->opt.fleet, (int)(slot - s->workers));
  if (!st) {
    if (body) hs_job_answer(job, 200, body, len, header_len);
    return;
  }
  hs_status_code code = hs_status_code_of(st);
  int http = hs_http_status_for(code);
  if (code == HS_DEADLINE_EXCEEDED)
    hs_job_answer_errorf(job, http, "deadline exceeded (timeout %.1f ms): %s",
                         (double)job->req.timeout_us / 1e3, hs_status_message(st));
  else
    hs_job_answer_error(job, http, hs_status_message(st));
  hs_status_free(st);
}

static void *worker_main(void *arg) {
  worker_slot *slot = arg;
  hs_scheduler *s = slot->s;
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    hs_job *job = pick(s, (int)(slot - s->workers));
    if (!job) {
      pthread_cond_wait(&s->work_cv, &s->mu);
      continue;
    }
    unlink_job(s, job);
    bool meta = job->model->kind == HS_MODEL_META;
    s->running++;
    if (meta) s->meta_running++;
    slot->job = job;
    if (s->metrics) {
      atomic_fetch_add(&s->metrics->running, 1);
      if (meta) atomic_fetch_add(&s->metrics->meta_slots_in_use, 1);
    }
    pthread_mutex_unlock(&s->mu);

    execute(s, slot, job);

    pthread_mutex_lock(&s->mu);
    slot->job = NULL;
    s->running--;
    if (meta) {
      s->meta_running--;
      pthread_cond_broadcast(&s->work_cv); /* a meta slot is free */
    }
    if (s->metrics) {
      atomic_fetch_sub(&s->metrics->running, 1);
      if (meta) atomic_fetch_sub(&s->metrics->meta_slots_in_use, 1);
    }
    signal_idle_locked(s);
    pthread_mutex_unlock(&s->mu);
    hs_job_unref(job); /* the queue's reference */
    pthread_mutex_lock(&s->mu);
  }
  s->alive--;
  pthread_cond_broadcast(&s->idle_cv);
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static void *timer_main(void *arg) {
  hs_scheduler *s = arg;
  hs_job **running = calloc((size_t)s->num_workers + 1, sizeof *running);
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    int64_t now = hs_now_ns(), next = INT64_MAX;
    hs_job *expired = NULL; /* queued jobs past their deadline, linked by next */
    int n_running = 0;
    for (hs_job *j = s->head; j;) {
      hs_job *nx = j->next;
      if (j->deadline_ns <= now) {
        unlink_job(s, j);
        j->next = expired;
        expired = j;
      } else if (j->deadline_ns < next) {
        next = j->deadline_ns;
      }
      j = nx;
    }
    for (int i = 0; running && i < s->num_workers; i++) {
      hs_job *j = s->workers[i].job;
      if (!j || atomic_load(&j->answered)) continue;
      if (j->deadline_ns <= now) {
        hs_job_ref(j);
        running[n_running++] = j;
      } else if (j->deadline_ns < next) {
        next = j->deadline_ns;
      }
    }
    if (expired || n_running) {
      signal_idle_locked(s);
      pthread_mutex_unlock(&s->mu);
      while (expired) {
        hs_job *j = expired;
        expired = j->next;
        j->next = NULL;
        hs_job_answer_errorf(j, 504, "deadline exceeded (timeout %.1f ms): %s waited %.1f ms in "
                             "the queue", (double)j->req.timeout_us / 1e3, j->model->name,
                             (double)(now - j->arrival_ns) / 1e6);
        hs_job_unref(j);
      }
      for (int i = 0; i < n_running; i++) {
        hs_job *j = running[i];
        atomic_store(&j->cancel, true);
        hs_job_answer_errorf(j, 504, "deadline exceeded (timeout %.1f ms) while %s was running "
                             "(%.1f ms into the run)", (double)j->req.timeout_us / 1e3,
                             j->model->name, (double)(now - j->start_ns) / 1e6);
        hs_job_unref(j);
      }
      pthread_mutex_lock(&s->mu);
      continue;
    }
    timed_wait(&s->timer_cv, &s->mu, next);
  }
  pthread_mutex_unlock(&s->mu);
  free(running);
  return NULL;
}

static void init_cond(pthread_cond_t *cv) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &a);
  pthread_condattr_destroy(&a);
}

hs_status *hs_scheduler_create(const hs_scheduler_options *opt, const hs_repository *repo,
                               hs_metrics *metrics, hs_scheduler **out) {
  *out = NULL;
  if (opt->threads < 1 || opt->max_queue < 1 || opt->meta_slots < 1)
    return hs_status_new(HS_INVALID_ARGUMENT, "threads, max queue and meta slots must be >= 1");
  hs_scheduler *s = calloc(1, sizeof *s);
  if (!s) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  s->opt = *opt;
  s->repo = repo;
  s->metrics = metrics;
  s->accepting = true;
  s->queued_of = calloc((size_t)repo->num_models + 1, sizeof *s->queued_of);
  pthread_mutex_init(&s->mu, NULL);
  init_cond(&s->work_cv);
  init_cond(&s->timer_cv);
  init_cond(&s->idle_cv);
  s->workers = calloc((size_t)opt->threads, sizeof *s->workers);
  if (!s->workers || !s->queued_of) {
    hs_scheduler_free(s);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  s->num_workers = opt->threads;
  hs_status *st = NULL;
  for (int i = 0; i < opt->threads && !st; i++) {
    s->workers[i].s = s;
    st = hs_worker_init(&s->workers[i].w, i, repo, metrics, opt->scratch_limit);
  }
  for (int i = 0; i < opt->threads && !st; i++) {
    int rc = pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    if (rc) {
      st = hs_status_new(HS_INTERNAL, "cannot start worker thread: %s", strerror(rc));
      break;
    }
    s->workers[i].started = true;
    pthread_mutex_lock(&s->mu);
    s->alive++;
    pthread_mutex_unlock(&s->mu);
  }
  if (!st) {
    int rc = pthread_create(&s->timer, NULL, timer_main, s);
    if (rc)
      st = hs_status_new(HS_INTERNAL, "cannot start the deadline timer: %s", strerror(rc));
    else
      s->timer_started = true;
  }
  if (st) {
    hs_scheduler_stop(s, INT64_MAX / 2);
    hs_scheduler_free(s);
    return st;
  }
  *out = s;
  return NULL;
}

hs_status *hs_scheduler_submit(hs_scheduler *s, hs_job *job) {
  char why[600];
  pthread_mutex_lock(&s->mu);
  hs_status *st = NULL;
  int *mq = model_queued(s, job->model);
  if (!s->accepting || s->stop) {
    st = hs_status_new(HS_UNAVAILABLE, "the server is shutting down");
  } else if (s->queued >= s->opt.max_queue) {
    st = hs_status_new(HS_UNAVAILABLE, "the queue is full (%d requests waiting); retry later",
                       s->queued);
  } else if (s->opt.fleet &&
             hs_fleet_unavailable(s->opt.fleet, job->model, why, sizeof why)) {
    st = hs_status_new(HS_UNAVAILABLE, "model %s is not ready: %s", job->model->name, why);
  } else if (mq && s->opt.max_queue_per_model > 0 && *mq >= s->opt.max_queue_per_model) {
    st = hs_status_new(HS_UNAVAILABLE, "the queue of model %s is full (%d requests waiting, "
                       "--max-queue-per-model); retry later", job->model->name, *mq);
  } else {
    if (mq) (*mq)++;
    hs_job_ref(job);
    job->queued = true;
    job->prev = s->tail;
    job->next = NULL;
    if (s->tail)
      s->tail->next = job;
    else
      s->head = job;
    s->tail = job;
    s->queued++;
    if (s->metrics) atomic_fetch_add(&s->metrics->queue_depth, 1);
    pthread_cond_broadcast(&s->work_cv);
    if (job->deadline_ns != INT64_MAX) pthread_cond_signal(&s->timer_cv);
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

bool hs_scheduler_drain(hs_scheduler *s, int64_t grace_ns) {
  int64_t until = hs_now_ns() + (grace_ns > 0 ? grace_ns : 0);
  pthread_mutex_lock(&s->mu);
  s->accepting = false;
  while ((s->queued > 0 || s->running > 0) && hs_now_ns() < until)
    timed_wait(&s->idle_cv, &s->mu, until);
  hs_job *left = NULL;
  while (s->head) {
    hs_job *j = s->head;
    unlink_job(s, j);
    j->next = left;
    left = j;
  }
  hs_job **running = calloc((size_t)s->num_workers + 1, sizeof *running);
  int n_running = 0;
  for (int i = 0; running && i < s->num_workers; i++)
    if (s->workers[i].job) {
      hs_job_ref(s->workers[i].job);
      running[n_running++] = s->workers[i].job;
    }
  pthread_mutex_unlock(&s->mu);
  while (left) {
    hs_job *j = left;
    left = j->next;
    j->next = NULL;
    hs_job_answer_error(j, 503, "the server is shutting down");
    hs_job_unref(j);
  }
  for (int i = 0; i < n_running; i++) {
    atomic_store(&running[i]->cancel, true);
    hs_job_answer_error(running[i], 503, "the server is shutting down");
    hs_job_unref(running[i]);
  }
  free(running);
  return n_running == 0;
}

bool hs_scheduler_stop(hs_scheduler *s, int64_t wait_ns) {
  int64_t until = hs_now_ns() + wait_ns;
  pthread_mutex_lock(&s->mu);
  s->accepting = false;
  s->stop = true;
  pthread_cond_broadcast(&s->work_cv);
  pthread_cond_broadcast(&s->timer_cv);
  while (s->alive > 0 && hs_now_ns() < until) timed_wait(&s->idle_cv, &s->mu, until);
  bool all = s->alive == 0;
  pthread_mutex_unlock(&s->mu);
  if (s->timer_started) {
    pthread_join(s->timer, NULL);
    s->timer_started = false;
  }
  if (!all) return false;
  for (int i = 0; i < s->num_workers; i++)
    if (s->workers[i].started) {
      pthread_join(s->workers[i].thread, NULL);
      s->workers[i].started = false;
    }
  return true;
}

void hs_scheduler_free(hs_scheduler *s) {
  if (!s) return;
  for (int i = 0; s->workers && i < s->num_workers; i++)
    if (s->workers[i].w.states || s->workers[i].w.pool.slots) hs_worker_destroy(&s->workers[i].w);
  /* Jobs still queued (never drained) lose the queue's reference. */
  while (s->head) {
    hs_job *j = s->head;
    unlink_job(s, j);
    hs_job_unref(j);
  }
  free(s->workers);
  free(s->queued_of);
  pthread_cond_destroy(&s->work_cv);
  pthread_cond_destroy(&s->timer_cv);
  pthread_cond_destroy(&s->idle_cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

const char *hs_scheduler_unavailable(hs_scheduler *s, const hs_model *m, char *buf, size_t cap) {
  return s && s->opt.fleet ? hs_fleet_unavailable(s->opt.fleet, m, buf, cap) : NULL;
}

void hs_scheduler_counts(hs_scheduler *s, int *queued, int *running) {
  pthread_mutex_lock(&s->mu);
  if (queued) *queued = s->queued;
  if (running) *running = s->running;
  pthread_mutex_unlock(&s->mu);
}
