/*
 * ir.c - lookups and typed attribute readers over the parsed IR (see ir.h).
 *
 * Design: the parser already canonicalises attribute names and kinds, so the
 * readers here stay small and strict: they accept the few kinds a value can
 * legitimately arrive as (an INTS list, or an i64 DENSE that older exporters
 * print) and otherwise return an error naming the op, its location and the
 * attribute.  Kernels call these in `prepare`, never per element, so linear
 * searches over an op's handful of attributes are fine.
 */
#include "runtime/ir.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hs_module_free(hs_module *m) {
  if (!m) return;
  hs_arena a = m->arena; /* m itself lives in its arena */
  hs_arena_free(&a);
}

hs_func *hs_module_find_func(const hs_module *m, const char *name) {
  if (!m || !name) return NULL;
  for (int i = 0; i < m->n_funcs; i++)
    if (m->funcs[i]->name && strcmp(m->funcs[i]->name, name) == 0) return m->funcs[i];
  return NULL;
}

const hs_attr *hs_op_attr(const hs_op *op, const char *name) {
  if (!op || !name) return NULL;
  for (int i = 0; i < op->n_attrs; i++)
    if (strcmp(op->attrs[i].name, name) == 0) return op->attrs[i].value;
  return NULL;
}

const hs_attr *hs_dict_get(const hs_attr *d, const char *name) {
  if (!d || !name || (d->kind != HS_ATTR_DICT && d->kind != HS_ATTR_STRUCT)) return NULL;
  for (int i = 0; i < d->u.dict.n; i++)
    if (strcmp(d->u.dict.items[i].name, name) == 0) return d->u.dict.items[i].value;
  return NULL;
}

hs_status *hs_op_error(const hs_op *op, hs_status_code code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!op) return hs_status_new(code, "%s", msg);
  return hs_status_new(code, "%s:%d:%d: '%s': %s", op->loc.file ? op->loc.file : "<input>",
                       op->loc.line, op->loc.col, op->name ? op->name : "?", msg);
}

static const int64_t k_empty_ints[1] = {0};

/* ---------------------------------------------------------- conversions */

static bool attr_int(const hs_attr *a, int64_t *out) {
  switch (a->kind) {
    case HS_ATTR_INT: *out = a->u.i; return true;
    case HS_ATTR_BOOL: *out = a->u.b ? 1 : 0; return true;
    case HS_ATTR_DENSE:
      if ((hs_dtype_is_int(a->u.dense.type.dtype) || a->u.dense.type.dtype == HS_PRED) &&
          hs_shape_numel(&a->u.dense.type.shape) == 1) {
        *out = hs_load_i64(a->u.dense.type.dtype, a->u.dense.data, 0);
        return true;
      }
      return false;
    default: return false;
  }
}

static bool attr_ints(const hs_attr *a, const int64_t **out, int *n) {
  switch (a->kind) {
    case HS_ATTR_INTS:
      *out = a->u.ints.n ? a->u.ints.v : k_empty_ints;
      *n = a->u.ints.n;
      return true;
    case HS_ATTR_ARRAY:
      if (a->u.array.n == 0) {
        *out = k_empty_ints;
        *n = 0;
        return true;
      }
      return false;
    case HS_ATTR_DENSE: {
      if (a->u.dense.type.kind != HS_TYPE_TENSOR || a->u.dense.type.dtype != HS_I64) return false;
      int64_t ne = hs_shape_numel(&a->u.dense.type.shape);
      if (ne < 0 || ne > INT32_MAX) return false;
      *out = ne ? (const int64_t *)a->u.dense.data : k_empty_ints;
      *n = (int)ne;
      return true;
    }
    default: return false;
  }
}

static const char *kind_name(hs_attr_kind k) {
  switch (k) {
    case HS_ATTR_UNIT: return "unit";
    case HS_ATTR_BOOL: return "bool";
    case HS_ATTR_INT: return "integer";
    case HS_ATTR_FLOAT: return "float";
    case HS_ATTR_STRING: return "string";
    case HS_ATTR_SYMBOL: return "symbol";
    case HS_ATTR_ENUM: return "enum";
    case HS_ATTR_ARRAY: return "array";
    case HS_ATTR_INTS: return "integer list";
    case HS_ATTR_DENSE: return "dense elements";
    case HS_ATTR_DICT: return "dictionary";
    case HS_ATTR_STRUCT: return "struct";
    case HS_ATTR_TYPE: return "type";
    case HS_ATTR_OPAQUE: return "opaque attribute";
  }
  return "?";
}

/* --------------------------------------------------------------- readers */

hs_status *hs_op_get_int(const hs_op *op, const char *name, bool required, int64_t dflt,
                         int64_t *out) {
  const hs_attr *a = hs_op_attr(op, name);
  if (!a) {
    if (required) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing attribute '%s'", name);
    *out = dflt;
    return NULL;
  }
  if (!attr_int(a, out))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "attribute '%s' must be an integer, not %s",
                       name, kind_name(a->kind));
  return NULL;
}

