// AVX-512 (F + BW) unmasking.
//
// Heads and tails use whole vectors that overlap the aligned main loop instead of byte-masked stores:
// a masked 512-bit store costs several times a plain one on Zen 4 (measured with
// bench/micro/unmask_bench on EPYC: 64 B took 11 ns with a masked head and tail, 4 ns with overlapping
// vectors).
// XOR is not idempotent, so every overlapping vector is loaded before anything is stored; the bytes it
// shares with another store then receive the same value twice. Every access stays inside p[0..n).
#include <immintrin.h>

#include "simd/kernels_impl.hpp"

namespace roomcast::simd {

namespace {

// The key that applies from p[offset] when `k` applies from p[0].
inline std::uint32_t key_at(std::uint32_t k, std::size_t offset) noexcept {
    return std::rotr(k, static_cast<int>(8 * (offset & 3)));
}

// n < 64: two overlapping pieces of the largest size that fits, both loaded before either is stored.
// The avx512 kernel set requires AVX2 as well (cpu.cpp), and every AVX-512 CPU has it.
__attribute__((target("avx512f,avx512bw"))) inline void unmask_below_64(std::byte* p, std::size_t n,
                                                                        std::uint32_t k) noexcept {
    if (n >= 32) {
        auto* first = reinterpret_cast<__m256i*>(p);
        auto* last = reinterpret_cast<__m256i*>(p + n - 32);
        const __m256i a = _mm256_loadu_si256(first);
        const __m256i b = _mm256_loadu_si256(last);
        _mm256_storeu_si256(first, _mm256_xor_si256(a, _mm256_set1_epi32(static_cast<int>(k))));
        _mm256_storeu_si256(last,
                            _mm256_xor_si256(b, _mm256_set1_epi32(static_cast<int>(key_at(k, n - 32)))));
    } else if (n >= 16) {
        auto* first = reinterpret_cast<__m128i*>(p);
        auto* last = reinterpret_cast<__m128i*>(p + n - 16);
        const __m128i a = _mm_loadu_si128(first);
        const __m128i b = _mm_loadu_si128(last);
        _mm_storeu_si128(first, _mm_xor_si128(a, _mm_set1_epi32(static_cast<int>(k))));
        _mm_storeu_si128(last, _mm_xor_si128(b, _mm_set1_epi32(static_cast<int>(key_at(k, n - 16)))));
    } else if (n >= 8) {
        std::uint64_t a, b;
        std::memcpy(&a, p, 8);
        std::memcpy(&b, p + n - 8, 8);
        const std::uint32_t kb = key_at(k, n - 8);
        a ^= k | static_cast<std::uint64_t>(k) << 32;
        b ^= kb | static_cast<std::uint64_t>(kb) << 32;
        std::memcpy(p, &a, 8);
        std::memcpy(p + n - 8, &b, 8);
    } else {
        unmask_short(p, n, k);
    }
}

}  // namespace

__attribute__((target("avx512f,avx512bw"))) std::uint32_t unmask_avx512(std::byte* p, std::size_t n,
                                                                        MaskKey key,
                                                                        std::uint32_t phase) noexcept {
    const std::uint32_t result = (phase + n) & 3;
    const std::uint32_t k = key_for_phase(key, phase);
    if (n < 64) {
        unmask_below_64(p, n, k);
        return result;
    }
    // The first and last 64 bytes, unaligned, loaded before the main loop changes anything.
    auto* first = reinterpret_cast<__m512i*>(p);
    auto* last = reinterpret_cast<__m512i*>(p + n - 64);
    const __m512i head = _mm512_loadu_si512(first);
    const __m512i tail = _mm512_loadu_si512(last);

    // The main loop runs over the 64-byte-aligned blocks inside [p, p + n): a store that splits a cache
    // line costs two.
    const std::size_t start = -reinterpret_cast<std::uintptr_t>(p) & 63;
    const std::size_t end = start + ((n - start) & ~std::size_t{63});
    const __m512i kv = _mm512_set1_epi32(static_cast<int>(key_at(k, start)));
    std::size_t i = start;
    for (; i + 256 <= end; i += 256) {
        auto* q = reinterpret_cast<__m512i*>(p + i);
        const __m512i a = _mm512_xor_si512(_mm512_load_si512(q + 0), kv);
        const __m512i b = _mm512_xor_si512(_mm512_load_si512(q + 1), kv);
        const __m512i c = _mm512_xor_si512(_mm512_load_si512(q + 2), kv);
        const __m512i d = _mm512_xor_si512(_mm512_load_si512(q + 3), kv);
        _mm512_store_si512(q + 0, a);
        _mm512_store_si512(q + 1, b);
        _mm512_store_si512(q + 2, c);
        _mm512_store_si512(q + 3, d);
    }
    for (; i < end; i += 64) {
        auto* q = reinterpret_cast<__m512i*>(p + i);
        _mm512_store_si512(q, _mm512_xor_si512(_mm512_load_si512(q), kv));
    }
    _mm512_storeu_si512(first, _mm512_xor_si512(head, _mm512_set1_epi32(static_cast<int>(k))));
    _mm512_storeu_si512(last, _mm512_xor_si512(tail, _mm512_set1_epi32(static_cast<int>(key_at(k, n - 64)))));
    return result;
}

}  // namespace roomcast::simd
