/*
 * boxes.c - anchors, layout helpers and the elementwise box ops
 * (decode, clip, remove_small_boxes, LevelMapper).
 *
 * These are the cheap parts; what matters is that each produces the very
 * bits torchvision's tensor code produces.  torchvision computes them as a
 * chain of eager float32 tensor ops, each rounding once, so each line below
 * is one of those ops in the same order (see glue_internal.h for decode).
 * Python scalars inside those ops (weights, clip, thresholds) are cast to
 * float32 by ATen before use, and so are they here.
 */
#include "glue_internal.h"

#include <float.h>

static hs_status *check_rows(const char *fn, const char *what, int64_t need, int64_t have) {
  if (have < need)
    return HS_GLUE_INVALID("%s: %s holds %lld rows but %lld are needed", fn, what,
                           (long long)have, (long long)need);
  return NULL;
}

/* a*b*c without overflow past int64 (all >= 0); -1 when it overflows. */
static int64_t mul3(int64_t a, int64_t b, int64_t c) {
  const int64_t lim = INT64_MAX / 16;
  if (a != 0 && b > lim / a) return -1;
  int64_t ab = a * b;
  if (ab != 0 && c > lim / ab) return -1;
  return ab * c;
}

hs_status *hs_glue_cell_anchors(const float *scales, int64_t num_scales,
                                const float *aspect_ratios, int64_t num_ratios, float *out,
                                int64_t out_rows) {
  if (num_scales < 0 || num_ratios < 0)
    return HS_GLUE_INVALID("cell_anchors: negative count (%lld scales, %lld ratios)",
                           (long long)num_scales, (long long)num_ratios);
  if (num_scales > (1 << 20) || num_ratios > (1 << 20))
    return HS_GLUE_INVALID("cell_anchors: too many scales or ratios");
  int64_t rows = num_scales * num_ratios;
  if (rows > 0 && (!scales || !aspect_ratios || !out))
    return HS_GLUE_INVALID("cell_anchors: NULL array");
  HS_RETURN_IF_ERROR(check_rows("cell_anchors", "out", rows, out_rows));
  for (int64_t r = 0; r < num_ratios; r++) {
    float h_ratio = sqrtf(aspect_ratios[r]);
    float w_ratio = 1.0f / h_ratio;
    for (int64_t s = 0; s < num_scales; s++) {
      float ws = w_ratio * scales[s];
      float hs = h_ratio * scales[s];
      float *o = out + (r * num_scales + s) * 4;
      /* stack([-ws, -hs, ws, hs]) / 2, then round half to even */
      o[0] = rintf(-ws / 2.0f);
      o[1] = rintf(-hs / 2.0f);
      o[2] = rintf(ws / 2.0f);
      o[3] = rintf(hs / 2.0f);
    }
  }
  return NULL;
}

hs_status *hs_glue_generate_anchors(const float *cell_anchors, int64_t num_cell_anchors,
                                    int64_t grid_h, int64_t grid_w, int64_t stride_h,
                                    int64_t stride_w, float *out, int64_t out_rows) {
  if (num_cell_anchors < 0 || grid_h < 0 || grid_w < 0)
    return HS_GLUE_INVALID("generate_anchors: negative size (anchors %lld, grid %lldx%lld)",
                           (long long)num_cell_anchors, (long long)grid_h, (long long)grid_w);
  if (stride_h < 0 || stride_w < 0 || stride_h > (1 << 24) || stride_w > (1 << 24))
    return HS_GLUE_INVALID("generate_anchors: stride %lldx%lld out of range",
                           (long long)stride_h, (long long)stride_w);
  int64_t rows = mul3(grid_h, grid_w, num_cell_anchors);
  if (rows < 0) return HS_GLUE_INVALID("generate_anchors: size overflows");
  HS_RETURN_IF_ERROR(check_rows("generate_anchors", "out", rows, out_rows));
  if (rows == 0) return NULL;
  if (!cell_anchors || !out) return HS_GLUE_INVALID("generate_anchors: NULL array");
  const int64_t A = num_cell_anchors;
  float *o = out;
  for (int64_t y = 0; y < grid_h; y++) {
    float sy = (float)(y * stride_h);
    for (int64_t x = 0; x < grid_w; x++) {
      float sx = (float)(x * stride_w);
      for (int64_t a = 0; a < A; a++) {
        const float *c = cell_anchors + a * 4;
        o[0] = sx + c[0];
        o[1] = sy + c[1];
        o[2] = sx + c[2];
        o[3] = sy + c[3];
        o += 4;
      }
    }
  }
  return NULL;
}

