/*
 * cuda_exec.c - plan and run a compiled function on one GPU.
 *
 * Plan (once, after binding): every top-level op of the entry function is
 * offered to the builders (cuda_ew.c, cuda_movement.c, cuda_conv.c,
 * cuda_dot.c).  One that takes it gets a device op; one nobody takes runs on
 * the host: at run time its operands (and the outer values its regions read)
 * are copied to the host, the CPU kernel runs through exec.c, and its
 * results are copied back.  Constants, bound weights and values folded at
 * bind time are "lasting": uploaded once, owned by the plan, and read from
 * host memory directly by host fallbacks.
 *
 * Memory: the CPU executor's memory plan already gives every top-level value
 * an offset in one arena, packed by live interval; the device arena of an
 * execution context uses the same offsets, followed by the entry's inputs.
 * So a run allocates nothing.  Stream order keeps reuse safe: work is
 * enqueued on one stream in program order.
 *
 * Execution contexts (stream, cuBLAS and cuDNN handles, arena, workspace,
 * pinned staging, captured graph) are pooled per plan; concurrent runs take
 * one each.  Inputs are staged through pinned memory and copied
 * asynchronously; so are results.  When no op falls back to the host, the
 * ops between the input and the output copies are captured once per context
 * into a CUDA graph and later runs launch that graph (one launch instead of
 * hundreds).  HS_CUDA_NO_GRAPH=1 turns capture off.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_internal.h"
#include "runtime/cuda/cuda_launch.h"
#include "runtime/kernel.h"

#define DEV_ALIGN 256
#define BLAS_WS ((size_t)32 << 20)

typedef struct vloc {
  void *abs;   /* lasting device pointer, or NULL */
  int64_t off; /* else: offset in the context's arena */
} vloc;

typedef struct fallback {
  int *ids;    /* values to download (operands and captured outer values) */
  int n_ids;
} fallback;

struct hs_cuda_plan {
  hs_compiled *c;
  const hs_func *f;
  int device;
  hs_arena arena;
  int n_ops;              /* top-level ops before the terminator */
  hs_cuda_op *ops;        /* ops[i].op == NULL: nothing to run (constant, folded) */
  fallback *fb;           /* per op, for host fallbacks */
  vloc *loc;              /* per value id */
  const hs_tensor **kval; /* per value id: lasting host value, or NULL */
  int n_bound;
  int64_t *in_off;        /* per unbound input: arena offset */
  size_t arena_bytes, ws_bytes, device_bytes, in_bytes, out_bytes;
  int max_operands;
  bool graphable;
  const char *first_fallback;
  int n_device_ops, n_fallback_ops;
  pthread_mutex_t mu;
  hs_cuda_exec *free_execs;
};

/* ------------------------------------------------------------ errors */

hs_status *hs_cuda_error(cudaError_t e, const char *what) {
  if (e == cudaSuccess) return NULL;
  return hs_status_new(HS_INTERNAL, "CUDA: %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

hs_status *hs_cublas_error(cublasStatus_t e, const char *what) {
  if (e == CUBLAS_STATUS_SUCCESS) return NULL;
  return hs_status_new(HS_INTERNAL, "cuBLAS: %s: %s", what, cublasGetStatusString(e));
}

hs_status *hs_cudnn_error(cudnnStatus_t e, const char *what) {
  if (e == CUDNN_STATUS_SUCCESS) return NULL;
  return hs_status_new(HS_INTERNAL, "cuDNN: %s: %s", what, cudnnGetErrorString(e));
}

#define CU(call, what) HS_RETURN_IF_ERROR(hs_cuda_error((call), (what)))

hs_status *hs_cuda_device_check(int device) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess)
    return hs_status_new(HS_UNAVAILABLE, "cuda:%d: no usable CUDA device (%s)", device, cudaGetErrorString(e));
  if (device < 0 || device >= n)
    return hs_status_new(HS_UNAVAILABLE, "cuda:%d: no such device (%d CUDA device%s present)", device, n,
                         n == 1 ? "" : "s");
  return NULL;
}

