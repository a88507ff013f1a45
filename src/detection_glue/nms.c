/*
 * nms.c - torchvision.ops.nms and batched_nms, index for index.
 *
 * torchvision's CPU NMS sorts the scores (stable, descending), then walks
 * the boxes in that order: a box not yet suppressed is kept and suppresses
 * every later box whose float32 IoU with it is > the threshold.  We keep
 * exactly that rule and arithmetic but change the memory traffic:
 *
 *  - the boxes are gathered once into score order as structure-of-arrays,
 *    so the inner loop reads contiguous memory instead of order[j]
 *    indirections, and is written with vector extensions (8 lanes; an AVX2
 *    clone on x86) that compute the same per-pair IEEE operations;
 *  - suppressed boxes are marked, and the tail is compacted lazily (when a
 *    quarter of it is dead), so later passes skip them without a branch
 *    per box;
 *  - a caller that only wants the first k kept boxes (post_nms_top_n) stops
 *    after k: the greedy order is the output order, so the prefix is exact.
 *
 * The IoU compare `ovr > iou_threshold` promotes ovr to double in
 * torchvision; hs_glue_gt_threshold() turns the double threshold into the
 * float T with the same outcome for every float, so the loop stays float.
 *
 * batched_nms follows torchvision's dispatch: up to 1000 boxes use the
 * coordinate trick (one NMS over boxes shifted by idx*(max+1)), more use the
 * per-category loop followed by a sort of the survivors by score, torch's
 * unstable one, whose order of equal scores we reproduce (sort.c).
 */
#include "glue_internal.h"

#include <stdlib.h>

float hs_glue_gt_threshold(double t) {
  if (t != t) return (float)t;
  float f = (float)t;  /* round to nearest; may land above t */
  if ((double)f > t) f = nextafterf(f, -INFINITY);
  return f;
}

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v8f_u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t v8i_u __attribute__((vector_size(32), aligned(4), may_alias));

/* m ? a : b per lane (a macro: 32-byte vector arguments would change the
 * baseline ABI). */
#define VSEL(m, a, b) ((v8f)((((v8i)(a)) & (m)) | (((v8i)(b)) & ~(m))))

/* Marks dead[q] for q in [from, to) whose IoU with box i is > thr; returns
 * how many were newly marked. */
HS_GLUE_HOT
static int64_t suppress_pass(const float *x1, const float *y1, const float *x2, const float *y2,
                             const float *area, int32_t *dead, int64_t from, int64_t to,
                             float ix1, float iy1, float ix2, float iy2, float iarea, float thr) {
  int64_t q = from;
  v8i fresh = {0, 0, 0, 0, 0, 0, 0, 0};
  const v8f zero = {0, 0, 0, 0, 0, 0, 0, 0};
  const v8f vx1 = zero + ix1, vy1 = zero + iy1, vx2 = zero + ix2, vy2 = zero + iy2;
  const v8f va = zero + iarea, vt = zero + thr;
  for (; q + 8 <= to; q += 8) {
    v8f a1 = *(const v8f_u *)(x1 + q);
    v8f b1 = *(const v8f_u *)(y1 + q);
    v8f a2 = *(const v8f_u *)(x2 + q);
    v8f b2 = *(const v8f_u *)(y2 + q);
    v8f ar = *(const v8f_u *)(area + q);
    v8f xx1 = VSEL(vx1 < a1, a1, vx1);   /* std::max(ix1, x1[j]) */
    v8f yy1 = VSEL(vy1 < b1, b1, vy1);
    v8f xx2 = VSEL(a2 < vx2, a2, vx2);   /* std::min(ix2, x2[j]) */
    v8f yy2 = VSEL(b2 < vy2, b2, vy2);
    v8f w = xx2 - xx1;
    v8f h = yy2 - yy1;
    w = VSEL(zero < w, w, zero);         /* std::max(0, w) */
    h = VSEL(zero < h, h, zero);
    v8f inter = w * h;
    v8f ovr = inter / ((va + ar) - inter);
    v8i sup = ovr > vt;
    v8i old = *(v8i_u *)(dead + q);
    fresh += sup & ~old;
    *(v8i_u *)(dead + q) = old | sup;
  }
  int64_t newly = 0;
  for (int l = 0; l < 8; l++) newly -= fresh[l];
  for (; q < to; q++) {
    float xx1 = (ix1 < x1[q]) ? x1[q] : ix1;
    float yy1 = (iy1 < y1[q]) ? y1[q] : iy1;
    float xx2 = (x2[q] < ix2) ? x2[q] : ix2;
    float yy2 = (y2[q] < iy2) ? y2[q] : iy2;
    float w = xx2 - xx1;
    float h = yy2 - yy1;
    w = (0.0f < w) ? w : 0.0f;
    h = (0.0f < h) ? h : 0.0f;
    float inter = w * h;
    float ovr = inter / ((iarea + area[q]) - inter);
    if (ovr > thr && !dead[q]) {
      dead[q] = -1;
      newly++;
    }
  }
  return newly;
}

