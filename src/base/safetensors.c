/*
 * safetensors.c - see safetensors.h.  The JSON header is parsed with jansson;
 * names are kept sorted for binary-search lookups.
 */
#include "base/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct entry {
  char *name;
  hs_tensor t;
} entry;

struct hs_safetensors {
  void *map;
  size_t map_len;
  int n;
  entry *e;
};

static hs_dtype dtype_of(const char *s) {
  static const struct { const char *n; hs_dtype t; } tab[] = {
      {"BOOL", HS_PRED}, {"U8", HS_U8},   {"I8", HS_I8},     {"U16", HS_U16}, {"I16", HS_I16},
      {"F16", HS_F16},   {"BF16", HS_BF16}, {"U32", HS_U32}, {"I32", HS_I32}, {"F32", HS_F32},
      {"U64", HS_U64},   {"I64", HS_I64}, {"F64", HS_F64},
  };
  for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
    if (strcmp(tab[i].n, s) == 0) return tab[i].t;
  return HS_DTYPE_INVALID;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static hs_status *parse(hs_safetensors *st, const unsigned char *p, size_t len, const char *name) {
  if (len < 8) return hs_status_new(HS_INVALID_ARGUMENT, "%s: not a safetensors file (%zu bytes)", name, len);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | p[i];
  if (hl > len - 8 || hl > ((uint64_t)100 << 20))
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: header length %llu does not fit the file (%zu bytes)",
                         name, (unsigned long long)hl, len);
  json_error_t jerr;
  json_t *root = json_loadb((const char *)p + 8, (size_t)hl, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) return hs_status_new(HS_INVALID_ARGUMENT, "%s: bad JSON header: %s", name, jerr.text);
  hs_status *err = NULL;
  if (!json_is_object(root)) {
    err = hs_status_new(HS_INVALID_ARGUMENT, "%s: header is not a JSON object", name);
    goto out;
  }
  size_t data_len = len - 8 - (size_t)hl;
  const unsigned char *data = p + 8 + hl;
  st->e = calloc(json_object_size(root) + 1, sizeof(entry));
  if (!st->e) {
    err = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    goto out;
  }
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (strcmp(key, "__metadata__") == 0) continue;
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2) {
      err = hs_status_new(HS_INVALID_ARGUMENT, "%s: tensor '%s': needs dtype, shape and data_offsets", name, key);
      goto out;
    }
    hs_dtype dt = dtype_of(json_string_value(jd));
    if (dt == HS_DTYPE_INVALID) {
      err = hs_status_new(HS_UNIMPLEMENTED, "%s: tensor '%s': unsupported dtype %s", name, key,
                          json_string_value(jd));
      goto out;
    }
    entry *e = &st->e[st->n];
    e->t.dtype = dt;
    if (json_array_size(js) > HS_MAX_RANK) {
      err = hs_status_new(HS_UNIMPLEMENTED, "%s: tensor '%s': rank %zu exceeds %d", name, key,
                          json_array_size(js), HS_MAX_RANK);
      goto out;
    }
    e->t.shape.rank = (int)json_array_size(js);
    uint64_t numel = 1;
    for (int d = 0; d < e->t.shape.rank; d++) {
      json_t *x = json_array_get(js, (size_t)d);
      if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > ((json_int_t)1 << 40)) {
        err = hs_status_new(HS_INVALID_ARGUMENT, "%s: tensor '%s': bad dimension %d", name, key, d);
        goto out;
      }
      e->t.shape.dims[d] = json_integer_value(x);
      numel *= (uint64_t)e->t.shape.dims[d];
      if (numel > ((uint64_t)1 << 40)) {
        err = hs_status_new(HS_INVALID_ARGUMENT, "%s: tensor '%s': too many elements", name, key);
        goto out;
      }
    }
    json_t *b = json_array_get(jo, 0), *en = json_array_get(jo, 1);
    if (!json_is_integer(b) || !json_is_integer(en) || json_integer_value(b) < 0 ||
        json_integer_value(en) < json_integer_value(b) || (uint64_t)json_integer_value(en) > data_len) {
      err = hs_status_new(HS_INVALID_ARGUMENT, "%s: tensor '%s': data_offsets outside the file", name, key);
      goto out;
    }
    uint64_t nbytes = (uint64_t)(json_integer_value(en) - json_integer_value(b));
    if (nbytes != numel * hs_dtype_size(dt)) {
      err = hs_status_new(HS_INVALID_ARGUMENT, "%s: tensor '%s': %llu bytes for %llu elements of %s", name,
                          key, (unsigned long long)nbytes, (unsigned long long)numel, hs_dtype_name(dt));
      goto out;
    }
    e->t.data = (void *)(data + json_integer_value(b));
    e->name = strdup(key);
    if (!e->name) {
      err = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
      goto out;
    }
    st->n++;
  }
  qsort(st->e, (size_t)st->n, sizeof(entry), cmp_entry);
out:
  json_decref(root);
  return err;
}

hs_status *hs_safetensors_from_memory(const void *data, size_t len, const char *name, hs_safetensors **out) {
  *out = NULL;
  hs_safetensors *st = calloc(1, sizeof(*st));
  if (!st) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  hs_status *err = parse(st, data, len, name ? name : "<memory>");
  if (err) {
    hs_safetensors_close(st);
    return err;
  }
  *out = st;
  return NULL;
}

hs_status *hs_safetensors_open(const char *path, hs_safetensors **out) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return hs_status_new(HS_NOT_FOUND, "%s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return hs_status_new(HS_IO_ERROR, "%s: not a regular file", path);
  }
  size_t len = (size_t)sb.st_size;
  void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  close(fd);
  if (len && map == MAP_FAILED) return hs_status_new(HS_IO_ERROR, "%s: mmap: %s", path, strerror(errno));
  hs_safetensors *st = NULL;
  hs_status *err = hs_safetensors_from_memory(map, len, path, &st);
  if (err) {
    if (map) munmap(map, len);
    return err;
  }
  st->map = map;
  st->map_len = len;
  *out = st;
  return NULL;
}

void hs_safetensors_release_pages(hs_safetensors *st) {
  if (st && st->map && st->map_len) madvise(st->map, st->map_len, MADV_DONTNEED);
}

void hs_safetensors_close(hs_safetensors *st) {
  if (!st) return;
  for (int i = 0; i < st->n; i++) free(st->e[i].name);
  free(st->e);
  if (st->map) munmap(st->map, st->map_len);
  free(st);
}

int hs_safetensors_count(const hs_safetensors *st) { return st->n; }
const char *hs_safetensors_name(const hs_safetensors *st, int i) { return st->e[i].name; }
const hs_tensor *hs_safetensors_at(const hs_safetensors *st, int i) { return &st->e[i].t; }

const hs_tensor *hs_safetensors_get(const hs_safetensors *st, const char *name) {
  entry key = {(char *)name, {0}};
  entry *e = bsearch(&key, st->e, (size_t)st->n, sizeof(entry), cmp_entry);
  return e ? &e->t : NULL;
}
