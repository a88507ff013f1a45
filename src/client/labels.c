/*
 * labels.c - class names: torchvision's COCO categories built in, or a file.
 *
 * Design: a label set is an owned array of strings indexed by class id, so
 * the built-in set and a user's file are one type, and a class id outside the
 * set still gets a printable name ("class 17") instead of an error: a server
 * with a custom head must not make the client fail.  The COCO table is the
 * category list of torchvision's detection weights (91 ids, background at 0,
 * "N/A" for the ids COCO left unused), because the detector's class column
 * carries exactly those ids.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "hloserve/client.h"

static const char *const coco_names[] = {
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train",
    "truck", "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter",
    "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "N/A", "backpack", "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "N/A",
    "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A", "book", "clock",
    "vase", "scissors", "teddy bear", "hair drier", "toothbrush"};

/* Label files are small; this only stops a wrong path (a video, a model)
 * from being read whole. */
#define MAX_LABEL_FILE_BYTES ((size_t)16 << 20)

void hs_labels_free(hs_labels *l) {
  if (!l) return;
  for (int i = 0; i < l->count; i++) free(l->names[i]);
  free(l->names);
  memset(l, 0, sizeof *l);
}

/* Appends a copy of s[0..n); false when out of memory. */
static bool push_name(hs_labels *l, const char *s, size_t n, int *cap) {
  if (l->count == *cap) {
    int nc = *cap ? *cap * 2 : 128;
    char **names = realloc(l->names, sizeof(char *) * (size_t)nc);
    if (!names) return false;
    l->names = names;
    *cap = nc;
  }
  char *copy = malloc(n + 1);
  if (!copy) return false;
  memcpy(copy, s, n);
  copy[n] = 0;
  l->names[l->count++] = copy;
  return true;
}

hs_status *hs_labels_coco(hs_labels *out) {
  memset(out, 0, sizeof *out);
  int cap = 0;
  for (size_t i = 0; i < sizeof coco_names / sizeof coco_names[0]; i++) {
    if (!push_name(out, coco_names[i], strlen(coco_names[i]), &cap)) {
      hs_labels_free(out);
      return hs_status_new(HS_OUT_OF_MEMORY, "out of memory for the COCO labels");
    }
  }
  return NULL;
}

hs_status *hs_labels_load(const char *path, hs_labels *out) {
  memset(out, 0, sizeof *out);
  uint8_t *data;
  size_t n;
  HS_RETURN_IF_ERROR(hs_client_read_file(path, "labels file", MAX_LABEL_FILE_BYTES, &data, &n));
  if (memchr(data, 0, n)) {
    free(data);
    return hs_status_new(HS_INVALID_ARGUMENT, "labels file '%s' is not text (it holds NUL bytes)",
                         path);
  }
  /* Trailing blank lines are layout, not classes. */
  while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r')) n--;
  int cap = 0;
  size_t start = 0;
  for (size_t i = 0; i <= n && n > 0; i++) {
    if (i < n && data[i] != '\n') continue;
    size_t end = i;
    if (end > start && data[end - 1] == '\r') end--;
    if (out->count == INT32_MAX - 1 || !push_name(out, (const char *)data + start, end - start, &cap)) {
      free(data);
      hs_labels_free(out);
      return hs_status_new(HS_OUT_OF_MEMORY, "out of memory reading labels file '%s'", path);
    }
    start = i + 1;
  }
  free(data);
  if (out->count == 0)
    return hs_status_new(HS_INVALID_ARGUMENT, "labels file '%s' has no names", path);
  return NULL;
}

const char *hs_labels_name(const hs_labels *labels, int id, char *buf, size_t cap) {
  if (labels && id >= 0 && id < labels->count) return labels->names[id];
  if (id < 0)
    snprintf(buf, cap, "object");
  else
    snprintf(buf, cap, "class %d", id);
  return buf;
}
