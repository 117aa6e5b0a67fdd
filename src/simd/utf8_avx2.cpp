// AVX2 UTF-8 validation: the lookup validator of kernels_impl.hpp (utf8_lookup) over 64-byte blocks,
// the DFA for a character that straddles the call boundary.
#include <immintrin.h>

#include "simd/kernels_impl.hpp"

namespace roomcast::simd {

namespace {

constexpr std::size_t block_bytes = 64;  // two vectors: one ASCII test and one error test per block

struct Avx2Checker {
    __m256i prev1_high, prev1_low, cur_high;  // the three tables, in both 128-bit lanes
    __m256i prev = _mm256_setzero_si256();    // the vector before the current one (zero = ASCII)
    __m256i incomplete = _mm256_setzero_si256();
    __m256i error = _mm256_setzero_si256();
};

__attribute__((target("avx2"))) inline __m256i table(const std::array<std::uint8_t, 16>& t) noexcept {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t.data())));
}

// `cur` shifted right by N bytes with the last N bytes of `prev` shifted in: the byte N before each byte.
template <int N>
__attribute__((target("avx2"))) inline __m256i before(__m256i cur, __m256i prev) noexcept {
    return _mm256_alignr_epi8(cur, _mm256_permute2x128_si256(prev, cur, 0x21), 16 - N);
}

__attribute__((target("avx2"))) inline __m256i high_nibbles(__m256i v) noexcept {
    return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F));
}

// Errors in `cur`, which follows `prev` in the input (utf8_lookup explains the tables).
__attribute__((target("avx2"))) inline __m256i errors(const Avx2Checker& c, __m256i cur,
                                                      __m256i prev) noexcept {
    const __m256i prev1 = before<1>(cur, prev);
    const __m256i special = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(c.prev1_high, high_nibbles(prev1)),
                         _mm256_shuffle_epi8(c.prev1_low, _mm256_and_si256(prev1, _mm256_set1_epi8(0x0F)))),
        _mm256_shuffle_epi8(c.cur_high, high_nibbles(cur)));
    // Top bit set where a 3-byte lead (E0-FF) is 2 back or a 4-byte lead (F0-FF) is 3 back.
    const __m256i third = _mm256_subs_epu8(before<2>(cur, prev), _mm256_set1_epi8(0xE0 - 0x80));
    const __m256i fourth = _mm256_subs_epu8(before<3>(cur, prev), _mm256_set1_epi8(0xF0 - 0x80));
    const __m256i must23 = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8(char(0x80)));
    return _mm256_xor_si256(must23, special);
}

__attribute__((target("avx2"))) inline __m256i incomplete_at_end(__m256i v) noexcept {
    using namespace utf8_lookup;
    const __m256i limit = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                           -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           char(incomplete_3), char(incomplete_2), char(incomplete_1));
    return _mm256_subs_epu8(v, limit);
}

__attribute__((target("avx2"))) inline void check_block(Avx2Checker& c, const std::byte* p) noexcept {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    if (_mm256_movemask_epi8(_mm256_or_si256(a, b)) == 0) {
        // All ASCII: valid unless the previous block ended inside a character.
        c.error = _mm256_or_si256(c.error, c.incomplete);
        c.incomplete = _mm256_setzero_si256();
    } else {
        c.error = _mm256_or_si256(c.error, _mm256_or_si256(errors(c, a, c.prev), errors(c, b, a)));
        c.incomplete = incomplete_at_end(b);
    }
    c.prev = b;
}

// The last r < 64 bytes. They are copied into a zeroed block so nothing past p[r) is read; errors the
// zero padding would cause (a character cut short by the end of the data) are masked off, because an
// unfinished character is not an error yet.
__attribute__((target("avx2"))) inline void check_partial_block(Avx2Checker& c, const std::byte* p,
                                                                std::size_t r) noexcept {
    alignas(32) std::byte copy[block_bytes] = {};
    std::memcpy(copy, p, r);
    const __m256i a = _mm256_load_si256(reinterpret_cast<const __m256i*>(copy));
    const __m256i b = _mm256_load_si256(reinterpret_cast<const __m256i*>(copy + 32));
    const __m256i lanes_a = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                                             19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
    const __m256i lanes_b = _mm256_add_epi8(lanes_a, _mm256_set1_epi8(32));
    const __m256i count = _mm256_set1_epi8(static_cast<char>(r));
    const __m256i ea = _mm256_and_si256(errors(c, a, c.prev), _mm256_cmpgt_epi8(count, lanes_a));
    const __m256i eb = _mm256_and_si256(errors(c, b, a), _mm256_cmpgt_epi8(count, lanes_b));
    c.error = _mm256_or_si256(c.error, _mm256_or_si256(ea, eb));
}

__attribute__((target("avx2"))) inline bool has_error(const Avx2Checker& c) noexcept {
    return !_mm256_testz_si256(c.error, c.error);
}

}  // namespace

__attribute__((target("avx2"))) std::uint32_t utf8_avx2(const std::byte* p, std::size_t n,
                                                        std::uint32_t state) noexcept {
    using namespace utf8_dfa;
    // Finish a character left open by the previous call, so the block validator starts on a boundary.
    std::uint32_t s = to_internal(state);
    std::size_t i = 0;
    for (; i < n && s != internal_accept; ++i) {
        s = step(s, p[i]);
        if (s == internal_reject) return utf8_reject;
    }
    if (i == n) return to_public(s);

    const std::size_t boundary = i;
    Avx2Checker c{table(utf8_lookup::prev1_high), table(utf8_lookup::prev1_low),
                  table(utf8_lookup::cur_high)};
    for (; n - i >= block_bytes; i += block_bytes) {
        check_block(c, p + i);
        if (has_error(c)) return utf8_reject;  // fail fast: do not scan the rest of a bad message
    }
    if (i < n) {
        check_partial_block(c, p + i, n - i);
        if (has_error(c)) return utf8_reject;
    }
    return final_state(p, n, boundary);
}

}  // namespace roomcast::simd
