/*
 * rd_vm.c - a tiny scalar interpreter for reduction bodies.
 *
 * Bodies that are not a single "a OP b" (argmax and argmin reduce a value and
 * an index together through ten compares and selects) would otherwise cost a
 * full hs_exec_region() call per element: microseconds, which makes a
 * million-element argmax take a second.  Such bodies are tiny straight-line
 * programs over scalars, so prepare() compiles them into an array of
 * register instructions, and the kernels run that per element in tens of
 * nanoseconds.
 *
 * Only ops whose results are exactly defined are accepted (compare, select,
 * logic, add/subtract/multiply/divide, max/min, negate, abs, constants,
 * converts that cannot go out of range); anything else (a call, a
 * transcendental, a non-scalar value) makes compilation fail and the kernel
 * keeps using the executor.  Floats live in doubles and are rounded to their
 * element type after every op (exact: double has more than twice the
 * precision of f32, f16 and bf16); integers live in int64, wrapped to their
 * width after every op; i1 is 0/1.
 */
#include <math.h>
#include <string.h>

#include "runtime/kernels/rd_common.h"

#define VM_MAX_REGS 96

typedef enum {
  VM_CONST,
  VM_CMP,
  VM_SELECT,
  VM_AND,
  VM_OR,
  VM_XOR,
  VM_NOT,
  VM_ADD,
  VM_SUB,
  VM_MUL,
  VM_DIV,
  VM_MAX,
  VM_MIN,
  VM_NEG,
  VM_ABS,
  VM_CONVERT,
} vm_opc;

typedef enum { CMP_EQ, CMP_NE, CMP_GE, CMP_GT, CMP_LE, CMP_LT } vm_dir;
typedef enum { CLS_FLOAT, CLS_TOTAL, CLS_SIGNED, CLS_UNSIGNED } vm_cls;

typedef union vm_val {
  double f;
  int64_t i;
} vm_val;

typedef struct vm_ins {
  uint8_t opc, dir, cls;
  uint8_t flt, sgn, afl; /* result float / signed int; operand float (convert) */
  uint8_t dst, a, b, c;
  hs_dtype dt;   /* result type */
  hs_dtype at;   /* operand type (compare, convert) */
  vm_val k;      /* VM_CONST */
} vm_ins;

struct hs_rd_vm {
  int n_args, n_outs, n_ins, n_regs;
  hs_dtype arg_dt[VM_MAX_REGS];
  uint8_t outs[VM_MAX_REGS];
  hs_dtype out_dt[VM_MAX_REGS];
  vm_ins *ins;
};

/* ------------------------------------------------------------ values */

static inline double round_to(hs_dtype dt, double v) {
  switch (dt) {
    case HS_F32: return (double)(float)v;
    case HS_F16: return hs_f16_to_f32(hs_f64_to_f16(v));
    case HS_BF16: return hs_bf16_to_f32(hs_f64_to_bf16(v));
    default: return v;
  }
}

static inline int64_t wrap_to(hs_dtype dt, uint64_t v) {
  switch (dt) {
    case HS_PRED: return v != 0;
    case HS_I8: return (int8_t)(uint8_t)v;
    case HS_I16: return (int16_t)(uint16_t)v;
    case HS_I32: return (int32_t)(uint32_t)v;
    case HS_U8: return (int64_t)(uint8_t)v;
    case HS_U16: return (int64_t)(uint16_t)v;
    case HS_U32: return (int64_t)(uint32_t)v;
    default: return (int64_t)v;
  }
}

static inline vm_val load(hs_dtype dt, const void *p) {
  vm_val v;
  switch (dt) {
    case HS_F32: v.f = *(const float *)p; break;
    case HS_F64: v.f = *(const double *)p; break;
    case HS_F16: v.f = hs_f16_to_f32(*(const uint16_t *)p); break;
    case HS_BF16: v.f = hs_bf16_to_f32(*(const uint16_t *)p); break;
    case HS_PRED: v.i = *(const uint8_t *)p != 0; break;
    case HS_I8: v.i = *(const int8_t *)p; break;
    case HS_I16: v.i = *(const int16_t *)p; break;
    case HS_I32: v.i = *(const int32_t *)p; break;
    case HS_U8: v.i = *(const uint8_t *)p; break;
    case HS_U16: v.i = *(const uint16_t *)p; break;
    case HS_U32: v.i = *(const uint32_t *)p; break;
    default: memcpy(&v.i, p, 8); break; /* i64, u64 */
  }
  return v;
}

