#include "ws/deflate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace roomcast::ws {
namespace {

constexpr std::string_view tail_bytes("\x00\x00\xff\xff", 4);

std::span<const std::byte> bytes(std::string_view s) {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
std::string str(const util::ByteBuffer& b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// --- the independent peer: plain zlib raw deflate, written straight from zlib.h ---------------------

class RefDeflate {
public:
    RefDeflate(int level, int window_bits) : level_(level) {
        EXPECT_EQ(deflateInit2(&s_, level, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    }
    ~RefDeflate() { deflateEnd(&s_); }
    // One message: sync flush and tail removed (§7.2.1), or with Z_FINISH a BFINAL block (§7.2.3.4).
    std::string message(std::string_view in, int flush = Z_SYNC_FLUSH) {
        std::string out(deflateBound(&s_, in.size()) + 64, '\0');
        s_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        s_.avail_in = static_cast<uInt>(in.size());
        s_.next_out = reinterpret_cast<Bytef*>(out.data());
        s_.avail_out = static_cast<uInt>(out.size());
        const int rc = deflate(&s_, flush);
        EXPECT_TRUE(rc == Z_OK || rc == Z_STREAM_END);
        EXPECT_GT(s_.avail_out, 0u);
        out.resize(out.size() - s_.avail_out);
        if (flush == Z_SYNC_FLUSH) {
            EXPECT_EQ(out.substr(out.size() - 4), tail_bytes);
            out.resize(out.size() - 4);
        }
        return out;
    }
    // One message made of several deflate blocks: each part ends a block (Z_BLOCK) and is compressed with
    // a strategy of its own (Z_FIXED, Z_HUFFMAN_ONLY, ...), the last one with the sync flush.
    std::string message_in_parts(const std::vector<std::pair<std::string, int>>& parts) {
        std::size_t total = 0;
        for (const auto& [part, strategy] : parts) total += deflateBound(&s_, part.size()) + 64;
        std::string out(total, '\0');
        s_.next_out = reinterpret_cast<Bytef*>(out.data());
        s_.avail_out = static_cast<uInt>(out.size());
        for (std::size_t i = 0; i < parts.size(); ++i) {
            EXPECT_EQ(deflateParams(&s_, level_, parts[i].second), Z_OK);
            s_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(parts[i].first.data()));
            s_.avail_in = static_cast<uInt>(parts[i].first.size());
            EXPECT_EQ(deflate(&s_, i + 1 < parts.size() ? Z_BLOCK : Z_SYNC_FLUSH), Z_OK);
            EXPECT_EQ(s_.avail_in, 0u);
        }
        out.resize(out.size() - s_.avail_out);
        EXPECT_EQ(out.substr(out.size() - 4), tail_bytes);
        out.resize(out.size() - 4);
        return out;
    }
    void reset() { deflateReset(&s_); }
    void set_dictionary(std::string_view d) {
        deflateSetDictionary(&s_, reinterpret_cast<const Bytef*>(d.data()), static_cast<uInt>(d.size()));
    }

private:
    z_stream s_{};
    int level_;
};

class RefInflate {
public:
    explicit RefInflate(int window_bits = 15) { EXPECT_EQ(inflateInit2(&s_, -window_bits), Z_OK); }
    ~RefInflate() { inflateEnd(&s_); }
    // One message: tail appended (§7.2.2). nullopt if zlib reports an error.
    std::optional<std::string> message(std::string_view in) {
        std::string data(in);
        data += tail_bytes;
        std::string out;
        s_.next_in = reinterpret_cast<Bytef*>(data.data());
        s_.avail_in = static_cast<uInt>(data.size());
        char buf[65536];
        for (;;) {
            s_.next_out = reinterpret_cast<Bytef*>(buf);
            s_.avail_out = sizeof buf;
            const int rc = inflate(&s_, Z_SYNC_FLUSH);
            out.append(buf, sizeof buf - s_.avail_out);
            if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) return std::nullopt;
            if (s_.avail_out != 0 || rc == Z_STREAM_END) break;
        }
        return out;
    }

private:
    z_stream s_{};
};

// --- test data ----------------------------------------------------------------------------------

// Deterministic JSON-like text: a trading feed.
std::string json_text(std::size_t n, unsigned seed = 1) {
    std::mt19937 rng(seed);
    static const char* syms[] = {"BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "AAPL", "MSFT"};
    std::string s;
    while (s.size() < n) {
        s += "{\"room\":\"";
        s += syms[rng() % 6];
        s += "\",\"seq\":" + std::to_string(rng() % 1000000) +
             ",\"data\":{\"bid\":" + std::to_string(rng() % 90000) + "." + std::to_string(rng() % 100) +
             ",\"ask\":" + std::to_string(rng() % 90000) + ",\"side\":\"" + (rng() % 2 ? "buy" : "sell") +
             "\"}}\n";
    }
    s.resize(n);
    return s;
}

std::string random_bytes(std::size_t n, unsigned seed = 7) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

// Autobahn|Testsuite data files (sections 12/13), read from ../shared/autobahn-testdata relative to the
// repo root (the tests run from there), or $ROOMCAST_AUTOBAHN_DATA.
std::vector<std::pair<std::string, std::string>> autobahn_files() {
    std::string dir = "../shared/autobahn-testdata";
    if (const char* e = std::getenv("ROOMCAST_AUTOBAHN_DATA")) dir = e;
    std::vector<std::pair<std::string, std::string>> out;
    for (const char* name :
         {"data1.json", "data1.html", "pg2229.txt", "lena512.bmp", "10.1.1.105.5439.pdf"}) {
        std::ifstream f(dir + "/" + name, std::ios::binary);
        if (!f) continue;
        std::ostringstream ss;
        ss << f.rdbuf();
        out.emplace_back(name, ss.str());
    }
    return out;
}

constexpr std::size_t no_limit = std::size_t{1} << 40;

// Inflates one message in a single call with a fresh Inflater.
std::pair<InflateResult, std::string> inflate_once(std::string_view compressed, int window_bits = 15,
                                                   std::size_t limit = no_limit) {
    auto inf = Inflater::create(window_bits);
    util::ByteBuffer out;
    const InflateResult r = inf->inflate(bytes(compressed), true, out, limit);
    return {r, str(out)};
}

std::string deflate_once(std::string_view plain, int level = 6, int window_bits = 15) {
    auto d = Deflater::create(level, window_bits);
    util::ByteBuffer out;
    EXPECT_TRUE(d->compress(bytes(plain), out));
    return str(out);
}

// --- round trips ----------------------------------------------------------------------------------

TEST(Deflater, EveryLevelAndWindowRoundTripsThroughPlainZlib) {
    const std::string plain = json_text(40000) + random_bytes(3000) + json_text(20000, 2);
    for (int level = 1; level <= 9; ++level) {
        for (int w = 9; w <= 15; ++w) {
            auto d = Deflater::create(level, w);
            ASSERT_TRUE(d);
            RefInflate ref(w);  // a peer that agreed server_max_window_bits=w inflates with w
            for (int msg = 0; msg < 3; ++msg) {  // context takeover across messages
                util::ByteBuffer out;
                ASSERT_TRUE(d->compress(bytes(plain), out));
                EXPECT_LT(out.size(), plain.size());
                EXPECT_EQ(ref.message(str(out)), plain)
                    << "level " << level << " window " << w << " msg " << msg;
            }
        }
    }
}

TEST(Inflater, EveryLevelAndWindowFromPlainZlib) {
    const std::string plain = json_text(40000) + random_bytes(3000) + json_text(20000, 2);
    for (int level = 1; level <= 9; ++level) {
        for (int w = 9; w <= 15; ++w) {
            RefDeflate ref(level, w);
            auto inf = Inflater::create(w);
            ASSERT_TRUE(inf);
            for (int msg = 0; msg < 3; ++msg) {
                util::ByteBuffer out;
                ASSERT_EQ(inf->inflate(bytes(ref.message(plain)), true, out, no_limit), InflateResult::ok);
                EXPECT_EQ(str(out), plain) << "level " << level << " window " << w << " msg " << msg;
            }
        }
    }
}

// zlib peers that agree client_max_window_bits=8 compress with 9 (zlib rejects raw 8): accept that.
TEST(Inflater, AgreedWindow8InflatesAZlibWindow9Stream) {
    RefDeflate ref(9, 9);
    const std::string plain = json_text(5000);
    auto [r, got] = inflate_once(ref.message(plain), 8);
    EXPECT_EQ(r, InflateResult::ok);
    EXPECT_EQ(got, plain);
    EXPECT_EQ(Inflater::create(8)->window_bits(), 9);
}

TEST(Deflater, RefusesWindowsZlibCannotCompressWith) {
    EXPECT_EQ(Deflater::create(6, 8), nullptr);
    EXPECT_EQ(Deflater::create(6, 16), nullptr);
}

TEST(Deflater, AppendsAfterExistingBytes) {
    util::ByteBuffer out;
    out.append("HDR", 3);
    auto d = Deflater::create(6, 15);
    const std::string plain = json_text(1000);
    ASSERT_TRUE(d->compress(bytes(plain), out));
    const std::string s = str(out);
    EXPECT_EQ(s.substr(0, 3), "HDR");
    RefInflate ref;
    EXPECT_EQ(ref.message(s.substr(3)), plain);
}

TEST(Deflater, OutputNeverEndsWithTheTailAndManySizesRoundTrip) {
    auto d = Deflater::create(6, 15);
    RefInflate ref;
    std::mt19937 rng(3);
    for (std::size_t n : {0, 1, 2, 3, 4, 5, 63, 64, 65, 1000, 4095, 4096, 65535, 65536, 65537, 300000}) {
        const std::string plain =
            (rng() % 2) ? json_text(n, static_cast<unsigned>(n)) : random_bytes(n, static_cast<unsigned>(n));
        util::ByteBuffer out;
        ASSERT_TRUE(d->compress(bytes(plain), out));
        const std::string c = str(out);
        EXPECT_FALSE(c.size() >= 4 && c.substr(c.size() - 4) == tail_bytes) << n;
        EXPECT_EQ(ref.message(c), plain) << n;
    }
}

// §7.2.3.6-ish: the empty message compresses to a single 0x00 (an empty stored block's header bits).
TEST(Deflater, EmptyMessageIsOneByte) { EXPECT_EQ(deflate_once(""), std::string(1, '\0')); }

TEST(Inflater, EmptyMessage) {
    auto [r1, s1] = inflate_once("");  // no payload at all
    EXPECT_EQ(r1, InflateResult::ok);
    EXPECT_EQ(s1, "");
    auto [r2, s2] = inflate_once(std::string(1, '\0'));  // the header bits + the tail = empty stored block
    EXPECT_EQ(r2, InflateResult::ok);
    EXPECT_EQ(s2, "");
}

// An empty payload between messages must not disturb the shared window (context takeover).
TEST(Inflater, EmptyMessagesKeepTheContext) {
    RefDeflate ref(6, 15);
    auto inf = Inflater::create(15);
    const std::string a = json_text(3000), b = json_text(3000);  // same seed: b refers back into a
    for (const std::string& m : {a, std::string(), b, std::string(), a}) {
        const std::string c = m.empty() ? std::string() : ref.message(m);
        util::ByteBuffer out;
        ASSERT_EQ(inf->inflate(bytes(c), true, out, no_limit), InflateResult::ok);
        EXPECT_EQ(str(out), m);
    }
}

// Plain data made of the tail pattern itself, ending with it.
TEST(Deflate, MessageContainingAndEndingWithTheTailPattern) {
    std::string plain;
    for (int i = 0; i < 100; ++i) plain += std::string(tail_bytes) + "x";
    plain += tail_bytes;
    for (const std::string& p : {plain, std::string(tail_bytes)}) {
        const std::string c = deflate_once(p, 1, 15);
        EXPECT_EQ(RefInflate().message(c), p);
        auto [r, got] = inflate_once(c);
        EXPECT_EQ(r, InflateResult::ok);
        EXPECT_EQ(got, p);
        // Level 0-like stored data from the peer: the payload literally contains 00 00 ff ff.
        RefDeflate stored(0, 15);
        auto [r2, got2] = inflate_once(stored.message(p));
        EXPECT_EQ(r2, InflateResult::ok);
        EXPECT_EQ(got2, p);
    }
}

// --- fragments ----------------------------------------------------------------------------------

// Feeds `c` in pieces; returns the result and output.
std::pair<InflateResult, std::string> inflate_chunks(Inflater& inf, std::string_view c,
                                                     std::vector<std::size_t> cuts,
                                                     std::size_t limit = no_limit) {
    util::ByteBuffer out;
    std::size_t pos = 0;
    for (std::size_t cut : cuts) {
        const InflateResult r = inf.inflate(bytes(c.substr(pos, cut - pos)), false, out, limit);
        if (r != InflateResult::ok) return {r, str(out)};
        pos = cut;
    }
    const InflateResult r = inf.inflate(bytes(c.substr(pos)), true, out, limit);
    return {r, str(out)};
}

TEST(Inflater, SplitAtEveryByte) {
    const std::string plain = json_text(700);
    const std::string c = RefDeflate(6, 15).message(plain);
    auto inf = Inflater::create(15);
    for (std::size_t cut = 0; cut <= c.size(); ++cut) {
        auto [r, got] = inflate_chunks(*inf, c, {cut});
        ASSERT_EQ(r, InflateResult::ok) << cut;
        ASSERT_EQ(got, plain) << cut;
        inf->reset();
    }
}

TEST(Inflater, RandomChunkSizesIncludingEmptyFragments) {
    std::mt19937 rng(11);
    RefDeflate ref(6, 15);
    auto inf = Inflater::create(15);
    for (int msg = 0; msg < 40; ++msg) {  // context takeover on both sides throughout
        const std::string plain = json_text(1 + rng() % 200000, rng());
        const std::string c = ref.message(plain);
        std::vector<std::size_t> cuts;
        const std::size_t max_chunk = 1 + rng() % (msg % 4 == 0 ? 8 : 20000);
        for (std::size_t pos = 0; pos < c.size();) {
            pos = std::min(c.size(), pos + rng() % (max_chunk + 1));  // 0-length fragments too
            cuts.push_back(pos);
        }
        auto [r, got] = inflate_chunks(*inf, c, cuts);
        ASSERT_EQ(r, InflateResult::ok) << msg;
        ASSERT_EQ(got, plain) << msg;
    }
}

// --- context takeover ---------------------------------------------------------------------------

TEST(Inflater, ContextTakeoverNeedsTheWindowAndResetDropsIt) {
    RefDeflate ref(6, 15);
    const std::string a = json_text(2000, 5);
    const std::string c1 = ref.message(a);
    const std::string c2 = ref.message(a);  // a back-reference to the whole first message
    EXPECT_LT(c2.size(), c1.size() / 10);
    auto inf = Inflater::create(15);
    EXPECT_EQ(inflate_chunks(*inf, c1, {}).second, a);
    EXPECT_EQ(inflate_chunks(*inf, c2, {}).second, a);
    inf->reset();  // client_no_context_takeover: the window is gone
    EXPECT_EQ(inflate_chunks(*inf, c2, {}).first, InflateResult::corrupt);  // distance too far back
}

TEST(Deflater, ContextTakeoverAndReset) {
    auto d = Deflater::create(6, 15);
    const std::string a = json_text(2000, 5);
    util::ByteBuffer o1, o2, o3;
    ASSERT_TRUE(d->compress(bytes(a), o1));
    ASSERT_TRUE(d->compress(bytes(a), o2));
    EXPECT_LT(o2.size(), o1.size() / 10);  // the second refers back to the first
    RefInflate ref;
    EXPECT_EQ(ref.message(str(o1)), a);
    EXPECT_EQ(ref.message(str(o2)), a);
    d->reset();  // server_no_context_takeover: the next message stands alone
    ASSERT_TRUE(d->compress(bytes(a), o3));
    EXPECT_EQ(str(o3), str(o1));
    EXPECT_EQ(RefInflate().message(str(o3)), a);
}

// §7.2.3.4: a message ending with a BFINAL block; the window still carries over.
TEST(Inflater, FinalBlockMessagesKeepTheWindow) {
    const std::string a = json_text(3000, 9);
    auto inf = Inflater::create(15);
    RefDeflate first(6, 15);
    EXPECT_EQ(inflate_chunks(*inf, first.message(a, Z_FINISH), {}).second, a);
    RefDeflate second(6, 15);
    second.set_dictionary(a);  // what a sender with context takeover and BFINAL does
    const std::string c2 = second.message(a, Z_FINISH);
    EXPECT_LT(c2.size(), 100u);
    auto [r, got] = inflate_chunks(*inf, c2, {c2.size() / 2});
    EXPECT_EQ(r, InflateResult::ok);
    EXPECT_EQ(got, a);
}

// --- bombs and limits ---------------------------------------------------------------------------

TEST(Inflater, BombStopsAtTheLimitWithoutGrowingPastIt) {
    const std::string zeros(10 << 20, '\0');
    const std::string c = RefDeflate(9, 15).message(zeros);
    EXPECT_LT(c.size(), 12000u);  // ~10 KB
    constexpr std::size_t limit = 1 << 20;
    for (bool chunked : {false, true}) {
        auto inf = Inflater::create(15);
        util::ByteBuffer out;
        InflateResult r = InflateResult::ok;
        if (chunked) {
            for (std::size_t pos = 0; pos < c.size() && r == InflateResult::ok; pos += 100)
                r = inf->inflate(bytes(std::string_view(c).substr(pos, 100)), pos + 100 >= c.size(), out,
                                 limit);
        } else {
            r = inf->inflate(bytes(c), true, out, limit);
        }
        EXPECT_EQ(r, InflateResult::too_big);
        EXPECT_EQ(out.size(), limit);      // stopped right at the limit ...
        EXPECT_LE(out.capacity(), limit);  // ... and never reserved past it
        EXPECT_EQ(inf->message_bytes(), limit);
        // Work is bounded the same way: zlib produced `limit` bytes plus at most one probe byte.
    }
}

TEST(Inflater, LimitIsInclusive) {
    const std::string plain = json_text(100000);
    const std::string c = RefDeflate(6, 15).message(plain);
    EXPECT_EQ(inflate_once(c, 15, plain.size()).first, InflateResult::ok);
    EXPECT_EQ(inflate_once(c, 15, plain.size() - 1).first, InflateResult::too_big);
    // The limit counts this message only, not bytes already in the buffer.
    auto inf = Inflater::create(15);
    util::ByteBuffer out;
    out.append("0123456789", 10);
    EXPECT_EQ(inf->inflate(bytes(c), true, out, plain.size()), InflateResult::ok);
    EXPECT_EQ(out.size(), plain.size() + 10);
}

TEST(Inflater, BombOfManyMessagesEachJustUnderTheLimit) {
    // Context takeover: each message is a 4-byte reference to the window, inflating to ~limit.
    RefDeflate ref(9, 15);
    auto inf = Inflater::create(15);
    const std::string m(60000, 'a');
    for (int i = 0; i < 20; ++i) {
        util::ByteBuffer out;
        ASSERT_EQ(inf->inflate(bytes(ref.message(m)), true, out, 60000), InflateResult::ok);
        ASSERT_EQ(out.size(), 60000u);
    }
}

// --- corrupt data -------------------------------------------------------------------------------

TEST(Inflater, CorruptDataIsReported) {
    EXPECT_EQ(inflate_once("\x07").first, InflateResult::corrupt);  // BTYPE=11 is reserved
    EXPECT_EQ(inflate_once("\xff\xff\xff\xff\xff").first, InflateResult::corrupt);
    // A stored block whose NLEN is not the complement of LEN.
    EXPECT_EQ(inflate_once(std::string("\x00\x05\x00\x00\x00hello", 10)).first, InflateResult::corrupt);
    // Random garbage: never ok-with-garbage-accepted silently? It may be valid deflate; it must not crash.
    std::mt19937 rng(5);
    int corrupt = 0;
    for (int i = 0; i < 2000; ++i) {
        const std::string g = random_bytes(1 + rng() % 64, rng());
        auto [r, got] = inflate_once(g, 15, 1 << 16);
        corrupt += r == InflateResult::corrupt;
    }
    EXPECT_GT(corrupt, 1500);
}

TEST(Inflater, TruncatedMessageIsCorrupt) {
    const std::string c = RefDeflate(6, 15).message(json_text(20000));
    EXPECT_EQ(inflate_once(c.substr(0, c.size() / 2)).first, InflateResult::corrupt);
}

// §7.2.1: the sender MUST remove the tail; a payload that keeps it leaves zlib mid-block.
TEST(Inflater, UnstrippedTailIsCorrupt) {
    const std::string c = RefDeflate(6, 15).message("hello hello hello");
    EXPECT_EQ(inflate_once(c + std::string(tail_bytes)).first, InflateResult::corrupt);
}

TEST(Inflater, DataAfterAFinalBlockIsCorrupt) {
    const std::string c = RefDeflate(6, 15).message("hello", Z_FINISH);
    EXPECT_EQ(inflate_once(c).first, InflateResult::ok);
    EXPECT_EQ(inflate_once(c + "x").first, InflateResult::corrupt);
    auto inf = Inflater::create(15);  // ... also when the extra bytes come in a later fragment
    EXPECT_EQ(inflate_chunks(*inf, c + "x", {c.size()}).first, InflateResult::corrupt);
}

TEST(Inflater, ResetAfterAFailureMakesItUsableAgain) {
    auto inf = Inflater::create(15);
    util::ByteBuffer out;
    EXPECT_EQ(inf->inflate(bytes("\x07"), true, out, no_limit), InflateResult::corrupt);
    inf->reset();
    const std::string plain = json_text(500);
    out.clear();
    EXPECT_EQ(inf->inflate(bytes(RefDeflate(6, 15).message(plain)), true, out, no_limit), InflateResult::ok);
    EXPECT_EQ(str(out), plain);
}

// --- the agreed window (RFC 7692 §7.1.2.2) --------------------------------------------------------

// The strict verdict from plain zlib, as slow as it gets: every inflate() call is given only as much output
// room as the history still lacks of the window (one byte once it is full), so that zlib meets every
// back-reference first thing in a call, where it checks it against exactly the history it holds. Mirrors
// Inflater's rules otherwise: tail appended, data after a final block and a message that does not end on a
// block boundary are corrupt, more than `limit` bytes is too big. Context is kept between messages.
class ExactInflate {
public:
    explicit ExactInflate(int window_bits) : window_(std::size_t{1} << std::max(window_bits, 9)) {
        EXPECT_EQ(inflateInit2(&s_, -std::max(window_bits, 9)), Z_OK);
    }
    ~ExactInflate() { inflateEnd(&s_); }
    std::pair<InflateResult, std::string> message(std::string_view c, std::size_t limit = no_limit) {
        if (c.empty()) return {InflateResult::ok, ""};
        std::string data(c);
        data += tail_bytes;
        s_.next_in = reinterpret_cast<Bytef*>(data.data());
        s_.avail_in = static_cast<uInt>(data.size());
        std::string out;
        bool ended = false;
        for (;;) {
            char buf[1 << 15];
            const std::size_t had = std::min(window_, history_ + out.size());
            const std::size_t room = had < window_ ? window_ - had : 1;
            s_.next_out = reinterpret_cast<Bytef*>(buf);
            s_.avail_out = static_cast<uInt>(room);
            const int rc = inflate(&s_, Z_SYNC_FLUSH);
            out.append(buf, room - s_.avail_out);
            if (out.size() > limit) return {InflateResult::too_big, out};
            if (rc == Z_STREAM_END) {
                if (data.size() - s_.avail_in < c.size()) return {InflateResult::corrupt, out};
                ended = true;
                break;
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR) return {InflateResult::corrupt, out};
            // Output room left: the input is used up. Between blocks: likewise (and calling again would
            // turn zlib's TYPE into TYPEDO, which data_type does not report as a block boundary).
            if (s_.avail_out != 0 || (s_.data_type & 128) != 0) break;
        }
        if (!ended && (s_.data_type & 128) == 0) return {InflateResult::corrupt, out};
        if (ended) inflateResetKeep(&s_);
        history_ = std::min(window_, history_ + out.size());
        return {InflateResult::ok, out};
    }

private:
    z_stream s_{};
    std::size_t window_;
    std::size_t history_ = 0;
};

// One fixed-Huffman block (RFC 1951 §3.2.6) written by hand, so that every distance is exactly the one
// asked for. message() ends it like a sync flush with 00 00 ff ff removed (RFC 7692 §7.2.1).
class FixedBlock {
public:
    explicit FixedBlock(std::string history = {}) : plain_(std::move(history)), start_(plain_.size()) {
        bits(0, 1);  // BFINAL
        bits(1, 2);  // BTYPE 01
    }
    FixedBlock& literals(std::string_view s) {
        for (unsigned char c : s) {
            if (c < 144)
                code(0x30 + c, 8);
            else
                code(0x190 + c - 144, 9);
            plain_ += static_cast<char>(c);
        }
        return *this;
    }
    FixedBlock& match(unsigned length, unsigned distance) {
        static constexpr unsigned len_base[] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                                15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                                67, 83, 99, 115, 131, 163, 195, 227, 258};
        static constexpr unsigned len_extra[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
        static constexpr unsigned dist_base[] = {
            1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
            193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
        unsigned l = 28;
        while (len_base[l] > length) --l;
        const unsigned sym = 257 + l;
        if (sym < 280)
            code(sym - 256, 7);
        else
            code(0xc0 + sym - 280, 8);
        bits(length - len_base[l], len_extra[l]);
        unsigned d = 29;
        while (dist_base[d] > distance) --d;
        code(d, 5);
        bits(distance - dist_base[d], d < 4 ? 0 : (d - 2) / 2);
        for (unsigned i = 0; i < length; ++i)  // what a lenient inflater makes of it (zeros if out of range)
            plain_ += distance <= plain_.size() ? plain_[plain_.size() - distance] : '\0';
        return *this;
    }
    std::string message() {
        code(0, 7);  // end of block
        bits(0, 3);  // an empty stored block: BFINAL 0, BTYPE 00, then to the byte boundary
        if (n_ % 8) bits(0, 8 - n_ % 8);
        return out_;
    }
    std::string plain() const { return plain_.substr(start_); }

private:
    void bits(unsigned v, unsigned n) {
        for (unsigned i = 0; i < n; ++i, ++n_) {
            if (n_ % 8 == 0) out_ += '\0';
            out_.back() = static_cast<char>(out_.back() | (((v >> i) & 1) << (n_ % 8)));
        }
    }
    void code(unsigned c, unsigned n) {  // Huffman codes go most significant bit first
        for (unsigned i = n; i-- > 0;) bits((c >> i) & 1, 1);
    }
    std::string out_;
    unsigned n_ = 0;
    std::string plain_;
    std::size_t start_;
};

// Many ways of feeding `c` to a fresh inflater with window `w`: whole, split once at every byte (of the
// last 300 and every 61st before, to keep long messages quick), and in pieces of every size up to 16. Fails
// the test on the first result that differs from `want`.
void expect_every_split(std::string_view c, int w, InflateResult want, const std::string& why) {
    auto inf = Inflater::create(w);
    auto check = [&](std::vector<std::size_t> cuts, const std::string& how) {
        inf->reset();
        const auto r = inflate_chunks(*inf, c, std::move(cuts)).first;
        EXPECT_EQ(r, want) << why << ", window " << w << ", " << how;
        return r == want;
    };
    if (!check({}, "whole")) return;
    for (std::size_t cut = 0; cut <= c.size(); cut += cut + 300 < c.size() ? 61 : 1)
        if (!check({cut}, "split at " + std::to_string(cut))) return;
    for (std::size_t piece = 1; piece <= 16; ++piece) {
        std::vector<std::size_t> cuts;
        for (std::size_t pos = piece; pos < c.size(); pos += piece) cuts.push_back(pos);
        if (!check(cuts, std::to_string(piece) + "-byte pieces")) return;
    }
}

// The fuzz finding (test/fuzz/crashers/inflate/whole_ok_chunked_corrupt): a client that agreed
// client_max_window_bits=9 refers 550 bytes back. zlib inflating it in one call would accept it.
TEST(Inflater, DistanceBeyondTheAgreedWindowIsCorruptHoweverSplit) {
    std::string plain = random_bytes(1100, 3);
    plain += plain.substr(1100 - 550, 100);
    const std::string c = RefDeflate(6, 15).message(plain);  // a window-15 compressor finds distance 550
    ASSERT_EQ(ExactInflate(15).message(c).first, InflateResult::ok);
    ASSERT_EQ(ExactInflate(9).message(c).first, InflateResult::corrupt);
    expect_every_split(c, 9, InflateResult::corrupt, "distance 550");
    expect_every_split(c, 8, InflateResult::corrupt, "distance 550");  // agreed 8 is inflated with 9
    expect_every_split(c, 10, InflateResult::ok, "distance 550");
    auto [r, got] = inflate_once(c, 10);
    EXPECT_EQ(got, plain);
}

TEST(Inflater, DistanceOfExactlyTheWindowIsAcceptedOneMoreIsNot) {
    for (int w = 9; w <= 14; ++w) {
        const unsigned window = 1u << w;
        const std::string head = json_text(window + 100, static_cast<unsigned>(w));
        FixedBlock at;
        at.literals(head).match(10, window);
        const std::string ok_msg = at.message();
        expect_every_split(ok_msg, w, InflateResult::ok, "distance = window");
        auto [r, got] = inflate_once(ok_msg, w);
        EXPECT_EQ(got, at.plain());
        expect_every_split(FixedBlock().literals(head).match(10, window + 1).message(), w,
                           InflateResult::corrupt, "distance = window + 1");
        // And a match longer than the window, overlapping itself, from exactly the window back.
        expect_every_split(FixedBlock().literals(head).match(258, window).match(258, window).message(), w,
                           InflateResult::ok, "long matches");
    }
    // Before the first byte: too far back whatever the window.
    expect_every_split(FixedBlock().literals("abc").match(5, 4).message(), 15, InflateResult::corrupt,
                       "distance 4 after 3 bytes");
    expect_every_split(FixedBlock().literals("abc").match(5, 3).message(), 9, InflateResult::ok,
                       "distance 3 after 3 bytes");
}

// With context takeover the window holds the end of earlier messages too, up to its size.
TEST(Inflater, WindowHistoryCarriesAcrossMessages) {
    const std::string a = json_text(300, 4), b = json_text(100, 5), big = json_text(700, 6);
    struct Case {
        std::string first;
        unsigned distance;
        InflateResult want;
    } cases[] = {
        {a, 400, InflateResult::ok},        // 300 before + 100 now
        {a, 401, InflateResult::corrupt},   // before the first byte
        {big, 512, InflateResult::ok},      // the window is full: 512 reachable ...
        {big, 513, InflateResult::corrupt}  // ... and not one more, though 800 bytes came before
    };
    for (const Case& k : cases) {
        for (int split = 0; split < 2; ++split) {
            auto inf = Inflater::create(9);
            const std::string first = FixedBlock().literals(k.first).message();
            ASSERT_EQ(inflate_chunks(*inf, first, {}).first, InflateResult::ok);
            const std::string second = FixedBlock().literals(b).match(20, k.distance).message();
            const auto r = inflate_chunks(
                *inf, second,
                split ? std::vector<std::size_t>{second.size() / 2} : std::vector<std::size_t>{});
            EXPECT_EQ(r.first, k.want) << k.first.size() << " then distance " << k.distance;
        }
    }
    // A final block (BFINAL) ends the zlib stream but not the window.
    auto inf = Inflater::create(9);
    const std::string first = RefDeflate(6, 9).message(big, Z_FINISH);
    ASSERT_EQ(inflate_chunks(*inf, first, {}).first, InflateResult::ok);
    EXPECT_EQ(inflate_chunks(*inf, FixedBlock().match(20, 512).message(), {}).first, InflateResult::ok);
    EXPECT_EQ(inflate_chunks(*inf, FixedBlock().match(20, 513).message(), {}).first, InflateResult::corrupt);
    // reset() forgets it.
    inf->reset();
    EXPECT_EQ(inflate_chunks(*inf, FixedBlock().match(20, 1).message(), {}).first, InflateResult::corrupt);
}

// A compliant window-9 peer's dynamic blocks have no distance code beyond 512: the check skips them and
// picks up again after their end, which zlib finds; here the last block is a final one (BFINAL).
TEST(Inflater, FinalBlockTheCheckSkipsEndsTheStream) {
    const std::string a = json_text(5000, 8);
    RefDeflate ref(6, 9);
    const std::string c = ref.message(a, Z_FINISH);
    expect_every_split(c, 9, InflateResult::ok, "final block");
    EXPECT_EQ(inflate_once(c, 9).second, a);
    expect_every_split(c + "x", 9, InflateResult::corrupt, "data after the final block");
    // The window carries on into the next message, which refers back to it, and then beyond it.
    for (std::size_t cut : {std::size_t{0}, c.size() / 2, c.size()}) {
        auto inf = Inflater::create(9);
        ASSERT_EQ(inflate_chunks(*inf, c, {cut}), std::make_pair(InflateResult::ok, a)) << cut;
        EXPECT_EQ(inflate_chunks(*inf, FixedBlock(a).match(100, 512).message(), {}).first, InflateResult::ok);
        EXPECT_EQ(inflate_chunks(*inf, FixedBlock(a).match(100, 513).message(), {}).first,
                  InflateResult::corrupt);
    }
}

// Found by the fuzzer (test/fuzz/crashers/inflate/waited_block_ends_in_the_tail): a dynamic block the
// check need not decode ends inside the appended tail, and the 7 bits left make an invalid block type.
// zlib reads them (as it would without stopping at the block end): corrupt, however split.
TEST(Inflater, BitsAfterABlockEndingInTheTailAreRead) {
    const std::string c("\x04\xc1\x87\x81\xe4\x20\x10\x00\xb0\x5a\x27\x07\x60\x00\x63\xbc\x7f\xdd\xbf\xe4",
                        20);
    ASSERT_EQ(ExactInflate(12).message(c).first, InflateResult::corrupt);
    expect_every_split(c, 12, InflateResult::corrupt, "invalid block type after the last block");
}

// Bits in stream order (RFC 1951 §3.1.1), for blocks written by hand.
class BitWriter {
public:
    void bits(unsigned v, unsigned n) {  // a value, least significant bit first
        for (unsigned i = 0; i < n; ++i, ++n_) {
            if (n_ % 8 == 0) out_ += '\0';
            out_.back() = static_cast<char>(out_.back() | (((v >> i) & 1) << (n_ % 8)));
        }
    }
    void code(unsigned c, unsigned n) {  // a Huffman code, most significant bit first
        for (unsigned i = n; i-- > 0;) bits((c >> i) & 1, 1);
    }
    std::size_t size() const { return n_; }
    const std::string& bytes() const { return out_; }

private:
    std::string out_;
    unsigned n_ = 0;
};

// A final dynamic block (§3.2.7) that the appended tail ends, with 2 bits of its last byte left over.
// Literal/length code: a = 0, b = 10, c = 110, ... (symbols 97..109 with lengths 1..13), symbol 110 =
// 11111111111110 and end of block = 11111111111111 (14 bits); no distance code, so the window check lets
// zlib find its end. The message stops on a byte boundary after at least `n` a's; the tail's 00 00 adds 16
// more, and its ff ff holds the end of block and 2 bits after it.
std::string final_block_ended_by_the_tail(std::size_t n) {
    BitWriter w;
    w.bits(1, 1);   // BFINAL
    w.bits(2, 2);   // BTYPE 10
    w.bits(0, 5);   // HLIT: 257 literal/length codes
    w.bits(0, 5);   // HDIST: 1 distance code
    w.bits(14, 4);  // HCLEN: 18 code length code lengths, in the order of §3.2.7
    for (unsigned sym : {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1})
        w.bits(sym == 16 || sym == 17 ? 0 : 4, 3);
    // Code length code: lengths 0..14 -> 0000..1110, 18 (a run of zeros) -> 1111.
    auto length = [&](unsigned len) { w.code(len, 4); };
    auto zeros = [&](unsigned k) {  // k = 11..138
        w.code(15, 4);
        w.bits(k - 11, 7);
    };
    zeros(97);                                                              // 0..96
    for (unsigned len = 1; len <= 14; ++len) length(len);                   // 97..110
    zeros(138);                                                             // 111..248
    for (int i = 0; i < 7; ++i) length(0);                                  // 249..255
    length(14);                                                             // 256: end of block
    length(0);                                                              // distance 0: unused
    for (std::size_t i = 0; i < n || w.size() % 8 != 0; ++i) w.code(0, 1);  // a
    return w.bytes();
}

// A final block the check need not decode, ending inside the appended tail with its input used up and 2
// bits left: the stream ends there (as zlib sees it when it does not stop at block ends), and the next
// message starts a new one on the same window.
TEST(Inflater, FinalBlockEndingInTheTail) {
    const std::string c = final_block_ended_by_the_tail(20);
    const auto want = ExactInflate(9).message(c);
    ASSERT_EQ(want.first, InflateResult::ok);
    ASSERT_EQ(want.second, std::string(want.second.size(), 'a'));
    ASSERT_GE(want.second.size(), 36u);
    for (std::size_t cut = 0; cut <= c.size(); ++cut) {
        auto inf = Inflater::create(9);
        ASSERT_EQ(inflate_chunks(*inf, c, {cut}), want) << cut;
        FixedBlock next(want.second);  // refers back into it
        next.literals("x").match(20, 3);
        EXPECT_EQ(inflate_chunks(*inf, next.message(), {}), std::make_pair(InflateResult::ok, next.plain()))
            << cut;
    }
}

// A bad distance that starts past max_message_bytes: the message was too big first (1009, not 1007).
TEST(Inflater, BadDistanceAfterTheLimitIsTooBig) {
    const std::string c = FixedBlock().literals(json_text(600)).match(10, 513).message();
    for (std::size_t limit : {599, 600, 601}) {
        const InflateResult want = limit < 600 ? InflateResult::too_big : InflateResult::corrupt;
        EXPECT_EQ(ExactInflate(9).message(c, limit).first, want) << limit;
        for (std::size_t cut = 0; cut <= c.size(); ++cut) {
            auto inf = Inflater::create(9);
            ASSERT_EQ(inflate_chunks(*inf, c, {cut}, limit).first, want) << limit << " split at " << cut;
        }
    }
}

// Whole, in random pieces and through the exact reference: the same verdict and bytes, for streams full of
// distances around the window, at every window, with context takeover, some of them damaged. A message is
// up to 3 blocks, fixed or dynamic, some of which only refer back within the window (those the check need
// not decode) and some up to twice as far.
TEST(Inflater, WindowVerdictMatchesExactZlibOnRandomStreams) {
    std::mt19937 rng(17);
    int corrupt = 0, ok = 0, too_big = 0;
    for (int round = 0; round < 1000; ++round) {
        const int w = 9 + static_cast<int>(rng() % 7);
        const std::size_t window = std::size_t{1} << w;
        RefDeflate ref(1 + static_cast<int>(rng() % 9), 15);
        auto whole = Inflater::create(w);
        auto pieces = Inflater::create(w);
        ExactInflate exact(w);
        std::string all;  // every message so far (context takeover on both sides)
        for (int msg = 0; msg < 4; ++msg) {
            std::vector<std::pair<std::string, int>> parts(1 + rng() % 3);
            for (auto& [part, strategy] : parts) {
                // Text-like bytes (skewed, so that zlib picks dynamic Huffman codes).
                auto text = [&](std::size_t n) {
                    std::string t(n, '\0');
                    for (auto& ch : t) ch = static_cast<char>('a' + std::min(rng() % 26, rng() % 26));
                    return t;
                };
                switch (rng() % 4) {
                    case 0:  // literals only: a dynamic block the check need not decode
                        strategy = Z_HUFFMAN_ONLY;
                        part = text(600 + rng() % 400);
                        break;
                    case 1:  // runs, distance 1 only: likewise
                        strategy = Z_RLE;
                        while (part.size() < 600)
                            part += std::string(1 + rng() % 20, static_cast<char>('a' + rng() % 4));
                        break;
                    default:  // copies from up to 2 windows back: fixed or dynamic blocks, decoded
                        strategy = rng() % 2 ? Z_FIXED : Z_DEFAULT_STRATEGY;
                        part = rng() % 2 ? random_bytes(rng() % 200, rng()) : text(rng() % 200);
                        while (part.size() < 1000) {
                            const std::size_t len = 3 + rng() % 40;
                            const std::size_t dist = 1 + rng() % (2 * window);
                            if (dist > all.size() + part.size()) {
                                part += text(len);
                                continue;
                            }
                            for (std::size_t i = 0; i < len; ++i) {
                                const std::size_t from = all.size() + part.size() - dist;  // in all + part
                                part += from < all.size() ? all[from] : part[from - all.size()];
                            }
                        }
                }
                all += part;
            }
            std::string c = ref.message_in_parts(parts);
            if (rng() % 8 == 0) c[rng() % c.size()] ^= static_cast<char>(1 + rng() % 255);
            const std::size_t limit = rng() % 4 == 0 ? 1 + rng() % 3000 : no_limit;
            const auto want = exact.message(c, limit);
            const auto got = inflate_chunks(*whole, c, {}, limit);
            std::vector<std::size_t> cuts;
            for (std::size_t pos = 0; pos < c.size();) {
                pos = std::min(c.size(), pos + rng() % 64);
                cuts.push_back(pos);
            }
            const auto split = inflate_chunks(*pieces, c, cuts, limit);
            ASSERT_EQ(got.first, want.first) << "round " << round << " msg " << msg << " window " << w;
            ASSERT_EQ(split.first, want.first) << "round " << round << " msg " << msg << " window " << w;
            if (want.first != InflateResult::ok) {
                corrupt += want.first == InflateResult::corrupt;
                too_big += want.first == InflateResult::too_big;
                break;  // the connection would close
            }
            ++ok;
            ASSERT_EQ(got.second, want.second);
            ASSERT_EQ(split.second, want.second);
        }
    }
    // Both verdicts were exercised.
    EXPECT_GT(ok, 100);
    EXPECT_GT(corrupt, 50);
    EXPECT_GT(too_big, 10);
}

// --- Autobahn data (sections 12/13 payloads) ----------------------------------------------------

TEST(Deflate, AutobahnDataRoundTripsAtEverySize) {
    const auto files = autobahn_files();
    if (files.empty()) GTEST_SKIP() << "../shared/autobahn-testdata not found (run from the repo root)";
    for (const auto& [name, data] : files) {
        for (bool takeover : {false, true}) {
            auto d = Deflater::create(6, 15);
            auto inf = Inflater::create(15);
            RefInflate ref;
            RefDeflate ref_d(6, 15);
            for (std::size_t n : {16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072, 0}) {
                const std::string_view plain =
                    std::string_view(data).substr(0, n ? std::min(n, data.size()) : data.size());
                // server -> client: ours compresses, plain zlib inflates.
                util::ByteBuffer c;
                ASSERT_TRUE(d->compress(bytes(plain), c));
                std::optional<std::string> got =
                    takeover ? ref.message(str(c)) : RefInflate().message(str(c));
                ASSERT_EQ(got, std::string(plain)) << name << " " << n;
                // client -> server: plain zlib compresses, ours inflates.
                const std::string cc = ref_d.message(plain);
                util::ByteBuffer out;
                ASSERT_EQ(inf->inflate(bytes(cc), true, out, 16 << 20), InflateResult::ok)
                    << name << " " << n;
                ASSERT_EQ(str(out), plain) << name << " " << n;
                // ours to ours
                if (!takeover) {
                    d->reset();
                    ref_d.reset();
                    inf->reset();
                }
            }
        }
    }
}

// --- pool and sessions --------------------------------------------------------------------------

TEST(DeflatePool, CompressOnceReusesOneStreamAndCountsFrames) {
    DeflatePool pool(DeflateConfig{});
    const std::string m = json_text(3000);
    std::string first;
    for (int i = 0; i < 10; ++i) {
        util::ByteBuffer out;
        ASSERT_TRUE(compress_once(pool, bytes(m), 15, out));
        if (i == 0) first = str(out);
        EXPECT_EQ(str(out), first);  // no context: identical every time
        EXPECT_EQ(RefInflate().message(str(out)), m);
    }
    EXPECT_EQ(pool.stats().compress_once_calls, 10u);
    EXPECT_EQ(pool.stats().deflaters_created, 1u);
    EXPECT_EQ(pool.idle_deflaters(), 1u);
}

TEST(DeflatePool, KeepsAtMostAFewIdleStreams) {
    DeflatePool pool(DeflateConfig{});
    std::vector<std::unique_ptr<Inflater>> inf;
    std::vector<std::unique_ptr<Deflater>> def;
    for (int i = 0; i < 10; ++i) {
        inf.push_back(pool.take_inflater(15));
        def.push_back(pool.take_deflater(15));
    }
    for (auto& s : inf) pool.give_back(std::move(s));
    for (auto& s : def) pool.give_back(std::move(s));
    EXPECT_EQ(pool.idle_inflaters(), DeflatePool::keep_inflaters);
    EXPECT_EQ(pool.idle_deflaters(), DeflatePool::keep_deflaters);
}

TEST(DeflatePool, ReWindowsAnIdleInflater) {
    DeflatePool pool(DeflateConfig{});
    pool.give_back(pool.take_inflater(15));
    auto s = pool.take_inflater(10);
    EXPECT_EQ(s->window_bits(), 10);
    EXPECT_EQ(pool.stats().inflaters_created, 1u);
    RefDeflate ref(6, 10);
    util::ByteBuffer out;
    const std::string plain = json_text(5000);
    EXPECT_EQ(s->inflate(bytes(ref.message(plain)), true, out, no_limit), InflateResult::ok);
    EXPECT_EQ(str(out), plain);
}

DeflateParams negotiated(const std::string& offer, const DeflateConfig& cfg) {
    std::string_view v = offer;
    DeflateParams p;
    EXPECT_TRUE(negotiate_deflate({&v, 1}, cfg, p));
    return p;
}

// Default config: no context takeover either way, so a connection holds no zlib stream between messages.
TEST(DeflateSession, NoContextTakeoverHoldsNothingBetweenMessages) {
    DeflateConfig cfg;
    DeflatePool pool(cfg);
    DeflateSession s(negotiated("permessage-deflate; client_max_window_bits", cfg));
    RefDeflate client(6, 15);
    RefInflate client_in;
    for (int i = 0; i < 5; ++i) {
        const std::string m = json_text(2000, i);
        util::ByteBuffer out;
        ASSERT_EQ(s.inflate(pool, bytes(client.message(m)), true, out, 1 << 20), InflateResult::ok);
        EXPECT_EQ(str(out), m);
        client.reset();  // client_no_context_takeover was agreed
        EXPECT_EQ(s.held_streams(), 0);
        ASSERT_TRUE(s.wants_compression(m.size(), cfg));
        util::ByteBuffer c;
        ASSERT_TRUE(s.deflate(pool, bytes(m), c));
        EXPECT_EQ(client_in.message(str(c)), m);
        EXPECT_EQ(s.held_streams(), 0);
    }
    EXPECT_EQ(pool.stats().inflaters_created, 1u);
    EXPECT_EQ(pool.stats().deflaters_created, 1u);
    EXPECT_EQ(pool.stats().messages_inflated, 5u);
    EXPECT_EQ(pool.stats().messages_deflated, 5u);
}

TEST(DeflateSession, ContextTakeoverKeepsStreamsUntilRelease) {
    DeflateConfig cfg;
    cfg.context_takeover = true;
    DeflatePool pool(cfg);
    DeflateSession s(negotiated("permessage-deflate", cfg));
    EXPECT_EQ(s.held_streams(), 0);  // lazy: nothing until the first message
    RefDeflate client(6, 15);
    RefInflate client_in;
    const std::string m = json_text(2000);
    std::size_t last_size = 0;
    for (int i = 0; i < 3; ++i) {
        util::ByteBuffer out;
        ASSERT_EQ(s.inflate(pool, bytes(client.message(m)), true, out, 1 << 20), InflateResult::ok);
        EXPECT_EQ(str(out), m);
        util::ByteBuffer c;
        ASSERT_TRUE(s.deflate(pool, bytes(m), c));
        EXPECT_EQ(client_in.message(str(c)), m);
        if (i > 0) {
            EXPECT_LT(c.size(), last_size);
        }
        last_size = c.size();
    }
    EXPECT_EQ(s.held_streams(), 2);
    EXPECT_FALSE(s.can_share(15, m.size(), cfg));  // its own window would go out of step
    s.release(pool);
    EXPECT_EQ(s.held_streams(), 0);
    EXPECT_EQ(pool.idle_inflaters(), 1u);
    EXPECT_EQ(pool.idle_deflaters(), 1u);
}

TEST(DeflateSession, FailureGivesTheStreamBack) {
    DeflateConfig cfg;
    cfg.context_takeover = true;
    DeflatePool pool(cfg);
    DeflateSession s(negotiated("permessage-deflate", cfg));
    util::ByteBuffer out;
    EXPECT_EQ(s.inflate(pool, bytes("\x07"), true, out, 1 << 20), InflateResult::corrupt);
    EXPECT_EQ(s.held_streams(), 0);
    EXPECT_EQ(pool.idle_inflaters(), 1u);
}

TEST(DeflateSession, FragmentsOfOneMessageUseOneBorrowedStream) {
    DeflateConfig cfg;
    DeflatePool pool(cfg);
    DeflateSession s(negotiated("permessage-deflate", cfg));
    const std::string m = json_text(50000);
    const std::string c = RefDeflate(6, 15).message(m);
    util::ByteBuffer out;
    ASSERT_EQ(s.inflate(pool, bytes(std::string_view(c).substr(0, 100)), false, out, 1 << 20),
              InflateResult::ok);
    EXPECT_EQ(s.held_streams(), 1);
    ASSERT_EQ(s.inflate(pool, bytes(std::string_view(c).substr(100)), true, out, 1 << 20), InflateResult::ok);
    EXPECT_EQ(s.held_streams(), 0);
    EXPECT_EQ(str(out), m);
}

TEST(DeflateSession, SizeAndSharingRules) {
    DeflateConfig cfg;  // min_size 64, no context takeover
    DeflateSession s(negotiated("permessage-deflate", cfg));
    EXPECT_FALSE(s.wants_compression(63, cfg));
    EXPECT_TRUE(s.wants_compression(64, cfg));
    EXPECT_TRUE(s.can_share(15, 64, cfg));
    DeflateSession narrow(negotiated("permessage-deflate; server_max_window_bits=10", cfg));
    EXPECT_FALSE(narrow.can_share(15, 1000, cfg));  // a window-15 frame may refer too far back for it
    EXPECT_TRUE(narrow.can_share(10, 1000, cfg));
    DeflateSession eight(negotiated("permessage-deflate; server_max_window_bits=8", cfg));
    EXPECT_FALSE(eight.wants_compression(1000, cfg));
    EXPECT_FALSE(eight.can_share(9, 1000, cfg));
    DeflatePool pool(cfg);
    util::ByteBuffer out;
    EXPECT_FALSE(eight.deflate(pool, bytes(json_text(1000)), out));
    static_assert(sizeof(DeflateSession) <= 24);
}

}  // namespace
}  // namespace roomcast::ws
