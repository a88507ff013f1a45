/*
 * repository.c - see repository.h.
 *
 * Loading goes in passes so that each fact is known before it is needed:
 *   1. every folder's bundle.json is read and checked (kind, tensors, files);
 *   2. the members of every meta's group are marked internal;
 *   3. dense bundles are compiled and their weights bound;
 *   4. meta bundles are compiled and loaded, then their groups resolved
 *      (a meta is ready only when every member is a ready dense bundle).
 * A failure at any step marks that model not ready with the reason and the
 * load goes on.  Manifests are parsed with jansson (small, trusted-ish files
 * written by the converter); every key is still checked, since a hand-edited
 * bundle must give a clear reason rather than crash the server.
 */
#include "server/repository.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/util.h"

char *hs_shape_text(const hs_shape *s, char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < s->rank && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
  if (k < cap) snprintf(buf + k, cap - k, "]");
  return buf;
}

const char *hs_model_name_problem(const char *name, size_t n) {
  if (n == 0) return "it is empty";
  if (n > HS_MODEL_NAME_MAX) return "it is longer than 200 bytes";
  if (name[0] == '.') return "it starts with '.'";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c == '/') return "it contains '/'";
    if (c == 0) return "it contains a NUL byte";
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.'))
      return "it may only hold ASCII letters, digits, '_', '-' and '.'";
  }
  return NULL;
}

/* A name as it may be logged: non-printable bytes as '?', at most 80 of them. */
static const char *printable(const char *s, char *buf, size_t cap) {
  size_t k = 0;
  for (; s[k] && k + 1 < cap && k < 80; k++)
    buf[k] = s[k] >= 0x20 && s[k] < 0x7f ? s[k] : '?';
  buf[k] = 0;
  return buf;
}

static bool file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static char *join(hs_arena *a, const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = hs_arena_alloc(a, n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static void set_not_ready(hs_model *m, const char *fmt, ...) HS_PRINTF(2, 3);
static void set_not_ready(hs_model *m, const char *fmt, ...) {
  char msg[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  m->ready = false;
  m->reason = hs_arena_strdup(&m->arena, msg);
  if (!m->reason) m->reason = "out of memory";
}

static void fail_status(hs_model *m, hs_status *st) {
  set_not_ready(m, "%s", hs_status_message(st));
  hs_status_free(st);
}

/* ---- manifests ------------------------------------------------------------ */

static hs_status *parse_dims(json_t *js, bool allow_free, const char *what, hs_shape *shape) {
  memset(shape, 0, sizeof *shape);
  if (!json_is_array(js)) return hs_status_new(HS_INVALID_ARGUMENT, "%s: shape must be an array", what);
  if (json_array_size(js) > HS_MAX_RANK)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: rank %zu exceeds %d", what, json_array_size(js),
                         HS_MAX_RANK);
  shape->rank = (int)json_array_size(js);
  for (int i = 0; i < shape->rank; i++) {
    json_t *d = json_array_get(js, (size_t)i);
    json_int_t v = json_is_integer(d) ? json_integer_value(d) : -2;
    if (v < (allow_free ? -1 : 0) || v > ((json_int_t)1 << 40))
      return hs_status_new(HS_INVALID_ARGUMENT, "%s: bad dimension %d", what, i);
    shape->dims[i] = v;
  }
  return NULL;
}

static hs_status *parse_specs(hs_model *m, json_t *root, const char *key, int *n,
                              hs_tensor_spec **out) {
  json_t *arr = json_object_get(root, key);
  if (!json_is_array(arr))
    return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: \"%s\" must be a list", key);
  *n = (int)json_array_size(arr);
  *out = hs_arena_calloc(&m->arena, (size_t)*n + 1, sizeof **out);
  if (!*out) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  for (int i = 0; i < *n; i++) {
    json_t *t = json_array_get(arr, (size_t)i);
    json_t *jn = json_object_get(t, "name"), *jd = json_object_get(t, "datatype");
    if (!json_is_string(jn) || !json_is_string(jd))
      return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: %s[%d] needs a name and a datatype",
                           key, i);
    hs_tensor_spec *s = &(*out)[i];
    s->name = hs_arena_strdup(&m->arena, json_string_value(jn));
    s->dtype = hs_dtype_from_kserve_name(json_string_value(jd));
    if (!s->name) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    if (s->dtype == HS_DTYPE_INVALID)
      return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: %s '%s': unsupported datatype '%s'",
                           key, s->name, json_string_value(jd));
    for (int k = 0; k < i; k++)
      if (strcmp((*out)[k].name, s->name) == 0)
        return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: %s '%s' appears twice", key,
                             s->name);
    char what[256];
    snprintf(what, sizeof what, "bundle.json: %s '%s'", key, s->name);
    HS_RETURN_IF_ERROR(parse_dims(json_object_get(t, "shape"), true, what, &s->shape));
  }
  return NULL;
}

