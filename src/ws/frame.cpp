#include "ws/frame.hpp"

namespace roomcast::ws {

const char* describe(Error e) noexcept {
    switch (e) {
    case Error::none: return "";
    case Error::unmasked_frame: return "client frame not masked";
    case Error::reserved_bits: return "reserved bits set";
    case Error::bad_opcode: return "reserved opcode";
    case Error::control_fragmented: return "fragmented control frame";
    case Error::control_too_long: return "control frame payload over 125 bytes";
    case Error::length_not_minimal: return "payload length not minimally encoded";
    case Error::length_top_bit: return "64-bit payload length with top bit set";
    case Error::unexpected_continuation: return "continuation frame without a message in progress";
    case Error::expected_continuation: return "new data frame inside a fragmented message";
    case Error::message_too_big: return "message exceeds --max-message-size";
    case Error::invalid_utf8: return "invalid UTF-8 in text message";
    case Error::close_payload_too_short: return "close payload of 1 byte";
    case Error::bad_close_code: return "invalid close code";
    case Error::invalid_close_reason: return "invalid UTF-8 in close reason";
    }
    return "protocol error";
}

DecodeStatus decode_header(const std::byte* p, std::size_t n, FrameHeader& h, Error& err) noexcept {
    if (n < 2) return DecodeStatus::need_more;
    const unsigned b0 = std::to_integer<unsigned>(p[0]);
    const unsigned b1 = std::to_integer<unsigned>(p[1]);
    h.fin = (b0 & 0x80) != 0;
    h.rsv = static_cast<std::uint8_t>((b0 >> 4) & 0x7);
    h.opcode = static_cast<Opcode>(b0 & 0x0F);
    h.masked = (b1 & 0x80) != 0;
    const unsigned len7 = b1 & 0x7F;
    std::size_t need = 2 + (h.masked ? 4 : 0);
    if (len7 == 126) need += 2;
    else if (len7 == 127) need += 8;
    if (n < need) return DecodeStatus::need_more;
    std::size_t pos = 2;
    if (len7 < 126) {
        h.payload_len = len7;
    } else if (len7 == 126) {
        h.payload_len = load_be16(p + 2);
        pos = 4;
        if (h.payload_len < 126) {  // §5.2: the minimal number of bytes MUST be used
            err = Error::length_not_minimal;
            return DecodeStatus::failed;
        }
    } else {
        h.payload_len = load_be64(p + 2);
        pos = 10;
        if (h.payload_len >> 63) {  // §5.2: the most significant bit MUST be 0
            err = Error::length_top_bit;
            return DecodeStatus::failed;
        }
        if (h.payload_len <= 0xFFFF) {
            err = Error::length_not_minimal;
            return DecodeStatus::failed;
        }
    }
    if (h.masked) {
        std::memcpy(&h.mask_key, p + pos, 4);
        pos += 4;
    } else {
        h.mask_key = 0;
    }
    h.header_len = static_cast<std::uint8_t>(pos);
    return DecodeStatus::done;
}

}  // namespace roomcast::ws
