// Internal to src/simd: the per-ISA kernels and the helpers they share.
//
// The helpers below are plain inline functions with no target attribute, so every out-of-line copy the
// linker may pick is baseline x86-64 code. They are only *inlined* into the target("avx2") etc. kernels,
// which is how a wider ISA stays inside the functions that are dispatched to (STYLE.md §7).
#pragma once
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "simd/kernels.hpp"

namespace roomcast::simd {

std::uint32_t unmask_sse2(std::byte* p, std::size_t n, MaskKey key, std::uint32_t phase) noexcept;
std::uint32_t unmask_avx2(std::byte* p, std::size_t n, MaskKey key, std::uint32_t phase) noexcept;
std::uint32_t unmask_avx512(std::byte* p, std::size_t n, MaskKey key, std::uint32_t phase) noexcept;

std::uint32_t utf8_sse2(const std::byte* p, std::size_t n, std::uint32_t state) noexcept;
std::uint32_t utf8_avx2(const std::byte* p, std::size_t n, std::uint32_t state) noexcept;
std::uint32_t utf8_avx512(const std::byte* p, std::size_t n, std::uint32_t state) noexcept;

// ---- unmasking -------------------------------------------------------------------------------------

// The key as it applies from p[0]: byte `phase` of the wire key first. Little-endian, so that is a
// rotate right by whole bytes; the result repeats every 4 bytes from p[0] on.
inline std::uint32_t key_for_phase(MaskKey key, std::uint32_t phase) noexcept {
    return std::rotr(key, static_cast<int>(8 * (phase & 3)));
}

// Unmasks fewer than a vector's worth of bytes: 8, then 4, then 1 at a time. `k` is key_for_phase()
// for p[0]. Touches only p[0..n).
inline void unmask_short(std::byte* p, std::size_t n, std::uint32_t k) noexcept {
    const std::uint64_t k64 = k | (static_cast<std::uint64_t>(k) << 32);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        w ^= k64;
        std::memcpy(p + i, &w, 8);
    }
    if (i + 4 <= n) {
        std::uint32_t w;
        std::memcpy(&w, p + i, 4);
        w ^= k;
        std::memcpy(p + i, &w, 4);
        i += 4;
    }
    // i is a multiple of 4 here, so the key byte for p[i + j] is byte j of k.
    for (std::size_t j = 0; i < n; ++i, ++j) p[i] ^= static_cast<std::byte>(k >> (8 * j));
}

