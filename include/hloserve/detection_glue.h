/*
 * detection_glue.h - the data-dependent middle of a two-stage detector
 * (torchvision Faster R-CNN): anchors, box decoding, RPN proposal selection,
 * NMS, level assignment, ROIAlign and the final per-class inference.
 *
 * Design.  Plain C functions over plain float32 arrays, each reproducing
 * torchvision's CPU code path operation for operation (same float32
 * arithmetic in the same order, same comparisons, same tie-breaking), so
 * that a detector served by hloserve gives the detections torchvision gives.
 * docs/detection_glue.md lists every rule and the few places where
 * torchvision itself is unspecified (and what we do there).
 *
 *  - Boxes are rows [x1, y1, x2, y2] (torchvision's XYXY), float32.
 *  - Every function returns an hs_status (NULL on success) and validates its
 *    arguments first: negative counts, NULL pointers, buffers that are too
 *    small and workspaces that are too small are errors, never crashes.
 *  - Nothing is allocated per call.  Scratch memory comes from an
 *    hs_glue_workspace that the caller creates once with capacity limits
 *    (hs_glue_config) and reuses for every request; outputs go into
 *    caller-owned buffers.  A call that would need more than the workspace
 *    holds fails with HS_RESOURCE_EXHAUSTED naming the limit.
 *  - A workspace may own worker threads (config.num_threads > 1); ROIAlign
 *    and the feature-layout helper split their work across them.  Results
 *    are bit-identical for any thread count.  A workspace serves one call at
 *    a time: give each concurrent caller its own.
 */
#ifndef HLOSERVE_DETECTION_GLUE_H
#define HLOSERVE_DETECTION_GLUE_H

#include <stdbool.h>
#include <stdint.h>

#include "hloserve/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Workspace                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct hs_glue_config {
  /* Most boxes one NMS / batched NMS call sees, and the most candidates of
   * one select_rpn_proposals call (sum over levels of min(pre_nms_top_n,
   * anchors)) or one fast_rcnn_inference call (rois * foreground classes). */
  int64_t max_boxes;
  /* Most anchors in one RPN level (the top-k queue). */
  int64_t max_level_anchors;
  /* Most classes (background included) fast_rcnn_inference sees. */
  int64_t max_classes;
  /* Threads for roi_align and hs_glue_feature_to_hwc, the caller's thread
   * included; <= 1 means the caller's thread only (no threads are created). */
  int num_threads;
} hs_glue_config;

typedef struct hs_glue_workspace hs_glue_workspace;

/* The limits a Faster R-CNN at 640x640 (resnet50_fpn defaults) needs. */
hs_glue_config hs_glue_default_config(void);

hs_status *hs_glue_workspace_create(const hs_glue_config *config, hs_glue_workspace **out);
void hs_glue_workspace_destroy(hs_glue_workspace *ws);
/* The limits the workspace was created with. */
hs_glue_config hs_glue_workspace_config(const hs_glue_workspace *ws);

/* ------------------------------------------------------------------------ */
/* Anchors and layout helpers                                                */
/* ------------------------------------------------------------------------ */

/* AnchorGenerator.generate_anchors: the zero-centred cell anchors of one level,
 * rounded half-to-even, in ratio-major order (row r*num_scales + s).
 * out: [num_ratios * num_scales, 4]. */
hs_status *hs_glue_cell_anchors(const float *scales, int64_t num_scales,
                                const float *aspect_ratios, int64_t num_ratios,
                                float *out, int64_t out_rows);

/* AnchorGenerator.grid_anchors for one level: row (y*grid_w + x)*A + a is
 * cell anchor a shifted by (x*stride_w, y*stride_h).  torchvision's stride is
 * image_size // grid_size per axis.  out: [grid_h*grid_w*A, 4]. */
hs_status *hs_glue_generate_anchors(const float *cell_anchors, int64_t num_cell_anchors,
                                    int64_t grid_h, int64_t grid_w,
                                    int64_t stride_h, int64_t stride_w,
                                    float *out, int64_t out_rows);

/* torchvision's permute_and_flatten of the RPN head outputs of one level
 * (batch 1).  objectness [1, A, H, W] -> [H*W*A]; deltas [1, A*4, H, W] ->
 * [H*W*A, 4].  out_len / out_rows are the capacities of out. */
hs_status *hs_glue_flatten_objectness(const float *objectness, int64_t A, int64_t H, int64_t W,
                                      float *out, int64_t out_len);
hs_status *hs_glue_flatten_deltas(const float *deltas, int64_t A, int64_t H, int64_t W,
                                  float *out, int64_t out_rows);

/* A feature map [1, C, H, W] (CHW) to channels-last [H, W, C] (HWC), the
 * layout the fast roi_align path reads.  ws may be NULL (one thread). */
hs_status *hs_glue_feature_to_hwc(hs_glue_workspace *ws, const float *chw, int64_t C,
                                  int64_t H, int64_t W, float *hwc, int64_t hwc_len);

/* ------------------------------------------------------------------------ */
/* Box ops                                                                   */
/* ------------------------------------------------------------------------ */

