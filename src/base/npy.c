/*
 * npy.c - see npy.h.  The header is a Python dict literal; we read the three
 * keys we need with a small tolerant scanner and validate everything against
 * the file size.
 */
#include "base/npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *code; hs_dtype t; } codes[] = {
    {"b1", HS_PRED}, {"i1", HS_I8},  {"i2", HS_I16}, {"i4", HS_I32}, {"i8", HS_I64},
    {"u1", HS_U8},   {"u2", HS_U16}, {"u4", HS_U32}, {"u8", HS_U64}, {"f2", HS_F16},
    {"f4", HS_F32},  {"f8", HS_F64},
};

static const char *find_key(const char *h, size_t n, const char *key) {
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl + 2 <= n; i++)
    if ((h[i] == '\'' || h[i] == '"') && memcmp(h + i + 1, key, kl) == 0 && h[i + 1 + kl] == h[i]) {
      const char *p = h + i + kl + 2;
      while (p < h + n && (*p == ' ' || *p == ':')) p++;
      return p;
    }
  return NULL;
}

hs_status *hs_npy_parse(const void *vbuf, size_t len, const char *name, hs_tensor *t) {
  const unsigned char *buf = vbuf;
  memset(t, 0, sizeof *t);
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: not a .npy file", name);
  int major = buf[6];
  size_t hlen, off;
  if (major == 1) {
    hlen = buf[8] | (size_t)buf[9] << 8;
    off = 10;
  } else if (major == 2 || major == 3) {
    if (len < 12) return hs_status_new(HS_INVALID_ARGUMENT, "%s: truncated header", name);
    hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    off = 12;
  } else {
    return hs_status_new(HS_UNIMPLEMENTED, "%s: .npy version %d", name, major);
  }
  if (hlen > len - off) return hs_status_new(HS_INVALID_ARGUMENT, "%s: truncated header", name);
  const char *h = (const char *)buf + off;
  const char *d = find_key(h, hlen, "descr"), *fo = find_key(h, hlen, "fortran_order"),
             *sh = find_key(h, hlen, "shape");
  if (!d || !fo || !sh) return hs_status_new(HS_INVALID_ARGUMENT, "%s: header lacks descr/fortran_order/shape", name);
  const char *end = h + hlen;
  if (d >= end - 4 || (*d != '\'' && *d != '"'))
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: bad descr", name);
  char bo = d[1];
  if (bo == '>' && !(d[2] == 'b' || d[3] == '1'))
    return hs_status_new(HS_UNIMPLEMENTED, "%s: big-endian data", name);
  const char *c = (bo == '<' || bo == '|' || bo == '=' || bo == '>') ? d + 2 : d + 1;
  t->dtype = HS_DTYPE_INVALID;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (c + 2 < end && memcmp(c, codes[i].code, 2) == 0 && (c[2] == '\'' || c[2] == '"')) t->dtype = codes[i].t;
  if (t->dtype == HS_DTYPE_INVALID) return hs_status_new(HS_UNIMPLEMENTED, "%s: unsupported dtype", name);
  if (end - fo >= 4 && memcmp(fo, "True", 4) == 0)
    return hs_status_new(HS_UNIMPLEMENTED, "%s: Fortran order", name);
  if (sh >= end || *sh != '(') return hs_status_new(HS_INVALID_ARGUMENT, "%s: bad shape", name);
  const char *p = sh + 1;
  t->shape.rank = 0;
  while (p < end && *p != ')') {
    while (p < end && (*p == ' ' || *p == ',')) p++;
    if (p < end && *p == ')') break;
    if (p >= end || !isdigit((unsigned char)*p)) return hs_status_new(HS_INVALID_ARGUMENT, "%s: bad shape", name);
    if (t->shape.rank == HS_MAX_RANK) return hs_status_new(HS_UNIMPLEMENTED, "%s: rank over %d", name, HS_MAX_RANK);
    int64_t v = 0;
    while (p < end && isdigit((unsigned char)*p)) {
      v = v * 10 + (*p - '0');
      if (v > ((int64_t)1 << 40)) return hs_status_new(HS_INVALID_ARGUMENT, "%s: dimension too large", name);
      p++;
    }
    t->shape.dims[t->shape.rank++] = v;
  }
  uint64_t numel = 1;
  for (int i = 0; i < t->shape.rank; i++) {
    numel *= (uint64_t)t->shape.dims[i];
    if (numel > ((uint64_t)1 << 40)) return hs_status_new(HS_INVALID_ARGUMENT, "%s: too many elements", name);
  }
  size_t nb = (size_t)numel * hs_dtype_size(t->dtype);
  if (len - off - hlen < nb)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: %zu data bytes, %zu expected", name, len - off - hlen, nb);
  t->data = malloc(nb ? nb : 1);
  if (!t->data) return hs_status_new(HS_OUT_OF_MEMORY, "%s: out of memory", name);
  memcpy(t->data, buf + off + hlen, nb);
  return NULL;
}

hs_status *hs_npy_read(const char *path, hs_tensor *t) {
  memset(t, 0, sizeof *t);
  FILE *f = fopen(path, "rb");
  if (!f) return hs_status_new(HS_NOT_FOUND, "%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (sz < 0) {
    fclose(f);
    return hs_status_new(HS_IO_ERROR, "%s: cannot size", path);
  }
  unsigned char *buf = malloc((size_t)sz + 1);
  if (!buf) {
    fclose(f);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  size_t got = fread(buf, 1, (size_t)sz, f);
  fclose(f);
  hs_status *st = hs_npy_parse(buf, got, path, t);
  free(buf);
  return st;
}

hs_status *hs_npy_write(const char *path, const hs_tensor *t) {
  const char *code = hs_dtype_numpy_code(t->dtype);
  if (!code || hs_dtype_is_complex(t->dtype))
    return hs_status_new(HS_UNIMPLEMENTED, "%s: no .npy dtype for %s", path, hs_dtype_name(t->dtype));
  char hdr[512];
  char shape[300] = "";
  size_t o = 0;
  for (int i = 0; i < t->shape.rank; i++)
    o += (size_t)snprintf(shape + o, sizeof shape - o, "%lld,%s", (long long)t->shape.dims[i],
                          (t->shape.rank > 1 && i + 1 < t->shape.rank) ? " " : "");
  if (t->shape.rank > 1 && o > 0) shape[o - 1] = 0; /* "2, 3" not "2, 3," */
  int n = snprintf(hdr, sizeof hdr, "{'descr': '%c%s', 'fortran_order': False, 'shape': (%s), }",
                   t->dtype == HS_PRED || hs_dtype_size(t->dtype) == 1 ? '|' : '<', code, shape);
  size_t total = 10 + (size_t)n + 1;
  size_t pad = (64 - total % 64) % 64;
  FILE *f = fopen(path, "wb");
  if (!f) return hs_status_new(HS_IO_ERROR, "%s: %s", path, strerror(errno));
  size_t hl = (size_t)n + pad + 1;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
  fwrite(pre, 1, 10, f);
  fwrite(hdr, 1, (size_t)n, f);
  for (size_t i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(t->data, 1, hs_tensor_nbytes(t), f);
  if (fclose(f) != 0) return hs_status_new(HS_IO_ERROR, "%s: write failed", path);
  return NULL;
}
