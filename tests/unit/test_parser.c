/*
 * test_parser.c - the MLIR text parser (src/runtime/parser.c, lexer.c, ir.c).
 *
 * What is tested, and why:
 *  - pretty and generic spellings of the same program produce the same IR
 *    (op names, attributes by canonical name and kind, regions, value ids):
 *    kernels must never care how an op was written;
 *  - the canonical attribute values of docs/runtime.md (slices, conv and dot
 *    dimension numbers, paddings, enums...) and constant decoding;
 *  - every program of the conformance folder parses;
 *  - every file of tests/data/malformed fails with "file:line:col: ...", and
 *    truncated or mutated inputs (in exact-size buffers, so ASan sees any
 *    overread) never crash;
 *  - a large module with big hex constants parses fast.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "runtime/ir.h"
#include "testlib.h"

/* ---------------------------------------------------------------- helpers */

static char *read_whole(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) != 0) {
    fclose(f);
    return NULL;
  }
  long n = ftell(f);
  if (n < 0) {
    fclose(f);
    return NULL;
  }
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  if (!buf) {
    fclose(f);
    return NULL;
  }
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  *len = got;
  return buf;
}

/* Parses from an exact-size heap copy (no NUL after the text). */
static hs_status *parse_exact(const char *text, size_t len, const char *file, hs_module **m) {
  char *copy = malloc(len ? len : 1);
  if (!copy) return hs_status_new(HS_OUT_OF_MEMORY, "oom");
  memcpy(copy, text, len);
  hs_status *st = hs_parse_module(copy, len, file, m);
  free(copy);
  return st;
}

static hs_module *parse_ok(const char *text) {
  hs_module *m = NULL;
  hs_status *st = parse_exact(text, strlen(text), "t.mlir", &m);
  if (st) {
    fprintf(stderr, "unexpected parse error: %s\n", hs_status_message(st));
    hs_status_free(st);
    return NULL;
  }
  return m;
}

/* Checks that msg looks like "<file>:<line>:<col>: ..." */
static bool has_location_prefix(const char *msg, const char *file) {
  size_t n = strlen(file);
  if (strncmp(msg, file, n) != 0 || msg[n] != ':') return false;
  const char *s = msg + n + 1;
  for (int part = 0; part < 2; part++) {
    if (*s < '0' || *s > '9') return false;
    while (*s >= '0' && *s <= '9') s++;
    if (*s != ':') return false;
    s++;
  }
  return *s == ' ';
}

static hs_op *find_op(hs_region *r, const char *name, int nth) {
  hs_block *b = r->blocks[0];
  for (int i = 0; i < b->n_ops; i++) {
    hs_op *op = b->ops[i];
    if (strcmp(op->name, name) == 0 && nth-- == 0) return op;
    for (int k = 0; k < op->n_regions; k++) {
      hs_op *x = find_op(op->regions[k], name, nth);
      if (x) return x;
    }
  }
  return NULL;
}

static bool ints_are(const hs_op *op, const char *name, const int64_t *want, int n) {
  const int64_t *v;
  int got;
  hs_status *st = hs_op_get_ints(op, name, true, &v, &got);
  if (st) {
    fprintf(stderr, "%s\n", hs_status_message(st));
    hs_status_free(st);
    return false;
  }
  if (got != n) return false;
  for (int i = 0; i < n; i++)
    if (v[i] != want[i]) return false;
  return true;
}

static bool struct_ints_are(const hs_op *op, const hs_attr *s, const char *f, const int64_t *want,
                            int n) {
  const int64_t *v;
  int got;
  hs_status *st = hs_struct_get_ints(op, s, f, true, &v, &got);
  if (st) {
    fprintf(stderr, "%s\n", hs_status_message(st));
    hs_status_free(st);
    return false;
  }
  if (got != n) return false;
  for (int i = 0; i < n; i++)
    if (v[i] != want[i]) return false;
  return true;
}

/* ------------------------------------------------------ structural equality */

static bool attr_eq(const hs_attr *a, const hs_attr *b, char *why, size_t cap);

static bool type_same(const hs_type *a, const hs_type *b) {
  if (a->kind != b->kind) return false;
  if (a->kind != HS_TYPE_TENSOR) return true;
  return a->dtype == b->dtype && hs_shape_equal(&a->shape, &b->shape);
}

static bool dict_eq(const hs_attr *a, const hs_attr *b, char *why, size_t cap) {
  if (a->u.dict.n != b->u.dict.n) {
    snprintf(why, cap, "dict sizes %d vs %d", a->u.dict.n, b->u.dict.n);
    return false;
  }
  for (int i = 0; i < a->u.dict.n; i++) {
    const hs_attr *o = hs_dict_get(b, a->u.dict.items[i].name);
    if (!o) {
      snprintf(why, cap, "field %s missing", a->u.dict.items[i].name);
      return false;
    }
    if (!attr_eq(a->u.dict.items[i].value, o, why, cap)) return false;
  }
  return true;
}

static bool attr_eq(const hs_attr *a, const hs_attr *b, char *why, size_t cap) {
  if (a->kind != b->kind) {
    snprintf(why, cap, "attribute kinds %d vs %d", a->kind, b->kind);
    return false;
  }
  if ((a->tag == NULL) != (b->tag == NULL) || (a->tag && strcmp(a->tag, b->tag) != 0)) {
    snprintf(why, cap, "tags %s vs %s", a->tag ? a->tag : "-", b->tag ? b->tag : "-");
    return false;
  }
  switch (a->kind) {
    case HS_ATTR_UNIT: return true;
    case HS_ATTR_BOOL: return a->u.b == b->u.b;
    case HS_ATTR_INT: return a->u.i == b->u.i;
    case HS_ATTR_FLOAT: return a->u.f == b->u.f;
    case HS_ATTR_STRING:
    case HS_ATTR_SYMBOL:
    case HS_ATTR_ENUM:
    case HS_ATTR_OPAQUE:
      if (a->u.str.len != b->u.str.len || memcmp(a->u.str.s, b->u.str.s, a->u.str.len) != 0) {
        snprintf(why, cap, "strings %s vs %s", a->u.str.s, b->u.str.s);
        return false;
      }
      return true;
    case HS_ATTR_ARRAY:
      if (a->u.array.n != b->u.array.n) return false;
      for (int i = 0; i < a->u.array.n; i++)
        if (!attr_eq(a->u.array.items[i], b->u.array.items[i], why, cap)) return false;
      return true;
    case HS_ATTR_INTS:
      if (a->u.ints.n != b->u.ints.n) {
        snprintf(why, cap, "int list lengths %d vs %d", a->u.ints.n, b->u.ints.n);
        return false;
      }
      for (int i = 0; i < a->u.ints.n; i++)
        if (a->u.ints.v[i] != b->u.ints.v[i]) {
          snprintf(why, cap, "int lists differ at %d", i);
          return false;
        }
      return true;
    case HS_ATTR_DENSE:
      if (!type_same(&a->u.dense.type, &b->u.dense.type) || a->u.dense.nbytes != b->u.dense.nbytes ||
          memcmp(a->u.dense.data, b->u.dense.data, a->u.dense.nbytes) != 0) {
        snprintf(why, cap, "dense constants differ");
        return false;
      }
      return true;
    case HS_ATTR_DICT:
    case HS_ATTR_STRUCT:
      return dict_eq(a, b, why, cap);
    case HS_ATTR_TYPE:
      return type_same(&a->u.type, &b->u.type);
  }
  return false;
}

static bool region_eq(const hs_region *a, const hs_region *b, char *why, size_t cap);

static bool op_eq(const hs_op *a, const hs_op *b, char *why, size_t cap) {
  if (strcmp(a->name, b->name) != 0) {
    snprintf(why, cap, "op %s vs %s", a->name, b->name);
    return false;
  }
  if (a->n_operands != b->n_operands || a->n_results != b->n_results ||
      a->n_regions != b->n_regions || a->n_attrs != b->n_attrs) {
    snprintf(why, cap, "%s: counts (operands %d/%d results %d/%d regions %d/%d attrs %d/%d)",
             a->name, a->n_operands, b->n_operands, a->n_results, b->n_results, a->n_regions,
             b->n_regions, a->n_attrs, b->n_attrs);
    return false;
  }
  for (int i = 0; i < a->n_operands; i++)
    if (a->operands[i]->id != b->operands[i]->id) {
      snprintf(why, cap, "%s: operand %d ids %d vs %d", a->name, i, a->operands[i]->id,
               b->operands[i]->id);
      return false;
    }
  for (int i = 0; i < a->n_results; i++)
    if (a->results[i]->id != b->results[i]->id ||
        !type_same(&a->results[i]->type, &b->results[i]->type)) {
      snprintf(why, cap, "%s: result %d differs", a->name, i);
      return false;
    }
  for (int i = 0; i < a->n_attrs; i++) {
    const hs_attr *o = hs_op_attr(b, a->attrs[i].name);
    if (!o) {
      snprintf(why, cap, "%s: attribute %s missing", a->name, a->attrs[i].name);
      return false;
    }
    if (!attr_eq(a->attrs[i].value, o, why, cap)) {
      size_t l = strlen(why);
      snprintf(why + l, cap - l, " (%s.%s)", a->name, a->attrs[i].name);
      return false;
    }
  }
  for (int i = 0; i < a->n_regions; i++)
    if (!region_eq(a->regions[i], b->regions[i], why, cap)) return false;
  return true;
}

