#include <gtest/gtest.h>

#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "guarded_pages.hpp"
#include "simd/kernels.hpp"

namespace roomcast::simd {
namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes(std::initializer_list<int> list) {
    Bytes v;
    for (int b : list) v.push_back(static_cast<std::byte>(b));
    return v;
}
Bytes bytes(std::string_view s) {
    Bytes v(s.size());
    if (!s.empty()) std::memcpy(v.data(), s.data(), s.size());
    return v;
}
Bytes operator+(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::string kernel_name(const ::testing::TestParamInfo<const Kernels*>& info) { return info.param->name; }

std::uint32_t run(const Kernels& k, const Bytes& b, std::size_t n, std::uint32_t state = utf8_accept) {
    return k.validate_utf8(b.data(), n, state);
}

// ---- an independent oracle: RFC 3629 §4 written as its table of byte ranges ------------------------

enum class Verdict { complete, incomplete, invalid };

struct GrammarRow {
    int first_lo, first_hi;
    int length;
    int lo[3], hi[3];  // ranges of the 2nd, 3rd, 4th byte
};
constexpr GrammarRow rfc3629[] = {
    {0x00, 0x7F, 1, {}, {}},
    {0xC2, 0xDF, 2, {0x80}, {0xBF}},
    {0xE0, 0xE0, 3, {0xA0, 0x80}, {0xBF, 0xBF}},
    {0xE1, 0xEC, 3, {0x80, 0x80}, {0xBF, 0xBF}},
    {0xED, 0xED, 3, {0x80, 0x80}, {0x9F, 0xBF}},
    {0xEE, 0xEF, 3, {0x80, 0x80}, {0xBF, 0xBF}},
    {0xF0, 0xF0, 4, {0x90, 0x80, 0x80}, {0xBF, 0xBF, 0xBF}},
    {0xF1, 0xF3, 4, {0x80, 0x80, 0x80}, {0xBF, 0xBF, 0xBF}},
    {0xF4, 0xF4, 4, {0x80, 0x80, 0x80}, {0x8F, 0xBF, 0xBF}},
};

Verdict grammar_verdict(const std::byte* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        const int first = static_cast<int>(p[i]);
        const GrammarRow* row = nullptr;
        for (const auto& r : rfc3629)
            if (first >= r.first_lo && first <= r.first_hi) row = &r;
        if (row == nullptr) return Verdict::invalid;
        for (int j = 1; j < row->length; ++j) {
            if (i + j == n) return Verdict::incomplete;
            const int b = static_cast<int>(p[i + j]);
            if (b < row->lo[j - 1] || b > row->hi[j - 1]) return Verdict::invalid;
        }
        i += row->length;
    }
    return Verdict::complete;
}

Verdict verdict_of(std::uint32_t state) {
    return state == utf8_accept   ? Verdict::complete
           : state == utf8_reject ? Verdict::invalid
                                  : Verdict::incomplete;
}

// ---- test vectors -------------------------------------------------------------------------------------
//
// Markus Kuhn, "UTF-8 decoder capability and stress test" (section numbers in the names), and the
// Autobahn TestSuite 6.x cases. `fail_at` is the index of the first byte after which no continuation
// can make the input valid: Autobahn 6.4 requires the connection to fail right there (fail fast).

struct Case {
    std::string name;
    Bytes input;
    Verdict verdict;
    std::size_t fail_at = 0;  // for Verdict::invalid
};

Case valid(std::string name, Bytes b) { return {std::move(name), std::move(b), Verdict::complete}; }
Case incomplete(std::string name, Bytes b) { return {std::move(name), std::move(b), Verdict::incomplete}; }
Case invalid(std::string name, Bytes b, std::size_t fail_at) {
    return {std::move(name), std::move(b), Verdict::invalid, fail_at};
}

const Bytes kosme = bytes({0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5});  // "κόσμε"

std::vector<Case> make_cases() {
    std::vector<Case> c = {
        valid("empty", {}),
        valid("1 kosme", kosme),
        valid("autobahn 6.2 Hello-mu@ssoeaeueaa-UTF-8!!",
              bytes("Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!")),
        // 2.1 first possible sequence of each length
        valid("2.1.1 U+0000", bytes({0x00})),
        valid("2.1.2 U+0080", bytes({0xC2, 0x80})),
        valid("2.1.3 U+0800", bytes({0xE0, 0xA0, 0x80})),
        valid("2.1.4 U+10000", bytes({0xF0, 0x90, 0x80, 0x80})),
        invalid("2.1.5 5-byte U+200000", bytes({0xF8, 0x88, 0x80, 0x80, 0x80}), 0),
        invalid("2.1.6 6-byte U+4000000", bytes({0xFC, 0x84, 0x80, 0x80, 0x80, 0x80}), 0),
        // 2.2 last possible sequence of each length
        valid("2.2.1 U+007F", bytes({0x7F})),
        valid("2.2.2 U+07FF", bytes({0xDF, 0xBF})),
        valid("2.2.3 U+FFFF", bytes({0xEF, 0xBF, 0xBF})),
        invalid("2.2.4 U+1FFFFF", bytes({0xF7, 0xBF, 0xBF, 0xBF}), 0),
        invalid("2.2.5 U+3FFFFFF", bytes({0xFB, 0xBF, 0xBF, 0xBF, 0xBF}), 0),
        invalid("2.2.6 U+7FFFFFFF", bytes({0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF}), 0),
        // 2.3 other boundaries
        valid("2.3.1 U+D7FF", bytes({0xED, 0x9F, 0xBF})),
        valid("2.3.2 U+E000", bytes({0xEE, 0x80, 0x80})),
        valid("2.3.3 U+FFFD", bytes({0xEF, 0xBF, 0xBD})),
        valid("2.3.4 U+10FFFF", bytes({0xF4, 0x8F, 0xBF, 0xBF})),
        valid("2.3 U+100000", bytes({0xF4, 0x80, 0x80, 0x80})),
        invalid("2.3.5 U+110000", bytes({0xF4, 0x90, 0x80, 0x80}), 1),
        invalid("2.3 F4 BF BF BF", bytes({0xF4, 0xBF, 0xBF, 0xBF}), 1),
        // 3.1 unexpected continuation bytes
        invalid("3.1.1 80", bytes({0x80}), 0),
        invalid("3.1.2 BF", bytes({0xBF}), 0),
        invalid("3.1.3 80 BF", bytes({0x80, 0xBF}), 0),
        invalid("3.1.4 80 BF 80", bytes({0x80, 0xBF, 0x80}), 0),
        invalid("3.1.5 80 BF 80 BF", bytes({0x80, 0xBF, 0x80, 0xBF}), 0),
        invalid("3.1.6", bytes({0x80, 0xBF, 0x80, 0xBF, 0x80}), 0),
        invalid("3.1.7", bytes({0x80, 0xBF, 0x80, 0xBF, 0x80, 0xBF}), 0),
        invalid("3.1.8", bytes({0x80, 0xBF, 0x80, 0xBF, 0x80, 0xBF, 0x80}), 0),
        invalid("ASCII then continuation", bytes({0x41, 0x80}), 1),
        invalid("complete 2-byte then continuation", bytes({0xC2, 0x80, 0x80}), 2),
        invalid("complete 3-byte then continuation", bytes({0xE1, 0x80, 0x80, 0x80}), 3),
        invalid("complete 4-byte then continuation", bytes({0xF1, 0x80, 0x80, 0x80, 0x80}), 4),
        // 3.3 sequences with the last continuation byte missing
        invalid("3.3.1 C0", bytes({0xC0}), 0),
        invalid("3.3.2 E0 80", bytes({0xE0, 0x80}), 1),
        invalid("3.3.3 F0 80 80", bytes({0xF0, 0x80, 0x80}), 1),
        invalid("3.3.4 F8 80 80 80", bytes({0xF8, 0x80, 0x80, 0x80}), 0),
        invalid("3.3.5 FC 80 80 80 80", bytes({0xFC, 0x80, 0x80, 0x80, 0x80}), 0),
        incomplete("3.3.6 DF", bytes({0xDF})),
        incomplete("3.3.7 EF BF", bytes({0xEF, 0xBF})),
        invalid("3.3.8 F7 BF BF", bytes({0xF7, 0xBF, 0xBF}), 0),
        invalid("3.3.9 FB BF BF BF", bytes({0xFB, 0xBF, 0xBF, 0xBF}), 0),
        invalid("3.3.10 FD BF BF BF BF", bytes({0xFD, 0xBF, 0xBF, 0xBF, 0xBF}), 0),
        incomplete("C2", bytes({0xC2})),
        incomplete("E0 A0", bytes({0xE0, 0xA0})),
        incomplete("E1", bytes({0xE1})),
        incomplete("ED 9F", bytes({0xED, 0x9F})),
        incomplete("F0 90 80", bytes({0xF0, 0x90, 0x80})),
        incomplete("F1", bytes({0xF1})),
        incomplete("F3 BF", bytes({0xF3, 0xBF})),
        incomplete("F4 8F BF", bytes({0xF4, 0x8F, 0xBF})),
        incomplete("kosme then E1 BD", kosme + bytes({0xE1, 0xBD})),
        invalid("2-byte lead then ASCII", bytes({0xC2, 0x41}), 1),
        invalid("3-byte lead, one continuation, then ASCII", bytes({0xE1, 0x80, 0x41}), 2),
        invalid("4-byte lead, two continuations, then ASCII", bytes({0xF1, 0x80, 0x80, 0x41}), 3),
        invalid("4-byte lead, two continuations, then a lead", bytes({0xF4, 0x8F, 0xBF, 0xC2}), 3),
        // 3.4 concatenation of 3.3
        invalid(
            "3.4 concatenated incomplete sequences",
            bytes({0xC0, 0xE0, 0x80, 0xF0, 0x80, 0x80, 0xF8, 0x80, 0x80, 0x80, 0xFC, 0x80, 0x80, 0x80, 0x80,
                   0xDF, 0xEF, 0xBF, 0xF7, 0xBF, 0xBF, 0xFB, 0xBF, 0xBF, 0xBF, 0xFD, 0xBF, 0xBF, 0xBF, 0xBF}),
            0),
        invalid("3.4 DF EF BF", bytes({0xDF, 0xEF, 0xBF}), 1),
        // 3.5 impossible bytes
        invalid("3.5.1 FE", bytes({0xFE}), 0),
        invalid("3.5.2 FF", bytes({0xFF}), 0),
        invalid("3.5.3 FE FE FF FF", bytes({0xFE, 0xFE, 0xFF, 0xFF}), 0),
        // 4.1 overlong '/'
        invalid("4.1.1 C0 AF", bytes({0xC0, 0xAF}), 0),
        invalid("4.1.2 E0 80 AF", bytes({0xE0, 0x80, 0xAF}), 1),
        invalid("4.1.3 F0 80 80 AF", bytes({0xF0, 0x80, 0x80, 0xAF}), 1),
        invalid("4.1.4 F8 80 80 80 AF", bytes({0xF8, 0x80, 0x80, 0x80, 0xAF}), 0),
        invalid("4.1.5 FC 80 80 80 80 AF", bytes({0xFC, 0x80, 0x80, 0x80, 0x80, 0xAF}), 0),
        // 4.2 maximum overlongs
        invalid("4.2.1 C1 BF", bytes({0xC1, 0xBF}), 0),
        invalid("4.2.2 E0 9F BF", bytes({0xE0, 0x9F, 0xBF}), 1),
        invalid("4.2.3 F0 8F BF BF", bytes({0xF0, 0x8F, 0xBF, 0xBF}), 1),
        invalid("4.2.4 F8 87 BF BF BF", bytes({0xF8, 0x87, 0xBF, 0xBF, 0xBF}), 0),
        invalid("4.2.5 FC 83 BF BF BF BF", bytes({0xFC, 0x83, 0xBF, 0xBF, 0xBF, 0xBF}), 0),
        // 4.3 overlong NUL
        invalid("4.3.1 C0 80", bytes({0xC0, 0x80}), 0),
        invalid("4.3.2 E0 80 80", bytes({0xE0, 0x80, 0x80}), 1),
        invalid("4.3.3 F0 80 80 80", bytes({0xF0, 0x80, 0x80, 0x80}), 1),
        invalid("4.3.4 F8 80 80 80 80", bytes({0xF8, 0x80, 0x80, 0x80, 0x80}), 0),
        invalid("4.3.5 FC 80 80 80 80 80", bytes({0xFC, 0x80, 0x80, 0x80, 0x80, 0x80}), 0),
        // 5.1 single UTF-16 surrogates
        invalid("5.1.1 U+D800", bytes({0xED, 0xA0, 0x80}), 1),
        invalid("5.1.2 U+DB7F", bytes({0xED, 0xAD, 0xBF}), 1),
        invalid("5.1.3 U+DB80", bytes({0xED, 0xAE, 0x80}), 1),
        invalid("5.1.4 U+DBFF", bytes({0xED, 0xAF, 0xBF}), 1),
        invalid("5.1.5 U+DC00", bytes({0xED, 0xB0, 0x80}), 1),
        invalid("5.1.6 U+DF80", bytes({0xED, 0xBE, 0x80}), 1),
        invalid("5.1.7 U+DFFF", bytes({0xED, 0xBF, 0xBF}), 1),
        // 5.2 paired UTF-16 surrogates
        invalid("5.2.1 U+D800 U+DC00", bytes({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}), 1),
        invalid("5.2.2 U+D800 U+DFFF", bytes({0xED, 0xA0, 0x80, 0xED, 0xBF, 0xBF}), 1),
        invalid("5.2.3 U+DB7F U+DC00", bytes({0xED, 0xAD, 0xBF, 0xED, 0xB0, 0x80}), 1),
        invalid("5.2.4 U+DB7F U+DFFF", bytes({0xED, 0xAD, 0xBF, 0xED, 0xBF, 0xBF}), 1),
        invalid("5.2.5 U+DB80 U+DC00", bytes({0xED, 0xAE, 0x80, 0xED, 0xB0, 0x80}), 1),
        invalid("5.2.6 U+DB80 U+DFFF", bytes({0xED, 0xAE, 0x80, 0xED, 0xBF, 0xBF}), 1),
        invalid("5.2.7 U+DBFF U+DC00", bytes({0xED, 0xAF, 0xBF, 0xED, 0xB0, 0x80}), 1),
        invalid("5.2.8 U+DBFF U+DFFF", bytes({0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF}), 1),
        // 5.3 noncharacters are valid UTF-8 (RFC 3629 and Autobahn 6.22 accept them)
        valid("5.3.1 U+FFFE", bytes({0xEF, 0xBF, 0xBE})),
        valid("5.3.2 U+FFFF", bytes({0xEF, 0xBF, 0xBF})),
        valid("5.3.3 U+FDD0", bytes({0xEF, 0xB7, 0x90})),
        valid("5.3.3 U+FDEF", bytes({0xEF, 0xB7, 0xAF})),
        valid("5.3.4 U+1FFFE U+10FFFF", bytes({0xF0, 0x9F, 0xBF, 0xBE, 0xF4, 0x8F, 0xBF, 0xBF})),
        // Autobahn 6.3 / 6.4: fail fast inside a text that started valid
        invalid("autobahn 6.3.1 kosme + U+D800 + edited", kosme + bytes({0xED, 0xA0, 0x80}) + bytes("edited"),
                kosme.size() + 1),
        invalid("autobahn 6.4.1 kosme + F4 90 80 80 + edited",
                kosme + bytes({0xF4, 0x90, 0x80, 0x80}) + bytes("edited"), kosme.size() + 1),
        invalid("autobahn 6.4.2 kosme + F4 90 80 80 + edited", kosme + bytes({0xF4, 0x90}), kosme.size() + 1),
        invalid("kosme + C0 + edited", kosme + bytes({0xC0}) + bytes("edited"), kosme.size()),
    };
    // 3.1.9 all 64 continuation bytes
    Bytes conts;
    for (int b = 0x80; b <= 0xBF; ++b) conts.push_back(static_cast<std::byte>(b));
    c.push_back(invalid("3.1.9 all continuation bytes", conts, 0));
    // 3.2 lonely start bytes, each followed by a space. C0, C1 and F5-FF can never start a character;
    // the others fail at the space.
    for (int b = 0xC0; b <= 0xFD; ++b) {
        const bool never_a_lead = b == 0xC0 || b == 0xC1 || b >= 0xF5;
        c.push_back(invalid("3.2 lonely start byte " + std::to_string(b) + " + space", bytes({b, 0x20}),
                            never_a_lead ? 0 : 1));
    }
    return c;
}

const std::vector<Case>& cases() {
    static const std::vector<Case> all = make_cases();
    return all;
}

// ---- helpers ---------------------------------------------------------------------------------------

// STYLE.md §8: validates `b` whole, split in two at every byte, and one byte per call; all must agree.
// Returns the state for the whole input.
std::uint32_t validate_every_split(const Kernels& k, const Bytes& b) {
    const std::uint32_t whole = run(k, b, b.size());
    for (std::size_t cut = 0; cut <= b.size(); ++cut) {
        const std::uint32_t s = k.validate_utf8(b.data() + cut, b.size() - cut, run(k, b, cut));
        EXPECT_EQ(s, whole) << k.name << " split at " << cut;
    }
    std::uint32_t s = utf8_accept;
    for (std::size_t i = 0; i < b.size(); ++i) s = k.validate_utf8(b.data() + i, 1, s);
    EXPECT_EQ(s, whole) << k.name << " byte at a time";
    return whole;
}

// Fail fast (Autobahn 6.4): reject exactly when the prefix becomes impossible, not earlier, not later.
void expect_fails_at(const Kernels& k, const Bytes& b, std::size_t fail_at, const std::string& what) {
    EXPECT_NE(run(k, b, fail_at), utf8_reject)
        << k.name << " " << what << ": rejected before byte " << fail_at;
    EXPECT_EQ(run(k, b, fail_at + 1), utf8_reject)
        << k.name << " " << what << ": not rejected at byte " << fail_at;
}

// `len` bytes of valid text ending on a character boundary: ASCII, or (mixed) a cycle of 2-, 3- and
// 4-byte characters topped up with ASCII.
Bytes padding(std::size_t len, bool mixed) {
    static const Bytes cycle = bytes("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80q");  // é € 😀 q
    Bytes p;
    while (mixed && p.size() + cycle.size() <= len) p = p + cycle;
    p.resize(len, std::byte{'a'});
    return p;
}

class Utf8Test : public ::testing::TestWithParam<const Kernels*> {};

// ---- the vectors, whole and split ------------------------------------------------------------------

TEST_P(Utf8Test, KuhnAndAutobahnVectors) {
    const Kernels& k = *GetParam();
    for (const Case& c : cases()) {
        SCOPED_TRACE(c.name);
        ASSERT_EQ(grammar_verdict(c.input.data(), c.input.size()), c.verdict)
            << "test vector disagrees with RFC 3629";
        const std::uint32_t s = validate_every_split(k, c.input);
        EXPECT_EQ(verdict_of(s), c.verdict);
        if (c.verdict == Verdict::invalid) {
            expect_fails_at(k, c.input, c.fail_at, c.name);
        } else {
            for (std::size_t n = 0; n <= c.input.size(); ++n) EXPECT_NE(run(k, c.input, n), utf8_reject) << n;
        }
    }
}

// The same vectors behind valid text of every length up to two blocks, so each starts at every position
// of a SIMD block, after ASCII and after multi-byte text; and followed by text, which fails an
// unfinished character at the first byte after it (RFC 3629: a lead byte must get its continuations).
TEST_P(Utf8Test, VectorsAtEveryBlockPosition) {
    const Kernels& k = *GetParam();
    for (const Case& c : cases())
        for (bool mixed : {false, true})
            for (std::size_t pad = 0; pad <= 130; ++pad) {
                const Bytes before = padding(pad, mixed);
                const Bytes b = before + c.input;
                const std::string what =
                    c.name + " pad=" + std::to_string(pad) + (mixed ? " mixed" : " ascii");
                const std::uint32_t s = run(k, b, b.size());
                ASSERT_EQ(s, utf8_scalar(b.data(), b.size(), utf8_accept)) << k.name << " " << what;
                ASSERT_EQ(verdict_of(s), c.verdict) << k.name << " " << what;
                if (c.verdict == Verdict::invalid) {
                    expect_fails_at(k, b, pad + c.fail_at, what);
                    continue;
                }
                const Bytes after = b + padding(70, mixed);
                const std::uint32_t s2 = run(k, after, after.size());
                if (c.verdict == Verdict::complete) {
                    ASSERT_EQ(s2, utf8_accept) << k.name << " " << what;
                } else {
                    ASSERT_EQ(s2, utf8_reject) << k.name << " " << what;
                    expect_fails_at(k, after, b.size(), what);
                }
            }
}

TEST_P(Utf8Test, RejectIsFinal) {
    const Bytes ascii = bytes(std::string(200, 'a'));
    for (std::size_t n : {0, 1, 64, 200}) EXPECT_EQ(run(*GetParam(), ascii, n, utf8_reject), utf8_reject);
}

// ---- exhaustive and random comparisons ------------------------------------------------------------------

TEST(Utf8Scalar, MatchesRfc3629GrammarOnEveryStringUpToThreeBytes) {
    std::byte b[3];
    for (std::uint32_t v = 0; v < (1u << 24); ++v) {
        for (int i = 0; i < 3; ++i) b[i] = static_cast<std::byte>(v >> (8 * i));
        for (std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
            if (n < 3 && (v >> (8 * n)) != 0) continue;  // shorter strings once each
            ASSERT_EQ(verdict_of(utf8_scalar(b, n, utf8_accept)), grammar_verdict(b, n))
                << std::hex << v << " n=" << n;
        }
    }
}

// The bytes where the rules change, to the power 4 and 5.
constexpr std::uint8_t interesting[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                                        0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF};
constexpr std::size_t interesting_count = sizeof interesting;

TEST(Utf8Scalar, MatchesRfc3629GrammarOnBoundaryBytesUpToFiveLong) {
    std::byte b[5];
    for (std::size_t n = 4; n <= 5; ++n) {
        std::size_t total = 1;
        for (std::size_t i = 0; i < n; ++i) total *= interesting_count;
        for (std::size_t v = 0; v < total; ++v) {
            for (std::size_t i = 0, x = v; i < n; ++i, x /= interesting_count)
                b[i] = static_cast<std::byte>(interesting[x % interesting_count]);
            ASSERT_EQ(verdict_of(utf8_scalar(b, n, utf8_accept)), grammar_verdict(b, n)) << "v=" << v;
        }
    }
}

// Every 3-byte string, alone and straddling the first block boundary (bytes 62..64 after ASCII).
TEST_P(Utf8Test, MatchesScalarOnEveryThreeByteString) {
    const Kernels& k = *GetParam();
    if (k.validate_utf8 == &utf8_scalar) GTEST_SKIP() << "scalar is the reference";
    Bytes alone(3), straddling(62 + 3 + 2, std::byte{'a'});
    for (std::uint32_t v = 0; v < (1u << 24); ++v) {
        for (int i = 0; i < 3; ++i) alone[i] = straddling[62 + i] = static_cast<std::byte>(v >> (8 * i));
        ASSERT_EQ(run(k, alone, 3), utf8_scalar(alone.data(), 3, utf8_accept)) << std::hex << v;
        ASSERT_EQ(run(k, straddling, 65), utf8_scalar(straddling.data(), 65, utf8_accept)) << std::hex << v;
    }
}

// Boundary-byte strings of 4 and 5 at the start, across the first block edge and at the end of a block.
TEST_P(Utf8Test, MatchesScalarOnBoundaryBytesAtBlockEdges) {
    const Kernels& k = *GetParam();
    if (k.validate_utf8 == &utf8_scalar) GTEST_SKIP() << "scalar is the reference";
    struct Placement {
        std::size_t at, len;
    };
    for (const Placement pl : {Placement{0, 5}, Placement{60, 5}, Placement{62, 4}, Placement{124, 4}}) {
        std::size_t total = 1;
        for (std::size_t i = 0; i < pl.len; ++i) total *= interesting_count;
        Bytes b(pl.at + pl.len + 64, std::byte{'a'});
        for (std::size_t v = 0; v < total; ++v) {
            for (std::size_t i = 0, x = v; i < pl.len; ++i, x /= interesting_count)
                b[pl.at + i] = static_cast<std::byte>(interesting[x % interesting_count]);
            for (std::size_t n : {pl.at + pl.len, b.size()})
                ASSERT_EQ(run(k, b, n), utf8_scalar(b.data(), n, utf8_accept))
                    << "at=" << pl.at << " v=" << v << " n=" << n;
        }
    }
}

// Random text: mostly ASCII with 2-, 3- and 4-byte characters, sometimes a random byte or a character
// cut short. Each kernel must agree with scalar on the final state, whole and split in three.
Bytes random_text(std::mt19937& rng, std::size_t len, unsigned damage_per_mille) {
    auto in = [&](std::uint32_t lo, std::uint32_t hi) { return lo + rng() % (hi - lo + 1); };
    Bytes b;
    while (b.size() < len) {
        const unsigned roll = rng() % 1000;
        std::uint32_t cp;
        if (roll < damage_per_mille) {
            b.push_back(static_cast<std::byte>(rng()));
            continue;
        }
        const unsigned kind = rng() % 10;
        if (kind < 6)
            cp = in(0, 0x7F);
        else if (kind < 8)
            cp = in(0x80, 0x7FF);
        else if (kind < 9)
            cp = rng() % 2 ? in(0x800, 0xD7FF) : in(0xE000, 0xFFFF);
        else
            cp = in(0x10000, 0x10FFFF);
        unsigned char u[4];
        std::size_t n;
        if (cp < 0x80) {
            u[0] = static_cast<unsigned char>(cp);
            n = 1;
        } else if (cp < 0x800) {
            u[0] = 0xC0 | cp >> 6;
            u[1] = 0x80 | (cp & 0x3F);
            n = 2;
        } else if (cp < 0x10000) {
            u[0] = 0xE0 | cp >> 12;
            u[1] = 0x80 | (cp >> 6 & 0x3F);
            u[2] = 0x80 | (cp & 0x3F);
            n = 3;
        } else {
            u[0] = 0xF0 | cp >> 18;
            u[1] = 0x80 | (cp >> 12 & 0x3F);
            u[2] = 0x80 | (cp >> 6 & 0x3F);
            u[3] = 0x80 | (cp & 0x3F);
            n = 4;
        }
        if (roll < 2 * damage_per_mille) n = 1 + rng() % n;  // cut short (n may stay whole)
        for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<std::byte>(u[i]));
    }
    b.resize(len);
    return b;
}

