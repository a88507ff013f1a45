/* test_passes.c - the compile-time passes: call inlining and element-wise
 * fusion must not change a single bit of any result.  Each program runs
 * with the passes and with them off (HS_NO_FUSE) and the outputs are
 * compared bitwise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hloserve/runtime.h"
#include "testlib.h"

/* BatchNorm + ReLU as torchax writes it, through a private @relu, plus an
 * escaping intermediate (%2 is also returned) and a compare/select pair. */
static const char *k_prog =
    "func.func public @main(%x: tensor<1x8x33x35xf32>, %m: tensor<8xf32>, %s: tensor<8xf32>) -> "
    "(tensor<1x8x33x35xf32>, tensor<1x8x33x35xf32>, tensor<1x8x33x35xf32>) {\n"
    "  %mr = stablehlo.reshape %m : (tensor<8xf32>) -> tensor<1x8x1x1xf32>\n"
    "  %mb = stablehlo.broadcast_in_dim %mr, dims = [0, 1, 2, 3] : (tensor<1x8x1x1xf32>) -> tensor<1x8x33x35xf32>\n"
    "  %sb = stablehlo.broadcast_in_dim %s, dims = [1] : (tensor<8xf32>) -> tensor<1x8x33x35xf32>\n"
    "  %1 = stablehlo.subtract %x, %mb : tensor<1x8x33x35xf32>\n"
    "  %2 = stablehlo.multiply %1, %sb : tensor<1x8x33x35xf32>\n"
    "  %3 = call @relu(%2) : (tensor<1x8x33x35xf32>) -> tensor<1x8x33x35xf32>\n"
    "  %c = stablehlo.constant dense<0.25> : tensor<f32>\n"
    "  %cb = stablehlo.broadcast_in_dim %c, dims = [] : (tensor<f32>) -> tensor<1x8x33x35xf32>\n"
    "  %p = stablehlo.compare GT, %3, %cb, FLOAT : (tensor<1x8x33x35xf32>, tensor<1x8x33x35xf32>) -> tensor<1x8x33x35xi1>\n"
    "  %e = stablehlo.exponential %1 : tensor<1x8x33x35xf32>\n"
    "  %4 = stablehlo.select %p, %e, %3 : tensor<1x8x33x35xi1>, tensor<1x8x33x35xf32>\n"
    "  return %4, %2, %3 : tensor<1x8x33x35xf32>, tensor<1x8x33x35xf32>, tensor<1x8x33x35xf32>\n"
    "}\n"
    "func.func private @relu(%a: tensor<1x8x33x35xf32>) -> tensor<1x8x33x35xf32> {\n"
    "  %z = stablehlo.constant dense<0.0> : tensor<f32>\n"
    "  %zb = stablehlo.broadcast_in_dim %z, dims = [] : (tensor<f32>) -> tensor<1x8x33x35xf32>\n"
    "  %r = stablehlo.maximum %a, %zb : tensor<1x8x33x35xf32>\n"
    "  return %r : tensor<1x8x33x35xf32>\n"
    "}\n";

#define N (8 * 33 * 35)

static void run_prog(float *out0, float *out1, float *out2, int fuse, int *ok) {
  *ok = 0;
  if (fuse) unsetenv("HS_NO_FUSE");
  else setenv("HS_NO_FUSE", "1", 1);
  hs_program *p;
  hs_program_options o = {NULL, 2};
  hs_status *st = hs_program_from_text(k_prog, strlen(k_prog), "passes.mlir", &o, &p);
  unsetenv("HS_NO_FUSE");
  if (st) {
    fprintf(stderr, "%s\n", hs_status_message(st));
    hs_status_free(st);
    return;
  }
  static float x[N], m[8], s[8];
  srand(7);
  for (int i = 0; i < N; i++) x[i] = (float)rand() / RAND_MAX * 4 - 2;
  for (int i = 0; i < 8; i++) {
    m[i] = (float)i / 8 - 0.5f;
    s[i] = 1.0f + (float)i / 4;
  }
  hs_tensor in[3] = {{HS_F32, {4, {1, 8, 33, 35}}, x}, {HS_F32, {1, {8}}, m}, {HS_F32, {1, {8}}, s}};
  hs_tensor out[3] = {{HS_F32, {4, {1, 8, 33, 35}}, out0}, {HS_F32, {4, {1, 8, 33, 35}}, out1},
                      {HS_F32, {4, {1, 8, 33, 35}}, out2}};
  st = hs_program_run(p, in, 3, out, 3);
  if (st) {
    fprintf(stderr, "%s\n", hs_status_message(st));
    hs_status_free(st);
  } else {
    *ok = 1;
  }
  hs_program_free(p);
}

