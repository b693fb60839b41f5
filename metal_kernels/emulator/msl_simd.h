// msl_simd.h -- barriers, simd-group and quad-group functions, simdgroup_matrix, MLX's prelude and
// the address-space macros (included last by msl_shim.h).
//
// A simd-group function is a rendezvous of the active lanes of a simdgroup: each lane deposits its
// value, waits for the others, then computes its own result from all deposits. Lanes that returned
// are inactive, as on the GPU; reading an inactive lane yields poison (0xFF bytes), since Metal leaves
// that value undefined.
#pragma once

#define MSL_SITE_PARAMS const char *msl_file = __builtin_FILE(), int msl_line = __builtin_LINE()

namespace metal {

inline void threadgroup_barrier(mem_flags = mem_flags::mem_none, MSL_SITE_PARAMS) {
  msl_rt::barrier(msl_rt::Site{"threadgroup_barrier", msl_file, msl_line});
}
inline void simdgroup_barrier(mem_flags = mem_flags::mem_none, MSL_SITE_PARAMS) {
  msl_rt::simd_exchange(msl_rt::Site{"simdgroup_barrier", msl_file, msl_line}, nullptr, 0);
}

namespace simd_detail {
template <class T>
struct Lanes {
  msl_rt::SimdView v;
  bool active(uint32_t i) const { return i < uint32_t(msl_rt::kSimdWidth) && (v.mask >> i & 1u); }
  uint32_t lane() const { return v.lane; }
  uint32_t first() const { return uint32_t(__builtin_ctz(v.mask)); }
  T operator[](uint32_t i) const {
    T t;
    if (active(i))
      memcpy(static_cast<void*>(&t), v.slots + i * msl_rt::kSlotBytes, sizeof(T));
    else
      memset(static_cast<void*>(&t), 0xFF, sizeof(T));
    return t;
  }
};
template <class T>
inline Lanes<T> exchange(const char* op, const char* file, int line, const T& x) {
  static_assert(sizeof(T) <= msl_rt::kSlotBytes, "simd-group function on a type over 64 bytes");
  return Lanes<T>{msl_rt::simd_exchange(msl_rt::Site{op, file, line}, &x, sizeof(T))};
}
// Butterfly (xor) reduction over 32 lanes; the order on Apple GPUs is unknown, so float sums
// agree with the GPU only to rounding. Inactive lanes contribute `fill`.
template <class T, class Op>
inline T butterfly(const Lanes<T>& l, T fill, Op op) {
  T a[msl_rt::kSimdWidth], b[msl_rt::kSimdWidth];
  for (uint32_t i = 0; i < uint32_t(msl_rt::kSimdWidth); ++i) a[i] = l.active(i) ? l[i] : fill;
  for (int off = msl_rt::kSimdWidth / 2; off > 0; off >>= 1) {
    for (int i = 0; i < msl_rt::kSimdWidth; ++i) b[i] = op(a[i], a[i ^ off]);
    for (int i = 0; i < msl_rt::kSimdWidth; ++i) a[i] = b[i];
  }
  return a[0];
}
template <class T, class Op>
inline T prefix(const Lanes<T>& l, T init, bool inclusive, Op op) {
  T s = init;
  for (uint32_t i = 0; i < l.lane() + (inclusive ? 1u : 0u); ++i)
    if (l.active(i)) s = op(s, l[i]);
  return s;
}
}  // namespace simd_detail

#define MSL_SIMD_REDUCE(name, fill, expr)                                            \
  template <class T>                                                                 \
  inline T name(T x, MSL_SITE_PARAMS) {                                              \
    auto l = simd_detail::exchange(#name, msl_file, msl_line, x);                    \
    return simd_detail::butterfly(l, fill, [](T a, T b) { return T(expr); });        \
  }
MSL_SIMD_REDUCE(simd_sum, T(0), a + b)
MSL_SIMD_REDUCE(simd_product, T(1), a* b)
MSL_SIMD_REDUCE(simd_max, l[l.first()], metal::max(a, b))  // max/min are idempotent: any
MSL_SIMD_REDUCE(simd_min, l[l.first()], metal::min(a, b))  // active lane is a neutral fill
MSL_SIMD_REDUCE(simd_and, T(~T(0)), a& b)
MSL_SIMD_REDUCE(simd_or, T(0), a | b)
MSL_SIMD_REDUCE(simd_xor, T(0), a ^ b)

#define MSL_SIMD_PREFIX(name, init, inclusive, expr)                                  \
  template <class T>                                                                  \
  inline T name(T x, MSL_SITE_PARAMS) {                                               \
    auto l = simd_detail::exchange(#name, msl_file, msl_line, x);                     \
    return simd_detail::prefix(l, init, inclusive, [](T a, T b) { return T(expr); }); \
  }
MSL_SIMD_PREFIX(simd_prefix_inclusive_sum, T(0), true, a + b)
MSL_SIMD_PREFIX(simd_prefix_exclusive_sum, T(0), false, a + b)
MSL_SIMD_PREFIX(simd_prefix_inclusive_product, T(1), true, a* b)
MSL_SIMD_PREFIX(simd_prefix_exclusive_product, T(1), false, a* b)

// Permutations: `src` is the lane read by the calling lane; `keep` returns the caller's own value.
#define MSL_SIMD_SHUFFLE(name, Arg, src, keep)                                        \
  template <class T>                                                                  \
  inline T name(T x, Arg k, MSL_SITE_PARAMS) {                                        \
    auto l = simd_detail::exchange(#name, msl_file, msl_line, x);                     \
    uint32_t lane = l.lane();                                                         \
    (void)lane;                                                                       \
    return (keep) ? x : l[uint32_t(src)];                                             \
  }
MSL_SIMD_SHUFFLE(simd_shuffle, ushort, k, false)
MSL_SIMD_SHUFFLE(simd_broadcast, ushort, k, false)
MSL_SIMD_SHUFFLE(simd_shuffle_xor, ushort, lane ^ k, false)
MSL_SIMD_SHUFFLE(simd_shuffle_down, ushort, lane + k, lane + k >= 32u)  // upper lanes keep x
MSL_SIMD_SHUFFLE(simd_shuffle_up, ushort, lane - k, k > lane)           // lower lanes keep x
MSL_SIMD_SHUFFLE(simd_shuffle_rotate_down, ushort, (lane + k) % 32u, false)
MSL_SIMD_SHUFFLE(simd_shuffle_rotate_up, ushort, (lane + 32u - k % 32u) % 32u, false)
MSL_SIMD_SHUFFLE(quad_shuffle, ushort, (lane & ~3u) + k, k > 3u)
MSL_SIMD_SHUFFLE(quad_broadcast, ushort, (lane & ~3u) + k, k > 3u)
MSL_SIMD_SHUFFLE(quad_shuffle_xor, ushort, lane ^ k, k > 3u)
MSL_SIMD_SHUFFLE(quad_shuffle_down, ushort, lane + k, (lane & 3u) + k > 3u)
MSL_SIMD_SHUFFLE(quad_shuffle_up, ushort, lane - k, k > (lane & 3u))

template <class T>
inline T simd_broadcast_first(T x, MSL_SITE_PARAMS) {
  auto l = simd_detail::exchange("simd_broadcast_first", msl_file, msl_line, x);
  return l[l.first()];
}

#define MSL_QUAD_REDUCE(name, expr)                                            \
  template <class T>                                                           \
  inline T name(T x, MSL_SITE_PARAMS) {                                        \
    auto l = simd_detail::exchange(#name, msl_file, msl_line, x);              \
    uint32_t q = l.lane() & ~3u;                                               \
    T r = x;                                                                   \
    for (uint32_t i = q; i < q + 4; ++i)                                       \
      if (i != l.lane() && l.active(i)) {                                      \
        T a = r, b = l[i];                                                     \
        r = T(expr);                                                           \
      }                                                                        \
    return r;                                                                  \
  }
MSL_QUAD_REDUCE(quad_sum, a + b)
MSL_QUAD_REDUCE(quad_product, a* b)
MSL_QUAD_REDUCE(quad_max, metal::max(a, b))
MSL_QUAD_REDUCE(quad_min, metal::min(a, b))

struct simd_vote {
  using vote_t = ulong;
  explicit simd_vote(vote_t bits = 0, vote_t active = 0) : bits_(bits), active_(active) {}
  explicit operator vote_t() const { return bits_; }
  bool all() const { return bits_ == active_; }
  bool any() const { return bits_ != 0; }

 private:
  vote_t bits_, active_;
};

namespace simd_detail {
inline simd_vote ballot(const char* op, const char* file, int line, bool b) {
  auto l = exchange(op, file, line, b);
  simd_vote::vote_t bits = 0;
  for (uint32_t i = 0; i < uint32_t(msl_rt::kSimdWidth); ++i)
    if (l.active(i) && l[i]) bits |= simd_vote::vote_t(1) << i;
  return simd_vote(bits, l.v.mask);
}
}  // namespace simd_detail
inline simd_vote simd_ballot(bool b, MSL_SITE_PARAMS) {
  return simd_detail::ballot("simd_ballot", msl_file, msl_line, b);
}
inline bool simd_all(bool b, MSL_SITE_PARAMS) {
  return simd_detail::ballot("simd_all", msl_file, msl_line, b).all();
}
inline bool simd_any(bool b, MSL_SITE_PARAMS) {
  return simd_detail::ballot("simd_any", msl_file, msl_line, b).any();
}
inline simd_vote simd_active_threads_mask(MSL_SITE_PARAMS) {
  return simd_detail::ballot("simd_active_threads_mask", msl_file, msl_line, true);
}
inline bool simd_is_first(MSL_SITE_PARAMS) {
  auto l = simd_detail::exchange("simd_is_first", msl_file, msl_line, 0);
  return l.lane() == l.first();
}
inline bool simd_is_helper_thread() { return false; }

// ------------------------------------------------------------------ simdgroup_matrix
// Every lane holds the whole tile; loads, stores and products are simd-group functions, so the
// replicas stay identical. thread_elements() is not provided: its lane layout is undocumented.
template <class T, int R, int C>
struct simdgroup_matrix {
  T m[R][C];
  simdgroup_matrix() = default;
  explicit simdgroup_matrix(T diagonal) {  // as in Metal: a diagonal matrix
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < C; ++j) m[i][j] = i == j ? diagonal : T(0);
  }
};
using simdgroup_float8x8 = simdgroup_matrix<float, 8, 8>;
using simdgroup_half8x8 = simdgroup_matrix<half, 8, 8>;
using simdgroup_bfloat8x8 = simdgroup_matrix<bfloat, 8, 8>;

namespace simd_detail {
// The replicas are identical, so the first lane to run after a matrix load's or product's
// rendezvous does the work and the other lanes copy it: emulation does not cost 32 times over.
// (Race tracking sees that lane's loads; lanes of one simdgroup never race with each other.)
template <class M>
inline M* shared_result(const msl_rt::SimdView& v, bool& first) {
  struct Entry {
    uint64_t seq;
    M value;
  };
  static thread_local Entry cache[msl_rt::kMaxSimdgroups];
  Entry& e = cache[v.simdgroup];
  first = e.seq != v.seq;
  e.seq = v.seq;
  return &e.value;
}
}  // namespace simd_detail

template <class T, int R, int C = R>
inline simdgroup_matrix<T, R, C> make_filled_simdgroup_matrix(T value) {
  simdgroup_matrix<T, R, C> a;
  for (auto& row : a.m)
    for (auto& v : row) v = value;
  return a;
}
template <class T, class U, int R, int C>
inline void simdgroup_load(simdgroup_matrix<T, R, C>& d, const U* src, ulong elements_per_row = C,
                           ulong2 origin = ulong2(0), bool transpose = false, MSL_SITE_PARAMS) {
  msl_rt::SimdView v =
      msl_rt::simd_exchange(msl_rt::Site{"simdgroup_load", msl_file, msl_line}, nullptr, 0);
  bool first;
  simdgroup_matrix<T, R, C>* shared = simd_detail::shared_result<simdgroup_matrix<T, R, C>>(v, first);
  if (first) {
    msl_rt::count_matrix(src, sizeof(U), elements_per_row, origin.x, origin.y, transpose, R, C,
                         false);
    msl_rt::matrix_scope(true);
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < C; ++j)
        shared->m[i][j] = T(transpose ? src[(origin.y + j) * elements_per_row + origin.x + i]
                                      : src[(origin.y + i) * elements_per_row + origin.x + j]);
    msl_rt::matrix_scope(false);
  }
  d = *shared;
}
template <class T, class U, int R, int C>
inline void simdgroup_store(const simdgroup_matrix<T, R, C>& s, U* dst, ulong elements_per_row = C,
                            ulong2 origin = ulong2(0), bool transpose = false, MSL_SITE_PARAMS) {
  msl_rt::Site site{"simdgroup_store", msl_file, msl_line};
  msl_rt::SimdView v = msl_rt::simd_exchange(site, nullptr, 0);
  if (v.lane == uint32_t(__builtin_ctz(v.mask))) {
    msl_rt::count_matrix(dst, sizeof(U), elements_per_row, origin.x, origin.y, transpose, R, C,
                         true);
    msl_rt::matrix_scope(true);
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < C; ++j)
        (transpose ? dst[(origin.y + j) * elements_per_row + origin.x + i]
                   : dst[(origin.y + i) * elements_per_row + origin.x + j]) = U(s.m[i][j]);
    msl_rt::matrix_scope(false);
  }
  msl_rt::simd_exchange(site, nullptr, 0);  // no lane reads the tile before it is written
}
template <class T, class A, class B, class C, int M, int N, int K>
inline void simdgroup_multiply_accumulate(simdgroup_matrix<T, M, N>& d,
                                          const simdgroup_matrix<A, M, K>& a,
                                          const simdgroup_matrix<B, K, N>& b,
                                          const simdgroup_matrix<C, M, N>& c, MSL_SITE_PARAMS) {
  msl_rt::SimdView v = msl_rt::simd_exchange(
      msl_rt::Site{"simdgroup_multiply_accumulate", msl_file, msl_line}, nullptr, 0);
  bool first;
  simdgroup_matrix<T, M, N>* r = simd_detail::shared_result<simdgroup_matrix<T, M, N>>(v, first);
  if (first)
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        float s = float(c.m[i][j]);
        for (int k = 0; k < K; ++k) s += float(a.m[i][k]) * float(b.m[k][j]);
        r->m[i][j] = T(s);
      }
  d = *r;
}
template <class T, class A, class B, int M, int N, int K>
inline void simdgroup_multiply(simdgroup_matrix<T, M, N>& d, const simdgroup_matrix<A, M, K>& a,
                               const simdgroup_matrix<B, K, N>& b, MSL_SITE_PARAMS) {
  simdgroup_multiply_accumulate(d, a, b, make_filled_simdgroup_matrix<T, M, N>(T(0)), msl_file,
                                msl_line);
}

}  // namespace metal

