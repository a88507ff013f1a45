/*
 * cuda_bodies.h - the per-element bodies of the CUDA backend's own kernels.
 *
 * Every kernel of cuda_kernels.cu is "one thread per output element": a
 * grid-stride loop that calls one body below with the element's flat index.
 * The bodies are plain C (the common subset of C11 and CUDA C++), marked
 * HS_HD, so the same source is compiled twice: by nvcc as __device__
 * functions, and by the host C compiler for tests/unit/test_cuda_bodies.c,
 * which runs each body over every index on the CPU and compares the result
 * with the CPU kernels.  So the index arithmetic and the element semantics
 * of the GPU path are tested on machines without a GPU; what only a GPU can
 * test is the launch itself (cuda_kernels.cu is a thin layer).
 *
 * Parameter blocks are passed to kernels by value (no device-side
 * allocation, and CUDA graphs capture them as they are); they hold device
 * pointers and fixed-size arrays of rank HS_MAX_RANK.
 *
 * The element-wise VM: a fused chain of element-wise ops (exec's fusion
 * groups, or one op alone) is compiled by cuda_ew.c into a short program of
 * steps over registers.  Each thread loads its leaves (full, broadcast or
 * scalar operands, through per-leaf strides over the output index), runs the
 * steps and stores the last register.  Registers hold every value in a
 * canonical 64-bit form (f32 as float, f64 as double, integers sign- or
 * zero-extended from their width, i1 as 0/1), and every step rounds or wraps
 * to its result type, so a fused chain computes exactly what the op-by-op
 * CPU kernels compute (transcendental functions aside: CUDA's libm differs
 * from the host's by an ulp or two, within the conformance tolerances).
 */
#ifndef HLOSERVE_RUNTIME_CUDA_BODIES_H
#define HLOSERVE_RUNTIME_CUDA_BODIES_H

#include <stdint.h>

#include "hloserve/tensor.h"

#ifdef __CUDACC__
#define HS_HD __host__ __device__ static inline
#else
#include <math.h>
#include <string.h>
#define HS_HD static inline
#endif

/* ------------------------------------------------------------ index help */

/* Splits flat row-major index i over dims[0..rank) into idx. */
HS_HD void hs_kb_unflatten(int64_t i, int rank, const int64_t *dims, int64_t *idx) {
  for (int d = rank - 1; d >= 0; d--) {
    int64_t n = dims[d];
    idx[d] = n ? i % n : 0;
    i = n ? i / n : 0;
  }
}

/* Copies one element of esize bytes (1, 2, 4 or 8: aligned). */
HS_HD void hs_kb_copy_elem(void *dst, const void *src, int esize) {
  switch (esize) {
    case 1: *(uint8_t *)dst = *(const uint8_t *)src; break;
    case 2: *(uint16_t *)dst = *(const uint16_t *)src; break;
    case 4: *(uint32_t *)dst = *(const uint32_t *)src; break;
    default: *(uint64_t *)dst = *(const uint64_t *)src; break;
  }
}

/* ------------------------------------------------------------ strided copy
 * dst[dst_off + sum idx_d * dst_strides[d]] = src[src_off + sum idx_d *
 * src_strides[d]] for every index of dims (row-major flat i).  Covers
 * transpose, slice (strides and offsets), reverse (negative strides),
 * broadcast (zero strides) and concatenate (one copy per input into the
 * output's sub-box).  Strides and offsets are in elements. */
typedef struct hs_kp_strided {
  void *dst;
  const void *src;
  int esize, rank;
  int64_t n;
  int64_t src_off, dst_off;
  int64_t dims[HS_MAX_RANK];
  int64_t src_strides[HS_MAX_RANK], dst_strides[HS_MAX_RANK];
} hs_kp_strided;

HS_HD void hs_kb_strided(const hs_kp_strided *p, int64_t i) {
  int64_t s = p->src_off, d = p->dst_off, r = i;
  for (int k = p->rank - 1; k >= 0; k--) {
    int64_t n = p->dims[k], x = n ? r % n : 0;
    r = n ? r / n : 0;
    s += x * p->src_strides[k];
    d += x * p->dst_strides[k];
  }
  hs_kb_copy_elem((char *)p->dst + d * p->esize, (const char *)p->src + s * p->esize, p->esize);
}