static bool region_eq(const hs_region *a, const hs_region *b, char *why, size_t cap) {
  const hs_block *x = a->blocks[0], *y = b->blocks[0];
  if (x->n_args != y->n_args || x->n_ops != y->n_ops) {
    snprintf(why, cap, "block args %d/%d ops %d/%d", x->n_args, y->n_args, x->n_ops, y->n_ops);
    return false;
  }
  for (int i = 0; i < x->n_args; i++)
    if (x->args[i]->id != y->args[i]->id || !type_same(&x->args[i]->type, &y->args[i]->type)) {
      snprintf(why, cap, "block argument %d differs", i);
      return false;
    }
  for (int i = 0; i < x->n_ops; i++)
    if (!op_eq(x->ops[i], y->ops[i], why, cap)) return false;
  return true;
}

static bool module_eq(const hs_module *a, const hs_module *b, char *why, size_t cap) {
  if (a->n_funcs != b->n_funcs) {
    snprintf(why, cap, "function counts %d vs %d", a->n_funcs, b->n_funcs);
    return false;
  }
  for (int i = 0; i < a->n_funcs; i++) {
    const hs_func *f = a->funcs[i], *g = b->funcs[i];
    if (strcmp(f->name, g->name) != 0 || f->n_args != g->n_args || f->n_results != g->n_results ||
        f->n_values != g->n_values) {
      snprintf(why, cap, "function @%s header differs (values %d vs %d)", f->name, f->n_values,
               g->n_values);
      return false;
    }
    if (!region_eq(f->body, g->body, why, cap)) return false;
  }
  return true;
}

static bool same_ir(const char *pretty, const char *generic) {
  hs_module *a = parse_ok(pretty), *b = parse_ok(generic);
  bool ok = a && b;
  char why[512] = "";
  if (ok && !module_eq(a, b, why, sizeof why)) {
    fprintf(stderr, "IR differs: %s\n", why);
    ok = false;
  }
  hs_module_free(a);
  hs_module_free(b);
  return ok;
}

/* ------------------------------------------------- pretty == generic pairs */

HS_TEST(equiv_basic_ops) {
  const char *pretty =
      "func.func @main(%a: tensor<2x3xf32>, %b: tensor<f32>, %i: tensor<i64>) -> tensor<3x2xf32> {\n"
      "  %c = stablehlo.constant dense<1.0> : tensor<f32>\n"
      "  %0 = stablehlo.add %b, %c : tensor<f32>\n"
      "  %1 = stablehlo.broadcast_in_dim %0, dims = [] : (tensor<f32>) -> tensor<2x3xf32>\n"
      "  %2 = stablehlo.compare  GT, %a, %1,  FLOAT : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>\n"
      "  %3 = stablehlo.select %2, %a, %1 : tensor<2x3xi1>, tensor<2x3xf32>\n"
      "  %4 = stablehlo.transpose %3, dims = [1, 0] : (tensor<2x3xf32>) -> tensor<3x2xf32>\n"
      "  %5 = stablehlo.reverse %4, dims = [0] : tensor<3x2xf32>\n"
      "  %6 = stablehlo.slice %5 [0:3, 0:2:1] : (tensor<3x2xf32>) -> tensor<3x2xf32>\n"
      "  %7 = stablehlo.dynamic_slice %6, %i, %i, sizes = [1, 2] : (tensor<3x2xf32>, tensor<i64>, tensor<i64>) -> tensor<1x2xf32>\n"
      "  %8 = stablehlo.concatenate %7, %7, %7, dim = 0 : (tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<3x2xf32>\n"
      "  %9 = stablehlo.pad %8, %b, low = [0, 0], high = [0, 0], interior = [0, 0] : (tensor<3x2xf32>, tensor<f32>) -> tensor<3x2xf32>\n"
      "  %10 = stablehlo.iota dim = 1 : tensor<3x2xf32>\n"
      "  %11 = stablehlo.multiply %9, %10 : tensor<3x2xf32>\n"
      "  %12 = stablehlo.convert %11 : (tensor<3x2xf32>) -> tensor<3x2xf64>\n"
      "  %13 = stablehlo.reshape %11 : (tensor<3x2xf32>) -> tensor<6xf32>\n"
      "  %14 = stablehlo.dynamic_update_slice %11, %7, %i, %i : (tensor<3x2xf32>, tensor<1x2xf32>, tensor<i64>, tensor<i64>) -> tensor<3x2xf32>\n"
      "  %15 = stablehlo.clamp %b, %14, %b : (tensor<f32>, tensor<3x2xf32>, tensor<f32>) -> tensor<3x2xf32>\n"
      "  return %15 : tensor<3x2xf32>\n"
      "}\n";
  const char *generic =
      "func.func @main(%a: tensor<2x3xf32>, %b: tensor<f32>, %i: tensor<i64>) -> tensor<3x2xf32> {\n"
      "  %c = \"stablehlo.constant\"() <{value = dense<1.0> : tensor<f32>}> : () -> tensor<f32>\n"
      "  %0 = \"stablehlo.add\"(%b, %c) : (tensor<f32>, tensor<f32>) -> tensor<f32>\n"
      "  %1 = \"stablehlo.broadcast_in_dim\"(%0) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<2x3xf32>\n"
      "  %2 = \"stablehlo.compare\"(%a, %1) <{comparison_direction = #stablehlo<comparison_direction GT>, compare_type = #stablehlo<comparison_type FLOAT>}> : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>\n"
      "  %3 = \"stablehlo.select\"(%2, %a, %1) : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>\n"
      "  %4 = \"stablehlo.transpose\"(%3) <{permutation = array<i64: 1, 0>}> : (tensor<2x3xf32>) -> tensor<3x2xf32>\n"
      "  %5 = \"stablehlo.reverse\"(%4) <{dimensions = array<i64: 0>}> : (tensor<3x2xf32>) -> tensor<3x2xf32>\n"
      "  %6 = \"stablehlo.slice\"(%5) <{start_indices = array<i64: 0, 0>, limit_indices = array<i64: 3, 2>, strides = array<i64: 1, 1>}> : (tensor<3x2xf32>) -> tensor<3x2xf32>\n"
      "  %7 = \"stablehlo.dynamic_slice\"(%6, %i, %i) <{slice_sizes = array<i64: 1, 2>}> : (tensor<3x2xf32>, tensor<i64>, tensor<i64>) -> tensor<1x2xf32>\n"
      "  %8 = \"stablehlo.concatenate\"(%7, %7, %7) <{dimension = 0 : i64}> : (tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<3x2xf32>\n"
      "  %9 = \"stablehlo.pad\"(%8, %b) <{edge_padding_high = array<i64: 0, 0>, edge_padding_low = array<i64: 0, 0>, interior_padding = array<i64: 0, 0>}> : (tensor<3x2xf32>, tensor<f32>) -> tensor<3x2xf32>\n"
      "  %10 = \"stablehlo.iota\"() <{iota_dimension = 1 : i64}> : () -> tensor<3x2xf32>\n"
      "  %11 = \"stablehlo.multiply\"(%9, %10) : (tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<3x2xf32>\n"
      "  %12 = \"stablehlo.convert\"(%11) : (tensor<3x2xf32>) -> tensor<3x2xf64>\n"
      "  %13 = \"stablehlo.reshape\"(%11) : (tensor<3x2xf32>) -> tensor<6xf32>\n"
      "  %14 = \"stablehlo.dynamic_update_slice\"(%11, %7, %i, %i) : (tensor<3x2xf32>, tensor<1x2xf32>, tensor<i64>, tensor<i64>) -> tensor<3x2xf32>\n"
      "  %15 = \"stablehlo.clamp\"(%b, %14, %b) : (tensor<f32>, tensor<3x2xf32>, tensor<f32>) -> tensor<3x2xf32>\n"
      "  \"func.return\"(%15) : (tensor<3x2xf32>) -> ()\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
}

HS_TEST(equiv_reduce_applies) {
  const char *pretty =
      "func.func @main(%a: tensor<2x3xf32>, %b: tensor<f32>) -> tensor<2xf32> {\n"
      "  %0 = stablehlo.reduce(%a init: %b) applies stablehlo.add across dimensions = [1] : (tensor<2x3xf32>, tensor<f32>) -> tensor<2xf32>\n"
      "  return %0 : tensor<2xf32>\n"
      "}\n";
  const char *generic =
      "func.func @main(%a: tensor<2x3xf32>, %b: tensor<f32>) -> tensor<2xf32> {\n"
      "  %0 = \"stablehlo.reduce\"(%a, %b) <{dimensions = array<i64: 1>}> ({\n"
      "  ^bb0(%x: tensor<f32>, %y: tensor<f32>):\n"
      "    %s = stablehlo.add %x, %y : tensor<f32>\n"
      "    stablehlo.return %s : tensor<f32>\n"
      "  }) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2xf32>\n"
      "  return %0 : tensor<2xf32>\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
}

