/*
 * kserve.c - see kserve.h.
 *
 * Parsing runs in two steps.  The JSON header is read once with the pull
 * parser: scalars are decoded as they come, and each input's "data" array is
 * only skipped, validated and counted (its position remembered), because the
 * input's datatype and shape may come after it in the object.  Then each
 * input is finished: the element count is checked against the shape before
 * anything is allocated (so a hostile shape cannot make us allocate), JSON
 * data is decoded straight into the tensor, and binary inputs take their
 * slices of the tail.
 *
 * Responses are written by hand into a growable buffer: numbers with
 * printf's round-trip precisions (%.9g for float32), NaN and infinities as
 * NaN/Infinity/-Infinity (what Python's json and rapidjson read), and binary
 * outputs appended after the JSON in output order.
 */
#include "server/kserve.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/json_reader.h"

#define MAX_INPUTS 4096
#define MAX_OUTPUTS 4096
/* Larger tensors than this are refused whatever the body size (2^62 bytes
 * keeps every size computation far from overflow). */
#define MAX_TENSOR_BYTES ((int64_t)1 << 62)

typedef struct pending_input {
  const char *name;
  const char *datatype;
  hs_shape shape;
  bool has_shape;
  int64_t binary_size;  /* -1: none */
  const char *data_pos; /* start of the "data" value in the JSON, NULL: none */
  int64_t data_count;
  bool data_has_bool, data_has_number;
} pending_input;

/* A value of the wrong JSON type is a schema error ("must be a string"),
 * but the end of input or a stray character is malformed JSON. */
static hs_status *wrong_type(hs_json_reader *r, const char *fmt, ...) HS_PRINTF(2, 3);
static hs_status *wrong_type(hs_json_reader *r, const char *fmt, ...) {
  hs_json_type t = hs_json_peek(r);
  if (t == HS_JSON_END) return hs_json_error(r, "unexpected end of input");
  if (t == HS_JSON_INVALID) return hs_json_error(r, "unexpected character");
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return hs_status_new(HS_INVALID_ARGUMENT, "%s", msg);
}

void hs_kserve_request_free(hs_kserve_request *req) {
  hs_arena_free(&req->arena);
  memset(req, 0, sizeof *req);
}

hs_status *hs_kserve_parse_header_length(const char *value, int64_t *out) {
  size_t n = value ? strlen(value) : 0;
  while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t')) n--;
  while (n > 0 && (*value == ' ' || *value == '\t')) {
    value++;
    n--;
  }
  uint64_t v;
  if (n == 0 || n > 18 || !hs_json_parse_u64(value, n, &v))
    return hs_status_new(HS_INVALID_ARGUMENT,
                         "Inference-Header-Content-Length must be a non-negative integer, "
                         "got '%.40s'", value ? value : "");
  *out = (int64_t)v;
  return NULL;
}

/* "shape": [d0, d1, ...] */
static hs_status *parse_shape(hs_json_reader *r, const char *input, hs_shape *shape) {
  memset(shape, 0, sizeof *shape);
  if (hs_json_peek(r) != HS_JSON_ARRAY)
    return wrong_type(r, "input '%s': shape must be an array of integers",
                         input);
  bool first = true, done = false;
  for (;;) {
    HS_RETURN_IF_ERROR(hs_json_next_element(r, &first, &done));
    if (done) break;
    if (shape->rank == HS_MAX_RANK)
      return hs_status_new(HS_INVALID_ARGUMENT, "input '%s': rank above %d is not supported",
                           input, HS_MAX_RANK);
    char what[160];
    snprintf(what, sizeof what, "input '%s': shape dim %d", input, shape->rank);
    HS_RETURN_IF_ERROR(hs_json_int(r, what, 0, INT64_MAX, &shape->dims[shape->rank]));
    shape->rank++;
  }
  return NULL;
}

static hs_status *parse_input_parameters(hs_json_reader *r, pending_input *in) {
  const char *name = in->name ? in->name : "?";
  if (hs_json_peek(r) != HS_JSON_OBJECT)
    return wrong_type(r, "input '%s': parameters must be an object", name);
  bool first = true, done = false;
  for (;;) {
    const char *key;
    HS_RETURN_IF_ERROR(hs_json_next_member(r, &first, &done, &key));
    if (done) return NULL;
    if (strcmp(key, "binary_data_size") == 0) {
      char what[160];
      snprintf(what, sizeof what, "input '%s': binary_data_size", name);
      HS_RETURN_IF_ERROR(hs_json_int(r, what, 0, MAX_TENSOR_BYTES, &in->binary_size));
    } else if (strncmp(key, "shared_memory_", 14) == 0) {
      return hs_status_new(HS_INVALID_ARGUMENT,
                           "input '%s': shared-memory tensors are not supported", name);
    } else {
      HS_RETURN_IF_ERROR(hs_json_skip(r));
    }
  }
}

