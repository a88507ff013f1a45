/*
 * hloserve-detect - send images to a KServe v2 detector, print and draw what
 * it finds.
 *
 *   hloserve-detect IMAGE... [--url http://127.0.0.1:8000] [--model NAME]
 *                   [-o detections.jpg] [--no-draw] [--json] [--labels coco|FILE]
 *                   [--score-min 0.5] [--timeout 300]
 *
 * Design: a thin loop over the client library (hloserve/client.h).  Everything
 * that can be checked before talking to the server (options, the output's
 * format, the labels file) is, so a typo costs no inference.  The server is
 * asked for the model's metadata once; then each image is loaded, sent,
 * printed and drawn on its own, and a failing image is reported and skipped
 * so the others still run (the exit status says something failed).  With
 * --json, stdout holds exactly one JSON document (an array, one object per
 * image) and everything else goes to stderr, so the output pipes into jq.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hloserve/client.h"

#define PROG "hloserve-detect"

static void usage(FILE *f) {
  fprintf(f,
          "usage: " PROG " IMAGE... [options]\n"
          "\n"
          "Sends each image (JPEG or PNG) to a KServe v2 object detector, prints the\n"
          "detections and draws them onto the image.\n"
          "\n"
          "  --url URL          server address (default http://127.0.0.1:8000)\n"
          "  --model NAME       model to call (default: the server's only ready model)\n"
          "  -o, --output PATH  drawn image, .jpg/.jpeg (quality 90) or .png\n"
          "                     (default detections.jpg; with several images NAME_0.jpg,\n"
          "                     NAME_1.jpg, ... in the order given)\n"
          "  --no-draw          do not write drawn images\n"
          "  --json             print JSON (an array, one object per image) instead of tables\n"
          "  --labels coco|FILE class names: torchvision's COCO names (default) or a file\n"
          "                     with one name per line (line 1 is class 0)\n"
          "  --score-min X      print, draw and keep detections with score >= X (default 0.5)\n"
          "  --timeout S        seconds to wait for each answer (default 300; 0: forever)\n"
          "  -h, --help         this help\n"
          "\n"
          "Exit status: 0 when every image was detected (and drawn), 1 when anything failed,\n"
          "2 for bad usage.\n");
}

typedef struct options {
  const char *url, *model, *output, *labels;
  bool json, draw;
  double score_min, timeout_s;
} options;

static bool parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v)) return false;
  *out = v;
  return true;
}

/* The drawn image's name for image i of n: the -o path itself when n == 1,
 * else stem_i.ext. */
static char *output_name(const char *path, int i, int n) {
  size_t len = strlen(path) + 24;
  char *s = malloc(len);
  if (!s) return NULL;
  if (n == 1) {
    snprintf(s, len, "%s", path);
    return s;
  }
  const char *dot = strrchr(path, '.');
  const char *slash = strrchr(path, '/');
  if (!dot || (slash && dot < slash)) dot = path + strlen(path);
  snprintf(s, len, "%.*s_%d%s", (int)(dot - path), path, i, dot);
  return s;
}

static void print_table(const char *path, const hs_image *img, const hs_model_info *info,
                        const hs_detections *d, const hs_labels *labels, double score_min,
                        const char *parameters) {
  int64_t kept = 0;
  for (int64_t i = 0; i < d->count; i++)
    if (d->rows[i * d->cols + 4] >= score_min) kept++;
  printf("%s (%dx%d): %lld detection%s with score >= %g (of %lld), model %s\n", path, img->width,
         img->height, (long long)kept, kept == 1 ? "" : "s", score_min, (long long)d->count,
         info->name);
  if (kept) printf("  %-20s %6s %8s %8s %8s %8s\n", "label", "score", "x1", "y1", "x2", "y2");
  for (int64_t i = 0; i < d->count; i++) {
    const float *r = d->rows + i * d->cols;
    if (!(r[4] >= score_min)) continue;
    char buf[32];
    const char *name = hs_labels_name(labels, hs_detection_class(d, i), buf, sizeof buf);
    printf("  %-20.40s %6.3f %8.1f %8.1f %8.1f %8.1f\n", name, r[4], r[0], r[1], r[2], r[3]);
  }
  if (parameters) printf("  server parameters: %s\n", parameters);
}

