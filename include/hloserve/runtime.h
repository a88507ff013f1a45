/*
 * runtime.h - run StableHLO programs (MLIR text) on the CPU.
 *
 *   hs_program *p;
 *   HS_RETURN_IF_ERROR(hs_program_load("model.mlir", NULL, &p));
 *   HS_RETURN_IF_ERROR(hs_program_bind_weights(p, "weights.safetensors", names, n));
 *   hs_tensor in = {...}, out = {0};           // out.data NULL: runtime allocates
 *   HS_RETURN_IF_ERROR(hs_program_run(p, &in, 1, &out, 1));
 *
 * A program is parsed and compiled once and then executed any number of
 * times, from several threads at once.  Weights are bound by name to the
 * entry function's leading parameters; the file is mmap'd and never copied.
 * Every error comes back as a status whose message starts with the source
 * location ("model.mlir:12:5: ...") when there is one.
 */
#ifndef HLOSERVE_RUNTIME_H
#define HLOSERVE_RUNTIME_H

#include "hloserve/status.h"
#include "hloserve/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_program hs_program;

typedef struct hs_program_options {
  const char *entry;  /* entry function; NULL = "main" */
  int num_threads;    /* intra-op threads; 0 = 1 */
  const char *device; /* NULL or "cpu"; "cuda:N" (or "cuda" = "cuda:0") runs on
                         GPU N: needs a build with the CUDA backend */
} hs_program_options;

/* NULL when `device` ("cpu", "cuda", "cuda:N") names a device this build and
 * machine can run on; else a status saying why not (unknown name, no CUDA
 * backend in this build, no such GPU). */
hs_status *hs_device_check(const char *device);
/* True when this build has the CUDA backend. */
bool hs_runtime_has_cuda(void);

/* Parses and compiles MLIR text.  filename is used in error locations. */
hs_status *hs_program_from_text(const char *text, size_t len, const char *filename,
                                const hs_program_options *opt, hs_program **out);
/* Reads, parses and compiles a .mlir file. */
hs_status *hs_program_load(const char *path, const hs_program_options *opt, hs_program **out);
void hs_program_free(hs_program *p);
/* The program's device: "cpu" or "cuda:N". */
const char *hs_program_device(const hs_program *p);
/* The intra-op threads the program was compiled for (>= 1). */
int hs_program_num_threads(const hs_program *p);

/* Binds the first n_names parameters of the entry function, in order, to the
 * tensors of a safetensors file with those names (dtype and shape must match
 * exactly).  names == NULL binds every parameter whose name attribute
 * (jax.arg_info / hloserve.name, else "argN") has a tensor in the file, from
 * the first on, stopping at the first that has none.
 *
 * Binding is once per program and is when the program specialises on its
 * weights: everything computable from weights and constants alone (weight
 * transposes, BatchNorm scales...) is computed here, once, and kernels may
 * repack weights.  After a failed bind, free the program. */
hs_status *hs_program_bind_weights(hs_program *p, const char *safetensors_path,
                                   const char *const *names, int n_names);

/* The entry function's parameters that are not bound to weights, and its
 * results. */
int hs_program_num_inputs(const hs_program *p);
int hs_program_num_outputs(const hs_program *p);
void hs_program_input(const hs_program *p, int i, hs_dtype *dtype, hs_shape *shape);
void hs_program_output(const hs_program *p, int i, hs_dtype *dtype, hs_shape *shape);

/* Runs the entry function.  inputs: the unbound parameters in order.
 * outputs[i].data == NULL: the runtime allocates it (release with free());
 * otherwise it must hold the result's bytes and dtype/shape must match. */
hs_status *hs_program_run(hs_program *p, const hs_tensor *inputs, int n_inputs, hs_tensor *outputs,
                          int n_outputs);

/* Peak bytes of intermediate buffers in the calling thread's last run. */
size_t hs_program_last_peak_bytes(void);

typedef struct hs_program_memory {
  size_t weights_bytes;  /* bound weights */
  size_t folded_bytes;   /* values computed once from weights at bind time */
  size_t arena_bytes;    /* the planned arena of the entry function */
  size_t max_live_bytes; /* the largest set of simultaneously live intermediates */
} hs_program_memory;
void hs_program_memory_info(const hs_program *p, hs_program_memory *m);

/* Self-checking programs (the conformance format): runs every public
 * function without arguments in every `// -----` part of the file.  Returns
 * NULL when all checks hold; HS_FAILED_PRECONDITION when a check fails; any
 * other code when the file cannot be parsed, compiled or run. */
hs_status *hs_check_file(const char *path);
/* The same on a device (NULL: the CPU): the programs' ops run on the GPU,
 * the checks on the host. */
hs_status *hs_check_file_on(const char *path, const char *device);

#ifdef __cplusplus
}
#endif
#endif /* HLOSERVE_RUNTIME_H */
