/*
 * roi_align.c - torchvision.ops.roi_align and MultiScaleRoIAlign, bit for bit.
 *
 * torchvision's CPU kernel, per ROI: derive the bin geometry in float32,
 * precompute for every sampling point its four bilinear taps (positions and
 * weights, with its boundary rules), then for every channel and bin sum the
 * samples in (iy, ix) order as  val += w1*v1 + w2*v2 + w3*v3 + w4*v4  and
 * divide by the sample count.  We compute the same taps with the same float
 * expressions and accumulate in the same order, so each output is the
 * identical float; what we change is only how the work is laid out:
 *
 *  - HWC features (hs_glue_feature_to_hwc): the four taps of a sample are
 *    four contiguous channel vectors, so a bin is accumulated 8 channels at
 *    a time with vector extensions (AVX2 clone on x86) - the per-channel
 *    arithmetic is unchanged, only done in lanes;
 *  - CHW features: torchvision's loop order (channel outer), for callers
 *    with few ROIs where a transpose would not pay;
 *  - ROIs are spread over the workspace's threads; each ROI writes only its
 *    own output row, so the result does not depend on the thread count.
 *
 * Rules kept from torchvision: aligned=false forces ROIs to at least 1x1
 * (the "malformed ROI" clamp) and uses no half-pixel offset; a sample outside
 * [-1, H] x [-1, W] (or NaN) contributes 0 * the first pixel; coordinates in
 * [-1, 0] clamp to 0; a sample at or past the last row/column uses that
 * row/column; count = max(grid_h * grid_w, 1).  Where torchvision is
 * undefined we define: a non-positive or NaN adaptive grid gives a zero ROI,
 * an adaptive grid over HS_GLUE_MAX_SAMPLING_GRID (or an infinite one) is an
 * error.
 */
#include "glue_internal.h"

#include <stdlib.h>

typedef float v8f __attribute__((vector_size(32)));
typedef float v8f_u __attribute__((vector_size(32), aligned(4), may_alias));

/* One sampling point: torchvision's PreCalc. */
typedef struct tap {
  int32_t p1, p2, p3, p4;  /* y*W + x; check_feature keeps H*W < 2^31 */
  float w1, w2, w3, w4;
} tap;

typedef struct geom {
  float start_h, start_w, bin_h, bin_w;
  int64_t grid_h, grid_w;
  float count;
  int zero;  /* no samples: the output is 0 */
} geom;

/* Samples of one ROI precomputed at once when there are at most this many. */
#define TAP_BUDGET 1024

/* The ROI's bin geometry; returns 0, or -1 when the adaptive grid is too big
 * (or infinite). */
static int roi_geom(const float *box, float scale, const hs_glue_roi_align_params *p, geom *g) {
  const float offset = p->aligned ? 0.5f : 0.0f;
  float start_w = box[0] * scale - offset;
  float start_h = box[1] * scale - offset;
  float end_w = box[2] * scale - offset;
  float end_h = box[3] * scale - offset;
  float roi_w = end_w - start_w;
  float roi_h = end_h - start_h;
  if (!p->aligned) {
    roi_w = (roi_w < 1.0f) ? 1.0f : roi_w;  /* std::max(roi_w, 1): NaN stays */
    roi_h = (roi_h < 1.0f) ? 1.0f : roi_h;
  }
  const float ph = (float)p->pooled_height, pw = (float)p->pooled_width;
  g->start_h = start_h;
  g->start_w = start_w;
  g->bin_h = roi_h / ph;
  g->bin_w = roi_w / pw;
  g->zero = 0;
  if (p->sampling_ratio > 0) {
    g->grid_h = g->grid_w = p->sampling_ratio;
  } else {
    float gh = ceilf(roi_h / ph), gw = ceilf(roi_w / pw);
    if (gh != gh || gw != gw) {
      g->zero = 1;
      g->grid_h = g->grid_w = 0;
    } else {
      if (gh > (float)HS_GLUE_MAX_SAMPLING_GRID || gw > (float)HS_GLUE_MAX_SAMPLING_GRID)
        return -1;
      g->grid_h = gh < 0.0f ? 0 : (int64_t)gh;
      g->grid_w = gw < 0.0f ? 0 : (int64_t)gw;
    }
  }
  int64_t cnt = g->grid_h * g->grid_w;
  if (cnt <= 0) g->zero = 1;
  g->count = (float)(cnt > 1 ? cnt : 1);
  return 0;
}

