/*
 * la_misc.c - stablehlo.rng_bit_generator, stablehlo.triangular_solve and
 * stablehlo.cholesky.
 *
 * rng_bit_generator reproduces XLA's expansion bit for bit (the spec leaves
 * the bits implementation-defined, and programs exported from JAX expect
 * XLA's): the state is [key, counter...]; THREE_FRY is Threefry-2x32 with 20
 * rounds over 64-bit counters, PHILOX is Philox-4x32 with 10 rounds over a
 * 128-bit counter, and DEFAULT means PHILOX as on XLA's CPU backend.  How
 * counters map to output elements (the shape split for 32-bit Threefry, the
 * round-robin interleave for Philox) follows XLA's prng library.
 *
 * triangular_solve and cholesky are small dense solvers computed in f64 and
 * rounded once into the result type; batch dims lead.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels/la_common.h"

/* ================================================================ rng_bit_generator */

enum { ALG_THREE_FRY, ALG_PHILOX };

typedef struct rng_state {
  int alg;
  int bits; /* output element width */
} rng_state;

static inline uint32_t rotl32(uint32_t v, int r) { return (v << r) | (v >> (32 - r)); }

static void threefry2x32(uint32_t k0, uint32_t k1, uint32_t x[2]) {
  static const int rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  uint32_t ks[3] = {k0, k1, 0x1BD11BDAu ^ k0 ^ k1};
  uint32_t a = x[0] + ks[0], b = x[1] + ks[1];
  for (int g = 0; g < 5; g++) {
    for (int r = 0; r < 4; r++) {
      a += b;
      b = rotl32(b, rot[g & 1][r]) ^ a;
    }
    a += ks[(g + 1) % 3];
    b += ks[(g + 2) % 3] + (uint32_t)(g + 1);
  }
  x[0] = a;
  x[1] = b;
}

static void philox4x32(uint32_t k0, uint32_t k1, uint32_t x[4]) {
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)x[0] * 0xD2511F53u, p1 = (uint64_t)x[2] * 0xCD9E8D57u;
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k0, y1 = (uint32_t)p1;
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k1, y3 = (uint32_t)p0;
    x[0] = y0, x[1] = y1, x[2] = y2, x[3] = y3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

hs_status *hs_la_rng_prepare(hs_op *op, hs_arena *arena) {
  if (op->n_operands != 1 || op->n_results != 2)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected one state operand and two results");
  const hs_type *s, *os, *out;
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 0, &s));
  HS_RETURN_IF_ERROR(hs_op_tensor_result(op, 0, &os));
  HS_RETURN_IF_ERROR(hs_op_tensor_result(op, 1, &out));
  if (s->shape.rank != 1 || (s->dtype != HS_U64 && s->dtype != HS_I64))
    return hs_op_error(op, HS_UNIMPLEMENTED, "the state must be a 1-D tensor of 64-bit integers");
  if (os->dtype != s->dtype || !hs_shape_equal(&os->shape, &s->shape))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "output_state must have the state's type");
  const char *alg = NULL;
  HS_RETURN_IF_ERROR(hs_op_get_enum(op, "rng_algorithm", false, "DEFAULT", &alg));
  rng_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  if (strcmp(alg, "THREE_FRY") == 0)
    st->alg = ALG_THREE_FRY;
  else if (strcmp(alg, "PHILOX") == 0 || strcmp(alg, "DEFAULT") == 0)
    st->alg = ALG_PHILOX;
  else
    return hs_op_error(op, HS_INVALID_ARGUMENT, "unknown rng_algorithm %s", alg);
  int64_t n = s->shape.dims[0];
  if (st->alg == ALG_THREE_FRY ? n != 2 : (n != 2 && n != 3))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "%s needs a state of %s elements, got %lld", alg,
                       st->alg == ALG_THREE_FRY ? "2" : "2 or 3", (long long)n);
  if (out->dtype == HS_PRED)
    return hs_op_error(op, HS_UNIMPLEMENTED, "rng_bit_generator does not produce i1");
  st->bits = hs_dtype_bits(out->dtype);
  op->kernel_state = st;
  return NULL;
}

