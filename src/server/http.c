/*
 * http.c - see http.h.
 *
 * libmicrohttpd calls on_request several times per request: once with the
 * headers (we route and size-check there), once per chunk of body (we append
 * it, or count and drop it once the body is too large), and once at the end
 * (we answer).  Inference requests are parsed and checked on the event
 * thread, which is cheap next to a model run, and submitted to the
 * scheduler; the connection is then suspended until the job is answered, so
 * thousands of waiting clients cost no threads.
 *
 * The hand-over between the job's answer (any thread: a worker, the deadline
 * timer, shutdown) and the event thread is a small state machine under the
 * request's mutex: if the answer comes before we suspended, we simply do not
 * suspend; otherwise the answer resumes the connection and the next call of
 * on_request sends it.  libmicrohttpd forbids stopping the daemon while a
 * connection is suspended, so shutdown answers every job first.
 *
 * Bodies over --max-request-bytes: with "Expect: 100-continue" (curl's habit
 * for large uploads) we answer 413 before the body is sent; otherwise the
 * body is read and dropped and 413 answered after it, so the client reads
 * our answer instead of a reset connection, up to a hard cap past which we
 * answer and close at once.
 *
 * Limits (docs/server.md, "Limits").  A connection past --max-connections is
 * refused by the accept policy callback (closed before any byte is read);
 * the count comes from libmicrohttpd's connection notifications.  Header
 * blocks over --max-header-bytes get 431 and the connection is closed (blocks
 * too large for the connection's memory pool get libmicrohttpd's own 431).
 * libmicrohttpd's --connection-timeout restarts on every byte received, so
 * a client that trickles a request a byte at a time would hold its socket
 * forever (slowloris).  Every connection therefore records which phase it is
 * in and since when (idle, headers, body, waiting for its answer, sending
 * it); a reaper thread closes, with shutdown(2), connections that have spent
 * longer in a phase than its budget.  The fd stays valid while the reaper
 * looks at it: libmicrohttpd reports a connection closed (which unlinks it,
 * under the same mutex) before it closes the socket.  Waiting for a model is
 * not bounded here; the request's own deadline does that.
 *
 * Percent-escapes in the URL are decoded by our own unescaper, which keeps
 * "%00" as it is: a NUL byte would otherwise cut the path short, and the
 * model name "tiny%00/../x" must be rejected, not read as "tiny".
 */
#include "server/http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/job.h"
#include "server/kserve.h"
#include "server/util.h"

#define SERVER_NAME "hloserve"
#define SERVER_VERSION "0.1.0"

/* Where a connection is, for the reaper; each phase has its own time budget. */
typedef enum conn_phase {
  PH_IDLE = 0, /* waiting for the next request line */
  PH_HEADERS,  /* request line received, header block not complete */
  PH_BODY,     /* headers complete, receiving the body */
  PH_WAITING,  /* waiting for a worker's answer: not bounded here (deadlines are) */
  PH_SENDING,  /* answer queued, being sent */
  PH_COUNT
} conn_phase;

typedef struct conn_track {
  hs_http *h;
  struct conn_track *prev, *next;
  int fd;
  conn_phase phase;
  int64_t since_ns;
  bool dropped; /* the reaper shut it down; libmicrohttpd will close it */
} conn_track;

struct hs_http {
  struct MHD_Daemon *daemon;
  const hs_repository *repo;
  hs_scheduler *sched;
  hs_metrics *metrics;
  size_t max_request_bytes;
  size_t max_header_bytes;
  int max_connections;
  int port;
  atomic_bool draining;
  atomic_int active; /* requests between their first call and completion */
  /* connections and the reaper */
  pthread_mutex_t conn_mu;
  pthread_cond_t reaper_cv;
  conn_track *conns;
  atomic_int num_conns;
  int64_t budget_ns[PH_COUNT]; /* 0: unbounded */
  pthread_t reaper;
  bool reaper_started, reaper_stop;
  atomic_llong refuse_log_ns;
};

typedef enum route_kind {
  R_NONE = 0,
  R_SERVER_META,
  R_LIVE,
  R_READY,
  R_METRICS,
  R_INDEX,
  R_MODEL_META,
  R_MODEL_READY,
  R_INFER
} route_kind;

typedef struct request {
  hs_http *h;
  struct MHD_Connection *conn;
  route_kind route;
  bool infer_path;    /* .../infer: answers count in the request metrics */
  int early_status;   /* an answer decided from the headers (404, 405, 413...) */
  char *early_msg;
  const hs_model *model;
  int64_t arrival_ns;
  /* body */
  char *body;
  size_t len, cap;
  size_t received; /* all body bytes, kept or not */
  bool too_large;
  conn_track *track;
  /* the job's answer */
  pthread_mutex_t mu;
  hs_job *job;
  bool suspended, answered;
} request;

