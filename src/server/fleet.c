/*
 * fleet.c - see fleet.h: the front end's side (placement, spawning,
 * supervision, one exchange per lane).
 *
 * One mutex guards every worker's state; a supervisor thread owns spawning
 * and restarting (so PR_SET_PDEATHSIG ties the workers to a thread that
 * lives as long as the fleet).  A worker is UP, DOWN (waiting to be started
 * again) or STARTING (exec'd, loading).  A lane marks itself busy for the
 * length of an exchange; the supervisor replaces a worker's channels and
 * memfds only while it is DOWN and none of its lanes is busy.  Whoever first
 * sees a worker fail (a lane: EOF on its channel, or a hang; the supervisor:
 * waitpid) kills and reaps it under the mutex and records why, once.
 */
#define _GNU_SOURCE
#include "server/fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/fleet_proto.h"
#include "server/util.h"

/* ---- shared helpers (also used by the worker process) ------------------------ */

hs_status *fl_map_ensure(fl_map *m, size_t need, int grow) {
  struct stat sb;
  if (fstat(m->fd, &sb) != 0)
    return hs_status_new(HS_INTERNAL, "shared memory: fstat: %s", strerror(errno));
  size_t size = (size_t)sb.st_size;
  if (size < need) {
    if (!grow)
      return hs_status_new(HS_INTERNAL, "shared memory holds %zu bytes, %zu expected", size, need);
    size_t want = ((need + (1u << 20) - 1) >> 20) << 20; /* whole MiB */
    if (ftruncate(m->fd, (off_t)want) != 0)
      return hs_status_new(HS_RESOURCE_EXHAUSTED, "shared memory: cannot grow to %zu bytes: %s",
                           want, strerror(errno));
    size = want;
  }
  if (m->data && m->size >= size) return NULL;
  fl_map_unmap(m);
  if (size == 0) return NULL;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
  if (p == MAP_FAILED)
    return hs_status_new(HS_RESOURCE_EXHAUSTED, "shared memory: cannot map %zu bytes: %s", size,
                         strerror(errno));
  m->data = p;
  m->size = size;
  return NULL;
}

void fl_map_unmap(fl_map *m) {
  if (m->data) munmap(m->data, m->size);
  m->data = NULL;
  m->size = 0;
}

int fl_send(int fd, const void *msg, size_t len) {
  for (;;) {
    ssize_t n = send(fd, msg, len, MSG_NOSIGNAL);
    if (n == (ssize_t)len) return 0;
    if (n < 0 && errno == EINTR) continue;
    return n < 0 ? errno : EMSGSIZE;
  }
}

size_t fl_request_payload(size_t len, int num) {
  size_t fixed = offsetof(fl_request, inputs) + sizeof(fl_tensor) * (size_t)num;
  return len > fixed ? len - fixed : 0;
}

size_t fl_reply_payload(size_t len, int num) {
  size_t fixed = offsetof(fl_reply, outputs) + sizeof(fl_tensor) * (size_t)num;
  return len > fixed ? len - fixed : 0;
}

/* ---- the front end ------------------------------------------------------------ */

enum { W_DOWN = 0, W_STARTING, W_UP };

typedef struct fleet_worker fleet_worker;

typedef struct lane {
  fleet_worker *w;
  int index; /* in the fleet */
  int fd;    /* our end of the channel; -1 */
  fl_map shm;
  bool busy;
  fl_request req;
  fl_reply reply;
  hs_named_tensor outs[FL_MAX_TENSORS];
} lane;

struct fleet_worker {
  int id;
  int state;
  pid_t pid;
  unsigned long gen; /* bumps at every start */
  bool ever_up;
  int fails;          /* consecutive failed starts */
  int64_t next_try_ns;
  int64_t started_ns;
  char why[512];      /* why it is not UP */
  lane **lanes;
  cpu_set_t cpus;
  bool pin;
};

struct hs_fleet {
  hs_fleet_options opt;
  char exe[4096];
  const hs_repository *repo;
  hs_metrics *metrics;
  int *placement; /* worker of each model (by index) */
  fleet_worker *workers;
  lane *lanes; /* [workers * lanes]; lane i is on worker i % workers */
  int num_lanes;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t supervisor;
  bool supervisor_started, stopping;
  bool serving; /* hs_fleet_start returned: the repository is read by other threads */
  atomic_int_fast64_t *pids; /* for /metrics */
};

