/*
 * draw.c - detections drawn onto an image with cairo.
 *
 * Design:
 *  - cairo draws into its own xRGB32 surface; the image is copied in and out
 *    around the drawing (two cheap passes), so hs_image stays plain RGB for
 *    the codecs and the wire.
 *  - Boxes first, labels second: a label is never crossed by a neighbouring
 *    box's line.  A label sits on the box's top-left corner, above the box
 *    when there is room and inside it otherwise, shifted left to stay in the
 *    image; its filled background keeps the text readable on any photo, and
 *    the text is black or white, whichever contrasts with the class colour.
 *  - Colours come from the class id by golden-ratio hue steps: stable across
 *    runs and images, and neighbouring ids get distant hues.
 *  - Line width and font size scale with the image (hs_draw_style), so a
 *    4000-pixel photo and a 320-pixel thumbnail both read well.
 *  - Text goes through cairo's toy font API (fontconfig picks a sans-serif
 *    face): enough for a label, and no layout library to depend on.  Its
 *    process-wide caches are freed by hs_draw_cleanup() at exit, so leak
 *    checkers see a clean run.
 *  - What a server sends is untrusted: non-finite boxes are skipped, huge
 *    coordinates are clamped, and label text is made valid UTF-8 (cairo stops
 *    drawing on the first invalid string).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include "hloserve/client.h"

void hs_draw_style(int width, int height, double *line_width, double *font_size) {
  double m = width < height ? width : height;
  *line_width = fmax(2.0, round(m / 250.0));
  *font_size = fmin(40.0, fmax(12.0, round(m / 40.0)));
}

uint32_t hs_class_color(int id) {
  if (id < 0) return 0x00C8FF;
  double hue = fmod(0.12 + 0.6180339887498949 * (double)id, 1.0) * 6.0;
  double s = 0.85, v = 0.95;
  int sector = (int)hue % 6;
  double f = hue - floor(hue);
  double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  double r, g, b;
  switch (sector) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
  }
  return ((uint32_t)lround(r * 255) << 16) | ((uint32_t)lround(g * 255) << 8) |
         (uint32_t)lround(b * 255);
}

static void set_color(cairo_t *cr, uint32_t rgb) {
  cairo_set_source_rgb(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0,
                       (rgb & 255) / 255.0);
}

/* Replaces every byte that is not part of a valid UTF-8 sequence with '?'. */
static void make_utf8(char *s) {
  unsigned char *p = (unsigned char *)s;
  while (*p) {
    int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
    bool ok = len > 0;
    for (int k = 1; ok && k < len; k++) ok = (p[k] & 0xC0) == 0x80;
    if (ok && len == 2 && *p < 0xC2) ok = false;              /* overlong */
    if (ok && len == 3 && *p == 0xE0 && p[1] < 0xA0) ok = false;
    if (ok && len == 3 && *p == 0xED && p[1] >= 0xA0) ok = false; /* surrogates */
    if (ok && len == 4 && ((*p == 0xF0 && p[1] < 0x90) || *p > 0xF4 || (*p == 0xF4 && p[1] >= 0x90)))
      ok = false;
    if (ok && *p < 0x20) ok = false; /* control characters draw as boxes */
    if (!ok) {
      *p++ = '?';
      continue;
    }
    p += len;
  }
}

/* A box's corners, clamped near the image, or false when not drawable. */
static bool box_of(const float *row, int w, int h, double lw, double b[4]) {
  for (int k = 0; k < 4; k++)
    if (!isfinite(row[k])) return false;
  double x1 = fmin(row[0], row[2]), x2 = fmax(row[0], row[2]);
  double y1 = fmin(row[1], row[3]), y2 = fmax(row[1], row[3]);
  b[0] = fmin(fmax(x1, -lw), w + lw);
  b[2] = fmin(fmax(x2, -lw), w + lw);
  b[1] = fmin(fmax(y1, -lw), h + lw);
  b[3] = fmin(fmax(y2, -lw), h + lw);
  return true;
}

static bool drawn(const hs_detections *d, int64_t i, float score_min) {
  float score = d->rows[i * d->cols + 4];
  return score >= score_min;  /* NaN scores are never drawn */
}

