/*
 * la_dnnl.c - oneDNN matmul and convolution primitives for the f32 fast paths.
 *
 * Primitives are expensive to create (JIT code generation) and cheap to run,
 * so they are made at compile or bind time and kept in a process-wide cache
 * keyed by the full problem description: a model with fifty identical 3x3
 * convs gets one primitive, and reloading a model reuses them.  Reorder
 * primitives are cached the same way, keyed by their (from, to) formats.  The
 * kernel contract has no destructor for kernel_state, so cached primitives
 * live until the process exits (bounded by the number of distinct problems;
 * still reachable, so not a leak).
 *
 * Convolution is split in two: the cached primitive (problem + epilogue,
 * created with format "any" so oneDNN picks its preferred layouts) and a
 * per-op plan in the program arena (hs_la_dnnl_conv) that says where each of
 * the op's tensors really lives.  By default that is the user's strided
 * layout and the plan adds reorders to and from the primitive's formats;
 * the bind-time passes (conv_fold.c) may declare a tensor "native" - already
 * in the primitive's format, because its producer and all its consumers are
 * convolutions that agree on it - and then no reorder is made.  Weights bound
 * for good are reordered once, when the plan is made, never per call.
 *
 * The epilogue is oneDNN's own: a bias, a sum post-op (dst = conv + s * dst,
 * so the residual is first copied or reordered into the dst buffer) and an
 * eltwise relu post-op.
 *
 * Thread safety: a oneDNN primitive may run concurrently from several
 * threads.  Everything per-call (memory objects, the stream, scratchpad and
 * reorder buffers) is created per run() in the caller's workspace; the
 * primitives use the user scratchpad mode so they never share hidden
 * buffers.
 *
 * Threads: Debian's oneDNN runs on OpenMP.  Its primitives are created with
 * the process's OpenMP maximum (their scratchpads are sized for it); each
 * run then asks OpenMP for no more threads than the executor's pool has
 * (omp_set_num_threads is per calling thread).  We look the OpenMP entry
 * points up at run time in whatever OpenMP libdnnl brought, rather than
 * linking one of our own.
 *
 * Without oneDNN (HS_HAVE_DNNL undefined) every entry point reports "refused"
 * and the callers use their own paths.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels/la_common.h"

#ifdef HS_HAVE_DNNL

#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>

enum { K_MATMUL, K_CONV };

#define KEY_MAX (sizeof(hs_la_dnnl_conv_desc) + 8)

struct hs_la_dnnl_prim {
  unsigned char key[KEY_MAX];
  size_t key_len;
  struct hs_la_dnnl_prim *next;
  int kind;
  dnnl_primitive_t prim;
  /* conv: the primitive's src, weights, dst formats; matmul: the user's */
  dnnl_memory_desc_t md[3];
  dnnl_memory_desc_t bias_md;
  dnnl_memory_desc_t scratch_md;
  size_t scratch_bytes;
  char impl[64];
};

typedef struct reorder {
  struct reorder *next;
  dnnl_memory_desc_t from, to;
  dnnl_primitive_t prim;
} reorder;

struct hs_la_dnnl_conv {
  const struct hs_la_dnnl_prim *p;
  dnnl_memory_desc_t usr[4];   /* src, weights, dst, residual as the op stores them */
  dnnl_primitive_t ro[4];      /* src: usr->prim; wei: usr->prim; dst: prim->usr;
                                  res: usr->prim dst; NULL = none needed */
  size_t off[4], ws_bytes;     /* workspace: src, wei, dst buffers, scratchpad */
  const void *packed;          /* weights in the primitive's format, or NULL */
  const float *bias;
  bool with_sum, with_bias;
};

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hs_la_dnnl_prim *cache;
static reorder *reorders;
static void (*omp_set_threads)(int);
static int (*omp_max_threads)(void);
static int create_threads; /* OpenMP's maximum when primitives are created */