/* torchvision's pre_calc_for_bilinear_interpolate for one sample point. */
static inline void make_tap(const geom *g, int64_t H, int64_t W, int64_t ph, int64_t pw,
                            int64_t iy, int64_t ix, tap *t) {
  const float yy = (g->start_h + (float)ph * g->bin_h) +
                   ((float)iy + 0.5f) * g->bin_h / (float)g->grid_h;
  const float xx = (g->start_w + (float)pw * g->bin_w) +
                   ((float)ix + 0.5f) * g->bin_w / (float)g->grid_w;
  float y = yy, x = xx;
  if (!(y >= -1.0f && y <= (float)H && x >= -1.0f && x <= (float)W)) {
    t->p1 = t->p2 = t->p3 = t->p4 = 0;
    t->w1 = t->w2 = t->w3 = t->w4 = 0.0f;
    return;
  }
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t y_low = (int64_t)y, x_low = (int64_t)x, y_high, x_high;
  if (y_low >= H - 1) {
    y_high = y_low = H - 1;
    y = (float)y_low;
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= W - 1) {
    x_high = x_low = W - 1;
    x = (float)x_low;
  } else {
    x_high = x_low + 1;
  }
  float ly = y - (float)y_low;
  float lx = x - (float)x_low;
  float hy = 1.0f - ly, hx = 1.0f - lx;
  t->w1 = hy * hx;
  t->w2 = hy * lx;
  t->w3 = ly * hx;
  t->w4 = ly * lx;
  t->p1 = (int32_t)(y_low * W + x_low);
  t->p2 = (int32_t)(y_low * W + x_high);
  t->p3 = (int32_t)(y_high * W + x_low);
  t->p4 = (int32_t)(y_high * W + x_high);
}

typedef struct pool_args {
  const hs_glue_feature *f;
  const hs_glue_roi_align_params *p;
  float *row;  /* [C, PH, PW] */
} pool_args;

/* CHW: torchvision's loop order. */
static void pool_chw(const pool_args *a, const geom *g, tap *taps) {
  const hs_glue_feature *f = a->f;
  const int64_t C = f->channels, H = f->height, W = f->width;
  const int64_t PH = a->p->pooled_height, PW = a->p->pooled_width;
  const int64_t gh = g->grid_h, gw = g->grid_w, per_bin = gh * gw;
  const int64_t nt = PH * PW * per_bin;
  const int pre = nt <= TAP_BUDGET;
  if (pre) {
    int64_t k = 0;
    for (int64_t ph = 0; ph < PH; ph++)
      for (int64_t pw = 0; pw < PW; pw++)
        for (int64_t iy = 0; iy < gh; iy++)
          for (int64_t ix = 0; ix < gw; ix++) make_tap(g, H, W, ph, pw, iy, ix, &taps[k++]);
  }
  for (int64_t c = 0; c < C; c++) {
    const float *in = f->data + c * H * W;
    float *o = a->row + c * PH * PW;
    if (pre) {
      const tap *t = taps;
      for (int64_t b = 0; b < PH * PW; b++) {
        float val = 0.0f;
        for (int64_t s = 0; s < per_bin; s++, t++)
          val += t->w1 * in[t->p1] + t->w2 * in[t->p2] + t->w3 * in[t->p3] + t->w4 * in[t->p4];
        o[b] = val / g->count;
      }
      continue;
    }
    for (int64_t ph = 0; ph < PH; ph++) {
      for (int64_t pw = 0; pw < PW; pw++) {
        float val = 0.0f;
        for (int64_t iy = 0; iy < gh; iy++) {
          for (int64_t ix = 0; ix < gw; ix++) {
            tap t;
            make_tap(g, H, W, ph, pw, iy, ix, &t);
            val += t.w1 * in[t.p1] + t.w2 * in[t.p2] + t.w3 * in[t.p3] + t.w4 * in[t.p4];
          }
        }
        o[ph * PW + pw] = val / g->count;
      }
    }
  }
}