hs_status *hs_draw_detections(hs_image *img, const hs_detections *d, const hs_labels *labels,
                              float score_min) {
  if (!img->rgb || img->width < 1 || img->height < 1)
    return hs_status_new(HS_INVALID_ARGUMENT, "cannot draw on an empty image");
  if (d->count < 0 || (d->count > 0 && (!d->rows || (d->cols != 5 && d->cols != 6))))
    return hs_status_new(HS_INVALID_ARGUMENT, "detections must be [N, 5] or [N, 6] rows");
  int w = img->width, h = img->height;
  int stride = cairo_format_stride_for_width(CAIRO_FORMAT_RGB24, w);
  if (stride <= 0) return hs_status_new(HS_INVALID_ARGUMENT, "image too wide for cairo: %d", w);
  uint8_t *buf = malloc((size_t)stride * (size_t)h);
  if (!buf) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory drawing a %dx%d image", w, h);
  for (int y = 0; y < h; y++) {
    const uint8_t *src = img->rgb + (size_t)y * (size_t)w * 3;
    uint32_t *dst = (uint32_t *)(void *)(buf + (size_t)y * (size_t)stride);
    for (int x = 0; x < w; x++)
      dst[x] = ((uint32_t)src[3 * x] << 16) | ((uint32_t)src[3 * x + 1] << 8) | src[3 * x + 2];
  }
  cairo_surface_t *surface = cairo_image_surface_create_for_data(buf, CAIRO_FORMAT_RGB24, w, h,
                                                                 stride);
  cairo_t *cr = cairo_create(surface);
  double lw, fs;
  hs_draw_style(w, h, &lw, &fs);
  cairo_set_line_width(cr, lw);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
  for (int64_t i = 0; i < d->count; i++) {
    double b[4];
    if (!drawn(d, i, score_min) || !box_of(d->rows + i * d->cols, w, h, lw, b)) continue;
    set_color(cr, hs_class_color(hs_detection_class(d, i)));
    cairo_rectangle(cr, b[0], b[1], b[2] - b[0], b[3] - b[1]);
    cairo_stroke(cr);
  }
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size(cr, fs);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  double pad = fmax(2.0, round(fs * 0.2));
  double label_h = ceil(fe.ascent + fe.descent) + 2 * pad;
  for (int64_t i = 0; i < d->count; i++) {
    double b[4];
    if (!drawn(d, i, score_min) || !box_of(d->rows + i * d->cols, w, h, lw, b)) continue;
    int cls = hs_detection_class(d, i);
    char namebuf[32], text[96];
    const char *name = hs_labels_name(labels, cls, namebuf, sizeof namebuf);
    snprintf(text, sizeof text, "%.64s %.2f", name, d->rows[i * d->cols + 4]);
    make_utf8(text);
    cairo_text_extents_t te;
    cairo_text_extents(cr, text, &te);
    double label_w = ceil(te.x_advance) + 2 * pad;
    double lx = b[0] - lw / 2, ly = b[1] - lw / 2 - label_h;
    if (ly < 0) ly = b[1] + lw / 2; /* no room above: inside the box */
    if (lx + label_w > w) lx = w - label_w;
    if (lx < 0) lx = 0;
    uint32_t color = hs_class_color(cls);
    set_color(cr, color);
    cairo_rectangle(cr, floor(lx), floor(ly), ceil(label_w), ceil(label_h));
    cairo_fill(cr);
    double luma = 0.299 * ((color >> 16) & 255) + 0.587 * ((color >> 8) & 255) +
                  0.114 * (color & 255);
    cairo_set_source_rgb(cr, luma > 140 ? 0 : 1, luma > 140 ? 0 : 1, luma > 140 ? 0 : 1);
    cairo_move_to(cr, floor(lx) + pad, floor(ly) + pad + fe.ascent);
    cairo_show_text(cr, text);
  }
  cairo_status_t cst = cairo_status(cr);
  cairo_destroy(cr);
  cairo_surface_flush(surface);
  cairo_surface_destroy(surface);
  if (cst != CAIRO_STATUS_SUCCESS) {
    free(buf);
    return hs_status_new(HS_INTERNAL, "drawing failed: %s", cairo_status_to_string(cst));
  }
  for (int y = 0; y < h; y++) {
    const uint32_t *src = (const uint32_t *)(const void *)(buf + (size_t)y * (size_t)stride);
    uint8_t *dst = img->rgb + (size_t)y * (size_t)w * 3;
    for (int x = 0; x < w; x++) {
      dst[3 * x] = (uint8_t)(src[x] >> 16);
      dst[3 * x + 1] = (uint8_t)(src[x] >> 8);
      dst[3 * x + 2] = (uint8_t)src[x];
    }
  }
  free(buf);
  return NULL;
}

void hs_draw_cleanup(void) {
  cairo_debug_reset_static_data();
  FcFini();
}