/* ------------------------------------------------------------------- pad
 * out index o maps to input index (o - lo) / (interior + 1) when that divides
 * and lands inside; else the padding value. */
typedef struct hs_kp_pad {
  void *dst;
  const void *src;
  int esize, rank;
  int64_t n;
  uint64_t pad_bits; /* the padding value's bytes (low esize bytes) */
  int64_t out_dims[HS_MAX_RANK], in_dims[HS_MAX_RANK];
  int64_t lo[HS_MAX_RANK], interior[HS_MAX_RANK];
} hs_kp_pad;

HS_HD void hs_kb_pad(const hs_kp_pad *p, int64_t i) {
  int64_t r = i, src = 0, mul = 1;
  int inside = 1;
  for (int k = p->rank - 1; k >= 0; k--) {
    int64_t n = p->out_dims[k], o = n ? r % n : 0;
    r = n ? r / n : 0;
    int64_t q = o - p->lo[k], step = p->interior[k] + 1;
    if (q < 0 || q % step != 0 || q / step >= p->in_dims[k]) inside = 0;
    else src += (q / step) * mul;
    mul *= p->in_dims[k];
  }
  char *d = (char *)p->dst + i * p->esize;
  if (inside) hs_kb_copy_elem(d, (const char *)p->src + src * p->esize, p->esize);
  else hs_kb_copy_elem(d, &p->pad_bits, p->esize);
}

/* ----------------------------------------------------- the element-wise VM */

typedef union hs_vreg {
  float f;
  double d;
  int64_t i;
  uint64_t u;
} hs_vreg;

/* The VM's value kinds: how a register holds a dtype. */
enum { HS_VK_F32 = 0, HS_VK_F64, HS_VK_SINT, HS_VK_UINT }; /* PRED is UINT with 1 bit */

typedef enum hs_vm_opcode {
  HS_VM_COPY = 0,
  /* binary */
  HS_VM_ADD, HS_VM_SUB, HS_VM_MUL, HS_VM_DIV, HS_VM_REM, HS_VM_POW, HS_VM_MAX, HS_VM_MIN,
  HS_VM_AND, HS_VM_OR, HS_VM_XOR, HS_VM_SHL, HS_VM_SHRL, HS_VM_SHRA, HS_VM_ATAN2,
  /* unary */
  HS_VM_NEG, HS_VM_NOT, HS_VM_ABS, HS_VM_SIGN, HS_VM_SQUARE, HS_VM_POPCNT, HS_VM_CLZ,
  HS_VM_CEIL, HS_VM_FLOOR, HS_VM_RAFZ, HS_VM_REVEN, HS_VM_ISFIN,
  HS_VM_EXP, HS_VM_EXPM1, HS_VM_LOG, HS_VM_LOG1P, HS_VM_SQRT, HS_VM_RSQRT, HS_VM_CBRT,
  HS_VM_TANH, HS_VM_LOGISTIC, HS_VM_SIN, HS_VM_COS, HS_VM_TAN,
  /* others */
  HS_VM_CONVERT,  /* a: any kind -> the step's kind */
  HS_VM_COMPARE,  /* aux: direction (0 EQ 1 NE 2 GE 3 GT 4 LE 5 LT) + 8 * totalorder */
  HS_VM_SELECT,   /* a ? b : c */
  HS_VM_CLAMP,    /* min(max(b, a), c): operands (min, x, max) */
  HS_VM_N_OPS
} hs_vm_opcode;

enum { HS_VM_MAX_LEAVES = 16, HS_VM_MAX_STEPS = 48, HS_VM_MAX_REGS = 64 };

typedef struct hs_vm_leaf {
  const void *ptr;
  uint8_t kind, bits; /* value kind and width of the stored element */
  int64_t strides[HS_MAX_RANK]; /* per output dim, in elements (0: broadcast) */
} hs_vm_leaf;

typedef struct hs_vm_step {
  uint8_t op, kind, bits; /* result kind and width */
  uint8_t in_kind, in_bits; /* operand a's (convert, compare) */
  uint8_t aux;
  uint8_t a, b, c, dst;   /* registers; leaves occupy registers 0..n_leaves-1 */
} hs_vm_step;