static void store_bits(void *dst, int64_t i, int bits, uint64_t v) {
  switch (bits) {
    case 8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
    case 16: ((uint16_t *)dst)[i] = (uint16_t)v; break;
    case 32: ((uint32_t *)dst)[i] = (uint32_t)v; break;
    default: ((uint64_t *)dst)[i] = v; break;
  }
}

/* 32-bit (and narrower) Threefry: split one dim in halves, each counter
 * yields the pair of elements 2h and 2h+1 of that dim. */
static uint64_t threefry_narrow(uint64_t key, uint64_t ctr, const hs_shape *shape, int bits,
                                void *dst) {
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  if (shape->rank == 0) {
    uint32_t x[2] = {(uint32_t)ctr, (uint32_t)(ctr >> 32)};
    threefry2x32(k0, k1, x);
    store_bits(dst, 0, bits, x[0]);
    return ctr + 1;
  }
  int split = -1;
  for (int d = 0; d < shape->rank; d++)
    if (shape->dims[d] % 2 == 0) {
      split = d;
      break;
    }
  if (split < 0)
    for (int d = 0; d < shape->rank; d++)
      if (split < 0 || shape->dims[d] > shape->dims[split]) split = d;
  int64_t outer = 1, inner = 1, ds = shape->dims[split], half = (ds + 1) / 2;
  for (int d = 0; d < split; d++) outer *= shape->dims[d];
  for (int d = split + 1; d < shape->rank; d++) inner *= shape->dims[d];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t h = 0; h < half; h++)
      for (int64_t i = 0; i < inner; i++) {
        uint64_t c = ctr + (uint64_t)((o * half + h) * inner + i);
        uint32_t x[2] = {(uint32_t)c, (uint32_t)(c >> 32)};
        threefry2x32(k0, k1, x);
        for (int j = 0; j < 2; j++) {
          int64_t s = 2 * h + j;
          if (s < ds) store_bits(dst, (o * ds + s) * inner + i, bits, x[j]);
        }
      }
  return ctr + (uint64_t)(outer * half * inner);
}

hs_status *hs_la_rng_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const rng_state *st = op->kernel_state;
  const uint64_t *s = in[0].data;
  uint64_t *ns = out[0].data;
  int64_t n_state = in[0].shape.dims[0];
  int64_t n = hs_tensor_numel(&out[1]);
  void *dst = out[1].data;
  uint64_t key = s[0];
  memcpy(ns, s, sizeof(uint64_t) * (size_t)n_state);
  if (st->alg == ALG_THREE_FRY) {
    uint64_t ctr = s[1];
    if (st->bits == 64) {
      uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
      for (int64_t i = 0; i < n; i++) {
        uint64_t c = ctr + (uint64_t)i;
        uint32_t x[2] = {(uint32_t)c, (uint32_t)(c >> 32)};
        threefry2x32(k0, k1, x);
        ((uint64_t *)dst)[i] = (uint64_t)x[0] | ((uint64_t)x[1] << 32);
      }
      ns[1] = ctr + (uint64_t)n;
    } else {
      ns[1] = threefry_narrow(key, ctr, &out[1].shape, st->bits, dst);
    }
    return NULL;
  }
  /* PHILOX: 128-bit counter (lo, hi) */
  uint64_t lo = s[1], hi = n_state >= 3 ? s[2] : s[0];
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  int64_t words = st->bits == 64 ? 2 * n : n; /* 32-bit words needed */
  int64_t nv = (words + 3) / 4;
  for (int64_t v = 0; v < nv; v++) {
    uint64_t cl = lo + (uint64_t)v, ch = hi + (cl < lo ? 1 : 0);
    uint32_t x[4] = {(uint32_t)cl, (uint32_t)(cl >> 32), (uint32_t)ch, (uint32_t)(ch >> 32)};
    philox4x32(k0, k1, x);
    if (st->bits == 64) {
      for (int j = 0; j < 2; j++)
        if (2 * v + j < n)
          ((uint64_t *)dst)[2 * v + j] = (uint64_t)x[2 * j] | ((uint64_t)x[2 * j + 1] << 32);
    } else {
      for (int j = 0; j < 4; j++)
        if (4 * v + j < n) store_bits(dst, 4 * v + j, st->bits, x[j]);
    }
  }
  uint64_t nl = lo + (uint64_t)nv, nh = hi + (nl < lo ? 1 : 0);
  ns[1] = nl;
  if (n_state >= 3) ns[2] = nh;
  return NULL;
}

