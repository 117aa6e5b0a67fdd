// Fuzz target: http::parse_request (src/http/request_parser.hpp). The input is the request head as a
// client sends it, so browser requests make good seeds and the corpus is shared with handshake_fuzz.
//
// Checked for every input:
//  - a done result is well-formed: views lie inside the head, the method is a token, the target is
//    origin-form, names are tokens, values carry no CTL and no outer whitespace, and splitting the head
//    naively at CRLF gives back exactly the request line and the header lines that were parsed;
//  - any prefix of the input (copied into an exact-size buffer, so reading past it is an ASan error)
//    parses to need_more or to the same result: the parser is stateless and re-run on every read;
//  - a smaller max_head_bytes changes the answer only by failing with target_too_long/head_too_large;
//  - the Request helpers agree with simple reference versions on the parsed headers.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "http/request_parser.hpp"

namespace {

using namespace roomcast::http;

constexpr std::size_t default_max_head_bytes = 8192;  // Config::max_header_bytes default
constexpr std::size_t unlimited = ~std::size_t{0};

struct Parsed {
    ParseStatus status = ParseStatus::need_more;
    ParseError error = ParseError::none;
    Request req;
};

void parse(std::string_view buf, std::size_t max_head_bytes, Parsed& out) {
    out.status = parse_request(buf, max_head_bytes, out.req, out.error);
    FUZZ_CHECK((out.status == ParseStatus::failed) == (out.error != ParseError::none), "status %d error %d",
               int(out.status), int(out.error));
}

bool inside(std::string_view v, std::string_view buf, std::size_t limit) {
    // An empty view may carry any pointer (the default one is null); only non-empty views must point in.
    if (v.empty()) return true;
    return v.data() >= buf.data() && v.data() + v.size() <= buf.data() + limit;
}

// Offset of a view into buf, or ~0 for an empty one: lets results from different buffers be compared.
std::size_t offset_of(std::string_view v, std::string_view buf) {
    return v.empty() ? ~std::size_t{0} : static_cast<std::size_t>(v.data() - buf.data());
}

bool is_tchar(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

bool ascii_iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c + 32) : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

bool reference_list_has_token(std::string_view list, std::string_view token) {
    while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim(list.substr(0, comma));
        if (!element.empty() && ascii_iequal(element, token)) return true;
        if (comma == std::string_view::npos) return false;
        list.remove_prefix(comma + 1);
    }
}