static inline void store(hs_dtype dt, void *p, vm_val v) {
  switch (dt) {
    case HS_F32: *(float *)p = (float)v.f; break;
    case HS_F64: *(double *)p = v.f; break;
    case HS_F16: *(uint16_t *)p = hs_f64_to_f16(v.f); break;
    case HS_BF16: *(uint16_t *)p = hs_f64_to_bf16(v.f); break;
    case HS_PRED:
    case HS_I8:
    case HS_U8: *(uint8_t *)p = (uint8_t)v.i; break;
    case HS_I16:
    case HS_U16: *(uint16_t *)p = (uint16_t)v.i; break;
    case HS_I32:
    case HS_U32: *(uint32_t *)p = (uint32_t)v.i; break;
    default: memcpy(p, &v.i, 8); break;
  }
}

/* ------------------------------------------------------------ compile */

typedef struct vm_builder {
  hs_rd_vm *vm;
  const hs_value *reg_of[VM_MAX_REGS];
  int n;
} vm_builder;

static int reg_find(const vm_builder *b, const hs_value *v) {
  for (int i = 0; i < b->n; i++)
    if (b->reg_of[i] == v) return i;
  return -1;
}

static bool scalar_real(const hs_value *v) {
  return v->type.kind == HS_TYPE_TENSOR && v->type.shape.rank == 0 &&
         v->type.dtype > HS_DTYPE_INVALID && v->type.dtype < HS_C64;
}

static bool enum_is(const hs_attr *a, const char *s) {
  return a && a->kind == HS_ATTR_ENUM && a->u.str.s && strcmp(a->u.str.s, s) == 0;
}

static bool compile_op(vm_builder *b, const hs_op *op, vm_ins *in) {
  static const struct {
    const char *name;
    vm_opc opc;
    int arity;
  } table[] = {
      {"stablehlo.constant", VM_CONST, 0}, {"stablehlo.compare", VM_CMP, 2},
      {"stablehlo.select", VM_SELECT, 3},  {"stablehlo.and", VM_AND, 2},
      {"stablehlo.or", VM_OR, 2},          {"stablehlo.xor", VM_XOR, 2},
      {"stablehlo.not", VM_NOT, 1},        {"stablehlo.add", VM_ADD, 2},
      {"stablehlo.subtract", VM_SUB, 2},   {"stablehlo.multiply", VM_MUL, 2},
      {"stablehlo.divide", VM_DIV, 2},     {"stablehlo.maximum", VM_MAX, 2},
      {"stablehlo.minimum", VM_MIN, 2},    {"stablehlo.negate", VM_NEG, 1},
      {"stablehlo.abs", VM_ABS, 1},        {"stablehlo.convert", VM_CONVERT, 1},
  };
  int t = -1;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(op->name, table[i].name) == 0) t = (int)i;
  if (t < 0 || op->n_results != 1 || op->n_regions != 0 || op->n_operands != table[t].arity)
    return false;
  if (!scalar_real(op->results[0]) || b->n >= VM_MAX_REGS) return false;
  memset(in, 0, sizeof *in);
  in->opc = (uint8_t)table[t].opc;
  in->dt = op->results[0]->type.dtype;
  int r[3] = {0, 0, 0};
  for (int i = 0; i < op->n_operands; i++) {
    if (!scalar_real(op->operands[i])) return false;
    r[i] = reg_find(b, op->operands[i]);
    if (r[i] < 0) return false;
  }
  in->a = (uint8_t)r[0], in->b = (uint8_t)r[1], in->c = (uint8_t)r[2];
  hs_dtype at = op->n_operands ? op->operands[0]->type.dtype : in->dt;
  in->at = at;
  bool flt = hs_dtype_is_float(in->dt);
  in->flt = flt;
  in->sgn = hs_dtype_is_signed(in->dt);
  in->afl = hs_dtype_is_float(at);
  switch (in->opc) {
    case VM_CONST: {
      const hs_attr *v = hs_op_attr(op, "value");
      if (!v || v->kind != HS_ATTR_DENSE || v->u.dense.type.dtype != in->dt ||
          hs_shape_numel(&v->u.dense.type.shape) != 1 || !v->u.dense.data)
        return false;
      in->k = load(in->dt, v->u.dense.data);
      break;
    }
    case VM_CMP: {
      const hs_attr *d = hs_op_attr(op, "comparison_direction");
      static const char *dirs[] = {"EQ", "NE", "GE", "GT", "LE", "LT"};
      int dir = -1;
      for (int i = 0; i < 6; i++)
        if (enum_is(d, dirs[i])) dir = i;
      if (dir < 0 || in->dt != HS_PRED || op->operands[1]->type.dtype != at) return false;
      in->dir = (uint8_t)dir;
      const hs_attr *ct = hs_op_attr(op, "compare_type");
      if (!ct || enum_is(ct, "NOTYPE"))
        in->cls = hs_dtype_is_float(at) ? CLS_FLOAT : hs_dtype_is_signed(at) ? CLS_SIGNED : CLS_UNSIGNED;
      else if (enum_is(ct, "FLOAT") && hs_dtype_is_float(at))
        in->cls = CLS_FLOAT;
      else if (enum_is(ct, "TOTALORDER") && hs_dtype_is_float(at))
        in->cls = CLS_TOTAL;
      else if (enum_is(ct, "SIGNED") && !hs_dtype_is_float(at))
        in->cls = CLS_SIGNED;
      else if (enum_is(ct, "UNSIGNED") && !hs_dtype_is_float(at))
        in->cls = CLS_UNSIGNED;
      else
        return false;
      break;
    }
    case VM_SELECT:
      if (op->operands[0]->type.dtype != HS_PRED || op->operands[1]->type.dtype != in->dt ||
          op->operands[2]->type.dtype != in->dt)
        return false;
      break;
    case VM_AND:
    case VM_OR:
    case VM_XOR:
    case VM_NOT:
      if (flt) return false;
      /* fall through */
    case VM_ADD:
    case VM_SUB:
    case VM_MUL:
    case VM_MAX:
    case VM_MIN:
    case VM_NEG:
    case VM_ABS:
      for (int i = 0; i < op->n_operands; i++)
        if (op->operands[i]->type.dtype != in->dt) return false;
      if (in->dt == HS_PRED && (in->opc == VM_SUB || in->opc == VM_NEG || in->opc == VM_ABS))
        return false;
      break;
    case VM_DIV:
      if (!flt || at != in->dt || op->operands[1]->type.dtype != in->dt) return false;
      break;
    case VM_CONVERT:
      /* float <- anything real, int <- int/pred; never float -> int */
      if (hs_dtype_is_float(at) && !flt) return false;
      break;
  }
  return true;
}

