// Exact O(N log N) evaluation of repose::rank_hinge (no window) on the CPU.
//
// Per series: sort by ground truth and by prediction; sweep the ground-truth order one
// tie group at a time while a Fenwick (binary indexed) tree over prediction ranks holds
// the weights of the elements already swept (strictly smaller ground truth). For an
// element j of the group:
//   far_j  = sum of w_k over swept k with viol(k, j): the swept weight minus a prefix of
//            the tree (viol(k, j) holds for every prediction rank >= thr_far[j]);
//   then the group is inserted, and
//   near_j = sum of w_l over later l (g_l > g_j) with viol(j, l): the weight of all
//            ranks < thr_near[j] minus the same prefix of the tree, which now holds every
//            element with g <= g_j (the group's own members, tied with j, cancel out).
// viol(k, l) = fl(fl(p_k - p_l) + m) > 0 is the reference's own float expression; it is
// monotone in both predictions, so both thresholds come from one two-pointer pass over
// the sorted predictions and match the reference's decisions exactly (ties and margin
// included). A_j = near_j - far_j gives the gradient and, through series.h, the loss.

// The kernels evaluate the reference's float expressions as written (the margin test
// fl(fl(p_k - p_l) + m) > 0, -0 == +0): whatever flags the build passes, no reassociation
// and signed zeros are kept in this file.
#pragma GCC optimize("no-associative-math", "signed-zeros")

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "rank_hinge_cpu.h"

namespace repose {
namespace cpu {
namespace {

// Integer keys whose unsigned order is the floating-point order (-0 and +0 equal).
inline uint32_t order_key(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  if ((u & 0x7fffffffu) == 0) u = 0;  // -0 -> +0 (on the bits: no float flag can drop it)
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline uint64_t order_key(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof(u));
  if ((u & 0x7fffffffffffffffull) == 0) u = 0;
  return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
}

// Stable LSD radix sort of `items` by the key bits [lo_bit, lo_bit + 8 * passes), one
// byte per pass; passes in which every item has the same byte are skipped.
template <typename Item, typename KeyOf>
void radix_sort(Item* items, Item* tmp, int64_t n, int passes, int lo_bit, KeyOf key_of) {
  std::vector<uint32_t> hist(static_cast<size_t>(passes) * 256, 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t k = key_of(items[i]) >> lo_bit;
    for (int d = 0; d < passes; ++d) ++hist[d * 256 + ((k >> (8 * d)) & 255)];
  }
  Item* src = items;
  Item* dst = tmp;
  for (int d = 0; d < passes; ++d) {
    uint32_t* h = hist.data() + d * 256;
    const int shift = lo_bit + 8 * d;
    if (h[(key_of(src[0]) >> shift) & 255] == static_cast<uint32_t>(n)) continue;
    uint32_t sum = 0;
    for (int b = 0; b < 256; ++b) {
      const uint32_t c = h[b];
      h[b] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; ++i) dst[h[(key_of(src[i]) >> shift) & 255]++] = src[i];
    std::swap(src, dst);
  }
  if (src != items) std::copy(src, src + n, items);
}

template <typename T, bool kW>
struct SortedScratch {
  using Tree = std::conditional_t<kW, double, int32_t>;  // swept weight per prediction rank
  using Acc = std::conditional_t<kW, double, int64_t>;
  struct Key64 {
    uint64_t key;
    uint32_t index;
  };
  std::vector<uint64_t> keys32, tmp32;  // float: key << 32 | index
  std::vector<Key64> keys64, tmp64;     // double
  std::vector<int32_t> by_g, by_p, rank_p, thr_far, thr_near;
  std::vector<T> p_sorted;
  std::vector<double> cum_w;  // weight of the prediction ranks < r
  std::vector<Tree> tree;
  std::vector<Acc> a;