static void engine_init(void) {
  if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) engine = NULL;
  void *s = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
  void *g = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
  if (s && g) {
    memcpy(&omp_set_threads, &s, sizeof s);
    memcpy(&omp_max_threads, &g, sizeof g);
    create_threads = omp_max_threads();
  }
}

static bool engine_ready(void) {
  if (getenv("HS_NO_DNNL")) return false;
  pthread_once(&engine_once, engine_init);
  return engine != NULL;
}

void hs_la_dnnl_use_threads(int n) {
  if (!omp_set_threads || create_threads < 1) return;
  if (n < 1) n = 1;
  if (n > create_threads) n = create_threads;
  if (omp_max_threads() != n) omp_set_threads(n);
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static struct hs_la_dnnl_prim *cache_find(const void *key, size_t len) {
  for (struct hs_la_dnnl_prim *p = cache; p; p = p->next)
    if (p->key_len == len && memcmp(p->key, key, len) == 0) return p;
  return NULL;
}

static void destroy(struct hs_la_dnnl_prim *p) {
  if (!p) return;
  if (p->prim) dnnl_primitive_destroy(p->prim);
  free(p);
}

static dnnl_primitive_attr_t make_attr(const hs_la_dnnl_conv_desc *d) {
  dnnl_primitive_attr_t attr = NULL;
  if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
  bool ok = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
  if (ok && d && (d->with_sum || d->with_relu)) {
    dnnl_post_ops_t po = NULL;
    ok = dnnl_post_ops_create(&po) == dnnl_success;
    if (ok && d->with_sum) {
      float s;
      uint32_t bits = (uint32_t)d->sum_scale_bits;
      memcpy(&s, &bits, sizeof s);
      ok = dnnl_post_ops_append_sum(po, s) == dnnl_success;
    }
    if (ok && d->with_relu) ok = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) == dnnl_success;
    if (ok) ok = dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    if (po) dnnl_post_ops_destroy(po);
  }
  if (!ok) {
    dnnl_primitive_attr_destroy(attr);
    return NULL;
  }
  return attr;
}

/* Records what every primitive needs from its descriptor. */
static bool finish(struct hs_la_dnnl_prim *p, const_dnnl_primitive_desc_t pd) {
  static const dnnl_query_t q[3] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
  if (p->kind == K_CONV)
    for (int i = 0; i < 3; i++) {
      const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q[i], 0);
      if (!md) return false;
      p->md[i] = *md;
    }
  const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  if (sp) p->scratch_md = *sp;
  p->scratch_bytes = sp ? align64(dnnl_memory_desc_get_size(sp)) : 0;
  const char *impl = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl) {
    strncpy(p->impl, impl, sizeof p->impl - 1);
    p->impl[sizeof p->impl - 1] = 0;
  }
  return dnnl_primitive_create(&p->prim, pd) == dnnl_success;
}

static bool build_matmul(struct hs_la_dnnl_prim *p, const int64_t *k) {
  /* k: B, M, N, K, src strides[3], wei strides[3] */
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
  if (dnnl_memory_desc_init_by_strides(&p->md[0], nd, sd, dnnl_f32, ss) != dnnl_success ||
      dnnl_memory_desc_init_by_strides(&p->md[1], nd, wd, dnnl_f32, ws) != dnnl_success ||
      dnnl_memory_desc_init_by_tag(&p->md[2], nd, dd, dnnl_f32, nd == 3 ? dnnl_abc : dnnl_ab) != dnnl_success ||
      dnnl_matmul_desc_init(&md, &p->md[0], &p->md[1], NULL, &p->md[2]) != dnnl_success)
    return false;
  dnnl_primitive_attr_t attr = make_attr(NULL);
  if (!attr) return false;
  dnnl_primitive_desc_t pd;
  bool ok = false;
  if (dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) == dnnl_success) {
    ok = finish(p, pd);
    /* matmul runs on the user's layouts: it must not want others */
    static const dnnl_query_t q[3] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
    for (int i = 0; i < 3 && ok; i++) {
      const dnnl_memory_desc_t *m = dnnl_primitive_desc_query_md(pd, q[i], 0);
      ok = m && dnnl_memory_desc_equal(m, &p->md[i]);
    }
    dnnl_primitive_desc_destroy(pd);
  }
  dnnl_primitive_attr_destroy(attr);
  return ok;
}

