#include "ws/extensions.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <string>
#include <vector>

namespace roomcast::ws {
namespace {

DeflateConfig shared_cfg() { return DeflateConfig{}; }  // default: no context takeover
DeflateConfig takeover_cfg() {
    DeflateConfig c;
    c.context_takeover = true;
    return c;
}

// The response value for these header lines, or "-" when permessage-deflate is declined.
std::string answer(std::vector<std::string> headers, const DeflateConfig& cfg = takeover_cfg()) {
    std::vector<std::string_view> views(headers.begin(), headers.end());
    DeflateParams p;
    if (!negotiate_deflate(views, cfg, p)) return "-";
    std::array<char, max_deflate_response_bytes> buf;
    const std::size_t n = write_deflate_response(p, buf);
    EXPECT_GT(n, 0u);
    return std::string(buf.data(), n);
}
std::string answer(const std::string& header, const DeflateConfig& cfg = takeover_cfg()) {
    return answer(std::vector<std::string>{header}, cfg);
}
DeflateParams params(const std::string& header, const DeflateConfig& cfg = takeover_cfg()) {
    std::string_view v = header;
    DeflateParams p;
    EXPECT_TRUE(negotiate_deflate({&v, 1}, cfg, p)) << header;
    return p;
}

// --- plain offers and the config ------------------------------------------------------------------

TEST(DeflateNegotiation, PlainOfferWithContextTakeoverConfigAgreesNothingElse) {
    EXPECT_EQ(answer("permessage-deflate"), "permessage-deflate");
    const DeflateParams p = params("permessage-deflate");
    EXPECT_EQ(p.server_window_bits, 15);
    EXPECT_EQ(p.client_window_bits, 15);
    EXPECT_FALSE(p.server_no_context_takeover);
    EXPECT_FALSE(p.client_no_context_takeover);
    EXPECT_TRUE(p.server_compresses());
}

// §7.1.1.1 / §7.1.1.2: a server MAY answer both no_context_takeover parameters unasked.
TEST(DeflateNegotiation, DefaultConfigAnswersBothNoContextTakeovers) {
    EXPECT_EQ(answer("permessage-deflate", shared_cfg()),
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    EXPECT_EQ(answer("permessage-deflate; client_max_window_bits", shared_cfg()),
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
              "client_max_window_bits=15");
}

TEST(DeflateNegotiation, DisabledConfigDeclinesEverything) {
    DeflateConfig c;
    c.enabled = false;
    EXPECT_EQ(answer("permessage-deflate", c), "-");
}

TEST(DeflateNegotiation, NoHeaderOrOtherExtensionsOnlyIsDeclined) {
    EXPECT_EQ(answer(std::vector<std::string>{}), "-");
    EXPECT_EQ(answer(""), "-");
    EXPECT_EQ(answer("x-webkit-deflate-frame"), "-");
    EXPECT_EQ(answer("foo; bar=1, baz"), "-");
}

// --- each parameter -----------------------------------------------------------------------------

// §7.1.1.1: accepting an offer with server_no_context_takeover MUST answer it.
TEST(DeflateNegotiation, ServerNoContextTakeoverIsEchoed) {
    EXPECT_EQ(answer("permessage-deflate; server_no_context_takeover"),
              "permessage-deflate; server_no_context_takeover");
    EXPECT_TRUE(params("permessage-deflate; server_no_context_takeover").server_no_context_takeover);
}

// §7.1.1.2: the hint is taken, so the server's inflater holds no window between messages.
TEST(DeflateNegotiation, ClientNoContextTakeoverHintIsTaken) {
    EXPECT_EQ(answer("permessage-deflate; client_no_context_takeover"),
              "permessage-deflate; client_no_context_takeover");
    EXPECT_TRUE(params("permessage-deflate; client_no_context_takeover").client_no_context_takeover);
}

// §7.1.2.2: without a value the server picks; it picks 15.
TEST(DeflateNegotiation, ClientMaxWindowBitsWithoutValue) {
    EXPECT_EQ(answer("permessage-deflate; client_max_window_bits"),
              "permessage-deflate; client_max_window_bits=15");
    EXPECT_EQ(params("permessage-deflate; client_max_window_bits").client_window_bits, 15);
}

TEST(DeflateNegotiation, ClientMaxWindowBitsEveryValue) {
    for (int b = 8; b <= 15; ++b) {
        const std::string h = "permessage-deflate; client_max_window_bits=" + std::to_string(b);
        EXPECT_EQ(answer(h), h);
        EXPECT_EQ(params(h).client_window_bits, b);
    }
}

// §7.1.2.2: client_max_window_bits MUST NOT be answered when not offered.
TEST(DeflateNegotiation, ClientMaxWindowBitsNotAnsweredUnlessOffered) {
    EXPECT_FALSE(params("permessage-deflate").send_client_window_bits);
}

// §7.1.2.1: answer the same or a smaller value.
TEST(DeflateNegotiation, ServerMaxWindowBitsEveryValue) {
    for (int b = 9; b <= 15; ++b) {
        const std::string h = "permessage-deflate; server_max_window_bits=" + std::to_string(b);
        EXPECT_EQ(answer(h), h);
        EXPECT_EQ(params(h).server_window_bits, b);
        EXPECT_TRUE(params(h).server_compresses());
    }
}

TEST(DeflateNegotiation, ServerMaxWindowBitsAnsweredWithTheSmallerConfigWindow) {
    DeflateConfig c = takeover_cfg();
    c.window_bits = 11;
    EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=14", c),
              "permessage-deflate; server_max_window_bits=11");
    EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=10", c),
              "permessage-deflate; server_max_window_bits=10");
    // Not offered: the server just compresses with 11; a client inflating with 15 copes.
    EXPECT_EQ(answer("permessage-deflate", c), "permessage-deflate");
    EXPECT_EQ(params("permessage-deflate", c).server_window_bits, 11);
}

// zlib cannot deflate with a 256-byte window: the offer is accepted and the server never compresses.
TEST(DeflateNegotiation, ServerMaxWindowBits8IsAcceptedButTheServerSendsUncompressed) {
    EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=8"),
              "permessage-deflate; server_max_window_bits=8");
    const DeflateParams p = params("permessage-deflate; server_max_window_bits=8");
    EXPECT_EQ(p.server_window_bits, 8);
    EXPECT_FALSE(p.server_compresses());
}

