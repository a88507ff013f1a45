/*
 * fleet_worker.c - the worker process of fleet mode (fleet.h):
 *
 *   hloserve __fleet-worker --id K --repo DIR --intra-op-threads N
 *       --scratch-limit BYTES [--cc CC] [--include-dir D] [--cache-dir D]
 *       --lane SOCKFD:MEMFD ... --model NAME ...
 *
 * Started by the front end (fork + exec of the same binary), never by hand.
 * It loads the repository keeping only its own models (the others stay
 * manifests), says ready on lane 0, then serves each lane on a thread of its
 * own: one request at a time, inputs read in place from the lane's memfd,
 * the run done by an ordinary hs_worker (so a meta's sub-calls and scratch
 * stay in this process), the outputs copied into the memfd after the inputs.
 * When the front end goes away (EOF on a channel, or PR_SET_PDEATHSIG) the
 * process exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/fleet.h"
#include "server/fleet_proto.h"
#include "server/util.h"

typedef struct wp_lane {
  int fd;
  fl_map shm;
  pthread_t thread;
} wp_lane;

typedef struct wp_state {
  int id;
  hs_repository *repo;
  size_t scratch_limit;
  const char **models;
  int num_models;
} wp_state;

static bool skip_model(const hs_model *m, void *cls) {
  const wp_state *s = cls;
  for (int i = 0; i < s->num_models; i++)
    if (strcmp(s->models[i], m->name) == 0) return false;
  return true;
}

static void reply_error(int fd, fl_reply *a, hs_status *st) {
  a->magic = FL_MAGIC_REPLY;
  a->code = (int32_t)hs_status_code_of(st);
  if (a->code == HS_OK) a->code = HS_INTERNAL;
  a->num_outputs = 0;
  snprintf(a->message, sizeof a->message, "%s", hs_status_message(st));
  hs_status_free(st);
  if (fl_send(fd, a, offsetof(fl_reply, outputs)) != 0) _exit(0);
}

/* One request: check it, run it, place the outputs. */
static hs_status *serve_one(wp_state *s, wp_lane *l, hs_worker *w, const fl_request *q,
                            size_t len, fl_reply *a) {
  if (len < offsetof(fl_request, inputs) || q->magic != FL_MAGIC_REQUEST || q->num_inputs < 0 ||
      q->num_inputs > FL_MAX_TENSORS ||
      len != offsetof(fl_request, inputs) + sizeof(fl_tensor) * (size_t)q->num_inputs)
    return hs_status_new(HS_INTERNAL, "worker %d: malformed request", s->id);
  char name[sizeof q->model];
  memcpy(name, q->model, sizeof name);
  name[sizeof name - 1] = 0;
  const hs_model *m = hs_repository_find(s->repo, name);
  if (!m || skip_model(m, s))
    return hs_status_new(HS_NOT_FOUND, "worker %d does not serve model '%s'", s->id, name);
  if (q->num_inputs != m->num_inputs)
    return hs_status_new(HS_INTERNAL, "worker %d: %s takes %d inputs, got %d", s->id, m->name,
                         m->num_inputs, q->num_inputs);
  HS_RETURN_IF_ERROR(fl_map_ensure(&l->shm, (size_t)q->shm_size, 0));
  hs_named_tensor ins[FL_MAX_TENSORS];
  const hs_tensor *ordered[FL_MAX_TENSORS + 1];
  for (int i = 0; i < q->num_inputs; i++) {
    const fl_tensor *d = &q->inputs[i];
    hs_named_tensor *t = &ins[i];
    memset(t, 0, sizeof *t);
    if (d->index != i || d->rank < 0 || d->rank > HS_MAX_RANK || d->offset > l->shm.size ||
        d->nbytes > l->shm.size - d->offset)
      return hs_status_new(HS_INTERNAL, "worker %d: bad descriptor for input %d", s->id, i);
    t->name = m->inputs[i].name;
    t->tensor.dtype = (hs_dtype)d->dtype;
    t->tensor.shape.rank = d->rank;
    for (int k = 0; k < d->rank; k++) t->tensor.shape.dims[k] = d->dims[k];
    t->tensor.data = l->shm.data + d->offset;
    if (hs_tensor_nbytes(&t->tensor) != d->nbytes)
      return hs_status_new(HS_INTERNAL, "worker %d: input %d size mismatch", s->id, i);
  }
  int program = -1;
  HS_RETURN_IF_ERROR(hs_model_match_inputs(m, ins, q->num_inputs, ordered, &program));
  hs_run run = {m, ins, q->num_inputs, ordered, program, q->deadline_ns, NULL};
  const hs_named_tensor *outs = NULL;
  int n_out = 0;
  HS_RETURN_IF_ERROR(hs_worker_run(w, &run, &outs, &n_out));
  a->timing = w->timing;
  if (n_out > FL_MAX_TENSORS)
    return hs_status_new(HS_UNIMPLEMENTED, "%s: more than %d outputs (fleet mode)", m->name,
                         FL_MAX_TENSORS);
  /* outputs after the inputs (the front end is done with nothing yet: it
   * reads them from here when encoding the response) */
  uint64_t off = q->inputs_end;
  for (int k = 0; k < n_out; k++) off = fl_align(off) + hs_tensor_nbytes(&outs[k].tensor);
  HS_RETURN_IF_ERROR(fl_map_ensure(&l->shm, (size_t)off, 1));
  off = q->inputs_end;
  for (int k = 0; k < n_out; k++) {
    const hs_tensor *t = &outs[k].tensor;
    fl_tensor *d = &a->outputs[k];
    memset(d, 0, sizeof *d);
    d->index = -1;
    for (int i = 0; i < m->num_outputs && d->index < 0; i++)
      if (strcmp(m->outputs[i].name, outs[k].name) == 0) d->index = i;
    if (d->index < 0)
      return hs_status_new(HS_INTERNAL, "%s: output '%s' is not in its manifest", m->name,
                           outs[k].name);
    size_t nb = hs_tensor_nbytes(t);
    off = fl_align(off);
    d->dtype = (int32_t)t->dtype;
    d->rank = t->shape.rank;
    for (int r = 0; r < t->shape.rank; r++) d->dims[r] = t->shape.dims[r];
    d->offset = off;
    d->nbytes = nb;
    if (nb) memcpy(l->shm.data + off, t->data, nb);
    off += nb;
  }
  a->magic = FL_MAGIC_REPLY;
  a->code = HS_OK;
  a->num_outputs = n_out;
  a->shm_size = l->shm.size;
  a->message[0] = 0;
  return NULL;
}