typedef struct hs_kp_vm {
  void *out;
  uint8_t out_kind, out_bits, out_reg;
  int rank, n_leaves, n_steps;
  int64_t n;
  int64_t dims[HS_MAX_RANK];
  hs_vm_leaf leaves[HS_VM_MAX_LEAVES];
  hs_vm_step steps[HS_VM_MAX_STEPS];
} hs_kp_vm;

HS_HD uint64_t hs_kb_mask(int bits) { return bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1); }

/* Wraps v to `bits` and extends it back to 64 bits by kind. */
HS_HD hs_vreg hs_kb_wrap(int kind, int bits, uint64_t v) {
  hs_vreg r;
  if (bits < 64) {
    v &= hs_kb_mask(bits);
    if (kind == HS_VK_SINT && (v >> (bits - 1)) & 1) v |= ~hs_kb_mask(bits);
  }
  r.u = v;
  return r;
}

HS_HD hs_vreg hs_kb_load(int kind, int bits, const void *p, int64_t i) {
  hs_vreg r;
  switch (kind) {
    case HS_VK_F32: r.f = ((const float *)p)[i]; return r;
    case HS_VK_F64: r.d = ((const double *)p)[i]; return r;
    default: break;
  }
  uint64_t v;
  switch (bits) {
    case 1:
    case 8: v = ((const uint8_t *)p)[i]; break;
    case 16: v = ((const uint16_t *)p)[i]; break;
    case 32: v = ((const uint32_t *)p)[i]; break;
    default: v = ((const uint64_t *)p)[i]; break;
  }
  return hs_kb_wrap(kind, bits == 1 ? 8 : bits, v);
}

HS_HD void hs_kb_store(int kind, int bits, void *p, int64_t i, hs_vreg r) {
  switch (kind) {
    case HS_VK_F32: ((float *)p)[i] = r.f; return;
    case HS_VK_F64: ((double *)p)[i] = r.d; return;
    default: break;
  }
  switch (bits) {
    case 1:
    case 8: ((uint8_t *)p)[i] = (uint8_t)r.u; break;
    case 16: ((uint16_t *)p)[i] = (uint16_t)r.u; break;
    case 32: ((uint32_t *)p)[i] = (uint32_t)r.u; break;
    default: ((uint64_t *)p)[i] = r.u; break;
  }
}

HS_HD int hs_kb_isnan_d(double x) { return x != x; }

/* IEEE 754-2019 maximum / minimum (NaN wins, -0 < +0), as the CPU kernels. */
HS_HD double hs_kb_fmax(double a, double b) {
  return a > b ? a : b > a ? b : a != a ? a : b != b ? b : signbit(a) ? b : a;
}
HS_HD double hs_kb_fmin(double a, double b) {
  return a < b ? a : b < a ? b : a != a ? a : b != b ? b : signbit(a) ? a : b;
}

/* Saturating float -> int with NaN -> 0 (as ew_convert.c). */
HS_HD uint64_t hs_kb_f2i(double v, int kind, int bits) {
  if (v != v) return 0;
  if (bits == 1) return v != 0;
  if (kind == HS_VK_SINT) {
    double lim = ldexp(1.0, bits - 1);
    if (v <= -lim) return (uint64_t)(bits >= 64 ? INT64_MIN : -((int64_t)1 << (bits - 1)));
    if (v >= lim) return bits >= 64 ? (uint64_t)INT64_MAX : (((uint64_t)1 << (bits - 1)) - 1);
    return (uint64_t)(int64_t)v;
  }
  double lim = ldexp(1.0, bits);
  if (v <= 0) return 0;
  if (v >= lim) return hs_kb_mask(bits);
  return (uint64_t)v;
}