static hs_status *parse_input(hs_json_reader *r, pending_input *in) {
  memset(in, 0, sizeof *in);
  in->binary_size = -1;
  if (hs_json_peek(r) != HS_JSON_OBJECT)
    return wrong_type(r, "each input must be an object");
  /* "name" may come last: remember the parameters' position and parse them
   * after the object so that messages can name the input. */
  const char *params_pos = NULL;
  bool first = true, done = false;
  for (;;) {
    const char *key;
    HS_RETURN_IF_ERROR(hs_json_next_member(r, &first, &done, &key));
    if (done) break;
    if (strcmp(key, "name") == 0) {
      if (hs_json_peek(r) != HS_JSON_STRING)
        return wrong_type(r, "input name must be a string");
      HS_RETURN_IF_ERROR(hs_json_string(r, &in->name, NULL));
    } else if (strcmp(key, "datatype") == 0) {
      if (hs_json_peek(r) != HS_JSON_STRING)
        return wrong_type(r, "input datatype must be a string");
      HS_RETURN_IF_ERROR(hs_json_string(r, &in->datatype, NULL));
    } else if (strcmp(key, "shape") == 0) {
      HS_RETURN_IF_ERROR(parse_shape(r, in->name ? in->name : "?", &in->shape));
      in->has_shape = true;
    } else if (strcmp(key, "parameters") == 0) {
      hs_json_peek(r);
      params_pos = r->p;
      HS_RETURN_IF_ERROR(hs_json_skip(r));
    } else if (strcmp(key, "data") == 0) {
      hs_json_peek(r);
      in->data_pos = r->p;
      HS_RETURN_IF_ERROR(
          hs_json_count_leaves(r, &in->data_count, &in->data_has_bool, &in->data_has_number));
    } else {
      HS_RETURN_IF_ERROR(hs_json_skip(r));
    }
  }
  if (!in->name) return hs_status_new(HS_INVALID_ARGUMENT, "an input has no name");
  if (params_pos) {
    const char *resume = r->p;
    r->p = params_pos;
    HS_RETURN_IF_ERROR(parse_input_parameters(r, in));
    r->p = resume;
  }
  return NULL;
}

static hs_status *parse_output(hs_json_reader *r, hs_kserve_output_request *out) {
  out->name = NULL;
  out->binary = -1;
  if (hs_json_peek(r) != HS_JSON_OBJECT)
    return wrong_type(r, "each requested output must be an object");
  bool first = true, done = false;
  for (;;) {
    const char *key;
    HS_RETURN_IF_ERROR(hs_json_next_member(r, &first, &done, &key));
    if (done) break;
    if (strcmp(key, "name") == 0) {
      if (hs_json_peek(r) != HS_JSON_STRING)
        return wrong_type(r, "output name must be a string");
      HS_RETURN_IF_ERROR(hs_json_string(r, &out->name, NULL));
    } else if (strcmp(key, "parameters") == 0) {
      if (hs_json_peek(r) != HS_JSON_OBJECT)
        return wrong_type(r, "output parameters must be an object");
      bool pf = true, pd = false;
      for (;;) {
        const char *pk;
        HS_RETURN_IF_ERROR(hs_json_next_member(r, &pf, &pd, &pk));
        if (pd) break;
        if (strcmp(pk, "binary_data") == 0) {
          bool b;
          if (hs_json_peek(r) != HS_JSON_TRUE && hs_json_peek(r) != HS_JSON_FALSE)
            return wrong_type(r, "output parameter binary_data must be "
                                                      "true or false");
          HS_RETURN_IF_ERROR(hs_json_bool(r, &b));
          out->binary = b;
        } else if (strcmp(pk, "classification") == 0) {
          return hs_status_new(HS_INVALID_ARGUMENT,
                               "the classification extension is not supported");
        } else if (strncmp(pk, "shared_memory_", 14) == 0) {
          return hs_status_new(HS_INVALID_ARGUMENT, "shared-memory outputs are not supported");
        } else {
          HS_RETURN_IF_ERROR(hs_json_skip(r));
        }
      }
    } else {
      HS_RETURN_IF_ERROR(hs_json_skip(r));
    }
  }
  if (!out->name) return hs_status_new(HS_INVALID_ARGUMENT, "a requested output has no name");
  return NULL;
}