hs_status *hs_op_get_ints(const hs_op *op, const char *name, bool required,
                          const int64_t **out, int *n) {
  const hs_attr *a = hs_op_attr(op, name);
  if (!a) {
    *out = NULL;
    *n = 0;
    if (required) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing attribute '%s'", name);
    return NULL;
  }
  if (!attr_ints(a, out, n))
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "attribute '%s' must be a list of integers, not %s", name,
                       kind_name(a->kind));
  return NULL;
}

hs_status *hs_op_get_enum(const hs_op *op, const char *name, bool required, const char *dflt,
                          const char **out) {
  const hs_attr *a = hs_op_attr(op, name);
  if (!a) {
    if (required) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing attribute '%s'", name);
    *out = dflt;
    return NULL;
  }
  if (a->kind != HS_ATTR_ENUM && a->kind != HS_ATTR_STRING)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "attribute '%s' must be an enum, not %s", name,
                       kind_name(a->kind));
  *out = a->u.str.s;
  return NULL;
}

hs_status *hs_op_get_string(const hs_op *op, const char *name, bool required, const char *dflt,
                            const char **out) {
  const hs_attr *a = hs_op_attr(op, name);
  if (!a) {
    if (required) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing attribute '%s'", name);
    *out = dflt;
    return NULL;
  }
  if (a->kind != HS_ATTR_STRING && a->kind != HS_ATTR_SYMBOL)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "attribute '%s' must be a string, not %s", name,
                       kind_name(a->kind));
  *out = a->u.str.s;
  return NULL;
}

hs_status *hs_struct_get_int(const hs_op *op, const hs_attr *s, const char *field,
                             bool required, int64_t dflt, int64_t *out) {
  const hs_attr *a = hs_dict_get(s, field);
  const char *what = s && s->tag ? s->tag : "struct";
  if (!a) {
    if (required)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "missing field '%s' in #%s", field, what);
    *out = dflt;
    return NULL;
  }
  if (!attr_int(a, out))
    return hs_op_error(op, HS_INVALID_ARGUMENT, "field '%s' of #%s must be an integer, not %s",
                       field, what, kind_name(a->kind));
  return NULL;
}

hs_status *hs_struct_get_ints(const hs_op *op, const hs_attr *s, const char *field,
                              bool required, const int64_t **out, int *n) {
  const hs_attr *a = hs_dict_get(s, field);
  const char *what = s && s->tag ? s->tag : "struct";
  if (!a) {
    *out = k_empty_ints;
    *n = 0;
    if (required)
      return hs_op_error(op, HS_INVALID_ARGUMENT, "missing field '%s' in #%s", field, what);
    return NULL;
  }
  if (!attr_ints(a, out, n))
    return hs_op_error(op, HS_INVALID_ARGUMENT,
                       "field '%s' of #%s must be a list of integers, not %s", field, what,
                       kind_name(a->kind));
  return NULL;
}

char *hs_type_str(const hs_type *t, char *buf, size_t cap) {
  if (!buf || cap == 0) return buf;
  buf[0] = 0;
  if (!t) return buf;
  if (t->kind == HS_TYPE_TOKEN) {
    snprintf(buf, cap, "!stablehlo.token");
    return buf;
  }
  if (t->kind == HS_TYPE_TUPLE) {
    snprintf(buf, cap, "tuple<...>");
    return buf;
  }
  size_t used = 0;
  int w = snprintf(buf, cap, "tensor<");
  if (w < 0) return buf;
  used = (size_t)w;
  for (int i = 0; i < t->shape.rank && used < cap; i++) {
    w = snprintf(buf + used, cap - used, "%" PRId64 "x", t->shape.dims[i]);
    if (w < 0) return buf;
    used += (size_t)w;
  }
  if (used < cap) snprintf(buf + used, cap - used, "%s>", hs_dtype_name(t->dtype));
  return buf;
}

static hs_status *check_tensor_value(const hs_op *op, const hs_value *v, const char *what, int i,
                                     const hs_type **out) {
  if (v->type.kind != HS_TYPE_TENSOR)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "%s %d must be a tensor", what, i);
  if (hs_dtype_is_complex(v->type.dtype))
    return hs_op_error(op, HS_UNIMPLEMENTED, "complex element types are not supported");
  if (v->type.dtype <= HS_DTYPE_INVALID || v->type.dtype >= HS_DTYPE_COUNT)
    return hs_op_error(op, HS_INVALID_ARGUMENT, "%s %d has an invalid element type", what, i);
  *out = &v->type;
  return NULL;
}

hs_status *hs_op_tensor_operand(const hs_op *op, int i, const hs_type **out) {
  if (i >= op->n_operands) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing operand %d", i);
  return check_tensor_value(op, op->operands[i], "operand", i, out);
}

hs_status *hs_op_tensor_result(const hs_op *op, int i, const hs_type **out) {
  if (i >= op->n_results) return hs_op_error(op, HS_INVALID_ARGUMENT, "missing result %d", i);
  return check_tensor_value(op, op->results[i], "result", i, out);
}
