// Kernel dispatch: the table of kernel sets and the one chosen for this process.
#include "simd/kernels.hpp"

#include <array>
#include <atomic>

#include "simd/cpu.hpp"
#include "simd/kernels_impl.hpp"

namespace roomcast::simd {

namespace {

constexpr Kernels scalar_kernels{"scalar", unmask_scalar, utf8_scalar};
constexpr Kernels sse2_kernels{"sse2", unmask_sse2, utf8_sse2};
constexpr Kernels avx2_kernels{"avx2", unmask_avx2, utf8_avx2};
constexpr Kernels avx512_kernels{"avx512", unmask_avx512, utf8_avx512};

struct Supported {
    std::array<const Kernels*, 4> sets{};
    std::size_t count = 0;
};

// Scalar first, then in increasing width, so the last entry is the best one.
Supported detect_supported() noexcept {
    const CpuFeatures& cpu = cpu_features();
    Supported s;
    s.sets[s.count++] = &scalar_kernels;
    if (cpu.sse2) s.sets[s.count++] = &sse2_kernels;
    if (cpu.avx2) s.sets[s.count++] = &avx2_kernels;
    if (cpu.avx512) s.sets[s.count++] = &avx512_kernels;
    return s;
}

const Supported& supported() noexcept {
    static const Supported s = detect_supported();
    return s;
}

const Kernels* best() noexcept { return supported().sets[supported().count - 1]; }

// Written by select_kernels() at start-up, before any reactor thread exists; read on every unmask and
// validation. Atomic only so a first kernels() call from two threads is not a data race: relaxed loads
// compile to plain moves on x86.
std::atomic<const Kernels*> active{nullptr};

}  // namespace

const Kernels& kernels() noexcept {
    const Kernels* k = active.load(std::memory_order_relaxed);
    if (k == nullptr) [[unlikely]] {
        k = best();
        active.store(k, std::memory_order_relaxed);
    }
    return *k;
}

std::span<const Kernels* const> supported_kernels() noexcept {
    const Supported& s = supported();
    return {s.sets.data(), s.count};
}

bool select_kernels(std::string_view name) noexcept {
    if (name == "auto") {
        active.store(best(), std::memory_order_relaxed);
        return true;
    }
    for (const Kernels* k : supported_kernels())
        if (name == k->name) {
            active.store(k, std::memory_order_relaxed);
            return true;
        }
    return false;  // unknown, or this CPU cannot run it
}

}  // namespace roomcast::simd