static hs_status *parse_parameters(hs_json_reader *r, hs_kserve_request *req) {
  if (hs_json_peek(r) != HS_JSON_OBJECT)
    return wrong_type(r, "request parameters must be an object");
  bool first = true, done = false;
  for (;;) {
    const char *key;
    HS_RETURN_IF_ERROR(hs_json_next_member(r, &first, &done, &key));
    if (done) return NULL;
    if (strcmp(key, "timeout") == 0) {
      /* tritonclient sends an integer number of microseconds; 0 means none. */
      HS_RETURN_IF_ERROR(hs_json_int(r, "parameter timeout (microseconds)", 0,
                                     (int64_t)1 << 50, &req->timeout_us));
    } else if (strcmp(key, "binary_data_output") == 0) {
      if (hs_json_peek(r) != HS_JSON_TRUE && hs_json_peek(r) != HS_JSON_FALSE)
        return wrong_type(r,
                             "parameter binary_data_output must be true or false");
      HS_RETURN_IF_ERROR(hs_json_bool(r, &req->binary_data_output));
    } else {
      HS_RETURN_IF_ERROR(hs_json_skip(r));
    }
  }
}

/* Grows an arena-backed array (arenas cannot realloc: copy to a new block). */
static void *grow(hs_arena *a, void *old, int n, int *cap, size_t elem) {
  if (n < *cap) return old;
  int nc = *cap ? *cap * 2 : 8;
  void *p = hs_arena_alloc(a, (size_t)nc * elem);
  if (!p) return NULL;
  if (n) memcpy(p, old, (size_t)n * elem);
  *cap = nc;
  return p;
}

static hs_status *element_error(const char *input, int64_t i, const char *text, size_t n,
                                const char *why) {
  return hs_status_new(HS_INVALID_ARGUMENT, "input '%s': data element %lld (%.*s) %s", input,
                       (long long)i, (int)(n > 40 ? 40 : n), text, why);
}

/* Decodes a validated "data" value (numbers/booleans in nested arrays) into
 * t->data.  Only structure characters, whitespace and scalars remain, so a
 * linear scan suffices. */
static hs_status *decode_data(hs_json_reader *r, const char *input, hs_tensor *t,
                              int64_t count) {
  const hs_dtype dt = t->dtype;
  int64_t i = 0;
  while (i < count) {
    if (r->p >= r->end) return hs_json_error(r, "unexpected end of tensor data");
    char c = *r->p;
    if (c == '[' || c == ']' || c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      r->p++;
      continue;
    }
    if (c == 't' || c == 'f') {
      bool v;
      HS_RETURN_IF_ERROR(hs_json_bool(r, &v));
      if (dt != HS_PRED)
        return element_error(input, i, v ? "true" : "false", v ? 4 : 5,
                             "is a boolean; the datatype is not BOOL");
      ((uint8_t *)t->data)[i++] = v;
      continue;
    }
    const char *s;
    size_t n;
    bool is_int;
    HS_RETURN_IF_ERROR(hs_json_number(r, &s, &n, &is_int));
    if (dt == HS_PRED) return element_error(input, i, s, n, "is a number; BOOL data must be true or false");
    if (hs_dtype_is_int(dt)) {
      if (!is_int) return element_error(input, i, s, n, "is not an integer");
      int bits = hs_dtype_bits(dt);
      if (hs_dtype_is_signed(dt)) {
        int64_t v;
        int64_t lo = bits == 64 ? INT64_MIN : -((int64_t)1 << (bits - 1));
        int64_t hi = bits == 64 ? INT64_MAX : ((int64_t)1 << (bits - 1)) - 1;
        if (!hs_json_parse_i64(s, n, &v) || v < lo || v > hi)
          return element_error(input, i, s, n, "is out of range for the datatype");
        hs_store_i64(dt, t->data, i, v);
      } else {
        uint64_t v;
        uint64_t hi = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
        if (s[0] == '-' || !hs_json_parse_u64(s, n, &v) || v > hi)
          return element_error(input, i, s, n, "is out of range for the datatype");
        switch (dt) {
          case HS_U8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
          case HS_U16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
          case HS_U32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
          default: ((uint64_t *)t->data)[i] = v; break;
        }
      }
      i++;
      continue;
    }
    double v;
    if (!hs_json_parse_f64(s, n, &v)) return element_error(input, i, s, n, "is too long");
    switch (dt) {
      case HS_F32: {
        char buf[128];
        memcpy(buf, s, n);
        buf[n] = 0;
        ((float *)t->data)[i] = strtof(buf, NULL); /* correctly rounded, no double rounding */
        break;
      }
      case HS_F64: ((double *)t->data)[i] = v; break;
      case HS_F16: ((uint16_t *)t->data)[i] = hs_f64_to_f16(v); break;
      case HS_BF16: ((uint16_t *)t->data)[i] = hs_f64_to_bf16(v); break;
      default: return hs_status_new(HS_INTERNAL, "decode_data: unexpected dtype");
    }
    i++;
  }
  return NULL;
}

