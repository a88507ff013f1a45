/*
 * registry.c - the table of all kernels, looked up by op name at compile time.
 * Each file under kernels/ exports one NULL-terminated table; add new tables to
 * `tables` below.  Lookup is a linear scan: it runs once per op at compile
 * time, never while executing.
 */
#include <string.h>

#include "runtime/kernel.h"

extern const hs_kernel *const hs_kernels_builtin; /* exec.c */
extern const hs_kernel hs_kernels_elementwise[];
extern const hs_kernel hs_kernels_movement[];
extern const hs_kernel hs_kernels_reduce[];
extern const hs_kernel hs_kernels_linalg[];

static const hs_kernel *tables[] = {
    NULL, /* hs_kernels_builtin, set below: not a constant expression */
    hs_kernels_elementwise,
    hs_kernels_movement,
    hs_kernels_reduce,
    hs_kernels_linalg,
};

const hs_kernel *hs_kernel_lookup(const char *name) {
  tables[0] = hs_kernels_builtin;
  for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
    for (const hs_kernel *k = tables[t]; k->name; k++)
      if (strcmp(k->name, name) == 0) return k;
  return NULL;
}
