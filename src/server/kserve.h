/*
 * kserve.h - the KServe v2 (Open Inference Protocol) wire format: inference
 * requests in, responses out, with the binary tensor data extension both
 * ways.  Pure functions over bytes: no sockets, no models.  That keeps the
 * one piece that reads untrusted input small enough to fuzz on its own
 * (fuzz/fuzz_request.c) and reusable by the fleet front end.
 *
 * Request body: a JSON object, optionally followed by raw tensor bytes.  With
 * the Inference-Header-Content-Length header the first N bytes are the JSON
 * and the rest is the binary tail: inputs whose parameters carry
 * "binary_data_size" take consecutive slices of it, in input order, and the
 * slices must cover the tail exactly.
 *
 * Parsed inputs are validated (dtype known, shape sane, element count equal
 * to the data) and decoded into tensors; binary data is referenced in place
 * when suitably aligned and copied (into the request's arena) otherwise.
 */
#ifndef HLOSERVE_SERVER_KSERVE_H
#define HLOSERVE_SERVER_KSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "hloserve/meta.h"
#include "hloserve/status.h"
#include "hloserve/tensor.h"
#include "server/util.h"

typedef struct hs_kserve_output_request {
  const char *name;
  int binary; /* the output's "binary_data" parameter: 1, 0, or -1 when absent */
} hs_kserve_output_request;

typedef struct hs_kserve_request {
  hs_arena arena;             /* every string and decoded JSON tensor */
  const char *id;             /* NULL when absent */
  int num_inputs;
  hs_named_tensor *inputs;    /* request order */
  int num_outputs;            /* requested outputs; 0 with outputs_given false: all */
  bool outputs_given;
  hs_kserve_output_request *outputs;
  bool binary_data_output;    /* request parameter: outputs in binary by default */
  int64_t timeout_us;         /* request parameter "timeout" (microseconds); 0: none */
} hs_kserve_request;

/* Parses a request body.  header_len: the Inference-Header-Content-Length
 * value, or -1 without the header.  On error req is left empty (free it
 * anyway: hs_kserve_request_free is safe on any state). */
hs_status *hs_kserve_parse_request(const void *body, size_t len, int64_t header_len,
                                   hs_kserve_request *req);
void hs_kserve_request_free(hs_kserve_request *req);

/* Parses an Inference-Header-Content-Length value: a decimal integer. */
hs_status *hs_kserve_parse_header_length(const char *value, int64_t *out);

typedef struct hs_kserve_output {
  const char *name;
  const hs_tensor *tensor;
  bool binary;
} hs_kserve_output;

/* Which outputs a response carries, and how: for each of the model's
 * outputs (names[0..n)), order[k] is the index of the k-th output to send
 * and binary[k] its encoding; *num_selected of them.  Requested outputs the
 * model does not have are HS_INVALID_ARGUMENT. order/binary hold n entries. */
hs_status *hs_kserve_select_outputs(const hs_kserve_request *req, const char *const *names,
                                    int n, int *order, bool *binary, int *num_selected);

/* Writes a response: the JSON header, then the binary tails.  *json_len gets
 * the JSON header's length when any output is binary (the value of the
 * Inference-Header-Content-Length response header), else 0. */
hs_status *hs_kserve_encode_response(hs_buf *out, const char *model_name, const char *id,
                                     const hs_kserve_output *outputs, int n, size_t *json_len);
/* The same with response "parameters": `parameters_json` is a JSON object's
 * text written as is (NULL or "" for none). */
hs_status *hs_kserve_encode_response_params(hs_buf *out, const char *model_name, const char *id,
                                            const char *parameters_json,
                                            const hs_kserve_output *outputs, int n,
                                            size_t *json_len);

/* {"error": "<message>"} */
void hs_kserve_encode_error(hs_buf *out, const char *message);

#endif