static hs_status *shape_bytes(const char *input, hs_dtype dt, const hs_shape *s, int64_t *numel,
                              int64_t *bytes) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) {
    int64_t d = s->dims[i];
    if (d != 0 && n > MAX_TENSOR_BYTES / d)
      return hs_status_new(HS_INVALID_ARGUMENT, "input '%s': shape is too large", input);
    n *= d;
  }
  if (n > MAX_TENSOR_BYTES / (int64_t)hs_dtype_size(dt))
    return hs_status_new(HS_INVALID_ARGUMENT, "input '%s': shape is too large", input);
  *numel = n;
  *bytes = n * (int64_t)hs_dtype_size(dt);
  return NULL;
}

static void shape_text(const hs_shape *s, char *buf, size_t cap) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, cap - k, "[");
  for (int i = 0; i < s->rank && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
  if (k < cap) snprintf(buf + k, cap - k, "]");
}

static hs_status *parse(const char *body, size_t len, int64_t header_len, hs_kserve_request *req) {
  size_t json_len = len;
  if (header_len >= 0) {
    if ((uint64_t)header_len > len)
      return hs_status_new(HS_INVALID_ARGUMENT,
                           "Inference-Header-Content-Length is %lld but the body has only %zu "
                           "bytes (truncated body?)", (long long)header_len, len);
    json_len = (size_t)header_len;
  }
  const char *tail = body + json_len;
  const size_t tail_len = len - json_len;

  hs_json_reader rd;
  hs_json_reader_init(&rd, body, json_len, &req->arena);
  hs_json_reader *r = &rd;
  if (hs_json_peek(r) != HS_JSON_OBJECT) {
    if (hs_json_peek(r) == HS_JSON_END)
      return hs_status_new(HS_INVALID_ARGUMENT, "empty request body: expected a JSON object");
    return hs_json_error(r, "the request must be a JSON object");
  }
  pending_input *pend = NULL;
  int n_pend = 0, cap_pend = 0, cap_out = 0;
  bool seen_inputs = false, seen_outputs = false, seen_params = false, seen_id = false;
  bool first = true, done = false;
  for (;;) {
    const char *key;
    HS_RETURN_IF_ERROR(hs_json_next_member(r, &first, &done, &key));
    if (done) break;
    if (strcmp(key, "id") == 0) {
      if (seen_id) return hs_status_new(HS_INVALID_ARGUMENT, "duplicate key \"id\"");
      seen_id = true;
      if (hs_json_peek(r) != HS_JSON_STRING)
        return wrong_type(r, "request id must be a string");
      HS_RETURN_IF_ERROR(hs_json_string(r, &req->id, NULL));
    } else if (strcmp(key, "parameters") == 0) {
      if (seen_params) return hs_status_new(HS_INVALID_ARGUMENT, "duplicate key \"parameters\"");
      seen_params = true;
      HS_RETURN_IF_ERROR(parse_parameters(r, req));
    } else if (strcmp(key, "inputs") == 0) {
      if (seen_inputs) return hs_status_new(HS_INVALID_ARGUMENT, "duplicate key \"inputs\"");
      seen_inputs = true;
      if (hs_json_peek(r) != HS_JSON_ARRAY)
        return wrong_type(r, "inputs must be an array");
      bool af = true, ad = false;
      for (;;) {
        HS_RETURN_IF_ERROR(hs_json_next_element(r, &af, &ad));
        if (ad) break;
        if (n_pend == MAX_INPUTS)
          return hs_status_new(HS_INVALID_ARGUMENT, "more than %d inputs", MAX_INPUTS);
        pend = grow(&req->arena, pend, n_pend, &cap_pend, sizeof *pend);
        if (!pend) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory parsing inputs");
        HS_RETURN_IF_ERROR(parse_input(r, &pend[n_pend]));
        n_pend++;
      }
    } else if (strcmp(key, "outputs") == 0) {
      if (seen_outputs) return hs_status_new(HS_INVALID_ARGUMENT, "duplicate key \"outputs\"");
      seen_outputs = true;
      req->outputs_given = true;
      if (hs_json_peek(r) != HS_JSON_ARRAY)
        return wrong_type(r, "outputs must be an array");
      bool af = true, ad = false;
      for (;;) {
        HS_RETURN_IF_ERROR(hs_json_next_element(r, &af, &ad));
        if (ad) break;
        if (req->num_outputs == MAX_OUTPUTS)
          return hs_status_new(HS_INVALID_ARGUMENT, "more than %d requested outputs",
                               MAX_OUTPUTS);
        req->outputs = grow(&req->arena, req->outputs, req->num_outputs, &cap_out,
                            sizeof *req->outputs);
        if (!req->outputs) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory parsing outputs");
        hs_kserve_output_request *o = &req->outputs[req->num_outputs];
        HS_RETURN_IF_ERROR(parse_output(r, o));
        for (int k = 0; k < req->num_outputs; k++)
          if (strcmp(req->outputs[k].name, o->name) == 0)
            return hs_status_new(HS_INVALID_ARGUMENT, "output '%s' is requested twice", o->name);
        req->num_outputs++;
      }
    } else {
      HS_RETURN_IF_ERROR(hs_json_skip(r));
    }
  }
  if (!hs_json_at_end(r)) return hs_json_error(r, "trailing characters after the request object");
  if (!seen_inputs) return hs_status_new(HS_INVALID_ARGUMENT, "the request has no \"inputs\"");

  req->inputs = hs_arena_calloc(&req->arena, n_pend ? (size_t)n_pend : 1, sizeof *req->inputs);
  if (!req->inputs) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory parsing inputs");
  size_t tail_off = 0;
  for (int i = 0; i < n_pend; i++) {
    pending_input *in = &pend[i];
    for (int k = 0; k < i; k++)
      if (strcmp(pend[k].name, in->name) == 0)
        return hs_status_new(HS_INVALID_ARGUMENT, "input '%s' is given twice", in->name);
    if (!in->datatype)
      return hs_status_new(HS_INVALID_ARGUMENT, "input '%s' has no datatype", in->name);
    hs_dtype dt = hs_dtype_from_kserve_name(in->datatype);
    if (dt == HS_DTYPE_INVALID) {
      if (strcmp(in->datatype, "BYTES") == 0)
        return hs_status_new(HS_INVALID_ARGUMENT,
                             "input '%s': BYTES tensors are not supported", in->name);
      return hs_status_new(HS_INVALID_ARGUMENT, "input '%s': unknown datatype '%.40s'", in->name,
                           in->datatype);
    }
    if (!in->has_shape) return hs_status_new(HS_INVALID_ARGUMENT, "input '%s' has no shape", in->name);
    int64_t numel = 0, bytes = 0;
    HS_RETURN_IF_ERROR(shape_bytes(in->name, dt, &in->shape, &numel, &bytes));
    hs_named_tensor *nt = &req->inputs[i];
    nt->name = in->name;
    nt->tensor.dtype = dt;
    nt->tensor.shape = in->shape;
    char stext[HS_MAX_RANK * 22 + 4];
    if (in->binary_size >= 0) {
      if (in->data_pos)
        return hs_status_new(HS_INVALID_ARGUMENT,
                             "input '%s' has both JSON data and binary_data_size", in->name);
      if (header_len < 0)
        return hs_status_new(HS_INVALID_ARGUMENT,
                             "input '%s' has binary_data_size but the request has no "
                             "Inference-Header-Content-Length header", in->name);
      if (in->binary_size != bytes) {
        shape_text(&in->shape, stext, sizeof stext);
        return hs_status_new(HS_INVALID_ARGUMENT,
                             "input '%s': binary_data_size is %lld bytes but %s %s needs %lld",
                             in->name, (long long)in->binary_size, in->datatype, stext,
                             (long long)bytes);
      }
      if ((uint64_t)bytes > tail_len - tail_off)
        return hs_status_new(HS_INVALID_ARGUMENT,
                             "input '%s': its %lld bytes of binary data run past the end of the "
                             "body (%zu bytes left; truncated body?)", in->name,
                             (long long)bytes, tail_len - tail_off);
      const char *src = tail + tail_off;
      size_t esize = hs_dtype_size(dt);
      if (bytes == 0) {
        nt->tensor.data = hs_arena_alloc(&req->arena, 1);
      } else if (((uintptr_t)src % esize) == 0) {
        nt->tensor.data = (void *)src; /* zero copy: the body outlives the request */
      } else {
        nt->tensor.data = hs_arena_memdup(&req->arena, src, (size_t)bytes);
      }
      if (!nt->tensor.data)
        return hs_status_new(HS_OUT_OF_MEMORY, "out of memory for input '%s'", in->name);
      tail_off += (size_t)bytes;
    } else if (in->data_pos) {
      if (in->data_count != numel) {
        shape_text(&in->shape, stext, sizeof stext);
        return hs_status_new(HS_INVALID_ARGUMENT,
                             "input '%s': data has %lld elements but shape %s needs %lld",
                             in->name, (long long)in->data_count, stext, (long long)numel);
      }
      nt->tensor.data = hs_arena_alloc(&req->arena, bytes ? (size_t)bytes : 1);
      if (!nt->tensor.data)
        return hs_status_new(HS_OUT_OF_MEMORY, "out of memory for input '%s'", in->name);
      hs_json_reader dr = *r;
      dr.p = in->data_pos;
      HS_RETURN_IF_ERROR(decode_data(&dr, in->name, &nt->tensor, numel));
    } else {
      return hs_status_new(HS_INVALID_ARGUMENT,
                           "input '%s' has neither data nor parameters.binary_data_size",
                           in->name);
    }
  }
  req->num_inputs = n_pend;
  if (tail_off != tail_len)
    return hs_status_new(HS_INVALID_ARGUMENT,
                         "the body has %zu bytes of binary data after the JSON header but the "
                         "inputs' binary_data_size add up to %zu", tail_len, tail_off);
  return NULL;
}

