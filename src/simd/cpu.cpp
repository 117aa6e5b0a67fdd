#include "simd/cpu.hpp"

namespace roomcast::simd {

namespace {

CpuFeatures detect() noexcept {
    // __builtin_cpu_init() is only required before the libgcc constructor has run (e.g. from another
    // static initializer); calling it again is harmless. libgcc reports avx2/avx512* only when the OS
    // also saves the wider registers (XGETBV), so no separate OSXSAVE check is needed here.
    __builtin_cpu_init();
    CpuFeatures f{};
    f.sse2 = __builtin_cpu_supports("sse2");
    f.avx2 = __builtin_cpu_supports("avx2");
    // The avx512 kernels also use 256-bit AVX2 code for short inputs; every AVX-512 CPU has AVX2.
    f.avx512 = f.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    return f;
}

}  // namespace

const CpuFeatures& cpu_features() noexcept {
    static const CpuFeatures features = detect();
    return features;
}

}  // namespace roomcast::simd
