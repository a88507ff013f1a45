/*
 * glue_internal.h - what the DetectionGlue files share: the workspace layout,
 * the float32 primitives that must round exactly like torchvision's kernels,
 * the sorting routines and the NMS core.
 *
 * Exactness.  Every float expression here is written in torchvision's
 * evaluation order and in float (never double) unless torchvision itself
 * widens; the library is compiled as ISO C11, where GCC does not contract
 * a*b+c into fused multiply-adds (-ffp-contract=off), so each operation
 * rounds once, as ATen's eager kernels do.
 */
#ifndef HLOSERVE_GLUE_INTERNAL_H
#define HLOSERVE_GLUE_INTERNAL_H

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "hloserve/detection_glue.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__clang__) && \
    !defined(HS_GLUE_NO_CLONES)
/* Hot loops get an AVX2 clone picked at load time; the default clone is the
 * baseline ISA.  Per-lane IEEE arithmetic is identical in every clone. */
#define HS_GLUE_HOT __attribute__((target_clones("avx2", "default")))
#else
#define HS_GLUE_HOT
#endif

#define HS_GLUE_INVALID(...) hs_status_new(HS_INVALID_ARGUMENT, __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* Workspace                                                                 */

typedef void (*hs_glue_task_fn)(void *ctx, int64_t begin, int64_t end);

typedef struct hs_glue_pool hs_glue_pool;

/* One element of the top-k queue: torch.topk sorts std::pair<float, int64_t>. */
typedef struct hs_glue_qelem {
  float v;
  int32_t i;
} hs_glue_qelem;

/* Scratch used by the NMS core (sized max_boxes). */
typedef struct hs_glue_nms_scratch {
  uint32_t *key_a, *key_b;   /* radix sort keys */
  int32_t *idx_a, *idx_b;    /* radix sort payload */
  float *x1, *y1, *x2, *y2, *area;  /* boxes in score order, compacted */
  int32_t *id;               /* original index of each slot */
  int32_t *dead;             /* 0 / -1 per slot */
} hs_glue_nms_scratch;

struct hs_glue_workspace {
  hs_glue_config cfg;
  void *block;               /* the one allocation holding every array below */
  hs_glue_nms_scratch nms;
  /* batched NMS (max_boxes each) */
  int32_t *b_order;          /* indices grouped by category */
  float *b_offset;           /* per-box offsets of the coordinate trick */
  int32_t *b_keep;           /* kept indices before the final sort */
  int32_t *b_list;           /* kept indices in ascending order */
  int32_t *b_out;            /* result of the public batched_nms */
  hs_glue_qelem *b_pairs;    /* (score, position) pairs of the final unstable sort */
  /* candidates of RPN selection / final inference (max_boxes each) */
  float *c_boxes;            /* [max_boxes, 4] */
  float *c_scores;
  int64_t *c_labels;
  int64_t *c_keep;
  /* top-k queue (max_level_anchors) */
  hs_glue_qelem *queue;
  /* one softmax row (max_classes) */
  float *row;
  hs_glue_pool *pool;        /* NULL when num_threads <= 1 */
};

/* Runs fn over [0, n) split into chunks of `grain` items handed out
 * dynamically to the workspace's threads (the caller's included).  ws may be
 * NULL: then fn(ctx, 0, n) runs on the caller's thread. */
void hs_glue_parallel_for(hs_glue_workspace *ws, int64_t n, int64_t grain, hs_glue_task_fn fn,
                          void *ctx);

hs_status *hs_glue_need(const hs_glue_workspace *ws, int64_t n, int64_t limit, const char *what,
                        const char *limit_name);

/* ------------------------------------------------------------------------ */
/* float32 primitives                                                        */

/* The float threshold T with  f > T  <=>  (double)f > t  for every float f
 * (the largest float <= t): lets a float IoU be compared like torchvision's
 * `ovr > iou_threshold` (float promoted to double) without widening. */
float hs_glue_gt_threshold(double t);

/* A python float scalar used in a float32 tensor op: ATen casts it to float. */
static inline float hs_glue_f32(double v) { return (float)v; }

/* torch.clamp(x, 0, hi): NaN stays NaN. */
static inline float hs_glue_clamp0(float x, float hi) {
  float y = (x < 0.0f) ? 0.0f : x;      /* std::max(x, 0) keeps NaN */
  return (hi < y) ? hi : y;             /* std::min(y, hi) keeps NaN */
}

