// One-pass statistics of activation tensors for the counting engine (CPU): input-kind detection and
// nonzero counts per row.
//
// Built by snnprof/native_build.py (at install time, else on first use by snnprof/counting/native.py;
// g++ -O3 -fopenmp, no Torch headers) and called through ctypes on contiguous float32/float64 data.
// Each entry point reads its input once and writes nothing but its small result, where the Torch
// formulation needs four to five passes (aminmax, x * (max - x), remainder, ne, sum) and temporaries.
//
// snn_classify decides the kind exactly as snnprof.counting.kinds.classify defines it:
//   NaN or infinite anywhere              -> dense
//   min == 0 and all nonzeros equal        -> spike (peak = max; all zeros: spike with peak 0)
//   min < -1                               -> dense
//   integral and min >= 0                  -> count
//   integral and max <= 1                  -> ternary
//   otherwise                              -> dense
// in at most two passes. The first (SpikeScan) tests the spike hypothesis with three unsigned-integer
// reductions of the bit patterns (for non-negative IEEE values the bit order is the value order): the
// largest pattern, the smallest, and the smallest nonzero one. It gives up at the first block that
// refutes the hypothesis (a sign bit, NaN or infinity, two different nonzero values), so real-valued
// activations cost a few thousand elements. Only then does the second pass (Running) compute min, max,
// the nonzero min and max, integrality and finiteness in floating point; it stops once the values are
// proven dense (a non-integer value together with two different nonzero values or a negative value).
//
// snn_accumulate_spikes counts the nonzero elements of a neuron output per (time step, sample, channel)
// and adds them to the layer's running sums per channel, per time step and per (step, sample). snn_classify_conv
// classifies a convolution's input and, in the spike pass, computes its exact synaptic operations:
// events summed over each group's channels per position, weighted by the outputs each position reaches.

