/*
 * exec.c - compile and execute StableHLO functions.
 *
 * Compile: every op is bound to a kernel (kernels/registry.c, or one of the
 * builtins at the bottom of this file: constants, calls, control flow and the
 * check.* ops), its prepare() runs, and each block gets a liveness plan: the
 * list of values that die after each op.  Unknown ops and bad attributes are
 * therefore reported before anything runs, with their source location.
 *
 * Execute: a frame holds one tensor slot per value id of the function.  A
 * block binds its arguments (borrowed), runs its ops in order, allocates each
 * op's results (owned by the frame), releases values after their last use,
 * and hands its terminator's operands to the caller - moving an owned buffer
 * when the value was defined in the block, copying otherwise.  Constants
 * point straight at the parsed payload and are never copied.
 *
 * Regions (while/if/case bodies, reducers, comparators) run on the enclosing
 * function's frame because they may read values defined outside them.
 *
 * Memory plan: shapes are static, so at compile time every result of a
 * function's top-level block gets an offset in that function's arena, packed
 * by live interval (greedy, largest first).  A call's frame - slot arrays and
 * arena - is carved from an execution stack whose high-water mark is also
 * known at compile time, and stacks are pooled per compiled module.  So a
 * steady-state execution allocates nothing for the top-level values; only
 * values inside regions (loop bodies, unrecognised reducer bodies) and the
 * results handed to the caller are malloc'd.
 */
#include "runtime/exec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "runtime/conv_fold.h"
#include "runtime/fuse.h"
#include "runtime/inline.h"
#include "runtime/kernel.h"

#define MAX_CALL_DEPTH 64
#define STACK_TENSORS 8

typedef struct frame {
  hs_tensor *slots;
  unsigned char *own; /* 1 when slots[i].data is a malloc'd buffer we must free */
  int n;
  char *arena;        /* planned buffers of the function's top-level values */
  const int64_t *value_off; /* per value id: offset in arena, or -1 */
} frame;

/* Per function, computed at compile time. */
typedef struct func_plan {
  int64_t *value_off; /* per value id: arena offset, -1 = allocated at run time */
  size_t arena_bytes;
  size_t max_live_bytes; /* the largest set of simultaneously live values */
  size_t frame_bytes; /* slots + own flags + arena, each 64-byte aligned */
  size_t need;        /* frame_bytes plus the deepest chain of callees */
  int state;          /* 0 unvisited, 1 visiting, 2 done (for `need`) */
} func_plan;

/* A pooled execution stack. */
/* Kernel scratch kept with a stack between calls and runs: a convolution's
 * workspace (tens of MB for Winograd) would otherwise be mapped, faulted in
 * and unmapped on every call. */
enum { SCRATCH_CACHE = 4 };

typedef struct exec_stack {
  struct exec_stack *next;
  size_t size, top;
  void *sc_buf[SCRATCH_CACHE];
  size_t sc_size[SCRATCH_CACHE];
  bool sc_used[SCRATCH_CACHE];
  _Alignas(64) char data[];
} exec_stack;

static void stack_free(exec_stack *s) {
  for (int i = 0; i < SCRATCH_CACHE; i++) free(s->sc_buf[i]);
  free(s);
}

struct hs_exec_ctx {
  hs_compiled *c;
  frame *fr;
  int depth;
  hs_threadpool *pool;
  void **scratch;      /* buffers handed out by hs_exec_scratch during one kernel */
  int n_scratch, cap_scratch;
  size_t live_bytes, peak_bytes;
  exec_stack *stack;
};

typedef struct block_plan {
  int **dead;   /* dead[i]: value ids released after op i */
  int *n_dead;
} block_plan;

static _Thread_local size_t last_peak_bytes;

/* ---- profile (HS_PROFILE=1): time per op name, printed to stderr at exit. */
#define PROF_MAX 128
typedef struct prof_entry {
  char name[64]; /* a copy: the module that named it may be gone at exit */
  double ms;
  long calls;
} prof_entry;
static prof_entry prof[PROF_MAX];
static int prof_n = -1; /* -1: not decided yet */
static pthread_mutex_t prof_mu = PTHREAD_MUTEX_INITIALIZER;

