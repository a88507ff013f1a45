/*
 * test_server.c - unit tests of the server's pieces below HTTP: the JSON
 * reader and KServe v2 codec (including every error path we promise a
 * message for), the scratch pool, the meta registry and context checks, the
 * repository loader on hand-written bundles, and the scheduler (queue bound,
 * meta gate, deadlines, failures, drain) driven with meta models registered
 * in this executable.  The end-to-end tests over HTTP are
 * tests/python/test_server.py.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meta/meta_internal.h"
#include "server/job.h"
#include "server/json_reader.h"
#include "server/kserve.h"
#include "server/metrics.h"
#include "server/repository.h"
#include "server/scheduler.h"
#include "server/scratch.h"
#include "server/util.h"
#include "server/worker.h"
#include "server_testlib.h"
#include "testlib.h"

static bool contains(const hs_status *st, const char *frag) {
  return st && strstr(hs_status_message(st), frag) != NULL;
}

#define CHECK_ERR_MSG(expr, frag)                                                           \
  do {                                                                                    \
    hs_status *e_ = (expr);                                                               \
    CHECK_MSG(contains(e_, frag), "expected '%s', got '%s'", frag, hs_status_message(e_)); \
    hs_status_free(e_);                                                                   \
  } while (0)

/* ---- JSON reader ------------------------------------------------------------ */

HS_TEST(json_strings) {
  hs_arena a;
  hs_arena_init(&a, 256);
  hs_json_reader r;
  const char *s;
  size_t n;
  const char text[] = "\"a\\n\\u00e9\\ud83d\\ude00\\\"/\"";
  hs_json_reader_init(&r, text, sizeof text - 1, &a);
  CHECK_OK(hs_json_string(&r, &s, &n));
  CHECK(n == 1 + 1 + 2 + 4 + 2 && memcmp(s, "a\n\xc3\xa9\xf0\x9f\x98\x80\"/", n) == 0);
  const char *bad[] = {"\"abc", "\"\\x\"", "\"\\ud800\"", "\"\\u0000\"", "\"\xff\"", "\"a\nb\"",
                       "\"\xc0\x80\"", "\"\\u12\""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hs_json_reader_init(&r, bad[i], strlen(bad[i]), &a);
    hs_status *st = hs_json_string(&r, &s, &n);
    CHECK_MSG(contains(st, "malformed JSON"), "case %zu", i);
    hs_status_free(st);
  }
  hs_arena_free(&a);
}

HS_TEST(json_numbers_and_skip) {
  hs_json_reader r;
  const char *s;
  size_t n;
  bool is_int;
  hs_json_reader_init(&r, "-12.5e+3", 8, NULL);
  CHECK_OK(hs_json_number(&r, &s, &n, &is_int));
  CHECK(n == 8 && !is_int);
  const char *bad[] = {"-", "01", "1.", "1e", ".5", "+1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hs_json_reader_init(&r, bad[i], strlen(bad[i]), NULL);
    hs_status *st = hs_json_number(&r, &s, &n, &is_int);
    /* "01" scans as "0" then stops: the caller sees trailing characters */
    if (!st) {
      CHECK(strcmp(bad[i], "01") == 0 && n == 1);
      continue;
    }
    hs_status_free(st);
  }
  int64_t v;
  CHECK(hs_json_parse_i64("-9223372036854775808", 20, &v) && v == INT64_MIN);
  CHECK(!hs_json_parse_i64("9223372036854775808", 19, &v));
  uint64_t u;
  CHECK(hs_json_parse_u64("18446744073709551615", 20, &u) && u == UINT64_MAX);
  CHECK(!hs_json_parse_u64("18446744073709551616", 20, &u));

  hs_arena a;
  hs_arena_init(&a, 256);
  const char doc[] = "{\"a\": [1, {\"b\": null}, \"x\", true], \"c\": {}} ";
  hs_json_reader_init(&r, doc, sizeof doc - 1, &a);
  CHECK_OK(hs_json_skip(&r));
  CHECK(hs_json_at_end(&r));
  char deep[200];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  hs_json_reader_init(&r, deep, 200, &a);
  CHECK_ERR_MSG(hs_json_skip(&r), "nested too deeply");
  int64_t count;
  bool hb, hn;
  const char data[] = "[[1, 2], [true, 3.5]]";
  hs_json_reader_init(&r, data, sizeof data - 1, &a);
  CHECK_OK(hs_json_count_leaves(&r, &count, &hb, &hn));
  CHECK(count == 4 && hb && hn);
  hs_json_reader_init(&r, "[1, {}]", 7, &a);
  CHECK_ERR_MSG(hs_json_count_leaves(&r, &count, &hb, &hn), "holds an object");
  hs_json_reader_init(&r, "[1, 2", 5, &a);
  CHECK_ERR_MSG(hs_json_count_leaves(&r, &count, &hb, &hn), "malformed JSON");
  hs_arena_free(&a);
}