  void resize(int64_t n) {
    if (static_cast<int64_t>(by_g.size()) == n) return;
    by_g.resize(n), by_p.resize(n), rank_p.resize(n), thr_far.resize(n), thr_near.resize(n);
    p_sorted.resize(n), tree.resize(n + 1), a.resize(n);
    if (kW) cum_w.resize(n + 1);
    if (sizeof(T) == 4) {
      keys32.resize(n), tmp32.resize(n);
    } else {
      keys64.resize(n), tmp64.resize(n);
    }
  }

  // Indices of v[0..n) in ascending order of value (equal values by index).
  void sort_indices(const T* v, int64_t n, int32_t* out) {
    if (n <= 64) {  // short: insertion sort on (key, index)
      for (int64_t i = 0; i < n; ++i) {
        const auto key = order_key(v[i]);
        int64_t j = i;
        for (; j > 0 && order_key(v[out[j - 1]]) > key; --j) out[j] = out[j - 1];
        out[j] = static_cast<int32_t>(i);
      }
      return;
    }
    if constexpr (sizeof(T) == 4) {
      for (int64_t i = 0; i < n; ++i) keys32[i] = (uint64_t(order_key(v[i])) << 32) | uint64_t(i);
      radix_sort(keys32.data(), tmp32.data(), n, 4, 32, [](uint64_t x) { return x; });
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(keys32[i] & 0xffffffffu);
    } else {
      for (int64_t i = 0; i < n; ++i) keys64[i] = {order_key(v[i]), static_cast<uint32_t>(i)};
      radix_sort(keys64.data(), tmp64.data(), n, 8, 0, [](const Key64& x) { return x.key; });
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(keys64[i].index);
    }
  }
};

template <typename Tree>
inline Tree fenwick_prefix(const Tree* t, int64_t r) {  // sum over ranks [0, r)
  Tree s = 0;
  for (; r > 0; r &= r - 1) s += t[r];
  return s;
}

template <typename Tree>
inline void fenwick_add(Tree* t, int64_t n, int64_t rank, Tree v) {
  for (int64_t i = rank + 1; i <= n; i += i & -i) t[i] += v;
}

template <typename T, bool kW>
void sorted_series(const T* p, const T* g, const T* w, int64_t n, T m, const GradSink<T>& grad, double* loss,
                   double* active, SortedScratch<T, kW>& sc) {
  using Tree = typename SortedScratch<T, kW>::Tree;
  using Acc = typename SortedScratch<T, kW>::Acc;
  sc.resize(n);
  int32_t* by_g = sc.by_g.data();
  int32_t* by_p = sc.by_p.data();
  int32_t* rank_p = sc.rank_p.data();
  int32_t* thr_far = sc.thr_far.data();
  int32_t* thr_near = sc.thr_near.data();
  T* ps = sc.p_sorted.data();
  Tree* tree = sc.tree.data();
  Acc* a = sc.a.data();

  sc.sort_indices(g, n, by_g);
  sc.sort_indices(p, n, by_p);
  for (int64_t r = 0; r < n; ++r) {
    rank_p[by_p[r]] = static_cast<int32_t>(r);
    ps[r] = p[by_p[r]];
  }
  // thr_far[j]:  first rank r with viol(ps[r], p_j)  (true from there on);
  // thr_near[j]: number of ranks r with viol(p_j, ps[r]) (true up to there).
  // Both are non-decreasing in p_j, so one pass over ascending p_j finds them all.
  for (int64_t r = 0, f = 0, q = 0; r < n; ++r) {
    const T pj = ps[r];
    while (f < n && !(T(T(ps[f] - pj) + m) > T(0))) ++f;
    while (q < n && T(T(pj - ps[q]) + m) > T(0)) ++q;
    thr_far[by_p[r]] = static_cast<int32_t>(f);
    thr_near[by_p[r]] = static_cast<int32_t>(q);
  }
  if constexpr (kW) {
    sc.cum_w[0] = 0;
    for (int64_t r = 0; r < n; ++r) sc.cum_w[r + 1] = sc.cum_w[r] + double(w[by_p[r]]);
  }
  std::fill(tree, tree + n + 1, Tree(0));

  Acc swept = 0, violated = 0, act = 0;
  for (int64_t i = 0; i < n;) {
    const T gi = g[by_g[i]];
    int64_t end = i + 1;
    while (end < n && g[by_g[end]] == gi) ++end;
    for (int64_t t = i; t < end; ++t) {
      const int64_t j = by_g[t];
      const Acc far = swept - Acc(fenwick_prefix(tree, thr_far[j]));
      const Acc wj = kW ? Acc(w[j]) : Acc(1);
      a[j] = -far;
      violated += wj * far;
      act += wj * swept;
    }
    for (int64_t t = i; t < end; ++t) {
      const int64_t j = by_g[t];
      const Tree wj = kW ? Tree(w[j]) : Tree(1);
      fenwick_add(tree, n, rank_p[j], wj);
      swept += Acc(wj);
    }
    for (int64_t t = i; t < end; ++t) {
      const int64_t j = by_g[t];
      const int64_t q = thr_near[j];
      const Acc all = kW ? Acc(sc.cum_w[q]) : Acc(q);
      a[j] += all - Acc(fenwick_prefix(tree, q));
    }
    i = end;
  }
  finish_series<T, Acc>(p, w, a, 1, n, m, double(violated), double(act), grad, loss, active);
}

template <typename T>
bool all_sortable(const T* p, const T* g, int64_t n) {
  bool ok = true;
  for (int64_t k = 0; k < n; ++k) ok &= std::isfinite(p[k]) & !std::isnan(g[k]);
  return ok;
}

template <typename T, bool kW>
void sorted_run(const SeriesArgs<T>& a, Isa isa) {
  const int64_t n = a.n;
  // Tasks of about 256k element-steps (n log n): thread hand-offs stay rare.
  int64_t log_n = 1;
  while ((int64_t(1) << log_n) < n) ++log_n;
  const int64_t cost = n * log_n;
  const int64_t grain = cost >= 262144 ? 1 : 262144 / cost;
  at::parallel_for(0, a.s, grain, [&](int64_t b, int64_t e) {
    SortedScratch<T, kW> sc;
    std::vector<T> gather(3 * n);  // strided series are copied here
    for (int64_t s = b; s < e; ++s) {
      const T* p = series_row(a.p, a.lp, s, n, gather.data());
      const T* g = series_row(a.g, a.lg, s, n, gather.data() + n);
      const T* w = kW ? series_row(a.w, a.lw, s, n, gather.data() + 2 * n) : nullptr;
      const GradSink<T> grad = a.grad_of(s);
      double* act = a.active ? a.active + s : nullptr;
      if (!all_sortable(p, g, n)) {  // NaN/inf: the dense loop keeps the reference's semantics
        SeriesArgs<T> one{p, g, w, 1, n, -1, a.margin, grad.p, a.loss + s, act};
        one.lgrad = SeriesLayout{1, 0, 0, grad.step};  // series 0 at grad.p, elements grad.step apart
        one.grad_scale = &grad.scale, one.grad_add = grad.add;
        dense_rank_hinge<T>(one, isa);
        continue;
      }
      double act_s = 0;
      sorted_series<T, kW>(p, g, w, n, a.margin, grad, a.loss + s, &act_s, sc);
      if (act) *act = act_s;
    }
  });
}

}  // namespace

template <typename T>
void sorted_rank_hinge(const SeriesArgs<T>& a, Isa isa) {
  if (a.s == 0 || a.n == 0) return;
  if (a.window >= 0 && a.window < a.n - 1) {  // a window needs the band: dense
    dense_rank_hinge<T>(a, isa);
    return;
  }
  if (a.w != nullptr) {
    sorted_run<T, true>(a, isa);
  } else {
    sorted_run<T, false>(a, isa);
  }
}

template void sorted_rank_hinge<float>(const SeriesArgs<float>&, Isa);
template void sorted_rank_hinge<double>(const SeriesArgs<double>&, Isa);

}  // namespace cpu
}  // namespace repose
