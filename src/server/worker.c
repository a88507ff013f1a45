/*
 * worker.c - see worker.h.
 *
 * Every buffer a run needs comes from the worker's pool, in an order that
 * is the same for every request to the same model: the dense path takes its
 * argument arrays and output tensors, the meta path additionally whatever
 * model.c asks for.  So in steady state a request allocates nothing but its
 * parsed inputs and its response.
 *
 * The meta host is this file's implementation of the meta API's
 * operations (meta_internal.h): sub-calls are checked against the group and
 * the callee's manifest, timed per stage, and run on the calling thread.
 */
#include "server/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_internal.h"
#include "server/util.h"

hs_status *hs_worker_init(hs_worker *w, int id, const hs_repository *repo, hs_metrics *metrics,
                          size_t scratch_limit) {
  memset(w, 0, sizeof *w);
  w->id = id;
  w->repo = repo;
  w->metrics = metrics;
  hs_scratch_init(&w->pool, scratch_limit);
  w->states = calloc((size_t)repo->num_models + 1, sizeof *w->states);
  if (!w->states) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  return NULL;
}

void hs_worker_destroy(hs_worker *w) {
  if (w->states)
    for (int i = 0; i < w->repo->num_models; i++)
      if (w->states[i].state && w->states[i].destroy) w->states[i].destroy(w->states[i].state);
  free(w->states);
  if (w->metrics) atomic_fetch_sub(&w->metrics->scratch_pooled_bytes, (int64_t)w->reported_pooled);
  hs_scratch_destroy(&w->pool);
  memset(w, 0, sizeof *w);
}

void hs_worker_release(hs_worker *w) {
  if (w->metrics) {
    atomic_fetch_sub(&w->metrics->scratch_in_use_bytes, (int64_t)w->pool.in_use_bytes);
    atomic_fetch_add(&w->metrics->scratch_pooled_bytes,
                     (int64_t)w->pool.pooled_bytes - (int64_t)w->reported_pooled);
    w->reported_pooled = w->pool.pooled_bytes;
  }
  hs_scratch_release(&w->pool);
}

static hs_status *acquire(hs_worker *w, size_t bytes, void **out) {
  size_t before = w->pool.in_use_bytes;
  hs_status *st = hs_scratch_acquire(&w->pool, bytes, out);
  if (!st && w->metrics)
    atomic_fetch_add(&w->metrics->scratch_in_use_bytes, (int64_t)(w->pool.in_use_bytes - before));
  return st;
}

/* Runs program `p` of dense model m on inputs in model order; outputs come
 * from the pool, named after the manifest. */
static hs_status *run_dense(hs_worker *w, const hs_model *m, int p, const hs_tensor *const *ordered,
                            const hs_named_tensor **outputs, int *num_outputs) {
  const hs_dense_program *dp = &m->programs[p];
  hs_tensor *ins = NULL, *outs = NULL;
  hs_named_tensor *named = NULL;
  HS_RETURN_IF_ERROR(acquire(w, sizeof(hs_tensor) * (size_t)(m->num_inputs + 1), (void **)&ins));
  HS_RETURN_IF_ERROR(acquire(w, sizeof(hs_tensor) * (size_t)(m->num_outputs + 1), (void **)&outs));
  HS_RETURN_IF_ERROR(
      acquire(w, sizeof(hs_named_tensor) * (size_t)(m->num_outputs + 1), (void **)&named));
  for (int i = 0; i < m->num_inputs; i++) ins[i] = *ordered[i];
  for (int i = 0; i < m->num_outputs; i++) {
    memset(&outs[i], 0, sizeof outs[i]);
    outs[i].dtype = m->outputs[i].dtype;
    outs[i].shape = dp->output_shapes[i];
    HS_RETURN_IF_ERROR(acquire(w, hs_tensor_nbytes(&outs[i]), &outs[i].data));
  }
  HS_RETURN_IF_ERROR(hs_program_run(dp->program, ins, m->num_inputs, outs, m->num_outputs));
  for (int i = 0; i < m->num_outputs; i++) {
    named[i].name = m->outputs[i].name;
    named[i].tensor = outs[i];
  }
  *outputs = named;
  *num_outputs = m->num_outputs;
  return NULL;
}

