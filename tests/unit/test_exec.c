/* test_exec.c - the executor: calls, control flow, checks, memory plan,
 * concurrency and error reporting, through the public runtime API. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hloserve/runtime.h"
#include "testlib.h"

static hs_status *compile(const char *text, hs_program **p) {
  return hs_program_from_text(text, strlen(text), "test.mlir", NULL, p);
}

static const char *k_calls =
    "module @m {\n"
    "  func.func public @main(%arg0: tensor<4xf32>, %arg1: tensor<4xf32>) -> tensor<4xf32> {\n"
    "    %0 = call @axpy(%arg0, %arg1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>\n"
    "    %1 = stablehlo.multiply %0, %0 : tensor<4xf32>\n"
    "    return %1 : tensor<4xf32>\n"
    "  }\n"
    "  func.func private @axpy(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {\n"
    "    %c = stablehlo.constant dense<2.0> : tensor<4xf32>\n"
    "    %0 = stablehlo.multiply %a, %c : tensor<4xf32>\n"
    "    %1 = stablehlo.add %0, %b : tensor<4xf32>\n"
    "    return %1 : tensor<4xf32>\n"
    "  }\n"
    "}\n";

HS_TEST(call_and_plan) {
  hs_program *p;
  CHECK_OK(compile(k_calls, &p));
  float a[4] = {1, 2, 3, 4}, b[4] = {1, 1, 1, 1}, r[4];
  hs_tensor in[2] = {{HS_F32, {1, {4}}, a}, {HS_F32, {1, {4}}, b}};
  hs_tensor out = {HS_F32, {1, {4}}, r};
  for (int rep = 0; rep < 3; rep++) {
    CHECK_OK(hs_program_run(p, in, 2, &out, 1));
    for (int i = 0; i < 4; i++) CHECK(r[i] == (2 * a[i] + 1) * (2 * a[i] + 1));
  }
  /* Runtime-allocated output. */
  hs_tensor out2 = {0};
  CHECK_OK(hs_program_run(p, in, 2, &out2, 1));
  CHECK(out2.data && ((float *)out2.data)[3] == 81.0f);
  free(out2.data);
  /* Wrong input shape. */
  hs_tensor bad[2] = {{HS_F32, {1, {3}}, a}, {HS_F32, {1, {4}}, b}};
  CHECK_ERR(hs_program_run(p, bad, 2, &out, 1), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_program_run(p, in, 1, &out, 1), HS_INVALID_ARGUMENT);
  hs_program_free(p);
}

static const char *k_while =
    "func.func @main(%n: tensor<i32>) -> (tensor<i32>, tensor<f32>) {\n"
    "  %c0 = stablehlo.constant dense<0> : tensor<i32>\n"
    "  %c1 = stablehlo.constant dense<1> : tensor<i32>\n"
    "  %f0 = stablehlo.constant dense<0.5> : tensor<f32>\n"
    "  %0:2 = stablehlo.while(%i = %c0, %acc = %f0) : tensor<i32>, tensor<f32>\n"
    "   cond {\n"
    "    %p = stablehlo.compare LT, %i, %n, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>\n"
    "    stablehlo.return %p : tensor<i1>\n"
    "  } do {\n"
    "    %j = stablehlo.add %i, %c1 : tensor<i32>\n"
    "    %a = stablehlo.add %acc, %acc : tensor<f32>\n"
    "    stablehlo.return %j, %a : tensor<i32>, tensor<f32>\n"
    "  }\n"
    "  return %0#0, %0#1 : tensor<i32>, tensor<f32>\n"
    "}\n";

HS_TEST(while_loop) {
  hs_program *p;
  CHECK_OK(compile(k_while, &p));
  int32_t n = 5;
  hs_tensor in = {HS_I32, {0, {0}}, &n};
  hs_tensor out[2] = {{0}, {0}};
  CHECK_OK(hs_program_run(p, &in, 1, out, 2));
  CHECK(*(int32_t *)out[0].data == 5);
  CHECK(*(float *)out[1].data == 16.0f);
  free(out[0].data);
  free(out[1].data);
  n = 0; /* the body never runs: results are the initial values */
  memset(out, 0, sizeof out);
  CHECK_OK(hs_program_run(p, &in, 1, out, 2));
  CHECK(*(int32_t *)out[0].data == 0 && *(float *)out[1].data == 0.5f);
  free(out[0].data);
  free(out[1].data);
  hs_program_free(p);
}

static const char *k_if_case =
    "func.func @main(%p: tensor<i1>, %k: tensor<i32>, %x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>) {\n"
    "  %0 = \"stablehlo.if\"(%p) ({\n"
    "    %n = stablehlo.negate %x : tensor<2xf32>\n"
    "    stablehlo.return %n : tensor<2xf32>\n"
    "  }, {\n"
    "    stablehlo.return %x : tensor<2xf32>\n"
    "  }) : (tensor<i1>) -> tensor<2xf32>\n"
    "  %1 = \"stablehlo.case\"(%k) ({\n"
    "    %a = stablehlo.add %x, %x : tensor<2xf32>\n"
    "    stablehlo.return %a : tensor<2xf32>\n"
    "  }, {\n"
    "    %m = stablehlo.multiply %x, %x : tensor<2xf32>\n"
    "    stablehlo.return %m : tensor<2xf32>\n"
    "  }) : (tensor<i32>) -> tensor<2xf32>\n"
    "  return %0, %1 : tensor<2xf32>, tensor<2xf32>\n"
    "}\n";

