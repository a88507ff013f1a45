/*
 * server_testlib.h - helpers shared by the server's unit tests.
 */
#ifndef HLOSERVE_TESTS_SERVER_TESTLIB_H
#define HLOSERVE_TESTS_SERVER_TESTLIB_H

#include <stdlib.h>

#include "server/repository.h"

/* A ready meta model `name` at repository position `index`, with one FP32
 * output "OUT" of shape [-1], run by `run`; the caller frees m->arena, then m. */
static inline hs_model *test_meta_model(const char *name, int index, hs_meta_run_fn run) {
  hs_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  hs_arena_init(&m->arena, 1024);
  m->index = index;
  m->name = name;
  m->kind = HS_MODEL_META;
  m->kind_known = m->addressable = m->ready = true;
  m->num_outputs = 1;
  m->outputs = hs_arena_calloc(&m->arena, 1, sizeof *m->outputs);
  m->outputs[0].name = "OUT";
  m->outputs[0].dtype = HS_F32;
  m->outputs[0].shape.rank = 1;
  m->outputs[0].shape.dims[0] = -1;
  m->output_names = hs_arena_calloc(&m->arena, 1, sizeof(char *));
  m->output_names[0] = "OUT";
  m->run = run;
  return m;
}

#endif
