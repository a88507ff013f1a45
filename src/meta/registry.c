/*
 * registry.c - meta model names to run functions (hs_meta_register).
 *
 * A process-wide table, in registration order, behind a mutex: registration happens while bundles
 * load (rarely), lookups once per load.  Requests never touch it: the
 * repository keeps the looked-up function pointer in the model.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_internal.h"

typedef struct entry {
  char *name;
  hs_meta_run_fn run;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *table;
static int count, cap;

hs_status *hs_meta_register(const char *name, hs_meta_run_fn run) {
  if (!name || !*name) return hs_status_new(HS_INVALID_ARGUMENT, "hs_meta_register: empty name");
  if (!run)
    return hs_status_new(HS_INVALID_ARGUMENT, "hs_meta_register('%s'): NULL run function", name);
  hs_status *st = NULL;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < count && !st; i++)
    if (strcmp(table[i].name, name) == 0)
      st = hs_status_new(HS_INVALID_ARGUMENT, "meta model '%s' is already registered", name);
  if (!st && count == cap) {
    int nc = cap ? cap * 2 : 8;
    entry *t = realloc(table, sizeof *t * (size_t)nc);
    if (!t) {
      st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory registering '%s'", name);
    } else {
      table = t;
      cap = nc;
    }
  }
  if (!st) {
    char *copy = strdup(name);
    if (!copy) {
      st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory registering '%s'", name);
    } else {
      table[count].name = copy;
      table[count].run = run;
      count++;
    }
  }
  pthread_mutex_unlock(&lock);
  return st;
}

hs_meta_run_fn hs_meta_lookup(const char *name) {
  hs_meta_run_fn run = NULL;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < count && !run; i++)
    if (strcmp(table[i].name, name) == 0) run = table[i].run;
  pthread_mutex_unlock(&lock);
  return run;
}

void hs_meta_unregister(const char *name) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < count; i++) {
    if (strcmp(table[i].name, name) == 0) {
      free(table[i].name);
      memmove(&table[i], &table[i + 1], sizeof *table * (size_t)(count - i - 1));
      count--;
      break;
    }
  }
  if (count == 0) {
    free(table);
    table = NULL;
    cap = 0;
  }
  pthread_mutex_unlock(&lock);
}

int hs_meta_registry_size(void) {
  pthread_mutex_lock(&lock);
  int n = count;
  pthread_mutex_unlock(&lock);
  return n;
}

void hs_meta_registry_truncate(int size) {
  pthread_mutex_lock(&lock);
  while (count > size && count > 0) free(table[--count].name);
  pthread_mutex_unlock(&lock);
}