/* ---- KServe codec -------------------------------------------------------------- */

HS_TEST(kserve_parse_json) {
  const char body[] =
      "{\"id\": \"r1\", \"parameters\": {\"timeout\": 2500, \"binary_data_output\": true, "
      "\"other\": [1]}, \"inputs\": [{\"shape\": [2, 2], \"data\": [[1, 2.5], [-3, 4e1]], "
      "\"name\": \"x\", \"datatype\": \"FP32\"}, {\"name\": \"b\", \"datatype\": \"BOOL\", "
      "\"shape\": [3], \"data\": [true, false, true]}, {\"name\": \"u\", \"datatype\": "
      "\"UINT8\", \"shape\": [2], \"data\": [0, 255]}, {\"name\": \"h\", \"datatype\": \"FP16\", "
      "\"shape\": [1], \"data\": [0.5]}], \"outputs\": [{\"name\": \"y\", \"parameters\": "
      "{\"binary_data\": false}}]}";
  hs_kserve_request req;
  CHECK_OK(hs_kserve_parse_request(body, sizeof body - 1, -1, &req));
  CHECK(strcmp(req.id, "r1") == 0 && req.timeout_us == 2500 && req.binary_data_output);
  CHECK(req.num_inputs == 4 && req.outputs_given && req.num_outputs == 1);
  CHECK(req.outputs[0].binary == 0 && strcmp(req.outputs[0].name, "y") == 0);
  const float *x = req.inputs[0].tensor.data;
  CHECK(req.inputs[0].tensor.dtype == HS_F32 && req.inputs[0].tensor.shape.rank == 2);
  CHECK(x[0] == 1.0f && x[1] == 2.5f && x[2] == -3.0f && x[3] == 40.0f);
  const uint8_t *b = req.inputs[1].tensor.data;
  CHECK(b[0] == 1 && b[1] == 0 && b[2] == 1);
  const uint8_t *u = req.inputs[2].tensor.data;
  CHECK(u[0] == 0 && u[1] == 255);
  CHECK(hs_f16_to_f32(*(const uint16_t *)req.inputs[3].tensor.data) == 0.5f);
  hs_kserve_request_free(&req);
}

HS_TEST(kserve_parse_binary) {
  /* Two binary inputs; the JSON length makes the first one misaligned (copied). */
  const char head[] = "{\"inputs\":[{\"name\":\"a\",\"datatype\":\"INT32\",\"shape\":[2],"
                      "\"parameters\":{\"binary_data_size\":8}},{\"name\":\"b\",\"datatype\":"
                      "\"UINT8\",\"shape\":[3],\"parameters\":{\"binary_data_size\":3}}]}";
  size_t hl = sizeof head - 1;
  char *body = malloc(hl + 11);
  memcpy(body, head, hl);
  int32_t a[2] = {7, -9};
  memcpy(body + hl, a, 8);
  memcpy(body + hl + 8, "\x01\x02\x03", 3);
  hs_kserve_request req;
  CHECK_OK(hs_kserve_parse_request(body, hl + 11, (int64_t)hl, &req));
  const int32_t *ga = req.inputs[0].tensor.data;
  CHECK(ga[0] == 7 && ga[1] == -9 && ((uintptr_t)ga % 4) == 0);
  CHECK(memcmp(req.inputs[1].tensor.data, "\x01\x02\x03", 3) == 0);
  hs_kserve_request_free(&req);
  /* every way the lengths can disagree */
  CHECK_ERR_MSG(hs_kserve_parse_request(body, hl + 10, (int64_t)hl, &req), "run past the end");
  hs_kserve_request_free(&req);
  CHECK_ERR_MSG(hs_kserve_parse_request(body, hl + 11, (int64_t)hl + 20, &req), "truncated body");
  hs_kserve_request_free(&req);
  CHECK_ERR_MSG(hs_kserve_parse_request(body, hl + 11, (int64_t)hl - 5, &req), "malformed JSON");
  hs_kserve_request_free(&req);
  CHECK_ERR_MSG(hs_kserve_parse_request(body, hl, -1, &req), "no Inference-Header-Content-Length");
  hs_kserve_request_free(&req);
  free(body);
  int64_t v;
  CHECK_OK(hs_kserve_parse_header_length(" 42 ", &v));
  CHECK(v == 42);
  CHECK_ERR_MSG(hs_kserve_parse_header_length("-1", &v), "non-negative integer");
  CHECK_ERR_MSG(hs_kserve_parse_header_length("99999999999999999999", &v), "non-negative");
}