static void init_cond(pthread_cond_t *cv) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &a);
  pthread_condattr_destroy(&a);
}

static void wait_until(hs_fleet *f, int64_t until_ns) {
  struct timespec ts = {(time_t)(until_ns / 1000000000), (long)(until_ns % 1000000000)};
  pthread_cond_timedwait(&f->cv, &f->mu, &ts);
}

/* Groups go round-robin: a meta with its members (to the worker of a member
 * placed already, when two metas share one), then each model left alone. */
static void place(hs_fleet *f) {
  const hs_repository *r = f->repo;
  int next = 0;
  for (int i = 0; i < r->num_models; i++) f->placement[i] = -1;
  for (int i = 0; i < r->num_models; i++) {
    const hs_model *m = r->models[i];
    if (m->kind != HS_MODEL_META || !m->kind_known) continue;
    int w = -1;
    for (int g = 0; g < m->group_size && w < 0; g++) {
      const hs_model *member = m->group_names[g] ? hs_repository_find(r, m->group_names[g]) : NULL;
      if (member && f->placement[member->index] >= 0) w = f->placement[member->index];
    }
    if (w < 0) w = next++ % f->opt.workers;
    f->placement[i] = w;
    for (int g = 0; g < m->group_size; g++) {
      const hs_model *member = m->group_names[g] ? hs_repository_find(r, m->group_names[g]) : NULL;
      if (member && f->placement[member->index] < 0) f->placement[member->index] = w;
    }
  }
  for (int i = 0; i < r->num_models; i++)
    if (f->placement[i] < 0) f->placement[i] = next++ % f->opt.workers;
}

/* Cores: an equal share of this process's affinity per worker that has
 * models (one without any is idle and left unpinned), when there are at
 * least as many cores as such workers; else no pinning. */
static void assign_cpus(hs_fleet *f) {
  cpu_set_t all;
  int cpus[CPU_SETSIZE];
  int n = 0, busy = 0;
  if (sched_getaffinity(0, sizeof all, &all) != 0) return;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &all)) cpus[n++] = c;
  bool *has = calloc((size_t)f->opt.workers, sizeof *has);
  if (!has) return;
  for (int i = 0; i < f->repo->num_models; i++) has[f->placement[i]] = true;
  for (int k = 0; k < f->opt.workers; k++) busy += has[k];
  if (busy > 0 && n >= busy) {
    int share = 0;
    for (int k = 0; k < f->opt.workers; k++) {
      if (!has[k]) continue;
      fleet_worker *w = &f->workers[k];
      CPU_ZERO(&w->cpus);
      for (int j = share * n / busy; j < (share + 1) * n / busy; j++) CPU_SET(cpus[j], &w->cpus);
      w->pin = true;
      share++;
    }
  }
  free(has);
}