bool hs_cuda_vm_kind(hs_dtype t, uint8_t *kind, uint8_t *bits) {
  switch (t) {
    case HS_F32: *kind = HS_VK_F32; *bits = 32; return true;
    case HS_F64: *kind = HS_VK_F64; *bits = 64; return true;
    case HS_PRED: *kind = HS_VK_UINT; *bits = 1; return true;
    case HS_I8: case HS_I16: case HS_I32: case HS_I64:
      *kind = HS_VK_SINT;
      *bits = (uint8_t)hs_dtype_bits(t);
      return true;
    case HS_U8: case HS_U16: case HS_U32: case HS_U64:
      *kind = HS_VK_UINT;
      *bits = (uint8_t)hs_dtype_bits(t);
      return true;
    default: return false;
  }
}

/* ------------------------------------------------------------ plan memory */

static void dev_free(void *p) { cudaFree(p); }

void *hs_cuda_build_alloc(hs_cuda_build *b, size_t bytes) {
  void *p = NULL;
  if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) return NULL;
  if (!hs_arena_defer(b->arena, dev_free, p)) {
    cudaFree(p);
    return NULL;
  }
  if (b->plan) b->plan->device_bytes += bytes;
  return p;
}

hs_status *hs_cuda_build_upload(hs_cuda_build *b, const void *host, size_t bytes, void **dev) {
  *dev = hs_cuda_build_alloc(b, bytes);
  if (!*dev) return hs_status_new(HS_OUT_OF_MEMORY, "CUDA: out of device memory (%zu bytes)", bytes);
  if (bytes) CU(cudaMemcpy(*dev, host, bytes, cudaMemcpyHostToDevice), "uploading a constant");
  return NULL;
}

hs_status *hs_cuda_copy_strided(cudaStream_t s, void *dst, const void *src, int esize, int rank,
                                const int64_t *dims, const int64_t *src_strides,
                                const int64_t *dst_strides) {
  hs_kp_strided p;
  memset(&p, 0, sizeof p);
  p.dst = dst;
  p.src = src;
  p.esize = esize;
  p.rank = rank;
  p.n = 1;
  for (int d = 0; d < rank; d++) {
    p.dims[d] = dims[d];
    p.src_strides[d] = src_strides[d];
    p.dst_strides[d] = dst_strides[d];
    p.n *= dims[d];
  }
  return hs_cuda_error(hs_cuda_k_strided(s, &p), "strided copy");
}

/* ------------------------------------------------------------ planning */

static size_t align_dev(size_t n) { return (n + DEV_ALIGN - 1) & ~(size_t)(DEV_ALIGN - 1); }

static hs_tensor tensor_of(const hs_type *t, void *data) {
  hs_tensor x;
  x.dtype = t->dtype;
  x.shape = t->shape;
  x.data = data;
  return x;
}

static size_t type_bytes(const hs_type *t) {
  hs_tensor x = tensor_of(t, NULL);
  return hs_tensor_nbytes(&x);
}

/* Adds to ids (deduplicated by seen[]) the outer values read inside op's
 * regions: those whose id is a top-level value (top[id]). */
static void captured(const hs_op *op, const unsigned char *top, unsigned char *seen, int *ids, int *n) {
  for (int r = 0; r < op->n_regions; r++)
    for (int bi = 0; bi < op->regions[r]->n_blocks; bi++) {
      const hs_block *b = op->regions[r]->blocks[bi];
      for (int k = 0; k < b->n_ops; k++) {
        const hs_op *in = b->ops[k];
        for (int j = 0; j < in->n_operands; j++) {
          int id = in->operands[j]->id;
          if (top[id] && !seen[id]) {
            seen[id] = 1;
            ids[(*n)++] = id;
          }
        }
        captured(in, top, seen, ids, n);
      }
    }
}

static int count_operands(const hs_op *op) {
  int n = op->n_operands;
  for (int r = 0; r < op->n_regions; r++)
    for (int bi = 0; bi < op->regions[r]->n_blocks; bi++) {
      const hs_block *b = op->regions[r]->blocks[bi];
      for (int k = 0; k < b->n_ops; k++) n += count_operands(b->ops[k]);
    }
  return n;
}

static hs_status *plan_fallback(hs_cuda_plan *p, const hs_op *op, int i, const unsigned char *top,
                                unsigned char *seen) {
  int cap = count_operands(op) + 1;
  int *ids = hs_arena_alloc(&p->arena, sizeof(int) * (size_t)cap);
  if (!ids) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  int n = 0;
  for (int j = 0; j < op->n_operands; j++) {
    int id = op->operands[j]->id;
    if (!seen[id]) {
      seen[id] = 1;
      ids[n++] = id;
    }
  }
  captured(op, top, seen, ids, &n);
  for (int k = 0; k < n; k++) seen[ids[k]] = 0;
  p->fb[i].ids = ids;
  p->fb[i].n_ids = n;
  return NULL;
}