/* ---- the meta host ----------------------------------------------------------- */

#define MAX_META_OUTPUTS 64

typedef struct meta_host {
  hs_worker *w;
  const hs_run *run;
  hs_named_tensor outputs[MAX_META_OUTPUTS];
  int num_outputs;
  int64_t call_ns; /* time inside sub-calls */
} meta_host;

static hs_status *host_check(void *host) {
  meta_host *h = host;
  const hs_run *r = h->run;
  int64_t now = hs_now_ns();
  if (now > r->deadline_ns)
    return hs_status_new(HS_DEADLINE_EXCEEDED, "%s: deadline exceeded", r->model->name);
  if (r->cancel && atomic_load(r->cancel))
    return hs_status_new(HS_CANCELLED, "%s: the server gave up on this request", r->model->name);
  return NULL;
}

static hs_status *host_call(void *host, const char *name, const hs_named_tensor *inputs, int n,
                            const hs_named_tensor **outputs, int *num_outputs) {
  meta_host *h = host;
  const hs_model *meta = h->run->model;
  int g = -1;
  for (int i = 0; i < meta->group_size && g < 0; i++)
    if (strcmp(meta->group_names[i], name) == 0) g = i;
  if (g < 0) {
    char list[512];
    size_t len = 0;
    list[0] = 0;
    for (int i = 0; i < meta->group_size && len + 4 < sizeof list; i++)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                              meta->group_names[i]);
    return hs_status_new(HS_NOT_FOUND, "%s: '%s' is not in its placement group (%s)", meta->name,
                         name, list);
  }
  const hs_model *m = meta->group[g];
  if (!m || !m->ready)
    return hs_status_new(HS_UNAVAILABLE, "%s: group member %s is not ready", meta->name, name);
  const hs_tensor **ordered = NULL;
  HS_RETURN_IF_ERROR(acquire(h->w, sizeof(hs_tensor *) * (size_t)(m->num_inputs + 1),
                             (void **)&ordered));
  int program = -1;
  HS_RETURN_IF_ERROR(hs_status_annotate(hs_model_match_inputs(m, inputs, n, ordered, &program),
                                        "%s: calling %s", meta->name, name));
  int64_t t0 = hs_now_ns();
  hs_status *st = run_dense(h->w, m, program, ordered, outputs, num_outputs);
  int64_t dt = hs_now_ns() - t0;
  h->call_ns += dt;
  if (g < HS_MAX_TIMED_STAGES) h->w->timing.stage_ns[g] += dt;
  if (h->w->metrics) hs_histogram_observe(&h->w->metrics->models[meta->index].stages[g], dt);
  return hs_status_annotate(st, "%s: calling %s", meta->name, name);
}

static hs_status *host_scratch(void *host, hs_dtype dtype, const hs_shape *shape, hs_tensor *out) {
  meta_host *h = host;
  out->dtype = dtype;
  out->shape = *shape;
  return hs_status_annotate(acquire(h->w, hs_tensor_nbytes(out), &out->data), "%s",
                            h->run->model->name);
}