hs_status *hs_glue_flatten_objectness(const float *objectness, int64_t A, int64_t H, int64_t W,
                                      float *out, int64_t out_len) {
  if (A < 0 || H < 0 || W < 0)
    return HS_GLUE_INVALID("flatten_objectness: negative shape [1, %lld, %lld, %lld]",
                           (long long)A, (long long)H, (long long)W);
  int64_t n = mul3(A, H, W);
  if (n < 0) return HS_GLUE_INVALID("flatten_objectness: size overflows");
  if (out_len < n)
    return HS_GLUE_INVALID("flatten_objectness: out holds %lld values but %lld are needed",
                           (long long)out_len, (long long)n);
  if (n == 0) return NULL;
  if (!objectness || !out) return HS_GLUE_INVALID("flatten_objectness: NULL array");
  const int64_t hw = H * W;
  for (int64_t a = 0; a < A; a++) {
    const float *src = objectness + a * hw;
    for (int64_t p = 0; p < hw; p++) out[p * A + a] = src[p];
  }
  return NULL;
}

hs_status *hs_glue_flatten_deltas(const float *deltas, int64_t A, int64_t H, int64_t W,
                                  float *out, int64_t out_rows) {
  if (A < 0 || H < 0 || W < 0)
    return HS_GLUE_INVALID("flatten_deltas: negative shape [1, %lld*4, %lld, %lld]",
                           (long long)A, (long long)H, (long long)W);
  int64_t n = mul3(A, H, W);
  if (n < 0) return HS_GLUE_INVALID("flatten_deltas: size overflows");
  HS_RETURN_IF_ERROR(check_rows("flatten_deltas", "out", n, out_rows));
  if (n == 0) return NULL;
  if (!deltas || !out) return HS_GLUE_INVALID("flatten_deltas: NULL array");
  const int64_t hw = H * W;
  for (int64_t a = 0; a < A; a++) {
    for (int64_t c = 0; c < 4; c++) {
      const float *src = deltas + (a * 4 + c) * hw;
      float *dst = out + a * 4 + c;
      for (int64_t p = 0; p < hw; p++) dst[p * A * 4] = src[p];
    }
  }
  return NULL;
}

hs_status *hs_glue_decode_boxes(const float *deltas, const float *boxes, int64_t n, int64_t k,
                                const float weights[4], double clip, float *out,
                                int64_t out_rows) {
  if (n < 0 || k < 0)
    return HS_GLUE_INVALID("decode_boxes: negative size (n %lld, k %lld)", (long long)n,
                           (long long)k);
  HS_RETURN_IF_ERROR(check_rows("decode_boxes", "out", n, out_rows));
  if (n == 0 || k == 0) return NULL;
  if (!deltas || !boxes || !out || !weights) return HS_GLUE_INVALID("decode_boxes: NULL array");
  if (k > INT64_MAX / 4 / n) return HS_GLUE_INVALID("decode_boxes: size overflows");
  const float wx = weights[0], wy = weights[1], ww = weights[2], wh = weights[3];
  const float c = hs_glue_f32(clip);
  for (int64_t i = 0; i < n; i++) {
    const float *b = boxes + i * 4;
    float x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3];
    for (int64_t j = 0; j < k; j++) {
      const float *d = deltas + (i * k + j) * 4;
      float *o = out + (i * k + j) * 4;
      hs_glue_decode_one(d, x1, y1, x2, y2, wx, wy, ww, wh, c, o);
    }
  }
  return NULL;
}