/* ================================================================ triangular_solve */

typedef struct trsm_state {
  bool left, lower, unit, trans;
  int64_t batch, m, n; /* a: [batch, m, m]; b: [batch, rows, cols] */
} trsm_state;

hs_status *hs_la_trsm_prepare(hs_op *op, hs_arena *arena) {
  if (op->n_operands != 2 || op->n_results != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected a, b and one result");
  const hs_type *a, *b, *r;
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 0, &a));
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 1, &b));
  HS_RETURN_IF_ERROR(hs_op_tensor_result(op, 0, &r));
  if (!hs_dtype_is_float(a->dtype) || a->dtype != b->dtype || r->dtype != a->dtype ||
      !hs_shape_equal(&r->shape, &b->shape))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "a, b and the result must be floats of one type, result shaped as b");
  int rank = a->shape.rank;
  if (rank < 2 || b->shape.rank != rank || a->shape.dims[rank - 1] != a->shape.dims[rank - 2])
    return hs_op_error(op, HS_INVALID_ARGUMENT, "a must be a batch of square matrices, b of the same rank");
  trsm_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  const hs_attr *at;
  at = hs_op_attr(op, "left_side");
  st->left = at && at->kind == HS_ATTR_BOOL && at->u.b;
  at = hs_op_attr(op, "lower");
  st->lower = at && at->kind == HS_ATTR_BOOL && at->u.b;
  at = hs_op_attr(op, "unit_diagonal");
  st->unit = at && at->kind == HS_ATTR_BOOL && at->u.b;
  const char *t = NULL;
  HS_RETURN_IF_ERROR(hs_op_get_enum(op, "transpose_a", false, "NO_TRANSPOSE", &t));
  if (strcmp(t, "NO_TRANSPOSE") == 0)
    st->trans = false;
  else if (strcmp(t, "TRANSPOSE") == 0 || strcmp(t, "ADJOINT") == 0)
    st->trans = true;
  else
    return hs_op_error(op, HS_INVALID_ARGUMENT, "unknown transpose_a %s", t);
  st->m = a->shape.dims[rank - 1];
  st->batch = 1;
  for (int d = 0; d < rank - 2; d++) {
    if (a->shape.dims[d] != b->shape.dims[d])
      return hs_op_error(op, HS_INVALID_ARGUMENT, "batch dims of a and b differ");
    st->batch *= a->shape.dims[d];
  }
  int64_t solve_dim = st->left ? b->shape.dims[rank - 2] : b->shape.dims[rank - 1];
  if (solve_dim != st->m)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "b does not match a's size on the solved side");
  st->n = st->left ? b->shape.dims[rank - 1] : b->shape.dims[rank - 2];
  op->kernel_state = st;
  return NULL;
}

