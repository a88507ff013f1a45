/*
 * http.h - the KServe v2 HTTP front end (libmicrohttpd).
 *
 * It owns the listening socket and the connections; it parses and checks
 * requests, hands inference jobs to the scheduler and sends the answers.
 * Everything else (models, queue, workers, metrics) it only references.
 *
 * It also protects the process from its clients: a bound on open
 * connections (and per address), on header bytes and body bytes, and on the
 * time each phase of a request may take, so that slow or idle clients cannot
 * hold sockets and memory for long (docs/server.md, "Limits").
 */
#ifndef HLOSERVE_SERVER_HTTP_H
#define HLOSERVE_SERVER_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/metrics.h"
#include "server/repository.h"
#include "server/scheduler.h"

typedef struct hs_http_options {
  const char *host;
  int port;
  int threads;
  int connection_timeout_s;  /* idle connections, and the request line of the next request */
  size_t max_request_bytes;
  int max_connections;       /* open TCP connections; more are closed at once (> 0) */
  int max_connections_per_ip; /* 0: no per-address limit */
  size_t max_header_bytes;   /* request line + header fields; more: 431 and close (> 0) */
  int header_timeout_s;      /* request line to the end of the headers (> 0) */
  int body_timeout_s;        /* receiving a request body; sending an answer (> 0) */
} hs_http_options;

typedef struct hs_http hs_http;

hs_status *hs_http_start(const hs_http_options *opt, const hs_repository *repo,
                         hs_scheduler *sched, hs_metrics *metrics, hs_http **out);
int hs_http_port(const hs_http *h);
/* Stops accepting connections and answers new requests on open ones with
 * 503 (server ready turns false). */
void hs_http_quiesce(hs_http *h);
/* Waits up to wait_ns until no request is being received or answered. */
bool hs_http_wait_idle(hs_http *h, int64_t wait_ns);
/* Closes every connection and frees the front end.  Every job must have
 * been answered (so that no connection is still suspended). */
void hs_http_stop(hs_http *h);

#endif
