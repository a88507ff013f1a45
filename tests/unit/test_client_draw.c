/*
 * test_client_draw.c - labels and drawing: the built-in COCO names, label
 * files, and boxes drawn with cairo, checked pixel by pixel: every changed
 * pixel lies near a drawn box (its outline or its label), each box's outline
 * is there, and the box interiors, filtered detections and undrawable boxes
 * (NaN, infinite) leave the image alone.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hloserve/client.h"
#include "testlib.h"

/* ----------------------------------------------------------------- labels -- */

HS_TEST(coco_labels) {
  hs_labels l;
  CHECK_OK(hs_labels_coco(&l));
  bool ok = l.count == 91 && strcmp(l.names[0], "__background__") == 0 &&
            strcmp(l.names[1], "person") == 0 && strcmp(l.names[12], "N/A") == 0 &&
            strcmp(l.names[17], "cat") == 0 && strcmp(l.names[90], "toothbrush") == 0;
  int na = 0;
  for (int i = 0; i < l.count; i++) na += strcmp(l.names[i], "N/A") == 0;
  char buf[32];
  ok = ok && na == 10 && strcmp(hs_labels_name(&l, 3, buf, sizeof buf), "car") == 0 &&
       strcmp(hs_labels_name(&l, 91, buf, sizeof buf), "class 91") == 0 &&
       strcmp(hs_labels_name(&l, -1, buf, sizeof buf), "object") == 0 &&
       strcmp(hs_labels_name(NULL, 5, buf, sizeof buf), "class 5") == 0;
  hs_labels_free(&l);
  hs_labels_free(&l);
  CHECK(ok);
}

HS_TEST(label_files) {
  char dir[] = "/tmp/hs_client_labels.XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/l.txt", dir);
  FILE *f = fopen(path, "wb");
  fputs("background\r\nwidget\n\ngadget thing\n\n\n", f);
  fclose(f);
  hs_labels l;
  CHECK_OK(hs_labels_load(path, &l));
  bool ok = l.count == 4 && strcmp(l.names[0], "background") == 0 &&
            strcmp(l.names[1], "widget") == 0 && strcmp(l.names[2], "") == 0 &&
            strcmp(l.names[3], "gadget thing") == 0;
  hs_labels_free(&l);
  CHECK(ok);
  f = fopen(path, "wb"); /* no final newline */
  fputs("a\nb", f);
  fclose(f);
  CHECK_OK(hs_labels_load(path, &l));
  ok = l.count == 2 && strcmp(l.names[1], "b") == 0;
  hs_labels_free(&l);
  CHECK(ok);
  f = fopen(path, "wb");
  fputs("\n\n", f);
  fclose(f);
  CHECK_ERR(hs_labels_load(path, &l), HS_INVALID_ARGUMENT);
  f = fopen(path, "wb");
  fwrite("a\0b\n", 1, 4, f);
  fclose(f);
  CHECK_ERR(hs_labels_load(path, &l), HS_INVALID_ARGUMENT);
  unlink(path);
  hs_status *st = hs_labels_load(path, &l);
  CHECK(hs_status_code_of(st) == HS_IO_ERROR && strstr(hs_status_message(st), "l.txt"));
  hs_status_free(st);
  rmdir(dir);
}

/* ---------------------------------------------------------------- drawing -- */

static hs_status *make_image(hs_image *img, int w, int h) {
  HS_RETURN_IF_ERROR(hs_image_alloc(img, w, h));
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = img->rgb + ((size_t)y * w + x) * 3;
      p[0] = (uint8_t)(x * 255 / w);
      p[1] = (uint8_t)(y * 255 / h);
      p[2] = (uint8_t)(((x / 8) + (y / 8)) % 2 ? 200 : 60);
    }
  return NULL;
}

static bool pixel_changed(const hs_image *a, const hs_image *b, int x, int y) {
  size_t k = ((size_t)y * a->width + x) * 3;
  return memcmp(a->rgb + k, b->rgb + k, 3) != 0;
}

/* Where drawing box r may change pixels: its outline grown by the line width
 * (plus antialiasing), and a label band above (or inside) its top edge, as
 * wide as a label can be. */
