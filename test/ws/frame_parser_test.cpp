#include "ws/frame_parser.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace roomcast::ws {
namespace {

using Bytes = std::vector<std::byte>;


// A client frame: masked unless told otherwise, any opcode/RSV/FIN, forced length encoding optional.
Bytes frame(int opcode, std::string_view payload, bool fin = true, int rsv = 0, bool masked = true) {
    Bytes out;
    out.push_back(std::byte((fin ? 0x80 : 0) | (rsv << 4) | opcode));
    const std::uint64_t n = payload.size();
    const int m = masked ? 0x80 : 0;
    if (n < 126) {
        out.push_back(std::byte(m | n));
    } else if (n <= 0xFFFF) {
        out.push_back(std::byte(m | 126));
        out.push_back(std::byte(n >> 8));
        out.push_back(std::byte(n & 0xFF));
    } else {
        out.push_back(std::byte(m | 127));
        for (int i = 7; i >= 0; --i) out.push_back(std::byte((n >> (8 * i)) & 0xFF));
    }
    const std::uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked)
        for (auto k : key) out.push_back(std::byte(k));
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(std::byte(static_cast<std::uint8_t>(payload[i]) ^ (masked ? key[i % 4] : 0)));
    return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

struct Recorder {
    std::vector<std::string> events;
    bool on_message(Opcode op, std::span<std::byte> p) noexcept {
        events.push_back((op == Opcode::text ? "text:" : "binary:") + std::string(reinterpret_cast<char*>(p.data()), p.size()));
        return true;
    }
    bool on_ping(std::span<std::byte> p) noexcept {
        events.push_back("ping:" + std::string(reinterpret_cast<char*>(p.data()), p.size()));
        return true;
    }
    bool on_pong(std::span<std::byte> p) noexcept {
        events.push_back("pong:" + std::string(reinterpret_cast<char*>(p.data()), p.size()));
        return true;
    }
    bool on_close(std::uint16_t code, std::span<std::byte> r) noexcept {
        events.push_back("close:" + std::to_string(code) + ":" + std::string(reinterpret_cast<char*>(r.data()), r.size()));
        return true;
    }
};

struct Run {
    std::vector<std::string> events;
    ParseResult result = ParseResult::ok;
    Error error = Error::none;
};

// Feeds `input` in the given chunk sizes (the last chunk takes the rest).
Run feed(const Bytes& input, const std::vector<std::size_t>& chunks, ParserLimits lim = {}) {
    util::BufferPool pool;
    ParserState st;
    Recorder rec;
    Bytes copy = input;  // the parser unmasks in place
    std::size_t pos = 0;
    Run run;
    std::size_t ci = 0;
    while (pos < copy.size() || (copy.empty() && ci == 0)) {
        std::size_t n = ci < chunks.size() ? std::min(chunks[ci], copy.size() - pos) : copy.size() - pos;
        ++ci;
        // Each chunk in its own buffer, as separate reads would be.
        Bytes chunk(copy.begin() + static_cast<long>(pos), copy.begin() + static_cast<long>(pos + n));
        const ParseOutcome o = parse_frames(st, chunk.data(), chunk.size(), lim, pool, rec);
        pos += n;
        if (o.result != ParseResult::ok) {
            run.result = o.result;
            run.error = o.error;
            break;
        }
        if (copy.empty()) break;
    }
    st.release(pool);
    run.events = rec.events;
    return run;
}

// The same outcome whole, split at every byte into two reads, and one byte at a time.
void expect_everywhere(const Bytes& input, const std::vector<std::string>& events, ParseResult result = ParseResult::ok,
                       Error error = Error::none, ParserLimits lim = {}) {
    auto check = [&](const Run& r, const std::string& how) {
        EXPECT_EQ(r.events, events) << how;
        EXPECT_EQ(r.result, result) << how;
        EXPECT_EQ(r.error, error) << how << " got " << describe(r.error);
    };
    check(feed(input, {}, lim), "whole");
    for (std::size_t cut = 1; cut < input.size(); ++cut) check(feed(input, {cut}, lim), "cut at " + std::to_string(cut));
    check(feed(input, std::vector<std::size_t>(input.size(), 1), lim), "byte by byte");
}

TEST(FrameParser, DeliversUnfragmentedText) { expect_everywhere(frame(1, "Hello"), {"text:Hello"}); }

TEST(FrameParser, DeliversBinaryOfEveryLengthClass) {
    for (std::size_t n : {0u, 125u, 126u, 65535u, 65536u}) {
        std::string p(n, 'x');
        auto r = feed(frame(2, p), {});
        ASSERT_EQ(r.events.size(), 1u) << n;
        EXPECT_EQ(r.events[0], "binary:" + p);
        auto r2 = feed(frame(2, p), {7, 100, 3});
        EXPECT_EQ(r2.events, r.events) << n;
    }
}

TEST(FrameParser, AssemblesFragmentsWithInterleavedPing) {  // §5.4, Autobahn 5.6
    auto in = cat({frame(1, "frag", false), frame(9, "p"), frame(0, "ment", false), frame(0, "ed", true)});
    expect_everywhere(in, {"ping:p", "text:fragmented"});
}

TEST(FrameParser, SeveralMessagesInOneRead) {
    auto in = cat({frame(1, "a"), frame(2, "bb"), frame(10, "x"), frame(1, "")});
    expect_everywhere(in, {"text:a", "binary:bb", "pong:x", "text:"});
}

TEST(FrameParser, RejectsUnmaskedFrame) {  // §5.1
    expect_everywhere(frame(1, "hi", true, 0, false), {}, ParseResult::failed, Error::unmasked_frame);
}

TEST(FrameParser, RejectsEachReservedBit) {  // §5.2, Autobahn 3.x
    for (int rsv : {1, 2, 4, 7})
        expect_everywhere(frame(1, "x", true, rsv), {}, ParseResult::failed, Error::reserved_bits);
}

TEST(FrameParser, RejectsRsv1OnControlEvenWhenDeflateAllowsIt) {  // RFC 7692 §6.1
    ParserLimits lim;
    lim.allowed_rsv = 0x4;
    expect_everywhere(frame(9, "", true, 4), {}, ParseResult::failed, Error::reserved_bits, lim);
    expect_everywhere(cat({frame(1, "a", false), frame(0, "b", true, 4)}), {}, ParseResult::failed, Error::reserved_bits, lim);
}

TEST(FrameParser, RejectsReservedOpcodes) {  // §5.2, Autobahn 4.x
    for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF})
        expect_everywhere(frame(op, ""), {}, ParseResult::failed, Error::bad_opcode);
}

