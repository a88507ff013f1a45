/*
 * http.c - the client's HTTP transport: KServe v2 calls over libcurl.
 *
 * Design:
 *  - One curl easy handle per hs_client, reused for every call, so a run over
 *    many images keeps one keep-alive connection (and one TCP handshake).
 *  - Each call resets only the options it depends on: method, URL, headers,
 *    body; sinks and limits are set once.
 *  - Failures are told apart for the user: the server cannot be reached (a
 *    wrong --url, a server not started), it did not answer in time, or it
 *    answered an HTTP error, whose {"error": "..."} message is quoted.
 *  - The answer is bounded (MAX_ANSWER_BYTES) so a broken server cannot make
 *    the client allocate without limit; the Inference-Header-Content-Length
 *    header is read from the last response's headers only (a 100 Continue or
 *    a redirect starts a new set).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "client/client_internal.h"
#include "hloserve/client.h"

#define MAX_ANSWER_BYTES ((size_t)1 << 30)
#define CONNECT_TIMEOUT_MS 10000L

struct hs_client {
  CURL *curl;
  char *base; /* scheme://host:port, no trailing slash */
  double timeout_s;
  char errbuf[CURL_ERROR_SIZE];
};

typedef struct answer {
  long status;
  hs_cbuf body;
  int64_t header_len; /* Inference-Header-Content-Length, -1 when absent */
} answer;

static size_t on_body(char *p, size_t size, size_t nmemb, void *user) {
  answer *a = user;
  size_t n = size * nmemb;
  return hs_cbuf_append(&a->body, p, n) ? n : 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *user) {
  answer *a = user;
  size_t n = size * nmemb;
  static const char key[] = "inference-header-content-length:";
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    a->header_len = -1; /* a new response (after 100 Continue or a redirect) */
  } else if (n > sizeof key - 1 && strncasecmp(p, key, sizeof key - 1) == 0) {
    size_t i = sizeof key - 1;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    int64_t v = 0;
    bool digits = false, ok = true;
    for (; i < n && isdigit((unsigned char)p[i]); i++) {
      digits = true;
      if (v > (INT64_MAX - 9) / 10) ok = false;
      else v = v * 10 + (p[i] - '0');
    }
    while (i < n && isspace((unsigned char)p[i])) i++;
    /* A malformed value is kept as "huge": the parser then calls the answer
     * truncated instead of reading the JSON header wrongly. */
    a->header_len = (digits && ok && i == n) ? v : INT64_MAX;
  }
  return n;
}

hs_status *hs_client_create(const char *base_url, double timeout_s, hs_client **out) {
  *out = NULL;
  if (!base_url || !*base_url) return hs_status_new(HS_INVALID_ARGUMENT, "the server URL is empty");
  if (!(timeout_s >= 0))
    return hs_status_new(HS_INVALID_ARGUMENT, "timeout %g is not a number of seconds", timeout_s);
  hs_client *c = calloc(1, sizeof *c);
  if (!c) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  bool has_scheme = strstr(base_url, "://") != NULL;
  size_t n = strlen(base_url);
  while (n > 0 && base_url[n - 1] == '/') n--;
  c->base = malloc(n + 8);
  if (!c->base) {
    free(c);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  snprintf(c->base, n + 8, "%s%.*s", has_scheme ? "" : "http://", (int)n, base_url);
  if (strncasecmp(c->base, "http://", 7) != 0 && strncasecmp(c->base, "https://", 8) != 0) {
    hs_status *st = hs_status_new(HS_INVALID_ARGUMENT,
                                  "server URL '%s' is not http:// or https://", base_url);
    free(c->base);
    free(c);
    return st;
  }
  c->timeout_s = timeout_s;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    free(c->base);
    free(c);
    return hs_status_new(HS_INTERNAL, "libcurl failed to initialise");
  }
  c->curl = curl_easy_init();
  if (!c->curl) {
    curl_global_cleanup();
    free(c->base);
    free(c);
    return hs_status_new(HS_INTERNAL, "libcurl failed to initialise");
  }
  curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
  curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
  /* 0 is "forever" to curl: a tiny timeout rounds up to 1 ms, and beyond ~3
   * weeks is forever, which also keeps the count in a long */
  double ms = ceil(timeout_s * 1000.0);
  curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, ms < 2e9 ? (long)ms : 0L);
  curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  *out = c;
  return NULL;
}

