/*
 * cuda_ew.c - element-wise ops on the GPU through the VM of cuda_bodies.h.
 *
 * One op alone and a fusion group of exec's fuse pass (hloserve.fused_
 * elementwise, whose member ops keep their IR) compile the same way: the
 * group's values become registers in dependency order, every value read from
 * outside the group becomes a leaf (an operand read through strides over the
 * output index: full, rank-0 scalar, or the operand of a broadcast_in_dim
 * member with zero strides on the broadcast dims), and each member op
 * becomes a step.  So a BatchNorm-plus-ReLU tail is one kernel that reads
 * the activation once and its per-channel vectors through zero strides.
 *
 * Declined (host fallback): f16/bf16/complex element types, chlo special
 * functions, bitcast_convert, reduce_precision, and groups needing more
 * leaves or steps than the parameter block holds.
 */
#include <string.h>

#include "runtime/cuda/cuda_internal.h"
#include "runtime/cuda/cuda_launch.h"
#include "runtime/fuse.h"

typedef struct ew_name {
  const char *name;
  uint8_t op;
  uint8_t arity;
  uint8_t domain; /* 0 any, 1 float only, 2 integer/pred only */
} ew_name;

static const ew_name ew_names[] = {
    {"stablehlo.add", HS_VM_ADD, 2, 0},
    {"stablehlo.subtract", HS_VM_SUB, 2, 0},
    {"stablehlo.multiply", HS_VM_MUL, 2, 0},
    {"stablehlo.divide", HS_VM_DIV, 2, 0},
    {"stablehlo.remainder", HS_VM_REM, 2, 0},
    {"stablehlo.power", HS_VM_POW, 2, 0},
    {"stablehlo.maximum", HS_VM_MAX, 2, 0},
    {"stablehlo.minimum", HS_VM_MIN, 2, 0},
    {"stablehlo.and", HS_VM_AND, 2, 2},
    {"stablehlo.or", HS_VM_OR, 2, 2},
    {"stablehlo.xor", HS_VM_XOR, 2, 2},
    {"stablehlo.shift_left", HS_VM_SHL, 2, 2},
    {"stablehlo.shift_right_logical", HS_VM_SHRL, 2, 2},
    {"stablehlo.shift_right_arithmetic", HS_VM_SHRA, 2, 2},
    {"stablehlo.atan2", HS_VM_ATAN2, 2, 1},
    {"stablehlo.negate", HS_VM_NEG, 1, 0},
    {"stablehlo.not", HS_VM_NOT, 1, 2},
    {"stablehlo.abs", HS_VM_ABS, 1, 0},
    {"stablehlo.sign", HS_VM_SIGN, 1, 0},
    {"chlo.square", HS_VM_SQUARE, 1, 0},
    {"stablehlo.popcnt", HS_VM_POPCNT, 1, 2},
    {"stablehlo.count_leading_zeros", HS_VM_CLZ, 1, 2},
    {"stablehlo.ceil", HS_VM_CEIL, 1, 1},
    {"stablehlo.floor", HS_VM_FLOOR, 1, 1},
    {"stablehlo.round_nearest_afz", HS_VM_RAFZ, 1, 1},
    {"stablehlo.round_nearest_even", HS_VM_REVEN, 1, 1},
    {"stablehlo.is_finite", HS_VM_ISFIN, 1, 1},
    {"stablehlo.exponential", HS_VM_EXP, 1, 1},
    {"stablehlo.exponential_minus_one", HS_VM_EXPM1, 1, 1},
    {"stablehlo.log", HS_VM_LOG, 1, 1},
    {"stablehlo.log_plus_one", HS_VM_LOG1P, 1, 1},
    {"stablehlo.sqrt", HS_VM_SQRT, 1, 1},
    {"stablehlo.rsqrt", HS_VM_RSQRT, 1, 1},
    {"stablehlo.cbrt", HS_VM_CBRT, 1, 1},
    {"stablehlo.tanh", HS_VM_TANH, 1, 1},
    {"stablehlo.logistic", HS_VM_LOGISTIC, 1, 1},
    {"stablehlo.sine", HS_VM_SIN, 1, 1},
    {"stablehlo.cosine", HS_VM_COS, 1, 1},
    {"stablehlo.tan", HS_VM_TAN, 1, 1},
    {"chlo.tan", HS_VM_TAN, 1, 1},
    {"stablehlo.convert", HS_VM_CONVERT, 1, 0},
    {"stablehlo.compare", HS_VM_COMPARE, 2, 0},
    {"stablehlo.select", HS_VM_SELECT, 3, 0},
    {"stablehlo.clamp", HS_VM_CLAMP, 3, 0},
    {"stablehlo.broadcast_in_dim", HS_VM_COPY, 1, 0},
    {NULL, 0, 0, 0},
};

static const ew_name *ew_lookup(const char *name) {
  for (const ew_name *e = ew_names; e->name; e++)
    if (strcmp(e->name, name) == 0) return e;
  return NULL;
}