static bool build_conv(struct hs_la_dnnl_prim *p, const hs_la_dnnl_conv_desc *d) {
  int nd = (int)d->nsp + 2;
  int wo = d->groups > 1 ? 1 : 0; /* weights: [g,] o, i, spatial */
  dnnl_dims_t sd, wd, dd, bd, strides, dil, pl, pr;
  sd[0] = d->n, sd[1] = d->ci;
  dd[0] = d->n, dd[1] = d->co;
  if (wo) wd[0] = d->groups;
  wd[wo] = d->co / d->groups;
  wd[wo + 1] = d->ci / d->groups;
  bd[0] = d->co;
  for (int i = 0; i < d->nsp; i++) {
    sd[2 + i] = d->in[i];
    dd[2 + i] = d->out[i];
    wd[wo + 2 + i] = d->k[i];
    strides[i] = d->stride[i];
    dil[i] = d->dil[i] - 1;
    pl[i] = d->pad_lo[i];
    pr[i] = d->pad_hi[i];
  }
  /* Which algorithm and activation layout, in order of preference:
   *  - Winograd F(4x4, 3x3) where it applies (3x3, stride 1, no dilation, no
   *    groups) and the weights are bound for good (d->winograd: the plan
   *    transforms them once; a per-call transform would be slow, and
   *    oneDNN's reorder into the Winograd format keeps hidden scratch that
   *    concurrent runs would share): about a third of the direct kernel's
   *    time on this class of layer, at the cost of a larger rounding error
   *    (docs/runtime.md);
   *  - the direct algorithm with nChw16c activations when the channels fill
   *    16-lane blocks: Winograd needs that layout, and left to choose ("any")
   *    oneDNN picks nhwc for its brgemm kernels, so every change between
   *    neighbours would cost two reorders; the direct kernels are as fast in
   *    nChw16c (bench/RESULTS.md), so one layout runs through the network;
   *  - the direct algorithm in the layouts oneDNN prefers.
   * An attempt that only gets oneDNN's reference implementation is passed
   * over for the next one. */
  bool blocked = d->nsp == 2 && d->groups == 1;
  dnnl_format_tag_t stag = blocked && d->ci % 16 == 0 ? dnnl_nChw16c : dnnl_format_tag_any;
  dnnl_format_tag_t dtag = blocked && d->co % 16 == 0 ? dnnl_nChw16c : dnnl_format_tag_any;
  bool wino = blocked && d->k[0] == 3 && d->k[1] == 3 && d->stride[0] == 1 && d->stride[1] == 1 &&
              d->dil[0] == 1 && d->dil[1] == 1 && d->winograd;
  struct {
    dnnl_alg_kind_t alg;
    dnnl_format_tag_t s, d;
  } tries[3] = {{dnnl_convolution_winograd, stag, dtag},
                {dnnl_convolution_direct, stag, dtag},
                {dnnl_convolution_direct, dnnl_format_tag_any, dnnl_format_tag_any}};
  if (dnnl_memory_desc_init_by_tag(&p->bias_md, 1, bd, dnnl_f32, dnnl_a) != dnnl_success) return false;
  dnnl_primitive_attr_t attr = make_attr(d);
  if (!attr) return false;
  bool ok = false;
  /* with "any" layouts already in try 1, try 2 would repeat it */
  int last = stag == dnnl_format_tag_any && dtag == dnnl_format_tag_any ? 1 : 2;
  for (int t = wino ? 0 : 1; t <= last && !ok; t++) {
    dnnl_memory_desc_t s_md, w_md, d_md;
    dnnl_convolution_desc_t cd;
    if (dnnl_memory_desc_init_by_tag(&s_md, nd, sd, dnnl_f32, tries[t].s) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&w_md, nd + wo, wd, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&d_md, nd, dd, dnnl_f32, tries[t].d) != dnnl_success ||
        dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, tries[t].alg, &s_md,
                                                   &w_md, d->with_bias ? &p->bias_md : NULL, &d_md,
                                                   strides, dil, pl, pr) != dnnl_success)
      continue;
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL) != dnnl_success) continue;
    const char *impl = NULL;
    if (t < last && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
        impl && strncmp(impl, "ref", 3) == 0) {
      dnnl_primitive_desc_destroy(pd);
      continue;
    }
    ok = finish(p, pd);
    dnnl_primitive_desc_destroy(pd);
  }
  dnnl_primitive_attr_destroy(attr);
  return ok;
}