// ---- UTF-8 DFA ---------------------------------------------------------------------------------------
//
// RFC 3629 §4 as a 9-state automaton over 12 byte classes. It is run "shift style": for each input byte
// one 64-bit row holds the next state of every current state in a 6-bit field, and the internal state
// is the bit offset of its field (state number * 6). The loop-carried work per byte is one shift and
// one AND, about 2 cycles, against a load-use chain of ~5 cycles for a 2-D table lookup.
//
// Public state = internal / 6, so accept = 0 and reject = 1 as kernels.hpp promises; the other values
// (2..8) are the same for every kernel because they all use this automaton for partial characters.
namespace utf8_dfa {

enum State : std::uint32_t {
    accept = 0,
    reject = 1,
    need1 = 2,     // one more continuation byte, any 80-BF
    need2 = 3,     // two more, any
    need3 = 4,     // three more, any
    after_e0 = 5,  // E0: next must be A0-BF (shorter forms are overlong)
    after_ed = 6,  // ED: next must be 80-9F (A0-BF would encode a surrogate)
    after_f0 = 7,  // F0: next must be 90-BF (overlong otherwise)
    after_f4 = 8,  // F4: next must be 80-8F (above U+10FFFF otherwise)
    state_count = 9,
};
static_assert(accept == utf8_accept && reject == utf8_reject);

inline constexpr unsigned field_bits = 6;
static_assert(state_count * field_bits <= 64);

constexpr State next_state(State s, std::uint8_t b) noexcept {
    const bool cont = b >= 0x80 && b <= 0xBF;
    switch (s) {
        case accept:
            if (b <= 0x7F) return accept;
            if (b >= 0xC2 && b <= 0xDF) return need1;
            if (b == 0xE0) return after_e0;
            if (b == 0xED) return after_ed;
            if (b >= 0xE1 && b <= 0xEF) return need2;
            if (b == 0xF0) return after_f0;
            if (b >= 0xF1 && b <= 0xF3) return need3;
            if (b == 0xF4) return after_f4;
            return reject;  // continuation without a lead, C0/C1 (always overlong), F5-FF
        case need1:
            return cont ? accept : reject;
        case need2:
            return cont ? need1 : reject;
        case need3:
            return cont ? need2 : reject;
        case after_e0:
            return b >= 0xA0 && b <= 0xBF ? need1 : reject;
        case after_ed:
            return b >= 0x80 && b <= 0x9F ? need1 : reject;
        case after_f0:
            return b >= 0x90 && b <= 0xBF ? need2 : reject;
        case after_f4:
            return b >= 0x80 && b <= 0x8F ? need2 : reject;
        default:
            return reject;  // reject is absorbing
    }
}

constexpr std::array<std::uint64_t, 256> make_rows() noexcept {
    std::array<std::uint64_t, 256> rows{};
    for (unsigned b = 0; b < 256; ++b)
        for (unsigned s = 0; s < state_count; ++s) {
            const auto next = next_state(static_cast<State>(s), static_cast<std::uint8_t>(b));
            rows[b] |= static_cast<std::uint64_t>(next * field_bits) << (s * field_bits);
        }
    return rows;
}
inline constexpr std::array<std::uint64_t, 256> rows = make_rows();

inline constexpr std::uint32_t internal_accept = accept * field_bits;
inline constexpr std::uint32_t internal_reject = reject * field_bits;

// A public state from a caller; anything out of range is treated as reject rather than trusted.
inline std::uint32_t to_internal(std::uint32_t state) noexcept {
    return state < state_count ? state * field_bits : internal_reject;
}
inline std::uint32_t to_public(std::uint32_t internal) noexcept { return internal / field_bits; }

inline std::uint32_t step(std::uint32_t internal, std::byte b) noexcept {
    return (rows[static_cast<std::uint8_t>(b)] >> internal) & 63;
}

// Runs p[0..n) from an internal state; stops at the first byte that rejects.
inline std::uint32_t run(const std::byte* p, std::size_t n, std::uint32_t internal) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        internal = step(internal, p[i]);
        if (internal == internal_reject) break;
    }
    return internal;
}

// For the block validators: once p[0..n) is known to hold no error, the final state depends only on the
// last, possibly incomplete, character. It starts at the last lead byte (C0-FF) among the final 3 bytes,
// if any (a character is at most 4 bytes, so an incomplete one has at most 3). `boundary` is where the
// block validation started, at a character boundary; never look before it.
inline std::uint32_t final_state(const std::byte* p, std::size_t n, std::size_t boundary) noexcept {
    const std::size_t lowest = n - boundary > 3 ? n - 3 : boundary;
    for (std::size_t k = n; k > lowest;) {
        --k;
        const auto b = static_cast<std::uint8_t>(p[k]);
        if (b >= 0xC0) return to_public(run(p + k, n - k, internal_accept));
        if (b < 0x80) break;  // ASCII: the data ends on a character boundary
    }
    return utf8_accept;
}

}  // namespace utf8_dfa