static int prof_cmp(const void *a, const void *b) {
  double x = ((const prof_entry *)a)->ms, y = ((const prof_entry *)b)->ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

static void prof_print(void) {
  double total = 0;
  for (int i = 0; i < prof_n; i++) total += prof[i].ms;
  qsort(prof, (size_t)prof_n, sizeof prof[0], prof_cmp);
  fprintf(stderr, "hloserve profile: %.1f ms in kernels\n", total);
  for (int i = 0; i < prof_n; i++)
    fprintf(stderr, "  %10.2f ms %5.1f%% %8ld  %s\n", prof[i].ms, 100 * prof[i].ms / (total > 0 ? total : 1),
            prof[i].calls, prof[i].name);
}

static bool prof_enabled(void) {
  if (prof_n < 0) {
    pthread_mutex_lock(&prof_mu);
    if (prof_n < 0) {
      const char *e = getenv("HS_PROFILE");
      prof_n = e && *e && strcmp(e, "0") != 0 ? 0 : -2;
      if (prof_n == 0) atexit(prof_print);
    }
    pthread_mutex_unlock(&prof_mu);
  }
  return prof_n >= 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void prof_add(const char *name, double ms) {
  pthread_mutex_lock(&prof_mu);
  int i = 0;
  while (i < prof_n && strncmp(prof[i].name, name, sizeof prof[i].name - 1) != 0) i++;
  if (i == prof_n && prof_n < PROF_MAX) snprintf(prof[prof_n++].name, sizeof prof[0].name, "%s", name);
  if (i < prof_n) {
    prof[i].ms += ms;
    prof[i].calls++;
  }
  pthread_mutex_unlock(&prof_mu);
}
size_t hs_exec_last_peak_bytes(void) { return last_peak_bytes; }

void hs_exec_plan_info(const hs_func *f, size_t *arena_bytes, size_t *max_live_bytes) {
  const func_plan *fp = f->plan;
  *arena_bytes = fp ? fp->arena_bytes : 0;
  *max_live_bytes = fp ? fp->max_live_bytes : 0;
}

/* ------------------------------------------------------------ buffers */

static void *buf_alloc(hs_exec_ctx *ctx, size_t nbytes) {
  void *p = NULL;
  size_t n = nbytes ? (nbytes + 63) & ~(size_t)63 : 64;
  if (posix_memalign(&p, 64, n) != 0) return NULL;
  ctx->live_bytes += n;
  if (ctx->live_bytes > ctx->peak_bytes) ctx->peak_bytes = ctx->live_bytes;
  return p;
}

static void buf_free(hs_exec_ctx *ctx, void *p, size_t nbytes) {
  if (!p) return;
  size_t n = nbytes ? (nbytes + 63) & ~(size_t)63 : 64;
  ctx->live_bytes -= n;
  free(p);
}

static void slot_release(hs_exec_ctx *ctx, int id) {
  frame *fr = ctx->fr;
  if (fr->own[id]) {
    buf_free(ctx, fr->slots[id].data, hs_tensor_nbytes(&fr->slots[id]));
    fr->own[id] = 0;
  }
  fr->slots[id].data = NULL;
}

static hs_tensor tensor_of_type(const hs_type *t) {
  hs_tensor x;
  x.dtype = t->dtype;
  x.shape = t->shape;
  x.data = NULL;
  return x;
}

/* A cached buffer of the context's stack with at least `bytes`, or NULL. */
static void *scratch_cached(exec_stack *stk, size_t bytes) {
  int fit = -1, victim = -1;
  for (int i = 0; i < SCRATCH_CACHE; i++) {
    if (stk->sc_used[i]) continue;
    if (stk->sc_size[i] >= bytes && (fit < 0 || stk->sc_size[i] < stk->sc_size[fit])) fit = i;
    if (victim < 0 || stk->sc_size[i] > stk->sc_size[victim]) victim = i;
  }
  /* None fits: grow the largest free entry, so that a run whose kernels ask
   * for ever larger workspaces keeps one buffer of the largest size rather
   * than one of each. */
  if (fit < 0 && victim >= 0) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    free(stk->sc_buf[victim]);
    stk->sc_buf[victim] = p;
    stk->sc_size[victim] = bytes;
    fit = victim;
  }
  if (fit < 0) return NULL;
  stk->sc_used[fit] = true;
  return stk->sc_buf[fit];
}

void *hs_exec_scratch(hs_exec_ctx *ctx, size_t bytes) {
  if (ctx->n_scratch == ctx->cap_scratch) {
    int cap = ctx->cap_scratch ? 2 * ctx->cap_scratch : 8;
    void **s = realloc(ctx->scratch, (size_t)cap * sizeof(void *));
    if (!s) return NULL;
    ctx->scratch = s;
    ctx->cap_scratch = cap;
  }
  if (bytes == 0) bytes = 64;
  void *p = ctx->stack ? scratch_cached(ctx->stack, bytes) : NULL;
  if (!p && posix_memalign(&p, 64, bytes) != 0) return NULL;
  ctx->scratch[ctx->n_scratch++] = p;
  return p;
}

static void scratch_reset(hs_exec_ctx *ctx, int keep) {
  exec_stack *stk = ctx->stack;
  while (ctx->n_scratch > keep) {
    void *p = ctx->scratch[--ctx->n_scratch];
    bool cached = false;
    for (int i = 0; stk && i < SCRATCH_CACHE && !cached; i++)
      if (stk->sc_buf[i] == p) stk->sc_used[i] = false, cached = true;
    if (!cached) free(p);
  }
}

int hs_exec_num_threads(const hs_exec_ctx *ctx) {
  return ctx && ctx->pool ? hs_threadpool_size(ctx->pool) : 1;
}

void hs_exec_parallel_for(hs_exec_ctx *ctx, int64_t n, int64_t grain, hs_range_fn fn, void *arg) {
  if (n <= 0) return;
  if (ctx && ctx->pool && n > grain) {
    hs_threadpool_parallel_for(ctx->pool, n, grain, fn, arg);
    return;
  }
  fn(arg, 0, n);
}

/* ------------------------------------------------------------ compile */

static bool defined_in(const hs_value *v, const hs_region *r) {
  return v->def ? v->def->parent == r : false;
}

static void note_uses(const hs_op *op, const hs_region *r, int i, int *last) {
  for (int j = 0; j < op->n_operands; j++)
    if (defined_in(op->operands[j], r)) last[op->operands[j]->id] = i;
  for (int k = 0; k < op->n_regions; k++) {
    hs_region *sub = op->regions[k];
    for (int b = 0; b < sub->n_blocks; b++)
      for (int o = 0; o < sub->blocks[b]->n_ops; o++) note_uses(sub->blocks[b]->ops[o], r, i, last);
  }
}

static hs_status *compile_region(hs_compiled *c, hs_func *f, hs_region *r, int *last, bool top);

static hs_status *compile_op(hs_compiled *c, hs_func *f, hs_op *op, int *last) {
  const hs_kernel *k = hs_kernel_lookup(op->name);
  if (!k) return hs_op_error(op, HS_UNIMPLEMENTED, "unsupported op");
  op->kernel = k;
  op->kernel_state = NULL;
  for (int i = 0; i < op->n_results; i++) {
    const hs_type *t = &op->results[i]->type;
    if (t->kind != HS_TYPE_TENSOR)
      return hs_op_error(op, HS_UNIMPLEMENTED, "result %d: only tensor types are supported", i);
    if (hs_dtype_is_complex(t->dtype) && strcmp(op->name, "stablehlo.constant") != 0 &&
        strncmp(op->name, "func.", 5) != 0)
      return hs_op_error(op, HS_UNIMPLEMENTED, "complex element types are not supported");
  }
  for (int i = 0; i < op->n_operands; i++)
    if (op->operands[i]->type.kind != HS_TYPE_TENSOR)
      return hs_op_error(op, HS_UNIMPLEMENTED, "operand %d: only tensor types are supported", i);
  if (k->prepare) HS_RETURN_IF_ERROR(k->prepare(op, &c->arena));
  if (strcmp(op->name, "func.call") == 0) {
    const hs_func *callee = hs_module_find_func(c->module, hs_op_attr(op, "callee")->u.str.s);
    if (!callee) return hs_op_error(op, HS_NOT_FOUND, "no function @%s", hs_op_attr(op, "callee")->u.str.s);
    if (callee->n_args != op->n_operands || callee->n_results != op->n_results)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "@%s takes %d arguments and returns %d results",
                         callee->name, callee->n_args, callee->n_results);
    op->kernel_state = (void *)callee;
  }
  for (int i = 0; i < op->n_regions; i++) HS_RETURN_IF_ERROR(compile_region(c, f, op->regions[i], last, false));
  return NULL;
}

/* Liveness of region r's block: which values die after which op.  `last`
 * (per value id) is filled here; nested regions must be compiled first. */
static hs_status *plan_liveness(hs_compiled *c, hs_func *f, hs_region *r, int *last) {
  hs_block *b = r->blocks[0];
  for (int i = 0; i < b->n_ops; i++)
    for (int j = 0; j < b->ops[i]->n_results; j++) last[b->ops[i]->results[j]->id] = i;
  for (int i = 0; i < b->n_ops; i++) note_uses(b->ops[i], r, i, last);
  block_plan *p = hs_arena_calloc(&c->arena, 1, sizeof(*p));
  if (!p) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory compiling @%s", f->name);
  p->dead = hs_arena_calloc(&c->arena, (size_t)b->n_ops, sizeof(int *));
  p->n_dead = hs_arena_calloc(&c->arena, (size_t)b->n_ops, sizeof(int));
  if (!p->dead || !p->n_dead) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  int term = b->n_ops - 1;
  for (int i = 0; i < term; i++)
    for (int j = 0; j < b->ops[i]->n_results; j++) {
      int id = b->ops[i]->results[j]->id;
      if (last[id] < term) p->n_dead[last[id]]++;
    }
  for (int i = 0; i < term; i++) {
    p->dead[i] = hs_arena_calloc(&c->arena, (size_t)p->n_dead[i] + 1, sizeof(int));
    if (!p->dead[i]) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    p->n_dead[i] = 0;
  }
  for (int i = 0; i < term; i++)
    for (int j = 0; j < b->ops[i]->n_results; j++) {
      int id = b->ops[i]->results[j]->id;
      if (last[id] < term) p->dead[last[id]][p->n_dead[last[id]]++] = id;
    }
  b->plan = p;
  return NULL;
}

