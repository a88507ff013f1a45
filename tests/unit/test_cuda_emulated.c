/*
 * test_cuda_emulated.c - the CUDA backend's own ops, checked without a GPU.
 *
 * The element-wise and movement builders (cuda_ew.c, cuda_movement.c) turn
 * ops into parameter blocks for the kernels of cuda_bodies.h; with
 * hs_cuda_emulate(true) the same run functions execute those bodies on the
 * host over host memory.  This test walks every function of the conformance
 * suite the way cuda_exec.c does (each top-level op goes to a builder, or to
 * the host executor when declined; convolution and dot_general, which need
 * cuDNN/cuBLAS, always to the host) and requires that every file the CPU
 * backend passes also passes this way, and that most ops took the device
 * path.  Also: a BatchNorm+ReLU fusion group runs as one VM program and
 * matches the CPU.
 *
 * What this cannot test: the launches, streams, graphs and the cuDNN/cuBLAS
 * calls; test_cuda_device does, on a machine with a GPU.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_internal.h"
#include "runtime/cuda/cuda_launch.h"
#include "runtime/exec.h"
#include "runtime/kernel.h"
#include "testlib.h"

static int n_device_ops, n_host_ops, n_checks;

static hs_tensor tensor_of(const hs_type *t, void *data) {
  hs_tensor x;
  x.dtype = t->dtype;
  x.shape = t->shape;
  x.data = data;
  return x;
}

/* Runs function f (no arguments) op by op; results are not returned (the
 * conformance checks are ops of f). */
static hs_status *emulate_func(hs_compiled *c, const hs_func *f) {
  const hs_block *b = f->body->blocks[0];
  size_t nv = (size_t)f->n_values + 1;
  hs_tensor *slots = calloc(nv, sizeof(hs_tensor));
  unsigned char *own = calloc(nv, 1);
  const hs_tensor **konst = calloc(64, sizeof(hs_tensor *));
  void **ptrs = calloc(128, sizeof(void *));
  hs_arena arena;
  hs_arena_init(&arena, 4096);
  hs_cuda_build bld;
  memset(&bld, 0, sizeof bld);
  bld.arena = &arena;
  bld.konst = konst;
  hs_cuda_exec x;
  memset(&x, 0, sizeof x);
  hs_status *st = slots && own && konst && ptrs ? NULL : hs_status_new(HS_OUT_OF_MEMORY, "oom");
  for (int i = 0; i + 1 < b->n_ops && !st; i++) {
    const hs_op *op = b->ops[i];
    if (op->kernel && op->kernel->run == NULL) { /* constant */
      const hs_attr *v = op->kernel_state;
      slots[op->results[0]->id] = tensor_of(&op->results[0]->type, v->u.dense.data);
      continue;
    }
    hs_cuda_op d;
    memset(&d, 0, sizeof d);
    d.op = op;
    bool linalg = strcmp(op->name, "stablehlo.convolution") == 0 || strcmp(op->name, "stablehlo.dot_general") == 0;
    if (!linalg && op->n_operands <= 64 && op->n_operands + op->n_results <= 128) {
      for (int k = 0; k < op->n_operands; k++) {
        const hs_op *def = op->operands[k]->def;
        konst[k] = def && def->parent == f->body && def->kernel && def->kernel->run == NULL
                       ? &slots[op->operands[k]->id]
                       : NULL;
      }
      st = hs_cuda_build_ew(&bld, op, &d);
      if (!st && !d.run) st = hs_cuda_build_movement(&bld, op, &d);
    }
    if (st) break;
    if (!d.run) {
      if (strcmp(op->name, "stablehlo.custom_call") == 0) n_checks++; /* the checks: host by design */
      else n_host_ops++;
      if (getenv("HS_EMU_LIST")) fprintf(stderr, "host: %s\n", op->name);
      st = hs_exec_op_on_host(c, f, op, slots, own);
      continue;
    }
    n_device_ops++;
    for (int k = 0; k < op->n_operands; k++) ptrs[k] = slots[op->operands[k]->id].data;
    for (int k = 0; k < op->n_results && !st; k++) {
      int id = op->results[k]->id;
      hs_tensor t = tensor_of(&op->results[k]->type, NULL);
      size_t nb = hs_tensor_nbytes(&t);
      t.data = calloc(1, nb ? nb : 1);
      if (!t.data) st = hs_status_new(HS_OUT_OF_MEMORY, "oom");
      slots[id] = t;
      own[id] = 1;
      ptrs[op->n_operands + k] = t.data;
    }
    if (!st) st = d.run(&d, &x, ptrs, ptrs + op->n_operands);
  }
  for (size_t i = 0; own && i < nv; i++)
    if (own[i]) free(slots[i].data);
  hs_arena_free(&arena);
  free(slots);
  free(own);
  free(konst);
  free(ptrs);
  return st;
}

