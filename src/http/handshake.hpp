// WebSocket opening handshake (RFC 6455 §4.2): validation of the client's upgrade request,
// Sec-WebSocket-Accept (SHA-1 via OpenSSL + base64) written straight into the 101 response.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "http/request_parser.hpp"

namespace roomcast::http {

inline constexpr std::size_t sha1_digest_bytes = 20;
constexpr std::size_t base64_len(std::size_t n) noexcept { return (n + 2) / 3 * 4; }
inline constexpr std::size_t accept_key_len = base64_len(sha1_digest_bytes);  // 28
inline constexpr std::size_t ws_key_bytes = 16;  // Sec-WebSocket-Key decodes to 16 bytes (§4.1)

enum class HandshakeError : std::uint8_t {
    none,
    method_not_get,       // §4.2.1/1: must be GET                                  405 (Allow: GET)
    http_version,         // §4.2.1/1: must be HTTP/1.1 or later                     400
    missing_host,         // §4.2.1/2                                              400
    duplicate_host,       // RFC 9112 §3.2: more than one Host                      400
    missing_upgrade,      // §4.2.1/3: no "Upgrade: websocket"                      426
    missing_connection,   // §4.2.1/4: Connection lacks the "Upgrade" token         400
    missing_key,          // §4.2.1/5                                              400
    duplicate_key,        // more than one Sec-WebSocket-Key                        400
    bad_key,              // not base64 of exactly 16 bytes                         400
    missing_version,      // §4.2.1/6 (answer carries Sec-WebSocket-Version: 13)    426
    unsupported_version,  // §4.4: not 13 (answer carries Sec-WebSocket-Version: 13) 426
    body_not_allowed,     // Content-Length > 0 or Transfer-Encoding on an upgrade   400
};

std::uint16_t http_status(HandshakeError e) noexcept;
const char* describe(HandshakeError e) noexcept;

// True if the request asks for a WebSocket at all (an Upgrade header or a Sec-WebSocket-Key is present):
// such requests get handshake errors rather than plain-HTTP answers.
bool wants_websocket(const Request& req) noexcept;

// Checks every RFC 6455 §4.2.1 rule, in the order listed in HandshakeError. On success `key` is the
// trimmed Sec-WebSocket-Key view (into the request buffer).
HandshakeError validate_upgrade(const Request& req, std::string_view& key) noexcept;

// Standard base64 (with padding). Returns bytes written = base64_len(n).
std::size_t base64_encode(const unsigned char* in, std::size_t n, char* out) noexcept;
// True if `key` is canonical base64 that decodes to exactly 16 bytes ("...==" form, 24 chars).
bool is_valid_ws_key(std::string_view key) noexcept;

// SHA-1(key + GUID) base64-encoded into out[0..28).
void compute_accept_key(std::string_view key, char* out) noexcept;

// Picks the first subprotocol the client offered (in the client's order, across every
// Sec-WebSocket-Protocol header) that is in `supported`; empty if none. Linear in the header size.
std::string_view select_subprotocol(const Request& req, std::span<const std::string> supported) noexcept;

// Writes the complete 101 response (status line, Upgrade, Connection, Sec-WebSocket-Accept computed
// from key, optional Sec-WebSocket-Protocol and Sec-WebSocket-Extensions, final CRLF) into out.
// Returns the byte count, or 0 if cap is too small (max_101_bytes + protocol + extensions always fits).
// max_101_bytes = every byte except the two optional values: 129 fixed (status line, Upgrade, Connection,
// Accept with its 28-byte key, final CRLF) + 26 for the Protocol line + 28 for the Extensions line.
// handshake.cpp static_asserts this against the literal strings it writes.
inline constexpr std::size_t max_101_bytes = 183;
std::size_t write_101(char* out, std::size_t cap, std::string_view key, std::string_view protocol,
                      std::string_view extensions) noexcept;

}  // namespace roomcast::http