/* HWC: one bin, channels [c0, c0 + 8*nv) in vector lanes. */
HS_GLUE_HOT
static void bin_hwc_vec(const float *data, int64_t C, const tap *t, int64_t ns, float count,
                        int64_t c0, int64_t nv, float *o, int64_t ostride) {
  for (int64_t v = 0; v < nv; v++) {
    int64_t c = c0 + v * 8;
    v8f acc = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t s = 0; s < ns; s++) {
      const tap *q = &t[s];
      v8f a1 = *(const v8f_u *)(data + (int64_t)q->p1 * C + c);
      v8f a2 = *(const v8f_u *)(data + (int64_t)q->p2 * C + c);
      v8f a3 = *(const v8f_u *)(data + (int64_t)q->p3 * C + c);
      v8f a4 = *(const v8f_u *)(data + (int64_t)q->p4 * C + c);
      acc = acc + (((q->w1 * a1 + q->w2 * a2) + q->w3 * a3) + q->w4 * a4);
    }
    acc = acc / count;
    for (int l = 0; l < 8; l++) o[(c + l) * ostride] = acc[l];
  }
}

static void bin_hwc_scalar(const float *data, int64_t C, const tap *t, int64_t ns, float count,
                           int64_t c0, int64_t c1, float *o, int64_t ostride) {
  for (int64_t c = c0; c < c1; c++) {
    float val = 0.0f;
    for (int64_t s = 0; s < ns; s++) {
      const tap *q = &t[s];
      val += q->w1 * data[(int64_t)q->p1 * C + c] + q->w2 * data[(int64_t)q->p2 * C + c] +
             q->w3 * data[(int64_t)q->p3 * C + c] + q->w4 * data[(int64_t)q->p4 * C + c];
    }
    o[c * ostride] = val / count;
  }
}

static void pool_hwc(const pool_args *a, const geom *g, tap *taps) {
  const hs_glue_feature *f = a->f;
  const int64_t C = f->channels, H = f->height, W = f->width;
  const int64_t PH = a->p->pooled_height, PW = a->p->pooled_width;
  const int64_t gh = g->grid_h, gw = g->grid_w, per_bin = gh * gw;
  const int64_t nv = C / 8;
  for (int64_t ph = 0; ph < PH; ph++) {
    for (int64_t pw = 0; pw < PW; pw++) {
      float *o = a->row + ph * PW + pw;
      /* A bin's samples in chunks of TAP_BUDGET, accumulated in order: the
       * partial sum of a chunk continues from the previous one, so a large
       * grid gives the same result as one pass. */
      if (per_bin <= TAP_BUDGET) {
        int64_t k = 0;
        for (int64_t iy = 0; iy < gh; iy++)
          for (int64_t ix = 0; ix < gw; ix++) make_tap(g, H, W, ph, pw, iy, ix, &taps[k++]);
        bin_hwc_vec(f->data, C, taps, per_bin, g->count, 0, nv, o, PH * PW);
        bin_hwc_scalar(f->data, C, taps, per_bin, g->count, nv * 8, C, o, PH * PW);
      } else {
        for (int64_t c = 0; c < C; c++) {
          float val = 0.0f;
          for (int64_t iy = 0; iy < gh; iy++) {
            for (int64_t ix = 0; ix < gw; ix++) {
              tap t;
              make_tap(g, H, W, ph, pw, iy, ix, &t);
              val += t.w1 * f->data[(int64_t)t.p1 * C + c] +
                     t.w2 * f->data[(int64_t)t.p2 * C + c] +
                     t.w3 * f->data[(int64_t)t.p3 * C + c] + t.w4 * f->data[(int64_t)t.p4 * C + c];
            }
          }
          o[c * PH * PW] = val / g->count;
        }
      }
    }
  }
}

