// Fuzz target: ws::parse_frames (src/ws/frame_parser.hpp): header decoding, every §5 rule, unmasking in
// place, incremental UTF-8 validation and message assembly, fed in input-chosen chunks.
//
// Input layout (fuzz_check.hpp's InputReader):
//   byte 0   config: bits 0-2 max_message_bytes (limit_choices), bit 3 allow RSV1 (permessage-deflate),
//            bits 4-5 the kernel set for the chunked run, bit 6 the handler stops at event byte 1,
//            bit 7 the buffer pool keeps buffers (reserve_slots) so they are reused
//   byte 1   the event number at which the handler returns false (if bit 6)
//   byte 2   k = byte % 16: how many chunk-size bytes follow (ChunkPlan: 0 = an empty call)
//   k bytes  chunk sizes, used cyclically
//   rest     the client's byte stream
//
// Three runs over the stream, and what must hold:
//   reference  a plain whole-buffer model of RFC 6455 §5 written here (no streaming, no SIMD);
//   whole      parse_frames over the whole stream at once, scalar kernels;
//   chunked    parse_frames chunk by chunk, each chunk in an exact-size heap buffer (reading past it is an
//              ASan error), with the kernel set chosen by the input.
//   - every call: consumed <= n, and ok means all of it; no_memory never happens at these sizes;
//   - every event: messages within the limit, text (unless RSV1-compressed) valid UTF-8 per utf8_scalar,
//     control payloads <= 125 bytes, close codes valid (or 1005 with no reason), close reasons UTF-8;
//   - whole and chunked give the reference's events and outcome (result, error, and the stream offset
//     where a stop happened); whole and chunked end in the same parser state and unmask the same bytes.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "simd/kernels.hpp"
#include "ws/frame_parser.hpp"

namespace {

using namespace roomcast;
using namespace roomcast::ws;
using fuzz::ChunkPlan;

constexpr std::uint64_t limit_choices[8] = {16u << 20, 0, 1, 64, 125, 126, 1000, 65536};
constexpr std::uint8_t rsv1 = 0x4;

struct Config {
    ParserLimits lim;
    const simd::Kernels* chunked_kernels = nullptr;
    bool stops = false;
    unsigned stop_at = 0;  // the handler returns false from this event (0-based), if `stops`
    bool pool_keeps = false;
};

enum class Kind : std::uint8_t { message, ping, pong, close };

struct Event {
    Kind kind;
    Opcode op = Opcode::continuation;  // for messages
    std::uint16_t code = 0;            // for close
    std::string bytes;                 // payload, or close reason
    bool operator==(const Event&) const = default;
};

struct Outcome {
    std::vector<Event> events;
    ParseResult result = ParseResult::ok;
    Error error = Error::none;
    std::size_t stop_offset = 0;  // stream offset just past the frame that stopped parsing (result stopped)
    // State at the end of the stream (result ok).
    bool message_in_progress = false;
    std::uint64_t msg_bytes = 0;
};

bool utf8_ok(const std::byte* p, std::size_t n) {
    return simd::utf8_scalar(p, n, simd::utf8_accept) == simd::utf8_accept;
}

std::string to_string(std::span<const std::byte> s) { return {reinterpret_cast<const char*>(s.data()), s.size()}; }

// Records events and checks each one as it arrives.
struct Recorder {
    const Config& cfg;
    const ParserState& state;  // to tell compressed (RSV1) text, which is validated after inflating
    std::vector<Event> events;