static const char *file_name(json_t *j) {
  if (!json_is_string(j)) return NULL;
  const char *s = json_string_value(j);
  /* A bundle's files live in its folder: no paths. */
  if (!*s || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return NULL;
  return s;
}

static hs_status *parse_dense(hs_model *m, json_t *root, json_t **weights_out) {
  json_t *w = json_object_get(root, "weights");
  if (w && !json_is_null(w) && !json_is_object(w))
    return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: \"weights\" must be an object");
  *weights_out = w;
  if (json_is_object(w)) {
    json_t *f = json_object_get(w, "file");
    if (f && !json_is_null(f)) {
      const char *fn = file_name(f);
      if (!fn) return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: bad weights.file");
      char *path = join(&m->arena, m->dir, fn);
      if (!path) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
      if (!file_exists(path))
        return hs_status_new(HS_NOT_FOUND, "incomplete bundle: weights file %s is missing", fn);
    }
  }
  json_t *progs = json_object_get(root, "programs");
  if (!json_is_array(progs) || json_array_size(progs) == 0)
    return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: \"programs\" must be a non-empty list");
  m->num_programs = (int)json_array_size(progs);
  m->programs = hs_arena_calloc(&m->arena, (size_t)m->num_programs, sizeof *m->programs);
  if (!m->programs) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  for (int p = 0; p < m->num_programs; p++) {
    json_t *jp = json_array_get(progs, (size_t)p);
    hs_dense_program *dp = &m->programs[p];
    const char *fn = file_name(json_object_get(jp, "file"));
    if (!fn) return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: programs[%d] needs a file", p);
    dp->file = join(&m->arena, m->dir, fn);
    if (!dp->file) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    if (!file_exists(dp->file))
      return hs_status_new(HS_NOT_FOUND, "incomplete bundle: program file %s is missing", fn);
    json_t *is = json_object_get(jp, "input_shapes"), *os = json_object_get(jp, "output_shapes");
    if (!json_is_array(is) || (int)json_array_size(is) != m->num_inputs || !json_is_array(os) ||
        (int)json_array_size(os) != m->num_outputs)
      return hs_status_new(HS_INVALID_ARGUMENT,
                           "bundle.json: programs[%d] needs input_shapes for %d inputs and "
                           "output_shapes for %d outputs", p, m->num_inputs, m->num_outputs);
    dp->input_shapes = hs_arena_calloc(&m->arena, (size_t)m->num_inputs + 1, sizeof(hs_shape));
    dp->output_shapes = hs_arena_calloc(&m->arena, (size_t)m->num_outputs + 1, sizeof(hs_shape));
    if (!dp->input_shapes || !dp->output_shapes) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    char what[128];
    for (int i = 0; i < m->num_inputs; i++) {
      snprintf(what, sizeof what, "bundle.json: programs[%d].input_shapes[%d]", p, i);
      HS_RETURN_IF_ERROR(parse_dims(json_array_get(is, (size_t)i), false, what, &dp->input_shapes[i]));
    }
    for (int i = 0; i < m->num_outputs; i++) {
      snprintf(what, sizeof what, "bundle.json: programs[%d].output_shapes[%d]", p, i);
      HS_RETURN_IF_ERROR(parse_dims(json_array_get(os, (size_t)i), false, what, &dp->output_shapes[i]));
    }
  }
  return NULL;
}

