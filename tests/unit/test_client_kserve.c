/*
 * test_client_kserve.c - the client's KServe v2 messages without a network:
 * model metadata, the binary infer request (UINT8 and FP32 images), and infer
 * answers in every form a server may choose (binary, flat and nested JSON,
 * other dtypes, other outputs first, leading dims of 1, no detections), plus
 * answers that are truncated at every byte, malformed, or lie about sizes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hloserve/client.h"
#include "testlib.h"

/* An answer: a JSON header plus an optional binary tail (in a buffer of
 * exactly the answer's size, so ASan sees any overread). */
typedef struct answer {
  uint8_t *data;
  size_t n;
  int64_t header_len;
} answer;

static answer make_answer(const char *json, const void *tail, size_t tail_len) {
  answer a;
  size_t j = strlen(json);
  a.n = j + tail_len;
  a.data = malloc(a.n ? a.n : 1);
  memcpy(a.data, json, j);
  if (tail_len) memcpy(a.data + j, tail, tail_len);
  a.header_len = tail ? (int64_t)j : -1;
  return a;
}

static const float ROWS[2][6] = {{10.5f, 20.25f, 110.0f, 220.0f, 0.97f, 1.0f},
                                 {30.0f, 40.0f, 50.0f, 60.0f, 0.3f, 18.0f}};

static bool rows_equal(const hs_detections *d, int64_t count, int cols) {
  if (d->count != count || d->cols != cols) return false;
  for (int64_t i = 0; i < count; i++)
    for (int c = 0; c < cols; c++)
      if (d->rows[i * cols + c] != ROWS[i][c]) return false;
  return true;
}

/* ------------------------------------------------------------- metadata -- */

HS_TEST(metadata) {
  hs_model_info m;
  const char *js =
      "{\"name\":\"det\",\"versions\":[\"1\"],\"inputs\":[{\"name\":\"image\",\"datatype\":"
      "\"UINT8\",\"shape\":[1,3,-1,-1]}],\"outputs\":[{\"name\":\"aux\",\"datatype\":\"FP32\","
      "\"shape\":[1]},{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[-1,6]}]}";
  CHECK_OK(hs_kserve_parse_metadata(js, strlen(js), "det", &m));
  CHECK(strcmp(m.name, "det") == 0 && strcmp(m.input_name, "image") == 0);
  CHECK(m.input_dtype == HS_U8 && strcmp(m.output_name, "OUTPUT__0") == 0);
  hs_model_info_free(&m);
  /* FP32 input; no OUTPUT__0: the first output */
  js = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,3,640,640]}],"
       "\"outputs\":[{\"name\":\"dets\",\"datatype\":\"FP32\",\"shape\":[-1,5]}]}";
  CHECK_OK(hs_kserve_parse_metadata(js, strlen(js), "m2", &m));
  CHECK(m.input_dtype == HS_F32 && strcmp(m.output_name, "dets") == 0);
  hs_model_info_free(&m);
  /* no outputs listed: the conventional name */
  js = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"UINT8\"}]}";
  CHECK_OK(hs_kserve_parse_metadata(js, strlen(js), "m3", &m));
  CHECK(strcmp(m.output_name, "OUTPUT__0") == 0);
  hs_model_info_free(&m);
  hs_model_info_free(&m);
  struct {
    const char *json;
    hs_status_code code;
    const char *msg;
  } bad[] = {
      {"", HS_INVALID_ARGUMENT, "not JSON"},
      {"{\"inputs\":[", HS_INVALID_ARGUMENT, "not JSON"},
      {"[1,2]", HS_INVALID_ARGUMENT, "not a JSON object"},
      {"{}", HS_INVALID_ARGUMENT, "no input"},
      {"{\"inputs\":[]}", HS_INVALID_ARGUMENT, "no input"},
      {"{\"inputs\":[{\"name\":\"x\"}]}", HS_INVALID_ARGUMENT, "no input"},
      {"{\"inputs\":[{\"name\":5,\"datatype\":\"UINT8\"}]}", HS_INVALID_ARGUMENT, "no input"},
      {"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"BYTES\"}]}", HS_UNIMPLEMENTED, "UINT8 or FP32"},
      {"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP16\"}]}", HS_UNIMPLEMENTED, "FP16"},
      {"{\"error\":\"model is loading\"}", HS_FAILED_PRECONDITION, "model is loading"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hs_status *st = hs_kserve_parse_metadata(bad[i].json, strlen(bad[i].json), "mm", &m);
    CHECK_MSG(hs_status_code_of(st) == bad[i].code && strstr(hs_status_message(st), bad[i].msg) &&
                  strstr(hs_status_message(st), "mm"),
              "case %zu: %s", i, hs_status_message(st));
    hs_status_free(st);
    CHECK(m.input_name == NULL);
  }
}