static hs_status *compile_region(hs_compiled *c, hs_func *f, hs_region *r, int *last, bool top) {
  if (r->n_blocks != 1) {
    hs_loc loc = r->n_blocks && r->blocks[0]->n_ops ? r->blocks[0]->ops[0]->loc : f->loc;
    return hs_status_new(HS_UNIMPLEMENTED, "%s:%d:%d: regions with %d blocks are not supported",
                         loc.file, loc.line, loc.col, r->n_blocks);
  }
  hs_block *b = r->blocks[0];
  if (b->n_ops == 0) return hs_status_new(HS_INVALID_ARGUMENT, "%s:%d:%d: empty block in @%s",
                                          f->loc.file, f->loc.line, f->loc.col, f->name);
  for (int i = 0; i < b->n_ops; i++) HS_RETURN_IF_ERROR(compile_op(c, f, b->ops[i], last));
  /* HS_NO_FUSE=1 keeps every op separate (for debugging and for measuring the pass). */
  if (top && !getenv("HS_NO_FUSE")) HS_RETURN_IF_ERROR(hs_fuse_block(&c->arena, f, b));
  return plan_liveness(c, f, r, last);
}


/* ---- memory plan ---------------------------------------------------------- */

typedef struct interval {
  int id;
  int start, end; /* op indices, inclusive */
  size_t size, off;
} interval;