hs_rd_vm *hs_rd_vm_compile(const hs_region *region, hs_arena *arena) {
  if (!region || region->n_blocks != 1) return NULL;
  const hs_block *blk = region->blocks[0];
  if (blk->n_ops < 1 || blk->n_args > VM_MAX_REGS) return NULL;
  hs_rd_vm *vm = hs_arena_calloc(arena, 1, sizeof *vm);
  vm_builder b;
  memset(&b, 0, sizeof b);
  if (!vm) return NULL;
  vm->ins = hs_arena_calloc(arena, (size_t)blk->n_ops, sizeof(vm_ins));
  if (!vm->ins) return NULL;
  b.vm = vm;
  vm->n_args = blk->n_args;
  for (int i = 0; i < blk->n_args; i++) {
    if (!scalar_real(blk->args[i])) return NULL;
    vm->arg_dt[i] = blk->args[i]->type.dtype;
    b.reg_of[b.n++] = blk->args[i];
  }
  for (int i = 0; i < blk->n_ops - 1; i++) {
    vm_ins *in = &vm->ins[vm->n_ins];
    if (!compile_op(&b, blk->ops[i], in)) return NULL;
    in->dst = (uint8_t)b.n;
    b.reg_of[b.n++] = blk->ops[i]->results[0];
    vm->n_ins++;
  }
  const hs_op *ret = blk->ops[blk->n_ops - 1];
  if (ret->n_operands > VM_MAX_REGS || ret->n_results != 0) return NULL;
  vm->n_outs = ret->n_operands;
  for (int i = 0; i < ret->n_operands; i++) {
    int r = reg_find(&b, ret->operands[i]);
    if (r < 0) return NULL;
    vm->outs[i] = (uint8_t)r;
    vm->out_dt[i] = ret->operands[i]->type.dtype;
  }
  vm->n_regs = b.n;
  return vm;
}

int hs_rd_vm_num_outputs(const hs_rd_vm *vm) { return vm->n_outs; }

/* ------------------------------------------------------------ run */

static inline int64_t total_key(double f) {
  int64_t s;
  memcpy(&s, &f, 8);
  return s ^ (int64_t)((uint64_t)(s >> 63) >> 1);
}

