/*
 * safetensors.h - read-only access to a .safetensors file, mmap'd.
 *
 * The format: an 8-byte little-endian header length, a JSON header mapping
 * tensor names to {dtype, shape, data_offsets}, then the raw data.  We map
 * the whole file and hand out tensors that point into the mapping, so
 * weights are never copied.  Every offset, size and dtype is validated at
 * open time; a broken file is an error, never a crash.
 */
#ifndef HLOSERVE_BASE_SAFETENSORS_H
#define HLOSERVE_BASE_SAFETENSORS_H

#include "hloserve/status.h"
#include "hloserve/tensor.h"

typedef struct hs_safetensors hs_safetensors;

hs_status *hs_safetensors_open(const char *path, hs_safetensors **out);
/* Parses an in-memory file (not copied; must outlive the handle). */
hs_status *hs_safetensors_from_memory(const void *data, size_t len, const char *name,
                                      hs_safetensors **out);
void hs_safetensors_close(hs_safetensors *st);
/* For a file opened with hs_safetensors_open: gives the mapping's resident
 * pages back (madvise MADV_DONTNEED).  The data stays valid: a later read
 * faults the page in again from the file.  Used once weights are bound and
 * their packed or folded copies made, so the raw file does not stay resident
 * beside them. */
void hs_safetensors_release_pages(hs_safetensors *st);

int hs_safetensors_count(const hs_safetensors *st);
const char *hs_safetensors_name(const hs_safetensors *st, int i);
/* Returns NULL if absent; the tensor's data points into the mapping. */
const hs_tensor *hs_safetensors_get(const hs_safetensors *st, const char *name);
const hs_tensor *hs_safetensors_at(const hs_safetensors *st, int i);

#endif
