// AVX2 unmasking.
#include <immintrin.h>

#include "simd/kernels_impl.hpp"

namespace roomcast::simd {

__attribute__((target("avx2"))) std::uint32_t unmask_avx2(std::byte* p, std::size_t n, MaskKey key,
                                                          std::uint32_t phase) noexcept {
    const std::uint32_t k = key_for_phase(key, phase);
    const __m256i kv = _mm256_set1_epi32(static_cast<int>(k));
    std::size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        auto* q = reinterpret_cast<__m256i*>(p + i);
        const __m256i a = _mm256_xor_si256(_mm256_loadu_si256(q + 0), kv);
        const __m256i b = _mm256_xor_si256(_mm256_loadu_si256(q + 1), kv);
        const __m256i c = _mm256_xor_si256(_mm256_loadu_si256(q + 2), kv);
        const __m256i d = _mm256_xor_si256(_mm256_loadu_si256(q + 3), kv);
        _mm256_storeu_si256(q + 0, a);
        _mm256_storeu_si256(q + 1, b);
        _mm256_storeu_si256(q + 2, c);
        _mm256_storeu_si256(q + 3, d);
    }
    for (; i + 32 <= n; i += 32) {
        auto* q = reinterpret_cast<__m256i*>(p + i);
        _mm256_storeu_si256(q, _mm256_xor_si256(_mm256_loadu_si256(q), kv));
    }
    if (i + 16 <= n) {
        auto* q = reinterpret_cast<__m128i*>(p + i);
        _mm_storeu_si128(q, _mm_xor_si128(_mm_loadu_si128(q), _mm256_castsi256_si128(kv)));
        i += 16;
    }
    // i is a multiple of 4, so k still applies from p[i].
    unmask_short(p + i, n - i, k);
    return (phase + n) & 3;
}

}  // namespace roomcast::simd
