/*
 * rpn.c - RegionProposalNetwork.filter_proposals for one image.
 *
 * torchvision decodes every anchor (about 100k at 640x640), then keeps the
 * top pre_nms_top_n per level.  Decoding is elementwise, so decoding only
 * the survivors of the top-k gives the same bits; when the caller passes
 * deltas + anchors instead of decoded boxes we do that, which is most of
 * the speedup of this path.  The top-k itself reproduces torch.topk's
 * element order (sort.c), because that order is what later breaks ties
 * between equal scores in the NMS.
 *
 * After the top-k the steps and their order are torchvision's: sigmoid,
 * clip to the image, remove_small_boxes(min_size), score >= score_thresh,
 * batched_nms by level, keep the first post_nms_top_n.
 */
#include "glue_internal.h"

hs_glue_rpn_params hs_glue_default_rpn_params(void) {
  hs_glue_rpn_params p;
  p.pre_nms_top_n = 1000;
  p.post_nms_top_n = 1000;
  p.nms_thresh = 0.7;
  p.score_thresh = 0.0;
  p.min_size = 1e-3;
  p.weights[0] = p.weights[1] = p.weights[2] = p.weights[3] = 1.0f;
  p.bbox_xform_clip = HS_GLUE_BBOX_XFORM_CLIP;
  return p;
}

#define MAX_LEVELS 64

hs_status *hs_glue_select_rpn_proposals(hs_glue_workspace *ws, const hs_glue_rpn_level *levels,
                                        int num_levels, int64_t image_height,
                                        int64_t image_width, const hs_glue_rpn_params *params,
                                        float *out_boxes, float *out_scores, int64_t out_rows,
                                        int64_t *num_out) {
  const char *fn = "select_rpn_proposals";
  if (!num_out) return HS_GLUE_INVALID("%s: num_out is NULL", fn);
  *num_out = 0;
  if (!ws) return HS_GLUE_INVALID("%s: workspace is NULL", fn);
  if (!params) return HS_GLUE_INVALID("%s: params is NULL", fn);
  if (num_levels < 0 || num_levels > MAX_LEVELS)
    return HS_GLUE_INVALID("%s: num_levels %d out of range [0, %d]", fn, num_levels, MAX_LEVELS);
  if (num_levels > 0 && !levels) return HS_GLUE_INVALID("%s: levels is NULL", fn);
  if (image_height < 0 || image_width < 0)
    return HS_GLUE_INVALID("%s: negative image size %lldx%lld", fn, (long long)image_height,
                           (long long)image_width);
  if (params->pre_nms_top_n < 0 || params->post_nms_top_n < 0)
    return HS_GLUE_INVALID("%s: negative pre_nms_top_n (%lld) or post_nms_top_n (%lld)", fn,
                           (long long)params->pre_nms_top_n, (long long)params->post_nms_top_n);
  if (out_rows < 0) return HS_GLUE_INVALID("%s: negative out_rows %lld", fn, (long long)out_rows);
  if (out_rows > 0 && !out_boxes) return HS_GLUE_INVALID("%s: out_boxes is NULL", fn);
  int64_t total = 0;
  for (int l = 0; l < num_levels; l++) {
    const hs_glue_rpn_level *lv = &levels[l];
    if (lv->num_anchors < 0)
      return HS_GLUE_INVALID("%s: level %d has a negative anchor count %lld", fn, l,
                             (long long)lv->num_anchors);
    if (lv->num_anchors == 0) continue;
    if (!lv->objectness) return HS_GLUE_INVALID("%s: level %d objectness is NULL", fn, l);
    if (!lv->boxes && (!lv->deltas || !lv->anchors))
      return HS_GLUE_INVALID("%s: level %d needs boxes, or deltas and anchors", fn, l);
    HS_RETURN_IF_ERROR(
        hs_glue_need(ws, lv->num_anchors, ws->cfg.max_level_anchors,
                     "select_rpn_proposals (anchors in one level)", "max_level_anchors"));
    int64_t k = lv->num_anchors < params->pre_nms_top_n ? lv->num_anchors : params->pre_nms_top_n;
    total += k;
  }
  HS_RETURN_IF_ERROR(hs_glue_need(ws, total, ws->cfg.max_boxes,
                                  "select_rpn_proposals (candidates after top-k)", "max_boxes"));

  float *cb = ws->c_boxes, *cs = ws->c_scores;
  int64_t *cl = ws->c_labels;
  const float wx = params->weights[0], wy = params->weights[1];
  const float ww = params->weights[2], wh = params->weights[3];
  const float clip = hs_glue_f32(params->bbox_xform_clip);
  int64_t pos = 0;
  for (int l = 0; l < num_levels; l++) {
    const hs_glue_rpn_level *lv = &levels[l];
    int64_t n = lv->num_anchors;
    if (n == 0) continue;
    int64_t k = n < params->pre_nms_top_n ? n : params->pre_nms_top_n;
    if (k == 0) continue;
    hs_glue_qelem *q = ws->queue;
    for (int64_t j = 0; j < n; j++) {
      q[j].v = lv->objectness[j];
      q[j].i = (int32_t)j;
    }
    hs_glue_topk(q, n, k);
    for (int64_t t = 0; t < k; t++) {
      int64_t j = q[t].i;
      float *b = cb + pos * 4;
      if (lv->boxes) {
        memcpy(b, lv->boxes + j * 4, 4 * sizeof(float));
      } else {
        const float *a = lv->anchors + j * 4;
        hs_glue_decode_one(lv->deltas + j * 4, a[0], a[1], a[2], a[3], wx, wy, ww, wh, clip, b);
      }
      cs[pos] = q[t].v;
      cl[pos] = l;
      pos++;
    }
  }

  /* sigmoid, clip, remove_small_boxes, score threshold; compacting in order. */
  const float h = (float)image_height, w = (float)image_width;
  const float min_size = hs_glue_f32(params->min_size);
  const float score_thresh = hs_glue_f32(params->score_thresh);
  int64_t m = 0;
  for (int64_t i = 0; i < pos; i++) {
    float s = hs_glue_sigmoid_at(cs[i], i, pos);
    const float *b = cb + i * 4;
    float x1 = hs_glue_clamp0(b[0], w), y1 = hs_glue_clamp0(b[1], h);
    float x2 = hs_glue_clamp0(b[2], w), y2 = hs_glue_clamp0(b[3], h);
    float bw = x2 - x1, bh = y2 - y1;
    if (!(bw >= min_size && bh >= min_size)) continue;
    if (!(s >= score_thresh)) continue;
    float *o = cb + m * 4;
    o[0] = x1;
    o[1] = y1;
    o[2] = x2;
    o[3] = y2;
    cs[m] = s;
    cl[m] = cl[i];
    m++;
  }

  int64_t want = params->post_nms_top_n < out_rows ? params->post_nms_top_n : out_rows;
  int32_t *keep = ws->b_out;
  int64_t kept = hs_glue_batched_nms_impl(ws, cb, cs, cl, m, params->nms_thresh, want, keep);
  for (int64_t i = 0; i < kept; i++) {
    memcpy(out_boxes + i * 4, cb + (int64_t)keep[i] * 4, 4 * sizeof(float));
    if (out_scores) out_scores[i] = cs[keep[i]];
  }
  *num_out = kept;
  return NULL;
}