/* The shortest decimal that reads back as f in float32 (0.97f, not
 * 0.970000029), as a double: printed with 9 significant digits it shows that
 * short form, and it parses back to exactly the server's float. */
static double short_real(float f) {
  if (!isfinite(f)) return f;
  char buf[32];
  for (int digits = 6; digits < 9; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
    double d = strtod(buf, NULL);
    if ((float)d == f) return d;
  }
  return f;
}

/* A JSON number, or null for what JSON cannot hold (NaN, infinities). */
static json_t *json_num(float f) { return isfinite(f) ? json_real(short_real(f)) : json_null(); }

/* One image's JSON object: the detections that passed the filter, as the
 * server sent them (float32 values, printed so that they read back exactly). */
static json_t *image_json(const char *path, const hs_image *img, const hs_model_info *info,
                          const hs_detections *d, const hs_labels *labels, double score_min,
                          const char *parameters, const char *drawn) {
  json_t *dets = json_array();
  for (int64_t i = 0; dets && i < d->count; i++) {
    const float *r = d->rows + i * d->cols;
    if (!(r[4] >= score_min)) continue;
    json_t *o = json_pack("{s:[o,o,o,o], s:o}", "box", json_num(r[0]), json_num(r[1]),
                          json_num(r[2]), json_num(r[3]), "score", json_num(r[4]));
    if (o && d->cols == 6) {
      int cls = hs_detection_class(d, i);
      char buf[32];
      json_object_set_new(o, "label", cls >= 0 ? json_integer(cls) : json_num(r[5]));
      json_object_set_new(o, "label_name", json_string(hs_labels_name(labels, cls, buf, sizeof buf)));
    }
    if (!o || json_array_append_new(dets, o) != 0) {
      json_decref(dets);
      dets = NULL;
    }
  }
  if (!dets) return NULL;
  json_t *obj = json_pack("{s:s, s:i, s:i, s:s, s:s, s:f, s:I, s:o}", "image", path, "width",
                          img->width, "height", img->height, "model", info->name, "output",
                          info->output_name, "score_min", score_min, "count",
                          (json_int_t)json_array_size(dets), "detections", dets);
  if (!obj) return NULL;
  if (parameters) {
    json_t *p = json_loads(parameters, 0, NULL);
    if (p) json_object_set_new(obj, "parameters", p);
  }
  if (drawn) json_object_set_new(obj, "drawn", json_string(drawn));
  return obj;
}

static void report(const char *what, hs_status *st) {
  if (what)
    fprintf(stderr, PROG ": %s: %s\n", what, hs_status_message(st));
  else
    fprintf(stderr, PROG ": %s\n", hs_status_message(st));
  hs_status_free(st);
}