// ------------------------------------------------------------------ MLX's prelude (kernels/utils.h)
using namespace metal;
typedef half float16_t;
typedef bfloat bfloat16_t;

// Location of element `elem` of a strided array (strides in elements).
template <typename IdxT = int64_t>
inline IdxT elem_to_loc(IdxT elem, const int* shape, const int64_t* strides, int ndim) {
  IdxT loc = 0;
  for (int d = ndim - 1; d >= 0 && elem > 0; --d) {
    loc += IdxT(elem % IdxT(shape[d])) * IdxT(strides[d]);
    elem /= IdxT(shape[d]);
  }
  return loc;
}
template <typename IdxT = int64_t>
inline IdxT elem_to_loc(uint3 elem, const int* shape, const int64_t* strides, int ndim) {
  IdxT loc = IdxT(elem.x) * IdxT(strides[ndim - 1]) + IdxT(elem.y) * IdxT(strides[ndim - 2]);
  for (int d = ndim - 3; d >= 0; --d) {
    loc += IdxT(elem.z % uint(shape[d])) * IdxT(strides[d]);
    elem.z /= uint(shape[d]);
  }
  return loc;
}

// Address spaces are erased. translate.py has already turned every `threadgroup` variable into
// MSL_TG(name, dims, type), so the keyword that remains only qualifies pointers and references.
#define device
#define constant
#define thread
#define threadgroup
#define kernel
#define METAL_FUNC inline
#define MSL_TG(name, dims, ...)                                               \
  auto& name = *reinterpret_cast<__VA_ARGS__(*) dims>(                        \
      msl_rt::threadgroup_alloc(__COUNTER__, sizeof(__VA_ARGS__ dims), #name))