// ---- UTF-8 block validation (Keiser & Lemire, "Validating UTF-8 in less than one instruction per
// byte", 2021) ---------------------------------------------------------------------------------------
//
// Every error is visible in a pair of adjacent bytes (prev1, cur) plus, for the third and fourth bytes of
// a character, the bytes 2 and 3 back. Three 16-entry tables, indexed by the high nibble of prev1, the
// low nibble of prev1 and the high nibble of cur, each give the set of error kinds that nibble is
// compatible with; an error is present where all three agree. A continuation after a continuation is
// only allowed where a 3/4-byte lead sits 2 or 3 bytes back ("must23"); that case is bit 7 (two_conts)
// and is XORed with must23. Errors are attributed to the later byte of the pair, so an error found at
// position i involves only bytes <= i: exactly what fail-fast needs.
namespace utf8_lookup {

inline constexpr std::uint8_t too_short = 1 << 0;       // lead then non-continuation (or end of a lead)
inline constexpr std::uint8_t too_long = 1 << 1;        // ASCII then continuation
inline constexpr std::uint8_t overlong_3 = 1 << 2;      // E0 80-9F
inline constexpr std::uint8_t too_large = 1 << 3;       // F4 90-BF, F5-FF 90-BF
inline constexpr std::uint8_t surrogate = 1 << 4;       // ED A0-BF
inline constexpr std::uint8_t overlong_2 = 1 << 5;      // C0-C1 80-BF
inline constexpr std::uint8_t too_large_1000 = 1 << 6;  // F5-FF 80-8F
inline constexpr std::uint8_t overlong_4 = 1 << 6;      // F0 80-8F (told apart from the above by low nibble)
inline constexpr std::uint8_t two_conts = 1 << 7;       // continuation then continuation
inline constexpr std::uint8_t carry = too_short | too_long | two_conts;  // decided by the high nibbles

inline constexpr std::array<std::uint8_t, 16> prev1_high = {
    too_long,
    too_long,
    too_long,
    too_long,
    too_long,
    too_long,
    too_long,
    too_long,  // 0-7: ASCII
    two_conts,
    two_conts,
    two_conts,
    two_conts,                                            // 8-B: continuation
    too_short | overlong_2,                               // C
    too_short,                                            // D
    too_short | overlong_3 | surrogate,                   // E
    too_short | too_large | too_large_1000 | overlong_4,  // F
};
inline constexpr std::array<std::uint8_t, 16> prev1_low = {
    carry | overlong_3 | overlong_2 | overlong_4,  // x0: C0 E0 F0
    carry | overlong_2,                            // x1: C1
    carry,
    carry,                               // x2, x3
    carry | too_large,                   // x4: F4
    carry | too_large | too_large_1000,  // x5 .. xC: F5-FC
    carry | too_large | too_large_1000,
    carry | too_large | too_large_1000,
    carry | too_large | too_large_1000,
    carry | too_large | too_large_1000,
    carry | too_large | too_large_1000,
    carry | too_large | too_large_1000,
    carry | too_large | too_large_1000,
    carry | too_large | too_large_1000 | surrogate,  // xD: ED, FD
    carry | too_large | too_large_1000,              // xE, xF
    carry | too_large | too_large_1000,
};
inline constexpr std::array<std::uint8_t, 16> cur_high = {
    too_short,
    too_short,
    too_short,
    too_short,
    too_short,
    too_short,
    too_short,
    too_short,                                                                     // 0-7
    too_long | overlong_2 | two_conts | overlong_3 | too_large_1000 | overlong_4,  // 8
    too_long | overlong_2 | two_conts | overlong_3 | too_large,                    // 9
    too_long | overlong_2 | two_conts | surrogate | too_large,                     // A
    too_long | overlong_2 | two_conts | surrogate | too_large,                     // B
    too_short,
    too_short,
    too_short,
    too_short,  // C-F
};

// Subtracting these (saturating) from the last 3 bytes of a block leaves a non-zero byte iff a
// character started there still needs bytes from the next block.
inline constexpr std::uint8_t incomplete_3 = 0xF0 - 1;  // 3rd-to-last: a 4-byte lead
inline constexpr std::uint8_t incomplete_2 = 0xE0 - 1;  // 2nd-to-last: a 3- or 4-byte lead
inline constexpr std::uint8_t incomplete_1 = 0xC0 - 1;  // last: any lead

}  // namespace utf8_lookup

}  // namespace roomcast::simd