static hs_status *build_op(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  d->op = op;
  if (strcmp(op->name, "stablehlo.convolution") == 0) return hs_cuda_build_conv(b, op, d);
  if (strcmp(op->name, "stablehlo.dot_general") == 0) return hs_cuda_build_dot(b, op, d);
  HS_RETURN_IF_ERROR(hs_cuda_build_ew(b, op, d));
  if (!d->run) HS_RETURN_IF_ERROR(hs_cuda_build_movement(b, op, d));
  return NULL;
}

/* Every lasting value some op or the terminator reads gets a device copy. */
static hs_status *upload_lasting(hs_cuda_plan *p, hs_cuda_build *b, const hs_value *v) {
  int id = v->id;
  if (!p->kval[id] || p->loc[id].abs) return NULL;
  const hs_tensor *t = p->kval[id];
  return hs_cuda_build_upload(b, t->data, hs_tensor_nbytes(t), &p->loc[id].abs);
}

static hs_status *build(hs_cuda_plan *p, const hs_tensor *bound, int n_bound) {
  const hs_func *f = p->f;
  const hs_block *blk = f->body->blocks[0];
  int nv = f->n_values + 1;
  p->loc = hs_arena_calloc(&p->arena, (size_t)nv, sizeof(vloc));
  p->kval = hs_arena_calloc(&p->arena, (size_t)nv, sizeof(hs_tensor *));
  unsigned char *top = calloc((size_t)nv, 1), *seen = calloc((size_t)nv, 1);
  const hs_tensor **konst = calloc((size_t)p->max_operands + 1, sizeof(hs_tensor *));
  hs_status *st = NULL;
  hs_cuda_build b;
  memset(&b, 0, sizeof b);
  b.arena = &p->arena;
  b.device = p->device;
  b.plan = p;
  if (!p->loc || !p->kval || !top || !seen || !konst) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory planning @%s for the GPU", f->name);
    goto done;
  }
  for (int i = 0; i < nv; i++) p->loc[i].off = -1;
  /* Lasting values. */
  for (int i = 0; i < n_bound; i++) p->kval[blk->args[i]->id] = &bound[i];
  for (int i = 0; i < blk->n_args; i++) top[blk->args[i]->id] = 1;
  for (int i = 0; i + 1 < blk->n_ops; i++) {
    const hs_op *op = blk->ops[i];
    for (int k = 0; k < op->n_results; k++) top[op->results[k]->id] = 1;
    if (op->folded) {
      for (int k = 0; k < op->n_results; k++) p->kval[op->results[k]->id] = &op->folded[k];
    } else if (op->kernel && op->kernel->run == NULL) { /* constant */
      const hs_attr *v = op->kernel_state;
      hs_tensor *t = hs_arena_alloc(&p->arena, sizeof(hs_tensor));
      if (!t) {
        st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
        goto done;
      }
      *t = tensor_of(&op->results[0]->type, v->u.dense.data);
      p->kval[op->results[0]->id] = t;
    }
  }
  /* Arena: the CPU plan's offsets, then the unbound inputs. */
  size_t planned = 0, max_live = 0;
  hs_exec_plan_info(f, &planned, &max_live);
  for (int id = 0; id < f->n_values; id++) p->loc[id].off = hs_exec_value_offset(f, id);
  size_t at = align_dev(planned);
  int n_in = blk->n_args - n_bound;
  p->in_off = hs_arena_calloc(&p->arena, (size_t)n_in + 1, sizeof(int64_t));
  if (!p->in_off) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (int i = 0; i < n_in; i++) {
    const hs_value *a = blk->args[n_bound + i];
    p->in_off[i] = (int64_t)at;
    p->loc[a->id].off = (int64_t)at;
    size_t nb = type_bytes(&a->type);
    p->in_bytes += align_dev(nb);
    at += align_dev(nb ? nb : 1);
  }
  p->arena_bytes = at;
  for (int i = 0; i < f->n_results; i++) p->out_bytes += align_dev(type_bytes(&f->result_types[i]));
  /* Ops. */
  CU(cudaSetDevice(p->device), "selecting the device");
  cudnnStatus_t ds = cudnnCreate(&b.dnn);
  if (ds != CUDNN_STATUS_SUCCESS) {
    st = hs_cudnn_error(ds, "creating a handle");
    goto done;
  }
  cublasStatus_t bs = cublasCreate(&b.blas);
  if (bs != CUBLAS_STATUS_SUCCESS) {
    st = hs_cublas_error(bs, "creating a handle");
    goto done;
  }
  b.konst = konst;
  for (int i = 0; i + 1 < blk->n_ops && !st; i++) {
    const hs_op *op = blk->ops[i];
    hs_cuda_op *d = &p->ops[i];
    if (op->folded || (op->kernel && op->kernel->run == NULL)) continue;
    for (int k = 0; k < op->n_operands; k++) konst[k] = p->kval[op->operands[k]->id];
    st = build_op(&b, op, d);
    if (st) break;
    d->op = op;
    if (d->run) {
      p->n_device_ops++;
      if (d->workspace > p->ws_bytes) p->ws_bytes = d->workspace;
      for (int k = 0; k < op->n_operands && !st; k++) st = upload_lasting(p, &b, op->operands[k]);
    } else {
      p->n_fallback_ops++;
      if (!p->first_fallback) p->first_fallback = op->name;
      st = plan_fallback(p, op, i, top, seen);
    }
  }
  const hs_op *term = blk->ops[blk->n_ops - 1];
  for (int k = 0; k < term->n_operands && !st; k++) st = upload_lasting(p, &b, term->operands[k]);
  p->graphable = p->n_fallback_ops == 0 && !getenv("HS_CUDA_NO_GRAPH");