static void describe_status(int status, char *buf, size_t cap) {
  if (WIFSIGNALED(status))
    snprintf(buf, cap, "crashed (killed by signal %d, %s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  else if (WIFEXITED(status))
    snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
  else
    snprintf(buf, cap, "stopped (status %#x)", status);
}

static void close_channels(fleet_worker *w, int lanes) {
  for (int j = 0; j < lanes; j++) {
    lane *l = w->lanes[j];
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
    fl_map_unmap(&l->shm);
    if (l->shm.fd >= 0) close(l->shm.fd);
    l->shm.fd = -1;
  }
}

/* Marks a worker DOWN after its process is gone (reaped: status valid). */
static void mark_down_locked(hs_fleet *f, fleet_worker *w, const char *cause) {
  bool was_up = w->state == W_UP;
  snprintf(w->why, sizeof w->why, "worker %d (pid %d) %s%s%s", w->id, (int)w->pid, cause,
           was_up ? "" : " while loading its models",
           w->ever_up ? "; it is being restarted" : "");
  hs_log("fleet: %s", w->why);
  w->state = W_DOWN;
  if (was_up && f->metrics) atomic_fetch_sub(&f->metrics->fleet_workers_up, 1);
  if (!was_up) w->fails++;
  int64_t backoff = w->fails == 0 ? 0 : (int64_t)100000000 << (w->fails < 6 ? w->fails : 6);
  w->next_try_ns = hs_now_ns() + backoff;
  f->pids[w->id] = 0;
  pthread_cond_broadcast(&f->cv);
}

/* Kills a worker that failed while running generation `gen` (once).  `hint`
 * names the cause when we know it better than the exit status does. */
static void fail_worker(hs_fleet *f, fleet_worker *w, unsigned long gen, const char *hint,
                        char *why, size_t cap) {
  pthread_mutex_lock(&f->mu);
  if (w->gen == gen && w->state == W_UP) {
    kill(w->pid, SIGKILL);
    int status = 0;
    pid_t r;
    do r = waitpid(w->pid, &status, 0);
    while (r < 0 && errno == EINTR);
    char cause[256];
    if (hint)
      snprintf(cause, sizeof cause, "%s", hint);
    else
      describe_status(status, cause, sizeof cause);
    mark_down_locked(f, w, cause);
  }
  snprintf(why, cap, "%s", w->why);
  pthread_mutex_unlock(&f->mu);
}

static hs_status *spawn_locked(hs_fleet *f, fleet_worker *w) {
  const int L = f->opt.lanes;
  int child_fd[64];
  close_channels(w, L);
  for (int j = 0; j < L; j++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      for (int k = 0; k < j; k++) close(child_fd[k]);
      return hs_status_new(HS_INTERNAL, "socketpair: %s", strerror(errno));
    }
    w->lanes[j]->fd = sv[0];
    child_fd[j] = sv[1];
    w->lanes[j]->shm.fd = memfd_create("hloserve-fleet-lane", MFD_CLOEXEC);
    if (w->lanes[j]->shm.fd < 0) {
      for (int k = 0; k <= j; k++) close(child_fd[k]);
      return hs_status_new(HS_INTERNAL, "memfd_create: %s", strerror(errno));
    }
  }
  /* argv, built before fork (the child only calls async-signal-safe functions) */
  const hs_repository *r = f->repo;
  size_t max_args = 24 + 2 * (size_t)L + 2 * (size_t)r->num_models;
  char **argv = calloc(max_args, sizeof *argv);
  char nums[4][32];
  char(*lane_args)[32] = calloc(L > 0 && L <= 64 ? (size_t)L : 1, sizeof *lane_args);
  if (!argv || !lane_args) {
    free(argv);
    free(lane_args);
    for (int j = 0; j < L; j++) close(child_fd[j]);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  int a = 0;
  argv[a++] = f->exe;
  argv[a++] = "__fleet-worker";
  snprintf(nums[0], sizeof nums[0], "%d", w->id);
  snprintf(nums[1], sizeof nums[1], "%d", f->opt.intra_op_threads);
  snprintf(nums[2], sizeof nums[2], "%zu", f->opt.scratch_limit);
  argv[a++] = "--id";
  argv[a++] = nums[0];
  argv[a++] = "--repo";
  argv[a++] = (char *)f->opt.repo_dir;
  argv[a++] = "--intra-op-threads";
  argv[a++] = nums[1];
  argv[a++] = "--scratch-limit";
  argv[a++] = nums[2];
  if (f->opt.device) {
    argv[a++] = "--device";
    argv[a++] = (char *)f->opt.device;
  }
  if (f->opt.cc) {
    argv[a++] = "--cc";
    argv[a++] = (char *)f->opt.cc;
  }
  if (f->opt.include_dir) {
    argv[a++] = "--include-dir";
    argv[a++] = (char *)f->opt.include_dir;
  }
  if (f->opt.cache_dir) {
    argv[a++] = "--cache-dir";
    argv[a++] = (char *)f->opt.cache_dir;
  }
  for (int j = 0; j < L; j++) {
    snprintf(lane_args[j], sizeof lane_args[j], "%d:%d", child_fd[j], w->lanes[j]->shm.fd);
    argv[a++] = "--lane";
    argv[a++] = lane_args[j];
  }
  for (int i = 0; i < r->num_models; i++)
    if (f->placement[i] == w->id) {
      argv[a++] = "--model";
      argv[a++] = (char *)r->models[i]->name;
    }
  argv[a] = NULL;
  sigset_t none;
  sigemptyset(&none);
  pid_t pid = fork();
  if (pid == 0) {
    /* the child: async-signal-safe calls only */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int j = 0; j < L; j++) {
      fcntl(child_fd[j], F_SETFD, 0);
      fcntl(w->lanes[j]->shm.fd, F_SETFD, 0);
    }
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (w->pin) sched_setaffinity(0, sizeof w->cpus, &w->cpus);
    execv(f->exe, argv);
    _exit(127);
  }
  int err = errno;
  for (int j = 0; j < L; j++) close(child_fd[j]);
  free(argv);
  free(lane_args);
  if (pid < 0) return hs_status_new(HS_INTERNAL, "fork: %s", strerror(err));
  w->pid = pid;
  w->state = W_STARTING;
  w->started_ns = hs_now_ns();
  f->pids[w->id] = pid;
  return NULL;
}

