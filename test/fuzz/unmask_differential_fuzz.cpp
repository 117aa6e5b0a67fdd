// Fuzz target: the unmask kernels (src/simd/kernels.hpp). Every kernel set this CPU supports must produce
// the bytes of RFC 6455 §5.3 (byte i XOR key byte (phase + i) % 4) and return the next phase, whole and
// when the payload arrives in chunks (phase carried across calls), at every alignment; it must touch
// nothing outside p[0..n); and unmasking twice gives the input back.
//
// Input layout:
//   byte 0   bits 0-1 start phase, bits 2-7 offset of the payload from a 64-byte-aligned address
//   byte 1-4 the masking key, in wire order
//   byte 5   the payload is the rest of the input repeated (1 + byte % 16) times (reaches the unrolled
//            256-byte loops from short inputs)
//   byte 6   k = byte % 16 chunk-size bytes follow (ChunkPlan)
//   rest     the payload
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "fuzz_check.hpp"
#include "simd/kernels.hpp"

namespace {

using namespace roomcast;
using fuzz::ChunkPlan;

constexpr std::size_t guard_bytes = 64;
constexpr std::uint8_t guard_fill = 0xA5;

// The payload inside an aligned block with guard bytes on both sides (checked afterwards: a kernel must
// not write outside p[0..n)).
struct Guarded {
    std::size_t offset, n;
    std::unique_ptr<std::uint8_t, decltype(&std::free)> mem{nullptr, &std::free};

    Guarded(const std::vector<std::uint8_t>& bytes, std::size_t off) : offset(off), n(bytes.size()) {
        const std::size_t total = (guard_bytes + off + n + guard_bytes + 63) / 64 * 64;
        mem.reset(static_cast<std::uint8_t*>(std::aligned_alloc(64, total)));
        FUZZ_CHECK(mem != nullptr);
        std::memset(mem.get(), guard_fill, total);
        if (n) std::memcpy(data(), bytes.data(), n);
        end_ = total;
    }
    std::uint8_t* data() { return mem.get() + guard_bytes + offset; }
    std::byte* bytes() { return reinterpret_cast<std::byte*>(data()); }
    void check_guards(const char* kernel) {
        for (std::size_t i = 0; i < guard_bytes + offset; ++i)
            FUZZ_CHECK(mem.get()[i] == guard_fill, "%s wrote %zu bytes before p", kernel, guard_bytes + offset - i);
        for (std::size_t i = guard_bytes + offset + n; i < end_; ++i)
            FUZZ_CHECK(mem.get()[i] == guard_fill, "%s wrote at p[%zu], n=%zu", kernel, i - guard_bytes - offset, n);
    }

private:
    std::size_t end_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::InputReader in(data, size);
    const std::uint8_t b0 = in.byte();
    const std::uint32_t phase = b0 & 3;
    const std::size_t offset = b0 >> 2;
    const auto key_bytes = in.bytes(4);
    std::uint8_t key_wire[4] = {};
    std::memcpy(key_wire, key_bytes.data(), key_bytes.size());
    simd::MaskKey key;
    std::memcpy(&key, key_wire, 4);  // as the frame decoder loads it
    const unsigned repeat = 1 + in.byte() % 16;
    const auto sizes = in.bytes(in.byte() % 16);
    const auto rest = in.rest();

    std::vector<std::uint8_t> payload;
    payload.reserve(rest.size() * repeat);
    for (unsigned r = 0; r < repeat; ++r) payload.insert(payload.end(), rest.begin(), rest.end());
    const std::size_t n = payload.size();
    std::vector<std::uint8_t> want(n);
    for (std::size_t i = 0; i < n; ++i) want[i] = payload[i] ^ key_wire[(phase + i) % 4];
    const std::uint32_t want_phase = static_cast<std::uint32_t>((phase + n) % 4);

    for (const simd::Kernels* k : simd::supported_kernels()) {
        {
            Guarded g(payload, offset);
            const std::uint32_t got = k->unmask(g.bytes(), n, key, phase);
            FUZZ_CHECK(got == want_phase, "%s: returned phase %u, want %u (n=%zu)", k->name, got, want_phase, n);
            g.check_guards(k->name);
            const auto diff = std::mismatch(want.begin(), want.end(), g.data());
            FUZZ_CHECK(diff.first == want.end(), "%s: byte %zu of %zu wrong (phase %u, offset %zu)", k->name,
                       static_cast<std::size_t>(diff.first - want.begin()), n, phase, offset);
            k->unmask(g.bytes(), n, key, phase);
            FUZZ_CHECK(n == 0 || std::memcmp(g.data(), payload.data(), n) == 0, "%s: not an involution", k->name);
            g.check_guards(k->name);
        }
        {
            Guarded g(payload, offset);
            ChunkPlan plan(sizes);
            std::uint32_t ph = phase;
            std::size_t pos = 0;
            do {
                const std::size_t len = plan.next(n - pos);
                const std::uint32_t next = k->unmask(g.bytes() + pos, len, key, ph);
                FUZZ_CHECK(next == (ph + len) % 4, "%s: chunk at %zu of %zu bytes returned phase %u", k->name, pos,
                           len, next);
                ph = next;
                pos += len;
            } while (pos < n);
            g.check_guards(k->name);
            const auto diff = std::mismatch(want.begin(), want.end(), g.data());
            FUZZ_CHECK(diff.first == want.end(), "%s: chunked, byte %zu of %zu wrong", k->name,
                       static_cast<std::size_t>(diff.first - want.begin()), n);
        }
    }
    return 0;
}
