// CPU feature detection for the SIMD kernels (internal to src/simd).
#pragma once

namespace roomcast::simd {

// What this CPU and OS can run. Read once, cached; safe from any thread.
struct CpuFeatures {
    bool sse2;
    bool avx2;
    bool avx512;  // avx512f + avx512bw (byte-granular masks and shuffles need BW), and avx2
};
const CpuFeatures& cpu_features() noexcept;

}  // namespace roomcast::simd