int64_t hs_glue_nms_core(hs_glue_nms_scratch *s, const float *boxes, const float *scores,
                         const int32_t *sel, const float *offset, int64_t n, float thr,
                         int64_t max_keep, int32_t *keep) {
  if (n <= 0 || max_keep <= 0) return 0;
  int32_t *id = s->id;
  hs_glue_sort_desc(s, scores, sel, n, id);
  float *x1 = s->x1, *y1 = s->y1, *x2 = s->x2, *y2 = s->y2, *area = s->area;
  int32_t *dead = s->dead;
  for (int64_t p = 0; p < n; p++) {
    int32_t src = sel ? sel[id[p]] : id[p];
    const float *b = boxes + (int64_t)src * 4;
    float a = b[0], bb = b[1], c = b[2], d = b[3];
    if (offset) {
      float o = offset[src];
      a = a + o;
      bb = bb + o;
      c = c + o;
      d = d + o;
    }
    x1[p] = a;
    y1[p] = bb;
    x2[p] = c;
    y2[p] = d;
    area[p] = (c - a) * (d - bb);
    id[p] = src;
    dead[p] = 0;
  }
  int64_t m = n, kept = 0, dead_in_tail = 0;
  for (int64_t p = 0; p < m; p++) {
    if (dead[p]) {
      dead_in_tail--;
      continue;
    }
    keep[kept++] = id[p];
    if (kept >= max_keep) break;
    dead_in_tail += suppress_pass(x1, y1, x2, y2, area, dead, p + 1, m, x1[p], y1[p], x2[p],
                                  y2[p], area[p], thr);
    int64_t tail = m - (p + 1);
    if (tail > 64 && dead_in_tail * 4 > tail) {
      int64_t w = p + 1;
      for (int64_t q = p + 1; q < m; q++) {
        if (dead[q]) continue;
        x1[w] = x1[q];
        y1[w] = y1[q];
        x2[w] = x2[q];
        y2[w] = y2[q];
        area[w] = area[q];
        id[w] = id[q];
        dead[w] = 0;
        w++;
      }
      m = w;
      dead_in_tail = 0;
    }
  }
  return kept;
}

/* Groups 0..n-1 by idxs (ascending category, then ascending index) into
 * order; returns the number of distinct categories.  Small ranges take a
 * counting sort, others a bottom-up merge sort. */
