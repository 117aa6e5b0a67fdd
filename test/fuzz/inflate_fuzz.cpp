// permessage-deflate inflater (issue 7): output never passes the message limit (and the buffer never grows
// far past it), inflating whole or in input-chosen chunks gives the same result, and whatever the Deflater
// makes inflates back to the input.
// Input: [window/level byte][limit u32][chunk-count byte][chunk sizes][deflate data / payload].
#include "ws/deflate.hpp"

#include <cstring>

#include "fuzz_check.hpp"

using namespace roomcast;

namespace {

ws::InflateResult inflate_chunked(int wbits, std::span<const std::byte> data, fuzz::ChunkPlan plan, std::size_t limit,
                                  util::ByteBuffer& out) {
    auto inf = ws::Inflater::create(wbits);
    FUZZ_CHECK(inf != nullptr);
    std::size_t off = 0;
    for (;;) {
        const std::size_t n = plan.next(data.size() - off);
        const bool last = off + n == data.size();
        const ws::InflateResult r = inf->inflate(data.subspan(off, n), last, out, limit);
        off += n;
        if (r != ws::InflateResult::ok || last) return r;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::InputReader in(data, size);
    const std::uint8_t c = in.byte();
    const int wbits = 9 + (c & 7) % 7;                     // 9..15
    const int level = 1 + ((c >> 3) % 9);                  // 1..9
    const std::size_t limit = 1 + in.u32() % (256 * 1024);  // the message limit, up to 256 KiB
    const auto sizes = in.bytes(in.byte() % 8);
    const auto rest = in.rest();
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(rest.data()), rest.size());

    util::ByteBuffer whole;
    const ws::InflateResult r1 = inflate_chunked(wbits, bytes, fuzz::ChunkPlan({}), limit, whole);
    FUZZ_CHECK(r1 != ws::InflateResult::no_memory);
    FUZZ_CHECK(whole.size() <= limit, "inflated %zu bytes past the limit %zu", whole.size(), limit);
    FUZZ_CHECK(whole.capacity() <= 2 * limit + 4096, "buffer grew to %zu for a limit of %zu", whole.capacity(), limit);

    util::ByteBuffer chunked;
    const ws::InflateResult r2 = inflate_chunked(wbits, bytes, fuzz::ChunkPlan(sizes), limit, chunked);
    FUZZ_CHECK(r1 == r2, "whole %d, chunked %d", int(r1), int(r2));
    if (r1 == ws::InflateResult::ok)
        FUZZ_CHECK(whole.size() == chunked.size() && (whole.size() == 0 || std::memcmp(whole.data(), chunked.data(), whole.size()) == 0));

    // Round trip: the input as a message payload, compressed by our Deflater, inflates back to itself.
    auto def = ws::Deflater::create(level, wbits);
    FUZZ_CHECK(def != nullptr);
    util::ByteBuffer packed;
    FUZZ_CHECK(def->compress(bytes, packed));
    util::ByteBuffer back;
    const std::size_t big = bytes.size() + 1;
    FUZZ_CHECK(inflate_chunked(wbits, packed.span(), fuzz::ChunkPlan(sizes), big, back) == ws::InflateResult::ok);
    FUZZ_CHECK(back.size() == bytes.size() && (bytes.empty() || std::memcmp(back.data(), bytes.data(), bytes.size()) == 0),
               "round trip gave %zu bytes for %zu", back.size(), bytes.size());
    return 0;
}