static void pool_one(const hs_glue_feature *f, const hs_glue_roi_align_params *p,
                     const float *box, float *row, tap *taps) {
  geom g;
  const int64_t rowlen = f->channels * p->pooled_height * p->pooled_width;
  float scale = hs_glue_f32(f->spatial_scale);
  if (roi_geom(box, scale, p, &g) != 0 || g.zero) {
    memset(row, 0, (size_t)rowlen * sizeof(float));
    return;
  }
  pool_args a = {f, p, row};
  if (f->layout == HS_GLUE_HWC)
    pool_hwc(&a, &g, taps);
  else
    pool_chw(&a, &g, taps);
}

/* ---------------------------------------------------------------------- */
/* Argument checks                                                         */

static hs_status *check_params(const char *fn, const hs_glue_roi_align_params *p) {
  if (!p) return HS_GLUE_INVALID("%s: params is NULL", fn);
  if (p->pooled_height <= 0 || p->pooled_width <= 0 || p->pooled_height > 4096 ||
      p->pooled_width > 4096)
    return HS_GLUE_INVALID("%s: pooled size %lldx%lld out of range [1, 4096]", fn,
                           (long long)p->pooled_height, (long long)p->pooled_width);
  if (p->sampling_ratio > HS_GLUE_MAX_SAMPLING_GRID)
    return HS_GLUE_INVALID("%s: sampling_ratio %lld is more than %d", fn,
                           (long long)p->sampling_ratio, HS_GLUE_MAX_SAMPLING_GRID);
  return NULL;
}

