/*
 * lexer.h - tokens of MLIR text (internal to the parser).
 *
 * The lexer is a cursor over a buffer that is NOT NUL-terminated: every read
 * is bounded by `len`.  It never allocates; a token is a span of the input.
 * Trivia (whitespace, `//` comments and `loc(...)` location suffixes) is
 * skipped here so the parser never sees locations at all.
 *
 * Some MLIR constructs are not token-shaped (the dimension list of
 * `tensor<2x3xf32>`); the parser scans those with hs_lex_scan_dims() straight
 * from the cursor and then continues with ordinary tokens.
 */
#ifndef HLOSERVE_RUNTIME_LEXER_H
#define HLOSERVE_RUNTIME_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum hs_tok_kind {
  HS_TOK_EOF = 0,
  HS_TOK_ERROR,    /* lexical error; message in hs_lexer.error */
  HS_TOK_BARE,     /* foo, stablehlo.add, f32, dense */
  HS_TOK_PERCENT,  /* %name (text without %; result_no set for %name#3) */
  HS_TOK_CARET,    /* ^bb0 (text without ^) */
  HS_TOK_AT,       /* @sym or @"sym" (text without @ and quotes) */
  HS_TOK_HASH,     /* #alias, #stablehlo.conv (text without #) */
  HS_TOK_EXCL,     /* !stablehlo.token (text without !) */
  HS_TOK_INT,      /* 12, 0x1F (hex flag set) */
  HS_TOK_FLOAT,    /* 1.5, 2e-3 */
  HS_TOK_STRING,   /* "..." (text is the raw content between the quotes) */
  HS_TOK_LPAREN, HS_TOK_RPAREN, HS_TOK_LBRACK, HS_TOK_RBRACK,
  HS_TOK_LBRACE, HS_TOK_RBRACE, HS_TOK_LT, HS_TOK_GT,
  HS_TOK_COMMA, HS_TOK_COLON, HS_TOK_EQUAL, HS_TOK_ARROW, HS_TOK_MINUS,
  HS_TOK_PLUS, HS_TOK_STAR, HS_TOK_QUESTION, HS_TOK_PIPE,
  HS_TOK_META_BEGIN, /* {-# */
  HS_TOK_META_END    /* #-} */
} hs_tok_kind;

typedef struct hs_token {
  hs_tok_kind kind;
  const char *text; /* span in the input (see kinds above) */
  size_t len;
  size_t offset;    /* byte offset of the token's first character */
  int line, col;    /* 1-based */
  int result_no;    /* PERCENT: the N of %x#N, else -1 */
  bool hex;         /* INT written as 0x... */
} hs_token;

typedef struct hs_lexer {
  const char *buf;
  size_t len;
  size_t pos;
  int line;          /* line of buf[pos] */
  size_t line_start; /* offset of the first character of that line */
  const char *error; /* static message for HS_TOK_ERROR */
  int err_line, err_col;
} hs_lexer;

void hs_lex_init(hs_lexer *L, const char *buf, size_t len, int first_line);
/* Lexes the next token at the cursor. */
hs_token hs_lex_next(hs_lexer *L);
/* Skips blanks (and newlines) at the cursor. */
void hs_lex_skip_space(hs_lexer *L);
/* Raw scan of a tensor dimension list "2x?x3x" at the cursor (after `<`).
 * Stores up to max_dims dims (-1 for `?`); returns the number scanned, or -1
 * on a malformed list, -2 for an unranked `*x`, -3 when a dimension exceeds
 * `dim_limit`. *more is set when there were more than max_dims dimensions. */
int hs_lex_scan_dims(hs_lexer *L, int64_t *dims, int max_dims, int64_t dim_limit,
                     bool *more);

bool hs_tok_is(const hs_token *t, hs_tok_kind k, const char *text);
bool hs_tok_text_eq(const hs_token *t, const char *text);

#endif
