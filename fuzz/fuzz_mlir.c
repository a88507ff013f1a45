/*
 * fuzz_mlir.c - libFuzzer target for the MLIR parser (src/runtime/parser.c).
 *
 * Arbitrary bytes go through hs_parse_parts and hs_parse_module, from a
 * buffer with nothing after it, so any read past `len` is an ASan report.
 * Beyond "no crash", it asserts the parser's contract: an error message
 * always starts with "fuzz.mlir:<line>:<col>: ", and a parsed module is
 * walked with the attribute readers kernels use.  Splat expansion is capped
 * low so a two-line input cannot ask for gigabytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_location(const hs_status *st) {
  const char *msg = hs_status_message(st);
  static const char prefix[] = "fuzz.mlir:";
  if (strncmp(msg, prefix, sizeof prefix - 1) != 0) abort();
  const char *s = msg + sizeof prefix - 1;
  for (int part = 0; part < 2; part++) {
    if (*s < '0' || *s > '9') abort();
    while (*s >= '0' && *s <= '9') s++;
    if (*s++ != ':') abort();
  }
  if (*s != ' ') abort();
}

static void walk_region(const hs_region *r, int depth);

static void touch_op(const hs_op *op, int depth) {
  for (int i = 0; i < op->n_attrs; i++) {
    const char *name = op->attrs[i].name;
    int64_t v;
    const int64_t *vs;
    int n;
    const char *s;
    hs_status *st = hs_op_get_int(op, name, true, 0, &v);
    hs_status_free(st);
    st = hs_op_get_ints(op, name, true, &vs, &n);
    if (!st)
      for (int k = 0; k < n; k++) v ^= vs[k];
    hs_status_free(st);
    hs_status_free(hs_op_get_enum(op, name, true, NULL, &s));
    hs_status_free(hs_op_get_string(op, name, true, NULL, &s));
    const hs_attr *a = op->attrs[i].value;
    if (a->kind == HS_ATTR_STRUCT || a->kind == HS_ATTR_DICT)
      for (int k = 0; k < a->u.dict.n; k++) {
        hs_status_free(hs_struct_get_int(op, a, a->u.dict.items[k].name, true, 0, &v));
        hs_status_free(hs_struct_get_ints(op, a, a->u.dict.items[k].name, true, &vs, &n));
      }
    if (a->kind == HS_ATTR_DENSE && a->u.dense.nbytes) {
      volatile unsigned char c = ((const unsigned char *)a->u.dense.data)[a->u.dense.nbytes - 1];
      (void)c;
    }
  }
  char buf[128];
  for (int i = 0; i < op->n_results; i++) hs_type_str(&op->results[i]->type, buf, sizeof buf);
  for (int i = 0; i < op->n_operands; i++)
    if (!op->operands[i]) abort();
  for (int i = 0; i < op->n_regions; i++) walk_region(op->regions[i], depth + 1);
}

static void walk_region(const hs_region *r, int depth) {
  if (depth > 300) abort();
  const hs_block *b = r->blocks[0];
  for (int i = 0; i < b->n_ops; i++) touch_op(b->ops[i], depth);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    hs_parse_set_max_splat_bytes((size_t)1 << 24);
    init = 1;
  }
  hs_module **parts = NULL;
  int n = 0;
  hs_status *st = hs_parse_parts((const char *)data, size, "fuzz.mlir", &parts, &n);
  if (st) {
    check_location(st);
    hs_status_free(st);
  } else {
    for (int i = 0; i < n; i++)
      for (int k = 0; k < parts[i]->n_funcs; k++) {
        const hs_func *f = parts[i]->funcs[k];
        if (hs_module_find_func(parts[i], f->name) == NULL) abort();
        walk_region(f->body, 0);
      }
    hs_parse_parts_free(parts, n);
  }
  hs_module *m = NULL;
  st = hs_parse_module((const char *)data, size, "fuzz.mlir", &m);
  if (st) {
    check_location(st);
    hs_status_free(st);
  } else {
    hs_module_free(m);
  }
  return 0;
}
