#include "http/request_parser.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace roomcast::http {
namespace {

// Bytes placed so they end right before a PROT_NONE page: a read past buf.size() faults.
class GuardedBuffer {
public:
    explicit GuardedBuffer(std::size_t cap) {
        page_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        data_bytes_ = (cap + page_ - 1) / page_ * page_ + page_;
        void* p =
            ::mmap(nullptr, data_bytes_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::runtime_error("mmap");
        base_ = static_cast<char*>(p);
        if (::mprotect(base_ + data_bytes_, page_, PROT_NONE) != 0) throw std::runtime_error("mprotect");
    }
    ~GuardedBuffer() { ::munmap(base_, data_bytes_ + page_); }
    GuardedBuffer(const GuardedBuffer&) = delete;
    GuardedBuffer& operator=(const GuardedBuffer&) = delete;

    std::string_view place(std::string_view s) {
        char* at = base_ + data_bytes_ - s.size();
        if (!s.empty()) std::memcpy(at, s.data(), s.size());
        return {at, s.size()};
    }

private:
    std::size_t page_ = 0;
    std::size_t data_bytes_ = 0;
    char* base_ = nullptr;
};

// A parse result with the views copied out, so results over different buffers compare equal.
struct Result {
    ParseStatus status = ParseStatus::need_more;
    ParseError error = ParseError::none;
    std::string method, target, path, query;
    unsigned version_minor = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::size_t head_bytes = 0;
    bool operator==(const Result&) const = default;
};

Result snapshot(ParseStatus st, ParseError err, const Request& r) {
    Result out;
    out.status = st;
    out.error = err;
    if (st != ParseStatus::done) return out;
    out.method = r.method;
    out.target = r.target;
    out.path = r.path;
    out.query = r.query;
    out.version_minor = r.version_minor;
    for (std::size_t i = 0; i < r.header_count; ++i)
        out.headers.emplace_back(std::string(r.headers[i].name), std::string(r.headers[i].value));
    out.head_bytes = r.head_bytes;
    return out;
}

Result parse_guarded(GuardedBuffer& g, std::string_view input, std::size_t max_head_bytes) {
    std::string_view buf = g.place(input);
    Request req;
    ParseError err = ParseError::none;
    ParseStatus st = parse_request(buf, max_head_bytes, req, err);
    return snapshot(st, err, req);
}

// Parses `input` whole and then every prefix of it (each ending just before a guard page). A prefix
// must either ask for more or give exactly the whole input's result; once it stops asking it must not
// start again, and for a valid head every prefix shorter than the head must ask for more.
Result parse_every_split(std::string_view input, std::size_t max_head_bytes = 8192) {
    GuardedBuffer g(input.size());
    Result whole = parse_guarded(g, input, max_head_bytes);
    bool settled = false;
    for (std::size_t k = 0; k < input.size(); ++k) {
        Result part = parse_guarded(g, input.substr(0, k), max_head_bytes);
        if (part.status == ParseStatus::need_more) {
            EXPECT_FALSE(settled) << "need_more after a result, prefix " << k;
            EXPECT_EQ(part.error, ParseError::none) << "prefix " << k;
            continue;
        }
        settled = true;
        EXPECT_EQ(part, whole) << "prefix " << k << " of " << input.size();
        if (whole.status == ParseStatus::done) {
            EXPECT_GE(k, whole.head_bytes);
        }
        if (::testing::Test::HasFailure()) break;  // one message, not thousands
    }
    return whole;
}

ParseError error_of(std::string_view input, std::size_t max_head_bytes = 8192) {
    Result r = parse_every_split(input, max_head_bytes);
    EXPECT_EQ(r.status, ParseStatus::failed) << input;
    return r.error;
}

constexpr std::string_view chrome_upgrade =
    "GET /ws/BTC-USD?since=41 HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

std::string request_with(std::string_view headers) {
    return std::string("GET / HTTP/1.1\r\n") + std::string(headers) + "\r\n";
}

std::string repeat_headers(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
    return s;
}

TEST(RequestParser, ParsesChromeUpgradeRequest) {
    Result r = parse_every_split(chrome_upgrade);
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/ws/BTC-USD?since=41");
    EXPECT_EQ(r.path, "/ws/BTC-USD");
    EXPECT_EQ(r.query, "since=41");
    EXPECT_EQ(r.version_minor, 1u);
    ASSERT_EQ(r.headers.size(), 12u);
    EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Host", "localhost:8080"}));
    EXPECT_EQ(r.headers[11].second, "permessage-deflate; client_max_window_bits");
    EXPECT_EQ(r.head_bytes, chrome_upgrade.size());
}

TEST(RequestParser, ViewsPointIntoTheCallersBuffer) {
    std::string buf(chrome_upgrade);
    Request req;
    ParseError err;
    ASSERT_EQ(parse_request(buf, 8192, req, err), ParseStatus::done);
    auto inside = [&](std::string_view v) {
        return v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size();
    };
    EXPECT_TRUE(inside(req.method) && inside(req.target) && inside(req.path) && inside(req.query));
    for (std::size_t i = 0; i < req.header_count; ++i)
        EXPECT_TRUE(inside(req.headers[i].name) && inside(req.headers[i].value));
}

TEST(RequestParser, MinimalRequestsSplitAtEveryByte) {
    for (std::string_view in :
         {std::string_view("GET / HTTP/1.1\r\n\r\n"), std::string_view("GET / HTTP/1.0\r\n\r\n"),
          std::string_view("POST /publish/chat HTTP/1.1\r\nContent-Length: 2\r\n\r\n"),
          std::string_view("M-SEARCH /x?a=1&b=%20 HTTP/1.1\r\nA:\r\nB:b\r\n\r\n")}) {
        Result r = parse_every_split(in);
        EXPECT_EQ(r.status, ParseStatus::done) << in;
        EXPECT_EQ(r.head_bytes, in.size()) << in;
    }
}

TEST(RequestParser, Http10SetsMinorVersion) {
    Result r = parse_every_split("GET /health HTTP/1.0\r\n\r\n");
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.version_minor, 0u);
    EXPECT_EQ(r.query, "");
}

TEST(RequestParser, EmptyQueryAfterQuestionMark) {
    Result r = parse_every_split("GET /a? HTTP/1.1\r\n\r\n");
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.path, "/a");
    EXPECT_EQ(r.query, "");
}