/* ---- connection phases ------------------------------------------------------- */

static conn_track *track_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

static void set_phase(conn_track *t, conn_phase phase) {
  if (!t) return;
  pthread_mutex_lock(&t->h->conn_mu);
  t->phase = phase;
  t->since_ns = hs_now_ns();
  pthread_mutex_unlock(&t->h->conn_mu);
}

/* ---- responses ------------------------------------------------------------ */

static enum MHD_Result send_bytes_ex(struct MHD_Connection *c, int status, char *body, size_t len,
                                     const char *content_type, size_t header_len, bool close_after) {
  set_phase(track_of(c), PH_SENDING);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE
                                                                        : MHD_RESPMEM_PERSISTENT);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", content_type);
  if (header_len) {
    char v[32];
    snprintf(v, sizeof v, "%zu", header_len);
    MHD_add_response_header(r, "Inference-Header-Content-Length", v);
  }
  if (close_after) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result send_bytes(struct MHD_Connection *c, int status, char *body, size_t len,
                                  const char *content_type, size_t header_len) {
  return send_bytes_ex(c, status, body, len, content_type, header_len, false);
}

/* Sends b (detached; freed on out-of-memory), then closes the connection when close_after. */
static enum MHD_Result send_buf_ex(struct MHD_Connection *c, int status, hs_buf *b,
                                   const char *content_type, bool close_after) {
  if (b->oom) {
    hs_buf_free(b);
    return send_bytes_ex(c, 500, strdup("{\"error\":\"out of memory\"}"), 25, "application/json", 0,
                         close_after);
  }
  size_t len;
  char *body = hs_buf_detach(b, &len);
  return send_bytes_ex(c, status, body, len, content_type, 0, close_after);
}

static enum MHD_Result send_buf(struct MHD_Connection *c, int status, hs_buf *b,
                                const char *content_type) {
  return send_buf_ex(c, status, b, content_type, false);
}

static enum MHD_Result send_error_ex(struct MHD_Connection *c, int status, const char *msg,
                                     bool close_after) {
  hs_buf b;
  hs_buf_init(&b);
  hs_kserve_encode_error(&b, msg);
  return send_buf_ex(c, status, &b, "application/json", close_after);
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *msg) {
  return send_error_ex(c, status, msg, false);
}

static enum MHD_Result send_errorf(struct MHD_Connection *c, int status, const char *fmt, ...)
    HS_PRINTF(3, 4);
static enum MHD_Result send_errorf(struct MHD_Connection *c, int status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return send_error_ex(c, status, msg, false);
}

/* An error after which the connection is closed: the rest of the request is not read. */
static enum MHD_Result send_error_close(struct MHD_Connection *c, int status, const char *fmt, ...)
    HS_PRINTF(3, 4);
static enum MHD_Result send_error_close(struct MHD_Connection *c, int status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return send_error_ex(c, status, msg, true);
}

/* Inference errors answered without a job still count in the request metrics. */
static void count(request *r, int status) {
  if (!r->infer_path) return;
  hs_metrics_count_request(r->h->metrics, r->model, status, hs_now_ns() - r->arrival_ns);
}

/* ---- routing -------------------------------------------------------------- */