done:
  if (b.dnn) cudnnDestroy(b.dnn);
  if (b.blas) cublasDestroy(b.blas);
  free(top);
  free(seen);
  free(konst);
  return st;
}

hs_status *hs_cuda_plan_build(hs_compiled *c, const hs_func *f, int device, const hs_tensor *bound,
                              int n_bound, hs_cuda_plan **out) {
  *out = NULL;
  HS_RETURN_IF_ERROR(hs_cuda_device_check(device));
  hs_cuda_plan *p = calloc(1, sizeof(*p));
  if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  p->c = c;
  p->f = f;
  p->device = device;
  p->n_bound = n_bound;
  hs_arena_init(&p->arena, 16384);
  pthread_mutex_init(&p->mu, NULL);
  const hs_block *blk = f->body->blocks[0];
  p->n_ops = blk->n_ops - 1;
  p->ops = hs_arena_calloc(&p->arena, (size_t)p->n_ops + 1, sizeof(hs_cuda_op));
  p->fb = hs_arena_calloc(&p->arena, (size_t)p->n_ops + 1, sizeof(fallback));
  for (int i = 0; i < blk->n_ops; i++) {
    int n = blk->ops[i]->n_operands + blk->ops[i]->n_results;
    if (n > p->max_operands) p->max_operands = n;
  }
  hs_status *st = p->ops && p->fb ? build(p, bound, n_bound) : hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  if (st) {
    hs_cuda_plan_free(p);
    return hs_status_annotate(st, "planning @%s for cuda:%d", f->name, device);
  }
  *out = p;
  return NULL;
}

static void exec_free(hs_cuda_exec *x) {
  if (!x) return;
  if (x->graph) cudaGraphExecDestroy(x->graph);
  if (x->stream) cudaStreamDestroy(x->stream);
  if (x->blas) cublasDestroy(x->blas);
  if (x->dnn) cudnnDestroy(x->dnn);
  cudaFree(x->ws);
  cudaFree(x->blas_ws);
  cudaFree(x->arena);
  cudaFreeHost(x->pinned);
  free(x);
}

void hs_cuda_plan_free(hs_cuda_plan *p) {
  if (!p) return;
  cudaSetDevice(p->device);
  for (hs_cuda_exec *x = p->free_execs; x;) {
    hs_cuda_exec *n = x->next;
    exec_free(x);
    x = n;
  }
  for (int i = 0; p->ops && i < p->n_ops; i++) hs_cuda_release_op(&p->ops[i]);
  hs_arena_free(&p->arena); /* runs the deferred cudaFree of lasting values */
  pthread_mutex_destroy(&p->mu);
  free(p);
}

