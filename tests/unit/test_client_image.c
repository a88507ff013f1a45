/*
 * test_client_image.c - the client's image codecs: round trips through our
 * encoders, every PNG colour type and depth libpng can write (built here with
 * libpng directly, so the expected pixels are known), grayscale and CMYK
 * JPEGs, and the failure paths: truncated, garbage, empty and oversized files,
 * and files that cannot be opened or written.
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "hloserve/client.h"
#include "testlib.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 11);
}

/* A photo-like test image: smooth gradients plus a little noise. */
static hs_status *make_image(hs_image *img, int w, int h) {
  HS_RETURN_IF_ERROR(hs_image_alloc(img, w, h));
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = img->rgb + ((size_t)y * w + x) * 3;
      p[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
      p[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
      p[2] = (uint8_t)((x + y) * 2 + (int)(rnd() % 7));
    }
  return NULL;
}

static double mean_abs_diff(const hs_image *a, const hs_image *b) {
  double s = 0;
  size_t n = (size_t)a->width * a->height * 3;
  for (size_t i = 0; i < n; i++) s += abs((int)a->rgb[i] - (int)b->rgb[i]);
  return s / (double)n;
}

/* ------------------------------------------------------------------------ */

HS_TEST(sniff_and_extensions) {
  static const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xE0};
  static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  CHECK(hs_image_sniff(jpg, sizeof jpg) == HS_IMAGE_JPEG);
  CHECK(hs_image_sniff(png, sizeof png) == HS_IMAGE_PNG);
  CHECK(hs_image_sniff(png, 7) == HS_IMAGE_UNKNOWN);
  CHECK(hs_image_sniff("GIF89a", 6) == HS_IMAGE_UNKNOWN);
  CHECK(hs_image_sniff("", 0) == HS_IMAGE_UNKNOWN);
  CHECK(hs_image_format_for_path("a/b.JPG") == HS_IMAGE_JPEG);
  CHECK(hs_image_format_for_path("x.jpeg") == HS_IMAGE_JPEG);
  CHECK(hs_image_format_for_path("x.Png") == HS_IMAGE_PNG);
  CHECK(hs_image_format_for_path("x.gif") == HS_IMAGE_UNKNOWN);
  CHECK(hs_image_format_for_path("dir.png/file") == HS_IMAGE_UNKNOWN);
  CHECK(hs_image_format_for_path("noext") == HS_IMAGE_UNKNOWN);
}

HS_TEST(alloc_checks_sizes) {
  hs_image img;
  CHECK_ERR(hs_image_alloc(&img, 0, 5), HS_INVALID_ARGUMENT);
  CHECK(img.rgb == NULL);
  CHECK_ERR(hs_image_alloc(&img, 5, -1), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_image_alloc(&img, 1 << 20, 1 << 20), HS_RESOURCE_EXHAUSTED);
  CHECK_OK(hs_image_alloc(&img, 3, 2));
  CHECK(img.width == 3 && img.height == 2 && img.rgb[17] == 0);
  hs_image_free(&img);
  hs_image_free(&img); /* a freed image is zeroed: freeing again is harmless */
}

HS_TEST(png_round_trip_is_exact) {
  int sizes[][2] = {{1, 1}, {37, 23}, {256, 3}, {5, 300}};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    hs_image a, b;
    CHECK_OK(make_image(&a, sizes[k][0], sizes[k][1]));
    uint8_t *data;
    size_t n;
    CHECK_OK(hs_image_encode(&a, HS_IMAGE_PNG, 90, &data, &n));
    CHECK(hs_image_sniff(data, n) == HS_IMAGE_PNG);
    hs_status *st = hs_image_decode(data, n, &b);
    free(data);
    if (st) hs_image_free(&a);
    CHECK_OK(st);
    bool same = b.width == a.width && b.height == a.height &&
                memcmp(a.rgb, b.rgb, (size_t)a.width * a.height * 3) == 0;
    hs_image_free(&a);
    hs_image_free(&b);
    CHECK(same);
  }
}

