/*
 * context.c - the hs_meta_* calls model.c makes: argument checks, then the
 * host's operation.
 *
 * Everything a generated or hand-written run function passes in is checked
 * here (NULL pointers, negative counts, invalid dtypes and shapes, sizes that
 * overflow), so a buggy model.c gets an hs_status naming the mistake rather
 * than crashing the worker, and every host can assume sane arguments.
 */
#include <stdint.h>
#include <string.h>

#include "meta/meta_internal.h"

static const char *who(const hs_meta_ctx *ctx) { return ctx && ctx->model ? ctx->model : "meta"; }

static hs_status *check_ctx(const hs_meta_ctx *ctx, const char *fn) {
  if (!ctx || !ctx->ops) return hs_status_new(HS_INVALID_ARGUMENT, "%s: NULL context", fn);
  return NULL;
}

static hs_status *check_shape(const hs_meta_ctx *ctx, const char *fn, hs_dtype dtype,
                              const hs_shape *shape) {
  if (dtype <= HS_DTYPE_INVALID || dtype >= HS_DTYPE_COUNT)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: %s: invalid dtype %d", who(ctx), fn, (int)dtype);
  if (!shape) return hs_status_new(HS_INVALID_ARGUMENT, "%s: %s: NULL shape", who(ctx), fn);
  if (shape->rank < 0 || shape->rank > HS_MAX_RANK)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: %s: rank %d is outside 0..%d", who(ctx), fn,
                         shape->rank, HS_MAX_RANK);
  uint64_t bytes = hs_dtype_size(dtype);
  for (int i = 0; i < shape->rank; i++) {
    int64_t d = shape->dims[i];
    if (d < 0)
      return hs_status_new(HS_INVALID_ARGUMENT, "%s: %s: dim %d is negative (%lld)", who(ctx), fn,
                           i, (long long)d);
    if (d && bytes > ((uint64_t)1 << 62) / (uint64_t)d)
      return hs_status_new(HS_INVALID_ARGUMENT, "%s: %s: shape is too large", who(ctx), fn);
    bytes *= (uint64_t)d;
  }
  return NULL;
}

hs_status *hs_meta_call(hs_meta_ctx *ctx, const char *model, const hs_named_tensor *inputs,
                        int num_inputs, const hs_named_tensor **outputs, int *num_outputs) {
  HS_RETURN_IF_ERROR(check_ctx(ctx, "hs_meta_call"));
  if (!model) return hs_status_new(HS_INVALID_ARGUMENT, "%s: hs_meta_call: NULL model name", who(ctx));
  if (num_inputs < 0 || (num_inputs > 0 && !inputs))
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: hs_meta_call(%s): bad inputs (%d)", who(ctx),
                         model, num_inputs);
  if (!outputs || !num_outputs)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: hs_meta_call(%s): NULL outputs", who(ctx), model);
  *outputs = NULL;
  *num_outputs = 0;
  for (int i = 0; i < num_inputs; i++) {
    if (!inputs[i].name)
      return hs_status_new(HS_INVALID_ARGUMENT, "%s: hs_meta_call(%s): input %d has no name",
                           who(ctx), model, i);
    HS_RETURN_IF_ERROR(hs_status_annotate(
        check_shape(ctx, "hs_meta_call", inputs[i].tensor.dtype, &inputs[i].tensor.shape),
        "input '%s'", inputs[i].name));
    if (!inputs[i].tensor.data && hs_tensor_nbytes(&inputs[i].tensor) > 0)
      return hs_status_new(HS_INVALID_ARGUMENT, "%s: hs_meta_call(%s): input '%s' has no data",
                           who(ctx), model, inputs[i].name);
  }
  HS_RETURN_IF_ERROR(ctx->ops->check(ctx->host));
  return ctx->ops->call(ctx->host, model, inputs, num_inputs, outputs, num_outputs);
}

hs_status *hs_meta_scratch(hs_meta_ctx *ctx, hs_dtype dtype, const hs_shape *shape,
                           hs_tensor *out) {
  HS_RETURN_IF_ERROR(check_ctx(ctx, "hs_meta_scratch"));
  if (!out) return hs_status_new(HS_INVALID_ARGUMENT, "%s: hs_meta_scratch: NULL out", who(ctx));
  memset(out, 0, sizeof *out);
  HS_RETURN_IF_ERROR(check_shape(ctx, "hs_meta_scratch", dtype, shape));
  HS_RETURN_IF_ERROR(ctx->ops->check(ctx->host));
  return ctx->ops->scratch(ctx->host, dtype, shape, out);
}

hs_status *hs_meta_output(hs_meta_ctx *ctx, const char *name, hs_dtype dtype,
                          const hs_shape *shape, hs_tensor *out) {
  HS_RETURN_IF_ERROR(check_ctx(ctx, "hs_meta_output"));
  if (!out) return hs_status_new(HS_INVALID_ARGUMENT, "%s: hs_meta_output: NULL out", who(ctx));
  memset(out, 0, sizeof *out);
  if (!name) return hs_status_new(HS_INVALID_ARGUMENT, "%s: hs_meta_output: NULL name", who(ctx));
  HS_RETURN_IF_ERROR(check_shape(ctx, "hs_meta_output", dtype, shape));
  HS_RETURN_IF_ERROR(ctx->ops->check(ctx->host));
  return ctx->ops->output(ctx->host, name, dtype, shape, out);
}

int hs_meta_threads(hs_meta_ctx *ctx) { return ctx && ctx->threads > 1 ? ctx->threads : 1; }

void **hs_meta_state(hs_meta_ctx *ctx, void (*destroy)(void *state)) {
  if (!ctx || !ctx->ops) return NULL;
  return ctx->ops->state(ctx->host, destroy);
}

hs_status *hs_meta_check_deadline(hs_meta_ctx *ctx) {
  HS_RETURN_IF_ERROR(check_ctx(ctx, "hs_meta_check_deadline"));
  return ctx->ops->check(ctx->host);
}