hs_status *hs_la_trsm_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in, hs_tensor *out) {
  const trsm_state *st = op->kernel_state;
  int64_t m = st->m, n = st->n;
  hs_dtype dt = in[0].dtype;
  double *A = hs_exec_scratch(ctx, sizeof(double) * (size_t)(m * m + 1));
  double *x = hs_exec_scratch(ctx, sizeof(double) * (size_t)(m + 1));
  if (!A || !x) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  /* Solve T y = rhs where T = op(a) (left) or op(a)^T (right). */
  bool tt = st->left ? st->trans : !st->trans;
  bool t_lower = st->lower != tt;
  for (int64_t bi = 0; bi < st->batch; bi++) {
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < m; j++) {
        int64_t r = tt ? j : i, c = tt ? i : j; /* element of a */
        bool inside = st->lower ? c <= r : c >= r;
        double v = inside ? hs_load_f64(dt, in[0].data, (bi * m + r) * m + c) : 0.0;
        if (r == c && st->unit) v = 1.0;
        A[i * m + j] = v;
      }
    for (int64_t v = 0; v < n; v++) {
      /* rhs vector v: column v of b (left) or row v of b (right) */
      int64_t base = bi * m * n, step = st->left ? n : 1, start = st->left ? v : v * m;
      for (int64_t i = 0; i < m; i++) x[i] = hs_load_f64(dt, in[1].data, base + start + i * step);
      if (t_lower) {
        for (int64_t i = 0; i < m; i++) {
          double s = x[i];
          for (int64_t j = 0; j < i; j++) s -= A[i * m + j] * x[j];
          x[i] = s / A[i * m + i];
        }
      } else {
        for (int64_t i = m - 1; i >= 0; i--) {
          double s = x[i];
          for (int64_t j = i + 1; j < m; j++) s -= A[i * m + j] * x[j];
          x[i] = s / A[i * m + i];
        }
      }
      for (int64_t i = 0; i < m; i++) hs_store_f64(dt, out->data, base + start + i * step, x[i]);
    }
  }
  return NULL;
}

/* ================================================================ cholesky */

typedef struct chol_state {
  bool lower;
  int64_t batch, n;
} chol_state;

hs_status *hs_la_cholesky_prepare(hs_op *op, hs_arena *arena) {
  if (op->n_operands != 1 || op->n_results != 1)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected one operand and one result");
  const hs_type *a, *r;
  HS_RETURN_IF_ERROR(hs_op_tensor_operand(op, 0, &a));
  HS_RETURN_IF_ERROR(hs_op_tensor_result(op, 0, &r));
  int rank = a->shape.rank;
  if (!hs_dtype_is_float(a->dtype) || r->dtype != a->dtype || !hs_shape_equal(&a->shape, &r->shape) ||
      rank < 2 || a->shape.dims[rank - 1] != a->shape.dims[rank - 2])
    return hs_op_error(op, HS_INVALID_ARGUMENT, "expected a batch of square float matrices");
  chol_state *st = hs_arena_calloc(arena, 1, sizeof *st);
  if (!st) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  const hs_attr *lo = hs_op_attr(op, "lower");
  st->lower = lo && lo->kind == HS_ATTR_BOOL && lo->u.b;
  st->n = a->shape.dims[rank - 1];
  st->batch = 1;
  for (int d = 0; d < rank - 2; d++) st->batch *= a->shape.dims[d];
  op->kernel_state = st;
  return NULL;
}

hs_status *hs_la_cholesky_run(hs_exec_ctx *ctx, const hs_op *op, const hs_tensor *in,
                              hs_tensor *out) {
  const chol_state *st = op->kernel_state;
  int64_t n = st->n;
  hs_dtype dt = in[0].dtype;
  double *L = hs_exec_scratch(ctx, sizeof(double) * (size_t)(n * n + 1));
  if (!L) return hs_op_error(op, HS_OUT_OF_MEMORY, "out of memory");
  for (int64_t bi = 0; bi < st->batch; bi++) {
    int64_t base = bi * n * n;
    /* read the used triangle as the lower one: upper case works on a^T */
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++)
        L[i * n + j] = j <= i ? hs_load_f64(dt, in[0].data, base + (st->lower ? i * n + j : j * n + i))
                              : 0.0;
    for (int64_t j = 0; j < n; j++) {
      double d = L[j * n + j];
      for (int64_t k = 0; k < j; k++) d -= L[j * n + k] * L[j * n + k];
      d = d > 0 ? sqrt(d) : NAN;
      L[j * n + j] = d;
      for (int64_t i = j + 1; i < n; i++) {
        double s = L[i * n + j];
        for (int64_t k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
        L[i * n + j] = s / d;
      }
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++) {
        double v = j <= i ? L[i * n + j] : 0.0;
        hs_store_f64(dt, out->data, base + (st->lower ? i * n + j : j * n + i), v);
      }
  }
  return NULL;
}
