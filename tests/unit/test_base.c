/* test_base.c - status, arena, half floats, safetensors, npy, thread pool. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/npy.h"
#include "base/safetensors.h"
#include "base/threadpool.h"
#include "hloserve/tensor.h"
#include "testlib.h"

HS_TEST(status_basics) {
  CHECK(hs_status_new(HS_OK, "x") == NULL);
  hs_status *st = hs_status_new(HS_NOT_FOUND, "weight %s", "w1");
  CHECK(hs_status_code_of(st) == HS_NOT_FOUND);
  st = hs_status_annotate(st, "model %d", 7);
  CHECK(strcmp(hs_status_message(st), "model 7: weight w1") == 0);
  hs_status_free(st);
  CHECK(strcmp(hs_status_message(NULL), "OK") == 0);
}

static void record(void *arg) {
  int *log = arg;
  log[log[0] + 1] = log[0] + 100; /* which call this was */
  log[0]++;
}

static void bump(void *arg) { (*(int *)arg)++; }

/* hs_arena_defer: callbacks run once each, newest first, when the arena is
 * freed; a reused arena starts with none. */
HS_TEST(arena_defer_runs_at_free) {
  hs_arena a;
  hs_arena_init(&a, 64);
  int log[8] = {0}, n = 0;
  CHECK(hs_arena_defer(&a, record, log));
  for (int i = 0; i < 100; i++) CHECK(hs_arena_alloc(&a, 100) != NULL); /* across blocks */
  CHECK(hs_arena_defer(&a, bump, &n));
  CHECK(n == 0 && log[0] == 0);
  hs_arena_free(&a);
  CHECK(n == 1 && log[0] == 1 && log[1] == 100);
  hs_arena_free(&a); /* nothing registered any more */
  CHECK(n == 1 && log[0] == 1);
  CHECK(hs_arena_defer(&a, bump, &n));
  hs_arena_free(&a);
  CHECK(n == 2);
}

HS_TEST(arena_alignment_and_growth) {
  hs_arena a;
  hs_arena_init(&a, 64);
  for (int i = 1; i < 2000; i++) {
    unsigned char *p = hs_arena_alloc(&a, (size_t)i);
    CHECK(p != NULL);
    CHECK(((uintptr_t)p & 15) == 0);
    memset(p, 0xab, (size_t)i);
  }
  CHECK(hs_arena_alloc(&a, SIZE_MAX) == NULL);
  CHECK(hs_arena_calloc(&a, SIZE_MAX / 2, 4) == NULL);
  char *s = hs_arena_strndup(&a, "hello world", 5);
  CHECK(strcmp(s, "hello") == 0);
  hs_arena_free(&a);
}

HS_TEST(f16_round_trips_every_value) {
  for (uint32_t h = 0; h < 65536; h++) {
    float f = hs_f16_to_f32((uint16_t)h);
    if (isnan(f)) {
      CHECK(isnan(hs_f16_to_f32(hs_f32_to_f16(f))));
      continue;
    }
    CHECK_MSG(hs_f32_to_f16(f) == h, "h=%04x", h);
    CHECK_MSG(hs_f64_to_f16((double)f) == h, "h=%04x", h);
  }
}

HS_TEST(f16_rounding) {
  /* 1 + 2^-11 is halfway between 1 and the next f16: ties to even (1). */
  CHECK(hs_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);
  CHECK(hs_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);
  CHECK(hs_f32_to_f16(65504.0f) == 0x7bff);
  CHECK(hs_f32_to_f16(65520.0f) == 0x7c00); /* rounds to inf */
  CHECK(hs_f32_to_f16(65519.0f) == 0x7bff);
  CHECK(hs_f32_to_f16(0x1p-24f) == 0x0001);  /* smallest subnormal */
  CHECK(hs_f32_to_f16(0x1p-25f) == 0x0000);  /* tie to even: 0 */
  CHECK(hs_f32_to_f16(-0.0f) == 0x8000);
}

HS_TEST(bf16_rounding) {
  for (uint32_t h = 0; h < 65536; h++) {
    float f = hs_bf16_to_f32((uint16_t)h);
    if (isnan(f)) continue;
    CHECK_MSG(hs_f32_to_bf16(f) == h, "h=%04x", h);
    CHECK_MSG(hs_f64_to_bf16((double)f) == h, "h=%04x", h);
  }
  CHECK(hs_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);             /* tie to even */
  CHECK(hs_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
  CHECK(isnan(hs_bf16_to_f32(hs_f32_to_bf16(NAN))));
}

HS_TEST(convert_float_to_int_saturates) {
  int8_t i8;
  hs_store_f64(HS_I8, &i8, 0, 300.7);
  CHECK(i8 == 127);
  hs_store_f64(HS_I8, &i8, 0, -300.7);
  CHECK(i8 == -128);
  hs_store_f64(HS_I8, &i8, 0, NAN);
  CHECK(i8 == 0);
  hs_store_f64(HS_I8, &i8, 0, -2.9);
  CHECK(i8 == -2);
  uint32_t u;
  hs_store_f64(HS_U32, &u, 0, -5.0);
  CHECK(u == 0);
  hs_store_f64(HS_U32, &u, 0, 1e20);
  CHECK(u == UINT32_MAX);
  int64_t i64;
  hs_store_f64(HS_I64, &i64, 0, 1e300);
  CHECK(i64 == INT64_MAX);
}

/* A safetensors image with one tensor "w" [2,2] f32 after `hdr`. */
static size_t make_st(unsigned char *buf, const char *hdr, const float *data, size_t data_bytes) {
  size_t hl = strlen(hdr);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hl >> (8 * i));
  memcpy(buf + 8, hdr, hl);
  memcpy(buf + 8 + hl, data, data_bytes);
  return 8 + hl + data_bytes;
}