TEST(DeflateNegotiation, AllParametersTogether) {
    EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=9; server_max_window_bits=12; "
                     "client_no_context_takeover; server_no_context_takeover"),
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
              "server_max_window_bits=12; client_max_window_bits=9");
}

// --- quoting and whitespace ----------------------------------------------------------------------

// RFC 6455 §9.1 / RFC 7692 §7.1: a quoted value is unquoted, then must still be valid.
TEST(DeflateNegotiation, QuotedValuesAreUnquoted) {
    EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=\"10\""),
              "permessage-deflate; client_max_window_bits=10");
    EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=\"12\""),
              "permessage-deflate; server_max_window_bits=12");
    EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=\"1\\5\""),  // quoted-pair
              "permessage-deflate; client_max_window_bits=15");
}

TEST(DeflateNegotiation, OptionalWhitespaceAnywhereBetweenElements) {
    EXPECT_EQ(
        answer(
            " \tpermessage-deflate \t; \tclient_max_window_bits \t= \t10 \t;server_no_context_takeover , "),
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10");
}

TEST(DeflateNegotiation, EmptyListElementsAreSkipped) {
    EXPECT_EQ(answer(", ,, permessage-deflate ,,"), "permessage-deflate");
}

// --- declined offers -----------------------------------------------------------------------------

TEST(DeflateNegotiation, BadWindowValuesDecline) {
    for (const char* v : {"0", "7", "16", "abc", "\"1 5\"", "08", "015", "+9", "-9", "9.0", "1e1", "\"\"",
                          "99999999999999999999999", "\"abc\"", "\"7\"", "\"16\"", "\"0x9\"", "9a", "a9"}) {
        EXPECT_EQ(answer(std::string("permessage-deflate; client_max_window_bits=") + v), "-") << v;
        EXPECT_EQ(answer(std::string("permessage-deflate; server_max_window_bits=") + v), "-") << v;
    }
}

TEST(DeflateNegotiation, ServerMaxWindowBitsNeedsAValue) {
    EXPECT_EQ(answer("permessage-deflate; server_max_window_bits"), "-");
}

TEST(DeflateNegotiation, NoContextTakeoverParametersTakeNoValue) {
    EXPECT_EQ(answer("permessage-deflate; server_no_context_takeover=1"), "-");
    EXPECT_EQ(answer("permessage-deflate; client_no_context_takeover=true"), "-");
    EXPECT_EQ(answer("permessage-deflate; client_no_context_takeover=\"\""), "-");
}

TEST(DeflateNegotiation, DuplicateParametersDecline) {
    for (const char* p :
         {"server_no_context_takeover", "client_no_context_takeover", "client_max_window_bits",
          "client_max_window_bits=10", "server_max_window_bits=10"}) {
        EXPECT_EQ(answer(std::string("permessage-deflate; ") + p + "; " + p), "-") << p;
    }
    EXPECT_EQ(answer("permessage-deflate; client_max_window_bits; client_max_window_bits=9"), "-");
    EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=9; server_max_window_bits=10"), "-");
}

TEST(DeflateNegotiation, UnknownParametersDecline) {
    EXPECT_EQ(answer("permessage-deflate; foo"), "-");
    EXPECT_EQ(answer("permessage-deflate; foo=bar"), "-");
    EXPECT_EQ(answer("permessage-deflate; client_max_window_bit"), "-");
    EXPECT_EQ(answer("permessage-deflate; Client_Max_Window_Bits"), "-");  // names are exact
}

TEST(DeflateNegotiation, ExtensionNameIsExact) {
    EXPECT_EQ(answer("Permessage-Deflate"), "-");
    EXPECT_EQ(answer("permessage-deflate2"), "-");
    EXPECT_EQ(answer("\"permessage-deflate\""), "-");
}

TEST(DeflateNegotiation, MalformedElementsDecline) {
    for (const char* h : {"permessage-deflate;", "permessage-deflate; ", "permessage-deflate;;",
                          "permessage-deflate; =9", "permessage-deflate; client_max_window_bits=",
                          "permessage-deflate x", "permessage-deflate; client_max_window_bits=\"10",
                          "permessage-deflate; client_max_window_bits=\"1\\", "permessage-deflate; a b",
                          "permessage-deflate; client_max_window_bits=10 11", ";permessage-deflate",
                          "permessage-deflate; client_max_window_bits=\"1\x01\""}) {
        EXPECT_EQ(answer(h), "-") << h;
    }
}

// --- several offers and headers ----------------------------------------------------------------

TEST(DeflateNegotiation, FirstBadSecondGoodOfferTakesTheSecond) {
    EXPECT_EQ(
        answer("permessage-deflate; server_max_window_bits=7, permessage-deflate; client_max_window_bits"),
        "permessage-deflate; client_max_window_bits=15");
    EXPECT_EQ(answer("permessage-deflate; foo, permessage-deflate; server_no_context_takeover"),
              "permessage-deflate; server_no_context_takeover");
}

TEST(DeflateNegotiation, FirstAcceptableOfferWinsOverLaterOnes) {
    EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=10, permessage-deflate"),
              "permessage-deflate; server_max_window_bits=10");
}

