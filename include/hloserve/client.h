/*
 * client.h - the detection client: image I/O, KServe v2 messages over HTTP,
 * and drawing detections (the library under `hloserve-detect`).
 *
 *   hs_image img;
 *   HS_RETURN_IF_ERROR(hs_image_load("street.jpg", &img));
 *   hs_client *c;
 *   HS_RETURN_IF_ERROR(hs_client_create("http://127.0.0.1:8000", 120, &c));
 *   hs_model_info info;
 *   HS_RETURN_IF_ERROR(hs_client_model_info(c, "my_detector", &info));
 *   hs_detections d;
 *   HS_RETURN_IF_ERROR(hs_client_detect(c, &info, &img, &d, NULL));
 *   hs_labels labels;
 *   HS_RETURN_IF_ERROR(hs_labels_coco(&labels));
 *   HS_RETURN_IF_ERROR(hs_draw_detections(&img, &d, &labels, 0.5f));
 *   HS_RETURN_IF_ERROR(hs_image_save(&img, "detections.jpg", 90));
 *
 * Design:
 *  - Three layers kept apart so that each can be tested without the others:
 *    pure message code (hs_kserve_*: bytes in, bytes out, no network), the
 *    HTTP transport (hs_client_*, libcurl), and pixels (hs_image_*, hs_draw_*).
 *    The unit tests feed the message layer truncated and garbage answers
 *    directly; only the Python test needs a socket.
 *  - The client assumes nothing about the server beyond the KServe v2
 *    protocol: the input's name and dtype come from the model's metadata, the
 *    output may come back binary or as JSON, flat or nested, in any real dtype,
 *    and the detector's output is [N, 5|6] rows [x1, y1, x2, y2, score(, class)]
 *    in the image's own pixels (leading dims of 1 are tolerated).
 *  - Images are always 8-bit RGB in memory, interleaved, row-major: what
 *    every decoder can produce and what cairo and the wire format need with a
 *    single pass of reordering.
 *  - Every fallible call returns an hs_status with a message a user can act on;
 *    outputs are zeroed on entry and owned by the caller afterwards (each type
 *    has a _free that accepts a zeroed value).
 */
#ifndef HLOSERVE_CLIENT_H
#define HLOSERVE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hloserve/status.h"
#include "hloserve/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- images -- */

/* Larger images are refused before their pixels are allocated (a 30-byte
 * JPEG header can claim 65500x65500). */
#define HS_IMAGE_MAX_PIXELS ((int64_t)1 << 27)

typedef struct hs_image {
  int width, height;
  uint8_t *rgb; /* width*height*3 bytes, RGB interleaved, row-major; malloc'd */
} hs_image;

typedef enum hs_image_format {
  HS_IMAGE_UNKNOWN = 0,
  HS_IMAGE_JPEG,
  HS_IMAGE_PNG
} hs_image_format;

/* The format of encoded bytes, from their magic number. */
hs_image_format hs_image_sniff(const void *data, size_t n);
/* The format a file name asks for: .jpg/.jpeg/.png, any case. */
hs_image_format hs_image_format_for_path(const char *path);

/* A zeroed w x h image (w, h >= 1 and within HS_IMAGE_MAX_PIXELS). */
hs_status *hs_image_alloc(hs_image *img, int width, int height);
void hs_image_free(hs_image *img);

/* Decodes JPEG (gray, YCbCr, CMYK/YCCK) or PNG (any bit depth; gray, RGB,
 * palette, with or without alpha: alpha is dropped, as Pillow's
 * convert("RGB") does) into 8-bit RGB.  EXIF orientation is not applied. */
hs_status *hs_image_decode(const void *data, size_t n, hs_image *out);
hs_status *hs_image_load(const char *path, hs_image *out);

/* Encodes to JPEG (quality 1..100, 4:2:0) or PNG; *data is malloc'd. */
hs_status *hs_image_encode(const hs_image *img, hs_image_format format, int jpeg_quality,
                           uint8_t **data, size_t *n);
/* Writes by the path's extension (hs_image_format_for_path); atomically
 * (a temporary file renamed into place). */
hs_status *hs_image_save(const hs_image *img, const char *path, int jpeg_quality);

/* ------------------------------------------------------------ detections -- */

typedef struct hs_detections {
  int64_t count; /* rows */
  int cols;      /* 5: [x1, y1, x2, y2, score]; 6: ... plus class */
  float *rows;   /* count*cols floats, row-major; malloc'd (NULL when count is 0) */
} hs_detections;

void hs_detections_free(hs_detections *d);
/* Row i's class id, or -1 when there is no class column or the value is not a
 * non-negative integer that fits an int. */
int hs_detection_class(const hs_detections *d, int64_t i);

