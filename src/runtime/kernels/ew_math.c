/*
 * ew_math.c - the floating-point functions: stablehlo exponential, log,
 * sine, tanh, atan2, ... and the CHLO functions (erf, lgamma, asin, ...).
 *
 * Accuracy policy: f64 uses libm (or ew_special.c) directly.  f32 evaluates
 * the same double-precision function and rounds once, which is within half an
 * ulp of the true result and so within XLA's own error for every function
 * XLA computes accurately.  f16 and bf16 widen to f32, as XLA does, and round
 * once at the end.  Where a conformance test shows that XLA's f32 result is
 * an approximation further than the checks allow from the true value, the
 * f32 function below reproduces XLA's formula instead (each such case says
 * so).
 */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE_SIZE__)
#pragma GCC optimize("O3", "no-trapping-math", "no-math-errno")
#endif

#include <math.h>

#include "runtime/kernels/ew_common.h"

/* f32 and f64 scalar functions from one double function. */
#define VIA_DOUBLE(id, FN)                                               \
  static inline float id##_f32(float a) { return (float)FN((double)a); } \
  static inline double id##_f64(double a) { return FN(a); }
#define VIA_DOUBLE2(id, FN)                                                                  \
  static inline float id##_f32(float a, float b) { return (float)FN((double)a, (double)b); } \
  static inline double id##_f64(double a, double b) { return FN(a, b); }

static inline double rsqrt_d(double x) { return 1.0 / sqrt(x); }

VIA_DOUBLE(exponential_minus_one, expm1)
VIA_DOUBLE(log_plus_one, log1p)
VIA_DOUBLE(cbrt, cbrt)
VIA_DOUBLE(cosine, cos)
VIA_DOUBLE(sine, sin)
VIA_DOUBLE(tan, tan)
VIA_DOUBLE(lgamma, hs_ew_lgamma)
VIA_DOUBLE(digamma, hs_ew_digamma)
VIA_DOUBLE(erf, erf)
VIA_DOUBLE(erfc, erfc)
VIA_DOUBLE(erf_inv, hs_ew_erfinv)
VIA_DOUBLE(asin, asin)
VIA_DOUBLE(acos, acos)
VIA_DOUBLE(atan, atan)
VIA_DOUBLE(asinh, asinh)
VIA_DOUBLE(acosh, acosh)
VIA_DOUBLE(atanh, atanh)
VIA_DOUBLE(bessel_i1e, hs_ew_bessel_i1e)
VIA_DOUBLE2(atan2, atan2)
VIA_DOUBLE2(polygamma, hs_ew_polygamma)
VIA_DOUBLE2(zeta, hs_ew_zeta)

/* ------------------------------------------------------------------------
 * XLA's own f32 approximations.  XLA on CPU does not call libm for f32 exp,
 * log and tanh: it inlines Cephes-style polynomials (relative error ~2^-22).
 * Where a conformance check needs XLA's exact bits (an absolute tolerance on
 * a large result), only the same formula evaluated in the same order gives
 * them.  They are branch-free, so the loops using them vectorise, which also
 * makes them several times faster than a libm call per element. */

/* XLA's build fuses each multiply-add (FMA), and the data keeps those bits.
 * fmaf gives the same single rounding everywhere; the loops using it are
 * compiled twice on x86-64 (with FMA instructions and without, picked at load
 * time by the CPU), so that machines with FMA get inline, vectorised code and
 * the others a correct library fmaf. */
#define EW_MULADD(a, b, c) fmaf((a), (b), (c))
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(HS_NO_CLONES)
#define EW_FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define EW_FMA_CLONES
#endif

static inline float xla_expf(float in) {
  /* e^x = e^a * 2^n with n = round(x / ln 2), a = x - n ln 2 (ln 2 split in
   * two constants so the reduction is exact enough), e^a by a polynomial.
   * n is clamped to [-127, 127]; 2^-127 is built as the bit pattern 0, which
   * flushes results below 2^-126 to zero as XLA does.  Written without
   * branches or libm calls so that loops over it vectorise. */
  float x = in < -87.8f ? -87.8f : in;
  x = x > 88.8f ? 88.8f : x;              /* NaN stays NaN */
  float xs = x == x ? x : 0.0f;           /* NaN-free for the integer part */
  float v = EW_MULADD(xs, 1.44269504088896341f, 0.5f);
  float n = (v + 0x1.8p23f) - 0x1.8p23f;  /* round to integer (|v| < 2^22) */
  n = n > v ? n - 1.0f : n;               /* floor */
  n = n < -127.0f ? -127.0f : n > 127.0f ? 127.0f : n;
  x = x - 0.693359375f * n;
  x = x - -2.12194440e-4f * n;
  float z = EW_MULADD(x, 1.9875691500e-4f, 1.3981999507e-3f);
  z = EW_MULADD(z, x, 8.3334519073e-3f);
  z = EW_MULADD(z, x, 4.1665795894e-2f);
  z = EW_MULADD(z, x, 1.6666665459e-1f);
  z = EW_MULADD(z, x, 5.0000001201e-1f);
  z = EW_MULADD(z, x * x, x);
  z = 1.0f + z;
  float pow2 = hs_ew_u2f((uint32_t)((int32_t)n + 127) << 23);
  return z * pow2;
}