HS_TEST(kserve_parse_errors) {
  static const struct {
    const char *body, *frag;
  } cases[] = {
      {"", "empty request body"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"INT8\", \"shape\": [1], \"data\": [128]}]}",
       "out of range"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"UINT16\", \"shape\": [1], \"data\": [-1]}]}",
       "out of range"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"INT32\", \"shape\": [1], \"data\": [1.5]}]}",
       "not an integer"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [1], \"data\": [true]}]}",
       "is a boolean"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"BOOL\", \"shape\": [1], \"data\": [1]}]}",
       "BOOL data must be true or false"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [2], \"data\": [1]}]}",
       "data has 1 elements but shape [2] needs 2"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [1], \"data\": [1]}, "
       "{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [1], \"data\": [1]}]}",
       "given twice"},
      {"{\"inputs\": [{\"datatype\": \"FP32\", \"shape\": [1], \"data\": [1]}]}", "has no name"},
      {"{\"inputs\": [{\"name\": \"x\", \"shape\": [1], \"data\": [1]}]}", "has no datatype"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"data\": [1]}]}", "has no shape"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [1,1,1,1,1,1,1,1,1,1,1,1,1], "
       "\"data\": [1]}]}", "rank above"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [1], \"data\": [1], "
       "\"parameters\": {\"shared_memory_region\": \"r\"}}]}", "shared-memory"},
      {"{\"inputs\": [], \"outputs\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}", "requested twice"},
      {"{\"inputs\": [], \"outputs\": [{\"name\": \"a\", \"parameters\": {\"classification\": 2}}]}",
       "classification"},
      {"{\"inputs\": [], \"inputs\": []}", "duplicate key"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [1], \"data\": [1e999999]}]}",
       NULL}, /* overflow is +inf, as strtof says: accepted */
      {"{\"id\": 5, \"inputs\": []}", "id must be a string"},
      {"{\"inputs\": [], \"parameters\": {\"timeout\": -1}}", "outside"},
      {"{\"inputs\": []", "malformed JSON"},
      {"{\"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", \"shape\": [1], \"data\": [NaN]}]}",
       "malformed JSON"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hs_kserve_request req;
    hs_status *st = hs_kserve_parse_request(cases[i].body, strlen(cases[i].body), -1, &req);
    if (!cases[i].frag) {
      CHECK_MSG(!st, "case %zu: %s", i, hs_status_message(st));
    } else {
      CHECK_MSG(contains(st, cases[i].frag), "case %zu: expected '%s', got '%s'", i,
                cases[i].frag, hs_status_message(st));
      CHECK(hs_status_code_of(st) == HS_INVALID_ARGUMENT);
    }
    hs_status_free(st);
    hs_kserve_request_free(&req);
  }
}

HS_TEST(kserve_encode) {
  float y[3] = {1.5f, -0.0f, 1e-30f};
  int64_t z[2] = {INT64_MIN, 7};
  uint8_t p[2] = {1, 0};
  hs_tensor ty = {HS_F32, {1, {3}}, y}, tz = {HS_I64, {2, {1, 2}}, z}, tp = {HS_PRED, {1, {2}}, p};
  hs_kserve_output outs[3] = {{"y", &ty, false}, {"z", &tz, true}, {"p", &tp, false}};
  hs_buf b;
  hs_buf_init(&b);
  size_t hl = 0;
  CHECK_OK(hs_kserve_encode_response(&b, "m\"q", "id\n1", outs, 3, &hl));
  CHECK(hl > 0 && b.len == hl + 16);
  CHECK(memcmp(b.data + hl, z, 16) == 0);
  const char *want =
      "{\"model_name\":\"m\\\"q\",\"model_version\":\"1\",\"id\":\"id\\n1\",\"outputs\":["
      "{\"name\":\"y\",\"datatype\":\"FP32\",\"shape\":[3],\"data\":[1.5,-0,1e-30]},"
      "{\"name\":\"z\",\"datatype\":\"INT64\",\"shape\":[1,2],\"parameters\":{\"binary_data_size\":16}},"
      "{\"name\":\"p\",\"datatype\":\"BOOL\",\"shape\":[2],\"data\":[true,false]}]}";
  CHECK_MSG(hl == strlen(want) && memcmp(b.data, want, hl) == 0, "%.*s", (int)hl, b.data);
  hs_buf_free(&b);
  hs_kserve_encode_error(&b, "bad \xff input");
  CHECK(strcmp(b.data ? (hs_buf_putc(&b, 0), b.data) : "", "{\"error\":\"bad \\ufffd input\"}") == 0);
  hs_buf_free(&b);
}

HS_TEST(kserve_select_outputs) {
  const char *names[] = {"a", "b", "c"};
  int order[3];
  bool bin[3];
  int n;
  hs_kserve_request req;
  const char body[] = "{\"inputs\": [], \"parameters\": {\"binary_data_output\": true}, "
                      "\"outputs\": [{\"name\": \"c\"}, {\"name\": \"a\", \"parameters\": "
                      "{\"binary_data\": false}}]}";
  CHECK_OK(hs_kserve_parse_request(body, sizeof body - 1, -1, &req));
  CHECK_OK(hs_kserve_select_outputs(&req, names, 3, order, bin, &n));
  CHECK(n == 2 && order[0] == 2 && bin[0] && order[1] == 0 && !bin[1]);
  CHECK_ERR_MSG(hs_kserve_select_outputs(&req, names, 1, order, bin, &n), "requested");
  hs_kserve_request_free(&req);
  const char body2[] = "{\"inputs\": [], \"outputs\": [{\"name\": \"zz\"}]}";
  CHECK_OK(hs_kserve_parse_request(body2, sizeof body2 - 1, -1, &req));
  CHECK_ERR_MSG(hs_kserve_select_outputs(&req, names, 3, order, bin, &n), "unknown output 'zz'");
  hs_kserve_request_free(&req);
}

/* ---- scratch pool ------------------------------------------------------------------- */

HS_TEST(scratch_pool_reuses) {
  hs_scratch_pool p;
  hs_scratch_init(&p, 1 << 20);
  void *a, *b, *c;
  for (int round = 0; round < 3; round++) {
    CHECK_OK(hs_scratch_acquire(&p, 1000, &a));
    CHECK_OK(hs_scratch_acquire(&p, 50000, &b));
    CHECK_OK(hs_scratch_acquire(&p, 0, &c));
    CHECK(a != b && b != c && ((uintptr_t)a % 64) == 0);
    CHECK(p.allocations == 3);
    hs_scratch_release(&p);
    CHECK(p.in_use_bytes == 0);
  }
  /* a bigger request in the same position grows that slot only */
  CHECK_OK(hs_scratch_acquire(&p, 2000, &a));
  CHECK(p.allocations == 3);
  CHECK_OK(hs_scratch_acquire(&p, 100000, &b));
  CHECK(p.allocations == 4);
  CHECK_ERR(hs_scratch_acquire(&p, 2 << 20, &c), HS_RESOURCE_EXHAUSTED);
  hs_scratch_release(&p);
  hs_scratch_destroy(&p);
}

/* ---- meta registry and context ---------------------------------------------------- */

static hs_status *noop_run(hs_meta_ctx *ctx, const hs_named_tensor *in, int n) { return NULL; }

HS_TEST(meta_registry) {
  int base = hs_meta_registry_size();
  CHECK_OK(hs_meta_register("reg_a", noop_run));
  CHECK_ERR(hs_meta_register("reg_a", noop_run), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_meta_register("", noop_run), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_meta_register("reg_b", NULL), HS_INVALID_ARGUMENT);
  CHECK(hs_meta_lookup("reg_a") == noop_run && !hs_meta_lookup("reg_b"));
  CHECK_OK(hs_meta_register("reg_b", noop_run));
  hs_meta_registry_truncate(base + 1);
  CHECK(!hs_meta_lookup("reg_b") && hs_meta_lookup("reg_a"));
  hs_meta_unregister("reg_a");
  CHECK(!hs_meta_lookup("reg_a") && hs_meta_registry_size() == base);
}

static int fake_calls;
static hs_status *fake_call(void *h, const char *m, const hs_named_tensor *in, int n,
                            const hs_named_tensor **out, int *n_out) {
  fake_calls++;
  return NULL;
}
static hs_status *fake_scratch(void *h, hs_dtype d, const hs_shape *s, hs_tensor *out) {
  fake_calls++;
  return NULL;
}
static hs_status *fake_output(void *h, const char *name, hs_dtype d, const hs_shape *s,
                              hs_tensor *out) {
  fake_calls++;
  return NULL;
}
static void *fake_slot;
static void **fake_state(void *h, void (*destroy)(void *)) { return &fake_slot; }
static bool fake_expired;
static hs_status *fake_check(void *h) {
  return fake_expired ? hs_status_new(HS_DEADLINE_EXCEEDED, "deadline exceeded") : NULL;
}
static const hs_meta_host_ops FAKE = {fake_call, fake_scratch, fake_output, fake_state, fake_check};

HS_TEST(meta_context_checks_arguments) {
  hs_meta_ctx ctx = {&FAKE, NULL, "m"};
  hs_tensor t;
  hs_shape s = {2, {3, -1}};
  fake_calls = 0;
  CHECK_ERR_MSG(hs_meta_scratch(&ctx, HS_F32, &s, &t), "dim 1 is negative");
  s.dims[1] = 4;
  CHECK_ERR_MSG(hs_meta_scratch(&ctx, (hs_dtype)99, &s, &t), "invalid dtype");
  CHECK_ERR_MSG(hs_meta_scratch(&ctx, HS_F32, NULL, &t), "NULL shape");
  CHECK_ERR_MSG(hs_meta_scratch(NULL, HS_F32, &s, &t), "NULL context");
  s.rank = 13;
  CHECK_ERR_MSG(hs_meta_output(&ctx, "o", HS_F32, &s, &t), "rank 13");
  s.rank = 2;
  s.dims[0] = (int64_t)1 << 40;
  s.dims[1] = (int64_t)1 << 40;
  CHECK_ERR_MSG(hs_meta_output(&ctx, "o", HS_F32, &s, &t), "too large");
  CHECK_ERR_MSG(hs_meta_output(&ctx, NULL, HS_F32, &s, &t), "NULL name");
  const hs_named_tensor *outs;
  int n;
  hs_named_tensor in = {NULL, {HS_F32, {1, {1}}, NULL}};
  CHECK_ERR_MSG(hs_meta_call(&ctx, "x", &in, 1, &outs, &n), "has no name");
  in.name = "a";
  CHECK_ERR_MSG(hs_meta_call(&ctx, "x", &in, 1, &outs, &n), "has no data");
  CHECK_ERR_MSG(hs_meta_call(&ctx, "x", &in, -1, &outs, &n), "bad inputs");
  CHECK(fake_calls == 0);
  float one = 1;
  in.tensor.data = &one;
  CHECK_OK(hs_meta_call(&ctx, "x", &in, 1, &outs, &n));
  CHECK(fake_calls == 1);
  fake_expired = true;
  CHECK_ERR(hs_meta_call(&ctx, "x", &in, 1, &outs, &n), HS_DEADLINE_EXCEEDED);
  CHECK_ERR(hs_meta_check_deadline(&ctx), HS_DEADLINE_EXCEEDED);
  fake_expired = false;
  CHECK(fake_calls == 1);
  CHECK(hs_meta_state(&ctx, NULL) == &fake_slot && hs_meta_state(NULL, NULL) == NULL);
}

/* ---- repository ------------------------------------------------------------------------- */

static char tmp_root[256];

static void write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static void make_bundle(const char *name, const char *manifest, const char *mlir) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
  mkdir(dir, 0755);
  if (mlir) write_file(dir, "model.mlir", mlir);
  if (manifest) write_file(dir, "bundle.json", manifest);
}