// snnprof-build-flags: -fno-trapping-math
// (lets the compiler vectorise the branch-free selects)

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {

constexpr int64_t kChunk = 1 << 16;  // elements per parallel chunk of snn_classify

enum Kind : int { kSpike = 0, kCount = 1, kTernary = 2, kDense = 3 };

struct Stats {
    double min = INFINITY;
    double max = -INFINITY;
    double first = 0.0;       // first nonzero value seen (valid if has_nonzero)
    bool has_nonzero = false;
    bool distinct = false;    // two different nonzero values
    bool nonintegral = false;
    bool nonfinite = false;
    bool negative = false;

    bool proves_dense() const { return nonfinite || min < -1.0 || (nonintegral && (distinct || negative)); }
};

Stats merge(const Stats& a, const Stats& b) {
    Stats s;
    s.min = std::min(a.min, b.min);
    s.max = std::max(a.max, b.max);
    s.has_nonzero = a.has_nonzero || b.has_nonzero;
    s.first = a.has_nonzero ? a.first : b.first;
    s.distinct = a.distinct || b.distinct || (a.has_nonzero && b.has_nonzero && a.first != b.first);
    s.nonintegral = a.nonintegral || b.nonintegral;
    s.nonfinite = a.nonfinite || b.nonfinite;
    s.negative = a.negative || b.negative;
    return s;
}

template <typename T>
struct Bits;
template <>
struct Bits<float> {
    using U = uint32_t;
    static constexpr U kExponent = 0x7f800000u;
};
template <>
struct Bits<double> {
    using U = uint64_t;
    static constexpr U kExponent = 0x7ff0000000000000ull;
};

constexpr int64_t kBlock = 2048;  // elements between two checks for a proof of "dense"

// Running statistics of the values seen so far. The loops are branch-free (OpenMP SIMD reductions;
// built with -fno-trapping-math so the selects vectorise): nonzero values are compared through their
// own min and max, NaN and infinity are found by their exponent bits (min/max are then moot).
template <typename T>
struct Running {
    using U = typename Bits<T>::U;
    static constexpr U kExp = Bits<T>::kExponent;
    T lo = std::numeric_limits<T>::infinity(), hi = -std::numeric_limits<T>::infinity();
    T nz_lo = std::numeric_limits<T>::infinity(), nz_hi = -std::numeric_limits<T>::infinity();
    int nonint = 0, nonfinite = 0;

    // Values x[0, n).
    void add(const T* x, int64_t n) {
        const T inf = std::numeric_limits<T>::infinity();
        const U* bits = reinterpret_cast<const U*>(x);
        T l = lo, h = hi, zl = nz_lo, zh = nz_hi;
        int ni = nonint, nf = nonfinite;
#pragma omp simd reduction(min : l, zl) reduction(max : h, zh) reduction(| : ni, nf)
        for (int64_t i = 0; i < n; ++i) {
            const T v = x[i];
            l = v < l ? v : l;
            h = v > h ? v : h;
            const T v_lo = v == 0 ? inf : v;
            const T v_hi = v == 0 ? -inf : v;
            zl = v_lo < zl ? v_lo : zl;
            zh = v_hi > zh ? v_hi : zh;
            nf |= static_cast<int>((bits[i] & kExp) == kExp);
            ni |= static_cast<int>(v != std::floor(v));
        }
        lo = l, hi = h, nz_lo = zl, nz_hi = zh, nonint = ni, nonfinite = nf;
    }

    Stats stats() const {
        Stats s;
        s.min = lo, s.max = hi;
        s.has_nonzero = nz_lo <= nz_hi;
        s.first = s.has_nonzero ? nz_lo : 0.0;
        s.distinct = s.has_nonzero && nz_lo != nz_hi;
        s.nonintegral = nonint != 0, s.nonfinite = nonfinite != 0, s.negative = lo < 0;
        return s;
    }
};

// The spike hypothesis on bit patterns: every value is +0 or the same positive finite value.
template <typename T>
struct SpikeScan {
    using U = typename Bits<T>::U;
    static constexpr U kExp = Bits<T>::kExponent;
    static constexpr U kSign = U(1) << (8 * sizeof(U) - 1);
    U hi = 0;              // largest pattern
    U lo = ~U(0);          // smallest pattern (0 iff a +0 occurs)
    U nz = ~U(0);          // smallest (pattern - 1): +1 gives the smallest nonzero pattern

    // Patterns b[0, n); with kCounts also counts[i] += (b[i] != 0) (meaningful while alive()).
    template <bool kCounts>
    void add(const U* b, int64_t n, int32_t* counts) {
        U h = hi, l = lo, z = nz;
#pragma omp simd reduction(max : h) reduction(min : l, z)
        for (int64_t i = 0; i < n; ++i) {
            const U v = b[i];
            h = v > h ? v : h;
            l = v < l ? v : l;
            z = v - 1 < z ? v - 1 : z;
            if constexpr (kCounts) counts[i] += v != 0 ? 1 : 0;
        }
        hi = h, lo = l, nz = z;
    }

    // False once a sign bit (negative or -0), NaN, infinity or two different nonzero values were seen.
    bool alive() const { return hi < kExp && (nz == ~U(0) || nz + 1 == hi); }
    bool spike() const { return alive() && lo == 0; }
    double peak() const {
        T value;
        std::memcpy(&value, &hi, sizeof(T));
        return static_cast<double>(value);
    }
};

// The spike pass over x[0, n) in parallel chunks; returns true (and the peak) if x is a spike tensor.
template <typename T>
bool spike_pass(const T* x, int64_t n, double* peak, int threads) {
    using U = typename Bits<T>::U;
    const U* bits = reinterpret_cast<const U*>(x);
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<SpikeScan<T>> parts(static_cast<size_t>(chunks));
    std::atomic<bool> refuted(false);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) {
        const int64_t end = std::min(n, (c + 1) * kChunk);
        for (int64_t i0 = c * kChunk; i0 < end && !refuted.load(std::memory_order_relaxed); i0 += kBlock) {
            parts[c].template add<false>(bits + i0, std::min(end, i0 + kBlock) - i0, nullptr);
            if (!parts[c].alive()) refuted.store(true, std::memory_order_relaxed);
        }
    }
    if (refuted.load()) return false;
    SpikeScan<T> all;
    for (const auto& part : parts) {
        all.hi = std::max(all.hi, part.hi), all.lo = std::min(all.lo, part.lo), all.nz = std::min(all.nz, part.nz);
    }
    if (!all.spike()) return false;
    *peak = all.peak();
    return true;
}

