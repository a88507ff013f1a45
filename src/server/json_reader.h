/*
 * json_reader.h - a validating pull parser for JSON text (RFC 8259), used
 * for KServe v2 request headers.
 *
 * Why not a DOM library: a request's "data" arrays can hold millions of
 * numbers, and a DOM costs tens of bytes per number before we even know the
 * tensor's dtype.  With a cursor the request parser skips a "data" array once
 * (validating and counting its leaves), checks the count against the shape,
 * then decodes it straight into the typed tensor buffer.  Nothing is
 * allocated except decoded strings (in the caller's arena).
 *
 * Every function returns NULL or an HS_INVALID_ARGUMENT status whose message
 * starts "malformed JSON at byte N:".  Nesting is bounded (HS_JSON_MAX_DEPTH)
 * so hostile input cannot exhaust the stack.
 */
#ifndef HLOSERVE_SERVER_JSON_READER_H
#define HLOSERVE_SERVER_JSON_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "hloserve/status.h"

#define HS_JSON_MAX_DEPTH 64

typedef struct hs_json_reader {
  const char *begin, *p, *end;
  hs_arena *arena; /* decoded strings */
} hs_json_reader;

typedef enum hs_json_type {
  HS_JSON_END = 0, /* no more input */
  HS_JSON_OBJECT,
  HS_JSON_ARRAY,
  HS_JSON_STRING,
  HS_JSON_NUMBER,
  HS_JSON_TRUE,
  HS_JSON_FALSE,
  HS_JSON_NULL,
  HS_JSON_INVALID
} hs_json_type;

void hs_json_reader_init(hs_json_reader *r, const void *text, size_t len, hs_arena *arena);
/* An error at the cursor: "malformed JSON at byte N: <what>". */
hs_status *hs_json_error(const hs_json_reader *r, const char *what);

/* Skips whitespace and classifies the next value by its first byte. */
hs_json_type hs_json_peek(hs_json_reader *r);
/* True when only whitespace is left. */
bool hs_json_at_end(hs_json_reader *r);

/* Iterates an object: call with *first = true; each call consumes '{' or ','
 * and the next key with its ':' (then parse or skip the value), or the
 * closing '}' (then *done is set).  key is decoded, NUL-terminated, in the
 * arena; keys holding "\u0000" are refused. */
hs_status *hs_json_next_member(hs_json_reader *r, bool *first, bool *done, const char **key);
/* Iterates an array likewise: consumes '[' or ',' before each element, or
 * the closing ']' (*done). */
hs_status *hs_json_next_element(hs_json_reader *r, bool *first, bool *done);

/* A string value, decoded to UTF-8 (escapes and surrogate pairs resolved,
 * invalid UTF-8 refused), NUL-terminated in the arena.  len may be NULL.
 * Strings holding "\u0000" are refused (they cannot be C strings). */
hs_status *hs_json_string(hs_json_reader *r, const char **out, size_t *len);
/* A number value's text (JSON number grammar checked).  *is_int: no
 * fraction and no exponent. */
hs_status *hs_json_number(hs_json_reader *r, const char **text, size_t *len, bool *is_int);
/* true / false. */
hs_status *hs_json_bool(hs_json_reader *r, bool *out);
/* An integer value in [min, max] ("what" names it in errors). */
hs_status *hs_json_int(hs_json_reader *r, const char *what, int64_t min, int64_t max,
                       int64_t *out);
/* Any value, validated and skipped. */
hs_status *hs_json_skip(hs_json_reader *r);

/* Skips a value that must be a number, a boolean or arbitrarily nested
 * arrays of them, counting the scalar leaves; *has_bool / *has_number say
 * which kinds occurred. */
hs_status *hs_json_count_leaves(hs_json_reader *r, int64_t *count, bool *has_bool,
                                bool *has_number);

/* Integer text (from hs_json_number with is_int) to int64 / uint64; false on
 * overflow. */
bool hs_json_parse_i64(const char *s, size_t n, int64_t *out);
bool hs_json_parse_u64(const char *s, size_t n, uint64_t *out);
/* Number text to double (correctly rounded strtod); false if too long. */
bool hs_json_parse_f64(const char *s, size_t n, double *out);

#endif