HS_TEST(equiv_reduce_reducer) {
  const char *pretty =
      "func.func @main(%a: tensor<2x3xf32>, %ai: tensor<2x3xi32>, %b: tensor<f32>, %bi: tensor<i32>) -> (tensor<2xf32>, tensor<2xi32>) {\n"
      "  %1:2 = stablehlo.reduce(%a init: %b), (%ai init: %bi) across dimensions = [1] : (tensor<2x3xf32>, tensor<2x3xi32>, tensor<f32>, tensor<i32>) -> (tensor<2xf32>, tensor<2xi32>)\n"
      "   reducer(%p0: tensor<f32>, %q0: tensor<f32>) (%p1: tensor<i32>, %q1: tensor<i32>)  {\n"
      "    %m = stablehlo.maximum %p0, %q0 : tensor<f32>\n"
      "    %n = stablehlo.minimum %p1, %q1 : tensor<i32>\n"
      "    stablehlo.return %m, %n : tensor<f32>, tensor<i32>\n"
      "  }\n"
      "  return %1#0, %1#1 : tensor<2xf32>, tensor<2xi32>\n"
      "}\n";
  const char *generic =
      "func.func @main(%a: tensor<2x3xf32>, %ai: tensor<2x3xi32>, %b: tensor<f32>, %bi: tensor<i32>) -> (tensor<2xf32>, tensor<2xi32>) {\n"
      "  %r, %s = \"stablehlo.reduce\"(%a, %ai, %b, %bi) <{dimensions = array<i64: 1>}> ({\n"
      "  ^bb0(%p0: tensor<f32>, %p1: tensor<i32>, %q0: tensor<f32>, %q1: tensor<i32>):\n"
      "    %m = \"stablehlo.maximum\"(%p0, %q0) : (tensor<f32>, tensor<f32>) -> tensor<f32>\n"
      "    %n = \"stablehlo.minimum\"(%p1, %q1) : (tensor<i32>, tensor<i32>) -> tensor<i32>\n"
      "    \"stablehlo.return\"(%m, %n) : (tensor<f32>, tensor<i32>) -> ()\n"
      "  }) : (tensor<2x3xf32>, tensor<2x3xi32>, tensor<f32>, tensor<i32>) -> (tensor<2xf32>, tensor<2xi32>)\n"
      "  \"func.return\"(%r, %s) : (tensor<2xf32>, tensor<2xi32>) -> ()\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
  /* The reducer's block arguments are ordered (lhs..., rhs...). */
  hs_module *m = parse_ok(pretty);
  CHECK(m);
  hs_op *r = find_op(m->funcs[0]->body, "stablehlo.reduce", 0);
  CHECK(r && r->n_regions == 1);
  hs_block *b = r->regions[0]->blocks[0];
  CHECK(b->n_args == 4 && strcmp(b->args[0]->name, "p0") == 0 && strcmp(b->args[1]->name, "p1") == 0 &&
        strcmp(b->args[2]->name, "q0") == 0 && strcmp(b->args[3]->name, "q1") == 0);
  hs_module_free(m);
}

HS_TEST(equiv_while) {
  const char *pretty =
      "func.func @main(%a: tensor<i64>, %s: tensor<f32>) -> tensor<f32> {\n"
      "  %ten = stablehlo.constant dense<10> : tensor<i64>\n"
      "  %0:2 = stablehlo.while(%iterArg = %a, %iterArg_0 = %s) : tensor<i64>, tensor<f32>\n"
      "   cond {\n"
      "    %c = stablehlo.compare  LT, %iterArg, %ten,  SIGNED : (tensor<i64>, tensor<i64>) -> tensor<i1>\n"
      "    stablehlo.return %c : tensor<i1>\n"
      "  } do {\n"
      "    %one = stablehlo.constant dense<1> : tensor<i64>\n"
      "    %n = stablehlo.add %iterArg, %one : tensor<i64>\n"
      "    stablehlo.return %n, %iterArg_0 : tensor<i64>, tensor<f32>\n"
      "  }\n"
      "  return %0#1 : tensor<f32>\n"
      "}\n";
  const char *generic =
      "func.func @main(%a: tensor<i64>, %s: tensor<f32>) -> tensor<f32> {\n"
      "  %ten = stablehlo.constant dense<10> : tensor<i64>\n"
      "  %0:2 = \"stablehlo.while\"(%a, %s) ({\n"
      "  ^bb0(%x: tensor<i64>, %y: tensor<f32>):\n"
      "    %c = stablehlo.compare  LT, %x, %ten,  SIGNED : (tensor<i64>, tensor<i64>) -> tensor<i1>\n"
      "    stablehlo.return %c : tensor<i1>\n"
      "  }, {\n"
      "  ^bb0(%x: tensor<i64>, %y: tensor<f32>):\n"
      "    %one = stablehlo.constant dense<1> : tensor<i64>\n"
      "    %n = stablehlo.add %x, %one : tensor<i64>\n"
      "    stablehlo.return %n, %y : tensor<i64>, tensor<f32>\n"
      "  }) : (tensor<i64>, tensor<f32>) -> (tensor<i64>, tensor<f32>)\n"
      "  return %0#1 : tensor<f32>\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
}

HS_TEST(equiv_convolution) {
  const char *pretty =
      "func.func @main(%a: tensor<1x4x4x1xf32>, %w: tensor<3x3x1x2xf32>) -> tensor<1x2x2x2xf32> {\n"
      "  %0 = stablehlo.convolution(%a, %w) dim_numbers = [b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f], window = {stride = [2, 2], pad = [[1, 1], [1, 1]], rhs_dilate = [1, 1], reverse = [false, true]} {batch_group_count = 1 : i64, feature_group_count = 1 : i64} : (tensor<1x4x4x1xf32>, tensor<3x3x1x2xf32>) -> tensor<1x2x2x2xf32>\n"
      "  return %0 : tensor<1x2x2x2xf32>\n"
      "}\n";
  const char *generic =
      "func.func @main(%a: tensor<1x4x4x1xf32>, %w: tensor<3x3x1x2xf32>) -> tensor<1x2x2x2xf32> {\n"
      "  %0 = \"stablehlo.convolution\"(%a, %w) <{batch_group_count = 1 : i64, dimension_numbers = #stablehlo.conv<[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]>, feature_group_count = 1 : i64, padding = dense<1> : tensor<2x2xi64>, rhs_dilation = array<i64: 1, 1>, window_reversal = array<i1: false, true>, window_strides = array<i64: 2, 2>}> : (tensor<1x4x4x1xf32>, tensor<3x3x1x2xf32>) -> tensor<1x2x2x2xf32>\n"
      "  return %0 : tensor<1x2x2x2xf32>\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
  hs_module *m = parse_ok(pretty);
  CHECK(m);
  hs_op *c = find_op(m->funcs[0]->body, "stablehlo.convolution", 0);
  CHECK(c);
  const hs_attr *dn = hs_op_attr(c, "dimension_numbers");
  CHECK(dn && dn->kind == HS_ATTR_STRUCT && strcmp(dn->tag, "stablehlo.conv") == 0);
  int64_t v;
  CHECK_OK(hs_struct_get_int(c, dn, "input_batch_dimension", true, 0, &v));
  CHECK(v == 0);
  CHECK_OK(hs_struct_get_int(c, dn, "input_feature_dimension", true, 0, &v));
  CHECK(v == 3);
  CHECK_OK(hs_struct_get_int(c, dn, "kernel_input_feature_dimension", true, 0, &v));
  CHECK(v == 2);
  CHECK_OK(hs_struct_get_int(c, dn, "kernel_output_feature_dimension", true, 0, &v));
  CHECK(v == 3);
  const int64_t sp[] = {1, 2}, ksp[] = {0, 1}, pad[] = {1, 1, 1, 1}, rev[] = {0, 1};
  CHECK(struct_ints_are(c, dn, "input_spatial_dimensions", sp, 2));
  CHECK(struct_ints_are(c, dn, "kernel_spatial_dimensions", ksp, 2));
  CHECK(struct_ints_are(c, dn, "output_spatial_dimensions", sp, 2));
  CHECK(ints_are(c, "padding", pad, 4));
  CHECK(ints_are(c, "window_reversal", rev, 2));
  hs_module_free(m);
}

HS_TEST(equiv_dot_general) {
  const char *pretty =
      "func.func @main(%x: tensor<2x3x4xf32>, %y: tensor<2x4x5xf32>) -> tensor<2x3x5xf32> {\n"
      "  %0 = stablehlo.dot_general %x, %y, batching_dims = [0] x [0], contracting_dims = [2] x [1], precision = [DEFAULT, HIGHEST] : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>\n"
      "  return %0 : tensor<2x3x5xf32>\n"
      "}\n";
  const char *generic =
      "func.func @main(%x: tensor<2x3x4xf32>, %y: tensor<2x4x5xf32>) -> tensor<2x3x5xf32> {\n"
      "  %0 = \"stablehlo.dot_general\"(%x, %y) <{dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = [0], rhs_batching_dimensions = [0], lhs_contracting_dimensions = [2], rhs_contracting_dimensions = [1]>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision HIGHEST>]}> : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>\n"
      "  return %0 : tensor<2x3x5xf32>\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
  hs_module *m = parse_ok(pretty);
  CHECK(m);
  hs_op *d = find_op(m->funcs[0]->body, "stablehlo.dot_general", 0);
  const hs_attr *dn = hs_op_attr(d, "dot_dimension_numbers");
  const int64_t zero[] = {0}, two[] = {2}, one[] = {1};
  CHECK(struct_ints_are(d, dn, "lhs_batching_dimensions", zero, 1));
  CHECK(struct_ints_are(d, dn, "rhs_batching_dimensions", zero, 1));
  CHECK(struct_ints_are(d, dn, "lhs_contracting_dimensions", two, 1));
  CHECK(struct_ints_are(d, dn, "rhs_contracting_dimensions", one, 1));
  const hs_attr *pc = hs_op_attr(d, "precision_config");
  CHECK(pc && pc->kind == HS_ATTR_ARRAY && pc->u.array.n == 2);
  CHECK(strcmp(pc->u.array.items[1]->tag, "precision") == 0 &&
        strcmp(pc->u.array.items[1]->u.str.s, "HIGHEST") == 0);
  hs_module_free(m);
}

