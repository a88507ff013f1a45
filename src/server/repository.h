/*
 * repository.h - the model repository: every bundle of a folder, loaded.
 *
 * Loading never fails because of one bundle.  Each folder with a bundle.json
 * becomes a model; a bundle that cannot be read, compiled or bound is kept
 * with ready = false and the reason, so the server still starts and the
 * model's ready endpoint can say why.  After loading, the repository is
 * immutable and read by every thread without locks.
 *
 * Routing: the members of a meta's placement group (its "group") are
 * internal; they are never addressable, whether the meta loaded or not.
 * A meta is ready only when it loaded and every member of its group did.
 */
#ifndef HLOSERVE_SERVER_REPOSITORY_H
#define HLOSERVE_SERVER_REPOSITORY_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "hloserve/meta.h"
#include "hloserve/runtime.h"

typedef enum hs_model_kind { HS_MODEL_DENSE = 0, HS_MODEL_META = 1 } hs_model_kind;

/* A manifest tensor spec; -1 dims are free (decided per program / at run time). */
typedef struct hs_tensor_spec {
  const char *name;
  hs_dtype dtype;
  hs_shape shape;
} hs_tensor_spec;

typedef struct hs_dense_program {
  hs_program *program;
  const char *file;
  hs_shape *input_shapes;  /* [num_inputs] */
  hs_shape *output_shapes; /* [num_outputs] */
} hs_dense_program;

typedef struct hs_model hs_model;
struct hs_model {
  int index; /* position in the repository (sorted by name) */
  const char *name;
  const char *dir;
  hs_model_kind kind;
  bool kind_known;   /* false when bundle.json could not be read */
  bool addressable;  /* false for the members of a meta's group */
  bool ready;
  const char *reason; /* why not ready */
  int num_inputs, num_outputs;
  hs_tensor_spec *inputs, *outputs;
  const char **output_names; /* [num_outputs], for output selection */

  /* dense */
  int num_programs;
  hs_dense_program *programs;

  /* meta */
  int group_size;
  const char **group_names;
  hs_model **group; /* resolved members */
  const char *owner; /* for a group member: the first meta that lists it */
  hs_meta_run_fn run;
  void *dl;
  bool registered;

  hs_arena arena; /* every string and array above */
};

typedef struct hs_repository_options {
  const char *dir;
  int intra_op_threads; /* per program; <= 1: one */
  const char *cc;          /* C compiler for meta bundles; NULL: $CC, else "cc" */
  const char *include_dir; /* holds hloserve/meta.h; NULL: $HLOSERVE_INCLUDE_DIR, else built in */
  const char *cache_dir;   /* compiled meta bundles; NULL: DIR/.hloserve-cache (or a temp dir) */
  /* Fleet mode: models for which skip returns true keep only their manifest
   * (no program compiled, no model.c loaded; a meta's group is still
   * resolved).  The front end skips every model, a worker process the models
   * of other workers.  NULL: load everything. */
  bool (*skip)(const hs_model *m, void *cls);
  void *skip_cls;
  const char *device;      /* where dense programs run: NULL/"cpu" or "cuda:N" */
} hs_repository_options;

typedef struct hs_repository {
  char *dir;
  int num_models;
  hs_model **models;
} hs_repository;

/* Fails only when the folder cannot be listed or memory runs out. */
hs_status *hs_repository_load(const hs_repository_options *opt, hs_repository **out);
void hs_repository_free(hs_repository *repo);

/* Model names are folder names and show up in URLs, file names (the meta
 * cache) and metric labels, so they are restricted: 1 to HS_MODEL_NAME_MAX
 * bytes of ASCII letters, digits, '_', '-' and '.', not starting with '.'
 * (no '/', "..", NUL, spaces or control characters).  Returns NULL for a valid
 * name of n bytes, else why it is not one (a static string). */
#define HS_MODEL_NAME_MAX 200
const char *hs_model_name_problem(const char *name, size_t n);

/* Any model (addressable or not), or NULL. */
hs_model *hs_repository_find(const hs_repository *repo, const char *name);
/* A group member by name, or NULL when `name` is not in meta's group. */
hs_model *hs_model_group_member(const hs_model *meta, const char *name);

/* Matches named inputs against the model: every input given once, nothing
 * else, dtypes equal, shapes equal to the manifest (-1 free) and, for a dense
 * model, to one program's input_shapes.  ordered[i] (num_inputs entries) gets
 * the tensor for the model's input i, *program the program (dense; else -1).
 * Errors are HS_INVALID_ARGUMENT naming the input. */
hs_status *hs_model_match_inputs(const hs_model *m, const hs_named_tensor *inputs, int n,
                                 const hs_tensor **ordered, int *program);

/* Writes a shape as "[1, 3, 320, 320]" ("-1" for free dims). */
char *hs_shape_text(const hs_shape *s, char *buf, size_t cap);

/* Meta bundles: compile (or find compiled in the cache) and load model.c;
 * on success *dl and *run are set and `name` is registered. */
typedef struct hs_meta_build_options {
  const char *cc;
  const char *include_dir;
  const char *cache_dir;
} hs_meta_build_options;
hs_status *hs_meta_bundle_load(const hs_meta_build_options *opt, const char *name,
                               const char *source_path, void **dl, hs_meta_run_fn *run);
void hs_meta_bundle_unload(const char *name, void *dl);

#endif