static hs_status *check_feature(const char *fn, int level, const hs_glue_feature *f) {
  if (f->channels < 0 || f->height < 0 || f->width < 0)
    return HS_GLUE_INVALID("%s: feature %d has a negative shape [%lld, %lld, %lld]", fn, level,
                           (long long)f->channels, (long long)f->height, (long long)f->width);
  if (f->height == 0 || f->width == 0)
    return HS_GLUE_INVALID("%s: feature %d is empty (%lldx%lld)", fn, level,
                           (long long)f->height, (long long)f->width);
  if (f->height > (1 << 20) || f->width > (1 << 20) || f->channels > (1 << 20) ||
      f->height * f->width >= ((int64_t)1 << 31) ||
      f->height * f->width > ((int64_t)1 << 40) / (f->channels > 0 ? f->channels : 1))
    return HS_GLUE_INVALID("%s: feature %d is too large", fn, level);
  if (f->layout != HS_GLUE_CHW && f->layout != HS_GLUE_HWC)
    return HS_GLUE_INVALID("%s: feature %d has an unknown layout %d", fn, level, (int)f->layout);
  if (f->channels > 0 && !f->data) return HS_GLUE_INVALID("%s: feature %d data is NULL", fn, level);
  float s = hs_glue_f32(f->spatial_scale);
  if (!(s > 0.0f) || isinf(s))
    return HS_GLUE_INVALID("%s: feature %d spatial_scale %g must be positive and finite", fn,
                           level, f->spatial_scale);
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* The parallel drivers                                                    */

typedef struct job {
  const hs_glue_feature *features;
  int num_levels;
  int k_min, k_max;
  const float *boxes;
  const int64_t *rows;
  const hs_glue_roi_align_params *p;
  float *out;
  int64_t rowlen;
  int32_t *levels_out;
  int multiscale;
} job;

static void run_rois(void *ctx, int64_t begin, int64_t end) {
  const job *j = ctx;
  tap taps[TAP_BUDGET];
  for (int64_t i = begin; i < end; i++) {
    const float *box = j->boxes + i * 4;
    int64_t row = j->rows ? j->rows[i] : i;
    float *dst = j->out + row * j->rowlen;
    int level = 0;
    if (j->multiscale && j->num_levels > 1) {
      level = hs_glue_level_of(box, 4.0f, 224.0f, 1e-6f, (float)j->k_min, (float)j->k_max,
                               j->k_min);
    }
    if (j->levels_out) j->levels_out[i] = level;
    if (level < 0 || level >= j->num_levels) {
      memset(dst, 0, (size_t)j->rowlen * sizeof(float));
      continue;
    }
    pool_one(&j->features[level], j->p, box, dst, taps);
  }
}

/* Rejects ROIs whose adaptive grid would be too large, before any output is
 * written. */
static hs_status *check_grids(const char *fn, const job *j, int64_t n) {
  if (j->p->sampling_ratio > 0) return NULL;
  for (int64_t i = 0; i < n; i++) {
    const float *box = j->boxes + i * 4;
    int32_t level = 0;
    if (j->multiscale && j->num_levels > 1)
      level = hs_glue_level_of(box, 4.0f, 224.0f, 1e-6f, (float)j->k_min, (float)j->k_max,
                               j->k_min);
    if (level < 0 || level >= j->num_levels) continue;
    geom g;
    if (roi_geom(box, hs_glue_f32(j->features[level].spatial_scale), j->p, &g) != 0)
      return HS_GLUE_INVALID(
          "%s: ROI %lld [%g, %g, %g, %g] needs an adaptive sampling grid over %d per axis", fn,
          (long long)i, box[0], box[1], box[2], box[3], HS_GLUE_MAX_SAMPLING_GRID);
  }
  return NULL;
}

hs_status *hs_glue_roi_align(hs_glue_workspace *ws, const hs_glue_feature *feature,
                             const float *boxes, const int64_t *rows, int64_t n,
                             const hs_glue_roi_align_params *params, float *out,
                             int64_t out_rows) {
  const char *fn = "roi_align";
  if (!feature) return HS_GLUE_INVALID("%s: feature is NULL", fn);
  HS_RETURN_IF_ERROR(check_params(fn, params));
  if (n < 0) return HS_GLUE_INVALID("%s: negative ROI count %lld", fn, (long long)n);
  if (out_rows < 0) return HS_GLUE_INVALID("%s: negative out_rows %lld", fn, (long long)out_rows);
  if (n == 0) return NULL;
  HS_RETURN_IF_ERROR(check_feature(fn, 0, feature));
  if (!boxes || !out) return HS_GLUE_INVALID("%s: boxes or out is NULL", fn);
  if (!rows && out_rows < n)
    return HS_GLUE_INVALID("%s: out holds %lld rows but there are %lld ROIs", fn,
                           (long long)out_rows, (long long)n);
  if (rows)
    for (int64_t i = 0; i < n; i++)
      if (rows[i] < 0 || rows[i] >= out_rows)
        return HS_GLUE_INVALID("%s: rows[%lld] = %lld is outside out's %lld rows", fn,
                               (long long)i, (long long)rows[i], (long long)out_rows);
  job j = {feature, 1, 0, 0, boxes, rows, params, out,
           feature->channels * params->pooled_height * params->pooled_width, NULL, 0};
  HS_RETURN_IF_ERROR(check_grids(fn, &j, n));
  hs_glue_parallel_for(ws, n, 4, run_rois, &j);
  return NULL;
}

hs_status *hs_glue_multiscale_roi_align(hs_glue_workspace *ws, const hs_glue_feature *features,
                                        int num_levels, const float *boxes, int64_t n,
                                        const hs_glue_roi_align_params *params, float *out,
                                        int64_t out_rows, int32_t *levels_out) {
  const char *fn = "multiscale_roi_align";
  HS_RETURN_IF_ERROR(check_params(fn, params));
  if (num_levels <= 0 || num_levels > 64)
    return HS_GLUE_INVALID("%s: num_levels %d out of range [1, 64]", fn, num_levels);
  if (!features) return HS_GLUE_INVALID("%s: features is NULL", fn);
  if (n < 0) return HS_GLUE_INVALID("%s: negative ROI count %lld", fn, (long long)n);
  if (out_rows < n)
    return HS_GLUE_INVALID("%s: out holds %lld rows but there are %lld ROIs", fn,
                           (long long)out_rows, (long long)n);
  for (int l = 0; l < num_levels; l++) {
    HS_RETURN_IF_ERROR(check_feature(fn, l, &features[l]));
    if (features[l].channels != features[0].channels)
      return HS_GLUE_INVALID("%s: feature %d has %lld channels, feature 0 has %lld", fn, l,
                             (long long)features[l].channels, (long long)features[0].channels);
  }
  if (n == 0) return NULL;
  if (!boxes || !out) return HS_GLUE_INVALID("%s: boxes or out is NULL", fn);
  int k_min = 0, k_max = 0;
  HS_RETURN_IF_ERROR(hs_glue_level_range(features[0].spatial_scale,
                                         features[num_levels - 1].spatial_scale, &k_min, &k_max));
  /* torchvision's MultiScaleRoIAlign maps boxes to levels 0..k_max-k_min; when
   * several maps share a scale (mobilenet_v3_large_320_fpn: two 10x10 maps)
   * every box goes to the first of them.  More levels than maps is an error. */
  if (num_levels > 1 && k_max - k_min + 1 > num_levels)
    return HS_GLUE_INVALID("%s: scales give levels %d..%d for %d feature maps", fn, k_min, k_max,
                           num_levels);
  job j = {features, num_levels, k_min, k_max, boxes, NULL, params, out,
           features[0].channels * params->pooled_height * params->pooled_width, levels_out, 1};
  HS_RETURN_IF_ERROR(check_grids(fn, &j, n));
  hs_glue_parallel_for(ws, n, 4, run_rois, &j);
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* CHW -> HWC                                                              */

typedef struct transpose_job {
  const float *src;
  float *dst;
  int64_t C, HW;
} transpose_job;

/* Rows [begin, end) of the HW axis, in 32x32 tiles. */
HS_GLUE_HOT
static void transpose_rows(void *ctx, int64_t begin, int64_t end) {
  const transpose_job *t = ctx;
  const int64_t C = t->C, HW = t->HW;
  for (int64_t p0 = begin; p0 < end; p0 += 32) {
    int64_t p1 = p0 + 32 < end ? p0 + 32 : end;
    for (int64_t c0 = 0; c0 < C; c0 += 32) {
      int64_t c1 = c0 + 32 < C ? c0 + 32 : C;
      for (int64_t p = p0; p < p1; p++) {
        float *d = t->dst + p * C;
        for (int64_t c = c0; c < c1; c++) d[c] = t->src[c * HW + p];
      }
    }
  }
}

hs_status *hs_glue_feature_to_hwc(hs_glue_workspace *ws, const float *chw, int64_t C,
                                  int64_t H, int64_t W, float *hwc, int64_t hwc_len) {
  if (C < 0 || H < 0 || W < 0)
    return HS_GLUE_INVALID("feature_to_hwc: negative shape [%lld, %lld, %lld]", (long long)C,
                           (long long)H, (long long)W);
  if (C > (1 << 24) || H > (1 << 24) || W > (1 << 24) || H * W > INT64_MAX / 16 / (C ? C : 1))
    return HS_GLUE_INVALID("feature_to_hwc: shape too large");
  int64_t n = C * H * W;
  if (hwc_len < n)
    return HS_GLUE_INVALID("feature_to_hwc: out holds %lld values but %lld are needed",
                           (long long)hwc_len, (long long)n);
  if (n == 0) return NULL;
  if (!chw || !hwc) return HS_GLUE_INVALID("feature_to_hwc: NULL array");
  transpose_job t = {chw, hwc, C, H * W};
  hs_glue_parallel_for(ws, H * W, 1024, transpose_rows, &t);
  return NULL;
}