HS_TEST(equiv_calls_and_custom_call) {
  const char *pretty =
      "module @m {\n"
      "  func.func public @main() -> (tensor<2xf32> {jax.result_info = \"\"}) {\n"
      "    %0:2 = call @inputs() : () -> (tensor<2xf32>, tensor<2xf32>)\n"
      "    %1 = func.call @id(%0#0) : (tensor<2xf32>) -> tensor<2xf32>\n"
      "    stablehlo.custom_call @check.expect_close(%1, %0#1) {has_side_effect = true} : (tensor<2xf32>, tensor<2xf32>) -> ()\n"
      "    %2 = stablehlo.custom_call @foo(%1) {api_version = 2 : i32, backend_config = \"x\"} : (tensor<2xf32>) -> tensor<2xf32>\n"
      "    return %2 : tensor<2xf32>\n"
      "  }\n"
      "  func.func private @inputs() -> (tensor<2xf32>, tensor<2xf32>) {\n"
      "    %cst = stablehlo.constant dense<[1.0, 2.0]> : tensor<2xf32>\n"
      "    return %cst, %cst : tensor<2xf32>, tensor<2xf32>\n"
      "  }\n"
      "  func.func private @id(%arg0: tensor<2xf32>) -> tensor<2xf32> {\n"
      "    return %arg0 : tensor<2xf32>\n"
      "  }\n"
      "}\n";
  const char *generic =
      "module @m {\n"
      "  func.func public @main() -> (tensor<2xf32> {jax.result_info = \"\"}) {\n"
      "    %0:2 = \"func.call\"() <{callee = @inputs}> : () -> (tensor<2xf32>, tensor<2xf32>)\n"
      "    %1 = \"func.call\"(%0#0) <{callee = @id}> : (tensor<2xf32>) -> tensor<2xf32>\n"
      "    \"stablehlo.custom_call\"(%1, %0#1) <{call_target_name = \"check.expect_close\", has_side_effect = true}> : (tensor<2xf32>, tensor<2xf32>) -> ()\n"
      "    %2 = \"stablehlo.custom_call\"(%1) <{api_version = 2 : i32, backend_config = \"x\", call_target_name = \"foo\"}> : (tensor<2xf32>) -> tensor<2xf32>\n"
      "    \"func.return\"(%2) : (tensor<2xf32>) -> ()\n"
      "  }\n"
      "  \"func.func\"() <{function_type = () -> (tensor<2xf32>, tensor<2xf32>), sym_name = \"inputs\", sym_visibility = \"private\"}> ({\n"
      "    %cst = \"stablehlo.constant\"() <{value = dense<[1.0, 2.0]> : tensor<2xf32>}> : () -> tensor<2xf32>\n"
      "    \"func.return\"(%cst, %cst) : (tensor<2xf32>, tensor<2xf32>) -> ()\n"
      "  }) : () -> ()\n"
      "  func.func private @id(%arg0: tensor<2xf32>) -> tensor<2xf32> {\n"
      "    return %arg0 : tensor<2xf32>\n"
      "  }\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
  hs_module *m = parse_ok(pretty);
  CHECK(m && m->name && strcmp(m->name, "m") == 0);
  CHECK(m->n_funcs == 3 && m->funcs[0]->is_public && !m->funcs[1]->is_public);
  CHECK(hs_module_find_func(m, "id") == m->funcs[2]);
  const char *s;
  hs_op *cc = find_op(m->funcs[0]->body, "stablehlo.custom_call", 0);
  CHECK_OK(hs_op_get_string(cc, "call_target_name", true, NULL, &s));
  CHECK(strcmp(s, "check.expect_close") == 0);
  hs_op *call = find_op(m->funcs[0]->body, "func.call", 1);
  CHECK_OK(hs_op_get_string(call, "callee", true, NULL, &s));
  CHECK(strcmp(s, "id") == 0 && hs_op_attr(call, "callee")->kind == HS_ATTR_SYMBOL);
  hs_module_free(m);
}

HS_TEST(equiv_misc_ops) {
  const char *pretty =
      "func.func @main(%x: tensor<5x3xf32>, %st: tensor<2xui64>, %c: tensor<4xcomplex<f32>>) -> tensor<5x2xf32> {\n"
      "  %values, %indices = chlo.top_k(%x, k = 2) : tensor<5x3xf32> -> (tensor<5x2xf32>, tensor<5x2xi32>)\n"
      "  %0 = chlo.lgamma %values : tensor<5x2xf32> -> tensor<5x2xf32>\n"
      "  %1 = stablehlo.reduce_precision %0, format = e5m10 : tensor<5x2xf32>\n"
      "  %s, %o = stablehlo.rng_bit_generator %st, algorithm =  THREE_FRY : (tensor<2xui64>) -> (tensor<2xui64>, tensor<3xui64>)\n"
      "  %2 = stablehlo.fft %c, type =  FFT, length = [4] : (tensor<4xcomplex<f32>>) -> tensor<4xcomplex<f32>>\n"
      "  %3 = stablehlo.real %2 : (tensor<4xcomplex<f32>>) -> tensor<4xf32>\n"
      "  %4 = stablehlo.complex %3, %3 : tensor<4xcomplex<f32>>\n"
      "  %5 = chlo.next_after %1, %1 : tensor<5x2xf32>, tensor<5x2xf32> -> tensor<5x2xf32>\n"
      "  return %5 : tensor<5x2xf32>\n"
      "}\n";
  const char *generic =
      "func.func @main(%x: tensor<5x3xf32>, %st: tensor<2xui64>, %c: tensor<4xcomplex<f32>>) -> tensor<5x2xf32> {\n"
      "  %v:2 = \"chlo.top_k\"(%x) <{k = 2 : i64}> : (tensor<5x3xf32>) -> (tensor<5x2xf32>, tensor<5x2xi32>)\n"
      "  %0 = \"chlo.lgamma\"(%v#0) : (tensor<5x2xf32>) -> tensor<5x2xf32>\n"
      "  %1 = \"stablehlo.reduce_precision\"(%0) <{exponent_bits = 5 : i32, mantissa_bits = 10 : i32}> : (tensor<5x2xf32>) -> tensor<5x2xf32>\n"
      "  %r:2 = \"stablehlo.rng_bit_generator\"(%st) <{rng_algorithm = #stablehlo<rng_algorithm THREE_FRY>}> : (tensor<2xui64>) -> (tensor<2xui64>, tensor<3xui64>)\n"
      "  %2 = \"stablehlo.fft\"(%c) <{fft_length = array<i64: 4>, fft_type = #stablehlo<fft_type FFT>}> : (tensor<4xcomplex<f32>>) -> tensor<4xcomplex<f32>>\n"
      "  %3 = \"stablehlo.real\"(%2) : (tensor<4xcomplex<f32>>) -> tensor<4xf32>\n"
      "  %4 = \"stablehlo.complex\"(%3, %3) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xcomplex<f32>>\n"
      "  %5 = \"chlo.next_after\"(%1, %1) : (tensor<5x2xf32>, tensor<5x2xf32>) -> tensor<5x2xf32>\n"
      "  \"func.return\"(%5) : (tensor<5x2xf32>) -> ()\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
}

HS_TEST(equiv_check_ops) {
  const char *pretty =
      "func.func @t() {\n"
      "  %0 = stablehlo.constant dense<[1.0, 2.0]> : tensor<2xf32>\n"
      "  check.expect_eq %0, %0 : tensor<2xf32>, tensor<2xf32>\n"
      "  check.expect_almost_eq %0, %0 : tensor<2xf32>, tensor<2xf32>\n"
      "  check.expect_eq_const %0, dense<[1.0, 2.0]> : tensor<2xf32>\n"
      "  check.expect_almost_eq_const %0, dense<[1.0, 2.0]> : tensor<2xf32>\n"
      "  check.expect_close %0, %0, max_ulp_difference = 3, min_ulp_difference = 0 : tensor<2xf32>, tensor<2xf32>\n"
      "  check.expect_serialized_eq %0, probe_id = \"p\" : tensor<2xf32>\n"
      "  func.return\n"
      "}\n";
  const char *generic =
      "func.func @t() {\n"
      "  %0 = stablehlo.constant dense<[1.0, 2.0]> : tensor<2xf32>\n"
      "  \"check.expect_eq\"(%0, %0) : (tensor<2xf32>, tensor<2xf32>) -> ()\n"
      "  \"check.expect_almost_eq\"(%0, %0) : (tensor<2xf32>, tensor<2xf32>) -> ()\n"
      "  \"check.expect_eq_const\"(%0) {value = dense<[1.0, 2.0]> : tensor<2xf32>} : (tensor<2xf32>) -> ()\n"
      "  \"check.expect_almost_eq_const\"(%0) <{value = dense<[1.0, 2.0]> : tensor<2xf32>}> : (tensor<2xf32>) -> ()\n"
      "  \"check.expect_close\"(%0, %0) {max_ulp_difference = 3 : ui64, min_ulp_difference = 0 : ui64} : (tensor<2xf32>, tensor<2xf32>) -> ()\n"
      "  \"check.expect_serialized_eq\"(%0) {probe_id = \"p\"} : (tensor<2xf32>) -> ()\n"
      "  \"func.return\"() : () -> ()\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
}

