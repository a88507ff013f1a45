/*
 * parser.c - MLIR text (StableHLO as JAX, torchax and torch-xla print it) to
 * the IR of ir.h.
 *
 * Design:
 *  - One recursive-descent pass over the tokens of lexer.c with one token of
 *    lookahead (plus a cheap save/restore of the lexer for the few places that
 *    need two).  No AST: ops, values and attributes are built directly in the
 *    module arena, so nothing is copied twice and big hex constants are
 *    decoded straight from the input into their final buffer.
 *  - Both op syntaxes converge early.  The generic form
 *    `"op"(%a) <{props}> ({regions}) {attrs} : (T) -> T` is parsed for any op
 *    name.  Pretty forms go through one table-light routine that reads a list
 *    of "items" (operands, `key = value`, positional attributes such as the
 *    `GT` of compare, `@target(...)`, `%x [0:2]`), an optional attr-dict and a
 *    type signature; a per-op canonicalisation step then renames and reshapes
 *    the attributes to the generic (ODS) names and kinds listed in
 *    docs/runtime.md.  Only reduce and while have bespoke pretty parsers,
 *    because their regions and block arguments are spelled inline.
 *  - Values are resolved as they are used: a scoped symbol table (open
 *    addressing, generation-stamped so a new function clears it in O(1), with
 *    an undo log for nested regions) gives dominance for free, since a use can
 *    only see definitions that textually precede it in the same or an
 *    enclosing region.  Calls are checked against their callees at the end.
 *  - Errors never crash: the first error wins and is reported as
 *    "file:line:col: message"; every recursion is bounded (HS_PARSE_MAX_DEPTH)
 *    and every size is checked before anything is allocated for it.
 */
#include "runtime/ir.h"
#include "runtime/lexer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HS_PARSE_MAX_DEPTH 256
#define HS_MAX_ELEMENTS ((int64_t)1 << 40)

static size_t g_max_splat_bytes = (size_t)16 << 30;

void hs_parse_set_max_splat_bytes(size_t max_bytes) { g_max_splat_bytes = max_bytes; }

/* ------------------------------------------------------------ utilities */

typedef struct parser parser;

typedef struct sym_slot {
  const char *name;
  uint32_t len, hash, gen;
  int depth;
  hs_value **vals;
  int n;
} sym_slot;

typedef struct sym_undo {
  const char *name;
  uint32_t len, hash;
  int depth;
  hs_value **vals;
  int n;
} sym_undo;

typedef struct alias_def {
  const char *name;
  size_t len;
  hs_attr *attr;
} alias_def;

typedef struct resource_ref {
  hs_attr *attr;
  const char *name;
  size_t len;
  int line, col;
} resource_ref;

typedef struct resource_blob {
  const char *name;
  size_t len;
  const char *hex;
  size_t hexlen;
} resource_blob;

#define VEC(T) \
  struct {     \
    T *v;      \
    int n, cap; \
  }

struct parser {
  hs_lexer lx;
  hs_token tok;
  hs_arena *A;
  hs_module *m;
  const char *file;
  hs_status *err;
  int depth;
  /* current function */
  hs_func *fn;
  hs_region *region;
  /* symbol table (malloc) */
  sym_slot *slots;
  uint32_t cap, count, gen;
  sym_undo *undo;
  int n_undo, cap_undo;
  int scope;
  /* interned op names (malloc table of arena strings) */
  const char **names;
  uint32_t names_cap, names_count;
  /* module-level bookkeeping (arena) */
  VEC(hs_op *) calls;
  VEC(alias_def) aliases;
  VEC(resource_ref) resources;
  VEC(resource_blob) blobs;
  VEC(hs_func *) funcs;
};

static bool failv(parser *p, int line, int col, hs_status_code code, const char *fmt,
                  va_list ap) HS_PRINTF(5, 0);
static bool failv(parser *p, int line, int col, hs_status_code code, const char *fmt,
                  va_list ap) {
  if (p->err) return false;
  char msg[768];
  vsnprintf(msg, sizeof msg, fmt, ap);
  p->err = hs_status_new(code, "%s:%d:%d: %s", p->file, line, col, msg);
  return false;
}

static bool fail_at(parser *p, int line, int col, hs_status_code code, const char *fmt, ...)
    HS_PRINTF(5, 6);
static bool fail_at(parser *p, int line, int col, hs_status_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(p, line, col, code, fmt, ap);
  va_end(ap);
  return false;
}

static bool fail(parser *p, const hs_token *t, const char *fmt, ...) HS_PRINTF(3, 4);
static bool fail(parser *p, const hs_token *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(p, t->line, t->col, HS_INVALID_ARGUMENT, fmt, ap);
  va_end(ap);
  return false;
}

static bool fail_code(parser *p, const hs_token *t, hs_status_code code, const char *fmt, ...)
    HS_PRINTF(4, 5);
static bool fail_code(parser *p, const hs_token *t, hs_status_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  failv(p, t->line, t->col, code, fmt, ap);
  va_end(ap);
  return false;
}

static bool oom(parser *p) {
  return fail_code(p, &p->tok, HS_OUT_OF_MEMORY, "out of memory");
}

/* A short printable description of a token for error messages. */
static const char *tok_desc(const hs_token *t, char *buf, size_t cap) {
  if (t->kind == HS_TOK_EOF) return "end of input";
  if (t->kind == HS_TOK_ERROR) return "invalid input";
  const char *s = t->text;
  size_t n = t->len;
  const char *pre = "";
  switch (t->kind) {
    case HS_TOK_PERCENT: pre = "%"; break;
    case HS_TOK_AT: pre = "@"; break;
    case HS_TOK_HASH: pre = "#"; break;
    case HS_TOK_EXCL: pre = "!"; break;
    case HS_TOK_CARET: pre = "^"; break;
    case HS_TOK_STRING: pre = "\""; break;
    default: break;
  }
  if (n > 40) n = 40;
  char clean[48];
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    clean[i] = (c >= 32 && c < 127) ? (char)c : '?';
  }
  clean[n] = 0;
  snprintf(buf, cap, "'%s%s%s'", pre, clean, t->len > 40 ? "..." : "");
  return buf;
}

static bool next(parser *p) {
  p->tok = hs_lex_next(&p->lx);
  if (p->tok.kind == HS_TOK_ERROR)
    return fail_at(p, p->lx.err_line, p->lx.err_col, HS_INVALID_ARGUMENT, "%s", p->lx.error);
  return true;
}

static hs_token peek(parser *p) {
  hs_lexer save = p->lx;
  hs_token t = hs_lex_next(&p->lx);
  p->lx = save;
  return t;
}

static bool expect(parser *p, hs_tok_kind k, const char *what) {
  if (p->tok.kind != k) {
    char b[96];
    return fail(p, &p->tok, "expected %s, found %s", what, tok_desc(&p->tok, b, sizeof b));
  }
  return next(p);
}

static bool accept(parser *p, hs_tok_kind k) {
  if (p->tok.kind != k) return false;
  next(p);
  return true;
}

static bool is_word(const parser *p, const char *w) {
  return p->tok.kind == HS_TOK_BARE && hs_tok_text_eq(&p->tok, w);
}

static bool expect_word(parser *p, const char *w) {
  if (!is_word(p, w)) {
    char b[96];
    return fail(p, &p->tok, "expected '%s', found %s", w, tok_desc(&p->tok, b, sizeof b));
  }
  return next(p);
}

static bool enter(parser *p) {
  if (++p->depth > HS_PARSE_MAX_DEPTH)
    return fail_code(p, &p->tok, HS_RESOURCE_EXHAUSTED, "nesting deeper than %d levels",
                     HS_PARSE_MAX_DEPTH);
  return true;
}
static void leave(parser *p) { p->depth--; }

static void *vgrow(parser *p, void *v, int *cap, int n, size_t esz) {
  if (*cap > INT32_MAX / 2) {
    oom(p);
    return NULL;
  }
  int nc = *cap ? *cap * 2 : 4;
  void *nv = hs_arena_alloc(p->A, (size_t)nc * esz);
  if (!nv) {
    oom(p);
    return NULL;
  }
  if (n) memcpy(nv, v, (size_t)n * esz);
  *cap = nc;
  return nv;
}

#define VPUSH(p, vec, item)                                                               \
  (((vec).n < (vec).cap ||                                                                \
    ((vec).v = vgrow((p), (vec).v, &(vec).cap, (vec).n, sizeof *(vec).v)) != NULL)         \
       ? ((vec).v[(vec).n++] = (item), true)                                               \
       : false)

static void *zalloc(parser *p, size_t n) {
  void *q = hs_arena_calloc(p->A, 1, n ? n : 1);
  if (!q) oom(p);
  return q;
}

static char *dup_text(parser *p, const char *s, size_t n) {
  char *q = hs_arena_strndup(p->A, s, n);
  if (!q) oom(p);
  return q;
}

static uint32_t hash_bytes(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Interns op names (many ops share a handful of names). */
static const char *intern(parser *p, const char *s, size_t n) {
  if (p->names_count * 2 >= p->names_cap) {
    uint32_t nc = p->names_cap ? p->names_cap * 2 : 256;
    const char **nt = calloc(nc, sizeof *nt);
    if (!nt) {
      oom(p);
      return NULL;
    }
    for (uint32_t i = 0; i < p->names_cap; i++) {
      const char *e = p->names[i];
      if (!e) continue;
      uint32_t j = hash_bytes(e, strlen(e)) & (nc - 1);
      while (nt[j]) j = (j + 1) & (nc - 1);
      nt[j] = e;
    }
    free(p->names);
    p->names = nt;
    p->names_cap = nc;
  }
  uint32_t j = hash_bytes(s, n) & (p->names_cap - 1);
  while (p->names[j]) {
    const char *e = p->names[j];
    if (strncmp(e, s, n) == 0 && e[n] == 0) return e;
    j = (j + 1) & (p->names_cap - 1);
  }
  char *c = dup_text(p, s, n);
  if (!c) return NULL;
  p->names[j] = c;
  p->names_count++;
  return c;
}

/* Decodes an MLIR string literal body (escapes \" \\ \n \t \XX). */
static char *decode_string(parser *p, const char *s, size_t n, size_t *out_len) {
  char *o = hs_arena_alloc(p->A, n + 1);
  if (!o) {
    oom(p);
    return NULL;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c != '\\' || i + 1 >= n) {
      o[k++] = c;
      continue;
    }
    char d = s[++i];
    if (d == 'n') o[k++] = '\n';
    else if (d == 't') o[k++] = '\t';
    else if (d == '"' || d == '\\') o[k++] = d;
    else if (i + 1 < n) {
      int hv = 0, ok = 1;
      for (int q = 0; q < 2; q++) {
        char h = s[i + (size_t)q];
        int v = (h >= '0' && h <= '9') ? h - '0'
              : (h >= 'a' && h <= 'f') ? h - 'a' + 10
              : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
        if (v < 0) ok = 0;
        hv = hv * 16 + (v < 0 ? 0 : v);
      }
      if (ok) {
        o[k++] = (char)hv;
        i++;
      } else {
        o[k++] = d;
      }
    } else {
      o[k++] = d;
    }
  }
  o[k] = 0;
  if (out_len) *out_len = k;
  return o;
}

/* ---------------------------------------------------------- symbol table */

static bool sym_grow(parser *p) {
  uint32_t nc = p->cap ? p->cap * 2 : 256;
  sym_slot *ns = calloc(nc, sizeof *ns);
  if (!ns) return oom(p);
  for (uint32_t i = 0; i < p->cap; i++) {
    sym_slot *e = &p->slots[i];
    if (e->gen != p->gen || !e->name) continue;
    uint32_t j = e->hash & (nc - 1);
    while (ns[j].gen == p->gen && ns[j].name) j = (j + 1) & (nc - 1);
    ns[j] = *e;
  }
  free(p->slots);
  p->slots = ns;
  p->cap = nc;
  return true;
}

/* Finds (or creates, when `create`) the slot for a name. */
static sym_slot *sym_find(parser *p, const char *s, size_t n, uint32_t h, bool create) {
  if (create && (p->count + 1) * 2 > p->cap && !sym_grow(p)) return NULL;
  if (!p->cap) return NULL;
  uint32_t j = h & (p->cap - 1);
  for (;;) {
    sym_slot *e = &p->slots[j];
    if (e->gen != p->gen || !e->name) {
      if (!create) return NULL;
      e->gen = p->gen;
      e->name = s;
      e->len = (uint32_t)n;
      e->hash = h;
      e->vals = NULL;
      e->n = 0;
      e->depth = -1;
      p->count++;
      return e;
    }
    if (e->hash == h && e->len == n && memcmp(e->name, s, n) == 0) return e;
    j = (j + 1) & (p->cap - 1);
  }
}

static void sym_reset(parser *p) {
  p->gen++;
  p->count = 0;
  p->n_undo = 0;
  p->scope = 0;
}

static bool sym_define(parser *p, const hs_token *t, hs_value **vals, int n) {
  if (t->len > UINT32_MAX / 2) return fail(p, t, "value name too long");
  uint32_t h = hash_bytes(t->text, t->len);
  sym_slot *e = sym_find(p, t->text, t->len, h, true);
  if (!e) return false;
  if (e->vals && e->depth == p->scope)
    return fail(p, t, "redefinition of value %%%.*s", (int)(t->len > 64 ? 64 : t->len), t->text);
  if (p->n_undo == p->cap_undo) {
    int nc = p->cap_undo ? p->cap_undo * 2 : 64;
    sym_undo *nu = realloc(p->undo, (size_t)nc * sizeof *nu);
    if (!nu) return oom(p);
    p->undo = nu;
    p->cap_undo = nc;
  }
  sym_undo *u = &p->undo[p->n_undo++];
  u->name = e->name;
  u->len = e->len;
  u->hash = h;
  u->depth = e->depth;
  u->vals = e->vals;
  u->n = e->n;
  e->vals = vals;
  e->n = n;
  e->depth = p->scope;
  return true;
}

static int scope_push(parser *p) {
  p->scope++;
  return p->n_undo;
}

static void scope_pop(parser *p, int mark) {
  while (p->n_undo > mark) {
    sym_undo *u = &p->undo[--p->n_undo];
    sym_slot *e = sym_find(p, u->name, u->len, u->hash, false);
    if (e) {
      e->vals = u->vals;
      e->n = u->n;
      e->depth = u->depth;
    }
  }
  p->scope--;
}

/* ------------------------------------------------------------------ types */

enum { TY_ERR = 0, TY_OK = 1, TY_UNSUP = 2 };

static hs_dtype dtype_from_name(const char *s, size_t n) {
  static const struct {
    const char *name;
    hs_dtype dt;
  } tab[] = {
      {"f16", HS_F16},   {"bf16", HS_BF16}, {"f32", HS_F32},   {"f64", HS_F64},
      {"i1", HS_PRED},   {"i8", HS_I8},     {"i16", HS_I16},   {"i32", HS_I32},
      {"i64", HS_I64},   {"si8", HS_I8},    {"si16", HS_I16},  {"si32", HS_I32},
      {"si64", HS_I64},  {"ui8", HS_U8},    {"ui16", HS_U16},  {"ui32", HS_U32},
      {"ui64", HS_U64},  {"index", HS_I64},
  };
  for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
    if (strlen(tab[i].name) == n && memcmp(tab[i].name, s, n) == 0) return tab[i].dt;
  return HS_DTYPE_INVALID;
}

static bool type_eq(const hs_type *a, const hs_type *b) {
  if (a->kind != b->kind) return false;
  if (a->kind != HS_TYPE_TENSOR) return true;
  return a->dtype == b->dtype && hs_shape_equal(&a->shape, &b->shape);
}

static bool skip_balanced(parser *p);
static int parse_type(parser *p, hs_type *t, bool lenient);

/* Element type; sets *unsup (a message) for types we do not run. */
static int parse_elem_type(parser *p, hs_dtype *dt, char *unsup, size_t unsup_cap) {
  hs_token t = p->tok;
  if (t.kind == HS_TOK_BARE) {
    hs_dtype d = dtype_from_name(t.text, t.len);
    if (d != HS_DTYPE_INVALID) {
      next(p);
      *dt = d;
      return TY_OK;
    }
    if (hs_tok_text_eq(&t, "complex")) {
      next(p);
      if (!expect(p, HS_TOK_LT, "'<'")) return TY_ERR;
      hs_dtype inner = HS_DTYPE_INVALID;
      if (!enter(p)) return TY_ERR;
      int r = parse_elem_type(p, &inner, unsup, unsup_cap);
      if (r == TY_ERR) return TY_ERR;
      leave(p);
      if (!expect(p, HS_TOK_GT, "'>'")) return TY_ERR;
      if (r == TY_UNSUP) return TY_UNSUP;
      if (inner == HS_F32) *dt = HS_C64;
      else if (inner == HS_F64) *dt = HS_C128;
      else {
        snprintf(unsup, unsup_cap, "unsupported element type complex<%s>", hs_dtype_name(inner));
        return TY_UNSUP;
      }
      return TY_OK;
    }
    snprintf(unsup, unsup_cap, "unsupported element type %.*s", (int)(t.len > 48 ? 48 : t.len),
             t.text);
    next(p);
    if (p->tok.kind == HS_TOK_LT && !skip_balanced(p)) return TY_ERR;
    return TY_UNSUP;
  }
  if (t.kind == HS_TOK_EXCL) {
    snprintf(unsup, unsup_cap, "unsupported element type !%.*s", (int)(t.len > 48 ? 48 : t.len),
             t.text);
    next(p);
    if (p->tok.kind == HS_TOK_LT && !skip_balanced(p)) return TY_ERR;
    return TY_UNSUP;
  }
  char b[96];
  fail(p, &t, "expected an element type, found %s", tok_desc(&t, b, sizeof b));
  return TY_ERR;
}

/* Parses a type.  In lenient mode (types inside attributes) a type we do not
 * support is consumed and reported as TY_UNSUP; otherwise it is an
 * HS_UNIMPLEMENTED error at the type. */
