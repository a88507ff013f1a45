/*
 * image.c - JPEG and PNG decoding and encoding to and from 8-bit RGB.
 *
 * Design:
 *  - Both codecs work on memory buffers, not FILE*s: decoding what a test
 *    built in memory and encoding for a round trip need no temporary files,
 *    and a whole image file is small next to its decoded pixels.
 *  - libjpeg and libpng report errors by longjmp.  Each decoder keeps the
 *    only state that must survive the jump (the pixel buffer, the row
 *    pointers) in volatile locals, and the jump target frees them and returns
 *    a status; nothing else is live across a jump.
 *  - Conversions are left to the codecs where they are exact (YCbCr/gray to
 *    RGB, palette and tRNS expansion, 16 to 8 bits); only CMYK, which libjpeg
 *    cannot turn into RGB, is converted here.  No gamma correction is applied,
 *    so pixels equal what Pillow and torchvision's decoders produce.
 *  - A truncated JPEG is an error (libjpeg would only warn and fill gray), so
 *    a half-downloaded photo is reported rather than silently detected on.
 *  - Sizes are checked against HS_IMAGE_MAX_PIXELS from the header, before
 *    any pixel memory is allocated.
 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "client/client_internal.h"
#include "hloserve/client.h"

/* An image file larger than this is refused before reading (a decoded image
 * is capped by HS_IMAGE_MAX_PIXELS; its file is never larger than ~3x that). */
#define MAX_IMAGE_FILE_BYTES ((size_t)1 << 30)

hs_image_format hs_image_sniff(const void *data, size_t n) {
  const uint8_t *p = data;
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return HS_IMAGE_JPEG;
  static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n >= 8 && memcmp(p, png_magic, 8) == 0) return HS_IMAGE_PNG;
  return HS_IMAGE_UNKNOWN;
}

hs_image_format hs_image_format_for_path(const char *path) {
  const char *dot = strrchr(path, '.');
  const char *slash = strrchr(path, '/');
  if (!dot || (slash && dot < slash)) return HS_IMAGE_UNKNOWN;
  if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0) return HS_IMAGE_JPEG;
  if (strcasecmp(dot, ".png") == 0) return HS_IMAGE_PNG;
  return HS_IMAGE_UNKNOWN;
}

static hs_status *check_size(const char *what, int64_t w, int64_t h) {
  if (w < 1 || h < 1)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s has an empty size %lldx%lld", what,
                         (long long)w, (long long)h);
  if (w > HS_IMAGE_MAX_PIXELS || h > HS_IMAGE_MAX_PIXELS || w * h > HS_IMAGE_MAX_PIXELS)
    return hs_status_new(HS_RESOURCE_EXHAUSTED,
                         "%s is %lldx%lld pixels, more than the %lld pixels the client accepts",
                         what, (long long)w, (long long)h, (long long)HS_IMAGE_MAX_PIXELS);
  return NULL;
}

hs_status *hs_image_alloc(hs_image *img, int width, int height) {
  memset(img, 0, sizeof *img);
  HS_RETURN_IF_ERROR(check_size("the image", width, height));
  img->rgb = calloc((size_t)width * (size_t)height, 3);
  if (!img->rgb) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory for a %dx%d image", width, height);
  img->width = width;
  img->height = height;
  return NULL;
}

void hs_image_free(hs_image *img) {
  if (!img) return;
  free(img->rgb);
  memset(img, 0, sizeof *img);
}

/* ------------------------------------------------------------------ JPEG -- */