hs_status *hs_glue_clip_boxes(float *boxes, int64_t n, int64_t height, int64_t width) {
  if (n < 0) return HS_GLUE_INVALID("clip_boxes: negative count %lld", (long long)n);
  if (height < 0 || width < 0)
    return HS_GLUE_INVALID("clip_boxes: negative image size %lldx%lld", (long long)height,
                           (long long)width);
  if (n == 0) return NULL;
  if (!boxes) return HS_GLUE_INVALID("clip_boxes: boxes is NULL");
  const float h = (float)height, w = (float)width;
  for (int64_t i = 0; i < n; i++) {
    float *b = boxes + i * 4;
    b[0] = hs_glue_clamp0(b[0], w);
    b[1] = hs_glue_clamp0(b[1], h);
    b[2] = hs_glue_clamp0(b[2], w);
    b[3] = hs_glue_clamp0(b[3], h);
  }
  return NULL;
}

hs_status *hs_glue_remove_small_boxes(const float *boxes, int64_t n, double min_size,
                                      int64_t *keep, int64_t keep_cap, int64_t *num_kept) {
  if (!num_kept) return HS_GLUE_INVALID("remove_small_boxes: num_kept is NULL");
  *num_kept = 0;
  if (n < 0) return HS_GLUE_INVALID("remove_small_boxes: negative count %lld", (long long)n);
  if (keep_cap < n)
    return HS_GLUE_INVALID("remove_small_boxes: keep holds %lld but %lld may be kept",
                           (long long)keep_cap, (long long)n);
  if (n == 0) return NULL;
  if (!boxes || !keep) return HS_GLUE_INVALID("remove_small_boxes: NULL array");
  const float m = hs_glue_f32(min_size);
  int64_t cnt = 0;
  for (int64_t i = 0; i < n; i++) {
    const float *b = boxes + i * 4;
    float ws = b[2] - b[0], hs = b[3] - b[1];
    if (ws >= m && hs >= m) keep[cnt++] = i;
  }
  *num_kept = cnt;
  return NULL;
}

double hs_glue_infer_scale(int64_t feature_size, int64_t image_size) {
  if (feature_size <= 0 || image_size <= 0) return NAN;
  float approx = (float)((double)feature_size / (double)image_size);
  float e = rintf(log2f(approx));
  return pow(2.0, (double)e);
}

hs_status *hs_glue_level_range(double first_scale, double last_scale, int *k_min, int *k_max) {
  if (!k_min || !k_max) return HS_GLUE_INVALID("level_range: NULL output");
  float a = (float)first_scale, b = (float)last_scale;
  if (!(a > 0.0f) || !(b > 0.0f) || isinf(a) || isinf(b))
    return HS_GLUE_INVALID("level_range: scales must be positive and finite (got %g, %g)",
                           first_scale, last_scale);
  float la = -log2f(a), lb = -log2f(b);
  if (fabsf(la) > 1000.0f || fabsf(lb) > 1000.0f)
    return HS_GLUE_INVALID("level_range: scales out of range");
  *k_min = (int)la;  /* Python int(): truncation */
  *k_max = (int)lb;
  return NULL;
}

hs_status *hs_glue_assign_levels(const float *boxes, int64_t n, int k_min, int k_max,
                                 double canonical_scale, int canonical_level, double eps,
                                 int32_t *levels) {
  if (n < 0) return HS_GLUE_INVALID("assign_levels: negative count %lld", (long long)n);
  if (k_max < k_min || k_min < -1000 || k_max > 1000)
    return HS_GLUE_INVALID("assign_levels: bad level range [%d, %d]", k_min, k_max);
  if (n == 0) return NULL;
  if (!boxes || !levels) return HS_GLUE_INVALID("assign_levels: NULL array");
  const float lvl0 = (float)canonical_level, s0 = hs_glue_f32(canonical_scale);
  const float e = hs_glue_f32(eps), kmin = (float)k_min, kmax = (float)k_max;
  for (int64_t i = 0; i < n; i++) levels[i] = hs_glue_level_of(boxes + i * 4, lvl0, s0, e, kmin, kmax, k_min);
  return NULL;
}