    bool next(Event e) {
        events.push_back(std::move(e));
        return !(cfg.stops && events.size() == cfg.stop_at + 1);
    }
    bool on_message(Opcode op, std::span<std::byte> payload) noexcept {
        FUZZ_CHECK(op == Opcode::text || op == Opcode::binary, "message opcode %d", int(op));
        FUZZ_CHECK(payload.size() <= cfg.lim.max_message_bytes, "message of %zu bytes over the %llu limit",
                   payload.size(), static_cast<unsigned long long>(cfg.lim.max_message_bytes));
        if (op == Opcode::text && !(state.msg_rsv & rsv1))
            FUZZ_CHECK(utf8_ok(payload.data(), payload.size()), "invalid UTF-8 in a text message");
        return next({Kind::message, op, 0, to_string(payload)});
    }
    bool on_ping(std::span<std::byte> payload) noexcept {
        FUZZ_CHECK(payload.size() <= max_control_payload);
        return next({Kind::ping, Opcode::ping, 0, to_string(payload)});
    }
    bool on_pong(std::span<std::byte> payload) noexcept {
        FUZZ_CHECK(payload.size() <= max_control_payload);
        return next({Kind::pong, Opcode::pong, 0, to_string(payload)});
    }
    bool on_close(std::uint16_t code, std::span<std::byte> reason) noexcept {
        FUZZ_CHECK(code == 1005 ? reason.empty() : is_valid_close_code(code), "close code %u", code);
        FUZZ_CHECK(reason.size() <= max_control_payload - 2 && utf8_ok(reason.data(), reason.size()));
        return next({Kind::close, Opcode::close, code, to_string(reason)});
    }
};

// ---- the reference: RFC 6455 §5 over a whole buffer, one rule at a time --------------------------------

std::uint64_t read_be(const std::uint8_t* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
    return v;
}

Outcome reference(std::span<const std::uint8_t> in, const Config& cfg) {
    Outcome out;
    const std::size_t n = in.size();
    std::size_t pos = 0;
    int msg_op = -1;  // opcode of the message in progress, -1 if none
    std::uint8_t msg_rsv = 0;
    std::string msg;
    std::uint32_t utf8 = simd::utf8_accept;
    auto fail = [&](Error e) {
        out.result = ParseResult::failed;
        out.error = e;
        return out;
    };
    auto event = [&](Event e, std::size_t end) {
        out.events.push_back(std::move(e));
        if (cfg.stops && out.events.size() == cfg.stop_at + 1) {
            out.result = ParseResult::stopped;
            out.stop_offset = end;
            return false;
        }
        return true;
    };
    for (;;) {
        out.message_in_progress = msg_op >= 0;
        out.msg_bytes = msg.size();
        if (n - pos < 2) return out;  // a partial header waits for more
        const std::uint8_t b0 = in[pos], b1 = in[pos + 1];
        const bool fin = b0 & 0x80, masked = b1 & 0x80;
        const std::uint8_t rsv = (b0 >> 4) & 7;
        const int op = b0 & 0xF;
        const unsigned len7 = b1 & 0x7F;
        const int ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        const std::size_t header = 2 + ext + (masked ? 4 : 0);
        if (n - pos < header) return out;
        std::uint64_t len = ext ? read_be(&in[pos + 2], ext) : len7;
        if (ext == 2 && len < 126) return fail(Error::length_not_minimal);
        if (ext == 8 && (len >> 63)) return fail(Error::length_top_bit);
        if (ext == 8 && len <= 0xFFFF) return fail(Error::length_not_minimal);
        if ((op >= 3 && op <= 7) || op >= 0xB) return fail(Error::bad_opcode);
        const bool control = op >= 8;
        const bool starts_message = op == 1 || op == 2;
        if (rsv & ~(starts_message ? cfg.lim.allowed_rsv : 0)) return fail(Error::reserved_bits);
        if (!masked) return fail(Error::unmasked_frame);
        if (control && !fin) return fail(Error::control_fragmented);
        if (control && len > max_control_payload) return fail(Error::control_too_long);
        if (op == 0 && msg_op < 0) return fail(Error::unexpected_continuation);
        if (starts_message && msg_op >= 0) return fail(Error::expected_continuation);
        if (!control && (op == 0 ? msg.size() : 0) + len > cfg.lim.max_message_bytes)
            return fail(Error::message_too_big);

        const std::uint8_t* key = &in[pos + header - 4];
        pos += header;
        const std::size_t have = static_cast<std::size_t>(std::min<std::uint64_t>(len, n - pos));
        std::string payload(have, '\0');
        for (std::size_t i = 0; i < have; ++i) payload[i] = static_cast<char>(in[pos + i] ^ key[i % 4]);
        pos += have;
        const bool complete = have == len;
        const auto* pb = reinterpret_cast<const std::byte*>(payload.data());

        if (control) {
            if (!complete) return out;
            if (op == 0x9 && !event({Kind::ping, Opcode::ping, 0, payload}, pos)) return out;
            if (op == 0xA && !event({Kind::pong, Opcode::pong, 0, payload}, pos)) return out;
            if (op == 0x8) {
                if (payload.size() == 1) return fail(Error::close_payload_too_short);
                std::uint16_t code = 1005;
                std::string reason;
                if (payload.size() >= 2) {
                    code = static_cast<std::uint16_t>(read_be(reinterpret_cast<const std::uint8_t*>(pb), 2));
                    if (!is_valid_close_code(code)) return fail(Error::bad_close_code);
                    reason = payload.substr(2);
                    if (!utf8_ok(pb + 2, reason.size())) return fail(Error::invalid_close_reason);
                }
                event({Kind::close, Opcode::close, code, reason}, pos);
                out.result = ParseResult::stopped;  // a close always ends parsing
                out.stop_offset = pos;
                return out;
            }
            continue;
        }
        if (starts_message) {
            msg_op = op;
            msg_rsv = rsv;
            msg.clear();
            utf8 = simd::utf8_accept;
        }
        const bool validate = msg_op == 1 && !(msg_rsv & rsv1);
        if (validate) {
            utf8 = simd::utf8_scalar(pb, payload.size(), utf8);
            if (utf8 == simd::utf8_reject) return fail(Error::invalid_utf8);  // fail fast, even mid-frame
        }
        msg += payload;
        if (!complete || !fin) continue;
        if (validate && utf8 != simd::utf8_accept) return fail(Error::invalid_utf8);
        const auto mop = static_cast<Opcode>(msg_op);
        msg_op = -1;
        std::string whole;
        whole.swap(msg);
        if (!event({Kind::message, mop, 0, std::move(whole)}, pos)) return out;
    }
}

// ---- parse_frames, whole or chunked --------------------------------------------------------------------

struct Run {
    Outcome outcome;
    std::vector<std::uint8_t> bytes;  // the stream as the parser left it (unmasked in place)
    std::uint32_t utf8_state = 0;
    std::uint64_t frame_remaining = 0;
    std::uint8_t hdr_len = 0;
    bool in_payload = false;
};

void run_parser(std::span<const std::uint8_t> stream, const Config& cfg, ChunkPlan plan, Run& run) {
    util::BufferPool pool;
    if (cfg.pool_keeps) pool.reserve_slots();
    ParserState st;
    Recorder rec{cfg, st, {}};
    Outcome& out = run.outcome;
    std::size_t pos = 0;
    bool first = true;
    while (first || pos < stream.size()) {
        first = false;
        const std::size_t n = plan.next(stream.size() - pos);
        // Exact size, so ASan sees any read past p[n); never null, even for an empty call.
        std::unique_ptr<std::byte[]> chunk(new std::byte[n ? n : 1]);
        if (n) std::memcpy(chunk.get(), stream.data() + pos, n);
        const ParseOutcome o = parse_frames(st, chunk.get(), n, cfg.lim, pool, rec);
        FUZZ_CHECK(o.consumed <= n, "consumed %zu of %zu", o.consumed, n);
        FUZZ_CHECK(o.result != ParseResult::no_memory, "no_memory at offset %zu", pos);
        FUZZ_CHECK((o.result == ParseResult::failed) == (o.error != Error::none), "result %d error %d",
                   int(o.result), int(o.error));
        const std::size_t keep = o.result == ParseResult::failed ? 0 : o.consumed;
        run.bytes.insert(run.bytes.end(), reinterpret_cast<std::uint8_t*>(chunk.get()),
                         reinterpret_cast<std::uint8_t*>(chunk.get()) + keep);
        if (o.result != ParseResult::ok) {
            out.result = o.result;
            out.error = o.error;
            out.stop_offset = o.result == ParseResult::stopped ? pos + o.consumed : 0;
            break;
        }
        FUZZ_CHECK(o.consumed == n, "ok but consumed %zu of %zu", o.consumed, n);
        pos += n;
    }
    out.events = std::move(rec.events);
    out.message_in_progress = st.message_in_progress();
    out.msg_bytes = st.msg_bytes;
    run.utf8_state = st.utf8_state;
    run.frame_remaining = st.frame_remaining;
    run.hdr_len = st.hdr_len;
    run.in_payload = st.in_payload;
    st.release(pool);
}

const char* kind_name(Kind k) {
    switch (k) {
    case Kind::message: return "message";
    case Kind::ping: return "ping";
    case Kind::pong: return "pong";
    case Kind::close: return "close";
    }
    return "?";
}

void check_same(const Outcome& got, const Outcome& want, const char* what) {
    const std::size_t common = std::min(got.events.size(), want.events.size());
    for (std::size_t i = 0; i < common; ++i)
        FUZZ_CHECK(got.events[i] == want.events[i], "%s: event %zu differs: %s op %d %zu bytes, want %s op %d %zu bytes",
                   what, i, kind_name(got.events[i].kind), int(got.events[i].op), got.events[i].bytes.size(),
                   kind_name(want.events[i].kind), int(want.events[i].op), want.events[i].bytes.size());
    FUZZ_CHECK(got.events.size() == want.events.size(), "%s: %zu events, want %zu", what, got.events.size(),
               want.events.size());
    FUZZ_CHECK(got.result == want.result && got.error == want.error, "%s: result %d error %d (%s), want %d error %d (%s)",
               what, int(got.result), int(got.error), describe(got.error), int(want.result), int(want.error),
               describe(want.error));
    if (got.result == ParseResult::stopped)
        FUZZ_CHECK(got.stop_offset == want.stop_offset, "%s: stopped at %zu, want %zu", what, got.stop_offset,
                   want.stop_offset);
    if (got.result == ParseResult::ok)
        FUZZ_CHECK(got.message_in_progress == want.message_in_progress && got.msg_bytes == want.msg_bytes,
                   "%s: at the end message_in_progress %d msg_bytes %llu, want %d %llu", what,
                   got.message_in_progress, static_cast<unsigned long long>(got.msg_bytes),
                   want.message_in_progress, static_cast<unsigned long long>(want.msg_bytes));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::InputReader in(data, size);
    const std::uint8_t c = in.byte();
    const auto kernels = simd::supported_kernels();
    Config cfg;
    cfg.lim.max_message_bytes = limit_choices[c & 7];
    cfg.lim.allowed_rsv = (c & 0x8) ? rsv1 : 0;
    cfg.chunked_kernels = kernels[((c >> 4) & 3) % kernels.size()];
    cfg.stops = c & 0x40;
    cfg.pool_keeps = c & 0x80;
    cfg.stop_at = in.byte();
    const auto sizes = in.bytes(in.byte() % 16);
    const auto stream = in.rest();

    const Outcome want = reference(stream, cfg);

    Run whole, chunked;
    simd::select_kernels("scalar");
    run_parser(stream, cfg, ChunkPlan({}), whole);
    simd::select_kernels(cfg.chunked_kernels->name);
    run_parser(stream, cfg, ChunkPlan(sizes), chunked);
    simd::select_kernels("auto");

    check_same(whole.outcome, want, "whole");
    check_same(chunked.outcome, want, "chunked");
    if (want.result == ParseResult::ok) {
        FUZZ_CHECK(whole.utf8_state == chunked.utf8_state && whole.frame_remaining == chunked.frame_remaining &&
                       whole.hdr_len == chunked.hdr_len && whole.in_payload == chunked.in_payload,
                   "end state differs: utf8 %u/%u remaining %llu/%llu hdr_len %u/%u in_payload %d/%d",
                   whole.utf8_state, chunked.utf8_state, static_cast<unsigned long long>(whole.frame_remaining),
                   static_cast<unsigned long long>(chunked.frame_remaining), whole.hdr_len, chunked.hdr_len,
                   whole.in_payload, chunked.in_payload);
    }
    if (want.result != ParseResult::failed) {
        // Both consumed the same prefix; each payload byte in it was unmasked with the same key and phase.
        FUZZ_CHECK(whole.bytes.size() == chunked.bytes.size(), "consumed %zu whole, %zu chunked", whole.bytes.size(),
                   chunked.bytes.size());
        const auto diff = std::mismatch(whole.bytes.begin(), whole.bytes.end(), chunked.bytes.begin());
        FUZZ_CHECK(diff.first == whole.bytes.end(), "unmasked bytes differ at stream offset %zu",
                   static_cast<std::size_t>(diff.first - whole.bytes.begin()));
    }
    return 0;
}