typedef struct vm_build {
  hs_kp_vm *p;
  const hs_op *fused;          /* the op being built (fused or single) */
  hs_op *const *members;
  int n_members;
  const hs_value *leaf_val[HS_VM_MAX_LEAVES]; /* per leaf: the outside value */
  int leaf_operand[HS_VM_MAX_LEAVES];         /* its operand index in `fused` */
  const hs_value *reg_val[HS_VM_MAX_REGS];    /* per step register: the value it holds */
  bool ok;
} vm_build;

typedef struct ew_state {
  hs_kp_vm prog;             /* pointers filled per run */
  int leaf_operand[HS_VM_MAX_LEAVES];
} ew_state;

static int member_of(const vm_build *vb, const hs_value *v) {
  for (int i = 0; i < vb->n_members; i++)
    if (v->def == vb->members[i]) return i;
  return -1;
}

static int operand_index(const hs_op *op, const hs_value *v) {
  for (int i = 0; i < op->n_operands; i++)
    if (op->operands[i] == v) return i;
  return -1;
}

/* The leaf register for outside value v read through strides. */
static int leaf(vm_build *vb, const hs_value *v, const int64_t *strides) {
  hs_kp_vm *p = vb->p;
  for (int l = 0; l < p->n_leaves; l++)
    if (vb->leaf_val[l] == v && memcmp(p->leaves[l].strides, strides, sizeof(int64_t) * (size_t)p->rank) == 0)
      return l;
  int opi = operand_index(vb->fused, v);
  uint8_t kind, bits;
  if (opi < 0 || p->n_leaves >= HS_VM_MAX_LEAVES || !hs_cuda_vm_kind(v->type.dtype, &kind, &bits)) {
    vb->ok = false;
    return 0;
  }
  int l = p->n_leaves++;
  vb->leaf_val[l] = v;
  vb->leaf_operand[l] = opi;
  p->leaves[l].kind = kind;
  p->leaves[l].bits = bits;
  memcpy(p->leaves[l].strides, strides, sizeof(int64_t) * (size_t)p->rank);
  return l;
}

/* Row-major strides of an operand of the output's shape, or zeros for a
 * one-element operand read by every output element. */
static void full_strides(const hs_kp_vm *p, const hs_value *v, int64_t *s) {
  if (hs_shape_numel(&v->type.shape) == 1 && p->n != 1) {
    for (int d = 0; d < p->rank; d++) s[d] = 0;
    return;
  }
  int64_t m = 1;
  for (int d = p->rank - 1; d >= 0; d--) {
    s[d] = p->dims[d] == 1 ? 0 : m;
    m *= p->dims[d];
  }
}

static int emit(vm_build *vb, const hs_value *v, int depth);

/* The broadcast_in_dim member m read as a leaf: its operand must come from
 * outside the group. */
static int emit_broadcast_leaf(vm_build *vb, const hs_op *m) {
  const hs_value *x = m->operands[0];
  const hs_kp_vm *p = vb->p;
  const int64_t *bd;
  int nbd;
  hs_status *st = hs_op_get_ints(m, "broadcast_dimensions", false, &bd, &nbd);
  bool failed = st != NULL;
  hs_status_free(st);
  if (member_of(vb, x) >= 0 || failed ||
      nbd != x->type.shape.rank || !hs_shape_equal(&m->results[0]->type.shape, &vb->fused->results[0]->type.shape)) {
    vb->ok = false;
    return 0;
  }
  int64_t xs[HS_MAX_RANK], s[HS_MAX_RANK];
  hs_shape_strides(&x->type.shape, xs);
  for (int d = 0; d < p->rank; d++) s[d] = 0;
  for (int k = 0; k < nbd; k++) {
    if (bd[k] < 0 || bd[k] >= p->rank) {
      vb->ok = false;
      return 0;
    }
    s[bd[k]] = x->type.shape.dims[k] == 1 ? 0 : xs[k];
  }
  return leaf(vb, x, s);
}

static int add_step(vm_build *vb, const hs_op *m, const ew_name *e, const int *regs) {
  hs_kp_vm *p = vb->p;
  if (p->n_steps >= HS_VM_MAX_STEPS || p->n_leaves + p->n_steps >= HS_VM_MAX_REGS) {
    vb->ok = false;
    return 0;
  }
  hs_vm_step *s = &p->steps[p->n_steps];
  memset(s, 0, sizeof *s);
  s->op = e->op;
  if (!hs_cuda_vm_kind(m->results[0]->type.dtype, &s->kind, &s->bits)) vb->ok = false;
  hs_dtype in_t = m->operands[e->op == HS_VM_SELECT ? 1 : 0]->type.dtype;
  if (e->op == HS_VM_SELECT || e->op == HS_VM_CLAMP) in_t = m->results[0]->type.dtype;
  if (e->op != HS_VM_SELECT && !hs_cuda_vm_kind(m->operands[0]->type.dtype, &s->in_kind, &s->in_bits))
    vb->ok = false;
  bool is_float = in_t == HS_F32 || in_t == HS_F64;
  if ((e->domain == 1 && !is_float) || (e->domain == 2 && is_float)) vb->ok = false;
  if (e->op == HS_VM_COMPARE) {
    static const char *const dirs[6] = {"EQ", "NE", "GE", "GT", "LE", "LT"};
    const char *dir = NULL, *ctype = NULL;
    hs_status *st = hs_op_get_enum(m, "comparison_direction", true, NULL, &dir);
    if (!st) st = hs_op_get_enum(m, "compare_type", false, "NOTYPE", &ctype);
    if (st) {
      hs_status_free(st);
      vb->ok = false;
      return 0;
    }
    int d = -1;
    for (int k = 0; k < 6; k++)
      if (strcmp(dir, dirs[k]) == 0) d = k;
    if (d < 0) vb->ok = false;
    s->aux = (uint8_t)((d < 0 ? 0 : d) + (strcmp(ctype, "TOTALORDER") == 0 ? 8 : 0));
  }
  s->a = (uint8_t)regs[0];
  s->b = (uint8_t)(e->arity > 1 ? regs[1] : regs[0]);
  s->c = (uint8_t)(e->arity > 2 ? regs[2] : regs[0]);
  s->dst = (uint8_t)(p->n_leaves + p->n_steps);
  vb->reg_val[p->n_steps] = m->results[0];
  p->n_steps++;
  return s->dst;
}