/* log(1000/16), torchvision's default bbox_xform_clip. */
#define HS_GLUE_BBOX_XFORM_CLIP 4.135166556742356

/* BoxCoder.decode_single: rows i of deltas [n, 4*k] decoded against
 * reference box i of boxes [n, 4] with weights (wx, wy, ww, wh); dw and dh are
 * clamped from above at clip (float32(clip)).  out: [n, 4*k]; may alias
 * deltas. */
hs_status *hs_glue_decode_boxes(const float *deltas, const float *boxes, int64_t n, int64_t k,
                                const float weights[4], double clip, float *out,
                                int64_t out_rows);

/* clip_boxes_to_image: x into [0, width], y into [0, height]; NaN stays NaN.
 * In place on boxes [n, 4]. */
hs_status *hs_glue_clip_boxes(float *boxes, int64_t n, int64_t height, int64_t width);

/* remove_small_boxes: writes the indices i (ascending) with
 * (x2-x1) >= min_size and (y2-y1) >= min_size (float32 compare) into keep
 * (capacity keep_cap >= n); *num_kept gets their count. */
hs_status *hs_glue_remove_small_boxes(const float *boxes, int64_t n, double min_size,
                                      int64_t *keep, int64_t keep_cap, int64_t *num_kept);

/* ------------------------------------------------------------------------ */
/* NMS                                                                       */
/* ------------------------------------------------------------------------ */

/* torchvision.ops.nms: indices of the kept boxes in decreasing score order
 * (ties: lower index first; NaN scores rank above every number, as in
 * torch.sort).  A box is suppressed by a kept box when their IoU, computed in
 * float32, is > iou_threshold (compared in double).  At most keep_cap indices
 * are written (the first keep_cap of torchvision's list: it stops early);
 * *num_kept gets how many were written. */
hs_status *hs_glue_nms(hs_glue_workspace *ws, const float *boxes, const float *scores,
                       int64_t n, double iou_threshold, int64_t *keep, int64_t keep_cap,
                       int64_t *num_kept);

/* torchvision.ops.batched_nms: NMS independently per category idxs[i].  Like
 * torchvision on the CPU, n <= 1000 boxes take the coordinate-offset path
 * (boxes shifted by idx * (max coordinate + 1) in float32, one NMS) and larger
 * inputs the per-category path; the two can differ in rounding, and we take
 * the same one torchvision takes.  Output order: decreasing score, ties by
 * lower index (torchvision's per-category path leaves the order of exactly
 * equal scores to an unstable sort). */
hs_status *hs_glue_batched_nms(hs_glue_workspace *ws, const float *boxes, const float *scores,
                               const int64_t *idxs, int64_t n, double iou_threshold,
                               int64_t *keep, int64_t keep_cap, int64_t *num_kept);

/* ------------------------------------------------------------------------ */
/* RPN proposal selection                                                    */
/* ------------------------------------------------------------------------ */

typedef struct hs_glue_rpn_level {
  int64_t num_anchors;      /* N = H*W*A */
  const float *objectness;  /* [N] logits, flattened order (hs_glue_flatten_objectness) */
  /* Either decoded proposals [N, 4] ... */
  const float *boxes;
  /* ... or, when boxes is NULL, deltas [N, 4] (flattened order) and anchors
   * [N, 4]: only the top-k rows are decoded (same arithmetic, less work). */
  const float *deltas;
  const float *anchors;
} hs_glue_rpn_level;

typedef struct hs_glue_rpn_params {
  int64_t pre_nms_top_n;   /* per level (torchvision eval default 1000) */
  int64_t post_nms_top_n;  /* 1000 */
  double nms_thresh;       /* 0.7 */
  double score_thresh;     /* 0.0; kept when sigmoid(objectness) >= score_thresh */
  double min_size;         /* 1e-3 */
  float weights[4];        /* box coder weights for lazy decoding: (1, 1, 1, 1) */
  double bbox_xform_clip;  /* HS_GLUE_BBOX_XFORM_CLIP */
} hs_glue_rpn_params;

hs_glue_rpn_params hs_glue_default_rpn_params(void);

/* RegionProposalNetwork.filter_proposals for one image: per level the top
 * pre_nms_top_n by objectness (torch.topk's order, NaN first), then sigmoid,
 * clip to (image_height, image_width), remove boxes smaller than min_size,
 * keep scores >= score_thresh, NMS per level, keep post_nms_top_n by score.
 * Writes *num_out <= min(post_nms_top_n, out_rows) proposals [.., 4] into
 * out_boxes and their scores into out_scores (may be NULL). */
hs_status *hs_glue_select_rpn_proposals(hs_glue_workspace *ws, const hs_glue_rpn_level *levels,
                                        int num_levels, int64_t image_height,
                                        int64_t image_width, const hs_glue_rpn_params *params,
                                        float *out_boxes, float *out_scores, int64_t out_rows,
                                        int64_t *num_out);

/* ------------------------------------------------------------------------ */
/* Level assignment and ROIAlign                                             */
/* ------------------------------------------------------------------------ */

/* torchvision's _infer_scale for one axis: 2**round(log2(feature/image)). */
double hs_glue_infer_scale(int64_t feature_size, int64_t image_size);

