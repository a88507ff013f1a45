/*
 * kserve.c - KServe v2 messages for the detection client: the model's
 * metadata, the infer request with a binary input, and the infer answer.
 *
 * Design:
 *  - Pure functions over byte buffers: no sockets here, so the unit tests can
 *    hand the parser every truncated and malformed answer they can think of.
 *  - The request always uses the binary-data extension for the image (a
 *    640x480 image is 0.9 MB as bytes and ~3 MB as JSON numbers) and asks for
 *    the detections in binary too, but the answer is read in whatever form
 *    the server chose: servers may ignore the binary_data hint, send nested
 *    JSON arrays, other real dtypes, or other outputs before ours (whose
 *    binary blobs then come first in the tail).
 *  - Every length the server states is checked against the bytes actually
 *    there before anything is read, and element counts are computed with
 *    overflow checks: a hostile or broken server gets an error, not a crash.
 *  - Numbers are converted to float32 rows, the layout the drawing and the
 *    printing code share.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client/client_internal.h"
#include "hloserve/client.h"

/* Bounds a detector's answer: far more rows than any detector returns. */
#define MAX_OUTPUT_ELEMENTS ((int64_t)1 << 28)

void hs_detections_free(hs_detections *d) {
  if (!d) return;
  free(d->rows);
  memset(d, 0, sizeof *d);
}

int hs_detection_class(const hs_detections *d, int64_t i) {
  if (d->cols < 6 || i < 0 || i >= d->count) return -1;
  float v = d->rows[i * d->cols + 5];
  if (!(v >= 0.0f) || v > 2147483520.0f || v != floorf(v)) return -1;
  return (int)v;
}

void hs_model_info_free(hs_model_info *m) {
  if (!m) return;
  free(m->name);
  free(m->input_name);
  free(m->output_name);
  memset(m, 0, sizeof *m);
}

