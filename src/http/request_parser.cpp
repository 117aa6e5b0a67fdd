// HTTP/1.1 request head parser (RFC 9112 §2-§5, field syntax from RFC 9110 §5).
//
// Stateless: every call parses from the start of buf. A connecting client normally sends its whole
// head in one segment, so the common case is a single pass; a trickled head is re-scanned, but never
// more than max_head_bytes of it (see `window` below), so each call is linear and bounded.
// The request line is found with memchr. Each header value, the longest part of a head, is scanned once,
// a word at a time, both for forbidden bytes and for the CRLF that ends it.
#include "http/request_parser.hpp"

#include <array>
#include <bit>
#include <cstring>

namespace roomcast::http {
namespace {

// tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~" / DIGIT / ALPHA.
constexpr std::array<bool, 256> make_tchar_table() noexcept {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr std::array<bool, 256> tchar = make_tchar_table();

constexpr bool is_tchar(char c) noexcept { return tchar[static_cast<unsigned char>(c)]; }
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }
// Visible ASCII (VCHAR without obs-text): the only bytes we accept in an origin-form target.
constexpr bool is_target_char(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7F;
}
// field-value bytes (RFC 9110 §5.5): VCHAR, obs-text, SP, HTAB. Everything else is a CTL.
constexpr bool is_value_char(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u != 0x7F) || u == '\t';
}

// Word-at-a-time scanning below finds the first flagged byte with ctz, which assumes little-endian loads.
static_assert(std::endian::native == std::endian::little);

constexpr std::uint64_t ones = 0x0101010101010101ull;
constexpr std::uint64_t highs = 0x8080808080808080ull;

// High bit set in each byte of w that is below 0x20 or equal to 0x7F. Bytes above the lowest flagged
// one may be flagged spuriously (borrows), but the lowest flag is always exact, which is all we use.
constexpr std::uint64_t ctl_mask(std::uint64_t w) noexcept {
    std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
    std::uint64_t x = w ^ (ones * 0x7F);
    std::uint64_t del = (x - ones) & ~x & highs;
    return below_space | del;
}

// Index of the first byte in [from, end) that is a CTL other than HTAB (CR and LF included), or end.
// This one scan both validates a field value and finds where its line ends.
std::size_t find_value_end(const char* p, std::size_t from, std::size_t end) noexcept {
    std::size_t i = from;
    while (i + 8 <= end) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        if (std::uint64_t m = ctl_mask(w); m != 0) {
            std::size_t at = i + static_cast<std::size_t>(__builtin_ctzll(m)) / 8;
            if (p[at] != '\t') return at;
            i = at + 1;  // HTAB is allowed in a value: carry on just past it
            continue;
        }
        i += 8;
    }
    for (; i < end; ++i)
        if (!is_value_char(p[i])) return i;
    return end;
}

constexpr std::string_view trim_ows(std::string_view s) noexcept {
    std::size_t b = 0, e = s.size();
    while (b < e && is_ows(s[b])) ++b;
    while (e > b && is_ows(s[e - 1])) --e;
    return s.substr(b, e - b);
}

