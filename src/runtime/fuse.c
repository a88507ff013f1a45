/*
 * fuse.c - fuse chains of element-wise ops into one pass over memory.
 *
 * Exported models are full of element-wise chains over one big tensor:
 * torch's BatchNorm alone becomes subtract, multiply, multiply, add of
 * per-channel broadcasts after every convolution, then a maximum for ReLU.
 * Run op by op, each step reads and writes the whole activation and every
 * broadcast_in_dim materialises a full-size tensor.  Fused, the chain runs
 * over the output in chunks that stay in L1: each step calls the same typed
 * range loop its kernel prepared (hs_ew_state.fn), on chunk-sized buffers;
 * broadcast operands are expanded one chunk at a time and never exist in
 * full.
 *
 * Grouping (per top-level block, after every kernel's prepare):  walking
 * backwards, an element-wise op not yet grouped becomes a root; a producer of
 * one of the group's operands joins when it is element-wise (or a
 * broadcast_in_dim) with the group's shape and ALL its uses are inside the
 * group.  So a group has exactly one value leaving it (the root's result),
 * and replacing the group by one op at the root's position keeps every use
 * after its definition.  Groups of one op are left alone.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/fuse.h"
#include "runtime/kernels/ew_common.h"

#define CHUNK 512          /* elements per step: 8 buffers of f64 stay within 32 KiB */
#define MAX_GROUP 32       /* ops in one group (element-wise steps + broadcasts) */
#define MAX_SLOTS 32       /* leaves + internal values: 32 chunk buffers, 128 KiB of stack */

typedef enum { LEAF_FULL, LEAF_SCALAR, LEAF_BCAST } leaf_kind;

typedef struct fused_leaf {
  leaf_kind kind;
  int operand;                 /* index into the fused op's operands */
  size_t esize;
  /* LEAF_BCAST: per output dimension, the source stride (0 = broadcast). */
  int64_t stride[HS_MAX_RANK];
} fused_leaf;

typedef struct fused_step {
  hs_range_fn fn;
  const hs_ew_state *st;
  int n_in;
  int in[3];                   /* slots */
  int out;                     /* slot; -1 = the fused op's result */
} fused_step;

typedef struct fused_plan {
  int n_leaves, n_internal, n_steps;
  fused_leaf leaves[MAX_SLOTS];
  size_t internal_esize[MAX_SLOTS]; /* slot n_leaves + k */
  fused_step steps[MAX_GROUP];
  hs_shape shape;
  size_t out_esize;
  int64_t par_min;
  hs_op **members; /* the ops the group replaced, root first (for later passes) */
  int n_members;
} fused_plan;

typedef struct fused_call {
  const fused_plan *p;
  const hs_tensor *in;
  hs_tensor *out;
} fused_call;

/* Writes n copies of the element at src (es bytes) to dst. */
static void splat(char *dst, const char *src, size_t es, int64_t n) {
  switch (es) {
    case 1: memset(dst, *src, (size_t)n); return;
    case 2: {
      uint16_t v;
      memcpy(&v, src, 2);
      for (int64_t k = 0; k < n; k++) ((uint16_t *)dst)[k] = v;
      return;
    }
    case 4: {
      uint32_t v;
      memcpy(&v, src, 4);
      for (int64_t k = 0; k < n; k++) ((uint32_t *)dst)[k] = v;
      return;
    }
    case 8: {
      uint64_t v;
      memcpy(&v, src, 8);
      for (int64_t k = 0; k < n; k++) ((uint64_t *)dst)[k] = v;
      return;
    }
    default:
      for (int64_t k = 0; k < n; k++) memcpy(dst + (size_t)k * es, src, es);
  }
}

/* Fills buf with `len` elements of a broadcast leaf starting at output
 * linear index `start`. */
