/*
 * json_reader.c - see json_reader.h.
 *
 * A hand-written scanner over a byte range: the text is never copied or
 * NUL-terminated, so every read checks the end pointer.  Skipping nested
 * values is iterative over an explicit depth counter (a container's kind
 * is tracked in a small stack), so depth is bounded without recursion.
 */
#include "server/json_reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hs_json_reader_init(hs_json_reader *r, const void *text, size_t len, hs_arena *arena) {
  r->begin = r->p = (const char *)text;
  r->end = r->begin + len;
  r->arena = arena;
}

hs_status *hs_json_error(const hs_json_reader *r, const char *what) {
  return hs_status_new(HS_INVALID_ARGUMENT, "malformed JSON at byte %zu: %s",
                       (size_t)(r->p - r->begin), what);
}

static void skip_ws(hs_json_reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

hs_json_type hs_json_peek(hs_json_reader *r) {
  skip_ws(r);
  if (r->p >= r->end) return HS_JSON_END;
  switch (*r->p) {
    case '{': return HS_JSON_OBJECT;
    case '[': return HS_JSON_ARRAY;
    case '"': return HS_JSON_STRING;
    case 't': return HS_JSON_TRUE;
    case 'f': return HS_JSON_FALSE;
    case 'n': return HS_JSON_NULL;
    default:
      if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) return HS_JSON_NUMBER;
      return HS_JSON_INVALID;
  }
}

bool hs_json_at_end(hs_json_reader *r) {
  skip_ws(r);
  return r->p >= r->end;
}

static hs_status *literal(hs_json_reader *r, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
    return hs_json_error(r, "invalid literal");
  r->p += n;
  return NULL;
}

hs_status *hs_json_bool(hs_json_reader *r, bool *out) {
  hs_json_type t = hs_json_peek(r);
  if (t == HS_JSON_TRUE) {
    *out = true;
    return literal(r, "true");
  }
  if (t == HS_JSON_FALSE) {
    *out = false;
    return literal(r, "false");
  }
  return hs_json_error(r, "expected true or false");
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

hs_status *hs_json_number(hs_json_reader *r, const char **text, size_t *len, bool *is_int) {
  skip_ws(r);
  const char *s = r->p, *p = r->p, *e = r->end;
  bool integer = true;
  if (p < e && *p == '-') p++;
  if (p >= e || !is_digit(*p)) {
    r->p = p;
    return hs_json_error(r, "expected a number");
  }
  if (*p == '0') {
    p++;
  } else {
    while (p < e && is_digit(*p)) p++;
  }
  if (p < e && *p == '.') {
    integer = false;
    p++;
    if (p >= e || !is_digit(*p)) {
      r->p = p;
      return hs_json_error(r, "expected a digit after '.'");
    }
    while (p < e && is_digit(*p)) p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    integer = false;
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    if (p >= e || !is_digit(*p)) {
      r->p = p;
      return hs_json_error(r, "expected a digit in the exponent");
    }
    while (p < e && is_digit(*p)) p++;
  }
  r->p = p;
  *text = s;
  *len = (size_t)(p - s);
  if (is_int) *is_int = integer;
  return NULL;
}

bool hs_json_parse_u64(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    if (!is_digit(s[i])) return false;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool hs_json_parse_i64(const char *s, size_t n, int64_t *out) {
  bool neg = n > 0 && s[0] == '-';
  uint64_t u;
  if (!hs_json_parse_u64(s + neg, n - neg, &u)) return false;
  if (neg) {
    if (u > (uint64_t)INT64_MAX + 1) return false;
    *out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
  } else {
    if (u > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)u;
  }
  return true;
}

bool hs_json_parse_f64(const char *s, size_t n, double *out) {
  char buf[128];
  if (n == 0 || n >= sizeof buf) return false;
  memcpy(buf, s, n);
  buf[n] = 0;
  errno = 0;
  char *endp = NULL;
  double v = strtod(buf, &endp);
  if (endp != buf + n) return false;
  /* ERANGE: overflow gives +-HUGE_VAL (inf), underflow a denormal or zero;
   * both are the correctly rounded value, which is what we want. */
  *out = v;
  return true;
}

hs_status *hs_json_int(hs_json_reader *r, const char *what, int64_t min, int64_t max,
                       int64_t *out) {
  hs_json_type t = hs_json_peek(r);
  if (t == HS_JSON_END) return hs_json_error(r, "unexpected end of input");
  if (t == HS_JSON_INVALID) return hs_json_error(r, "unexpected character");
  if (t != HS_JSON_NUMBER) return hs_status_new(HS_INVALID_ARGUMENT, "%s must be an integer", what);
  const char *s;
  size_t n;
  bool is_int;
  HS_RETURN_IF_ERROR(hs_json_number(r, &s, &n, &is_int));
  int64_t v;
  if (!is_int || !hs_json_parse_i64(s, n, &v))
    return hs_status_new(HS_INVALID_ARGUMENT, "%s must be an integer, got %.*s", what,
                         (int)(n > 40 ? 40 : n), s);
  if (v < min || v > max)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s %lld is outside %lld..%lld", what,
                         (long long)v, (long long)min, (long long)max);
  *out = v;
  return NULL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_hex4(const char *p, const char *e, unsigned *out) {
  if (e - p < 4) return false;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p[i]);
    if (h < 0) return false;
    v = v * 16 + (unsigned)h;
  }
  *out = v;
  return true;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static int utf8_seq(const unsigned char *p, const unsigned char *e) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  int n;
  unsigned min;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
    c &= 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
    c &= 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
    c &= 0x07;
  } else {
    return 0;
  }
  if (e - p < n) return 0;
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  return n;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Scans (out == NULL) or decodes a string starting at the opening quote.
 * Decoded text is never longer than the raw text. */