static int by_size_desc(const void *a, const void *b) {
  const interval *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->start - y->start;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Places the top-level block's values.  `last` holds each value's last use
 * (from compile_region). */
static hs_status *plan_function(hs_compiled *c, hs_func *f, const int *last) {
  func_plan *fp = hs_arena_calloc(&c->arena, 1, sizeof(*fp));
  int64_t *off = hs_arena_alloc(&c->arena, sizeof(int64_t) * ((size_t)f->n_values + 1));
  if (!fp || !off) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory planning @%s", f->name);
  for (int i = 0; i <= f->n_values; i++) off[i] = -1;
  const hs_block *b = f->body->blocks[0];
  int n = 0;
  for (int i = 0; i < b->n_ops; i++) n += b->ops[i]->n_results;
  interval *iv = malloc(sizeof(interval) * ((size_t)n + 1));
  interval **placed = malloc(sizeof(interval *) * ((size_t)n + 1));
  if (!iv || !placed) {
    free(iv);
    free(placed);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory planning @%s", f->name);
  }
  n = 0;
  for (int i = 0; i < b->n_ops; i++) {
    const hs_op *op = b->ops[i];
    if (op->folded || (op->kernel && op->kernel->run == NULL)) continue; /* constants: no buffer */
    for (int j = 0; j < op->n_results; j++) {
      const hs_value *v = op->results[j];
      hs_tensor t = tensor_of_type(&v->type);
      iv[n].id = v->id;
      iv[n].start = i;
      iv[n].end = last[v->id] > i ? last[v->id] : i;
      iv[n].size = align64(hs_tensor_nbytes(&t));
      if (iv[n].size == 0) iv[n].size = 64;
      n++;
    }
  }
  qsort(iv, (size_t)n, sizeof(interval), by_size_desc);
  size_t total = 0;
  int n_placed = 0;
  for (int k = 0; k < n; k++) {
    /* Lowest offset that does not collide with a placed, time-overlapping value. */
    size_t best = 0;
    for (;;) {
      bool moved = false;
      for (int p = 0; p < n_placed; p++) {
        const interval *q = placed[p];
        if (q->end < iv[k].start || q->start > iv[k].end) continue;
        if (q->off < best + iv[k].size && best < q->off + q->size) {
          best = q->off + q->size;
          moved = true;
        }
      }
      if (!moved) break;
    }
    iv[k].off = best;
    placed[n_placed++] = &iv[k];
    if (best + iv[k].size > total) total = best + iv[k].size;
  }
  for (int k = 0; k < n; k++) off[iv[k].id] = (int64_t)iv[k].off;
  size_t max_live = 0;
  for (int t = 0; t < b->n_ops; t++) {
    size_t live = 0;
    for (int k = 0; k < n; k++)
      if (iv[k].start <= t && t <= iv[k].end) live += iv[k].size;
    if (live > max_live) max_live = live;
  }
  fp->max_live_bytes = max_live;
  free(iv);
  free(placed);
  fp->value_off = off;
  fp->arena_bytes = total;
  fp->frame_bytes = align64(sizeof(hs_tensor) * ((size_t)f->n_values + 1)) + align64((size_t)f->n_values + 1) +
                    total;
  f->plan = fp;
  return NULL;
}

static void collect_callees(const hs_region *r, size_t *need, hs_compiled *c);

static size_t func_need(hs_compiled *c, hs_func *f) {
  func_plan *fp = f->plan;
  if (fp->state == 2) return fp->need;
  if (fp->state == 1) return 0; /* recursion: deeper frames fall back to malloc */
  fp->state = 1;
  size_t deepest = 0;
  collect_callees(f->body, &deepest, c);
  fp->need = fp->frame_bytes + deepest;
  fp->state = 2;
  return fp->need;
}

static void collect_callees(const hs_region *r, size_t *need, hs_compiled *c) {
  for (int bi = 0; bi < r->n_blocks; bi++)
    for (int i = 0; i < r->blocks[bi]->n_ops; i++) {
      const hs_op *op = r->blocks[bi]->ops[i];
      if (strcmp(op->name, "func.call") == 0 && op->kernel_state) {
        size_t n = func_need(c, (hs_func *)op->kernel_state);
        if (n > *need) *need = n;
      }
      for (int k = 0; k < op->n_regions; k++) collect_callees(op->regions[k], need, c);
    }
}

hs_status *hs_compile_module(hs_module *m, hs_compiled **out) {
  *out = NULL;
  hs_compiled *c = calloc(1, sizeof(*c));
  if (!c) {
    hs_module_free(m);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  c->module = m;
  hs_arena_init(&c->arena, 16384);
  pthread_mutex_init(&c->stacks_mu, NULL);
  hs_status *ist = hs_inline_calls(m);
  if (ist) {
    hs_compiled_free(c);
    return ist;
  }
  for (int i = 0; i < m->n_funcs; i++) {
    hs_func *f = m->funcs[i];
    int *last = malloc(((size_t)f->n_values + 1) * sizeof(int));
    if (!last) {
      hs_compiled_free(c);
      return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    }
    hs_status *st = compile_region(c, f, f->body, last, true);
    if (!st) st = plan_function(c, f, last);
    free(last);
    if (st) {
      hs_compiled_free(c);
      return st;
    }
  }
  for (int i = 0; i < m->n_funcs; i++) {
    size_t need = func_need(c, m->funcs[i]);
    if (need > c->stack_bytes) c->stack_bytes = need;
  }
  *out = c;
  return NULL;
}

void hs_compiled_free(hs_compiled *c) {
  if (!c) return;
  for (int i = 0; i < c->n_folded_bufs; i++) free(c->folded_bufs[i]);
  free(c->folded_bufs);
  for (exec_stack *s = c->free_stacks; s;) {
    exec_stack *n = s->next;
    stack_free(s);
    s = n;
  }
  pthread_mutex_destroy(&c->stacks_mu);
  hs_arena_free(&c->arena);
  hs_module_free(c->module);
  free(c);
}


/* ---- constant folding at bind time ---------------------------------------- */

static bool side_effects(const hs_op *op) {
  return op->n_results == 0 || strcmp(op->name, "stablehlo.custom_call") == 0 ||
         strncmp(op->name, "check.", 6) == 0 || strcmp(op->name, "stablehlo.rng_bit_generator") == 0;
}

static hs_status *run_op(hs_exec_ctx *ctx, const hs_op *op);

/* Marks every value defined inside op's regions. */
static void mark_inside(const hs_op *op, unsigned char *inside) {
  for (int r = 0; r < op->n_regions; r++)
    for (int bi = 0; bi < op->regions[r]->n_blocks; bi++) {
      const hs_block *b = op->regions[r]->blocks[bi];
      for (int i = 0; i < b->n_args; i++) inside[b->args[i]->id] = 1;
      for (int i = 0; i < b->n_ops; i++) {
        for (int j = 0; j < b->ops[i]->n_results; j++) inside[b->ops[i]->results[j]->id] = 1;
        mark_inside(b->ops[i], inside);
      }
    }
}

/* True when every value op reads - its operands and what its regions read
 * from outside - is known. */
static bool reads_only_known(const hs_op *op, const hs_tensor *const *kval, const unsigned char *inside) {
  for (int k = 0; k < op->n_operands; k++)
    if (!kval[op->operands[k]->id] && !inside[op->operands[k]->id]) return false;
  for (int r = 0; r < op->n_regions; r++)
    for (int bi = 0; bi < op->regions[r]->n_blocks; bi++)
      for (int i = 0; i < op->regions[r]->blocks[bi]->n_ops; i++)
        if (!reads_only_known(op->regions[r]->blocks[bi]->ops[i], kval, inside)) return false;
  return true;
}

hs_status *hs_fold_constants(hs_compiled *c, hs_func *f, const hs_tensor *bound, int n_bound) {
  if (c->folded) return hs_status_new(HS_FAILED_PRECONDITION, "@%s: weights are already bound", f->name);
  c->folded = true;
  const hs_block *b = f->body->blocks[0];
  if (n_bound > b->n_args) return hs_status_new(HS_INVALID_ARGUMENT, "@%s: too many bound arguments", f->name);
  hs_status *st = NULL;
  /* A frame in which known values sit in their slots, for running ops. */
  frame fr;
  memset(&fr, 0, sizeof fr);
  fr.n = f->n_values;
  fr.slots = calloc((size_t)fr.n + 1, sizeof(hs_tensor));
  fr.own = calloc((size_t)fr.n + 1, 1);
  /* kval[id]: the value for good (bound weight, constant or folded), or NULL. */
  const hs_tensor **kval = calloc((size_t)fr.n + 1, sizeof(hs_tensor *));
  unsigned char *inside = calloc((size_t)fr.n + 1, 1);
  int *last = malloc(((size_t)fr.n + 1) * sizeof(int));
  const hs_tensor **konst = NULL;
  int konst_cap = 0;
  hs_exec_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.c = c;
  ctx.fr = &fr;
  ctx.depth = 1;
  if (!fr.slots || !fr.own || !kval || !inside || !last) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory folding @%s", f->name);
    goto done;
  }
  for (int i = 0; i < n_bound; i++) {
    fr.slots[b->args[i]->id] = bound[i];
    kval[b->args[i]->id] = &bound[i];
  }
  for (int i = 0; i + 1 < b->n_ops && !st; i++) {
    hs_op *op = b->ops[i];
    if (op->kernel->run == NULL) { /* constant: a lasting view of its payload */
      hs_tensor *t = hs_arena_alloc(&c->arena, sizeof(hs_tensor));
      if (!t) {
        st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory folding @%s", f->name);
        break;
      }
      st = run_op(&ctx, op);
      *t = fr.slots[op->results[0]->id];
      kval[op->results[0]->id] = t;
      continue;
    }
    int n_known = 0;
    size_t in_bytes = 0, out_bytes = 0;
    for (int k = 0; k < op->n_operands; k++) {
      const hs_tensor *kv = kval[op->operands[k]->id];
      n_known += kv != NULL;
      if (kv) in_bytes += hs_tensor_nbytes(kv);
    }
    for (int k = 0; k < op->n_results; k++) {
      hs_tensor t = tensor_of_type(&op->results[k]->type);
      out_bytes += hs_tensor_nbytes(&t);
    }
    /* Fold what depends on constants alone, unless it would store a big
     * expansion (a broadcast to activation size is cheaper to recompute). */
    bool expands = out_bytes > ((size_t)1 << 20) && out_bytes > 4 * in_bytes;
    bool all_known = n_known == op->n_operands && op->n_operands > 0;
    if (all_known && op->n_regions) {
      mark_inside(op, inside);
      all_known = reads_only_known(op, kval, inside);
    }
    if (all_known && !side_effects(op) && !expands) {
      hs_tensor *res = hs_arena_calloc(&c->arena, (size_t)op->n_results, sizeof(hs_tensor));
      void **bufs = realloc(c->folded_bufs, sizeof(void *) * (size_t)(c->n_folded_bufs + op->n_results));
      if (!res || !bufs) {
        st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory folding @%s", f->name);
        break;
      }
      c->folded_bufs = bufs;
      st = run_op(&ctx, op); /* results land in malloc'd slots owned by fr */
      if (st) break;
      for (int k = 0; k < op->n_results; k++) {
        int id = op->results[k]->id;
        res[k] = fr.slots[id];
        fr.own[id] = 0; /* the buffer now belongs to c */
        c->folded_bufs[c->n_folded_bufs++] = res[k].data;
        c->folded_bytes += hs_tensor_nbytes(&res[k]);
        kval[id] = &res[k];
      }
      op->folded = res;
      continue;
    }
  }
  if (st) goto done;
  /* Bind-time rewrites, which may move and drop top-level ops (HS_NO_CONV_FOLD=1
   * keeps them off, for debugging and measuring), then new liveness. */
  if (!getenv("HS_NO_CONV_FOLD") && !c->device_target) st = hs_conv_fold(&c->arena, f, kval, NULL);
  if (!st) st = plan_liveness(c, f, f->body, last);
  /* Kernels specialize on the operands now known for good. */
  for (int i = 0; i + 1 < b->n_ops && !st; i++) {
    hs_op *op = b->ops[i];
    if (c->device_target || op->folded || !op->kernel->run || !op->kernel->specialize) continue;
    bool any = false;
    for (int k = 0; k < op->n_operands; k++) any |= kval[op->operands[k]->id] != NULL;
    if (!any) continue;
    if (op->n_operands > konst_cap) {
      const hs_tensor **k2 = realloc(konst, sizeof(hs_tensor *) * (size_t)op->n_operands);
      if (!k2) {
        st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
        break;
      }
      konst = k2;
      konst_cap = op->n_operands;
    }
    for (int k = 0; k < op->n_operands; k++) konst[k] = kval[op->operands[k]->id];
    st = op->kernel->specialize(op, konst, &c->arena, c->num_threads);
  }
  if (st) goto done;
  /* Re-plan memory without the folded values; stacks are resized. */
  st = plan_function(c, f, last);
  if (st) goto done;
  for (int i = 0; i < c->module->n_funcs; i++) ((func_plan *)c->module->funcs[i]->plan)->state = 0;
  c->stack_bytes = 0;
  for (int i = 0; i < c->module->n_funcs; i++) {
    size_t need = func_need(c, c->module->funcs[i]);
    if (need > c->stack_bytes) c->stack_bytes = need;
  }
  pthread_mutex_lock(&c->stacks_mu);
  for (exec_stack *s2 = c->free_stacks; s2;) {
    exec_stack *nx = s2->next;
    stack_free(s2);
    s2 = nx;
  }
  c->free_stacks = NULL;
  pthread_mutex_unlock(&c->stacks_mu);
done:
  if (fr.slots)
    for (int i = 0; i < fr.n; i++)
      if (fr.own[i]) free(fr.slots[i].data);
  free(fr.slots);
  free(fr.own);
  free(kval);
  free(inside);
  free(last);
  free(konst);
  free(ctx.scratch);
  return st;
}

/* ------------------------------------------------------------ execute */

static hs_status *run_block(hs_exec_ctx *ctx, const hs_block *b, const hs_tensor *args, int n_args,
                            hs_tensor *outs, int n_outs);

static hs_status *check_arg(const hs_value *v, const hs_tensor *t, const char *what, int i) {
  if (v->type.dtype != t->dtype || !hs_shape_equal(&v->type.shape, &t->shape)) {
    char want[128], got[128], s[64];
    hs_type gt = {HS_TYPE_TENSOR, t->dtype, t->shape};
    (void)s;
    return hs_status_new(HS_INVALID_ARGUMENT, "%s %d: expected %s, got %s", what, i,
                         hs_type_str(&v->type, want, sizeof want), hs_type_str(&gt, got, sizeof got));
  }
  return NULL;
}

/* Hands value v (a terminator operand) to out: moves the buffer when the
 * frame owns it and v was defined in region r, copies otherwise; or copies
 * into a caller-provided buffer. */
static hs_status *yield_value(hs_exec_ctx *ctx, const hs_value *v, const hs_region *r, hs_tensor *out) {
  frame *fr = ctx->fr;
  hs_tensor *src = &fr->slots[v->id];
  size_t nb = hs_tensor_nbytes(src);
  out->dtype = src->dtype;
  out->shape = src->shape;
  if (out->data) {
    memcpy(out->data, src->data, nb);
    return NULL;
  }
  if (fr->own[v->id] && defined_in(v, r)) {
    out->data = src->data;
    fr->own[v->id] = 0;
    src->data = NULL;
    ctx->live_bytes -= nb ? (nb + 63) & ~(size_t)63 : 64; /* leaves the accounting of this frame */
    return NULL;
  }
  void *p = NULL;
  if (posix_memalign(&p, 64, nb ? nb : 64) != 0) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  memcpy(p, src->data, nb);
  out->data = p;
  return NULL;
}

static hs_status *run_op(hs_exec_ctx *ctx, const hs_op *op) {
  frame *fr = ctx->fr;
  if (op->folded) { /* computed once from weights and constants */
    for (int i = 0; i < op->n_results; i++) {
      fr->slots[op->results[i]->id] = op->folded[i];
      fr->own[op->results[i]->id] = 0;
    }
    return NULL;
  }
  if (op->kernel->run == NULL) { /* stablehlo.constant */
    const hs_attr *v = (const hs_attr *)op->kernel_state;
    int id = op->results[0]->id;
    fr->slots[id] = tensor_of_type(&op->results[0]->type);
    fr->slots[id].data = v->u.dense.data;
    fr->own[id] = 0;
    return NULL;
  }
  hs_tensor in_stack[STACK_TENSORS], out_stack[STACK_TENSORS];
  hs_tensor *in = in_stack, *out = out_stack;
  if (op->n_operands > STACK_TENSORS) in = malloc(sizeof(hs_tensor) * (size_t)op->n_operands);
  if (op->n_results > STACK_TENSORS) out = malloc(sizeof(hs_tensor) * (size_t)op->n_results);
  hs_status *st = NULL;
  if (!in || !out) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (int i = 0; i < op->n_operands; i++) {
    in[i] = fr->slots[op->operands[i]->id];
    if (!in[i].data) {
      st = hs_op_error(op, HS_INTERNAL, "operand %d (%%%s) has no value", i, op->operands[i]->name);
      goto done;
    }
  }
  for (int i = 0; i < op->n_results; i++) {
    int id = op->results[i]->id;
    hs_tensor t = tensor_of_type(&op->results[i]->type);
    int64_t off = fr->value_off ? fr->value_off[id] : -1;
    if (off >= 0) {
      t.data = fr->arena + off;
      fr->own[id] = 0;
    } else {
      t.data = buf_alloc(ctx, hs_tensor_nbytes(&t));
      if (!t.data) {
        st = hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory for result %d", i);
        goto done;
      }
      fr->own[id] = 1;
    }
    fr->slots[id] = t;
    out[i] = t;
  }
  int keep = ctx->n_scratch;
  if (prof_enabled() && ctx->depth == 1 && op->n_regions == 0) {
    double t0 = now_ms();
    st = op->kernel->run(ctx, op, in, out);
    prof_add(op->name, now_ms() - t0);
  } else {
    st = op->kernel->run(ctx, op, in, out);
  }
  scratch_reset(ctx, keep);
done:
  if (in != in_stack) free(in);
  if (out != out_stack) free(out);
  return st;
}

static hs_status *run_block(hs_exec_ctx *ctx, const hs_block *b, const hs_tensor *args, int n_args,
                            hs_tensor *outs, int n_outs) {
  frame *fr = ctx->fr;
  if (n_args != b->n_args)
    return hs_status_new(HS_INTERNAL, "block expects %d arguments, got %d", b->n_args, n_args);
  for (int i = 0; i < n_args; i++) {
    int id = b->args[i]->id;
    fr->slots[id] = args[i];
    fr->own[id] = 0;
  }
  const block_plan *p = b->plan;
  int term = b->n_ops - 1;
  for (int i = 0; i < term; i++) {
    HS_RETURN_IF_ERROR(run_op(ctx, b->ops[i]));
    for (int k = 0; k < p->n_dead[i]; k++) slot_release(ctx, p->dead[i][k]);
  }
  const hs_op *t = b->ops[term];
  if (t->n_operands != n_outs)
    return hs_op_error(t, HS_INVALID_ARGUMENT, "returns %d values where %d are expected", t->n_operands,
                       n_outs);
  hs_status *st = NULL;
  for (int i = 0; i < n_outs && !st; i++) st = yield_value(ctx, t->operands[i], t->parent, &outs[i]);
  /* Whatever the block defined and still owns dies here. */
  for (int i = 0; i < term; i++)
    for (int j = 0; j < b->ops[i]->n_results; j++) slot_release(ctx, b->ops[i]->results[j]->id);
  for (int i = 0; i < n_args; i++) fr->slots[b->args[i]->id].data = NULL;
  return st;
}

hs_status *hs_exec_region(hs_exec_ctx *ctx, const hs_region *region, const hs_tensor *args, int n_args,
                          hs_tensor *outs, int n_outs) {
  for (int i = 0; i < n_outs; i++)
    if (!outs[i].data) return hs_status_new(HS_INTERNAL, "hs_exec_region: output %d not allocated", i);
  return run_block(ctx, region->blocks[0], args, n_args, outs, n_outs);
}

const char *hs_region_binary_op(const hs_region *region, bool *swapped) {
  if (swapped) *swapped = false;
  if (region->n_blocks != 1) return NULL;
  const hs_block *b = region->blocks[0];
  if (b->n_args != 2 || b->n_ops != 2) return NULL;
  const hs_op *op = b->ops[0], *ret = b->ops[1];
  if (op->n_operands != 2 || op->n_results != 1 || op->n_regions) return NULL;
  if (ret->n_operands != 1 || ret->operands[0] != op->results[0]) return NULL;
  if (op->operands[0] == b->args[0] && op->operands[1] == b->args[1]) return op->name;
  if (op->operands[0] == b->args[1] && op->operands[1] == b->args[0]) {
    if (swapped) *swapped = true;
    return op->name;
  }
  return NULL;
}

static void free_results(hs_tensor *r, int n) {
  for (int i = 0; i < n; i++) {
    free(r[i].data);
    r[i].data = NULL;
  }
}

/* Runs f in a fresh frame; results as hs_execute describes. */
static hs_status *call_func(hs_exec_ctx *ctx, const hs_func *f, const hs_tensor *args, int n_args,
                            hs_tensor *results, int n_results) {
  if (ctx->depth >= MAX_CALL_DEPTH)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s:%d:%d: call depth exceeds %d in @%s", f->loc.file,
                         f->loc.line, f->loc.col, MAX_CALL_DEPTH, f->name);
  if (n_args != f->n_args)
    return hs_status_new(HS_INVALID_ARGUMENT, "@%s takes %d arguments, got %d", f->name, f->n_args,
                         n_args);
  if (n_results != f->n_results)
    return hs_status_new(HS_INVALID_ARGUMENT, "@%s returns %d results, %d requested", f->name,
                         f->n_results, n_results);
  for (int i = 0; i < n_args; i++)
    HS_RETURN_IF_ERROR(hs_status_annotate(check_arg(f->body->blocks[0]->args[i], &args[i], "argument", i),
                                          "@%s", f->name));
  const func_plan *fp = f->plan;
  frame fr;
  fr.n = f->n_values;
  char *block = NULL, *heap = NULL;
  exec_stack *stk = ctx->stack;
  size_t saved_top = stk ? stk->top : 0;
  if (stk && stk->size - stk->top >= fp->frame_bytes) {
    block = stk->data + stk->top;
    stk->top += fp->frame_bytes;
  } else { /* recursion deeper than planned */
    if (posix_memalign((void **)&heap, 64, fp->frame_bytes ? fp->frame_bytes : 64) != 0)
      return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    block = heap;
  }
  size_t slots_bytes = align64(sizeof(hs_tensor) * ((size_t)fr.n + 1));
  fr.slots = (hs_tensor *)block;
  fr.own = (unsigned char *)block + slots_bytes;
  fr.arena = block + slots_bytes + align64((size_t)fr.n + 1);
  fr.value_off = fp->value_off;
  memset(fr.slots, 0, sizeof(hs_tensor) * ((size_t)fr.n + 1));
  memset(fr.own, 0, (size_t)fr.n + 1);
  ctx->live_bytes += fp->arena_bytes;
  if (ctx->live_bytes > ctx->peak_bytes) ctx->peak_bytes = ctx->live_bytes;
  frame *saved = ctx->fr;
  ctx->fr = &fr;
  ctx->depth++;
  hs_status *st = run_block(ctx, f->body->blocks[0], args, n_args, results, n_results);
  ctx->depth--;
  for (int i = 0; i < fr.n; i++) slot_release(ctx, i); /* after an error, whatever is left */
  ctx->fr = saved;
  ctx->live_bytes -= fp->arena_bytes;
  if (stk) stk->top = saved_top;
  free(heap);
  return st;
}

