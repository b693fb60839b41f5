// msl_shim.h -- the subset of the Metal Shading Language that the CPU emulator compiles as C++17.
//
// Kernel sources written for mx.fast.metal_kernel compile unmodified against this header, except for
// one rewrite done by translate.py: `threadgroup T name[n];` becomes MSL_TG(...), storage shared by
// the fibers of a threadgroup. Address-space qualifiers are erased, so code Metal rejects for address
// space reasons may compile here. Synchronising functions take the caller's file and line as default
// arguments so that divergence reports can point at the kernel source.
#pragma once
#include <float.h>
#include <stdint.h>
#include <string.h>

#include <limits>
#include <type_traits>

#include "msl_runtime.h"

namespace metal {
using std::conditional_t;
using std::enable_if_t;
using std::is_integral_v;
using std::is_same_v;

using uint = unsigned int;
using ushort = unsigned short;
using uchar = unsigned char;
using ulong = uint64_t;

// ------------------------------------------------------------------ half and bfloat
template <class Derived>
struct fp16_storage {};  // tag: class-typed 16-bit floats; arithmetic happens in float

#if !defined(MSL_SOFT_HALF) && !defined(__FLT16_MAX__)
#define MSL_SOFT_HALF 1  // no _Float16 in C++: g++ < 12 or clang < 15 on x86-64
#endif
#if defined(MSL_SOFT_HALF)
struct half : fp16_storage<half> {
  uint16_t bits;
  half() = default;
  half(float f) : bits(from_float(f)) {}
  template <class T, class = enable_if_t<std::is_arithmetic_v<T>>>
  half(T v) : half(float(v)) {}
  operator float() const { return to_float(bits); }
  static uint16_t from_float(float f) {  // round to nearest even, via the float's bits
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);
    if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to infinity
    if (a < 0x38800000u) {                                  // subnormal or zero in half
      float m;
      memcpy(&m, &a, 4);
      return uint16_t(sign | uint32_t(__builtin_rintf(m * 16777216.0f)));
    }
    uint32_t r = a + 0x0fffu + ((a >> 13) & 1u) - (112u << 23);
    return uint16_t(sign | (r >> 13));
  }
  static float to_float(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) {
      float f = float(m) * 5.9604644775390625e-8f;
      memcpy(&u, &f, 4);
      u |= sign;
    } else {
      u = sign | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112u) << 23) | (m << 13));
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
};
#else
using half = _Float16;
#endif

