/*
 * la_dnnl.c - oneDNN matmul and convolution primitives for the f32 fast paths.
 *
 * Primitives are expensive to create (JIT code generation) and cheap to run,
 * so they are made at prepare() time and kept in a process-wide cache keyed
 * by the full problem description: a model with fifty identical 3x3 convs
 * gets one primitive, and reloading a model reuses them.  The kernel contract
 * has no destructor for kernel_state, so cached primitives live until the
 * process exits (bounded by the number of distinct problems; still reachable,
 * so not a leak).
 *
 * Thread safety: a oneDNN primitive may run concurrently from several
 * threads.  Everything per-call (memory objects, the stream, scratchpad and
 * reorder buffers) is created per run() in the caller's workspace; the
 * primitives use the user scratchpad mode so they never share hidden
 * buffers.
 *
 * Layouts: matmul takes the operands in place through strides.  Convolution
 * is created with format "any", so oneDNN picks its preferred (blocked)
 * layouts, and reorders from and to the user's strided tensors are added
 * where the choice differs (weights are reordered on every call: they are an
 * operand like any other).
 *
 * Without oneDNN (HS_HAVE_DNNL undefined) every entry point reports "refused"
 * and the callers use their own paths.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels/la_common.h"

#ifdef HS_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>

enum { K_MATMUL, K_CONV };

struct hs_la_dnnl_prim {
  unsigned char key[sizeof(hs_la_dnnl_conv_desc) + 8];
  size_t key_len;
  struct hs_la_dnnl_prim *next;
  int kind;
  dnnl_primitive_t prim;
  dnnl_memory_desc_t usr_md[3], prim_md[3]; /* src, weights, dst */
  dnnl_primitive_t reorder[3];              /* NULL: use the user's buffer directly */
  dnnl_memory_desc_t scratch_md;
  size_t buf_off[4], ws_bytes;              /* reorder buffers [0..2], scratchpad [3] */
  char impl[64];
};

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hs_la_dnnl_prim *cache;

static void engine_init(void) {
  if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
}

static struct hs_la_dnnl_prim *cache_find(const void *key, size_t len) {
  for (struct hs_la_dnnl_prim *p = cache; p; p = p->next)
    if (p->key_len == len && memcmp(p->key, key, len) == 0) return p;
  return NULL;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static void destroy(struct hs_la_dnnl_prim *p) {
  if (!p) return;
  if (p->prim) dnnl_primitive_destroy(p->prim);
  for (int i = 0; i < 3; i++)
    if (p->reorder[i]) dnnl_primitive_destroy(p->reorder[i]);
  free(p);
}

/* Creates reorders where the primitive's layout differs from the user's and
 * lays out the workspace. */
static bool finish(struct hs_la_dnnl_prim *p, const_dnnl_primitive_desc_t pd) {
  static const dnnl_query_t q[3] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
  size_t off = 0;
  for (int i = 0; i < 3; i++) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q[i], 0);
    if (!md) return false;
    p->prim_md[i] = *md;
    p->buf_off[i] = off;
    if (dnnl_memory_desc_equal(&p->usr_md[i], md)) continue;
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = i == 2 ? md : &p->usr_md[i];
    const dnnl_memory_desc_t *to = i == 2 ? &p->usr_md[i] : md;
    if (dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, NULL) != dnnl_success)
      return false;
    dnnl_status_t s = dnnl_primitive_create(&p->reorder[i], rpd);
    dnnl_primitive_desc_destroy(rpd);
    if (s != dnnl_success) {
      p->reorder[i] = NULL;
      return false;
    }
    off += align64(dnnl_memory_desc_get_size(md));
  }
  const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  if (sp) p->scratch_md = *sp;
  p->buf_off[3] = off;
  off += sp ? align64(dnnl_memory_desc_get_size(sp)) : 0;
  p->ws_bytes = off;
  const char *impl = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl) {
    strncpy(p->impl, impl, sizeof p->impl - 1);
    p->impl[sizeof p->impl - 1] = 0;
  }
  return true;
}

static dnnl_primitive_attr_t user_scratchpad_attr(void) {
  dnnl_primitive_attr_t attr = NULL;
  if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
  if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) {
    dnnl_primitive_attr_destroy(attr);
    return NULL;
  }
  return attr;
}