HS_TEST(equiv_tuple_token_composite) {
  const char *pretty =
      "func.func @main(%a: tensor<f32>, %t: !stablehlo.token) -> tensor<f32> {\n"
      "  %0 = stablehlo.tuple %a, %t : tuple<tensor<f32>, !stablehlo.token>\n"
      "  %1 = stablehlo.get_tuple_element %0[0] : (tuple<tensor<f32>, !stablehlo.token>) -> tensor<f32>\n"
      "  %2:2 = stablehlo.optimization_barrier %1, %t : tensor<f32>, !stablehlo.token\n"
      "  %3 = stablehlo.after_all %t, %2#1 : !stablehlo.token\n"
      "  %4 = stablehlo.composite \"my.op\" %2#0 {composite_attributes = {k = 1 : i64}, decomposition = @dec} : (tensor<f32>) -> tensor<f32>\n"
      "  %5 = stablehlo.cholesky %4, lower = true : tensor<f32>\n"
      "  return %5 : tensor<f32>\n"
      "}\n"
      "func.func private @dec(%a: tensor<f32>) -> tensor<f32> {\n"
      "  return %a : tensor<f32>\n"
      "}\n";
  const char *generic =
      "func.func @main(%a: tensor<f32>, %t: !stablehlo.token) -> tensor<f32> {\n"
      "  %0 = \"stablehlo.tuple\"(%a, %t) : (tensor<f32>, !stablehlo.token) -> tuple<tensor<f32>, !stablehlo.token>\n"
      "  %1 = \"stablehlo.get_tuple_element\"(%0) <{index = 0 : i32}> : (tuple<tensor<f32>, !stablehlo.token>) -> tensor<f32>\n"
      "  %2:2 = \"stablehlo.optimization_barrier\"(%1, %t) : (tensor<f32>, !stablehlo.token) -> (tensor<f32>, !stablehlo.token)\n"
      "  %3 = \"stablehlo.after_all\"(%t, %2#1) : (!stablehlo.token, !stablehlo.token) -> !stablehlo.token\n"
      "  %4 = \"stablehlo.composite\"(%2#0) <{composite_attributes = {k = 1 : i64}, decomposition = @dec, name = \"my.op\"}> : (tensor<f32>) -> tensor<f32>\n"
      "  %5 = \"stablehlo.cholesky\"(%4) <{lower = true}> : (tensor<f32>) -> tensor<f32>\n"
      "  \"func.return\"(%5) : (tensor<f32>) -> ()\n"
      "}\n"
      "func.func private @dec(%a: tensor<f32>) -> tensor<f32> {\n"
      "  return %a : tensor<f32>\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
}

HS_TEST(equiv_if_case) {
  const char *pretty =
      "func.func @main(%p: tensor<i1>, %i: tensor<i32>, %a: tensor<f32>) -> tensor<f32> {\n"
      "  %0 = stablehlo.if %p -> (tensor<f32>) {\n"
      "    %1 = stablehlo.multiply %a, %a : tensor<f32>\n"
      "    stablehlo.return %1 : tensor<f32>\n"
      "  } else {\n"
      "    stablehlo.return %a : tensor<f32>\n"
      "  }\n"
      "  %2 = stablehlo.case %i -> tensor<f32> {\n"
      "    stablehlo.return %0 : tensor<f32>\n"
      "  }, {\n"
      "    stablehlo.return %a : tensor<f32>\n"
      "  }\n"
      "  return %2 : tensor<f32>\n"
      "}\n";
  const char *generic =
      "func.func @main(%p: tensor<i1>, %i: tensor<i32>, %a: tensor<f32>) -> tensor<f32> {\n"
      "  %0 = \"stablehlo.if\"(%p) ({\n"
      "    %1 = stablehlo.multiply %a, %a : tensor<f32>\n"
      "    stablehlo.return %1 : tensor<f32>\n"
      "  }, {\n"
      "    stablehlo.return %a : tensor<f32>\n"
      "  }) : (tensor<i1>) -> tensor<f32>\n"
      "  %2 = \"stablehlo.case\"(%i) ({\n"
      "    stablehlo.return %0 : tensor<f32>\n"
      "  }, {\n"
      "    stablehlo.return %a : tensor<f32>\n"
      "  }) : (tensor<i32>) -> tensor<f32>\n"
      "  return %2 : tensor<f32>\n"
      "}\n";
  CHECK(same_ir(pretty, generic));
}

/* The same JAX program printed by JAX (pretty, with locations) and by MLIR's
 * generic printer (tests/data/parse/jax_features_*.mlir, generated with
 * jax.jit(f).lower(...).as_text(debug_info=True) and
 * .compiler_ir("stablehlo").operation.get_asm(print_generic_op_form=True)). */
HS_TEST(equiv_jax_pretty_and_generic_files) {
  size_t la, lb;
  char *a = read_whole(hs_test_source_path("tests/data/parse/jax_features_debug.mlir"), &la);
  char *b = read_whole(hs_test_source_path("tests/data/parse/jax_features_generic.mlir"), &lb);
  CHECK(a && b);
  hs_module *ma = NULL, *mb = NULL;
  hs_status *s1 = parse_exact(a, la, "jax_features_debug.mlir", &ma);
  hs_status *s2 = parse_exact(b, lb, "jax_features_generic.mlir", &mb);
  free(a);
  free(b);
  CHECK_OK(s1);
  CHECK_OK(s2);
  char why[512] = "";
  bool same = module_eq(ma, mb, why, sizeof why);
  if (!same) fprintf(stderr, "IR differs: %s\n", why);
  CHECK(ma->n_funcs > 5);
  hs_module_free(ma);
  hs_module_free(mb);
  CHECK(same);
}

/* ------------------------------------------------------- canonical values */

HS_TEST(canonical_values) {
  const char *text =
      "func.func @main(%a: tensor<4x6xf32>, %b: tensor<f32>) -> tensor<2x2xf32> {\n"
      "  %0 = stablehlo.slice %a [0:2, 1:6:3] : (tensor<4x6xf32>) -> tensor<2x2xf32>\n"
      "  %1 = stablehlo.pad %0, %b, low = [1, 0], high = [-1, 0], interior = [0, 0] : (tensor<2x2xf32>, tensor<f32>) -> tensor<2x2xf32>\n"
      "  %2 = stablehlo.compare  EQ, %1, %1 : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xi1>\n"
      "  %3 = \"stablehlo.reduce_window\"(%1, %b) <{padding = dense<[[0, 1], [0, 0]]> : tensor<2x2xi64>, window_dimensions = array<i64: 2, 1>}> ({\n"
      "  ^bb0(%x: tensor<f32>, %y: tensor<f32>):\n"
      "    %m = stablehlo.maximum %x, %y : tensor<f32>\n"
      "    stablehlo.return %m : tensor<f32>\n"
      "  }) : (tensor<2x2xf32>, tensor<f32>) -> tensor<2x2xf32>\n"
      "  %4 = \"stablehlo.sort\"(%3) <{dimension = 0 : i64, is_stable = true}> ({\n"
      "  ^bb0(%x: tensor<f32>, %y: tensor<f32>):\n"
      "    %c = stablehlo.compare  GT, %x, %y,  FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>\n"
      "    stablehlo.return %c : tensor<i1>\n"
      "  }) : (tensor<2x2xf32>) -> tensor<2x2xf32>\n"
      "  %5 = \"stablehlo.broadcast_in_dim\"(%b) {broadcast_dimensions = dense<[]> : tensor<0xi64>} : (tensor<f32>) -> tensor<2x2xf32>\n"
      "  %6 = \"stablehlo.transpose\"(%5) {permutation = dense<[1, 0]> : tensor<2xi32>} : (tensor<2x2xf32>) -> tensor<2x2xf32>\n"
      "  return %6 : tensor<2x2xf32>\n"
      "}\n";
  hs_module *m = parse_ok(text);
  CHECK(m);
  hs_func *f = m->funcs[0];
  hs_op *sl = find_op(f->body, "stablehlo.slice", 0);
  const int64_t st[] = {0, 1}, li[] = {2, 6}, sd[] = {1, 3};
  CHECK(ints_are(sl, "start_indices", st, 2));
  CHECK(ints_are(sl, "limit_indices", li, 2));
  CHECK(ints_are(sl, "strides", sd, 2));
  hs_op *pad = find_op(f->body, "stablehlo.pad", 0);
  const int64_t lo[] = {1, 0}, hi[] = {-1, 0};
  CHECK(ints_are(pad, "edge_padding_low", lo, 2));
  CHECK(ints_are(pad, "edge_padding_high", hi, 2));
  hs_op *cmp = find_op(f->body, "stablehlo.compare", 0);
  const char *e;
  CHECK_OK(hs_op_get_enum(cmp, "comparison_direction", true, NULL, &e));
  CHECK(strcmp(e, "EQ") == 0);
  CHECK(strcmp(hs_op_attr(cmp, "comparison_direction")->tag, "comparison_direction") == 0);
  CHECK_OK(hs_op_get_enum(cmp, "compare_type", false, "NOTYPE", &e));
  CHECK(strcmp(e, "NOTYPE") == 0);
  hs_op *rw = find_op(f->body, "stablehlo.reduce_window", 0);
  const int64_t pw[] = {0, 1, 0, 0}, wd[] = {2, 1};
  CHECK(ints_are(rw, "padding", pw, 4));
  CHECK(ints_are(rw, "window_dimensions", wd, 2));
  const int64_t *none;
  int nn;
  CHECK_OK(hs_op_get_ints(rw, "window_strides", false, &none, &nn));
  CHECK(nn == 0);
  hs_op *so = find_op(f->body, "stablehlo.sort", 0);
  int64_t dim;
  CHECK_OK(hs_op_get_int(so, "dimension", true, 0, &dim));
  CHECK(dim == 0 && hs_op_attr(so, "is_stable")->u.b);
  hs_op *bd = find_op(f->body, "stablehlo.broadcast_in_dim", 0);
  CHECK(ints_are(bd, "broadcast_dimensions", NULL, 0));
  hs_op *tr = find_op(f->body, "stablehlo.transpose", 0);
  const int64_t perm[] = {1, 0};
  CHECK(ints_are(tr, "permutation", perm, 2)); /* i32 dense widened to i64 */
  /* Reader errors name the op, its location and the attribute. */
  hs_status *s = hs_op_get_int(sl, "nope", true, 0, &dim);
  CHECK(s && strstr(hs_status_message(s), "t.mlir:2:3: 'stablehlo.slice'") &&
        strstr(hs_status_message(s), "nope"));
  hs_status_free(s);
  s = hs_op_get_int(sl, "start_indices", true, 0, &dim);
  CHECK(s && has_location_prefix(hs_status_message(s), "t.mlir"));
  hs_status_free(s);
  char buf[64];
  CHECK(strcmp(hs_type_str(&sl->results[0]->type, buf, sizeof buf), "tensor<2x2xf32>") == 0);
  CHECK(strcmp(hs_type_str(&f->arg_types[1], buf, sizeof buf), "tensor<f32>") == 0);
  /* Value ids are dense per function, block arguments first. */
  CHECK(f->body->blocks[0]->args[0]->id == 0 && f->body->blocks[0]->args[1]->id == 1);
  CHECK(sl->results[0]->id == 2 && sl->loc.line == 2 && sl->loc.col == 3);
  hs_module_free(m);
}