static const struct hs_la_dnnl_prim *lookup(int kind, const void *key, size_t key_len, const void *desc) {
  if (!engine_ready() || key_len > KEY_MAX) return NULL;
  pthread_mutex_lock(&cache_mu);
  struct hs_la_dnnl_prim *p = cache_find(key, key_len);
  if (!p && (p = calloc(1, sizeof *p)) != NULL) {
    p->kind = kind;
    memcpy(p->key, key, key_len);
    p->key_len = key_len;
    /* oneDNN sizes a primitive's work split and scratchpad for the threads
     * OpenMP offers when it is made */
    int nthr = create_threads;
    if (kind == K_CONV && ((const hs_la_dnnl_conv_desc *)desc)->nthr > 0)
      nthr = (int)((const hs_la_dnnl_conv_desc *)desc)->nthr;
    int before = omp_max_threads ? omp_max_threads() : 0;
    if (omp_set_threads && nthr > 0 && before != nthr) omp_set_threads(nthr);
    bool ok = kind == K_MATMUL ? build_matmul(p, key) : build_conv(p, desc);
    if (omp_set_threads && before > 0 && before != nthr) omp_set_threads(before);
    if (ok) {
      p->next = cache;
      cache = p;
    } else {
      destroy(p);
      p = NULL;
    }
  }
  pthread_mutex_unlock(&cache_mu);
  return p;
}

/* A cached reorder primitive from -> to; NULL when oneDNN refuses. */
static dnnl_primitive_t get_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
  pthread_mutex_lock(&cache_mu);
  reorder *r = reorders;
  while (r && !(dnnl_memory_desc_equal(&r->from, from) && dnnl_memory_desc_equal(&r->to, to))) r = r->next;
  if (!r && (r = calloc(1, sizeof *r)) != NULL) {
    r->from = *from;
    r->to = *to;
    dnnl_primitive_desc_t rpd;
    if (dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, NULL) == dnnl_success) {
      if (dnnl_primitive_create(&r->prim, rpd) != dnnl_success) r->prim = NULL;
      dnnl_primitive_desc_destroy(rpd);
    }
    if (r->prim) {
      r->next = reorders;
      reorders = r;
    } else {
      free(r);
      r = NULL;
    }
  }
  pthread_mutex_unlock(&cache_mu);
  return r ? r->prim : NULL;
}

/* ---- matmul --------------------------------------------------------------- */

const hs_la_dnnl_prim *hs_la_dnnl_matmul(int64_t B, int64_t M, int64_t N, int64_t K,
                                         const int64_t src_strides[3],
                                         const int64_t wei_strides[3]) {
  int64_t key[11] = {B, M, N, K, src_strides[0], src_strides[1], src_strides[2],
                     wei_strides[0], wei_strides[1], wei_strides[2], K_MATMUL};
  /* A dim of size 1 has no meaningful stride; give it the dense one so that
   * oneDNN sees a plain layout (a stride of 0 sends it to its reference
   * implementation). */
  if (B == 1) key[4] = M * K, key[7] = K * N;
  if (M == 1) key[5] = K;
  if (K == 1) key[6] = 1, key[8] = N;
  if (N == 1) key[9] = 1;
  return lookup(K_MATMUL, key, sizeof key, NULL);
}