/* k_min, k_max of MultiScaleRoIAlign's LevelMapper from the first and last
 * level scales: int(-log2(scale)). */
hs_status *hs_glue_level_range(double first_scale, double last_scale, int *k_min, int *k_max);

/* LevelMapper: level = clamp(floor(canonical_level + log2(sqrt(area) /
 * canonical_scale) + eps), k_min, k_max) - k_min, in float32.  A box whose
 * level is undefined (NaN: inverted box, NaN coordinates) gets -1; the pooler
 * leaves its row zero, as torchvision's does.  Defaults: 224, 4, 1e-6. */
hs_status *hs_glue_assign_levels(const float *boxes, int64_t n, int k_min, int k_max,
                                 double canonical_scale, int canonical_level, double eps,
                                 int32_t *levels);

typedef enum hs_glue_layout {
  HS_GLUE_CHW = 0,  /* [C, H, W]: stage1's layout; no copy needed */
  HS_GLUE_HWC = 1   /* [H, W, C]: hs_glue_feature_to_hwc; vectorised over channels */
} hs_glue_layout;

typedef struct hs_glue_feature {
  const float *data;
  int64_t channels, height, width;
  hs_glue_layout layout;
  double spatial_scale;    /* used as float32, as torchvision does */
} hs_glue_feature;

typedef struct hs_glue_roi_align_params {
  int64_t pooled_height, pooled_width;  /* 7, 7 */
  int64_t sampling_ratio;               /* > 0 fixed; <= 0 adaptive ceil(roi/pooled) */
  bool aligned;                         /* false: torchvision detection default */
} hs_glue_roi_align_params;

/* The largest adaptive sampling grid per axis we accept; a ROI needing more
 * (or a non-finite one) is an error for huge extents and zeros for NaN. */
#define HS_GLUE_MAX_SAMPLING_GRID 1024

/* torchvision.ops.roi_align on one image: ROI i (boxes [n, 4], in image
 * coordinates) is pooled into row rows[i] (or row i when rows is NULL) of
 * out [out_rows, C, PH, PW].  No other row is touched; rows should be
 * distinct.  ws may be NULL (one thread, no workspace needed). */
hs_status *hs_glue_roi_align(hs_glue_workspace *ws, const hs_glue_feature *feature,
                             const float *boxes, const int64_t *rows, int64_t n,
                             const hs_glue_roi_align_params *params, float *out,
                             int64_t out_rows);

/* MultiScaleRoIAlign (torchvision's _multiscale_roi_align) over num_levels
 * feature maps: each box is assigned a level with the LevelMapper (k_min,
 * k_max from the first and last spatial scales; canonical 224 at level 4,
 * eps 1e-6) and pooled into row i of out [out_rows >= n, C, PH, PW]; a box
 * with no level gets a zero row.  levels_out (may be NULL) receives the
 * levels.  With one level every box is pooled from it. */
hs_status *hs_glue_multiscale_roi_align(hs_glue_workspace *ws, const hs_glue_feature *features,
                                        int num_levels, const float *boxes, int64_t n,
                                        const hs_glue_roi_align_params *params, float *out,
                                        int64_t out_rows, int32_t *levels_out);

/* ------------------------------------------------------------------------ */
/* Final detections                                                          */
/* ------------------------------------------------------------------------ */

typedef struct hs_glue_fast_rcnn_params {
  double score_thresh;        /* 0.05; kept when softmax score > score_thresh */
  double nms_thresh;          /* 0.5 */
  int64_t detections_per_img; /* 100 */
  float weights[4];           /* (10, 10, 5, 5) */
  double bbox_xform_clip;     /* HS_GLUE_BBOX_XFORM_CLIP */
  bool bg_first;              /* true: class 0 is background (torchvision);
                                 false: the last class is background */
  double min_size;            /* 1e-2 in torchvision's postprocess_detections */
} hs_glue_fast_rcnn_params;

hs_glue_fast_rcnn_params hs_glue_default_fast_rcnn_params(void);

/* RoIHeads.postprocess_detections for one image: softmax over class_logits
 * [R, C], decode bbox_deltas [R, C*4] against proposals [R, 4], clip to the
 * image, drop the background class, keep score > score_thresh, drop boxes
 * smaller than min_size, NMS per class, keep the detections_per_img best.
 * Rows of out [out_rows, out_cols]: x1, y1, x2, y2, score (, class label as a
 * float when out_cols == 6).  Labels are torchvision's: 1..C-1 with bg_first,
 * 0..C-2 otherwise.  out_rows must be >= min(detections_per_img, R*(C-1)). */
hs_status *hs_glue_fast_rcnn_inference(hs_glue_workspace *ws, const float *class_logits,
                                       const float *bbox_deltas, const float *proposals,
                                       int64_t num_rois, int64_t num_classes,
                                       int64_t image_height, int64_t image_width,
                                       const hs_glue_fast_rcnn_params *params, float *out,
                                       int64_t out_rows, int out_cols, int64_t *num_out);

#ifdef __cplusplus
}
#endif
#endif /* HLOSERVE_DETECTION_GLUE_H */