TEST_P(Utf8Test, MatchesScalarOnRandomText) {
    const Kernels& k = *GetParam();
    std::mt19937 rng(42);
    for (int iter = 0; iter < 20000; ++iter) {
        const std::size_t len = iter % 100 == 0 ? 4096 + rng() % 70000 : rng() % 700;
        const unsigned damage = iter % 3 == 0 ? 0 : iter % 3 == 1 ? 1 : 20;
        const Bytes b = random_text(rng, len, damage);
        const std::uint32_t expected = utf8_scalar(b.data(), b.size(), utf8_accept);
        ASSERT_EQ(run(k, b, b.size()), expected) << "iter=" << iter << " len=" << len;
        const std::size_t cut1 = len ? rng() % (len + 1) : 0,
                          cut2 = cut1 + (len - cut1 ? rng() % (len - cut1 + 1) : 0);
        std::uint32_t s = run(k, b, cut1);
        ASSERT_EQ(s, utf8_scalar(b.data(), cut1, utf8_accept));
        s = k.validate_utf8(b.data() + cut1, cut2 - cut1, s);
        s = k.validate_utf8(b.data() + cut2, len - cut2, s);
        ASSERT_EQ(s, expected) << "iter=" << iter << " cuts " << cut1 << ", " << cut2;
    }
}

