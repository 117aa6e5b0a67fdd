// SSE2 unmasking. SSE2 is part of x86-64, so no target attribute is needed.
#include <emmintrin.h>

#include "simd/kernels_impl.hpp"

namespace roomcast::simd {

std::uint32_t unmask_sse2(std::byte* p, std::size_t n, MaskKey key, std::uint32_t phase) noexcept {
    const std::uint32_t k = key_for_phase(key, phase);
    const __m128i kv = _mm_set1_epi32(static_cast<int>(k));
    std::size_t i = 0;
    // Four independent vectors per turn keep both load ports busy.
    for (; i + 64 <= n; i += 64) {
        auto* q = reinterpret_cast<__m128i*>(p + i);
        const __m128i a = _mm_xor_si128(_mm_loadu_si128(q + 0), kv);
        const __m128i b = _mm_xor_si128(_mm_loadu_si128(q + 1), kv);
        const __m128i c = _mm_xor_si128(_mm_loadu_si128(q + 2), kv);
        const __m128i d = _mm_xor_si128(_mm_loadu_si128(q + 3), kv);
        _mm_storeu_si128(q + 0, a);
        _mm_storeu_si128(q + 1, b);
        _mm_storeu_si128(q + 2, c);
        _mm_storeu_si128(q + 3, d);
    }
    for (; i + 16 <= n; i += 16) {
        auto* q = reinterpret_cast<__m128i*>(p + i);
        _mm_storeu_si128(q, _mm_xor_si128(_mm_loadu_si128(q), kv));
    }
    // i is a multiple of 4, so k still applies from p[i].
    unmask_short(p + i, n - i, k);
    return (phase + n) & 3;
}

}  // namespace roomcast::simd
