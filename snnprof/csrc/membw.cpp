// STREAM-style memory bandwidth of this machine: copy (c = a) and triad (a = b + s * c) over float arrays.
//
// Built by snnprof/native_build.py and called through ctypes by snnprof/kernels/membw.py, which sizes
// the arrays beyond the last-level cache (STREAM's rule: each array at least 4x the cache) and runs it
// with the same OpenMP threads as the kernels it is compared with (`snnprof bench`).
//
// As in McCalpin's STREAM, the arrays are first touched by the threads that later work on them (static
// schedule), the bytes counted are those the loop names (copy: 2 arrays, triad: 3), and every rep is
// timed on its own. Stores are non-temporal by default (the STREAM figures vendors publish are compiled
// that way, and the fused kernels store their large outputs that way): the destination is written to
// DRAM without being read first. With plain stores (stream = 0) a CPU first reads each destination
// line into the cache (write-allocate), so the real traffic of a copy is 3 arrays while 2 are counted,
// which is why a plain tensor copy reports about two thirds of the machine's bandwidth.

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define SNN_VEC_BYTES 64
#elif defined(__AVX__)
#define SNN_VEC_BYTES 32
#else
#define SNN_VEC_BYTES 16
#endif

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace {

typedef float vfloat __attribute__((vector_size(SNN_VEC_BYTES)));
constexpr int64_t kLanes = SNN_VEC_BYTES / sizeof(float);
constexpr size_t kAlign = size_t(2) << 20;

enum Kind : int { kCopy = 0, kTriad = 1 };

inline vfloat load(const float* p) {
    vfloat v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline void put(float* p, vfloat v, bool nt) {
#if defined(__AVX512F__)
    if (nt) return _mm512_stream_ps(p, (__m512)v);
#elif defined(__AVX__)
    if (nt) return _mm256_stream_ps(p, (__m256)v);
#elif defined(__SSE2__)
    if (nt) return _mm_stream_ps(p, (__m128)v);
#endif
    std::memcpy(p, &v, sizeof v);
}

inline void fence() {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

float* alloc(int64_t n) {
    const size_t bytes = (static_cast<size_t>(n) * sizeof(float) + kAlign - 1) / kAlign * kAlign;
    auto* p = static_cast<float*>(std::aligned_alloc(kAlign, bytes));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

// This thread's share [lo, hi) of n elements, cut at vector boundaries (arrays are 2 MiB-aligned).
void share(int64_t n, int64_t* lo, int64_t* hi) {
    const int64_t vectors = n / kLanes, t = omp_get_thread_num(), nt = omp_get_num_threads();
    *lo = vectors * t / nt * kLanes;
    *hi = t + 1 == nt ? n : vectors * (t + 1) / nt * kLanes;
}

void run(int kind, float* a, const float* b, float* c, int64_t n, bool nt) {
    int64_t lo, hi;
    share(n, &lo, &hi);
    int64_t i = lo;
    if (kind == kCopy) {
        for (; i + kLanes <= hi; i += kLanes) put(c + i, load(a + i), nt);
        for (; i < hi; ++i) c[i] = a[i];
    } else {
        for (; i + kLanes <= hi; i += kLanes) put(a + i, load(b + i) + 3.0f * load(c + i), nt);
        for (; i < hi; ++i) a[i] = b[i] + 3.0f * c[i];
    }
    if (nt) fence();
}

struct Arrays {
    float *a, *b, *c;
    int64_t n;
    int threads;
};

}  // namespace

extern "C" {

int snn_membw_abi_version() { return 3; }

// Three arrays of n floats, first touched by the `threads` OpenMP threads that will use them.
// Returns an opaque handle, or NULL (bad arguments, out of memory).
void* snn_stream_new(int64_t n, int threads) {
    if (n <= 0 || threads <= 0) return nullptr;
    auto* arrays = new Arrays{alloc(n), alloc(n), alloc(n), n, threads};
    if (!arrays->a || !arrays->b || !arrays->c) {
        std::free(arrays->a), std::free(arrays->b), std::free(arrays->c);
        delete arrays;
        return nullptr;
    }
#pragma omp parallel num_threads(threads)
    {
        int64_t lo, hi;
        share(n, &lo, &hi);
        for (int64_t i = lo; i < hi; ++i) arrays->a[i] = 1.0f, arrays->b[i] = 2.0f, arrays->c[i] = 0.0f;
    }
    return arrays;
}

// One run of `kind` (0 copy, 1 triad) over the arrays; stream: 1 = non-temporal stores. Returns seconds.
double snn_stream_run(void* handle, int kind, int stream) {
    auto* arrays = static_cast<Arrays*>(handle);
    const double start = omp_get_wtime();
#pragma omp parallel num_threads(arrays->threads)
    run(kind, arrays->a, arrays->b, arrays->c, arrays->n, stream != 0);
    return omp_get_wtime() - start;
}

// Reads array b with the team (plain loads): afterwards the caches hold only clean lines of b, so the next
// timed call starts from the same cache state whatever ran before it (no dirty lines left to write back).
// Returns the sum (so the reads cannot be optimised away).
double snn_stream_evict(void* handle) {
    auto* arrays = static_cast<Arrays*>(handle);
    double total = 0.0;
#pragma omp parallel num_threads(arrays->threads) reduction(+ : total)
    {
        int64_t lo, hi;
        share(arrays->n, &lo, &hi);
        vfloat acc{};
        int64_t i = lo;
        for (; i + kLanes <= hi; i += kLanes) acc += load(arrays->b + i);
        for (int64_t l = 0; l < kLanes; ++l) total += acc[l];
        for (; i < hi; ++i) total += arrays->b[i];
    }
    return total;
}

void snn_stream_free(void* handle) {
    auto* arrays = static_cast<Arrays*>(handle);
    std::free(arrays->a), std::free(arrays->b), std::free(arrays->c);
    delete arrays;
}

}  // extern "C"