static hs_status *parse_meta(hs_model *m, json_t *root) {
  json_t *g = json_object_get(root, "group");
  if (!json_is_array(g)) return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: \"group\" must be a list");
  m->group_size = (int)json_array_size(g);
  m->group_names = hs_arena_calloc(&m->arena, (size_t)m->group_size + 1, sizeof(char *));
  m->group = hs_arena_calloc(&m->arena, (size_t)m->group_size + 1, sizeof(hs_model *));
  if (!m->group_names || !m->group) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  for (int i = 0; i < m->group_size; i++) {
    json_t *n = json_array_get(g, (size_t)i);
    if (!json_is_string(n) || !*json_string_value(n))
      return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: group[%d] must be a model name", i);
    const char *why = hs_model_name_problem(json_string_value(n), json_string_length(n));
    if (why) {
      char shown[96];
      return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: group[%d] '%s' is not a valid model "
                           "name: %s", i, printable(json_string_value(n), shown, sizeof shown), why);
    }
    m->group_names[i] = hs_arena_strdup(&m->arena, json_string_value(n));
    if (!m->group_names[i]) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    if (strcmp(m->group_names[i], m->name) == 0)
      return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: the group lists the meta itself");
  }
  const char *src = file_name(json_object_get(root, "source"));
  if (!src) return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: \"source\" must name a file");
  char *path = join(&m->arena, m->dir, src);
  if (!path) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  if (!file_exists(path)) return hs_status_new(HS_NOT_FOUND, "incomplete bundle: %s is missing", src);
  return NULL;
}

/* Pass 1 for one model: the manifest. */
static hs_status *read_manifest(hs_model *m, json_t **root_out) {
  char *path = join(&m->arena, m->dir, "bundle.json");
  if (!path) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: %s (line %d)", jerr.text, jerr.line);
  *root_out = root;
  if (!json_is_object(root)) return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json is not an object");
  json_t *v = json_object_get(root, "format_version");
  if (!json_is_integer(v) || json_integer_value(v) != 1)
    return hs_status_new(HS_UNIMPLEMENTED, "bundle.json: format_version must be 1");
  json_t *name = json_object_get(root, "name");
  if (!json_is_string(name) || strcmp(json_string_value(name), m->name) != 0)
    return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: \"name\" must equal the folder name '%s'",
                         m->name);
  const char *kind = json_string_value(json_object_get(root, "kind"));
  if (kind && strcmp(kind, "dense") == 0) {
    m->kind = HS_MODEL_DENSE;
  } else if (kind && strcmp(kind, "meta") == 0) {
    m->kind = HS_MODEL_META;
  } else {
    return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: \"kind\" must be \"dense\" or \"meta\"");
  }
  m->kind_known = true;
  HS_RETURN_IF_ERROR(parse_specs(m, root, "inputs", &m->num_inputs, &m->inputs));
  HS_RETURN_IF_ERROR(parse_specs(m, root, "outputs", &m->num_outputs, &m->outputs));
  m->output_names = hs_arena_calloc(&m->arena, (size_t)m->num_outputs + 1, sizeof(char *));
  if (!m->output_names) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
  for (int i = 0; i < m->num_outputs; i++) m->output_names[i] = m->outputs[i].name;
  if (m->kind == HS_MODEL_META) return parse_meta(m, root);
  return NULL;
}

/* ---- dense loading ---------------------------------------------------------- */

static bool spec_accepts(const hs_shape *spec, const hs_shape *s) {
  if (spec->rank != s->rank) return false;
  for (int i = 0; i < s->rank; i++)
    if (spec->dims[i] != -1 && spec->dims[i] != s->dims[i]) return false;
  return true;
}