/* Reads the ready message of a STARTING worker, when it came. */
static void check_ready_locked(hs_fleet *f, fleet_worker *w) {
  lane *l0 = w->lanes[0];
  union {
    fl_ready ready;
    fl_not_ready not_ready;
  } u;
  fl_ready msg;
  ssize_t n;
  for (;;) {
    struct pollfd p = {l0->fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return;
    memset(&u, 0, sizeof u);
    n = recv(l0->fd, &u, sizeof u, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n != (ssize_t)sizeof u.not_ready || u.not_ready.magic != FL_MAGIC_NOT_READY) break;
    /* A model that did not load in its worker: at the first start (the
     * front end is not serving yet, so nobody reads the model) it becomes
     * not ready with the worker's reason. */
    u.not_ready.model[sizeof u.not_ready.model - 1] = 0;
    u.not_ready.reason[sizeof u.not_ready.reason - 1] = 0;
    hs_model *m = hs_repository_find(f->repo, u.not_ready.model);
    if (m && m->ready && !f->serving) {
      const char *reason = hs_arena_strdup(&m->arena, u.not_ready.reason);
      m->ready = false;
      m->reason = reason ? reason : "did not load in its worker";
    }
  }
  memcpy(&msg, &u.ready, sizeof msg);
  if (n != (ssize_t)sizeof msg) n = -1;
  if (n == (ssize_t)sizeof msg && msg.magic == FL_MAGIC_READY && msg.ok) {
    w->state = W_UP;
    w->gen++;
    w->fails = 0;
    if (f->metrics) {
      atomic_fetch_add(&f->metrics->fleet_workers_up, 1);
      if (w->ever_up) atomic_fetch_add(&f->metrics->fleet_restarts, 1);
    }
    hs_log("fleet: worker %d (pid %d) %s in %.2f s", w->id, (int)w->pid,
           w->ever_up ? "restarted" : "ready", (double)(hs_now_ns() - w->started_ns) / 1e9);
    w->ever_up = true;
    pthread_cond_broadcast(&f->cv);
    return;
  }
  /* a failed load or a broken channel: the process goes */
  msg.message[sizeof msg.message - 1] = 0;
  char cause[1200];
  snprintf(cause, sizeof cause, "could not start: %s",
           n == (ssize_t)sizeof msg && msg.magic == FL_MAGIC_READY ? msg.message
                                                                  : "its channel closed");
  kill(w->pid, SIGKILL);
  int status;
  while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
  }
  mark_down_locked(f, w, cause);
}

static void *supervisor_main(void *arg) {
  hs_fleet *f = arg;
  pthread_mutex_lock(&f->mu);
  while (!f->stopping) {
    int64_t now = hs_now_ns();
    for (int k = 0; k < f->opt.workers; k++) {
      fleet_worker *w = &f->workers[k];
      if (w->state != W_DOWN) {
        int status = 0;
        pid_t r = waitpid(w->pid, &status, WNOHANG);
        if (r == w->pid) {
          char cause[256];
          describe_status(status, cause, sizeof cause);
          mark_down_locked(f, w, cause);
        } else if (w->state == W_STARTING) {
          check_ready_locked(f, w);
        }
      }
      if (w->state != W_DOWN || now < w->next_try_ns) continue;
      bool busy = false;
      for (int j = 0; j < f->opt.lanes; j++) busy = busy || w->lanes[j]->busy;
      if (busy) continue;
      hs_status *st = spawn_locked(f, w);
      if (st) {
        snprintf(w->why, sizeof w->why, "worker %d cannot be started: %s", w->id,
                 hs_status_message(st));
        hs_log("fleet: %s", w->why);
        hs_status_free(st);
        w->fails++;
        w->next_try_ns = now + 1000000000;
      }
    }
    wait_until(f, hs_now_ns() + 20000000);
  }
  pthread_mutex_unlock(&f->mu);
  return NULL;
}

