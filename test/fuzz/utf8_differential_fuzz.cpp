// Fuzz target: the UTF-8 kernels (src/simd/kernels.hpp). Every kernel set this CPU supports must return
// exactly utf8_scalar's state, whole and when the bytes arrive in chunks (state carried across calls),
// from any start state; and utf8_scalar itself must agree with a plain RFC 3629 §4 decoder written here.
//
// Input layout:
//   byte 0   start state (byte % 9: accept or one of the partial-character states; reject is absorbing)
//   byte 1   bits 0-5: offset of the data from a 64-byte-aligned address (every SIMD alignment)
//   byte 2   ASCII bytes placed before the data when starting from accept: moves the interesting bytes
//            across the 16/32/64-byte block boundaries of the vector kernels
//   byte 3   k = byte % 16 chunk-size bytes follow (ChunkPlan)
//   rest     the bytes to validate
// The data ends exactly where its heap allocation ends, so a kernel reading past p[n) is an ASan error.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "fuzz_check.hpp"
#include "simd/kernels.hpp"

namespace {

using namespace roomcast;
using fuzz::ChunkPlan;

constexpr std::uint32_t state_count = 9;  // kernels_impl.hpp utf8_dfa: accept, reject and 7 partial states

enum class Verdict { valid, incomplete, invalid };

// RFC 3629 §4, character by character: the range of the second byte depends on the lead; the others are
// 80-BF. A character cut off by the end of the data is `incomplete`, not invalid.
Verdict reference(const std::uint8_t* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        const std::uint8_t b = p[i];
        std::size_t len;
        std::uint8_t lo = 0x80, hi = 0xBF;
        if (b <= 0x7F) {
            ++i;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            len = 3;
            if (b == 0xE0) lo = 0xA0;  // overlong below U+0800
            if (b == 0xED) hi = 0x9F;  // surrogates U+D800-DFFF
        } else if (b >= 0xF0 && b <= 0xF4) {
            len = 4;
            if (b == 0xF0) lo = 0x90;  // overlong below U+10000
            if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
        } else {
            return Verdict::invalid;  // 80-BF without a lead, C0/C1, F5-FF
        }
        for (std::size_t j = 1; j < len; ++j) {
            if (i + j == n) return Verdict::incomplete;
            const std::uint8_t c = p[i + j];
            if (j == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return Verdict::invalid;
        }
        i += len;
    }
    return Verdict::valid;
}

Verdict verdict_of(std::uint32_t state) {
    if (state == simd::utf8_accept) return Verdict::valid;
    return state == simd::utf8_reject ? Verdict::invalid : Verdict::incomplete;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::InputReader in(data, size);
    const std::uint32_t start = in.byte() % state_count;
    const std::size_t offset = in.byte() & 63;
    const std::size_t pad = start == simd::utf8_accept ? in.byte() : (in.byte(), 0);
    const auto sizes = in.bytes(in.byte() % 16);
    const auto text = in.rest();
    const std::size_t n = pad + text.size();

    // [offset bytes][pad ASCII][text], ending at the end of the allocation; the start 64-byte aligned.
    const std::size_t alloc = (offset + n + 63) / 64 * 64;
    std::unique_ptr<std::uint8_t, decltype(&std::free)> mem(
        static_cast<std::uint8_t*>(std::aligned_alloc(64, alloc ? alloc : 64)), &std::free);
    FUZZ_CHECK(mem != nullptr);
    // A tail copy so the data ends exactly at the end of an exact-size block ASan can see.
    std::unique_ptr<std::uint8_t[]> exact(new std::uint8_t[offset + n ? offset + n : 1]);
    std::memset(exact.get(), 'x', offset + pad);
    if (!text.empty()) std::memcpy(exact.get() + offset + pad, text.data(), text.size());
    const auto* p = reinterpret_cast<const std::byte*>(exact.get() + offset);
    // The aligned copy exercises every alignment; the exact one catches over-reads.
    std::memcpy(mem.get(), exact.get(), offset + n);
    const auto* aligned_p = reinterpret_cast<const std::byte*>(mem.get() + offset);

    const std::uint32_t want = simd::utf8_scalar(p, n, start);
    FUZZ_CHECK(want < state_count, "utf8_scalar returned state %u", want);
    if (start == simd::utf8_accept) {
        const Verdict ref = reference(exact.get() + offset, n);
        FUZZ_CHECK(verdict_of(want) == ref, "utf8_scalar state %u, RFC 3629 reference verdict %d", want, int(ref));
    }

    for (const simd::Kernels* k : simd::supported_kernels()) {
        const std::uint32_t whole = k->validate_utf8(p, n, start);
        FUZZ_CHECK(whole == want, "%s: state %u, scalar %u (n=%zu start=%u)", k->name, whole, want, n, start);
        FUZZ_CHECK(k->validate_utf8(aligned_p, n, start) == want, "%s: differs at alignment %zu", k->name, offset);

        // Chunked, comparing the carried state with scalar's at every boundary.
        ChunkPlan plan(sizes);
        std::uint32_t s = start, ref_s = start;
        std::size_t pos = 0;
        do {
            const std::size_t len = plan.next(n - pos);
            s = k->validate_utf8(p + pos, len, s);
            ref_s = simd::utf8_scalar(p + pos, len, ref_s);
            pos += len;
            FUZZ_CHECK(s == ref_s, "%s: state %u after %zu bytes in chunks, scalar %u", k->name, s, pos, ref_s);
        } while (pos < n);
        FUZZ_CHECK(s == want, "%s: chunked state %u, whole %u", k->name, s, want);
    }
    return 0;
}