static int run(const options *o, char **images, int n) {
  hs_labels labels = {0};
  hs_status *st = strcmp(o->labels, "coco") == 0 ? hs_labels_coco(&labels)
                                                 : hs_labels_load(o->labels, &labels);
  if (st) {
    report(NULL, st);
    return 1;
  }
  hs_client *client = NULL;
  hs_model_info info = {0};
  char *model = NULL;
  int rc = 0;
  st = hs_client_create(o->url, o->timeout_s, &client);
  if (!st && !o->model) st = hs_client_default_model(client, &model);
  if (!st) st = hs_client_model_info(client, o->model ? o->model : model, &info);
  if (st) {
    report(NULL, st);
    hs_client_free(client);
    hs_labels_free(&labels);
    free(model);
    return 1;
  }
  json_t *all = o->json ? json_array() : NULL;
  for (int i = 0; i < n; i++) {
    hs_image img;
    st = hs_image_load(images[i], &img);
    if (st) {
      report(NULL, st);
      rc = 1;
      continue;
    }
    hs_detections det;
    char *parameters = NULL;
    st = hs_client_detect(client, &info, &img, &det, &parameters);
    if (st) {
      report(images[i], st);
      hs_image_free(&img);
      rc = 1;
      continue;
    }
    char *drawn = NULL;
    if (o->draw) {
      drawn = output_name(o->output, i, n);
      st = drawn ? hs_draw_detections(&img, &det, &labels, (float)o->score_min)
                 : hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
      if (!st) st = hs_image_save(&img, drawn, 90);
      if (st) {
        report(images[i], st);
        free(drawn);
        drawn = NULL;
        rc = 1;
      }
    }
    if (all) {
      json_t *obj = image_json(images[i], &img, &info, &det, &labels, o->score_min, parameters,
                               drawn);
      if (!obj || json_array_append_new(all, obj) != 0) {
        fprintf(stderr, PROG ": out of memory building the JSON output\n");
        rc = 1;
      }
    } else {
      print_table(images[i], &img, &info, &det, &labels, o->score_min, parameters);
      if (drawn) printf("wrote %s\n", drawn);
    }
    free(drawn);
    free(parameters);
    hs_detections_free(&det);
    hs_image_free(&img);
  }
  if (all) { /* one image a line: readable, greppable, still one JSON document */
    fputs("[", stdout);
    size_t k;
    json_t *obj;
    json_array_foreach(all, k, obj) {
      fputs(k ? ",\n " : "", stdout);
      if (json_dumpf(obj, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9)) != 0) rc = 1;
    }
    fputs("]\n", stdout);
    json_decref(all);
  }
  if (fflush(stdout) != 0) {
    fprintf(stderr, PROG ": cannot write to stdout: %s\n", strerror(errno));
    rc = 1;
  }
  hs_model_info_free(&info);
  hs_client_free(client);
  hs_labels_free(&labels);
  free(model);
  return rc;
}

int main(int argc, char **argv) {
  options o = {.url = "http://127.0.0.1:8000", .output = "detections.jpg", .labels = "coco",
               .draw = true, .score_min = 0.5, .timeout_s = 300};
  enum { O_URL = 256, O_MODEL, O_JSON, O_LABELS, O_SCORE, O_TIMEOUT, O_NODRAW };
  static const struct option longopts[] = {
      {"url", required_argument, NULL, O_URL},       {"model", required_argument, NULL, O_MODEL},
      {"output", required_argument, NULL, 'o'},      {"json", no_argument, NULL, O_JSON},
      {"labels", required_argument, NULL, O_LABELS}, {"score-min", required_argument, NULL, O_SCORE},
      {"timeout", required_argument, NULL, O_TIMEOUT}, {"no-draw", no_argument, NULL, O_NODRAW},
      {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
    switch (c) {
      case O_URL: o.url = optarg; break;
      case O_MODEL: o.model = optarg; break;
      case 'o': o.output = optarg; break;
      case O_JSON: o.json = true; break;
      case O_LABELS: o.labels = optarg; break;
      case O_NODRAW: o.draw = false; break;
      case O_SCORE:
        if (!parse_double(optarg, &o.score_min)) {
          fprintf(stderr, PROG ": --score-min '%s' is not a number\n", optarg);
          return 2;
        }
        break;
      case O_TIMEOUT:
        if (!parse_double(optarg, &o.timeout_s) || o.timeout_s < 0 || o.timeout_s > 1e6) {
          fprintf(stderr, PROG ": --timeout '%s' is not a number of seconds\n", optarg);
          return 2;
        }
        break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, PROG ": no image given\n");
    usage(stderr);
    return 2;
  }
  if (o.model && !*o.model) {
    fprintf(stderr, PROG ": --model is empty\n");
    return 2;
  }
  if (o.draw && hs_image_format_for_path(o.output) == HS_IMAGE_UNKNOWN) {
    fprintf(stderr, PROG ": cannot tell the format of -o '%s': name it .jpg, .jpeg or .png\n",
            o.output);
    return 2;
  }
  int rc = run(&o, argv + optind, argc - optind);
  hs_draw_cleanup(); /* font caches: leak checkers see a clean exit */
  return rc;
}