static exec_stack *stack_get(hs_compiled *c) {
  pthread_mutex_lock(&c->stacks_mu);
  exec_stack *s = c->free_stacks;
  if (s) c->free_stacks = s->next;
  pthread_mutex_unlock(&c->stacks_mu);
  if (!s) {
    if (posix_memalign((void **)&s, 64, sizeof(exec_stack) + c->stack_bytes) != 0) return NULL;
    memset(s, 0, sizeof *s);
    s->size = c->stack_bytes;
  }
  s->top = 0;
  s->next = NULL;
  return s;
}

static void stack_put(hs_compiled *c, exec_stack *s) {
  if (!s) return;
  pthread_mutex_lock(&c->stacks_mu);
  s->next = c->free_stacks;
  c->free_stacks = s;
  pthread_mutex_unlock(&c->stacks_mu);
}

hs_status *hs_execute(hs_compiled *c, const hs_func *f, const hs_tensor *args, int n_args,
                      hs_tensor *results, int n_results, const hs_exec_options *opt) {
  hs_exec_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.c = c;
  ctx.pool = opt ? opt->pool : NULL;
  bool caller_bufs[64];
  for (int i = 0; i < n_results && i < 64; i++) caller_bufs[i] = results[i].data != NULL;
  for (int i = 0; i < n_results && i < f->n_results; i++) {
    if (results[i].data) {
      hs_tensor want = tensor_of_type(&f->result_types[i]);
      if (results[i].dtype != want.dtype || !hs_shape_equal(&results[i].shape, &want.shape))
        return hs_status_new(HS_INVALID_ARGUMENT, "result %d: caller buffer has the wrong type", i);
    }
  }
  ctx.stack = stack_get(c); /* NULL on OOM: frames then fall back to malloc */
  hs_status *st = call_func(&ctx, f, args, n_args, results, n_results);
  stack_put(c, ctx.stack);
  if (st)
    for (int i = 0; i < n_results && i < 64; i++)
      if (!caller_bufs[i]) {
        free(results[i].data);
        results[i].data = NULL;
      }
  free(ctx.scratch);
  last_peak_bytes = ctx.peak_bytes;
  return st;
}