static bool seg_eq(const char *s, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* n bytes of a client's string as it may appear in a message: printable ASCII, others '?',
 * at most 64 of them. */
static const char *shown(const char *s, size_t n, char *buf, size_t cap) {
  size_t k = 0;
  for (; k < n && k + 4 < cap && k < 64; k++) buf[k] = s[k] >= 0x20 && s[k] < 0x7f ? s[k] : '?';
  if (k < n) {
    memcpy(buf + k, "...", 3);
    k += 3;
  }
  buf[k] = 0;
  return buf;
}

static void set_early(request *r, int status, const char *fmt, ...) HS_PRINTF(3, 4);
static void set_early(request *r, int status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->early_status = status;
  free(r->early_msg);
  r->early_msg = strdup(msg);
}

/* Routes url + method; unknown paths, models and versions and wrong methods
 * become early answers. */
static void route(request *r, const char *url, const char *method) {
  size_t n = strlen(url);
  while (n > 1 && url[n - 1] == '/') n--; /* tolerate a trailing slash */
  r->infer_path = n >= 6 && memcmp(url + n - 6, "/infer", 6) == 0;
  bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  bool post = strcmp(method, "POST") == 0;
  route_kind want_get = R_NONE, want_post = R_NONE;
  if (seg_eq(url, n, "/v2")) {
    want_get = R_SERVER_META;
  } else if (seg_eq(url, n, "/v2/health/live")) {
    want_get = R_LIVE;
  } else if (seg_eq(url, n, "/v2/health/ready")) {
    want_get = R_READY;
  } else if (seg_eq(url, n, "/metrics")) {
    want_get = R_METRICS;
  } else if (seg_eq(url, n, "/v2/repository/index")) {
    want_get = want_post = R_INDEX;
  } else if (n > 11 && memcmp(url, "/v2/models/", 11) == 0) {
    const char *name = url + 11, *end = url + n;
    const char *slash = memchr(name, '/', (size_t)(end - name));
    size_t name_len = (size_t)((slash ? slash : end) - name);
    const char *rest = slash ? slash : end;
    char mname[HS_MODEL_NAME_MAX + 1];
    /* A model name is only ever looked up in the repository's table, never used as a path;
     * names that could not be one (with "..", NUL, '/' escaped as %2F...) are refused here. */
    const char *why = hs_model_name_problem(name, name_len);
    if (why) {
      char buf[80];
      set_early(r, 400, "'%s' is not a valid model name: %s", shown(name, name_len, buf, sizeof buf),
                why);
      return;
    }
    memcpy(mname, name, name_len);
    mname[name_len] = 0;
    /* optional /versions/<v> */
    if ((size_t)(end - rest) >= 10 && memcmp(rest, "/versions/", 10) == 0) {
      const char *v = rest + 10;
      const char *vs = memchr(v, '/', (size_t)(end - v));
      size_t vlen = (size_t)((vs ? vs : end) - v);
      const hs_model *m = hs_repository_find(r->h->repo, mname);
      if (!m || !m->addressable) {
        set_early(r, 404, "unknown model '%s'", mname);
        return;
      }
      if (!seg_eq(v, vlen, "1")) {
        set_early(r, 404, "model '%s' has no version '%.*s' (it has version 1)", mname,
                  (int)(vlen > 40 ? 40 : vlen), v);
        return;
      }
      rest = vs ? vs : end;
    }
    size_t rlen = (size_t)(end - rest);
    if (rlen == 0) {
      want_get = R_MODEL_META;
    } else if (seg_eq(rest, rlen, "/ready")) {
      want_get = R_MODEL_READY;
    } else if (seg_eq(rest, rlen, "/infer")) {
      want_post = R_INFER;
    } else {
      set_early(r, 404, "no route for %s %.200s", method, url);
      return;
    }
    const hs_model *m = hs_repository_find(r->h->repo, mname);
    if (!m || !m->addressable) {
      /* A stage answers exactly like a model that does not exist. */
      set_early(r, 404, "unknown model '%s'", mname);
      return;
    }
    r->model = m;
  }
  if (want_get == R_NONE && want_post == R_NONE) {
    set_early(r, 404, "no route for %s %.200s", method, url);
    return;
  }
  if (get && want_get != R_NONE) {
    r->route = want_get;
  } else if (post && want_post != R_NONE) {
    r->route = want_post;
  } else {
    set_early(r, 405, "%s is not allowed on %.200s (use %s)", method, url,
              want_post != R_NONE && want_get == R_NONE ? "POST" : "GET");
  }
}

/* ---- simple endpoints ----------------------------------------------------- */

static void put_specs(hs_buf *b, const hs_tensor_spec *s, int n) {
  hs_buf_putc(b, '[');
  for (int i = 0; i < n; i++) {
    if (i) hs_buf_putc(b, ',');
    hs_buf_puts(b, "{\"name\":");
    hs_buf_json_string(b, s[i].name, strlen(s[i].name));
    hs_buf_printf(b, ",\"datatype\":\"%s\",\"shape\":[", hs_dtype_kserve_name(s[i].dtype));
    for (int k = 0; k < s[i].shape.rank; k++)
      hs_buf_printf(b, "%s%lld", k ? "," : "", (long long)s[i].shape.dims[k]);
    hs_buf_puts(b, "]}");
  }
  hs_buf_putc(b, ']');
}

static enum MHD_Result answer_simple(request *r) {
  hs_http *h = r->h;
  struct MHD_Connection *c = r->conn;
  hs_buf b;
  hs_buf_init(&b);
  switch (r->route) {
    case R_LIVE:
      hs_buf_puts(&b, "{\"live\":true}");
      return send_buf(c, 200, &b, "application/json");
    case R_READY: {
      bool ready = !atomic_load(&h->draining);
      hs_buf_puts(&b, ready ? "{\"ready\":true}" : "{\"ready\":false}");
      return send_buf(c, ready ? 200 : 503, &b, "application/json");
    }
    case R_SERVER_META:
      hs_buf_puts(&b, "{\"name\":\"" SERVER_NAME "\",\"version\":\"" SERVER_VERSION
                      "\",\"extensions\":[\"binary_tensor_data\",\"model_repository\"]}");
      return send_buf(c, 200, &b, "application/json");
    case R_METRICS:
      hs_metrics_render(h->metrics, &b);
      return send_buf(c, 200, &b, "text/plain; version=0.0.4; charset=utf-8");
    case R_INDEX: {
      hs_buf_putc(&b, '[');
      bool first = true;
      for (int i = 0; i < h->repo->num_models; i++) {
        const hs_model *m = h->repo->models[i];
        if (!m->addressable) continue;
        if (!first) hs_buf_putc(&b, ',');
        first = false;
        hs_buf_puts(&b, "{\"name\":");
        hs_buf_json_string(&b, m->name, strlen(m->name));
        hs_buf_printf(&b, ",\"version\":\"1\",\"state\":\"%s\",\"reason\":",
                      m->ready ? "READY" : "UNAVAILABLE");
        const char *why = m->ready ? "" : m->reason;
        hs_buf_json_string(&b, why, strlen(why));
        hs_buf_putc(&b, '}');
      }
      hs_buf_putc(&b, ']');
      return send_buf(c, 200, &b, "application/json");
    }
    case R_MODEL_META: {
      const hs_model *m = r->model;
      hs_buf_puts(&b, "{\"name\":");
      hs_buf_json_string(&b, m->name, strlen(m->name));
      hs_buf_printf(&b, ",\"versions\":[\"1\"],\"platform\":\"%s\",\"inputs\":",
                    !m->kind_known ? "unknown"
                    : m->kind == HS_MODEL_META ? "hloserve_meta" : "hloserve_stablehlo");
      put_specs(&b, m->inputs, m->num_inputs);
      hs_buf_puts(&b, ",\"outputs\":");
      put_specs(&b, m->outputs, m->num_outputs);
      hs_buf_printf(&b, ",\"ready\":%s", m->ready ? "true" : "false");
      if (!m->ready) {
        hs_buf_puts(&b, ",\"reason\":");
        hs_buf_json_string(&b, m->reason, strlen(m->reason));
      }
      hs_buf_putc(&b, '}');
      return send_buf(c, 200, &b, "application/json");
    }
    case R_MODEL_READY: {
      const hs_model *m = r->model;
      char lost[600]; /* fleet mode: its worker is restarting */
      const char *away = m->ready ? hs_scheduler_unavailable(h->sched, m, lost, sizeof lost) : NULL;
      bool ready = m->ready && !atomic_load(&h->draining) && !away;
      hs_buf_puts(&b, "{\"name\":");
      hs_buf_json_string(&b, m->name, strlen(m->name));
      hs_buf_printf(&b, ",\"ready\":%s", ready ? "true" : "false");
      if (!ready) {
        const char *why = !m->ready ? m->reason : away ? away : "the server is shutting down";
        hs_buf_puts(&b, ",\"reason\":");
        hs_buf_json_string(&b, why, strlen(why));
      }
      hs_buf_putc(&b, '}');
      return send_buf(c, ready ? 200 : 503, &b, "application/json");
    }
    default:
      hs_buf_free(&b);
      return send_error(c, 500, "internal routing error");
  }
}

/* ---- inference -------------------------------------------------------------- */

static void on_job_answer(hs_job *job, void *cls) {
  request *r = cls;
  pthread_mutex_lock(&r->mu);
  r->answered = true;
  if (r->suspended) {
    r->suspended = false;
    MHD_resume_connection(r->conn);
  }
  pthread_mutex_unlock(&r->mu);
  (void)job;
}

static enum MHD_Result send_job_answer(request *r) {
  hs_job *job = r->job;
  char *body = job->resp.body;
  job->resp.body = NULL; /* MHD frees it */
  const char *ct = job->resp.header_len ? "application/octet-stream" : "application/json";
  return send_bytes(r->conn, job->resp.status, body, job->resp.len, ct, job->resp.header_len);
}

static enum MHD_Result start_infer(request *r) {
  hs_http *h = r->h;
  struct MHD_Connection *c = r->conn;
  const hs_model *m = r->model;
  if (atomic_load(&h->draining)) {
    count(r, 503);
    return send_error(c, 503, "the server is shutting down");
  }
  if (!m->ready) {
    count(r, 503);
    return send_errorf(c, 503, "model %s is not ready: %s", m->name, m->reason);
  }
  const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
  if (enc && strcasecmp(enc, "identity") != 0) {
    count(r, 400);
    return send_errorf(c, 400, "Content-Encoding '%.40s' is not supported (send the body "
                               "uncompressed)", enc);
  }
  int64_t header_len = -1;
  const char *hl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Inference-Header-Content-Length");
  hs_status *st = NULL;
  if (hl) st = hs_kserve_parse_header_length(hl, &header_len);
  hs_job *job = hs_job_new();
  if (!job) {
    hs_status_free(st);
    count(r, 500);
    return send_error(c, 500, "out of memory");
  }
  job->model = m;
  job->metrics = h->metrics;
  job->arrival_ns = r->arrival_ns;
  job->body = r->body; /* the job owns the body: binary inputs point into it */
  r->body = NULL;
  if (!st) st = hs_kserve_parse_request(job->body, r->len, header_len, &job->req);
  if (!st) {
    job->ordered = hs_arena_calloc(&job->req.arena, (size_t)m->num_inputs + 1, sizeof(hs_tensor *));
    if (!job->ordered) st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  if (!st)
    st = hs_model_match_inputs(m, job->req.inputs, job->req.num_inputs, job->ordered, &job->program);
  if (!st && job->req.outputs_given) {
    /* Unknown output names are the client's mistake: say so before running. */
    int n = m->num_outputs;
    int *order = malloc(sizeof(int) * (size_t)(n + 1));
    bool *binary = malloc(sizeof(bool) * (size_t)(n + 1));
    int sel;
    st = order && binary ? hs_kserve_select_outputs(&job->req, m->output_names, n, order, binary, &sel)
                         : hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    free(order);
    free(binary);
  }
  if (!st && job->req.timeout_us > 0) job->deadline_ns = r->arrival_ns + job->req.timeout_us * 1000;
  if (st) {
    int code = hs_http_status_for(hs_status_code_of(st));
    count(r, code);
    enum MHD_Result ret = send_error(c, code, hs_status_message(st));
    hs_status_free(st);
    hs_job_unref(job);
    return ret;
  }
  job->on_answer = on_job_answer;
  job->on_answer_cls = r;
  r->job = job;
  st = hs_scheduler_submit(h->sched, job);
  if (st) {
    /* Not queued: answer through the job so the metrics see it once. */
    hs_job_answer_error(job, hs_http_status_for(hs_status_code_of(st)), hs_status_message(st));
    hs_status_free(st);
    return send_job_answer(r);
  }
  pthread_mutex_lock(&r->mu);
  if (r->answered) {
    pthread_mutex_unlock(&r->mu);
    return send_job_answer(r);
  }
  set_phase(r->track, PH_WAITING);
  MHD_suspend_connection(c);
  r->suspended = true;
  pthread_mutex_unlock(&r->mu);
  return MHD_YES;
}

/* ---- the libmicrohttpd callbacks ---------------------------------------------- */

static enum MHD_Result add_field_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value) {
  size_t *n = cls;
  (void)kind;
  *n += strlen(key) + (value ? strlen(value) : 0) + 4; /* "key: value\r\n" */
  return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls) {
  hs_http *h = cls;
  request *r = *con_cls;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    r->h = h;
    r->conn = c;
    r->arrival_ns = hs_now_ns();
    pthread_mutex_init(&r->mu, NULL);
    *con_cls = r;
    atomic_fetch_add(&h->active, 1);
    atomic_fetch_add(&h->metrics->open_connections, 1);
    r->track = track_of(c);
    set_phase(r->track, PH_BODY);
    route(r, url, method);
    size_t head = strlen(method) + strlen(url) + strlen(version) + 4;
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_field_bytes, &head);
    if (head > h->max_header_bytes) {
      count(r, 431);
      return send_error_close(c, 431, "the request's header block (%zu bytes) exceeds the limit "
                              "of %zu bytes (--max-header-bytes)", head, h->max_header_bytes);
    }
    if (r->route == R_INFER && !r->early_status) {
      const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
      unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
      if (cl && n > h->max_request_bytes) {
        r->too_large = true;
        const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
        if (expect && strcasecmp(expect, "100-continue") == 0) {
          count(r, 413);
          return send_errorf(c, 413, "the request body (%llu bytes) exceeds the limit of %zu "
                                     "bytes (--max-request-bytes)", n, h->max_request_bytes);
        }
      } else if (cl && n > 0) {
        r->body = malloc((size_t)n + 1);
        r->cap = r->body ? (size_t)n + 1 : 0;
      }
    }
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    r->received += n;
    if (r->route != R_INFER || r->early_status) return MHD_YES; /* dropped */
    if (r->received > h->max_request_bytes) {
      if (!r->too_large) {
        r->too_large = true;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
      }
      /* Past the hard cap: answer now, libmicrohttpd closes the connection. */
      if (r->received > 4 * h->max_request_bytes + (64u << 20)) {
        count(r, 413);
        return send_errorf(c, 413, "the request body exceeds the limit of %zu bytes "
                                   "(--max-request-bytes)", h->max_request_bytes);
      }
      return MHD_YES;
    }
    if (r->len + n + 1 > r->cap) {
      size_t nc = r->cap ? r->cap : 65536;
      while (nc < r->len + n + 1) nc *= 2;
      char *p = realloc(r->body, nc);
      if (!p) {
        count(r, 500);
        return send_error(c, 500, "out of memory receiving the request");
      }
      r->body = p;
      r->cap = nc;
    }
    memcpy(r->body + r->len, upload_data, n);
    r->len += n;
    return MHD_YES;
  }
  /* The whole request is here (or we come back after a suspension). */
  if (r->job) return send_job_answer(r);
  if (r->early_status) {
    count(r, r->early_status);
    return send_error(c, r->early_status, r->early_msg ? r->early_msg : "error");
  }
  if (r->route != R_INFER) return answer_simple(r);
  if (r->too_large) {
    count(r, 413);
    return send_errorf(c, 413, "the request body (%zu bytes) exceeds the limit of %zu bytes "
                               "(--max-request-bytes)", r->received, h->max_request_bytes);
  }
  if (!r->body) {
    r->body = malloc(1);
    if (!r->body) return MHD_NO;
  }
  r->body[r->len] = 0;
  return start_infer(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  hs_http *h = cls;
  request *r = *con_cls;
  (void)toe;
  set_phase(track_of(c), PH_IDLE); /* the next request's line is due within the idle timeout */
  if (!r) return;
  *con_cls = NULL;
  if (r->job) {
    /* Answered (a connection is only completed once it was resumed). */
    hs_job_unref(r->job);
  }
  free(r->body);
  free(r->early_msg);
  /* The answering thread may still be inside on_job_answer (it resumes the
   * connection before it unlocks): wait for it to let go of the mutex. */
  pthread_mutex_lock(&r->mu);
  pthread_mutex_unlock(&r->mu);
  pthread_mutex_destroy(&r->mu);
  free(r);
  atomic_fetch_sub(&h->metrics->open_connections, 1);
  atomic_fetch_sub(&h->active, 1);
}