/* Runs one primitive with n arguments on a fresh stream. */
static bool exec1(dnnl_primitive_t prim, int n, const dnnl_exec_arg_t *args) {
  dnnl_stream_t stream = NULL;
  if (dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) return false;
  bool ok = dnnl_primitive_execute(prim, stream, n, args) == dnnl_success;
  ok = dnnl_stream_wait(stream) == dnnl_success && ok;
  dnnl_stream_destroy(stream);
  return ok;
}

static dnnl_memory_t mem(const dnnl_memory_desc_t *md, const void *data) {
  dnnl_memory_t m = NULL;
  if (dnnl_memory_create(&m, md, engine, (void *)data) != dnnl_success) return NULL;
  return m;
}

bool hs_la_dnnl_matmul_run(const hs_la_dnnl_prim *p, const float *src, const float *wei, float *dst) {
  if (!p || p->kind != K_MATMUL) return false;
  void *ws = NULL;
  if (p->scratch_bytes && posix_memalign(&ws, 64, p->scratch_bytes) != 0) return false;
  dnnl_memory_t m[4] = {mem(&p->md[0], src), mem(&p->md[1], wei), mem(&p->md[2], dst), NULL};
  bool ok = m[0] && m[1] && m[2];
  int n = 3;
  if (ok && p->scratch_bytes) {
    m[3] = mem(&p->scratch_md, ws);
    ok = m[3] != NULL;
    n = 4;
  }
  if (ok) {
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]},
                            {DNNL_ARG_SCRATCHPAD, m[3]}};
    ok = exec1(p->prim, n, a);
  }
  for (int i = 0; i < 4; i++)
    if (m[i]) dnnl_memory_destroy(m[i]);
  free(ws);
  return ok;
}

/* ---- convolution ---------------------------------------------------------- */

/* The user's strided layout of slot i of d. */
static bool user_md(const hs_la_dnnl_conv_desc *d, int slot, dnnl_memory_desc_t *md) {
  int nd = (int)d->nsp + 2;
  dnnl_dims_t dims, st;
  if (slot == HS_LA_WEI) {
    int wo = d->groups > 1 ? 1 : 0;
    if (wo) {
      dims[0] = d->groups;
      st[0] = d->wei_strides[0];
    }
    dims[wo] = d->co / d->groups, st[wo] = d->wei_strides[1];
    dims[wo + 1] = d->ci / d->groups, st[wo + 1] = d->wei_strides[2];
    for (int i = 0; i < d->nsp; i++) dims[wo + 2 + i] = d->k[i], st[wo + 2 + i] = d->wei_strides[3 + i];
    return dnnl_memory_desc_init_by_strides(md, nd + wo, dims, dnnl_f32, st) == dnnl_success;
  }
  const int64_t *s = slot == HS_LA_SRC ? d->src_strides : d->dst_strides;
  dims[0] = d->n;
  dims[1] = slot == HS_LA_SRC ? d->ci : d->co;
  for (int i = 0; i < d->nsp; i++) dims[2 + i] = slot == HS_LA_SRC ? d->in[i] : d->out[i];
  for (int i = 0; i < nd; i++) st[i] = s[i];
  return dnnl_memory_desc_init_by_strides(md, nd, dims, dnnl_f32, st) == dnnl_success;
}

static const dnnl_memory_desc_t *prim_md(const struct hs_la_dnnl_prim *p, int slot) {
  return &p->md[slot == HS_LA_RES ? HS_LA_DST : slot];
}

static bool pack(hs_la_dnnl_conv *c, const float *wei, hs_arena *arena);

