/*
 * meta_loader.c - builds a meta bundle's model.c into a shared object and
 * loads it (hs_meta_bundle_load).
 *
 * The object is compiled with the system C compiler against the hloserve
 * headers and left with undefined references to the hs_* functions it uses
 * (the meta API and DetectionGlue); the hloserve executable exports those
 * (linked whole-archive, ENABLE_EXPORTS), so dlopen resolves them against the
 * very code the server runs.  Nothing is linked twice and there is no ABI to
 * keep stable beyond the headers, whose contents are part of the cache key.
 *
 * Cache: CACHE_DIR/<name>-<key>.so, key = FNV-1a 64 of the compiler, flags,
 * model.c and every header under include/hloserve.  A hit (a "prebuilt"
 * object, from an earlier run or built ahead of time) is loaded as is; a
 * miss compiles into a temporary name and renames it into place, so servers
 * sharing a cache never see half-written objects.  The compiler's output
 * goes into a log next to it and its first lines into the error.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meta/meta_internal.h"
#include "server/repository.h"
#include "server/util.h"

extern char **environ;

static const char *const CFLAGS[] = {"-std=c11", "-O2", "-fPIC", "-shared", "-w"};
#define N_CFLAGS (sizeof CFLAGS / sizeof CFLAGS[0])

static hs_status *read_all(const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return hs_status_new(HS_IO_ERROR, "cannot read %s: %s", path, strerror(errno));
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (cap - n < 4096) {
      cap = cap ? cap * 2 : 65536;
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return hs_status_new(HS_OUT_OF_MEMORY, "out of memory reading %s", path);
      }
      buf = nb;
    }
    size_t k = fread(buf + n, 1, cap - n - 1, f);
    n += k;
    if (k == 0) break;
  }
  bool err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return hs_status_new(HS_IO_ERROR, "error reading %s", path);
  }
  buf[n] = 0;
  *out = buf;
  *len = n;
  return NULL;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ull;
  }
  return h;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Hashes every header under include_dir/hloserve (sorted, names and bytes). */
static hs_status *hash_headers(const char *include_dir, uint64_t *h) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/hloserve", include_dir);
  DIR *d = opendir(dir);
  if (!d)
    return hs_status_new(HS_NOT_FOUND, "hloserve headers not found in %s (set HLOSERVE_INCLUDE_DIR "
                         "or --include-dir)", dir);
  char *names[256];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < 256) {
    size_t len = strlen(e->d_name);
    if (len > 2 && strcmp(e->d_name + len - 2, ".h") == 0 && (names[n] = strdup(e->d_name))) n++;
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  hs_status *st = NULL;
  for (int i = 0; i < n; i++) {
    char path[4600];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    char *text = NULL;
    size_t len = 0;
    if (!st) st = read_all(path, &text, &len);
    if (!st) {
      *h = fnv(*h, names[i], strlen(names[i]) + 1);
      *h = fnv(*h, text, len);
    }
    free(text);
    free(names[i]);
  }
  return st;
}

static hs_status *mkdirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return hs_status_new(HS_IO_ERROR, "cannot create %s: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST)
    return hs_status_new(HS_IO_ERROR, "cannot create %s: %s", buf, strerror(errno));
  return NULL;
}

static hs_status *compile(const char *cc, const char *include_dir, const char *source,
                          const char *so_path) {
  static int counter;
  char tmp[4200], log[4300];
  int k = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
  snprintf(tmp, sizeof tmp, "%s.tmp-%d-%d", so_path, (int)getpid(), k);
  snprintf(log, sizeof log, "%s.log", tmp);
  char inc[4200];
  snprintf(inc, sizeof inc, "-I%s", include_dir);
  const char *argv[N_CFLAGS + 8];
  int a = 0;
  argv[a++] = cc;
  for (size_t i = 0; i < N_CFLAGS; i++) argv[a++] = CFLAGS[i];
  argv[a++] = inc;
  argv[a++] = "-o";
  argv[a++] = tmp;
  argv[a++] = source;
  argv[a] = NULL;

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, cc, &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    unlink(log);
    return hs_status_new(HS_UNAVAILABLE, "cannot run the C compiler '%s': %s", cc, strerror(rc));
  }
  int wst = 0;
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
  }
  hs_status *st = NULL;
  if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
    char *text = NULL;
    size_t len = 0;
    hs_status *rs = read_all(log, &text, &len);
    hs_status_free(rs);
    if (text && len > 1500) strcpy(text + 1490, " ...");
    for (char *p = text; p && *p; p++)
      if (*p == '\n') *p = ' ';
    st = hs_status_new(HS_INVALID_ARGUMENT, "compiling %s failed (%s exit %d): %s", source, cc,
                       WIFEXITED(wst) ? WEXITSTATUS(wst) : -1, text ? text : "");
    free(text);
    unlink(tmp);
  } else if (rename(tmp, so_path) != 0) {
    st = hs_status_new(HS_IO_ERROR, "cannot rename %s: %s", tmp, strerror(errno));
    unlink(tmp);
  }
  unlink(log);
  return st;
}