TEST(FrameParser, ValidFramesBeforeAnErrorAreDelivered) {  // Autobahn 4.1.3: echo, then fail
    expect_everywhere(cat({frame(1, "ok"), frame(5, "")}), {"text:ok"}, ParseResult::failed, Error::bad_opcode);
}

TEST(FrameParser, RejectsFragmentedPing) {  // §5.5
    expect_everywhere(frame(9, "x", false), {}, ParseResult::failed, Error::control_fragmented);
}

TEST(FrameParser, RejectsControlPayloadOver125) {  // §5.5, Autobahn 2.5
    expect_everywhere(frame(9, std::string(126, 'x')), {}, ParseResult::failed, Error::control_too_long);
    expect_everywhere(frame(9, std::string(125, 'x')), {"ping:" + std::string(125, 'x')});
}

TEST(FrameParser, RejectsContinuationWithoutMessage) {  // §5.4, Autobahn 5.9
    expect_everywhere(frame(0, "x"), {}, ParseResult::failed, Error::unexpected_continuation);
}

TEST(FrameParser, RejectsNewMessageInsideFragmentedOne) {  // §5.4, Autobahn 5.18
    expect_everywhere(cat({frame(1, "a", false), frame(1, "b")}), {}, ParseResult::failed, Error::expected_continuation);
}

TEST(FrameParser, EnforcesMaxMessageSizeAcrossFragments) {
    ParserLimits lim;
    lim.max_message_bytes = 10;
    expect_everywhere(frame(2, std::string(10, 'x')), {"binary:" + std::string(10, 'x')}, ParseResult::ok, Error::none, lim);
    expect_everywhere(frame(2, std::string(11, 'x')), {}, ParseResult::failed, Error::message_too_big, lim);
    expect_everywhere(cat({frame(2, "123456", false), frame(0, "12345")}), {}, ParseResult::failed, Error::message_too_big, lim);
}

TEST(FrameParser, RejectsHugeDeclaredLengthAtTheHeader) {
    // 2^40 bytes declared, no payload sent: failed at the header, nothing allocated.
    Bytes in = {std::byte(0x82), std::byte(0xFF), std::byte(0), std::byte(0), std::byte(1), std::byte(0),
                std::byte(0), std::byte(0), std::byte(0), std::byte(0), std::byte(1), std::byte(2), std::byte(3), std::byte(4)};
    expect_everywhere(in, {}, ParseResult::failed, Error::message_too_big);
}

