/*
 * npy.h - NumPy .npy files (format versions 1.0-3.0), little-endian,
 * C order.  Used by `hloserve run-hlo` and by tests.
 */
#ifndef HLOSERVE_BASE_NPY_H
#define HLOSERVE_BASE_NPY_H

#include "hloserve/status.h"
#include "hloserve/tensor.h"

/* Reads a whole .npy file; t->data is malloc'd (free it with free()). */
hs_status *hs_npy_read(const char *path, hs_tensor *t);
/* Parses an in-memory .npy image (copies the data). */
hs_status *hs_npy_parse(const void *buf, size_t len, const char *name, hs_tensor *t);
hs_status *hs_npy_write(const char *path, const hs_tensor *t);

#endif