HS_TEST(safetensors_good_and_bad) {
  unsigned char buf[512];
  float w[4] = {1, 2, 3, 4};
  size_t n = make_st(buf, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                          "\"__metadata__\":{\"format\":\"pt\"}}",
                     w, sizeof w);
  hs_safetensors *st;
  CHECK_OK(hs_safetensors_from_memory(buf, n, "good", &st));
  CHECK(hs_safetensors_count(st) == 1);
  const hs_tensor *t = hs_safetensors_get(st, "w");
  CHECK(t && t->dtype == HS_F32 && t->shape.rank == 2 && t->shape.dims[1] == 2);
  float got[4];
  memcpy(got, t->data, 16);
  CHECK(got[3] == 4.0f);
  CHECK(hs_safetensors_get(st, "nope") == NULL);
  hs_safetensors_close(st);

  static const char *bad[] = {
      "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}",  /* size mismatch */
      "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,32]}}",  /* past the end */
      "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}", /* negative dim */
      "{\"w\":{\"dtype\":\"Q9\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",   /* dtype */
      "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2]}}",                          /* no offsets */
      "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,4]}}",   /* inverted */
      "[1,2]", "{\"w\":", "",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    n = make_st(buf, bad[i], w, sizeof w);
    hs_status *e = hs_safetensors_from_memory(buf, n, "bad", &st);
    CHECK_MSG(e != NULL, "case %zu accepted", i);
    CHECK(strncmp(hs_status_message(e), "bad: ", 5) == 0);
    hs_status_free(e);
  }
  /* header length beyond the file */
  memset(buf, 0xff, 8);
  hs_status *e = hs_safetensors_from_memory(buf, 16, "bad", &st);
  CHECK(e != NULL);
  hs_status_free(e);
  CHECK_ERR(hs_safetensors_open("/nonexistent/x.safetensors", &st), HS_NOT_FOUND);
}

HS_TEST(npy_round_trip) {
  char path[] = "/tmp/hs_test_npy_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  int32_t data[6] = {1, -2, 3, -4, 5, 6};
  hs_tensor t = {HS_I32, {2, {2, 3}}, data}, r;
  CHECK_OK(hs_npy_write(path, &t));
  CHECK_OK(hs_npy_read(path, &r));
  CHECK(r.dtype == HS_I32 && r.shape.rank == 2 && r.shape.dims[0] == 2 && r.shape.dims[1] == 3);
  CHECK(memcmp(r.data, data, sizeof data) == 0);
  free(r.data);
  hs_tensor s = {HS_F64, {0, {0}}, &(double){2.5}};
  CHECK_OK(hs_npy_write(path, &s));
  CHECK_OK(hs_npy_read(path, &r));
  CHECK(r.shape.rank == 0 && *(double *)r.data == 2.5);
  free(r.data);
  unlink(path);
  CHECK_ERR(hs_npy_parse("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'", 24, "trunc", &r), HS_INVALID_ARGUMENT);
}

static atomic_llong pool_sum;
static void add_range(void *arg, int64_t b, int64_t e) {
  long long s = 0;
  for (int64_t i = b; i < e; i++) s += i;
  atomic_fetch_add(&pool_sum, s);
}

HS_TEST(threadpool_sums) {
  hs_threadpool *p;
  CHECK_OK(hs_threadpool_create(3, &p));
  for (int rep = 0; rep < 200; rep++) {
    atomic_store(&pool_sum, 0);
    int64_t n = 1000 + rep;
    hs_threadpool_parallel_for(p, n, 7, add_range, NULL);
    CHECK(atomic_load(&pool_sum) == n * (n - 1) / 2);
  }
  hs_threadpool_destroy(p);
}

int main(void) {
  HS_RUN(status_basics);
  HS_RUN(arena_alignment_and_growth);
  HS_RUN(arena_defer_runs_at_free);
  HS_RUN(f16_round_trips_every_value);
  HS_RUN(f16_rounding);
  HS_RUN(bf16_rounding);
  HS_RUN(convert_float_to_int_saturates);
  HS_RUN(safetensors_good_and_bad);
  HS_RUN(npy_round_trip);
  HS_RUN(threadpool_sums);
  return hs_test_summary();
}
