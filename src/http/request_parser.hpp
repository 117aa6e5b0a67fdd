// HTTP/1.1 request head parser. Parses in place: every string_view in Request points into the caller's
// buffer and is valid as long as those bytes are (for the server: until the handler returns).
// No allocation, no copies, linear time in the input size, never reads past buf.size().
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace roomcast::http {

inline constexpr std::size_t max_headers = 64;  // more header lines than this: 431

struct Header {
    std::string_view name;   // as sent (compare case-insensitively)
    std::string_view value;  // optional whitespace trimmed on both sides
};

struct Request {
    std::string_view method;     // "GET", "POST", ... (case-sensitive token)
    std::string_view target;     // request-target as sent: "/ws/room?since=4"
    std::string_view path;       // target up to '?'
    std::string_view query;      // after '?', without it; empty if none
    unsigned version_minor = 1;  // HTTP/1.<minor>; only 1.0 and 1.1 are accepted
    std::array<Header, max_headers> headers{};
    std::uint16_t header_count = 0;
    std::size_t head_bytes = 0;  // request line + headers + final CRLF CRLF (where a body would start)

    // First header with this name (case-insensitive), or empty view and false via has_header.
    std::string_view header(std::string_view name) const noexcept;
    bool has_header(std::string_view name) const noexcept;
    // Number of header lines with this name.
    unsigned header_count_of(std::string_view name) const noexcept;
    // True if `token` (case-insensitive) appears in the comma-separated lists of every header named
    // `name` (e.g. Connection: keep-alive, Upgrade). Elements are trimmed of optional whitespace.
    bool has_token(std::string_view name, std::string_view token) const noexcept;
};

enum class ParseStatus : std::uint8_t { done, need_more, failed };

enum class ParseError : std::uint8_t {
    none,
    bad_request_line,  // not "METHOD SP target SP HTTP/x.y CRLF"                         400
    bad_method,        // method not a token                                             400
    bad_target,        // target not origin-form ('/'...) or contains CTL/space           400
    bad_version,       // not HTTP/1.0 or HTTP/1.1 (syntactically valid other versions)   505
    bad_header,        // header line without ':' or name not a token, space before ':'   400
    bad_header_value,  // CTL (other than HTAB) in a value                                400
    obsolete_fold,     // obs-fold line continuation (RFC 9112 §5.2: reject)              400
    bare_lf,           // LF without CR                                                  400
    target_too_long,   // request line alone exceeds the head limit                       414
    too_many_headers,  // more than max_headers lines                                    431
    head_too_large,    // head exceeds max_head_bytes                                    431
};

// HTTP status to answer a parse failure with.
std::uint16_t http_status(ParseError e) noexcept;
// Short human-readable reason for the response body ("header line without ':'").
const char* describe(ParseError e) noexcept;

// Parses the head at the start of buf. done: `out` is filled and out.head_bytes tells where the body
// starts. need_more: no complete head yet and buf.size() <= max_head_bytes. failed: `err` says why
// (head_too_large as soon as buf.size() > max_head_bytes without a complete head).
ParseStatus parse_request(std::string_view buf, std::size_t max_head_bytes, Request& out,
                          ParseError& err) noexcept;

// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b) noexcept;

// True if `token` (case-insensitive) is an element of one comma-separated list value (elements trimmed of
// optional whitespace, empty elements ignored). Request::has_token applies it to every header of a name.
bool list_has_token(std::string_view list, std::string_view token) noexcept;

}  // namespace roomcast::http