static struct hs_la_dnnl_prim *build(int kind, const void *key, size_t key_len,
                                     const void *op_desc) {
  struct hs_la_dnnl_prim *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->kind = kind;
  memcpy(p->key, key, key_len);
  p->key_len = key_len;
  dnnl_primitive_attr_t attr = user_scratchpad_attr();
  if (!attr) {
    free(p);
    return NULL;
  }
  bool ok = false;
  if (kind == K_MATMUL) {
    const int64_t *k = key; /* B, M, N, K, src strides[3], wei strides[3] */
    int64_t B = k[0], M = k[1], N = k[2], K = k[3];
    int nd = B == 1 ? 2 : 3;
    dnnl_dims_t sd, wd, dd, ss, ws;
    if (nd == 3) {
      sd[0] = wd[0] = dd[0] = B;
      ss[0] = k[4];
      ws[0] = k[7];
    }
    sd[nd - 2] = M, sd[nd - 1] = K;
    wd[nd - 2] = K, wd[nd - 1] = N;
    dd[nd - 2] = M, dd[nd - 1] = N;
    ss[nd - 2] = k[5], ss[nd - 1] = k[6];
    ws[nd - 2] = k[8], ws[nd - 1] = k[9];
    dnnl_matmul_desc_t md;
    if (dnnl_memory_desc_init_by_strides(&p->usr_md[0], nd, sd, dnnl_f32, ss) == dnnl_success &&
        dnnl_memory_desc_init_by_strides(&p->usr_md[1], nd, wd, dnnl_f32, ws) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&p->usr_md[2], nd, dd, dnnl_f32,
                                     nd == 3 ? dnnl_abc : dnnl_ab) == dnnl_success &&
        dnnl_matmul_desc_init(&md, &p->usr_md[0], &p->usr_md[1], NULL, &p->usr_md[2]) ==
            dnnl_success) {
      dnnl_primitive_desc_t pd;
      if (dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) == dnnl_success) {
        ok = finish(p, pd) && dnnl_primitive_create(&p->prim, pd) == dnnl_success;
        /* matmul on user layouts must not need reorders */
        for (int i = 0; i < 3; i++) ok = ok && !p->reorder[i];
        dnnl_primitive_desc_destroy(pd);
      }
    }
  } else {
    const hs_la_dnnl_conv_desc *d = op_desc;
    int nd = (int)d->nsp + 2;
    dnnl_dims_t sd, wd, dd, ss, ws, dst_s, strides, dil, pl, pr;
    sd[0] = d->n, sd[1] = d->ci;
    dd[0] = d->n, dd[1] = d->co;
    int wo = d->groups > 1 ? 1 : 0; /* weights: [g,] o, i, spatial */
    if (wo) {
      wd[0] = d->groups;
      ws[0] = d->wei_strides[0];
    }
    wd[wo] = d->co / d->groups, ws[wo] = d->wei_strides[1];
    wd[wo + 1] = d->ci / d->groups, ws[wo + 1] = d->wei_strides[2];
    ss[0] = d->src_strides[0], ss[1] = d->src_strides[1];
    dst_s[0] = d->dst_strides[0], dst_s[1] = d->dst_strides[1];
    for (int i = 0; i < d->nsp; i++) {
      sd[2 + i] = d->in[i];
      ss[2 + i] = d->src_strides[2 + i];
      dd[2 + i] = d->out[i];
      dst_s[2 + i] = d->dst_strides[2 + i];
      wd[wo + 2 + i] = d->k[i];
      ws[wo + 2 + i] = d->wei_strides[3 + i];
      strides[i] = d->stride[i];
      dil[i] = d->dil[i] - 1;
      pl[i] = d->pad_lo[i];
      pr[i] = d->pad_hi[i];
    }
    dnnl_memory_desc_t s_any, w_any, d_any;
    dnnl_convolution_desc_t cd;
    if (dnnl_memory_desc_init_by_strides(&p->usr_md[0], nd, sd, dnnl_f32, ss) == dnnl_success &&
        dnnl_memory_desc_init_by_strides(&p->usr_md[1], nd + wo, wd, dnnl_f32, ws) ==
            dnnl_success &&
        dnnl_memory_desc_init_by_strides(&p->usr_md[2], nd, dd, dnnl_f32, dst_s) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&s_any, nd, sd, dnnl_f32, dnnl_format_tag_any) ==
            dnnl_success &&
        dnnl_memory_desc_init_by_tag(&w_any, nd + wo, wd, dnnl_f32, dnnl_format_tag_any) ==
            dnnl_success &&
        dnnl_memory_desc_init_by_tag(&d_any, nd, dd, dnnl_f32, dnnl_format_tag_any) ==
            dnnl_success &&
        dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                   dnnl_convolution_direct, &s_any, &w_any, NULL,
                                                   &d_any, strides, dil, pl, pr) == dnnl_success) {
      dnnl_primitive_desc_t pd;
      if (dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL) == dnnl_success) {
        ok = finish(p, pd) && dnnl_primitive_create(&p->prim, pd) == dnnl_success;
        dnnl_primitive_desc_destroy(pd);
      }
    }
  }
  dnnl_primitive_attr_destroy(attr);
  if (!ok) {
    destroy(p);
    return NULL;
  }
  return p;
}

static const struct hs_la_dnnl_prim *lookup(int kind, const void *key, size_t key_len,
                                            const void *op_desc) {
  if (getenv("HS_NO_DNNL")) return NULL;
  pthread_once(&engine_once, engine_init);
  if (!engine) return NULL;
  pthread_mutex_lock(&cache_mu);
  struct hs_la_dnnl_prim *p = cache_find(key, key_len);
  if (!p) {
    p = build(kind, key, key_len, op_desc);
    if (p) {
      p->next = cache;
      cache = p;
    }
  }
  pthread_mutex_unlock(&cache_mu);
  return p;
}