typedef struct jpeg_err {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  int truncated;
  char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_error(j_common_ptr cinfo) {
  jpeg_err *e = (jpeg_err *)cinfo->err;
  e->pub.format_message(cinfo, e->msg);
  longjmp(e->jump, 1);
}

/* Warnings are silent, except the one that means the data ran out. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
  jpeg_err *e = (jpeg_err *)cinfo->err;
  if (level < 0 && e->pub.msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

static hs_status *decode_jpeg(const uint8_t *data, size_t n, hs_image *out) {
  struct jpeg_decompress_struct cinfo;
  jpeg_err err;
  uint8_t *volatile pixels = NULL;
  uint8_t *volatile cmyk_row = NULL;
  memset(&err, 0, sizeof err);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_on_error;
  err.pub.emit_message = jpeg_on_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(pixels);
    free(cmyk_row);
    return hs_status_new(HS_INVALID_ARGUMENT, "not a readable JPEG: %s", err.msg);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)n);
  jpeg_read_header(&cinfo, TRUE);
  hs_status *st = check_size("the JPEG", cinfo.image_width, cinfo.image_height);
  if (st) {
    jpeg_destroy_decompress(&cinfo);
    return st;
  }
  bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
  int comps = cinfo.output_components;
  if (comps != (cmyk ? 4 : 3)) {
    jpeg_destroy_decompress(&cinfo);
    return hs_status_new(HS_UNIMPLEMENTED, "JPEG decodes to %d components, not %d", comps,
                         cmyk ? 4 : 3);
  }
  pixels = malloc((size_t)w * (size_t)h * 3);
  if (cmyk) cmyk_row = malloc((size_t)w * 4);
  if (!pixels || (cmyk && !cmyk_row)) {
    jpeg_destroy_decompress(&cinfo);
    free(pixels);
    free(cmyk_row);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory decoding a %dx%d JPEG", w, h);
  }
  /* Adobe writes CMYK inverted (0 = full ink); plain CMYK is not. */
  bool inverted = cinfo.saw_Adobe_marker;
  while (cinfo.output_scanline < cinfo.output_height && !err.truncated) {
    uint8_t *dst = pixels + (size_t)cinfo.output_scanline * (size_t)w * 3;
    JSAMPROW row = cmyk ? cmyk_row : dst;
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
    if (cmyk) {
      for (int x = 0; x < w; x++) {
        const uint8_t *s = cmyk_row + 4 * x;
        unsigned k = inverted ? s[3] : 255u - s[3];
        for (int c = 0; c < 3; c++) {
          unsigned v = inverted ? s[c] : 255u - s[c];
          dst[3 * x + c] = (uint8_t)((v * k + 127) / 255);
        }
      }
    }
  }
  if (err.truncated || cinfo.output_scanline < cinfo.output_height) {
    jpeg_destroy_decompress(&cinfo);
    free(pixels);
    free(cmyk_row);
    return hs_status_new(HS_INVALID_ARGUMENT, "not a readable JPEG: the data is truncated");
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  free(cmyk_row);
  out->width = w;
  out->height = h;
  out->rgb = pixels;
  return NULL;
}

static hs_status *encode_jpeg(const hs_image *img, int quality, uint8_t **data, size_t *n) {
  struct jpeg_compress_struct cinfo;
  jpeg_err err;
  unsigned char *volatile buf = NULL;
  unsigned long size = 0;
  memset(&err, 0, sizeof err);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_on_error;
  err.pub.emit_message = jpeg_on_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    free(buf);
    return hs_status_new(HS_INTERNAL, "JPEG encoding failed: %s", err.msg);
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, (unsigned char **)&buf, &size);
  cinfo.image_width = (JDIMENSION)img->width;
  cinfo.image_height = (JDIMENSION)img->height;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = img->rgb + (size_t)cinfo.next_scanline * (size_t)img->width * 3;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  *data = buf;
  *n = size;
  return NULL;
}

/* ------------------------------------------------------------------- PNG -- */

typedef struct png_err {
  jmp_buf jump;
  char msg[256];
} png_err;

typedef struct png_reader {
  const uint8_t *data;
  size_t n, pos;
} png_reader;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_err *e = png_get_error_ptr(png);
  snprintf(e->msg, sizeof e->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {}

static void png_read_mem(png_structp png, png_bytep out, size_t len) {
  png_reader *r = png_get_io_ptr(png);
  if (len > r->n - r->pos) png_error(png, "the data is truncated");
  memcpy(out, r->data + r->pos, len);
  r->pos += len;
}

static hs_status *decode_png(const uint8_t *data, size_t n, hs_image *out) {
  png_err err;
  memset(&err, 0, sizeof err);
  png_reader reader = {data, n, 0};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_on_error,
                                           png_on_warning);
  if (!png) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory decoding a PNG");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory decoding a PNG");
  }
  uint8_t *volatile pixels = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    free(rows);
    return hs_status_new(HS_INVALID_ARGUMENT, "not a readable PNG: %s", err.msg);
  }
  png_set_read_fn(png, &reader, png_read_mem);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  hs_status *st = check_size("the PNG", w, h);
  if (st) {
    png_destroy_read_struct(&png, &info, NULL);
    return st;
  }
  png_set_expand(png);   /* palette -> RGB, gray < 8 bits -> 8 bits, tRNS -> alpha */
  png_set_scale_16(png); /* 16 -> 8 bits, rounded */
  png_set_gray_to_rgb(png);
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != (size_t)w * 3 || png_get_channels(png, info) != 3) {
    png_destroy_read_struct(&png, &info, NULL);
    return hs_status_new(HS_UNIMPLEMENTED, "PNG does not convert to 8-bit RGB (%zu bytes a row)",
                         (size_t)png_get_rowbytes(png, info));
  }
  pixels = malloc((size_t)w * h * 3);
  rows = malloc(sizeof(png_bytep) * h);
  if (!pixels || !rows) {
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    free(rows);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory decoding a %ux%u PNG", (unsigned)w,
                         (unsigned)h);
  }
  for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + (size_t)y * w * 3;
  png_read_image(png, rows);
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  out->width = (int)w;
  out->height = (int)h;
  out->rgb = pixels;
  return NULL;
}

