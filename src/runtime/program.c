/*
 * program.c - the public runtime API (hloserve/runtime.h) over the parser,
 * the compiler/executor and the safetensors reader.
 *
 * A program owns its compiled module, the mapping of its weights file, and
 * an intra-op thread pool.  Running it builds the entry function's argument
 * list: bound weights first, then the caller's inputs.
 */
#include "hloserve/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/safetensors.h"
#include "base/threadpool.h"
#include "runtime/exec.h"
#ifdef HS_HAVE_CUDA
#include "runtime/cuda/cuda_backend.h"
#endif

struct hs_program {
  hs_compiled *c;
  hs_func *entry;
  hs_safetensors *weights;
  hs_tensor *bound;    /* n_bound leading parameters */
  void **owned;        /* aligned copies of misaligned weights */
  int n_bound;
  hs_threadpool *pool;
  int device;          /* -1: the CPU; else the CUDA device index */
  char device_name[24];
#ifdef HS_HAVE_CUDA
  hs_cuda_plan *cuda;  /* built at bind time, or at the first run */
  pthread_mutex_t cuda_mu;
#endif
};

bool hs_runtime_has_cuda(void) {
#ifdef HS_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

/* "cpu" / NULL -> -1; "cuda" -> 0; "cuda:N" -> N; else an error. */
static hs_status *parse_device(const char *name, int *dev) {
  *dev = -1;
  if (!name || !*name || strcmp(name, "cpu") == 0) return NULL;
  if (strcmp(name, "cuda") == 0) {
    *dev = 0;
  } else if (strncmp(name, "cuda:", 5) == 0 && name[5] >= '0' && name[5] <= '9') {
    char *end;
    long v = strtol(name + 5, &end, 10);
    if (*end || v > 1024)
      return hs_status_new(HS_INVALID_ARGUMENT, "unknown device '%s' (expected cpu, cuda or cuda:N)", name);
    *dev = (int)v;
  } else {
    return hs_status_new(HS_INVALID_ARGUMENT, "unknown device '%s' (expected cpu, cuda or cuda:N)", name);
  }
#ifdef HS_HAVE_CUDA
  return hs_cuda_device_check(*dev);
#else
  return hs_status_new(HS_UNIMPLEMENTED,
                       "device '%s': this build of hloserve has no CUDA backend (the CUDA toolkit was not "
                       "found when it was built)", name);
#endif
}

hs_status *hs_device_check(const char *device) {
  int dev;
  return parse_device(device, &dev);
}

const char *hs_program_device(const hs_program *p) { return p->device_name; }

static hs_status *read_file(const char *path, char **text, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return hs_status_new(HS_NOT_FOUND, "%s: %s", path, strerror(errno));
  char *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 1 << 16;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return hs_status_new(HS_OUT_OF_MEMORY, "%s: out of memory", path);
      }
      buf = nb;
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return hs_status_new(HS_IO_ERROR, "%s: read error", path);
  }
  *text = buf;
  *len = n;
  return NULL;
}