struct bfloat : fp16_storage<bfloat> {
  uint16_t bits;
  bfloat() = default;
  bfloat(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    bits = __builtin_isnan(f) ? uint16_t((u >> 16) | 0x40u)
                              : uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  template <class T, class = enable_if_t<std::is_arithmetic_v<T> || is_same_v<T, half>>>
  bfloat(T v) : bfloat(float(v)) {}
  operator float() const {
    uint32_t u = uint32_t(bits) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
};

template <class T>
constexpr bool is_fp16_class_v = std::is_base_of_v<fp16_storage<T>, T>;
template <class T>
constexpr bool is_scalar_v =
    std::is_arithmetic_v<T> || is_same_v<T, half> || is_same_v<T, bfloat>;

// Result of a binary operation involving a class-typed 16-bit float (Metal promotes to float).
template <class A, class B>
using fp16_result_t =
    conditional_t<is_same_v<A, B>, A,
                  conditional_t<is_integral_v<B>, A, conditional_t<is_integral_v<A>, B, float>>>;

#define MSL_FP16_ARITH(op)                                                                  \
  template <class A, class B,                                                               \
            enable_if_t<(is_fp16_class_v<A> || is_fp16_class_v<B>) && is_scalar_v<A> &&     \
                            is_scalar_v<B>,                                                 \
                        int> = 0>                                                           \
  inline fp16_result_t<A, B> operator op(A a, B b) {                                        \
    return fp16_result_t<A, B>(float(a) op float(b));                                       \
  }                                                                                         \
  template <class A, class B, enable_if_t<is_fp16_class_v<A> && is_scalar_v<B>, int> = 0>   \
  inline A& operator op##=(A& a, B b) {                                                     \
    return a = A(float(a) op float(b));                                                     \
  }
MSL_FP16_ARITH(+)
MSL_FP16_ARITH(-)
MSL_FP16_ARITH(*)
MSL_FP16_ARITH(/)
#define MSL_FP16_CMP(op)                                                                    \
  template <class A, class B,                                                               \
            enable_if_t<(is_fp16_class_v<A> || is_fp16_class_v<B>) && is_scalar_v<A> &&     \
                            is_scalar_v<B>,                                                 \
                        int> = 0>                                                           \
  inline bool operator op(A a, B b) {                                                       \
    return float(a) op float(b);                                                            \
  }
MSL_FP16_CMP(==)
MSL_FP16_CMP(!=)
MSL_FP16_CMP(<)
MSL_FP16_CMP(<=)
MSL_FP16_CMP(>)
MSL_FP16_CMP(>=)
template <class A, enable_if_t<is_fp16_class_v<A>, int> = 0>
inline A operator-(A a) {
  A r = a;
  r.bits ^= 0x8000u;
  return r;
}

// ------------------------------------------------------------------ vectors
template <class T, int N>
struct vec;

// A swizzle (`v.xy`, `v.wzyx`) overlays the vector's storage and reads or writes components I....
template <class T, int S, int... I>
struct swizzle {
  T e[S];
  using V = vec<T, int(sizeof...(I))>;
  operator V() const { return V(e[I]...); }
  swizzle& operator=(const V& v) {
    int k = 0;
    ((e[I] = v[k++]), ...);
    return *this;
  }
  swizzle& operator=(const swizzle& o) { return *this = V(o); }  // not a copy of all S
  T operator[](int i) const { return V(*this)[i]; }
};

template <class X>
struct vec_info {
  static constexpr bool is_vec = false;
  static constexpr int n = 1;
  using elem = X;
  using type = X;
};
template <class T, int N>
struct vec_info<vec<T, N>> {
  static constexpr bool is_vec = true;
  static constexpr int n = N;
  using elem = T;
  using type = vec<T, N>;
};
template <class T, int S, int... I>
struct vec_info<swizzle<T, S, I...>> : vec_info<vec<T, int(sizeof...(I))>> {};
template <class X>
constexpr bool is_vec_v = vec_info<std::decay_t<X>>::is_vec;
template <class X>
using vec_t = typename vec_info<std::decay_t<X>>::type;
template <class X>
using elem_t = typename vec_info<std::decay_t<X>>::elem;
template <class X>
constexpr int vec_n = vec_info<std::decay_t<X>>::n;

template <class X>
inline auto comp(const X& x, int i) {  // component i of a vector, or a broadcast scalar
  if constexpr (is_vec_v<X>)
    return vec_t<X>(x)[i];
  else
    return x;
}

#define MSL_VEC_BODY(N)                                                                      \
  using value_type = T;                                                                      \
  vec() = default;                                                                           \
  template <class U, enable_if_t<is_scalar_v<U>, int> = 0>                                   \
  vec(U s) {                                                                                 \
    for (int i = 0; i < N; ++i) e[i] = T(s);                                                 \
  }                                                                                          \
  template <class U>                                                                         \
  explicit vec(const vec<U, N>& o) {                                                         \
    for (int i = 0; i < N; ++i) e[i] = T(o[i]);                                              \
  }                                                                                          \
  template <class A0, class A1, class... A,                                                  \
            enable_if_t<vec_n<A0> + vec_n<A1> + (0 + ... + vec_n<A>) == N, int> = 0>         \
  vec(const A0& a0, const A1& a1, const A&... a) {                                           \
    int k = 0;                                                                               \
    put(k, a0);                                                                              \
    put(k, a1);                                                                              \
    (put(k, a), ...);                                                                        \
  }                                                                                          \
  vec& operator=(const vec& o) { /* one move, so a float4 load is one 16-byte access */    \
    __builtin_memmove(e, o.e, sizeof e);                                                     \
    return *this;                                                                            \
  }                                                                                          \
  T& operator[](int i) { return e[i]; }                                                      \
  const T& operator[](int i) const { return e[i]; }                                          \
                                                                                             \
 private:                                                                                    \
  template <class X>                                                                         \
  void put(int& k, const X& x) {                                                             \
    if constexpr (is_vec_v<X>) {                                                             \
      vec_t<X> v(x);                                                                         \
      for (int i = 0; i < vec_n<X>; ++i) e[k++] = T(v[i]);                                   \
    } else {                                                                                 \
      e[k++] = T(x);                                                                         \
    }                                                                                        \
  }                                                                                          \
                                                                                             \
 public:

#define MSL_SW(a, i, b, j) swizzle<T, S, i, j> a##b;
#define MSL_SW_ROW(a, i, p, q, r, s, n0, n1, n2, n3) \
  MSL_SW(a, i, p, n0) MSL_SW(a, i, q, n1) MSL_SW(a, i, r, n2) MSL_SW(a, i, s, n3)
#define MSL_SW_ALL4(p, q, r, s)                 \
  MSL_SW_ROW(p, 0, p, q, r, s, 0, 1, 2, 3)      \
  MSL_SW_ROW(q, 1, p, q, r, s, 0, 1, 2, 3)      \
  MSL_SW_ROW(r, 2, p, q, r, s, 0, 1, 2, 3)      \
  MSL_SW_ROW(s, 3, p, q, r, s, 0, 1, 2, 3)
#define MSL_SW_ALL3(p, q, r)                                                             \
  MSL_SW(p, 0, p, 0) MSL_SW(p, 0, q, 1) MSL_SW(p, 0, r, 2) MSL_SW(q, 1, p, 0)          \
  MSL_SW(q, 1, q, 1) MSL_SW(q, 1, r, 2) MSL_SW(r, 2, p, 0) MSL_SW(r, 2, q, 1)          \
  MSL_SW(r, 2, r, 2)

template <class T>
struct vec<T, 2> {
  static constexpr int S = 2;
  union {
    T e[2];
    struct {
      T x, y;
    };
    struct {
      T r, g;
    };
    MSL_SW(x, 0, x, 0) MSL_SW(x, 0, y, 1) MSL_SW(y, 1, x, 0) MSL_SW(y, 1, y, 1)
    MSL_SW(r, 0, r, 0) MSL_SW(r, 0, g, 1) MSL_SW(g, 1, r, 0) MSL_SW(g, 1, g, 1)
  };
  MSL_VEC_BODY(2)
};

template <class T>
struct vec<T, 3> {
  static constexpr int S = 4;  // Metal pads 3-component vectors to the size of 4
  union {
    T e[4];
    struct {
      T x, y, z;
    };
    struct {
      T r, g, b;
    };
    MSL_SW_ALL3(x, y, z)
    MSL_SW_ALL3(r, g, b)
    swizzle<T, S, 0, 1, 2> xyz, rgb;
    swizzle<T, S, 2, 1, 0> zyx, bgr;
  };
  MSL_VEC_BODY(3)
};

template <class T>
struct vec<T, 4> {
  static constexpr int S = 4;
  union {
    T e[4];
    struct {
      T x, y, z, w;
    };
    struct {
      T r, g, b, a;
    };
    MSL_SW_ALL4(x, y, z, w)
    MSL_SW_ALL4(r, g, b, a)
    swizzle<T, S, 0, 1, 2> xyz, rgb;
    swizzle<T, S, 1, 2, 3> yzw, gba;
    swizzle<T, S, 2, 1, 0> zyx, bgr;
    swizzle<T, S, 0, 1, 2, 3> xyzw, rgba;
    swizzle<T, S, 3, 2, 1, 0> wzyx, abgr;
    swizzle<T, S, 2, 3, 0, 1> zwxy, barg;
    swizzle<T, S, 2, 1, 0, 3> zyxw, bgra;
  };
  MSL_VEC_BODY(4)
};

template <class A, class B>
using binop_vec_t = conditional_t<is_vec_v<A>, vec_t<A>, vec_t<B>>;

#define MSL_VEC_ARITH(op)                                                                  \
  template <class A, class B, enable_if_t<is_vec_v<A> || is_vec_v<B>, int> = 0>            \
  inline binop_vec_t<A, B> operator op(const A& a, const B& b) {                           \
    using V = binop_vec_t<A, B>;                                                           \
    V r;                                                                                   \
    for (int i = 0; i < vec_n<V>; ++i) r[i] = elem_t<V>(comp(a, i) op comp(b, i));         \
    return r;                                                                              \
  }                                                                                        \
  template <class T, int N, class B>                                                       \
  inline vec<T, N>& operator op##=(vec<T, N>& a, const B& b) {                             \
    return a = vec<T, N>(a op b);                                                          \
  }