static const char DOUBLE_MLIR[] =
    "func.func public @main(%x: tensor<3xf32>) -> tensor<3xf32> {\n"
    "  %0 = stablehlo.add %x, %x : tensor<3xf32>\n"
    "  return %0 : tensor<3xf32>\n}\n";

static const char DOUBLE_JSON[] =
    "{\"format_version\": 1, \"kind\": \"dense\", \"name\": \"%s\", \"inputs\": [{\"name\": "
    "\"x\", \"datatype\": \"FP32\", \"shape\": [3]}], \"outputs\": [{\"name\": \"y\", "
    "\"datatype\": \"%s\", \"shape\": [3]}], \"weights\": {\"file\": null, \"params\": []}, "
    "\"programs\": [{\"file\": \"model.mlir\", \"input_shapes\": [[3]], \"output_shapes\": "
    "[[3]]}]}";

static hs_repository *load_test_repo(void) {
  snprintf(tmp_root, sizeof tmp_root, "/tmp/hs_test_server_%d", (int)getpid());
  mkdir(tmp_root, 0755);
  char m[1024];
  snprintf(m, sizeof m, DOUBLE_JSON, "double", "FP32");
  make_bundle("double", m, DOUBLE_MLIR);
  snprintf(m, sizeof m, DOUBLE_JSON, "wrong_dtype", "INT32");
  make_bundle("wrong_dtype", m, DOUBLE_MLIR);
  snprintf(m, sizeof m, DOUBLE_JSON, "other_name", "FP32");
  make_bundle("misnamed", m, DOUBLE_MLIR);
  make_bundle("broken_json", "{\"format_version\": 1,", NULL);
  make_bundle("no_manifest", NULL, DOUBLE_MLIR);
  make_bundle(".hidden", "{}", NULL);
  hs_repository_options o = {tmp_root, 1, NULL, NULL, NULL};
  hs_repository *repo = NULL;
  hs_status *st = hs_repository_load(&o, &repo);
  hs_status_free(st);
  return repo;
}