// Statistics of x[begin, end), stopping once they prove "dense" or another chunk did.
template <typename T>
Stats chunk_stats(const T* x, int64_t begin, int64_t end, const std::atomic<bool>& stop) {
    Running<T> run;
    for (int64_t i0 = begin; i0 < end; i0 += kBlock) {
        run.add(x + i0, std::min(end, i0 + kBlock) - i0);
        if (run.stats().proves_dense() || stop.load(std::memory_order_relaxed)) break;
    }
    return run.stats();
}

int kind_of(const Stats& s) {
    if (s.nonfinite || std::isnan(s.min)) return kDense;
    if (s.min == 0.0 && !s.distinct) return kSpike;
    if (s.min < -1.0) return kDense;
    if (!s.nonintegral && s.min >= 0.0) return kCount;
    if (!s.nonintegral && s.max <= 1.0) return kTernary;
    return kDense;
}

// The kind of merged per-part statistics (a part that proved "dense" decides alone).
int merged_kind(const std::vector<Stats>& parts, double* peak) {
    Stats all;
    for (const Stats& part : parts) {
        if (part.proves_dense()) {
            *peak = part.max;
            return kDense;
        }
        all = merge(all, part);
    }
    *peak = all.max;
    return kind_of(all);
}

template <typename T>
int classify(const T* x, int64_t n, double* peak, int threads) {
    if (spike_pass(x, n, peak, threads)) return kSpike;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<Stats> parts(static_cast<size_t>(chunks));
    std::atomic<bool> stop(false);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) {
        if (stop.load(std::memory_order_relaxed)) continue;
        parts[c] = chunk_stats(x, c * kChunk, std::min(n, (c + 1) * kChunk), stop);
        if (parts[c].proves_dense()) stop.store(true, std::memory_order_relaxed);
    }
    return merged_kind(parts, peak);
}

constexpr int64_t kLanes = 64;  // lane accumulators of the small-position paths

// The spike pass over one [channels, inner] slab with inner dividing kLanes: element k of the slab
// is position k % inner, so counts accumulate in kLanes lanes (lane j holds position j % inner) and
// the inner loop is a full-width SIMD loop whatever the size of inner. False if refuted.
template <typename T>
bool small_slab(SpikeScan<T>& scan, const typename Bits<T>::U* b, int64_t n, int64_t inner, int32_t* counts,
                const std::atomic<bool>& refuted) {
    int32_t lanes[kLanes] = {0};
    int64_t k = 0;
    for (; k + kLanes <= n; k += kLanes) {
        scan.template add<true>(b + k, kLanes, lanes);
        if ((k & (kBlock - 1)) == 0 && (!scan.alive() || refuted.load(std::memory_order_relaxed))) return false;
    }
    scan.template add<true>(b + k, n - k, lanes);  // the tail starts at a multiple of kLanes: lane j is j % inner
    if (!scan.alive()) return false;
    for (int64_t j = 0; j < kLanes; ++j) counts[j % inner] += lanes[j];
    return true;
}

// The spike pass over one [channels, inner] slab, writing counts[i] = nonzero values at position i
// over the channels. False (counts moot) once the hypothesis is refuted, here or by another slab.
template <typename T>
bool spike_slab(SpikeScan<T>& scan, const typename Bits<T>::U* b, int64_t channels, int64_t inner, int32_t* counts,
                const std::atomic<bool>& refuted) {
    std::fill(counts, counts + inner, 0);
    if (inner < kLanes && kLanes % inner == 0) return small_slab(scan, b, channels * inner, inner, counts, refuted);
    int64_t since_check = 0;
    for (int64_t c = 0; c < channels; ++c) {
        scan.template add<true>(b + c * inner, inner, counts);
        since_check += inner;
        if (since_check >= kBlock || c + 1 == channels) {
            since_check = 0;
            if (!scan.alive() || refuted.load(std::memory_order_relaxed)) return false;
        }
    }
    return true;
}