int hs_fleet_num_lanes(const hs_fleet *f) { return f->num_lanes; }

bool hs_fleet_lane_serves(const hs_fleet *f, int i, const hs_model *m) {
  if (i < 0 || i >= f->num_lanes || m->index < 0 || m->index >= f->repo->num_models) return false;
  return f->placement[m->index] == f->lanes[i].w->id;
}

const char *hs_fleet_unavailable(hs_fleet *f, const hs_model *m, char *buf, size_t cap) {
  if (m->index < 0 || m->index >= f->repo->num_models) return NULL;
  fleet_worker *w = &f->workers[f->placement[m->index]];
  pthread_mutex_lock(&f->mu);
  const char *r = NULL;
  if (w->state != W_UP) {
    snprintf(buf, cap, "%s", w->why);
    r = buf;
  }
  pthread_mutex_unlock(&f->mu);
  return r;
}

static void count_channel(hs_fleet *f, size_t bytes) {
  if (f->metrics && bytes) atomic_fetch_add(&f->metrics->fleet_channel_tensor_bytes, bytes);
}

static hs_status *exchange(hs_fleet *f, lane *l, unsigned long gen, const hs_run *run,
                           const hs_named_tensor **outputs, int *num_outputs,
                           hs_run_timing *timing) {
  fleet_worker *w = l->w;
  const hs_model *m = run->model;
  if (m->num_inputs > FL_MAX_TENSORS || m->num_outputs > FL_MAX_TENSORS)
    return hs_status_new(HS_UNIMPLEMENTED, "%s: more than %d inputs or outputs (fleet mode)",
                         m->name, FL_MAX_TENSORS);
  if (!run->ordered) return hs_status_new(HS_INTERNAL, "%s: inputs not matched", m->name);
  /* inputs into the lane's memfd */
  uint64_t end = 0;
  for (int i = 0; i < m->num_inputs; i++) end = fl_align(end) + hs_tensor_nbytes(run->ordered[i]);
  HS_RETURN_IF_ERROR(fl_map_ensure(&l->shm, (size_t)fl_align(end), 1));
  fl_request *q = &l->req;
  q->magic = FL_MAGIC_REQUEST;
  q->num_inputs = m->num_inputs;
  q->deadline_ns = run->deadline_ns;
  snprintf(q->model, sizeof q->model, "%s", m->name);
  uint64_t off = 0, in_bytes = 0;
  for (int i = 0; i < m->num_inputs; i++) {
    const hs_tensor *t = run->ordered[i];
    size_t nb = hs_tensor_nbytes(t);
    off = fl_align(off);
    fl_tensor *d = &q->inputs[i];
    memset(d, 0, sizeof *d);
    d->dtype = (int32_t)t->dtype;
    d->index = i;
    d->rank = t->shape.rank;
    for (int k = 0; k < t->shape.rank; k++) d->dims[k] = t->shape.dims[k];
    d->offset = off;
    d->nbytes = nb;
    if (nb) memcpy(l->shm.data + off, t->data, nb);
    off += nb;
    in_bytes += nb;
  }
  q->inputs_end = fl_align(off);
  q->shm_size = l->shm.size;
  size_t qlen = offsetof(fl_request, inputs) + sizeof(fl_tensor) * (size_t)q->num_inputs;
  count_channel(f, fl_request_payload(qlen, q->num_inputs));
  char why[600];
  if (fl_send(l->fd, q, qlen) != 0) {
    fail_worker(f, w, gen, NULL, why, sizeof why);
    return hs_status_new(HS_UNAVAILABLE, "%s: %s", m->name, why);
  }
  if (f->metrics) atomic_fetch_add(&f->metrics->fleet_shm_tensor_bytes, in_bytes);
  /* wait for the answer, watching the worker and the deadline */
  const int64_t grace = (int64_t)f->opt.hang_grace_ms * 1000000;
  for (;;) {
    struct pollfd p = {l->fd, POLLIN, 0};
    int pr = poll(&p, 1, 50);
    if (pr > 0) break;
    pthread_mutex_lock(&f->mu);
    bool gone = w->gen != gen || w->state != W_UP || f->stopping;
    if (gone) snprintf(why, sizeof why, "%s", f->stopping ? "the server is shutting down" : w->why);
    pthread_mutex_unlock(&f->mu);
    if (gone) return hs_status_new(HS_UNAVAILABLE, "%s: %s", m->name, why);
    if (run->deadline_ns != INT64_MAX && hs_now_ns() > run->deadline_ns + grace) {
      char hint[200];
      snprintf(hint, sizeof hint, "hung: no answer from %s %d ms past the request's deadline, "
               "killed (SIGKILL)", m->name, f->opt.hang_grace_ms);
      fail_worker(f, w, gen, hint, why, sizeof why);
      return hs_status_new(HS_UNAVAILABLE, "%s: %s", m->name, why);
    }
  }
  fl_reply *a = &l->reply;
  ssize_t n;
  do n = recv(l->fd, a, sizeof *a, 0);
  while (n < 0 && errno == EINTR);
  if (n <= 0) {
    /* EOF: the process is going; let its status say why */
    fail_worker(f, w, gen, NULL, why, sizeof why);
    return hs_status_new(HS_UNAVAILABLE, "%s: %s", m->name, why);
  }
  size_t fixed = offsetof(fl_reply, outputs);
  if ((size_t)n < fixed || a->magic != FL_MAGIC_REPLY || a->num_outputs < 0 ||
      a->num_outputs > FL_MAX_TENSORS ||
      (size_t)n < fixed + sizeof(fl_tensor) * (size_t)a->num_outputs) {
    fail_worker(f, w, gen, "sent a malformed reply", why, sizeof why);
    return hs_status_new(HS_INTERNAL, "%s: %s", m->name, why);
  }
  count_channel(f, fl_reply_payload((size_t)n, a->num_outputs));
  *timing = a->timing;
  if (timing->num_stages < 0 || timing->num_stages > HS_MAX_TIMED_STAGES) timing->num_stages = 0;
  if (a->code != HS_OK) {
    a->message[sizeof a->message - 1] = 0;
    return hs_status_new((hs_status_code)a->code, "%s", a->message);
  }
  HS_RETURN_IF_ERROR(fl_map_ensure(&l->shm, (size_t)a->shm_size, 0));
  uint64_t out_bytes = 0;
  for (int k = 0; k < a->num_outputs; k++) {
    const fl_tensor *d = &a->outputs[k];
    hs_named_tensor *o = &l->outs[k];
    bool ok = d->index >= 0 && d->index < m->num_outputs && d->rank >= 0 &&
              d->rank <= HS_MAX_RANK && d->offset <= l->shm.size &&
              d->nbytes <= l->shm.size - d->offset && d->dtype == (int32_t)m->outputs[d->index].dtype;
    if (ok) {
      memset(o, 0, sizeof *o);
      o->name = m->outputs[d->index].name;
      o->tensor.dtype = (hs_dtype)d->dtype;
      o->tensor.shape.rank = d->rank;
      for (int r = 0; r < d->rank; r++) o->tensor.shape.dims[r] = d->dims[r];
      o->tensor.data = l->shm.data + d->offset;
      ok = hs_tensor_nbytes(&o->tensor) == d->nbytes;
    }
    if (!ok) {
      fail_worker(f, w, gen, "sent a malformed output descriptor", why, sizeof why);
      return hs_status_new(HS_INTERNAL, "%s: %s", m->name, why);
    }
    out_bytes += d->nbytes;
  }
  if (f->metrics) {
    atomic_fetch_add(&f->metrics->fleet_shm_tensor_bytes, out_bytes);
    /* a meta's stage and glue times, measured in the worker (one observation
     * per stage per run, its sub-calls' sum) */
    if (m->kind == HS_MODEL_META && timing->num_stages > 0) {
      hs_model_metrics *mm = &f->metrics->models[m->index];
      for (int g = 0; g < timing->num_stages && g < m->group_size && mm->stages; g++)
        hs_histogram_observe(&mm->stages[g], timing->stage_ns[g]);
      hs_histogram_observe(&mm->glue, timing->glue_ns);
    }
  }
  *outputs = l->outs;
  *num_outputs = a->num_outputs;
  return NULL;
}