static hs_status *scan_string(hs_json_reader *r, char *out, size_t *out_len) {
  const char *p = r->p + 1, *e = r->end;
  size_t o = 0;
  for (;;) {
    if (p >= e) {
      r->p = p;
      return hs_json_error(r, "unterminated string");
    }
    unsigned char c = (unsigned char)*p;
    if (c == '"') {
      p++;
      break;
    }
    if (c < 0x20) {
      r->p = p;
      return hs_json_error(r, "control character in string");
    }
    if (c == '\\') {
      if (e - p < 2) {
        r->p = p;
        return hs_json_error(r, "unterminated escape");
      }
      char esc = p[1];
      unsigned cp;
      p += 2;
      switch (esc) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
          if (!read_hex4(p, e, &cp)) {
            r->p = p;
            return hs_json_error(r, "bad \\u escape");
          }
          p += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || !read_hex4(p + 2, e, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF) {
              r->p = p;
              return hs_json_error(r, "unpaired surrogate in \\u escape");
            }
            p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            r->p = p;
            return hs_json_error(r, "unpaired surrogate in \\u escape");
          }
          if (cp == 0) {
            r->p = p;
            return hs_json_error(r, "\\u0000 in a string is not supported");
          }
          break;
        }
        default:
          r->p = p - 1;
          return hs_json_error(r, "invalid escape");
      }
      if (out)
        o += put_utf8(out + o, cp);
      continue;
    }
    int n = utf8_seq((const unsigned char *)p, (const unsigned char *)e);
    if (n == 0) {
      r->p = p;
      return hs_json_error(r, "invalid UTF-8 in string");
    }
    if (out) memcpy(out + o, p, (size_t)n);
    o += (size_t)n;
    p += n;
  }
  r->p = p;
  if (out_len) *out_len = o;
  return NULL;
}

hs_status *hs_json_string(hs_json_reader *r, const char **out, size_t *len) {
  if (hs_json_peek(r) != HS_JSON_STRING) return hs_json_error(r, "expected a string");
  const char *start = r->p;
  /* First pass finds the end (and validates); the raw length bounds the
   * decoded one. */
  HS_RETURN_IF_ERROR(scan_string(r, NULL, NULL));
  size_t raw = (size_t)(r->p - start);
  char *buf = hs_arena_alloc(r->arena, raw + 1);
  if (!buf) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory decoding a JSON string");
  r->p = start;
  size_t n = 0;
  HS_RETURN_IF_ERROR(scan_string(r, buf, &n));
  buf[n] = 0;
  *out = buf;
  if (len) *len = n;
  return NULL;
}

static hs_status *expect(hs_json_reader *r, char c, const char *what) {
  skip_ws(r);
  if (r->p >= r->end || *r->p != c) return hs_json_error(r, what);
  r->p++;
  return NULL;
}

hs_status *hs_json_next_member(hs_json_reader *r, bool *first, bool *done, const char **key) {
  *done = false;
  if (*first) {
    HS_RETURN_IF_ERROR(expect(r, '{', "expected an object"));
    *first = false;
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
      r->p++;
      *done = true;
      return NULL;
    }
  } else {
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
      r->p++;
      *done = true;
      return NULL;
    }
    HS_RETURN_IF_ERROR(expect(r, ',', "expected ',' or '}' in an object"));
  }
  if (hs_json_peek(r) != HS_JSON_STRING) return hs_json_error(r, "expected a key string");
  HS_RETURN_IF_ERROR(hs_json_string(r, key, NULL));
  return expect(r, ':', "expected ':' after a key");
}

