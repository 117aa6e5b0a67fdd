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

std::string upgrade_request(std::string_view host, std::uint16_t port, std::string_view path);

enum class HandshakeStatus : std::uint8_t { need_more, ok, bad_status, bad_accept, too_large };

// Looks at the bytes received so far. On ok, *header_bytes is the length of the response head
// (bytes after it are already WebSocket frames). *status_code gets the HTTP status when known.
HandshakeStatus check_upgrade_response(std::string_view received, std::string_view expected_accept,
                                       std::size_t* header_bytes, int* status_code);

inline constexpr std::size_t max_frame_header_bytes = 14;

// Writes a masked client frame header (FIN set) into out; returns its length (6, 8 or 14).
std::size_t write_client_header(std::uint8_t* out, Opcode op, std::size_t payload_len, const std::uint8_t mask[4]);

// A whole masked frame: header + payload XORed with mask (phase 0 at payload byte 0).
std::vector<std::uint8_t> masked_frame(Opcode op, const std::uint8_t* payload, std::size_t len,
                                       const std::uint8_t mask[4]);

inline void mask_bytes(std::uint8_t* p, std::size_t n, const std::uint8_t mask[4], std::size_t phase) noexcept {
    for (std::size_t i = 0; i < n; ++i) p[i] ^= mask[(phase + i) & 3];
}

}  // namespace roomcast::bench