static const hs_attr *const_value(hs_func *f, int nth) {
  hs_op *op = find_op(f->body, "stablehlo.constant", nth);
  return op ? hs_op_attr(op, "value") : NULL;
}

HS_TEST(constants_decode) {
  size_t len;
  char *text = read_whole(hs_test_source_path("tests/data/parse/constants.mlir"), &len);
  CHECK(text);
  hs_module *m = NULL;
  hs_status *st = parse_exact(text, len, "constants.mlir", &m);
  free(text);
  CHECK_OK(st);
  hs_func *f = m->funcs[0];
  const hs_attr *a = const_value(f, 0);
  const float *fv = a->u.dense.data;
  CHECK(a->u.dense.nbytes == 16 && fv[0] == 1.0f && fv[1] == -2.5f && fv[2] == 32.5f && isnan(fv[3]));
  a = const_value(f, 1);
  const uint8_t *bv = a->u.dense.data;
  CHECK(a->u.dense.nbytes == 3 && bv[0] == 1 && bv[1] == 0 && bv[2] == 1);
  a = const_value(f, 2);
  fv = a->u.dense.data;
  CHECK(a->u.dense.type.dtype == HS_C64 && fv[0] == 1.0f && fv[1] == 2.0f && fv[2] == -3.0f &&
        isinf(fv[3]));
  a = const_value(f, 3);
  bv = a->u.dense.data;
  CHECK(bv[0] == 0 && bv[1] == 255 && bv[2] == 127 && bv[3] == 128);
  a = const_value(f, 4);
  const uint16_t *hv = a->u.dense.data;
  CHECK(hv[0] == 0x3F80 && hv[1] == 0xBF00);
  a = const_value(f, 5);
  hv = a->u.dense.data;
  CHECK(hv[0] == 0x3C00 && hv[1] == 0xC000);
  a = const_value(f, 6);
  CHECK(*(const int64_t *)a->u.dense.data == INT64_MIN);
  a = const_value(f, 7);
  CHECK(a->u.dense.nbytes == 0 && a->u.dense.type.shape.rank == 2);
  a = const_value(f, 8);
  const double *dv = a->u.dense.data;
  CHECK(isinf(dv[0]) && dv[0] > 0 && isnan(dv[1]));
  a = const_value(f, 9);
  const int64_t *iv = a->u.dense.data;
  CHECK(iv[0] == INT64_MAX && iv[1] == -1 && iv[2] == 0);
  hs_module_free(m);
}

HS_TEST(splats_and_hex) {
  const char *text =
      "func.func @main() -> (tensor<3x2xf32>, tensor<4xi16>, tensor<2xi1>, tensor<2xcomplex<f64>>) {\n"
      "  %0 = stablehlo.constant dense<0xFF800000> : tensor<3x2xf32>\n"
      "  %1 = stablehlo.constant dense<\"0xFEFF\"> : tensor<4xi16>\n"
      "  %2 = stablehlo.constant dense<\"0x01\"> : tensor<2xi1>\n"
      "  %3 = stablehlo.constant dense<(1.5, -2.0)> : tensor<2xcomplex<f64>>\n"
      "  return %0, %1, %2, %3 : tensor<3x2xf32>, tensor<4xi16>, tensor<2xi1>, tensor<2xcomplex<f64>>\n"
      "}\n";
  hs_module *m = parse_ok(text);
  CHECK(m);
  hs_func *f = m->funcs[0];
  const float *fv = const_value(f, 0)->u.dense.data;
  for (int i = 0; i < 6; i++) CHECK(isinf(fv[i]) && fv[i] < 0);
  const int16_t *sv = const_value(f, 1)->u.dense.data;
  for (int i = 0; i < 4; i++) CHECK(sv[i] == -2);
  const uint8_t *bv = const_value(f, 2)->u.dense.data;
  CHECK(bv[0] == 1 && bv[1] == 1);
  const double *dv = const_value(f, 3)->u.dense.data;
  CHECK(dv[0] == 1.5 && dv[1] == -2.0 && dv[2] == 1.5 && dv[3] == -2.0);
  hs_module_free(m);
}

HS_TEST(attribute_kinds) {
  const char *text =
      "#alias = {inner = [1, 2]}\n"
      "func.func @main(%a: tensor<f32>) -> tensor<f32> {\n"
      "  %0 = \"x.op\"(%a) {u, b = false, i = -7 : i64, h = 0x10 : i32, f = 1.5e+00 : f32, hf = 0x7FC00000 : f32,\n"
      "      s = \"a\\\"b\\n\", sym = @f, e = #stablehlo<comparison_direction GE>, e2 = #stablehlo.rng_distribution<UNIFORM>,\n"
      "      arr = [1, \"x\"], ints = array<i32: 3, 4>, bools = array<i1: true, false>, d = {k = 1}, t = tensor<2xf32>,\n"
      "      g = #stablehlo.gather<offset_dims = [1], index_vector_dim = 1>, al = #alias,\n"
      "      o = #sdy.sharding<@mesh, [{}, {\"x\"}]>, fl = array<f32: 1.0, 2.5>, emp = []} : (tensor<f32>) -> tensor<f32>\n"
      "  return %0 : tensor<f32>\n"
      "}\n";
  hs_module *m = parse_ok(text);
  CHECK(m);
  hs_op *op = find_op(m->funcs[0]->body, "x.op", 0);
  CHECK(op);
  CHECK(hs_op_attr(op, "u")->kind == HS_ATTR_UNIT);
  CHECK(hs_op_attr(op, "b")->kind == HS_ATTR_BOOL && !hs_op_attr(op, "b")->u.b);
  CHECK(hs_op_attr(op, "i")->kind == HS_ATTR_INT && hs_op_attr(op, "i")->u.i == -7);
  CHECK(hs_op_attr(op, "h")->u.i == 16);
  CHECK(hs_op_attr(op, "f")->kind == HS_ATTR_FLOAT && hs_op_attr(op, "f")->u.f == 1.5);
  CHECK(hs_op_attr(op, "hf")->kind == HS_ATTR_FLOAT && isnan(hs_op_attr(op, "hf")->u.f));
  CHECK(hs_op_attr(op, "s")->kind == HS_ATTR_STRING && strcmp(hs_op_attr(op, "s")->u.str.s, "a\"b\n") == 0);
  CHECK(hs_op_attr(op, "sym")->kind == HS_ATTR_SYMBOL && strcmp(hs_op_attr(op, "sym")->u.str.s, "f") == 0);
  const hs_attr *e = hs_op_attr(op, "e");
  CHECK(e->kind == HS_ATTR_ENUM && strcmp(e->tag, "comparison_direction") == 0 && strcmp(e->u.str.s, "GE") == 0);
  e = hs_op_attr(op, "e2");
  CHECK(e->kind == HS_ATTR_ENUM && strcmp(e->tag, "rng_distribution") == 0 && strcmp(e->u.str.s, "UNIFORM") == 0);
  CHECK(hs_op_attr(op, "arr")->kind == HS_ATTR_ARRAY && hs_op_attr(op, "arr")->u.array.n == 2);
  const int64_t i34[] = {3, 4}, b10[] = {1, 0};
  CHECK(ints_are(op, "ints", i34, 2));
  CHECK(ints_are(op, "bools", b10, 2));
  CHECK(hs_op_attr(op, "d")->kind == HS_ATTR_DICT);
  CHECK(hs_op_attr(op, "t")->kind == HS_ATTR_TYPE && hs_op_attr(op, "t")->u.type.shape.dims[0] == 2);
  const hs_attr *g = hs_op_attr(op, "g");
  CHECK(g->kind == HS_ATTR_STRUCT && strcmp(g->tag, "stablehlo.gather") == 0);
  int64_t ivd;
  CHECK_OK(hs_struct_get_int(op, g, "index_vector_dim", true, 0, &ivd));
  CHECK(ivd == 1);
  const int64_t *cs;
  int ncs;
  CHECK_OK(hs_struct_get_ints(op, g, "collapsed_slice_dims", false, &cs, &ncs));
  CHECK(ncs == 0);
  CHECK(hs_op_attr(op, "al")->kind == HS_ATTR_DICT);
  CHECK(hs_op_attr(op, "o")->kind == HS_ATTR_OPAQUE &&
        strncmp(hs_op_attr(op, "o")->u.str.s, "#sdy.sharding<", 14) == 0);
  CHECK(hs_op_attr(op, "fl")->kind == HS_ATTR_ARRAY && hs_op_attr(op, "fl")->u.array.items[1]->u.f == 2.5);
  CHECK(ints_are(op, "emp", NULL, 0));
  hs_module_free(m);
}

