/*
 * meta.h - the API a meta bundle's orchestration code (model.c) is written
 * against: register a run function, call other models, get scratch buffers.
 *
 * Design.  A meta model is ordinary C compiled into a shared object.  The
 * server loads it (dlopen) and calls its one exported entry point,
 * hs_meta_bundle_register(), which calls hs_meta_register() with the bundle's
 * name and its run function.  Everything the run function needs from the
 * server goes through the hs_meta_ctx it is handed, so model.c has no global
 * state and one compiled bundle can run on many workers at once:
 *
 *  - hs_meta_call runs another model of the meta's placement group (never a
 *    network hop: a group is placed on one worker) and returns its outputs.
 *  - hs_meta_scratch hands out buffers pooled per worker and reused across
 *    requests (the spec's call.scratch).  Passing one as an input of
 *    hs_meta_call sends it by reference: the group runs in one process (in
 *    a fleet too, where the meta's worker process holds the whole group), so
 *    scratch is never serialized.
 *  - hs_meta_output allocates a result tensor of the request.
 *  - hs_meta_state gives the meta one pointer per worker that survives
 *    across requests (e.g. a DetectionGlue workspace), freed at unload.
 *
 * Lifetimes: every tensor the run function receives or obtains (inputs, call
 * outputs, scratch, outputs) is owned by the context and valid until the run
 * function returns; the run function never frees any of them.  Errors are
 * hs_status values: a run function returns the first error it gets (adding
 * context with hs_status_annotate), and the server turns it into the
 * request's error (HS_INVALID_ARGUMENT becomes a 400 for the client, the
 * deadline a 504, anything else a 500).  Whatever the outcome, everything the
 * run obtained goes back to the worker's pool when it returns.
 *
 * Deadlines.  The context enforces the request's deadline (the KServe
 * "timeout" parameter): hs_meta_call, hs_meta_scratch and hs_meta_output
 * fail with HS_DEADLINE_EXCEEDED once it has passed (or with HS_CANCELLED
 * when the server is shutting down and gave up on the request), and a run
 * function with a long loop of its own polls hs_meta_check_deadline.  The
 * client gets its 504 at the deadline even while the run is still going; the
 * run's late result is discarded.
 *
 * Threads.  A run function runs on one worker thread from start to end, and
 * its sub-calls run inline on that thread (capacity reserved for the admitted
 * request: they never queue behind new requests).  Several requests may run
 * the same meta at once on different workers, each with its own context,
 * scratch and state slot, so model.c needs no locks.
 */
#ifndef HLOSERVE_META_H
#define HLOSERVE_META_H

#include "hloserve/status.h"
#include "hloserve/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A tensor with its wire name (KServe v2 "name"). */
typedef struct hs_named_tensor {
  const char *name;
  hs_tensor tensor;
} hs_named_tensor;

/* One request's view of the server. */
typedef struct hs_meta_ctx hs_meta_ctx;

/* Runs one request.  inputs: the request's tensors, in the order the client
 * sent them (look them up by name).  Outputs are produced with
 * hs_meta_output.  Returns NULL on success. */
typedef hs_status *(*hs_meta_run_fn)(hs_meta_ctx *ctx, const hs_named_tensor *inputs,
                                     int num_inputs);

/* Registers the meta model `name` (must equal the bundle's name in
 * bundle.json).  Called from hs_meta_bundle_register; registering a name twice
 * is HS_INVALID_ARGUMENT. */
hs_status *hs_meta_register(const char *name, hs_meta_run_fn run);

/* The one symbol a compiled meta bundle exports; the server calls it once
 * after loading the bundle. */
hs_status *hs_meta_bundle_register(void);

/* Calls model `model` (a member of the meta's placement group) with
 * `num_inputs` named inputs.  On success *outputs points to *num_outputs
 * named tensors owned by ctx.  Errors: HS_NOT_FOUND (not in the group),
 * HS_INVALID_ARGUMENT (input names, dtypes or shapes the model does not
 * take), the callee's own errors, HS_DEADLINE_EXCEEDED. */
hs_status *hs_meta_call(hs_meta_ctx *ctx, const char *model, const hs_named_tensor *inputs,
                        int num_inputs, const hs_named_tensor **outputs, int *num_outputs);

/* A scratch tensor of `dtype` and `shape`.  Each call returns a distinct
 * buffer; its contents are unspecified (fill it).  Buffers are pooled per
 * worker: a run function that asks for the same sequence of shapes on every
 * request gets the same memory back, without allocation.  HS_OUT_OF_MEMORY or
 * HS_RESOURCE_EXHAUSTED when over the worker's scratch limit. */
hs_status *hs_meta_scratch(hs_meta_ctx *ctx, hs_dtype dtype, const hs_shape *shape,
                           hs_tensor *out);

/* Allocates output `name` of the request (contents unspecified: fill it).
 * Outputs appear in the response in the order they were allocated. */
hs_status *hs_meta_output(hs_meta_ctx *ctx, const char *name, hs_dtype dtype,
                          const hs_shape *shape, hs_tensor *out);

/* Returns NULL while the request's deadline has not passed, else
 * HS_DEADLINE_EXCEEDED (or HS_CANCELLED when the server gave up on the
 * request): for run functions that loop for long between other calls. */
hs_status *hs_meta_check_deadline(hs_meta_ctx *ctx);

/* The threads this run may use for its own parallel work (e.g. a
 * DetectionGlue workspace's num_threads): the intra-op threads the worker
 * runs the group's programs with, >= 1.  While the run function computes,
 * the programs are idle, so their threads' cores are free. */
int hs_meta_threads(hs_meta_ctx *ctx);

/* This meta's per-worker state slot: NULL until the run function stores a
 * pointer there.  `destroy` (may be NULL) is called on the stored pointer when
 * the meta is unloaded from the worker; the last non-NULL destroy passed wins. */
void **hs_meta_state(hs_meta_ctx *ctx, void (*destroy)(void *state));

#ifdef __cplusplus
}
#endif
#endif /* HLOSERVE_META_H */