static void remove_test_repo(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
}

HS_TEST(repository_loads_and_reports) {
  hs_repository *repo = load_test_repo();
  CHECK(repo && repo->num_models == 4);
  hs_model *d = hs_repository_find(repo, "double");
  CHECK(d && d->ready && d->addressable && d->num_programs == 1);
  hs_model *w = hs_repository_find(repo, "wrong_dtype");
  CHECK(w && !w->ready && strstr(w->reason, "output 'y' is FP32 [3] in the program"));
  hs_model *mn = hs_repository_find(repo, "misnamed");
  CHECK(mn && !mn->ready && strstr(mn->reason, "must equal the folder name"));
  hs_model *bj = hs_repository_find(repo, "broken_json");
  CHECK(bj && !bj->ready && strstr(bj->reason, "bundle.json"));
  CHECK(!hs_repository_find(repo, "no_manifest") && !hs_repository_find(repo, ".hidden"));

  /* input matching */
  float x[3] = {1, 2, 3};
  hs_named_tensor in = {"x", {HS_F32, {1, {3}}, x}};
  const hs_tensor *ordered[2];
  int program;
  CHECK_OK(hs_model_match_inputs(d, &in, 1, ordered, &program));
  CHECK(program == 0 && ordered[0] == &in.tensor);
  in.tensor.shape.dims[0] = 4;
  CHECK_ERR_MSG(hs_model_match_inputs(d, &in, 1, ordered, &program), "must have shape [3], got [4]");
  in.tensor.shape.dims[0] = 3;
  in.tensor.dtype = HS_I32;
  CHECK_ERR_MSG(hs_model_match_inputs(d, &in, 1, ordered, &program), "must be FP32, got INT32");
  in.name = "q";
  CHECK_ERR_MSG(hs_model_match_inputs(d, &in, 1, ordered, &program), "has no input 'q'");
  CHECK_ERR_MSG(hs_model_match_inputs(d, NULL, 0, ordered, &program), "missing input 'x'");

  /* a dense run on a worker, twice: the second allocates nothing */
  hs_worker wk;
  CHECK_OK(hs_worker_init(&wk, 0, repo, NULL, 0));
  in.name = "x";
  in.tensor.dtype = HS_F32;
  CHECK_OK(hs_model_match_inputs(d, &in, 1, ordered, &program));
  size_t allocs = 0;
  for (int round = 0; round < 2; round++) {
    hs_run run = {d, &in, 1, ordered, program, INT64_MAX, NULL};
    const hs_named_tensor *outs;
    int n;
    CHECK_OK(hs_worker_run(&wk, &run, &outs, &n));
    CHECK(n == 1 && strcmp(outs[0].name, "y") == 0);
    const float *y = outs[0].tensor.data;
    CHECK(y[0] == 2 && y[1] == 4 && y[2] == 6);
    hs_worker_release(&wk);
    if (round == 0) allocs = wk.pool.allocations;
  }
  CHECK(wk.pool.allocations == allocs);
  hs_worker_destroy(&wk);
  hs_repository_free(repo);
  remove_test_repo();
}