void hs_client_free(hs_client *c) {
  if (!c) return;
  curl_easy_cleanup(c->curl);
  curl_global_cleanup();
  free(c->base);
  free(c);
}

/* Performs one call.  body == NULL: GET.  header_len > 0 adds the
 * Inference-Header-Content-Length header.  Transport failures become errors;
 * an HTTP error status does not (the caller reads a->status). */
static hs_status *call(hs_client *c, const char *method, const char *url, const void *body,
                       size_t n, size_t header_len, const char *content_type, answer *a) {
  memset(a, 0, sizeof *a);
  a->header_len = -1;
  a->body.limit = MAX_ANSWER_BYTES;
  struct curl_slist *hdrs = NULL, *h;
  char line[96];
  hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
  if (hdrs && content_type) {
    snprintf(line, sizeof line, "Content-Type: %s", content_type);
    hdrs = (h = curl_slist_append(hdrs, line)) ? h : (curl_slist_free_all(hdrs), NULL);
  }
  if (hdrs && header_len > 0) {
    snprintf(line, sizeof line, "Inference-Header-Content-Length: %zu", header_len);
    hdrs = (h = curl_slist_append(hdrs, line)) ? h : (curl_slist_free_all(hdrs), NULL);
  }
  if (!hdrs) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  c->errbuf[0] = 0;
  curl_easy_setopt(c->curl, CURLOPT_URL, url);
  curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, a);
  if (body) {
    curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
  } else {
    curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
  }
  CURLcode rc = curl_easy_perform(c->curl);
  curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
  curl_slist_free_all(hdrs);
  const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
  hs_status *st = NULL;
  switch (rc) {
    case CURLE_OK: break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      st = hs_status_new(HS_UNAVAILABLE, "cannot reach the server at %s (%s): is it running, "
                         "and is --url right?", c->base, detail);
      break;
    case CURLE_OPERATION_TIMEDOUT:
      st = hs_status_new(HS_DEADLINE_EXCEEDED, "%s %s: no answer within the time limit (%s)",
                         method, url, detail);
      break;
    case CURLE_WRITE_ERROR:
      if (a->body.over) {
        st = hs_status_new(HS_RESOURCE_EXHAUSTED, "%s %s: the answer is larger than %zu bytes",
                           method, url, MAX_ANSWER_BYTES);
        break;
      }
      if (a->body.oom) {
        st = hs_status_new(HS_OUT_OF_MEMORY, "%s %s: out of memory reading the answer", method,
                           url);
        break;
      }
      /* fall through */
    default:
      st = hs_status_new(HS_IO_ERROR, "%s %s failed: %s", method, url, detail);
  }
  if (st) {
    hs_cbuf_free(&a->body);
    return st;
  }
  curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &a->status);
  return NULL;
}

/* The error for a non-200 answer, quoting the server's message. */
static hs_status *http_error(const char *method, const char *url, const answer *a) {
  char *msg = hs_kserve_error_text(a->body.data, a->body.len);
  hs_status_code code = a->status == 404   ? HS_NOT_FOUND
                        : a->status == 400 ? HS_INVALID_ARGUMENT
                        : a->status == 503 ? HS_UNAVAILABLE
                        : a->status == 504 ? HS_DEADLINE_EXCEEDED
                        : a->status == 413 ? HS_RESOURCE_EXHAUSTED
                                           : HS_FAILED_PRECONDITION;
  hs_status *st = hs_status_new(code, "the server answered HTTP %ld to %s %s: %s", a->status,
                                method, url, msg ? msg : "(out of memory)");
  free(msg);
  return st;
}