static void fill_bcast(const fused_leaf *l, const hs_shape *s, const char *src, int64_t start, int64_t len,
                       char *buf) {
  int r = s->rank;
  int64_t idx[HS_MAX_RANK];
  int64_t rem = start;
  for (int d = r - 1; d >= 0; d--) {
    idx[d] = rem % s->dims[d];
    rem /= s->dims[d];
  }
  int64_t off = 0;
  for (int d = 0; d < r; d++) off += idx[d] * l->stride[d];
  size_t es = l->esize;
  int64_t inner = r ? s->dims[r - 1] : 1, istride = r ? l->stride[r - 1] : 0;
  int64_t done = 0;
  while (done < len) {
    int64_t run = inner - (r ? idx[r - 1] : 0);
    if (run > len - done) run = len - done;
    char *dst = buf + (size_t)done * es;
    if (istride == 0) {
      splat(dst, src + (size_t)off * es, es, run);
    } else if (istride == 1) {
      memcpy(dst, src + (size_t)off * es, (size_t)run * es);
    } else {
      for (int64_t k = 0; k < run; k++) memcpy(dst + (size_t)k * es, src + (size_t)(off + k * istride) * es, es);
    }
    done += run;
    if (done >= len) break;
    /* advance the multi-index by `run` along the innermost dimension, carrying */
    off += run * istride;
    if (r) idx[r - 1] += run;
    for (int d = r - 1; d > 0 && idx[d] == s->dims[d]; d--) {
      off -= idx[d] * l->stride[d];
      idx[d] = 0;
      idx[d - 1]++;
      off += l->stride[d - 1];
    }
  }
}

static void run_chunks(void *arg, int64_t c0, int64_t c1) {
  const fused_call *fc = arg;
  const fused_plan *p = fc->p;
  int64_t n = hs_shape_numel(&p->shape);
  _Alignas(64) char bufs[MAX_SLOTS][CHUNK * 8];
  for (int64_t c = c0; c < c1; c++) {
    int64_t b = c * CHUNK, len = n - b < CHUNK ? n - b : CHUNK;
    const void *slot[MAX_SLOTS];
    for (int i = 0; i < p->n_leaves; i++) {
      const fused_leaf *l = &p->leaves[i];
      const char *data = fc->in[l->operand].data;
      if (l->kind == LEAF_FULL) {
        slot[i] = data + (size_t)b * l->esize;
      } else if (l->kind == LEAF_SCALAR) {
        slot[i] = data;
      } else {
        fill_bcast(l, &p->shape, data, b, len, bufs[i]);
        slot[i] = bufs[i];
      }
    }
    for (int k = 0; k < p->n_internal; k++) slot[p->n_leaves + k] = bufs[p->n_leaves + k];
    char *outp = (char *)fc->out[0].data + (size_t)b * p->out_esize;
    for (int s = 0; s < p->n_steps; s++) {
      const fused_step *st = &p->steps[s];
      hs_ew_call call;
      memset(&call, 0, sizeof call);
      for (int i = 0; i < st->n_in; i++) call.in[i] = slot[st->in[i]];
      call.out = st->out < 0 ? outp : (void *)slot[st->out];
      call.st = st->st;
      st->fn(&call, 0, len);
    }
  }
}

static hs_status *run_fused(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const fused_plan *p = op->kernel_state;
  fused_call fc = {p, in, out};
  int64_t n = hs_shape_numel(&p->shape);
  int64_t chunks = (n + CHUNK - 1) / CHUNK;
  int64_t grain = p->par_min / CHUNK;
  if (grain < 1) grain = 1;
  if (chunks > grain)
    hs_exec_parallel_for(ctx, chunks, grain, run_chunks, &fc);
  else
    run_chunks(&fc, 0, chunks);
  return NULL;
}

static const hs_kernel fused_kernel = {"hloserve.fused_elementwise", NULL, run_fused};

/* ---- grouping ----------------------------------------------------------- */

/* An op whose work is one hs_ew_state range loop over identical shapes. */
static const hs_ew_state *ew_state(const hs_op *op) {
  if (!op->kernel || op->n_results != 1 || op->n_regions) return NULL;
  const hs_ew_state *st = op->kernel_state;
  if (!st || !st->fn) return NULL;
  if (op->kernel->run == hs_ew_run) return st;
  if (strcmp(op->name, "stablehlo.select") == 0 && !st->scalar[0]) return st;
  return NULL;
}

static bool is_bcast(const hs_op *op) { return strcmp(op->name, "stablehlo.broadcast_in_dim") == 0; }