/* Converts register a of (in_kind, in_bits) to (kind, bits). */
HS_HD hs_vreg hs_kb_convert(hs_vreg a, int in_kind, int in_bits, int kind, int bits) {
  hs_vreg r;
  if (bits == 1 && kind == HS_VK_UINT) { /* anything -> i1 is x != 0 */
    int nz = in_kind == HS_VK_F32 ? a.f != 0 : in_kind == HS_VK_F64 ? a.d != 0 : a.u != 0;
    r.u = (uint64_t)nz;
    return r;
  }
  if (in_kind == HS_VK_F32 || in_kind == HS_VK_F64) {
    double v = in_kind == HS_VK_F32 ? (double)a.f : a.d;
    if (kind == HS_VK_F32) r.f = in_kind == HS_VK_F32 ? a.f : (float)a.d;
    else if (kind == HS_VK_F64) r.d = v;
    else r = hs_kb_wrap(kind, bits, hs_kb_f2i(v, kind, bits));
    return r;
  }
  /* integer source (canonical 64-bit form) */
  if (kind == HS_VK_F32) r.f = in_kind == HS_VK_SINT ? (float)a.i : (float)a.u;
  else if (kind == HS_VK_F64) r.d = in_kind == HS_VK_SINT ? (double)a.i : (double)a.u;
  else r = hs_kb_wrap(kind, bits, a.u);
  return r;
}

HS_HD int64_t hs_kb_tkey(double d) { /* total order key of a double */
  union {
    double d;
    uint64_t u;
  } x;
  x.d = d;
  return (int64_t)(x.u ^ ((uint64_t)((int64_t)x.u >> 63) >> 1));
}
HS_HD int64_t hs_kb_tkey_f(float f) {
  union {
    float f;
    uint32_t u;
  } x;
  x.f = f;
  return (int32_t)(x.u ^ ((uint32_t)((int32_t)x.u >> 31) >> 1));
}

HS_HD int hs_kb_cmp_dir(int dir, int lt, int eq, int gt) {
  switch (dir) {
    case 0: return eq;
    case 1: return !eq;
    case 2: return gt || eq;
    case 3: return gt;
    case 4: return lt || eq;
    default: return lt;
  }
}

HS_HD uint64_t hs_kb_compare(const hs_vm_step *s, hs_vreg a, hs_vreg b) {
  int dir = s->aux & 7, total = s->aux >> 3;
  int k = s->in_kind;
  if (total) {
    int64_t x = k == HS_VK_F32 ? hs_kb_tkey_f(a.f) : hs_kb_tkey(a.d);
    int64_t y = k == HS_VK_F32 ? hs_kb_tkey_f(b.f) : hs_kb_tkey(b.d);
    return (uint64_t)hs_kb_cmp_dir(dir, x < y, x == y, x > y);
  }
  if (k == HS_VK_F32 || k == HS_VK_F64) { /* IEEE: NaN compares false except NE */
    double x = k == HS_VK_F32 ? (double)a.f : a.d, y = k == HS_VK_F32 ? (double)b.f : b.d;
    return (uint64_t)hs_kb_cmp_dir(dir, x < y, x == y, x > y);
  }
  if (k == HS_VK_SINT) return (uint64_t)hs_kb_cmp_dir(dir, a.i < b.i, a.i == b.i, a.i > b.i);
  return (uint64_t)hs_kb_cmp_dir(dir, a.u < b.u, a.u == b.u, a.u > b.u);
}

HS_HD uint64_t hs_kb_ipow6(uint64_t base, uint64_t e) {
  uint64_t acc = 1;
  for (int k = 0; k < 6; k++) {
    if (e & 1) acc *= base;
    base *= base;
    e >>= 1;
  }
  return acc;
}

HS_HD int hs_kb_popcount(uint64_t v) {
  int n = 0;
  while (v) {
    v &= v - 1;
    n++;
  }
  return n;
}