hs_status *hs_program_from_text(const char *text, size_t len, const char *filename,
                                const hs_program_options *opt, hs_program **out) {
  *out = NULL;
  int device = -1;
  HS_RETURN_IF_ERROR(parse_device(opt ? opt->device : NULL, &device));
  hs_module *m = NULL;
  HS_RETURN_IF_ERROR(hs_parse_module(text, len, filename ? filename : "<input>", &m));
  hs_program *p = calloc(1, sizeof(*p));
  if (!p) {
    hs_module_free(m);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  p->device = device;
  if (device < 0) snprintf(p->device_name, sizeof p->device_name, "cpu");
  else snprintf(p->device_name, sizeof p->device_name, "cuda:%d", device);
#ifdef HS_HAVE_CUDA
  pthread_mutex_init(&p->cuda_mu, NULL);
#endif
  hs_status *st = hs_compile_module(m, &p->c);
  if (st) {
#ifdef HS_HAVE_CUDA
    pthread_mutex_destroy(&p->cuda_mu);
#endif
    free(p);
    return st;
  }
  p->c->device_target = device >= 0;
  const char *entry = opt && opt->entry ? opt->entry : "main";
  p->entry = hs_module_find_func(p->c->module, entry);
  if (!p->entry) {
    hs_program_free(p);
    return hs_status_new(HS_NOT_FOUND, "%s: no entry function @%s", filename ? filename : "<input>", entry);
  }
  int threads = opt && opt->num_threads > 1 ? opt->num_threads : 1;
  p->c->num_threads = threads;
  if (threads > 1) {
    st = hs_threadpool_create(threads, &p->pool);
    if (st) {
      hs_program_free(p);
      return st;
    }
  }
  *out = p;
  return NULL;
}

hs_status *hs_program_load(const char *path, const hs_program_options *opt, hs_program **out) {
  char *text;
  size_t len;
  *out = NULL;
  HS_RETURN_IF_ERROR(read_file(path, &text, &len));
  hs_status *st = hs_program_from_text(text, len, path, opt, out);
  free(text);
  return st;
}

static void unbind(hs_program *p) {
  for (int i = 0; i < p->n_bound; i++) free(p->owned ? p->owned[i] : NULL);
  free(p->owned);
  free(p->bound);
  p->owned = NULL;
  p->bound = NULL;
  p->n_bound = 0;
  hs_safetensors_close(p->weights);
  p->weights = NULL;
}

int hs_program_num_threads(const hs_program *p) { return p && p->c ? p->c->num_threads : 1; }

void hs_program_free(hs_program *p) {
  if (!p) return;
#ifdef HS_HAVE_CUDA
  hs_cuda_plan_free(p->cuda);
  pthread_mutex_destroy(&p->cuda_mu);
#endif
  unbind(p);
  hs_threadpool_destroy(p->pool);
  hs_compiled_free(p->c);
  free(p);
}

static const char *param_name(const hs_func *f, int i, char *buf, size_t cap) {
  if (f->arg_attrs && f->arg_n_attrs)
    for (int k = 0; k < f->arg_n_attrs[i]; k++) {
      const hs_named_attr *a = &f->arg_attrs[i][k];
      if ((strcmp(a->name, "hloserve.name") == 0 || strcmp(a->name, "jax.arg_info") == 0) &&
          a->value->kind == HS_ATTR_STRING)
        return a->value->u.str.s;
    }
  snprintf(buf, cap, "arg%d", i);
  return buf;
}

hs_status *hs_program_bind_weights(hs_program *p, const char *path, const char *const *names, int n_names) {
  if (p->c->folded) return hs_status_new(HS_FAILED_PRECONDITION, "%s: this program's weights are already bound", path);
  unbind(p);
  HS_RETURN_IF_ERROR(hs_safetensors_open(path, &p->weights));
  const hs_func *f = p->entry;
  int n = names ? n_names : f->n_args;
  if (n > f->n_args) {
    unbind(p);
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: %d weight names for @%s, which has %d parameters", path, n,
                         f->name, f->n_args);
  }
  p->bound = calloc((size_t)n + 1, sizeof(hs_tensor));
  p->owned = calloc((size_t)n + 1, sizeof(void *));
  if (!p->bound || !p->owned) {
    unbind(p);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    char buf[32];
    const char *name = names ? names[i] : param_name(f, i, buf, sizeof buf);
    const hs_tensor *t = hs_safetensors_get(p->weights, name);
    if (!t) {
      if (!names) break;
      hs_status *st = hs_status_new(HS_NOT_FOUND, "%s: missing weight '%s' for parameter %d of @%s", path,
                                    name, i, f->name);
      unbind(p);
      return st;
    }
    const hs_type *want = &f->arg_types[i];
    if (want->dtype != t->dtype || !hs_shape_equal(&want->shape, &t->shape)) {
      char a[128], b[128];
      hs_type got = {HS_TYPE_TENSOR, t->dtype, t->shape};
      hs_status *st = hs_status_new(HS_INVALID_ARGUMENT, "%s: weight '%s' is %s but parameter %d of @%s is %s",
                                    path, name, hs_type_str(&got, a, sizeof a), i, f->name,
                                    hs_type_str(want, b, sizeof b));
      unbind(p);
      return st;
    }
    p->bound[i] = *t;
    size_t al = hs_dtype_size(t->dtype);
    if (al && ((uintptr_t)t->data % al) != 0) { /* safetensors does not promise alignment */
      size_t nb = hs_tensor_nbytes(t);
      void *c = NULL;
      if (posix_memalign(&c, 64, nb ? nb : 64) != 0) {
        unbind(p);
        return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
      }
      memcpy(c, t->data, nb);
      p->owned[i] = c;
      p->bound[i].data = c;
    }
    p->n_bound = i + 1;
  }
  hs_status *st = hs_fold_constants(p->c, p->entry, p->bound, p->n_bound);
#ifdef HS_HAVE_CUDA
  if (!st && p->device >= 0) st = hs_cuda_plan_build(p->c, p->entry, p->device, p->bound, p->n_bound, &p->cuda);
#endif
  if (st) {
    unbind(p);
    return st;
  }
  /* Folding and the kernels' specialize() made their own copies of most
   * weights (BatchNorm-scaled, packed for oneDNN, transposed): the file's
   * pages need not stay resident; what is still read faults back in. */
  hs_safetensors_release_pages(p->weights);
  return NULL;
}

int hs_program_num_inputs(const hs_program *p) { return p->entry->n_args - p->n_bound; }
int hs_program_num_outputs(const hs_program *p) { return p->entry->n_results; }

void hs_program_input(const hs_program *p, int i, hs_dtype *dtype, hs_shape *shape) {
  const hs_type *t = &p->entry->arg_types[p->n_bound + i];
  if (dtype) *dtype = t->dtype;
  if (shape) *shape = t->shape;
}

void hs_program_output(const hs_program *p, int i, hs_dtype *dtype, hs_shape *shape) {
  const hs_type *t = &p->entry->result_types[i];
  if (dtype) *dtype = t->dtype;
  if (shape) *shape = t->shape;
}

