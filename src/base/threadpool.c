/*
 * threadpool.c - see threadpool.h.  Workers sleep on a condition variable
 * until a job is posted; chunks are claimed with an atomic counter so uneven
 * chunks balance themselves; the poster waits until every chunk is done.
 */
#include "base/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct hs_threadpool {
  int n;                 /* threads including the caller */
  pthread_t *threads;
  pthread_mutex_t mu;    /* guards the fields below */
  pthread_cond_t wake, done;
  pthread_mutex_t submit; /* one job at a time */
  unsigned long generation;
  int stop;
  /* current job */
  void (*fn)(void *, int64_t, int64_t);
  void *arg;
  int64_t total, chunk, n_chunks;
  atomic_llong next;
  atomic_llong finished;
  int active;            /* workers inside the current job */
};

static void run_chunks(hs_threadpool *p) {
  for (;;) {
    long long c = atomic_fetch_add(&p->next, 1);
    if (c >= p->n_chunks) break;
    int64_t b = c * p->chunk, e = b + p->chunk;
    if (e > p->total) e = p->total;
    p->fn(p->arg, b, e);
    atomic_fetch_add(&p->finished, 1);
  }
}

static void *worker(void *arg) {
  hs_threadpool *p = arg;
  unsigned long seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) break;
    seen = p->generation;
    p->active++;
    pthread_mutex_unlock(&p->mu);
    run_chunks(p);
    pthread_mutex_lock(&p->mu);
    p->active--;
    pthread_cond_broadcast(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

hs_status *hs_threadpool_create(int n_threads, hs_threadpool **out) {
  *out = NULL;
  if (n_threads < 1) n_threads = 1;
  hs_threadpool *p = calloc(1, sizeof(*p));
  if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  p->n = n_threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->submit, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  p->threads = calloc((size_t)n_threads, sizeof(pthread_t));
  if (!p->threads) {
    free(p);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  for (int i = 1; i < n_threads; i++) {
    if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
      p->n = i;
      hs_threadpool_destroy(p);
      return hs_status_new(HS_INTERNAL, "cannot start thread %d", i);
    }
  }
  *out = p;
  return NULL;
}

void hs_threadpool_destroy(hs_threadpool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->submit);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p->threads);
  free(p);
}

int hs_threadpool_size(const hs_threadpool *p) { return p ? p->n : 1; }

void hs_threadpool_parallel_for(hs_threadpool *p, int64_t n, int64_t grain,
                                void (*fn)(void *arg, int64_t begin, int64_t end), void *arg) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (!p || p->n == 1 || n <= grain) {
    fn(arg, 0, n);
    return;
  }
  int64_t chunks = p->n * 4;
  int64_t chunk = (n + chunks - 1) / chunks;
  if (chunk < grain) chunk = grain;
  pthread_mutex_lock(&p->submit);
  pthread_mutex_lock(&p->mu);
  /* A worker that woke late for the previous job may still be inside it. */
  while (p->active > 0) pthread_cond_wait(&p->done, &p->mu);
  p->fn = fn;
  p->arg = arg;
  p->total = n;
  p->chunk = chunk;
  p->n_chunks = (n + chunk - 1) / chunk;
  atomic_store(&p->next, 0);
  atomic_store(&p->finished, 0);
  p->generation++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  run_chunks(p);
  pthread_mutex_lock(&p->mu);
  while (atomic_load(&p->finished) < p->n_chunks || p->active > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
  pthread_mutex_unlock(&p->submit);
}
