/*
 * test_cuda_device.c - the CUDA backend on a real GPU (cuda:0).
 *
 * Skipped (exit status 77, with the reason printed) where no GPU can be
 * used: CI machines have none.  Where one is present:
 *  - every float32 conformance file the CPU passes also passes on the GPU
 *    (ops on the device, checks on the host);
 *  - a small CNN (convolutions through cuDNN, a BatchNorm+ReLU fusion group,
 *    max pooling, a dot_general through cuBLAS) with bound weights matches
 *    the CPU within f32 tolerance, first run (graph capture) and later runs
 *    (graph launches) alike, and from 4 threads at once;
 *  - a wrong input shape is refused with a message.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

HS_TEST(conformance_float32_on_gpu) {
  const char *src = getenv("HS_SOURCE_DIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/../shared/conformance/stablehlo-testdata", src ? src : ".");
  DIR *dp = opendir(dir);
  CHECK_MSG(dp != NULL, "conformance folder %s not found", dir);
  int n = 0, cpu = 0, gpu = 0, bad = 0;
  for (struct dirent *e; (e = readdir(dp));) {
    if (!strstr(e->d_name, "float32") || strstr(e->d_name, "complex")) continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    n++;
    hs_status *c = hs_check_file(path);
    if (c) {
      hs_status_free(c);
      continue;
    }
    cpu++;
    hs_status *g = hs_check_file_on(path, "cuda:0");
    if (!g) gpu++;
    else {
      if (bad++ < 20) fprintf(stderr, "GPU fails where the CPU passes: %s\n", hs_status_message(g));
      hs_status_free(g);
    }
  }
  closedir(dp);
  printf("conformance float32 on cuda:0: %d of the %d files the CPU passes (of %d)\n", gpu, cpu, n);
  CHECK(cpu > 100);
  CHECK(bad == 0);
}

/* A small CNN in StableHLO: conv 3x3 -> BatchNorm -> ReLU -> max pool ->
 * conv 1x1 -> flatten -> dense. */
static const char *cnn =
    "func.func @main(%w1: tensor<8x3x3x3xf32>, %m: tensor<8xf32>, %s: tensor<8xf32>, %w2: tensor<4x8x1x1xf32>,"
    " %wd: tensor<64x10xf32>, %x: tensor<2x3x8x8xf32>) -> tensor<2x10xf32> {\n"
    "  %0 = stablehlo.convolution(%x, %w1) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1],"
    " window = {stride = [1, 1], pad = [[1, 1], [1, 1]]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64}"
    " : (tensor<2x3x8x8xf32>, tensor<8x3x3x3xf32>) -> tensor<2x8x8x8xf32>\n"
    "  %1 = stablehlo.broadcast_in_dim %m, dims = [1] : (tensor<8xf32>) -> tensor<2x8x8x8xf32>\n"
    "  %2 = stablehlo.subtract %0, %1 : tensor<2x8x8x8xf32>\n"
    "  %3 = stablehlo.broadcast_in_dim %s, dims = [1] : (tensor<8xf32>) -> tensor<2x8x8x8xf32>\n"
    "  %4 = stablehlo.multiply %2, %3 : tensor<2x8x8x8xf32>\n"
    "  %z = stablehlo.constant dense<0.0> : tensor<2x8x8x8xf32>\n"
    "  %5 = stablehlo.maximum %4, %z : tensor<2x8x8x8xf32>\n"
    "  %ninf = stablehlo.constant dense<0xFF800000> : tensor<f32>\n"
    "  %6 = \"stablehlo.reduce_window\"(%5, %ninf) <{padding = dense<0> : tensor<4x2xi64>,"
    " window_dimensions = array<i64: 1, 1, 2, 2>, window_strides = array<i64: 1, 1, 2, 2>}> ({\n"
    "  ^bb0(%a: tensor<f32>, %b: tensor<f32>):\n"
    "    %t = stablehlo.maximum %a, %b : tensor<f32>\n"
    "    stablehlo.return %t : tensor<f32>\n"
    "  }) : (tensor<2x8x8x8xf32>, tensor<f32>) -> tensor<2x8x4x4xf32>\n"
    "  %7 = stablehlo.convolution(%6, %w2) dim_numbers = [b, f, 0, 1]x[o, i, 0, 1]->[b, f, 0, 1],"
    " window = {stride = [1, 1], pad = [[0, 0], [0, 0]]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64}"
    " : (tensor<2x8x4x4xf32>, tensor<4x8x1x1xf32>) -> tensor<2x4x4x4xf32>\n"
    "  %8 = stablehlo.reshape %7 : (tensor<2x4x4x4xf32>) -> tensor<2x64xf32>\n"
    "  %9 = stablehlo.dot_general %8, %wd, contracting_dims = [1] x [0] : (tensor<2x64xf32>, tensor<64x10xf32>)"
    " -> tensor<2x10xf32>\n"
    "  return %9 : tensor<2x10xf32>\n"
    "}\n";