TEST(DeflateNegotiation, MalformedOfferThenGoodOffer) {
    EXPECT_EQ(answer("permessage-deflate x, permessage-deflate"), "permessage-deflate");
    EXPECT_EQ(answer("permessage-deflate; =, permessage-deflate"), "permessage-deflate");
    EXPECT_EQ(answer("=;=, permessage-deflate"), "permessage-deflate");
}

// A comma inside a quoted-string does not start a new offer.
TEST(DeflateNegotiation, QuotedCommaIsNotAnOfferSeparator) {
    EXPECT_EQ(answer("foo; a=\"x, permessage-deflate\", permessage-deflate; server_max_window_bits=10"),
              "permessage-deflate; server_max_window_bits=10");
    EXPECT_EQ(answer("permessage-deflate; bad=\"x, permessage-deflate\""), "-");
    // Unterminated quote: the rest of the line is inside it.
    EXPECT_EQ(answer("foo; a=\"x, permessage-deflate"), "-");
    // ... but the next header line is a new start.
    EXPECT_EQ(answer(std::vector<std::string>{"foo; a=\"x, permessage-deflate", "permessage-deflate"}),
              "permessage-deflate");
}

TEST(DeflateNegotiation, SeveralHeaderLinesAreReadInOrder) {
    EXPECT_EQ(answer(std::vector<std::string>{"x-webkit-deflate-frame",
                                              "permessage-deflate; foo, permessage-deflate; "
                                              "client_max_window_bits=11"}),
              "permessage-deflate; client_max_window_bits=11");
    EXPECT_EQ(answer(std::vector<std::string>{"permessage-deflate; server_max_window_bits=9",
                                              "permessage-deflate; server_max_window_bits=10"}),
              "permessage-deflate; server_max_window_bits=9");
    EXPECT_EQ(answer(std::vector<std::string>{"", " , ", "permessage-deflate"}), "permessage-deflate");
}

TEST(DeflateNegotiation, OnlyTheFirstSixteenOffersAreLookedAt) {
    std::string h;
    for (std::size_t i = 0; i + 1 < max_extension_offers; ++i) h += "permessage-deflate; bad, ";
    EXPECT_EQ(answer(h + "permessage-deflate"), "permessage-deflate");                 // the 16th
    EXPECT_EQ(answer(h + "foo, permessage-deflate"), "-");                             // the 17th
    EXPECT_EQ(answer(std::vector<std::string>{h, "foo", "permessage-deflate"}), "-");  // counted across lines
}

