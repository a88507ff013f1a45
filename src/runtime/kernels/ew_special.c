/*
 * ew_special.c - scalar special functions in double precision for the CHLO
 * kernels: lgamma, digamma, erf_inv, bessel_i1e, Hurwitz zeta, polygamma.
 *
 * Design: each function is a short, self-contained evaluation chosen for
 * accuracy over speed (these ops are rare in real programs): recurrences that
 * move the argument into the range where an asymptotic expansion converges to
 * double precision, series summed until the terms stop mattering, and Halley
 * iterations on libm's erf / erfc for the inverse error function.  f32 callers
 * round the double result once.  Poles and domain errors follow XLA's CHLO
 * decompositions: digamma is NaN at non-positive integers, zeta(x, q) is +Inf
 * at x = 1 and at non-positive integer q, NaN for x < 1, polygamma is NaN for
 * a non-integer or negative order.
 */
#include <math.h>

#include "runtime/kernels/ew_common.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#ifndef M_2_SQRTPI
#define M_2_SQRTPI 1.12837916709551257390
#endif

double hs_ew_lgamma(double x) {
  int sign; /* lgamma_r: no write to the global signgam from several threads */
  return lgamma_r(x, &sign);
}

double hs_ew_digamma(double x) {
  if (x != x) return x;
  if (x == INFINITY) return x;
  if (x <= 0 && floor(x) == x) return NAN; /* poles, and -Inf */
  double acc = 0;
  if (x < 0) {
    /* Reflection psi(x) = psi(1 - x) - pi / tan(pi x); tan has period pi, so
     * reduce x to [-0.5, 0.5] first to keep pi * x exact enough. */
    double r = x - nearbyint(x);
    acc = -M_PI / tan(M_PI * r);
    x = 1 - x;
  }
  while (x < 10) { /* psi(x) = psi(x + 1) - 1/x */
    acc -= 1 / x;
    x += 1;
  }
  /* psi(x) ~ ln x - 1/(2x) - sum B_2k / (2k x^2k); at x >= 10 seven terms
   * reach double precision. */
  static const double c[] = {-1.0 / 12,  1.0 / 120,  -1.0 / 252,        1.0 / 240,
                             -1.0 / 132, 691.0 / 32760, -1.0 / 12}; /* -B_2k / 2k */
  double f = 1 / (x * x), t = 0;
  for (int k = 6; k >= 0; k--) t = f * (c[k] + t);
  return acc + log(x) - 0.5 / x + t;
}

double hs_ew_erfinv(double x) {
  if (x != x || x < -1 || x > 1) return NAN;
  if (x == 1) return INFINITY;
  if (x == -1) return -INFINITY;
  if (x == 0) return x;
  double ax = fabs(x);
  /* Starting point: Winitzki's closed-form approximation (relative error
   * ~2e-3), then Halley steps on f(y) = erf(y) - ax, which converge
   * cubically: three steps exceed double precision.  Near 1, f is written
   * with erfc and the exact 1 - ax so no digits cancel. */
  const double a = 0.147;
  double l = log1p(-ax) + log1p(ax); /* ln(1 - x^2) */
  double t = 2 / (M_PI * a) + l / 2;
  double y = sqrt(sqrt(t * t - l / a) - t);
  for (int k = 0; k < 4; k++) {
    double f = ax <= 0.5 ? erf(y) - ax : (1 - ax) - erfc(y);
    double fp = M_2_SQRTPI * exp(-y * y);
    double step = f / (fp + y * f);
    if (!(step == step)) break;
    y -= step;
  }
  return copysign(y, x);
}

double hs_ew_bessel_i1e(double x) {
  if (x != x) return x;
  double ax = fabs(x), r;
  if (ax == INFINITY) {
    r = 0;
  } else if (ax <= 20) {
    /* I1(x) = sum_k (x/2)^(2k+1) / (k! (k+1)!), all terms positive. */
    double h = ax / 2, q = h * h, term = h, sum = h;
    for (int k = 1; k < 200; k++) {
      term *= q / ((double)k * (double)(k + 1));
      sum += term;
      if (term < sum * 1e-17) break;
    }
    r = sum * exp(-ax);
  } else {
    /* Hankel's expansion: e^-x I1(x) ~ (2 pi x)^-1/2 sum_k (-1)^k a_k / x^k,
     * a_k = prod_{j<=k} (4 - (2j-1)^2) / (k! 8^k); its smallest term at
     * x > 20 is below 1e-17. */
    double term = 1, sum = 1;
    for (int k = 1; k < 100; k++) {
      double odd = 2.0 * k - 1;
      double next = -term * (4 - odd * odd) / (8.0 * k * ax);
      if (fabs(next) > fabs(term)) break; /* past the smallest term */
      term = next;
      sum += term;
      if (fabs(term) < 1e-17 * fabs(sum)) break;
    }
    r = sum / sqrt(2 * M_PI * ax);
  }
  return x < 0 ? -r : r;
}

double hs_ew_zeta(double x, double q) {
  if (x != x || q != q) return NAN;
  if (x == 1) return INFINITY;
  if (x < 1) return NAN;
  if (q <= 0) {
    if (floor(q) == q) return INFINITY;
    if (floor(x) != x) return NAN; /* (q + k)^-x undefined for q + k < 0 */
  }
  if (x == INFINITY) return q == 1 ? 1 : q > 1 ? 0 : INFINITY;
  /* Euler-Maclaurin: sum the first terms directly until a = q + n >= 10,
   * then add the integral, half the boundary term and the Bernoulli
   * corrections. */
  static const double b2k[] = {1.0 / 6,         -1.0 / 30,         1.0 / 42,
                               -1.0 / 30,        5.0 / 66,          -691.0 / 2730,
                               7.0 / 6,          -3617.0 / 510,     43867.0 / 798,
                               -174611.0 / 330,  854513.0 / 138,    -236364091.0 / 2730};
  double s = 0, a = q;
  int n = 0;
  while ((a < 10 || n < 2) && n < 100000) {
    double term = pow(a, -x);
    s += term;
    a += 1;
    n++;
    if (a >= 10 && fabs(term) <= 1e-17 * fabs(s)) return s;
  }
  double ap = pow(a, -x);
  s += a * ap / (x - 1) + 0.5 * ap;
  double fac = x * ap / a; /* x (x+1) ... (x+2j-2) a^(-x-2j+1) */
  double fact = 2;         /* (2j)! */
  for (int j = 1; j <= 12; j++) {
    double t = b2k[j - 1] / fact * fac;
    s += t;
    if (fabs(t) <= 1e-17 * fabs(s)) break;
    fac *= (x + 2 * j - 1) * (x + 2 * j) / (a * a);
    fact *= (2.0 * j + 1) * (2.0 * j + 2);
  }
  return s;
}

double hs_ew_polygamma(double n, double x) {
  if (n != n || x != x) return NAN;
  if (n < 0 || floor(n) != n) return NAN;
  if (n == 0) return hs_ew_digamma(x);
  /* psi^(n)(x) = (-1)^(n+1) n! zeta(n + 1, x) */
  double sign = fmod(n, 2.0) == 0 ? -1.0 : 1.0;
  return sign * tgamma(n + 1) * hs_ew_zeta(n + 1, x);
}