hs_status *hs_meta_bundle_load(const hs_meta_build_options *opt, const char *name,
                               const char *source_path, void **dl_out, hs_meta_run_fn *run_out) {
  *dl_out = NULL;
  *run_out = NULL;
  /* The name becomes part of a file name in the cache: never a path. */
  const char *why = hs_model_name_problem(name, strlen(name));
  if (why) return hs_status_new(HS_INVALID_ARGUMENT, "meta bundle name is not valid: %s", why);
  const char *cc = opt->cc && *opt->cc ? opt->cc : getenv("CC");
  if (!cc || !*cc) cc = "cc";
  char *src = NULL;
  size_t len = 0;
  HS_RETURN_IF_ERROR(read_all(source_path, &src, &len));
  uint64_t h = 1469598103934665603ull;
  h = fnv(h, "hloserve-meta-1", 16);
  h = fnv(h, cc, strlen(cc) + 1);
  for (size_t i = 0; i < N_CFLAGS; i++) h = fnv(h, CFLAGS[i], strlen(CFLAGS[i]) + 1);
  h = fnv(h, src, len);
  free(src);
  HS_RETURN_IF_ERROR(hash_headers(opt->include_dir, &h));
  HS_RETURN_IF_ERROR(mkdirs(opt->cache_dir));
  char so[4096];
  snprintf(so, sizeof so, "%s/%s-%016llx.so", opt->cache_dir, name, (unsigned long long)h);

  void *dl = NULL;
  struct stat sb;
  if (stat(so, &sb) == 0) {
    dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
      hs_log("%s: cached %s does not load (%s); rebuilding", name, so, dlerror());
      unlink(so);
    }
  }
  if (!dl) {
    int64_t t0 = hs_now_ns();
    HS_RETURN_IF_ERROR(compile(cc, opt->include_dir, source_path, so));
    hs_log("%s: compiled model.c in %.2f s -> %s", name, (double)(hs_now_ns() - t0) / 1e9, so);
    dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
      const char *e = dlerror();
      return hs_status_new(HS_INVALID_ARGUMENT, "loading %s: %s", so, e ? e : "dlopen failed");
    }
  }
  typedef hs_status *(*register_fn)(void);
  register_fn reg;
  *(void **)&reg = dlsym(dl, "hs_meta_bundle_register");
  if (!reg) {
    dlclose(dl);
    return hs_status_new(HS_INVALID_ARGUMENT, "%s defines no hs_meta_bundle_register()", source_path);
  }
  int before = hs_meta_registry_size();
  hs_status *st = reg();
  hs_meta_run_fn run = st ? NULL : hs_meta_lookup(name);
  if (!st && (!run || hs_meta_registry_size() != before + 1))
    st = hs_status_new(HS_INVALID_ARGUMENT,
                       "model.c must register exactly one run function, named '%s' (the "
                       "bundle's name)", name);
  if (st) {
    hs_meta_registry_truncate(before);
    dlclose(dl);
    return hs_status_annotate(st, "hs_meta_bundle_register");
  }
  *dl_out = dl;
  *run_out = run;
  return NULL;
}

void hs_meta_bundle_unload(const char *name, void *dl) {
  if (name) hs_meta_unregister(name);
  if (dl) dlclose(dl);
}