/* -------------------------------------------------------------- request -- */

static hs_status *small_image(hs_image *img) {
  HS_RETURN_IF_ERROR(hs_image_alloc(img, 5, 3));
  for (int i = 0; i < 5 * 3 * 3; i++) img->rgb[i] = (uint8_t)(i * 5 + 1);
  return NULL;
}

HS_TEST(request_uint8_and_fp32) {
  hs_image img;
  CHECK_OK(small_image(&img));
  hs_model_info info = {.name = "det", .input_name = "in\"put", .input_dtype = HS_U8,
                        .output_name = "OUTPUT__0"};
  for (int f = 0; f < 2; f++) {
    info.input_dtype = f ? HS_F32 : HS_U8;
    hs_kserve_body b;
    CHECK_OK(hs_kserve_build_infer(&info, &img, &b));
    size_t esize = f ? 4 : 1;
    CHECK(b.size == b.header_len + 45 * esize);
    json_t *root = json_loadb((const char *)b.data, b.header_len, 0, NULL);
    CHECK(root);
    json_t *in = json_array_get(json_object_get(root, "inputs"), 0);
    json_t *out = json_array_get(json_object_get(root, "outputs"), 0);
    json_t *shape = json_object_get(in, "shape");
    bool ok = strcmp(json_string_value(json_object_get(in, "name")), "in\"put") == 0 &&
              strcmp(json_string_value(json_object_get(in, "datatype")), f ? "FP32" : "UINT8") == 0 &&
              json_array_size(shape) == 4 && json_integer_value(json_array_get(shape, 0)) == 1 &&
              json_integer_value(json_array_get(shape, 1)) == 3 &&
              json_integer_value(json_array_get(shape, 2)) == 3 &&
              json_integer_value(json_array_get(shape, 3)) == 5 &&
              json_integer_value(json_object_get(json_object_get(in, "parameters"),
                                                 "binary_data_size")) == (json_int_t)(45 * esize) &&
              strcmp(json_string_value(json_object_get(out, "name")), "OUTPUT__0") == 0 &&
              json_is_true(json_object_get(json_object_get(out, "parameters"), "binary_data"));
    json_decref(root);
    /* NCHW: element (c, y, x) is the image's pixel (x, y) channel c */
    for (int c = 0; ok && c < 3; c++)
      for (int y = 0; y < 3; y++)
        for (int x = 0; x < 5; x++) {
          uint8_t want = img.rgb[(y * 5 + x) * 3 + c];
          size_t k = (size_t)(c * 15 + y * 5 + x);
          if (f) {
            float v;
            memcpy(&v, b.data + b.header_len + 4 * k, 4);
            if (v != (float)want / 255.0f) ok = false;
          } else if (b.data[b.header_len + k] != want) {
            ok = false;
          }
        }
    hs_kserve_body_free(&b);
    CHECK(ok);
  }
  hs_kserve_body b;
  info.input_dtype = HS_I32;
  CHECK_ERR(hs_kserve_build_infer(&info, &img, &b), HS_UNIMPLEMENTED);
  hs_image_free(&img);
  info.input_dtype = HS_U8;
  CHECK_ERR(hs_kserve_build_infer(&info, &img, &b), HS_INVALID_ARGUMENT);
}

/* --------------------------------------------------------------- answer -- */