const hs_la_dnnl_prim *hs_la_dnnl_matmul(int64_t B, int64_t M, int64_t N, int64_t K,
                                         const int64_t src_strides[3],
                                         const int64_t wei_strides[3]) {
  int64_t key[11] = {B, M, N, K, src_strides[0], src_strides[1], src_strides[2],
                     wei_strides[0], wei_strides[1], wei_strides[2], K_MATMUL};
  return lookup(K_MATMUL, key, sizeof key, NULL);
}

const hs_la_dnnl_prim *hs_la_dnnl_conv(const hs_la_dnnl_conv_desc *d) {
  return lookup(K_CONV, d, sizeof *d, d);
}

size_t hs_la_dnnl_workspace(const hs_la_dnnl_prim *p) { return p ? p->ws_bytes : 0; }

const char *hs_la_dnnl_impl(const hs_la_dnnl_prim *p) { return p ? p->impl : "none"; }

/* Runs primitive p (with reorders) on user buffers. */
static bool execute(const hs_la_dnnl_prim *p, void *const usr[3], void *workspace) {
  static const int arg_of[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
  dnnl_stream_t stream = NULL;
  dnnl_memory_t umem[3] = {NULL, NULL, NULL}, pmem[3] = {NULL, NULL, NULL}, smem = NULL;
  bool ok = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success;
  for (int i = 0; i < 3 && ok; i++) {
    ok = dnnl_memory_create(&umem[i], &p->usr_md[i], engine, usr[i]) == dnnl_success;
    if (ok && p->reorder[i])
      ok = dnnl_memory_create(&pmem[i], &p->prim_md[i], engine,
                              (unsigned char *)workspace + p->buf_off[i]) == dnnl_success;
  }
  if (ok && p->scratch_md.ndims > 0)
    ok = dnnl_memory_create(&smem, &p->scratch_md, engine,
                            (unsigned char *)workspace + p->buf_off[3]) == dnnl_success;
  for (int i = 0; i < 2 && ok; i++)
    if (p->reorder[i]) {
      dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, umem[i]}, {DNNL_ARG_TO, pmem[i]}};
      ok = dnnl_primitive_execute(p->reorder[i], stream, 2, a) == dnnl_success;
    }
  if (ok) {
    dnnl_exec_arg_t a[4];
    int n = 0;
    for (int i = 0; i < 3; i++) {
      a[n].arg = arg_of[i];
      a[n].memory = p->reorder[i] ? pmem[i] : umem[i];
      n++;
    }
    if (smem) {
      a[n].arg = DNNL_ARG_SCRATCHPAD;
      a[n].memory = smem;
      n++;
    }
    ok = dnnl_primitive_execute(p->prim, stream, n, a) == dnnl_success;
  }
  if (ok && p->reorder[2]) {
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, pmem[2]}, {DNNL_ARG_TO, umem[2]}};
    ok = dnnl_primitive_execute(p->reorder[2], stream, 2, a) == dnnl_success;
  }
  if (stream) ok = dnnl_stream_wait(stream) == dnnl_success && ok;
  for (int i = 0; i < 3; i++) {
    if (umem[i]) dnnl_memory_destroy(umem[i]);
    if (pmem[i]) dnnl_memory_destroy(pmem[i]);
  }
  if (smem) dnnl_memory_destroy(smem);
  if (stream) dnnl_stream_destroy(stream);
  return ok;
}

bool hs_la_dnnl_matmul_run(const hs_la_dnnl_prim *p, const float *src, const float *wei, float *dst) {
  if (!p || p->kind != K_MATMUL) return false;
  void *u[3] = {(void *)src, (void *)wei, dst};
  void *ws = NULL;
  if (p->ws_bytes && posix_memalign(&ws, 64, p->ws_bytes) != 0) return false;
  bool ok = execute(p, u, ws);
  free(ws);
  return ok;
}

bool hs_la_dnnl_conv_run(const hs_la_dnnl_prim *p, const float *src, const float *wei, float *dst,
                         void *workspace) {
  if (!p || p->kind != K_CONV) return false;
  void *u[3] = {(void *)src, (void *)wei, dst};
  return execute(p, u, workspace);
}

#else /* !HS_HAVE_DNNL */

const hs_la_dnnl_prim *hs_la_dnnl_matmul(int64_t B, int64_t M, int64_t N, int64_t K,
                                         const int64_t src_strides[3],
                                         const int64_t wei_strides[3]) {
  return NULL;
}
bool hs_la_dnnl_matmul_run(const hs_la_dnnl_prim *p, const float *src, const float *wei, float *dst) {
  return false;
}
const hs_la_dnnl_prim *hs_la_dnnl_conv(const hs_la_dnnl_conv_desc *d) { return NULL; }
size_t hs_la_dnnl_workspace(const hs_la_dnnl_prim *p) { return 0; }
bool hs_la_dnnl_conv_run(const hs_la_dnnl_prim *p, const float *src, const float *wei, float *dst,
                         void *workspace) {
  return false;
}
const char *hs_la_dnnl_impl(const hs_la_dnnl_prim *p) { return "none"; }

#endif