hs_status *hs_fleet_run(hs_fleet *f, int i, const hs_run *run, const hs_named_tensor **outputs,
                        int *num_outputs, hs_run_timing *timing) {
  *outputs = NULL;
  *num_outputs = 0;
  memset(timing, 0, sizeof *timing);
  if (i < 0 || i >= f->num_lanes) return hs_status_new(HS_INTERNAL, "no fleet lane %d", i);
  lane *l = &f->lanes[i];
  fleet_worker *w = l->w;
  pthread_mutex_lock(&f->mu);
  if (w->state != W_UP || f->stopping) {
    hs_status *st = hs_status_new(HS_UNAVAILABLE, "model %s is not ready: %s", run->model->name,
                                  f->stopping ? "the server is shutting down" : w->why);
    pthread_mutex_unlock(&f->mu);
    return st;
  }
  l->busy = true;
  unsigned long gen = w->gen;
  pthread_mutex_unlock(&f->mu);
  /* busy until hs_fleet_release: the outputs live in the lane's mapping */
  return exchange(f, l, gen, run, outputs, num_outputs, timing);
}

void hs_fleet_release(hs_fleet *f, int i) {
  if (i < 0 || i >= f->num_lanes) return;
  pthread_mutex_lock(&f->mu);
  f->lanes[i].busy = false;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
}