/* Uses per value id in this block; uses inside nested regions count too. */
static void count_uses(const hs_op *op, int *count) {
  for (int i = 0; i < op->n_operands; i++) count[op->operands[i]->id]++;
  for (int r = 0; r < op->n_regions; r++)
    for (int b = 0; b < op->regions[r]->n_blocks; b++)
      for (int k = 0; k < op->regions[r]->blocks[b]->n_ops; k++)
        count_uses(op->regions[r]->blocks[b]->ops[k], count);
}

typedef struct group {
  hs_op *ops[MAX_GROUP]; /* root first */
  int n;
} group;

static bool in_group(const group *g, const hs_op *op) {
  for (int i = 0; i < g->n; i++)
    if (g->ops[i] == op) return true;
  return false;
}

/* Uses of v by ops of the group. */
static int group_uses(const group *g, const hs_value *v) {
  int n = 0;
  for (int i = 0; i < g->n; i++)
    for (int k = 0; k < g->ops[i]->n_operands; k++) n += g->ops[i]->operands[k] == v;
  return n;
}

static hs_status *build_plan(hs_arena *a, const group *g, hs_op *fused, fused_plan **out) {
  fused_plan *p = hs_arena_calloc(a, 1, sizeof(*p));
  hs_value **operands = hs_arena_calloc(a, MAX_SLOTS, sizeof(hs_value *));
  if (!p || !operands) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory fusing");
  const hs_op *root = g->ops[0];
  p->shape = root->results[0]->type.shape;
  p->out_esize = hs_dtype_size(root->results[0]->type.dtype);
  p->par_min = HS_EW_PAR_CHEAP;
  /* Slots: leaves first (collected while walking the steps), then internal
   * values.  Steps run producers first: the group holds the root first and
   * producers after it, so run in reverse, skipping broadcasts. */
  const hs_value *slot_value[MAX_SLOTS];
  int n_slots = 0;
  /* Leaves. */
  for (int gi = g->n - 1; gi >= 0; gi--) {
    const hs_op *op = g->ops[gi];
    if (is_bcast(op)) continue;
    const hs_ew_state *st = ew_state(op);
    for (int i = 0; i < op->n_operands; i++) {
      const hs_value *v = op->operands[i];
      if (v->def && in_group(g, v->def) && !is_bcast(v->def)) continue; /* internal */
      const hs_value *leaf_v = v;
      leaf_kind kind = st->scalar[i] ? LEAF_SCALAR : LEAF_FULL;
      if (v->def && in_group(g, v->def)) { /* absorbed broadcast: read its input */
        leaf_v = v->def->operands[0];
        kind = LEAF_BCAST;
      }
      bool seen = false;
      for (int s = 0; s < n_slots; s++) seen |= slot_value[s] == v;
      if (seen) continue;
      if (n_slots == MAX_SLOTS) return NULL; /* too wide: *out stays NULL, not fused */
      fused_leaf *l = &p->leaves[n_slots];
      l->kind = kind;
      l->operand = n_slots;
      l->esize = hs_dtype_size(leaf_v->type.dtype);
      if (kind == LEAF_BCAST) {
        const int64_t *dims;
        int nd;
        HS_RETURN_IF_ERROR(hs_op_get_ints(v->def, "broadcast_dimensions", true, &dims, &nd));
        hs_shape src = leaf_v->type.shape;
        int64_t sstr[HS_MAX_RANK];
        hs_shape_strides(&src, sstr);
        for (int d = 0; d < p->shape.rank; d++) l->stride[d] = 0;
        for (int k = 0; k < nd && k < src.rank; k++)
          if (src.dims[k] == p->shape.dims[dims[k]] && src.dims[k] != 1) l->stride[dims[k]] = sstr[k];
      }
      operands[n_slots] = (hs_value *)leaf_v;
      slot_value[n_slots++] = v;
    }
  }
  p->n_leaves = n_slots;
  /* Internal values and steps. */
  for (int gi = g->n - 1; gi >= 0; gi--) {
    const hs_op *op = g->ops[gi];
    if (is_bcast(op)) continue;
    const hs_ew_state *st = ew_state(op);
    fused_step *s = &p->steps[p->n_steps++];
    s->fn = st->fn;
    s->st = st;
    s->n_in = op->n_operands;
    for (int i = 0; i < op->n_operands; i++) {
      int slot = -1;
      for (int k = 0; k < n_slots; k++)
        if (slot_value[k] == op->operands[i]) slot = k;
      if (slot < 0) return hs_status_new(HS_INTERNAL, "fusion: operand defined after its use");
      s->in[i] = slot;
    }
    if (op == root) {
      s->out = -1;
    } else {
      if (n_slots == MAX_SLOTS) return NULL; /* too wide: *out stays NULL, not fused */
      p->internal_esize[p->n_internal++] = hs_dtype_size(op->results[0]->type.dtype);
      s->out = n_slots;
      slot_value[n_slots++] = op->results[0];
    }
    if (st->par_min < p->par_min) p->par_min = st->par_min;
  }
  fused->n_operands = p->n_leaves;
  fused->operands = operands;
  p->members = hs_arena_memdup(a, g->ops, sizeof(hs_op *) * (size_t)g->n);
  if (!p->members) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory fusing");
  p->n_members = g->n;
  *out = p;
  return NULL;
}

