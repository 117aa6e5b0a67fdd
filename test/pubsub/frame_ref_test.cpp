#include "pubsub/frame_ref.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

namespace roomcast::pubsub {
namespace {

std::vector<std::byte> pattern(std::size_t n) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = std::byte(i * 7 + 3);
    return v;
}

void expect_frame(const FrameRef& f, ws::Opcode op, std::span<const std::byte> payload, std::uint8_t rsv) {
    ws::FrameHeader h;
    ws::Error e = ws::Error::none;
    ASSERT_EQ(ws::decode_header(f.wire().data(), f.wire().size(), h, e), ws::DecodeStatus::done);
    EXPECT_TRUE(h.fin);
    EXPECT_FALSE(h.masked);  // server frames are never masked (RFC 6455 §5.1)
    EXPECT_EQ(h.opcode, op);
    EXPECT_EQ(h.rsv, rsv);
    EXPECT_EQ(h.payload_len, payload.size());
    EXPECT_EQ(h.header_len, f.header_len());
    EXPECT_EQ(f.wire().size(), h.header_len + payload.size());
    ASSERT_EQ(f.payload().size(), payload.size());
    if (!payload.empty()) {
        EXPECT_EQ(std::memcmp(f.payload().data(), payload.data(), payload.size()), 0);
    }
}

TEST(FrameRef, BuildsHeaderAndPayloadForEveryLengthClass) {
    for (std::size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 100000u}) {
        const auto p = pattern(n);
        FrameRef* f = FrameRef::make(ws::Opcode::binary, p, 0, 42, "room-1");
        ASSERT_NE(f, nullptr);
        expect_frame(*f, ws::Opcode::binary, p, 0);
        EXPECT_EQ(f->seq(), 42u);
        EXPECT_EQ(f->tag(), "room-1");
        EXPECT_EQ(f->opcode(), ws::Opcode::binary);
        EXPECT_EQ(f->format(), Format::raw);
        EXPECT_EQ(f->ref_count(), 1u);
        f->release();
    }
}

TEST(FrameRef, CarriesRsvBits) {  // RSV1 for permessage-deflate (RFC 7692 §6)
    const auto p = pattern(10);
    FrameRef* f = FrameRef::make(ws::Opcode::text, p, 0x4, 1);
    ASSERT_NE(f, nullptr);
    expect_frame(*f, ws::Opcode::text, p, 0x4);
    f->release();
}

TEST(FrameRef, ConcatenatesPartsWithoutIntermediateCopy) {
    const std::string a = "{\"room\":\"x\",\"seq\":1,\"data\":", b = "[1,2]", c = "}";
    const std::span<const std::byte> parts[] = {std::as_bytes(std::span(a)), std::as_bytes(std::span(b)),
                                                std::span<const std::byte>(), std::as_bytes(std::span(c))};
    FrameRef* f = FrameRef::make_from_parts(ws::Opcode::text, parts, 0, 1, "x", Format::envelope);
    ASSERT_NE(f, nullptr);
    const std::string whole = a + b + c;
    expect_frame(*f, ws::Opcode::text, std::as_bytes(std::span(whole)), 0);
    EXPECT_EQ(f->format(), Format::envelope);
    f->release();
}

TEST(FrameRef, MakeWithWritesPayloadInPlace) {
    FrameRef* f = FrameRef::make_with(ws::Opcode::text, 300, 0, 9, "r", Format::envelope,
                                      [](std::byte* p) { std::memset(p, 'z', 300); });
    ASSERT_NE(f, nullptr);
    const std::string want(300, 'z');
    expect_frame(*f, ws::Opcode::text, std::as_bytes(std::span(want)), 0);
    EXPECT_EQ(f->header_len(), 4u);
    f->release();
}

TEST(FrameRef, RejectsImpossibleSizes) {
    EXPECT_EQ(FrameRef::make_with(ws::Opcode::binary, SIZE_MAX - 8, 0, 0, {}, Format::raw, [](std::byte*) {}),
              nullptr);
}

