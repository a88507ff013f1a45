/*
 * sort.c - the two orderings the glue must reproduce exactly.
 *
 * 1. torch.sort(descending=True, stable=True) on float scores, which
 *    torchvision's NMS uses: decreasing value, NaN above everything, equal
 *    values (+0 and -0 included) in index order.  We map each float to a
 *    32-bit key whose unsigned order is that order and run an LSD radix sort
 *    (stable by construction, linear time; small inputs take insertion
 *    sort).
 *
 * 2. torch.topk(k, largest=True) and torch.sort(descending=True) with the
 *    default stable=False, both on the CPU, which the RPN uses per level.
 *    ATen builds a vector of (value, index) pairs and calls libstdc++'s
 *    std::partial_sort when k*64 <= n, else std::nth_element followed by
 *    std::sort of the first k-1; sort calls std::sort.  Those algorithms are not stable, so the
 *    order of equal values (and which of them make the cut) is whatever
 *    their exact sequence of swaps produces.  To give identical proposals
 *    for tied logits we implement the same algorithms step for step: heap
 *    select with sift-down-then-up (__adjust_heap), introselect and introsort
 *    with median-of-three pivots moved to the front, unguarded partition,
 *    16-element insertion-sort threshold and depth limit 2*floor(log2 n).
 *    Written from the published algorithm descriptions; verified against
 *    torch.topk by tests/python/test_glue_parity.py.
 */
#include "glue_internal.h"

/* ---------------------------------------------------------------------- */
/* Stable descending score sort                                            */