MSL_VEC_ARITH(+)
MSL_VEC_ARITH(-)
MSL_VEC_ARITH(*)
MSL_VEC_ARITH(/)
MSL_VEC_ARITH(%)
MSL_VEC_ARITH(&)
MSL_VEC_ARITH(|)
MSL_VEC_ARITH(^)
MSL_VEC_ARITH(<<)
MSL_VEC_ARITH(>>)

#define MSL_VEC_CMP(op)                                                                    \
  template <class A, class B, enable_if_t<is_vec_v<A> || is_vec_v<B>, int> = 0>            \
  inline vec<bool, vec_n<binop_vec_t<A, B>>> operator op(const A& a, const B& b) {         \
    vec<bool, vec_n<binop_vec_t<A, B>>> r;                                                 \
    for (int i = 0; i < vec_n<binop_vec_t<A, B>>; ++i) r[i] = comp(a, i) op comp(b, i);    \
    return r;                                                                              \
  }
MSL_VEC_CMP(==)
MSL_VEC_CMP(!=)
MSL_VEC_CMP(<)
MSL_VEC_CMP(<=)
MSL_VEC_CMP(>)
MSL_VEC_CMP(>=)
MSL_VEC_CMP(&&)
MSL_VEC_CMP(||)

#define MSL_VEC_UNARY(op, R)                                              \
  template <class X, enable_if_t<is_vec_v<X>, int> = 0>                   \
  inline vec<R, vec_n<X>> operator op(const X& x) {                       \
    vec_t<X> v(x);                                                        \
    vec<R, vec_n<X>> r;                                                   \
    for (int i = 0; i < vec_n<X>; ++i) r[i] = R(op v[i]);                 \
    return r;                                                             \
  }