enum { NW1 = 8 * 3 * 3 * 3, NM = 8, NW2 = 4 * 8, NWD = 64 * 10, NX = 2 * 3 * 8 * 8, NY = 20 };
static float w1[NW1], mv[NM], sv[NM], w2[NW2], wd[NWD], xv[NX];

static float frand(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

/* Writes the weights as a safetensors file (header + raw f32 data). */
static int write_weights(const char *path) {
  struct {
    const char *name;
    const float *data;
    int n;
    const char *shape;
  } t[] = {{"w1", w1, NW1, "[8,3,3,3]"}, {"m", mv, NM, "[8]"}, {"s", sv, NM, "[8]"},
           {"w2", w2, NW2, "[4,8,1,1]"}, {"wd", wd, NWD, "[64,10]"}};
  char hdr[2048];
  size_t off = 0, at = 0;
  at += (size_t)snprintf(hdr + at, sizeof hdr - at, "{");
  for (int i = 0; i < 5; i++) {
    size_t nb = (size_t)t[i].n * 4;
    at += (size_t)snprintf(hdr + at, sizeof hdr - at, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                           i ? "," : "", t[i].name, t[i].shape, off, off + nb);
    off += nb;
  }
  at += (size_t)snprintf(hdr + at, sizeof hdr - at, "}");
  while (at % 8) hdr[at++] = ' ';
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  uint64_t hl = at;
  fwrite(&hl, 8, 1, f);
  fwrite(hdr, 1, at, f);
  for (int i = 0; i < 5; i++) fwrite(t[i].data, 4, (size_t)t[i].n, f);
  return fclose(f);
}

static hs_status *load(const char *device, const char *wpath, hs_program **p) {
  hs_program_options opt = {NULL, 1, device};
  HS_RETURN_IF_ERROR(hs_program_from_text(cnn, strlen(cnn), "cnn.mlir", &opt, p));
  const char *names[] = {"w1", "m", "s", "w2", "wd"};
  return hs_program_bind_weights(*p, wpath, names, 5);
}

typedef struct thr {
  hs_program *p;
  const float *want;
  int bad;
} thr;

static void *hammer(void *arg) {
  thr *t = arg;
  for (int r = 0; r < 20; r++) {
    float y[NY];
    hs_tensor in = {HS_F32, {4, {2, 3, 8, 8}}, xv}, out = {HS_F32, {2, {2, 10}}, y};
    hs_status *st = hs_program_run(t->p, &in, 1, &out, 1);
    if (st) {
      hs_status_free(st);
      t->bad++;
      continue;
    }
    for (int i = 0; i < NY; i++)
      if (fabsf(y[i] - t->want[i]) > 1e-4f * (1 + fabsf(t->want[i]))) t->bad++;
  }
  return NULL;
}

HS_TEST(cnn_matches_cpu) {
  unsigned seed = 7;
  for (int i = 0; i < NW1; i++) w1[i] = frand(&seed);
  for (int i = 0; i < NM; i++) mv[i] = frand(&seed), sv[i] = 1 + frand(&seed);
  for (int i = 0; i < NW2; i++) w2[i] = frand(&seed);
  for (int i = 0; i < NWD; i++) wd[i] = frand(&seed);
  for (int i = 0; i < NX; i++) xv[i] = frand(&seed);
  char wpath[] = "/tmp/hs_cuda_test_XXXXXX";
  int fd = mkstemp(wpath);
  CHECK(fd >= 0);
  close(fd);
  CHECK(write_weights(wpath) == 0);
  hs_program *cpu = NULL, *gpu = NULL;
  hs_status *st = load(NULL, wpath, &cpu);
  if (!st) st = load("cuda:0", wpath, &gpu);
  unlink(wpath);
  if (st) {
    hs_program_free(cpu);
    hs_program_free(gpu);
  }
  CHECK_OK(st);
  float want[NY], got[NY];
  hs_tensor in = {HS_F32, {4, {2, 3, 8, 8}}, xv};
  hs_tensor o1 = {HS_F32, {2, {2, 10}}, want}, o2 = {HS_F32, {2, {2, 10}}, got};
  st = hs_program_run(cpu, &in, 1, &o1, 1);
  for (int r = 0; r < 3 && !st; r++) { /* first run captures the graph, later ones launch it */
    memset(got, 0, sizeof got);
    st = hs_program_run(gpu, &in, 1, &o2, 1);
    for (int i = 0; i < NY && !st; i++)
      if (fabsf(got[i] - want[i]) > 1e-4f * (1 + fabsf(want[i])))
        st = hs_status_new(HS_INTERNAL, "run %d, element %d: GPU %g vs CPU %g", r, i, got[i], want[i]);
  }
  thr t[4];
  pthread_t th[4];
  for (int i = 0; i < 4 && !st; i++) {
    t[i].p = gpu;
    t[i].want = want;
    t[i].bad = 0;
    pthread_create(&th[i], NULL, hammer, &t[i]);
  }
  int bad = 0;
  for (int i = 0; i < 4 && !st; i++) {
    pthread_join(th[i], NULL);
    bad += t[i].bad;
  }
  hs_tensor wrong = {HS_F32, {4, {1, 3, 8, 8}}, xv};
  hs_status *wst = st ? NULL : hs_program_run(gpu, &wrong, 1, &o2, 1);
  hs_program_free(cpu);
  hs_program_free(gpu);
  CHECK_OK(st);
  CHECK_MSG(bad == 0, "%d bad results from concurrent runs", bad);
  CHECK_ERR(wst, HS_INVALID_ARGUMENT);
}

/* Runs here too: the CNN text and weights are right on the CPU. */
HS_TEST(cnn_runs_on_cpu) {
  char wpath[] = "/tmp/hs_cuda_test_XXXXXX";
  int fd = mkstemp(wpath);
  CHECK(fd >= 0);
  close(fd);
  CHECK(write_weights(wpath) == 0);
  hs_program *cpu = NULL;
  hs_status *st = load(NULL, wpath, &cpu);
  unlink(wpath);
  CHECK_OK(st);
  float y[NY];
  hs_tensor in = {HS_F32, {4, {2, 3, 8, 8}}, xv}, out = {HS_F32, {2, {2, 10}}, y};
  st = hs_program_run(cpu, &in, 1, &out, 1);
  hs_program_free(cpu);
  CHECK_OK(st);
}

int main(void) {
  HS_RUN(cnn_runs_on_cpu);
  hs_status *st = hs_device_check("cuda:0");
  if (st) {
    printf("SKIPPED: the GPU tests need a CUDA device: %s\n", hs_status_message(st));
    hs_status_free(st);
    return 77;
  }
  HS_RUN(cnn_matches_cpu);
  HS_RUN(conformance_float32_on_gpu);
  return hs_test_summary();
}