/* Larger key = earlier in the order. */
static inline uint32_t score_key(float f) {
  if (f != f) return 0xFFFFFFFFu;      /* NaN: first */
  if (f == 0.0f) f = 0.0f;             /* -0 == +0 */
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

void hs_glue_sort_desc(hs_glue_nms_scratch *s, const float *scores, const int32_t *sel,
                       int64_t n, int32_t *order) {
  if (n <= 0) return;
  uint32_t *ka = s->key_a, *kb = s->key_b;
  int32_t *ia = s->idx_a, *ib = s->idx_b;
  /* Sort ascending by ~key (= descending key), payload the position. */
  for (int64_t k = 0; k < n; k++) {
    float v = sel ? scores[sel[k]] : scores[k];
    ka[k] = ~score_key(v);
    ia[k] = (int32_t)k;
  }
  if (n <= 32) {
    for (int64_t k = 1; k < n; k++) {
      uint32_t key = ka[k];
      int32_t idx = ia[k];
      int64_t j = k - 1;
      while (j >= 0 && ka[j] > key) {
        ka[j + 1] = ka[j];
        ia[j + 1] = ia[j];
        j--;
      }
      ka[j + 1] = key;
      ia[j + 1] = idx;
    }
  } else {
    /* Three passes of 11 bits. */
    static const int shifts[3] = {0, 11, 22};
    uint32_t hist[3][2048];
    memset(hist, 0, sizeof hist);
    for (int64_t k = 0; k < n; k++) {
      uint32_t key = ka[k];
      hist[0][key & 2047u]++;
      hist[1][(key >> 11) & 2047u]++;
      hist[2][key >> 22]++;
    }
    for (int pass = 0; pass < 3; pass++) {
      uint32_t *h = hist[pass];
      int sh = shifts[pass];
      /* A pass where every key has the same digit changes nothing. */
      uint32_t first_digit = (ka[0] >> sh) & 2047u;
      if (h[first_digit] == (uint32_t)n) continue;
      uint32_t sum = 0;
      for (int d = 0; d < 2048; d++) {
        uint32_t c = h[d];
        h[d] = sum;
        sum += c;
      }
      for (int64_t k = 0; k < n; k++) {
        uint32_t key = ka[k];
        uint32_t pos = h[(key >> sh) & 2047u]++;
        kb[pos] = key;
        ib[pos] = ia[k];
      }
      uint32_t *tk = ka;
      ka = kb;
      kb = tk;
      int32_t *ti = ia;
      ia = ib;
      ib = ti;
    }
  }
  if (order != ia) memcpy(order, ia, (size_t)n * sizeof(int32_t));
}

/* ---------------------------------------------------------------------- */
/* torch.topk: libstdc++'s selection algorithms over (value, index) pairs  */

/* ATen's comparator for largest=True: NaN before numbers, then greater. */
static inline int before(hs_glue_qelem a, hs_glue_qelem b) {
  return (a.v != a.v && b.v == b.v) || (a.v > b.v);
}

static inline void swap_q(hs_glue_qelem *a, hs_glue_qelem *b) {
  hs_glue_qelem t = *a;
  *a = *b;
  *b = t;
}

static inline int64_t floor_log2(int64_t n) {
  int64_t r = 0;
  while (n > 1) {
    n >>= 1;
    r++;
  }
  return r;
}

/* Heap with `before` as the "less" relation: the root is the element that
 * comes last in the final order among the heap's members. */
static void push_heap_q(hs_glue_qelem *first, int64_t hole, int64_t top, hs_glue_qelem value) {
  int64_t parent = (hole - 1) / 2;
  while (hole > top && before(first[parent], value)) {
    first[hole] = first[parent];
    hole = parent;
    parent = (hole - 1) / 2;
  }
  first[hole] = value;
}

static void adjust_heap_q(hs_glue_qelem *first, int64_t hole, int64_t len, hs_glue_qelem value) {
  const int64_t top = hole;
  int64_t child = hole;
  while (child < (len - 1) / 2) {
    child = 2 * (child + 1);
    if (before(first[child], first[child - 1])) child--;
    first[hole] = first[child];
    hole = child;
  }
  if ((len & 1) == 0 && child == (len - 2) / 2) {
    child = 2 * (child + 1);
    first[hole] = first[child - 1];
    hole = child - 1;
  }
  push_heap_q(first, hole, top, value);
}

static void make_heap_q(hs_glue_qelem *first, int64_t len) {
  if (len < 2) return;
  int64_t parent = (len - 2) / 2;
  for (;;) {
    adjust_heap_q(first, parent, len, first[parent]);
    if (parent == 0) return;
    parent--;
  }
}

/* __pop_heap(first, last, result): moves the root to *result and re-inserts
 * the old *result. */
static void pop_heap_q(hs_glue_qelem *first, int64_t len, hs_glue_qelem *result) {
  hs_glue_qelem value = *result;
  *result = first[0];
  adjust_heap_q(first, 0, len, value);
}

static void heap_select_q(hs_glue_qelem *first, int64_t middle, int64_t last) {
  make_heap_q(first, middle);
  for (int64_t i = middle; i < last; i++)
    if (before(first[i], first[0])) pop_heap_q(first, middle, &first[i]);
}

static void sort_heap_q(hs_glue_qelem *first, int64_t len) {
  while (len > 1) {
    len--;
    pop_heap_q(first, len, &first[len]);
  }
}

static void partial_sort_q(hs_glue_qelem *first, int64_t middle, int64_t last) {
  heap_select_q(first, middle, last);
  sort_heap_q(first, middle);
}

static void move_median_to_first_q(hs_glue_qelem *result, hs_glue_qelem *a, hs_glue_qelem *b,
                                   hs_glue_qelem *c) {
  if (before(*a, *b)) {
    if (before(*b, *c))
      swap_q(result, b);
    else if (before(*a, *c))
      swap_q(result, c);
    else
      swap_q(result, a);
  } else if (before(*a, *c)) {
    swap_q(result, a);
  } else if (before(*b, *c)) {
    swap_q(result, c);
  } else {
    swap_q(result, b);
  }
}

/* __unguarded_partition(first, last, pivot): indices relative to q. */
static int64_t unguarded_partition_q(hs_glue_qelem *q, int64_t first, int64_t last,
                                     int64_t pivot) {
  for (;;) {
    while (before(q[first], q[pivot])) first++;
    last--;
    while (before(q[pivot], q[last])) last--;
    if (!(first < last)) return first;
    swap_q(&q[first], &q[last]);
    first++;
  }
}

static int64_t partition_pivot_q(hs_glue_qelem *q, int64_t first, int64_t last) {
  int64_t mid = first + (last - first) / 2;
  move_median_to_first_q(&q[first], &q[first + 1], &q[mid], &q[last - 1]);
  return unguarded_partition_q(q, first + 1, last, first);
}

static void unguarded_linear_insert_q(hs_glue_qelem *q, int64_t last) {
  hs_glue_qelem val = q[last];
  int64_t next = last - 1;
  while (before(val, q[next])) {
    q[last] = q[next];
    last = next;
    next--;
  }
  q[last] = val;
}

static void insertion_sort_q(hs_glue_qelem *q, int64_t first, int64_t last) {
  if (first == last) return;
  for (int64_t i = first + 1; i != last; i++) {
    if (before(q[i], q[first])) {
      hs_glue_qelem val = q[i];
      memmove(&q[first + 1], &q[first], (size_t)(i - first) * sizeof(hs_glue_qelem));
      q[first] = val;
    } else {
      unguarded_linear_insert_q(q, i);
    }
  }
}

enum { SORT_THRESHOLD = 16 };

static void introsort_loop_q(hs_glue_qelem *q, int64_t first, int64_t last, int64_t depth) {
  while (last - first > SORT_THRESHOLD) {
    if (depth == 0) {
      partial_sort_q(q + first, last - first, last - first);
      return;
    }
    depth--;
    int64_t cut = partition_pivot_q(q, first, last);
    introsort_loop_q(q, cut, last, depth);
    last = cut;
  }
}

static void final_insertion_sort_q(hs_glue_qelem *q, int64_t first, int64_t last) {
  if (last - first > SORT_THRESHOLD) {
    insertion_sort_q(q, first, first + SORT_THRESHOLD);
    for (int64_t i = first + SORT_THRESHOLD; i != last; i++) unguarded_linear_insert_q(q, i);
  } else {
    insertion_sort_q(q, first, last);
  }
}

static void std_sort_q(hs_glue_qelem *q, int64_t n) {
  if (n <= 0) return;
  introsort_loop_q(q, 0, n, floor_log2(n) * 2);
  final_insertion_sort_q(q, 0, n);
}

static void nth_element_q(hs_glue_qelem *q, int64_t nth, int64_t n) {
  if (n == 0 || nth == n) return;
  int64_t first = 0, last = n;
  int64_t depth = floor_log2(n) * 2;
  while (last - first > 3) {
    if (depth == 0) {
      heap_select_q(q + first, nth + 1 - first, last - first);
      swap_q(&q[first], &q[nth]);
      return;
    }
    depth--;
    int64_t cut = partition_pivot_q(q, first, last);
    if (cut <= nth)
      first = cut;
    else
      last = cut;
  }
  insertion_sort_q(q, first, last);
}

void hs_glue_sort_desc_unstable(hs_glue_qelem *q, int64_t n) { std_sort_q(q, n); }

void hs_glue_topk(hs_glue_qelem *q, int64_t n, int64_t k) {
  if (k <= 0 || n <= 0) return;
  if (k * 64 <= n) {
    partial_sort_q(q, k, n);
  } else {
    nth_element_q(q, k - 1, n);
    std_sort_q(q, k - 1);
  }
}
