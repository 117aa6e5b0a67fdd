// SSE2 UTF-8 validation: the DFA of kernels_impl.hpp plus an ASCII fast path. SSE2 has no byte shuffle
// (that is SSSE3), so the table-lookup validator of utf8_avx2.cpp is not available at this level.
#include <emmintrin.h>

#include "simd/kernels_impl.hpp"

namespace roomcast::simd {

std::uint32_t utf8_sse2(const std::byte* p, std::size_t n, std::uint32_t state) noexcept {
    using namespace utf8_dfa;
    std::uint32_t s = to_internal(state);
    std::size_t i = 0;
    while (i < n) {
        if (s == internal_accept) {
            // Between characters: skip whole ASCII blocks (no byte has its top bit set).
            for (; i + 64 <= n; i += 64) {
                const auto* q = reinterpret_cast<const __m128i*>(p + i);
                const __m128i any =
                    _mm_or_si128(_mm_or_si128(_mm_loadu_si128(q), _mm_loadu_si128(q + 1)),
                                 _mm_or_si128(_mm_loadu_si128(q + 2), _mm_loadu_si128(q + 3)));
                if (_mm_movemask_epi8(any) != 0) break;
            }
            for (; i + 16 <= n; i += 16)
                if (_mm_movemask_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i))) != 0) break;
        }
        // The DFA takes the next (up to) 16 bytes, then the fast path gets another try if the state is
        // back between characters.
        const std::size_t end = n - i > 16 ? i + 16 : n;
        for (; i < end; ++i) {
            s = step(s, p[i]);
            if (s == internal_reject) return utf8_reject;
        }
    }
    return to_public(s);
}

}  // namespace roomcast::simd