static hs_status *emulate_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return hs_status_new(HS_NOT_FOUND, "%s: cannot open", path);
  fseek(fp, 0, SEEK_END);
  long len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *text = malloc((size_t)len + 1);
  size_t got = text ? fread(text, 1, (size_t)len, fp) : 0;
  fclose(fp);
  if (!text || got != (size_t)len) {
    free(text);
    return hs_status_new(HS_IO_ERROR, "%s: read error", path);
  }
  hs_module **parts = NULL;
  int n_parts = 0;
  hs_status *st = hs_parse_parts(text, (size_t)len, path, &parts, &n_parts);
  free(text);
  if (st) return st;
  for (int i = 0; i < n_parts; i++) {
    hs_compiled *c = NULL;
    hs_module *m = parts[i];
    parts[i] = NULL;
    if (!st) st = hs_compile_module(m, &c);
    else hs_module_free(m);
    if (c) c->device_target = true;
    for (int k = 0; !st && c && k < c->module->n_funcs; k++) {
      const hs_func *f = c->module->funcs[k];
      if (f->is_public && f->n_args == 0) st = emulate_func(c, f);
    }
    hs_compiled_free(c);
  }
  free(parts);
  return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

HS_TEST(conformance_suite_emulated) {
  const char *src = getenv("HS_SOURCE_DIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/../shared/conformance/stablehlo-testdata", src ? src : ".");
  DIR *dp = opendir(dir);
  CHECK_MSG(dp != NULL, "conformance folder %s not found", dir);
  char **names = NULL;
  int n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(dp));) {
    size_t l = strlen(e->d_name);
    if (l < 6 || strcmp(e->d_name + l - 5, ".mlir") != 0 || strstr(e->d_name, "complex")) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 1024;
      names = realloc(names, sizeof(char *) * (size_t)cap);
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(dp);
  qsort(names, (size_t)n, sizeof(char *), cmp_str);
  int cpu_pass = 0, emu_pass = 0, regress = 0;
  hs_cuda_emulate(true);
  for (int i = 0; i < n; i++) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    hs_status *cst = hs_check_file(path);
    hs_status *est = cst ? NULL : emulate_file(path);
    if (!cst) cpu_pass++;
    if (!cst && !est) emu_pass++;
    if (!cst && est) {
      if (regress < 20) fprintf(stderr, "emulated GPU path fails where the CPU passes: %s\n", hs_status_message(est));
      regress++;
    }
    hs_status_free(cst);
    hs_status_free(est);
    free(names[i]);
  }
  free(names);
  hs_cuda_emulate(false);
  printf("conformance, emulated GPU ops: %d of the %d files the CPU passes (of %d); %d ops on the device path, "
         "%d on the host (and %d checks); HS_EMU_LIST=1 lists the host ones\n", emu_pass, cpu_pass, n, n_device_ops,
         n_host_ops, n_checks);
  CHECK(cpu_pass > 1000);
  CHECK(regress == 0);
  /* most ops must have taken the device path, or this tested little */
  CHECK(n_device_ops > n_host_ops);
}

