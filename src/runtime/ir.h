/*
 * ir.h - the in-memory form of a parsed StableHLO module (internal).
 *
 * The parser (parser.c) turns MLIR text, pretty or generic, into this IR; the
 * executor (exec.c) and the kernels read it.  The single most important rule:
 * both syntaxes of an op produce the SAME IR.  Attributes are always stored
 * under the names the generic form uses (the op's ODS attribute names, e.g.
 * "broadcast_dimensions", "comparison_direction", "dimension_numbers",
 * "start_indices"), with canonical value kinds (see each HS_ATTR_* below and
 * docs/runtime.md, "Canonical attributes").  Kernels therefore never care how
 * an op was spelled.
 *
 * Memory: everything in a module (ops, values, attributes, names, constant
 * payloads) lives in the module's arena and is freed at once by
 * hs_module_free().  Nothing here is reference counted.
 *
 * Values: every SSA value of a function - block arguments and op results,
 * including those inside nested regions - gets a dense id in [0, n_values) of
 * its enclosing top-level function.  The executor keeps one frame slot per id.
 */
#ifndef HLOSERVE_RUNTIME_IR_H
#define HLOSERVE_RUNTIME_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hloserve/status.h"
#include "hloserve/tensor.h"
#include "base/arena.h"

typedef struct hs_loc {
  const char *file; /* interned; never NULL ("<input>" when unknown) */
  int line;         /* 1-based */
  int col;          /* 1-based */
} hs_loc;

typedef enum hs_type_kind {
  HS_TYPE_TENSOR = 0, /* tensor<...> (a scalar is a rank-0 tensor) */
  HS_TYPE_TOKEN,      /* !stablehlo.token */
  HS_TYPE_TUPLE,      /* tuple<...>: recorded, refused by the executor */
} hs_type_kind;

typedef struct hs_type {
  hs_type_kind kind;
  hs_dtype dtype;   /* HS_TYPE_TENSOR only */
  hs_shape shape;   /* HS_TYPE_TENSOR only */
} hs_type;

/* ---------------------------------------------------------------- attrs */

typedef enum hs_attr_kind {
  HS_ATTR_UNIT = 0,  /* `unit` or a bare key in an attr-dict: {has_side_effect} */
  HS_ATTR_BOOL,      /* true / false                                -> .b    */
  HS_ATTR_INT,       /* 3 : i64, 7 (any integer type)               -> .i    */
  HS_ATTR_FLOAT,     /* 1.0 : f32                                   -> .f    */
  HS_ATTR_STRING,    /* "text" (escapes decoded)                    -> .str  */
  HS_ATTR_SYMBOL,    /* @name (without the @)                       -> .str  */
  HS_ATTR_ENUM,      /* #stablehlo<comparison_direction GT>, or a bare enum
                        word the pretty syntax uses; .tag = "comparison_direction",
                        .str = "GT"                                          */
  HS_ATTR_ARRAY,     /* [a, b, ...] of attributes                   -> .array */
  HS_ATTR_INTS,      /* array<i64: 1, 2>, array<i1: true>, dense<[..]> : tensor<Nxi64>
                        used as a list, and pretty-syntax lists of integers
                                                                    -> .ints  */
  HS_ATTR_DENSE,     /* dense<...> / dense_resource elements        -> .dense */
  HS_ATTR_DICT,      /* {k = v, ...}                                -> .dict  */
  HS_ATTR_STRUCT,    /* #stablehlo.conv<...>, #stablehlo.gather<...>,
                        #stablehlo.scatter<...>, #stablehlo.dot<...>,
                        #stablehlo.precision<...> etc: .tag = "stablehlo.conv",
                        fields in .dict                                      */
  HS_ATTR_TYPE,      /* a type used as an attribute                 -> .type  */
  HS_ATTR_OPAQUE,    /* anything we parsed but do not interpret; .str holds
                        its source text                                      */
} hs_attr_kind;

typedef struct hs_attr hs_attr;

typedef struct hs_named_attr {
  const char *name;
  hs_attr *value;
} hs_named_attr;

struct hs_attr {
  hs_attr_kind kind;
  const char *tag; /* ENUM: enum name; STRUCT: "stablehlo.conv" etc; else NULL */
  union {
    bool b;
    int64_t i;
    double f;
    struct {
      const char *s;
      size_t len;
    } str;
    struct {
      hs_attr **items;
      int n;
    } array;
    struct {
      int64_t *v;
      int n;
    } ints;
    struct {
      hs_type type; /* element type and shape of the constant */
      void *data;   /* hs_shape_numel * dtype size bytes, row-major, fully
                       expanded (splats are materialised); PRED as bytes 0/1 */
      size_t nbytes;
    } dense;
    struct {
      hs_named_attr *items;
      int n;
    } dict;
    hs_type type;
  } u;
};

/* ------------------------------------------------------------------ IR */

typedef struct hs_op hs_op;
typedef struct hs_block hs_block;
typedef struct hs_region hs_region;

typedef struct hs_value {
  int id;           /* dense within the enclosing top-level function */
  hs_type type;
  hs_op *def;       /* defining op, or NULL for a block argument */
  int index;        /* result index in def, or argument index in its block */
  const char *name; /* source spelling without %, e.g. "0", "arg1", "cst_0" */
} hs_value;

struct hs_block {
  int n_args;
  hs_value **args;
  int n_ops;
  hs_op **ops;      /* the last op is the terminator (return) */
  void *plan;       /* filled by the compiler (exec.c): liveness */
};