hs_status *hs_json_next_element(hs_json_reader *r, bool *first, bool *done) {
  *done = false;
  if (*first) {
    HS_RETURN_IF_ERROR(expect(r, '[', "expected an array"));
    *first = false;
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
      r->p++;
      *done = true;
    }
    return NULL;
  }
  skip_ws(r);
  if (r->p < r->end && *r->p == ']') {
    r->p++;
    *done = true;
    return NULL;
  }
  return expect(r, ',', "expected ',' or ']' in an array");
}

/* The shared iterative walker: skips one value.  With counting on, objects
 * and strings are refused and scalar leaves are counted. */
static hs_status *walk(hs_json_reader *r, bool counting, int64_t *count, bool *has_bool,
                       bool *has_number) {
  char stack[HS_JSON_MAX_DEPTH]; /* '[' or '{' per open container */
  int depth = 0;
  bool want_value = true; /* a value must come next */
  for (;;) {
    if (want_value) {
      hs_json_type t = hs_json_peek(r);
      switch (t) {
        case HS_JSON_OBJECT:
        case HS_JSON_ARRAY: {
          if (counting && t == HS_JSON_OBJECT)
            return hs_json_error(r, "tensor data holds an object");
          if (depth == HS_JSON_MAX_DEPTH) return hs_json_error(r, "nested too deeply");
          char open = *r->p++;
          skip_ws(r);
          char close = open == '[' ? ']' : '}';
          if (r->p < r->end && *r->p == close) {
            r->p++;
            want_value = false;
            break;
          }
          stack[depth] = open;
          depth++;
          if (open == '{') {
            if (hs_json_peek(r) != HS_JSON_STRING) return hs_json_error(r, "expected a key string");
            HS_RETURN_IF_ERROR(scan_string(r, NULL, NULL));
            HS_RETURN_IF_ERROR(expect(r, ':', "expected ':' after a key"));
          }
          continue; /* want_value stays true */
        }
        case HS_JSON_STRING:
          if (counting) return hs_json_error(r, "tensor data holds a string (BYTES tensors are not supported)");
          HS_RETURN_IF_ERROR(scan_string(r, NULL, NULL));
          break;
        case HS_JSON_NUMBER: {
          const char *s;
          size_t n;
          HS_RETURN_IF_ERROR(hs_json_number(r, &s, &n, NULL));
          if (counting) {
            (*count)++;
            *has_number = true;
          }
          break;
        }
        case HS_JSON_TRUE:
        case HS_JSON_FALSE:
          HS_RETURN_IF_ERROR(literal(r, t == HS_JSON_TRUE ? "true" : "false"));
          if (counting) {
            (*count)++;
            *has_bool = true;
          }
          break;
        case HS_JSON_NULL:
          if (counting) return hs_json_error(r, "tensor data holds null");
          HS_RETURN_IF_ERROR(literal(r, "null"));
          break;
        case HS_JSON_END:
          return hs_json_error(r, "unexpected end of input");
        default:
          return hs_json_error(r, "unexpected character");
      }
      want_value = false;
    }
    /* After a value: close containers or move to the next element. */
    if (depth == 0) return NULL;
    skip_ws(r);
    char open = stack[depth - 1];
    char close = open == '[' ? ']' : '}';
    if (r->p < r->end && *r->p == close) {
      r->p++;
      depth--;
      continue;
    }
    HS_RETURN_IF_ERROR(expect(r, ',', open == '[' ? "expected ',' or ']' in an array"
                                                  : "expected ',' or '}' in an object"));
    if (open == '{') {
      if (hs_json_peek(r) != HS_JSON_STRING) return hs_json_error(r, "expected a key string");
      HS_RETURN_IF_ERROR(scan_string(r, NULL, NULL));
      HS_RETURN_IF_ERROR(expect(r, ':', "expected ':' after a key"));
    }
    want_value = true;
  }
}

hs_status *hs_json_skip(hs_json_reader *r) { return walk(r, false, NULL, NULL, NULL); }

hs_status *hs_json_count_leaves(hs_json_reader *r, int64_t *count, bool *has_bool,
                                bool *has_number) {
  *count = 0;
  *has_bool = *has_number = false;
  return walk(r, true, count, has_bool, has_number);
}