static bool near_box(const float *r, double lw, double fs, int x, int y, int text_len) {
  double m = lw + 2;
  double label_h = 2 * fs + 2 * lw + 4, label_w = fs * text_len + lw + 8;
  bool outline = x >= r[0] - m && x <= r[2] + m && y >= r[1] - m && y <= r[3] + m &&
                 !(x > r[0] + m && x < r[2] - m && y > r[1] + m && y < r[3] - m);
  bool label = x >= r[0] - m && x <= r[0] + label_w && y >= r[1] - label_h && y <= r[1] + label_h;
  return outline || label;
}

HS_TEST(draw_changes_only_near_boxes) {
  const int w = 400, h = 300;
  hs_image img, orig;
  CHECK_OK(make_image(&img, w, h));
  CHECK_OK(make_image(&orig, w, h));
  /* rows: two drawn boxes (classes 1 and 17), one under the threshold */
  float rows[3][6] = {{40, 60, 180, 250, 0.97f, 1},
                      {220, 150, 380, 280, 0.81f, 17},
                      {250, 20, 380, 100, 0.30f, 3}};
  hs_detections d = {.count = 3, .cols = 6, .rows = &rows[0][0]};
  hs_labels l;
  CHECK_OK(hs_labels_coco(&l));
  hs_status *st = hs_draw_detections(&img, &d, &l, 0.5f);
  hs_labels_free(&l);
  CHECK_OK(st);
  double lw, fs;
  hs_draw_style(w, h, &lw, &fs);
  int stray = 0, changed = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      if (!pixel_changed(&img, &orig, x, y)) continue;
      changed++;
      if (!near_box(rows[0], lw, fs, x, y, 11) && !near_box(rows[1], lw, fs, x, y, 8)) stray++;
    }
  CHECK_MSG(stray == 0, "%d pixels changed away from the boxes", stray);
  CHECK(changed > 500);
  /* each drawn box's outline is there, on all four sides */
  for (int b = 0; b < 2; b++) {
    const float *r = rows[b];
    int xm = (int)((r[0] + r[2]) / 2), ym = (int)((r[1] + r[3]) / 2);
    CHECK(pixel_changed(&img, &orig, (int)r[0], ym));
    CHECK(pixel_changed(&img, &orig, (int)r[2] - 1, ym));
    CHECK(pixel_changed(&img, &orig, xm, (int)r[3] - 1));
    CHECK(pixel_changed(&img, &orig, xm + 30, (int)r[1]));
    /* the outline has the class colour */
    uint32_t c = hs_class_color((int)r[5]);
    const uint8_t *p = img.rgb + ((size_t)ym * w + (int)r[0]) * 3;
    CHECK(p[0] == (c >> 16 & 255) && p[1] == (c >> 8 & 255) && p[2] == (c & 255));
    /* the interior, below the label, is untouched */
    int inner = 0;
    for (int y = (int)(r[1] + 3 * fs); y < r[3] - lw - 2; y++)
      for (int x = (int)(r[0] + lw + 2); x < r[2] - lw - 2; x++) inner += pixel_changed(&img, &orig, x, y);
    CHECK(inner == 0);
  }
  /* the filtered box is not drawn: its outline's middle is unchanged */
  CHECK(!pixel_changed(&img, &orig, 250, 60) && !pixel_changed(&img, &orig, 380, 60));
  /* a label sits above the first box: a filled patch in the box's colour */
  int label_px = 0;
  uint32_t c1 = hs_class_color(1);
  for (int y = (int)(rows[0][1] - 2 * fs); y < rows[0][1]; y++)
    for (int x = (int)rows[0][0]; x < rows[0][0] + 60; x++) {
      const uint8_t *p = img.rgb + ((size_t)y * w + x) * 3;
      label_px += p[0] == (c1 >> 16 & 255) && p[1] == (c1 >> 8 & 255) && p[2] == (c1 & 255);
    }
  CHECK_MSG(label_px > 100, "%d label pixels", label_px);
  hs_image_free(&img);
  hs_image_free(&orig);
}

