/*
 * peak_fma.c - this machine's peak f32 FMA throughput, the denominator of the
 * detector benchmark's FLOP floor (bench/bench_detector.py).
 *
 * Each thread runs a loop of independent fused multiply-adds on 12 vector
 * accumulators (enough to cover the FMA latency times the number of FMA
 * pipes on current x86 cores) with the widest vectors the compiler targets
 * (-march=native: AVX-512, else AVX2/FMA).  An empty asm statement that
 * "modifies" every accumulator stops the compiler from merging or dropping
 * them.  Prints the best of `reps` runs as "peak_gflops N".
 *
 * Usage: peak_fma THREADS [REPS]
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
static float first(vec v) { return _mm512_cvtss_f32(v); }
#elif defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float first(vec v) { return _mm256_cvtss_f32(v); }
#else
#error "peak_fma needs FMA (compile with -march=native on an x86-64 with FMA)"
#endif

#define ITERS 40000000L

static volatile float sink;

static void *loop(void *arg) {
  (void)arg;
  vec a0 = SET1(0.10f), a1 = SET1(0.11f), a2 = SET1(0.12f), a3 = SET1(0.13f);
  vec a4 = SET1(0.14f), a5 = SET1(0.15f), a6 = SET1(0.16f), a7 = SET1(0.17f);
  vec a8 = SET1(0.18f), a9 = SET1(0.19f), a10 = SET1(0.20f), a11 = SET1(0.21f);
  const vec x = SET1(0.999999f), y = SET1(1e-7f);
  for (long k = 0; k < ITERS; k++) {
    a0 = FMA(a0, x, y); a1 = FMA(a1, x, y); a2 = FMA(a2, x, y); a3 = FMA(a3, x, y);
    a4 = FMA(a4, x, y); a5 = FMA(a5, x, y); a6 = FMA(a6, x, y); a7 = FMA(a7, x, y);
    a8 = FMA(a8, x, y); a9 = FMA(a9, x, y); a10 = FMA(a10, x, y); a11 = FMA(a11, x, y);
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),
                     "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  vec s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));
  s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));
  sink = first(s);
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  int reps = argc > 2 ? atoi(argv[2]) : 3;
  if (threads < 1 || threads > 256 || reps < 1) {
    fprintf(stderr, "usage: peak_fma THREADS [REPS]\n");
    return 2;
  }
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  if (!th) return 1;
  double best = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    for (int i = 0; i < threads; i++)
      if (pthread_create(&th[i], NULL, loop, NULL) != 0) return 1;
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double gf = (double)threads * ITERS * 12 * LANES * 2 / (now() - t0) / 1e9;
    if (gf > best) best = gf;
  }
  printf("peak_gflops %.1f\nvector_lanes %d\nthreads %d\n", best, LANES, threads);
  free(th);
  return 0;
}
