// Sec-WebSocket-Extensions negotiation for permessage-deflate (RFC 6455 §9.1, RFC 7692 §5, §7.1).
//
// Bytes in, result out: no sockets, no allocation, linear time in the total length of the header
// values. Every view passed in is only read during the call; nothing is kept.
//
// What the server does (RFC 7692 §7.1, one rule per line):
//   - accepts the FIRST acceptable permessage-deflate offer, across every header line in order;
//   - declines (skips) an offer with an unknown parameter, a duplicate parameter, a value where none is
//     allowed, a missing value where one is required, or a value that is not a window size 8..15 without
//     leading zeros (quoted values are unquoted first, §7.1 / RFC 6455 §9.1);
//   - a malformed header or a declined offer never fails the handshake: at worst no extension is used;
//   - only the first max_extension_offers offers (of any extension) are looked at.
// Response (only what was agreed):
//   - server_no_context_takeover: when offered (MUST, §7.1.1.1) and always when the config has no
//     context takeover (MAY), so a broadcast message can be compressed once and shared;
//   - client_no_context_takeover: when offered (the server takes the hint, §7.1.1.2, so its inflater
//     holds no window between messages) and always when the config has no context takeover (MAY):
//     an idle connection then holds no zlib memory at all;
//   - server_max_window_bits=min(offered, config) only when offered (§7.1.2.1);
//   - client_max_window_bits=offered value (15 when offered without one) only when offered (§7.1.2.2).
// server_max_window_bits=8: zlib cannot compress with a 256-byte window (raw deflateInit2 rejects 8 since
// zlib 1.2.9), so the offer is accepted with "server_max_window_bits=8" and the server then sends every
// message of that connection uncompressed (RSV1 is per message, §6) while still inflating the client's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace roomcast::ws {

inline constexpr int min_window_bits = 8;                // RFC 7692 §7.1.2
inline constexpr int max_window_bits = 15;               // 32 KiB LZ77 window
inline constexpr int min_zlib_deflate_window_bits = 9;   // zlib's raw deflate rejects 8
inline constexpr std::size_t max_extension_offers = 16;  // later offers are ignored
inline constexpr std::size_t max_offer_params = 16;      // an offer with more is declined

// Server-side permessage-deflate settings (flags in brackets).
struct DeflateConfig {
    bool enabled = true;            // --deflate on|off
    int level = 6;                  // --deflate-level 1..9
    int window_bits = 15;           // --deflate-window-bits 9..15: the server's compression window
    std::size_t min_size = 64;      // --deflate-min-size: smaller messages go out uncompressed
    bool context_takeover = false;  // --deflate-context-takeover: keep per-connection LZ77 windows
};

// The agreed parameters of one connection (6 bytes; kept in the connection).
struct DeflateParams {
    std::uint8_t server_window_bits =
        max_window_bits;  // window the server compresses with (8: never compresses)
    std::uint8_t client_window_bits = max_window_bits;  // largest window the client may use
    bool server_no_context_takeover = false;            // reset the server's compressor after every message
    bool client_no_context_takeover = false;            // reset the server's inflater after every message
    bool send_server_window_bits = false;  // response carries server_max_window_bits (client offered it)
    bool send_client_window_bits = false;  // response carries client_max_window_bits (client offered it)

    // False when server_max_window_bits=8 was agreed: every server message then goes out uncompressed.
    bool server_compresses() const noexcept { return server_window_bits >= min_zlib_deflate_window_bits; }
    bool operator==(const DeflateParams&) const = default;
};

// Looks at every value of the request's Sec-WebSocket-Extensions headers (one view per header line, in
// order) and, if the config enables deflate and an offer is acceptable, fills `out` and returns true.
// false: no permessage-deflate for this connection (send no Sec-WebSocket-Extensions header).
bool negotiate_deflate(std::span<const std::string_view> header_values, const DeflateConfig& cfg,
                       DeflateParams& out) noexcept;

// Longest value write_deflate_response() can produce.
inline constexpr std::size_t max_deflate_response_bytes =
    std::string_view(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=15; client_max_window_bits=15")
        .size();

// Writes the Sec-WebSocket-Extensions response VALUE (no header name, no CRLF) for the agreed params,
// e.g. "permessage-deflate; server_no_context_takeover; client_max_window_bits=15". Returns the number of
// bytes written, or 0 if out is shorter than max_deflate_response_bytes.
std::size_t write_deflate_response(const DeflateParams& p, std::span<char> out) noexcept;

}  // namespace roomcast::ws
