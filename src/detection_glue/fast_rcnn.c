/*
 * fast_rcnn.c - RoIHeads.postprocess_detections for one image.
 *
 * torchvision decodes all R x C boxes, softmaxes all rows, clips, drops the
 * background column, flattens to R*(C-1) candidates in row-major order,
 * thresholds the scores (strictly greater), removes boxes smaller than
 * min_size, runs batched NMS by class and keeps the first
 * detections_per_img.  Every step is elementwise up to the NMS, so we fuse
 * them into one pass per ROI that decodes only the classes whose score
 * passes the threshold; the candidates come out in torchvision's order,
 * which is what the NMS tie-breaking depends on.
 */
#include "glue_internal.h"

hs_glue_fast_rcnn_params hs_glue_default_fast_rcnn_params(void) {
  hs_glue_fast_rcnn_params p;
  p.score_thresh = 0.05;
  p.nms_thresh = 0.5;
  p.detections_per_img = 100;
  p.weights[0] = 10.0f;
  p.weights[1] = 10.0f;
  p.weights[2] = 5.0f;
  p.weights[3] = 5.0f;
  p.bbox_xform_clip = HS_GLUE_BBOX_XFORM_CLIP;
  p.bg_first = true;
  p.min_size = 1e-2;
  return p;
}

hs_status *hs_glue_fast_rcnn_inference(hs_glue_workspace *ws, const float *class_logits,
                                       const float *bbox_deltas, const float *proposals,
                                       int64_t num_rois, int64_t num_classes,
                                       int64_t image_height, int64_t image_width,
                                       const hs_glue_fast_rcnn_params *params, float *out,
                                       int64_t out_rows, int out_cols, int64_t *num_out) {
  const char *fn = "fast_rcnn_inference";
  if (!num_out) return HS_GLUE_INVALID("%s: num_out is NULL", fn);
  *num_out = 0;
  if (!ws) return HS_GLUE_INVALID("%s: workspace is NULL", fn);
  if (!params) return HS_GLUE_INVALID("%s: params is NULL", fn);
  if (num_rois < 0 || num_classes < 0)
    return HS_GLUE_INVALID("%s: negative size (rois %lld, classes %lld)", fn,
                           (long long)num_rois, (long long)num_classes);
  if (num_rois > 0 && num_classes < 1)
    return HS_GLUE_INVALID("%s: num_classes must be at least 1 (background)", fn);
  if (image_height < 0 || image_width < 0)
    return HS_GLUE_INVALID("%s: negative image size %lldx%lld", fn, (long long)image_height,
                           (long long)image_width);
  if (out_cols != 5 && out_cols != 6)
    return HS_GLUE_INVALID("%s: out_cols must be 5 or 6, got %d", fn, out_cols);
  if (params->detections_per_img < 0)
    return HS_GLUE_INVALID("%s: negative detections_per_img %lld", fn,
                           (long long)params->detections_per_img);
  if (out_rows < 0) return HS_GLUE_INVALID("%s: negative out_rows %lld", fn, (long long)out_rows);
  HS_RETURN_IF_ERROR(hs_glue_need(ws, num_classes, ws->cfg.max_classes, fn, "max_classes"));
  const int64_t fg = num_classes > 0 ? num_classes - 1 : 0;
  if (num_rois > 0 && fg > ws->cfg.max_boxes / num_rois)
    return hs_glue_need(ws, num_rois * fg, ws->cfg.max_boxes,
                        "fast_rcnn_inference (rois x foreground classes)", "max_boxes");
  int64_t most = num_rois * fg < params->detections_per_img ? num_rois * fg
                                                              : params->detections_per_img;
  if (out_rows < most)
    return HS_GLUE_INVALID("%s: out holds %lld rows but up to %lld detections may be returned",
                           fn, (long long)out_rows, (long long)most);
  if (num_rois == 0 || fg == 0) return NULL;
  if (!class_logits || !bbox_deltas || !proposals || (most > 0 && !out))
    return HS_GLUE_INVALID("%s: NULL array", fn);

  const float wx = params->weights[0], wy = params->weights[1];
  const float ww = params->weights[2], wh = params->weights[3];
  const float clip = hs_glue_f32(params->bbox_xform_clip);
  const float thr = hs_glue_f32(params->score_thresh);
  const float min_size = hs_glue_f32(params->min_size);
  const float h = (float)image_height, w = (float)image_width;
  const int64_t first = params->bg_first ? 1 : 0;
  float *prob = ws->row;
  float *cb = ws->c_boxes, *cs = ws->c_scores;
  int64_t *cl = ws->c_labels;
  int64_t m = 0;
  for (int64_t r = 0; r < num_rois; r++) {
    hs_glue_softmax_row(class_logits + r * num_classes, num_classes, prob);
    const float *p = proposals + r * 4;
    for (int64_t j = first; j < first + fg; j++) {
      float s = prob[j];
      if (!(s > thr)) continue;
      float b[4];
      hs_glue_decode_one(bbox_deltas + (r * num_classes + j) * 4, p[0], p[1], p[2], p[3], wx,
                         wy, ww, wh, clip, b);
      float x1 = hs_glue_clamp0(b[0], w), y1 = hs_glue_clamp0(b[1], h);
      float x2 = hs_glue_clamp0(b[2], w), y2 = hs_glue_clamp0(b[3], h);
      if (!((x2 - x1) >= min_size && (y2 - y1) >= min_size)) continue;
      float *o = cb + m * 4;
      o[0] = x1;
      o[1] = y1;
      o[2] = x2;
      o[3] = y2;
      cs[m] = s;
      cl[m] = j;
      m++;
    }
  }
  int32_t *keep = ws->b_out;
  int64_t kept = hs_glue_batched_nms_impl(ws, cb, cs, cl, m, params->nms_thresh, most, keep);
  for (int64_t i = 0; i < kept; i++) {
    float *o = out + i * out_cols;
    const float *b = cb + (int64_t)keep[i] * 4;
    o[0] = b[0];
    o[1] = b[1];
    o[2] = b[2];
    o[3] = b[3];
    o[4] = cs[keep[i]];
    if (out_cols == 6) o[5] = (float)cl[keep[i]];
  }
  *num_out = kept;
  return NULL;
}