TEST_P(Utf8Test, AcceptsLargeValidText) {
    std::mt19937 rng(7);
    for (std::size_t len : {4095, 65536 + 7}) {
        Bytes b = random_text(rng, len, 0);
        while (grammar_verdict(b.data(), b.size()) != Verdict::complete)
            b.pop_back();  // drop a cut character
        b.resize(len, std::byte{'x'});
        EXPECT_EQ(run(*GetParam(), b, b.size()), utf8_accept) << len;
        for (std::size_t cut = 0; cut <= len; cut += cut < 300 || len - cut < 300 ? 1 : 61) {
            const std::uint32_t s = run(*GetParam(), b, cut);
            ASSERT_EQ(s, utf8_scalar(b.data(), cut, utf8_accept)) << "len=" << len << " cut=" << cut;
            ASSERT_EQ(GetParam()->validate_utf8(b.data() + cut, len - cut, s), utf8_accept)
                << "len=" << len << " cut=" << cut;
        }
    }
}

// kernels.hpp promises reads only of p[0..n): input that starts right after, or ends right before, a
// PROT_NONE page must not fault.
TEST_P(Utf8Test, NeverReadsOutsideTheRange) {
    const Kernels& k = *GetParam();
    test::GuardedPages pages(17);
    std::mt19937 rng(9);
    for (unsigned damage : {0u, 5u}) {
        const Bytes text = random_text(rng, pages.size(), damage);
        std::memcpy(pages.begin(), text.data(), text.size());
        std::vector<std::size_t> lengths;
        for (std::size_t len = 0; len <= 300; ++len) lengths.push_back(len);
        lengths.insert(lengths.end(), {4095, 65536 + 7});
        for (std::size_t len : lengths) {
            const std::byte* at_end = pages.end() - len;
            ASSERT_EQ(k.validate_utf8(at_end, len, utf8_accept), utf8_scalar(at_end, len, utf8_accept))
                << len;
            ASSERT_EQ(k.validate_utf8(pages.begin(), len, utf8_accept),
                      utf8_scalar(pages.begin(), len, utf8_accept))
                << len;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Cpu, Utf8Test, ::testing::ValuesIn(supported_kernels()), kernel_name);

}  // namespace
}  // namespace roomcast::simd