static hs_status *host_output(void *host, const char *name, hs_dtype dtype, const hs_shape *shape,
                              hs_tensor *out) {
  meta_host *h = host;
  const hs_model *meta = h->run->model;
  const hs_tensor_spec *spec = NULL;
  for (int i = 0; i < meta->num_outputs && !spec; i++)
    if (strcmp(meta->outputs[i].name, name) == 0) spec = &meta->outputs[i];
  if (!spec)
    return hs_status_new(HS_INTERNAL, "%s: output '%s' is not in its bundle.json outputs",
                         meta->name, name);
  for (int i = 0; i < h->num_outputs; i++)
    if (h->outputs[i].name == spec->name)
      return hs_status_new(HS_INTERNAL, "%s: output '%s' is produced twice", meta->name, name);
  bool fits = spec->shape.rank == shape->rank && spec->dtype == dtype;
  for (int i = 0; fits && i < shape->rank; i++)
    fits = spec->shape.dims[i] == -1 || spec->shape.dims[i] == shape->dims[i];
  if (!fits) {
    char a[128], b[128];
    return hs_status_new(HS_INTERNAL, "%s: output '%s' is %s %s, bundle.json says %s %s",
                         meta->name, name, hs_dtype_name(dtype), hs_shape_text(shape, a, sizeof a),
                         hs_dtype_kserve_name(spec->dtype), hs_shape_text(&spec->shape, b, sizeof b));
  }
  if (h->num_outputs == MAX_META_OUTPUTS)
    return hs_status_new(HS_INTERNAL, "%s: more than %d outputs", meta->name, MAX_META_OUTPUTS);
  out->dtype = dtype;
  out->shape = *shape;
  HS_RETURN_IF_ERROR(hs_status_annotate(acquire(h->w, hs_tensor_nbytes(out), &out->data), "%s",
                                        meta->name));
  h->outputs[h->num_outputs].name = spec->name;
  h->outputs[h->num_outputs].tensor = *out;
  h->num_outputs++;
  return NULL;
}

static void **host_state(void *host, void (*destroy)(void *state)) {
  meta_host *h = host;
  hs_meta_state_slot *slot = &h->w->states[h->run->model->index];
  if (destroy) slot->destroy = destroy;
  return &slot->state;
}

static const hs_meta_host_ops HOST_OPS = {host_call, host_scratch, host_output, host_state,
                                          host_check};

static hs_status *run_meta(hs_worker *w, const hs_run *run, const hs_named_tensor **outputs,
                           int *num_outputs) {
  const hs_model *m = run->model;
  meta_host *h = NULL;
  HS_RETURN_IF_ERROR(acquire(w, sizeof *h, (void **)&h));
  memset(h, 0, sizeof *h);
  h->w = w;
  h->run = run;
  w->timing.num_stages = m->group_size < HS_MAX_TIMED_STAGES ? m->group_size : HS_MAX_TIMED_STAGES;
  /* the group's programs run with the repository's intra-op threads */
  int threads = 1;
  for (int i = 0; i < m->group_size; i++)
    for (int k = 0; k < m->group[i]->num_programs; k++) {
      int t = hs_program_num_threads(m->group[i]->programs[k].program);
      if (t > threads) threads = t;
    }
  hs_meta_ctx ctx = {&HOST_OPS, h, m->name, threads};
  int64_t t0 = hs_now_ns();
  hs_status *st = m->run(&ctx, run->inputs, run->num_inputs);
  int64_t total = hs_now_ns() - t0;
  if (w->metrics) hs_histogram_observe(&w->metrics->models[m->index].glue, total - h->call_ns);
  w->timing.glue_ns = total - h->call_ns;
  if (st) {
    /* Keep the code; make sure the message names the model. */
    if (!strstr(hs_status_message(st), m->name)) st = hs_status_annotate(st, "%s", m->name);
    return st;
  }
  for (int i = 0; i < m->num_outputs; i++) {
    bool found = false;
    for (int k = 0; k < h->num_outputs && !found; k++) found = h->outputs[k].name == m->outputs[i].name;
    if (!found)
      return hs_status_new(HS_INTERNAL, "%s: the run returned without producing output '%s'",
                           m->name, m->outputs[i].name);
  }
  *outputs = h->outputs;
  *num_outputs = h->num_outputs;
  return NULL;
}

hs_status *hs_worker_run(hs_worker *w, const hs_run *run, const hs_named_tensor **outputs,
                         int *num_outputs) {
  *outputs = NULL;
  *num_outputs = 0;
  memset(&w->timing, 0, sizeof w->timing);
  const hs_model *m = run->model;
  if (!m->ready) return hs_status_new(HS_UNAVAILABLE, "model %s is not ready: %s", m->name, m->reason);
  if (m->kind == HS_MODEL_META) return run_meta(w, run, outputs, num_outputs);
  if (run->program < 0 || run->program >= m->num_programs || !run->ordered)
    return hs_status_new(HS_INTERNAL, "%s: no program selected", m->name);
  return hs_status_annotate(run_dense(w, m, run->program, run->ordered, outputs, num_outputs), "%s",
                            m->name);
}
