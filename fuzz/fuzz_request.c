/*
 * fuzz_request.c - libFuzzer target for KServe v2 request parsing: the JSON
 * header (our pull parser), the binary tail and the Inference-Header-Content-
 * Length split, then output selection and response encoding of whatever was
 * parsed (echoing the inputs back, JSON or binary), the way a worker would.
 *
 * Input layout: byte 0 picks the mode (bit 0: a header length is given,
 * bit 1: outputs in binary), bytes 1-2 the header length (little endian,
 * taken modulo the body size + 2 so that lengths past the body occur too),
 * the rest is the body.  Run as
 *   <build>/fuzz/fuzz_request -dict=fuzz/request.dict corpus <build>/fuzz/corpus_request_seed
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/kserve.h"
#include "server/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  const uint8_t mode = data[0];
  const size_t body_len = size - 3;
  int64_t header_len = -1;
  if (mode & 1) header_len = (int64_t)((data[1] | (size_t)data[2] << 8) % (body_len + 2));
  /* A private copy: the parser must not read past the end (ASan checks). */
  uint8_t *body = malloc(body_len ? body_len : 1);
  if (!body) return 0;
  memcpy(body, data + 3, body_len);

  hs_kserve_request req;
  hs_status *st = hs_kserve_parse_request(body, body_len, header_len, &req);
  if (st) {
    hs_buf b;
    hs_buf_init(&b);
    hs_kserve_encode_error(&b, hs_status_message(st));
    hs_buf_free(&b);
    hs_status_free(st);
  } else {
    int n = req.num_inputs;
    const char **names = malloc(sizeof(char *) * (size_t)(n + 1));
    int *order = malloc(sizeof(int) * (size_t)(n + 1));
    bool *binary = malloc(sizeof(bool) * (size_t)(n + 1));
    hs_kserve_output *outs = malloc(sizeof *outs * (size_t)(n + 1));
    if (names && order && binary && outs) {
      for (int i = 0; i < n; i++) names[i] = req.inputs[i].name;
      int sel = 0;
      st = hs_kserve_select_outputs(&req, names, n, order, binary, &sel);
      if (!st) {
        for (int k = 0; k < sel; k++) {
          outs[k].name = names[order[k]];
          outs[k].tensor = &req.inputs[order[k]].tensor;
          outs[k].binary = binary[k] || (mode & 2);
        }
        hs_buf b;
        hs_buf_init(&b);
        size_t json_len = 0;
        st = hs_kserve_encode_response(&b, "fuzz", req.id, outs, sel, &json_len);
        /* The JSON header we wrote must parse back with our own reader. */
        if (!st && b.len) {
          hs_kserve_request again;
          hs_status *st2 = hs_kserve_parse_request(b.data, json_len ? json_len : b.len, -1, &again);
          /* A response is not a request ("no inputs"), but it must be valid JSON,
           * except for the NaN / Infinity literals we write for non-finite floats
           * (which Python's json and rapidjson read, and JSON proper lacks). */
          size_t hl = json_len ? json_len : b.len;
          bool nonfinite = false;
          for (size_t i = 0; i + 3 <= hl && !nonfinite; i++)
            nonfinite = memcmp(b.data + i, "NaN", 3) == 0 ||
                        (i + 8 <= hl && memcmp(b.data + i, "Infinity", 8) == 0);
          if (st2 && strstr(hs_status_message(st2), "malformed JSON") && !nonfinite) abort();
          hs_status_free(st2);
          hs_kserve_request_free(&again);
        }
        hs_buf_free(&b);
      }
      hs_status_free(st);
    }
    free(names);
    free(order);
    free(binary);
    free(outs);
  }
  hs_kserve_request_free(&req);
  free(body);
  return 0;
}