static void png_write_mem(png_structp png, png_bytep p, size_t len) {
  hs_cbuf *b = png_get_io_ptr(png);
  if (!hs_cbuf_append(b, p, len)) png_error(png, "out of memory");
}

static void png_flush_mem(png_structp png) {}

static hs_status *encode_png(const hs_image *img, uint8_t **data, size_t *n) {
  png_err err;
  memset(&err, 0, sizeof err);
  hs_cbuf buf = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_on_error,
                                            png_on_warning);
  if (!png) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory encoding a PNG");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory encoding a PNG");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    hs_cbuf_free(&buf);
    return hs_status_new(HS_INTERNAL, "PNG encoding failed: %s", err.msg);
  }
  png_set_write_fn(png, &buf, png_write_mem, png_flush_mem);
  png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < img->height; y++)
    png_write_row(png, img->rgb + (size_t)y * (size_t)img->width * 3);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  *data = buf.data;
  *n = buf.len;
  return NULL;
}

/* ---------------------------------------------------------------- public -- */

hs_status *hs_image_decode(const void *data, size_t n, hs_image *out) {
  memset(out, 0, sizeof *out);
  switch (hs_image_sniff(data, n)) {
    case HS_IMAGE_JPEG: return decode_jpeg(data, n, out);
    case HS_IMAGE_PNG: return decode_png(data, n, out);
    default:
      return hs_status_new(HS_INVALID_ARGUMENT, n == 0 ? "the file is empty"
                                                       : "not a JPEG or PNG image");
  }
}

hs_status *hs_image_load(const char *path, hs_image *out) {
  memset(out, 0, sizeof *out);
  uint8_t *data;
  size_t n;
  HS_RETURN_IF_ERROR(hs_client_read_file(path, "image", MAX_IMAGE_FILE_BYTES, &data, &n));
  hs_status *st = hs_image_decode(data, n, out);
  free(data);
  return hs_status_annotate(st, "image '%s'", path);
}

hs_status *hs_image_encode(const hs_image *img, hs_image_format format, int jpeg_quality,
                           uint8_t **data, size_t *n) {
  *data = NULL;
  *n = 0;
  if (!img->rgb) return hs_status_new(HS_INVALID_ARGUMENT, "cannot encode an empty image");
  HS_RETURN_IF_ERROR(check_size("the image", img->width, img->height));
  switch (format) {
    case HS_IMAGE_JPEG:
      if (jpeg_quality < 1 || jpeg_quality > 100)
        return hs_status_new(HS_INVALID_ARGUMENT, "JPEG quality %d is not in 1..100", jpeg_quality);
      return encode_jpeg(img, jpeg_quality, data, n);
    case HS_IMAGE_PNG: return encode_png(img, data, n);
    default: return hs_status_new(HS_INVALID_ARGUMENT, "unknown image format");
  }
}

hs_status *hs_image_save(const hs_image *img, const char *path, int jpeg_quality) {
  hs_image_format f = hs_image_format_for_path(path);
  if (f == HS_IMAGE_UNKNOWN)
    return hs_status_new(HS_INVALID_ARGUMENT,
                         "cannot tell the format of '%s': name it .jpg, .jpeg or .png", path);
  uint8_t *data;
  size_t n;
  HS_RETURN_IF_ERROR(hs_status_annotate(hs_image_encode(img, f, jpeg_quality, &data, &n),
                                        "writing '%s'", path));
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 8);
  if (!tmp) {
    free(data);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory writing '%s'", path);
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".XXXXXX", 8);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    free(data);
    return hs_status_new(HS_IO_ERROR, "cannot write '%s': %s", path, strerror(e));
  }
  size_t off = 0;
  int e = 0;
  while (off < n) {
    ssize_t k = write(fd, data + off, n - off);
    if (k < 0) {
      if (errno == EINTR) continue;
      e = errno;
      break;
    }
    off += (size_t)k;
  }
  if (!e && fchmod(fd, 0644) != 0) e = errno;
  if (close(fd) != 0 && !e) e = errno;
  if (!e && rename(tmp, path) != 0) e = errno;
  if (e) unlink(tmp);
  free(tmp);
  free(data);
  if (e) return hs_status_new(HS_IO_ERROR, "cannot write '%s': %s", path, strerror(e));
  return NULL;
}
