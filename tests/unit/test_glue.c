/*
 * test_glue.c - DetectionGlue unit tests: hand-computed cases, the argument
 * checks, empty inputs, and self-consistency against straightforward
 * reference implementations written here (torchvision's loops, transcribed
 * naively).  Parity with torchvision itself is tests/python/test_glue_parity.py.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detection_glue/glue_internal.h"
#include "hloserve/detection_glue.h"
#include "testlib.h"

static hs_glue_workspace *make_ws(int threads) {
  hs_glue_config c = hs_glue_default_config();
  c.num_threads = threads;
  hs_glue_workspace *ws = NULL;
  hs_status *st = hs_glue_workspace_create(&c, &ws);
  if (st) {
    fprintf(stderr, "workspace: %s\n", hs_status_message(st));
    hs_status_free(st);
    return NULL;
  }
  return ws;
}

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 11);
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() % 1000000) / 1e6f; }

static void random_boxes(float *b, int64_t n, float extent, float size) {
  for (int64_t i = 0; i < n; i++) {
    float x = frand(0, extent), y = frand(0, extent);
    b[i * 4 + 0] = x;
    b[i * 4 + 1] = y;
    b[i * 4 + 2] = x + frand(0, size);
    b[i * 4 + 3] = y + frand(0, size);
  }
}

/* torchvision's CPU NMS, transcribed literally (stable sort by insertion). */
static int64_t ref_nms(const float *b, const float *s, int64_t n, double thr, int64_t *keep) {
  int64_t *order = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  char *sup = calloc((size_t)(n ? n : 1), 1);
  float *area = malloc((size_t)(n ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    area[i] = (b[i * 4 + 2] - b[i * 4]) * (b[i * 4 + 3] - b[i * 4 + 1]);
    /* insertion: NaN first, then decreasing, stable */
    int64_t j = i;
    while (j > 0) {
      float a = s[order[j - 1]], c = s[i];
      int before = (c != c && a == a) || c > a;
      if (!before) break;
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
  int64_t k = 0;
  for (int64_t oi = 0; oi < n; oi++) {
    int64_t i = order[oi];
    if (sup[i]) continue;
    keep[k++] = i;
    for (int64_t oj = oi + 1; oj < n; oj++) {
      int64_t j = order[oj];
      if (sup[j]) continue;
      float xx1 = b[i * 4] < b[j * 4] ? b[j * 4] : b[i * 4];
      float yy1 = b[i * 4 + 1] < b[j * 4 + 1] ? b[j * 4 + 1] : b[i * 4 + 1];
      float xx2 = b[j * 4 + 2] < b[i * 4 + 2] ? b[j * 4 + 2] : b[i * 4 + 2];
      float yy2 = b[j * 4 + 3] < b[i * 4 + 3] ? b[j * 4 + 3] : b[i * 4 + 3];
      float w = 0.0f < xx2 - xx1 ? xx2 - xx1 : 0.0f;
      float h = 0.0f < yy2 - yy1 ? yy2 - yy1 : 0.0f;
      float inter = w * h;
      float ovr = inter / (area[i] + area[j] - inter);
      if ((double)ovr > thr) sup[j] = 1;
    }
  }
  free(order);
  free(sup);
  free(area);
  return k;
}

/* ------------------------------------------------------------------ */

HS_TEST(workspace_config) {
  hs_glue_workspace *ws = NULL;
  hs_glue_config c = hs_glue_default_config();
  c.max_boxes = -1;
  CHECK_ERR(hs_glue_workspace_create(&c, &ws), HS_INVALID_ARGUMENT);
  CHECK(ws == NULL);
  CHECK_ERR(hs_glue_workspace_create(NULL, &ws), HS_INVALID_ARGUMENT);
  c = hs_glue_default_config();
  CHECK_ERR(hs_glue_workspace_create(&c, NULL), HS_INVALID_ARGUMENT);
  c.num_threads = 3;
  CHECK_OK(hs_glue_workspace_create(&c, &ws));
  CHECK(hs_glue_workspace_config(ws).max_boxes == c.max_boxes);
  hs_glue_workspace_destroy(ws);
  hs_glue_workspace_destroy(NULL);
  /* a zero-capacity workspace is valid; calls over its limits fail cleanly */
  hs_glue_config z = {0, 0, 0, 1};
  CHECK_OK(hs_glue_workspace_create(&z, &ws));
  float b[4] = {0, 0, 1, 1}, s[1] = {1};
  int64_t keep[1], nk = -1;
  CHECK_ERR(hs_glue_nms(ws, b, s, 1, 0.5, keep, 1, &nk), HS_RESOURCE_EXHAUSTED);
  CHECK_OK(hs_glue_nms(ws, b, s, 0, 0.5, keep, 1, &nk));
  CHECK(nk == 0);
  hs_glue_workspace_destroy(ws);
}

HS_TEST(cell_anchors_torchvision_values) {
  /* AnchorGenerator(sizes=((32,),), aspect_ratios=((0.5, 1.0, 2.0),)) */
  float scales[1] = {32}, ratios[3] = {0.5f, 1.0f, 2.0f}, out[12];
  CHECK_OK(hs_glue_cell_anchors(scales, 1, ratios, 3, out, 3));
  const float want[12] = {-23, -11, 23, 11, -16, -16, 16, 16, -11, -23, 11, 23};
  for (int i = 0; i < 12; i++) CHECK_NEAR(out[i], want[i], 0);
  CHECK_ERR(hs_glue_cell_anchors(scales, 1, ratios, 3, out, 2), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_cell_anchors(scales, -1, ratios, 3, out, 3), HS_INVALID_ARGUMENT);
  CHECK_OK(hs_glue_cell_anchors(NULL, 0, NULL, 0, NULL, 0));
}

HS_TEST(generate_anchors_order) {
  float cell[8] = {-1, -2, 1, 2, -3, -4, 3, 4}, out[2 * 3 * 2 * 4];
  CHECK_OK(hs_glue_generate_anchors(cell, 2, 2, 3, 8, 4, out, 12));
  /* row (y*W + x)*A + a: y = 1, x = 2, a = 1 is row (5)*2 + 1 = 11 */
  const float *r = out + 11 * 4;
  CHECK(r[0] == 2 * 4 - 3 && r[1] == 1 * 8 - 4 && r[2] == 2 * 4 + 3 && r[3] == 1 * 8 + 4);
  CHECK(out[0] == -1 && out[1] == -2);
  CHECK_ERR(hs_glue_generate_anchors(cell, 2, 2, 3, 8, 4, out, 11), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_generate_anchors(cell, 2, -2, 3, 8, 4, out, 12), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_generate_anchors(cell, 2, INT64_MAX, INT64_MAX, 8, 4, out, 12),
            HS_INVALID_ARGUMENT);
  CHECK_OK(hs_glue_generate_anchors(cell, 2, 0, 3, 8, 4, NULL, 0));
}

HS_TEST(flatten_layouts) {
  /* objectness [1, A=2, H=2, W=3] -> [(h*W + w)*A + a] */
  float obj[12], flat[12];
  for (int i = 0; i < 12; i++) obj[i] = (float)i;
  CHECK_OK(hs_glue_flatten_objectness(obj, 2, 2, 3, flat, 12));
  /* a=1, h=1, w=2: source 1*6 + 1*3 + 2 = 11; dest (1*3+2)*2+1 = 11 */
  CHECK(flat[11] == 11 && flat[1] == 6 && flat[2] == 1);
  CHECK_ERR(hs_glue_flatten_objectness(obj, 2, 2, 3, flat, 11), HS_INVALID_ARGUMENT);
  /* deltas [1, A*4=8, H=1, W=2] -> [(w)*A + a][c] = d[a*4 + c][w] */
  float d[16], fd[16];
  for (int i = 0; i < 16; i++) d[i] = (float)i;
  CHECK_OK(hs_glue_flatten_deltas(d, 2, 1, 2, fd, 4));
  /* w=1, a=1, c=2: source ((1*4+2)*2 + 1) = 13; dest ((1*2+1)*4 + 2) = 14 */
  CHECK(fd[14] == 13);
  CHECK_ERR(hs_glue_flatten_deltas(d, 2, 1, 2, fd, 3), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_flatten_deltas(d, -2, 1, 2, fd, 4), HS_INVALID_ARGUMENT);
}

HS_TEST(decode_hand_computed) {
  float box[4] = {0, 0, 10, 10};
  float d[8] = {0, 0, 0, 0, 0.1f, 0, logf(2.0f), 0};
  float w[4] = {1, 1, 1, 1}, out[8];
  CHECK_OK(hs_glue_decode_boxes(d, box, 1, 2, w, HS_GLUE_BBOX_XFORM_CLIP, out, 1));
  CHECK(out[0] == 0 && out[1] == 0 && out[2] == 10 && out[3] == 10);
  /* ctr 5 + 0.1*10 = 6, width 10*2 = 20 */
  CHECK_NEAR(out[4], -4, 1e-5);
  CHECK_NEAR(out[6], 16, 1e-5);
  CHECK_NEAR(out[5], 0, 0);
  /* the clamp: dw = 100 behaves as log(1000/16) */
  float big[4] = {0, 0, 100, 0};
  CHECK_OK(hs_glue_decode_boxes(big, box, 1, 1, w, HS_GLUE_BBOX_XFORM_CLIP, out, 1));
  CHECK_NEAR(out[2] - out[0], 10 * 62.5, 1e-3);
  /* weights divide the deltas */
  float w10[4] = {10, 10, 5, 5}, d2[4] = {10, 0, 0, 0};
  CHECK_OK(hs_glue_decode_boxes(d2, box, 1, 1, w10, HS_GLUE_BBOX_XFORM_CLIP, out, 1));
  CHECK_NEAR(out[0], 10, 1e-6);
  CHECK_ERR(hs_glue_decode_boxes(d2, box, 2, 1, w10, 4.0, out, 1), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_decode_boxes(d2, box, -1, 1, w10, 4.0, out, 1), HS_INVALID_ARGUMENT);
  CHECK_OK(hs_glue_decode_boxes(NULL, NULL, 0, 1, w10, 4.0, NULL, 0));
}

HS_TEST(clip_and_remove_small) {
  float b[12] = {-5, -5, 700, 500, 1, 1, 1.0005f, 3, NAN, 0, 5, 5};
  CHECK_OK(hs_glue_clip_boxes(b, 3, 480, 640));
  CHECK(b[0] == 0 && b[1] == 0 && b[2] == 640 && b[3] == 480);
  CHECK(isnan(b[8]));
  int64_t keep[3], nk = 0;
  CHECK_OK(hs_glue_remove_small_boxes(b, 3, 1e-3, keep, 3, &nk));
  CHECK(nk == 1 && keep[0] == 0);  /* 0.0005 wide is small; NaN fails the compare */
  CHECK_ERR(hs_glue_remove_small_boxes(b, 3, 1e-3, keep, 2, &nk), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_clip_boxes(b, -1, 480, 640), HS_INVALID_ARGUMENT);
}

HS_TEST(nms_hand_computed) {
  hs_glue_workspace *ws = make_ws(1);
  CHECK(ws);
  /* box 1 overlaps box 0 with IoU 81/119 = 0.68; box 2 is far away. */
  float b[12] = {0, 0, 10, 10, 1, 1, 11, 11, 50, 50, 60, 60};
  float s[3] = {0.9f, 0.95f, 0.1f};
  int64_t keep[3], nk = 0;
  CHECK_OK(hs_glue_nms(ws, b, s, 3, 0.5, keep, 3, &nk));
  CHECK(nk == 2 && keep[0] == 1 && keep[1] == 2);
  CHECK_OK(hs_glue_nms(ws, b, s, 3, 0.7, keep, 3, &nk));
  CHECK(nk == 3 && keep[0] == 1 && keep[1] == 0 && keep[2] == 2);
  /* keep_cap stops early with the prefix */
  CHECK_OK(hs_glue_nms(ws, b, s, 3, 0.7, keep, 1, &nk));
  CHECK(nk == 1 && keep[0] == 1);
  /* IoU exactly at the threshold does not suppress (strict >) */
  float e[8] = {0, 0, 2, 1, 0, 0, 1, 1};  /* IoU 1/2 */
  float es[2] = {1, 1};
  CHECK_OK(hs_glue_nms(ws, e, es, 2, 0.5, keep, 2, &nk));
  CHECK(nk == 2 && keep[0] == 0 && keep[1] == 1);  /* equal scores: index order */
  /* the float IoU is compared in double: 1/3 as float is above 1/3 */
  float t3[8] = {0, 0, 2, 1, 1, 0, 3, 1};
  CHECK_OK(hs_glue_nms(ws, t3, es, 2, 1.0 / 3.0, keep, 2, &nk));
  CHECK(nk == 1 && keep[0] == 0);
  /* NaN scores sort first */
  float ns[3] = {0.5f, NAN, 0.7f};
  CHECK_OK(hs_glue_nms(ws, b, ns, 3, 0.9, keep, 3, &nk));
  CHECK(nk == 3 && keep[0] == 1 && keep[1] == 2 && keep[2] == 0);
  /* invalid arguments */
  CHECK_ERR(hs_glue_nms(ws, b, s, -1, 0.5, keep, 3, &nk), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_nms(ws, NULL, s, 3, 0.5, keep, 3, &nk), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_nms(NULL, b, s, 3, 0.5, keep, 3, &nk), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_nms(ws, b, s, 3, 0.5, keep, -1, &nk), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_nms(ws, b, s, 3, 0.5, keep, 3, NULL), HS_INVALID_ARGUMENT);
  CHECK_OK(hs_glue_nms(ws, NULL, NULL, 0, 0.5, NULL, 0, &nk));
  CHECK(nk == 0);
  hs_glue_workspace_destroy(ws);
}

HS_TEST(nms_matches_reference) {
  hs_glue_workspace *ws = make_ws(1);
  CHECK(ws);
  enum { N = 1500 };
  float *b = malloc(sizeof(float) * N * 4), *s = malloc(sizeof(float) * N);
  int64_t *k1 = malloc(sizeof(int64_t) * N), *k2 = malloc(sizeof(int64_t) * N);
  for (int trial = 0; trial < 60; trial++) {
    int64_t n = rnd() % N;
    random_boxes(b, n, 200, 60);
    for (int64_t i = 0; i < n; i++) s[i] = (trial % 2) ? frand(0, 1) : (float)(rnd() % 4);
    if (trial % 5 == 0 && n > 3) {
      s[1] = NAN;
      b[2 * 4 + 2] = b[2 * 4 + 0] - 3;  /* inverted box */
      b[3 * 4 + 0] = NAN;               /* NaN coordinate */
    }
    double thr = (trial % 3 == 0) ? 0.3 : 0.7;
    int64_t nr = ref_nms(b, s, n, thr, k1), nk = -1;
    CHECK_OK(hs_glue_nms(ws, b, s, n, thr, k2, n, &nk));
    CHECK_MSG(nk == nr, "trial %d: %lld kept vs %lld", trial, (long long)nk, (long long)nr);
    for (int64_t i = 0; i < nk; i++) CHECK_MSG(k1[i] == k2[i], "trial %d pos %lld", trial, (long long)i);
  }
  free(b);
  free(s);
  free(k1);
  free(k2);
  hs_glue_workspace_destroy(ws);
}

HS_TEST(batched_nms_paths) {
  hs_glue_workspace *ws = make_ws(1);
  CHECK(ws);
  /* the same box in two categories: both kept; in one category: one kept */
  float b[8] = {0, 0, 10, 10, 0, 0, 10, 10}, s[2] = {0.5f, 0.6f};
  int64_t idx2[2] = {0, 1}, idx1[2] = {3, 3}, keep[2], nk = 0;
  CHECK_OK(hs_glue_batched_nms(ws, b, s, idx2, 2, 0.5, keep, 2, &nk));
  CHECK(nk == 2 && keep[0] == 1 && keep[1] == 0);
  CHECK_OK(hs_glue_batched_nms(ws, b, s, idx1, 2, 0.5, keep, 2, &nk));
  CHECK(nk == 1 && keep[0] == 1);
  CHECK_ERR(hs_glue_batched_nms(ws, b, s, NULL, 2, 0.5, keep, 2, &nk), HS_INVALID_ARGUMENT);
  /* the per-category path (> 1000 boxes) equals per-category reference NMS
   * merged by score (distinct scores, so the order is defined) */
  enum { N = 2400 };
  float *bb = malloc(sizeof(float) * N * 4), *ss = malloc(sizeof(float) * N);
  float *sb = malloc(sizeof(float) * N * 4), *sc = malloc(sizeof(float) * N);
  int64_t *ix = malloc(sizeof(int64_t) * N), *out = malloc(sizeof(int64_t) * N);
  int64_t *sub = malloc(sizeof(int64_t) * N), *rk = malloc(sizeof(int64_t) * N);
  char *kept = calloc(N, 1);
  random_boxes(bb, N, 300, 80);
  for (int i = 0; i < N; i++) {
    ss[i] = (float)i / N + 0.25f * (float)(i % 3);
    ix[i] = (int64_t)(rnd() % 7) * 1000003;  /* sparse category ids: merge-sort grouping */
  }
  CHECK_OK(hs_glue_batched_nms(ws, bb, ss, ix, N, 0.5, out, N, &nk));
  for (int64_t c = 0; c < 7; c++) {
    int64_t m = 0;
    for (int i = 0; i < N; i++)
      if (ix[i] == c * 1000003) {
        memcpy(sb + m * 4, bb + i * 4, 16);
        sc[m] = ss[i];
        sub[m++] = i;
      }
    int64_t r = ref_nms(sb, sc, m, 0.5, rk);
    for (int64_t k = 0; k < r; k++) kept[sub[rk[k]]] = 1;
  }
  int64_t total = 0;
  for (int i = 0; i < N; i++) total += kept[i];
  CHECK(total == nk);
  for (int64_t k = 0; k < nk; k++) {
    CHECK(kept[out[k]]);
    if (k) CHECK(ss[out[k - 1]] > ss[out[k]]);
  }
  free(bb);
  free(ss);
  free(sb);
  free(sc);
  free(ix);
  free(out);
  free(sub);
  free(rk);
  free(kept);
  hs_glue_workspace_destroy(ws);
}

HS_TEST(topk_selects_largest) {
  enum { N = 3000 };
  hs_glue_qelem *q = malloc(sizeof(*q) * N);
  for (int trial = 0; trial < 20; trial++) {
    int64_t n = 1 + rnd() % N, k = 1 + rnd() % n;
    if (trial % 2) k = 1 + k % 40;
    for (int64_t i = 0; i < n; i++) {
      q[i].v = (float)(rnd() % 50);
      q[i].i = (int32_t)i;
    }
    hs_glue_topk(q, n, k);
    for (int64_t i = 1; i < k; i++) CHECK(q[i - 1].v >= q[i].v);
    /* everything past k is <= the k-th */
    for (int64_t i = k; i < n; i++) CHECK(q[i].v <= q[k - 1].v);
  }
  free(q);
}

HS_TEST(level_mapper) {
  int k_min = 0, k_max = 0;
  CHECK_OK(hs_glue_level_range(0.25, 1.0 / 32, &k_min, &k_max));
  CHECK(k_min == 2 && k_max == 5);
  CHECK_ERR(hs_glue_level_range(0, 0.5, &k_min, &k_max), HS_INVALID_ARGUMENT);
  CHECK(hs_glue_infer_scale(160, 640) == 0.25);
  CHECK(hs_glue_infer_scale(20, 640) == 1.0 / 32);
  float b[6 * 4] = {0, 0, 224, 224, 0, 0, 112, 112, 0, 0, 1000, 1000,
                    0, 0, 0,   0,   5, 5, 1,   9,   0, 0, 448, 448};
  int32_t lv[6];
  CHECK_OK(hs_glue_assign_levels(b, 6, 2, 5, 224, 4, 1e-6, lv));
  CHECK(lv[0] == 2 && lv[1] == 1 && lv[2] == 3 && lv[3] == 0 && lv[4] == -1 && lv[5] == 3);
  CHECK_ERR(hs_glue_assign_levels(b, 6, 5, 2, 224, 4, 1e-6, lv), HS_INVALID_ARGUMENT);
}

/* roi_align reference: torchvision's forward kernel, computing each tap on
 * the fly. */
static void ref_roi_align(const float *f, int64_t C, int64_t H, int64_t W, const float *box,
                          float scale, int64_t PH, int64_t PW, int64_t sr, int aligned,
                          float *out) {
  float off = aligned ? 0.5f : 0.0f;
  float sw = box[0] * scale - off, sh = box[1] * scale - off;
  float ew = box[2] * scale - off, eh = box[3] * scale - off;
  float rw = ew - sw, rh = eh - sh;
  if (!aligned) {
    rw = rw < 1.0f ? 1.0f : rw;
    rh = rh < 1.0f ? 1.0f : rh;
  }
  float bh = rh / (float)PH, bw = rw / (float)PW;
  int64_t gh = sr > 0 ? sr : (int64_t)ceilf(rh / (float)PH);
  int64_t gw = sr > 0 ? sr : (int64_t)ceilf(rw / (float)PW);
  float count = (float)(gh * gw > 1 ? gh * gw : 1);
  for (int64_t c = 0; c < C; c++)
    for (int64_t ph = 0; ph < PH; ph++)
      for (int64_t pw = 0; pw < PW; pw++) {
        float val = 0;
        for (int64_t iy = 0; iy < gh; iy++) {
          float y = sh + (float)ph * bh + ((float)iy + 0.5f) * bh / (float)gh;
          for (int64_t ix = 0; ix < gw; ix++) {
            float x = sw + (float)pw * bw + ((float)ix + 0.5f) * bw / (float)gw;
            float w1 = 0, w2 = 0, w3 = 0, w4 = 0;
            int64_t p1 = 0, p2 = 0, p3 = 0, p4 = 0;
            if (y >= -1.0f && y <= (float)H && x >= -1.0f && x <= (float)W) {
              float yy = y <= 0 ? 0 : y, xx = x <= 0 ? 0 : x;
              int64_t yl = (int64_t)yy, xl = (int64_t)xx, yh, xh;
              if (yl >= H - 1) {
                yh = yl = H - 1;
                yy = (float)yl;
              } else {
                yh = yl + 1;
              }
              if (xl >= W - 1) {
                xh = xl = W - 1;
                xx = (float)xl;
              } else {
                xh = xl + 1;
              }
              float ly = yy - (float)yl, lx = xx - (float)xl, hy = 1.0f - ly, hx = 1.0f - lx;
              w1 = hy * hx;
              w2 = hy * lx;
              w3 = ly * hx;
              w4 = ly * lx;
              p1 = yl * W + xl;
              p2 = yl * W + xh;
              p3 = yh * W + xl;
              p4 = yh * W + xh;
            }
            const float *in = f + c * H * W;
            val += w1 * in[p1] + w2 * in[p2] + w3 * in[p3] + w4 * in[p4];
          }
        }
        out[(c * PH + ph) * PW + pw] = val / count;
      }
}

HS_TEST(roi_align_matches_reference_and_layouts) {
  hs_glue_workspace *ws = make_ws(2);
  CHECK(ws);
  enum { C = 11, H = 9, W = 13, K = 25, PH = 3, PW = 4 };
  float *f = malloc(sizeof(float) * C * H * W), *fh = malloc(sizeof(float) * C * H * W);
  for (int i = 0; i < C * H * W; i++) f[i] = frand(-2, 2);
  CHECK_OK(hs_glue_feature_to_hwc(ws, f, C, H, W, fh, C * H * W));
  CHECK(fh[(2 * W + 3) * C + 5] == f[(5 * H + 2) * W + 3]);
  float boxes[K * 4];
  for (int k = 0; k < K; k++) {
    float x = frand(-10, 60), y = frand(-10, 40);
    boxes[k * 4 + 0] = x;
    boxes[k * 4 + 1] = y;
    boxes[k * 4 + 2] = x + frand(-5, 40);
    boxes[k * 4 + 3] = y + frand(-5, 30);
  }
  int64_t rowlen = C * PH * PW;
  float *o1 = malloc(sizeof(float) * K * rowlen), *o2 = malloc(sizeof(float) * K * rowlen);
  float *ref = malloc(sizeof(float) * rowlen);
  for (int mode = 0; mode < 6; mode++) {
    hs_glue_roi_align_params p = {PH, PW, (mode % 3) - 1 + (mode % 3 == 2), mode >= 3};
    hs_glue_feature fc = {f, C, H, W, HS_GLUE_CHW, 0.25};
    hs_glue_feature fhw = {fh, C, H, W, HS_GLUE_HWC, 0.25};
    CHECK_OK(hs_glue_roi_align(NULL, &fc, boxes, NULL, K, &p, o1, K));
    CHECK_OK(hs_glue_roi_align(ws, &fhw, boxes, NULL, K, &p, o2, K));
    CHECK(memcmp(o1, o2, sizeof(float) * K * rowlen) == 0);
    for (int k = 0; k < K; k++) {
      ref_roi_align(f, C, H, W, boxes + k * 4, 0.25f, PH, PW, p.sampling_ratio, p.aligned, ref);
      int64_t gh = 1;
      if (p.sampling_ratio <= 0) {
        /* our definition for empty/negative adaptive grids: zeros */
        float off = p.aligned ? 0.5f : 0.0f;
        float rh = (boxes[k * 4 + 3] * 0.25f - off) - (boxes[k * 4 + 1] * 0.25f - off);
        float rw = (boxes[k * 4 + 2] * 0.25f - off) - (boxes[k * 4 + 0] * 0.25f - off);
        if (!p.aligned) {
          rh = rh < 1 ? 1 : rh;
          rw = rw < 1 ? 1 : rw;
        }
        gh = (int64_t)ceilf(rh / PH) * (int64_t)ceilf(rw / PW);
        if (ceilf(rh / PH) <= 0 || ceilf(rw / PW) <= 0) gh = 0;
      }
      for (int64_t i = 0; i < rowlen; i++) {
        float want = gh > 0 ? ref[i] : 0.0f;
        CHECK_MSG(o1[k * rowlen + i] == want, "mode %d roi %d elem %lld: %g vs %g", mode, k,
                  (long long)i, o1[k * rowlen + i], want);
      }
    }
  }
  /* rows: ROI i goes to rows[i]; other rows untouched */
  hs_glue_roi_align_params p = {PH, PW, 2, false};
  hs_glue_feature fhw = {fh, C, H, W, HS_GLUE_HWC, 0.25};
  float *big = malloc(sizeof(float) * 6 * rowlen);
  for (int i = 0; i < 6 * rowlen; i++) big[i] = 12345.0f;
  int64_t rows[2] = {4, 1};
  CHECK_OK(hs_glue_roi_align(ws, &fhw, boxes, rows, 2, &p, big, 6));
  CHECK_OK(hs_glue_roi_align(ws, &fhw, boxes, NULL, 2, &p, o1, 2));
  CHECK(memcmp(big + 4 * rowlen, o1, sizeof(float) * rowlen) == 0);
  CHECK(memcmp(big + 1 * rowlen, o1 + rowlen, sizeof(float) * rowlen) == 0);
  for (int r = 0; r < 6; r++) {
    if (r == 4 || r == 1) continue;
    for (int64_t i = 0; i < rowlen; i++) CHECK(big[r * rowlen + i] == 12345.0f);
  }
  /* NaN box: zeros; invalid arguments */
  float nanbox[4] = {NAN, 0, 5, 5};
  CHECK_OK(hs_glue_roi_align(ws, &fhw, nanbox, NULL, 1, &p, o1, 1));
  for (int64_t i = 0; i < rowlen; i++) CHECK(o1[i] == 0.0f);
  int64_t badrows[1] = {6};
  CHECK_ERR(hs_glue_roi_align(ws, &fhw, boxes, badrows, 1, &p, big, 6), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_roi_align(ws, &fhw, boxes, NULL, 3, &p, big, 2), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_roi_align(ws, &fhw, boxes, NULL, -1, &p, big, 2), HS_INVALID_ARGUMENT);
  hs_glue_feature empty = {fh, C, 0, W, HS_GLUE_HWC, 0.25};
  CHECK_ERR(hs_glue_roi_align(ws, &empty, boxes, NULL, 1, &p, big, 2), HS_INVALID_ARGUMENT);
  hs_glue_roi_align_params bad = {0, PW, 2, false};
  CHECK_ERR(hs_glue_roi_align(ws, &fhw, boxes, NULL, 1, &bad, big, 2), HS_INVALID_ARGUMENT);
  hs_glue_roi_align_params adaptive = {PH, PW, 0, false};
  float huge[4] = {0, 0, 1e9f, 1e9f};
  CHECK_ERR(hs_glue_roi_align(ws, &fhw, huge, NULL, 1, &adaptive, big, 2), HS_INVALID_ARGUMENT);
  CHECK_OK(hs_glue_roi_align(ws, &fhw, NULL, NULL, 0, &p, NULL, 0));
  free(big);
  free(f);
  free(fh);
  free(o1);
  free(o2);
  free(ref);
  hs_glue_workspace_destroy(ws);
}

HS_TEST(multiscale_roi_align_levels) {
  enum { C = 3, K = 4 };
  float f0[C * 16 * 16], f1[C * 8 * 8], f2[C * 4 * 4], f3[C * 2 * 2];
  for (int i = 0; i < C * 256; i++) f0[i] = (float)i;
  for (int i = 0; i < C * 64; i++) f1[i] = -(float)i;
  for (int i = 0; i < C * 16; i++) f2[i] = 1000.0f + (float)i;
  for (int i = 0; i < C * 4; i++) f3[i] = 7.0f;
  hs_glue_feature fs[4] = {{f0, C, 16, 16, HS_GLUE_CHW, 0.25},
                           {f1, C, 8, 8, HS_GLUE_CHW, 0.125},
                           {f2, C, 4, 4, HS_GLUE_CHW, 0.0625},
                           {f3, C, 2, 2, HS_GLUE_CHW, 0.03125}};
  float boxes[K * 4] = {0, 0, 20, 20, 0, 0, 224, 224, 0, 0, 60, 0, 10, 10, 5, 15};
  hs_glue_roi_align_params p = {2, 2, 2, false};
  float out[K * C * 4], one[C * 4];
  int32_t lv[K];
  CHECK_OK(hs_glue_multiscale_roi_align(NULL, fs, 4, boxes, K, &p, out, K, lv));
  CHECK(lv[0] == 0 && lv[1] == 2 && lv[2] == 0 && lv[3] == -1);
  CHECK_OK(hs_glue_roi_align(NULL, &fs[2], boxes + 4, NULL, 1, &p, one, 1));
  CHECK(memcmp(out + 1 * C * 4, one, sizeof one) == 0);
  for (int i = 0; i < C * 4; i++) CHECK(out[3 * C * 4 + i] == 0.0f);
  /* scales 1/4, 1/8, 1/32 span four levels but only three maps are given */
  hs_glue_feature gap[3] = {fs[0], fs[1], fs[3]};
  CHECK_ERR(hs_glue_multiscale_roi_align(NULL, gap, 3, boxes, K, &p, out, K, lv),
            HS_INVALID_ARGUMENT);
  hs_glue_feature odd[2] = {fs[0], {f1, C + 1, 4, 4, HS_GLUE_CHW, 0.125}};
  CHECK_ERR(hs_glue_multiscale_roi_align(NULL, odd, 2, boxes, K, &p, out, K, lv),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_multiscale_roi_align(NULL, fs, 4, boxes, K, &p, out, K - 1, lv),
            HS_INVALID_ARGUMENT);
}

HS_TEST(select_rpn_hand_computed) {
  hs_glue_workspace *ws = make_ws(1);
  CHECK(ws);
  /* two levels; level 0: three boxes, two overlapping; level 1: a copy of the
   * top box of level 0 (different level: not suppressed). */
  float obj0[3] = {2.0f, 1.0f, -1.0f}, obj1[1] = {0.5f};
  float b0[12] = {0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30};
  float b1[4] = {0, 0, 10, 10};
  hs_glue_rpn_level lv[2] = {{3, obj0, b0, NULL, NULL}, {1, obj1, b1, NULL, NULL}};
  hs_glue_rpn_params p = hs_glue_default_rpn_params();
  float ob[8 * 4], os[8];
  int64_t n = 0;
  CHECK_OK(hs_glue_select_rpn_proposals(ws, lv, 2, 100, 100, &p, ob, os, 8, &n));
  CHECK(n == 4);  /* IoU(0,1) = 0.68 < 0.7 */
  CHECK_NEAR(os[0], 1.0 / (1.0 + exp(-2.0)), 1e-7);
  CHECK(os[0] > os[1] && os[1] > os[2] && os[2] > os[3]);
  p.nms_thresh = 0.5;
  p.pre_nms_top_n = 2;
  CHECK_OK(hs_glue_select_rpn_proposals(ws, lv, 2, 100, 100, &p, ob, os, 8, &n));
  CHECK(n == 2 && ob[0] == 0 && ob[4] == 0);  /* box 1 suppressed, box 2 cut by top-2 */
  /* lazy decoding gives the same result as decoded boxes */
  float zeros[12] = {0};
  hs_glue_rpn_level lz[2] = {{3, obj0, NULL, zeros, b0}, {1, obj1, NULL, zeros, b1}};
  float ob2[8 * 4], os2[8];
  int64_t n2 = 0;
  CHECK_OK(hs_glue_select_rpn_proposals(ws, lz, 2, 100, 100, &p, ob2, os2, 8, &n2));
  CHECK(n2 == n && memcmp(ob, ob2, sizeof(float) * 4 * (size_t)n) == 0);
  /* out_rows caps the output */
  CHECK_OK(hs_glue_select_rpn_proposals(ws, lv, 2, 100, 100, &p, ob, os, 1, &n));
  CHECK(n == 1);
  /* errors */
  hs_glue_rpn_level bad[1] = {{-1, obj0, b0, NULL, NULL}};
  CHECK_ERR(hs_glue_select_rpn_proposals(ws, bad, 1, 100, 100, &p, ob, os, 8, &n),
            HS_INVALID_ARGUMENT);
  hs_glue_rpn_level nob[1] = {{3, obj0, NULL, NULL, NULL}};
  CHECK_ERR(hs_glue_select_rpn_proposals(ws, nob, 1, 100, 100, &p, ob, os, 8, &n),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_select_rpn_proposals(ws, lv, 2, -1, 100, &p, ob, os, 8, &n),
            HS_INVALID_ARGUMENT);
  CHECK_OK(hs_glue_select_rpn_proposals(ws, NULL, 0, 100, 100, &p, NULL, NULL, 0, &n));
  CHECK(n == 0);
  hs_glue_workspace_destroy(ws);
}

HS_TEST(fast_rcnn_hand_computed) {
  hs_glue_workspace *ws = make_ws(1);
  CHECK(ws);
  /* 2 ROIs, 3 classes; ROI 0 is class 2, ROI 1 class 1; zero deltas keep the
   * proposal box. */
  float logits[6] = {0, 0, 5, 0, 4, 0};
  float deltas[24] = {0};
  float props[8] = {10, 10, 50, 50, 100, 100, 150, 120};
  hs_glue_fast_rcnn_params p = hs_glue_default_fast_rcnn_params();
  float out[10 * 6];
  int64_t n = 0;
  CHECK_OK(hs_glue_fast_rcnn_inference(ws, logits, deltas, props, 2, 3, 200, 200, &p, out, 10,
                                       6, &n));
  CHECK(n == 2);
  double e5 = exp(5.0), s0 = e5 / (e5 + 2);
  CHECK_NEAR(out[4], s0, 1e-6);
  CHECK(out[5] == 2.0f && out[0] == 10 && out[3] == 50);
  CHECK(out[6 + 5] == 1.0f && out[6 + 2] == 150);
  /* bg last: labels shift, the background column is the last one */
  p.bg_first = false;
  float logits2[6] = {5, 0, 0, 0, 0, 4};
  CHECK_OK(hs_glue_fast_rcnn_inference(ws, logits2, deltas, props, 2, 3, 200, 200, &p, out, 10,
                                       5, &n));
  CHECK(n == 1 && out[0] == 10);
  /* errors */
  p = hs_glue_default_fast_rcnn_params();
  CHECK_ERR(hs_glue_fast_rcnn_inference(ws, logits, deltas, props, 2, 3, 200, 200, &p, out, 1,
                                        6, &n),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_fast_rcnn_inference(ws, logits, deltas, props, 2, 3, 200, 200, &p, out, 10,
                                        7, &n),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_fast_rcnn_inference(ws, logits, deltas, props, -2, 3, 200, 200, &p, out, 10,
                                        6, &n),
            HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_glue_fast_rcnn_inference(ws, logits, deltas, props, 2, 300, 200, 200, &p, out,
                                        10, 6, &n),
            HS_RESOURCE_EXHAUSTED);
  CHECK_OK(hs_glue_fast_rcnn_inference(ws, NULL, NULL, NULL, 0, 91, 200, 200, &p, NULL, 0, 6,
                                       &n));
  CHECK(n == 0);
  hs_glue_workspace_destroy(ws);
}

HS_TEST(threads_do_not_change_results) {
  hs_glue_workspace *w1 = make_ws(1), *w3 = make_ws(3);
  CHECK(w1 && w3);
  enum { C = 32, H = 20, W = 24, K = 97 };
  float *f = malloc(sizeof(float) * C * H * W), *fh = malloc(sizeof(float) * C * H * W);
  for (int i = 0; i < C * H * W; i++) f[i] = frand(-1, 1);
  CHECK_OK(hs_glue_feature_to_hwc(w3, f, C, H, W, fh, C * H * W));
  float boxes[K * 4];
  random_boxes(boxes, K, 80, 40);
  hs_glue_feature fhw = {fh, C, H, W, HS_GLUE_HWC, 0.25};
  hs_glue_roi_align_params p = {7, 7, 0, false};
  size_t sz = sizeof(float) * K * C * 49;
  float *a = malloc(sz), *b = malloc(sz);
  CHECK_OK(hs_glue_roi_align(w1, &fhw, boxes, NULL, K, &p, a, K));
  CHECK_OK(hs_glue_roi_align(w3, &fhw, boxes, NULL, K, &p, b, K));
  CHECK(memcmp(a, b, sz) == 0);
  free(f);
  free(fh);
  free(a);
  free(b);
  hs_glue_workspace_destroy(w1);
  hs_glue_workspace_destroy(w3);
}

int main(void) {
  HS_RUN(workspace_config);
  HS_RUN(cell_anchors_torchvision_values);
  HS_RUN(generate_anchors_order);
  HS_RUN(flatten_layouts);
  HS_RUN(decode_hand_computed);
  HS_RUN(clip_and_remove_small);
  HS_RUN(nms_hand_computed);
  HS_RUN(nms_matches_reference);
  HS_RUN(batched_nms_paths);
  HS_RUN(topk_selects_largest);
  HS_RUN(level_mapper);
  HS_RUN(roi_align_matches_reference_and_layouts);
  HS_RUN(multiscale_roi_align_levels);
  HS_RUN(select_rpn_hand_computed);
  HS_RUN(fast_rcnn_hand_computed);
  HS_RUN(threads_do_not_change_results);
  return hs_test_summary();
}