static inline float xla_logf(float in) {
  /* x = m * 2^e with m in [sqrt(1/2), sqrt(2)), log(x) = log1p(m - 1) + e ln 2
   * with a polynomial for log1p; NaN below zero, -Inf at zero. */
  float t = in > 0x1p-126f ? in : 0x1p-126f; /* no subnormals */
  uint32_t bits = hs_ew_f2u(t);
  float e = 1.0f + (float)((int32_t)(bits >> 23) - 127);
  t = hs_ew_u2f((bits & ~0x7f800000u) | 0x3f000000u); /* mantissa in [0.5, 1) */
  bool small = t < 0.707106781186547524f;
  float t1 = small ? t : 0.0f;
  t = t - 1.0f;
  e = e - (small ? 1.0f : 0.0f);
  t = t + t1;
  float x2 = t * t, x3 = x2 * t;
  float y = EW_MULADD(t, 7.0376836292e-2f, -1.1514610310e-1f);
  float y1 = EW_MULADD(t, -1.2420140846e-1f, 1.4249322787e-1f);
  float y2 = EW_MULADD(t, 2.0000714765e-1f, -2.4999993993e-1f);
  y = EW_MULADD(y, t, 1.1676998740e-1f);
  y1 = EW_MULADD(y1, t, -1.6668057665e-1f);
  y2 = EW_MULADD(y2, t, 3.3333331174e-1f);
  y = EW_MULADD(y, x3, y1);
  y = EW_MULADD(y, x3, y2);
  y = y * x3;
  y = y + -2.12194440e-4f * e;
  t = t - 0.5f * x2;
  t = t + y;
  t = t + 0.693359375f * e;
  return in == 0 ? -INFINITY : in == INFINITY ? INFINITY : !(in > 0) ? NAN : t;
}

static inline float xla_tanhf(float x) {
  /* A rational approximation on [-9, 9] (tanh is +-1 in f32 beyond), and
   * tanh(x) = x for |x| < 0.0004. */
  float c = x < -9.0f ? -9.0f : x > 9.0f ? 9.0f : x;
  float x2 = c * c;
  float p = -2.76076847742355e-16f;
  p = EW_MULADD(x2, p, 2.00018790482477e-13f);
  p = EW_MULADD(x2, p, -8.60467152213735e-11f);
  p = EW_MULADD(x2, p, 5.12229709037114e-08f);
  p = EW_MULADD(x2, p, 1.48572235717979e-05f);
  p = EW_MULADD(x2, p, 6.37261928875436e-04f);
  p = EW_MULADD(x2, p, 4.89352455891786e-03f);
  p = c * p;
  float q = 1.19825839466702e-06f;
  q = EW_MULADD(x2, q, 1.18534705686654e-04f);
  q = EW_MULADD(x2, q, 2.26843463243900e-03f);
  q = EW_MULADD(x2, q, 4.89352518554385e-03f);
  return fabsf(x) < 0.0004f || x != x ? x : p / q;
}

static inline float exponential_f32(float a) { return xla_expf(a); }
static inline double exponential_f64(double a) { return exp(a); }
static inline float log_f32(float a) { return xla_logf(a); }
static inline double log_f64(double a) { return log(a); }
static inline float tanh_f32(float a) { return xla_tanhf(a); }
/* XLA expands logistic to 1 / (1 + e^-x) before code generation. */
static inline float logistic_f32(float a) { return 1.0f / (1.0f + xla_expf(-a)); }
static inline double logistic_f64(double a) { return 1.0 / (1.0 + exp(-a)); }
static inline double tanh_f64(double a) { return tanh(a); }

/* sinh and cosh in f32 follow XLA's CHLO expansion, whose f32 rounding of
 * x + log(1/2) costs up to ~7 ulp that the conformance data keeps:
 *   cosh(x) = e^(x + log 1/2) + e^(-x + log 1/2)
 *   sinh(x) = (expm1(x) + expm1(x) / (expm1(x) + 1)) / 2   for |x| < 1
 *           = e^(x + log 1/2) - e^(-x + log 1/2)          otherwise.
 * f64 uses libm (the data agrees with it to within the checks). */
static inline float sinh_f32(float x) {
  const float log_half = -0.693147182f;
  if (fabsf(x) < 1.0f) {
    float e = (float)expm1((double)x);
    return 0.5f * (e + e / (e + 1.0f));
  }
  return xla_expf(x + log_half) - xla_expf(log_half - x);
}
static inline double sinh_f64(double x) { return sinh(x); }
static inline float cosh_f32(float x) {
  const float log_half = -0.693147182f;
  return xla_expf(x + log_half) + xla_expf(log_half - x);
}
static inline double cosh_f64(double x) { return cosh(x); }

/* sqrt is correctly rounded in every precision; rsqrt is 1 / sqrt in the
 * type itself, as XLA computes it. */
