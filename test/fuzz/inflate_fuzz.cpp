// permessage-deflate inflater (issue 7): output never passes the message limit (and the buffer never grows
// far past it); inflating whole or in input-chosen chunks gives exactly the same verdict and bytes; that
// verdict is the strict one (every back-reference inside the agreed window, RFC 7692 §7.1.2.2), as plain
// zlib gives it when it meets each back-reference first thing in an inflate() call; and whatever the
// Deflater makes inflates back to the input.
// Input: [window/level byte][limit u32][chunk-count byte][chunk sizes][deflate data / payload].
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "ws/deflate.hpp"

using namespace roomcast;

namespace {

ws::InflateResult inflate_chunked(int wbits, std::span<const std::byte> data, fuzz::ChunkPlan plan,
                                  std::size_t limit, util::ByteBuffer& out) {
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

// Output the reference produces at most; past it a too_big verdict is not conclusive (bombs would
// otherwise cost one inflate() call per byte up to the 256 KiB limit).
constexpr std::size_t reference_max_bytes = 64 * 1024;

// The strict verdict from plain zlib on one message: each inflate() call gets only as much output room as
// the history still lacks of the window, one byte once it is full, so zlib meets every back-reference first
// thing in a call and checks it against exactly the window it holds. Inflater's other rules are mirrored:
// tail appended (§7.2.2), data after a final block or an end off a block boundary is corrupt, more than
// `limit` bytes is too big.
ws::InflateResult reference(int wbits, std::span<const std::byte> data, std::size_t limit,
                            std::vector<Bytef>& out) {
    if (data.empty()) return ws::InflateResult::ok;
    const int w = std::max(wbits, ws::min_zlib_deflate_window_bits);
    const std::size_t window = std::size_t{1} << w;
    std::vector<Bytef> in(data.size() + sizeof ws::deflate_tail);
    std::memcpy(in.data(), data.data(), data.size());
    std::memcpy(in.data() + data.size(), ws::deflate_tail, sizeof ws::deflate_tail);
    z_stream s{};
    FUZZ_CHECK(inflateInit2(&s, -w) == Z_OK);
    s.next_in = in.data();
    s.avail_in = static_cast<uInt>(in.size());
    ws::InflateResult r = ws::InflateResult::ok;
    bool ended = false;
    for (;;) {
        // At window 15 zlib is exact anyway: no deflate distance exceeds 2^15.
        const std::size_t room = w == ws::max_window_bits ? window
                                 : out.size() < window    ? window - out.size()
                                                          : 1;
        const std::size_t at = out.size();
        out.resize(at + room);
        s.next_out = out.data() + at;
        s.avail_out = static_cast<uInt>(room);
        const int rc = inflate(&s, Z_SYNC_FLUSH);
        out.resize(out.size() - s.avail_out);
        if (out.size() > limit) {
            r = ws::InflateResult::too_big;
            break;
        }
        if (rc == Z_STREAM_END) {
            ended = true;
            if (in.size() - s.avail_in < data.size())
                r = ws::InflateResult::corrupt;  // data after the final block
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            r = ws::InflateResult::corrupt;
            break;
        }
        // Room left: the input is used up. Between blocks: likewise (calling again would turn zlib's TYPE
        // into TYPEDO, which data_type does not report as a block boundary).
        if (s.avail_out != 0 || (s.data_type & 128) != 0) break;
    }
    if (r == ws::InflateResult::ok && !ended && (s.data_type & 128) == 0) r = ws::InflateResult::corrupt;
    inflateEnd(&s);
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::InputReader in(data, size);
    const std::uint8_t c = in.byte();
    const int wbits = 9 + (c & 7) % 7;                      // 9..15
    const int level = 1 + ((c >> 3) % 9);                   // 1..9
    const std::size_t limit = 1 + in.u32() % (256 * 1024);  // the message limit, up to 256 KiB
    const auto sizes = in.bytes(in.byte() % 8);
    const auto rest = in.rest();
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(rest.data()), rest.size());

    util::ByteBuffer whole;
    const ws::InflateResult r1 = inflate_chunked(wbits, bytes, fuzz::ChunkPlan({}), limit, whole);
    FUZZ_CHECK(r1 != ws::InflateResult::no_memory);
    FUZZ_CHECK(whole.size() <= limit, "inflated %zu bytes past the limit %zu", whole.size(), limit);
    FUZZ_CHECK(whole.capacity() <= 2 * limit + 4096, "buffer grew to %zu for a limit of %zu",
               whole.capacity(), limit);

    // Chunking changes nothing: the same verdict, and the same bytes when ok.
    util::ByteBuffer chunked;
    const ws::InflateResult r2 = inflate_chunked(wbits, bytes, fuzz::ChunkPlan(sizes), limit, chunked);
    FUZZ_CHECK(r1 == r2, "whole %d, chunked %d (window %d)", int(r1), int(r2), wbits);
    if (r1 == ws::InflateResult::ok)
        FUZZ_CHECK(whole.size() == chunked.size() &&
                   (whole.size() == 0 || std::memcmp(whole.data(), chunked.data(), whole.size()) == 0));

    // And it is the strict verdict.
    std::vector<Bytef> exact;
    const std::size_t ref_limit = std::min(limit, reference_max_bytes);
    const ws::InflateResult r3 = reference(wbits, bytes, ref_limit, exact);
    if (!(r3 == ws::InflateResult::too_big && ref_limit < limit)) {
        FUZZ_CHECK(r1 == r3, "inflater %d, exact zlib %d (window %d)", int(r1), int(r3), wbits);
        if (r1 == ws::InflateResult::ok)
            FUZZ_CHECK(whole.size() == exact.size() &&
                       (exact.empty() || std::memcmp(whole.data(), exact.data(), exact.size()) == 0));
    }

    // Round trip: the input as a message payload, compressed by our Deflater, inflates back to itself.
    auto def = ws::Deflater::create(level, wbits);
    FUZZ_CHECK(def != nullptr);
    util::ByteBuffer packed;
    FUZZ_CHECK(def->compress(bytes, packed));
    util::ByteBuffer back;
    const std::size_t big = bytes.size() + 1;
    FUZZ_CHECK(inflate_chunked(wbits, packed.span(), fuzz::ChunkPlan(sizes), big, back) ==
               ws::InflateResult::ok);
    FUZZ_CHECK(back.size() == bytes.size() &&
                   (bytes.empty() || std::memcmp(back.data(), bytes.data(), bytes.size()) == 0),
               "round trip gave %zu bytes for %zu", back.size(), bytes.size());
    return 0;
}