hs_la_dnnl_conv *hs_la_dnnl_conv_plan(const hs_la_dnnl_conv_desc *d, unsigned native_mask,
                                      const hs_la_dnnl_conv *like, const float *wei, hs_arena *arena) {
  if (!engine_ready()) return NULL;
  /* The primitive does not depend on the user's layouts: share it. */
  hs_la_dnnl_conv_desc key = *d;
  memset(key.src_strides, 0, sizeof key.src_strides);
  memset(key.wei_strides, 0, sizeof key.wei_strides);
  memset(key.dst_strides, 0, sizeof key.dst_strides);
  if (!key.with_sum) key.sum_scale_bits = 0;
  if (key.nthr <= 0 || key.nthr > create_threads) key.nthr = create_threads > 0 ? create_threads : 0;
  const struct hs_la_dnnl_prim *p = lookup(K_CONV, &key, sizeof key, &key);
  if (!p) return NULL;
  hs_la_dnnl_conv *c = hs_arena_calloc(arena, 1, sizeof *c);
  if (!c) return NULL;
  c->p = p;
  c->with_sum = d->with_sum != 0;
  c->with_bias = d->with_bias != 0;
  size_t off = 0;
  for (int s = 0; s < 4; s++) {
    if (s == HS_LA_RES && !c->with_sum) continue;
    if (native_mask & (1u << s)) {
      c->usr[s] = *prim_md(like ? like->p : p, s);
    } else if (!user_md(d, s, &c->usr[s])) {
      return NULL;
    }
    const dnnl_memory_desc_t *pm = prim_md(p, s);
    if (!dnnl_memory_desc_equal(&c->usr[s], pm)) {
      c->ro[s] = s == HS_LA_DST ? get_reorder(pm, &c->usr[s]) : get_reorder(&c->usr[s], pm);
      if (!c->ro[s]) return NULL;
    }
    if (s == HS_LA_WEI && wei) {
      if (!pack(c, wei, arena)) return NULL;
    } else if (c->ro[s] && s != HS_LA_RES) { /* the residual lands in the dst buffer */
      c->off[s] = off;
      off += align64(dnnl_memory_desc_get_size(pm));
    }
  }
  c->off[3] = off;
  c->ws_bytes = off + p->scratch_bytes;
  return c;
}

bool hs_la_dnnl_conv_format_equal(const hs_la_dnnl_conv *a, int sa, const hs_la_dnnl_conv *b, int sb,
                                  size_t *bytes) {
  if (!a || !b) return false;
  const dnnl_memory_desc_t *x = prim_md(a->p, sa), *y = prim_md(b->p, sb);
  if (!dnnl_memory_desc_equal(x, y)) return false;
  if (bytes) *bytes = dnnl_memory_desc_get_size(x);
  return true;
}

/* Reorders the user's weights into the primitive's format, into arena memory. */
/* Packed weights are shared by every plan whose packed bytes are equal: the
 * programs of one bundle (one per input shape) bind the same weights, and
 * their primitives usually want the same weight format, so a detector with
 * two input shapes keeps one copy of its (Winograd-transformed, 4x larger)
 * weights instead of two.  Entries are found by format, size and a hash of
 * the bytes, confirmed with memcmp, and counted: each plan's arena drops its
 * reference when the program is freed (hs_arena_defer). */
typedef struct packed_entry {
  struct packed_entry *next;
  dnnl_memory_desc_t md;
  size_t n;
  uint64_t hash;
  void *buf;
  int refs;
} packed_entry;

static packed_entry *packed_cache; /* under cache_mu */