/* Integer ops on canonical registers; the caller wraps the result. */
HS_HD uint64_t hs_kb_int_op(const hs_vm_step *s, hs_vreg a, hs_vreg b) {
  int sg = s->kind == HS_VK_SINT, bits = s->bits;
  uint64_t m = hs_kb_mask(bits);
  if (bits == 1) { /* i1: add/max/or are or; mul/min/and are and */
    switch (s->op) {
      case HS_VM_ADD: case HS_VM_MAX: case HS_VM_OR: return a.u | b.u;
      case HS_VM_MUL: case HS_VM_MIN: case HS_VM_AND: return a.u & b.u;
      case HS_VM_XOR: return a.u ^ b.u;
      case HS_VM_NOT: return a.u ^ 1;
      default: return a.u;
    }
  }
  uint64_t ub = b.u & m; /* b as the unsigned element type */
  switch (s->op) {
    case HS_VM_ADD: return a.u + b.u;
    case HS_VM_SUB: return a.u - b.u;
    case HS_VM_MUL: return a.u * b.u;
    case HS_VM_MAX: return sg ? (uint64_t)(a.i > b.i ? a.i : b.i) : (a.u > b.u ? a.u : b.u);
    case HS_VM_MIN: return sg ? (uint64_t)(a.i < b.i ? a.i : b.i) : (a.u < b.u ? a.u : b.u);
    case HS_VM_AND: return a.u & b.u;
    case HS_VM_OR: return a.u | b.u;
    case HS_VM_XOR: return a.u ^ b.u;
    case HS_VM_SHL: return ub >= (uint64_t)bits ? 0 : a.u << ub;
    case HS_VM_SHRL: return ub >= (uint64_t)bits ? 0 : (a.u & m) >> ub;
    case HS_VM_SHRA: {
      int64_t sa = hs_kb_wrap(HS_VK_SINT, bits, a.u).i; /* a as the signed element type */
      return ub >= (uint64_t)bits ? (uint64_t)(sa < 0 ? -1 : 0) : (uint64_t)(sa >> ub);
    }
    case HS_VM_POW: {
      int64_t sb = hs_kb_wrap(HS_VK_SINT, bits, b.u).i;
      return sb < 0 ? (uint64_t)((a.u & m) == 1) : hs_kb_ipow6(a.u, ub);
    }
    case HS_VM_DIV:
      if (sg) return b.i == 0 ? ~(uint64_t)0 : b.i == -1 ? (uint64_t)0 - a.u : (uint64_t)(a.i / b.i);
      return b.u == 0 ? m : a.u / b.u;
    case HS_VM_REM:
      if (sg) return b.i == 0 ? a.u : b.i == -1 ? 0 : (uint64_t)(a.i % b.i);
      return b.u == 0 ? a.u : a.u % b.u;
    case HS_VM_NEG: return (uint64_t)0 - a.u;
    case HS_VM_NOT: return ~a.u;
    case HS_VM_SQUARE: return a.u * a.u;
    case HS_VM_ABS: return sg && a.i < 0 ? (uint64_t)0 - a.u : a.u;
    case HS_VM_SIGN: return sg ? (uint64_t)(int64_t)((a.i > 0) - (a.i < 0)) : (uint64_t)(a.u != 0);
    case HS_VM_POPCNT: return (uint64_t)hs_kb_popcount(a.u & m);
    case HS_VM_CLZ: {
      uint64_t v = a.u & m;
      int n = 0;
      for (int k = bits - 1; k >= 0 && !((v >> k) & 1); k--) n++;
      return (uint64_t)n;
    }
    default: return a.u;
  }
}

/* Float ops in double (exact for the arithmetic ones: f32 operands, one
 * rounding to f32 after; the caller narrows) or float for F32 libm calls. */
HS_HD double hs_kb_float_op(const hs_vm_step *s, double a, double b) {
  int f32 = s->kind == HS_VK_F32;
  switch (s->op) {
    case HS_VM_ADD: return a + b;
    case HS_VM_SUB: return a - b;
    case HS_VM_MUL: return a * b;
    case HS_VM_DIV: return a / b;
    case HS_VM_REM: return f32 ? (double)fmodf((float)a, (float)b) : fmod(a, b);
    case HS_VM_POW: return f32 ? (double)(float)pow(a, b) : pow(a, b);
    case HS_VM_ATAN2: return f32 ? (double)atan2f((float)a, (float)b) : atan2(a, b);
    case HS_VM_MAX: return hs_kb_fmax(a, b);
    case HS_VM_MIN: return hs_kb_fmin(a, b);
    case HS_VM_NEG: return -a;
    case HS_VM_ABS: return fabs(a);
    case HS_VM_SQUARE: return a * a;
    case HS_VM_CEIL: return ceil(a);
    case HS_VM_FLOOR: return floor(a);
    case HS_VM_RAFZ: return round(a);
    case HS_VM_REVEN: return rint(a);
    case HS_VM_SIGN: return a != a ? a : a == 0 ? a : copysign(1.0, a);
    case HS_VM_EXP: return f32 ? (double)expf((float)a) : exp(a);
    case HS_VM_EXPM1: return f32 ? (double)expm1f((float)a) : expm1(a);
    case HS_VM_LOG: return f32 ? (double)logf((float)a) : log(a);
    case HS_VM_LOG1P: return f32 ? (double)log1pf((float)a) : log1p(a);
    case HS_VM_SQRT: return f32 ? (double)sqrtf((float)a) : sqrt(a);
    case HS_VM_RSQRT: return f32 ? (double)(1.0f / sqrtf((float)a)) : 1.0 / sqrt(a);
    case HS_VM_CBRT: return f32 ? (double)cbrtf((float)a) : cbrt(a);
    case HS_VM_TANH: return f32 ? (double)tanhf((float)a) : tanh(a);
    case HS_VM_LOGISTIC:
      return f32 ? (double)(1.0f / (1.0f + expf(-(float)a))) : 1.0 / (1.0 + exp(-a));
    case HS_VM_SIN: return f32 ? (double)sinf((float)a) : sin(a);
    case HS_VM_COS: return f32 ? (double)cosf((float)a) : cos(a);
    case HS_VM_TAN: return f32 ? (double)tanf((float)a) : tan(a);
    default: return a;
  }
}