HS_TEST(answer_binary) {
  /* another binary output first: ours starts after its 8 bytes */
  uint8_t tail[8 + sizeof ROWS];
  int32_t aux[2] = {7, 8};
  memcpy(tail, aux, 8);
  memcpy(tail + 8, ROWS, sizeof ROWS);
  char js[512];
  snprintf(js, sizeof js,
           "{\"model_name\":\"det\",\"outputs\":[{\"name\":\"aux\",\"datatype\":\"INT32\","
           "\"shape\":[2],\"parameters\":{\"binary_data_size\":8}},{\"name\":\"OUTPUT__0\","
           "\"datatype\":\"FP32\",\"shape\":[2,6],\"parameters\":{\"binary_data_size\":%zu}}],"
           "\"parameters\":{\"stage1_us\":12,\"note\":\"x\"}}",
           sizeof ROWS);
  answer a = make_answer(js, tail, sizeof tail);
  hs_detections d;
  char *params;
  hs_status *st = hs_kserve_parse_infer(a.data, a.n, a.header_len, "OUTPUT__0", &d, &params);
  free(a.data);
  CHECK_OK(st);
  bool ok = rows_equal(&d, 2, 6) && params && strstr(params, "\"stage1_us\":12");
  CHECK(hs_detection_class(&d, 0) == 1 && hs_detection_class(&d, 1) == 18);
  CHECK(hs_detection_class(&d, 2) == -1);
  hs_detections_free(&d);
  free(params);
  CHECK(ok);
}

HS_TEST(answer_json_flat_nested_and_dtypes) {
  const char *forms[] = {
      /* flat FP32 */
      "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[2,6],\"data\":"
      "[10.5,20.25,110,220,0.97,1,30,40,50,60,0.3,18]}]}",
      /* nested, with an unrelated output first */
      "{\"outputs\":[{\"name\":\"aux\",\"datatype\":\"INT32\",\"shape\":[1],\"data\":[3]},"
      "{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[2,6],\"data\":"
      "[[10.5,20.25,110,220,0.97,1],[30,40,50,60,0.3,18]]}]}",
      /* FP64 and a leading dim of 1 */
      "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP64\",\"shape\":[1,2,6],\"data\":"
      "[10.5,20.25,110,220,0.97,1,30,40,50,60,0.3,18]}]}",
      /* the only output, under another name */
      "{\"outputs\":[{\"name\":\"detections\",\"datatype\":\"FP32\",\"shape\":[2,6],\"data\":"
      "[10.5,20.25,110,220,0.97,1,30,40,50,60,0.3,18]}]}",
  };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    hs_detections d;
    char *params = (char *)1;
    hs_status *st = hs_kserve_parse_infer(forms[i], strlen(forms[i]), -1, "OUTPUT__0", &d, &params);
    CHECK_MSG(!st, "form %zu: %s", i, hs_status_message(st));
    bool ok = rows_equal(&d, 2, 6) && params == NULL;
    hs_detections_free(&d);
    CHECK_MSG(ok, "form %zu", i);
  }
  /* FP16 binary: values that f16 holds exactly */
  uint16_t h[6] = {0x4900 /* 10 */, 0x4D00 /* 20 */, 0x0000, 0x3C00 /* 1 */, 0x3800 /* .5 */,
                   0x4200 /* 3 */};
  const char *js = "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP16\",\"shape\":[1,6],"
                   "\"parameters\":{\"binary_data_size\":12}}]}";
  answer a = make_answer(js, h, sizeof h);
  hs_detections d;
  hs_status *st = hs_kserve_parse_infer(a.data, a.n, a.header_len, "OUTPUT__0", &d, NULL);
  free(a.data);
  CHECK_OK(st);
  bool ok = d.count == 1 && d.rows[0] == 10 && d.rows[1] == 20 && d.rows[3] == 1 &&
            d.rows[4] == 0.5f && hs_detection_class(&d, 0) == 3;
  hs_detections_free(&d);
  CHECK(ok);
}

HS_TEST(answer_five_columns_and_empty) {
  const char *js = "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[1,5],"
                   "\"data\":[1,2,3,4,0.5]}]}";
  hs_detections d;
  CHECK_OK(hs_kserve_parse_infer(js, strlen(js), -1, "OUTPUT__0", &d, NULL));
  bool ok = d.count == 1 && d.cols == 5 && d.rows[4] == 0.5f && hs_detection_class(&d, 0) == -1;
  hs_detections_free(&d);
  CHECK(ok);
  const char *empties[] = {
      "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[0,6],\"data\":[]}]}",
      ("{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[0,5],"
       "\"parameters\":{\"binary_data_size\":0}}]}"),
      "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[0],\"data\":[]}]}",
  };
  for (size_t i = 0; i < 3; i++) {
    answer a = make_answer(empties[i], i == 1 ? "" : NULL, 0);
    hs_status *st = hs_kserve_parse_infer(a.data, a.n, a.header_len, "OUTPUT__0", &d, NULL);
    free(a.data);
    CHECK_MSG(!st, "%zu: %s", i, hs_status_message(st));
    ok = d.count == 0 && d.rows == NULL && (d.cols == 5 || d.cols == 6);
    hs_detections_free(&d);
    CHECK(ok);
  }
  /* class values that are not class ids */
  js = "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[3,6],"
       "\"data\":[0,0,1,1,0.9,-1, 0,0,1,1,0.9,2.5, 0,0,1,1,0.9,1e30]}]}";
  CHECK_OK(hs_kserve_parse_infer(js, strlen(js), -1, "OUTPUT__0", &d, NULL));
  ok = hs_detection_class(&d, 0) == -1 && hs_detection_class(&d, 1) == -1 &&
       hs_detection_class(&d, 2) == -1;
  hs_detections_free(&d);
  CHECK(ok);
}

