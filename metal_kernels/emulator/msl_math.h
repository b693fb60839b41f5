// msl_math.h -- Metal math, integer, limits and atomic functions for the CPU emulator (included by
// msl_shim.h). Floating-point functions compute in float and round to the argument's type, which is
// how Metal treats half and bfloat; results are close to, not bit-identical with, Apple GPUs.
#pragma once

namespace metal {

template <class T>
struct fp_of {
  using type = float;  // integers and double become float (Metal has no double)
};
template <>
struct fp_of<half> {
  using type = half;
};
template <>
struct fp_of<bfloat> {
  using type = bfloat;
};
template <class T>
using fp_t = typename fp_of<std::decay_t<T>>::type;

template <class... X>
constexpr int max_components() {
  int n = 1;
  ((n = vec_n<X> > n ? vec_n<X> : n), ...);
  return n;
}

// Applies f per component: any vector argument gives a vector, scalars broadcast.
template <class R, class F, class... X>
inline auto map_components(F f, const X&... x) {
  if constexpr (!(is_vec_v<X> || ...)) {
    return R(f(x...));
  } else {
    vec<R, max_components<X...>()> r;
    for (int i = 0; i < max_components<X...>(); ++i) r[i] = R(f(comp(x, i)...));
    return r;
  }
}

#define MSL_MATH1(name, expr)                                                      \
  template <class X>                                                               \
  inline auto name(const X& x_) {                                                  \
    return map_components<fp_t<elem_t<X>>>([](auto v) { float x = float(v); return expr; }, x_); \
  }
MSL_MATH1(exp, __builtin_expf(x))
MSL_MATH1(exp2, __builtin_exp2f(x))
MSL_MATH1(exp10, __builtin_powf(10.0f, x))
MSL_MATH1(log, __builtin_logf(x))
MSL_MATH1(log2, __builtin_log2f(x))
MSL_MATH1(log10, __builtin_log10f(x))
MSL_MATH1(log1p, __builtin_log1pf(x))
MSL_MATH1(expm1, __builtin_expm1f(x))
MSL_MATH1(sqrt, __builtin_sqrtf(x))
MSL_MATH1(rsqrt, 1.0f / __builtin_sqrtf(x))
MSL_MATH1(cbrt, __builtin_cbrtf(x))
MSL_MATH1(sin, __builtin_sinf(x))
MSL_MATH1(cos, __builtin_cosf(x))
MSL_MATH1(tan, __builtin_tanf(x))
MSL_MATH1(asin, __builtin_asinf(x))
MSL_MATH1(acos, __builtin_acosf(x))
MSL_MATH1(atan, __builtin_atanf(x))
MSL_MATH1(sinh, __builtin_sinhf(x))
MSL_MATH1(cosh, __builtin_coshf(x))
MSL_MATH1(tanh, __builtin_tanhf(x))
MSL_MATH1(asinh, __builtin_asinhf(x))
MSL_MATH1(acosh, __builtin_acoshf(x))
MSL_MATH1(atanh, __builtin_atanhf(x))
MSL_MATH1(erf, __builtin_erff(x))
MSL_MATH1(erfc, __builtin_erfcf(x))
MSL_MATH1(floor, __builtin_floorf(x))
MSL_MATH1(ceil, __builtin_ceilf(x))
MSL_MATH1(round, __builtin_roundf(x))
MSL_MATH1(rint, __builtin_rintf(x))
MSL_MATH1(trunc, __builtin_truncf(x))
MSL_MATH1(fract, __builtin_fminf(x - __builtin_floorf(x), 0x1.fffffep-1f))
MSL_MATH1(fabs, __builtin_fabsf(x))
MSL_MATH1(saturate, __builtin_fminf(__builtin_fmaxf(x, 0.0f), 1.0f))
MSL_MATH1(sign, x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x)

#define MSL_MATH2(name, expr)                                                              \
  template <class A, class B>                                                              \
  inline auto name(const A& a_, const B& b_) {                                             \
    using E = conditional_t<is_vec_v<A> || !is_vec_v<B>, elem_t<A>, elem_t<B>>;            \
    return map_components<fp_t<E>>(                                                        \
        [](auto a, auto b) { float x = float(a), y = float(b); return expr; }, a_, b_);    \
  }
MSL_MATH2(pow, __builtin_powf(x, y))
MSL_MATH2(powr, __builtin_powf(x, y))
MSL_MATH2(atan2, __builtin_atan2f(x, y))
MSL_MATH2(fmod, __builtin_fmodf(x, y))
MSL_MATH2(fmin, __builtin_fminf(x, y))
MSL_MATH2(fmax, __builtin_fmaxf(x, y))
MSL_MATH2(copysign, __builtin_copysignf(x, y))
MSL_MATH2(step, y < x ? 0.0f : 1.0f)
MSL_MATH2(divide, x / y)

// Element type of a mixed-type min/max/clamp: float wins over 16-bit floats, which win over ints.
template <class A, class B>
using mix_elem_t = conditional_t<
    is_same_v<A, B>, A,
    conditional_t<is_same_v<A, float> || is_same_v<B, float>, float,
                  conditional_t<!is_integral_v<A>, A,
                                conditional_t<!is_integral_v<B>, B, std::common_type_t<A, B>>>>>;

template <class A, class B>
inline auto min(const A& a, const B& b) {
  using E = mix_elem_t<elem_t<A>, elem_t<B>>;
  return map_components<E>(
      [](auto x, auto y) {
        if constexpr (is_integral_v<E>)
          return E(x) < E(y) ? E(x) : E(y);
        else
          return E(__builtin_fminf(float(x), float(y)));  // Metal: a NaN argument loses
      },
      a, b);
}
template <class A, class B>
inline auto max(const A& a, const B& b) {
  using E = mix_elem_t<elem_t<A>, elem_t<B>>;
  return map_components<E>(
      [](auto x, auto y) {
        if constexpr (is_integral_v<E>)
          return E(x) < E(y) ? E(y) : E(x);
        else
          return E(__builtin_fmaxf(float(x), float(y)));
      },
      a, b);
}
template <class X, class L, class H>
inline auto clamp(const X& x, const L& lo, const H& hi) {
  return min(max(x, lo), hi);
}
template <class X>
inline auto abs(const X& x) {
  using E = elem_t<X>;
  return map_components<E>(
      [](auto v) {
        if constexpr (is_integral_v<E>)
          return v < 0 ? E(-v) : E(v);
        else
          return E(__builtin_fabsf(float(v)));
      },
      x);
}
template <class A, class B, class T>
inline auto mix(const A& a, const B& b, const T& t) {
  return map_components<fp_t<elem_t<A>>>(
      [](auto x, auto y, auto s) { return float(x) + (float(y) - float(x)) * float(s); }, a, b, t);
}
template <class A, class B, class X>
inline auto smoothstep(const A& e0, const B& e1, const X& x) {
  return map_components<fp_t<elem_t<X>>>(
      [](auto a, auto b, auto v) {
        float t = __builtin_fminf(__builtin_fmaxf((float(v) - float(a)) / (float(b) - float(a)), 0.f), 1.f);
        return t * t * (3.0f - 2.0f * t);
      },
      e0, e1, x);
}
template <class A, class B, class C>
inline auto fma(const A& a, const B& b, const C& c) {
  return map_components<fp_t<elem_t<A>>>(
      [](auto x, auto y, auto z) { return __builtin_fmaf(float(x), float(y), float(z)); }, a, b, c);
}
template <class A, class B, class C>
inline auto mad(const A& a, const B& b, const C& c) {
  return a * b + c;
}
template <class X, class I>
inline auto ldexp(const X& x, const I& e) {
  return map_components<fp_t<elem_t<X>>>(
      [](auto v, auto k) { return __builtin_ldexpf(float(v), int(k)); }, x, e);
}
template <class X>
inline auto isnan(const X& x) {
  return map_components<bool>([](auto v) { return __builtin_isnan(float(v)); }, x);
}
template <class X>
inline auto isinf(const X& x) {
  return map_components<bool>([](auto v) { return __builtin_isinf(float(v)); }, x);
}
template <class X>
inline auto isfinite(const X& x) {
  return map_components<bool>([](auto v) { return __builtin_isfinite(float(v)); }, x);
}
template <class X>
inline auto signbit(const X& x) {
  return map_components<bool>([](auto v) { return __builtin_signbit(float(v)) != 0; }, x);
}

template <class A, class B>
inline auto dot(const A& a, const B& b) {
  vec_t<A> va(a);
  vec_t<B> vb(b);
  elem_t<A> s = elem_t<A>(0);
  for (int i = 0; i < vec_n<A>; ++i) s = elem_t<A>(s + va[i] * vb[i]);
  return s;
}
template <class A>
inline auto length(const A& a) {
  return sqrt(dot(a, a));
}
template <class A>
inline auto normalize(const A& a) {
  return vec_t<A>(a) * rsqrt(dot(a, a));
}
template <class A, class B>
inline auto distance(const A& a, const B& b) {
  return length(vec_t<A>(a) - vec_t<B>(b));
}
template <class T>
inline vec<T, 3> cross(const vec<T, 3>& a, const vec<T, 3>& b) {
  return vec<T, 3>(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}

namespace precise {
using metal::cos;
using metal::divide;
using metal::exp;
using metal::exp2;
using metal::log;
using metal::log2;
using metal::pow;
using metal::rsqrt;
using metal::sin;
using metal::sqrt;
using metal::tanh;
}  // namespace precise
// fast:: functions return the precise result pushed to an error bound of Metal's fast-math table
// (in ULPs of the result, or absolute for sin/cos), in a direction that depends on the argument:
// a kernel whose tolerance relies on precise:: accuracy fails here, not only on a Mac. The
// bounds are as read from the MSL specification; they stress tests, they do not model Apple's code.
namespace fast {
inline float msl_fast_off(float v, float x, float ulps, float abs_err) {
  if (!__builtin_isfinite(v) || v == 0.0f) return v;
  uint32_t bits;
  memcpy(&bits, &x, 4);
  float dir = ((bits ^ (bits >> 7) ^ (bits >> 13)) & 1) ? 1.0f : -1.0f;
  float off = abs_err > 0.0f ? abs_err : __builtin_ldexpf(ulps, __builtin_ilogbf(v) - 23);
  return v + dir * off;
}
#define MSL_FAST1(name, ulps, abs_err)                                                      \
  template <class X>                                                                        \
  inline auto name(const X& x_) {                                                           \
    return map_components<fp_t<elem_t<X>>>(                                                 \
        [](auto v) {                                                                        \
          float x = float(v);                                                               \
          return msl_fast_off(float(precise::name(x)), x, ulps, abs_err);                   \
        },                                                                                  \
        x_);                                                                                \
  }
MSL_FAST1(exp, 3.0f + __builtin_floorf(__builtin_fabsf(2.0f * x)), 0.0f)
MSL_FAST1(exp2, 3.0f + __builtin_floorf(__builtin_fabsf(2.0f * x)), 0.0f)
MSL_FAST1(log, 4.0f, 0.0f)
MSL_FAST1(log2, 4.0f, 0.0f)
MSL_FAST1(tanh, 4.0f, 0.0f)
MSL_FAST1(rsqrt, 2.0f, 0.0f)
MSL_FAST1(sqrt, 2.0f, 0.0f)
MSL_FAST1(sin, 0.0f, 0x1p-13f)
MSL_FAST1(cos, 0.0f, 0x1p-13f)
#undef MSL_FAST1
template <class A, class B>
inline auto pow(const A& a, const B& b) {  // as exp2(y * log2(x)), each at its bound
  return exp2(b * log2(a));
}
template <class A, class B>
inline auto powr(const A& a, const B& b) {
  return pow(a, b);
}
template <class A, class B>
inline auto divide(const A& a, const B& b) {  // 2.5 ULP: one ULP either side of the quotient
  return map_components<fp_t<elem_t<A>>>(
      [](auto p, auto q) {
        float x = float(p), y = float(q);
        return msl_fast_off(x / y, x, 1.0f, 0.0f);
      },
      a, b);
}
}  // namespace fast

// ------------------------------------------------------------------ integer functions
template <class X>
inline auto popcount(const X& x) {
  using E = elem_t<X>;
  return map_components<E>([](auto v) { return E(__builtin_popcountll(uint64_t(std::make_unsigned_t<E>(v)))); }, x);
}
template <class X>
inline auto clz(const X& x) {
  using E = elem_t<X>;
  return map_components<E>(
      [](auto v) {
        uint64_t u = uint64_t(std::make_unsigned_t<E>(v));
        return E(u ? __builtin_clzll(u) - (64 - 8 * int(sizeof(E))) : 8 * int(sizeof(E)));
      },
      x);
}
template <class X>
inline auto ctz(const X& x) {
  using E = elem_t<X>;
  return map_components<E>(
      [](auto v) {
        uint64_t u = uint64_t(std::make_unsigned_t<E>(v));
        return E(u ? __builtin_ctzll(u) : 8 * int(sizeof(E)));
      },
      x);
}
template <class X>
inline auto reverse_bits(const X& x) {
  using E = elem_t<X>;
  return map_components<E>(
      [](auto v) {
        using U = std::make_unsigned_t<E>;
        U u = U(v), r = 0;
        for (int i = 0; i < 8 * int(sizeof(E)); ++i) r = U((r << 1) | ((u >> i) & 1u));
        return E(r);
      },
      x);
}
template <class X>
inline auto extract_bits(const X& x, uint offset, uint bits) {
  using E = elem_t<X>;
  return map_components<E>(
      [=](auto v) {
        constexpr uint w = 8 * sizeof(E);
        if (bits == 0) return E(0);
        using U = std::make_unsigned_t<E>;
        U u = U(U(v) << (w - offset - bits));
        if constexpr (std::is_signed_v<E>) return E(E(u) >> (w - bits));  // sign-extends
        else return E(u >> (w - bits));
      },
      x);
}
template <class X, class Y>
inline auto insert_bits(const X& base, const Y& insert, uint offset, uint bits) {
  using E = elem_t<X>;
  return map_components<E>(
      [=](auto b, auto i) {
        using U = std::make_unsigned_t<E>;
        U mask = bits >= 8 * sizeof(E) ? U(~U(0)) : U(((U(1) << bits) - 1u) << offset);
        return E((U(b) & U(~mask)) | ((U(i) << offset) & mask));
      },
      base, insert);
}
template <class X, class Y>
inline auto rotate(const X& x, const Y& n) {
  using E = elem_t<X>;
  return map_components<E>(
      [](auto v, auto k) {
        using U = std::make_unsigned_t<E>;
        constexpr uint w = 8 * sizeof(E);
        uint s = uint(k) % w;
        return E(s ? U(U(v) << s) | U(U(v) >> (w - s)) : U(v));
      },
      x, n);
}
template <class X, class Y>
inline auto mulhi(const X& x, const Y& y) {
  using E = elem_t<X>;
  return map_components<E>(
      [](auto a, auto b) {
        using W = conditional_t<std::is_signed_v<E>, __int128, unsigned __int128>;
        return E((W(a) * W(b)) >> (8 * sizeof(E)));
      },
      x, y);
}

// ------------------------------------------------------------------ limits and constants
template <class T>
struct numeric_limits : std::numeric_limits<T> {};
template <class T, uint16_t Max, uint16_t Min, uint16_t Eps, uint16_t Inf, uint16_t Nan>
struct fp16_limits {
  static constexpr bool is_specialized = true, is_signed = true, is_integer = false;
  static T from(uint16_t b) { return as_type<T>(b); }
  static T max() { return from(Max); }
  static T min() { return from(Min); }
  static T lowest() { return from(uint16_t(Max | 0x8000u)); }
  static T epsilon() { return from(Eps); }
  static T infinity() { return from(Inf); }
  static T quiet_NaN() { return from(Nan); }
};
template <>
struct numeric_limits<half> : fp16_limits<half, 0x7bff, 0x0400, 0x1400, 0x7c00, 0x7e00> {};
template <>
struct numeric_limits<bfloat> : fp16_limits<bfloat, 0x7f7f, 0x0080, 0x3c00, 0x7f80, 0x7fc0> {};

// ------------------------------------------------------------------ atomics
enum memory_order {
  memory_order_relaxed = __ATOMIC_RELAXED,
  memory_order_acquire = __ATOMIC_ACQUIRE,
  memory_order_release = __ATOMIC_RELEASE,
  memory_order_acq_rel = __ATOMIC_ACQ_REL,
  memory_order_seq_cst = __ATOMIC_SEQ_CST,
};
template <class T>
struct atomic {  // layout of T, so that `device atomic<T>*` can point into a T buffer
  T v;
};
using atomic_int = atomic<int>;
using atomic_uint = atomic<uint>;
using atomic_float = atomic<float>;
using atomic_bool = atomic<bool>;

template <class T, class F>
inline T atomic_update(atomic<T>* p, F f) {  // compare-exchange loop on the bits
  using U = conditional_t<sizeof(T) == 8, uint64_t,
                          conditional_t<sizeof(T) == 4, uint32_t,
                                        conditional_t<sizeof(T) == 2, uint16_t, uint8_t>>>;
  U* q = reinterpret_cast<U*>(&p->v);
  U old = __atomic_load_n(q, __ATOMIC_RELAXED), next;
  do {
    next = as_type<U>(T(f(as_type<T>(old))));
  } while (!__atomic_compare_exchange_n(q, &old, next, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
  return as_type<T>(old);
}
template <class T, class U>
inline void atomic_store_explicit(atomic<T>* p, U x, memory_order = memory_order_relaxed) {
  T t = T(x);
  __atomic_store(&p->v, &t, __ATOMIC_SEQ_CST);
}
template <class T>
inline T atomic_load_explicit(const atomic<T>* p, memory_order = memory_order_relaxed) {
  T t;
  __atomic_load(&p->v, &t, __ATOMIC_SEQ_CST);
  return t;
}
#define MSL_ATOMIC_RMW(name, expr)                                                    \
  template <class T, class U>                                                         \
  inline T name(atomic<T>* p, U x, memory_order = memory_order_relaxed) {             \
    return atomic_update(p, [&](T o) { return expr; });                               \
  }
MSL_ATOMIC_RMW(atomic_fetch_add_explicit, T(o + T(x)))
MSL_ATOMIC_RMW(atomic_fetch_sub_explicit, T(o - T(x)))
MSL_ATOMIC_RMW(atomic_fetch_and_explicit, T(o & T(x)))
MSL_ATOMIC_RMW(atomic_fetch_or_explicit, T(o | T(x)))
MSL_ATOMIC_RMW(atomic_fetch_xor_explicit, T(o ^ T(x)))
MSL_ATOMIC_RMW(atomic_fetch_min_explicit, T(x) < o ? T(x) : o)
MSL_ATOMIC_RMW(atomic_fetch_max_explicit, o < T(x) ? T(x) : o)
MSL_ATOMIC_RMW(atomic_exchange_explicit, T(x))
template <class T, class U>
inline bool atomic_compare_exchange_weak_explicit(atomic<T>* p, T* expected, U desired,
                                                  memory_order = memory_order_relaxed,
                                                  memory_order = memory_order_relaxed) {
  T want = T(desired);
  return __atomic_compare_exchange(&p->v, expected, &want, false, __ATOMIC_SEQ_CST,
                                   __ATOMIC_SEQ_CST);
}

enum class mem_flags : int {
  mem_none = 0,
  mem_device = 1,
  mem_threadgroup = 2,
  mem_texture = 4,
  mem_threadgroup_imageblock = 8,
  mem_object_data = 16,
};
inline mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(int(a) | int(b)); }

}  // namespace metal

#ifndef INFINITY
#define INFINITY __builtin_inff()
#endif
#ifndef NAN
#define NAN __builtin_nanf("")
#endif
#define MAXFLOAT FLT_MAX
#define HUGE_VALF __builtin_huge_valf()
#define HALF_MAX 65504.0f
#define HALF_MIN 6.103515625e-05f
#define HALF_EPSILON 9.765625e-4f
#define M_E_F 2.71828182845904523536f
#define M_LOG2E_F 1.44269504088896340736f
#define M_LOG10E_F 0.434294481903251827651f
#define M_LN2_F 0.693147180559945309417f
#define M_LN10_F 2.30258509299404568402f
#define M_PI_F 3.14159265358979323846f
#define M_PI_2_F 1.57079632679489661923f
#define M_PI_4_F 0.785398163397448309616f
#define M_1_PI_F 0.318309886183790671538f
#define M_2_PI_F 0.636619772367581343076f
#define M_2_SQRTPI_F 1.12837916709551257390f
#define M_SQRT2_F 1.41421356237309504880f
#define M_SQRT1_2_F 0.707106781186547524401f