HS_TEST(jpeg_round_trip_is_close) {
  hs_image a, b;
  CHECK_OK(make_image(&a, 160, 120));
  for (int q = 50; q <= 100; q += 25) {
    uint8_t *data;
    size_t n;
    CHECK_OK(hs_image_encode(&a, HS_IMAGE_JPEG, q, &data, &n));
    CHECK(hs_image_sniff(data, n) == HS_IMAGE_JPEG);
    hs_status *st = hs_image_decode(data, n, &b);
    free(data);
    CHECK_OK(st);
    CHECK(b.width == 160 && b.height == 120);
    double err = mean_abs_diff(&a, &b);
    hs_image_free(&b);
    CHECK_MSG(err < (q == 100 ? 2.5 : 4.0), "quality %d: mean abs error %.2f", q, err);
  }
  hs_image_free(&a);
  uint8_t *data;
  size_t n;
  CHECK_ERR(hs_image_encode(&a, HS_IMAGE_JPEG, 90, &data, &n), HS_INVALID_ARGUMENT); /* freed */
  CHECK_OK(make_image(&a, 8, 8));
  CHECK_ERR(hs_image_encode(&a, HS_IMAGE_JPEG, 0, &data, &n), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_image_encode(&a, HS_IMAGE_JPEG, 101, &data, &n), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_image_encode(&a, HS_IMAGE_UNKNOWN, 90, &data, &n), HS_INVALID_ARGUMENT);
  hs_image_free(&a);
}

/* ------------------------------------------------------- PNG variants -- */

typedef struct membuf {
  uint8_t *data;
  size_t len, cap;
} membuf;

static void mem_write(png_structp png, png_bytep p, size_t n) {
  membuf *b = png_get_io_ptr(png);
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->data = realloc(b->data, b->cap);
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}
static void mem_flush(png_structp png) {}

/* Writes a w x h PNG of the given type whose raw rows are produced by
 * row_fn; with a palette (and optional alpha per entry as tRNS). */
typedef void (*row_fn)(int y, int w, uint8_t *row);

static bool write_png(membuf *out, int w, int h, int color_type, int depth, int interlace,
                      row_fn fn, const png_color *palette, int npal, const uint8_t *trns,
                      int ntrns) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  uint8_t *row = malloc((size_t)w * 8);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(row);
    return false;
  }
  png_set_write_fn(png, out, mem_write, mem_flush);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color_type, interlace,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (palette) png_set_PLTE(png, info, palette, npal);
  if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
  png_write_info(png, info);
  int passes = png_set_interlace_handling(png);
  for (int p = 0; p < passes; p++)
    for (int y = 0; y < h; y++) {
      fn(y, w, row);
      png_write_row(png, row);
    }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(row);
  return true;
}

static void gray8_row(int y, int w, uint8_t *r) {
  for (int x = 0; x < w; x++) r[x] = (uint8_t)(x * 7 + y * 3);
}
static void gray16_row(int y, int w, uint8_t *r) { /* big-endian samples */
  for (int x = 0; x < w; x++) {
    unsigned v = (unsigned)(x * 7 + y * 3) % 256 * 257u; /* scales back to exactly the byte */
    r[2 * x] = (uint8_t)(v >> 8);
    r[2 * x + 1] = (uint8_t)v;
  }
}
static void gray1_row(int y, int w, uint8_t *r) {
  memset(r, 0, (size_t)(w + 7) / 8);
  for (int x = 0; x < w; x++)
    if ((x + y) % 2) r[x / 8] |= (uint8_t)(0x80 >> (x % 8));
}
static void rgba8_row(int y, int w, uint8_t *r) {
  for (int x = 0; x < w; x++) {
    r[4 * x] = (uint8_t)(x * 5);
    r[4 * x + 1] = (uint8_t)(y * 9);
    r[4 * x + 2] = (uint8_t)(x ^ y);
    r[4 * x + 3] = (uint8_t)(x * 11); /* alpha: dropped, not composited */
  }
}
static void graya8_row(int y, int w, uint8_t *r) {
  for (int x = 0; x < w; x++) {
    r[2 * x] = (uint8_t)(x * 7 + y * 3);
    r[2 * x + 1] = (uint8_t)(255 - x);
  }
}
static void rgb16_row(int y, int w, uint8_t *r) {
  for (int x = 0; x < w; x++)
    for (int c = 0; c < 3; c++) {
      unsigned v = (unsigned)((x * 5 + y * 9 + c * 40) % 256) * 257u;
      r[6 * x + 2 * c] = (uint8_t)(v >> 8);
      r[6 * x + 2 * c + 1] = (uint8_t)v;
    }
}
static void pal_row(int y, int w, uint8_t *r) {
  for (int x = 0; x < w; x++) r[x] = (uint8_t)((x + y) % 4);
}