MSL_VEC_UNARY(-, elem_t<X>)
MSL_VEC_UNARY(+, elem_t<X>)
MSL_VEC_UNARY(~, elem_t<X>)
MSL_VEC_UNARY(!, bool)

#define MSL_VEC_TYPES(T, name) \
  using name##2 = vec<T, 2>;   \
  using name##3 = vec<T, 3>;   \
  using name##4 = vec<T, 4>;
MSL_VEC_TYPES(float, float)
MSL_VEC_TYPES(half, half)
MSL_VEC_TYPES(bfloat, bfloat)
MSL_VEC_TYPES(int, int)
MSL_VEC_TYPES(uint, uint)
MSL_VEC_TYPES(short, short)
MSL_VEC_TYPES(ushort, ushort)
MSL_VEC_TYPES(char, char)
MSL_VEC_TYPES(uchar, uchar)
MSL_VEC_TYPES(bool, bool)
MSL_VEC_TYPES(long, long)
MSL_VEC_TYPES(ulong, ulong)
// Packed 2- and 4-component vectors have the same layout; packed 3-component ones are not provided.
using packed_float2 = float2;
using packed_float4 = float4;
using packed_half2 = half2;
using packed_half4 = half4;
using packed_uchar4 = uchar4;
using packed_char4 = char4;
using packed_ushort2 = ushort2;
using packed_ushort4 = ushort4;

template <class To, class From>
inline To as_type(const From& f) {
  if constexpr (!is_same_v<vec_t<From>, std::decay_t<From>>) {
    return as_type<To>(vec_t<From>(f));  // a swizzle: reinterpret its value
  } else {
    static_assert(sizeof(To) == sizeof(From), "as_type: the types differ in size");
    To t;
    memcpy(static_cast<void*>(&t), &f, sizeof(To));
    return t;
  }
}

template <class V>
inline bool all(const V& v) {
  for (int i = 0; i < vec_n<V>; ++i)
    if (!comp(v, i)) return false;
  return true;
}
template <class V>
inline bool any(const V& v) {
  for (int i = 0; i < vec_n<V>; ++i)
    if (comp(v, i)) return true;
  return false;
}
template <class A, class B, class C>
inline auto select(const A& a, const B& b, const C& c) {  // c ? b : a, per component
  if constexpr (is_vec_v<C>) {
    vec_t<A> r(a);
    for (int i = 0; i < vec_n<C>; ++i)
      if (comp(c, i)) r[i] = elem_t<A>(comp(b, i));
    return r;
  } else {
    return c ? vec_t<A>(b) : vec_t<A>(a);
  }
}

}  // namespace metal

#include "msl_math.h"
#include "msl_simd.h"
