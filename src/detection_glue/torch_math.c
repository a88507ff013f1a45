/*
 * torch_math.c - the transcendental functions as ATen computes them.
 *
 * Sorting and thresholds make the detector's output discontinuous in its
 * scores: one ulp of difference in a sigmoid or a softmax can reorder two
 * proposals or move one across score_thresh.  So where torchvision's path
 * runs through ATen's vectorised CPU kernels we compute what those kernels
 * compute, not merely something close:
 *
 *  - Vectorized<float>::exp() is SLEEF's expf_u10 (FMA build on AVX2 and
 *    AVX-512): Cody-Waite reduction by ln 2 in two fused steps, a degree-6
 *    polynomial evaluated with fused multiply-adds, a two-step ldexp, and
 *    the overflow/underflow cut-offs at 100 and -104.  hs_glue_vexpf()
 *    follows that sequence with C99 fmaf (correctly rounded, so identical
 *    to the hardware instruction).
 *  - cpu_kernel_vec runs the vector lambda on blocks of two vectors and the
 *    scalar lambda (std::exp, i.e. libm's expf) on the remainder, so
 *    torch.sigmoid's last n % (2 * lanes) elements use expf.
 *  - softmax reduces max and sum with lane-wise partial results and a
 *    halving tree (vec::reduce_all), then multiplies by 1/sum.
 *
 * The lane count is ATen's: 16 where the CPU has AVX-512, else 8.
 */
#include "glue_internal.h"

static float pow2i(int32_t q) {
  uint32_t bits = (uint32_t)(q + 0x7f) << 23;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

float hs_glue_vexpf(float d) {
  if (d != d) return d;
  if (100.0f < d) return INFINITY;
  if (d < -104.0f) return 0.0f;
  const float r_ln2 = 1.442695040888963407359924681001892137426645954152985934135449406931f;
  const float l2u = 0.693145751953125f;
  const float l2l = 1.428606765330187045e-06f;
  int32_t q = (int32_t)rintf(d * r_ln2);
  float qf = (float)q;
  float s = fmaf(qf, -l2u, d);
  s = fmaf(qf, -l2l, s);
  float u = 0.000198527617612853646278381f;
  u = fmaf(u, s, 0.00139304355252534151077271f);
  u = fmaf(u, s, 0.00833336077630519866943359f);
  u = fmaf(u, s, 0.0416664853692054748535156f);
  u = fmaf(u, s, 0.166666671633720397949219f);
  u = fmaf(u, s, 0.5f);
  u = 1.0f + fmaf(s * s, u, s);
  /* vldexp2: two steps so that neither power of two overflows */
  int32_t h = q >> 1;
  u = u * pow2i(h) * pow2i(q - h);
  return u;
}

int hs_glue_torch_lanes(void) {
  static atomic_int lanes = 0;
  if (atomic_load(&lanes) == 0) {
    int l = 8;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      l = 16;
#endif
    atomic_store(&lanes, l);
  }
  return atomic_load(&lanes);
}

float hs_glue_sigmoid_at(float x, int64_t i, int64_t n) {
  int64_t block = 2 * (int64_t)hs_glue_torch_lanes();
  if (i < n - n % block) return 1.0f / (hs_glue_vexpf(0.0f - x) + 1.0f);  /* vector lambda */
  return 1.0f / (1.0f + expf(-x));                                       /* scalar lambda */
}

void hs_glue_softmax_row(const float *x, int64_t n, float *out) {
  if (n <= 0) return;
  const int L = hs_glue_torch_lanes();
  /* max: NaN anywhere makes the maximum NaN (vec::maximum propagates it) */
  float mx = x[0];
  for (int64_t j = 0; j < n; j++) {
    float v = x[j];
    if (v != v) {
      mx = v;
      break;
    }
    if (v > mx) mx = v;
  }
  for (int64_t j = 0; j < n; j++) out[j] = hs_glue_vexpf(x[j] - mx);
  float sum;
  if (n < L) {
    sum = out[0];
    for (int64_t j = 1; j < n; j++) sum = sum + out[j];
  } else {
    float acc[16];
    for (int l = 0; l < L; l++) acc[l] = out[l];
    int64_t d = L;
    for (; d < n - n % L; d += L)
      for (int l = 0; l < L; l++) acc[l] = acc[l] + out[d + l];
    for (int64_t l = 0; d + l < n; l++) acc[l] = acc[l] + out[d + l];
    for (int step = L / 2; step >= 1; step /= 2) {
      float nxt[16];
      for (int l = 0; l < L; l++) nxt[l] = acc[l] + acc[l ^ step];
      memcpy(acc, nxt, sizeof(float) * (size_t)L);
    }
    sum = acc[0];
  }
  float r = 1.0f / sum;
  for (int64_t j = 0; j < n; j++) out[j] = out[j] * r;
}
