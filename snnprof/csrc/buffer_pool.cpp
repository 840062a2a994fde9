// A caching pool of large CPU buffers for the fused kernels' outputs, handed to PyTorch through DLPack.
//
// Built by snnprof/native_build.py and used by snnprof/kernels/buffer_pool.py. A fresh multi-megabyte
// tensor is paid for in page faults when it is first written: the operating system maps and zeroes
// every page, which costs more than a bandwidth-bound kernel that writes it (measured: 25 ms against
// 5 ms for a 64 MiB spike output). PyTorch's CPU allocator returns large blocks to the operating
// system when a tensor dies, so a training loop pays this on every call. This pool keeps the blocks
// of dead outputs (up to a byte limit) and hands them out again, already mapped, like PyTorch's CUDA
// caching allocator does on a GPU. Blocks are 2 MiB-aligned and advised to use transparent huge pages.
//
// snn_pool_tensor returns a DLManagedTensor (DLPack 0.x layout, declared below; no DLPack header
// needed). torch.utils.dlpack.from_dlpack wraps it without a copy and calls its deleter when the last
// tensor viewing it dies; the deleter puts the block back. Thread-safe (one mutex).

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>

namespace {

// DLPack 0.x ABI (dlpack.h): only the fields used here, same layout.
struct DLDevice {
    int32_t device_type;  // 1 = kDLCPU
    int32_t device_id;
};
struct DLDataType {
    uint8_t code;  // 2 = kDLFloat
    uint8_t bits;
    uint16_t lanes;
};
struct DLTensor {
    void* data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t* shape;
    int64_t* strides;
    uint64_t byte_offset;
};
struct DLManagedTensor {
    DLTensor dl_tensor;
    void* manager_ctx;
    void (*deleter)(DLManagedTensor*);
};

constexpr int kMaxDims = 8;
constexpr size_t kAlign = size_t(2) << 20;  // 2 MiB: one transparent huge page

struct Handle {
    DLManagedTensor managed;
    int64_t shape[kMaxDims];
    int64_t strides[kMaxDims];
    void* block;
    size_t bytes;
};

struct Pool {
    std::mutex mutex;
    std::multimap<size_t, void*> free_blocks;  // rounded size -> block
    size_t cached = 0;                         // bytes in free_blocks
    size_t limit = size_t(1) << 30;
    int64_t hits = 0, misses = 0, live = 0;
};

Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: deleters may run during interpreter shutdown
    return *p;
}

size_t round_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

void* take(size_t bytes) {
    Pool& p = pool();
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        auto it = p.free_blocks.find(bytes);
        if (it != p.free_blocks.end()) {
            void* block = it->second;
            p.free_blocks.erase(it);
            p.cached -= bytes;
            ++p.hits;
            ++p.live;
            return block;
        }
        ++p.misses;
        ++p.live;
    }
    void* block = std::aligned_alloc(kAlign, bytes);
#ifdef MADV_HUGEPAGE
    if (block) madvise(block, bytes, MADV_HUGEPAGE);  // advisory: a failure only costs speed
#endif
    return block;
}

void give_back(void* block, size_t bytes) {
    Pool& p = pool();
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        --p.live;
        if (p.cached + bytes <= p.limit) {
            p.free_blocks.emplace(bytes, block);
            p.cached += bytes;
            return;
        }
    }
    std::free(block);
}

void release(DLManagedTensor* managed) {
    auto* handle = static_cast<Handle*>(managed->manager_ctx);
    give_back(handle->block, handle->bytes);
    delete handle;
}

}  // namespace

extern "C" {

int snn_pool_abi_version() { return 1; }

// A contiguous tensor of `ndim` <= 8 dims `shape` and float width `bits` (32 or 64), from the pool.
// Returns a DLManagedTensor*, or NULL (bad arguments, out of memory).
void* snn_pool_tensor(int ndim, const int64_t* shape, int bits) {
    if (ndim < 0 || ndim > kMaxDims || (bits != 32 && bits != 64)) return nullptr;
    size_t elements = 1;
    for (int d = 0; d < ndim; ++d) {
        if (shape[d] < 0) return nullptr;
        elements *= static_cast<size_t>(shape[d]);
    }
    const size_t bytes = round_up(std::max<size_t>(elements * (bits / 8), 1));
    void* block = take(bytes);
    if (!block) return nullptr;
    auto* h = new Handle();
    int64_t stride = 1;
    for (int d = ndim - 1; d >= 0; --d) {
        h->shape[d] = shape[d];
        h->strides[d] = stride;
        stride *= shape[d];
    }
    h->block = block;
    h->bytes = bytes;
    h->managed.dl_tensor = DLTensor{block, DLDevice{1, 0}, ndim, DLDataType{2, static_cast<uint8_t>(bits), 1},
                                    h->shape, h->strides, 0};
    h->managed.manager_ctx = h;
    h->managed.deleter = release;
    return &h->managed;
}

// Frees a tensor from snn_pool_tensor that was never handed to PyTorch.
void snn_pool_discard(void* managed) { release(static_cast<DLManagedTensor*>(managed)); }

// Bytes of free blocks kept for reuse at most (blocks beyond it are freed when their tensor dies).
void snn_pool_set_limit(int64_t bytes) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    p.limit = bytes < 0 ? 0 : static_cast<size_t>(bytes);
}

// Frees every cached block; returns the bytes freed.
int64_t snn_pool_clear() {
    Pool& p = pool();
    std::multimap<size_t, void*> blocks;
    size_t freed;
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        blocks.swap(p.free_blocks);
        freed = p.cached;
        p.cached = 0;
    }
    for (auto& entry : blocks) std::free(entry.second);
    return static_cast<int64_t>(freed);
}

// out[0..4] = cached bytes, limit, hits, misses, live tensors.
void snn_pool_stats(int64_t* out) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    out[0] = static_cast<int64_t>(p.cached);
    out[1] = static_cast<int64_t>(p.limit);
    out[2] = p.hits;
    out[3] = p.misses;
    out[4] = p.live;
}

}  // extern "C"