static inline float sqrt_f32(float a) { return sqrtf(a); }
static inline double sqrt_f64(double a) { return sqrt(a); }
static inline float rsqrt_f32(float a) { return 1.0f / sqrtf(a); }
static inline double rsqrt_f64(double a) { return rsqrt_d(a); }

#define UNARY_KERNEL_ATTR(id, ATTR)                                                  \
  EW_FLOAT_UNARY_ATTR(id, id##_f32, id##_f64, ATTR)                                  \
  static const hs_range_fn id##_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(id)};        \
  hs_status *hs_ew_prep_##id(hs_op *op, hs_arena *arena) {                           \
    return hs_ew_prepare(op, arena, id##_fns, 1, HS_EW_SAME, HS_EW_PAR_HEAVY, NULL); \
  }
#define UNARY_KERNEL(id) UNARY_KERNEL_ATTR(id, )
#define BINARY_KERNEL(id)                                                            \
  EW_FLOAT_BINARY(id, id##_f32, id##_f64)                                            \
  static const hs_range_fn id##_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(id)};        \
  hs_status *hs_ew_prep_##id(hs_op *op, hs_arena *arena) {                           \
    return hs_ew_prepare(op, arena, id##_fns, 2, HS_EW_SAME, HS_EW_PAR_HEAVY, NULL); \
  }

UNARY_KERNEL_ATTR(exponential, EW_FMA_CLONES)
UNARY_KERNEL(exponential_minus_one)
UNARY_KERNEL_ATTR(log, EW_FMA_CLONES)
UNARY_KERNEL(log_plus_one)
UNARY_KERNEL_ATTR(logistic, EW_FMA_CLONES)
UNARY_KERNEL(cbrt)
UNARY_KERNEL(cosine)
UNARY_KERNEL(sine)
UNARY_KERNEL(tan)
UNARY_KERNEL_ATTR(tanh, EW_FMA_CLONES)
UNARY_KERNEL(sqrt)
UNARY_KERNEL(rsqrt)
UNARY_KERNEL(lgamma)
UNARY_KERNEL(digamma)
UNARY_KERNEL(erf)
UNARY_KERNEL(erfc)
UNARY_KERNEL(erf_inv)
UNARY_KERNEL_ATTR(sinh, EW_FMA_CLONES)
UNARY_KERNEL_ATTR(cosh, EW_FMA_CLONES)
UNARY_KERNEL(asin)
UNARY_KERNEL(acos)
UNARY_KERNEL(atan)
UNARY_KERNEL(asinh)
UNARY_KERNEL(acosh)
UNARY_KERNEL(atanh)
UNARY_KERNEL(bessel_i1e)
BINARY_KERNEL(atan2)
BINARY_KERNEL(polygamma)
BINARY_KERNEL(zeta)

/* ------------------------------------------------------------- next_after
 *
 * The next representable value of x toward y, in x's own format: f16 and
 * bf16 step their own bits (rounding an f32 answer would undo the step). */

static inline uint16_t next16(uint16_t a, uint16_t b, float fa, float fb, uint16_t qnan) {
  if (fa != fa || fb != fb) return qnan;
  if (fa == fb) return b;
  if (fa == 0) return (uint16_t)((b & 0x8000u) | 1u);
  bool away = (fa < fb) == (fa > 0); /* magnitude grows */
  return (uint16_t)(away ? a + 1u : a - 1u);
}

#define NEXT16_LOOP(D, LOAD, QNAN)                                   \
  static void next_after_##D(void *arg_, int64_t lo_, int64_t hi_) { \
    const hs_ew_call *c_ = (const hs_ew_call *)arg_;                 \
    const uint16_t *x_ = c_->in[0], *y_ = c_->in[1];                 \
    uint16_t *o_ = c_->out;                                          \
    for (int64_t i = lo_; i < hi_; i++)                              \
      o_[i] = next16(x_[i], y_[i], LOAD(x_[i]), LOAD(y_[i]), QNAN);  \
  }
NEXT16_LOOP(F16, hs_ew_h2f, 0x7e00u)
NEXT16_LOOP(BF16, hs_ew_b2f, 0x7fc0u)

static void next_after_F32(void *arg_, int64_t lo_, int64_t hi_) {
  const hs_ew_call *c_ = (const hs_ew_call *)arg_;
  const float *x_ = c_->in[0], *y_ = c_->in[1];
  float *o_ = c_->out;
  for (int64_t i = lo_; i < hi_; i++) o_[i] = nextafterf(x_[i], y_[i]);
}
static void next_after_F64(void *arg_, int64_t lo_, int64_t hi_) {
  const hs_ew_call *c_ = (const hs_ew_call *)arg_;
  const double *x_ = c_->in[0], *y_ = c_->in[1];
  double *o_ = c_->out;
  for (int64_t i = lo_; i < hi_; i++) o_[i] = nextafter(x_[i], y_[i]);
}
static const hs_range_fn next_after_fns[HS_DTYPE_COUNT] = {EW_FLOAT_ENTRIES(next_after)};

hs_status *hs_ew_prep_next_after(hs_op *op, hs_arena *arena) {
  return hs_ew_prepare(op, arena, next_after_fns, 2, HS_EW_SAME, HS_EW_PAR_CHEAP, NULL);
}