static int parse_type(parser *p, hs_type *t, bool lenient) {
  memset(t, 0, sizeof *t);
  hs_token s = p->tok;
  char unsup[160];
  unsup[0] = 0;
  int r = TY_OK;
  if (s.kind == HS_TOK_EXCL) {
    next(p);
    if (hs_tok_text_eq(&s, "stablehlo.token")) {
      t->kind = HS_TYPE_TOKEN;
      return TY_OK;
    }
    snprintf(unsup, sizeof unsup, "unsupported type !%.*s", (int)(s.len > 48 ? 48 : s.len),
             s.text);
    if (p->tok.kind == HS_TOK_LT && !skip_balanced(p)) return TY_ERR;
    r = TY_UNSUP;
  } else if (s.kind == HS_TOK_BARE && hs_tok_text_eq(&s, "tensor")) {
    /* The cursor sits right after "tensor": the next token must be '<'. */
    if (!next(p)) return TY_ERR;
    if (p->tok.kind != HS_TOK_LT) {
      char b[96];
      fail(p, &p->tok, "expected '<' after 'tensor', found %s", tok_desc(&p->tok, b, sizeof b));
      return TY_ERR;
    }
    int64_t dims[HS_MAX_RANK];
    bool more = false;
    int rank = hs_lex_scan_dims(&p->lx, dims, HS_MAX_RANK, HS_MAX_ELEMENTS, &more);
    if (!next(p)) return TY_ERR;
    if (rank == -1) {
      fail(p, &s, "malformed tensor dimension list");
      return TY_ERR;
    }
    if (rank == -3) {
      fail(p, &s, "tensor dimension larger than 2^40");
      return TY_ERR;
    }
    if (rank == -2) {
      snprintf(unsup, sizeof unsup, "unranked tensors are not supported");
      r = TY_UNSUP;
    } else if (more) {
      snprintf(unsup, sizeof unsup, "tensor rank %d exceeds the maximum of %d", rank,
               HS_MAX_RANK);
      r = TY_UNSUP;
    } else {
      t->kind = HS_TYPE_TENSOR;
      t->shape.rank = rank;
      int64_t numel = 1;
      for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) {
          if (r == TY_OK) snprintf(unsup, sizeof unsup, "dynamic dimensions (?) are not supported");
          r = TY_UNSUP;
          continue;
        }
        t->shape.dims[i] = dims[i];
        if (numel && dims[i] && numel > HS_MAX_ELEMENTS / dims[i]) {
          fail(p, &s, "tensor has more than 2^40 elements");
          return TY_ERR;
        }
        numel *= dims[i];
      }
    }
    char unsup2[160];
    unsup2[0] = 0;
    hs_dtype dt = HS_DTYPE_INVALID;
    int er = parse_elem_type(p, &dt, unsup2, sizeof unsup2);
    if (er == TY_ERR) return TY_ERR;
    if (er == TY_UNSUP && r == TY_OK) {
      memcpy(unsup, unsup2, sizeof unsup);
      r = TY_UNSUP;
    }
    t->dtype = dt;
    if (p->tok.kind == HS_TOK_COMMA) {
      /* An encoding (#stablehlo.bounds<...>, sparse...): not supported. */
      next(p);
      int depth = 0;
      while (!(depth == 0 && p->tok.kind == HS_TOK_GT)) {
        hs_tok_kind k = p->tok.kind;
        if (k == HS_TOK_EOF || k == HS_TOK_ERROR) {
          fail(p, &s, "unterminated tensor type");
          return TY_ERR;
        }
        if (k == HS_TOK_LT || k == HS_TOK_LBRACK || k == HS_TOK_LPAREN || k == HS_TOK_LBRACE)
          depth++;
        if (k == HS_TOK_GT || k == HS_TOK_RBRACK || k == HS_TOK_RPAREN || k == HS_TOK_RBRACE)
          depth--;
        next(p);
      }
      if (r == TY_OK) snprintf(unsup, sizeof unsup, "tensor encodings are not supported");
      r = TY_UNSUP;
    }
    if (!expect(p, HS_TOK_GT, "'>' to close tensor type")) return TY_ERR;
  } else if (s.kind == HS_TOK_BARE && hs_tok_text_eq(&s, "tuple")) {
    next(p);
    if (!expect(p, HS_TOK_LT, "'<'")) return TY_ERR;
    if (!enter(p)) return TY_ERR;
    while (p->tok.kind != HS_TOK_GT) {
      hs_type inner;
      int ir = parse_type(p, &inner, lenient);
      if (ir == TY_ERR) return TY_ERR;
      if (!accept(p, HS_TOK_COMMA)) break;
    }
    leave(p);
    if (!expect(p, HS_TOK_GT, "'>' to close tuple type")) return TY_ERR;
    t->kind = HS_TYPE_TUPLE;
  } else if (s.kind == HS_TOK_BARE) {
    hs_dtype dt = HS_DTYPE_INVALID;
    if (dtype_from_name(s.text, s.len) != HS_DTYPE_INVALID || hs_tok_text_eq(&s, "complex")) {
      /* A bare element type used as a value type: a rank-0 tensor. */
      int er = parse_elem_type(p, &dt, unsup, sizeof unsup);
      if (er == TY_ERR) return TY_ERR;
      t->kind = HS_TYPE_TENSOR;
      t->dtype = dt;
      r = er;
    } else {
      snprintf(unsup, sizeof unsup, "unsupported type %.*s", (int)(s.len > 48 ? 48 : s.len),
               s.text);
      next(p);
      if (p->tok.kind == HS_TOK_LT && !skip_balanced(p)) return TY_ERR;
      r = TY_UNSUP;
    }
  } else if (s.kind == HS_TOK_LPAREN) {
    /* A function type: consume it (only meaningful inside attributes). */
    if (!skip_balanced(p)) return TY_ERR;
    if (!expect(p, HS_TOK_ARROW, "'->'")) return TY_ERR;
    if (p->tok.kind == HS_TOK_LPAREN) {
      if (!skip_balanced(p)) return TY_ERR;
    } else {
      hs_type res;
      if (parse_type(p, &res, true) == TY_ERR) return TY_ERR;
    }
    snprintf(unsup, sizeof unsup, "function types are not supported here");
    r = TY_UNSUP;
  } else {
    char b[96];
    fail(p, &s, "expected a type, found %s", tok_desc(&s, b, sizeof b));
    return TY_ERR;
  }
  if (r == TY_UNSUP && !lenient) {
    fail_code(p, &s, HS_UNIMPLEMENTED, "%s", unsup);
    return TY_ERR;
  }
  return r;
}

/* Consumes a balanced bracketed group starting at the current opener. */
static bool skip_balanced(parser *p) {
  hs_token start = p->tok;
  int depth = 0;
  do {
    hs_tok_kind k = p->tok.kind;
    if (k == HS_TOK_EOF || k == HS_TOK_ERROR) {
      if (!p->err) fail(p, &start, "unbalanced brackets");
      return false;
    }
    if (k == HS_TOK_LT || k == HS_TOK_LBRACK || k == HS_TOK_LPAREN || k == HS_TOK_LBRACE ||
        k == HS_TOK_META_BEGIN)
      depth++;
    else if (k == HS_TOK_GT || k == HS_TOK_RBRACK || k == HS_TOK_RPAREN || k == HS_TOK_RBRACE ||
             k == HS_TOK_META_END)
      depth--;
    if (depth < 0) return fail(p, &p->tok, "unbalanced brackets");
    if (!next(p)) return false;
  } while (depth > 0);
  return true;
}

/* ------------------------------------------------------------- attributes */

#define AF_PRETTY 1     /* bare words are enums, lists may continue `x [..] -> [..]` */
#define AF_TYPESUFFIX 2 /* numbers may carry `: type` */

static hs_attr *parse_attr(parser *p, int flags);

static hs_attr *new_attr(parser *p, hs_attr_kind k) {
  hs_attr *a = zalloc(p, sizeof *a);
  if (a) a->kind = k;
  return a;
}

static hs_attr *opaque_from(parser *p, size_t start_off) {
  hs_attr *a = new_attr(p, HS_ATTR_OPAQUE);
  if (!a) return NULL;
  size_t end = p->tok.kind == HS_TOK_EOF ? p->lx.len : p->tok.offset;
  if (end < start_off) end = start_off;
  /* Trim trailing blanks. */
  while (end > start_off && (p->lx.buf[end - 1] == ' ' || p->lx.buf[end - 1] == '\n' ||
                             p->lx.buf[end - 1] == '\t' || p->lx.buf[end - 1] == '\r'))
    end--;
  a->u.str.s = dup_text(p, p->lx.buf + start_off, end - start_off);
  a->u.str.len = end - start_off;
  return a->u.str.s ? a : NULL;
}

static bool tok_u64(parser *p, const hs_token *t, uint64_t *out) {
  uint64_t v = 0;
  if (t->hex) {
    size_t i = 2;
    while (i < t->len && t->text[i] == '0') i++;
    if (t->len - i > 16) return fail(p, t, "integer literal too large");
    for (; i < t->len; i++) {
      char c = t->text[i];
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
      v = v * 16 + (uint64_t)d;
    }
  } else {
    for (size_t i = 0; i < t->len; i++) {
      uint64_t d = (uint64_t)(t->text[i] - '0');
      if (v > (UINT64_MAX - d) / 10) return fail(p, t, "integer literal too large");
      v = v * 10 + d;
    }
  }
  *out = v;
  return true;
}

static bool tok_double(parser *p, const hs_token *t, double *out) {
  char buf[128];
  if (t->len >= sizeof buf) return fail(p, t, "number literal too long");
  memcpy(buf, t->text, t->len);
  buf[t->len] = 0;
  *out = strtod(buf, NULL);
  return true;
}

static bool tok_float32(parser *p, const hs_token *t, float *out) {
  char buf[128];
  if (t->len >= sizeof buf) return fail(p, t, "number literal too long");
  memcpy(buf, t->text, t->len);
  buf[t->len] = 0;
  *out = strtof(buf, NULL);
  return true;
}

static double bits_to_double(uint64_t bits, hs_dtype dt) {
  switch (dt) {
    case HS_F16: return hs_f16_to_f32((uint16_t)bits);
    case HS_BF16: return hs_bf16_to_f32((uint16_t)bits);
    case HS_F32: {
      uint32_t b = (uint32_t)bits;
      float f;
      memcpy(&f, &b, 4);
      return f;
    }
    default: {
      double d;
      memcpy(&d, &bits, 8);
      return d;
    }
  }
}

/* Numbers: 3, -3, 0x1F, 1.5, -inf, with an optional `: type` suffix. */
static hs_attr *parse_number_attr(parser *p, int flags) {
  bool neg = false;
  hs_token start = p->tok;
  if (p->tok.kind == HS_TOK_MINUS) {
    neg = true;
    next(p);
  }
  hs_token t = p->tok;
  hs_attr *a = NULL;
  if (t.kind == HS_TOK_INT) {
    uint64_t u;
    if (!tok_u64(p, &t, &u)) return NULL;
    next(p);
    a = new_attr(p, HS_ATTR_INT);
    if (!a) return NULL;
    if (neg && u > (uint64_t)INT64_MAX + 1) {
      fail(p, &t, "integer literal too large");
      return NULL;
    }
    a->u.i = neg ? (int64_t)(0 - u) : (int64_t)u;
    if ((flags & AF_TYPESUFFIX) && p->tok.kind == HS_TOK_COLON) {
      next(p);
      hs_type ty;
      int r = parse_type(p, &ty, true);
      if (r == TY_ERR) return NULL;
      if (r == TY_OK && ty.kind == HS_TYPE_TENSOR && ty.shape.rank == 0 &&
          hs_dtype_is_float(ty.dtype)) {
        a->kind = HS_ATTR_FLOAT;
        a->u.f = t.hex ? bits_to_double(u, ty.dtype) : (neg ? -(double)u : (double)u);
        if (t.hex && neg) a->u.f = -a->u.f;
      }
    }
    return a;
  }
  if (t.kind == HS_TOK_FLOAT || (t.kind == HS_TOK_BARE && (hs_tok_text_eq(&t, "inf") ||
                                                          hs_tok_text_eq(&t, "nan")))) {
    double d = 0;
    if (t.kind == HS_TOK_FLOAT) {
      if (!tok_double(p, &t, &d)) return NULL;
    } else {
      d = hs_tok_text_eq(&t, "inf") ? INFINITY : NAN;
    }
    next(p);
    a = new_attr(p, HS_ATTR_FLOAT);
    if (!a) return NULL;
    a->u.f = neg ? -d : d;
    if ((flags & AF_TYPESUFFIX) && p->tok.kind == HS_TOK_COLON) {
      next(p);
      hs_type ty;
      if (parse_type(p, &ty, true) == TY_ERR) return NULL;
    }
    return a;
  }
  char b[96];
  fail(p, &start, "expected a number, found %s", tok_desc(&t, b, sizeof b));
  return NULL;
}

/* `[a, b, ...]`.  All-integer lists become INTS. In pretty mode a list may go
 * on as `[..] x [..]` (dot_general dims) and `[..]x[..]->[..]` (conv dims),
 * which become ARRAYs tagged "x" and "->". */