static uint64_t hash_bytes(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  for (; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
  return h;
}

static void packed_release(void *arg) {
  packed_entry *e = arg;
  pthread_mutex_lock(&cache_mu);
  if (--e->refs == 0) {
    packed_entry **pp = &packed_cache;
    while (*pp && *pp != e) pp = &(*pp)->next;
    if (*pp) *pp = e->next;
    free(e->buf);
    free(e);
  }
  pthread_mutex_unlock(&cache_mu);
}

static bool pack(hs_la_dnnl_conv *c, const float *wei, hs_arena *arena) {
  const dnnl_memory_desc_t *pm = prim_md(c->p, HS_LA_WEI);
  size_t n = dnnl_memory_desc_get_size(pm);
  void *buf = NULL;
  if (posix_memalign(&buf, 64, n ? n : 64) != 0) return false;
  if (!c->ro[HS_LA_WEI]) {
    memcpy(buf, wei, n);
  } else {
    dnnl_memory_t from = mem(&c->usr[HS_LA_WEI], wei), to = mem(pm, buf);
    bool ok = from && to;
    if (ok) {
      dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
      ok = exec1(c->ro[HS_LA_WEI], 2, a);
    }
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    if (!ok) {
      free(buf);
      return false;
    }
  }
  uint64_t h = hash_bytes(buf, n);
  pthread_mutex_lock(&cache_mu);
  packed_entry *e = packed_cache;
  while (e && !(e->n == n && e->hash == h && dnnl_memory_desc_equal(&e->md, pm) &&
                memcmp(e->buf, buf, n) == 0))
    e = e->next;
  if (e) {
    e->refs++;
    free(buf);
  } else if ((e = calloc(1, sizeof *e)) != NULL) {
    *e = (packed_entry){packed_cache, *pm, n, h, buf, 1};
    packed_cache = e;
  } else {
    free(buf);
  }
  pthread_mutex_unlock(&cache_mu);
  if (!e) return false;
  if (!hs_arena_defer(arena, packed_release, e)) {
    packed_release(e);
    return false;
  }
  c->packed = e->buf;
  return true;
}

void hs_la_dnnl_conv_set_bias(hs_la_dnnl_conv *c, const float *bias) {
  if (c) c->bias = bias;
}

size_t hs_la_dnnl_conv_workspace(const hs_la_dnnl_conv *c) { return c ? c->ws_bytes : 0; }

const char *hs_la_dnnl_conv_impl(const hs_la_dnnl_conv *c) { return c ? c->p->impl : "none"; }

/* Reorders run on OpenMP's threads too; a small one is not worth waking
 * them (a parallel region costs microseconds, and a whole scheduler tick on
 * a busy machine when a team member is descheduled). */
#define SMALL_REORDER_BYTES (128 << 10)

static bool run_reorder(dnnl_primitive_t ro, dnnl_stream_t stream, const dnnl_exec_arg_t *a,
                        const dnnl_memory_desc_t *md) {
  int n = omp_max_threads && omp_set_threads ? omp_max_threads() : 1;
  bool small = n > 1 && dnnl_memory_desc_get_size(md) < SMALL_REORDER_BYTES;
  if (small) omp_set_threads(1);
  bool ok = dnnl_primitive_execute(ro, stream, 2, a) == dnnl_success;
  if (small) omp_set_threads(n);
  return ok;
}

bool hs_la_dnnl_conv_run(const hs_la_dnnl_conv *c, const float *src, const float *wei, const float *res,
                         float *dst, void *workspace) {
  if (!c || (c->with_sum && !res) || (c->with_bias && !c->bias)) return false;
  const struct hs_la_dnnl_prim *p = c->p;
  unsigned char *ws = workspace;
  dnnl_stream_t stream = NULL;
  dnnl_memory_t m[12] = {NULL};
  int nm = 0;
  bool ok = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success;
  /* The primitive's view of src, weights and dst. */
  const void *usr_ptr[4] = {src, wei, dst, res};
  dnnl_memory_t pmem[3] = {NULL, NULL, NULL};
  for (int s = 0; s < 3 && ok; s++) {
    const void *ptr;
    if (s == HS_LA_WEI && c->packed) ptr = c->packed;
    else if (c->ro[s]) ptr = ws + c->off[s];
    else ptr = usr_ptr[s];
    ok = (pmem[s] = m[nm++] = mem(&p->md[s], ptr)) != NULL;
  }
  /* Inputs into the primitive's formats. */
  for (int s = 0; s < 2 && ok; s++) {
    if (!c->ro[s] || (s == HS_LA_WEI && c->packed)) continue;
    dnnl_memory_t from = m[nm++] = mem(&c->usr[s], usr_ptr[s]);
    ok = from != NULL;
    if (ok) {
      dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, pmem[s]}};
      ok = run_reorder(c->ro[s], stream, a, &c->usr[s]);
    }
  }
  /* The residual into the dst buffer (the sum post-op accumulates onto it). */
  if (ok && c->with_sum) {
    void *target = c->ro[HS_LA_DST] ? (void *)(ws + c->off[HS_LA_DST]) : (void *)dst;
    if (c->ro[HS_LA_RES]) {
      dnnl_memory_t from = m[nm++] = mem(&c->usr[HS_LA_RES], res);
      ok = from != NULL;
      if (ok) {
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, pmem[HS_LA_DST]}};
        ok = run_reorder(c->ro[HS_LA_RES], stream, a, &c->usr[HS_LA_RES]);
      }
    } else if (target != (const void *)res) {
      memcpy(target, res, dnnl_memory_desc_get_size(&p->md[HS_LA_DST]));
    }
  }
  if (ok) {
    dnnl_exec_arg_t a[5];
    int n = 0;
    a[n].arg = DNNL_ARG_SRC, a[n++].memory = pmem[0];
    a[n].arg = DNNL_ARG_WEIGHTS, a[n++].memory = pmem[1];
    a[n].arg = DNNL_ARG_DST, a[n++].memory = pmem[2];
    if (c->with_bias) {
      dnnl_memory_t b = m[nm++] = mem(&p->bias_md, c->bias);
      ok = b != NULL;
      a[n].arg = DNNL_ARG_BIAS, a[n++].memory = b;
    }
    if (ok && p->scratch_bytes) {
      dnnl_memory_t sp = m[nm++] = mem(&p->scratch_md, ws + c->off[3]);
      ok = sp != NULL;
      a[n].arg = DNNL_ARG_SCRATCHPAD, a[n++].memory = sp;
    }
    if (ok) ok = dnnl_primitive_execute(p->prim, stream, n, a) == dnnl_success;
  }
  if (ok && c->ro[HS_LA_DST]) {
    dnnl_memory_t to = m[nm++] = mem(&c->usr[HS_LA_DST], dst);
    ok = to != NULL;
    if (ok) {
      dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, pmem[HS_LA_DST]}, {DNNL_ARG_TO, to}};
      ok = run_reorder(c->ro[HS_LA_DST], stream, a, &c->usr[HS_LA_DST]);
    }
  }
  if (stream) ok = dnnl_stream_wait(stream) == dnnl_success && ok;
  for (int i = 0; i < nm; i++)
    if (m[i]) dnnl_memory_destroy(m[i]);
  if (stream) dnnl_stream_destroy(stream);
  return ok;
}