HS_TEST(draw_edge_cases_leave_image_alone_or_stay_inside) {
  const int w = 120, h = 90;
  hs_image img, orig;
  CHECK_OK(make_image(&img, w, h));
  CHECK_OK(make_image(&orig, w, h));
  size_t bytes = (size_t)w * h * 3;
  /* nothing to draw: no detections, all below the threshold, NaN scores,
   * non-finite corners */
  float rows[4][6] = {{10, 10, 50, 50, 0.2f, 1},
                      {10, 10, 50, 50, NAN, 1},
                      {NAN, 10, 50, 50, 0.9f, 1},
                      {10, INFINITY, 50, 50, 0.9f, 1}};
  hs_detections d = {.count = 0, .cols = 6, .rows = NULL};
  CHECK_OK(hs_draw_detections(&img, &d, NULL, 0.5f));
  d = (hs_detections){.count = 4, .cols = 6, .rows = &rows[0][0]};
  CHECK_OK(hs_draw_detections(&img, &d, NULL, 0.5f));
  CHECK(memcmp(img.rgb, orig.rgb, bytes) == 0);
  /* a box at the top edge (its label goes inside), one far outside, one
   * reversed, one with a huge class id and no labels, 5 columns */
  float more[4][6] = {{0, 0, 60, 40, 0.9f, 2},
                      {-1e30f, -1e30f, 1e30f, 1e30f, 0.9f, 3},
                      {100, 80, 70, 50, 0.9f, 1e9f},
                      {5, 60, 30, 85, 0.6f, -4}};
  d.count = 4;
  d.rows = &more[0][0];
  CHECK_OK(hs_draw_detections(&img, &d, NULL, 0.5f));
  CHECK(img.width == w && img.height == h);
  CHECK(memcmp(img.rgb, orig.rgb, bytes) != 0);
  float five[1][5] = {{20, 30, 90, 80, 0.7f}};
  hs_detections d5 = {.count = 1, .cols = 5, .rows = &five[0][0]};
  CHECK_OK(hs_draw_detections(&orig, &d5, NULL, 0.5f));
  /* invalid shapes of detections are refused */
  hs_detections bad = {.count = 1, .cols = 4, .rows = &five[0][0]};
  CHECK_ERR(hs_draw_detections(&img, &bad, NULL, 0.5f), HS_INVALID_ARGUMENT);
  hs_image_free(&img);
  CHECK_ERR(hs_draw_detections(&img, &d5, NULL, 0.5f), HS_INVALID_ARGUMENT);
  hs_image_free(&orig);
}

HS_TEST(draw_survives_bad_label_text) {
  const int w = 200, h = 150;
  hs_image img, orig;
  CHECK_OK(make_image(&img, w, h));
  CHECK_OK(make_image(&orig, w, h));
  char bad0[] = "caf\xC3";          /* cut UTF-8 sequence */
  char bad1[] = "\xFF\xFE\x01tab\t"; /* invalid bytes and control characters */
  char *names[2] = {bad0, bad1};
  hs_labels l = {.count = 2, .names = names};
  float rows[2][6] = {{20, 40, 90, 120, 0.9f, 0}, {110, 40, 190, 140, 0.9f, 1}};
  hs_detections d = {.count = 2, .cols = 6, .rows = &rows[0][0]};
  CHECK_OK(hs_draw_detections(&img, &d, &l, 0.5f));
  /* the second box was drawn after the first's bad label */
  CHECK(pixel_changed(&img, &orig, 190, 90));
  CHECK(strcmp(bad0, "caf\xC3") == 0); /* the caller's names are not modified */
  hs_image_free(&img);
  hs_image_free(&orig);
}

HS_TEST(colors_and_style) {
  for (int i = 1; i < 91; i++) CHECK(hs_class_color(i) != hs_class_color(i + 1));
  CHECK(hs_class_color(5) == hs_class_color(5));
  CHECK(hs_class_color(-1) != hs_class_color(0));
  double lw, fs, lw2, fs2;
  hs_draw_style(320, 240, &lw, &fs);
  hs_draw_style(4000, 3000, &lw2, &fs2);
  CHECK(lw >= 2 && fs >= 12 && lw2 > lw && fs2 > fs && fs2 <= 40);
}

int main(void) {
  HS_RUN(coco_labels);
  HS_RUN(label_files);
  HS_RUN(draw_changes_only_near_boxes);
  HS_RUN(draw_edge_cases_leave_image_alone_or_stay_inside);
  HS_RUN(draw_survives_bad_label_text);
  HS_RUN(colors_and_style);
  int rc = hs_test_summary();
  hs_draw_cleanup();
  return rc;
}