/* ---- scheduler ----------------------------------------------------------------------------- */

/* A meta model registered here (no dlopen): it waits on `gate` while blocking is set,
 * polling its deadline, then fails or produces OUT = [value]. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool blocking;
static atomic_int running_now, max_running;

static hs_status *gated_run(hs_meta_ctx *ctx, const hs_named_tensor *in, int n) {
  int now = atomic_fetch_add(&running_now, 1) + 1;
  int prev = atomic_load(&max_running);
  while (now > prev && !atomic_compare_exchange_weak(&max_running, &prev, now)) {
  }
  hs_tensor big;
  hs_shape bs = {1, {1 << 16}};
  hs_status *st = hs_meta_scratch(ctx, HS_F32, &bs, &big);
  pthread_mutex_lock(&gate_mu);
  while (!st && blocking) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 5000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&gate_cv, &gate_mu, &ts);
    st = hs_meta_check_deadline(ctx);
  }
  pthread_mutex_unlock(&gate_mu);
  if (!st && n == 1 && *(const int32_t *)in[0].tensor.data < 0)
    st = hs_status_new(HS_INTERNAL, "gated: asked to fail");
  if (!st) {
    hs_shape os = {1, {1}};
    hs_tensor o;
    st = hs_meta_output(ctx, "OUT", HS_F32, &os, &o);
    if (!st) *(float *)o.data = n == 1 ? (float)*(const int32_t *)in[0].tensor.data : 0.0f;
  }
  atomic_fetch_sub(&running_now, 1);
  return st;
}

static void set_blocking(bool b) {
  pthread_mutex_lock(&gate_mu);
  blocking = b;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
}

typedef struct answer_box {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int answered;
} answer_box;

static answer_box box = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void on_answer(hs_job *job, void *cls) {
  pthread_mutex_lock(&box.mu);
  box.answered++;
  pthread_cond_broadcast(&box.cv);
  pthread_mutex_unlock(&box.mu);
}

static bool wait_answers(int n, int timeout_ms) {
  int64_t until = hs_now_ns() + (int64_t)timeout_ms * 1000000;
  pthread_mutex_lock(&box.mu);
  while (box.answered < n && hs_now_ns() < until) {
    pthread_mutex_unlock(&box.mu);
    usleep(1000);
    pthread_mutex_lock(&box.mu);
  }
  bool ok = box.answered >= n;
  pthread_mutex_unlock(&box.mu);
  return ok;
}

static hs_model *gated_model(void) { return test_meta_model("gated", 0, gated_run); }

static int32_t job_values[64];

static hs_job *make_job(hs_model *m, hs_metrics *metrics, int32_t value, int64_t timeout_ns,
                        int slot) {
  hs_job *job = hs_job_new();
  job->model = m;
  job->metrics = metrics;
  job->arrival_ns = hs_now_ns();
  if (timeout_ns) {
    job->deadline_ns = job->arrival_ns + timeout_ns;
    job->req.timeout_us = timeout_ns / 1000;
  }
  job_values[slot] = value;
  job->req.num_inputs = 1;
  job->req.inputs = hs_arena_calloc(&job->req.arena, 1, sizeof(hs_named_tensor));
  job->req.inputs[0].name = "v";
  job->req.inputs[0].tensor = (hs_tensor){HS_I32, {1, {1}}, &job_values[slot]};
  job->on_answer = on_answer;
  return job;
}

static bool body_has(const hs_job *job, const char *frag) {
  size_t n = strlen(frag);
  for (size_t i = 0; job->resp.body && i + n <= job->resp.len; i++)
    if (memcmp(job->resp.body + i, frag, n) == 0) return true;
  return false;
}

HS_TEST(scheduler_queue_gate_deadlines) {
  hs_model *m = gated_model();
  hs_repository repo = {NULL, 1, &m};
  hs_metrics *metrics;
  CHECK_OK(hs_metrics_create(&repo, 2, 1, &metrics));
  hs_scheduler *s;
  hs_scheduler_options so = {2, 2, 1, 0};
  CHECK_OK(hs_scheduler_create(&so, &repo, metrics, &s));
  box.answered = 0;
  set_blocking(true);
  /* a runs (takes the only meta slot), b waits at the gate, c fills the queue, d is refused */
  hs_job *a = make_job(m, metrics, 1, 0, 0), *b = make_job(m, metrics, 2, 0, 1),
         *c = make_job(m, metrics, 3, 0, 2), *d = make_job(m, metrics, 4, 0, 3);
  CHECK_OK(hs_scheduler_submit(s, a));
  int q = 0, r = 0;
  for (int i = 0; i < 1000 && r < 1; i++, usleep(1000)) hs_scheduler_counts(s, &q, &r);
  CHECK(r == 1);
  CHECK_OK(hs_scheduler_submit(s, b));
  CHECK_OK(hs_scheduler_submit(s, c));
  usleep(20000);
  hs_scheduler_counts(s, &q, &r);
  CHECK(q == 2 && r == 1); /* the second worker is idle: the gate holds b and c */
  CHECK_ERR_MSG(hs_scheduler_submit(s, d), "queue is full");
  set_blocking(false);
  CHECK(wait_answers(3, 5000));
  CHECK(atomic_load(&max_running) == 1);
  CHECK(a->resp.status == 200 && b->resp.status == 200 && c->resp.status == 200);
  CHECK(body_has(a, "\"data\":[1]") && body_has(c, "\"data\":[3]"));

  /* a deadline inside the run: answered 504 at the deadline; the run stops at its next check */
  box.answered = 0;
  set_blocking(true);
  hs_job *e = make_job(m, metrics, 5, 50 * 1000000, 4);
  int64_t t0 = hs_now_ns();
  CHECK_OK(hs_scheduler_submit(s, e));
  CHECK(wait_answers(1, 5000));
  int64_t dt = hs_now_ns() - t0;
  CHECK(e->resp.status == 504 && body_has(e, "deadline exceeded") && body_has(e, "gated"));
  CHECK_MSG(dt < 1000 * 1000000LL, "answered after %lld ms", (long long)(dt / 1000000));
  hs_scheduler_counts(s, &q, &r);
  for (int i = 0; i < 1000 && r > 0; i++, usleep(1000)) hs_scheduler_counts(s, &q, &r);
  CHECK(r == 0 && atomic_load(&metrics->scratch_in_use_bytes) == 0);
  set_blocking(false);

  /* a failing run: 500 with its message; its scratch is back */
  box.answered = 0;
  hs_job *f = make_job(m, metrics, -1, 0, 5);
  CHECK_OK(hs_scheduler_submit(s, f));
  CHECK(wait_answers(1, 5000));
  CHECK(f->resp.status == 500 && body_has(f, "gated: asked to fail"));
  CHECK(atomic_load(&metrics->scratch_in_use_bytes) == 0);

  /* drain: a blocked run and a queued job are answered 503 */
  box.answered = 0;
  set_blocking(true);
  hs_job *g = make_job(m, metrics, 7, 0, 6), *h = make_job(m, metrics, 8, 0, 7);
  CHECK_OK(hs_scheduler_submit(s, g));
  CHECK_OK(hs_scheduler_submit(s, h));
  CHECK(!hs_scheduler_drain(s, 30 * 1000000));
  CHECK(wait_answers(2, 5000));
  CHECK(g->resp.status == 503 && h->resp.status == 503 && body_has(h, "shutting down"));
  CHECK_ERR_MSG(hs_scheduler_submit(s, d), "shutting down");
  set_blocking(false);
  CHECK(hs_scheduler_stop(s, (int64_t)5000000000));
  hs_scheduler_free(s);
  hs_job *all[] = {a, b, c, d, e, f, g, h};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hs_job_unref(all[i]);
  hs_metrics_free(metrics);
  hs_arena_free(&m->arena);
  free(m);
}