HS_TEST(answer_errors) {
  struct {
    const char *json;
    const char *msg;
  } bad[] = {
      {"not json", "not JSON"},
      {"{\"error\":\"model 'x' failed: out of scratch\"}", "out of scratch"},
      {"{\"error\":{\"code\":3}}", "answered an error"},
      {"[]", "not a JSON object"},
      {"{}", "no outputs"},
      {"{\"outputs\":[]}", "no outputs"},
      {"{\"outputs\":[1]}", "not an object"},
      {"{\"outputs\":[{\"name\":\"a\",\"datatype\":\"FP32\",\"shape\":[1,6],\"data\":[1,2,3,4,5,6]},"
       "{\"name\":\"b\",\"datatype\":\"FP32\",\"shape\":[1,6],\"data\":[1,2,3,4,5,6]}]}",
       "no output 'OUTPUT__0'"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"BYTES\",\"shape\":[1,6],\"data\":[]}]}",
       "not a number type"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"shape\":[1,6],\"data\":[]}]}", "not a number type"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[2,4],"
       "\"data\":[1,2,3,4,5,6,7,8]}]}", "[2, 4]"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[6],"
       "\"data\":[1,2,3,4,5,6]}]}", "[N, 5] or [N, 6]"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[-1,6],"
       "\"data\":[]}]}", "non-negative"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":\"2x6\","
       "\"data\":[]}]}", "no valid shape"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[100000,100000,6],"
       "\"data\":[]}]}", "larger than"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[2,6],"
       "\"data\":[1,2,3]}]}", "must be 12 numbers"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[1,6],"
       "\"data\":[1,2,3,4,5,6,7]}]}", "more values"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[1,6],"
       "\"data\":[1,2,\"3\",4,5,6]}]}", "must be 6 numbers"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[1,6]}]}",
       "neither data nor"},
      {"{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[1,6],"
       "\"parameters\":{\"binary_data_size\":24}}]}", "truncated"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hs_detections d;
    char *params = (char *)1;
    /* the binary-size case needs a header length to have a (zero-byte) tail */
    int64_t hl = strstr(bad[i].json, "binary_data_size") ? (int64_t)strlen(bad[i].json) : -1;
    hs_status *st = hs_kserve_parse_infer(bad[i].json, strlen(bad[i].json), hl, "OUTPUT__0", &d,
                                          &params);
    CHECK_MSG(st && strstr(hs_status_message(st), bad[i].msg), "case %zu: %s", i,
              hs_status_message(st));
    hs_status_free(st);
    CHECK(d.rows == NULL && d.count == 0 && params == NULL);
  }
}