static const png_color pal4[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};

static void expect_gray8(int x, int y, uint8_t e[3]) { e[0] = e[1] = e[2] = (uint8_t)(x * 7 + y * 3); }
static void expect_gray1(int x, int y, uint8_t e[3]) { e[0] = e[1] = e[2] = (x + y) % 2 ? 255 : 0; }
static void expect_rgba(int x, int y, uint8_t e[3]) {
  e[0] = (uint8_t)(x * 5), e[1] = (uint8_t)(y * 9), e[2] = (uint8_t)(x ^ y);
}
static void expect_rgb16(int x, int y, uint8_t e[3]) {
  for (int c = 0; c < 3; c++) e[c] = (uint8_t)((x * 5 + y * 9 + c * 40) % 256);
}
static void expect_pal(int x, int y, uint8_t e[3]) {
  const png_color *c = &pal4[(x + y) % 4];
  e[0] = c->red, e[1] = c->green, e[2] = c->blue;
}

HS_TEST(png_color_types_and_depths) {
  static const uint8_t trns[4] = {255, 0, 128, 255};
  struct {
    const char *name;
    int type, depth, interlace;
    row_fn fn;
    void (*expect)(int, int, uint8_t[3]);
    bool palette, alpha_palette;
  } cases[] = {
      {"gray8", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, gray8_row, expect_gray8, false, false},
      {"gray8 interlaced", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_ADAM7, gray8_row, expect_gray8,
       false, false},
      {"gray16", PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, gray16_row, expect_gray8, false, false},
      {"gray1", PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, gray1_row, expect_gray1, false, false},
      {"gray+alpha", PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, graya8_row, expect_gray8,
       false, false},
      {"rgba8", PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE, rgba8_row, expect_rgba, false, false},
      {"rgb16", PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, rgb16_row, expect_rgb16, false, false},
      {"palette", PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE, pal_row, expect_pal, true, false},
      {"palette+tRNS", PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_ADAM7, pal_row, expect_pal, true,
       true},
  };
  const int w = 29, h = 17;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    membuf buf = {0};
    CHECK_MSG(write_png(&buf, w, h, cases[k].type, cases[k].depth, cases[k].interlace, cases[k].fn,
                        cases[k].palette ? pal4 : NULL, 4, cases[k].alpha_palette ? trns : NULL, 4),
              "%s: libpng could not write the test file", cases[k].name);
    hs_image img;
    hs_status *st = hs_image_decode(buf.data, buf.len, &img);
    free(buf.data);
    CHECK_MSG(!st, "%s: %s", cases[k].name, hs_status_message(st));
    CHECK(img.width == w && img.height == h);
    int bad = 0;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        uint8_t e[3];
        cases[k].expect(x, y, e);
        if (memcmp(e, img.rgb + ((size_t)y * w + x) * 3, 3) != 0) bad++;
      }
    hs_image_free(&img);
    CHECK_MSG(bad == 0, "%s: %d pixels differ", cases[k].name, bad);
  }
}

/* ------------------------------------------------------ JPEG variants -- */

/* Encodes a uniform w x h JPEG with libjpeg in the given colour space. */
static bool write_jpeg(membuf *out, int w, int h, J_COLOR_SPACE space, int comps,
                       const uint8_t *pixel) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  unsigned char *data = NULL;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &data, &size);
  c.image_width = (JDIMENSION)w;
  c.image_height = (JDIMENSION)h;
  c.input_components = comps;
  c.in_color_space = space;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, space);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  uint8_t *row = malloc((size_t)w * comps);
  for (int x = 0; x < w; x++) memcpy(row + x * comps, pixel, (size_t)comps);
  while (c.next_scanline < c.image_height) jpeg_write_scanlines(&c, &row, 1);
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  free(row);
  out->data = data;
  out->len = size;
  return true;
}

