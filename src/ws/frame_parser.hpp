// Streaming parser for client frames (RFC 6455 §5): validates every rule, unmasks in place, validates
// UTF-8 incrementally, and hands complete messages and control frames to a handler.
//
// Zero-copy: a complete unfragmented frame lying in the input is unmasked where it lies and handed to
// the handler as a span into the caller's buffer (valid until the handler returns). Only a partial
// header (< 14 bytes, kept inline), a split control payload or a fragmented/split message is copied,
// into pooled buffers.
//
// Handler interface (all noexcept; returning false stops parsing with Result::stopped):
//   bool on_message(Opcode op, std::span<std::byte> payload);   // op is text or binary
//   bool on_ping(std::span<std::byte> payload);
//   bool on_pong(std::span<std::byte> payload);
//   bool on_close(std::uint16_t code, std::span<std::byte> reason);  // code 1005 if no payload
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "simd/kernels.hpp"
#include "util/byte_buffer.hpp"
#include "ws/frame.hpp"

namespace roomcast::ws {

struct ParserLimits {
    std::uint64_t max_message_bytes = 16u << 20;
    std::uint8_t allowed_rsv = 0;  // RSV bits an extension allows on the first frame of a data message
};

// Per-connection parser state; kept small (it lives in every connection).
struct ParserState {
    util::ByteBuffer* msg = nullptr;   // payload of a fragmented or split data message so far
    util::ByteBuffer* ctrl = nullptr;  // payload of a split control frame so far
    std::uint64_t frame_remaining = 0;  // payload bytes of the current frame still to come
    std::uint64_t msg_bytes = 0;        // payload bytes of the message in progress so far
    std::uint32_t mask_key = 0;
    std::uint32_t utf8_state = simd::utf8_accept;
    std::uint32_t frames = 0;  // frame headers decoded so far (wraps; for rate limits)
    Opcode frame_op = Opcode::continuation;  // opcode of the current frame
    Opcode msg_op = Opcode::continuation;    // text/binary while a message is in progress, else continuation
    std::uint8_t phase = 0;
    std::uint8_t hdr_len = 0;  // bytes saved in hdr of a partial header
    std::uint8_t msg_rsv = 0;  // RSV bits of the message's first frame (permessage-deflate's RSV1)
    bool frame_fin = false;
    bool in_payload = false;
    std::byte hdr[max_frame_header_bytes];