TEST(DeflateNegotiation, OfferWithMoreThanSixteenParametersIsDeclined) {
    // Only possible with unknown or duplicate params anyway; the cap keeps the rule explicit.
    std::string h = "permessage-deflate";
    for (std::size_t i = 0; i < max_offer_params + 1; ++i) h += "; server_no_context_takeover";
    EXPECT_EQ(answer(h + ", permessage-deflate"), "permessage-deflate");
}

// --- pathological input: linear time, right answer ----------------------------------------------

// Times negotiate_deflate alone (no copies) and returns its answer as "+" (accepted) or "-".
std::pair<std::string, double> timed(const std::vector<std::string>& headers) {
    std::vector<std::string_view> views(headers.begin(), headers.end());
    DeflateParams p;
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = negotiate_deflate(views, takeover_cfg(), p);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return {ok ? "+" : "-", ms};
}

// Each case is ~1 MiB of hostile input; a linear parser takes ~1 ms (a few under sanitizers), a
// quadratic one would take minutes. The bound is loose so that a loaded CI machine does not flake.
TEST(DeflateNegotiation, PathologicalValuesAreLinear) {
    constexpr std::size_t big = 1 << 20;
    std::string many;
    for (int i = 0; i < 100000; ++i) many += "permessage-deflate; x=\"a,b\", ";
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        // a 1 MiB value made of escapes, then a good offer
        {{"foo; a=\"" + std::string(big, '\\') + "\", permessage-deflate"}, "+"},
        {{"permessage-deflate; client_max_window_bits=\"" + std::string(big, '1') + "\", permessage-deflate"},
         "+"},
        {{"permessage-deflate; client_max_window_bits=" + std::string(big, '9')}, "-"},
        {{std::string(big, ';')}, "-"},
        {{std::string(big, ',') + "permessage-deflate"}, "+"},
        {{std::string(big, ' ') + "permessage-deflate"}, "+"},
        {{std::string(big, 'a') + ", permessage-deflate"}, "+"},
        {{std::string(big, '"')}, "-"},
        {{"permessage-deflate" + std::string(big / 2, ';') + ", permessage-deflate"}, "+"},
        {{many + "permessage-deflate"}, "-"},  // past the offer cap: the rest is not even read
        {std::vector<std::string>(64, std::string(big / 64, ',')), "-"},  // many empty header lines
    };
    for (const auto& [h, want] : cases) {
        const auto [got, ms] = timed(h);
        EXPECT_EQ(got, want) << h[0].substr(0, 40);
        EXPECT_LT(ms, 2000.0) << h[0].substr(0, 40);
    }
}

// --- the response -------------------------------------------------------------------------------

TEST(DeflateResponse, EveryCombinationIsExact) {
    for (int mask = 0; mask < 16; ++mask) {
        DeflateParams p;
        p.server_no_context_takeover = mask & 1;
        p.client_no_context_takeover = mask & 2;
        p.send_server_window_bits = mask & 4;
        p.send_client_window_bits = mask & 8;
        p.server_window_bits = 9;
        p.client_window_bits = 12;
        std::string want = "permessage-deflate";
        if (mask & 1) want += "; server_no_context_takeover";
        if (mask & 2) want += "; client_no_context_takeover";
        if (mask & 4) want += "; server_max_window_bits=9";
        if (mask & 8) want += "; client_max_window_bits=12";
        std::array<char, max_deflate_response_bytes> buf;
        const std::size_t n = write_deflate_response(p, buf);
        EXPECT_EQ(std::string(buf.data(), n), want);
    }
}

TEST(DeflateResponse, LongestFitsAndShortBufferIsRefused) {
    DeflateParams p{15, 15, true, true, true, true};
    std::array<char, max_deflate_response_bytes> buf;
    EXPECT_EQ(write_deflate_response(p, buf), max_deflate_response_bytes);
    std::array<char, max_deflate_response_bytes - 1> small;
    EXPECT_EQ(write_deflate_response(p, small), 0u);
}

// The response is itself a valid offer that yields the same params (a sanity check of the grammar).
TEST(DeflateResponse, ParsesBackToTheSameParams) {
    const DeflateParams p = params(
        "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12; "
        "server_no_context_takeover; client_no_context_takeover");
    std::array<char, max_deflate_response_bytes> buf;
    const std::string r(buf.data(), write_deflate_response(p, buf));
    EXPECT_EQ(params(r), p);
}

}  // namespace
}  // namespace roomcast::ws