void hs_kserve_body_free(hs_kserve_body *b) {
  if (!b) return;
  free(b->data);
  memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- errors -- */

char *hs_kserve_error_text(const void *body, size_t n) {
  if (n == 0) return strdup("(the answer has no body)");
  json_t *root = json_loadb(body, n, 0, NULL);
  if (root) {
    json_t *e = json_is_object(root) ? json_object_get(root, "error") : NULL;
    char *msg = NULL;
    if (json_is_string(e))
      msg = strdup(json_string_value(e));
    else if (e)
      msg = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(root);
    if (msg) return msg;
  }
  /* Not an error object: a printable excerpt (an HTML error page, a proxy). */
  size_t k = n < 200 ? n : 200;
  char *s = malloc(k + 4);
  if (!s) return NULL;
  const uint8_t *p = body;
  for (size_t i = 0; i < k; i++) s[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : ' ';
  strcpy(s + k, n > k ? "..." : "");
  return s;
}

/* An error answer that came with a success status, or a non-object. */
static hs_status *answer_error(json_t *root, const char *what) {
  if (!json_is_object(root))
    return hs_status_new(HS_INVALID_ARGUMENT, "the server's %s is not a JSON object", what);
  json_t *e = json_object_get(root, "error");
  if (e) {
    if (json_is_string(e))
      return hs_status_new(HS_FAILED_PRECONDITION, "the server answered an error: %s",
                           json_string_value(e));
    return hs_status_new(HS_FAILED_PRECONDITION, "the server answered an error");
  }
  return NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* -------------------------------------------------------------- metadata -- */

hs_status *hs_kserve_parse_metadata(const char *text, size_t n, const char *model,
                                    hs_model_info *out) {
  memset(out, 0, sizeof *out);
  json_error_t jerr;
  json_t *root = json_loadb(text, n, 0, &jerr);
  if (!root)
    return hs_status_new(HS_INVALID_ARGUMENT,
                         "model '%s': the metadata is not JSON (%s at line %d, column %d)", model,
                         jerr.text, jerr.line, jerr.column);
  hs_status *st = answer_error(root, "metadata");
  if (st) {
    json_decref(root);
    return hs_status_annotate(st, "model '%s'", model);
  }
  json_t *inputs = json_object_get(root, "inputs");
  json_t *in0 = json_is_array(inputs) ? json_array_get(inputs, 0) : NULL;
  const char *in_name = json_string_value(json_object_get(in0, "name"));
  const char *in_type = json_string_value(json_object_get(in0, "datatype"));
  if (!in_name || !in_type) {
    json_decref(root);
    return hs_status_new(HS_INVALID_ARGUMENT,
                         "model '%s': the metadata lists no input with a name and a datatype",
                         model);
  }
  hs_dtype dt = hs_dtype_from_kserve_name(in_type);
  if (dt != HS_U8 && dt != HS_F32) {
    hs_status *e = hs_status_new(HS_UNIMPLEMENTED,
                                 "model '%s': input '%s' is %s; the client sends images as UINT8 "
                                 "or FP32 only", model, in_name, in_type);
    json_decref(root);
    return e;
  }
  /* The detector's output is OUTPUT__0 by convention; a model that names it
   * otherwise is asked for its first output. */
  const char *out_name = NULL;
  json_t *outputs = json_object_get(root, "outputs");
  size_t i;
  json_t *o;
  if (json_is_array(outputs)) {
    json_array_foreach(outputs, i, o) {
      const char *nm = json_string_value(json_object_get(o, "name"));
      if (nm && strcmp(nm, "OUTPUT__0") == 0) out_name = nm;
    }
    if (!out_name) out_name = json_string_value(json_object_get(json_array_get(outputs, 0), "name"));
  }
  if (!out_name) out_name = "OUTPUT__0";
  out->name = strdup(model);
  out->input_name = dup_or_null(in_name);
  out->output_name = dup_or_null(out_name);
  out->input_dtype = dt;
  json_decref(root);
  if (!out->name || !out->input_name || !out->output_name) {
    hs_model_info_free(out);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory reading model '%s' metadata", model);
  }
  return NULL;
}

/* --------------------------------------------------------------- request -- */

hs_status *hs_kserve_build_infer(const hs_model_info *info, const hs_image *img,
                                 hs_kserve_body *out) {
  memset(out, 0, sizeof *out);
  if (!img->rgb || img->width < 1 || img->height < 1)
    return hs_status_new(HS_INVALID_ARGUMENT, "cannot send an empty image");
  if ((int64_t)img->width * img->height > HS_IMAGE_MAX_PIXELS)
    return hs_status_new(HS_RESOURCE_EXHAUSTED, "cannot send a %dx%d image: more than %lld pixels",
                         img->width, img->height, (long long)HS_IMAGE_MAX_PIXELS);
  if (info->input_dtype != HS_U8 && info->input_dtype != HS_F32)
    return hs_status_new(HS_UNIMPLEMENTED, "the client sends images as UINT8 or FP32 only");
  size_t w = (size_t)img->width, h = (size_t)img->height, plane = w * h;
  size_t esize = hs_dtype_size(info->input_dtype);
  size_t nbytes = plane * 3 * esize;
  json_t *root = json_pack("{s:[{s:s, s:s, s:[i,i,i,i], s:{s:I}}], s:[{s:s, s:{s:b}}]}",
                           "inputs", "name", info->input_name, "datatype",
                           hs_dtype_kserve_name(info->input_dtype), "shape", 1, 3, img->height,
                           img->width, "parameters", "binary_data_size", (json_int_t)nbytes,
                           "outputs", "name", info->output_name, "parameters", "binary_data", 1);
  char *header = root ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  if (!header) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory building the request");
  size_t hlen = strlen(header);
  out->data = malloc(hlen + nbytes);
  if (!out->data) {
    free(header);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory building a %zu-byte request",
                         hlen + nbytes);
  }
  memcpy(out->data, header, hlen);
  free(header);
  /* HWC interleaved -> CHW planes; the wire is little-endian, like the host. */
  uint8_t *dst = out->data + hlen;
  const uint8_t *src = img->rgb;
  if (info->input_dtype == HS_U8) {
    for (size_t c = 0; c < 3; c++)
      for (size_t p = 0; p < plane; p++) dst[c * plane + p] = src[3 * p + c];
  } else {
    for (size_t c = 0; c < 3; c++)
      for (size_t p = 0; p < plane; p++) {
        float v = (float)src[3 * p + c] / 255.0f;
        memcpy(dst + (c * plane + p) * sizeof v, &v, sizeof v);
      }
  }
  out->size = hlen + nbytes;
  out->header_len = hlen;
  return NULL;
}

/* ---------------------------------------------------------------- answer -- */

/* Reads a non-negative integer that fits int64. */
static bool json_size(json_t *v, int64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
  *out = (int64_t)json_integer_value(v);
  return true;
}

/* Flattens nested JSON arrays of numbers into vals[0..*k); false on a
 * non-number, or more than cap values. */
static bool flatten(json_t *v, double *vals, int64_t cap, int64_t *k) {
  if (json_is_array(v)) {
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) if (!flatten(e, vals, cap, k)) return false;
    return true;
  }
  double d;
  if (json_is_number(v))
    d = json_number_value(v);
  else if (json_is_boolean(v))
    d = json_is_true(v) ? 1.0 : 0.0;
  else
    return false;
  if (*k >= cap) {
    (*k)++;
    return false;
  }
  vals[(*k)++] = d;
  return true;
}

/* Shape -> (count, cols); a detector's output is [..., N, 5|6] with leading
 * dims of 1, or empty. */
static hs_status *detector_shape(json_t *shape, const char *name, int64_t *numel, int64_t *count,
                                 int *cols) {
  if (!json_is_array(shape) || json_array_size(shape) == 0 ||
      json_array_size(shape) > HS_MAX_RANK)
    return hs_status_new(HS_INVALID_ARGUMENT, "output '%s' has no valid shape", name);
  size_t rank = json_array_size(shape);
  int64_t dims[HS_MAX_RANK], total = 1;
  char buf[256];
  size_t pos = 0;
  for (size_t i = 0; i < rank; i++) {
    if (!json_size(json_array_get(shape, i), &dims[i]))
      return hs_status_new(HS_INVALID_ARGUMENT, "output '%s' has a shape dim that is not a "
                           "non-negative integer", name);
    if (dims[i] != 0 && total > MAX_OUTPUT_ELEMENTS / dims[i])
      return hs_status_new(HS_RESOURCE_EXHAUSTED, "output '%s' is larger than %lld elements",
                           name, (long long)MAX_OUTPUT_ELEMENTS);
    total *= dims[i];
    if (pos < sizeof buf)
      pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s%lld", i ? ", " : "",
                              (long long)dims[i]);
  }
  *numel = total;
  if (total == 0) { /* no detections, whatever the (empty) shape */
    *count = 0;
    *cols = (rank >= 2 && (dims[rank - 1] == 5 || dims[rank - 1] == 6)) ? (int)dims[rank - 1] : 6;
    return NULL;
  }
  if (rank >= 2 && (dims[rank - 1] == 5 || dims[rank - 1] == 6)) {
    *cols = (int)dims[rank - 1];
    *count = total / dims[rank - 1];
    return NULL;
  }
  return hs_status_new(HS_INVALID_ARGUMENT,
                       "output '%s' has shape [%s]; a detector's output is [N, 5] or [N, 6] "
                       "(x1, y1, x2, y2, score, class)", name, buf);
}

