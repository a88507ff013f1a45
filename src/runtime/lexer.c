/*
 * lexer.c - see lexer.h.
 *
 * Design: a hand-written single-pass scanner.  The only state is the cursor
 * and the current line (with the offset where it starts), so columns cost
 * nothing and the parser can save and restore the whole lexer by copying the
 * struct (it does so for its two-token lookahead).  Huge tokens - multi-MB
 * hex strings of constants - are scanned with memchr, never char by char
 * through the general dispatch, which keeps a 100 MB module fast.
 */
#include "runtime/lexer.h"

#include <string.h>

void hs_lex_init(hs_lexer *L, const char *buf, size_t len, int first_line) {
  L->buf = buf;
  L->len = len;
  L->pos = 0;
  L->line = first_line > 0 ? first_line : 1;
  L->line_start = 0;
  L->error = NULL;
  L->err_line = L->err_col = 0;
  /* A UTF-8 byte order mark is not part of the text. */
  if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
      (unsigned char)buf[2] == 0xBF) {
    L->pos = 3;
    L->line_start = 3;
  }
}

static bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
/* Characters of bare identifiers after the first. */
static bool is_bare_char(char c) { return is_letter(c) || is_digit(c) || c == '_' || c == '$' || c == '.'; }
/* Characters of %value, @symbol, #alias, !type and ^block names. */
static bool is_suffix_char(char c) { return is_bare_char(c) || c == '-'; }

static void newline_at(hs_lexer *L, size_t i) {
  L->line++;
  L->line_start = i + 1;
}

void hs_lex_skip_space(hs_lexer *L) {
  while (L->pos < L->len) {
    char c = L->buf[L->pos];
    if (c == '\n') {
      newline_at(L, L->pos);
      L->pos++;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      L->pos++;
    } else if (c == '/' && L->pos + 1 < L->len && L->buf[L->pos + 1] == '/') {
      const char *nl = memchr(L->buf + L->pos, '\n', L->len - L->pos);
      L->pos = nl ? (size_t)(nl - L->buf) : L->len;
    } else {
      break;
    }
  }
}

static hs_token make(hs_lexer *L, hs_tok_kind k, size_t start, size_t end) {
  hs_token t;
  t.kind = k;
  t.text = L->buf + start;
  t.len = end - start;
  t.offset = start;
  t.line = L->line;
  t.col = (int)(start - L->line_start) + 1;
  t.result_no = -1;
  t.hex = false;
  return t;
}

static hs_token error_tok(hs_lexer *L, size_t at, const char *msg) {
  hs_token t = make(L, HS_TOK_ERROR, at, at);
  L->error = msg;
  L->err_line = t.line;
  L->err_col = t.col;
  L->pos = L->len; /* stop: every later call returns EOF-like errors */
  return t;
}

/* Scans a string body starting after the opening quote; returns the offset of
 * the closing quote or (size_t)-1. Raw newlines are not allowed. */
static size_t scan_string(const hs_lexer *L, size_t i) {
  while (i < L->len) {
    const char *q = memchr(L->buf + i, '"', L->len - i);
    if (!q) return (size_t)-1;
    size_t end = (size_t)(q - L->buf);
    /* Check the span for backslashes and newlines (rare: fast path first). */
    const char *bs = memchr(L->buf + i, '\\', end - i);
    const char *nl = memchr(L->buf + i, '\n', end - i);
    if (!bs) {
      if (nl) return (size_t)-1;
      return end;
    }
    /* Slow path: walk the characters handling escapes. */
    while (i < L->len) {
      char c = L->buf[i];
      if (c == '\n') return (size_t)-1;
      if (c == '\\') {
        i += 2;
        continue;
      }
      if (c == '"') return i;
      i++;
    }
    return (size_t)-1;
  }
  return (size_t)-1;
}

/* Skips a balanced `( ... )` starting at buf[i] == '('.  Returns the offset
 * after the closing paren or (size_t)-1. Tracks newlines. */