struct hs_region {
  int n_blocks;     /* we support exactly one block per region */
  hs_block **blocks;
};

struct hs_op {
  const char *name;   /* full name: "stablehlo.add", "func.call", "chlo.top_k",
                         "func.return"; `return` is stored as "func.return",
                         `call` as "func.call" */
  int n_operands;
  hs_value **operands;
  int n_results;
  hs_value **results;
  int n_attrs;
  hs_named_attr *attrs; /* canonical names, see the file comment */
  int n_regions;
  hs_region **regions;
  hs_loc loc;
  hs_region *parent;    /* the region this op sits in */
  /* Filled by the compiler (exec.c), not the parser. */
  const struct hs_kernel *kernel;
  void *kernel_state;
  /* Filled when weights are bound (exec.c, constant folding): the op's
   * results computed once from weights and constants, or NULL. */
  struct hs_tensor *folded;
};

typedef struct hs_func {
  const char *name;     /* without @ */
  bool is_public;
  int n_args;
  hs_type *arg_types;
  hs_named_attr **arg_attrs; /* per argument: attr dict items (may be NULL) */
  int *arg_n_attrs;
  int n_results;
  hs_type *result_types;
  hs_region *body;      /* block 0's args are the function arguments */
  int n_values;         /* ids in [0, n_values) */
  hs_loc loc;
  void *plan;           /* filled by the compiler (exec.c): memory plan */
} hs_func;

typedef struct hs_module {
  const char *name;     /* may be NULL */
  int n_funcs;
  hs_func **funcs;
  int n_attrs;
  hs_named_attr *attrs;
  hs_arena arena;       /* owns everything above */
  const char *filename;
} hs_module;

/* Parses MLIR text.  `filename` is used in error locations.  On success
 * *out is a new module (free with hs_module_free).  On failure the status says
 * "file:line:col: what is wrong" and *out is NULL. */
hs_status *hs_parse_module(const char *text, size_t len, const char *filename,
                           hs_module **out);
void hs_module_free(hs_module *m);

/* Frees what hs_parse_parts returned: each module, then the array. */
void hs_parse_parts_free(hs_module **parts, int n);

/* Splat constants (dense<1.0> : tensor<HUGE>) are materialised; this caps the
 * bytes one may expand to (default 16 GiB; the fuzzer lowers it).  Exceeding
 * it is HS_RESOURCE_EXHAUSTED.  Process-wide; set it before parsing. */
void hs_parse_set_max_splat_bytes(size_t max_bytes);

/* Splits text on lines `// -----` and parses each part as its own module
 * (locations stay relative to the whole file).  On success *parts is a
 * malloc'd array of *n modules (free each, then the array). */
hs_status *hs_parse_parts(const char *text, size_t len, const char *filename, hs_module ***parts,
                          int *n);

/* Lookups; NULL when absent. */
hs_func *hs_module_find_func(const hs_module *m, const char *name);
const hs_attr *hs_op_attr(const hs_op *op, const char *name);
const hs_attr *hs_dict_get(const hs_attr *dict_or_struct, const char *name);

/* Typed attribute readers for kernels.  Each returns an error status naming
 * the op, its location and the attribute when it is missing (and required) or
 * has the wrong kind. */
hs_status *hs_op_get_int(const hs_op *op, const char *name, bool required,
                         int64_t dflt, int64_t *out);
/* Accepts INTS, an empty ARRAY, or an i64 DENSE (flattened).  The parser
 * turns every all-integer array into INTS and widens integer DENSE attributes
 * (except constants' `value`) to i64, so every integer list arrives in one of
 * these forms.  *out points into the module arena; *n receives the count (an
 * absent optional attribute gives *out = NULL, *n = 0). */
hs_status *hs_op_get_ints(const hs_op *op, const char *name, bool required,
                          const int64_t **out, int *n);
/* For ENUM attributes: the enum word ("GT", "FLOAT", "DEFAULT"). */
hs_status *hs_op_get_enum(const hs_op *op, const char *name, bool required,
                          const char *dflt, const char **out);
hs_status *hs_op_get_string(const hs_op *op, const char *name, bool required,
                            const char *dflt, const char **out);

/* The same readers over a STRUCT's or DICT's fields (for #stablehlo.conv etc).
 * `what` names the struct in error messages. */
hs_status *hs_struct_get_int(const hs_op *op, const hs_attr *s, const char *field,
                             bool required, int64_t dflt, int64_t *out);
hs_status *hs_struct_get_ints(const hs_op *op, const hs_attr *s, const char *field,
                              bool required, const int64_t **out, int *n);

/* Operand / result i of op as a real-valued tensor type: an error (located
 * at op) when it is missing, not a tensor, or complex (HS_UNIMPLEMENTED). */
hs_status *hs_op_tensor_operand(const hs_op *op, int i, const hs_type **out);
hs_status *hs_op_tensor_result(const hs_op *op, int i, const hs_type **out);

/* An error located at op: "file:line:col: 'stablehlo.add': <message>". */
hs_status *hs_op_error(const hs_op *op, hs_status_code code, const char *fmt, ...)
    HS_PRINTF(3, 4);

/* "tensor<2x3xf32>" into buf; returns buf. */
char *hs_type_str(const hs_type *t, char *buf, size_t cap);

#endif /* HLOSERVE_RUNTIME_IR_H */