/* ---------------------------------------------------------------- labels -- */

typedef struct hs_labels {
  int count;
  char **names; /* names[class id] */
} hs_labels;

/* The 91 COCO category names of torchvision's detection weights (index 0 is
 * "__background__"; ids without a category are "N/A"). */
hs_status *hs_labels_coco(hs_labels *out);
/* One name per line (line 1 is class 0); trailing CR/blank end ignored. */
hs_status *hs_labels_load(const char *path, hs_labels *out);
/* The name of a class id: labels' entry, else "class N" (or "object" for -1)
 * written to buf. labels may be NULL. */
const char *hs_labels_name(const hs_labels *labels, int id, char *buf, size_t cap);
void hs_labels_free(hs_labels *l);

/* ------------------------------------------------- KServe v2 (messages) -- */

/* What the client needs to know about a served detector. */
typedef struct hs_model_info {
  char *name;        /* the model's name (as asked for) */
  char *input_name;  /* the first input's */
  hs_dtype input_dtype; /* HS_U8 or HS_F32 */
  char *output_name; /* "OUTPUT__0" when the model has it, else its first output */
} hs_model_info;

void hs_model_info_free(hs_model_info *m);

/* Parses GET /v2/models/{m}'s answer.  Refuses input dtypes other than UINT8
 * and FP32 (HS_UNIMPLEMENTED) and metadata without a named, typed input;
 * metadata that lists no outputs gets "OUTPUT__0". */
hs_status *hs_kserve_parse_metadata(const char *json, size_t n, const char *model,
                                    hs_model_info *out);

/* A request body: header_len bytes of JSON, then the binary tensor. */
typedef struct hs_kserve_body {
  uint8_t *data; /* malloc'd */
  size_t size;
  size_t header_len; /* the Inference-Header-Content-Length value */
} hs_kserve_body;

void hs_kserve_body_free(hs_kserve_body *b);

/* Builds the infer request for one image: input [1, 3, H, W] in info's dtype
 * (UINT8: the bytes; FP32: byte / 255), binary, and asks for info's output as
 * binary. */
hs_status *hs_kserve_build_infer(const hs_model_info *info, const hs_image *img,
                                 hs_kserve_body *out);

/* Parses an infer answer.  header_len: the Inference-Header-Content-Length
 * response header, or -1 when absent (the body is all JSON).  Finds
 * output_name (or the only output), in binary or JSON form.  parameters, when
 * not NULL, receives the response's "parameters" object as compact JSON text
 * (malloc'd), or NULL when it has none. */
hs_status *hs_kserve_parse_infer(const void *body, size_t n, int64_t header_len,
                                 const char *output_name, hs_detections *out,
                                 char **parameters);

/* The message of an error answer ({"error": "..."}), or a printable excerpt
 * of a body that is not one; malloc'd, never NULL except out of memory. */
char *hs_kserve_error_text(const void *body, size_t n);

/* ------------------------------------------------------ KServe v2 (HTTP) -- */

typedef struct hs_client hs_client;

/* base_url: "http://host:port" (a missing scheme means http://; a trailing
 * slash is fine).  timeout_s bounds each request (0: none). */
hs_status *hs_client_create(const char *base_url, double timeout_s, hs_client **out);
void hs_client_free(hs_client *c);

/* The model to use when none is named: the only ready model of the server's
 * repository index (POST /v2/repository/index, a Triton extension that
 * hloserve serves).  Errors say which names were found. */
hs_status *hs_client_default_model(hs_client *c, char **model);
/* GET /v2/models/{model}. */
hs_status *hs_client_model_info(hs_client *c, const char *model, hs_model_info *out);
/* POST /v2/models/{model}/infer with the image; see hs_kserve_parse_infer. */
hs_status *hs_client_detect(hs_client *c, const hs_model_info *info, const hs_image *img,
                            hs_detections *out, char **parameters);

/* --------------------------------------------------------------- drawing -- */

/* Line width and font size (pixels) used for an image of this size. */
void hs_draw_style(int width, int height, double *line_width, double *font_size);

/* Draws each detection with score >= score_min (and finite coordinates):
 * the box in its class's colour, and "name score" on a filled label at the
 * box's top-left corner (above the box when there is room, else inside). */
hs_status *hs_draw_detections(hs_image *img, const hs_detections *d, const hs_labels *labels,
                              float score_min);

/* Frees cairo's and fontconfig's process-wide caches (fonts).  Call at most
 * once, at exit, after the last drawing. */
void hs_draw_cleanup(void);

/* The colour of a class id (-1 included) as 0xRRGGBB; stable across runs. */
uint32_t hs_class_color(int id);

#ifdef __cplusplus
}
#endif
#endif /* HLOSERVE_CLIENT_H */