typedef struct lane_arg {
  wp_state *s;
  wp_lane *l;
} lane_arg;

static void *lane_main(void *arg) {
  lane_arg *la = arg;
  wp_state *s = la->s;
  wp_lane *l = la->l;
  hs_worker w;
  hs_status *st = hs_worker_init(&w, s->id, s->repo, NULL, s->scratch_limit);
  if (st) {
    hs_log("fleet worker %d: %s", s->id, hs_status_message(st));
    _exit(1);
  }
  fl_request *q = calloc(1, sizeof *q);
  fl_reply *a = calloc(1, sizeof *a);
  if (!q || !a) _exit(1);
  for (;;) {
    ssize_t n;
    do n = recv(l->fd, q, sizeof *q, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0) _exit(0); /* the front end is gone */
    memset(&a->timing, 0, sizeof a->timing);
    st = serve_one(s, l, &w, q, (size_t)n, a);
    hs_worker_release(&w);
    if (st) {
      reply_error(l->fd, a, st);
      continue;
    }
    if (fl_send(l->fd, a, offsetof(fl_reply, outputs) + sizeof(fl_tensor) * (size_t)a->num_outputs) != 0)
      _exit(0);
  }
  return NULL;
}

static int parse_int(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

int hs_fleet_worker_main(int argc, char **argv) {
  wp_state s;
  memset(&s, 0, sizeof s);
  hs_repository_options ro;
  memset(&ro, 0, sizeof ro);
  wp_lane lanes[64];
  int num_lanes = 0;
  s.models = calloc((size_t)argc + 1, sizeof *s.models);
  if (!s.models) return 1;
  for (int i = 0; i < argc; i++) {
    const char *k = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    long long x = 0;
    if (!v) goto bad;
    i++;
    if (strcmp(k, "--id") == 0 && parse_int(v, &x) == 0) {
      s.id = (int)x;
    } else if (strcmp(k, "--repo") == 0) {
      ro.dir = v;
    } else if (strcmp(k, "--intra-op-threads") == 0 && parse_int(v, &x) == 0) {
      ro.intra_op_threads = (int)x;
    } else if (strcmp(k, "--scratch-limit") == 0 && parse_int(v, &x) == 0 && x >= 0) {
      s.scratch_limit = (size_t)x;
    } else if (strcmp(k, "--cc") == 0) {
      ro.cc = v;
    } else if (strcmp(k, "--device") == 0) {
      ro.device = v;
    } else if (strcmp(k, "--include-dir") == 0) {
      ro.include_dir = v;
    } else if (strcmp(k, "--cache-dir") == 0) {
      ro.cache_dir = v;
    } else if (strcmp(k, "--lane") == 0 && num_lanes < 64) {
      int a, b;
      char tail;
      if (sscanf(v, "%d:%d%c", &a, &b, &tail) != 2 || a < 0 || b < 0) goto bad;
      lanes[num_lanes].fd = a;
      lanes[num_lanes].shm.fd = b;
      lanes[num_lanes].shm.data = NULL;
      lanes[num_lanes].shm.size = 0;
      num_lanes++;
    } else if (strcmp(k, "--model") == 0) {
      s.models[s.num_models++] = v;
    } else {
      goto bad;
    }
    continue;
  bad:
    fprintf(stderr, "hloserve __fleet-worker: internal command of `serve --workers`, "
                    "bad argument '%s'\n", k);
    free(s.models);
    return 2;
  }
  if (!ro.dir || num_lanes == 0) {
    fprintf(stderr, "hloserve __fleet-worker: internal command of `serve --workers`; "
                    "needs --repo and --lane\n");
    free(s.models);
    return 2;
  }
  ro.skip = skip_model;
  ro.skip_cls = &s;
  fl_ready ready;
  memset(&ready, 0, sizeof ready);
  ready.magic = FL_MAGIC_READY;
  hs_status *st = hs_repository_load(&ro, &s.repo);
  if (st) {
    snprintf(ready.message, sizeof ready.message, "loading the repository: %s",
             hs_status_message(st));
    hs_status_free(st);
    fl_send(lanes[0].fd, &ready, sizeof ready);
    free(s.models);
    return 1;
  }
  for (int i = 0; i < s.repo->num_models; i++) {
    const hs_model *m = s.repo->models[i];
    if (m->ready || skip_model(m, &s)) continue;
    fl_not_ready nr;
    memset(&nr, 0, sizeof nr);
    nr.magic = FL_MAGIC_NOT_READY;
    snprintf(nr.model, sizeof nr.model, "%s", m->name);
    snprintf(nr.reason, sizeof nr.reason, "%s", m->reason ? m->reason : "not loaded");
    if (fl_send(lanes[0].fd, &nr, sizeof nr) != 0) return 0;
  }
  ready.ok = 1;
  if (fl_send(lanes[0].fd, &ready, sizeof ready) != 0) return 0;
  lane_arg args[64];
  for (int j = 0; j < num_lanes; j++) {
    args[j].s = &s;
    args[j].l = &lanes[j];
    if (j > 0 && pthread_create(&lanes[j].thread, NULL, lane_main, &args[j]) != 0) {
      hs_log("fleet worker %d: cannot start lane thread %d", s.id, j);
      return 1;
    }
  }
  lane_main(&args[0]);
  return 0;
}