/* base + "/v2/models/" + escaped model + suffix; malloc'd. */
static char *model_url(hs_client *c, const char *model, const char *suffix) {
  char *esc = curl_easy_escape(c->curl, model, 0);
  if (!esc) return NULL;
  size_t n = strlen(c->base) + strlen(esc) + strlen(suffix) + 16;
  char *url = malloc(n);
  if (url) snprintf(url, n, "%s/v2/models/%s%s", c->base, esc, suffix);
  curl_free(esc);
  return url;
}

hs_status *hs_client_default_model(hs_client *c, char **model) {
  *model = NULL;
  size_t n = strlen(c->base) + 32;
  char *url = malloc(n);
  if (!url) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  snprintf(url, n, "%s/v2/repository/index", c->base);
  answer a;
  static const char req[] = "{\"ready\":true}";
  hs_status *st = call(c, "POST", url, req, sizeof req - 1, 0, "application/json", &a);
  if (st) {
    free(url);
    return st;
  }
  if (a.status != 200) {
    st = hs_status_annotate(http_error("POST", url, &a),
                            "the server does not list its models; name one with --model");
    hs_cbuf_free(&a.body);
    free(url);
    return st;
  }
  free(url);
  json_t *root = json_loadb((const char *)a.body.data, a.body.len, 0, NULL);
  hs_cbuf_free(&a.body);
  if (!json_is_array(root)) {
    json_decref(root);
    return hs_status_new(HS_INVALID_ARGUMENT, "the server's model index is not a JSON array; "
                         "name the model with --model");
  }
  /* Ready models only (a server that omits "state" lists only ready ones). */
  char names[512] = "";
  size_t pos = 0, i;
  int ready = 0;
  const char *pick = NULL;
  json_t *m;
  json_array_foreach(root, i, m) {
    const char *nm = json_string_value(json_object_get(m, "name"));
    const char *state = json_string_value(json_object_get(m, "state"));
    if (!nm || (state && strcmp(state, "READY") != 0)) continue;
    ready++;
    pick = nm;
    if (pos < sizeof names)
      pos += (size_t)snprintf(names + pos, sizeof names - pos, "%s%s", ready > 1 ? ", " : "", nm);
  }
  if (ready != 1) {
    st = ready == 0 ? hs_status_new(HS_NOT_FOUND, "the server has no ready model")
                    : hs_status_new(HS_INVALID_ARGUMENT,
                                    "the server serves %d models (%s): name one with --model",
                                    ready, names);
    json_decref(root);
    return st;
  }
  *model = strdup(pick);
  json_decref(root);
  return *model ? NULL : hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
}

hs_status *hs_client_model_info(hs_client *c, const char *model, hs_model_info *out) {
  memset(out, 0, sizeof *out);
  char *url = model_url(c, model, "");
  if (!url) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  answer a;
  hs_status *st = call(c, "GET", url, NULL, 0, 0, NULL, &a);
  if (!st) {
    if (a.status != 200)
      st = http_error("GET", url, &a);
    else
      st = hs_kserve_parse_metadata((const char *)a.body.data, a.body.len, model, out);
    hs_cbuf_free(&a.body);
  }
  free(url);
  return st;
}

hs_status *hs_client_detect(hs_client *c, const hs_model_info *info, const hs_image *img,
                            hs_detections *out, char **parameters) {
  memset(out, 0, sizeof *out);
  if (parameters) *parameters = NULL;
  hs_kserve_body body;
  HS_RETURN_IF_ERROR(hs_kserve_build_infer(info, img, &body));
  char *url = model_url(c, info->name, "/infer");
  if (!url) {
    hs_kserve_body_free(&body);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  answer a;
  hs_status *st = call(c, "POST", url, body.data, body.size, body.header_len,
                       "application/octet-stream", &a);
  hs_kserve_body_free(&body);
  if (!st) {
    if (a.status != 200)
      st = http_error("POST", url, &a);
    else
      st = hs_status_annotate(hs_kserve_parse_infer(a.body.data, a.body.len, a.header_len,
                                                    info->output_name, out, parameters),
                              "model '%s'", info->name);
    hs_cbuf_free(&a.body);
  }
  free(url);
  return st;
}