static hs_attr *parse_list_attr(parser *p, int flags) {
  if (!enter(p)) return NULL;
  if (!expect(p, HS_TOK_LBRACK, "'['")) return NULL;
  VEC(hs_attr *) items = {0};
  bool all_int = true;
  while (p->tok.kind != HS_TOK_RBRACK) {
    hs_attr *it = parse_attr(p, flags);
    if (!it || !VPUSH(p, items, it)) return NULL;
    if (it->kind != HS_ATTR_INT) all_int = false;
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  if (!expect(p, HS_TOK_RBRACK, "']' or ','")) return NULL;
  leave(p);
  hs_attr *a;
  if (all_int) {
    a = new_attr(p, HS_ATTR_INTS);
    if (!a) return NULL;
    a->u.ints.n = items.n;
    a->u.ints.v = zalloc(p, (size_t)items.n * sizeof(int64_t));
    if (!a->u.ints.v) return NULL;
    for (int i = 0; i < items.n; i++) a->u.ints.v[i] = items.v[i]->u.i;
  } else {
    a = new_attr(p, HS_ATTR_ARRAY);
    if (!a) return NULL;
    a->u.array.items = items.v;
    a->u.array.n = items.n;
  }
  return a;
}

static hs_attr *make_array2(parser *p, const char *tag, hs_attr **items, int n) {
  hs_attr *a = new_attr(p, HS_ATTR_ARRAY);
  if (!a) return NULL;
  a->tag = tag;
  a->u.array.items = zalloc(p, (size_t)n * sizeof(hs_attr *));
  if (!a->u.array.items) return NULL;
  memcpy(a->u.array.items, items, (size_t)n * sizeof(hs_attr *));
  a->u.array.n = n;
  return a;
}

/* A pretty-syntax list with its `x [..]` / `->[..]` continuations. */
static hs_attr *parse_pretty_list(parser *p, int flags) {
  hs_attr *first = parse_list_attr(p, flags);
  if (!first) return NULL;
  if (!(flags & AF_PRETTY) || !is_word(p, "x")) return first;
  hs_token nt = peek(p);
  if (nt.kind != HS_TOK_LBRACK) return first;
  next(p);
  hs_attr *parts[3];
  parts[0] = first;
  parts[1] = parse_list_attr(p, flags);
  if (!parts[1]) return NULL;
  if (p->tok.kind != HS_TOK_ARROW) return make_array2(p, "x", parts, 2);
  next(p);
  parts[2] = parse_list_attr(p, flags);
  if (!parts[2]) return NULL;
  return make_array2(p, "->", parts, 3);
}

static hs_attr *parse_dict_attr(parser *p, int flags) {
  if (!enter(p)) return NULL;
  if (!expect(p, HS_TOK_LBRACE, "'{'")) return NULL;
  VEC(hs_named_attr) items = {0};
  while (p->tok.kind != HS_TOK_RBRACE) {
    hs_token k = p->tok;
    hs_named_attr na;
    if (k.kind == HS_TOK_BARE) {
      na.name = dup_text(p, k.text, k.len);
    } else if (k.kind == HS_TOK_STRING) {
      na.name = decode_string(p, k.text, k.len, NULL);
    } else {
      char b[96];
      fail(p, &k, "expected an attribute name, found %s", tok_desc(&k, b, sizeof b));
      return NULL;
    }
    if (!na.name) return NULL;
    next(p);
    if (accept(p, HS_TOK_EQUAL)) {
      na.value = parse_attr(p, flags | AF_TYPESUFFIX);
    } else {
      na.value = new_attr(p, HS_ATTR_UNIT);
    }
    if (!na.value || !VPUSH(p, items, na)) return NULL;
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  if (!expect(p, HS_TOK_RBRACE, "'}' or ','")) return NULL;
  leave(p);
  hs_attr *a = new_attr(p, HS_ATTR_DICT);
  if (!a) return NULL;
  a->u.dict.items = items.v;
  a->u.dict.n = items.n;
  return a;
}

/* ----------------------------------------------------------- dense<...> */

/* Hex digit value + 1 (0 marks a non-digit); a constant table, so parsing from
 * several threads at once needs no initialisation. */
static const unsigned char k_hex1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,
    ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14,
    ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15,
    ['F'] = 16,
};

static bool decode_hex(parser *p, const hs_token *t, const char *s, size_t nbytes,
                       unsigned char *out) {
  for (size_t i = 0; i < nbytes; i++) {
    int hi = k_hex1[(unsigned char)s[2 * i]], lo = k_hex1[(unsigned char)s[2 * i + 1]];
    if (!hi || !lo) return fail(p, t, "invalid hex digit in constant");
    out[i] = (unsigned char)((hi - 1) * 16 + (lo - 1));
  }
  return true;
}

/* Replicates the first `esz` bytes of buf over `total` bytes. */
static void replicate(unsigned char *buf, size_t esz, size_t total) {
  size_t have = esz;
  while (have < total) {
    size_t c = have < total - have ? have : total - have;
    memcpy(buf + have, buf, c);
    have += c;
  }
}

static size_t elem_size(hs_dtype dt) { return hs_dtype_size(dt); }

/* Writes one scalar element (the current token(s)) of dtype dt to dst. */
static bool write_elem(parser *p, hs_dtype dt, unsigned char *dst) {
  if (dt == HS_C64 || dt == HS_C128) {
    hs_dtype comp = dt == HS_C64 ? HS_F32 : HS_F64;
    size_t half = elem_size(comp);
    if (!expect(p, HS_TOK_LPAREN, "'(' of a complex element")) return false;
    if (!write_elem(p, comp, dst)) return false;
    if (!expect(p, HS_TOK_COMMA, "','")) return false;
    if (!write_elem(p, comp, dst + half)) return false;
    return expect(p, HS_TOK_RPAREN, "')'");
  }
  bool neg = false;
  if (p->tok.kind == HS_TOK_MINUS) {
    neg = true;
    next(p);
  }
  hs_token t = p->tok;
  char b[96];
  if (dt == HS_PRED) {
    uint8_t v;
    if (hs_tok_is(&t, HS_TOK_BARE, "true")) v = 1;
    else if (hs_tok_is(&t, HS_TOK_BARE, "false")) v = 0;
    else if (t.kind == HS_TOK_INT) {
      uint64_t u;
      if (!tok_u64(p, &t, &u)) return false;
      if (u > 1) return fail(p, &t, "invalid i1 value");
      v = (uint8_t)u;
    } else {
      return fail(p, &t, "expected true or false, found %s", tok_desc(&t, b, sizeof b));
    }
    *dst = v;
    return next(p);
  }
  if (hs_dtype_is_int(dt)) {
    if (t.kind != HS_TOK_INT)
      return fail(p, &t, "expected an integer for %s, found %s", hs_dtype_name(dt),
                  tok_desc(&t, b, sizeof b));
    uint64_t u;
    if (!tok_u64(p, &t, &u)) return false;
    int bits = hs_dtype_bits(dt);
    uint64_t maxu = bits == 64 ? UINT64_MAX : (((uint64_t)1 << bits) - 1);
    uint64_t v;
    if (hs_dtype_is_signed(dt)) {
      uint64_t lim = (uint64_t)1 << (bits - 1);
      if (neg) {
        if (u > lim) return fail(p, &t, "integer out of range for %s", hs_dtype_name(dt));
        v = 0 - u;
      } else {
        if (t.hex ? u > maxu : u > lim - 1)
          return fail(p, &t, "integer out of range for %s", hs_dtype_name(dt));
        v = u;
      }
    } else {
      if ((neg && u != 0) || u > maxu)
        return fail(p, &t, "integer out of range for %s", hs_dtype_name(dt));
      v = u;
    }
    switch (elem_size(dt)) {
      case 1: { uint8_t x = (uint8_t)v; memcpy(dst, &x, 1); break; }
      case 2: { uint16_t x = (uint16_t)v; memcpy(dst, &x, 2); break; }
      case 4: { uint32_t x = (uint32_t)v; memcpy(dst, &x, 4); break; }
      default: memcpy(dst, &v, 8); break;
    }
    return next(p);
  }
  if (hs_dtype_is_float(dt)) {
    double d = 0;
    if (t.kind == HS_TOK_INT && t.hex) {
      uint64_t u;
      if (!tok_u64(p, &t, &u)) return false;
      int bits = hs_dtype_bits(dt);
      if (bits < 64 && u >> bits)
        return fail(p, &t, "hex float literal too wide for %s", hs_dtype_name(dt));
      if (neg) u ^= (uint64_t)1 << (bits - 1);
      switch (dt) {
        case HS_F16:
        case HS_BF16: { uint16_t x = (uint16_t)u; memcpy(dst, &x, 2); break; }
        case HS_F32: { uint32_t x = (uint32_t)u; memcpy(dst, &x, 4); break; }
        default: memcpy(dst, &u, 8); break;
      }
      return next(p);
    }
    if (t.kind == HS_TOK_FLOAT && dt == HS_F32) {
      float f = 0;
      if (!tok_float32(p, &t, &f)) return false;
      if (neg) f = -f;
      memcpy(dst, &f, 4);
      return next(p);
    }
    if (t.kind == HS_TOK_FLOAT) {
      if (!tok_double(p, &t, &d)) return false;
    } else if (t.kind == HS_TOK_INT) {
      uint64_t u;
      if (!tok_u64(p, &t, &u)) return false;
      d = (double)u;
    } else if (hs_tok_is(&t, HS_TOK_BARE, "inf")) {
      d = INFINITY;
    } else if (hs_tok_is(&t, HS_TOK_BARE, "nan")) {
      d = NAN;
    } else {
      return fail(p, &t, "expected a number for %s, found %s", hs_dtype_name(dt),
                  tok_desc(&t, b, sizeof b));
    }
    if (neg) d = -d;
    switch (dt) {
      case HS_F16: { uint16_t x = hs_f64_to_f16(d); memcpy(dst, &x, 2); break; }
      case HS_BF16: { uint16_t x = hs_f64_to_bf16(d); memcpy(dst, &x, 2); break; }
      case HS_F32: { float f = (float)d; memcpy(dst, &f, 4); break; }
      default: memcpy(dst, &d, 8); break;
    }
    return next(p);
  }
  return fail(p, &t, "unsupported dense element type %s", hs_dtype_name(dt));
}

typedef struct dense_writer {
  hs_dtype dt;
  size_t esz;
  unsigned char *out;
  int64_t numel, i;
  const hs_shape *shape;
} dense_writer;

static bool dense_level(parser *p, dense_writer *w, int level) {
  hs_token open = p->tok;
  if (level >= w->shape->rank)
    return fail(p, &open, "dense literal is nested deeper than the tensor rank %d",
                w->shape->rank);
  if (!expect(p, HS_TOK_LBRACK, "'['")) return false;
  int64_t count = 0;
  while (p->tok.kind != HS_TOK_RBRACK) {
    if (level + 1 < w->shape->rank) {
      if (!dense_level(p, w, level + 1)) return false;
    } else {
      if (w->i >= w->numel) return fail(p, &p->tok, "too many elements in dense literal");
      if (!write_elem(p, w->dt, w->out + (size_t)w->i * w->esz)) return false;
      w->i++;
    }
    count++;
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  if (!expect(p, HS_TOK_RBRACK, "']' or ','")) return false;
  if (count != w->shape->dims[level])
    return fail(p, &open, "dense literal has %" PRId64 " elements in dimension %d, expected %" PRId64,
                count, level, w->shape->dims[level]);
  return true;
}

static const char *type_text(const hs_type *t, char *buf, size_t cap) {
  return hs_type_str(t, buf, cap);
}

static hs_attr *parse_dense(parser *p) {
  hs_token kw = p->tok;
  next(p);
  if (!expect(p, HS_TOK_LT, "'<' after 'dense'")) return NULL;
  hs_lexer lit_lx = p->lx;
  hs_token lit_tok = p->tok;
  bool is_hex = false, empty = false;
  hs_token hex_tok = p->tok;
  if (p->tok.kind == HS_TOK_STRING) {
    is_hex = true;
    next(p);
  } else if (p->tok.kind == HS_TOK_GT) {
    empty = true;
  } else {
    int depth = 0;
    while (!(depth == 0 && p->tok.kind == HS_TOK_GT)) {
      hs_tok_kind k = p->tok.kind;
      if (k == HS_TOK_LBRACK || k == HS_TOK_LPAREN) {
        if (++depth > HS_MAX_RANK + 2)
          return fail(p, &p->tok, "dense literal nested too deeply"), NULL;
      } else if (k == HS_TOK_RBRACK || k == HS_TOK_RPAREN) {
        if (--depth < 0) return fail(p, &p->tok, "unbalanced dense literal"), NULL;
      } else if (!(k == HS_TOK_COMMA || k == HS_TOK_INT || k == HS_TOK_FLOAT ||
                   k == HS_TOK_MINUS || k == HS_TOK_BARE)) {
        char b[96];
        fail(p, &p->tok, "unexpected %s in dense literal", tok_desc(&p->tok, b, sizeof b));
        return NULL;
      }
      if (!next(p)) return NULL;
    }
  }
  size_t lit_bytes = p->tok.offset - lit_tok.offset;
  if (!expect(p, HS_TOK_GT, "'>' to close dense<...>")) return NULL;
  if (!expect(p, HS_TOK_COLON, "':' and the type of the dense constant")) return NULL;
  hs_token ty_tok = p->tok;
  hs_type ty;
  if (parse_type(p, &ty, false) == TY_ERR) return NULL;
  if (ty.kind != HS_TYPE_TENSOR) {
    fail(p, &ty_tok, "dense constant must have a tensor type");
    return NULL;
  }
  int64_t numel = hs_shape_numel(&ty.shape);
  size_t esz = elem_size(ty.dtype);
  if (esz == 0) {
    fail(p, &ty_tok, "unsupported dense element type");
    return NULL;
  }
  if ((uint64_t)numel > SIZE_MAX / esz) {
    fail_code(p, &ty_tok, HS_RESOURCE_EXHAUSTED, "constant too large");
    return NULL;
  }
  size_t nbytes = (size_t)numel * esz;
  hs_attr *a = new_attr(p, HS_ATTR_DENSE);
  if (!a) return NULL;
  a->u.dense.type = ty;
  a->u.dense.nbytes = nbytes;
  char tb[128];
  if (is_hex) {
    const char *s = hex_tok.text;
    size_t n = hex_tok.len;
    if (n < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
      fail_code(p, &hex_tok, HS_UNIMPLEMENTED, "string constants are not supported");
      return NULL;
    }
    if ((n - 2) % 2) {
      fail(p, &hex_tok, "hex constant has an odd number of digits");
      return NULL;
    }
    size_t hb = (n - 2) / 2;
    bool splat = hb == esz && numel != 1;
    if (hb != nbytes && !splat) {
      fail(p, &hex_tok, "hex constant has %zu bytes, expected %zu for %s", hb, nbytes,
           type_text(&ty, tb, sizeof tb));
      return NULL;
    }
    if (splat && nbytes > g_max_splat_bytes) {
      fail_code(p, &ty_tok, HS_RESOURCE_EXHAUSTED, "splat constant of %zu bytes exceeds the limit",
                nbytes);
      return NULL;
    }
    unsigned char *out = hs_arena_alloc(p->A, nbytes ? nbytes : 1);
    if (!out) {
      oom(p);
      return NULL;
    }
    if (numel > 0) {
      if (!decode_hex(p, &hex_tok, s + 2, splat ? esz : nbytes, out)) return NULL;
      if (splat) replicate(out, esz, nbytes);
      if (ty.dtype == HS_PRED)
        for (size_t i = 0; i < nbytes; i++) out[i] = out[i] != 0;
    }
    a->u.dense.data = out;
    return a;
  }
  if (empty) {
    if (numel != 0) {
      fail(p, &kw, "empty dense literal for a non-empty %s", type_text(&ty, tb, sizeof tb));
      return NULL;
    }
    a->u.dense.data = zalloc(p, 1);
    return a->u.dense.data ? a : NULL;
  }
  /* Re-lex the literal now that the element type is known. */
  bool splat = lit_tok.kind != HS_TOK_LBRACK;
  if (splat && nbytes > g_max_splat_bytes) {
    fail_code(p, &ty_tok, HS_RESOURCE_EXHAUSTED, "splat constant of %zu bytes exceeds the limit",
              nbytes);
    return NULL;
  }
  if (!splat && (uint64_t)numel > lit_bytes) {
    fail(p, &lit_tok, "dense literal is too short for %s", type_text(&ty, tb, sizeof tb));
    return NULL;
  }
  unsigned char *out = hs_arena_alloc(p->A, nbytes > esz ? nbytes : esz);
  if (!out) {
    oom(p);
    return NULL;
  }
  hs_lexer after_lx = p->lx;
  hs_token after_tok = p->tok;
  p->lx = lit_lx;
  p->tok = lit_tok;
  if (splat) {
    if (!write_elem(p, ty.dtype, out)) return NULL;
    if (p->tok.kind != HS_TOK_GT) {
      char b[96];
      fail(p, &p->tok, "unexpected %s in dense literal", tok_desc(&p->tok, b, sizeof b));
      return NULL;
    }
    if (nbytes > esz) replicate(out, esz, nbytes);
  } else {
    dense_writer w = {ty.dtype, esz, out, numel, 0, &a->u.dense.type.shape};
    if (ty.shape.rank == 0) {
      fail(p, &lit_tok, "a rank-0 tensor needs a scalar literal, not a list");
      return NULL;
    }
    if (!dense_level(p, &w, 0)) return NULL;
    if (p->tok.kind != HS_TOK_GT) {
      char b[96];
      fail(p, &p->tok, "unexpected %s after dense literal", tok_desc(&p->tok, b, sizeof b));
      return NULL;
    }
    if (w.i != numel) {
      fail(p, &lit_tok, "dense literal has %" PRId64 " elements, expected %" PRId64, w.i, numel);
      return NULL;
    }
  }
  p->lx = after_lx;
  p->tok = after_tok;
  a->u.dense.data = out;
  return a;
}

static hs_attr *parse_dense_resource(parser *p) {
  next(p);
  if (!expect(p, HS_TOK_LT, "'<'")) return NULL;
  hs_token name = p->tok;
  if (name.kind != HS_TOK_BARE && name.kind != HS_TOK_STRING) {
    fail(p, &name, "expected a resource name");
    return NULL;
  }
  next(p);
  if (!expect(p, HS_TOK_GT, "'>'")) return NULL;
  if (!expect(p, HS_TOK_COLON, "':' and a type")) return NULL;
  hs_token ty_tok = p->tok;
  hs_type ty;
  if (parse_type(p, &ty, false) == TY_ERR) return NULL;
  if (ty.kind != HS_TYPE_TENSOR) {
    fail(p, &ty_tok, "dense_resource must have a tensor type");
    return NULL;
  }
  hs_attr *a = new_attr(p, HS_ATTR_DENSE);
  if (!a) return NULL;
  a->u.dense.type = ty;
  a->u.dense.nbytes = (size_t)hs_shape_numel(&ty.shape) * elem_size(ty.dtype);
  resource_ref r = {a, name.text, name.len, name.line, name.col};
  if (!VPUSH(p, p->resources, r)) return NULL;
  return a;
}

/* array<i64: 1, 2>, array<i1: true>, array<f32: 1.0> */
static hs_attr *parse_array_attr(parser *p) {
  next(p);
  if (!expect(p, HS_TOK_LT, "'<' after 'array'")) return NULL;
  hs_token et = p->tok;
  if (et.kind != HS_TOK_BARE) {
    fail(p, &et, "expected an element type in array<...>");
    return NULL;
  }
  hs_dtype dt = dtype_from_name(et.text, et.len);
  next(p);
  VEC(int64_t) ints = {0};
  VEC(hs_attr *) items = {0};
  bool is_float = dt == HS_F16 || dt == HS_BF16 || dt == HS_F32 || dt == HS_F64;
  if (dt == HS_DTYPE_INVALID) {
    fail_code(p, &et, HS_UNIMPLEMENTED, "unsupported array element type %.*s",
              (int)(et.len > 32 ? 32 : et.len), et.text);
    return NULL;
  }
  if (accept(p, HS_TOK_COLON)) {
    for (;;) {
      hs_token t = p->tok;
      if (dt == HS_PRED && (hs_tok_is(&t, HS_TOK_BARE, "true") || hs_tok_is(&t, HS_TOK_BARE, "false"))) {
        int64_t v = hs_tok_text_eq(&t, "true");
        if (!VPUSH(p, ints, v)) return NULL;
        next(p);
      } else {
        hs_attr *n = parse_number_attr(p, 0);
        if (!n) return NULL;
        if (is_float) {
          if (n->kind == HS_ATTR_INT) {
            n->kind = HS_ATTR_FLOAT;
            n->u.f = (double)n->u.i;
          }
          if (!VPUSH(p, items, n)) return NULL;
        } else {
          if (n->kind != HS_ATTR_INT) {
            fail(p, &t, "expected an integer in array<...>");
            return NULL;
          }
          if (!VPUSH(p, ints, n->u.i)) return NULL;
        }
      }
      if (!accept(p, HS_TOK_COMMA)) break;
    }
  }
  if (!expect(p, HS_TOK_GT, "'>' to close array<...>")) return NULL;
  if (is_float) {
    hs_attr *a = new_attr(p, HS_ATTR_ARRAY);
    if (!a) return NULL;
    a->u.array.items = items.v;
    a->u.array.n = items.n;
    return a;
  }
  hs_attr *a = new_attr(p, HS_ATTR_INTS);
  if (!a) return NULL;
  a->u.ints.v = ints.n ? ints.v : zalloc(p, sizeof(int64_t));
  a->u.ints.n = ints.n;
  return a->u.ints.v ? a : NULL;
}

static hs_named_attr *struct_field(hs_attr *s, const char *name);

/* Builds a #stablehlo.conv struct from the "->" tagged ARRAY of three lists. */
static hs_attr *conv_dims_struct(parser *p, const hs_attr *arr, const hs_token *at) {
  if (!arr || arr->kind != HS_ATTR_ARRAY || !arr->tag || strcmp(arr->tag, "->") != 0 ||
      arr->u.array.n != 3) {
    fail(p, at, "expected convolution dimensions like [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]");
    return NULL;
  }
  static const char *names[3][3] = {
      {"input_batch_dimension", "input_feature_dimension", "input_spatial_dimensions"},
      {"kernel_input_feature_dimension", "kernel_output_feature_dimension",
       "kernel_spatial_dimensions"},
      {"output_batch_dimension", "output_feature_dimension", "output_spatial_dimensions"}};
  static const char letters[3][2] = {{'b', 'f'}, {'i', 'o'}, {'b', 'f'}};
  hs_attr *s = new_attr(p, HS_ATTR_STRUCT);
  if (!s) return NULL;
  s->tag = "stablehlo.conv";
  s->u.dict.items = zalloc(p, 9 * sizeof(hs_named_attr));
  if (!s->u.dict.items) return NULL;
  int n_spatial = -1;
  for (int part = 0; part < 3; part++) {
    const hs_attr *l = arr->u.array.items[part];
    int n = l->kind == HS_ATTR_INTS ? l->u.ints.n : l->kind == HS_ATTR_ARRAY ? l->u.array.n : -1;
    if (n < 2 || n > HS_MAX_RANK) {
      fail(p, at, "malformed convolution dimension list");
      return NULL;
    }
    int64_t pos[2] = {-1, -1};
    int64_t spatial[HS_MAX_RANK];
    for (int i = 0; i < HS_MAX_RANK; i++) spatial[i] = -1;
    int ns = 0;
    for (int i = 0; i < n; i++) {
      if (l->kind == HS_ATTR_INTS) {
        fail(p, at, "convolution dimension list lacks its letters");
        return NULL;
      }
      const hs_attr *it = l->u.array.items[i];
      if (it->kind == HS_ATTR_INT) {
        if (it->u.i < 0 || it->u.i >= HS_MAX_RANK || spatial[it->u.i] >= 0) {
          fail(p, at, "bad spatial dimension %" PRId64 " in convolution dimensions", it->u.i);
          return NULL;
        }
        spatial[it->u.i] = i;
        ns++;
      } else if (it->kind == HS_ATTR_ENUM && it->u.str.len == 1 &&
                 (it->u.str.s[0] == letters[part][0] || it->u.str.s[0] == letters[part][1])) {
        int w = it->u.str.s[0] == letters[part][0] ? 0 : 1;
        if (pos[w] >= 0) {
          fail(p, at, "repeated '%c' in convolution dimensions", letters[part][w]);
          return NULL;
        }
        pos[w] = i;
      } else {
        fail(p, at, "unexpected entry in convolution dimensions");
        return NULL;
      }
    }
    if (pos[0] < 0 || pos[1] < 0) {
      fail(p, at, "convolution dimensions need '%c' and '%c'", letters[part][0], letters[part][1]);
      return NULL;
    }
    for (int i = 0; i < ns; i++)
      if (spatial[i] < 0) {
        fail(p, at, "spatial dimensions in convolution dimensions must be 0..%d", ns - 1);
        return NULL;
      }
    if (n_spatial >= 0 && ns != n_spatial) {
      fail(p, at, "convolution dimension lists disagree on the number of spatial dimensions");
      return NULL;
    }
    n_spatial = ns;
    for (int w = 0; w < 2; w++) {
      hs_attr *v = new_attr(p, HS_ATTR_INT);
      if (!v) return NULL;
      v->u.i = pos[w];
      s->u.dict.items[s->u.dict.n].name = names[part][w];
      s->u.dict.items[s->u.dict.n++].value = v;
    }
    hs_attr *v = new_attr(p, HS_ATTR_INTS);
    if (!v) return NULL;
    v->u.ints.v = zalloc(p, (size_t)(ns ? ns : 1) * sizeof(int64_t));
    if (!v->u.ints.v) return NULL;
    for (int i = 0; i < ns; i++) v->u.ints.v[i] = spatial[i];
    v->u.ints.n = ns;
    s->u.dict.items[s->u.dict.n].name = names[part][2];
    s->u.dict.items[s->u.dict.n++].value = v;
  }
  return s;
}

/* `<key = value, ...>` into a STRUCT (the '<' is current). */
static hs_attr *parse_struct_body(parser *p, const char *tag) {
  if (!expect(p, HS_TOK_LT, "'<'")) return NULL;
  if (!enter(p)) return NULL;
  VEC(hs_named_attr) items = {0};
  while (p->tok.kind != HS_TOK_GT) {
    hs_token k = p->tok;
    if (k.kind != HS_TOK_BARE) {
      char b[96];
      fail(p, &k, "expected a field name, found %s", tok_desc(&k, b, sizeof b));
      return NULL;
    }
    next(p);
    hs_named_attr na;
    na.name = dup_text(p, k.text, k.len);
    if (!na.name) return NULL;
    if (accept(p, HS_TOK_EQUAL)) {
      na.value = parse_attr(p, AF_PRETTY | AF_TYPESUFFIX);
    } else {
      na.value = new_attr(p, HS_ATTR_UNIT);
    }
    if (!na.value || !VPUSH(p, items, na)) return NULL;
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  leave(p);
  if (!expect(p, HS_TOK_GT, "'>' or ','")) return NULL;
  hs_attr *a = new_attr(p, HS_ATTR_STRUCT);
  if (!a) return NULL;
  a->tag = tag;
  a->u.dict.items = items.v;
  a->u.dict.n = items.n;
  return a;
}

static bool is_known_struct(const char *tag) {
  static const char *known[] = {"stablehlo.gather", "stablehlo.scatter", "stablehlo.dot",
                                "stablehlo.channel_handle", "stablehlo.output_operand_alias",
                                "stablehlo.type_extensions", "stablehlo.dot_algorithm",
                                "stablehlo.result_accuracy"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(known[i], tag) == 0) return true;
  return false;
}

typedef struct spec_state {
  hs_lexer lx;
  hs_token tok;
  int depth;
  int n_resources;
} spec_state;

static void spec_save(parser *p, spec_state *s) {
  s->lx = p->lx;
  s->tok = p->tok;
  s->depth = p->depth;
  s->n_resources = p->resources.n;
}

static void spec_restore(parser *p, const spec_state *s) {
  hs_status_free(p->err);
  p->err = NULL;
  p->lx = s->lx;
  p->tok = s->tok;
  p->depth = s->depth;
  p->resources.n = s->n_resources;
}

static hs_attr *parse_hash_attr(parser *p, int flags) {
  hs_token t = p->tok;
  size_t start = t.offset;
  next(p);
  if (p->tok.kind != HS_TOK_LT) {
    for (int i = 0; i < p->aliases.n; i++)
      if (p->aliases.v[i].len == t.len && memcmp(p->aliases.v[i].name, t.text, t.len) == 0)
        return p->aliases.v[i].attr;
    fail(p, &t, "undefined attribute alias #%.*s", (int)(t.len > 64 ? 64 : t.len), t.text);
    return NULL;
  }
  const char *dot = memchr(t.text, '.', t.len);
  char *tag = dup_text(p, t.text, t.len);
  if (!tag) return NULL;
  (void)flags;
  if (!dot) {
    /* #stablehlo<comparison_direction GT> and friends. */
    spec_state ss;
    spec_save(p, &ss);
    next(p);
    hs_token a = p->tok, b = peek(p);
    if (a.kind == HS_TOK_BARE && b.kind == HS_TOK_BARE) {
      next(p);
      next(p);
      if (p->tok.kind == HS_TOK_GT) {
        next(p);
        hs_attr *e = new_attr(p, HS_ATTR_ENUM);
        if (!e) return NULL;
        e->tag = dup_text(p, a.text, a.len);
        e->u.str.s = dup_text(p, b.text, b.len);
        e->u.str.len = b.len;
        return e->tag && e->u.str.s ? e : NULL;
      }
    }
    spec_restore(p, &ss);
    if (!skip_balanced(p)) return NULL;
    return opaque_from(p, start);
  }
  if (strcmp(tag, "stablehlo.conv") == 0) {
    hs_token lt = p->tok;
    next(p);
    if (is_word(p, "raw")) {
      next(p);
      /* `raw` struct form: rewind to reuse the struct parser. */
      hs_attr *s = NULL;
      VEC(hs_named_attr) items = {0};
      if (!enter(p)) return NULL;
      while (p->tok.kind != HS_TOK_GT) {
        hs_token k = p->tok;
        if (k.kind != HS_TOK_BARE) {
          fail(p, &k, "expected a field name in #stablehlo.conv");
          return NULL;
        }
        next(p);
        if (!expect(p, HS_TOK_EQUAL, "'='")) return NULL;
        hs_named_attr na = {dup_text(p, k.text, k.len), parse_attr(p, AF_PRETTY | AF_TYPESUFFIX)};
        if (!na.name || !na.value || !VPUSH(p, items, na)) return NULL;
        if (!accept(p, HS_TOK_COMMA)) break;
      }
      leave(p);
      if (!expect(p, HS_TOK_GT, "'>'")) return NULL;
      s = new_attr(p, HS_ATTR_STRUCT);
      if (!s) return NULL;
      s->tag = "stablehlo.conv";
      s->u.dict.items = items.v;
      s->u.dict.n = items.n;
      return s;
    }
    hs_attr *arr = parse_pretty_list(p, AF_PRETTY);
    if (!arr) return NULL;
    if (!expect(p, HS_TOK_GT, "'>' to close #stablehlo.conv")) return NULL;
    return conv_dims_struct(p, arr, &lt);
  }
  if (is_known_struct(tag)) return parse_struct_body(p, tag);
  /* Unknown: an enum `#x.y<WORD>`, a struct, or opaque. */
  spec_state ss;
  spec_save(p, &ss);
  hs_token a = peek(p);
  if (a.kind == HS_TOK_BARE) {
    next(p);
    next(p);
    if (p->tok.kind == HS_TOK_GT) {
      next(p);
      hs_attr *e = new_attr(p, HS_ATTR_ENUM);
      if (!e) return NULL;
      e->tag = dup_text(p, dot + 1, (size_t)(t.text + t.len - dot - 1));
      e->u.str.s = dup_text(p, a.text, a.len);
      e->u.str.len = a.len;
      return e->tag && e->u.str.s ? e : NULL;
    }
    spec_restore(p, &ss);
    hs_attr *s = parse_struct_body(p, tag);
    if (s) return s;
    spec_restore(p, &ss);
  }
  if (!skip_balanced(p)) return NULL;
  return opaque_from(p, start);
}

/* A function type used as an attribute (function_type of a generic func.func):
 * an ARRAY tagged "function_type" of two ARRAYs of TYPE attributes. */
static hs_attr *parse_function_type_attr(parser *p) {
  hs_attr *lists[2];
  for (int part = 0; part < 2; part++) {
    VEC(hs_attr *) items = {0};
    bool paren = part == 0 || p->tok.kind == HS_TOK_LPAREN;
    if (paren && !expect(p, HS_TOK_LPAREN, "'('")) return NULL;
    if (!paren || p->tok.kind != HS_TOK_RPAREN) {
      for (;;) {
        hs_attr *ta = new_attr(p, HS_ATTR_TYPE);
        if (!ta) return NULL;
        int r = parse_type(p, &ta->u.type, true);
        if (r == TY_ERR) return NULL;
        if (r == TY_UNSUP) ta->kind = HS_ATTR_OPAQUE;
        if (p->tok.kind == HS_TOK_LBRACE) {
          /* per-argument attributes are not part of a type; skip */
          if (!skip_balanced(p)) return NULL;
        }
        if (!VPUSH(p, items, ta)) return NULL;
        if (!paren || !accept(p, HS_TOK_COMMA)) break;
      }
    }
    if (paren && !expect(p, HS_TOK_RPAREN, "')'")) return NULL;
    lists[part] = new_attr(p, HS_ATTR_ARRAY);
    if (!lists[part]) return NULL;
    lists[part]->u.array.items = items.v;
    lists[part]->u.array.n = items.n;
    if (part == 0 && !expect(p, HS_TOK_ARROW, "'->' in function type")) return NULL;
  }
  return make_array2(p, "function_type", lists, 2);
}

static bool is_type_word(const hs_token *t) {
  if (t->kind != HS_TOK_BARE) return false;
  if (dtype_from_name(t->text, t->len) != HS_DTYPE_INVALID) return true;
  static const char *w[] = {"tensor", "tuple", "complex", "vector", "memref", "none",
                            "f8E4M3FN", "f8E5M2", "f8E4M3FNUZ", "f8E5M2FNUZ", "f8E4M3B11FNUZ",
                            "tf32", "i4", "ui4", "si4", "i2", "ui2", "f4E2M1FN", "f6E2M3FN",
                            "f6E3M2FN", "f8E3M4", "f8E4M3", "f8E8M0FNU"};
  for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
    if (hs_tok_text_eq(t, w[i])) return true;
  return false;
}

static hs_attr *parse_attr(parser *p, int flags) {
  if (!enter(p)) return NULL;
  hs_token t = p->tok;
  hs_attr *a = NULL;
  char b[96];
  switch (t.kind) {
    case HS_TOK_INT:
    case HS_TOK_FLOAT:
    case HS_TOK_MINUS:
      a = parse_number_attr(p, flags);
      break;
    case HS_TOK_STRING: {
      a = new_attr(p, HS_ATTR_STRING);
      if (!a) break;
      a->u.str.s = decode_string(p, t.text, t.len, &a->u.str.len);
      if (!a->u.str.s) return NULL;
      next(p);
      if ((flags & AF_TYPESUFFIX) && p->tok.kind == HS_TOK_COLON) {
        next(p);
        hs_type ty;
        if (parse_type(p, &ty, true) == TY_ERR) return NULL;
      }
      break;
    }
    case HS_TOK_AT: {
      a = new_attr(p, HS_ATTR_SYMBOL);
      if (!a) break;
      a->u.str.s = dup_text(p, t.text, t.len);
      a->u.str.len = t.len;
      next(p);
      /* nested references @a::@b: keep the leaf */
      while (p->tok.kind == HS_TOK_COLON && peek(p).kind == HS_TOK_COLON) {
        next(p);
        next(p);
        if (p->tok.kind != HS_TOK_AT) {
          fail(p, &p->tok, "expected a symbol after '::'");
          return NULL;
        }
        a->u.str.s = dup_text(p, p->tok.text, p->tok.len);
        a->u.str.len = p->tok.len;
        next(p);
      }
      if (!a->u.str.s) return NULL;
      break;
    }
    case HS_TOK_LBRACK:
      a = (flags & AF_PRETTY) ? parse_pretty_list(p, flags) : parse_list_attr(p, flags);
      break;
    case HS_TOK_LBRACE:
      a = parse_dict_attr(p, flags);
      break;
    case HS_TOK_HASH:
      a = parse_hash_attr(p, flags);
      break;
    case HS_TOK_LPAREN:
      a = parse_function_type_attr(p);
      break;
    case HS_TOK_LT: {
      size_t start = t.offset;
      if (!skip_balanced(p)) return NULL;
      a = opaque_from(p, start);
      break;
    }
    case HS_TOK_EXCL: {
      a = new_attr(p, HS_ATTR_TYPE);
      if (!a) break;
      size_t start = t.offset;
      int r = parse_type(p, &a->u.type, true);
      if (r == TY_ERR) return NULL;
      if (r == TY_UNSUP) a = opaque_from(p, start);
      break;
    }
    case HS_TOK_BARE:
      if (hs_tok_text_eq(&t, "true") || hs_tok_text_eq(&t, "false")) {
        a = new_attr(p, HS_ATTR_BOOL);
        if (a) a->u.b = hs_tok_text_eq(&t, "true");
        next(p);
      } else if (hs_tok_text_eq(&t, "unit")) {
        a = new_attr(p, HS_ATTR_UNIT);
        next(p);
      } else if (hs_tok_text_eq(&t, "dense")) {
        a = parse_dense(p);
      } else if (hs_tok_text_eq(&t, "dense_resource")) {
        a = parse_dense_resource(p);
      } else if (hs_tok_text_eq(&t, "array")) {
        a = parse_array_attr(p);
      } else if (hs_tok_text_eq(&t, "inf") || hs_tok_text_eq(&t, "nan")) {
        a = parse_number_attr(p, flags);
      } else if (is_type_word(&t) && !((flags & AF_PRETTY) && peek(p).kind != HS_TOK_LT &&
                                       dtype_from_name(t.text, t.len) == HS_DTYPE_INVALID)) {
        size_t start = t.offset;
        a = new_attr(p, HS_ATTR_TYPE);
        if (!a) break;
        int r = parse_type(p, &a->u.type, true);
        if (r == TY_ERR) return NULL;
        if (r == TY_UNSUP) a = opaque_from(p, start);
      } else if (flags & AF_PRETTY) {
        a = new_attr(p, HS_ATTR_ENUM);
        if (!a) break;
        a->u.str.s = dup_text(p, t.text, t.len);
        a->u.str.len = t.len;
        if (!a->u.str.s) return NULL;
        next(p);
      } else {
        size_t start = t.offset;
        next(p);
        if (p->tok.kind == HS_TOK_LT || p->tok.kind == HS_TOK_LBRACK) {
          if (!skip_balanced(p)) return NULL;
        }
        a = opaque_from(p, start);
      }
      break;
    default:
      fail(p, &t, "expected an attribute value, found %s", tok_desc(&t, b, sizeof b));
      return NULL;
  }
  if (a) leave(p);
  return a;
}

/* ------------------------------------------------------------------- ops */

typedef struct opnd {
  hs_value *v;
  int line, col;
  const char *name;
  size_t name_len;
} opnd;

typedef struct res_name {
  hs_token t;
  int count;
} res_name;

typedef VEC(hs_type) type_vec;

typedef struct op_build {
  const char *name;
  hs_token name_tok;
  hs_loc loc;
  VEC(opnd) ops;
  VEC(hs_named_attr) attrs;
  VEC(hs_region *) regions;
  type_vec otypes; /* declared operand types, when known */
  bool have_otypes;
  type_vec rtypes;
  int n_names;     /* total results named by `%a:2, %b =` */
  bool have_rtypes;
} op_build;

static bool parse_op(parser *p, hs_op **out);

static hs_value *new_value(parser *p, const hs_type *t, hs_op *def, int index, const char *name) {
  hs_value *v = hs_arena_alloc(p->A, sizeof *v);
  if (!v) {
    oom(p);
    return NULL;
  }
  v->id = p->fn ? p->fn->n_values++ : 0;
  v->type = *t;
  v->def = def;
  v->index = index;
  v->name = name;
  return v;
}

static bool parse_operand(parser *p, opnd *o) {
  hs_token t = p->tok;
  char b[96];
  if (t.kind != HS_TOK_PERCENT)
    return fail(p, &t, "expected a value, found %s", tok_desc(&t, b, sizeof b));
  sym_slot *e = p->cap ? sym_find(p, t.text, t.len, hash_bytes(t.text, t.len), false) : NULL;
  if (!e || !e->vals)
    return fail(p, &t, "use of undefined value %%%.*s", (int)(t.len > 64 ? 64 : t.len), t.text);
  int idx = t.result_no < 0 ? 0 : t.result_no;
  if (idx >= e->n)
    return fail(p, &t, "result #%d of %%%.*s is out of range (it has %d)", idx,
                (int)(t.len > 64 ? 64 : t.len), t.text, e->n);
  o->v = e->vals[idx];
  o->line = t.line;
  o->col = t.col;
  o->name = t.text;
  o->name_len = t.len;
  return next(p);
}

static bool add_attr(parser *p, op_build *ob, const char *name, hs_attr *a) {
  /* Integer DENSE attributes other than constants' payloads are widened to
   * i64 so hs_op_get_ints can hand out a pointer. */
  if (a && a->kind == HS_ATTR_DENSE && strcmp(name, "value") != 0 && a->u.dense.data &&
      hs_dtype_is_int(a->u.dense.type.dtype) && a->u.dense.type.dtype != HS_I64) {
    int64_t n = hs_shape_numel(&a->u.dense.type.shape);
    if (n <= (1 << 20)) {
      hs_attr *w = new_attr(p, HS_ATTR_DENSE);
      int64_t *d = zalloc(p, (size_t)(n ? n : 1) * sizeof(int64_t));
      if (!w || !d) return false;
      for (int64_t i = 0; i < n; i++) d[i] = hs_load_i64(a->u.dense.type.dtype, a->u.dense.data, i);
      *w = *a;
      w->u.dense.type.dtype = HS_I64;
      w->u.dense.data = d;
      w->u.dense.nbytes = (size_t)n * sizeof(int64_t);
      a = w;
    }
  }
  hs_named_attr na = {name, a};
  return VPUSH(p, ob->attrs, na);
}

static bool add_dict(parser *p, op_build *ob, const hs_attr *d) {
  for (int i = 0; i < d->u.dict.n; i++)
    if (!add_attr(p, ob, d->u.dict.items[i].name, d->u.dict.items[i].value)) return false;
  return true;
}

static bool is_terminator_name(const char *n) {
  size_t l = strlen(n);
  return strcmp(n, "func.return") == 0 || strcmp(n, "stablehlo.return") == 0 ||
         (l > 7 && strcmp(n + l - 7, ".return") == 0) || (l > 6 && strcmp(n + l - 6, ".yield") == 0);
}

/* Parses `{ [^bb(args):] ops }`.  predef_* are block arguments spelled
 * outside the region (function arguments, while iterArgs, reducer args). */
static bool parse_region(parser *p, const hs_token *predef_names, const hs_type *predef_types,
                         int n_predef, hs_region **out) {
  if (!enter(p)) return false;
  hs_token open = p->tok;
  if (!expect(p, HS_TOK_LBRACE, "'{' to open a region")) return false;
  hs_region *r = zalloc(p, sizeof *r);
  hs_block *blk = zalloc(p, sizeof *blk);
  hs_block **blocks = zalloc(p, sizeof *blocks);
  if (!r || !blk || !blocks) return false;
  blocks[0] = blk;
  r->blocks = blocks;
  r->n_blocks = 1;
  int mark = scope_push(p);
  hs_region *saved = p->region;
  p->region = r;
  VEC(hs_value *) args = {0};
  for (int i = 0; i < n_predef; i++) {
    const char *nm = dup_text(p, predef_names[i].text, predef_names[i].len);
    hs_value *v = nm ? new_value(p, &predef_types[i], NULL, i, nm) : NULL;
    if (!v || !VPUSH(p, args, v)) return false;
  }
  /* Define after the vector is final (it may move while growing). */
  if (p->tok.kind == HS_TOK_CARET) {
    if (n_predef) return fail(p, &p->tok, "unexpected block header in this region");
    next(p);
    if (accept(p, HS_TOK_LPAREN)) {
      VEC(hs_token) names = {0};
      while (p->tok.kind != HS_TOK_RPAREN) {
        hs_token nt = p->tok;
        if (nt.kind != HS_TOK_PERCENT || nt.result_no >= 0) {
          char b[96];
          return fail(p, &nt, "expected a block argument, found %s", tok_desc(&nt, b, sizeof b));
        }
        next(p);
        if (!expect(p, HS_TOK_COLON, "':' after a block argument")) return false;
        hs_type ty;
        if (parse_type(p, &ty, false) == TY_ERR) return false;
        const char *nm = dup_text(p, nt.text, nt.len);
        hs_value *v = nm ? new_value(p, &ty, NULL, args.n, nm) : NULL;
        if (!v || !VPUSH(p, args, v) || !VPUSH(p, names, nt)) return false;
        if (!accept(p, HS_TOK_COMMA)) break;
      }
      if (!expect(p, HS_TOK_RPAREN, "')' or ','")) return false;
      for (int i = 0; i < names.n; i++)
        if (!sym_define(p, &names.v[i], &args.v[i], 1)) return false;
    }
    if (!expect(p, HS_TOK_COLON, "':' after the block header")) return false;
  } else {
    for (int i = 0; i < n_predef; i++)
      if (!sym_define(p, &predef_names[i], &args.v[i], 1)) return false;
  }
  blk->args = args.v;
  blk->n_args = args.n;
  VEC(hs_op *) ops = {0};
  while (p->tok.kind != HS_TOK_RBRACE) {
    if (p->tok.kind == HS_TOK_CARET)
      return fail_code(p, &p->tok, HS_UNIMPLEMENTED, "regions with more than one block are not supported");
    if (p->tok.kind == HS_TOK_EOF) return fail(p, &open, "unterminated region (missing '}')");
    hs_op *op = NULL;
    if (!parse_op(p, &op)) return false;
    if (!VPUSH(p, ops, op)) return false;
  }
  if (!expect(p, HS_TOK_RBRACE, "'}'")) return false;
  blk->ops = ops.v;
  blk->n_ops = ops.n;
  if (ops.n == 0 || !is_terminator_name(ops.v[ops.n - 1]->name))
    return fail(p, &open, "region does not end with a return");
  scope_pop(p, mark);
  p->region = saved;
  leave(p);
  *out = r;
  return true;
}

/* Creates the op, its results, and defines the result names. */
static bool finish_op(parser *p, op_build *ob, const res_name *names, int n_names,
                      hs_op **out) {
  char b1[128], b2[128];
  if (n_names > 0 && ob->n_names != ob->rtypes.n)
    return fail_at(p, ob->loc.line, ob->loc.col, HS_INVALID_ARGUMENT,
                   "'%s' defines %d result(s) but its type gives %d", ob->name, ob->n_names,
                   ob->rtypes.n);
  if (ob->have_otypes) {
    if (ob->otypes.n != ob->ops.n)
      return fail_at(p, ob->loc.line, ob->loc.col, HS_INVALID_ARGUMENT,
                     "'%s' has %d operand(s) but its type lists %d", ob->name, ob->ops.n,
                     ob->otypes.n);
    for (int i = 0; i < ob->ops.n; i++) {
      const opnd *o = &ob->ops.v[i];
      if (!type_eq(&o->v->type, &ob->otypes.v[i]))
        return fail_at(p, o->line, o->col, HS_INVALID_ARGUMENT,
                       "type mismatch: %%%.*s is used as %s but was defined as %s",
                       (int)(o->name_len > 64 ? 64 : o->name_len), o->name,
                       hs_type_str(&ob->otypes.v[i], b1, sizeof b1),
                       hs_type_str(&o->v->type, b2, sizeof b2));
    }
  }
  hs_op *op = zalloc(p, sizeof *op);
  if (!op) return false;
  op->name = ob->name;
  op->loc = ob->loc;
  op->parent = p->region;
  op->n_operands = ob->ops.n;
  op->operands = zalloc(p, (size_t)(ob->ops.n ? ob->ops.n : 1) * sizeof(hs_value *));
  if (!op->operands) return false;
  for (int i = 0; i < ob->ops.n; i++) op->operands[i] = ob->ops.v[i].v;
  op->n_attrs = ob->attrs.n;
  op->attrs = ob->attrs.v;
  op->n_regions = ob->regions.n;
  op->regions = ob->regions.v;
  op->n_results = ob->rtypes.n;
  op->results = zalloc(p, (size_t)(ob->rtypes.n ? ob->rtypes.n : 1) * sizeof(hs_value *));
  if (!op->results) return false;
  int k = 0;
  for (int i = 0; i < n_names; i++) {
    const hs_token *t = &names[i].t;
    for (int j = 0; j < names[i].count; j++, k++) {
      const char *nm;
      if (names[i].count == 1) {
        nm = dup_text(p, t->text, t->len);
      } else {
        char buf[96];
        int w = snprintf(buf, sizeof buf, "%.*s#%d", (int)(t->len > 64 ? 64 : t->len), t->text, j);
        nm = dup_text(p, buf, (size_t)(w < 0 ? 0 : w));
      }
      if (!nm) return false;
      op->results[k] = new_value(p, &ob->rtypes.v[k], op, k, nm);
      if (!op->results[k]) return false;
    }
  }
  for (; k < ob->rtypes.n; k++) {
    op->results[k] = new_value(p, &ob->rtypes.v[k], op, k, "");
    if (!op->results[k]) return false;
  }
  k = 0;
  for (int i = 0; i < n_names; i++) {
    if (!sym_define(p, &names[i].t, &op->results[k], names[i].count)) return false;
    k += names[i].count;
  }
  if (strcmp(op->name, "func.call") == 0 && !VPUSH(p, p->calls, op)) return false;
  *out = op;
  return true;
}

/* Type lists: `(T, T) -> (T)` / `T -> T` (functional) or `T, T` (short). */
typedef struct sig {
  type_vec in, out;
  bool functional;
} sig;

static bool parse_type_list(parser *p, type_vec *v, bool allow_attrs) {
  for (;;) {
    hs_type t;
    if (parse_type(p, &t, false) == TY_ERR) return false;
    if (allow_attrs && p->tok.kind == HS_TOK_LBRACE) {
      hs_attr *d = parse_dict_attr(p, 0);
      if (!d) return false;
    }
    if (!VPUSH(p, *v, t)) return false;
    if (!accept(p, HS_TOK_COMMA)) return true;
  }
}

static bool parse_results_types(parser *p, type_vec *out) {
  if (p->tok.kind == HS_TOK_LPAREN) {
    next(p);
    if (p->tok.kind != HS_TOK_RPAREN && !parse_type_list(p, out, true)) return false;
    return expect(p, HS_TOK_RPAREN, "')'");
  }
  hs_type t;
  if (parse_type(p, &t, false) == TY_ERR) return false;
  return VPUSH(p, *out, t);
}

static bool parse_sig(parser *p, sig *s) {
  memset(s, 0, sizeof *s);
  if (p->tok.kind == HS_TOK_LPAREN) {
    next(p);
    if (p->tok.kind != HS_TOK_RPAREN && !parse_type_list(p, &s->in, false)) return false;
    if (!expect(p, HS_TOK_RPAREN, "')'")) return false;
    if (!expect(p, HS_TOK_ARROW, "'->' in the op's function type")) return false;
    s->functional = true;
    return parse_results_types(p, &s->out);
  }
  if (!parse_type_list(p, &s->in, false)) return false;
  if (accept(p, HS_TOK_ARROW)) {
    s->functional = true;
    return parse_results_types(p, &s->out);
  }
  return true;
}

static bool op_is(const op_build *ob, const char *n) { return strcmp(ob->name, n) == 0; }

/* Gives meaning to a short type list `: T` / `: T1, T2` of a pretty op. */
static bool apply_short_types(parser *p, op_build *ob, const sig *s, const hs_token *at) {
  int L = s->in.n, nops = ob->ops.n, nres = ob->n_names;
  const hs_type *T = s->in.v;
  ob->rtypes.n = 0;
  ob->otypes.n = 0;
  if (op_is(ob, "stablehlo.select") && L == 2 && nops == 3) {
    hs_type o[3] = {T[0], T[1], T[1]};
    for (int i = 0; i < 3; i++)
      if (!VPUSH(p, ob->otypes, o[i])) return false;
    ob->have_otypes = true;
    for (int i = 0; i < nres; i++)
      if (!VPUSH(p, ob->rtypes, T[1])) return false;
    return true;
  }
  if (L == 1) {
    if (nres > 1)
      return fail(p, at, "'%s' defines %d results but its type gives 1", ob->name, nres);
    for (int i = 0; i < nres; i++)
      if (!VPUSH(p, ob->rtypes, T[0])) return false;
    if (op_is(ob, "stablehlo.complex")) {
      hs_type c = T[0];
      if (c.kind == HS_TYPE_TENSOR && (c.dtype == HS_C64 || c.dtype == HS_C128)) {
        c.dtype = c.dtype == HS_C64 ? HS_F32 : HS_F64;
        for (int i = 0; i < nops; i++)
          if (!VPUSH(p, ob->otypes, c)) return false;
        ob->have_otypes = true;
      }
      return true;
    }
    if (op_is(ob, "stablehlo.tuple")) return true;
    for (int i = 0; i < nops; i++)
      if (!VPUSH(p, ob->otypes, T[0])) return false;
    ob->have_otypes = true;
    return true;
  }
  if (L == nops && nres == 0) {
    for (int i = 0; i < L; i++)
      if (!VPUSH(p, ob->otypes, T[i])) return false;
    ob->have_otypes = true;
    return true;
  }
  if (L == nops && nres == L) {
    for (int i = 0; i < L; i++)
      if (!VPUSH(p, ob->otypes, T[i]) || !VPUSH(p, ob->rtypes, T[i])) return false;
    ob->have_otypes = true;
    return true;
  }
  if (nops == 0 && nres == L) {
    for (int i = 0; i < L; i++)
      if (!VPUSH(p, ob->rtypes, T[i])) return false;
    return true;
  }
  return fail(p, at, "cannot match %d type(s) to the %d operand(s) and %d result(s) of '%s'", L,
              nops, nres, ob->name);
}

static bool apply_sig(parser *p, op_build *ob, const sig *s, const hs_token *at) {
  if (s->functional) {
    ob->otypes = s->in;
    ob->have_otypes = true;
    ob->rtypes = s->out;
    ob->have_rtypes = true;
    return true;
  }
  ob->have_rtypes = true;
  return apply_short_types(p, ob, s, at);
}

static bool parse_generic_op(parser *p, op_build *ob) {
  hs_token nt = p->tok;
  char *nm = decode_string(p, nt.text, nt.len, NULL);
  if (!nm) return false;
  ob->name = intern(p, nm, strlen(nm));
  if (!ob->name) return false;
  next(p);
  if (!expect(p, HS_TOK_LPAREN, "'(' after the op name")) return false;
  while (p->tok.kind != HS_TOK_RPAREN) {
    opnd o;
    if (!parse_operand(p, &o) || !VPUSH(p, ob->ops, o)) return false;
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  if (!expect(p, HS_TOK_RPAREN, "')' or ','")) return false;
  if (p->tok.kind == HS_TOK_LBRACK)
    return fail_code(p, &p->tok, HS_UNIMPLEMENTED, "successor blocks are not supported");
  if (accept(p, HS_TOK_LT)) {
    hs_attr *d = parse_dict_attr(p, 0);
    if (!d || !add_dict(p, ob, d)) return false;
    if (!expect(p, HS_TOK_GT, "'>' to close the properties")) return false;
  }
  if (p->tok.kind == HS_TOK_LPAREN) {
    next(p);
    while (p->tok.kind != HS_TOK_RPAREN) {
      hs_region *r;
      if (!parse_region(p, NULL, NULL, 0, &r) || !VPUSH(p, ob->regions, r)) return false;
      if (!accept(p, HS_TOK_COMMA)) break;
    }
    if (!expect(p, HS_TOK_RPAREN, "')' after the regions")) return false;
  }
  if (p->tok.kind == HS_TOK_LBRACE) {
    hs_attr *d = parse_dict_attr(p, 0);
    if (!d || !add_dict(p, ob, d)) return false;
  }
  hs_token at = p->tok;
  if (!expect(p, HS_TOK_COLON, "':' and the op's function type")) return false;
  if (p->tok.kind != HS_TOK_LPAREN)
    return fail(p, &p->tok, "expected the function type '(...) -> ...' of a generic op");
  sig s;
  if (!parse_sig(p, &s)) return false;
  return apply_sig(p, ob, &s, &at);
}

/* -------------------------------------------------------- pretty syntax */

typedef struct pos_attr {
  hs_attr *a;
  hs_token t;
} pos_attr;

typedef struct kv_attr {
  hs_token key;
  hs_attr *a;
} kv_attr;

typedef struct pretty_state {
  VEC(pos_attr) pos;
  VEC(kv_attr) kv;
  hs_token sym;
  bool has_sym;
  bool has_index;
  hs_token index_tok;
  VEC(int64_t) i_start;
  VEC(int64_t) i_limit;
  VEC(int64_t) i_stride;
  int i_min_parts, i_max_parts;
} pretty_state;

static bool parse_index_spec(parser *p, pretty_state *ps) {
  if (ps->has_index) return fail(p, &p->tok, "unexpected second index list");
  ps->has_index = true;
  ps->index_tok = p->tok;
  ps->i_min_parts = 4;
  ps->i_max_parts = 0;
  next(p);
  while (p->tok.kind != HS_TOK_RBRACK) {
    int64_t v[3] = {0, 0, 1};
    int parts = 0;
    for (;;) {
      hs_token t = p->tok;
      if (t.kind != HS_TOK_INT) return fail(p, &t, "expected an integer in the index list");
      uint64_t u;
      if (!tok_u64(p, &t, &u)) return false;
      if (u > (uint64_t)INT64_MAX) return fail(p, &t, "index too large");
      if (parts >= 3) return fail(p, &t, "too many ':' in the index list");
      v[parts++] = (int64_t)u;
      next(p);
      if (!accept(p, HS_TOK_COLON)) break;
    }
    if (parts < ps->i_min_parts) ps->i_min_parts = parts;
    if (parts > ps->i_max_parts) ps->i_max_parts = parts;
    if (!VPUSH(p, ps->i_start, v[0]) || !VPUSH(p, ps->i_limit, v[1]) ||
        !VPUSH(p, ps->i_stride, v[2]))
      return false;
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  return expect(p, HS_TOK_RBRACK, "']' or ','");
}

static bool parse_item(parser *p, op_build *ob, pretty_state *ps);

static bool parse_group(parser *p, op_build *ob, pretty_state *ps) {
  if (!enter(p)) return false;
  next(p); /* ( */
  while (p->tok.kind != HS_TOK_RPAREN) {
    if (!parse_item(p, ob, ps)) return false;
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  if (!expect(p, HS_TOK_RPAREN, "')' or ','")) return false;
  leave(p);
  return true;
}

static bool parse_item(parser *p, op_build *ob, pretty_state *ps) {
  hs_token t = p->tok;
  switch (t.kind) {
    case HS_TOK_PERCENT: {
      opnd o;
      if (!parse_operand(p, &o) || !VPUSH(p, ob->ops, o)) return false;
      if (p->tok.kind == HS_TOK_LBRACK) return parse_index_spec(p, ps);
      return true;
    }
    case HS_TOK_AT:
      if (ps->has_sym) return fail(p, &t, "unexpected second symbol");
      ps->has_sym = true;
      ps->sym = t;
      next(p);
      if (p->tok.kind == HS_TOK_LPAREN) return parse_group(p, ob, ps);
      return true;
    case HS_TOK_LPAREN:
      return parse_group(p, ob, ps);
    case HS_TOK_BARE:
      if (peek(p).kind == HS_TOK_EQUAL) {
        next(p);
        next(p);
        kv_attr kv = {t, parse_attr(p, AF_PRETTY)};
        return kv.a && VPUSH(p, ps->kv, kv);
      }
      /* fall through */
    default: {
      pos_attr pa = {parse_attr(p, AF_PRETTY), t};
      return pa.a && VPUSH(p, ps->pos, pa);
    }
  }
}

static bool can_start_first_item(parser *p, const op_build *ob) {
  const hs_token *t = &p->tok;
  switch (t->kind) {
    case HS_TOK_PERCENT:
    case HS_TOK_AT:
    case HS_TOK_LPAREN:
    case HS_TOK_INT:
    case HS_TOK_FLOAT:
    case HS_TOK_MINUS:
    case HS_TOK_HASH:
      return true;
    case HS_TOK_STRING:
      return op_is(ob, "stablehlo.composite");
    case HS_TOK_BARE: {
      if (hs_tok_text_eq(t, "dense") || hs_tok_text_eq(t, "array") ||
          hs_tok_text_eq(t, "dense_resource") || hs_tok_text_eq(t, "true") ||
          hs_tok_text_eq(t, "false"))
        return true;
      hs_token n = peek(p);
      if (n.kind == HS_TOK_EQUAL) return true;
      return op_is(ob, "stablehlo.compare") || op_is(ob, "chlo.broadcast_compare");
    }
    default:
      return false;
  }
}

static hs_attr *int_attr(parser *p, int64_t v) {
  hs_attr *a = new_attr(p, HS_ATTR_INT);
  if (a) a->u.i = v;
  return a;
}

static hs_attr *ints_attr(parser *p, const int64_t *v, int n) {
  hs_attr *a = new_attr(p, HS_ATTR_INTS);
  if (!a) return NULL;
  a->u.ints.v = zalloc(p, (size_t)(n ? n : 1) * sizeof(int64_t));
  if (!a->u.ints.v) return NULL;
  if (n) memcpy(a->u.ints.v, v, (size_t)n * sizeof(int64_t));
  a->u.ints.n = n;
  return a;
}

static bool set_enum_tag(parser *p, hs_attr *a, const char *tag, const hs_token *at) {
  if (a->kind != HS_ATTR_ENUM) return fail(p, at, "expected a %s keyword", tag);
  a->tag = tag;
  return true;
}

/* `[0] x [1]` lists for dot_general into the struct fields. */
static bool dot_pair(parser *p, hs_attr *st, const hs_attr *v, const char *lhs, const char *rhs,
                     const hs_token *at) {
  if (v->kind != HS_ATTR_ARRAY || !v->tag || strcmp(v->tag, "x") != 0 || v->u.array.n != 2 ||
      v->u.array.items[0]->kind != HS_ATTR_INTS || v->u.array.items[1]->kind != HS_ATTR_INTS)
    return fail(p, at, "expected '[..] x [..]' lists of dimensions");
  for (int s = 0; s < 2; s++) {
    hs_attr *l = v->u.array.items[s];
    if (l->u.ints.n == 0) continue;
    hs_named_attr na = {s == 0 ? lhs : rhs, l};
    st->u.dict.items[st->u.dict.n++] = na;
  }
  return true;
}

static hs_named_attr *struct_field(hs_attr *s, const char *name) {
  for (int i = 0; i < s->u.dict.n; i++)
    if (strcmp(s->u.dict.items[i].name, name) == 0) return &s->u.dict.items[i];
  return NULL;
}

/* pad = [[l, h], ...] into a DENSE i64 [N, 2]. */
static hs_attr *padding_dense(parser *p, const hs_attr *v, const hs_token *at) {
  int n = v->kind == HS_ATTR_ARRAY ? v->u.array.n : v->kind == HS_ATTR_INTS ? v->u.ints.n : -1;
  if (n < 0 || (v->kind == HS_ATTR_INTS && n != 0)) {
    fail(p, at, "expected pad = [[low, high], ...]");
    return NULL;
  }
  hs_attr *a = new_attr(p, HS_ATTR_DENSE);
  int64_t *d = zalloc(p, (size_t)(n ? 2 * n : 1) * sizeof(int64_t));
  if (!a || !d) return NULL;
  for (int i = 0; i < n; i++) {
    const hs_attr *pr = v->u.array.items[i];
    if (pr->kind != HS_ATTR_INTS || pr->u.ints.n != 2) {
      fail(p, at, "expected pad = [[low, high], ...]");
      return NULL;
    }
    d[2 * i] = pr->u.ints.v[0];
    d[2 * i + 1] = pr->u.ints.v[1];
  }
  a->u.dense.type.kind = HS_TYPE_TENSOR;
  a->u.dense.type.dtype = HS_I64;
  a->u.dense.type.shape.rank = 2;
  a->u.dense.type.shape.dims[0] = n;
  a->u.dense.type.shape.dims[1] = 2;
  a->u.dense.data = d;
  a->u.dense.nbytes = (size_t)n * 2 * sizeof(int64_t);
  return a;
}

static hs_attr *bools_to_ints(parser *p, const hs_attr *v, const hs_token *at) {
  if (v->kind == HS_ATTR_INTS) return (hs_attr *)v;
  if (v->kind != HS_ATTR_ARRAY) {
    fail(p, at, "expected a list of booleans");
    return NULL;
  }
  hs_attr *a = new_attr(p, HS_ATTR_INTS);
  if (!a) return NULL;
  a->u.ints.v = zalloc(p, (size_t)(v->u.array.n ? v->u.array.n : 1) * sizeof(int64_t));
  if (!a->u.ints.v) return NULL;
  for (int i = 0; i < v->u.array.n; i++) {
    const hs_attr *it = v->u.array.items[i];
    if (it->kind == HS_ATTR_BOOL) a->u.ints.v[i] = it->u.b;
    else if (it->kind == HS_ATTR_INT) a->u.ints.v[i] = it->u.i != 0;
    else {
      fail(p, at, "expected a list of booleans");
      return NULL;
    }
  }
  a->u.ints.n = v->u.array.n;
  return a;
}

typedef struct rename_rule {
  const char *op, *key, *canon, *enum_tag;
} rename_rule;

static const rename_rule k_renames[] = {
    {"stablehlo.broadcast_in_dim", "dims", "broadcast_dimensions", NULL},
    {"stablehlo.dynamic_broadcast_in_dim", "dims", "broadcast_dimensions", NULL},
    {"stablehlo.transpose", "dims", "permutation", NULL},
    {"stablehlo.reverse", "dims", "dimensions", NULL},
    {"stablehlo.iota", "dim", "iota_dimension", NULL},
    {"stablehlo.dynamic_iota", "dim", "iota_dimension", NULL},
    {"stablehlo.concatenate", "dim", "dimension", NULL},
    {"stablehlo.get_dimension_size", "dim", "dimension", NULL},
    {"stablehlo.set_dimension_size", "dim", "dimension", NULL},
    {"stablehlo.dynamic_slice", "sizes", "slice_sizes", NULL},
    {"stablehlo.broadcast", "sizes", "broadcast_sizes", NULL},
    {"stablehlo.pad", "low", "edge_padding_low", NULL},
    {"stablehlo.pad", "high", "edge_padding_high", NULL},
    {"stablehlo.pad", "interior", "interior_padding", NULL},
    {"stablehlo.fft", "type", "fft_type", "fft_type"},
    {"stablehlo.fft", "length", "fft_length", NULL},
    {"stablehlo.rng_bit_generator", "algorithm", "rng_algorithm", "rng_algorithm"},
    {"stablehlo.rng", "distribution", "rng_distribution", "rng_distribution"},
    {"stablehlo.einsum", "config", "einsum_config", NULL},
    {"stablehlo.unary_einsum", "config", "einsum_config", NULL},
    {"stablehlo.convolution", "dim_numbers", "dimension_numbers", NULL},
};

static bool canon_pretty(parser *p, op_build *ob, pretty_state *ps) {
  /* Keyed items. */
  hs_attr *dot = NULL;
  for (int i = 0; i < ps->kv.n; i++) {
    kv_attr *kv = &ps->kv.v[i];
    hs_token *k = &kv->key;
    const char *canon = NULL;
    hs_attr *val = kv->a;
    for (size_t r = 0; r < sizeof k_renames / sizeof k_renames[0]; r++) {
      if (op_is(ob, k_renames[r].op) && hs_tok_text_eq(k, k_renames[r].key)) {
        canon = k_renames[r].canon;
        if (k_renames[r].enum_tag && !set_enum_tag(p, val, k_renames[r].enum_tag, k)) return false;
        break;
      }
    }
    if (canon && strcmp(canon, "dimension_numbers") == 0) {
      val = conv_dims_struct(p, val, k);
      if (!val) return false;
    }
    if (!canon && op_is(ob, "stablehlo.reduce_precision") && hs_tok_text_eq(k, "format")) {
      unsigned e = 0, m = 0;
      char tail;
      char buf[32];
      if (val->kind != HS_ATTR_ENUM || val->u.str.len >= sizeof buf)
        return fail(p, k, "expected format = eXmY");
      memcpy(buf, val->u.str.s, val->u.str.len);
      buf[val->u.str.len] = 0;
      if (sscanf(buf, "e%um%u%c", &e, &m, &tail) != 2 || e > 1024 || m > 1024)
        return fail(p, k, "expected format = eXmY");
      hs_attr *ea = int_attr(p, e), *ma = int_attr(p, m);
      if (!ea || !ma || !add_attr(p, ob, "exponent_bits", ea) ||
          !add_attr(p, ob, "mantissa_bits", ma))
        return false;
      continue;
    }
    if (!canon && (op_is(ob, "stablehlo.dot_general") || op_is(ob, "stablehlo.dot")) &&
        hs_tok_text_eq(k, "precision")) {
      if (val->kind == HS_ATTR_ARRAY) {
        for (int j = 0; j < val->u.array.n; j++)
          if (!set_enum_tag(p, val->u.array.items[j], "precision", k)) return false;
      } else if (!(val->kind == HS_ATTR_INTS && val->u.ints.n == 0)) {
        return fail(p, k, "expected precision = [...]");
      }
      if (!add_attr(p, ob, "precision_config", val)) return false;
      continue;
    }
    if (!canon && op_is(ob, "stablehlo.dot_general") &&
        (hs_tok_text_eq(k, "batching_dims") || hs_tok_text_eq(k, "contracting_dims"))) {
      if (!dot) {
        dot = new_attr(p, HS_ATTR_STRUCT);
        if (!dot) return false;
        dot->tag = "stablehlo.dot";
        dot->u.dict.items = zalloc(p, 4 * sizeof(hs_named_attr));
        if (!dot->u.dict.items || !add_attr(p, ob, "dot_dimension_numbers", dot)) return false;
      }
      bool batching = hs_tok_text_eq(k, "batching_dims");
      if (dot->u.dict.n > 2 ||
          struct_field(dot, batching ? "lhs_batching_dimensions" : "lhs_contracting_dimensions") ||
          struct_field(dot, batching ? "rhs_batching_dimensions" : "rhs_contracting_dimensions"))
        return fail(p, k, "repeated dimension list");
      if (!dot_pair(p, dot, val,
                    batching ? "lhs_batching_dimensions" : "lhs_contracting_dimensions",
                    batching ? "rhs_batching_dimensions" : "rhs_contracting_dimensions", k))
        return false;
      continue;
    }
    if (!canon && op_is(ob, "stablehlo.convolution") && hs_tok_text_eq(k, "window")) {
      if (val->kind != HS_ATTR_DICT) return fail(p, k, "expected window = {...}");
      for (int j = 0; j < val->u.dict.n; j++) {
        const char *wn = val->u.dict.items[j].name;
        hs_attr *wv = val->u.dict.items[j].value;
        const char *cn = NULL;
        if (strcmp(wn, "stride") == 0) cn = "window_strides";
        else if (strcmp(wn, "lhs_dilate") == 0) cn = "lhs_dilation";
        else if (strcmp(wn, "rhs_dilate") == 0) cn = "rhs_dilation";
        else if (strcmp(wn, "pad") == 0) {
          cn = "padding";
          wv = padding_dense(p, wv, k);
        } else if (strcmp(wn, "reverse") == 0) {
          cn = "window_reversal";
          wv = bools_to_ints(p, wv, k);
        } else {
          return fail(p, k, "unknown window attribute '%s'", wn);
        }
        if (!wv) return false;
        if (wv->kind != HS_ATTR_INTS && wv->kind != HS_ATTR_DENSE)
          return fail(p, k, "expected a list of integers for '%s'", wn);
        if (!add_attr(p, ob, cn, wv)) return false;
      }
      continue;
    }
    if (!canon) {
      canon = dup_text(p, k->text, k->len);
      if (!canon) return false;
    }
    if (!add_attr(p, ob, canon, val)) return false;
  }
  /* Positional attributes. */
  for (int i = 0; i < ps->pos.n; i++) {
    pos_attr *pa = &ps->pos.v[i];
    const char *name = "value";
    if (op_is(ob, "stablehlo.compare") || op_is(ob, "chlo.broadcast_compare")) {
      if (i > 1) return fail(p, &pa->t, "unexpected attribute");
      name = i == 0 ? "comparison_direction" : "compare_type";
      if (!set_enum_tag(p, pa->a, i == 0 ? "comparison_direction" : "comparison_type", &pa->t))
        return false;
    } else if (op_is(ob, "stablehlo.composite")) {
      name = "name";
    } else if (op_is(ob, "stablehlo.trace")) {
      name = "tag";
    } else if (i > 0) {
      return fail(p, &pa->t, "unexpected attribute in '%s'", ob->name);
    }
    if (!add_attr(p, ob, name, pa->a)) return false;
  }
  if (ps->has_sym) {
    hs_attr *a;
    if (op_is(ob, "stablehlo.custom_call")) {
      a = new_attr(p, HS_ATTR_STRING);
      if (!a) return false;
      a->u.str.s = decode_string(p, ps->sym.text, ps->sym.len, &a->u.str.len);
      if (!a->u.str.s || !add_attr(p, ob, "call_target_name", a)) return false;
    } else {
      a = new_attr(p, HS_ATTR_SYMBOL);
      if (!a) return false;
      a->u.str.s = dup_text(p, ps->sym.text, ps->sym.len);
      a->u.str.len = ps->sym.len;
      if (!a->u.str.s || !add_attr(p, ob, "callee", a)) return false;
    }
  }
  if (ps->has_index) {
    int n = ps->i_start.n;
    if (op_is(ob, "stablehlo.slice")) {
      if (n > 0 && ps->i_min_parts < 2)
        return fail(p, &ps->index_tok, "slice indices must be start:limit[:stride]");
      hs_attr *s = ints_attr(p, ps->i_start.v, n), *l = ints_attr(p, ps->i_limit.v, n),
              *st = ints_attr(p, ps->i_stride.v, n);
      if (!s || !l || !st || !add_attr(p, ob, "start_indices", s) ||
          !add_attr(p, ob, "limit_indices", l) || !add_attr(p, ob, "strides", st))
        return false;
    } else if (op_is(ob, "stablehlo.get_tuple_element")) {
      if (n != 1 || ps->i_max_parts != 1)
        return fail(p, &ps->index_tok, "expected a single tuple index");
      hs_attr *a = int_attr(p, ps->i_start.v[0]);
      if (!a || !add_attr(p, ob, "index", a)) return false;
    } else {
      return fail(p, &ps->index_tok, "unexpected index list in '%s'", ob->name);
    }
  }
  return true;
}

static bool parse_pretty_default(parser *p, op_build *ob) {
  pretty_state ps;
  memset(&ps, 0, sizeof ps);
  bool after_group = false;
  hs_attr *lead = NULL;
  if (p->tok.kind == HS_TOK_LBRACE) {
    /* `stablehlo.constant {attrs} dense<...>`: an attr-dict before the items. */
    lead = parse_dict_attr(p, 0);
    if (!lead) return false;
  }
  if (p->tok.kind == HS_TOK_LPAREN) {
    if (!parse_group(p, ob, &ps)) return false;
    after_group = true;
  } else if (can_start_first_item(p, ob)) {
    bool was_sym = p->tok.kind == HS_TOK_AT;
    bool was_str = p->tok.kind == HS_TOK_STRING;
    if (!parse_item(p, ob, &ps)) return false;
    after_group = was_sym;
    /* stablehlo.composite "name" %a, %b ...: operands follow the name. */
    if (was_str && p->tok.kind == HS_TOK_PERCENT && !parse_item(p, ob, &ps)) return false;
  }
  for (;;) {
    if (p->tok.kind == HS_TOK_COMMA) {
      next(p);
      if (!parse_item(p, ob, &ps)) return false;
      after_group = false;
    } else if (after_group && p->tok.kind == HS_TOK_BARE && peek(p).kind == HS_TOK_EQUAL) {
      if (!parse_item(p, ob, &ps)) return false;
      after_group = false;
    } else {
      break;
    }
  }
  if (p->tok.kind == HS_TOK_LBRACE) {
    if (lead) return fail(p, &p->tok, "unexpected second attribute dictionary");
    lead = parse_dict_attr(p, 0);
    if (!lead) return false;
  }
  if (!canon_pretty(p, ob, &ps)) return false;
  if (lead && !add_dict(p, ob, lead)) return false;
  hs_token at = p->tok;
  if (accept(p, HS_TOK_COLON)) {
    sig s;
    if (!parse_sig(p, &s)) return false;
    return apply_sig(p, ob, &s, &at);
  }
  /* No signature: a constant's type is its value's; terminators and checks
   * may have none. */
  const hs_attr *v = NULL;
  for (int i = 0; i < ob->attrs.n; i++)
    if (strcmp(ob->attrs.v[i].name, "value") == 0) v = ob->attrs.v[i].value;
  if (op_is(ob, "stablehlo.constant") && v && v->kind == HS_ATTR_DENSE) {
    ob->have_rtypes = true;
    return VPUSH(p, ob->rtypes, v->u.dense.type);
  }
  if (ob->n_names > 0)
    return fail(p, &at, "expected ':' and the type of '%s'", ob->name);
  return true;
}

static bool parse_while_pretty(parser *p, op_build *ob) {
  if (!expect(p, HS_TOK_LPAREN, "'(' after stablehlo.while")) return false;
  VEC(hs_token) names = {0};
  while (p->tok.kind != HS_TOK_RPAREN) {
    hs_token nt = p->tok;
    if (nt.kind != HS_TOK_PERCENT || nt.result_no >= 0)
      return fail(p, &nt, "expected an iteration argument name");
    next(p);
    if (!expect(p, HS_TOK_EQUAL, "'='")) return false;
    opnd o;
    if (!parse_operand(p, &o) || !VPUSH(p, ob->ops, o) || !VPUSH(p, names, nt)) return false;
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  if (!expect(p, HS_TOK_RPAREN, "')' or ','")) return false;
  hs_token at = p->tok;
  if (!expect(p, HS_TOK_COLON, "':' and the loop types")) return false;
  type_vec types = {0};
  if (names.n > 0) {
    if (!parse_type_list(p, &types, false)) return false;
  } else if (p->tok.kind == HS_TOK_LPAREN) {
    next(p);
    if (!expect(p, HS_TOK_RPAREN, "')'")) return false;
  }
  if (types.n != names.n)
    return fail(p, &at, "stablehlo.while has %d operand(s) but %d type(s)", names.n, types.n);
  if (is_word(p, "attributes")) {
    next(p);
    hs_attr *d = parse_dict_attr(p, 0);
    if (!d || !add_dict(p, ob, d)) return false;
  }
  ob->otypes = types;
  ob->have_otypes = true;
  ob->rtypes = types;
  ob->have_rtypes = true;
  /* Check the operands now: the regions reuse the same types. */
  for (int i = 0; i < ob->ops.n; i++)
    if (!type_eq(&ob->ops.v[i].v->type, &types.v[i])) {
      char b1[128], b2[128];
      return fail_at(p, ob->ops.v[i].line, ob->ops.v[i].col, HS_INVALID_ARGUMENT,
                     "type mismatch: operand used as %s but was defined as %s",
                     hs_type_str(&types.v[i], b1, sizeof b1),
                     hs_type_str(&ob->ops.v[i].v->type, b2, sizeof b2));
    }
  hs_region *cond, *body;
  if (!expect_word(p, "cond")) return false;
  if (!parse_region(p, names.v, types.v, names.n, &cond)) return false;
  if (!expect_word(p, "do")) return false;
  if (!parse_region(p, names.v, types.v, names.n, &body)) return false;
  return VPUSH(p, ob->regions, cond) && VPUSH(p, ob->regions, body);
}

/* Newer StableHLO prints `stablehlo.if %p -> (T) {...} else {...}`; case is
 * accepted in the same shape with its branches separated by commas. */
static bool parse_if_case_pretty(parser *p, op_build *ob) {
  bool is_if = op_is(ob, "stablehlo.if");
  opnd o;
  if (!parse_operand(p, &o) || !VPUSH(p, ob->ops, o)) return false;
  if (accept(p, HS_TOK_ARROW) && !parse_results_types(p, &ob->rtypes)) return false;
  ob->have_rtypes = true;
  for (;;) {
    hs_region *r;
    if (!parse_region(p, NULL, NULL, 0, &r) || !VPUSH(p, ob->regions, r)) return false;
    if (is_if && is_word(p, "else")) {
      next(p);
      continue;
    }
    if (!is_if && p->tok.kind == HS_TOK_COMMA && peek(p).kind == HS_TOK_LBRACE) {
      next(p);
      continue;
    }
    break;
  }
  if (is_if && ob->regions.n != 2)
    return fail_at(p, ob->loc.line, ob->loc.col, HS_INVALID_ARGUMENT,
                   "stablehlo.if needs a true and a false branch");
  return true;
}

/* Builds `{ ^bb0(%lhs, %rhs): %r = <name> %lhs, %rhs; stablehlo.return %r }`. */
static bool build_applies_region(parser *p, op_build *ob, const char *opname, const hs_type *t,
                                 hs_region **out) {
  hs_region *r = zalloc(p, sizeof *r);
  hs_block *blk = zalloc(p, sizeof *blk);
  hs_block **blocks = zalloc(p, sizeof *blocks);
  hs_value **args = zalloc(p, 2 * sizeof *args);
  hs_op **ops = zalloc(p, 2 * sizeof *ops);
  hs_op *bin = zalloc(p, sizeof *bin), *ret = zalloc(p, sizeof *ret);
  if (!r || !blk || !blocks || !args || !ops || !bin || !ret) return false;
  blocks[0] = blk;
  r->blocks = blocks;
  r->n_blocks = 1;
  args[0] = new_value(p, t, NULL, 0, "lhs");
  args[1] = new_value(p, t, NULL, 1, "rhs");
  if (!args[0] || !args[1]) return false;
  blk->args = args;
  blk->n_args = 2;
  bin->name = opname;
  bin->loc = ob->loc;
  bin->parent = r;
  bin->n_operands = 2;
  bin->operands = zalloc(p, 2 * sizeof(hs_value *));
  bin->results = zalloc(p, sizeof(hs_value *));
  if (!bin->operands || !bin->results) return false;
  bin->operands[0] = args[0];
  bin->operands[1] = args[1];
  bin->n_results = 1;
  bin->results[0] = new_value(p, t, bin, 0, "result");
  if (!bin->results[0]) return false;
  ret->name = intern(p, "stablehlo.return", 16);
  ret->loc = ob->loc;
  ret->parent = r;
  ret->n_operands = 1;
  ret->operands = zalloc(p, sizeof(hs_value *));
  ret->results = zalloc(p, sizeof(hs_value *));
  if (!ret->name || !ret->operands || !ret->results) return false;
  ret->operands[0] = bin->results[0];
  ops[0] = bin;
  ops[1] = ret;
  blk->ops = ops;
  blk->n_ops = 2;
  *out = r;
  return true;
}

static bool parse_reduce_pretty(parser *p, op_build *ob) {
  VEC(opnd) inputs = {0};
  VEC(opnd) inits = {0};
  for (;;) {
    if (!expect(p, HS_TOK_LPAREN, "'(' in stablehlo.reduce")) return false;
    opnd a, b;
    if (!parse_operand(p, &a)) return false;
    if (!expect_word(p, "init")) return false;
    if (!expect(p, HS_TOK_COLON, "':'")) return false;
    if (!parse_operand(p, &b)) return false;
    if (!expect(p, HS_TOK_RPAREN, "')'")) return false;
    if (!VPUSH(p, inputs, a) || !VPUSH(p, inits, b)) return false;
    if (p->tok.kind == HS_TOK_COMMA && peek(p).kind == HS_TOK_LPAREN) {
      next(p);
      continue;
    }
    break;
  }
  int n = inputs.n;
  for (int i = 0; i < n; i++)
    if (!VPUSH(p, ob->ops, inputs.v[i])) return false;
  for (int i = 0; i < n; i++)
    if (!VPUSH(p, ob->ops, inits.v[i])) return false;
  const char *applies = NULL;
  hs_token applies_tok = p->tok;
  if (is_word(p, "applies")) {
    next(p);
    applies_tok = p->tok;
    if (p->tok.kind != HS_TOK_BARE) return fail(p, &p->tok, "expected an op name after 'applies'");
    applies = intern(p, p->tok.text, p->tok.len);
    if (!applies) return false;
    next(p);
  }
  if (!expect_word(p, "across") || !expect_word(p, "dimensions")) return false;
  hs_token dt = p->tok;
  if (!expect(p, HS_TOK_EQUAL, "'='")) return false;
  hs_attr *dims = parse_list_attr(p, 0);
  if (!dims) return false;
  if (dims->kind != HS_ATTR_INTS) return fail(p, &dt, "expected a list of dimensions");
  if (!add_attr(p, ob, "dimensions", dims)) return false;
  if (p->tok.kind == HS_TOK_LBRACE) {
    hs_attr *d = parse_dict_attr(p, 0);
    if (!d || !add_dict(p, ob, d)) return false;
  }
  hs_token at = p->tok;
  if (!expect(p, HS_TOK_COLON, "':' and the type of stablehlo.reduce")) return false;
  sig s;
  if (!parse_sig(p, &s)) return false;
  if (!s.functional || s.in.n != 2 * n || s.out.n != n)
    return fail(p, &at, "stablehlo.reduce of %d input(s) needs a '(%d types) -> (%d types)' signature",
                n, 2 * n, n);
  if (!apply_sig(p, ob, &s, &at)) return false;
  hs_region *r;
  if (applies) {
    if (n != 1)
      return fail_code(p, &applies_tok, HS_UNIMPLEMENTED,
                       "'applies' with more than one input is not supported");
    if (!build_applies_region(p, ob, applies, &s.in.v[1], &r)) return false;
  } else {
    if (!expect_word(p, "reducer")) return false;
    hs_token *names = zalloc(p, (size_t)(2 * n) * sizeof(hs_token));
    hs_type *types = zalloc(p, (size_t)(2 * n) * sizeof(hs_type));
    if (!names || !types) return false;
    for (int j = 0; j < n; j++) {
      if (!expect(p, HS_TOK_LPAREN, "'(' in the reducer arguments")) return false;
      for (int side = 0; side < 2; side++) {
        hs_token nt = p->tok;
        if (nt.kind != HS_TOK_PERCENT || nt.result_no >= 0)
          return fail(p, &nt, "expected a reducer argument");
        next(p);
        if (!expect(p, HS_TOK_COLON, "':'")) return false;
        if (parse_type(p, &types[side * n + j], false) == TY_ERR) return false;
        names[side * n + j] = nt;
        if (side == 0 && !expect(p, HS_TOK_COMMA, "','")) return false;
      }
      if (!expect(p, HS_TOK_RPAREN, "')'")) return false;
    }
    if (!parse_region(p, names, types, 2 * n, &r)) return false;
  }
  return VPUSH(p, ob->regions, r);
}

static bool parse_op(parser *p, hs_op **out) {
  if (!enter(p)) return false;
  op_build ob;
  memset(&ob, 0, sizeof ob);
  hs_token first = p->tok;
  ob.loc.file = p->file;
  ob.loc.line = first.line;
  ob.loc.col = first.col;
  VEC(res_name) names = {0};
  if (first.kind == HS_TOK_PERCENT) {
    for (;;) {
      hs_token nt = p->tok;
      if (nt.kind != HS_TOK_PERCENT || nt.result_no >= 0) {
        char b[96];
        return fail(p, &nt, "expected a result name, found %s", tok_desc(&nt, b, sizeof b));
      }
      next(p);
      res_name rn = {nt, 1};
      if (accept(p, HS_TOK_COLON)) {
        hs_token ct = p->tok;
        uint64_t c;
        if (ct.kind != HS_TOK_INT || ct.hex) return fail(p, &ct, "expected a result count");
        if (!tok_u64(p, &ct, &c)) return false;
        if (c < 1 || c > 65536) return fail(p, &ct, "bad result count");
        rn.count = (int)c;
        next(p);
      }
      if (!VPUSH(p, names, rn)) return false;
      ob.n_names += rn.count;
      if (!accept(p, HS_TOK_COMMA)) break;
    }
    if (!expect(p, HS_TOK_EQUAL, "'=' after the result names")) return false;
  }
  hs_token nt = p->tok;
  ob.name_tok = nt;
  if (nt.kind == HS_TOK_STRING) {
    if (!parse_generic_op(p, &ob)) return false;
  } else if (nt.kind == HS_TOK_BARE) {
    if (hs_tok_text_eq(&nt, "return")) ob.name = intern(p, "func.return", 11);
    else if (hs_tok_text_eq(&nt, "call")) ob.name = intern(p, "func.call", 9);
    else ob.name = intern(p, nt.text, nt.len);
    if (!ob.name) return false;
    if (op_is(&ob, "func.func") || op_is(&ob, "module"))
      return fail(p, &nt, "'%s' is not allowed inside a function", ob.name);
    next(p);
    if (op_is(&ob, "stablehlo.while") && p->tok.kind == HS_TOK_LPAREN) {
      if (!parse_while_pretty(p, &ob)) return false;
    } else if (op_is(&ob, "stablehlo.reduce") && p->tok.kind == HS_TOK_LPAREN) {
      if (!parse_reduce_pretty(p, &ob)) return false;
    } else if ((op_is(&ob, "stablehlo.if") || op_is(&ob, "stablehlo.case")) &&
               p->tok.kind == HS_TOK_PERCENT) {
      if (!parse_if_case_pretty(p, &ob)) return false;
    } else {
      if (!parse_pretty_default(p, &ob)) return false;
    }
  } else {
    char b[96];
    return fail(p, &nt, "expected an operation, found %s", tok_desc(&nt, b, sizeof b));
  }
  if (!finish_op(p, &ob, names.v, names.n, out)) return false;
  leave(p);
  return true;
}

/* ------------------------------------------------------------ functions */

static hs_func *begin_function(parser *p, const hs_token *at) {
  hs_func *f = zalloc(p, sizeof *f);
  if (!f) return NULL;
  f->loc.file = p->file;
  f->loc.line = at->line;
  f->loc.col = at->col;
  p->fn = f;
  sym_reset(p);
  return f;
}

static bool check_func_return(parser *p, hs_func *f) {
  hs_block *b = f->body->blocks[0];
  hs_op *ret = b->ops[b->n_ops - 1];
  if (strcmp(ret->name, "func.return") != 0)
    return fail_at(p, ret->loc.line, ret->loc.col, HS_INVALID_ARGUMENT,
                   "function @%s must end with return, not '%s'", f->name, ret->name);
  if (ret->n_operands != f->n_results)
    return fail_at(p, ret->loc.line, ret->loc.col, HS_INVALID_ARGUMENT,
                   "return of @%s has %d value(s) but the function returns %d", f->name,
                   ret->n_operands, f->n_results);
  for (int i = 0; i < f->n_results; i++)
    if (!type_eq(&ret->operands[i]->type, &f->result_types[i])) {
      char b1[128], b2[128];
      return fail_at(p, ret->loc.line, ret->loc.col, HS_INVALID_ARGUMENT,
                     "return value %d of @%s is %s but the function returns %s", i, f->name,
                     hs_type_str(&ret->operands[i]->type, b1, sizeof b1),
                     hs_type_str(&f->result_types[i], b2, sizeof b2));
    }
  return true;
}

static bool parse_func_pretty(parser *p) {
  hs_token ft = p->tok;
  next(p);
  hs_func *f = begin_function(p, &ft);
  if (!f) return false;
  f->is_public = true;
  if (is_word(p, "private")) {
    f->is_public = false;
    next(p);
  } else if (is_word(p, "public") || is_word(p, "nested")) {
    next(p);
  }
  hs_token nt = p->tok;
  if (nt.kind != HS_TOK_AT) return fail(p, &nt, "expected the function name (@name)");
  f->name = dup_text(p, nt.text, nt.len);
  if (!f->name) return false;
  next(p);
  if (!expect(p, HS_TOK_LPAREN, "'(' to open the argument list")) return false;
  VEC(hs_token) names = {0};
  type_vec types = {0};
  VEC(hs_named_attr *) attrs = {0};
  VEC(int) n_attrs = {0};
  while (p->tok.kind != HS_TOK_RPAREN) {
    hs_token an = p->tok;
    if (an.kind != HS_TOK_PERCENT) {
      if (an.kind == HS_TOK_BARE || an.kind == HS_TOK_EXCL)
        return fail_code(p, &an, HS_UNIMPLEMENTED,
                         "function declarations without a body are not supported");
      char b[96];
      return fail(p, &an, "expected an argument, found %s", tok_desc(&an, b, sizeof b));
    }
    if (an.result_no >= 0) return fail(p, &an, "bad argument name");
    next(p);
    if (!expect(p, HS_TOK_COLON, "':' after the argument name")) return false;
    hs_type t;
    if (parse_type(p, &t, false) == TY_ERR) return false;
    hs_named_attr *ai = NULL;
    int na = 0;
    if (p->tok.kind == HS_TOK_LBRACE) {
      hs_attr *d = parse_dict_attr(p, 0);
      if (!d) return false;
      ai = d->u.dict.items;
      na = d->u.dict.n;
    }
    if (!VPUSH(p, names, an) || !VPUSH(p, types, t) || !VPUSH(p, attrs, ai) ||
        !VPUSH(p, n_attrs, na))
      return false;
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  if (!expect(p, HS_TOK_RPAREN, "')' or ','")) return false;
  type_vec results = {0};
  if (accept(p, HS_TOK_ARROW)) {
    if (!parse_results_types(p, &results)) return false;
  }
  if (is_word(p, "attributes")) {
    next(p);
    if (!parse_dict_attr(p, 0)) return false;
  }
  f->n_args = types.n;
  f->arg_types = types.v;
  f->arg_attrs = attrs.v;
  f->arg_n_attrs = n_attrs.v;
  f->n_results = results.n;
  f->result_types = results.v;
  if (p->tok.kind != HS_TOK_LBRACE)
    return fail_code(p, &p->tok, HS_UNIMPLEMENTED,
                     "function declarations without a body are not supported");
  if (!parse_region(p, names.v, types.v, names.n, &f->body)) return false;
  if (!check_func_return(p, f)) return false;
  p->fn = NULL;
  return VPUSH(p, p->funcs, f);
}

static const hs_attr *dict_find(const hs_attr *d, const char *name) {
  return hs_dict_get(d, name);
}

/* "func.func"() <{function_type = ..., sym_name = "f"}> ({...}) : () -> () */
static bool parse_func_generic(parser *p) {
  hs_token ft = p->tok;
  next(p);
  hs_func *f = begin_function(p, &ft);
  if (!f) return false;
  if (!expect(p, HS_TOK_LPAREN, "'('") || !expect(p, HS_TOK_RPAREN, "')'")) return false;
  hs_attr *props = NULL, *attrs = NULL;
  if (accept(p, HS_TOK_LT)) {
    props = parse_dict_attr(p, 0);
    if (!props || !expect(p, HS_TOK_GT, "'>'")) return false;
  }
  hs_region *body = NULL;
  if (accept(p, HS_TOK_LPAREN)) {
    if (p->tok.kind == HS_TOK_RPAREN)
      return fail_code(p, &p->tok, HS_UNIMPLEMENTED,
                       "function declarations without a body are not supported");
    if (!parse_region(p, NULL, NULL, 0, &body)) return false;
    if (!expect(p, HS_TOK_RPAREN, "')'")) return false;
  }
  if (p->tok.kind == HS_TOK_LBRACE) {
    attrs = parse_dict_attr(p, 0);
    if (!attrs) return false;
  }
  if (!expect(p, HS_TOK_COLON, "':'")) return false;
  sig s;
  if (!parse_sig(p, &s)) return false;
  const hs_attr *ty = NULL, *nm = NULL, *vis = NULL, *aa = NULL;
  for (int w = 0; w < 2; w++) {
    const hs_attr *d = w == 0 ? props : attrs;
    if (!d) continue;
    if (!ty) ty = dict_find(d, "function_type");
    if (!nm) nm = dict_find(d, "sym_name");
    if (!vis) vis = dict_find(d, "sym_visibility");
    if (!aa) aa = dict_find(d, "arg_attrs");
  }
  if (!nm || nm->kind != HS_ATTR_STRING) return fail(p, &ft, "generic func.func lacks sym_name");
  if (!ty || ty->kind != HS_ATTR_ARRAY || !ty->tag || strcmp(ty->tag, "function_type") != 0)
    return fail(p, &ft, "generic func.func lacks function_type");
  if (!body)
    return fail_code(p, &ft, HS_UNIMPLEMENTED, "function declarations without a body are not supported");
  f->name = nm->u.str.s;
  f->is_public = !(vis && vis->kind == HS_ATTR_STRING && strcmp(vis->u.str.s, "private") == 0);
  const hs_attr *ins = ty->u.array.items[0], *outs = ty->u.array.items[1];
  f->n_args = ins->u.array.n;
  f->n_results = outs->u.array.n;
  f->arg_types = zalloc(p, (size_t)(f->n_args + 1) * sizeof(hs_type));
  f->result_types = zalloc(p, (size_t)(f->n_results + 1) * sizeof(hs_type));
  f->arg_attrs = zalloc(p, (size_t)(f->n_args + 1) * sizeof(hs_named_attr *));
  f->arg_n_attrs = zalloc(p, (size_t)(f->n_args + 1) * sizeof(int));
  if (!f->arg_types || !f->result_types || !f->arg_attrs || !f->arg_n_attrs) return false;
  for (int i = 0; i < f->n_args; i++) {
    if (ins->u.array.items[i]->kind != HS_ATTR_TYPE)
      return fail_code(p, &ft, HS_UNIMPLEMENTED, "unsupported argument type in @%s", f->name);
    f->arg_types[i] = ins->u.array.items[i]->u.type;
  }
  for (int i = 0; i < f->n_results; i++) {
    if (outs->u.array.items[i]->kind != HS_ATTR_TYPE)
      return fail_code(p, &ft, HS_UNIMPLEMENTED, "unsupported result type in @%s", f->name);
    f->result_types[i] = outs->u.array.items[i]->u.type;
  }
  if (aa && aa->kind == HS_ATTR_ARRAY && aa->u.array.n == f->n_args)
    for (int i = 0; i < f->n_args; i++)
      if (aa->u.array.items[i]->kind == HS_ATTR_DICT) {
        f->arg_attrs[i] = aa->u.array.items[i]->u.dict.items;
        f->arg_n_attrs[i] = aa->u.array.items[i]->u.dict.n;
      }
  hs_block *b = body->blocks[0];
  if (b->n_args != f->n_args)
    return fail(p, &ft, "@%s has %d block argument(s) but its type lists %d", f->name, b->n_args,
                f->n_args);
  for (int i = 0; i < f->n_args; i++)
    if (!type_eq(&b->args[i]->type, &f->arg_types[i]))
      return fail(p, &ft, "argument %d of @%s does not match function_type", i, f->name);
  f->body = body;
  if (!check_func_return(p, f)) return false;
  p->fn = NULL;
  return VPUSH(p, p->funcs, f);
}

/* ---------------------------------------------------------------- module */

static bool skip_sdy_mesh(parser *p) {
  next(p);
  if (p->tok.kind != HS_TOK_AT) return fail(p, &p->tok, "expected a mesh name");
  next(p);
  if (!expect(p, HS_TOK_EQUAL, "'='")) return false;
  hs_attr *a = parse_attr(p, 0);
  return a != NULL;
}

static bool parse_module_item(parser *p) {
  if (is_word(p, "func.func")) return parse_func_pretty(p);
  if (p->tok.kind == HS_TOK_STRING && hs_tok_text_eq(&p->tok, "func.func"))
    return parse_func_generic(p);
  if (is_word(p, "sdy.mesh")) return skip_sdy_mesh(p);
  char b[96];
  return fail_code(p, &p->tok, HS_UNIMPLEMENTED, "unsupported top-level operation %s",
                   tok_desc(&p->tok, b, sizeof b));
}

static bool parse_alias_def(parser *p) {
  hs_token nt = p->tok;
  next(p);
  if (!expect(p, HS_TOK_EQUAL, "'='")) return false;
  if (nt.kind == HS_TOK_EXCL) {
    hs_type t;
    return parse_type(p, &t, true) != TY_ERR;
  }
  /* `#loc1 = loc(...)`: the location was already dropped by the lexer. */
  if (nt.len >= 3 && memcmp(nt.text, "loc", 3) == 0) return true;
  hs_attr *a = parse_attr(p, AF_TYPESUFFIX);
  if (!a) return false;
  alias_def d = {nt.text, nt.len, a};
  return VPUSH(p, p->aliases, d);
}

/* {-# dialect_resources: { builtin: { name: "0x..." } } #-} */
static bool parse_file_metadata(parser *p) {
  hs_token open = p->tok;
  next(p);
  while (p->tok.kind != HS_TOK_META_END) {
    if (p->tok.kind != HS_TOK_BARE) return fail(p, &p->tok, "expected a metadata section name");
    bool resources = is_word(p, "dialect_resources");
    next(p);
    if (!expect(p, HS_TOK_COLON, "':'")) return false;
    if (!resources) {
      if (p->tok.kind != HS_TOK_LBRACE) return fail(p, &p->tok, "expected '{'");
      if (!skip_balanced(p)) return false;
    } else {
      if (!expect(p, HS_TOK_LBRACE, "'{'")) return false;
      while (p->tok.kind != HS_TOK_RBRACE) {
        if (p->tok.kind != HS_TOK_BARE) return fail(p, &p->tok, "expected a dialect name");
        next(p);
        if (!expect(p, HS_TOK_COLON, "':'") || !expect(p, HS_TOK_LBRACE, "'{'")) return false;
        while (p->tok.kind != HS_TOK_RBRACE) {
          hs_token k = p->tok;
          if (k.kind != HS_TOK_BARE && k.kind != HS_TOK_STRING)
            return fail(p, &k, "expected a resource name");
          next(p);
          if (!expect(p, HS_TOK_COLON, "':'")) return false;
          hs_token v = p->tok;
          if (v.kind != HS_TOK_STRING) return fail(p, &v, "expected a resource blob string");
          next(p);
          resource_blob rb = {k.text, k.len, v.text, v.len};
          if (!VPUSH(p, p->blobs, rb)) return false;
          if (!accept(p, HS_TOK_COMMA)) break;
        }
        if (!expect(p, HS_TOK_RBRACE, "'}'")) return false;
        if (!accept(p, HS_TOK_COMMA)) break;
      }
      if (!expect(p, HS_TOK_RBRACE, "'}'")) return false;
    }
    if (!accept(p, HS_TOK_COMMA)) break;
  }
  if (p->tok.kind != HS_TOK_META_END) return fail(p, &open, "unterminated {-# ... #-} section");
  return next(p);
}

static bool resolve_resources(parser *p) {
  for (int i = 0; i < p->resources.n; i++) {
    resource_ref *r = &p->resources.v[i];
    const resource_blob *found = NULL;
    for (int j = 0; j < p->blobs.n; j++)
      if (p->blobs.v[j].len == r->len && memcmp(p->blobs.v[j].name, r->name, r->len) == 0)
        found = &p->blobs.v[j];
    if (!found)
      return fail_at(p, r->line, r->col, HS_INVALID_ARGUMENT,
                     "dense_resource '%.*s' has no data in this file",
                     (int)(r->len > 64 ? 64 : r->len), r->name);
    hs_token at = {0};
    at.line = r->line;
    at.col = r->col;
    const char *s = found->hex;
    size_t n = found->hexlen;
    if (n < 10 || s[0] != '0' || s[1] != 'x' || (n - 2) % 2)
      return fail(p, &at, "malformed dense_resource blob");
    size_t nb = (n - 2) / 2 - 4; /* the first 4 bytes are the alignment */
    size_t need = r->attr->u.dense.nbytes;
    if (nb != need)
      return fail(p, &at, "dense_resource blob has %zu bytes, expected %zu", nb, need);
    unsigned char *out = hs_arena_alloc(p->A, need ? need : 1);
    if (!out) return oom(p);
    if (!decode_hex(p, &at, s + 10, need, out)) return false;
    if (r->attr->u.dense.type.dtype == HS_PRED)
      for (size_t k = 0; k < need; k++) out[k] = out[k] != 0;
    r->attr->u.dense.data = out;
  }
  return true;
}

static int cmp_func(const void *a, const void *b) {
  const hs_func *x = *(hs_func *const *)a, *y = *(hs_func *const *)b;
  return strcmp(x->name, y->name);
}

static bool verify_calls(parser *p, hs_module *m) {
  hs_func **sorted = malloc((size_t)(m->n_funcs ? m->n_funcs : 1) * sizeof *sorted);
  if (!sorted) return oom(p);
  if (m->n_funcs) memcpy(sorted, m->funcs, (size_t)m->n_funcs * sizeof *sorted);
  qsort(sorted, (size_t)m->n_funcs, sizeof *sorted, cmp_func);
  bool ok = true;
  for (int i = 1; i < m->n_funcs && ok; i++)
    if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
      ok = fail_at(p, sorted[i]->loc.line, sorted[i]->loc.col, HS_INVALID_ARGUMENT,
                   "redefinition of function @%s", sorted[i]->name);
  for (int i = 0; i < p->calls.n && ok; i++) {
    hs_op *op = p->calls.v[i];
    const hs_attr *c = hs_op_attr(op, "callee");
    if (!c || c->kind != HS_ATTR_SYMBOL) {
      ok = fail_at(p, op->loc.line, op->loc.col, HS_INVALID_ARGUMENT, "call without a callee");
      break;
    }
    hs_func key;
    key.name = c->u.str.s;
    hs_func *kp = &key;
    hs_func **hit = bsearch(&kp, sorted, (size_t)m->n_funcs, sizeof *sorted, cmp_func);
    if (!hit) {
      ok = fail_at(p, op->loc.line, op->loc.col, HS_INVALID_ARGUMENT,
                   "call to undefined function @%s", c->u.str.s);
      break;
    }
    hs_func *f = *hit;
    if (f->n_args != op->n_operands || f->n_results != op->n_results) {
      ok = fail_at(p, op->loc.line, op->loc.col, HS_INVALID_ARGUMENT,
                   "call to @%s with %d argument(s) and %d result(s); it takes %d and returns %d",
                   f->name, op->n_operands, op->n_results, f->n_args, f->n_results);
      break;
    }
    for (int k = 0; k < f->n_args && ok; k++)
      if (!type_eq(&op->operands[k]->type, &f->arg_types[k]))
        ok = fail_at(p, op->loc.line, op->loc.col, HS_INVALID_ARGUMENT,
                     "argument %d of the call to @%s has the wrong type", k, f->name);
    for (int k = 0; k < f->n_results && ok; k++)
      if (!type_eq(&op->results[k]->type, &f->result_types[k]))
        ok = fail_at(p, op->loc.line, op->loc.col, HS_INVALID_ARGUMENT,
                     "result %d of the call to @%s has the wrong type", k, f->name);
  }
  free(sorted);
  return ok;
}

static bool parse_toplevel(parser *p) {
  bool seen_module = false, seen_funcs = false;
  if (!next(p)) return false;
  for (;;) {
    hs_token t = p->tok;
    if (t.kind == HS_TOK_EOF) break;
    if ((t.kind == HS_TOK_HASH || t.kind == HS_TOK_EXCL) && peek(p).kind == HS_TOK_EQUAL) {
      if (!parse_alias_def(p)) return false;
      continue;
    }
    if (t.kind == HS_TOK_META_BEGIN) {
      if (!parse_file_metadata(p)) return false;
      continue;
    }
    bool generic_module = t.kind == HS_TOK_STRING && hs_tok_text_eq(&t, "builtin.module");
    if (is_word(p, "module") || generic_module) {
      if (seen_module || seen_funcs)
        return fail(p, &t, "a second module in one part (separate modules with '// -----')");
      seen_module = true;
      next(p);
      if (generic_module) {
        if (!expect(p, HS_TOK_LPAREN, "'('") || !expect(p, HS_TOK_RPAREN, "')'")) return false;
        if (accept(p, HS_TOK_LT)) {
          hs_attr *d = parse_dict_attr(p, 0);
          if (!d || !expect(p, HS_TOK_GT, "'>'")) return false;
        }
        if (!expect(p, HS_TOK_LPAREN, "'('")) return false;
      } else {
        if (p->tok.kind == HS_TOK_AT) {
          p->m->name = dup_text(p, p->tok.text, p->tok.len);
          if (!p->m->name) return false;
          next(p);
        }
        if (is_word(p, "attributes")) {
          next(p);
          hs_attr *d = parse_dict_attr(p, 0);
          if (!d) return false;
          p->m->attrs = d->u.dict.items;
          p->m->n_attrs = d->u.dict.n;
        }
      }
      hs_token open = p->tok;
      if (!expect(p, HS_TOK_LBRACE, "'{' to open the module")) return false;
      while (p->tok.kind != HS_TOK_RBRACE) {
        if (p->tok.kind == HS_TOK_EOF) return fail(p, &open, "unterminated module (missing '}')");
        if (!parse_module_item(p)) return false;
      }
      next(p);
      if (generic_module) {
        if (!expect(p, HS_TOK_RPAREN, "')'")) return false;
        if (p->tok.kind == HS_TOK_LBRACE) {
          hs_attr *d = parse_dict_attr(p, 0);
          if (!d) return false;
          p->m->attrs = d->u.dict.items;
          p->m->n_attrs = d->u.dict.n;
        }
        if (!expect(p, HS_TOK_COLON, "':'")) return false;
        sig s;
        if (!parse_sig(p, &s)) return false;
      }
      continue;
    }
    if (is_word(p, "func.func") || (t.kind == HS_TOK_STRING && hs_tok_text_eq(&t, "func.func"))) {
      if (seen_module) return fail(p, &t, "functions after the module");
      seen_funcs = true;
      if (!parse_module_item(p)) return false;
      continue;
    }
    char b[96];
    return fail(p, &t, "expected 'module' or 'func.func', found %s", tok_desc(&t, b, sizeof b));
  }
  if (!resolve_resources(p)) return false;
  p->m->funcs = p->funcs.v;
  p->m->n_funcs = p->funcs.n;
  if (p->m->n_funcs == 0) {
    hs_token t = p->tok;
    return fail(p, &t, "no functions in the input");
  }
  return verify_calls(p, p->m);
}

static hs_status *parse_with_base(const char *text, size_t len, const char *filename,
                                  int first_line, hs_module **out) {
  *out = NULL;
  if (!text && len) return hs_status_new(HS_INVALID_ARGUMENT, "NULL input");
  if (!filename) filename = "<input>";
  hs_arena arena;
  hs_arena_init(&arena, 1 << 16);
  hs_module *m = hs_arena_calloc(&arena, 1, sizeof *m);
  if (!m) {
    hs_arena_free(&arena);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  parser P;
  memset(&P, 0, sizeof P);
  parser *p = &P;
  p->A = &arena;
  p->m = m;
  p->file = hs_arena_strdup(&arena, filename);
  if (!p->file) {
    hs_arena_free(&arena);
    return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  }
  m->filename = p->file;
  hs_lex_init(&p->lx, text ? text : "", len, first_line);
  bool ok = parse_toplevel(p);
  free(p->slots);
  free(p->undo);
  free(p->names);
  if (!ok || p->err) {
    hs_status *st = p->err ? p->err : hs_status_new(HS_INTERNAL, "%s: parse failed", filename);
    hs_arena_free(&arena);
    return st;
  }
  m->arena = arena; /* the arena now owns m (and m owns its arena) */
  *out = m;
  return NULL;
}

hs_status *hs_parse_module(const char *text, size_t len, const char *filename,
                           hs_module **out) {
  if (!out) return hs_status_new(HS_INVALID_ARGUMENT, "hs_parse_module: NULL out");
  return parse_with_base(text, len, filename, 1, out);
}

void hs_parse_parts_free(hs_module **parts, int n) {
  if (!parts) return;
  for (int i = 0; i < n; i++) hs_module_free(parts[i]);
  free(parts);
}

/* True when the line [s, e) is a `// -----` separator. */
static bool is_separator(const char *s, const char *e) {
  while (s < e && (*s == ' ' || *s == '\t')) s++;
  if (e - s < 8 || memcmp(s, "// -----", 8) != 0) return false;
  s += 8;
  while (s < e && (*s == '-' || *s == ' ' || *s == '\t' || *s == '\r')) s++;
  return s == e;
}

hs_status *hs_parse_parts(const char *text, size_t len, const char *filename,
                          hs_module ***parts, int *n) {
  if (!parts || !n) return hs_status_new(HS_INVALID_ARGUMENT, "hs_parse_parts: NULL out");
  *parts = NULL;
  *n = 0;
  if (!text && len) return hs_status_new(HS_INVALID_ARGUMENT, "NULL input");
  int cap = 4, cnt = 0;
  hs_module **arr = malloc((size_t)cap * sizeof *arr);
  if (!arr) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  size_t part_start = 0;
  int part_line = 1, line = 1;
  size_t pos = 0;
  for (;;) {
    size_t eol = pos;
    while (eol < len && text[eol] != '\n') eol++;
    bool last = eol >= len;
    bool sep = pos < len && is_separator(text + pos, text + eol);
    if (sep || last) {
      size_t part_end = sep ? pos : len;
      /* A part that holds only blanks and comments is skipped. */
      bool blank = true;
      for (size_t i = part_start; i < part_end && blank; i++) {
        char c = text[i];
        if (c == '/' && i + 1 < part_end && text[i + 1] == '/') {
          while (i < part_end && text[i] != '\n') i++;
        } else if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
          blank = false;
        }
      }
      if (!blank) {
        if (cnt == cap) {
          hs_module **na = realloc(arr, (size_t)cap * 2 * sizeof *arr);
          if (!na) {
            hs_parse_parts_free(arr, cnt);
            return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
          }
          arr = na;
          cap *= 2;
        }
        hs_module *m;
        hs_status *st =
            parse_with_base(text + part_start, part_end - part_start, filename, part_line, &m);
        if (st) {
          hs_parse_parts_free(arr, cnt);
          return st;
        }
        arr[cnt++] = m;
      }
      if (last) break;
      part_start = eol + 1;
      part_line = line + 1;
    }
    if (last) break;
    pos = eol + 1;
    line++;
  }
  if (cnt == 0) {
    free(arr);
    return hs_status_new(HS_INVALID_ARGUMENT, "%s:1:1: no functions in the input",
                         filename ? filename : "<input>");
  }
  *parts = arr;
  *n = cnt;
  return NULL;
}
