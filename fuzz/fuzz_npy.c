/* fuzz_npy.c - libFuzzer target: arbitrary bytes as a .npy image. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hs_tensor t;
  hs_status *err = hs_npy_parse(data, size, "fuzz", &t);
  if (err) {
    hs_status_free(err);
    return 0;
  }
  free(t.data);
  return 0;
}