// Request line (RFC 9112 §3): method SP request-target SP HTTP-version, CR already stripped.
ParseError parse_request_line(std::string_view line, Request& out) noexcept {
    std::size_t sp1 = line.find(' ');
    // No separator, or an empty method (the line starts with SP): not a request line at all.
    if (sp1 == std::string_view::npos || sp1 == 0) return ParseError::bad_request_line;
    std::string_view method = line.substr(0, sp1);
    for (char c : method)
        if (!is_tchar(c)) return ParseError::bad_method;  // §3.1: method = token

    std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return ParseError::bad_request_line;  // HTTP/0.9 form or junk
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (target.empty()) return ParseError::bad_request_line;  // two SPs in a row: one SP only (§3)
    // §3.2.1: origin-form only; no CTL, whitespace or non-ASCII bytes.
    if (target[0] != '/') return ParseError::bad_target;
    for (char c : target)
        if (!is_target_char(c)) return ParseError::bad_target;

    // §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive. Anything else after the second SP
    // (including a third SP) is a malformed line; a well-formed other version is answered with 505.
    std::string_view version = line.substr(sp2 + 1);
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !digit(version[5]) || version[6] != '.' ||
        !digit(version[7]))
        return ParseError::bad_request_line;
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) return ParseError::bad_version;

    out.method = method;
    out.target = target;
    std::size_t q = target.find('?');
    out.path = target.substr(0, q);
    out.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
    out.version_minor = static_cast<unsigned>(version[7] - '0');
    return ParseError::none;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
        if (x == y) continue;
        // Equal ignoring case only if they differ in the 0x20 bit and are letters.
        unsigned char l = x | 0x20;
        if ((x ^ y) != 0x20 || l < 'a' || l > 'z') return false;
    }
    return true;
}

std::string_view Request::header(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < header_count; ++i)
        if (iequals(headers[i].name, name)) return headers[i].value;
    return {};
}

bool Request::has_header(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < header_count; ++i)
        if (iequals(headers[i].name, name)) return true;
    return false;
}

unsigned Request::header_count_of(std::string_view name) const noexcept {
    unsigned n = 0;
    for (std::size_t i = 0; i < header_count; ++i)
        if (iequals(headers[i].name, name)) ++n;
    return n;
}

bool list_has_token(std::string_view list, std::string_view token) noexcept {
    // RFC 9110 §5.6.1 list syntax. One pass: memchr finds the commas, and an element is compared only
    // when its trimmed length matches, so the work is linear even for "a,,,,,,...".
    const char* p = list.data();
    const char* const end = p + list.size();
    while (p < end) {
        auto* comma = static_cast<const char*>(std::memchr(p, ',', static_cast<std::size_t>(end - p)));
        const char* stop = comma ? comma : end;
        std::string_view element = trim_ows(std::string_view(p, static_cast<std::size_t>(stop - p)));
        // Empty elements ("a, , b") are not tokens, so "" never matches.
        if (!element.empty() && iequals(element, token)) return true;
        p = comma ? comma + 1 : end;
    }
    return false;
}

bool Request::has_token(std::string_view name, std::string_view token) const noexcept {
    for (std::size_t i = 0; i < header_count; ++i)
        if (iequals(headers[i].name, name) && list_has_token(headers[i].value, token)) return true;
    return false;
}

std::uint16_t http_status(ParseError e) noexcept {
    switch (e) {
        case ParseError::none:
            return 200;  // not a failure: the head parsed, the route decides
        case ParseError::bad_request_line:
        case ParseError::bad_method:
        case ParseError::bad_target:
        case ParseError::bad_header:
        case ParseError::bad_header_value:
        case ParseError::obsolete_fold:
        case ParseError::bare_lf:
            return 400;
        case ParseError::bad_version:
            return 505;
        case ParseError::target_too_long:
            return 414;
        case ParseError::too_many_headers:
        case ParseError::head_too_large:
            return 431;
    }
    return 400;
}

const char* describe(ParseError e) noexcept {
    switch (e) {
        case ParseError::none:
            return "ok";
        case ParseError::bad_request_line:
            return "malformed request line";
        case ParseError::bad_method:
            return "method is not a token";
        case ParseError::bad_target:
            return "request target is not origin-form or has invalid bytes";
        case ParseError::bad_version:
            return "HTTP version not supported";
        case ParseError::bad_header:
            return "header line without ':' or with an invalid name";
        case ParseError::bad_header_value:
            return "control character in a header value";
        case ParseError::obsolete_fold:
            return "obsolete header line folding";
        case ParseError::bare_lf:
            return "line ending without CR";
        case ParseError::target_too_long:
            return "request line too long";
        case ParseError::too_many_headers:
            return "too many header lines";
        case ParseError::head_too_large:
            return "request head too large";
    }
    return "bad request";
}