HS_TEST(if_and_case) {
  hs_program *p;
  CHECK_OK(compile(k_if_case, &p));
  uint8_t pred = 1;
  int32_t k = 0;
  float x[2] = {3, -4}, r0[2], r1[2];
  hs_tensor in[3] = {{HS_PRED, {0, {0}}, &pred}, {HS_I32, {0, {0}}, &k}, {HS_F32, {1, {2}}, x}};
  hs_tensor out[2] = {{HS_F32, {1, {2}}, r0}, {HS_F32, {1, {2}}, r1}};
  CHECK_OK(hs_program_run(p, in, 3, out, 2));
  CHECK(r0[0] == -3 && r1[1] == -8);
  pred = 0;
  k = 7; /* out of range: the last branch */
  CHECK_OK(hs_program_run(p, in, 3, out, 2));
  CHECK(r0[0] == 3 && r1[1] == 16);
  k = -1;
  CHECK_OK(hs_program_run(p, in, 3, out, 2));
  CHECK(r1[0] == 9);
  hs_program_free(p);
}

HS_TEST(errors_are_located) {
  hs_program *p = NULL;
  hs_status *st = compile("func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n"
                          "  %0 = stablehlo.frobnicate %a : tensor<2xf32>\n"
                          "  return %0 : tensor<2xf32>\n}\n",
                          &p);
  CHECK(st != NULL && p == NULL);
  CHECK_MSG(strncmp(hs_status_message(st), "test.mlir:2:", 12) == 0, "%s", hs_status_message(st));
  hs_status_free(st);
  st = compile("func.func @main() -> () {\n  %0 = call @nope() : () -> tensor<f32>\n  return\n}\n", &p);
  CHECK(st != NULL);
  CHECK_MSG(strstr(hs_status_message(st), "nope") != NULL, "%s", hs_status_message(st));
  hs_status_free(st);
  hs_program_options o = {"absent", 1};
  CHECK_ERR(hs_program_from_text(k_calls, strlen(k_calls), "t", &o, &p), HS_NOT_FOUND);
}

static const char *k_checks =
    "func.func @main() {\n"
    "  %a = stablehlo.constant dense<[1.0, 2.0]> : tensor<2xf32>\n"
    "  %b = stablehlo.constant dense<[1.0, 2.0000002]> : tensor<2xf32>\n"
    "  stablehlo.custom_call @check.expect_close(%a, %b) {has_side_effect = true} : (tensor<2xf32>, tensor<2xf32>) -> ()\n"
    "  stablehlo.custom_call @check.expect_almost_eq(%a, %b) {has_side_effect = true} : (tensor<2xf32>, tensor<2xf32>) -> ()\n"
    "  stablehlo.custom_call @check.expect_eq(%a, %b) {has_side_effect = true} : (tensor<2xf32>, tensor<2xf32>) -> ()\n"
    "  return\n"
    "}\n";

HS_TEST(check_ops) {
  const char *path = "/tmp/hs_test_checks.mlir";
  FILE *f = fopen(path, "w");
  CHECK(f);
  fputs(k_checks, f);
  fclose(f);
  hs_status *st = hs_check_file(path);
  CHECK(hs_status_code_of(st) == HS_FAILED_PRECONDITION);
  CHECK_MSG(strstr(hs_status_message(st), "check.expect_eq") || strstr(hs_status_message(st), ":6:"), "%s",
            hs_status_message(st));
  hs_status_free(st);
  f = fopen(path, "w");
  fputs("func.func @ok() {\n  %a = stablehlo.constant dense<3> : tensor<i32>\n"
        "  check.expect_eq_const %a, dense<3> : tensor<i32>\n  func.return\n}\n"
        "// -----\n"
        "func.func @bad() {\n  %a = stablehlo.constant dense<3> : tensor<i32>\n"
        "  check.expect_eq_const %a, dense<4> : tensor<i32>\n  func.return\n}\n",
        f);
  fclose(f);
  st = hs_check_file(path);
  CHECK(hs_status_code_of(st) == HS_FAILED_PRECONDITION);
  CHECK_MSG(strstr(hs_status_message(st), ":9:") != NULL, "%s", hs_status_message(st));
  hs_status_free(st);
  remove(path);
}

typedef struct {
  hs_program *p;
  int failures;
} worker_arg;

static void *worker(void *arg) {
  worker_arg *w = arg;
  for (int rep = 0; rep < 200; rep++) {
    float a[4] = {(float)rep, 1, 2, 3}, b[4] = {0, 0, 0, 1}, r[4];
    hs_tensor in[2] = {{HS_F32, {1, {4}}, a}, {HS_F32, {1, {4}}, b}};
    hs_tensor out = {HS_F32, {1, {4}}, r};
    hs_status *st = hs_program_run(w->p, in, 2, &out, 1);
    if (st || r[0] != 4.0f * rep * rep || r[3] != 49.0f) w->failures++;
    hs_status_free(st);
  }
  return NULL;
}

HS_TEST(concurrent_runs) {
  hs_program *p;
  CHECK_OK(compile(k_calls, &p));
  pthread_t t[4];
  worker_arg w[4];
  for (int i = 0; i < 4; i++) {
    w[i].p = p;
    w[i].failures = 0;
    pthread_create(&t[i], NULL, worker, &w[i]);
  }
  int fails = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    fails += w[i].failures;
  }
  CHECK(fails == 0);
  hs_program_free(p);
}

int main(void) {
  HS_RUN(call_and_plan);
  HS_RUN(while_loop);
  HS_RUN(if_and_case);
  HS_RUN(errors_are_located);
  HS_RUN(check_ops);
  HS_RUN(concurrent_runs);
  return hs_test_summary();
}