/* Decodes one box (BoxCoder.decode_single, float32, torchvision's order). */
static inline void hs_glue_decode_one(const float *d, float x1, float y1, float x2, float y2,
                                      float wx, float wy, float ww, float wh, float clip,
                                      float *out) {
  float widths = x2 - x1;
  float heights = y2 - y1;
  float ctr_x = x1 + 0.5f * widths;
  float ctr_y = y1 + 0.5f * heights;
  float dx = d[0] / wx;
  float dy = d[1] / wy;
  float dw = d[2] / ww;
  float dh = d[3] / wh;
  if (dw > clip) dw = clip;  /* torch.clamp(max=): NaN stays NaN */
  if (dh > clip) dh = clip;
  float pcx = dx * widths + ctr_x;
  float pcy = dy * heights + ctr_y;
  float pw = expf(dw) * widths;
  float ph = expf(dh) * heights;
  float cw = 0.5f * pw;
  float ch = 0.5f * ph;
  out[0] = pcx - cw;
  out[1] = pcy - ch;
  out[2] = pcx + cw;
  out[3] = pcy + ch;
}

/* ATen's vectorised expf (SLEEF expf_u10, FMA build): torch_math.c. */
float hs_glue_vexpf(float x);
/* Float lanes of ATen's Vectorized<float> on this CPU (16 or 8). */
int hs_glue_torch_lanes(void);
/* torch.sigmoid of element i of a contiguous tensor of n elements. */
float hs_glue_sigmoid_at(float x, int64_t i, int64_t n);
/* F.softmax over one row of n logits (ATen's lastdim kernel). */
void hs_glue_softmax_row(const float *x, int64_t n, float *out);

/* LevelMapper for one box, torchvision's float32 expression; -1 when the
 * level is undefined (NaN). */
static inline int32_t hs_glue_level_of(const float *b, float lvl0, float s0, float eps,
                                       float kmin, float kmax, int k_min) {
  float area = (b[2] - b[0]) * (b[3] - b[1]);
  float s = sqrtf(area);
  float t = floorf((lvl0 + log2f(s / s0)) + eps);
  if (t != t) return -1;
  t = (t < kmin) ? kmin : t;
  t = (kmax < t) ? kmax : t;
  return (int32_t)((int64_t)t - k_min);
}

/* ------------------------------------------------------------------------ */
/* Sorting                                                                   */

/* order[0..n) := 0..n-1 sorted by scores[sel[k]] (sel NULL: scores[k])
 * decreasing, NaN first, ties by position k: torch.sort(descending=True,
 * stable=True).  Uses s->key_*, s->idx_*; order may be s->idx_a. */
void hs_glue_sort_desc(hs_glue_nms_scratch *s, const float *scores, const int32_t *sel,
                       int64_t n, int32_t *order);

/* torch.sort(descending=True) on the CPU with stable=False: ATen sorts
 * (value, index) pairs with libstdc++'s std::sort (introsort), so equal
 * values come out in the order that algorithm's swaps leave them.  q[0..n)
 * holds (x[j], j) on entry and torch.sort's (values, indices) on return. */
void hs_glue_sort_desc_unstable(hs_glue_qelem *q, int64_t n);

/* torch.topk(x, k) on the CPU, largest=True, sorted=True: reproduces the
 * element order (ties included) of ATen's std::partial_sort /
 * std::nth_element + std::sort over (value, index) pairs.  q[0..n) holds
 * (x[j], j) on entry; on return q[0..k) is torch.topk's result. */
void hs_glue_topk(hs_glue_qelem *q, int64_t n, int64_t k);

/* ------------------------------------------------------------------------ */
/* NMS core                                                                  */

/* Greedy NMS over the n boxes sel[0..n) (indices into boxes/scores; sel NULL
 * = identity), each shifted by offset[sel[k]] (offset NULL = none) as the
 * coordinate trick does.  Writes at most max_keep kept indices (values of
 * sel) into keep, in torchvision's order; returns the count. */
int64_t hs_glue_nms_core(hs_glue_nms_scratch *s, const float *boxes, const float *scores,
                         const int32_t *sel, const float *offset, int64_t n, float thr,
                         int64_t max_keep, int32_t *keep);

/* batched_nms into keep (int32, capacity n) with workspace scratch; returns
 * the count (at most max_keep). */
int64_t hs_glue_batched_nms_impl(hs_glue_workspace *ws, const float *boxes, const float *scores,
                                 const int64_t *idxs, int64_t n, double iou_threshold,
                                 int64_t max_keep, int32_t *keep);

#endif /* HLOSERVE_GLUE_INTERNAL_H */
