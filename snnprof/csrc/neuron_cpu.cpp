// Fused multi-step IF / LIF / ParametricLIF neurons over [T, N] on the CPU: forward and backward.
//
// Built by snnprof/native_build.py (at install time, else on first use; g++ -O3 -fopenmp
// -ffp-contract=off -march=native) and called through ctypes from snnprof/kernels/fused_cpu.py; no
// Torch headers. The arithmetic of the forward pass is written in exactly the order of the eager PyTorch
// loop (snnprof/kernels/reference.py) and of SpikingJelly, and floating-point contraction (FMA) is
// disabled, so spikes and membranes are bit-identical to the reference.
//
// Memory traffic is the point of this file: a neuron update does a handful of flops per element, so
// the kernels are limited by how fast [T, N] tensors stream through DRAM.
//   * Layout: x, spikes, v_seq and the gradients are contiguous row-major [T, N]. Each OpenMP thread
//     takes a contiguous range of blocks of neurons; a block's membrane stays in a local, cache-resident
//     array while the time loop runs inside the block, so every input element is read once and every
//     output element written once per pass, in runs of a whole block row (16 KiB forward). While a
//     thread works on a block it prefetches the next block's x into L2 (software prefetch: sixteen
//     interleaved row streams are more than the hardware prefetchers follow well).
//   * The loops are written with GCC/Clang vector extensions (512-bit with AVX-512, else 256/128-bit).
//   * Outputs can be written with non-temporal (streaming) stores (flag kStreamStores): a large output
//     is then written to DRAM once, without first being read into the cache (write-allocate), which
//     saves a third of the traffic of a plain store. The caller asks for it only when the output is
//     larger than the last-level cache (a small output is better left in cache for its consumer).
//   * The backward pass recomputes its block's charge H[T, block] from x into an L2-resident buffer
//     instead of reading an H sequence stored by the forward pass: a forward+backward reads x twice and
//     grad_spike once, and writes the spikes and grad_x once (5 elements per update), where storing H
//     would cost a write and a read more (6).
//
// Dynamics (SpikingJelly conventions; V_reset = 0 in the charge equation for soft reset):
//   IF:              H = V + X
//   LIF decay:       H = V + (X - (V - V_reset)) / tau
//   LIF no decay:    H = V - (V - V_reset) / tau + X
//   PLIF decay:      H = V + (X - (V - V_reset)) * q          (q = sigmoid(w) = 1 / tau)
//   PLIF no decay:   H = V - (V - V_reset) * q + X
//   S = (H >= V_threshold)
//   hard reset:      V = S ? V_reset : H        soft reset: V = S ? H - V_threshold : H
// Surrogates of dS/dH (x = H - V_threshold):
//   sigmoid: alpha * sig(alpha x) * (1 - sig(alpha x));   atan: (alpha / 2) / (1 + (pi/2 alpha x)^2)

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512F__)
#define SNN_VEC_BYTES 64
#elif defined(__AVX__)
#define SNN_VEC_BYTES 32
#else
#define SNN_VEC_BYTES 16
#endif

namespace {

enum Charge : int { kIF = 0, kLIFDecay = 1, kLIFNoDecay = 2, kPLIFDecay = 3, kPLIFNoDecay = 4 };
// Internal: LIF whose 1/tau is exact (tau a power of two, e.g. the default 2). x / tau and x * (1/tau) are
// then the same correctly rounded number, so the division becomes a multiplication, bit for bit.
enum ChargeInternal : int { kLIFDecayMul = 5, kLIFNoDecayMul = 6 };
enum Surrogate : int { kSigmoid = 0, kATan = 1 };
enum Flags : int { kStreamStores = 1 };

constexpr int64_t kBlockBytes = 16 << 10;      // forward: membrane of one block (stays in L1)
constexpr int64_t kPrefetchBytes = 256 << 10;  // forward: prefetch the next block's x only if it fits in L2
constexpr int64_t kPrefetchAhead = 512;        // the row being read (x, grad_spike) is prefetched this far ahead
constexpr int64_t kBackwardBytes = 256 << 10;  // backward: recomputed H (and PLIF's dH/dq) of one block (L2),
                                               // leaving L2 room for the next block's x, prefetched
constexpr int64_t kBlocksPerThread = 4;        // at least this many blocks per thread when N allows

// ----------------------------------------------------------------------------------------- vectors

typedef float vfloat __attribute__((vector_size(SNN_VEC_BYTES)));
typedef double vdouble __attribute__((vector_size(SNN_VEC_BYTES)));
typedef int32_t vint32 __attribute__((vector_size(SNN_VEC_BYTES)));

template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
    using type = vfloat;
};
template <>
struct VecOf<double> {
    using type = vdouble;
};
template <typename T>
using Vec = typename VecOf<T>::type;
template <typename T>
constexpr int64_t kLanes = SNN_VEC_BYTES / sizeof(T);