TEST(FrameParser, FailsFastOnInvalidUtf8InFirstFragment) {  // §8.1, Autobahn 6.4.1
    // The message is never finished: the error must come from the first fragment alone.
    auto in = frame(1, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", false);
    expect_everywhere(in, {}, ParseResult::failed, Error::invalid_utf8);
}

TEST(FrameParser, AcceptsUtf8SplitAcrossFragments) {
    auto in = cat({frame(1, "\xe2\x82", false), frame(0, "\xac", true)});  // U+20AC split
    expect_everywhere(in, {"text:\xe2\x82\xac"});
}

TEST(FrameParser, RejectsTextEndingInsideACharacter) {
    expect_everywhere(frame(1, "a\xe2\x82"), {}, ParseResult::failed, Error::invalid_utf8);
    expect_everywhere(cat({frame(1, "\xe2", false), frame(0, "\x82")}), {}, ParseResult::failed, Error::invalid_utf8);
}

TEST(FrameParser, BinaryIsNotUtf8Checked) { expect_everywhere(frame(2, "\xff\xfe"), {"binary:\xff\xfe"}); }

TEST(FrameParser, CloseWithCodeAndReason) {
    expect_everywhere(frame(8, std::string("\x03\xe8", 2) + "bye"), {"close:1000:bye"}, ParseResult::stopped);
}

TEST(FrameParser, EmptyCloseReportsNoStatus) {  // §7.1.5: 1005
    expect_everywhere(frame(8, ""), {"close:1005:"}, ParseResult::stopped);
}

TEST(FrameParser, RejectsOneByteClosePayload) {  // §5.5.1, Autobahn 7.3.2
    expect_everywhere(frame(8, "\x03"), {}, ParseResult::failed, Error::close_payload_too_short);
}

TEST(FrameParser, RejectsInvalidCloseCodes) {  // §7.4, Autobahn 7.9.x
    for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
        std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
        expect_everywhere(frame(8, p), {}, ParseResult::failed, Error::bad_close_code);
    }
}

TEST(FrameParser, RejectsCloseReasonWithInvalidUtf8) {  // §5.5.1, Autobahn 7.5.1
    expect_everywhere(frame(8, std::string("\x03\xe8", 2) + "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), {},
                      ParseResult::failed, Error::invalid_close_reason);
}

TEST(FrameParser, StopsAtCloseAndIgnoresWhatFollows) {  // Autobahn 7.1.x: nothing after close is handled
    auto in = cat({frame(8, std::string("\x03\xe8", 2)), frame(1, "late")});
    auto r = feed(in, {});
    EXPECT_EQ(r.events, std::vector<std::string>{"close:1000:"});
    EXPECT_EQ(r.result, ParseResult::stopped);
}

TEST(FrameParser, RandomChunkingMatchesWholeParse) {
    std::mt19937 rng(42);
    Bytes in;
    std::vector<std::string> want;
    for (int i = 0; i < 200; ++i) {
        const int kind = static_cast<int>(rng() % 4);
        std::string p(rng() % 300, static_cast<char>('a' + i % 26));
        if (kind == 0) { in = cat({in, frame(1, p)}); want.push_back("text:" + p); }
        if (kind == 1) { in = cat({in, frame(2, p)}); want.push_back("binary:" + p); }
        if (kind == 2) { p.resize(p.size() % 126); in = cat({in, frame(9, p)}); want.push_back("ping:" + p); }
        if (kind == 3) {
            in = cat({in, frame(2, p.substr(0, p.size() / 2), false), frame(10, "q"), frame(0, p.substr(p.size() / 2))});
            want.push_back("pong:q");
            want.push_back("binary:" + p);
        }
    }
    for (int trial = 0; trial < 50; ++trial) {
        std::vector<std::size_t> chunks;
        for (std::size_t total = 0; total < in.size();) {
            chunks.push_back(1 + rng() % 700);
            total += chunks.back();
        }
        auto r = feed(in, chunks);
        ASSERT_EQ(r.result, ParseResult::ok) << trial;
        ASSERT_EQ(r.events, want) << trial;
    }
}

}  // namespace
}  // namespace roomcast::ws