static inline bool compare(const vm_ins *in, vm_val x, vm_val y) {
  int c; /* -1, 0, 1, or 2 for unordered */
  switch (in->cls) {
    case CLS_FLOAT:
      c = x.f < y.f ? -1 : x.f > y.f ? 1 : x.f == y.f ? 0 : 2;
      break;
    case CLS_TOTAL: {
      int64_t a = total_key(x.f), b = total_key(y.f);
      c = a < b ? -1 : a > b;
      break;
    }
    case CLS_SIGNED: c = x.i < y.i ? -1 : x.i > y.i; break;
    default: c = (uint64_t)x.i < (uint64_t)y.i ? -1 : (uint64_t)x.i > (uint64_t)y.i; break;
  }
  switch (in->dir) {
    case CMP_EQ: return c == 0;
    case CMP_NE: return c != 0;
    case CMP_GE: return c == 0 || c == 1;
    case CMP_GT: return c == 1;
    case CMP_LE: return c == 0 || c == -1;
    default: return c == -1;
  }
}

void hs_rd_vm_run(const hs_rd_vm *vm, const void *const *args, void *const *outs) {
  vm_val r[VM_MAX_REGS];
  for (int i = 0; i < vm->n_args; i++) r[i] = load(vm->arg_dt[i], args[i]);
  for (int k = 0; k < vm->n_ins; k++) {
    const vm_ins *in = &vm->ins[k];
    vm_val a = r[in->a], b = r[in->b], v;
    const bool flt = in->flt;
    switch ((vm_opc)in->opc) {
      case VM_CONST: v = in->k; break;
      case VM_CMP: v.i = compare(in, a, b); break;
      case VM_SELECT: v = a.i ? b : r[in->c]; break;
      case VM_AND: v.i = a.i & b.i; break;
      case VM_OR: v.i = a.i | b.i; break;
      case VM_XOR: v.i = a.i ^ b.i; break;
      case VM_NOT: v.i = in->dt == HS_PRED ? !a.i : wrap_to(in->dt, ~(uint64_t)a.i); break;
      case VM_ADD:
        if (flt) v.f = round_to(in->dt, a.f + b.f);
        else if (in->dt == HS_PRED) v.i = a.i | b.i;
        else v.i = wrap_to(in->dt, (uint64_t)a.i + (uint64_t)b.i);
        break;
      case VM_SUB:
        if (flt) v.f = round_to(in->dt, a.f - b.f);
        else v.i = wrap_to(in->dt, (uint64_t)a.i - (uint64_t)b.i);
        break;
      case VM_MUL:
        if (flt) v.f = round_to(in->dt, a.f * b.f);
        else if (in->dt == HS_PRED) v.i = a.i & b.i;
        else v.i = wrap_to(in->dt, (uint64_t)a.i * (uint64_t)b.i);
        break;
      case VM_DIV: v.f = round_to(in->dt, a.f / b.f); break;
      case VM_MAX:
        if (flt) v = (a.f != a.f || a.f >= b.f) ? a : b;
        else if (in->sgn) v = a.i >= b.i ? a : b;
        else v = (uint64_t)a.i >= (uint64_t)b.i ? a : b;
        break;
      case VM_MIN:
        if (flt) v = (a.f != a.f || a.f <= b.f) ? a : b;
        else if (in->sgn) v = a.i <= b.i ? a : b;
        else v = (uint64_t)a.i <= (uint64_t)b.i ? a : b;
        break;
      case VM_NEG:
        if (flt) v.f = -a.f;
        else v.i = wrap_to(in->dt, (uint64_t)0 - (uint64_t)a.i);
        break;
      case VM_ABS:
        if (flt) v.f = fabs(a.f);
        else if (in->sgn && a.i < 0) v.i = wrap_to(in->dt, (uint64_t)0 - (uint64_t)a.i);
        else v = a;
        break;
      case VM_CONVERT:
        if (flt) {
          double d = in->afl                        ? a.f
                     : in->at == HS_U64             ? (double)(uint64_t)a.i
                                                    : (double)a.i;
          v.f = round_to(in->dt, d);
        } else {
          v.i = wrap_to(in->dt, (uint64_t)a.i);
        }
        break;
      default: v.i = 0; break;
    }
    r[in->dst] = v;
  }
  for (int i = 0; i < vm->n_outs; i++) store(vm->out_dt[i], outs[i], r[vm->outs[i]]);
}