TEST(RequestParser, HeadBytesStopsWhereTheBodyStarts) {
    std::string in = "POST /publish/chat HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world";
    Result r = parse_every_split(in);
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.head_bytes, in.size() - 11);
    EXPECT_EQ(in.substr(r.head_bytes), "hello world");
}

TEST(RequestParser, BodyBytesBeyondTheLimitDoNotCount) {
    // Only the head is limited: a complete head followed by a large body parses.
    std::string in = "GET / HTTP/1.1\r\n\r\n" + std::string(1000, 'x');
    Result r = parse_every_split(in, 18);
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.head_bytes, 18u);
}

TEST(RequestParser, SkipsOneLeadingEmptyLine) {  // RFC 9112 §2.2
    Result r = parse_every_split("\r\nGET / HTTP/1.1\r\n\r\n");
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.head_bytes, 20u);
}

TEST(RequestParser, RejectsTwoLeadingEmptyLines) {
    EXPECT_EQ(error_of("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), ParseError::bad_request_line);
}

TEST(RequestParser, RejectsMalformedRequestLine) {
    for (std::string_view in :
         {std::string_view("GET /\r\n\r\n"), std::string_view("GET\r\n\r\n"),
          std::string_view("GET  / HTTP/1.1\r\n\r\n"), std::string_view(" GET / HTTP/1.1\r\n\r\n"),
          std::string_view("GET / HTTP/1.1 \r\n\r\n"), std::string_view("GET /  HTTP/1.1\r\n\r\n"),
          std::string_view("GET / http/1.1\r\n\r\n"), std::string_view("GET / HTTP/1.10\r\n\r\n"),
          std::string_view("GET / HTTP/1.x\r\n\r\n"), std::string_view("GET / HTTP/11\r\n\r\n"),
          std::string_view("GET /a b HTTP/1.1\r\n\r\n"), std::string_view("\r\r\n"),
          std::string_view("\r\n\r\n")}) {
        EXPECT_EQ(error_of(in), ParseError::bad_request_line) << in;
    }
    EXPECT_EQ(http_status(ParseError::bad_request_line), 400);
}

TEST(RequestParser, RejectsMethodThatIsNotAToken) {  // RFC 9112 §3.1
    for (std::string_view in :
         {std::string_view("G(T / HTTP/1.1\r\n\r\n"), std::string_view("GE\x01T / HTTP/1.1\r\n\r\n"),
          std::string_view("GET\t/ HTTP/1.1 x\r\n\r\n")}) {
        EXPECT_EQ(error_of(in), ParseError::bad_method) << in;
    }
    EXPECT_EQ(http_status(ParseError::bad_method), 400);
}

TEST(RequestParser, RejectsTargetNotInOriginForm) {  // RFC 9112 §3.2.1
    using namespace std::string_literals;
    for (std::string in :
         {"GET http://x/ HTTP/1.1\r\n\r\n"s, "GET * HTTP/1.1\r\n\r\n"s, "GET a/ HTTP/1.1\r\n\r\n"s,
          "GET /a\tb HTTP/1.1\r\n\r\n"s, "GET /\x80 HTTP/1.1\r\n\r\n"s, "GET /\x7f HTTP/1.1\r\n\r\n"s,
          "GET /\0 HTTP/1.1\r\n\r\n"s, "GET /\r HTTP/1.1\r\n\r\n"s}) {
        EXPECT_EQ(error_of(in), ParseError::bad_target) << in;
    }
    EXPECT_EQ(http_status(ParseError::bad_target), 400);
}

TEST(RequestParser, AnswersOtherVersionsWith505) {
    for (std::string_view in :
         {std::string_view("GET / HTTP/2.0\r\n\r\n"), std::string_view("GET / HTTP/1.2\r\n\r\n"),
          std::string_view("GET / HTTP/0.9\r\n\r\n")}) {
        EXPECT_EQ(error_of(in), ParseError::bad_version) << in;
    }
    EXPECT_EQ(http_status(ParseError::bad_version), 505);
}

TEST(RequestParser, RejectsBadHeaderLines) {  // RFC 9112 §5.1
    for (std::string_view h :
         {std::string_view("Host localhost\r\n"), std::string_view("Host : localhost\r\n"),
          std::string_view("Host\t: localhost\r\n"), std::string_view(": empty-name\r\n"),
          std::string_view("Ho st: x\r\n"), std::string_view("Ho\x01st: x\r\n"),
          std::string_view("Host\r\n")}) {
        EXPECT_EQ(error_of(request_with(h)), ParseError::bad_header) << h;
    }
    EXPECT_EQ(http_status(ParseError::bad_header), 400);
}

TEST(RequestParser, RejectsControlCharactersInValues) {  // RFC 9110 §5.5
    using namespace std::string_literals;
    for (std::string h : {"X: a\x01z\r\n"s, "X: a\x7fz\r\n"s, "X: a\rb\r\n"s, "X: a\0b\r\n"s, "X: \x1f\r\n"s,
                          "X: 0123456789abcdef\x0b\r\n"s}) {
        EXPECT_EQ(error_of(request_with(h)), ParseError::bad_header_value) << h;
    }
    EXPECT_EQ(http_status(ParseError::bad_header_value), 400);
}

TEST(RequestParser, AcceptsTabAndObsTextInValues) {
    Result r = parse_every_split(request_with("X: a\tb \xc3\xa9 0123456789\t\x80\xff\r\n"));
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.headers[0].second, "a\tb \xc3\xa9 0123456789\t\x80\xff");
}

TEST(RequestParser, FindsAControlByteAtEveryOffsetOfAValue) {
    // Values are scanned a word at a time: try every position relative to the word boundaries.
    for (std::size_t len = 1; len <= 40; ++len) {
        for (std::size_t at = 0; at < len; ++at) {
            std::string value(len, 'v');
            value[at] = '\x01';
            EXPECT_EQ(error_of(request_with("X: " + value + "\r\n")), ParseError::bad_header_value)
                << len << " " << at;
            value[at] = '\r';
            EXPECT_EQ(error_of(request_with("X: " + value + "\r\n")), ParseError::bad_header_value)
                << len << " " << at;
            value[at] = '\t';
            Result r = parse_every_split(request_with("X: v" + value + "v\r\n"));
            ASSERT_EQ(r.status, ParseStatus::done) << len << " " << at;
            EXPECT_EQ(r.headers[0].second, "v" + value + "v");
        }
    }
}

TEST(RequestParser, RejectsObsoleteLineFolding) {  // RFC 9112 §5.2
    EXPECT_EQ(error_of(request_with("X: a\r\n b\r\n")), ParseError::obsolete_fold);
    EXPECT_EQ(error_of(request_with("X: a\r\n\tb\r\n")), ParseError::obsolete_fold);
    EXPECT_EQ(error_of(request_with(" X: a\r\n")), ParseError::obsolete_fold);
    EXPECT_EQ(http_status(ParseError::obsolete_fold), 400);
}

TEST(RequestParser, RejectsBareLineFeeds) {  // RFC 9112 §2.2: we accept CRLF only
    for (std::string_view in :
         {std::string_view("GET / HTTP/1.1\n\r\n"), std::string_view("GET / HTTP/1.1\r\nX: a\n\r\n"),
          std::string_view("GET / HTTP/1.1\r\nX: a\r\n\n"), std::string_view("GET / HTTP/1.1\n\n"),
          std::string_view("\nGET / HTTP/1.1\r\n\r\n")}) {
        EXPECT_EQ(error_of(in), ParseError::bare_lf) << in;
    }
    EXPECT_EQ(http_status(ParseError::bare_lf), 400);
}

TEST(RequestParser, HeaderCountLimitIsExact) {
    Result ok = parse_every_split(request_with(repeat_headers(max_headers)));
    ASSERT_EQ(ok.status, ParseStatus::done);
    EXPECT_EQ(ok.headers.size(), max_headers);
    EXPECT_EQ(error_of(request_with(repeat_headers(max_headers + 1))), ParseError::too_many_headers);
    EXPECT_EQ(http_status(ParseError::too_many_headers), 431);
}

TEST(RequestParser, HeadLimitIsExact) {
    std::string in = request_with("Host: example.com\r\n");
    Result at = parse_every_split(in, in.size());
    ASSERT_EQ(at.status, ParseStatus::done);
    EXPECT_EQ(at.head_bytes, in.size());
    EXPECT_EQ(error_of(in, in.size() - 1), ParseError::head_too_large);
    EXPECT_EQ(http_status(ParseError::head_too_large), 431);
}

TEST(RequestParser, IncompleteHeadFailsOnceItPassesTheLimit) {
    std::string partial = "GET / HTTP/1.1\r\nHost: example.com\r\nX-Long: " + std::string(100, 'a');
    Request req;
    ParseError err;
    // Exactly at the limit: still waiting. One byte past: the head can never fit.
    EXPECT_EQ(parse_request(partial, partial.size(), req, err), ParseStatus::need_more);
    EXPECT_EQ(err, ParseError::none);
    EXPECT_EQ(parse_request(partial, partial.size() - 1, req, err), ParseStatus::failed);
    EXPECT_EQ(err, ParseError::head_too_large);
}

TEST(RequestParser, LongRequestLineIsUriTooLong) {
    std::string line = "GET /" + std::string(200, 'a');  // no line end yet
    Request req;
    ParseError err;
    EXPECT_EQ(parse_request(line, line.size(), req, err), ParseStatus::need_more);
    EXPECT_EQ(parse_request(line, line.size() - 1, req, err), ParseStatus::failed);
    EXPECT_EQ(err, ParseError::target_too_long);
    EXPECT_EQ(error_of(line + " HTTP/1.1\r\n\r\n", 100), ParseError::target_too_long);
    EXPECT_EQ(http_status(ParseError::target_too_long), 414);
}

TEST(RequestParser, RequestLineAtTheLimitIsNotTooLong) {
    // The request line fits the limit exactly, so the missing rest of the head is head_too_large.
    std::string in = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(error_of(in, 16), ParseError::head_too_large);
    EXPECT_EQ(error_of(in, 15), ParseError::target_too_long);
}

TEST(RequestParser, TrimsOptionalWhitespaceAroundValues) {  // RFC 9112 §5.1
    Result r = parse_every_split(request_with("A:  x y \t\r\nB:\t\r\nC:z\r\nD: \r\n"));
    ASSERT_EQ(r.status, ParseStatus::done);
    ASSERT_EQ(r.headers.size(), 4u);
    EXPECT_EQ(r.headers[0].second, "x y");
    EXPECT_EQ(r.headers[1].second, "");
    EXPECT_EQ(r.headers[2].second, "z");
    EXPECT_EQ(r.headers[3].second, "");
}

class ParsedRequest : public ::testing::Test {
protected:
    void parse(std::string s) {
        text_ = std::move(s);
        ParseError err;
        ASSERT_EQ(parse_request(text_, 1 << 20, req_, err), ParseStatus::done) << describe(err);
    }
    std::string text_;
    Request req_;
};

TEST_F(ParsedRequest, HeaderLookupIgnoresCase) {
    parse(request_with("Sec-WebSocket-Key: k1\r\nsec-websocket-key: k2\r\nHOST: h\r\n"));
    EXPECT_EQ(req_.header("sec-WEBSOCKET-key"), "k1");  // the first one
    EXPECT_EQ(req_.header_count_of("SEC-WEBSOCKET-KEY"), 2u);
    EXPECT_TRUE(req_.has_header("host"));
    EXPECT_EQ(req_.header("Host"), "h");
    EXPECT_FALSE(req_.has_header("Hos"));
    EXPECT_EQ(req_.header("Missing"), "");
    EXPECT_EQ(req_.header_count_of("Missing"), 0u);
}

TEST_F(ParsedRequest, HasTokenSearchesEveryHeaderOfThatName) {  // RFC 9110 §5.3, §5.6.1
    parse(request_with("Connection: keep-alive\r\nX: upgrade\r\nconnection: ,  , Upgrade ,\r\n"));
    EXPECT_TRUE(req_.has_token("Connection", "upgrade"));
    EXPECT_TRUE(req_.has_token("CONNECTION", "Keep-Alive"));
    EXPECT_FALSE(req_.has_token("Connection", "close"));
    EXPECT_FALSE(req_.has_token("Connection", ""));
    EXPECT_FALSE(req_.has_token("Upgrade", "upgrade"));
}

TEST_F(ParsedRequest, HasTokenMatchesWholeElementsOnly) {
    parse(request_with("Connection: upgrade2, xupgrade, up grade, \"upgrade\"\r\n"));
    EXPECT_FALSE(req_.has_token("Connection", "upgrade"));
    EXPECT_TRUE(req_.has_token("Connection", "up grade"));
    EXPECT_TRUE(req_.has_token("Connection", "UPGRADE2"));
}

TEST(ListHasToken, MatchesTrimmedNonEmptyElements) {
    EXPECT_TRUE(list_has_token("a, b ,\tC", "c"));
    EXPECT_TRUE(list_has_token("upgrade", "Upgrade"));
    EXPECT_FALSE(list_has_token("", ""));
    EXPECT_FALSE(list_has_token(" , ,", ""));
    EXPECT_FALSE(list_has_token("ab, a b", "b"));
}

TEST_F(ParsedRequest, PathologicalListValueIsHandled) {
    // 200 KB of commas and blanks must be scanned once per lookup, not once per element.
    std::string value;
    for (int i = 0; i < 50'000; ++i) value += ", \t,";
    parse(request_with("Connection: " + value + "upgrade\r\nUpgrade: " + value + "\r\n"));
    EXPECT_GT(req_.header("Connection").size(), 200'000u);
    EXPECT_TRUE(req_.has_token("Connection", "upgrade"));
    EXPECT_FALSE(req_.has_token("Upgrade", "websocket"));
    EXPECT_FALSE(req_.has_token("Upgrade", ""));
}

TEST(RequestParser, PathologicalValueParsesWithinALargeLimit) {
    std::string value(200'000, 'a');
    std::string in = request_with("X: " + value + "\r\n");
    GuardedBuffer g(in.size());
    Result r = parse_guarded(g, in, 256 * 1024);
    ASSERT_EQ(r.status, ParseStatus::done);
    EXPECT_EQ(r.headers[0].second, value);
    EXPECT_EQ(parse_guarded(g, in, 8192).error, ParseError::head_too_large);
    value[150'000] = '\x01';
    EXPECT_EQ(parse_guarded(g, request_with("X: " + value + "\r\n"), 256 * 1024).error,
              ParseError::bad_header_value);
}

TEST(RequestParser, EveryErrorHasAStatusAndADescription) {
    const std::pair<ParseError, int> table[] = {
        {ParseError::none, 200},
        {ParseError::bad_request_line, 400},
        {ParseError::bad_method, 400},
        {ParseError::bad_target, 400},
        {ParseError::bad_version, 505},
        {ParseError::bad_header, 400},
        {ParseError::bad_header_value, 400},
        {ParseError::obsolete_fold, 400},
        {ParseError::bare_lf, 400},
        {ParseError::target_too_long, 414},
        {ParseError::too_many_headers, 431},
        {ParseError::head_too_large, 431},
    };
    static_assert(std::size(table) == static_cast<std::size_t>(ParseError::head_too_large) + 1);
    for (auto [e, status] : table) {
        EXPECT_EQ(http_status(e), status) << static_cast<int>(e);
        EXPECT_GT(std::strlen(describe(e)), 0u);
    }
}

TEST(RequestParser, IequalsComparesAsciiCaseInsensitively) {
    EXPECT_TRUE(iequals("Sec-WebSocket-Key", "sec-websocket-KEY"));
    EXPECT_TRUE(iequals("", ""));
    EXPECT_FALSE(iequals("abc", "abd"));
    EXPECT_FALSE(iequals("abc", "ab"));
    EXPECT_FALSE(iequals("@", "`"));  // 0x40 vs 0x60: not letters, so not a case pair
    EXPECT_FALSE(iequals("[", "{"));
}

}  // namespace
}  // namespace roomcast::http