static void group_by_category(hs_glue_workspace *ws, const int64_t *idxs, int64_t n,
                              int32_t *order) {
  int64_t lo = idxs[0], hi = idxs[0];
  for (int64_t i = 1; i < n; i++) {
    if (idxs[i] < lo) lo = idxs[i];
    if (idxs[i] > hi) hi = idxs[i];
  }
  /* hi - lo computed in unsigned to avoid overflow. */
  uint64_t range = (uint64_t)hi - (uint64_t)lo;
  if (range < (uint64_t)n) {
    uint32_t *cnt = ws->nms.key_a;  /* n + 8 entries available */
    memset(cnt, 0, (size_t)(range + 1) * sizeof(uint32_t));
    for (int64_t i = 0; i < n; i++) cnt[(uint64_t)idxs[i] - (uint64_t)lo]++;
    uint32_t sum = 0;
    for (uint64_t d = 0; d <= range; d++) {
      uint32_t c = cnt[d];
      cnt[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; i++) order[cnt[(uint64_t)idxs[i] - (uint64_t)lo]++] = (int32_t)i;
    return;
  }
  int32_t *a = ws->nms.idx_a, *b = ws->nms.idx_b;
  for (int64_t i = 0; i < n; i++) a[i] = (int32_t)i;
  for (int64_t width = 1; width < n; width *= 2) {
    for (int64_t lo_i = 0; lo_i < n; lo_i += 2 * width) {
      int64_t mid = lo_i + width < n ? lo_i + width : n;
      int64_t end = lo_i + 2 * width < n ? lo_i + 2 * width : n;
      int64_t i = lo_i, j = mid, k = lo_i;
      while (i < mid && j < end) {
        /* stable: take from the left run unless the right one is smaller */
        if (idxs[a[j]] < idxs[a[i]])
          b[k++] = a[j++];
        else
          b[k++] = a[i++];
      }
      while (i < mid) b[k++] = a[i++];
      while (j < end) b[k++] = a[j++];
    }
    int32_t *t = a;
    a = b;
    b = t;
  }
  memcpy(order, a, (size_t)n * sizeof(int32_t));
}

int64_t hs_glue_batched_nms_impl(hs_glue_workspace *ws, const float *boxes, const float *scores,
                                 const int64_t *idxs, int64_t n, double iou_threshold,
                                 int64_t max_keep, int32_t *keep) {
  if (n <= 0 || max_keep <= 0) return 0;
  float thr = hs_glue_gt_threshold(iou_threshold);
  hs_glue_nms_scratch *s = &ws->nms;
  if (n * 4 <= 4000) {
    /* _batched_nms_coordinate_trick */
    float maxc = -INFINITY;
    for (int64_t i = 0; i < 4 * n; i++) {
      float v = boxes[i];
      if (v != v) {
        maxc = v;
        break;
      }
      if (v > maxc) maxc = v;
    }
    float step = maxc + 1.0f;
    float *off = ws->b_offset;
    for (int64_t i = 0; i < n; i++) off[i] = (float)idxs[i] * step;
    return hs_glue_nms_core(s, boxes, scores, NULL, off, n, thr, max_keep, keep);
  }
  /* _batched_nms_vanilla */
  int32_t *order = ws->b_order;
  group_by_category(ws, idxs, n, order);
  int32_t *kept = ws->b_keep;
  int64_t total = 0;
  for (int64_t g = 0; g < n;) {
    int64_t e = g + 1;
    while (e < n && idxs[order[e]] == idxs[order[g]]) e++;
    total += hs_glue_nms_core(s, boxes, scores, order + g, NULL, e - g, thr, e - g, kept + total);
    g = e;
  }
  /* torch.where(keep_mask) lists the survivors in index order ... */
  int32_t *mark = s->dead;
  memset(mark, 0, (size_t)n * sizeof(int32_t));
  for (int64_t k = 0; k < total; k++) mark[kept[k]] = 1;
  int32_t *list = ws->b_list;
  int64_t cnt = 0;
  for (int64_t i = 0; i < n; i++)
    if (mark[i]) list[cnt++] = (int32_t)i;
  /* ... then sorts them with scores[keep].sort(descending=True): the
   * unstable std::sort, whose order of equal scores we reproduce. */
  hs_glue_qelem *q = ws->b_pairs;
  for (int64_t k = 0; k < cnt; k++) {
    q[k].v = scores[list[k]];
    q[k].i = (int32_t)k;
  }
  hs_glue_sort_desc_unstable(q, cnt);
  int64_t out = cnt < max_keep ? cnt : max_keep;
  for (int64_t k = 0; k < out; k++) keep[k] = list[q[k].i];
  return out;
}

/* ---------------------------------------------------------------------- */
/* Public entry points                                                     */

static hs_status *check_nms_args(const char *fn, hs_glue_workspace *ws, const float *boxes,
                                 const float *scores, int64_t n, int64_t *keep, int64_t keep_cap,
                                 int64_t *num_kept) {
  if (!num_kept) return HS_GLUE_INVALID("%s: num_kept is NULL", fn);
  *num_kept = 0;
  if (!ws) return HS_GLUE_INVALID("%s: workspace is NULL", fn);
  if (n < 0) return HS_GLUE_INVALID("%s: negative box count %lld", fn, (long long)n);
  if (keep_cap < 0) return HS_GLUE_INVALID("%s: negative keep capacity %lld", fn, (long long)keep_cap);
  if (n > 0 && (!boxes || !scores)) return HS_GLUE_INVALID("%s: boxes or scores is NULL", fn);
  if (keep_cap > 0 && !keep) return HS_GLUE_INVALID("%s: keep is NULL", fn);
  return hs_glue_need(ws, n, ws->cfg.max_boxes, fn, "max_boxes");
}

hs_status *hs_glue_nms(hs_glue_workspace *ws, const float *boxes, const float *scores,
                       int64_t n, double iou_threshold, int64_t *keep, int64_t keep_cap,
                       int64_t *num_kept) {
  HS_RETURN_IF_ERROR(check_nms_args("nms", ws, boxes, scores, n, keep, keep_cap, num_kept));
  int64_t max_keep = keep_cap < n ? keep_cap : n;
  int32_t *k32 = ws->b_out;
  int64_t cnt = hs_glue_nms_core(&ws->nms, boxes, scores, NULL, NULL, n,
                                 hs_glue_gt_threshold(iou_threshold), max_keep, k32);
  for (int64_t i = 0; i < cnt; i++) keep[i] = k32[i];
  *num_kept = cnt;
  return NULL;
}

hs_status *hs_glue_batched_nms(hs_glue_workspace *ws, const float *boxes, const float *scores,
                               const int64_t *idxs, int64_t n, double iou_threshold,
                               int64_t *keep, int64_t keep_cap, int64_t *num_kept) {
  HS_RETURN_IF_ERROR(
      check_nms_args("batched_nms", ws, boxes, scores, n, keep, keep_cap, num_kept));
  if (n > 0 && !idxs) return HS_GLUE_INVALID("batched_nms: idxs is NULL");
  int64_t max_keep = keep_cap < n ? keep_cap : n;
  int32_t *k32 = ws->b_out;
  int64_t cnt = hs_glue_batched_nms_impl(ws, boxes, scores, idxs, n, iou_threshold, max_keep, k32);
  for (int64_t i = 0; i < cnt; i++) keep[i] = k32[i];
  *num_kept = cnt;
  return NULL;
}