hs_status *hs_program_run(hs_program *p, const hs_tensor *inputs, int n_inputs, hs_tensor *outputs,
                          int n_outputs) {
  const hs_func *f = p->entry;
  if (n_inputs != f->n_args - p->n_bound)
    return hs_status_new(HS_INVALID_ARGUMENT, "@%s expects %d inputs, got %d", f->name, f->n_args - p->n_bound,
                         n_inputs);
  if (n_outputs != f->n_results)
    return hs_status_new(HS_INVALID_ARGUMENT, "@%s has %d outputs, %d requested", f->name, f->n_results,
                         n_outputs);
#ifdef HS_HAVE_CUDA
  if (p->device >= 0) {
    hs_status *cst = NULL;
    pthread_mutex_lock(&p->cuda_mu);
    if (!p->cuda) { /* no weights were bound: fold constants, then plan */
      if (!p->c->folded) cst = hs_fold_constants(p->c, p->entry, NULL, 0);
      if (!cst) cst = hs_cuda_plan_build(p->c, p->entry, p->device, NULL, 0, &p->cuda);
    }
    pthread_mutex_unlock(&p->cuda_mu);
    if (cst) return cst;
    return hs_cuda_plan_run(p->cuda, inputs, n_inputs, outputs, n_outputs);
  }
#endif
  hs_tensor stack_args[16];
  hs_tensor *args = f->n_args <= 16 ? stack_args : malloc(sizeof(hs_tensor) * (size_t)f->n_args);
  if (!args) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  if (p->n_bound) memcpy(args, p->bound, sizeof(hs_tensor) * (size_t)p->n_bound);
  if (n_inputs) memcpy(args + p->n_bound, inputs, sizeof(hs_tensor) * (size_t)n_inputs);
  hs_exec_options opt = {p->pool};
  hs_status *st = hs_execute(p->c, f, args, f->n_args, outputs, n_outputs, &opt);
  if (args != stack_args) free(args);
  return st;
}

size_t hs_program_last_peak_bytes(void) { return hs_exec_last_peak_bytes(); }

void hs_program_memory_info(const hs_program *p, hs_program_memory *m) {
  m->weights_bytes = 0;
  for (int i = 0; i < p->n_bound; i++) m->weights_bytes += hs_tensor_nbytes(&p->bound[i]);
  m->folded_bytes = p->c->folded_bytes;
  hs_exec_plan_info(p->entry, &m->arena_bytes, &m->max_live_bytes);
}

/* ---- self-checking files ------------------------------------------------ */

hs_status *hs_check_file(const char *path) { return hs_check_file_on(path, NULL); }

/* Runs public function f of c (no arguments) on the device or the CPU. */
static hs_status *check_func(hs_compiled *c, const hs_func *f, int device, hs_tensor *res) {
#ifdef HS_HAVE_CUDA
  if (device >= 0) {
    hs_cuda_plan *plan = NULL;
    HS_RETURN_IF_ERROR(hs_cuda_plan_build(c, f, device, NULL, 0, &plan));
    hs_status *st = hs_cuda_plan_run(plan, NULL, 0, res, f->n_results);
    hs_cuda_plan_free(plan);
    return st;
  }
#endif
  (void)device;
  return hs_execute(c, f, NULL, 0, res, f->n_results, NULL);
}

hs_status *hs_check_file_on(const char *path, const char *device_name) {
  char *text;
  size_t len;
  int device = -1;
  HS_RETURN_IF_ERROR(parse_device(device_name, &device));
  HS_RETURN_IF_ERROR(read_file(path, &text, &len));
  hs_module **parts = NULL;
  int n_parts = 0;
  hs_status *st = hs_parse_parts(text, len, path, &parts, &n_parts);
  free(text);
  if (st) return st;
  int ran = 0;
  for (int i = 0; i < n_parts; i++) {
    hs_compiled *c = NULL;
    hs_module *m = parts[i];
    parts[i] = NULL;
    if (!st) st = hs_compile_module(m, &c);
    else hs_module_free(m);
    if (c) c->device_target = device >= 0;
    for (int k = 0; !st && c && k < c->module->n_funcs; k++) {
      const hs_func *f = c->module->funcs[k];
      if (!f->is_public || f->n_args != 0) continue;
      hs_tensor res[64];
      if (f->n_results > 64) {
        st = hs_status_new(HS_UNIMPLEMENTED, "@%s returns more than 64 results", f->name);
        break;
      }
      memset(res, 0, sizeof res);
      st = check_func(c, f, device, res);
      for (int r = 0; r < f->n_results; r++) free(res[r].data);
      if (st) st = hs_status_annotate(st, "@%s", f->name);
      ran++;
    }
    hs_compiled_free(c);
  }
  free(parts);
  if (!st && ran == 0) st = hs_status_new(HS_INVALID_ARGUMENT, "%s: no public function without arguments", path);
  return st;
}