// Kind of x viewed as [outer = frames * groups, channels, inner]; for spikes also the accumulates of a
// convolution: slab o = (frame n, group g) contributes scale * sum_i count[i] * cover[i], where count[i]
// is the number of events at input position i over the group's channels and cover[i] the outputs it
// reaches per output channel. Writes per_frame[n] (accumulates of frame n), sums[0] (events) and
// sums[1] (accumulates), all exact in double, when the kind is spike.
template <typename T>
int classify_conv(const T* x, int64_t outer, int64_t groups, int64_t channels, int64_t inner, const double* cover,
                  double scale, double* per_frame, double* sums, double* peak, int threads) {
    using U = typename Bits<T>::U;
    const U* bits = reinterpret_cast<const U*>(x);
    std::vector<SpikeScan<T>> parts(static_cast<size_t>(outer));
    std::vector<double> events(static_cast<size_t>(outer)), reach(static_cast<size_t>(outer));
    std::atomic<bool> refuted(false);
#pragma omp parallel num_threads(threads) if (threads > 1 && outer > 1)
    {
        std::vector<int32_t> counts(static_cast<size_t>(inner));
#pragma omp for schedule(static)
        for (int64_t o = 0; o < outer; ++o) {
            if (refuted.load(std::memory_order_relaxed)) continue;
            if (!spike_slab(parts[o], bits + o * channels * inner, channels, inner, counts.data(), refuted)) {
                refuted.store(true, std::memory_order_relaxed);
                continue;
            }
            double e = 0.0, r = 0.0;
            for (int64_t i = 0; i < inner; ++i) {
                e += counts[i];
                r += counts[i] * cover[i];
            }
            events[o] = e, reach[o] = r;
        }
    }
    if (!refuted.load()) {
        SpikeScan<T> all;
        for (const auto& part : parts) {
            all.hi = std::max(all.hi, part.hi), all.lo = std::min(all.lo, part.lo), all.nz = std::min(all.nz, part.nz);
        }
        if (all.spike()) {
            double total_events = 0.0, total_reach = 0.0;
            for (int64_t n = 0; n < outer / groups; ++n) {
                double frame = 0.0;
                for (int64_t g = 0; g < groups; ++g) {
                    frame += reach[n * groups + g];
                    total_events += events[n * groups + g];
                }
                per_frame[n] = frame * scale;
                total_reach += frame * scale;
            }
            sums[0] = total_events, sums[1] = total_reach;
            *peak = all.peak();
            return kSpike;
        }
    }
    return classify(x, outer * channels * inner, peak, threads);  // not spikes: per_frame and sums untouched
}

// Rows of a compile-time width W (small feature maps): the compiler unrolls the row and vectorises
// across rows.
template <typename T, int W>
void count_fixed(const T* x, int64_t rows, int64_t* counts, int threads) {
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && rows > 4096)
    for (int64_t r = 0; r < rows; ++r) {
        int32_t k = 0;
        for (int i = 0; i < W; ++i) k += x[r * W + i] != 0 ? 1 : 0;
        counts[r] = k;
    }
}

template <typename T>
void count_nonzero(const T* x, int64_t rows, int64_t inner, int64_t* counts, int threads) {
    switch (inner) {
        case 1: return count_fixed<T, 1>(x, rows, counts, threads);
        case 2: return count_fixed<T, 2>(x, rows, counts, threads);
        case 4: return count_fixed<T, 4>(x, rows, counts, threads);
        case 8: return count_fixed<T, 8>(x, rows, counts, threads);
        case 16: return count_fixed<T, 16>(x, rows, counts, threads);
        case 32: return count_fixed<T, 32>(x, rows, counts, threads);
        default: break;
    }
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && rows > 1)
    for (int64_t r = 0; r < rows; ++r) {
        const T* row = x + r * inner;
        int64_t k = 0;
        for (int64_t i0 = 0; i0 < inner; i0 += int64_t(1) << 30) {  // int32 partial sums vectorise wider
            const int64_t i1 = std::min(inner, i0 + (int64_t(1) << 30));
            int32_t part = 0;
#pragma omp simd reduction(+ : part)
            for (int64_t i = i0; i < i1; ++i) part += row[i] != 0 ? 1 : 0;
            k += part;
        }
        counts[r] = k;
    }
}