int64_t hs_exec_value_offset(const hs_func *f, int id) {
  const func_plan *fp = f->plan;
  return fp && id >= 0 && id < f->n_values ? fp->value_off[id] : -1;
}

hs_status *hs_exec_op_on_host(hs_compiled *c, const hs_func *f, const hs_op *op, hs_tensor *slots,
                              unsigned char *own) {
  frame fr;
  memset(&fr, 0, sizeof fr);
  fr.slots = slots;
  fr.own = own;
  fr.n = f->n_values;
  hs_exec_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.c = c;
  ctx.fr = &fr;
  ctx.depth = 1;
  ctx.stack = stack_get(c);
  hs_status *st = run_op(&ctx, op);
  if (st)
    for (int i = 0; i < op->n_results; i++) slot_release(&ctx, op->results[i]->id);
  stack_put(c, ctx.stack);
  free(ctx.scratch);
  return st;
}

/* ------------------------------------------------------------ builtins */

static hs_status *prep_constant(hs_op *op, hs_arena *a) {
  const hs_attr *v = hs_op_attr(op, "value");
  if (!v || v->kind != HS_ATTR_DENSE) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing dense 'value'");
  if (op->n_results != 1) return hs_op_error(op, HS_INVALID_ARGUMENT, "expects one result");
  const hs_type *t = &op->results[0]->type;
  if (v->u.dense.type.dtype != t->dtype || hs_shape_numel(&v->u.dense.type.shape) != hs_shape_numel(&t->shape))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "value does not match the result type");
  op->kernel_state = (void *)v;
  return NULL;
}

