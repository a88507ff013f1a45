/*
 * inline.c - inline func.call sites into their callers (internal).
 *
 * JAX and torchax put small helpers in private functions (`@relu`,
 * `@_where`, `@clip`...).  A call is a boundary for every later pass - the
 * element-wise fusion cannot see through it and each call costs a frame - so
 * before compiling we copy the callee's ops into the calling block, with
 * fresh value ids of the caller, and rewire the call's results to the
 * callee's returned values.  Regions are cloned too.  A call to the function
 * it sits in (recursion) is left alone, and so are calls nested in regions;
 * rounds repeat until no call site is left or a round limit is hit.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/inline.h"

#define MAX_ROUNDS 16

typedef struct cloner {
  hs_arena *a;
  hs_func *f;        /* the caller: new value ids come from it */
  hs_value **map;    /* callee value id -> caller value */
  int map_n;
} cloner;

static hs_status *oom(void) { return hs_status_new(HS_OUT_OF_MEMORY, "out of memory while inlining"); }

static hs_value *new_value(cloner *c, const hs_value *old, hs_op *def, int index) {
  hs_value *v = hs_arena_alloc(c->a, sizeof(*v));
  if (!v) return NULL;
  *v = *old;
  v->id = c->f->n_values++;
  v->def = def;
  v->index = index;
  c->map[old->id] = v;
  return v;
}

static hs_status *clone_region(cloner *c, const hs_region *src, hs_region **out);

static hs_status *clone_op(cloner *c, const hs_op *src, hs_region *parent, hs_op **out) {
  hs_op *op = hs_arena_alloc(c->a, sizeof(*op));
  if (!op) return oom();
  *op = *src;
  op->parent = parent;
  op->operands = hs_arena_calloc(c->a, (size_t)src->n_operands + 1, sizeof(hs_value *));
  op->results = hs_arena_calloc(c->a, (size_t)src->n_results + 1, sizeof(hs_value *));
  op->regions = hs_arena_calloc(c->a, (size_t)src->n_regions + 1, sizeof(hs_region *));
  if (!op->operands || !op->results || !op->regions) return oom();
  for (int i = 0; i < src->n_operands; i++) {
    hs_value *v = src->operands[i]->id < c->map_n ? c->map[src->operands[i]->id] : NULL;
    if (!v) return hs_op_error(src, HS_INTERNAL, "inlining: operand %d has no value", i);
    op->operands[i] = v;
  }
  /* Regions may use values defined before the op but not its results. */
  for (int i = 0; i < src->n_regions; i++) HS_RETURN_IF_ERROR(clone_region(c, src->regions[i], &op->regions[i]));
  for (int i = 0; i < src->n_results; i++)
    if (!(op->results[i] = new_value(c, src->results[i], op, i))) return oom();
  *out = op;
  return NULL;
}

static hs_status *clone_region(cloner *c, const hs_region *src, hs_region **out) {
  hs_region *r = hs_arena_calloc(c->a, 1, sizeof(*r));
  if (!r) return oom();
  r->n_blocks = src->n_blocks;
  r->blocks = hs_arena_calloc(c->a, (size_t)src->n_blocks + 1, sizeof(hs_block *));
  if (!r->blocks) return oom();
  for (int bi = 0; bi < src->n_blocks; bi++) {
    const hs_block *sb = src->blocks[bi];
    hs_block *b = hs_arena_calloc(c->a, 1, sizeof(*b));
    if (!b) return oom();
    b->n_args = sb->n_args;
    b->n_ops = sb->n_ops;
    b->args = hs_arena_calloc(c->a, (size_t)sb->n_args + 1, sizeof(hs_value *));
    b->ops = hs_arena_calloc(c->a, (size_t)sb->n_ops + 1, sizeof(hs_op *));
    if (!b->args || !b->ops) return oom();
    for (int i = 0; i < sb->n_args; i++)
      if (!(b->args[i] = new_value(c, sb->args[i], NULL, i))) return oom();
    for (int i = 0; i < sb->n_ops; i++) HS_RETURN_IF_ERROR(clone_op(c, sb->ops[i], r, &b->ops[i]));
    r->blocks[bi] = b;
  }
  *out = r;
  return NULL;
}