HS_HD hs_vreg hs_kb_vm_step(const hs_vm_step *s, const hs_vreg *r) {
  hs_vreg a = r[s->a], b = r[s->b], out;
  switch (s->op) {
    case HS_VM_COPY: return a;
    case HS_VM_CONVERT: return hs_kb_convert(a, s->in_kind, s->in_bits, s->kind, s->bits);
    case HS_VM_COMPARE: out.u = hs_kb_compare(s, a, b); return out;
    case HS_VM_SELECT: return a.u ? b : r[s->c];
    case HS_VM_ISFIN: {
      double x = s->in_kind == HS_VK_F32 ? (double)a.f : a.d;
      out.u = (uint64_t)(x - x == 0);
      return out;
    }
    case HS_VM_CLAMP: { /* operands (min, x, max): min(max(x, lo), hi) */
      hs_vm_step mx = *s, mn = *s;
      mx.op = HS_VM_MAX;
      mn.op = HS_VM_MIN;
      hs_vreg t;
      if (s->kind == HS_VK_F32 || s->kind == HS_VK_F64) {
        double lo = s->kind == HS_VK_F32 ? a.f : a.d, x = s->kind == HS_VK_F32 ? b.f : b.d;
        double hi = s->kind == HS_VK_F32 ? r[s->c].f : r[s->c].d;
        double v = hs_kb_fmin(hs_kb_fmax(x, lo), hi);
        if (s->kind == HS_VK_F32) out.f = (float)v;
        else out.d = v;
        return out;
      }
      t = hs_kb_wrap(s->kind, s->bits, hs_kb_int_op(&mx, b, a));
      return hs_kb_wrap(s->kind, s->bits, hs_kb_int_op(&mn, t, r[s->c]));
    }
    default: break;
  }
  if (s->kind == HS_VK_F32) {
    out.f = (float)hs_kb_float_op(s, (double)a.f, (double)b.f);
    return out;
  }
  if (s->kind == HS_VK_F64) {
    out.d = hs_kb_float_op(s, a.d, b.d);
    return out;
  }
  return hs_kb_wrap(s->kind, s->bits, hs_kb_int_op(s, a, b));
}

HS_HD void hs_kb_vm(const hs_kp_vm *p, int64_t i) {
  hs_vreg r[HS_VM_MAX_REGS];
  int64_t idx[HS_MAX_RANK];
  hs_kb_unflatten(i, p->rank, p->dims, idx);
  for (int l = 0; l < p->n_leaves; l++) {
    const hs_vm_leaf *lf = &p->leaves[l];
    int64_t off = 0;
    for (int d = 0; d < p->rank; d++) off += idx[d] * lf->strides[d];
    r[l] = hs_kb_load(lf->kind, lf->bits, lf->ptr, off);
  }
  for (int s = 0; s < p->n_steps; s++) r[p->steps[s].dst] = hs_kb_vm_step(&p->steps[s], r);
  hs_kb_store(p->out_kind, p->out_bits, p->out, i, r[p->out_reg]);
}