static hs_status *prep_call(hs_op *op, hs_arena *a) {
  const hs_attr *callee = hs_op_attr(op, "callee");
  if (!callee || callee->kind != HS_ATTR_SYMBOL)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "missing callee symbol");
  return NULL; /* resolved by compile_op, which knows the module */
}

static hs_status *run_call(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const hs_func *f = op->kernel_state;
  return hs_status_annotate(call_func(ctx, f, in, op->n_operands, out, op->n_results), "in call to @%s",
                            f->name);
}

static hs_status *prep_terminator(hs_op *op, hs_arena *a) { return NULL; }
static hs_status *run_terminator(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  return hs_op_error(op, HS_INTERNAL, "terminator executed as an op");
}

static bool pred_value(const hs_tensor *t) {
  return hs_load_i64(t->dtype, t->data, 0) != 0;
}

static hs_status *run_while(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  int n = op->n_operands;
  const hs_block *cond = op->regions[0]->blocks[0], *body = op->regions[1]->blocks[0];
  hs_tensor *cur = calloc((size_t)n + 1, sizeof(hs_tensor));
  hs_tensor *nxt = calloc((size_t)n + 1, sizeof(hs_tensor));
  bool owned = false;
  hs_status *st = NULL;
  if (!cur || !nxt) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  memcpy(cur, in, sizeof(hs_tensor) * (size_t)n);
  for (;;) {
    hs_tensor p = tensor_of_type(&op->regions[0]->blocks[0]->ops[cond->n_ops - 1]->operands[0]->type);
    st = run_block(ctx, cond, cur, n, &p, 1);
    if (st) break;
    bool go = pred_value(&p);
    free(p.data);
    if (!go) break;
    for (int i = 0; i < n; i++) nxt[i].data = NULL;
    st = run_block(ctx, body, cur, n, nxt, n);
    if (st) {
      free_results(nxt, n);
      break;
    }
    if (owned) free_results(cur, n);
    memcpy(cur, nxt, sizeof(hs_tensor) * (size_t)n);
    owned = true;
  }
  if (!st)
    for (int i = 0; i < n; i++) memcpy(out[i].data, cur[i].data, hs_tensor_nbytes(&out[i]));
done:
  if (owned) free_results(cur, n);
  free(cur);
  free(nxt);
  return st;
}

static hs_status *prep_while(hs_op *op, hs_arena *a) {
  if (op->n_regions != 2) return hs_op_error(op, HS_INVALID_ARGUMENT, "expects cond and body regions");
  if (op->n_results != op->n_operands)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "operand and result counts differ");
  for (int r = 0; r < 2; r++) {
    if (op->regions[r]->n_blocks != 1 || op->regions[r]->blocks[0]->n_args != op->n_operands)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "region %d must take %d arguments", r, op->n_operands);
  }
  return NULL;
}

static hs_status *run_branch(hs_exec_ctx *ctx, const hs_op *op, int r, hs_tensor *out) {
  const hs_block *b = op->regions[r]->blocks[0];
  return run_block(ctx, b, NULL, 0, out, op->n_results);
}

static hs_status *prep_if_case(hs_op *op, hs_arena *a) {
  if (op->n_regions < 1) return hs_op_error(op, HS_INVALID_ARGUMENT, "expects branch regions");
  if (strcmp(op->name, "stablehlo.if") == 0 && op->n_regions != 2)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expects two branches");
  for (int r = 0; r < op->n_regions; r++)
    if (op->regions[r]->n_blocks != 1 || op->regions[r]->blocks[0]->n_args != 0)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "branch %d must take no arguments", r);
  return NULL;
}

static hs_status *run_if(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  return run_branch(ctx, op, pred_value(&in[0]) ? 0 : 1, out);
}

static hs_status *run_case(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  int64_t i = hs_load_i64(in[0].dtype, in[0].data, 0);
  if (i < 0 || i >= op->n_regions) i = op->n_regions - 1;
  return run_branch(ctx, op, (int)i, out);
}

/* ---- check.* ------------------------------------------------------------ */

static uint64_t float_bits(hs_dtype t, const void *p, int64_t i, int *width) {
  switch (t) {
    case HS_F16:
    case HS_BF16: *width = 16; return ((const uint16_t *)p)[i];
    case HS_F32: *width = 32; return ((const uint32_t *)p)[i];
    default: *width = 64; return ((const uint64_t *)p)[i];
  }
}