/* BatchNorm + ReLU over NCHW: one fusion group with broadcast leaves. */
HS_TEST(batchnorm_relu_group) {
  static const char *text =
      "func.func @main(%x: tensor<2x3x4x5xf32>, %m: tensor<3xf32>, %s: tensor<3xf32>, %b: tensor<3xf32>)"
      " -> tensor<2x3x4x5xf32> {\n"
      "  %0 = stablehlo.broadcast_in_dim %m, dims = [1] : (tensor<3xf32>) -> tensor<2x3x4x5xf32>\n"
      "  %1 = stablehlo.subtract %x, %0 : tensor<2x3x4x5xf32>\n"
      "  %2 = stablehlo.broadcast_in_dim %s, dims = [1] : (tensor<3xf32>) -> tensor<2x3x4x5xf32>\n"
      "  %3 = stablehlo.multiply %1, %2 : tensor<2x3x4x5xf32>\n"
      "  %4 = stablehlo.broadcast_in_dim %b, dims = [1] : (tensor<3xf32>) -> tensor<2x3x4x5xf32>\n"
      "  %5 = stablehlo.add %3, %4 : tensor<2x3x4x5xf32>\n"
      "  %cst = stablehlo.constant dense<0.0> : tensor<f32>\n"
      "  %6 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<2x3x4x5xf32>\n"
      "  %7 = stablehlo.maximum %5, %6 : tensor<2x3x4x5xf32>\n"
      "  return %7 : tensor<2x3x4x5xf32>\n"
      "}\n";
  hs_program_options opt = {0};
  hs_program *p = NULL;
  CHECK_OK(hs_program_from_text(text, strlen(text), "bn.mlir", &opt, &p));
  float xv[120], mv[3] = {0.5f, -1.0f, 2.0f}, sv[3] = {2.0f, 0.25f, -1.5f}, bv[3] = {0.1f, 0.2f, -0.3f};
  for (int i = 0; i < 120; i++) xv[i] = (float)((i * 37) % 23) / 7.0f - 1.5f;
  hs_tensor in[4] = {{HS_F32, {4, {2, 3, 4, 5}}, xv}, {HS_F32, {1, {3}}, mv}, {HS_F32, {1, {3}}, sv},
                     {HS_F32, {1, {3}}, bv}};
  hs_tensor out = {0};
  hs_status *st = hs_program_run(p, in, 4, &out, 1);
  hs_program_free(p);
  CHECK_OK(st);
  /* The same text compiled alone, fused, and built into one VM program. */
  hs_module *m = NULL;
  CHECK_OK(hs_parse_module(text, strlen(text), "bn.mlir", &m));
  hs_compiled *c = NULL;
  CHECK_OK(hs_compile_module(m, &c));
  const hs_func *f = c->module->funcs[0];
  const hs_block *b = f->body->blocks[0];
  const hs_op *fused = NULL;
  for (int i = 0; i < b->n_ops; i++)
    if (strcmp(b->ops[i]->name, "hloserve.fused_elementwise") == 0) fused = b->ops[i];
  float got[120];
  hs_arena arena;
  hs_arena_init(&arena, 1024);
  hs_cuda_build bld;
  memset(&bld, 0, sizeof bld);
  bld.arena = &arena;
  const hs_tensor *konst[16] = {0};
  bld.konst = konst;
  hs_cuda_op d;
  memset(&d, 0, sizeof d);
  hs_status *bst = fused ? hs_cuda_build_ew(&bld, fused, &d) : NULL;
  bool built = fused && !bst && d.run;
  if (built) {
    void *ptrs[16];
    for (int k = 0; k < fused->n_operands; k++) {
      const hs_value *v = fused->operands[k];
      ptrs[k] = v->def && v->def->kernel && v->def->kernel->run == NULL
                    ? ((const hs_attr *)v->def->kernel_state)->u.dense.data
                    : in[v->index].data; /* block argument index */
    }
    ptrs[fused->n_operands] = got;
    hs_cuda_exec x;
    memset(&x, 0, sizeof x);
    hs_cuda_emulate(true);
    bst = d.run(&d, &x, ptrs, ptrs + fused->n_operands);
    hs_cuda_emulate(false);
  }
  hs_arena_free(&arena);
  hs_compiled_free(c);
  float want[120];
  memcpy(want, out.data, sizeof want);
  free(out.data);
  CHECK_MSG(fused != NULL, "the chain was not fused");
  CHECK_OK(bst);
  CHECK_MSG(built, "the fused group was declined");
  for (int i = 0; i < 120; i++) CHECK_MSG(memcmp(&got[i], &want[i], 4) == 0, "element %d: %g vs %g", i, got[i], want[i]);
}

int main(void) {
  HS_RUN(batchnorm_relu_group);
  HS_RUN(conformance_suite_emulated);
  return hs_test_summary();
}