hs_status *hs_kserve_parse_request(const void *body, size_t len, int64_t header_len,
                                   hs_kserve_request *req) {
  memset(req, 0, sizeof *req);
  hs_arena_init(&req->arena, 4096);
  hs_status *st = parse((const char *)body, len, header_len, req);
  if (st) hs_kserve_request_free(req);
  return st;
}

hs_status *hs_kserve_select_outputs(const hs_kserve_request *req, const char *const *names,
                                    int n, int *order, bool *binary, int *num_selected) {
  if (!req->outputs_given) {
    for (int i = 0; i < n; i++) {
      order[i] = i;
      binary[i] = req->binary_data_output;
    }
    *num_selected = n;
    return NULL;
  }
  if (req->num_outputs > n)
    return hs_status_new(HS_INVALID_ARGUMENT, "%d outputs requested but the model has %d",
                         req->num_outputs, n);
  for (int k = 0; k < req->num_outputs; k++) {
    const hs_kserve_output_request *o = &req->outputs[k];
    int found = -1;
    for (int i = 0; i < n && found < 0; i++)
      if (strcmp(names[i], o->name) == 0) found = i;
    if (found < 0) {
      char list[512];
      size_t len = 0;
      list[0] = 0;
      for (int i = 0; i < n && len + 4 < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
      return hs_status_new(HS_INVALID_ARGUMENT, "unknown output '%s' (the model's outputs: %s)",
                           o->name, list);
    }
    order[k] = found;
    binary[k] = o->binary >= 0 ? o->binary != 0 : req->binary_data_output;
  }
  *num_selected = req->num_outputs;
  return NULL;
}

static void put_float(hs_buf *b, double v, int digits) {
  if (isnan(v)) {
    hs_buf_puts(b, "NaN");
  } else if (isinf(v)) {
    hs_buf_puts(b, v > 0 ? "Infinity" : "-Infinity");
  } else {
    char s[40];
    int n = snprintf(s, sizeof s, "%.*g", digits, v);
    hs_buf_append(b, s, (size_t)n);
  }
}

static void put_data(hs_buf *b, const hs_tensor *t) {
  int64_t n = hs_tensor_numel(t);
  /* ~12 bytes per element on average; reserving up front avoids regrowth. */
  if (n > 0 && (uint64_t)n < SIZE_MAX / 16) hs_buf_reserve(b, (size_t)n * 12 + 2);
  hs_buf_putc(b, '[');
  const void *d = t->data;
  char s[32];
  for (int64_t i = 0; i < n && !b->oom; i++) {
    if (i) hs_buf_putc(b, ',');
    switch (t->dtype) {
      case HS_PRED: hs_buf_puts(b, ((const uint8_t *)d)[i] ? "true" : "false"); break;
      case HS_F32: put_float(b, ((const float *)d)[i], 9); break;
      case HS_F64: put_float(b, ((const double *)d)[i], 17); break;
      case HS_F16: put_float(b, hs_f16_to_f32(((const uint16_t *)d)[i]), 9); break;
      case HS_BF16: put_float(b, hs_bf16_to_f32(((const uint16_t *)d)[i]), 9); break;
      case HS_U64: {
        int k = snprintf(s, sizeof s, "%llu", (unsigned long long)((const uint64_t *)d)[i]);
        hs_buf_append(b, s, (size_t)k);
        break;
      }
      default: {
        int k = snprintf(s, sizeof s, "%lld", (long long)hs_load_i64(t->dtype, d, i));
        hs_buf_append(b, s, (size_t)k);
        break;
      }
    }
  }
  hs_buf_putc(b, ']');
}

hs_status *hs_kserve_encode_response(hs_buf *out, const char *model_name, const char *id,
                                     const hs_kserve_output *outputs, int n, size_t *json_len) {
  return hs_kserve_encode_response_params(out, model_name, id, NULL, outputs, n, json_len);
}

hs_status *hs_kserve_encode_response_params(hs_buf *out, const char *model_name, const char *id,
                                            const char *parameters_json,
                                            const hs_kserve_output *outputs, int n,
                                            size_t *json_len) {
  size_t start = out->len;
  bool any_binary = false;
  hs_buf_puts(out, "{\"model_name\":");
  hs_buf_json_string(out, model_name, strlen(model_name));
  hs_buf_puts(out, ",\"model_version\":\"1\"");
  if (id) {
    hs_buf_puts(out, ",\"id\":");
    hs_buf_json_string(out, id, strlen(id));
  }
  if (parameters_json && *parameters_json) {
    hs_buf_puts(out, ",\"parameters\":");
    hs_buf_puts(out, parameters_json);
  }
  hs_buf_puts(out, ",\"outputs\":[");
  for (int i = 0; i < n; i++) {
    const hs_kserve_output *o = &outputs[i];
    const char *dt = hs_dtype_kserve_name(o->tensor->dtype);
    if (!dt)
      return hs_status_new(HS_UNIMPLEMENTED, "output '%s' has dtype %s, which KServe v2 cannot "
                           "carry", o->name, hs_dtype_name(o->tensor->dtype));
    if (i) hs_buf_putc(out, ',');
    hs_buf_puts(out, "{\"name\":");
    hs_buf_json_string(out, o->name, strlen(o->name));
    hs_buf_printf(out, ",\"datatype\":\"%s\",\"shape\":[", dt);
    for (int k = 0; k < o->tensor->shape.rank; k++)
      hs_buf_printf(out, "%s%lld", k ? "," : "", (long long)o->tensor->shape.dims[k]);
    hs_buf_putc(out, ']');
    if (o->binary) {
      any_binary = true;
      hs_buf_printf(out, ",\"parameters\":{\"binary_data_size\":%zu}}",
                    hs_tensor_nbytes(o->tensor));
    } else {
      hs_buf_puts(out, ",\"data\":");
      put_data(out, o->tensor);
      hs_buf_putc(out, '}');
    }
  }
  hs_buf_puts(out, "]}");
  size_t header = out->len - start;
  if (any_binary)
    for (int i = 0; i < n; i++)
      if (outputs[i].binary)
        hs_buf_append(out, outputs[i].tensor->data, hs_tensor_nbytes(outputs[i].tensor));
  if (out->oom) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory writing the response");
  *json_len = any_binary ? header : 0;
  return NULL;
}

void hs_kserve_encode_error(hs_buf *out, const char *message) {
  hs_buf_puts(out, "{\"error\":");
  hs_buf_json_string(out, message, strlen(message));
  hs_buf_puts(out, "}");
}
