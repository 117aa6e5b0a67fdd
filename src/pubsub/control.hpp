// The /ws control protocol (DESIGN.md "Control protocol"): a strict JSON validator, the request
// parser, and writers for the replies and the delivery envelope. No sockets, no allocation except
// the one FrameRef block the make_*_frame() helpers return.
//
// Views returned here point into the caller's input and are valid while that input is.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "pubsub/frame_ref.hpp"
#include "pubsub/room.hpp"

namespace roomcast::pubsub {

// ---- JSON (RFC 8259) --------------------------------------------------------------------------------
inline constexpr std::size_t max_json_depth = 64;  // nested arrays/objects; deeper is rejected

enum class JsonError : std::uint8_t {
    none,
    empty,             // no value at all (only whitespace)
    unexpected_end,    // input ended inside a value
    unexpected_char,   // a byte that cannot start/continue what is expected here (§2, §4, §5)
    bad_literal,       // not exactly true / false / null (§3)
    bad_number,        // number grammar (§6): leading zero, missing digits, lone '-' or '.'
    control_in_string, // U+0000..U+001F unescaped in a string (§7)
    bad_escape,        // backslash followed by anything but "\/bfnrtu (§7)
    bad_unicode,       // \u not followed by 4 hex digits, or a lone/misordered surrogate (§7, §8.2)
    invalid_utf8,      // string bytes not UTF-8 (§8.1)
    too_deep,          // nesting past max_json_depth
    trailing_garbage,  // something after the value (§2)
};
const char* describe(JsonError e) noexcept;

struct JsonCheck {
    JsonError error = JsonError::none;
    std::size_t offset = 0;  // where the error was found
    bool ok() const noexcept { return error == JsonError::none; }
};
// Validates that `text` is exactly one JSON value with optional surrounding whitespace.
// Linear time, constant memory, no allocation.
JsonCheck check_json(std::string_view text) noexcept;
inline bool is_json(std::string_view text) noexcept { return check_json(text).ok(); }

// ---- Requests ---------------------------------------------------------------------------------------
enum class Op : std::uint8_t { unknown, sub, unsub, pub };

enum class ControlError : std::uint8_t {
    none,
    malformed_json,  // not valid JSON (json_error says why)
    not_an_object,   // the message is valid JSON but not an object
    duplicate_key,   // a known key appears twice
    missing_op,
    bad_op,          // "op" is not a string
    unknown_op,      // "op" is a string other than sub / unsub / pub
    missing_room,
    bad_room,        // not a string, or not a valid room name (room_error says why)
    bad_since,       // not an integer in 0..2^64-1
    bad_last,        // not true/false
    bad_id,          // not a number or a string
    missing_data,    // "pub" without "data"
};
// Stable identifier ("missing_op", ...), for metrics and tests.
const char* name(ControlError e) noexcept;
// A sentence for the error reply's "message".
const char* describe(ControlError e) noexcept;

struct ControlRequest {
    Op op = Op::unknown;
    ControlError error = ControlError::none;
    JsonError json_error = JsonError::none;         // when error == malformed_json
    RoomNameError room_error = RoomNameError::none;  // when error == bad_room and the room was a string
    std::string_view room;  // the name (between the quotes; valid names need no escapes)
    std::string_view id;    // raw token, quotes included for strings; empty if absent. Echo verbatim.
    std::string_view data;  // raw JSON value, verbatim; empty if absent
    std::uint64_t since = 0;
    bool has_since = false;
    bool last = false;
    // The message for an error reply: the room reason for bad_room, else describe(error).
    const char* message() const noexcept;
};

// Parses one text message of the control protocol. Keys other than op/room/id/since/last/data are
// ignored (forward compatible); keys are matched on their raw bytes (an escaped spelling of "op" is an
// unknown key). `id` is filled whenever the JSON is well-formed, so error replies can echo it.
ControlRequest parse_control(std::string_view text) noexcept;

// ---- Replies (text frame payloads) ------------------------------------------------------------------
// `id` is a raw token from ControlRequest::id (echoed verbatim; omitted when empty).
struct SubscribedReply {
    std::string_view room;
    std::uint64_t seq = 0;       // last seq at subscribe time: live deliveries start at seq + 1
    std::uint64_t replayed = 0;  // deliveries that follow this reply from history
    bool gap = false;
    std::string_view id;
};
struct UnsubscribedReply {
    std::string_view room;
    std::string_view id;
};
struct ErrorReply {
    std::string_view code = "bad_request";
    std::string_view message;  // any bytes; JSON-escaped on output
    std::string_view id;
};
struct PublishedReply {  // POST /publish/{room} answer: {"room":R,"seq":N}
    std::string_view room;
    std::uint64_t seq = 0;
};

// reply_bytes() is the exact size; write_reply() writes that many bytes and returns the end.
std::size_t reply_bytes(const SubscribedReply& r) noexcept;
char* write_reply(char* out, const SubscribedReply& r) noexcept;
std::size_t reply_bytes(const UnsubscribedReply& r) noexcept;
char* write_reply(char* out, const UnsubscribedReply& r) noexcept;
std::size_t reply_bytes(const ErrorReply& r) noexcept;
char* write_reply(char* out, const ErrorReply& r) noexcept;
std::size_t reply_bytes(const PublishedReply& r) noexcept;
char* write_reply(char* out, const PublishedReply& r) noexcept;

// The reply as a complete text frame in one FrameRef (one reference, seq 0). nullptr on OOM.
template <class Reply>
FrameRef* make_reply_frame(const Reply& r) noexcept {
    return FrameRef::make_with(ws::Opcode::text, reply_bytes(r), 0, 0, {}, Format::envelope,
                               [&](std::byte* p) { write_reply(reinterpret_cast<char*>(p), r); });
}

// ---- Delivery envelope ------------------------------------------------------------------------------
// How a published payload is carried in {"room":R,"seq":N,...}:
//   json   text that is valid JSON      -> "data":<the text, surrounding whitespace trimmed>
//   string text that is not JSON        -> "data":"<JSON-escaped text>"
//   b64    binary                       -> "b64":"<base64>"
enum class DataKind : std::uint8_t { json, string, b64 };
DataKind classify_payload(ws::Opcode op, std::span<const std::byte> payload) noexcept;

std::size_t envelope_bytes(std::string_view room, std::uint64_t seq, DataKind kind,
                           std::span<const std::byte> payload) noexcept;
char* write_envelope(char* out, std::string_view room, std::uint64_t seq, DataKind kind,
                     std::span<const std::byte> payload) noexcept;
// The envelope as a text frame (Format::envelope, this seq, tag = room). nullptr on OOM.
FrameRef* make_envelope_frame(std::string_view room, std::uint64_t seq, ws::Opcode op,
                              std::span<const std::byte> payload) noexcept;

// JSON string escaping (quotes not included): exact size and writer.
std::size_t json_escaped_bytes(std::string_view s) noexcept;
char* write_json_escaped(char* out, std::string_view s) noexcept;
// Standard base64 with padding.
constexpr std::size_t base64_bytes(std::size_t n) noexcept { return (n + 2) / 3 * 4; }
char* write_base64(char* out, std::span<const std::byte> in) noexcept;

}  // namespace roomcast::pubsub
