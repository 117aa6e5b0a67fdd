// WebSocket frame header codec and the protocol errors of RFC 6455 (no sockets: bytes in, results out).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace roomcast::ws {

enum class Opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

constexpr bool is_control(Opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

inline constexpr std::size_t max_frame_header_bytes = 14;  // 2 + 8 (length) + 4 (mask)
inline constexpr std::size_t max_server_header_bytes = 10;  // server frames carry no mask
inline constexpr std::size_t max_control_payload = 125;     // §5.5

// One rejection of peer input each (STYLE.md §4); close_code() maps them, a test walks the table.
enum class Error : std::uint8_t {
    none,
    unmasked_frame,           // a client frame without a mask (§5.1)
    reserved_bits,            // RSV1-3 set without a negotiated extension (§5.2)
    bad_opcode,               // reserved opcode 3-7 or B-F (§5.2)
    control_fragmented,       // control frame without FIN (§5.5)
    control_too_long,         // control payload over 125 bytes (§5.5)
    length_not_minimal,       // 126/127 used for a length that fits in fewer bytes (§5.2)
    length_top_bit,           // 64-bit length with the most significant bit set (§5.2)
    unexpected_continuation,  // continuation frame with no message in progress (§5.4)
    expected_continuation,    // new text/binary frame inside a fragmented message (§5.4)
    message_too_big,          // over --max-message-size, across fragments
    invalid_utf8,             // text payload not UTF-8 (§8.1)
    close_payload_too_short,  // close payload of exactly 1 byte (§5.5.1)
    bad_close_code,           // close code invalid or reserved (§7.4)
    invalid_close_reason,     // close reason not UTF-8 (§5.5.1, §8.1)
};

constexpr std::uint16_t close_code(Error e) noexcept {
    switch (e) {
    case Error::none:
        return 1000;
    case Error::message_too_big:
        return 1009;
    case Error::invalid_utf8:
    case Error::invalid_close_reason:
        return 1007;
    default:
        return 1002;  // protocol error
    }
}

// Short reason suitable for a close frame (each < 123 bytes).
const char* describe(Error e) noexcept;

// Close codes a peer may send (§7.4.1, §7.4.2): 1000-1003, 1007-1014, 3000-4999.
constexpr bool is_valid_close_code(std::uint16_t code) noexcept {
    if (code >= 3000 && code <= 4999) return true;
    if (code >= 1000 && code <= 1003) return true;
    return code >= 1007 && code <= 1014;
}

inline std::uint16_t load_be16(const std::byte* p) noexcept {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}
inline std::uint64_t load_be64(const std::byte* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}
inline void store_be16(std::byte* p, std::uint16_t v) noexcept {
    p[0] = std::byte(v >> 8);
    p[1] = std::byte(v & 0xFF);
}
inline void store_be64(std::byte* p, std::uint64_t v) noexcept {
    v = __builtin_bswap64(v);
    std::memcpy(p, &v, 8);
}

struct FrameHeader {
    std::uint64_t payload_len = 0;
    std::uint32_t mask_key = 0;  // wire bytes, memcpy-loaded (simd::MaskKey)
    Opcode opcode = Opcode::continuation;
    std::uint8_t rsv = 0;  // RSV1..3 as bits 0x4,0x2,0x1 (RSV1 = 0x4)
    bool fin = false;
    bool masked = false;
    std::uint8_t header_len = 0;  // 2..14
};

enum class DecodeStatus : std::uint8_t { done, need_more, failed };

// Decodes one header from p[0..n). Checks only what the header alone can tell: length encoding rules
// (length_not_minimal, length_top_bit). Opcode/RSV/mask/control rules are the parser's (they depend on
// connection state). Reads at most max_frame_header_bytes.
DecodeStatus decode_header(const std::byte* p, std::size_t n, FrameHeader& h, Error& err) noexcept;

// Size of a server (unmasked) header for this payload length: 2, 4 or 10.
constexpr std::size_t server_header_len(std::uint64_t len) noexcept {
    return len < 126 ? 2 : (len <= 0xFFFF ? 4 : 10);
}

// Writes an unmasked server frame header (FIN per `fin`, RSV bits per `rsv`) into out; returns its size.
inline std::size_t encode_header(std::byte* out, Opcode op, std::uint64_t len, bool fin = true,
                                 std::uint8_t rsv = 0) noexcept {
    out[0] = std::byte((fin ? 0x80 : 0) | (rsv << 4) | static_cast<std::uint8_t>(op));
    if (len < 126) {
        out[1] = std::byte(len);
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = std::byte(126);
        store_be16(out + 2, static_cast<std::uint16_t>(len));
        return 4;
    }
    out[1] = std::byte(127);
    store_be64(out + 2, len);
    return 10;
}

}  // namespace roomcast::ws