static void replace_uses(hs_region *r, const hs_value *from, hs_value *to) {
  for (int bi = 0; bi < r->n_blocks; bi++)
    for (int i = 0; i < r->blocks[bi]->n_ops; i++) {
      hs_op *op = r->blocks[bi]->ops[i];
      for (int k = 0; k < op->n_operands; k++)
        if (op->operands[k] == from) op->operands[k] = to;
      for (int k = 0; k < op->n_regions; k++) replace_uses(op->regions[k], from, to);
    }
}

static bool inlinable(const hs_op *op, const hs_func *caller, const hs_module *m, hs_func **callee) {
  if (strcmp(op->name, "func.call") != 0) return false;
  const hs_attr *a = hs_op_attr(op, "callee");
  if (!a || a->kind != HS_ATTR_SYMBOL) return false;
  hs_func *g = hs_module_find_func(m, a->u.str.s);
  if (!g || g == caller || g->body->n_blocks != 1) return false;
  const hs_block *gb = g->body->blocks[0];
  if (gb->n_args != op->n_operands || gb->n_ops == 0) return false;
  const hs_op *ret = gb->ops[gb->n_ops - 1];
  if (ret->n_operands != op->n_results) return false;
  for (int i = 0; i < op->n_operands; i++)
    if (gb->args[i]->type.dtype != op->operands[i]->type.dtype ||
        !hs_shape_equal(&gb->args[i]->type.shape, &op->operands[i]->type.shape))
      return false;
  *callee = g;
  return true;
}

/* Inlines the call at index i of block b; returns the number of ops that
 * replaced it through *n_new. */
static hs_status *inline_call(hs_arena *a, hs_func *f, hs_block *b, int i, hs_func *g, int *n_new) {
  hs_op *call = b->ops[i];
  const hs_block *gb = g->body->blocks[0];
  cloner c = {a, f, calloc((size_t)g->n_values + 1, sizeof(hs_value *)), g->n_values};
  hs_op **ops = hs_arena_calloc(a, (size_t)(b->n_ops + gb->n_ops) + 1, sizeof(hs_op *));
  hs_status *st = NULL;
  if (!c.map || !ops) {
    st = oom();
    goto done;
  }
  for (int k = 0; k < gb->n_args; k++) c.map[gb->args[k]->id] = call->operands[k];
  int n = 0;
  for (int k = 0; k < i; k++) ops[n++] = b->ops[k];
  for (int k = 0; k + 1 < gb->n_ops; k++) {
    st = clone_op(&c, gb->ops[k], call->parent, &ops[n]);
    if (st) goto done;
    n++;
  }
  *n_new = gb->n_ops - 1;
  const hs_op *ret = gb->ops[gb->n_ops - 1];
  for (int k = 0; k < call->n_results; k++) {
    hs_value *v = c.map[ret->operands[k]->id];
    if (!v) {
      st = hs_op_error(ret, HS_INTERNAL, "inlining: returned value %d has no value", k);
      goto done;
    }
    replace_uses(f->body, call->results[k], v);
  }
  for (int k = i + 1; k < b->n_ops; k++) ops[n++] = b->ops[k];
  b->ops = ops;
  b->n_ops = n;
done:
  free(c.map);
  return st;
}

hs_status *hs_inline_calls(hs_module *m) {
  for (int fi = 0; fi < m->n_funcs; fi++) {
    hs_func *f = m->funcs[fi];
    if (f->body->n_blocks != 1) continue;
    hs_block *b = f->body->blocks[0];
    for (int round = 0; round < MAX_ROUNDS; round++) {
      bool changed = false;
      for (int i = 0; i < b->n_ops; i++) {
        hs_func *g;
        if (!inlinable(b->ops[i], f, m, &g)) continue;
        int n_new = 0;
        HS_RETURN_IF_ERROR(inline_call(&m->arena, f, b, i, g, &n_new));
        i += n_new - 1;
        changed = true;
      }
      if (!changed) break;
    }
  }
  return NULL;
}