/* ---------------------------------------------------------------- iota */
typedef struct hs_kp_iota {
  void *dst;
  uint8_t kind, bits;
  int rank, dim;
  int64_t n;
  int64_t dims[HS_MAX_RANK];
} hs_kp_iota;

HS_HD void hs_kb_iota(const hs_kp_iota *p, int64_t i) {
  int64_t idx[HS_MAX_RANK];
  hs_kb_unflatten(i, p->rank, p->dims, idx);
  hs_vreg v;
  v.i = idx[p->dim];
  v = hs_kb_convert(v, HS_VK_SINT, 64, p->kind, p->bits);
  hs_kb_store(p->kind, p->bits, p->dst, i, v);
}

/* --------------------------------------------------------------- reduce
 * One thread per output element: out index -> base offset in the input
 * (kept dims), then a loop over the reduced box.  The reducer is one of the
 * VM's binary ops on the element kind; init is the init value's register. */
typedef struct hs_kp_reduce {
  void *dst;
  const void *src;
  uint8_t kind, bits, op;
  int out_rank, red_rank;
  int64_t n, red_n;
  hs_vreg init;
  int64_t out_dims[HS_MAX_RANK], out_strides[HS_MAX_RANK]; /* in-input strides of kept dims */
  int64_t red_dims[HS_MAX_RANK], red_strides[HS_MAX_RANK];
} hs_kp_reduce;

HS_HD void hs_kb_reduce(const hs_kp_reduce *p, int64_t i) {
  int64_t base = 0, r = i;
  for (int k = p->out_rank - 1; k >= 0; k--) {
    int64_t n = p->out_dims[k], x = n ? r % n : 0;
    r = n ? r / n : 0;
    base += x * p->out_strides[k];
  }
  hs_vm_step s;
  memset(&s, 0, sizeof s);
  s.op = p->op;
  s.kind = p->kind;
  s.bits = p->bits;
  s.b = 1;
  hs_vreg acc[2];
  acc[0] = p->init;
  for (int64_t j = 0; j < p->red_n; j++) {
    int64_t off = base, q = j;
    for (int k = p->red_rank - 1; k >= 0; k--) {
      int64_t n = p->red_dims[k], x = q % n;
      q /= n;
      off += x * p->red_strides[k];
    }
    acc[1] = hs_kb_load(p->kind, p->bits, p->src, off);
    acc[0] = hs_kb_vm_step(&s, acc);
  }
  hs_kb_store(p->kind, p->bits, p->dst, i, acc[0]);
}

/* --------------------------------------------------------- reduce_window
 * One thread per output element; window positions outside the (padded)
 * input read the init value, as the spec's padding does. */
typedef struct hs_kp_rwin {
  void *dst;
  const void *src;
  uint8_t kind, bits, op;
  int rank;
  int64_t n, win_n;
  hs_vreg init;
  int64_t in_dims[HS_MAX_RANK], out_dims[HS_MAX_RANK];
  int64_t win[HS_MAX_RANK], stride[HS_MAX_RANK], wdil[HS_MAX_RANK], pad_lo[HS_MAX_RANK];
} hs_kp_rwin;

HS_HD void hs_kb_rwin(const hs_kp_rwin *p, int64_t i) {
  int64_t o[HS_MAX_RANK];
  hs_kb_unflatten(i, p->rank, p->out_dims, o);
  hs_vm_step s;
  memset(&s, 0, sizeof s);
  s.op = p->op;
  s.kind = p->kind;
  s.bits = p->bits;
  s.b = 1;
  hs_vreg acc[2];
  acc[0] = p->init;
  for (int64_t j = 0; j < p->win_n; j++) {
    int64_t q = j, off = 0, mul = 1;
    int inside = 1;
    for (int k = p->rank - 1; k >= 0; k--) {
      int64_t w = q % p->win[k];
      q /= p->win[k];
      int64_t x = o[k] * p->stride[k] + w * p->wdil[k] - p->pad_lo[k];
      if (x < 0 || x >= p->in_dims[k]) inside = 0;
      off += x * mul;
      mul *= p->in_dims[k];
    }
    if (!inside) continue; /* init op x == x for the monoids we accept (add 0, max -inf...) */
    acc[1] = hs_kb_load(p->kind, p->bits, p->src, off);
    acc[0] = hs_kb_vm_step(&s, acc);
  }
  hs_kb_store(p->kind, p->bits, p->dst, i, acc[0]);
}