int hs_fused_members(const hs_op *op, hs_op *const **members) {
  if (op->kernel != &fused_kernel || !op->kernel_state) return 0;
  const fused_plan *p = op->kernel_state;
  *members = p->members;
  return p->n_members;
}

hs_status *hs_fuse_block(hs_arena *a, hs_func *f, hs_block *b) {
  int *count = calloc((size_t)f->n_values + 1, sizeof(int));
  bool *grouped = calloc((size_t)b->n_ops + 1, sizeof(bool));
  hs_op **replace = calloc((size_t)b->n_ops + 1, sizeof(hs_op *)); /* root index -> fused op */
  hs_status *st = NULL;
  if (!count || !grouped || !replace) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory fusing @%s", f->name);
    goto done;
  }
  for (int i = 0; i < b->n_ops; i++) count_uses(b->ops[i], count);
  int any = 0;
  for (int ri = b->n_ops - 2; ri >= 0; ri--) {
    hs_op *root = b->ops[ri];
    if (grouped[ri] || !ew_state(root)) continue;
    const hs_shape *shape = &root->results[0]->type.shape;
    group g = {{root}, 1};
    bool grew = true;
    while (grew && g.n < MAX_GROUP) {
      grew = false;
      for (int gi = 0; gi < g.n && g.n < MAX_GROUP; gi++) {
        if (is_bcast(g.ops[gi])) continue;
        for (int k = 0; k < g.ops[gi]->n_operands && g.n < MAX_GROUP; k++) {
          hs_op *p = g.ops[gi]->operands[k]->def;
          if (!p || p->parent != root->parent || in_group(&g, p)) continue;
          const hs_value *v = p->results[0];
          if (p->n_results != 1 || !hs_shape_equal(&v->type.shape, shape)) continue;
          bool ok = ew_state(p) != NULL;
          if (!ok && is_bcast(p) && p->kernel) ok = true;
          if (!ok) continue;
          /* every use of p's result must be inside the group */
          if (count[v->id] != group_uses(&g, v)) continue;
          int pi = -1;
          for (int x = 0; x < ri; x++)
            if (b->ops[x] == p) pi = x;
          if (pi < 0 || grouped[pi]) continue;
          g.ops[g.n++] = p;
          grew = true;
        }
      }
    }
    if (g.n < 2) continue;
    hs_op *fused = hs_arena_calloc(a, 1, sizeof(hs_op));
    if (!fused) {
      st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory fusing @%s", f->name);
      goto done;
    }
    *fused = *root;
    fused->name = fused_kernel.name;
    fused->kernel = &fused_kernel;
    fused_plan *plan = NULL;
    st = build_plan(a, &g, fused, &plan);
    if (st) goto done;
    if (!plan) continue; /* more distinct operands than chunk buffers: leave the ops alone */
    fused->kernel_state = plan;
    for (int x = 0; x < b->n_ops; x++)
      if (in_group(&g, b->ops[x])) grouped[x] = true;
    /* The root's result is now defined by the fused op. */
    root->results[0]->def = fused;
    replace[ri] = fused;
    any = 1;
  }
  if (any) {
    int n = 0;
    for (int i = 0; i < b->n_ops; i++) {
      if (replace[i]) b->ops[n++] = replace[i];
      else if (!grouped[i]) b->ops[n++] = b->ops[i];
    }
    b->n_ops = n;
  }
done:
  free(count);
  free(grouped);
  free(replace);
  return st;
}