static int emit_member(vm_build *vb, const hs_op *m, int depth) {
  const ew_name *e = ew_lookup(m->name);
  if (!e || m->n_operands != e->arity || m->n_results != 1) {
    vb->ok = false;
    return 0;
  }
  if (strcmp(m->name, "stablehlo.broadcast_in_dim") == 0) return emit_broadcast_leaf(vb, m);
  int regs[3] = {0, 0, 0};
  for (int k = 0; k < m->n_operands; k++) regs[k] = emit(vb, m->operands[k], depth + 1);
  return add_step(vb, m, e, regs);
}

/* Register holding value v, emitting what it needs first. */
static int emit(vm_build *vb, const hs_value *v, int depth) {
  hs_kp_vm *p = vb->p;
  if (!vb->ok || depth > HS_VM_MAX_STEPS) {
    vb->ok = false;
    return 0;
  }
  for (int s = 0; s < p->n_steps; s++)
    if (vb->reg_val[s] == v) return p->n_leaves + s;
  int mi = member_of(vb, v);
  if (mi < 0) {
    int64_t s[HS_MAX_RANK];
    full_strides(p, v, s);
    return leaf(vb, v, s);
  }
  return emit_member(vb, vb->members[mi], depth);
}

static hs_status *run_ew(const hs_cuda_op *d, hs_cuda_exec *x, void *const *in, void *const *out) {
  const ew_state *s = d->state;
  hs_kp_vm p = s->prog;
  for (int l = 0; l < p.n_leaves; l++) p.leaves[l].ptr = in[s->leaf_operand[l]];
  p.out = out[0];
  return hs_cuda_error(hs_cuda_k_vm(x->stream, &p), "element-wise kernel");
}

/* Leaves take registers 0..n_leaves-1 and steps the ones after, so the walk
 * runs twice: the first finds every leaf, the second numbers the steps. */
hs_status *hs_cuda_build_ew(hs_cuda_build *b, const hs_op *op, hs_cuda_op *d) {
  hs_op *const *members = NULL;
  hs_op *self[1];
  int n = hs_fused_members(op, &members);
  if (n == 0) {
    if (!ew_lookup(op->name)) return NULL;
    self[0] = (hs_op *)op;
    members = self;
    n = 1;
  }
  if (op->n_results != 1) return NULL;
  const hs_type *rt = &op->results[0]->type;
  uint8_t ok_kind, ok_bits;
  if (!hs_cuda_vm_kind(rt->dtype, &ok_kind, &ok_bits)) return NULL;
  ew_state *s = hs_arena_calloc(b->arena, 1, sizeof(ew_state));
  if (!s) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  hs_kp_vm *p = &s->prog;
  vm_build vb;
  memset(&vb, 0, sizeof vb);
  vb.p = p;
  vb.fused = op;
  vb.members = members;
  vb.n_members = n;
  vb.ok = true;
  p->rank = rt->shape.rank;
  p->n = hs_shape_numel(&rt->shape);
  for (int k = 0; k < p->rank; k++) p->dims[k] = rt->shape.dims[k];
  /* Pass 1: find the leaves.  Pass 2: the same walk with the leaves known,
   * so step registers are numbered after every leaf. */
  emit_member(&vb, members[0], 0);
  int n_leaves = p->n_leaves;
  p->n_steps = 0;
  memset(vb.reg_val, 0, sizeof vb.reg_val);
  int out_reg = vb.ok ? emit_member(&vb, members[0], 0) : 0;
  if (!vb.ok || p->n_leaves != n_leaves) return NULL;
  /* Step registers were numbered against n_leaves in pass 2 already. */
  p->out_reg = (uint8_t)out_reg;
  p->out_kind = ok_kind;
  p->out_bits = ok_bits;
  memcpy(s->leaf_operand, vb.leaf_operand, sizeof s->leaf_operand);
  d->state = s;
  d->run = run_ew;
  return NULL;
}