static hs_status *parse_answer(json_t *root, const uint8_t *tail, size_t tail_len,
                               const char *output_name, hs_detections *out) {
  HS_RETURN_IF_ERROR(answer_error(root, "answer"));
  json_t *outputs = json_object_get(root, "outputs");
  if (!json_is_array(outputs) || json_array_size(outputs) == 0)
    return hs_status_new(HS_INVALID_ARGUMENT, "the server's answer has no outputs");
  /* Binary blobs follow the JSON in output order: find ours and its offset. */
  size_t i;
  json_t *o, *found = NULL;
  int64_t offset = 0, found_offset = 0, found_size = -1;
  json_array_foreach(outputs, i, o) {
    if (!json_is_object(o))
      return hs_status_new(HS_INVALID_ARGUMENT, "the server's answer has an output that is not "
                           "an object");
    const char *nm = json_string_value(json_object_get(o, "name"));
    bool mine = nm && strcmp(nm, output_name) == 0;
    if (!found && (mine || json_array_size(outputs) == 1)) found = o;
    json_t *bsize = json_object_get(json_object_get(o, "parameters"), "binary_data_size");
    int64_t size = -1;
    if (bsize && !json_size(bsize, &size))
      return hs_status_new(HS_INVALID_ARGUMENT, "output '%s': binary_data_size is not a "
                           "non-negative integer", nm ? nm : "?");
    if (found == o) {
      found_offset = offset;
      found_size = size;
    }
    if (size >= 0) {
      if (size > (int64_t)tail_len - offset)
        return hs_status_new(HS_INVALID_ARGUMENT,
                             "the answer is truncated: its outputs' binary_data_size add up to "
                             "more than the %zu bytes after the JSON header", tail_len);
      offset += size;
    }
  }
  if (!found)
    return hs_status_new(HS_NOT_FOUND, "the server's answer has no output '%s'", output_name);
  const char *name = json_string_value(json_object_get(found, "name"));
  if (!name) name = output_name;
  const char *dtname = json_string_value(json_object_get(found, "datatype"));
  hs_dtype dt = dtname ? hs_dtype_from_kserve_name(dtname) : HS_DTYPE_INVALID;
  if (dt == HS_DTYPE_INVALID || hs_dtype_is_complex(dt))
    return hs_status_new(HS_INVALID_ARGUMENT, "output '%s' has datatype %s, not a number type",
                         name, dtname ? dtname : "(none)");
  int64_t numel = 0, count = 0;
  int cols = 6;
  HS_RETURN_IF_ERROR(detector_shape(json_object_get(found, "shape"), name, &numel, &count, &cols));
  double *vals = malloc(sizeof(double) * (size_t)(numel ? numel : 1));
  if (!vals) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory reading output '%s'", name);
  json_t *data = json_object_get(found, "data");
  if (found_size >= 0) {
    size_t esize = hs_dtype_size(dt);
    if ((uint64_t)found_size != (uint64_t)numel * esize) {
      free(vals);
      return hs_status_new(HS_INVALID_ARGUMENT, "output '%s': binary_data_size is %lld bytes but "
                           "%lld %s elements take %lld", name, (long long)found_size,
                           (long long)numel, dtname, (long long)(numel * (int64_t)esize));
    }
    /* Copied out first: the blob's offset need not suit the dtype's alignment. */
    void *aligned = malloc((size_t)found_size + 1);
    if (!aligned) {
      free(vals);
      return hs_status_new(HS_OUT_OF_MEMORY, "out of memory reading output '%s'", name);
    }
    memcpy(aligned, tail + found_offset, (size_t)found_size);
    for (int64_t k = 0; k < numel; k++) vals[k] = hs_load_f64(dt, aligned, k);
    free(aligned);
  } else if (data) {
    int64_t k = 0;
    if (!flatten(data, vals, numel, &k) || k != numel) {
      free(vals);
      if (k > numel)
        return hs_status_new(HS_INVALID_ARGUMENT, "output '%s': data has more values than its "
                             "shape's %lld", name, (long long)numel);
      return hs_status_new(HS_INVALID_ARGUMENT, "output '%s': data must be %lld numbers (got %lld "
                           "before the end or a non-number)", name, (long long)numel, (long long)k);
    }
  } else {
    free(vals);
    return hs_status_new(HS_INVALID_ARGUMENT, "output '%s' has neither data nor "
                         "parameters.binary_data_size", name);
  }
  out->cols = cols;
  out->count = count;
  if (count > 0) {
    out->rows = malloc(sizeof(float) * (size_t)numel);
    if (!out->rows) {
      free(vals);
      memset(out, 0, sizeof *out);
      return hs_status_new(HS_OUT_OF_MEMORY, "out of memory reading output '%s'", name);
    }
    for (int64_t k = 0; k < numel; k++) out->rows[k] = (float)vals[k];
  }
  free(vals);
  return NULL;
}