static bool all_near(const hs_image *img, const uint8_t rgb[3], int tol) {
  for (size_t i = 0; i < (size_t)img->width * img->height; i++)
    for (int c = 0; c < 3; c++)
      if (abs((int)img->rgb[3 * i + c] - rgb[c]) > tol) return false;
  return true;
}

HS_TEST(jpeg_gray_and_cmyk) {
  membuf buf = {0};
  static const uint8_t g = 140;
  write_jpeg(&buf, 24, 16, JCS_GRAYSCALE, 1, &g);
  hs_image img;
  hs_status *st = hs_image_decode(buf.data, buf.len, &img);
  free(buf.data);
  CHECK_OK(st);
  uint8_t e[3] = {140, 140, 140};
  bool ok = img.width == 24 && img.height == 16 && all_near(&img, e, 1);
  hs_image_free(&img);
  CHECK(ok);
  /* libjpeg writes CMYK with an Adobe marker: stored values are inverted
   * ink, so (255, 0, 0, 255) is "no cyan ink, full magenta and yellow, no
   * black": red. */
  static const uint8_t cmyk[4] = {255, 0, 0, 255};
  buf = (membuf){0};
  write_jpeg(&buf, 16, 16, JCS_CMYK, 4, cmyk);
  st = hs_image_decode(buf.data, buf.len, &img);
  free(buf.data);
  CHECK_OK(st);
  uint8_t red[3] = {255, 0, 0};
  ok = all_near(&img, red, 3);
  hs_image_free(&img);
  CHECK(ok);
}

/* ---------------------------------------------------------- failures -- */

HS_TEST(truncated_and_garbage_fail_cleanly) {
  hs_image a, b;
  CHECK_OK(make_image(&a, 64, 48));
  for (int f = 0; f < 2; f++) {
    hs_image_format fmt = f ? HS_IMAGE_PNG : HS_IMAGE_JPEG;
    uint8_t *data;
    size_t n;
    CHECK_OK(hs_image_encode(&a, fmt, 90, &data, &n));
    /* every prefix that cuts into the image data is an error, never a crash */
    int ok_count = 0;
    for (size_t cut = 0; cut < n; cut += (cut < 200 ? 1 : 37)) {
      uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
      memcpy(copy, data, cut);
      hs_status *st = hs_image_decode(copy, cut, &b);
      free(copy);
      if (!st) {
        /* what follows the pixels (PNG's IEND, JPEG's EOI) is not needed */
        if (cut < n - (f ? 12 : 2)) ok_count++;
        hs_image_free(&b);
      }
      hs_status_free(st);
    }
    CHECK_MSG(ok_count == 0, "%s: %d truncated prefixes decoded", f ? "PNG" : "JPEG", ok_count);
    /* flipped bytes: errors or some image, never a crash */
    for (int t = 0; t < 300; t++) {
      uint8_t *copy = malloc(n);
      memcpy(copy, data, n);
      for (int k = 0; k < 4; k++) copy[8 + rnd() % (n - 8)] ^= (uint8_t)(1u << (rnd() % 8));
      hs_status *st = hs_image_decode(copy, n, &b);
      free(copy);
      if (!st) hs_image_free(&b);
      hs_status_free(st);
    }
    free(data);
  }
  hs_image_free(&a);
  CHECK_ERR(hs_image_decode("", 0, &b), HS_INVALID_ARGUMENT);
  CHECK_ERR(hs_image_decode("hello world", 11, &b), HS_INVALID_ARGUMENT);
  static const uint8_t jpeg_magic_only[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10};
  CHECK_ERR(hs_image_decode(jpeg_magic_only, sizeof jpeg_magic_only, &b), HS_INVALID_ARGUMENT);
  CHECK(b.rgb == NULL);
}