TEST(FrameRef, CarriesATagAndANoteAfterTheWireBytes) {
    const auto p = pattern(300);
    FrameRef* f = FrameRef::make(ws::Opcode::binary, p, 0, 0, "room", Format::raw, "\"req-7\"");
    ASSERT_NE(f, nullptr);
    expect_frame(*f, ws::Opcode::binary, p, 0);
    EXPECT_EQ(f->tag(), "room");
    EXPECT_EQ(f->note(), "\"req-7\"");
    EXPECT_EQ(f->alloc_bytes(), sizeof(FrameRef) + f->wire().size() + 4 + 7);  // the block make() allocated
    f->release();
    f = FrameRef::make(ws::Opcode::text, p);
    EXPECT_EQ(f->note(), "");
    EXPECT_EQ(f->alloc_bytes(), sizeof(FrameRef) + f->wire().size());
    f->release();
    const std::string too_long(FrameRef::max_note_bytes + 1, 'x');
    EXPECT_EQ(FrameRef::make(ws::Opcode::text, p, 0, 0, "r", Format::raw, too_long), nullptr);
}

TEST(FrameRef, CountsReferencesInBulk) {
    FrameRef* f = FrameRef::make(ws::Opcode::text, pattern(5), 0, 1);
    ASSERT_NE(f, nullptr);
    f->add_ref(3);  // e.g. three reactors
    EXPECT_EQ(f->ref_count(), 4u);
    f->release(2);
    EXPECT_EQ(f->ref_count(), 2u);
    f->add_ref();
    f->release(3);  // last: freed (ASan reports a leak or double free otherwise)
}

TEST(FrameRef, SetSeqBeforeSharing) {
    FrameRef* f = FrameRef::make(ws::Opcode::text, pattern(5));
    f->set_seq(77);
    EXPECT_EQ(f->seq(), 77u);
    f->release();
}

// Many threads hold references to the same frames and release them concurrently while reading the
// bytes; exactly one release frees each block. ASan catches a double free or a leak, TSan a read that
// races with the free (that is what acq_rel on release prevents).
TEST(FrameRef, ConcurrentReleaseFreesExactlyOnce) {
    constexpr int threads = 4;
    constexpr int frames = 20000;
    std::vector<FrameRef*> fs(frames);
    const auto p = pattern(64);
    for (auto& f : fs) {
        f = FrameRef::make(ws::Opcode::binary, p, 0, 1);
        ASSERT_NE(f, nullptr);
        f->add_ref(threads - 1);
    }
    std::atomic<int> go{0};
    std::atomic<std::uint64_t> checksum{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            go.fetch_add(1);
            while (go.load() < threads) {
            }
            std::uint64_t sum = 0;
            for (int i = 0; i < frames; ++i) {
                FrameRef* f = fs[(i + t * 977) % frames];  // different orders per thread
                for (std::byte b : f->wire()) sum += std::to_integer<unsigned>(b);
                f->release();
            }
            checksum.fetch_add(sum);
        });
    }
    for (auto& t : ts) t.join();
    std::uint64_t one = 0;
    FrameRef* ref = FrameRef::make(ws::Opcode::binary, p, 0, 1);
    for (std::byte b : ref->wire()) one += std::to_integer<unsigned>(b);
    ref->release();
    EXPECT_EQ(checksum.load(), one * frames * threads);
}

// The reactor pattern: the owner takes one reference per interested reactor in one operation, each
// reactor counts its own subscribers with a plain integer and releases its single reference.
TEST(FrameRef, OneAtomicPerReactorPerMessage) {
    constexpr int reactors = 3;
    FrameRef* f = FrameRef::make(ws::Opcode::text, pattern(20), 0, 5);
    f->add_ref(reactors - 1);
    std::vector<std::thread> ts;
    for (int r = 0; r < reactors; ++r) {
        ts.emplace_back([f] {
            int local_holders = 1000;  // subscribers still writing it: a plain counter
            while (local_holders) --local_holders;
            f->release();
        });
    }
    for (auto& t : ts) t.join();
}

}  // namespace
}  // namespace roomcast::pubsub