/* ------------------------------------------------- files on disk */

typedef void (*file_fn)(const char *path, const char *name, void *ctx);

static int for_each_mlir(const char *dir, file_fn fn, void *ctx) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  char **names = NULL;
  int cap = 0;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 6 || strcmp(e->d_name + l - 5, ".mlir") != 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, (size_t)cap * sizeof *names);
      if (!nn) break;
      names = nn;
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  for (int i = 0; i < n; i++) {
    char path[4096];
    int len = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (len > 0 && (size_t)len < sizeof path) fn(path, names[i], ctx);
    free(names[i]);
  }
  free(names);
  return n;
}

typedef struct conf_ctx {
  int ok, failed, unsupported, funcs, ops;
  double seconds;
  size_t bytes;
} conf_ctx;

static int count_ops(const hs_region *r) {
  int n = 0;
  const hs_block *b = r->blocks[0];
  for (int i = 0; i < b->n_ops; i++) {
    n++;
    for (int k = 0; k < b->ops[i]->n_regions; k++) n += count_ops(b->ops[i]->regions[k]);
  }
  return n;
}

static void conf_one(const char *path, const char *name, void *vctx) {
  conf_ctx *c = vctx;
  size_t len;
  char *text = read_whole(path, &len);
  if (!text) {
    c->failed++;
    return;
  }
  hs_module **parts = NULL;
  int n = 0;
  clock_t t0 = clock();
  hs_status *st = hs_parse_parts(text, len, name, &parts, &n);
  c->seconds += (double)(clock() - t0) / CLOCKS_PER_SEC;
  c->bytes += len;
  free(text);
  if (st) {
    if (hs_status_code_of(st) == HS_UNIMPLEMENTED) {
      c->unsupported++;
    } else {
      c->failed++;
      if (c->failed <= 10) fprintf(stderr, "conformance parse failure: %s\n", hs_status_message(st));
    }
    hs_status_free(st);
    return;
  }
  c->ok++;
  for (int i = 0; i < n; i++) {
    c->funcs += parts[i]->n_funcs;
    for (int k = 0; k < parts[i]->n_funcs; k++) c->ops += count_ops(parts[i]->funcs[k]->body);
  }
  hs_parse_parts_free(parts, n);
}

HS_TEST(conformance_folder_parses) {
  const char *dirs[2];
  char buf[4096];
  const char *src = getenv("HS_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/../shared/conformance/stablehlo-testdata", src ? src : ".");
  dirs[0] = buf;
  dirs[1] = "/work/shared/conformance/stablehlo-testdata";
  conf_ctx c;
  memset(&c, 0, sizeof c);
  int n = -1;
  for (int i = 0; i < 2 && n < 0; i++) n = for_each_mlir(dirs[i], conf_one, &c);
  if (n < 0) {
    printf("     (conformance folder not found: skipped)\n");
    return;
  }
  printf("     conformance: %d files, %d parsed, %d unsupported, %d failed; %d functions, %d ops; "
         "%.1f MB in %.2f s\n",
         n, c.ok, c.unsupported, c.failed, c.funcs, c.ops, (double)c.bytes / 1e6, c.seconds);
  CHECK(c.failed == 0);
  CHECK(c.ok + c.unsupported == n);
}

typedef struct bad_ctx {
  int files, good_errors;
} bad_ctx;

static void bad_one(const char *path, const char *name, void *vctx) {
  bad_ctx *c = vctx;
  c->files++;
  size_t len;
  char *text = read_whole(path, &len);
  if (!text) return;
  char *copy = malloc(len ? len : 1);
  memcpy(copy, text, len);
  free(text);
  hs_module **parts = NULL;
  int n = 0;
  hs_status *st = hs_parse_parts(copy, len, path, &parts, &n);
  free(copy);
  if (!st) {
    fprintf(stderr, "malformed file parsed without error: %s\n", name);
    hs_parse_parts_free(parts, n);
    return;
  }
  if (has_location_prefix(hs_status_message(st), path))
    c->good_errors++;
  else
    fprintf(stderr, "error without file:line:col: %s\n", hs_status_message(st));
  hs_status_free(st);
}

HS_TEST(malformed_corpus) {
  bad_ctx c = {0, 0};
  int n = for_each_mlir(hs_test_source_path("tests/data/malformed"), bad_one, &c);
  printf("     malformed: %d files, %d rejected with a located error\n", n, c.good_errors);
  CHECK(n >= 30);
  CHECK(c.good_errors == n);
}

typedef struct good_ctx {
  int files, ok;
} good_ctx;

static void good_one(const char *path, const char *name, void *vctx) {
  good_ctx *c = vctx;
  c->files++;
  size_t len;
  char *text = read_whole(path, &len);
  if (!text) return;
  hs_module **parts = NULL;
  int n = 0;
  hs_status *st = hs_parse_parts(text, len, name, &parts, &n);
  free(text);
  if (st) {
    fprintf(stderr, "%s\n", hs_status_message(st));
    hs_status_free(st);
    return;
  }
  c->ok++;
  hs_parse_parts_free(parts, n);
}

HS_TEST(good_inputs) {
  good_ctx c = {0, 0};
  int n = for_each_mlir(hs_test_source_path("tests/data/parse"), good_one, &c);
  CHECK(n >= 5);
  CHECK(c.ok == n);
}