HS_TEST(huge_headers_are_refused_before_allocating) {
  hs_image a, b;
  CHECK_OK(make_image(&a, 16, 16));
  uint8_t *data;
  size_t n;
  /* JPEG: patch the SOF0 frame's size to 60000 x 60000 */
  CHECK_OK(hs_image_encode(&a, HS_IMAGE_JPEG, 90, &data, &n));
  bool patched = false;
  for (size_t i = 2; i + 9 < n; i++)
    if (data[i] == 0xFF && data[i + 1] == 0xC0) {
      data[i + 5] = 0xEA, data[i + 6] = 0x60; /* height */
      data[i + 7] = 0xEA, data[i + 8] = 0x60; /* width */
      patched = true;
      break;
    }
  CHECK(patched);
  hs_status *st = hs_image_decode(data, n, &b);
  free(data);
  CHECK_MSG(hs_status_code_of(st) == HS_RESOURCE_EXHAUSTED, "%s", hs_status_message(st));
  hs_status_free(st);
  /* PNG: IHDR 100000 x 100000 (within libpng's own limits), CRC fixed up */
  CHECK_OK(hs_image_encode(&a, HS_IMAGE_PNG, 90, &data, &n));
  CHECK(memcmp(data + 12, "IHDR", 4) == 0);
  const uint8_t big[4] = {0x00, 0x01, 0x86, 0xA0};
  memcpy(data + 16, big, 4);
  memcpy(data + 20, big, 4);
  uLong crc = crc32(0, data + 12, 17);
  data[29] = (uint8_t)(crc >> 24), data[30] = (uint8_t)(crc >> 16);
  data[31] = (uint8_t)(crc >> 8), data[32] = (uint8_t)crc;
  st = hs_image_decode(data, n, &b);
  free(data);
  CHECK_MSG(hs_status_code_of(st) == HS_RESOURCE_EXHAUSTED, "%s", hs_status_message(st));
  hs_status_free(st);
  hs_image_free(&a);
}

HS_TEST(files_load_and_save) {
  char dir[] = "/tmp/hs_client_image.XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char png[256], jpg[256], txt[256], bad[256], noext[256];
  snprintf(png, sizeof png, "%s/a.png", dir);
  snprintf(jpg, sizeof jpg, "%s/a.JPEG", dir);
  snprintf(txt, sizeof txt, "%s/a.txt", dir);
  snprintf(bad, sizeof bad, "%s/missing/a.png", dir);
  snprintf(noext, sizeof noext, "%s/a", dir);
  hs_image a, b;
  CHECK_OK(make_image(&a, 33, 21));
  CHECK_OK(hs_image_save(&a, png, 90));
  CHECK_OK(hs_image_save(&a, jpg, 90));
  CHECK_OK(hs_image_load(png, &b));
  bool same = b.width == 33 && b.height == 21 && memcmp(a.rgb, b.rgb, 33 * 21 * 3) == 0;
  hs_image_free(&b);
  CHECK(same);
  CHECK_OK(hs_image_load(jpg, &b));
  double err = mean_abs_diff(&a, &b);
  hs_image_free(&b);
  CHECK_MSG(err < 4, "%.2f", err);
  struct stat st;
  CHECK(stat(png, &st) == 0 && (st.st_mode & 0777) == 0644);
  FILE *f = fopen(txt, "w");
  fputs("not an image\n", f);
  fclose(f);
  hs_status *s = hs_image_load(txt, &b);
  CHECK(s && strstr(hs_status_message(s), "a.txt") && strstr(hs_status_message(s), "not a JPEG or PNG"));
  hs_status_free(s);
  s = hs_image_load(bad, &b);
  CHECK(hs_status_code_of(s) == HS_IO_ERROR && strstr(hs_status_message(s), "No such file"));
  hs_status_free(s);
  CHECK_ERR(hs_image_load(dir, &b), HS_IO_ERROR); /* a directory */
  CHECK_ERR(hs_image_save(&a, bad, 90), HS_IO_ERROR);
  CHECK_ERR(hs_image_save(&a, noext, 90), HS_INVALID_ARGUMENT);
  hs_image_free(&a);
  unlink(png);
  unlink(jpg);
  unlink(txt);
  rmdir(dir);
  /* nothing else (no temporary files) was left behind */
  CHECK(access(dir, F_OK) != 0);
}

int main(void) {
  HS_RUN(sniff_and_extensions);
  HS_RUN(alloc_checks_sizes);
  HS_RUN(png_round_trip_is_exact);
  HS_RUN(jpeg_round_trip_is_close);
  HS_RUN(png_color_types_and_depths);
  HS_RUN(jpeg_gray_and_cmyk);
  HS_RUN(truncated_and_garbage_fail_cleanly);
  HS_RUN(huge_headers_are_refused_before_allocating);
  HS_RUN(files_load_and_save);
  return hs_test_summary();
}