/* ULP distance as the StableHLO interpreter's check dialect defines it. */
static uint64_t ulp_diff(hs_dtype t, const void *a, const void *b, int64_t i) {
  int w;
  uint64_t x = float_bits(t, a, i, &w), y = float_bits(t, b, i, &w);
  if (x == y) return 0;
  double fx = hs_load_f64(t, a, i), fy = hs_load_f64(t, b, i);
  if (isfinite(fx) && isfinite(fy)) {
    uint64_t sign = (uint64_t)1 << (w - 1);
    uint64_t ax = x & (sign - 1), ay = y & (sign - 1);
    if ((x & sign) != (y & sign)) return ax + ay;
    return ax > ay ? ax - ay : ay - ax;
  }
  if (isnan(fx) && isnan(fy)) return 0;
  return UINT64_MAX;
}

static bool almost_eq(double a, double b) {
  if (isnan(a) && isnan(b)) return true;
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= 1e-4;
}

static void index_str(const hs_shape *s, int64_t flat, char *buf, size_t cap) {
  int64_t idx[HS_MAX_RANK];
  for (int d = s->rank - 1; d >= 0; d--) {
    idx[d] = s->dims[d] ? flat % s->dims[d] : 0;
    flat = s->dims[d] ? flat / s->dims[d] : 0;
  }
  size_t off = 0;
  off += (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < s->rank && off < cap; d++)
    off += (size_t)snprintf(buf + off, cap - off, d ? ", %lld" : "%lld", (long long)idx[d]);
  if (off < cap) snprintf(buf + off, cap - off, "]");
}

typedef enum { CMP_EQ, CMP_ALMOST, CMP_CLOSE } cmp_kind;

static hs_status *check_tensors(const hs_op *op, cmp_kind kind, const hs_tensor *actual, hs_dtype et,
                                const hs_shape *es, const void *expected) {
  if (actual->dtype != et || hs_shape_numel(&actual->shape) != hs_shape_numel(es))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "actual and expected types differ");
  int64_t minu = 0, maxu = 3;
  if (kind == CMP_CLOSE) {
    HS_RETURN_IF_ERROR(hs_op_get_int(op, "max_ulp_difference", false, 3, &maxu));
    HS_RETURN_IF_ERROR(hs_op_get_int(op, "min_ulp_difference", false, 0, &minu));
  }
  int64_t n = hs_tensor_numel(actual);
  bool is_float = hs_dtype_is_float(et);
  int64_t bad = 0, first = -1;
  uint64_t worst = 0;
  for (int64_t i = 0; i < n; i++) {
    bool ok;
    if (!is_float) {
      ok = hs_load_u64(et, actual->data, i) == hs_load_u64(et, expected, i);
    } else if (kind == CMP_EQ) {
      double a = hs_load_f64(et, actual->data, i), b = hs_load_f64(et, expected, i);
      ok = a == b || (isnan(a) && isnan(b));
    } else if (kind == CMP_ALMOST) {
      ok = almost_eq(hs_load_f64(et, actual->data, i), hs_load_f64(et, expected, i));
    } else {
      uint64_t u = ulp_diff(et, actual->data, expected, i);
      ok = u <= (uint64_t)maxu && u >= (uint64_t)minu;
      if (!ok && u > worst) worst = u;
    }
    if (!ok) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (!bad) return NULL;
  char idx[160];
  index_str(&actual->shape, first, idx, sizeof idx);
  double a = hs_load_f64(et, actual->data, first), b = hs_load_f64(et, expected, first);
  if (kind == CMP_CLOSE)
    return hs_op_error(op, HS_FAILED_PRECONDITION,
                       "%lld of %lld elements differ by more than %lld ULP (worst %llu); first at %s: "
                       "actual %.9g, expected %.9g",
                       (long long)bad, (long long)n, (long long)maxu, (unsigned long long)worst, idx, a, b);
  return hs_op_error(op, HS_FAILED_PRECONDITION,
                     "%lld of %lld elements differ; first at %s: actual %.17g, expected %.17g",
                     (long long)bad, (long long)n, idx, a, b);
}

static cmp_kind check_kind(const char *target) {
  if (strstr(target, "almost_eq")) return CMP_ALMOST;
  if (strstr(target, "close")) return CMP_CLOSE;
  return CMP_EQ;
}

static const char *check_target(const hs_op *op) {
  if (strcmp(op->name, "stablehlo.custom_call") == 0) {
    const hs_attr *a = hs_op_attr(op, "call_target_name");
    return a && a->kind == HS_ATTR_STRING ? a->u.str.s : "";
  }
  return op->name;
}

static bool is_const_check(const char *target) {
  size_t n = strlen(target);
  return n > 6 && strcmp(target + n - 6, "_const") == 0;
}

static hs_status *prep_check(hs_op *op, hs_arena *a) {
  const char *t = check_target(op);
  if (strncmp(t, "check.", 6) != 0)
    return hs_op_error(op, HS_UNIMPLEMENTED, "unsupported custom_call target '%s'", t);
  if (strcmp(t, "check.expect_serialized_eq") == 0)
    return hs_op_error(op, HS_UNIMPLEMENTED, "check.expect_serialized_eq needs probe files");
  if (is_const_check(t)) {
    const hs_attr *v = hs_op_attr(op, "value");
    if (op->n_operands != 1 || !v || v->kind != HS_ATTR_DENSE)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "expects one operand and a dense 'value'");
  } else if (op->n_operands != 2) {
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expects two operands (actual, expected)");
  }
  if (strcmp(t, "check.eq") == 0 && (op->n_results != 1 || op->results[0]->type.dtype != HS_PRED))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "check.eq returns one i1");
  else if (strcmp(t, "check.eq") != 0 && op->n_results != 0)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "check ops return nothing");
  return NULL;
}

static hs_status *run_check(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const char *t = check_target(op);
  cmp_kind k = check_kind(t);
  if (is_const_check(t)) {
    const hs_attr *v = hs_op_attr(op, "value");
    return check_tensors(op, k, &in[0], v->u.dense.type.dtype, &v->u.dense.type.shape, v->u.dense.data);
  }
  hs_status *st = check_tensors(op, k, &in[0], in[1].dtype, &in[1].shape, in[1].data);
  if (strcmp(t, "check.eq") == 0) {
    *(uint8_t *)out[0].data = st == NULL;
    hs_status_free(st);
    return NULL;
  }
  return st;
}

static const hs_kernel builtin_kernels[] = {
    {"stablehlo.constant", prep_constant, NULL},
    {"func.call", prep_call, run_call},
    {"func.return", prep_terminator, run_terminator},
    {"stablehlo.return", prep_terminator, run_terminator},
    {"stablehlo.while", prep_while, run_while},
    {"stablehlo.if", prep_if_case, run_if},
    {"stablehlo.case", prep_if_case, run_case},
    {"stablehlo.custom_call", prep_check, run_check},
    {"check.expect_eq", prep_check, run_check},
    {"check.expect_eq_const", prep_check, run_check},
    {"check.expect_almost_eq", prep_check, run_check},
    {"check.expect_almost_eq_const", prep_check, run_check},
    {"check.expect_close", prep_check, run_check},
    {"check.expect_serialized_eq", prep_check, run_check},
    {NULL, NULL, NULL},
};

const hs_kernel *const hs_kernels_builtin = builtin_kernels;
