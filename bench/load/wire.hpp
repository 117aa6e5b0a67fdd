// Client side of the WebSocket wire format, just enough for a load generator: the upgrade request,
// the expected Sec-WebSocket-Accept, masked frame building and a streaming parser for server frames.
// Self-contained on purpose (no src/ includes) so the generator builds while the server is mid-change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace roomcast::bench {

enum class Opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// Every connection uses the same key, so the expected accept value is computed once (RFC 6455 4.1 only
// asks for a random key so that the server's answer cannot be cached by an intermediary; loopback has none).
inline constexpr std::string_view client_key = "dGhlIHNhbXBsZSBub25jZQ==";

// base64(SHA-1(key + GUID)) (RFC 6455 4.2.2).
std::string accept_for_key(std::string_view key);

// offer_deflate adds "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits".
std::string upgrade_request(std::string_view host, std::uint16_t port, std::string_view path, bool offer_deflate = false);

enum class HandshakeStatus : std::uint8_t { need_more, ok, bad_status, bad_accept, too_large };

// Looks at the bytes received so far. On ok, *header_bytes is the length of the response head
// (bytes after it are already WebSocket frames). *status_code gets the HTTP status when known.
// *extensions (when not null) gets the Sec-WebSocket-Extensions value (empty when absent).
HandshakeStatus check_upgrade_response(std::string_view received, std::string_view expected_accept,
                                       std::size_t* header_bytes, int* status_code,
                                       std::string_view* extensions = nullptr);

// The server's permessage-deflate answer (RFC 7692 7.1). ok = false: an extension we did not offer, or a
// malformed/duplicate parameter (the client must fail the connection).
struct DeflateAgreement {
    bool ok = true;
    bool on = false;
    bool server_no_context_takeover = false;  // the server compresses every message alone
    bool client_no_context_takeover = false;
    int client_window_bits = 15;  // our compression window (client_max_window_bits=N)
    int server_window_bits = 15;
};
DeflateAgreement parse_deflate_response(std::string_view extensions, bool offered);

// The run's payload: S bytes. Binary fill: all byte values; text fill: ASCII letters; json: JSON-like
// order-book text. For text broadcast the first text_header_bytes are the {"ts":"..","seq":".." prefix
// (stamped per message) and the rest closes the object.
std::vector<std::uint8_t> build_payload(std::size_t size, bool binary, bool json, bool broadcast);

// 16 lower-case hex digits of v at out; parse_hex16 returns false on a non-hex digit.
void write_hex16(std::uint8_t* out, std::uint64_t v) noexcept;
bool parse_hex16(const std::uint8_t* in, std::uint64_t* v) noexcept;

inline constexpr std::size_t max_frame_header_bytes = 14;

// Writes a masked client frame header (FIN set; RSV1 with rsv1) into out; returns its length (6, 8 or 14).
std::size_t write_client_header(std::uint8_t* out, Opcode op, std::size_t payload_len, const std::uint8_t mask[4],
                                bool rsv1 = false);

// A whole masked frame: header + payload XORed with mask (phase 0 at payload byte 0).
std::vector<std::uint8_t> masked_frame(Opcode op, const std::uint8_t* payload, std::size_t len,
                                       const std::uint8_t mask[4], bool rsv1 = false);

inline void mask_bytes(std::uint8_t* p, std::size_t n, const std::uint8_t mask[4], std::size_t phase) noexcept {
    for (std::size_t i = 0; i < n; ++i) p[i] ^= mask[(phase + i) & 3];
}

}  // namespace roomcast::bench