static size_t skip_parens(hs_lexer *L, size_t i) {
  int depth = 0;
  while (i < L->len) {
    char c = L->buf[i];
    if (c == '(') {
      depth++;
    } else if (c == ')') {
      if (--depth == 0) return i + 1;
    } else if (c == '"') {
      size_t e = scan_string(L, i + 1);
      if (e == (size_t)-1) return (size_t)-1;
      i = e;
    } else if (c == '\n') {
      newline_at(L, i);
    }
    i++;
  }
  return (size_t)-1;
}

hs_token hs_lex_next(hs_lexer *L) {
  for (;;) {
    hs_lex_skip_space(L);
    size_t s = L->pos;
    if (s >= L->len) return make(L, HS_TOK_EOF, L->len, L->len);
    char c = L->buf[s];
    const char *b = L->buf;
    size_t n = L->len;

    if (is_letter(c) || c == '_') {
      size_t i = s + 1;
      while (i < n && is_bare_char(b[i])) i++;
      /* `loc(...)` is trivia. */
      if (i - s == 3 && memcmp(b + s, "loc", 3) == 0 && i < n && b[i] == '(') {
        int line0 = L->line;
        size_t ls0 = L->line_start;
        size_t e = skip_parens(L, i);
        if (e == (size_t)-1) {
          L->line = line0;
          L->line_start = ls0;
          return error_tok(L, s, "unterminated loc(...)");
        }
        L->pos = e;
        continue;
      }
      L->pos = i;
      return make(L, HS_TOK_BARE, s, i);
    }
    if (is_digit(c)) {
      size_t i = s;
      if (c == '0' && i + 2 < n && b[i + 1] == 'x' && is_hex(b[i + 2])) {
        i += 2;
        while (i < n && is_hex(b[i])) i++;
        L->pos = i;
        hs_token t = make(L, HS_TOK_INT, s, i);
        t.hex = true;
        return t;
      }
      while (i < n && is_digit(b[i])) i++;
      bool is_float = false;
      if (i < n && b[i] == '.') {
        is_float = true;
        i++;
        while (i < n && is_digit(b[i])) i++;
      }
      if (i < n && (b[i] == 'e' || b[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (b[j] == '+' || b[j] == '-')) j++;
        if (j < n && is_digit(b[j])) {
          is_float = true;
          i = j;
          while (i < n && is_digit(b[i])) i++;
        }
      }
      L->pos = i;
      return make(L, is_float ? HS_TOK_FLOAT : HS_TOK_INT, s, i);
    }
    switch (c) {
      case '%': {
        size_t i = s + 1;
        while (i < n && is_suffix_char(b[i])) i++;
        if (i == s + 1) return error_tok(L, s, "expected a value name after '%'");
        hs_token t = make(L, HS_TOK_PERCENT, s + 1, i);
        t.offset = s;
        t.col = (int)(s - L->line_start) + 1;
        if (i + 1 < n && b[i] == '#' && is_digit(b[i + 1])) {
          size_t j = i + 1;
          long v = 0;
          while (j < n && is_digit(b[j])) {
            if (v < 100000000) v = v * 10 + (b[j] - '0');
            j++;
          }
          t.result_no = (int)v;
          i = j;
        }
        L->pos = i;
        return t;
      }
      case '@':
      case '#':
      case '!':
      case '^': {
        if (c == '#' && s + 2 < n && b[s + 1] == '-' && b[s + 2] == '}') {
          L->pos = s + 3;
          return make(L, HS_TOK_META_END, s, s + 3);
        }
        hs_tok_kind k = c == '@' ? HS_TOK_AT : c == '#' ? HS_TOK_HASH
                      : c == '!' ? HS_TOK_EXCL : HS_TOK_CARET;
        if (c == '@' && s + 1 < n && b[s + 1] == '"') {
          size_t e = scan_string(L, s + 2);
          if (e == (size_t)-1) return error_tok(L, s, "unterminated quoted symbol name");
          L->pos = e + 1;
          hs_token t = make(L, k, s + 2, e);
          t.offset = s;
          t.col = (int)(s - L->line_start) + 1;
          return t;
        }
        size_t i = s + 1;
        while (i < n && is_suffix_char(b[i])) i++;
        if (i == s + 1) return error_tok(L, s, "expected a name after a sigil");
        L->pos = i;
        hs_token t = make(L, k, s + 1, i);
        t.offset = s;
        t.col = (int)(s - L->line_start) + 1;
        return t;
      }
      case '"': {
        size_t e = scan_string(L, s + 1);
        if (e == (size_t)-1) return error_tok(L, s, "unterminated string");
        L->pos = e + 1;
        hs_token t = make(L, HS_TOK_STRING, s + 1, e);
        t.offset = s;
        t.col = (int)(s - L->line_start) + 1;
        return t;
      }
      case '{':
        if (s + 2 < n && b[s + 1] == '-' && b[s + 2] == '#') {
          L->pos = s + 3;
          return make(L, HS_TOK_META_BEGIN, s, s + 3);
        }
        L->pos = s + 1;
        return make(L, HS_TOK_LBRACE, s, s + 1);
      case '-':
        if (s + 1 < n && b[s + 1] == '>') {
          L->pos = s + 2;
          return make(L, HS_TOK_ARROW, s, s + 2);
        }
        L->pos = s + 1;
        return make(L, HS_TOK_MINUS, s, s + 1);
      case '(': L->pos = s + 1; return make(L, HS_TOK_LPAREN, s, s + 1);
      case ')': L->pos = s + 1; return make(L, HS_TOK_RPAREN, s, s + 1);
      case '[': L->pos = s + 1; return make(L, HS_TOK_LBRACK, s, s + 1);
      case ']': L->pos = s + 1; return make(L, HS_TOK_RBRACK, s, s + 1);
      case '}': L->pos = s + 1; return make(L, HS_TOK_RBRACE, s, s + 1);
      case '<': L->pos = s + 1; return make(L, HS_TOK_LT, s, s + 1);
      case '>': L->pos = s + 1; return make(L, HS_TOK_GT, s, s + 1);
      case ',': L->pos = s + 1; return make(L, HS_TOK_COMMA, s, s + 1);
      case ':': L->pos = s + 1; return make(L, HS_TOK_COLON, s, s + 1);
      case '=': L->pos = s + 1; return make(L, HS_TOK_EQUAL, s, s + 1);
      case '+': L->pos = s + 1; return make(L, HS_TOK_PLUS, s, s + 1);
      case '*': L->pos = s + 1; return make(L, HS_TOK_STAR, s, s + 1);
      case '?': L->pos = s + 1; return make(L, HS_TOK_QUESTION, s, s + 1);
      case '|': L->pos = s + 1; return make(L, HS_TOK_PIPE, s, s + 1);
      default:
        return error_tok(L, s, "unexpected character");
    }
  }
}

int hs_lex_scan_dims(hs_lexer *L, int64_t *dims, int max_dims, int64_t dim_limit,
                     bool *more) {
  const char *b = L->buf;
  size_t n = L->len;
  int rank = 0;
  *more = false;
  for (;;) {
    size_t i = L->pos;
    while (i < n && (b[i] == ' ' || b[i] == '\t')) i++;
    if (i >= n) {
      L->pos = i;
      return rank;
    }
    int64_t d;
    size_t j = i;
    if (is_digit(b[i])) {
      d = 0;
      while (j < n && is_digit(b[j])) {
        if (d <= dim_limit) d = d * 10 + (b[j] - '0');
        j++;
      }
      if (j >= n || b[j] != 'x') return -1;
      if (d > dim_limit) return -3;
    } else if (b[i] == '?' || b[i] == '*') {
      j = i + 1;
      if (j >= n || b[j] != 'x') return -1;
      if (b[i] == '*') return -2;
      d = -1;
    } else {
      L->pos = i;
      return rank;
    }
    if (rank < max_dims)
      dims[rank] = d;
    else
      *more = true;
    rank++;
    L->pos = j + 1;
  }
}

bool hs_tok_text_eq(const hs_token *t, const char *text) {
  size_t n = strlen(text);
  return t->len == n && memcmp(t->text, text, n) == 0;
}

bool hs_tok_is(const hs_token *t, hs_tok_kind k, const char *text) {
  return t->kind == k && hs_tok_text_eq(t, text);
}