// A scalar T or a Vec<T> with every lane set to s.
template <typename V, typename S>
inline V splat(S s) {
    return V{} + s;
}

template <typename V>
inline V load(const void* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}

template <typename V>
inline void store(void* p, V v) {
    std::memcpy(p, &v, sizeof(V));
}

// Non-temporal store of one vector; p must be aligned to SNN_VEC_BYTES.
template <typename V>
inline void stream(void* p, V v) {
#if defined(__AVX512F__)
    _mm512_stream_si512(static_cast<__m512i*>(p), (__m512i)v);
#elif defined(__AVX__)
    _mm256_stream_si256(static_cast<__m256i*>(p), (__m256i)v);
#elif defined(__SSE2__)
    _mm_stream_si128(static_cast<__m128i*>(p), (__m128i)v);
#else
    store(p, v);
#endif
}

// Makes this thread's non-temporal stores visible before the OpenMP barrier that ends the kernel.
inline void stream_fence() {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

template <typename V>
inline void put(void* p, V v, bool nt) {
    if (nt) {
        stream(p, v);
    } else {
        store(p, v);
    }
}

// Elements of a row before p + i reaches vector alignment (the scalar head of a streamed row).
template <typename T>
inline int64_t head_to_align(const T* p, int64_t len) {
    const auto addr = reinterpret_cast<uintptr_t>(p);
    return std::min<int64_t>(len, static_cast<int64_t>(((SNN_VEC_BYTES - addr % SNN_VEC_BYTES) % SNN_VEC_BYTES) /
                                                      sizeof(T)));
}

// Streaming stores need element-aligned rows, and a second output must share the first one's alignment.
template <typename T>
inline bool can_stream(const T* a, const T* b) {
    const auto pa = reinterpret_cast<uintptr_t>(a);
    const auto pb = reinterpret_cast<uintptr_t>(b ? b : a);
    return pa % sizeof(T) == 0 && (pa - pb) % SNN_VEC_BYTES == 0;
}

template <typename M, typename V>
inline V select(M mask, V a, V b) {
    return mask ? a : b;
}

// a * b + c, fused where the CPU has FMA. Only used in the backward pass (gradients are compared
// with a tolerance); the forward pass keeps separate roundings to match PyTorch bit for bit.
#ifdef __FMA__
inline float madd(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
inline double madd(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
inline float madd(float a, float b, float c) { return a * b + c; }
inline double madd(double a, double b, double c) { return a * b + c; }
#endif

inline vfloat madd(vfloat a, vfloat b, vfloat c) {
#if defined(__AVX512F__)
    return (vfloat)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__AVX__) && defined(__FMA__)
    return (vfloat)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

inline vdouble madd(vdouble a, vdouble b, vdouble c) {
#if defined(__AVX512F__)
    return (vdouble)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif defined(__AVX__) && defined(__FMA__)
    return (vdouble)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
#else
    return a * b + c;
#endif
}

// exp(x) for x <= 0 in float, branch-free (Cephes expf range reduction and polynomial: |relative
// error| < 2e-7; results below exp(-87) are clamped to exp(-87)). V is float or vfloat.
template <typename V, typename I>
inline V exp_nonpositive_f32(V x) {
    x = select(x < -87.0f, splat<V>(-87.0f), x);
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
    const V n = (x * 1.44269504088896341f + magic) - magic;
    const V r = madd(n, splat<V>(2.12194440e-4f), madd(n, splat<V>(-0.693359375f), x));
    V p = splat<V>(1.9875691500e-4f);
    p = madd(p, r, splat<V>(1.3981999507e-3f));
    p = madd(p, r, splat<V>(8.3334519073e-3f));
    p = madd(p, r, splat<V>(4.1665795894e-2f));
    p = madd(p, r, splat<V>(1.6666665459e-1f));
    p = madd(p, r, splat<V>(5.0000001201e-1f));
    p = madd(p * r, r, r + 1.0f);
    I bits;
    if constexpr (std::is_same_v<V, float>) {
        bits = (static_cast<int32_t>(n) + 127) << 23;
    } else {
        bits = (__builtin_convertvector(n, vint32) + 127) << 23;
    }
    V scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

inline float exp_nonpositive(float x) { return exp_nonpositive_f32<float, int32_t>(x); }

#if defined(__AVX512F__)
// The same polynomial with AVX-512's rounding and scaling instructions (fewer operations, same range).
inline vfloat exp_nonpositive(vfloat xv) {
    const __m512 x = _mm512_max_ps((__m512)xv, _mm512_set1_ps(-87.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f),
                                     _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return (vfloat)_mm512_scalef_ps(p, n);
}
#else
inline vfloat exp_nonpositive(vfloat x) { return exp_nonpositive_f32<vfloat, vint32>(x); }
#endif

inline double exp_nonpositive(double x) { return std::exp(x); }
inline vdouble exp_nonpositive(vdouble x) {
    for (int64_t i = 0; i < kLanes<double>; ++i) x[i] = std::exp(x[i]);
    return x;
}

// exp(-alpha * a) for a >= 0. Generic: exp_nonpositive. AVX-512 float: 2^y with y = -alpha log2(e) a,
// split as y = n + f (|f| <= 1/2), 2^f by a degree-4 polynomial (relative error < 2.6e-6, a relative-error
// least-squares fit on [-1/2, 1/2]; only gradients use it, and the gate allows 1e-4), then 2^n by
// vscalefps; one multiplication, no separate range reduction. Clamped at 2^-125 like exp_nonpositive.
template <typename V, typename T>
inline V exp_neg_scaled(V a, T alpha) {
    return exp_nonpositive(-alpha * a);
}
#if defined(__AVX512F__)
template <>
inline vfloat exp_neg_scaled(vfloat av, float alpha) {
    const __m512 y = _mm512_max_ps(_mm512_mul_ps((__m512)av, _mm512_set1_ps(-alpha * 1.44269504088896341f)),
                                   _mm512_set1_ps(-125.0f));
    const __m512 n = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(y, n);
    __m512 p = _mm512_set1_ps(0.0095701018789605f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.05591786385042233f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24024744859490496f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931218143087139f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.9999992614265749f));
    return (vfloat)_mm512_scalef_ps(p, n);
}
#endif

// 1 / d for d >= 1 (the surrogates' denominators); AVX-512: a 14-bit estimate and one
// Newton step (relative error ~1e-8, below float precision) instead of a division.
template <typename V>
inline V reciprocal(V d) {
    return splat<V>(1) / d;
}
#if defined(__AVX512F__)
template <>
inline vfloat reciprocal(vfloat dv) {
    const __m512 d = (__m512)dv;
    const __m512 r = _mm512_rcp14_ps(d);
    return (vfloat)_mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}
#endif

// |x|: the sign bit cleared (float vectors), else a select.
template <typename V>
inline V absolute(V x) {
    if constexpr (std::is_same_v<V, vfloat>) {
        return (vfloat)((vint32)x & 0x7fffffff);
    } else {
        return select(x < 0, -x, x);
    }
}


// ----------------------------------------------------------------------------------------- neuron maths
// Each function takes a scalar T or a Vec<T> (V) with scalar constants (T).

template <int C, typename V, typename T>
inline V charge(V v, V x, T k, T vr) {
    if constexpr (C == kIF) {
        return v + x;
    } else if constexpr (C == kLIFDecay) {
        return v + (x - (v - vr)) / k;
    } else if constexpr (C == kLIFNoDecay) {
        return v - (v - vr) / k + x;
    } else if constexpr (C == kPLIFDecay || C == kLIFDecayMul) {
        return v + (x - (v - vr)) * k;
    } else {
        return v - (v - vr) * k + x;
    }
}

template <bool HARD, typename V, typename T>
inline V reset(V h, T vth, T vr) {
    if constexpr (HARD) {
        return select(h >= vth, splat<V>(vr), h);
    } else {
        return select(h >= vth, h - vth, h);
    }
}

template <typename V, typename T>
inline V spike(V h, T vth) {
    return select(h >= vth, splat<V>(T(1)), splat<V>(T(0)));
}

// PLIF's dH/dq of the step (unused for IF/LIF).
template <int C, typename V, typename T>
inline V dh_dq(V v, V x, T vr) {
    if constexpr (C == kPLIFDecay) {
        return x - (v - vr);
    } else {
        return -(v - vr);
    }
}

template <int S, typename V, typename T>
inline V surrogate_grad(V x, T alpha, T scale) {
    if constexpr (S == kSigmoid) {  // alpha sig(a x) (1 - sig(a x)) = alpha e / (1 + e)^2, e = exp(-alpha |x|)
        const V e = exp_neg_scaled(absolute(x), alpha);
        const V d = T(1) + e;
        return alpha * e * reciprocal(d * d);
    } else {
        const V z = x * scale;  // scale = pi / 2 * alpha
        return (alpha / T(2)) * reciprocal(T(1) + z * z);
    }
}

// grad w.r.t. X (returned) and w.r.t. the previous V (written to *gv) of the charge equation.
// kk is 1 / tau for LIF and q for PLIF.
template <int C, typename V, typename T>
inline V charge_grads(V gh, T kk, V* gv) {
    if constexpr (C == kIF) {
        *gv = gh;
        return gh;
    } else if constexpr (C == kLIFDecay || C == kPLIFDecay || C == kLIFDecayMul) {
        const V g = gh * kk;
        *gv = gh - g;
        return g;
    } else {
        *gv = madd(-gh, splat<V>(kk), gh);
        return gh;
    }
}

constexpr bool is_plif(int c) { return c == kPLIFDecay || c == kPLIFNoDecay; }

// ----------------------------------------------------------------------------------------- forward

// Constants of one call.
template <typename T>
struct Consts {
    T k;      // tau (LIF), q (PLIF) or 1 / tau (LIF with an exact reciprocal), as in the charge equation
    T kk;     // 1 / tau (LIF) or q (PLIF): dH/dX
    T vth, vr, alpha;
    T scale;  // pi / 2 * alpha (ATan)
};

// Neurons per block: `budget` bytes per row element, at most kBlocksPerThread blocks per thread fewer.
template <typename T>
int64_t block_width(int64_t n, int threads, int64_t budget_elems) {
    const int64_t lanes = kLanes<T>;
    const int64_t per_thread = (n + kBlocksPerThread * threads - 1) / (kBlocksPerThread * threads);
    const int64_t rounded = (per_thread + 63) / 64 * 64;
    return std::max<int64_t>(lanes, std::min<int64_t>(std::max<int64_t>(budget_elems / 64 * 64, 64), rounded));
}

// One time step of one block: charge, fire, reset; spikes (and the membrane) out.
template <typename T, int C, bool HARD>
inline void forward_row(const T* __restrict x, T* __restrict v, T* __restrict s, T* __restrict vs, int64_t len,
                        const T* prefetch, int64_t prefetch_len, bool nt, const Consts<T>& consts) {
    const Consts<T> c = consts;  // a local copy: the stores below cannot alias it, so it stays in registers
    using V = Vec<T>;
    constexpr int64_t L = kLanes<T>;
    const int64_t head = nt ? head_to_align(s, len) : 0;
    int64_t i = 0;
    for (; i < head; ++i) {
        const T h = charge<C>(v[i], x[i], c.k, c.vr);
        s[i] = spike(h, c.vth);
        v[i] = reset<HARD>(h, c.vth, c.vr);
        if (vs) vs[i] = v[i];
    }
    for (; i + L <= len; i += L) {
        if (prefetch && i < prefetch_len) __builtin_prefetch(prefetch + i, 0, 2);  // into L2: the next block's row
        __builtin_prefetch(x + i + kPrefetchAhead, 0, 3);  // this row, ahead (and across 4 KiB pages)
        const V h = charge<C>(load<V>(v + i), load<V>(x + i), c.k, c.vr);
        const V vn = reset<HARD>(h, c.vth, c.vr);
        put(s + i, spike(h, c.vth), nt);
        store(v + i, vn);
        if (vs) put(vs + i, vn, nt);
    }
    for (; i < len; ++i) {
        const T h = charge<C>(v[i], x[i], c.k, c.vr);
        s[i] = spike(h, c.vth);
        v[i] = reset<HARD>(h, c.vth, c.vr);
        if (vs) vs[i] = v[i];
    }
}

template <typename T, int C, bool HARD>
void forward_impl(const T* __restrict x, const T* __restrict v0, T* __restrict spikes, T* __restrict v_seq,
                  T* __restrict v_last, int64_t steps, int64_t n, const Consts<T>& c, int threads, int flags) {
    const int64_t width = block_width<T>(n, threads, kBlockBytes / sizeof(T));
    const int64_t blocks = (n + width - 1) / width;
    const T v_start = HARD ? c.vr : T(0);
    const bool nt = (flags & kStreamStores) && can_stream(spikes, v_seq);
    const bool prefetch = steps * width * static_cast<int64_t>(sizeof(T)) <= kPrefetchBytes;
    // Each thread takes a contiguous range of blocks; while it works on row t of a block it prefetches
    // row t of its next block into L2 (one block of x ahead).
#pragma omp parallel num_threads(threads)
    {
        std::vector<T> v(width);
#ifdef _OPENMP
        const int64_t id = omp_get_thread_num(), team = omp_get_num_threads();
#else
        const int64_t id = 0, team = 1;
#endif
        const int64_t first = blocks * id / team, last = blocks * (id + 1) / team;
        for (int64_t b = first; b < last; ++b) {
            const int64_t lo = b * width;
            const int64_t len = std::min(width, n - lo);
            const int64_t next_len = b + 1 < last && prefetch ? std::min(width, n - lo - width) : 0;
            for (int64_t i = 0; i < len; ++i) v[i] = v0 ? v0[lo + i] : v_start;
            for (int64_t t = 0; t < steps; ++t) {
                const int64_t off = t * n + lo;
                forward_row<T, C, HARD>(x + off, v.data(), spikes + off, v_seq ? v_seq + off : nullptr, len,
                                        next_len > 0 ? x + off + width : nullptr, next_len, nt, c);
            }
            if (v_last) std::memcpy(v_last + lo, v.data(), len * sizeof(T));
        }
        if (nt) stream_fence();
    }
}

// ----------------------------------------------------------------------------------------- backward

// The forward of one block again: H of every step (and PLIF's dH/dq) into cache-resident buffers.
// The arithmetic is the forward's, so H is bit-identical to what the forward computed.
template <typename T, int C, bool HARD>
inline void recompute_row(const T* __restrict x, T* __restrict v, T* __restrict h_out, T* __restrict f_out,
                          int64_t len, const Consts<T>& consts) {
    const Consts<T> c = consts;  // a local copy: the stores below cannot alias it, so it stays in registers
    using V = Vec<T>;
    constexpr int64_t L = kLanes<T>;
    int64_t i = 0;
    for (; i + L <= len; i += L) {
        const V vi = load<V>(v + i), xi = load<V>(x + i);
        if constexpr (is_plif(C)) store(f_out + i, dh_dq<C>(vi, xi, c.vr));
        const V h = charge<C>(vi, xi, c.k, c.vr);
        store(h_out + i, h);
        store(v + i, reset<HARD>(h, c.vth, c.vr));
    }
    for (; i < len; ++i) {
        if constexpr (is_plif(C)) f_out[i] = dh_dq<C>(v[i], x[i], c.vr);
        const T h = charge<C>(v[i], x[i], c.k, c.vr);
        h_out[i] = h;
        v[i] = reset<HARD>(h, c.vth, c.vr);
    }
}

// One reverse step of one element or vector: grad_x, the carry dL/dV_{t-1} and PLIF's dL/dq term. GV: a
// gradient arrives on the membrane of this step (v_seq was returned); without one its add is skipped.
template <int C, bool HARD, bool DETACH, int S, bool GV = true, typename V, typename T>
inline V backward_element(V h, V f, V gs, V gv, V* carry, V* gk, const Consts<T>& c) {
    const V sg = surrogate_grad<S>(h - c.vth, c.alpha, c.scale);
    V rg;  // dV/dH through the reset, incl. the spike path unless detached
    if constexpr (HARD) {
        const V keep = select(h >= c.vth, splat<V>(T(0)), splat<V>(T(1)));
        rg = DETACH ? keep : madd(c.vr - h, sg, keep);
    } else {
        rg = DETACH ? splat<V>(T(1)) : madd(splat<V>(-c.vth), sg, splat<V>(T(1)));
    }
    const V gh = madd(gs, sg, (GV ? gv + *carry : *carry) * rg);
    V gv_prev;
    const V gx = charge_grads<C>(gh, c.kk, &gv_prev);
    *carry = gv_prev;
    if constexpr (is_plif(C)) *gk = madd(gh, f, *gk);
    return gx;
}

// One reverse step of one block's row; returns PLIF's dL/dq summed over the row (0 for IF/LIF), accumulated
// in a vector register (no per-neuron dL/dq array to load and store on every step).
template <typename T, int C, bool HARD, bool DETACH, int S, bool GV>
inline double backward_row(const T* __restrict h, const T* __restrict f, const T* __restrict gs,
                           const T* __restrict gv, T* __restrict gx, T* __restrict carry, int64_t len,
                           const T* prefetch, int64_t prefetch_len, bool nt, const Consts<T>& consts) {
    const Consts<T> c = consts;  // a local copy: the stores below cannot alias it, so it stays in registers
    using V = Vec<T>;
    constexpr int64_t L = kLanes<T>;
    const int64_t head = nt ? head_to_align(gx, len) : 0;
    int64_t i = 0;
    double tail = 0.0;
    V ki = splat<V>(T(0));
    auto scalar = [&](int64_t j) {
        T cj = carry[j], kj = T(0);
        gx[j] = backward_element<C, HARD, DETACH, S>(h[j], is_plif(C) ? f[j] : T(0), gs[j], gv ? gv[j] : T(0), &cj,
                                                     &kj, c);
        carry[j] = cj;
        tail += static_cast<double>(kj);
    };
    for (; i < head; ++i) scalar(i);
    for (; i + L <= len; i += L) {
        if (prefetch && i < prefetch_len) __builtin_prefetch(prefetch + i, 0, 2);  // into L2: the next block's x
        __builtin_prefetch(gs + i + kPrefetchAhead, 0, 3);                       // the DRAM stream, into L1
        V ci = load<V>(carry + i);
        const V fi = is_plif(C) ? load<V>(f + i) : splat<V>(T(0));
        const V gvi = GV ? load<V>(gv + i) : splat<V>(T(0));
        put(gx + i, backward_element<C, HARD, DETACH, S, GV>(load<V>(h + i), fi, load<V>(gs + i), gvi, &ci, &ki, c), nt);
        store(carry + i, ci);
    }
    for (; i < len; ++i) scalar(i);
    if constexpr (is_plif(C)) {
        for (int64_t l = 0; l < L; ++l) tail += static_cast<double>(ki[l]);
    }
    return tail;
}

// Buffers of one thread in the backward pass.
template <typename T>
struct BackwardScratch {
    std::vector<T> h, f, v, carry;
    BackwardScratch(int64_t steps, int64_t width, bool plif)
        : h(steps * width), f(plif ? steps * width : 0), v(width), carry(width) {}
};

template <typename T, int C, bool HARD, bool DETACH, int S>
double backward_block(const T* x, const T* v0, const T* gs, const T* gv_seq, const T* gv_last, T* gx, T* gv0,
                      int64_t steps, int64_t n, int64_t lo, int64_t len, int64_t next_lo, int64_t next_len,
                      int64_t width, bool nt, const Consts<T>& c, BackwardScratch<T>& w) {
    const T v_start = HARD ? c.vr : T(0);
    for (int64_t i = 0; i < len; ++i) {
        w.v[i] = v0 ? v0[lo + i] : v_start;
        w.carry[i] = gv_last ? gv_last[lo + i] : T(0);
    }
    for (int64_t t = 0; t < steps; ++t) {
        recompute_row<T, C, HARD>(x + t * n + lo, w.v.data(), w.h.data() + t * width,
                                  is_plif(C) ? w.f.data() + t * width : nullptr, len, c);
    }
    double acc = 0.0;
    for (int64_t t = steps - 1; t >= 0; --t) {  // each reverse step prefetches one x row of the next block
        const int64_t off = t * n + lo;
        const T* next = next_len > 0 ? x + (steps - 1 - t) * n + next_lo : nullptr;
        const T* h_row = w.h.data() + t * width;
        const T* f_row = is_plif(C) ? w.f.data() + t * width : nullptr;
        if (gv_seq) {
            acc += backward_row<T, C, HARD, DETACH, S, true>(h_row, f_row, gs + off, gv_seq + off, gx + off,
                                                             w.carry.data(), len, next, next_len, nt, c);
        } else {
            acc += backward_row<T, C, HARD, DETACH, S, false>(h_row, f_row, gs + off, nullptr, gx + off,
                                                              w.carry.data(), len, next, next_len, nt, c);
        }
    }
    if (gv0) std::memcpy(gv0 + lo, w.carry.data(), len * sizeof(T));
    return acc;
}

template <typename T, int C, bool HARD, bool DETACH, int S>
void backward_impl(const T* x, const T* v0, const T* gs, const T* gv_seq, const T* gv_last, T* gx, T* gv0,
                   double* gk_out, int64_t steps, int64_t n, const Consts<T>& c, int threads, int flags) {
    const int64_t per_row = sizeof(T) * std::max<int64_t>(steps, 1) * (is_plif(C) ? 2 : 1);
    const int64_t width = block_width<T>(n, threads, kBackwardBytes / per_row);
    const int64_t blocks = (n + width - 1) / width;
    const bool nt = (flags & kStreamStores) && can_stream(gx, gx);
    double gk_total = 0.0;
    // Each thread takes a contiguous range of blocks, so it knows its next block and can prefetch its x.
#pragma omp parallel num_threads(threads) reduction(+ : gk_total)
    {
        BackwardScratch<T> scratch(steps, width, is_plif(C));
#ifdef _OPENMP
        const int64_t id = omp_get_thread_num(), team = omp_get_num_threads();
#else
        const int64_t id = 0, team = 1;
#endif
        const int64_t first = blocks * id / team, last = blocks * (id + 1) / team;
        for (int64_t b = first; b < last; ++b) {
            const int64_t lo = b * width, next_lo = lo + width;
            const int64_t next_len = b + 1 < last ? std::min(width, n - next_lo) : 0;
            gk_total += backward_block<T, C, HARD, DETACH, S>(x, v0, gs, gv_seq, gv_last, gx, gv0, steps, n, lo,
                                                              std::min(width, n - lo), next_lo, next_len, width, nt,
                                                              c, scratch);
        }
        if (nt) stream_fence();
    }
    if (gk_out) *gk_out = gk_total;
}

// ----------------------------------------------------------------------------------------- dispatch

struct Call {
    int64_t steps, n;
    int threads, flags;
};

// LIF with a power-of-two tau takes the multiplying charge code, with k = 1 / tau (exact); else chg as is.
template <typename T>
int internal_charge(int chg, double* k) {
    int exponent;
    const bool lif = chg == kLIFDecay || chg == kLIFNoDecay;
    if (!lif || !std::isfinite(*k) || *k <= 0 || std::frexp(*k, &exponent) != 0.5) return chg;
    if (!std::isnormal(static_cast<T>(1.0 / *k)) || !std::isnormal(static_cast<T>(*k))) return chg;
    *k = 1.0 / *k;
    return chg == kLIFDecay ? kLIFDecayMul : kLIFNoDecayMul;
}

template <typename T>
Consts<T> consts(int chg, T k, T vth, T vr, T alpha) {
    const bool lif = chg == kLIFDecay || chg == kLIFNoDecay;
    return Consts<T>{k, lif ? T(1) / k : k, vth, vr, alpha, static_cast<T>(M_PI / 2) * alpha};
}

template <typename T, int C>
int forward_charge(const T* x, const T* v0, T* s, T* vs, T* vl, const Call& a, int hard, const Consts<T>& c) {
    if (hard) {
        forward_impl<T, C, true>(x, v0, s, vs, vl, a.steps, a.n, c, a.threads, a.flags);
    } else {
        forward_impl<T, C, false>(x, v0, s, vs, vl, a.steps, a.n, c, a.threads, a.flags);
    }
    return 0;
}

template <typename T>
int forward_dispatch(const T* x, const T* v0, T* s, T* vs, T* vl, const Call& a, int chg, int hard,
                     const Consts<T>& c) {
    switch (chg) {
        case kIF: return forward_charge<T, kIF>(x, v0, s, vs, vl, a, hard, c);
        case kLIFDecay: return forward_charge<T, kLIFDecay>(x, v0, s, vs, vl, a, hard, c);
        case kLIFNoDecay: return forward_charge<T, kLIFNoDecay>(x, v0, s, vs, vl, a, hard, c);
        case kPLIFDecay: return forward_charge<T, kPLIFDecay>(x, v0, s, vs, vl, a, hard, c);
        case kPLIFNoDecay: return forward_charge<T, kPLIFNoDecay>(x, v0, s, vs, vl, a, hard, c);
        case kLIFDecayMul: return forward_charge<T, kLIFDecayMul>(x, v0, s, vs, vl, a, hard, c);
        case kLIFNoDecayMul: return forward_charge<T, kLIFNoDecayMul>(x, v0, s, vs, vl, a, hard, c);
        default: return -1;
    }
}

// Pointers of one backward call.
template <typename T>
struct BackwardPtrs {
    const T *x, *v0, *gs, *gv_seq, *gv_last;
    T *gx, *gv0;
    double* gk;
};

template <typename T, int C, bool HARD, bool DETACH>
int backward_surrogate(const BackwardPtrs<T>& p, const Call& a, int surrogate, const Consts<T>& c) {
    switch (surrogate) {
        case kSigmoid:
            backward_impl<T, C, HARD, DETACH, kSigmoid>(p.x, p.v0, p.gs, p.gv_seq, p.gv_last, p.gx, p.gv0, p.gk,
                                                        a.steps, a.n, c, a.threads, a.flags);
            return 0;
        case kATan:
            backward_impl<T, C, HARD, DETACH, kATan>(p.x, p.v0, p.gs, p.gv_seq, p.gv_last, p.gx, p.gv0, p.gk, a.steps,
                                                     a.n, c, a.threads, a.flags);
            return 0;
        default: return -1;
    }
}

template <typename T, int C>
int backward_reset(const BackwardPtrs<T>& p, const Call& a, int hard, int detach, int surrogate, const Consts<T>& c) {
    if (hard && detach) return backward_surrogate<T, C, true, true>(p, a, surrogate, c);
    if (hard) return backward_surrogate<T, C, true, false>(p, a, surrogate, c);
    if (detach) return backward_surrogate<T, C, false, true>(p, a, surrogate, c);
    return backward_surrogate<T, C, false, false>(p, a, surrogate, c);
}

template <typename T>
int backward_dispatch(const BackwardPtrs<T>& p, const Call& a, int chg, int hard, int detach, int surrogate,
                      const Consts<T>& c) {
    switch (chg) {
        case kIF: return backward_reset<T, kIF>(p, a, hard, detach, surrogate, c);
        case kLIFDecay: return backward_reset<T, kLIFDecay>(p, a, hard, detach, surrogate, c);
        case kLIFNoDecay: return backward_reset<T, kLIFNoDecay>(p, a, hard, detach, surrogate, c);
        case kPLIFDecay: return backward_reset<T, kPLIFDecay>(p, a, hard, detach, surrogate, c);
        case kPLIFNoDecay: return backward_reset<T, kPLIFNoDecay>(p, a, hard, detach, surrogate, c);
        case kLIFDecayMul: return backward_reset<T, kLIFDecayMul>(p, a, hard, detach, surrogate, c);
        case kLIFNoDecayMul: return backward_reset<T, kLIFNoDecayMul>(p, a, hard, detach, surrogate, c);
        default: return -1;
    }
}

template <typename T>
int forward_typed(const void* x, const void* v0, void* spikes, void* v_seq, void* v_last, const Call& a, int chg,
                  int hard, double k, double vth, double vr) {
    chg = internal_charge<T>(chg, &k);
    const Consts<T> c = consts<T>(chg, static_cast<T>(k), static_cast<T>(vth), static_cast<T>(vr), T(0));
    return forward_dispatch<T>(static_cast<const T*>(x), static_cast<const T*>(v0), static_cast<T*>(spikes),
                               static_cast<T*>(v_seq), static_cast<T*>(v_last), a, chg, hard, c);
}

template <typename T>
int backward_typed(const void* x, const void* v0, const void* gs, const void* gv_seq, const void* gv_last, void* gx,
                   void* gv0, double* gk, const Call& a, int chg, int hard, int detach, int surrogate, double k,
                   double vth, double vr, double alpha) {
    chg = internal_charge<T>(chg, &k);
    const BackwardPtrs<T> p{static_cast<const T*>(x),       static_cast<const T*>(v0),
                            static_cast<const T*>(gs),      static_cast<const T*>(gv_seq),
                            static_cast<const T*>(gv_last), static_cast<T*>(gx),
                            static_cast<T*>(gv0),           gk};
    const Consts<T> c =
        consts<T>(chg, static_cast<T>(k), static_cast<T>(vth), static_cast<T>(vr), static_cast<T>(alpha));
    return backward_dispatch<T>(p, a, chg, hard, detach, surrogate, c);
}

}  // namespace

extern "C" {

// ABI version of this file's entry points; fused_cpu.py refuses a library with another one.
int snn_abi_version() { return 2; }

// Vector width the library was built with, in bytes (64 with AVX-512, 32 with AVX, else 16).
int snn_vector_bytes() { return SNN_VEC_BYTES; }

// Forward. v0, v_seq and v_last may be NULL (v0 NULL: start at V_reset, or 0 for soft reset).
// dtype: 0 = float32, 1 = float64. flags: bit 0 = non-temporal stores of spikes and v_seq.
// Returns 0, or -1 on an unknown enum value.
int snn_forward(int dtype, const void* x, const void* v0, void* spikes, void* v_seq, void* v_last, int64_t steps,
                int64_t n, int chg, int hard, double k, double vth, double vr, int threads, int flags) {
    const Call a{steps, n, threads, flags};
    if (chg < kIF || chg > kPLIFNoDecay) return -1;
    if (dtype == 0) return forward_typed<float>(x, v0, spikes, v_seq, v_last, a, chg, hard, k, vth, vr);
    if (dtype == 1) return forward_typed<double>(x, v0, spikes, v_seq, v_last, a, chg, hard, k, vth, vr);
    return -1;
}

// Backward. gv_seq ([T, N]), gv_last ([N]), gv0 ([N]) and gk (PLIF dL/dq, one double) may be NULL.
// flags: bit 0 = non-temporal stores of grad_x.
int snn_backward(int dtype, const void* x, const void* v0, const void* gs, const void* gv_seq, const void* gv_last,
                 void* gx, void* gv0, double* gk, int64_t steps, int64_t n, int chg, int hard, int detach,
                 int surrogate, double k, double vth, double vr, double alpha, int threads, int flags) {
    const Call a{steps, n, threads, flags};
    if (chg < kIF || chg > kPLIFNoDecay) return -1;
    if (dtype == 0) {
        return backward_typed<float>(x, v0, gs, gv_seq, gv_last, gx, gv0, gk, a, chg, hard, detach, surrogate, k,
                                     vth, vr, alpha);
    }
    if (dtype == 1) {
        return backward_typed<double>(x, v0, gs, gv_seq, gv_last, gx, gv0, gk, a, chg, hard, detach, surrogate, k,
                                      vth, vr, alpha);
    }
    return -1;
}

}  // extern "C"