/* Past --max-connections a new connection is closed before anything is read from it. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
  hs_http *h = cls;
  (void)addr;
  (void)addrlen;
  int open = atomic_load(&h->num_conns);
  if (open < h->max_connections) return MHD_YES;
  atomic_fetch_add(&h->metrics->connections_refused, 1);
  long long now = hs_now_ns(), last = atomic_load(&h->refuse_log_ns);
  if (now - last >= 1000000000LL && atomic_compare_exchange_strong(&h->refuse_log_ns, &last, now))
    hs_log("refusing new connections: %d are open (--max-connections %d)", open,
           h->max_connections);
  return MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  hs_http *h = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    conn_track *t = calloc(1, sizeof *t);
    *socket_context = t;
    if (!t) return; /* out of memory: untracked, only the idle timeout applies */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    t->h = h;
    t->fd = ci ? (int)ci->connect_fd : -1;
    t->phase = PH_IDLE;
    t->since_ns = hs_now_ns();
    pthread_mutex_lock(&h->conn_mu);
    t->next = h->conns;
    if (h->conns) h->conns->prev = t;
    h->conns = t;
    pthread_mutex_unlock(&h->conn_mu);
    atomic_fetch_add(&h->num_conns, 1);
    atomic_fetch_add(&h->metrics->tcp_connections, 1);
    return;
  }
  conn_track *t = *socket_context;
  *socket_context = NULL;
  if (!t) return;
  /* Unlinked before libmicrohttpd closes the fd, so the reaper never shuts down a reused one. */
  pthread_mutex_lock(&h->conn_mu);
  if (t->prev)
    t->prev->next = t->next;
  else
    h->conns = t->next;
  if (t->next) t->next->prev = t->prev;
  pthread_mutex_unlock(&h->conn_mu);
  free(t);
  atomic_fetch_sub(&h->num_conns, 1);
  atomic_fetch_sub(&h->metrics->tcp_connections, 1);
}