hs_status *hs_kserve_parse_infer(const void *body, size_t n, int64_t header_len,
                                 const char *output_name, hs_detections *out,
                                 char **parameters) {
  memset(out, 0, sizeof *out);
  if (parameters) *parameters = NULL;
  size_t json_len = n;
  if (header_len >= 0) {
    if ((uint64_t)header_len > n)
      return hs_status_new(HS_INVALID_ARGUMENT,
                           "the answer is truncated: Inference-Header-Content-Length is %lld but "
                           "the body has %zu bytes", (long long)header_len, n);
    json_len = (size_t)header_len;
  }
  if (json_len == 0) return hs_status_new(HS_INVALID_ARGUMENT, "the server's answer is empty");
  json_error_t jerr;
  json_t *root = json_loadb(body, json_len, 0, &jerr);
  if (!root)
    return hs_status_new(HS_INVALID_ARGUMENT,
                         "the server's answer is not JSON (%s at line %d, column %d)", jerr.text,
                         jerr.line, jerr.column);
  const uint8_t *tail = (const uint8_t *)body + json_len;
  hs_status *st = parse_answer(root, tail, n - json_len, output_name, out);
  if (!st && parameters) {
    json_t *p = json_object_get(root, "parameters");
    if (json_is_object(p)) {
      *parameters = json_dumps(p, JSON_COMPACT | JSON_REAL_PRECISION(9));
      if (!*parameters) st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory reading the answer");
    }
  }
  json_decref(root);
  if (st) hs_detections_free(out);
  return st;
}