void hs_cuda_plan_get_info(const hs_cuda_plan *p, hs_cuda_plan_info *info) {
  memset(info, 0, sizeof *info);
  info->n_device_ops = p->n_device_ops;
  info->n_fallback_ops = p->n_fallback_ops;
  info->n_ops = p->n_device_ops + p->n_fallback_ops;
  info->device_bytes = p->device_bytes;
  info->arena_bytes = p->arena_bytes;
  info->workspace_bytes = p->ws_bytes;
  info->graphable = p->graphable;
  info->first_fallback = p->first_fallback;
}

/* ------------------------------------------------------------ running */

static hs_status *exec_new(hs_cuda_plan *p, hs_cuda_exec **out) {
  hs_cuda_exec *x = calloc(1, sizeof(*x));
  if (!x) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  hs_status *st = hs_cuda_error(cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking), "creating a stream");
  if (!st) st = hs_cublas_error(cublasCreate(&x->blas), "creating a handle");
  if (!st) st = hs_cudnn_error(cudnnCreate(&x->dnn), "creating a handle");
  if (!st) st = hs_cublas_error(cublasSetStream(x->blas, x->stream), "setting the stream");
  if (!st) st = hs_cudnn_error(cudnnSetStream(x->dnn, x->stream), "setting the stream");
  /* cuBLAS inside graph capture wants a workspace of its own (set after
   * cublasSetStream, which resets it). */
  if (!st) st = hs_cuda_error(cudaMalloc(&x->blas_ws, BLAS_WS), "allocating the cuBLAS workspace");
  if (!st) st = hs_cublas_error(cublasSetWorkspace(x->blas, x->blas_ws, BLAS_WS), "setting the workspace");
  if (!st) st = hs_cuda_error(cudaMalloc((void **)&x->arena, p->arena_bytes ? p->arena_bytes : 1), "allocating the arena");
  if (!st && p->ws_bytes) {
    x->ws_bytes = p->ws_bytes;
    st = hs_cuda_error(cudaMalloc(&x->ws, p->ws_bytes), "allocating the workspace");
  }
  x->pinned_bytes = p->in_bytes + p->out_bytes;
  if (!st && x->pinned_bytes)
    st = hs_cuda_error(cudaHostAlloc(&x->pinned, x->pinned_bytes, cudaHostAllocDefault), "allocating pinned memory");
  if (st) {
    exec_free(x);
    return st;
  }
  *out = x;
  return NULL;
}

static void *val_ptr(const hs_cuda_plan *p, const hs_cuda_exec *x, int id) {
  const vloc *l = &p->loc[id];
  return l->abs ? l->abs : l->off >= 0 ? x->arena + l->off : NULL;
}

/* A host fallback: download, run the CPU kernel, upload. */
static hs_status *run_on_host(hs_cuda_plan *p, hs_cuda_exec *x, int i) {
  const hs_op *op = p->ops[i].op;
  const fallback *fb = &p->fb[i];
  const hs_func *f = p->f;
  CU(cudaStreamSynchronize(x->stream), "waiting for the stream");
  hs_tensor *slots = calloc((size_t)f->n_values + 1, sizeof(hs_tensor));
  unsigned char *own = calloc((size_t)f->n_values + 1, 1);
  void **tmp = calloc((size_t)fb->n_ids + 1, sizeof(void *));
  hs_status *st = slots && own && tmp ? NULL : hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  for (int k = 0; k < fb->n_ids && !st; k++) {
    int id = fb->ids[k];
    if (p->kval[id]) {
      slots[id] = *p->kval[id];
      continue;
    }
    const hs_value *v = NULL;
    /* the value's type: find it from its defining op or the block argument */
    for (int j = 0; j < op->n_operands && !v; j++)
      if (op->operands[j]->id == id) v = op->operands[j];
    if (!v) { /* a captured value: search the top-level block */
      const hs_block *blk = f->body->blocks[0];
      for (int a = 0; a < blk->n_args && !v; a++)
        if (blk->args[a]->id == id) v = blk->args[a];
      for (int o = 0; o < blk->n_ops && !v; o++)
        for (int r = 0; r < blk->ops[o]->n_results; r++)
          if (blk->ops[o]->results[r]->id == id) v = blk->ops[o]->results[r];
    }
    if (!v) {
      st = hs_op_error(op, HS_INTERNAL, "GPU fallback: value %d not found", id);
      break;
    }
    size_t nb = type_bytes(&v->type);
    tmp[k] = malloc(nb ? nb : 1);
    if (!tmp[k]) {
      st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
      break;
    }
    if (nb) st = hs_cuda_error(cudaMemcpy(tmp[k], val_ptr(p, x, id), nb, cudaMemcpyDeviceToHost), "download");
    slots[id] = tensor_of(&v->type, tmp[k]);
  }
  if (!st) st = hs_exec_op_on_host(p->c, f, op, slots, own);
  for (int r = 0; r < op->n_results && !st; r++) {
    int id = op->results[r]->id;
    size_t nb = hs_tensor_nbytes(&slots[id]);
    void *dst = val_ptr(p, x, id);
    if (nb && dst) st = hs_cuda_error(cudaMemcpy(dst, slots[id].data, nb, cudaMemcpyHostToDevice), "upload");
  }
  if (slots && own)
    for (int r = 0; r < op->n_results; r++) {
      int id = op->results[r]->id;
      if (own[id]) free(slots[id].data);
    }
  for (int k = 0; tmp && k < fb->n_ids; k++) free(tmp[k]);
  free(tmp);
  free(slots);
  free(own);
  return st;
}