HS_TEST(fusion_and_inlining_are_exact) {
  static float a0[N], a1[N], a2[N], b0[N], b1[N], b2[N];
  int ok;
  run_prog(a0, a1, a2, 1, &ok);
  CHECK(ok);
  run_prog(b0, b1, b2, 0, &ok);
  CHECK(ok);
  CHECK(memcmp(a0, b0, sizeof a0) == 0);
  CHECK(memcmp(a1, b1, sizeof a1) == 0);
  CHECK(memcmp(a2, b2, sizeof a2) == 0);
  /* Spot-check the arithmetic itself: element (c=3, h=10, w=20). */
  int i = 3 * 33 * 35 + 10 * 35 + 20;
  srand(7);
  float x = 0;
  for (int k = 0; k <= i; k++) x = (float)rand() / RAND_MAX * 4 - 2;
  float v = (x - (3.0f / 8 - 0.5f)) * (1.0f + 3.0f / 4);
  CHECK(a1[i] == v);
  CHECK(a2[i] == (v > 0 ? v : 0));
}

/* A weight [2,3] is transposed and scaled (foldable: weights and constants
 * only), then multiplied with the input (not foldable). */
static const char *k_weights =
    "func.func public @main(%w: tensor<2x3xf32>, %x: tensor<3x2xf32>) -> tensor<3x2xf32> {\n"
    "  %t = stablehlo.transpose %w, dims = [1, 0] : (tensor<2x3xf32>) -> tensor<3x2xf32>\n"
    "  %c = stablehlo.constant dense<2.0> : tensor<3x2xf32>\n"
    "  %s = stablehlo.multiply %t, %c : tensor<3x2xf32>\n"
    "  %r = stablehlo.multiply %s, %x : tensor<3x2xf32>\n"
    "  return %r : tensor<3x2xf32>\n"
    "}\n";

HS_TEST(weights_fold_at_bind) {
  const char *path = "/tmp/hs_test_fold.safetensors";
  const char *hdr = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
  float w[6] = {1, 2, 3, 4, 5, 6};
  FILE *f = fopen(path, "wb");
  CHECK(f);
  uint64_t hl = strlen(hdr);
  fwrite(&hl, 8, 1, f);
  fwrite(hdr, 1, hl, f);
  fwrite(w, 4, 6, f);
  fclose(f);
  hs_program *p;
  CHECK_OK(hs_program_from_text(k_weights, strlen(k_weights), "fold.mlir", NULL, &p));
  const char *names[] = {"w"};
  CHECK_OK(hs_program_bind_weights(p, path, names, 1));
  hs_program_memory m;
  hs_program_memory_info(p, &m);
  CHECK(m.weights_bytes == 24);
  CHECK_MSG(m.folded_bytes == 24, "folded %zu bytes", m.folded_bytes); /* the transpose, once */
  CHECK(hs_program_num_inputs(p) == 1);
  float x[6] = {1, 1, 1, 1, 1, -1}, r[6];
  hs_tensor in = {HS_F32, {2, {3, 2}}, x}, out = {HS_F32, {2, {3, 2}}, r};
  for (int rep = 0; rep < 2; rep++) {
    CHECK_OK(hs_program_run(p, &in, 1, &out, 1));
    /* transpose(w) = [[1,4],[2,5],[3,6]] */
    CHECK(r[0] == 2 && r[1] == 8 && r[2] == 4 && r[3] == 10 && r[4] == 6 && r[5] == -12);
  }
  CHECK_ERR(hs_program_bind_weights(p, path, names, 1), HS_FAILED_PRECONDITION);
  hs_program_free(p);
  /* A weight file whose tensor has the wrong shape is refused by name. */
  CHECK_OK(hs_program_from_text(k_weights, strlen(k_weights), "fold.mlir", NULL, &p));
  const char *bad[] = {"nope"};
  CHECK_ERR(hs_program_bind_weights(p, path, bad, 1), HS_NOT_FOUND);
  hs_program_free(p);
  remove(path);
}

int main(void) {
  HS_RUN(fusion_and_inlining_are_exact);
  HS_RUN(weights_fold_at_bind);
  return hs_test_summary();
}