#else /* !HS_HAVE_DNNL */

void hs_la_dnnl_use_threads(int n) {}
const hs_la_dnnl_prim *hs_la_dnnl_matmul(int64_t B, int64_t M, int64_t N, int64_t K,
                                         const int64_t src_strides[3],
                                         const int64_t wei_strides[3]) {
  return NULL;
}
bool hs_la_dnnl_matmul_run(const hs_la_dnnl_prim *p, const float *src, const float *wei, float *dst) {
  return false;
}
hs_la_dnnl_conv *hs_la_dnnl_conv_plan(const hs_la_dnnl_conv_desc *d, unsigned native_mask,
                                      const hs_la_dnnl_conv *like, const float *wei, hs_arena *arena) {
  return NULL;
}
bool hs_la_dnnl_conv_format_equal(const hs_la_dnnl_conv *a, int sa, const hs_la_dnnl_conv *b, int sb,
                                  size_t *bytes) {
  return false;
}
void hs_la_dnnl_conv_set_bias(hs_la_dnnl_conv *c, const float *bias) {}
size_t hs_la_dnnl_conv_workspace(const hs_la_dnnl_conv *c) { return 0; }
bool hs_la_dnnl_conv_run(const hs_la_dnnl_conv *c, const float *src, const float *wei, const float *res,
                         float *dst, void *workspace) {
  return false;
}
const char *hs_la_dnnl_conv_impl(const hs_la_dnnl_conv *c) { return "none"; }

#endif
