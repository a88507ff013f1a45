/* fuzz_safetensors.c - libFuzzer target: arbitrary bytes as a safetensors
 * file.  Every accepted tensor must lie inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hs_safetensors *st = NULL;
  hs_status *err = hs_safetensors_from_memory(data, size, "fuzz", &st);
  if (err) {
    hs_status_free(err);
    return 0;
  }
  for (int i = 0; i < hs_safetensors_count(st); i++) {
    const hs_tensor *t = hs_safetensors_at(st, i);
    const uint8_t *p = t->data;
    size_t nb = hs_tensor_nbytes(t);
    if (p < data || p + nb > data + size) abort();
    volatile uint8_t sink = 0;
    for (size_t k = 0; k < nb; k++) sink ^= p[k];
    (void)sink;
    if (hs_safetensors_get(st, hs_safetensors_name(st, i)) == NULL) abort();
  }
  hs_safetensors_close(st);
  return 0;
}