void check_done(std::string_view buf, std::size_t max_head_bytes, const Request& r) {
    const std::size_t head = r.head_bytes;
    FUZZ_CHECK(head <= buf.size() && head <= max_head_bytes, "head_bytes %zu size %zu", head, buf.size());
    FUZZ_CHECK(head >= 4 && buf.substr(head - 4, 4) == "\r\n\r\n", "head does not end with CRLF CRLF");
    FUZZ_CHECK(r.header_count <= max_headers);
    FUZZ_CHECK(!r.method.empty() && inside(r.method, buf, head));
    FUZZ_CHECK(std::all_of(r.method.begin(), r.method.end(), is_tchar), "method not a token");
    FUZZ_CHECK(!r.target.empty() && inside(r.target, buf, head) && r.target[0] == '/');
    for (char c : r.target) FUZZ_CHECK(c > 0x20 && c < 0x7F, "target byte 0x%02x", c & 0xFF);
    const std::size_t q = r.target.find('?');
    FUZZ_CHECK(r.path == r.target.substr(0, q) && inside(r.path, buf, head));
    FUZZ_CHECK(r.query == (q == std::string_view::npos ? std::string_view{} : r.target.substr(q + 1)));
    FUZZ_CHECK(inside(r.query, buf, head));
    FUZZ_CHECK(r.version_minor <= 1);

    // Naive re-split of the head at CRLF: optional empty line, request line, header lines, empty line.
    std::string_view rest = buf.substr(0, head);
    if (rest.substr(0, 2) == "\r\n") rest.remove_prefix(2);
    auto next_line = [&rest]() {
        const std::size_t crlf = rest.find("\r\n");
        FUZZ_CHECK(crlf != std::string_view::npos, "line without CRLF inside a parsed head");
        const std::string_view line = rest.substr(0, crlf);
        rest.remove_prefix(crlf + 2);
        FUZZ_CHECK(line.find('\n') == std::string_view::npos && line.find('\r') == std::string_view::npos,
                   "bare CR or LF inside a parsed line");
        return line;
    };
    const std::string request_line = std::string(r.method) + " " + std::string(r.target) + " HTTP/1." +
                                     char('0' + r.version_minor);
    FUZZ_CHECK(next_line() == request_line, "request line does not round-trip");
    for (std::size_t i = 0; i < r.header_count; ++i) {
        const Header& h = r.headers[i];
        const std::string_view line = next_line();
        FUZZ_CHECK(!h.name.empty() && inside(h.name, buf, head) && inside(h.value, buf, head));
        FUZZ_CHECK(std::all_of(h.name.begin(), h.name.end(), is_tchar), "header %zu name not a token", i);
        FUZZ_CHECK(line.size() > h.name.size() && line.substr(0, h.name.size()) == h.name &&
                       line[h.name.size()] == ':',
                   "header %zu name does not round-trip", i);
        FUZZ_CHECK(trim(line.substr(h.name.size() + 1)) == h.value, "header %zu value does not round-trip", i);
        FUZZ_CHECK(h.value.empty() || (!is_ows(h.value.front()) && !is_ows(h.value.back())));
        for (char c : h.value) {
            const auto u = static_cast<unsigned char>(c);
            FUZZ_CHECK((u >= 0x20 && u != 0x7F) || u == '\t', "CTL 0x%02x in header %zu value", u, i);
        }
    }
    FUZZ_CHECK(next_line().empty() && rest.empty(), "head has lines the parser did not report");

    // The helpers, against reference versions.
    for (std::size_t i = 0; i < r.header_count; ++i) {
        const Header& h = r.headers[i];
        std::size_t first = i, count = 0;
        for (std::size_t j = 0; j < r.header_count; ++j)
            if (ascii_iequal(r.headers[j].name, h.name)) {
                first = std::min(first, j);
                ++count;
            }
        FUZZ_CHECK(r.has_header(h.name) && r.header_count_of(h.name) == count);
        FUZZ_CHECK(r.header(h.name).data() == r.headers[first].value.data() &&
                   r.header(h.name).size() == r.headers[first].value.size());
        FUZZ_CHECK(iequals(h.name, h.name) && iequals(h.value, h.value));
        // Tokens to look for: the last list element, and the two the handshake cares about.
        const std::size_t comma = h.value.rfind(',');
        const std::string_view last = trim(comma == std::string_view::npos ? h.value : h.value.substr(comma + 1));
        for (std::string_view token : {last, std::string_view("websocket"), std::string_view("Upgrade")}) {
            FUZZ_CHECK(list_has_token(h.value, token) == reference_list_has_token(h.value, token),
                       "list_has_token disagrees on header %zu", i);
            bool any = false;
            for (std::size_t j = 0; j < r.header_count; ++j)
                any = any || (ascii_iequal(r.headers[j].name, h.name) &&
                              reference_list_has_token(r.headers[j].value, token));
            FUZZ_CHECK(r.has_token(h.name, token) == any, "has_token disagrees on header %zu", i);
        }
    }
}

// Same outcome, comparing views by their offsets into their own buffers.
void check_same(const Parsed& a, std::string_view abuf, const Parsed& b, std::string_view bbuf, const char* what) {
    FUZZ_CHECK(a.status == b.status && a.error == b.error, "%s: status %d/%d error %d/%d", what, int(a.status),
               int(b.status), int(a.error), int(b.error));
    if (a.status != ParseStatus::done) return;
    const Request& x = a.req;
    const Request& y = b.req;
    FUZZ_CHECK(x.head_bytes == y.head_bytes && x.header_count == y.header_count &&
                   x.version_minor == y.version_minor,
               "%s: head_bytes %zu/%zu", what, x.head_bytes, y.head_bytes);
    auto same = [&](std::string_view u, std::string_view v) {
        return u.size() == v.size() && offset_of(u, abuf) == offset_of(v, bbuf);
    };
    FUZZ_CHECK(same(x.method, y.method) && same(x.target, y.target) && same(x.path, y.path) &&
                   same(x.query, y.query),
               "%s: request line differs", what);
    for (std::size_t i = 0; i < x.header_count; ++i)
        FUZZ_CHECK(same(x.headers[i].name, y.headers[i].name) && same(x.headers[i].value, y.headers[i].value),
                   "%s: header %zu differs", what, i);
}