/* Called once the request line is in (before the headers): the header clock starts. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c) {
  (void)cls;
  (void)uri;
  set_phase(track_of(c), PH_HEADERS);
  return NULL;
}

/* Percent-decoding of the path and query, except "%00", which stays as it is. */
static int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

static size_t on_unescape(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  char *w = s;
  for (const char *p = s; *p;) {
    if (p[0] == '%' && hex_digit(p[1]) >= 0 && hex_digit(p[2]) >= 0) {
      int v = hex_digit(p[1]) * 16 + hex_digit(p[2]);
      if (v != 0) {
        *w++ = (char)v;
        p += 3;
        continue;
      }
    }
    *w++ = *p++;
  }
  *w = 0;
  return (size_t)(w - s);
}

/* Closes connections that have been in one phase longer than its budget (see the top). */
static void *reaper_main(void *arg) {
  hs_http *h = arg;
  pthread_mutex_lock(&h->conn_mu);
  while (!h->reaper_stop) {
    int64_t now = hs_now_ns();
    int dropped[PH_COUNT] = {0};
    int slow = 0, abandoned = 0;
    for (conn_track *t = h->conns; t; t = t->next) {
      if (t->dropped || t->fd < 0) continue;
      /* A client that closed its side in the middle of its request's headers
       * or body: libmicrohttpd (0.9.75) often keeps waiting for the rest
       * until the phase's budget runs out; an end of stream with nothing
       * left to read means the request can never complete. */
      if (t->phase == PH_HEADERS || t->phase == PH_BODY) {
        char c;
        if (recv(t->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
          shutdown(t->fd, SHUT_RDWR);
          t->dropped = true;
          abandoned++;
          continue;
        }
      }
      int64_t budget = h->budget_ns[t->phase];
      if (budget <= 0 || now - t->since_ns < budget) continue;
      shutdown(t->fd, SHUT_RDWR); /* libmicrohttpd sees the end and closes it */
      t->dropped = true;
      dropped[t->phase]++;
      if (t->phase != PH_IDLE) slow++;
    }
    pthread_mutex_unlock(&h->conn_mu);
    for (int p = 0; p < PH_COUNT; p++)
      if (dropped[p]) atomic_fetch_add(&h->metrics->connections_timed_out[p], (uint64_t)dropped[p]);
    if (abandoned) atomic_fetch_add(&h->metrics->connections_abandoned, (uint64_t)abandoned);
    if (slow)
      hs_log("closed %d slow connection%s (in the headers: %d, body: %d, sending: %d; limits "
             "--header-timeout %lld s, --body-timeout %lld s)", slow, slow == 1 ? "" : "s",
             dropped[PH_HEADERS], dropped[PH_BODY], dropped[PH_SENDING],
             (long long)(h->budget_ns[PH_HEADERS] / 1000000000),
             (long long)(h->budget_ns[PH_BODY] / 1000000000));
    pthread_mutex_lock(&h->conn_mu);
    if (h->reaper_stop) break;
    int64_t wake = hs_now_ns() + 200 * 1000000LL;
    struct timespec ts = {(time_t)(wake / 1000000000), (long)(wake % 1000000000)};
    pthread_cond_timedwait(&h->reaper_cv, &h->conn_mu, &ts);
  }
  pthread_mutex_unlock(&h->conn_mu);
  return NULL;
}

/* Enough file descriptors for --max-connections: raise the soft limit toward the hard one. */
static void ensure_fd_limit(int max_connections) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t need = (rlim_t)max_connections + 256;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return;
  struct rlimit want = {rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max,
                        rl.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = want.rlim_cur;
  if (rl.rlim_cur < need)
    hs_log("warning: the file descriptor limit is %llu; --max-connections %d needs about %llu "
           "(raise `ulimit -n`), or connections past it fail to be accepted",
           (unsigned long long)rl.rlim_cur, max_connections, (unsigned long long)need);
}

static void on_log(void *cls, const char *fmt, va_list ap) HS_PRINTF(2, 0);
static void on_log(void *cls, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
  (void)cls;
  hs_log("http: %s", msg);
}

hs_status *hs_http_start(const hs_http_options *opt, const hs_repository *repo,
                         hs_scheduler *sched, hs_metrics *metrics, hs_http **out) {
  *out = NULL;
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  char port[16];
  snprintf(port, sizeof port, "%d", opt->port);
  const char *host = opt->host && *opt->host ? opt->host : "127.0.0.1";
  int rc = getaddrinfo(host, port, &hints, &ai);
  if (rc != 0 || !ai)
    return hs_status_new(HS_INVALID_ARGUMENT, "cannot resolve listen address %s: %s", host,
                         gai_strerror(rc));
  hs_http *h = calloc(1, sizeof *h);
  if (!h) {
    freeaddrinfo(ai);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  h->repo = repo;
  h->sched = sched;
  h->metrics = metrics;
  h->max_request_bytes = opt->max_request_bytes;
  h->max_header_bytes = opt->max_header_bytes > 0 ? opt->max_header_bytes : 16384;
  h->max_connections = opt->max_connections > 0 ? opt->max_connections : 1024;
  atomic_init(&h->draining, false);
  atomic_init(&h->active, 0);
  atomic_init(&h->num_conns, 0);
  atomic_init(&h->refuse_log_ns, 0);
  const int64_t s_ns = 1000000000;
  h->budget_ns[PH_IDLE] = (opt->connection_timeout_s > 0 ? opt->connection_timeout_s : 60) * s_ns;
  h->budget_ns[PH_HEADERS] = (opt->header_timeout_s > 0 ? opt->header_timeout_s : 10) * s_ns;
  h->budget_ns[PH_BODY] = (opt->body_timeout_s > 0 ? opt->body_timeout_s : 60) * s_ns;
  h->budget_ns[PH_WAITING] = 0;
  h->budget_ns[PH_SENDING] = h->budget_ns[PH_BODY];
  pthread_mutex_init(&h->conn_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->reaper_cv, &ca);
  pthread_condattr_destroy(&ca);
  ensure_fd_limit(h->max_connections);
  /* The connection's memory pool holds the header block: make room for the largest allowed
   * (past the pool, libmicrohttpd answers 431 itself). */
  size_t pool = 2 * h->max_header_bytes + 65536;
  if (pool < 256 * 1024) pool = 256 * 1024;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                   MHD_USE_ERROR_LOG;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  unsigned threads = opt->threads > 1 ? (unsigned)opt->threads : 0;
  struct MHD_OptionItem ops[] = {
      {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_log, NULL},
      {MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr},
      {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
      {MHD_OPTION_CONNECTION_TIMEOUT, opt->connection_timeout_s > 0 ? opt->connection_timeout_s : 60,
       NULL},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)pool, NULL},
      {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
      /* a backstop: on_accept refuses at max_connections already */
      {MHD_OPTION_CONNECTION_LIMIT, h->max_connections + 64, NULL},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT,
       opt->max_connections_per_ip > 0 ? opt->max_connections_per_ip : 0, NULL},
      {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
      {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_request_line, h},
      {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)on_unescape, h},
      {threads ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
      {MHD_OPTION_END, 0, NULL},
  };
  h->daemon = MHD_start_daemon(flags, (uint16_t)opt->port, on_accept, h, on_request, h,
                               MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!h->daemon) {
    pthread_cond_destroy(&h->reaper_cv);
    pthread_mutex_destroy(&h->conn_mu);
    free(h);
    return hs_status_new(HS_UNAVAILABLE, "cannot listen on %s:%d (in use, or not an address of "
                         "this machine)", host, opt->port);
  }
  int rc_thread = pthread_create(&h->reaper, NULL, reaper_main, h);
  if (rc_thread != 0) {
    hs_http_stop(h);
    return hs_status_new(HS_INTERNAL, "cannot start the connection reaper: %s", strerror(rc_thread));
  }
  h->reaper_started = true;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
  h->port = info ? info->port : opt->port;
  *out = h;
  return NULL;
}

int hs_http_port(const hs_http *h) { return h->port; }

void hs_http_quiesce(hs_http *h) {
  atomic_store(&h->draining, true);
  MHD_socket fd = MHD_quiesce_daemon(h->daemon);
  if (fd != MHD_INVALID_SOCKET) close(fd);
}

bool hs_http_wait_idle(hs_http *h, int64_t wait_ns) {
  int64_t until = hs_now_ns() + wait_ns;
  while (atomic_load(&h->active) > 0) {
    if (hs_now_ns() >= until) return false;
    usleep(2000);
  }
  return true;
}

void hs_http_stop(hs_http *h) {
  if (!h) return;
  if (h->reaper_started) {
    pthread_mutex_lock(&h->conn_mu);
    h->reaper_stop = true;
    pthread_cond_signal(&h->reaper_cv);
    pthread_mutex_unlock(&h->conn_mu);
    pthread_join(h->reaper, NULL);
  }
  /* Closing the connections calls on_connection, which still needs conn_mu. */
  if (h->daemon) MHD_stop_daemon(h->daemon);
  pthread_cond_destroy(&h->reaper_cv);
  pthread_mutex_destroy(&h->conn_mu);
  free(h);
}
