// Fused multi-step IF / LIF / ParametricLIF neurons over [T, N] on the CPU: forward and backward.
//
// Built on first use by snnprof/kernels/fused_cpu.py (g++ -O3 -fopenmp -ffp-contract=off) and called
// through ctypes; no Torch headers, so the build takes seconds. The arithmetic of the forward pass is
// written in exactly the order of the eager PyTorch loop (snnprof/kernels/reference.py) and of
// SpikingJelly, and floating-point contraction (FMA) is disabled, so spikes and membranes are
// bit-identical to the reference.
//
// Layout: x, spikes, v_seq, grads are contiguous row-major [T, N]. Each OpenMP thread takes blocks of
// neurons; a block's membrane lives in a small local array and the time loop runs inside the block,
// so every input element is read once and every output element written once per pass.
//
// Backward recomputes the forward of its block into a cache-resident buffer instead of reading a
// stored H[T, N] sequence: the forward pass writes only what the caller asked for (spikes, and the
// membrane if requested), and the backward pass reads x and grad_spike and writes grad_x.
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
#include <vector>

namespace {

enum Charge : int { kIF = 0, kLIFDecay = 1, kLIFNoDecay = 2, kPLIFDecay = 3, kPLIFNoDecay = 4 };
enum Surrogate : int { kSigmoid = 0, kATan = 1 };

constexpr int64_t kForwardBlock = 2048;     // neurons per block in the forward pass
constexpr int64_t kBackwardBytes = 1 << 17; // recompute buffer per thread (fits L2)

// a * b + c, fused where the CPU has FMA. Only used in the backward pass (gradients are compared
// with a tolerance); the forward pass keeps separate roundings to match PyTorch bit for bit.
#ifdef __FMA__
inline float madd(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
inline double madd(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
template <typename T>
inline T madd(T a, T b, T c) { return a * b + c; }
#endif

// exp(x) for x <= 0 in float, branch-free so the compiler vectorises it (Cephes expf range reduction
// and polynomial: |relative error| < 2e-7; results below exp(-87) are clamped to exp(-87)).
inline float exp_nonpositive(float x) {
    x = std::max(x, -87.0f);
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
    const float n = (x * 1.44269504088896341f + magic) - magic;
    const float r = madd(n, 2.12194440e-4f, madd(n, -0.693359375f, x));
    float p = 1.9875691500e-4f;
    p = madd(p, r, 1.3981999507e-3f);
    p = madd(p, r, 8.3334519073e-3f);
    p = madd(p, r, 4.1665795894e-2f);
    p = madd(p, r, 1.6666665459e-1f);
    p = madd(p, r, 5.0000001201e-1f);
    p = madd(p * r, r, r + 1.0f);
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

inline double exp_nonpositive(double x) { return std::exp(x); }

template <int C, typename T>
inline T charge(T v, T x, T k, T vr) {
    if constexpr (C == kIF) {
        return v + x;
    } else if constexpr (C == kLIFDecay) {
        return v + (x - (v - vr)) / k;
    } else if constexpr (C == kLIFNoDecay) {
        return v - (v - vr) / k + x;
    } else if constexpr (C == kPLIFDecay) {
        return v + (x - (v - vr)) * k;
    } else {
        return v - (v - vr) * k + x;
    }
}

template <bool HARD, typename T>
inline T reset(T h, T vth, T vr) {
    if constexpr (HARD) {
        return h >= vth ? vr : h;
    } else {
        return h >= vth ? h - vth : h;
    }
}

template <int S, typename T>
inline T surrogate_grad(T x, T alpha, T scale) {
    if constexpr (S == kSigmoid) {  // alpha sig(a x) (1 - sig(a x)) = alpha e / (1 + e)^2, e = exp(-alpha |x|)
        const T e = exp_nonpositive(-alpha * std::abs(x));
        const T d = T(1) + e;
        return alpha * e / (d * d);
    } else {
        const T z = x * scale;  // scale = pi / 2 * alpha
        return (alpha / T(2)) / (T(1) + z * z);
    }
}

// grad w.r.t. X (returned) and w.r.t. the previous V (written to *gv) of the charge equation.
// kk is 1 / tau for LIF and q for PLIF.
template <int C, typename T>
inline T charge_grads(T gh, T kk, T* gv) {
    if constexpr (C == kIF) {
        *gv = gh;
        return gh;
    } else if constexpr (C == kLIFDecay || C == kPLIFDecay) {
        const T g = gh * kk;
        *gv = gh - g;
        return g;
    } else {
        *gv = madd(-gh, kk, gh);
        return gh;
    }
}

constexpr bool is_plif(int c) { return c == kPLIFDecay || c == kPLIFNoDecay; }

template <typename T, int C, bool HARD>
void forward_impl(const T* __restrict x, const T* __restrict v0, T* __restrict spikes, T* __restrict v_seq,
                  T* __restrict v_last, int64_t steps, int64_t n, T k, T vth, T vr, int threads) {
    const int64_t blocks = (n + kForwardBlock - 1) / kForwardBlock;
    const T v_start = HARD ? vr : T(0);
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t lo = b * kForwardBlock;
        const int64_t len = std::min(kForwardBlock, n - lo);
        alignas(64) T v[kForwardBlock];
        for (int64_t i = 0; i < len; ++i) v[i] = v0 ? v0[lo + i] : v_start;
        for (int64_t t = 0; t < steps; ++t) {
            const T* __restrict xt = x + t * n + lo;
            T* __restrict st = spikes + t * n + lo;
            for (int64_t i = 0; i < len; ++i) {
                const T h = charge<C>(v[i], xt[i], k, vr);
                st[i] = h >= vth ? T(1) : T(0);
                v[i] = reset<HARD>(h, vth, vr);
            }
            if (v_seq) std::memcpy(v_seq + t * n + lo, v, len * sizeof(T));
        }
        if (v_last) std::memcpy(v_last + lo, v, len * sizeof(T));
    }
}

// Constants of one backward call.
template <typename T>
struct BackwardConsts {
    T k;      // tau (LIF) or q (PLIF), as in the forward
    T kk;     // 1 / tau (LIF) or q (PLIF): the charge equation's dH/dX factor
    T vth, vr, alpha;
    T scale;  // pi / 2 * alpha (ATan)
};

// The forward of one block again: H of every step (and PLIF's dH/dq factor) into cache-resident buffers.
// The arithmetic is the forward's, so H is bit-identical to what the forward computed.
template <typename T, int C, bool HARD>
inline void recompute_block(const T* __restrict x, T* __restrict v, T* __restrict hbuf, T* __restrict fbuf,
                            int64_t steps, int64_t n, int64_t width, int64_t len, const BackwardConsts<T>& c) {
    for (int64_t t = 0; t < steps; ++t) {
        const T* __restrict xt = x + t * n;
        T* __restrict ht = hbuf + t * width;
        T* __restrict ft = fbuf + t * width;
        for (int64_t i = 0; i < len; ++i) {
            if constexpr (C == kPLIFDecay) ft[i] = xt[i] - (v[i] - c.vr);
            if constexpr (C == kPLIFNoDecay) ft[i] = -(v[i] - c.vr);
            const T h = charge<C>(v[i], xt[i], c.k, c.vr);
            ht[i] = h;
            v[i] = reset<HARD>(h, c.vth, c.vr);
        }
    }
}

// One reverse time step of one block: grad_x of the step, the carry dL/dV_{t-1} and PLIF's dL/dq terms.
template <typename T, int C, bool HARD, bool DETACH, int S>
inline void backward_step(const T* __restrict ht, const T* __restrict ft, const T* __restrict gst,
                          const T* __restrict gvt, T* __restrict gxt, T* __restrict carry, T* __restrict gk,
                          int64_t len, const BackwardConsts<T>& c) {
    for (int64_t i = 0; i < len; ++i) {
        const T h = ht[i];
        const T sg = surrogate_grad<S>(h - c.vth, c.alpha, c.scale);
        T rg;  // dV/dH through the reset, incl. the spike path unless detached
        if constexpr (HARD) {
            const T keep = h >= c.vth ? T(0) : T(1);
            rg = DETACH ? keep : madd(c.vr - h, sg, keep);
        } else {
            rg = DETACH ? T(1) : madd(-c.vth, sg, T(1));
        }
        const T gh = madd(gst[i], sg, (gvt[i] + carry[i]) * rg);
        T gv;
        gxt[i] = charge_grads<C>(gh, c.kk, &gv);
        carry[i] = gv;
        if constexpr (is_plif(C)) gk[i] = madd(gh, ft[i], gk[i]);
    }
}

template <typename T, int C, bool HARD, bool DETACH, int S>
void backward_impl(const T* __restrict x, const T* __restrict v0, const T* __restrict gs,
                   const T* __restrict gv_seq, const T* __restrict gv_last, T* __restrict gx,
                   T* __restrict gv0, double* gk_out, int64_t steps, int64_t n, T k, T vth, T vr, T alpha,
                   int threads) {
    const int64_t width = std::max<int64_t>(
        64, std::min<int64_t>(2048, (kBackwardBytes / (sizeof(T) * std::max<int64_t>(steps, 1))) / 64 * 64));
    const int64_t blocks = (n + width - 1) / width;
    const T v_start = HARD ? vr : T(0);
    const T kk = (C == kLIFDecay || C == kLIFNoDecay) ? T(1) / k : k;
    const BackwardConsts<T> c{k, kk, vth, vr, alpha, static_cast<T>(M_PI / 2) * alpha};
    double gk_total = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : gk_total)
    {
        std::vector<T> hbuf(steps * width), fbuf(is_plif(C) ? steps * width : 1);
        std::vector<T> carry(width), gk_local(width), zeros(width, T(0)), v(width);
#pragma omp for schedule(dynamic, 4)
        for (int64_t b = 0; b < blocks; ++b) {
            const int64_t lo = b * width;
            const int64_t len = std::min(width, n - lo);
            for (int64_t i = 0; i < len; ++i) {
                v[i] = v0 ? v0[lo + i] : v_start;
                carry[i] = gv_last ? gv_last[lo + i] : T(0);
                gk_local[i] = T(0);
            }
            recompute_block<T, C, HARD>(x + lo, v.data(), hbuf.data(), fbuf.data(), steps, n, width, len, c);
            for (int64_t t = steps - 1; t >= 0; --t) {
                const T* ft = is_plif(C) ? fbuf.data() + t * width : fbuf.data();
                const T* gvt = gv_seq ? gv_seq + t * n + lo : zeros.data();
                backward_step<T, C, HARD, DETACH, S>(hbuf.data() + t * width, ft, gs + t * n + lo, gvt,
                                                     gx + t * n + lo, carry.data(), gk_local.data(), len, c);
            }
            if (gv0) std::memcpy(gv0 + lo, carry.data(), len * sizeof(T));
            if constexpr (is_plif(C)) {
                double acc = 0.0;
                for (int64_t i = 0; i < len; ++i) acc += static_cast<double>(gk_local[i]);
                gk_total += acc;
            }
        }
    }
    if (gk_out) *gk_out = gk_total;
}

template <typename T, int C>
int forward_charge(const T* x, const T* v0, T* s, T* vs, T* vl, int64_t steps, int64_t n, int hard, T k, T vth,
                   T vr, int threads) {
    if (hard) {
        forward_impl<T, C, true>(x, v0, s, vs, vl, steps, n, k, vth, vr, threads);
    } else {
        forward_impl<T, C, false>(x, v0, s, vs, vl, steps, n, k, vth, vr, threads);
    }
    return 0;
}

template <typename T>
int forward_dispatch(const T* x, const T* v0, T* s, T* vs, T* vl, int64_t steps, int64_t n, int chg, int hard,
                     T k, T vth, T vr, int threads) {
    switch (chg) {
        case kIF: return forward_charge<T, kIF>(x, v0, s, vs, vl, steps, n, hard, k, vth, vr, threads);
        case kLIFDecay: return forward_charge<T, kLIFDecay>(x, v0, s, vs, vl, steps, n, hard, k, vth, vr, threads);
        case kLIFNoDecay:
            return forward_charge<T, kLIFNoDecay>(x, v0, s, vs, vl, steps, n, hard, k, vth, vr, threads);
        case kPLIFDecay:
            return forward_charge<T, kPLIFDecay>(x, v0, s, vs, vl, steps, n, hard, k, vth, vr, threads);
        case kPLIFNoDecay:
            return forward_charge<T, kPLIFNoDecay>(x, v0, s, vs, vl, steps, n, hard, k, vth, vr, threads);
        default: return -1;
    }
}

struct BackwardArgs {
    int64_t steps, n;
    int threads;
};

template <typename T, int C, bool HARD, bool DETACH>
int backward_surrogate(const T* x, const T* v0, const T* gs, const T* gvs, const T* gvl, T* gx, T* gv0, double* gk,
                       const BackwardArgs& a, int surrogate, T k, T vth, T vr, T alpha) {
    switch (surrogate) {
        case kSigmoid:
            backward_impl<T, C, HARD, DETACH, kSigmoid>(x, v0, gs, gvs, gvl, gx, gv0, gk, a.steps, a.n, k, vth, vr,
                                                        alpha, a.threads);
            return 0;
        case kATan:
            backward_impl<T, C, HARD, DETACH, kATan>(x, v0, gs, gvs, gvl, gx, gv0, gk, a.steps, a.n, k, vth, vr,
                                                     alpha, a.threads);
            return 0;
        default: return -1;
    }
}

template <typename T, int C>
int backward_reset(const T* x, const T* v0, const T* gs, const T* gvs, const T* gvl, T* gx, T* gv0, double* gk,
                   const BackwardArgs& a, int hard, int detach, int surrogate, T k, T vth, T vr, T alpha) {
    if (hard && detach) return backward_surrogate<T, C, true, true>(x, v0, gs, gvs, gvl, gx, gv0, gk, a, surrogate, k, vth, vr, alpha);
    if (hard) return backward_surrogate<T, C, true, false>(x, v0, gs, gvs, gvl, gx, gv0, gk, a, surrogate, k, vth, vr, alpha);
    if (detach) return backward_surrogate<T, C, false, true>(x, v0, gs, gvs, gvl, gx, gv0, gk, a, surrogate, k, vth, vr, alpha);
    return backward_surrogate<T, C, false, false>(x, v0, gs, gvs, gvl, gx, gv0, gk, a, surrogate, k, vth, vr, alpha);
}

template <typename T>
int backward_dispatch(const T* x, const T* v0, const T* gs, const T* gvs, const T* gvl, T* gx, T* gv0, double* gk,
                      const BackwardArgs& a, int chg, int hard, int detach, int surrogate, T k, T vth, T vr,
                      T alpha) {
    switch (chg) {
        case kIF: return backward_reset<T, kIF>(x, v0, gs, gvs, gvl, gx, gv0, gk, a, hard, detach, surrogate, k, vth, vr, alpha);
        case kLIFDecay: return backward_reset<T, kLIFDecay>(x, v0, gs, gvs, gvl, gx, gv0, gk, a, hard, detach, surrogate, k, vth, vr, alpha);
        case kLIFNoDecay: return backward_reset<T, kLIFNoDecay>(x, v0, gs, gvs, gvl, gx, gv0, gk, a, hard, detach, surrogate, k, vth, vr, alpha);
        case kPLIFDecay: return backward_reset<T, kPLIFDecay>(x, v0, gs, gvs, gvl, gx, gv0, gk, a, hard, detach, surrogate, k, vth, vr, alpha);
        case kPLIFNoDecay: return backward_reset<T, kPLIFNoDecay>(x, v0, gs, gvs, gvl, gx, gv0, gk, a, hard, detach, surrogate, k, vth, vr, alpha);
        default: return -1;
    }
}

}  // namespace

extern "C" {

// ABI version of this file's entry points; fused_cpu.py refuses a library with another one.
int snn_abi_version() { return 1; }

// Forward. v0, v_seq and v_last may be NULL (v0 NULL: start at V_reset, or 0 for soft reset).
// dtype: 0 = float32, 1 = float64. Returns 0, or -1 on an unknown enum value.
int snn_forward(int dtype, const void* x, const void* v0, void* spikes, void* v_seq, void* v_last, int64_t steps,
                int64_t n, int chg, int hard, double k, double vth, double vr, int threads) {
    if (dtype == 0) {
        return forward_dispatch<float>(static_cast<const float*>(x), static_cast<const float*>(v0),
                                       static_cast<float*>(spikes), static_cast<float*>(v_seq),
                                       static_cast<float*>(v_last), steps, n, chg, hard, static_cast<float>(k),
                                       static_cast<float>(vth), static_cast<float>(vr), threads);
    }
    if (dtype == 1) {
        return forward_dispatch<double>(static_cast<const double*>(x), static_cast<const double*>(v0),
                                        static_cast<double*>(spikes), static_cast<double*>(v_seq),
                                        static_cast<double*>(v_last), steps, n, chg, hard, k, vth, vr, threads);
    }
    return -1;
}

// Backward. gv_seq ([T, N]), gv_last ([N]), gv0 ([N]) and gk (PLIF dL/dq, one double) may be NULL.
int snn_backward(int dtype, const void* x, const void* v0, const void* gs, const void* gv_seq, const void* gv_last,
                 void* gx, void* gv0, double* gk, int64_t steps, int64_t n, int chg, int hard, int detach,
                 int surrogate, double k, double vth, double vr, double alpha, int threads) {
    const BackwardArgs a{steps, n, threads};
    if (dtype == 0) {
        return backward_dispatch<float>(
            static_cast<const float*>(x), static_cast<const float*>(v0), static_cast<const float*>(gs),
            static_cast<const float*>(gv_seq), static_cast<const float*>(gv_last), static_cast<float*>(gx),
            static_cast<float*>(gv0), gk, a, chg, hard, detach, surrogate, static_cast<float>(k),
            static_cast<float>(vth), static_cast<float>(vr), static_cast<float>(alpha));
    }
    if (dtype == 1) {
        return backward_dispatch<double>(
            static_cast<const double*>(x), static_cast<const double*>(v0), static_cast<const double*>(gs),
            static_cast<const double*>(gv_seq), static_cast<const double*>(gv_last), static_cast<double*>(gx),
            static_cast<double*>(gv0), gk, a, chg, hard, detach, surrogate, k, vth, vr, alpha);
    }
    return -1;
}

}  // extern "C"
