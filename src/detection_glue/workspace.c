/*
 * workspace.c - the DetectionGlue workspace: one allocation sized from the
 * caller's limits, plus an optional set of persistent worker threads.
 *
 * Why a workspace.  The glue runs once per request in a server's hot path;
 * it must not malloc there.  Every scratch array the functions need has a
 * size bounded by three numbers the caller knows up front (most boxes per
 * NMS, most anchors per level, most classes), so the workspace carves them
 * all from one block at creation and a call only checks that it fits.
 *
 * Why its own threads.  ROIAlign is the one glue step with real arithmetic
 * (a thousand ROIs x 256 channels x 196 samples).  Threads are created once
 * with the workspace and park on a condition variable between calls; a
 * parallel_for hands out chunks through an atomic counter, so uneven ROIs
 * (adaptive sampling grids) balance, and results do not depend on which
 * thread ran which chunk because every chunk writes disjoint outputs.
 */
#include "glue_internal.h"

#include <stdlib.h>

struct hs_glue_pool {
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  pthread_t *threads;
  int num_workers;          /* threads besides the caller */
  int started;              /* threads successfully created */
  uint64_t generation;      /* bumped for each job */
  int busy;                 /* workers still running the current job */
  int quit;
  /* the current job */
  hs_glue_task_fn fn;
  void *ctx;
  int64_t n, grain;
  atomic_int_fast64_t next;
};

static void pool_run_chunks(hs_glue_pool *p) {
  for (;;) {
    int64_t begin = atomic_fetch_add(&p->next, p->grain);
    if (begin >= p->n) break;
    int64_t end = begin + p->grain;
    if (end > p->n) end = p->n;
    p->fn(p->ctx, begin, end);
  }
}

static void *pool_worker(void *arg) {
  hs_glue_pool *p = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->quit) break;
    seen = p->generation;
    pthread_mutex_unlock(&p->mu);
    pool_run_chunks(p);
    pthread_mutex_lock(&p->mu);
    if (--p->busy == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void pool_destroy(hs_glue_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  free(p->threads);
  free(p);
}

static hs_status *pool_create(int num_workers, hs_glue_pool **out) {
  *out = NULL;
  hs_glue_pool *p = calloc(1, sizeof(*p));
  if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "glue workspace: out of memory");
  p->threads = calloc((size_t)num_workers, sizeof(pthread_t));
  if (!p->threads) {
    free(p);
    return hs_status_new(HS_OUT_OF_MEMORY, "glue workspace: out of memory");
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->next, 0);
  p->num_workers = num_workers;
  for (int i = 0; i < num_workers; i++) {
    if (pthread_create(&p->threads[i], NULL, pool_worker, p) != 0) {
      pool_destroy(p);
      return hs_status_new(HS_RESOURCE_EXHAUSTED, "glue workspace: cannot create thread %d of %d",
                           i + 1, num_workers);
    }
    p->started++;
  }
  *out = p;
  return NULL;
}

