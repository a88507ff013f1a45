/*
 * server.h - hloserve's model server: a model repository served over KServe
 * v2 (HTTP/1.1, JSON and binary tensors).
 *
 *   hs_server_options o;
 *   hs_server_options_init(&o);
 *   o.model_repository = "models";
 *   hs_server *s;
 *   HS_RETURN_IF_ERROR(hs_server_create(&o, &s));   // loads every bundle
 *   HS_RETURN_IF_ERROR(hs_server_start(s));         // workers + HTTP
 *   ...                                             // until SIGTERM
 *   if (hs_server_shutdown(s, 10000)) hs_server_free(s);
 *
 * Design (docs/server.md has the whole picture):
 *  - The repository is loaded once; a broken bundle is logged and kept as a
 *    model that is not ready (its ready endpoint says why).  Members of a
 *    meta's placement group are internal: never listed, never reachable.
 *  - The HTTP front end (libmicrohttpd, event driven) parses and validates
 *    requests, then parks the connection (suspend) while the request waits
 *    in the scheduler's bounded queue and runs on a worker; a waiting client
 *    costs a socket and a small struct, not a thread.
 *  - Workers run dense programs and meta models; a meta's sub-calls run
 *    inline on its worker (the meta gate bounds concurrent metas).
 *  - Deadlines (the request parameter "timeout", in microseconds, as
 *    tritonclient sends it) are enforced by a timer across the whole run.
 *  - Limits protect the process from its clients: open connections, header
 *    and body bytes, time per phase of a request (slow clients are dropped),
 *    queue length (overall and per model).  It listens on 127.0.0.1 unless
 *    told otherwise; model names are never used as paths.
 *
 * Threads: the functions below are called from one controlling thread,
 * except hs_server_infer_local (see there).
 */
#ifndef HLOSERVE_SERVER_H
#define HLOSERVE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "hloserve/meta.h"
#include "hloserve/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_server hs_server;

typedef struct hs_server_options {
  const char *model_repository; /* required */
  const char *host;             /* address to listen on; default "127.0.0.1" */
  int http_port;                /* default 8000; 0 picks a free port (hs_server_port) */
  int threads;                  /* worker threads; 0: the number of CPUs */
  int intra_op_threads;         /* threads inside one program run; 0: 1 */
  int max_queue;                /* requests waiting for a worker; 0: 64 */
  int meta_slots;               /* concurrent meta runs; 0: threads */
  size_t max_request_bytes;     /* larger bodies get 413; 0: 64 MiB */
  size_t scratch_limit_bytes;   /* per worker scratch pool; 0: 4 GiB */
  int http_threads;             /* HTTP event loop threads; 0: 1 */
  int connection_timeout_s;     /* idle keep-alive connections close after; 0: 60 */
  int max_connections;          /* open TCP connections; more are refused; 0: 1024 */
  int max_connections_per_ip;   /* per client address; 0: no limit */
  size_t max_header_bytes;      /* request line + headers; more get 431; 0: 16 KiB */
  int header_timeout_s;         /* request line to end of headers; 0: 10 */
  int body_timeout_s;           /* receiving a body, sending an answer; 0: 60 */
  int max_queue_per_model;      /* requests of one model waiting; 0: only max_queue bounds */
  const char *cc;               /* C compiler for meta bundles; NULL: $CC or cc */
  const char *include_dir;      /* hloserve headers for model.c; NULL: built in */
  const char *cache_dir;        /* compiled meta bundles; NULL: REPO/.hloserve-cache */
  int workers;                  /* fleet mode: models run in this many worker processes
                                   (threads split between them); 0: in this process */
  int worker_hang_grace_ms;     /* fleet: kill a worker this long past a request's deadline; 0: 2000 */
  const char *worker_exe;       /* fleet: the hloserve binary to start; NULL: this program */
  const char *device;           /* dense programs run here: NULL/"cpu" or "cuda:N" */
} hs_server_options;

void hs_server_options_init(hs_server_options *o);

/* Loads the model repository (errors: the folder cannot be read, bad options). */
hs_status *hs_server_create(const hs_server_options *o, hs_server **out);
/* Starts the workers and the HTTP listener. */
hs_status *hs_server_start(hs_server *s);
/* The port listened on (after hs_server_start). */
int hs_server_port(const hs_server *s);

/* Models: how many there are (addressable ones only), and each one's name,
 * readiness and, when not ready, the reason. */
int hs_server_num_models(const hs_server *s);
const char *hs_server_model_name(const hs_server *s, int i, bool *ready, const char **reason);

/* Graceful shutdown: stops accepting connections, lets queued and running
 * requests finish for up to grace_ms, answers what is left with 503, closes
 * the listener.  Returns true when every worker is idle, after which
 * hs_server_free is safe; false when a run is still stuck on a worker (free
 * would have to wait for it: exit the process instead). */
bool hs_server_shutdown(hs_server *s, int grace_ms);
void hs_server_free(hs_server *s);

/* Runs an addressable model in process, on the calling thread, without HTTP
 * or the queue (tools and benchmarks: the same run a worker does).  One
 * caller at a time (it has one worker of its own, separate from the HTTP
 * workers).  timeout_us 0: none.  *outputs stay valid until
 * hs_server_release_local.  The server need not be started. */
hs_status *hs_server_infer_local(hs_server *s, const char *model, const hs_named_tensor *inputs,
                                 int num_inputs, long long timeout_us,
                                 const hs_named_tensor **outputs, int *num_outputs);
void hs_server_release_local(hs_server *s);

#ifdef __cplusplus
}
#endif
#endif /* HLOSERVE_SERVER_H */