// Spikes of a neuron output x viewed as [steps, rows, channels, inner], added to running sums:
// *total, per_channel[c], per_step[start + t]; per_index[t * rows + r] (if not null) is written with
// the spikes of each (step, row) index. All counts are exact in double.
template <typename T>
void accumulate_spikes(const T* x, int64_t steps, int64_t rows, int64_t channels, int64_t inner, int64_t start,
                       double* total, double* per_channel, double* per_step, double* per_index, int threads) {
    std::vector<int64_t> counts(static_cast<size_t>(steps * rows * channels));
    count_nonzero(x, steps * rows * channels, inner, counts.data(), threads);
    int64_t all = 0;
    for (int64_t t = 0; t < steps; ++t) {
        int64_t step = 0;
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t* line = counts.data() + (t * rows + r) * channels;
            int64_t index = 0;
            for (int64_t c = 0; c < channels; ++c) {
                index += line[c];
                per_channel[c] += static_cast<double>(line[c]);
            }
            if (per_index != nullptr) per_index[t * rows + r] = static_cast<double>(index);
            step += index;
        }
        per_step[start + t] += static_cast<double>(step);
        all += step;
    }
    *total += static_cast<double>(all);
}

}  // namespace

extern "C" {

// ABI version of this file's entry points; snnprof/counting/native.py refuses a library with another one.
int snn_stats_abi_version() { return 4; }

// Kind code (0 spike, 1 count, 2 ternary, 3 dense) of n contiguous values; *peak receives the maximum
// (meaningful unless dense). dtype: 0 = float32, 1 = float64. Returns -1 on a bad dtype or n < 1.
int snn_classify(int dtype, const void* x, int64_t n, double* peak, int threads) {
    if (n < 1) return -1;
    if (dtype == 0) return classify(static_cast<const float*>(x), n, peak, threads);
    if (dtype == 1) return classify(static_cast<const double*>(x), n, peak, threads);
    return -1;
}

// classify_conv (above) for dtype 0 = float32, 1 = float64: the kind of x viewed as
// [outer, channels, inner] and, for spikes, a convolution's exact accumulates per frame (outer / groups
// frames). Returns the kind, or -1 on bad arguments.
int snn_classify_conv(int dtype, const void* x, int64_t outer, int64_t groups, int64_t channels, int64_t inner,
                      const double* cover, double scale, double* per_frame, double* sums, double* peak, int threads) {
    if (outer < 1 || groups < 1 || outer % groups || channels < 1 || inner < 1 || channels > INT32_MAX) return -1;
    if (dtype == 0) {
        return classify_conv(static_cast<const float*>(x), outer, groups, channels, inner, cover, scale, per_frame,
                             sums, peak, threads);
    }
    if (dtype == 1) {
        return classify_conv(static_cast<const double*>(x), outer, groups, channels, inner, cover, scale, per_frame,
                             sums, peak, threads);
    }
    return -1;
}

// accumulate_spikes (above) for dtype 0 = float32, 1 = float64. Returns 0, or -1 on bad arguments.
int snn_accumulate_spikes(int dtype, const void* x, int64_t steps, int64_t rows, int64_t channels, int64_t inner,
                          int64_t start, double* total, double* per_channel, double* per_step, double* per_index,
                          int threads) {
    if (steps < 0 || rows < 0 || channels < 0 || inner < 0 || start < 0) return -1;
    if (dtype == 0) {
        accumulate_spikes(static_cast<const float*>(x), steps, rows, channels, inner, start, total, per_channel,
                          per_step, per_index, threads);
        return 0;
    }
    if (dtype == 1) {
        accumulate_spikes(static_cast<const double*>(x), steps, rows, channels, inner, start, total, per_channel,
                          per_step, per_index, threads);
        return 0;
    }
    return -1;
}

}  // extern "C"
