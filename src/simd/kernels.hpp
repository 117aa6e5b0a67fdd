// SIMD kernel dispatch: frame unmasking and UTF-8 validation.
// kernels() is chosen once at start-up (select_kernels), read-only afterwards, safe from any thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace roomcast::simd {

// The 4 masking-key bytes exactly as they appear on the wire, loaded with memcpy (so on little-endian
// byte 0 of the key is the low byte of the word).
using MaskKey = std::uint32_t;

// Unmasks p[0..n) in place (XOR with the key). `phase` (0-3) is the key byte that applies to p[0];
// returns the phase for the byte after p[n-1], so a payload split across reads continues where it stopped.
// Reads and writes only p[0..n): no over-read.
using UnmaskFn = std::uint32_t (*)(std::byte* p, std::size_t n, MaskKey key, std::uint32_t phase) noexcept;

// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
// `state` is utf8_accept at the start of a message; the return value is the state after p[0..n).
// utf8_reject is returned as soon as an invalid byte (or an impossible prefix such as ED A0 or F4 90)
// is seen: fail fast. A complete message is valid iff the final state is utf8_accept.
// Reads only p[0..n).
using Utf8Fn = std::uint32_t (*)(const std::byte* p, std::size_t n, std::uint32_t state) noexcept;
inline constexpr std::uint32_t utf8_accept = 0;
inline constexpr std::uint32_t utf8_reject = 1;

struct Kernels {
    const char* name;  // "scalar", "sse2", "avx2", "avx512"
    UnmaskFn unmask;
    Utf8Fn validate_utf8;
};

// Reference implementations (the test oracles).
std::uint32_t unmask_scalar(std::byte* p, std::size_t n, MaskKey key, std::uint32_t phase) noexcept;
std::uint32_t utf8_scalar(const std::byte* p, std::size_t n, std::uint32_t state) noexcept;

// The kernel set in use. Before select_kernels() it is the best one the CPU supports.
const Kernels& kernels() noexcept;
// Every kernel set this CPU can run, scalar first.
std::span<const Kernels* const> supported_kernels() noexcept;
// Chooses by name ("auto", "scalar", "sse2", "avx2", "avx512"); false if unknown or unsupported here.
// Call once at start-up before any reactor starts.
bool select_kernels(std::string_view name) noexcept;

// Convenience wrappers through the chosen kernel.
inline std::uint32_t unmask(std::byte* p, std::size_t n, MaskKey key, std::uint32_t phase) noexcept {
    return kernels().unmask(p, n, key, phase);
}
inline std::uint32_t validate_utf8(const std::byte* p, std::size_t n, std::uint32_t state) noexcept {
    return kernels().validate_utf8(p, n, state);
}

}  // namespace roomcast::simd