static void kill_all_locked(hs_fleet *f) {
  for (int k = 0; k < f->opt.workers; k++) {
    fleet_worker *w = &f->workers[k];
    if (w->state == W_DOWN) continue;
    kill(w->pid, SIGKILL);
    int status;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (w->state == W_UP && f->metrics) atomic_fetch_sub(&f->metrics->fleet_workers_up, 1);
    w->state = W_DOWN;
    f->pids[k] = 0;
    snprintf(w->why, sizeof w->why, "worker %d is stopped (the server is shutting down)", w->id);
  }
}

void hs_fleet_stop(hs_fleet *f) {
  if (!f) return;
  pthread_mutex_lock(&f->mu);
  f->stopping = true;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
  if (f->supervisor_started) {
    pthread_join(f->supervisor, NULL);
    f->supervisor_started = false;
  }
  pthread_mutex_lock(&f->mu);
  kill_all_locked(f);
  pthread_mutex_unlock(&f->mu);
}

void hs_fleet_free(hs_fleet *f) {
  if (!f) return;
  hs_fleet_stop(f);
  for (int k = 0; f->workers && k < f->opt.workers; k++) {
    if (f->workers[k].lanes) close_channels(&f->workers[k], f->opt.lanes);
    free(f->workers[k].lanes);
  }
  if (f->metrics) {
    f->metrics->fleet_pids = NULL;
    f->metrics->fleet_placement = NULL;
  }
  free(f->workers);
  free(f->lanes);
  free(f->placement);
  free(f->pids);
  pthread_cond_destroy(&f->cv);
  pthread_mutex_destroy(&f->mu);
  free(f);
}