HS_TEST(specific_errors) {
  struct {
    const char *text;
    hs_status_code code;
    const char *where, *what;
  } cases[] = {
      {"func.func @f(%a: tensor<2xf8E4M3FN>) -> tensor<2xf8E4M3FN> {\n  return %a : tensor<2xf8E4M3FN>\n}\n",
       HS_UNIMPLEMENTED, "e.mlir:1:18: ", "unsupported element type f8E4M3FN"},
      {"func.func @f(%a: tensor<?x2xf32>) -> tensor<2xf32> {\n  return %a : tensor<2xf32>\n}\n",
       HS_UNIMPLEMENTED, "e.mlir:1:18: ", "dynamic"},
      {"func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.add %a, %zz : tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
       HS_INVALID_ARGUMENT, "e.mlir:2:26: ", "undefined value %zz"},
      {"func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.negate %a : tensor<2xi32>\n  return %a : tensor<2xf32>\n}\n",
       HS_INVALID_ARGUMENT, "e.mlir:2:25: ", "type mismatch"},
      {"func.func @f() -> tensor<2xf32> {\n  %0 = stablehlo.constant dense<\"0x0000\"> : tensor<2xf32>\n  return %0 : tensor<2xf32>\n}\n",
       HS_INVALID_ARGUMENT, "e.mlir:2:33: ", "hex constant has 2 bytes, expected 8"},
      {"func.func @f() -> tensor<2xf32> {\n  %0 = stablehlo.constant dense<1.0> : tensor<4294967296x4294967296xf32>\n  return %0 : tensor<2xf32>\n}\n",
       HS_INVALID_ARGUMENT, "e.mlir:2:", "2^40"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hs_module *m = NULL;
    hs_status *st = parse_exact(cases[i].text, strlen(cases[i].text), "e.mlir", &m);
    CHECK_MSG(st, "case %zu parsed", i);
    const char *msg = hs_status_message(st);
    bool ok = hs_status_code_of(st) == cases[i].code &&
              strncmp(msg, cases[i].where, strlen(cases[i].where)) == 0 && strstr(msg, cases[i].what);
    if (!ok) fprintf(stderr, "case %zu: %s (%s)\n", i, msg, hs_status_code_name(hs_status_code_of(st)));
    hs_status_free(st);
    CHECK(ok);
  }
}

HS_TEST(deep_nesting_is_refused) {
  /* 5000 nested regions and 100000 nested brackets: an error, not a stack overflow. */
  size_t cap = 1 << 21;
  char *buf = malloc(cap);
  CHECK(buf);
  size_t n = 0;
  n += (size_t)snprintf(buf + n, cap - n, "func.func @f(%%a: tensor<i1>) -> tensor<i1> {\n");
  for (int i = 0; i < 5000; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%%r%d = \"stablehlo.if\"(%%a) ({\n", i);
  hs_module *m = NULL;
  hs_status *st = parse_exact(buf, n, "deep.mlir", &m);
  CHECK(st && hs_status_code_of(st) == HS_RESOURCE_EXHAUSTED &&
        has_location_prefix(hs_status_message(st), "deep.mlir"));
  hs_status_free(st);
  n = (size_t)snprintf(buf, cap, "func.func @f() attributes {x = ");
  for (int i = 0; i < 100000; i++) buf[n++] = '[';
  st = parse_exact(buf, n, "deep.mlir", &m);
  CHECK(st && has_location_prefix(hs_status_message(st), "deep.mlir"));
  hs_status_free(st);
  free(buf);
}

HS_TEST(parts_keep_line_numbers) {
  const char *text =
      "func.func @a() {\n"
      "  func.return\n"
      "}\n"
      "\n"
      "// -----\n"
      "\n"
      "func.func @b(%x: tensor<f32>) -> tensor<f32> {\n"
      "  return %x : tensor<f32>\n"
      "}\n"
      "// -----\n"
      "// only a comment here\n"
      "// -----\n"
      "func.func @c(%x: tensor<f32>) -> tensor<f32> {\n"
      "  %0 = stablehlo.abs %x : tensor<f32>\n"
      "  return %0 : tensor<f32>\n"
      "}\n";
  hs_module **parts = NULL;
  int n = 0;
  CHECK_OK(hs_parse_parts(text, strlen(text), "p.mlir", &parts, &n));
  CHECK(n == 3);
  CHECK(strcmp(parts[1]->funcs[0]->name, "b") == 0 && parts[1]->funcs[0]->loc.line == 7);
  hs_op *abs_op = find_op(parts[2]->funcs[0]->body, "stablehlo.abs", 0);
  CHECK(abs_op && abs_op->loc.line == 14 && abs_op->loc.col == 3);
  hs_parse_parts_free(parts, n);
  /* An error in a later part reports the line in the whole file. */
  const char *bad =
      "func.func @a() {\n  func.return\n}\n// -----\nfunc.func @b() {\n  %0 = stablehlo.abs %nope : tensor<f32>\n  func.return\n}\n";
  hs_status *st = hs_parse_parts(bad, strlen(bad), "p.mlir", &parts, &n);
  CHECK(st && strncmp(hs_status_message(st), "p.mlir:6:22: ", 13) == 0);
  hs_status_free(st);
  /* hs_parse_module refuses two modules in one part. */
  const char *two = "module {\n  func.func @a() {\n    func.return\n  }\n}\nmodule {\n}\n";
  hs_module *m = NULL;
  st = parse_exact(two, strlen(two), "two.mlir", &m);
  CHECK(st && strncmp(hs_status_message(st), "two.mlir:6:1: ", 14) == 0);
  hs_status_free(st);
}

/* Every prefix of a good file, and many byte-level mutations, parsed from
 * exact-size buffers: errors are fine, crashes and overreads are not. */
HS_TEST(truncations_and_mutations_never_crash) {
  size_t len;
  char *text = read_whole(hs_test_source_path("tests/data/parse/misc_ops.mlir"), &len);
  CHECK(text);
  int errors = 0;
  for (size_t cut = 0; cut <= len; cut += (cut < 400 ? 1 : 7)) {
    hs_module *m = NULL;
    hs_status *st = parse_exact(text, cut, "cut.mlir", &m);
    if (st) {
      errors++;
      CHECK_MSG(has_location_prefix(hs_status_message(st), "cut.mlir"), "%s", hs_status_message(st));
      hs_status_free(st);
    } else {
      hs_module_free(m);
    }
  }
  CHECK(errors > 0);
  uint32_t seed = 12345;
  char *mut = malloc(len);
  CHECK(mut);
  static const char alphabet[] = "%@#!^()[]{}<>,:=-x0123456789\"\\ \nabcfi.";
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(mut, text, len);
    int edits = 1 + iter % 4;
    for (int e = 0; e < edits; e++) {
      seed = seed * 1103515245u + 12345u;
      size_t pos = (seed >> 8) % len;
      seed = seed * 1103515245u + 12345u;
      mut[pos] = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
    }
    hs_module *m = NULL;
    hs_status *st = parse_exact(mut, len, "mut.mlir", &m);
    if (st) {
      CHECK_MSG(has_location_prefix(hs_status_message(st), "mut.mlir"), "%s", hs_status_message(st));
      hs_status_free(st);
    } else {
      hs_module_free(m);
    }
  }
  free(mut);
  free(text);
}

HS_TEST(large_hex_constants_are_fast) {
  /* ~48 MB of text: 6 constants of 2M f32 each. */
  const int n_const = 6, numel = 2 * 1024 * 1024;
  size_t cap = (size_t)n_const * ((size_t)numel * 8 + 256) + 4096;
  char *buf = malloc(cap);
  CHECK(buf);
  size_t n = (size_t)snprintf(buf, cap, "module @big {\n  func.func @main() -> tensor<%dxf32> {\n", numel);
  static const char hexd[] = "0123456789ABCDEF";
  for (int c = 0; c < n_const; c++) {
    n += (size_t)snprintf(buf + n, cap - n, "    %%c%d = stablehlo.constant dense<\"0x", c);
    for (int i = 0; i < numel; i++) {
      float v = (float)(i % 1000) * 0.5f + (float)c;
      uint32_t bits;
      memcpy(&bits, &v, 4);
      for (int b = 0; b < 4; b++) {
        uint8_t byte = (uint8_t)(bits >> (8 * b));
        buf[n++] = hexd[byte >> 4];
        buf[n++] = hexd[byte & 15];
      }
    }
    n += (size_t)snprintf(buf + n, cap - n, "\"> : tensor<%dxf32>\n", numel);
  }
  n += (size_t)snprintf(buf + n, cap - n, "    return %%c%d : tensor<%dxf32>\n  }\n}\n", n_const - 1, numel);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  hs_module *m = NULL;
  hs_status *st = hs_parse_module(buf, n, "big.mlir", &m);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  printf("     parsed %.1f MB of hex constants in %.3f s (%.0f MB/s)\n", (double)n / 1e6, s,
         (double)n / 1e6 / s);
  free(buf);
  CHECK_OK(st);
  const hs_attr *v = const_value(m->funcs[0], 3);
  const float *fv = v->u.dense.data;
  CHECK(fv[0] == 3.0f && fv[7] == 6.5f && fv[numel - 1] == (float)((numel - 1) % 1000) * 0.5f + 3.0f);
  hs_module_free(m);
  CHECK(s < 20.0);
}

HS_TEST(splat_limit) {
  hs_parse_set_max_splat_bytes(1 << 20);
  const char *text =
      "func.func @f() -> tensor<1024x1024xf32> {\n"
      "  %0 = stablehlo.constant dense<0.0> : tensor<1024x1024xf32>\n"
      "  return %0 : tensor<1024x1024xf32>\n"
      "}\n";
  hs_module *m = NULL;
  hs_status *st = parse_exact(text, strlen(text), "s.mlir", &m);
  hs_parse_set_max_splat_bytes((size_t)16 << 30);
  CHECK(st && hs_status_code_of(st) == HS_RESOURCE_EXHAUSTED);
  hs_status_free(st);
  CHECK_OK(parse_exact(text, strlen(text), "s.mlir", &m));
  hs_module_free(m);
}

int main(void) {
  HS_RUN(equiv_basic_ops);
  HS_RUN(equiv_reduce_applies);
  HS_RUN(equiv_reduce_reducer);
  HS_RUN(equiv_while);
  HS_RUN(equiv_convolution);
  HS_RUN(equiv_dot_general);
  HS_RUN(equiv_calls_and_custom_call);
  HS_RUN(equiv_misc_ops);
  HS_RUN(equiv_check_ops);
  HS_RUN(equiv_tuple_token_composite);
  HS_RUN(equiv_if_case);
  HS_RUN(equiv_jax_pretty_and_generic_files);
  HS_RUN(canonical_values);
  HS_RUN(constants_decode);
  HS_RUN(splats_and_hex);
  HS_RUN(attribute_kinds);
  HS_RUN(conformance_folder_parses);
  HS_RUN(malformed_corpus);
  HS_RUN(good_inputs);
  HS_RUN(specific_errors);
  HS_RUN(deep_nesting_is_refused);
  HS_RUN(parts_keep_line_numbers);
  HS_RUN(truncations_and_mutations_never_crash);
  HS_RUN(large_hex_constants_are_fast);
  HS_RUN(splat_limit);
  return hs_test_summary();
}