HS_TEST(answer_lies_about_sizes) {
  char js[256];
  /* binary_data_size disagrees with the shape */
  snprintf(js, sizeof js, "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":"
           "[1,6],\"parameters\":{\"binary_data_size\":%zu}}]}", sizeof ROWS);
  answer a = make_answer(js, ROWS, sizeof ROWS);
  hs_detections d;
  hs_status *st = hs_kserve_parse_infer(a.data, a.n, a.header_len, "OUTPUT__0", &d, NULL);
  CHECK_MSG(st && strstr(hs_status_message(st), "binary_data_size is 48"), "%s",
            hs_status_message(st));
  hs_status_free(st);
  /* the header length is past the body */
  CHECK_ERR(hs_kserve_parse_infer(a.data, a.n, (int64_t)a.n + 1, "OUTPUT__0", &d, NULL),
            HS_INVALID_ARGUMENT);
  /* the header length cuts the JSON */
  CHECK_ERR(hs_kserve_parse_infer(a.data, a.n, 10, "OUTPUT__0", &d, NULL), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_kserve_parse_infer(a.data, a.n, 0, "OUTPUT__0", &d, NULL), HS_INVALID_ARGUMENT);
  free(a.data);
  /* a binary_data_size that is not a size */
  const char *neg = "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":[1,6],"
                    "\"parameters\":{\"binary_data_size\":-4}}]}";
  CHECK_ERR(hs_kserve_parse_infer(neg, strlen(neg), (int64_t)strlen(neg), "OUTPUT__0", &d, NULL),
            HS_INVALID_ARGUMENT);
  /* an earlier output's blob runs past the end */
  snprintf(js, sizeof js, "{\"outputs\":[{\"name\":\"aux\",\"datatype\":\"FP32\",\"shape\":[1000],"
           "\"parameters\":{\"binary_data_size\":4000}},{\"name\":\"OUTPUT__0\",\"datatype\":"
           "\"FP32\",\"shape\":[2,6],\"parameters\":{\"binary_data_size\":%zu}}]}", sizeof ROWS);
  a = make_answer(js, ROWS, sizeof ROWS);
  st = hs_kserve_parse_infer(a.data, a.n, a.header_len, "OUTPUT__0", &d, NULL);
  free(a.data);
  CHECK_MSG(st && strstr(hs_status_message(st), "truncated"), "%s", hs_status_message(st));
  hs_status_free(st);
}

/* Every prefix of a valid binary answer, and random byte flips: an error or
 * a result, never a crash or an overread (ASan). */
HS_TEST(answer_truncated_at_every_byte_and_garbled) {
  char js[256];
  snprintf(js, sizeof js, "{\"outputs\":[{\"name\":\"OUTPUT__0\",\"datatype\":\"FP32\",\"shape\":"
           "[2,6],\"parameters\":{\"binary_data_size\":%zu}}]}", sizeof ROWS);
  answer a = make_answer(js, ROWS, sizeof ROWS);
  int accepted = 0;
  for (size_t cut = 0; cut < a.n; cut++) {
    uint8_t *copy = malloc(cut ? cut : 1);
    memcpy(copy, a.data, cut);
    hs_detections d;
    /* with the header length as sent, and as if the header were missing */
    for (int k = 0; k < 2; k++) {
      hs_status *st = hs_kserve_parse_infer(copy, cut, k ? -1 : a.header_len, "OUTPUT__0", &d, NULL);
      if (!st) accepted++;
      hs_status_free(st);
      hs_detections_free(&d);
    }
    free(copy);
  }
  CHECK_MSG(accepted == 0, "%d truncated answers accepted", accepted);
  uint64_t s = 12345;
  for (int t = 0; t < 2000; t++) {
    uint8_t *copy = malloc(a.n);
    memcpy(copy, a.data, a.n);
    for (int k = 0; k < 3; k++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      copy[(s >> 33) % a.n] = (uint8_t)(s >> 20);
    }
    hs_detections d;
    char *params;
    hs_status *st = hs_kserve_parse_infer(copy, a.n, a.header_len, "OUTPUT__0", &d, &params);
    hs_status_free(st);
    hs_detections_free(&d);
    free(params);
    free(copy);
  }
  free(a.data);
}

HS_TEST(error_text) {
  const char *e = "{\"error\":\"unknown model 'x'\"}";
  char *m = hs_kserve_error_text(e, strlen(e));
  CHECK(m && strcmp(m, "unknown model 'x'") == 0);
  free(m);
  const char *html = "<html><body>502 Bad\x01Gateway</body></html>";
  m = hs_kserve_error_text(html, strlen(html));
  CHECK(m && strstr(m, "502 Bad Gateway"));
  free(m);
  m = hs_kserve_error_text(NULL, 0);
  CHECK(m && strstr(m, "no body"));
  free(m);
  char big[1000];
  memset(big, 'a', sizeof big);
  m = hs_kserve_error_text(big, sizeof big);
  CHECK(m && strlen(m) == 203 && strcmp(m + 200, "...") == 0);
  free(m);
}

int main(void) {
  HS_RUN(metadata);
  HS_RUN(request_uint8_and_fp32);
  HS_RUN(answer_binary);
  HS_RUN(answer_json_flat_nested_and_dtypes);
  HS_RUN(answer_five_columns_and_empty);
  HS_RUN(answer_errors);
  HS_RUN(answer_lies_about_sizes);
  HS_RUN(answer_truncated_at_every_byte_and_garbled);
  HS_RUN(error_text);
  return hs_test_summary();
}
