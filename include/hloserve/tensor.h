/*
 * tensor.h - element types and dense row-major tensors.
 *
 * A hs_tensor is a view: dtype, shape and a pointer to row-major (C order)
 * data.  Who owns the data is decided by whoever made the tensor (an arena, a
 * mmap'd weights file, a request buffer); the tensor struct itself never frees
 * anything.  That keeps tensors cheap to pass around and lets the runtime hand
 * out views into planned arenas without per-tensor allocations.
 */
#ifndef HLOSERVE_TENSOR_H
#define HLOSERVE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hloserve/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Enough for every real program we have seen; larger ranks are refused with a
 * clear error rather than overflowing. */
#define HS_MAX_RANK 12

typedef enum hs_dtype {
  HS_DTYPE_INVALID = 0,
  HS_PRED, /* i1, stored as one byte holding 0 or 1 */
  HS_I8,
  HS_I16,
  HS_I32,
  HS_I64,
  HS_U8,
  HS_U16,
  HS_U32,
  HS_U64,
  HS_F16,
  HS_BF16,
  HS_F32,
  HS_F64,
  HS_C64,  /* complex<f32>: parsed, but kernels refuse it for now */
  HS_C128, /* complex<f64>: likewise */
  HS_DTYPE_COUNT
} hs_dtype;

/* Size of one element in bytes (PRED is 1). 0 for INVALID. */
size_t hs_dtype_size(hs_dtype t);
/* MLIR spelling: "f32", "i1", "ui8", "bf16", "complex<f32>". */
const char *hs_dtype_name(hs_dtype t);
/* KServe v2 spelling: "FP32", "BOOL", "UINT8", "BF16"... NULL if none. */
const char *hs_dtype_kserve_name(hs_dtype t);
/* Parses a KServe v2 name; HS_DTYPE_INVALID if unknown. */
hs_dtype hs_dtype_from_kserve_name(const char *name);
/* NumPy descr without byte order: "f4", "i8", "u1", "b1", "f2" ... */
const char *hs_dtype_numpy_code(hs_dtype t);

bool hs_dtype_is_float(hs_dtype t);   /* f16 bf16 f32 f64 */
bool hs_dtype_is_int(hs_dtype t);     /* signed or unsigned, not PRED */
bool hs_dtype_is_signed(hs_dtype t);  /* i8..i64 */
bool hs_dtype_is_unsigned(hs_dtype t);/* u8..u64 */
bool hs_dtype_is_complex(hs_dtype t);
int hs_dtype_bits(hs_dtype t);        /* 1 for PRED, else 8*size */

typedef struct hs_shape {
  int rank;
  int64_t dims[HS_MAX_RANK];
} hs_shape;

int64_t hs_shape_numel(const hs_shape *s);
bool hs_shape_equal(const hs_shape *a, const hs_shape *b);
/* Writes "2x3x4" (or "" for rank 0) into buf; returns buf. */
char *hs_shape_str(const hs_shape *s, char *buf, size_t cap);
/* Row-major strides in elements. */
void hs_shape_strides(const hs_shape *s, int64_t strides[HS_MAX_RANK]);

typedef struct hs_tensor {
  hs_dtype dtype;
  hs_shape shape;
  void *data;    /* row-major, hs_tensor_nbytes() bytes */
} hs_tensor;

static inline int64_t hs_tensor_numel(const hs_tensor *t) { return hs_shape_numel(&t->shape); }
static inline size_t hs_tensor_nbytes(const hs_tensor *t) {
  return (size_t)hs_tensor_numel(t) * hs_dtype_size(t->dtype);
}

/* Half-precision conversions (round to nearest even; NaN stays NaN). */
float hs_f16_to_f32(uint16_t h);
uint16_t hs_f32_to_f16(float f);
float hs_bf16_to_f32(uint16_t h);
uint16_t hs_f32_to_bf16(float f);
/* Correctly rounded f64 -> f16/bf16 (no double rounding through f32). */
uint16_t hs_f64_to_f16(double d);
uint16_t hs_f64_to_bf16(double d);

/* Element i of a tensor of any real dtype, widened to double / int64.  Slow:
 * for tests, checks and tools, never for kernels' inner loops. */
double hs_load_f64(hs_dtype t, const void *data, int64_t i);
int64_t hs_load_i64(hs_dtype t, const void *data, int64_t i);
uint64_t hs_load_u64(hs_dtype t, const void *data, int64_t i);
/* Store with the semantics of stablehlo.convert from f64 / i64. */
void hs_store_f64(hs_dtype t, void *data, int64_t i, double v);
void hs_store_i64(hs_dtype t, void *data, int64_t i, int64_t v);

#ifdef __cplusplus
}
#endif
#endif /* HLOSERVE_TENSOR_H */