    bool message_in_progress() const noexcept { return msg_op != Opcode::continuation; }
    // Returns the pooled buffers (call when the connection ends).
    void release(util::BufferPool& pool) noexcept {
        pool.release(msg);
        pool.release(ctrl);
        msg = ctrl = nullptr;
    }
};

enum class ParseResult : std::uint8_t {
    ok,       // every input byte consumed
    stopped,  // a close frame was handled or the handler asked to stop; `consumed` says how far
    failed,   // protocol error; `error` says which; the connection must be failed with close_code(error)
    no_memory,
};

struct ParseOutcome {
    ParseResult result;
    Error error;
    std::size_t consumed;
};

namespace detail {
// Validates a frame header against the connection state (one branch per RFC rule).
inline Error check_header(const ParserState& s, const FrameHeader& h, const ParserLimits& lim) noexcept {
    const auto op = static_cast<std::uint8_t>(h.opcode);
    if ((op >= 0x3 && op <= 0x7) || op >= 0xB) return Error::bad_opcode;  // §5.2 reserved opcodes
    const bool control = is_control(h.opcode);
    // §5.2: RSV bits MUST be 0 unless an extension defines them; permessage-deflate defines RSV1 on the
    // first frame of a data message only (RFC 7692 §6.1).
    const std::uint8_t allowed = (!control && h.opcode != Opcode::continuation) ? lim.allowed_rsv : 0;
    if (h.rsv & ~allowed) return Error::reserved_bits;
    if (!h.masked) return Error::unmasked_frame;  // §5.1: clients MUST mask
    if (control) {
        if (!h.fin) return Error::control_fragmented;                            // §5.5
        if (h.payload_len > max_control_payload) return Error::control_too_long;  // §5.5
        return Error::none;
    }
    if (h.opcode == Opcode::continuation) {
        if (!s.message_in_progress()) return Error::unexpected_continuation;  // §5.4
    } else if (s.message_in_progress()) {
        return Error::expected_continuation;  // §5.4: no interleaving of data messages
    }
    const std::uint64_t so_far = h.opcode == Opcode::continuation ? s.msg_bytes : 0;
    if (h.payload_len > lim.max_message_bytes || so_far + h.payload_len > lim.max_message_bytes)
        return Error::message_too_big;
    return Error::none;
}

template <class Handler>
inline ParseOutcome handle_control(Opcode op, std::span<std::byte> payload, Handler& h,
                                   std::size_t pos) noexcept {
    bool go_on = true;
    switch (op) {
    case Opcode::ping:
        go_on = h.on_ping(payload);
        break;
    case Opcode::pong:
        go_on = h.on_pong(payload);
        break;
    case Opcode::close: {
        if (payload.size() == 1) return {ParseResult::failed, Error::close_payload_too_short, pos};  // §5.5.1
        std::uint16_t code = 1005;  // §7.1.5: no status code was present
        std::span<std::byte> reason;
        if (payload.size() >= 2) {
            code = load_be16(payload.data());
            if (!is_valid_close_code(code)) return {ParseResult::failed, Error::bad_close_code, pos};  // §7.4
            reason = payload.subspan(2);
            if (simd::validate_utf8(reason.data(), reason.size(), simd::utf8_accept) != simd::utf8_accept)
                return {ParseResult::failed, Error::invalid_close_reason, pos};  // §5.5.1: reason is UTF-8
        }
        h.on_close(code, reason);
        return {ParseResult::stopped, Error::none, pos};
    }
    default:
        break;
    }
    return {go_on ? ParseResult::ok : ParseResult::stopped, Error::none, pos};
}
// The last fragment of an assembled message has arrived: hand it over and reset the message state.
template <class Handler>
inline ParseOutcome finish_message(ParserState& s, util::BufferPool& pool, Handler& h, std::size_t pos) noexcept {
    if (s.msg_op == Opcode::text && (s.msg_rsv & 0x4) == 0 && s.utf8_state != simd::utf8_accept)
        return {ParseResult::failed, Error::invalid_utf8, pos};  // the text ends inside a character
    const Opcode op = s.msg_op;
    s.msg_op = Opcode::continuation;
    const bool go_on = h.on_message(op, s.msg->span());
    pool.release(s.msg);
    s.msg = nullptr;
    s.msg_bytes = 0;
    return {go_on ? ParseResult::ok : ParseResult::stopped, Error::none, pos};
}
}  // namespace detail

// Consumes p[0..n) (unmasking it in place). See ParseOutcome for what the caller does next.
template <class Handler>
ParseOutcome parse_frames(ParserState& s, std::byte* p, std::size_t n, const ParserLimits& lim,
                          util::BufferPool& pool, Handler& h) noexcept {
    std::size_t pos = 0;
    for (;;) {
        if (!s.in_payload) {
            FrameHeader fh;
            Error err = Error::none;
            if (s.hdr_len) {
                // Complete a header that was split across reads.
                const std::size_t have = s.hdr_len;
                const std::size_t take = std::min(max_frame_header_bytes - have, n - pos);
                std::memcpy(s.hdr + have, p + pos, take);
                const DecodeStatus ds = decode_header(s.hdr, have + take, fh, err);
                if (ds == DecodeStatus::failed) return {ParseResult::failed, err, pos};
                if (ds == DecodeStatus::need_more) {
                    s.hdr_len = static_cast<std::uint8_t>(have + take);
                    return {ParseResult::ok, Error::none, n};
                }
                pos += fh.header_len - have;
                s.hdr_len = 0;
            } else {
                if (pos == n) return {ParseResult::ok, Error::none, n};
                const DecodeStatus ds = decode_header(p + pos, n - pos, fh, err);
                if (ds == DecodeStatus::failed) return {ParseResult::failed, err, pos};
                if (ds == DecodeStatus::need_more) {
                    std::memcpy(s.hdr, p + pos, n - pos);
                    s.hdr_len = static_cast<std::uint8_t>(n - pos);
                    return {ParseResult::ok, Error::none, n};
                }
                pos += fh.header_len;
            }
            ++s.frames;
            err = detail::check_header(s, fh, lim);
            if (err != Error::none) return {ParseResult::failed, err, pos};

            const std::size_t avail = n - pos;
            // Fast path: a complete frame in the buffer that needs no assembly is handled where it lies.
            if (fh.payload_len <= avail && s.ctrl == nullptr) {
                std::byte* payload = p + pos;
                const std::size_t len = static_cast<std::size_t>(fh.payload_len);
                simd::unmask(payload, len, fh.mask_key, 0);
                pos += len;
                if (is_control(fh.opcode)) {
                    ParseOutcome o = detail::handle_control(fh.opcode, {payload, len}, h, pos);
                    if (o.result != ParseResult::ok) return o;
                    continue;
                }
                if (fh.fin && fh.opcode != Opcode::continuation) {
                    // A whole message in one frame.
                    if (fh.opcode == Opcode::text && (fh.rsv & 0x4) == 0 &&
                        simd::validate_utf8(payload, len, simd::utf8_accept) != simd::utf8_accept)
                        return {ParseResult::failed, Error::invalid_utf8, pos - len};
                    s.msg_rsv = fh.rsv;
                    if (!h.on_message(fh.opcode, {payload, len})) return {ParseResult::stopped, Error::none, pos};
                    continue;
                }
                // A complete fragment: append to the message being assembled.
                if (fh.opcode != Opcode::continuation) {
                    s.msg_op = fh.opcode;
                    s.msg_rsv = fh.rsv;
                    s.msg_bytes = 0;
                    s.utf8_state = simd::utf8_accept;
                }
                if (s.msg_op == Opcode::text && (s.msg_rsv & 0x4) == 0) {
                    s.utf8_state = simd::validate_utf8(payload, len, s.utf8_state);
                    if (s.utf8_state == simd::utf8_reject)  // fail fast, before the message ends
                        return {ParseResult::failed, Error::invalid_utf8, pos - len};
                }
                if (!s.msg && !(s.msg = pool.acquire())) return {ParseResult::no_memory, Error::none, pos};
                if (!s.msg->append(payload, len)) return {ParseResult::no_memory, Error::none, pos};
                s.msg_bytes += len;
                if (fh.fin) {
                    const ParseOutcome o = detail::finish_message(s, pool, h, pos);
                    if (o.result != ParseResult::ok) return o;
                }
                continue;
            }
            // Slow path: the payload continues in later reads.
            s.in_payload = true;
            s.frame_remaining = fh.payload_len;
            s.frame_op = fh.opcode;
            s.frame_fin = fh.fin;
            s.mask_key = fh.mask_key;
            s.phase = 0;
            if (is_control(fh.opcode)) {
                if (!s.ctrl && !(s.ctrl = pool.acquire())) return {ParseResult::no_memory, Error::none, pos};
                s.ctrl->clear();
            } else {
                if (fh.opcode != Opcode::continuation) {
                    s.msg_op = fh.opcode;
                    s.msg_rsv = fh.rsv;
                    s.msg_bytes = 0;
                    s.utf8_state = simd::utf8_accept;
                }
                if (!s.msg && !(s.msg = pool.acquire())) return {ParseResult::no_memory, Error::none, pos};
            }
        }

        // Streaming the payload of the current frame.
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(s.frame_remaining, n - pos));
        std::byte* chunk = p + pos;
        s.phase = static_cast<std::uint8_t>(simd::unmask(chunk, take, s.mask_key, s.phase));
        pos += take;
        s.frame_remaining -= take;
        if (is_control(s.frame_op)) {
            if (!s.ctrl->append(chunk, take)) return {ParseResult::no_memory, Error::none, pos};
            if (s.frame_remaining) return {ParseResult::ok, Error::none, n};
            s.in_payload = false;
            ParseOutcome o = detail::handle_control(s.frame_op, s.ctrl->span(), h, pos);
            pool.release(s.ctrl);
            s.ctrl = nullptr;
            if (o.result != ParseResult::ok) return o;
            continue;
        }
        if (s.msg_op == Opcode::text && (s.msg_rsv & 0x4) == 0) {
            s.utf8_state = simd::validate_utf8(chunk, take, s.utf8_state);
            if (s.utf8_state == simd::utf8_reject) return {ParseResult::failed, Error::invalid_utf8, pos - take};
        }
        if (!s.msg->append(chunk, take)) return {ParseResult::no_memory, Error::none, pos};
        s.msg_bytes += take;
        if (s.frame_remaining) return {ParseResult::ok, Error::none, n};
        s.in_payload = false;
        if (!s.frame_fin) continue;
        const ParseOutcome o = detail::finish_message(s, pool, h, pos);
        if (o.result != ParseResult::ok) return o;
    }
}

}  // namespace roomcast::ws