hs_status *hs_fleet_start(const hs_fleet_options *o, const hs_repository *repo,
                          hs_metrics *metrics, hs_fleet **out) {
  *out = NULL;
  if (o->workers < 1 || o->workers > 256 || o->lanes < 1 || o->lanes > 64)
    return hs_status_new(HS_INVALID_ARGUMENT, "fleet: workers must be 1..256 and lanes 1..64");
  hs_fleet *f = calloc(1, sizeof *f);
  if (!f) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  f->opt = *o;
  if (f->opt.hang_grace_ms <= 0) f->opt.hang_grace_ms = 2000;
  if (f->opt.start_timeout_s <= 0) f->opt.start_timeout_s = 600;
  f->repo = repo;
  f->metrics = metrics;
  pthread_mutex_init(&f->mu, NULL);
  init_cond(&f->cv);
  hs_status *st = NULL;
  const char *env_exe = getenv("HLOSERVE_WORKER_EXE"); /* e.g. when run under a debugger */
  if (o->exe && *o->exe) {
    snprintf(f->exe, sizeof f->exe, "%s", o->exe);
  } else if (env_exe && *env_exe) {
    snprintf(f->exe, sizeof f->exe, "%s", env_exe);
  } else {
    ssize_t n = readlink("/proc/self/exe", f->exe, sizeof f->exe - 1);
    if (n <= 0) st = hs_status_new(HS_INTERNAL, "fleet: cannot find this program: %s", strerror(errno));
    else f->exe[n] = 0;
  }
  f->num_lanes = o->workers * o->lanes;
  f->placement = calloc((size_t)repo->num_models + 1, sizeof *f->placement);
  f->workers = calloc((size_t)o->workers, sizeof *f->workers);
  f->lanes = calloc((size_t)f->num_lanes, sizeof *f->lanes);
  f->pids = calloc((size_t)o->workers, sizeof *f->pids);
  if (!st && (!f->placement || !f->workers || !f->lanes || !f->pids))
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  for (int k = 0; !st && k < o->workers; k++) {
    fleet_worker *w = &f->workers[k];
    w->id = k;
    snprintf(w->why, sizeof w->why, "worker %d is starting", k);
    if (!(w->lanes = calloc((size_t)o->lanes, sizeof *w->lanes)))
      st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  for (int i = 0; !st && i < f->num_lanes; i++) {
    lane *l = &f->lanes[i];
    l->index = i;
    l->w = &f->workers[i % o->workers];
    l->w->lanes[i / o->workers] = l;
    l->fd = -1;
    l->shm.fd = -1;
  }
  if (!st) {
    place(f);
    assign_cpus(f);
    if (metrics) {
      metrics->fleet_workers = o->workers;
      metrics->fleet_pids = f->pids;
      metrics->fleet_placement = f->placement;
    }
    for (int k = 0; k < o->workers; k++) {
      fleet_worker *w = &f->workers[k];
      char list[1024];
      size_t len = 0;
      list[0] = 0;
      for (int i = 0; i < repo->num_models && len + 4 < sizeof list; i++)
        if (f->placement[i] == k)
          len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "",
                                  repo->models[i]->name);
      char cpus[256] = "any";
      if (w->pin) {
        size_t c = 0;
        for (int x = 0; x < CPU_SETSIZE && c + 8 < sizeof cpus; x++)
          if (CPU_ISSET(x, &w->cpus)) c += (size_t)snprintf(cpus + c, sizeof cpus - c, "%s%d", c ? "," : "", x);
      }
      hs_log("fleet: worker %d (cpus %s): %s", k, cpus, len ? list : "(no models)");
    }
    int rc = pthread_create(&f->supervisor, NULL, supervisor_main, f);
    if (rc) st = hs_status_new(HS_INTERNAL, "fleet: cannot start the supervisor: %s", strerror(rc));
    else f->supervisor_started = true;
  }
  if (!st) {
    /* the first start: every worker up, or the first failure */
    int64_t until = hs_now_ns() + (int64_t)f->opt.start_timeout_s * 1000000000;
    pthread_mutex_lock(&f->mu);
    for (;;) {
      int up = 0;
      for (int k = 0; k < o->workers && !st; k++) {
        fleet_worker *w = &f->workers[k];
        up += w->state == W_UP;
        if (w->fails > 0) st = hs_status_new(HS_INTERNAL, "fleet: %s", w->why);
      }
      if (st || up == o->workers) break;
      if (hs_now_ns() > until) {
        st = hs_status_new(HS_DEADLINE_EXCEEDED, "fleet: the workers did not load their models "
                           "within %d s", f->opt.start_timeout_s);
        break;
      }
      wait_until(f, hs_now_ns() + 50000000);
    }
    f->serving = true;
    pthread_mutex_unlock(&f->mu);
  }
  if (st) {
    hs_fleet_free(f);
    return st;
  }
  *out = f;
  return NULL;
}