/* --------------------------------------------------------------- gather
 * StableHLO gather, one thread per output element: the batch index picks a
 * start index vector from start_indices, offset dims index into the slice. */
typedef struct hs_kp_gather {
  void *dst;
  const void *src;
  const void *idx;
  int esize, idx_bits, idx_signed;
  int out_rank, in_rank, idx_rank;
  int n_offset, n_start_map, index_vector_dim;
  int64_t n;
  int64_t out_dims[HS_MAX_RANK], in_dims[HS_MAX_RANK], idx_dims[HS_MAX_RANK];
  int64_t slice_sizes[HS_MAX_RANK];
  int64_t offset_dims[HS_MAX_RANK];      /* output dims that are offset dims (sorted) */
  int64_t offset_operand[HS_MAX_RANK];   /* operand dim of each offset dim */
  int64_t start_index_map[HS_MAX_RANK];
  int64_t batch_operand[HS_MAX_RANK];    /* operand_batching_dims */
  int64_t batch_indices[HS_MAX_RANK];    /* start_indices_batching_dims */
  int n_batching;
} hs_kp_gather;

HS_HD int64_t hs_kb_load_index(const hs_kp_gather *p, int64_t off) {
  switch (p->idx_bits) {
    case 8: return p->idx_signed ? (int64_t)((const int8_t *)p->idx)[off] : (int64_t)((const uint8_t *)p->idx)[off];
    case 16: return p->idx_signed ? (int64_t)((const int16_t *)p->idx)[off] : (int64_t)((const uint16_t *)p->idx)[off];
    case 32: return p->idx_signed ? (int64_t)((const int32_t *)p->idx)[off] : (int64_t)((const uint32_t *)p->idx)[off];
    default: return ((const int64_t *)p->idx)[off];
  }
}

HS_HD void hs_kb_gather(const hs_kp_gather *p, int64_t i) {
  int64_t o[HS_MAX_RANK], full[HS_MAX_RANK], batch[HS_MAX_RANK];
  hs_kb_unflatten(i, p->out_rank, p->out_dims, o);
  for (int d = 0; d < p->in_rank; d++) full[d] = 0;
  /* batch dims of the output: those not in offset_dims, in order */
  int nb = 0, ko = 0;
  for (int d = 0; d < p->out_rank; d++) {
    if (ko < p->n_offset && p->offset_dims[ko] == d) {
      full[p->offset_operand[ko]] = o[d];
      ko++;
    } else {
      batch[nb++] = o[d];
    }
  }
  /* the start-indices position: batch dims with index_vector_dim skipped */
  int64_t ipos[HS_MAX_RANK];
  int b = 0;
  for (int d = 0; d < p->idx_rank; d++) ipos[d] = d == p->index_vector_dim ? 0 : batch[b++];
  int64_t start[HS_MAX_RANK];
  for (int d = 0; d < p->in_rank; d++) start[d] = 0;
  for (int k = 0; k < p->n_start_map; k++) {
    if (p->index_vector_dim < p->idx_rank) ipos[p->index_vector_dim] = k;
    int64_t off = 0;
    for (int d = 0; d < p->idx_rank; d++) off = off * p->idx_dims[d] + ipos[d];
    start[p->start_index_map[k]] = hs_kb_load_index(p, off);
  }
  for (int k = 0; k < p->n_batching; k++) {
    /* operand batching dim takes the batch coordinate of its indices dim */
    int64_t idim = p->batch_indices[k];
    int bpos = 0;
    for (int d = 0; d < idim; d++) bpos += d != p->index_vector_dim;
    start[p->batch_operand[k]] = batch[bpos];
  }
  int64_t off = 0;
  for (int d = 0; d < p->in_rank; d++) {
    int64_t s = start[d], hi = p->in_dims[d] - p->slice_sizes[d];
    s = s < 0 ? 0 : s > hi ? hi : s; /* clamped, as the spec says */
    off = off * p->in_dims[d] + s + full[d];
  }
  hs_kb_copy_elem((char *)p->dst + i * p->esize, (const char *)p->src + off * p->esize, p->esize);
}

#endif /* HLOSERVE_RUNTIME_CUDA_BODIES_H */