static hs_status *load_dense(hs_model *m, json_t *weights, int threads, const char *device) {
  const char *wfile = NULL;
  const char **params = NULL;
  int n_params = 0;
  if (json_is_object(weights)) {
    json_t *f = json_object_get(weights, "file");
    if (f && !json_is_null(f)) wfile = join(&m->arena, m->dir, json_string_value(f));
    json_t *p = json_object_get(weights, "params");
    if (p && !json_is_array(p))
      return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: weights.params must be a list");
    n_params = p ? (int)json_array_size(p) : 0;
    params = hs_arena_calloc(&m->arena, (size_t)n_params + 1, sizeof(char *));
    if (!params) return hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < n_params; i++) {
      params[i] = json_string_value(json_array_get(p, (size_t)i));
      if (!params[i])
        return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: weights.params[%d] must be a string", i);
    }
  }
  if (n_params > 0 && !wfile)
    return hs_status_new(HS_INVALID_ARGUMENT, "bundle.json: weights.params without weights.file");
  hs_program_options opt = {NULL, threads, device};
  for (int p = 0; p < m->num_programs; p++) {
    hs_dense_program *dp = &m->programs[p];
    const char *base = strrchr(dp->file, '/') + 1;
    HS_RETURN_IF_ERROR(hs_program_load(dp->file, &opt, &dp->program));
    if (n_params > 0)
      HS_RETURN_IF_ERROR(hs_status_annotate(
          hs_program_bind_weights(dp->program, wfile, params, n_params), "%s: binding weights", base));
    if (hs_program_num_inputs(dp->program) != m->num_inputs ||
        hs_program_num_outputs(dp->program) != m->num_outputs)
      return hs_status_new(HS_INVALID_ARGUMENT,
                           "%s: @main takes %d inputs and returns %d results after %d weights; "
                           "bundle.json lists %d inputs and %d outputs", base,
                           hs_program_num_inputs(dp->program), hs_program_num_outputs(dp->program),
                           n_params, m->num_inputs, m->num_outputs);
    char a[128], b[128];
    for (int i = 0; i < m->num_inputs + m->num_outputs; i++) {
      bool in = i < m->num_inputs;
      int k = in ? i : i - m->num_inputs;
      const hs_tensor_spec *spec = in ? &m->inputs[k] : &m->outputs[k];
      const hs_shape *want = in ? &dp->input_shapes[k] : &dp->output_shapes[k];
      hs_dtype dt;
      hs_shape sh;
      if (in)
        hs_program_input(dp->program, k, &dt, &sh);
      else
        hs_program_output(dp->program, k, &dt, &sh);
      if (dt != spec->dtype || !hs_shape_equal(&sh, want) || !spec_accepts(&spec->shape, want))
        return hs_status_new(HS_INVALID_ARGUMENT,
                             "%s: %s '%s' is %s %s in the program, bundle.json says %s %s", base,
                             in ? "input" : "output", spec->name, hs_dtype_kserve_name(dt) ? hs_dtype_kserve_name(dt) : hs_dtype_name(dt),
                             hs_shape_text(&sh, a, sizeof a), hs_dtype_kserve_name(spec->dtype),
                             hs_shape_text(want, b, sizeof b));
    }
  }
  return NULL;
}

/* ---- the repository -------------------------------------------------------- */

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void free_model(hs_model *m) {
  if (!m) return;
  if (m->registered || m->dl) hs_meta_bundle_unload(m->registered ? m->name : NULL, m->dl);
  for (int p = 0; p < m->num_programs; p++) hs_program_free(m->programs[p].program);
  hs_arena_free(&m->arena);
  free(m);
}

void hs_repository_free(hs_repository *repo) {
  if (!repo) return;
  for (int i = 0; i < repo->num_models; i++) free_model(repo->models[i]);
  free(repo->models);
  free(repo->dir);
  free(repo);
}

hs_model *hs_repository_find(const hs_repository *repo, const char *name) {
  int lo = 0, hi = repo->num_models - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    int c = strcmp(repo->models[mid]->name, name);
    if (c == 0) return repo->models[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return NULL;
}

hs_model *hs_model_group_member(const hs_model *meta, const char *name) {
  for (int i = 0; i < meta->group_size; i++)
    if (strcmp(meta->group_names[i], name) == 0) return meta->group[i];
  return NULL;
}

static hs_status *list_dir(const char *dir, char ***names_out, int *n_out) {
  DIR *d = opendir(dir);
  if (!d) return hs_status_new(HS_IO_ERROR, "cannot open model repository %s: %s", dir, strerror(errno));
  char **names = NULL;
  int n = 0, cap = 0;
  hs_status *st = NULL;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue; /* hidden: temp folders, caches */
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    char *path = malloc(len);
    if (!path) {
      st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
      break;
    }
    snprintf(path, len, "%s/%s", dir, e->d_name);
    struct stat sb;
    bool is_dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(path);
    if (!is_dir) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      char **nn = realloc(names, sizeof *nn * (size_t)cap);
      if (!nn) {
        st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
        break;
      }
      names = nn;
    }
    if (!(names[n] = strdup(e->d_name))) {
      st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
      break;
    }
    n++;
  }
  closedir(d);
  if (st) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return st;
  }
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  *names_out = names;
  *n_out = n;
  return NULL;
}

static const char *default_include_dir(void) {
  const char *env = getenv("HLOSERVE_INCLUDE_DIR");
  if (env && *env) return env;
#ifdef HS_DEFAULT_INCLUDE_DIR
  return HS_DEFAULT_INCLUDE_DIR;
#else
  return "include";
#endif
}

static const char *choose_cache_dir(const char *repo_dir, const char *given, char *buf, size_t cap) {
  if (given && *given) return given;
  snprintf(buf, cap, "%s/.hloserve-cache", repo_dir);
  if (mkdir(buf, 0755) == 0 || errno == EEXIST) {
    struct stat sb;
    if (stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode) && access(buf, W_OK) == 0) return buf;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(buf, cap, "%s/hloserve-cache-%d", tmp && *tmp ? tmp : "/tmp", (int)getuid());
  return buf;
}