void hs_glue_parallel_for(hs_glue_workspace *ws, int64_t n, int64_t grain, hs_glue_task_fn fn,
                          void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  hs_glue_pool *p = ws ? ws->pool : NULL;
  if (!p || n <= grain) {
    fn(ctx, 0, n);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->n = n;
  p->grain = grain;
  atomic_store(&p->next, 0);
  p->busy = p->num_workers;
  p->generation++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  pool_run_chunks(p);
  pthread_mutex_lock(&p->mu);
  while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

hs_glue_config hs_glue_default_config(void) {
  hs_glue_config c;
  /* resnet50_fpn at 640x640: 5 levels, level 0 has 160*160*3 anchors; after
   * top-1000 per level at most 4741 candidates; the ROI head sees
   * 1000 proposals x 90 foreground classes. */
  c.max_boxes = 1000 * 90;
  c.max_level_anchors = 160 * 160 * 3;
  c.max_classes = 91;
  c.num_threads = 1;
  return c;
}

hs_glue_config hs_glue_workspace_config(const hs_glue_workspace *ws) {
  if (ws) return ws->cfg;
  hs_glue_config zero = {0, 0, 0, 0};
  return zero;
}

hs_status *hs_glue_need(const hs_glue_workspace *ws, int64_t n, int64_t limit, const char *what,
                        const char *limit_name) {
  (void)ws;
  if (n <= limit) return NULL;
  return hs_status_new(HS_RESOURCE_EXHAUSTED,
                       "%s needs %lld but the glue workspace was created with %s = %lld", what,
                       (long long)n, limit_name, (long long)limit);
}

/* Carves aligned arrays out of one block: a first pass with base NULL
 * measures, a second assigns. */
typedef struct carver {
  char *base;
  size_t off;
} carver;

static void *carve(carver *c, int64_t count, size_t elem) {
  size_t at = (c->off + 63) & ~(size_t)63;
  c->off = at + (size_t)count * elem;
  return c->base ? (void *)(c->base + at) : NULL;
}

static void layout(hs_glue_workspace *ws, carver *c) {
  int64_t nb = ws->cfg.max_boxes + 8;  /* +8: room for a vector's tail */
  hs_glue_nms_scratch *s = &ws->nms;
  s->key_a = carve(c, nb, sizeof(uint32_t));
  s->key_b = carve(c, nb, sizeof(uint32_t));
  s->idx_a = carve(c, nb, sizeof(int32_t));
  s->idx_b = carve(c, nb, sizeof(int32_t));
  s->x1 = carve(c, nb, sizeof(float));
  s->y1 = carve(c, nb, sizeof(float));
  s->x2 = carve(c, nb, sizeof(float));
  s->y2 = carve(c, nb, sizeof(float));
  s->area = carve(c, nb, sizeof(float));
  s->id = carve(c, nb, sizeof(int32_t));
  s->dead = carve(c, nb, sizeof(int32_t));
  ws->b_order = carve(c, nb, sizeof(int32_t));
  ws->b_offset = carve(c, nb, sizeof(float));
  ws->b_keep = carve(c, nb, sizeof(int32_t));
  ws->b_list = carve(c, nb, sizeof(int32_t));
  ws->b_out = carve(c, nb, sizeof(int32_t));
  ws->b_pairs = carve(c, nb, sizeof(hs_glue_qelem));
  ws->c_boxes = carve(c, nb * 4, sizeof(float));
  ws->c_scores = carve(c, nb, sizeof(float));
  ws->c_labels = carve(c, nb, sizeof(int64_t));
  ws->c_keep = carve(c, nb, sizeof(int64_t));
  ws->queue = carve(c, ws->cfg.max_level_anchors + 1, sizeof(hs_glue_qelem));
  ws->row = carve(c, ws->cfg.max_classes + 16, sizeof(float));
}

hs_status *hs_glue_workspace_create(const hs_glue_config *config, hs_glue_workspace **out) {
  if (!out) return HS_GLUE_INVALID("glue workspace: out is NULL");
  *out = NULL;
  if (!config) return HS_GLUE_INVALID("glue workspace: config is NULL");
  hs_glue_config cfg = *config;
  /* Indices are stored as int32 inside the workspace. */
  const int64_t cap = (int64_t)1 << 30;
  if (cfg.max_boxes < 0 || cfg.max_boxes > cap)
    return HS_GLUE_INVALID("glue workspace: max_boxes %lld out of range [0, %lld]",
                           (long long)cfg.max_boxes, (long long)cap);
  if (cfg.max_level_anchors < 0 || cfg.max_level_anchors > cap)
    return HS_GLUE_INVALID("glue workspace: max_level_anchors %lld out of range [0, %lld]",
                           (long long)cfg.max_level_anchors, (long long)cap);
  if (cfg.max_classes < 0 || cfg.max_classes > cap)
    return HS_GLUE_INVALID("glue workspace: max_classes %lld out of range [0, %lld]",
                           (long long)cfg.max_classes, (long long)cap);
  if (cfg.num_threads > 256)
    return HS_GLUE_INVALID("glue workspace: num_threads %d is more than 256", cfg.num_threads);
  if (cfg.num_threads < 1) cfg.num_threads = 1;

  hs_glue_workspace *ws = calloc(1, sizeof(*ws));
  if (!ws) return hs_status_new(HS_OUT_OF_MEMORY, "glue workspace: out of memory");
  ws->cfg = cfg;
  carver c = {NULL, 0};
  layout(ws, &c);
  ws->block = aligned_alloc(64, (c.off + 63) & ~(size_t)63);
  if (!ws->block) {
    free(ws);
    return hs_status_new(HS_OUT_OF_MEMORY, "glue workspace: cannot allocate %zu bytes", c.off);
  }
  c.base = ws->block;
  c.off = 0;
  layout(ws, &c);
  if (cfg.num_threads > 1) {
    hs_status *st = pool_create(cfg.num_threads - 1, &ws->pool);
    if (st) {
      free(ws->block);
      free(ws);
      return st;
    }
  }
  *out = ws;
  return NULL;
}

void hs_glue_workspace_destroy(hs_glue_workspace *ws) {
  if (!ws) return;
  pool_destroy(ws->pool);
  free(ws->block);
  free(ws);
}
