// AVX-512 (F + BW) UTF-8 validation: the lookup validator of kernels_impl.hpp (utf8_lookup), one 64-byte
// vector per block. The tail is a byte-masked load, so nothing past p[n) is read.
#include <immintrin.h>

#include "simd/kernels_impl.hpp"

namespace roomcast::simd {

namespace {

constexpr std::size_t block_bytes = 64;

struct Avx512Checker {
    __m512i prev1_high, prev1_low, cur_high;  // the three tables, in all four 128-bit lanes
    __m512i prev;                             // the block before the current one (zero = ASCII)
    __m512i incomplete;
    __m512i error;
};

__attribute__((target("avx512f,avx512bw"))) inline __m512i table(
    const std::array<std::uint8_t, 16>& t) noexcept {
    // The maskz forms (all lanes on) sidestep a GCC 12 false -Wmaybe-uninitialized in the unmasked ones.
    return _mm512_maskz_broadcast_i32x4(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(t.data())));
}

// The byte N before each byte of `cur`, the first N coming from the end of `prev`. vpalignr works within
// 128-bit lanes, so first build "each lane's preceding lane" with valignd (AVX512F; vpermb would need VBMI).
template <int N>
__attribute__((target("avx512f,avx512bw"))) inline __m512i before(__m512i cur, __m512i prev) noexcept {
    const __m512i lane_before = _mm512_maskz_alignr_epi32(0xFFFF, cur, prev, 12);
    return _mm512_alignr_epi8(cur, lane_before, 16 - N);
}

__attribute__((target("avx512f,avx512bw"))) inline __m512i high_nibbles(__m512i v) noexcept {
    return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F));
}

__attribute__((target("avx512f,avx512bw"))) inline __m512i errors(const Avx512Checker& c, __m512i cur,
                                                                  __m512i prev) noexcept {
    const __m512i prev1 = before<1>(cur, prev);
    const __m512i special = _mm512_and_si512(
        _mm512_and_si512(_mm512_shuffle_epi8(c.prev1_high, high_nibbles(prev1)),
                         _mm512_shuffle_epi8(c.prev1_low, _mm512_and_si512(prev1, _mm512_set1_epi8(0x0F)))),
        _mm512_shuffle_epi8(c.cur_high, high_nibbles(cur)));
    // Top bit set where a 3-byte lead (E0-FF) is 2 back or a 4-byte lead (F0-FF) is 3 back.
    const __m512i third = _mm512_subs_epu8(before<2>(cur, prev), _mm512_set1_epi8(0xE0 - 0x80));
    const __m512i fourth = _mm512_subs_epu8(before<3>(cur, prev), _mm512_set1_epi8(0xF0 - 0x80));
    const __m512i must23 = _mm512_and_si512(_mm512_or_si512(third, fourth), _mm512_set1_epi8(char(0x80)));
    return _mm512_xor_si512(must23, special);
}

__attribute__((target("avx512f,avx512bw"))) inline __m512i incomplete_at_end(__m512i v) noexcept {
    using namespace utf8_lookup;
    // Only the last three lanes can need bytes from the next block.
    const __m512i limit =
        _mm512_mask_blend_epi8(std::uint64_t{7} << 61, _mm512_set1_epi8(-1),
                               _mm512_set4_epi32(static_cast<int>(std::uint32_t{incomplete_1} << 24 |
                                                                  std::uint32_t{incomplete_2} << 16 |
                                                                  std::uint32_t{incomplete_3} << 8),
                                                 0, 0, 0));
    return _mm512_subs_epu8(v, limit);
}

}  // namespace

__attribute__((target("avx512f,avx512bw"))) std::uint32_t utf8_avx512(const std::byte* p, std::size_t n,
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
    Avx512Checker c{table(utf8_lookup::prev1_high), table(utf8_lookup::prev1_low),
                    table(utf8_lookup::cur_high),   _mm512_setzero_si512(),
                    _mm512_setzero_si512(),         _mm512_setzero_si512()};
    while (n - i >= block_bytes) {
        const __m512i v = _mm512_loadu_si512(p + i);
        if (_mm512_movepi8_mask(v) != 0) {
            c.error = _mm512_or_si512(c.error, errors(c, v, c.prev));
            c.incomplete = incomplete_at_end(v);
            c.prev = v;
            i += block_bytes;
            if (_mm512_test_epi8_mask(c.error, c.error) != 0) return utf8_reject;  // fail fast
            continue;
        }
        // All ASCII: valid unless the previous block ended inside a character. Then skip ASCII two
        // blocks per test (measured with bench/micro/utf8_bench, 64 KiB ASCII: 45 -> 160 GB/s on EPYC).
        if (_mm512_test_epi8_mask(c.incomplete, c.incomplete) != 0) return utf8_reject;
        c.incomplete = _mm512_setzero_si512();
        c.prev = v;
        i += block_bytes;
        while (n - i >= 2 * block_bytes) {
            const __m512i a = _mm512_loadu_si512(p + i);
            const __m512i b = _mm512_loadu_si512(p + i + block_bytes);
            if (_mm512_movepi8_mask(_mm512_or_si512(a, b)) != 0) break;
            c.prev = b;
            i += 2 * block_bytes;
        }
    }
    if (i < n) {
        // The last r < 64 bytes, zero-filled. Errors at or after lane r are what the padding causes (a
        // character cut short by the end of the data), and an unfinished character is not an error yet.
        const __mmask64 present = (std::uint64_t{1} << (n - i)) - 1;
        const __m512i v = _mm512_maskz_loadu_epi8(present, p + i);
        const __m512i e = errors(c, v, c.prev);
        if (_mm512_mask_test_epi8_mask(present, e, e) != 0) return utf8_reject;
    }
    return final_state(p, n, boundary);
}

}  // namespace roomcast::simd