hs_status *hs_repository_load(const hs_repository_options *opt, hs_repository **out) {
  *out = NULL;
  char **names = NULL;
  int n = 0;
  HS_RETURN_IF_ERROR(list_dir(opt->dir, &names, &n));
  hs_repository *repo = calloc(1, sizeof *repo);
  hs_status *st = NULL;
  if (!repo || !(repo->dir = strdup(opt->dir)) ||
      !(repo->models = calloc((size_t)n + 1, sizeof *repo->models))) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  json_t **roots = calloc((size_t)n + 1, sizeof *roots);
  if (!roots) {
    st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  /* Pass 1: manifests.  A folder without bundle.json is not a bundle. */
  for (int i = 0; i < n; i++) {
    char path[4096];
    const char *bad_name = hs_model_name_problem(names[i], strlen(names[i]));
    if (bad_name) {
      /* Never a model: its name could not be routed, cached or labelled safely. */
      hs_log("skipping folder '%s': not a valid model name (%s)",
             printable(names[i], path, sizeof path), bad_name);
      continue;
    }
    snprintf(path, sizeof path, "%s/%s/bundle.json", opt->dir, names[i]);
    if (!file_exists(path)) {
      hs_log("skipping %s: no bundle.json (not a bundle)", names[i]);
      continue;
    }
    hs_model *m = calloc(1, sizeof *m);
    if (!m) {
      st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
      break;
    }
    hs_arena_init(&m->arena, 1024);
    m->index = repo->num_models;
    m->name = hs_arena_strdup(&m->arena, names[i]);
    snprintf(path, sizeof path, "%s/%s", opt->dir, names[i]);
    m->dir = hs_arena_strdup(&m->arena, path);
    m->addressable = true;
    m->ready = true;
    repo->models[repo->num_models++] = m;
    if (!m->name || !m->dir) {
      st = hs_status_new(HS_OUT_OF_MEMORY, "out of memory");
      break;
    }
    hs_status *e = read_manifest(m, &roots[m->index]);
    if (!e && m->kind == HS_MODEL_DENSE) {
      json_t *w = NULL;
      e = parse_dense(m, roots[m->index], &w);
    }
    if (e) fail_status(m, e);
  }
  /* Pass 2: group members are internal. */
  for (int i = 0; st == NULL && i < repo->num_models; i++) {
    hs_model *m = repo->models[i];
    if (m->kind != HS_MODEL_META || !m->kind_known) continue;
    for (int g = 0; g < m->group_size; g++) {
      /* A manifest rejected part way through its group leaves the rest unset. */
      if (!m->group_names[g]) continue;
      hs_model *member = hs_repository_find(repo, m->group_names[g]);
      if (!member) continue;
      member->addressable = false;
      if (!member->owner) member->owner = m->name;
    }
  }
  /* Pass 3: dense programs. */
  for (int i = 0; st == NULL && i < repo->num_models; i++) {
    hs_model *m = repo->models[i];
    if (!m->ready || m->kind != HS_MODEL_DENSE) continue;
    if (opt->skip && opt->skip(m, opt->skip_cls)) continue;
    int64_t t0 = hs_now_ns();
    hs_status *e = load_dense(m, json_object_get(roots[i], "weights"), opt->intra_op_threads, opt->device);
    if (e) {
      fail_status(m, e);
    } else {
      hs_log("loaded %s (dense, %d program%s) in %.2f s", m->name, m->num_programs,
             m->num_programs == 1 ? "" : "s", (double)(hs_now_ns() - t0) / 1e9);
    }
  }
  /* Pass 4: meta bundles, then their groups. */
  char cache_buf[4096];
  hs_meta_build_options bo = {
      opt->cc, opt->include_dir && *opt->include_dir ? opt->include_dir : default_include_dir(),
      choose_cache_dir(opt->dir, opt->cache_dir, cache_buf, sizeof cache_buf)};
  for (int i = 0; st == NULL && i < repo->num_models; i++) {
    hs_model *m = repo->models[i];
    if (!m->ready || m->kind != HS_MODEL_META) continue;
    const char *src = json_string_value(json_object_get(roots[i], "source"));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", m->dir, src);
    int64_t t0 = hs_now_ns();
    const bool skip = opt->skip && opt->skip(m, opt->skip_cls);
    hs_status *e = skip ? NULL : hs_meta_bundle_load(&bo, m->name, path, &m->dl, &m->run);
    if (e) {
      fail_status(m, e);
      continue;
    }
    m->registered = !skip;
    for (int g = 0; g < m->group_size && m->ready; g++) {
      hs_model *member = hs_repository_find(repo, m->group_names[g]);
      m->group[g] = member;
      if (!member)
        set_not_ready(m, "group member %s is not in the repository", m->group_names[g]);
      else if (member->kind_known && member->kind != HS_MODEL_DENSE)
        set_not_ready(m, "group member %s is a meta bundle; groups hold dense bundles",
                      member->name);
      else if (!member->ready)
        set_not_ready(m, "group member %s is not ready: %s", member->name, member->reason);
    }
    if (m->ready && !skip)
      hs_log("loaded %s (meta, group of %d) in %.2f s", m->name, m->group_size,
             (double)(hs_now_ns() - t0) / 1e9);
  }
  for (int i = 0; i < repo->num_models; i++) {
    hs_model *m = repo->models[i];
    if (!m->ready) hs_log("model %s is not ready: %s", m->name, m->reason);
    if (roots[i]) json_decref(roots[i]);
  }
  free(roots);
done:
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  if (st) {
    hs_repository_free(repo);
    return st;
  }
  *out = repo;
  return NULL;
}

hs_status *hs_model_match_inputs(const hs_model *m, const hs_named_tensor *inputs, int n,
                                 const hs_tensor **ordered, int *program) {
  *program = -1;
  char a[128], b[128];
  for (int j = 0; j < n; j++) {
    bool known = false;
    for (int i = 0; i < m->num_inputs && !known; i++) known = strcmp(m->inputs[i].name, inputs[j].name) == 0;
    if (!known) {
      char list[512];
      size_t len = 0;
      list[0] = 0;
      for (int i = 0; i < m->num_inputs && len + 4 < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", m->inputs[i].name);
      return hs_status_new(HS_INVALID_ARGUMENT, "%s has no input '%s' (its inputs: %s)", m->name,
                           inputs[j].name, list);
    }
    for (int k = 0; k < j; k++)
      if (strcmp(inputs[k].name, inputs[j].name) == 0)
        return hs_status_new(HS_INVALID_ARGUMENT, "input '%s' is given twice", inputs[j].name);
  }
  for (int i = 0; i < m->num_inputs; i++) {
    const hs_tensor_spec *s = &m->inputs[i];
    const hs_tensor *t = NULL;
    for (int j = 0; j < n && !t; j++)
      if (strcmp(inputs[j].name, s->name) == 0) t = &inputs[j].tensor;
    if (!t) return hs_status_new(HS_INVALID_ARGUMENT, "%s: missing input '%s'", m->name, s->name);
    if (t->dtype != s->dtype)
      return hs_status_new(HS_INVALID_ARGUMENT, "%s: input '%s' must be %s, got %s", m->name, s->name,
                           hs_dtype_kserve_name(s->dtype),
                           hs_dtype_kserve_name(t->dtype) ? hs_dtype_kserve_name(t->dtype)
                                                          : hs_dtype_name(t->dtype));
    if (!spec_accepts(&s->shape, &t->shape))
      return hs_status_new(HS_INVALID_ARGUMENT, "%s: input '%s' must have shape %s, got %s", m->name,
                           s->name, hs_shape_text(&s->shape, a, sizeof a),
                           hs_shape_text(&t->shape, b, sizeof b));
    ordered[i] = t;
  }
  if (m->kind != HS_MODEL_DENSE) return NULL;
  for (int p = 0; p < m->num_programs; p++) {
    bool match = true;
    for (int i = 0; i < m->num_inputs && match; i++)
      match = hs_shape_equal(&ordered[i]->shape, &m->programs[p].input_shapes[i]);
    if (match) {
      *program = p;
      return NULL;
    }
  }
  /* Several programs: say which shapes exist. */
  char list[512];
  size_t len = 0;
  list[0] = 0;
  for (int p = 0; p < m->num_programs && len + 8 < sizeof list; p++) {
    len += (size_t)snprintf(list + len, sizeof list - len, "%s(", p ? ", " : "");
    for (int i = 0; i < m->num_inputs && len + 8 < sizeof list; i++)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                              hs_shape_text(&m->programs[p].input_shapes[i], a, sizeof a));
    if (len + 2 < sizeof list) len += (size_t)snprintf(list + len, sizeof list - len, ")");
  }
  return hs_status_new(HS_INVALID_ARGUMENT, "%s: the input shapes match no compiled program "
                       "(compiled for %s)", m->name, list);
}
