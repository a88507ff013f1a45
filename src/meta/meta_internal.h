/*
 * meta_internal.h - the server side of hloserve/meta.h.
 *
 * A context is a thin handle: the hs_meta_* functions validate their
 * arguments here, in one place, and then dispatch to the host that runs the
 * request through a small table of operations.  The server's worker (in the
 * server process, or in a fleet's worker process: the same code) is one
 * host; unit tests are another.  model.c only ever sees the opaque hs_meta_ctx.
 */
#ifndef HLOSERVE_META_INTERNAL_H
#define HLOSERVE_META_INTERNAL_H

#include "hloserve/meta.h"

typedef struct hs_meta_host_ops {
  /* Arguments are already validated (non-NULL, counts >= 0). */
  hs_status *(*call)(void *host, const char *model, const hs_named_tensor *inputs, int num_inputs,
                     const hs_named_tensor **outputs, int *num_outputs);
  /* dtype valid, shape rank 0..HS_MAX_RANK, dims >= 0, size fits in size_t. */
  hs_status *(*scratch)(void *host, hs_dtype dtype, const hs_shape *shape, hs_tensor *out);
  hs_status *(*output)(void *host, const char *name, hs_dtype dtype, const hs_shape *shape,
                       hs_tensor *out);
  void **(*state)(void *host, void (*destroy)(void *state));
  /* NULL while the request may go on; else its deadline / cancellation error. */
  hs_status *(*check)(void *host);
} hs_meta_host_ops;

struct hs_meta_ctx {
  const hs_meta_host_ops *ops;
  void *host;
  const char *model; /* the meta being run, for messages */
  int threads;       /* hs_meta_threads; <= 0 reads as 1 */
};

/* The run function registered under `name`, or NULL. */
hs_meta_run_fn hs_meta_lookup(const char *name);
/* Forgets a registration (at unload).  Unknown names are ignored. */
void hs_meta_unregister(const char *name);

/* The registry in registration order: a loader notes the size before it
 * calls a bundle's hs_meta_bundle_register and truncates back to it when the
 * bundle registered anything but exactly its own name (loads are
 * sequential), so no entry outlives the code it points into. */
int hs_meta_registry_size(void);
void hs_meta_registry_truncate(int size);

#endif