ParseStatus parse_request(std::string_view buf, std::size_t max_head_bytes, Request& out,
                          ParseError& err) noexcept {
    err = ParseError::none;
    out.header_count = 0;
    // A head must end within max_head_bytes, so no byte past that limit is ever examined. A line
    // whose LF lies beyond the window either needs more bytes or can never fit.
    const std::size_t window = buf.size() < max_head_bytes ? buf.size() : max_head_bytes;
    const bool window_full = buf.size() > max_head_bytes;
    const char* const base = buf.data();
    std::size_t pos = 0;

    auto fail = [&](ParseError e) noexcept {
        err = e;
        return ParseStatus::failed;
    };
    // The head continues past the window: wait for more, or give up if the window is all we may use.
    auto incomplete = [&](ParseError too_long) noexcept {
        return window_full ? fail(too_long) : ParseStatus::need_more;
    };

    // RFC 9112 §2.2: ignore one empty line before the request line (a stray CRLF after a previous body).
    if (window >= 1 && base[0] == '\r') {
        if (window < 2) return incomplete(ParseError::target_too_long);
        if (base[1] != '\n') return fail(ParseError::bad_request_line);  // a CR that ends no line
        pos = 2;
    }

    // Request line: short, so find its end first and then take it apart.
    auto* lf = static_cast<const char*>(std::memchr(base + pos, '\n', window - pos));
    if (!lf) return incomplete(ParseError::target_too_long);
    std::size_t line_end = static_cast<std::size_t>(lf - base);
    // RFC 9112 §2.2: lines end with CRLF; a bare LF is an error, not a line ending.
    if (line_end == pos || base[line_end - 1] != '\r') return fail(ParseError::bare_lf);
    if (ParseError e = parse_request_line(std::string_view(base + pos, line_end - 1 - pos), out);
        e != ParseError::none)
        return fail(e);
    pos = line_end + 1;

    // Field lines (RFC 9112 §5), each "name:" then a value scanned once for both CTLs and its CRLF.
    for (;;) {
        if (pos >= window) return incomplete(ParseError::head_too_large);
        char first = base[pos];
        if (first == '\r') {  // the empty line ending the head
            if (pos + 1 >= window) return incomplete(ParseError::head_too_large);
            if (base[pos + 1] != '\n') return fail(ParseError::bad_header);  // a CR that ends no line
            out.head_bytes = pos + 2;
            return ParseStatus::done;
        }
        if (first == '\n') return fail(ParseError::bare_lf);
        // §5.2: a line starting with whitespace continues the previous one (obs-fold); we reject it.
        if (is_ows(first)) return fail(ParseError::obsolete_fold);
        // The line after the 64th header is one too many.
        if (out.header_count == max_headers) return fail(ParseError::too_many_headers);

        std::size_t colon = pos;
        while (colon < window && is_tchar(base[colon])) ++colon;
        if (colon == window) return incomplete(ParseError::head_too_large);
        // §5.1: a name is a non-empty token directly followed by ':' (no whitespace before it).
        if (colon == pos || base[colon] != ':') return fail(ParseError::bad_header);

        std::size_t stop = find_value_end(base, colon + 1, window);
        if (stop == window) return incomplete(ParseError::head_too_large);
        if (base[stop] == '\n') return fail(ParseError::bare_lf);
        // RFC 9110 §5.5: any CTL but HTAB in a value is an error, including a CR that is not the line end.
        if (base[stop] != '\r') return fail(ParseError::bad_header_value);
        if (stop + 1 >= window) return incomplete(ParseError::head_too_large);
        if (base[stop + 1] != '\n') return fail(ParseError::bad_header_value);

        Header& h = out.headers[out.header_count++];
        h.name = std::string_view(base + pos, colon - pos);
        h.value = trim_ows(std::string_view(base + colon + 1, stop - colon - 1));
        pos = stop + 2;
    }
}

}  // namespace roomcast::http