static hs_status *run_ops(hs_cuda_plan *p, hs_cuda_exec *x, bool capturing) {
  void *stack_ptrs[32];
  void **ptrs = p->max_operands <= 32 ? stack_ptrs : malloc(sizeof(void *) * (size_t)p->max_operands);
  if (!ptrs) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  hs_status *st = NULL;
  for (int i = 0; i < p->n_ops && !st; i++) {
    const hs_cuda_op *d = &p->ops[i];
    if (!d->op) continue;
    if (!d->run) {
      if (capturing) st = hs_status_new(HS_INTERNAL, "host fallback inside a CUDA graph");
      else st = run_on_host(p, x, i);
      continue;
    }
    const hs_op *op = d->op;
    for (int k = 0; k < op->n_operands; k++) ptrs[k] = val_ptr(p, x, op->operands[k]->id);
    for (int k = 0; k < op->n_results; k++) ptrs[op->n_operands + k] = val_ptr(p, x, op->results[k]->id);
    st = d->run(d, x, ptrs, ptrs + op->n_operands);
    if (st) st = hs_status_annotate(st, "%s:%d:%d: '%s' on the GPU", op->loc.file, op->loc.line, op->loc.col, op->name);
  }
  if (ptrs != stack_ptrs) free(ptrs);
  return st;
}

/* Captures the ops into a graph once per context; returns false (and leaves
 * the context to run op by op) when capture is refused. */