bool is_length_failure(const Parsed& p) {
    return p.status == ParseStatus::failed &&
           (p.error == ParseError::target_too_long || p.error == ParseError::head_too_large);
}

// parse(buf, limit) against the unlimited parse `u` of the same buffer.
void check_limit(std::string_view buf, std::size_t limit, const Parsed& u) {
    auto lp = std::make_unique<Parsed>();
    Parsed& l = *lp;
    parse(buf, limit, l);
    if (buf.size() <= limit) {
        check_same(l, buf, u, buf, "limit above size");
        return;
    }
    // More bytes than the limit: never need_more; either what the window shows, or a length failure.
    FUZZ_CHECK(l.status != ParseStatus::need_more, "need_more with %zu bytes over a %zu limit", buf.size(), limit);
    if (u.status == ParseStatus::done && u.req.head_bytes <= limit) {
        check_same(l, buf, u, buf, "head within limit");
    } else if (u.status == ParseStatus::failed && !is_length_failure(l)) {
        check_same(l, buf, u, buf, "failure within limit");
    } else {
        FUZZ_CHECK(is_length_failure(l), "limit %zu: status %d error %d, unlimited status %d", limit,
                   int(l.status), int(l.error), int(u.status));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view buf(reinterpret_cast<const char*>(data), size);
    auto full = std::make_unique<Parsed>();
    parse(buf, default_max_head_bytes, *full);
    if (full->status == ParseStatus::done) check_done(buf, default_max_head_bytes, full->req);

    // Prefixes: all of them for short inputs; otherwise the ones around line ends, where the parser
    // changes its mind, and around the end of the head.
    std::vector<std::size_t> lengths;
    if (size <= 128) {
        for (std::size_t n = 0; n < size; ++n) lengths.push_back(n);
    } else {
        for (std::size_t n = 0; n < 4; ++n) lengths.push_back(n);
        for (std::size_t i = 0; i < size && lengths.size() < 64; ++i)
            if (buf[i] == '\n' || buf[i] == '\r')
                for (std::size_t n : {i, i + 1, i + 2}) lengths.push_back(n);
        if (full->status == ParseStatus::done)
            for (std::size_t n : {full->req.head_bytes - 1, full->req.head_bytes}) lengths.push_back(n);
        lengths.push_back(size - 1);
    }
    auto prefix = std::make_unique<Parsed>();
    for (std::size_t n : lengths) {
        if (n >= size) continue;
        std::unique_ptr<char[]> copy(new char[n ? n : 1]);
        if (n) std::memcpy(copy.get(), data, n);
        const std::string_view pbuf(copy.get(), n);
        parse(pbuf, default_max_head_bytes, *prefix);
        if (prefix->status == ParseStatus::need_more) continue;
        check_same(*prefix, pbuf, *full, buf, "prefix");
    }

    // Limits: no limit (the same as the default while the input fits), the default, and a limit that
    // cuts this input in half. Results that must equal an already checked one are compared, not rechecked.
    auto u = std::make_unique<Parsed>();
    parse(buf, unlimited, *u);
    if (size <= default_max_head_bytes)
        check_same(*u, buf, *full, buf, "no limit");
    else if (u->status == ParseStatus::done)
        check_done(buf, unlimited, u->req);
    check_limit(buf, default_max_head_bytes, *u);
    if (size >= 2) check_limit(buf, size / 2, *u);
    return 0;
}