HS_TEST(metrics_render) {
  hs_model *m = gated_model();
  hs_repository repo = {NULL, 1, &m};
  hs_metrics *metrics;
  CHECK_OK(hs_metrics_create(&repo, 2, 1, &metrics));
  hs_metrics_count_request(metrics, m, 200, 3000000);
  hs_metrics_count_request(metrics, NULL, 404, 1000);
  hs_buf b;
  hs_buf_init(&b);
  hs_metrics_render(metrics, &b);
  hs_buf_putc(&b, 0);
  CHECK(strstr(b.data, "hloserve_requests_total{model=\"gated\",code=\"200\"} 1\n"));
  CHECK(strstr(b.data, "hloserve_requests_total{model=\"\",code=\"404\"} 1\n"));
  CHECK(strstr(b.data, "hloserve_request_duration_seconds_bucket{model=\"gated\",le=\"0.0025\"} 0\n"));
  CHECK(strstr(b.data, "hloserve_request_duration_seconds_bucket{model=\"gated\",le=\"0.005\"} 1\n"));
  CHECK(strstr(b.data, "hloserve_request_duration_seconds_count{model=\"gated\"} 1\n"));
  CHECK(strstr(b.data, "hloserve_meta_slots 1\n"));
  hs_buf_free(&b);
  hs_metrics_free(metrics);
  hs_arena_free(&m->arena);
  free(m);
}

int main(void) {
  hs_log_set_quiet(true);
  HS_RUN(json_strings);
  HS_RUN(json_numbers_and_skip);
  HS_RUN(kserve_parse_json);
  HS_RUN(kserve_parse_binary);
  HS_RUN(kserve_parse_errors);
  HS_RUN(kserve_encode);
  HS_RUN(kserve_select_outputs);
  HS_RUN(scratch_pool_reuses);
  HS_RUN(meta_registry);
  HS_RUN(meta_context_checks_arguments);
  HS_RUN(repository_loads_and_reports);
  HS_RUN(scheduler_queue_gate_deadlines);
  HS_RUN(metrics_render);
  return hs_test_summary();
}