static hs_status *run_graph(hs_cuda_plan *p, hs_cuda_exec *x) {
  if (x->graph_state == 0) {
    cudaGraph_t g = NULL;
    x->graph_state = -1;
    if (cudaStreamBeginCapture(x->stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
      hs_status *st = run_ops(p, x, true);
      cudaError_t e = cudaStreamEndCapture(x->stream, &g);
      if (st || e != cudaSuccess || !g) {
        hs_status_free(st);
        if (g) cudaGraphDestroy(g);
        cudaGetLastError(); /* clear the capture's error; run op by op */
        return run_ops(p, x, false);
      }
      e = cudaGraphInstantiate(&x->graph, g, 0);
      cudaGraphDestroy(g);
      if (e == cudaSuccess) x->graph_state = 1;
      else {
        x->graph = NULL;
        cudaGetLastError();
      }
    } else {
      cudaGetLastError();
    }
  }
  if (x->graph_state == 1) return hs_cuda_error(cudaGraphLaunch(x->graph, x->stream), "launching the graph");
  return run_ops(p, x, false);
}

hs_status *hs_cuda_plan_run(hs_cuda_plan *p, const hs_tensor *inputs, int n_inputs, hs_tensor *results,
                            int n_results) {
  const hs_func *f = p->f;
  const hs_block *blk = f->body->blocks[0];
  int want_in = blk->n_args - p->n_bound;
  if (n_inputs != want_in)
    return hs_status_new(HS_INVALID_ARGUMENT, "@%s expects %d inputs, got %d", f->name, want_in, n_inputs);
  if (n_results != f->n_results)
    return hs_status_new(HS_INVALID_ARGUMENT, "@%s has %d outputs, %d requested", f->name, f->n_results,
                         n_results);
  for (int i = 0; i < n_inputs; i++) {
    const hs_type *t = &blk->args[p->n_bound + i]->type;
    if (inputs[i].dtype != t->dtype || !hs_shape_equal(&inputs[i].shape, &t->shape)) {
      char want[128], got[128];
      hs_type gt = {HS_TYPE_TENSOR, inputs[i].dtype, inputs[i].shape};
      return hs_status_new(HS_INVALID_ARGUMENT, "@%s: input %d: expected %s, got %s", f->name, i,
                           hs_type_str(t, want, sizeof want), hs_type_str(&gt, got, sizeof got));
    }
  }
  for (int i = 0; i < n_results; i++)
    if (results[i].data && (results[i].dtype != f->result_types[i].dtype ||
                            !hs_shape_equal(&results[i].shape, &f->result_types[i].shape)))
      return hs_status_new(HS_INVALID_ARGUMENT, "result %d: caller buffer has the wrong type", i);
  CU(cudaSetDevice(p->device), "selecting the device");
  pthread_mutex_lock(&p->mu);
  hs_cuda_exec *x = p->free_execs;
  if (x) p->free_execs = x->next;
  pthread_mutex_unlock(&p->mu);
  if (!x) HS_RETURN_IF_ERROR(exec_new(p, &x));
  hs_status *st = NULL;
  /* Inputs: staged through pinned memory. */
  char *pin = x->pinned;
  for (int i = 0; i < n_inputs && !st; i++) {
    size_t nb = hs_tensor_nbytes(&inputs[i]);
    if (!nb) continue;
    memcpy(pin, inputs[i].data, nb);
    st = hs_cuda_error(cudaMemcpyAsync(x->arena + p->in_off[i], pin, nb, cudaMemcpyHostToDevice, x->stream),
                       "copying an input to the device");
    pin += align_dev(nb);
  }
  if (!st) st = p->graphable ? run_graph(p, x) : run_ops(p, x, false);
  /* Results: through pinned memory; lasting ones straight from the host. */
  const hs_op *term = blk->ops[blk->n_ops - 1];
  char *rpin = (char *)x->pinned + p->in_bytes;
  size_t *roff = calloc((size_t)n_results + 1, sizeof(size_t));
  bool *mine = calloc((size_t)n_results + 1, sizeof(bool));
  if (!st && (!roff || !mine)) st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  size_t at = 0;
  for (int i = 0; i < n_results && !st; i++) {
    hs_tensor want = tensor_of(&f->result_types[i], NULL);
    size_t nb = hs_tensor_nbytes(&want);
    if (!results[i].data) {
      results[i] = want;
      results[i].data = malloc(nb ? nb : 1);
      mine[i] = true;
      if (!results[i].data) {
        st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory for result %d", i);
        break;
      }
    }
    int id = term->operands[i]->id;
    roff[i] = at;
    if (p->kval[id] && !p->loc[id].abs) {
      memcpy(results[i].data, p->kval[id]->data, nb);
      continue;
    }
    if (nb) st = hs_cuda_error(cudaMemcpyAsync(rpin + at, val_ptr(p, x, id), nb, cudaMemcpyDeviceToHost, x->stream),
                               "copying a result to the host");
    at += align_dev(nb);
  }
  cudaError_t se = cudaStreamSynchronize(x->stream);
  if (!st) st = hs_cuda_error(se, "running on the GPU");
  for (int i = 0; i < n_results && !st; i++) {
    int id = term->operands[i]->id;
    if (p->kval[id] && !p->loc[id].abs) continue;
    memcpy(results[i].data, rpin + roff[i], hs_tensor_nbytes(&results[i]));
  }
  if (st)
    for (int i = 0; mine && i < n_results; i++)
      if (mine[i]) {
        free(results[i].data);
        results[i].data = NULL;
      }
  free(roff);
  free(mine);
  if (se != cudaSuccess) {
    exec_free(x); /* a context that saw a device error is not reused */
  } else {
    pthread_mutex_lock(&p->mu);
    x->next = p->free_execs;
    p->free_execs = x;
    pthread_mutex_unlock(&p->mu);
  }
  return st;
}
