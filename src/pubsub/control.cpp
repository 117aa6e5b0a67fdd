#include "pubsub/control.hpp"

#include <cstring>

namespace roomcast::pubsub {

// ---- JSON scanner -----------------------------------------------------------------------------------
namespace {

bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }  // RFC 8259 §2
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 if invalid. Rejects overlong forms,
// surrogates (U+D800..DFFF) and code points past U+10FFFF (RFC 3629 §4).
std::size_t utf8_sequence(const unsigned char* p, const unsigned char* end) noexcept {
    const unsigned c = p[0];
    auto cont = [&](std::size_t i) { return p + i < end && (p[i] & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;  // overlong
        if (c == 0xED && p[1] > 0x9F) return 0;  // surrogate
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;  // overlong
        if (c == 0xF4 && p[1] > 0x8F) return 0;  // past U+10FFFF
        return 4;
    }
    return 0;  // continuation byte as lead, C0/C1 (overlong), F5..FF
}

bool valid_utf8(std::string_view s) noexcept {
    auto* p = reinterpret_cast<const unsigned char*>(s.data());
    auto* end = p + s.size();
    while (p < end) {
        if (*p < 0x80) {
            ++p;
            continue;
        }
        const std::size_t n = utf8_sequence(p, end);
        if (!n) return false;
        p += n;
    }
    return true;
}

class Scanner {
public:
    explicit Scanner(std::string_view s) noexcept : begin_(s.data()), p_(s.data()), end_(s.data() + s.size()) {}

    const char* pos() const noexcept { return p_; }
    std::size_t offset() const noexcept { return static_cast<std::size_t>(p_ - begin_); }
    bool at_end() const noexcept { return p_ == end_; }
    char peek() const noexcept { return *p_; }
    void advance() noexcept { ++p_; }
    void skip_ws() noexcept {
        while (p_ < end_ && is_ws(*p_)) ++p_;
    }

    // At an opening quote. On success p_ is past the closing quote; [content_begin, p_-1) is the raw
    // (still escaped) content.
    JsonError string() noexcept {
        ++p_;
        // Byte at a time: measured faster than an 8-byte skip on typical payloads (short strings;
        // bench/micro/pubsub_bench JsonValidate: 1.3 vs 0.8 GB/s).
        for (;;) {
            if (p_ == end_) return JsonError::unexpected_end;
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                ++p_;
                return JsonError::none;
            }
            if (c == '\\') {
                if (JsonError e = escape(); e != JsonError::none) return e;
                continue;
            }
            if (c < 0x20) return JsonError::control_in_string;  // §7: must be escaped
            if (c < 0x80) {
                ++p_;
                continue;
            }
            const std::size_t n = utf8_sequence(reinterpret_cast<const unsigned char*>(p_),
                                                reinterpret_cast<const unsigned char*>(end_));
            if (!n) return JsonError::invalid_utf8;
            p_ += n;
        }
    }

    // Any value, iteratively; nesting deeper than depth_limit containers is rejected.
    JsonError value(std::size_t depth_limit) noexcept {
        std::uint64_t objects = 0;  // bit d set: the container at depth d+1 is an object
        std::size_t depth = 0;
        for (;;) {
            // Expecting a value.
            skip_ws();
            if (p_ == end_) return JsonError::unexpected_end;
            const char c = *p_;
            if (c == '{' || c == '[') {
                if (depth == depth_limit) return JsonError::too_deep;
                const bool obj = c == '{';
                if (obj) objects |= std::uint64_t(1) << depth;
                else objects &= ~(std::uint64_t(1) << depth);
                ++depth;
                ++p_;
                skip_ws();
                if (p_ < end_ && *p_ == (obj ? '}' : ']')) {  // empty container
                    ++p_;
                    --depth;
                } else if (obj) {
                    if (JsonError e = member_key(); e != JsonError::none) return e;
                    continue;
                } else {
                    continue;
                }
            } else if (JsonError e = scalar(); e != JsonError::none) {
                return e;
            }
            // After a value: close containers or move to the next element.
            for (;;) {
                if (depth == 0) return JsonError::none;
                skip_ws();
                if (p_ == end_) return JsonError::unexpected_end;
                const bool obj = (objects >> (depth - 1)) & 1;
                if (*p_ == ',') {
                    ++p_;
                    if (obj) {
                        skip_ws();
                        if (JsonError e = member_key(); e != JsonError::none) return e;
                    }
                    break;  // next value
                }
                if (*p_ == (obj ? '}' : ']')) {
                    ++p_;
                    --depth;
                    continue;
                }
                return JsonError::unexpected_char;
            }
        }
    }

    // At a key's opening quote (whitespace skipped): "key" ws ':'.
    JsonError member_key() noexcept {
        if (p_ == end_) return JsonError::unexpected_end;
        if (*p_ != '"') return JsonError::unexpected_char;
        if (JsonError e = string(); e != JsonError::none) return e;
        skip_ws();
        if (p_ == end_) return JsonError::unexpected_end;
        if (*p_ != ':') return JsonError::unexpected_char;
        ++p_;
        return JsonError::none;
    }

private:
    JsonError scalar() noexcept {
        const char c = *p_;
        if (c == '"') return string();
        if (c == '-' || is_digit(c)) return number();
        if (c == 't') return literal("true");
        if (c == 'f') return literal("false");
        if (c == 'n') return literal("null");
        return JsonError::unexpected_char;
    }

    JsonError literal(std::string_view word) noexcept {
        if (static_cast<std::size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0)
            return JsonError::bad_literal;
        p_ += word.size();
        return JsonError::none;
    }

    // §6: [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT ).
    JsonError number() noexcept {
        if (*p_ == '-') ++p_;
        if (p_ == end_) return JsonError::bad_number;
        if (*p_ == '0') {
            ++p_;
            if (p_ < end_ && is_digit(*p_)) return JsonError::bad_number;  // leading zero
        } else if (is_digit(*p_)) {
            while (p_ < end_ && is_digit(*p_)) ++p_;
        } else {
            return JsonError::bad_number;  // '-' without digits
        }
        if (p_ < end_ && *p_ == '.') {
            ++p_;
            if (p_ == end_ || !is_digit(*p_)) return JsonError::bad_number;  // '.' needs a digit
            while (p_ < end_ && is_digit(*p_)) ++p_;
        }
        if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
            ++p_;
            if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
            if (p_ == end_ || !is_digit(*p_)) return JsonError::bad_number;  // exponent needs a digit
            while (p_ < end_ && is_digit(*p_)) ++p_;
        }
        return JsonError::none;
    }

    // At a backslash. §7 escapes; \u surrogates must pair high+low (§8.2: lone ones are not text).
    JsonError escape() noexcept {
        ++p_;
        if (p_ == end_) return JsonError::unexpected_end;
        const char c = *p_++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            return JsonError::none;
        case 'u':
            break;
        default:
            return JsonError::bad_escape;
        }
        int u = hex4();
        if (u < 0) return JsonError::bad_unicode;
        if (u >= 0xDC00 && u <= 0xDFFF) return JsonError::bad_unicode;  // low surrogate first
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return JsonError::bad_unicode;  // lone high
            p_ += 2;
            const int lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) return JsonError::bad_unicode;
        }
        return JsonError::none;
    }

    int hex4() noexcept {
        if (end_ - p_ < 4) return -1;
        int v = 0;
        for (int i = 0; i < 4; ++i) {
            const int h = hex_value(p_[i]);
            if (h < 0) return -1;
            v = v * 16 + h;
        }
        p_ += 4;
        return v;
    }

    const char* begin_;
    const char* p_;
    const char* end_;
};

}  // namespace

const char* describe(JsonError e) noexcept {
    switch (e) {
    case JsonError::none: return "";
    case JsonError::empty: return "malformed JSON: empty message";
    case JsonError::unexpected_end: return "malformed JSON: unexpected end of input";
    case JsonError::unexpected_char: return "malformed JSON: unexpected character";
    case JsonError::bad_literal: return "malformed JSON: invalid literal";
    case JsonError::bad_number: return "malformed JSON: invalid number";
    case JsonError::control_in_string: return "malformed JSON: control character in string";
    case JsonError::bad_escape: return "malformed JSON: invalid escape";
    case JsonError::bad_unicode: return "malformed JSON: invalid \\u escape or unpaired surrogate";
    case JsonError::invalid_utf8: return "malformed JSON: invalid UTF-8 in string";
    case JsonError::too_deep: return "malformed JSON: nested too deeply";
    case JsonError::trailing_garbage: return "malformed JSON: data after the value";
    }
    return "malformed JSON";
}

namespace {
JsonCheck check_json_within(std::string_view text, std::size_t depth) noexcept {
    Scanner s(text);
    s.skip_ws();
    if (s.at_end()) return {JsonError::empty, s.offset()};
    if (JsonError e = s.value(depth); e != JsonError::none) return {e, s.offset()};
    s.skip_ws();
    if (!s.at_end()) return {JsonError::trailing_garbage, s.offset()};
    return {};
}
}  // namespace

JsonCheck check_json(std::string_view text) noexcept {
    Scanner s(text);
    s.skip_ws();
    if (s.at_end()) return {JsonError::empty, s.offset()};
    if (JsonError e = s.value(max_json_depth); e != JsonError::none) return {e, s.offset()};
    s.skip_ws();
    if (!s.at_end()) return {JsonError::trailing_garbage, s.offset()};
    return {};
}

// ---- Requests ---------------------------------------------------------------------------------------
const char* name(ControlError e) noexcept {
    switch (e) {
    case ControlError::none: return "none";
    case ControlError::malformed_json: return "malformed_json";
    case ControlError::not_an_object: return "not_an_object";
    case ControlError::duplicate_key: return "duplicate_key";
    case ControlError::missing_op: return "missing_op";
    case ControlError::bad_op: return "bad_op";
    case ControlError::unknown_op: return "unknown_op";
    case ControlError::missing_room: return "missing_room";
    case ControlError::bad_room: return "bad_room";
    case ControlError::bad_since: return "bad_since";
    case ControlError::bad_last: return "bad_last";
    case ControlError::bad_id: return "bad_id";
    case ControlError::missing_data: return "missing_data";
    }
    return "unknown";
}

const char* describe(ControlError e) noexcept {
    switch (e) {
    case ControlError::none: return "";
    case ControlError::malformed_json: return "malformed JSON";
    case ControlError::not_an_object: return "message must be a JSON object";
    case ControlError::duplicate_key: return "duplicate key";
    case ControlError::missing_op: return "missing \"op\"";
    case ControlError::bad_op: return "\"op\" must be a string";
    case ControlError::unknown_op: return "unknown \"op\" (expected sub, unsub or pub)";
    case ControlError::missing_room: return "missing \"room\"";
    case ControlError::bad_room: return "\"room\" must be a string";
    case ControlError::bad_since: return "\"since\" must be an integer from 0 to 18446744073709551615";
    case ControlError::bad_last: return "\"last\" must be true or false";
    case ControlError::bad_id: return "\"id\" must be a number or a string";
    case ControlError::missing_data: return "\"pub\" needs \"data\"";
    }
    return "bad request";
}

const char* ControlRequest::message() const noexcept {
    if (error == ControlError::malformed_json) return describe(json_error);
    if (error == ControlError::bad_room && room_error != RoomNameError::none) return describe(room_error);
    return describe(error);
}

namespace {

bool parse_u64(std::string_view digits, std::uint64_t& out) noexcept {
    if (digits.empty()) return false;
    if (digits.size() > 1 && digits[0] == '0') return false;
    std::uint64_t v = 0;
    for (char c : digits) {
        if (!is_digit(c)) return false;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return false;  // overflow
        v = v * 10 + d;
    }
    out = v;
    return true;
}

std::string_view string_content(std::string_view token) noexcept { return token.substr(1, token.size() - 2); }

}  // namespace

ControlRequest parse_control(std::string_view text) noexcept {
    ControlRequest r;
    auto malformed = [&](JsonError e) {
        r.error = ControlError::malformed_json;
        r.json_error = e;
        return r;
    };
    Scanner s(text);
    s.skip_ws();
    if (s.at_end()) return malformed(JsonError::empty);
    if (s.peek() != '{') {
        const JsonCheck c = check_json(text);
        if (!c.ok()) return malformed(c.error);
        r.error = ControlError::not_an_object;
        return r;
    }
    s.advance();
    std::string_view op, room, id, since, last, data;
    bool duplicate = false;
    s.skip_ws();
    if (s.at_end()) return malformed(JsonError::unexpected_end);
    if (s.peek() == '}') {
        s.advance();
    } else {
        for (;;) {
            const char* key_begin = s.pos();
            if (JsonError e = s.member_key(); e != JsonError::none) return malformed(e);
            std::string_view key(key_begin, static_cast<std::size_t>(s.pos() - key_begin));
            key = key.substr(0, key.rfind('"') + 1);  // drop whitespace and ':' after the key
            s.skip_ws();
            const char* value_begin = s.pos();
            if (JsonError e = s.value(max_json_depth - 1); e != JsonError::none) return malformed(e);
            const std::string_view value(value_begin, static_cast<std::size_t>(s.pos() - value_begin));
            std::string_view* slot = nullptr;
            if (key == "\"op\"") slot = &op;
            else if (key == "\"room\"") slot = &room;
            else if (key == "\"id\"") slot = &id;
            else if (key == "\"since\"") slot = &since;
            else if (key == "\"last\"") slot = &last;
            else if (key == "\"data\"") slot = &data;
            if (slot) {
                if (!slot->empty()) duplicate = true;
                *slot = value;
            }
            s.skip_ws();
            if (s.at_end()) return malformed(JsonError::unexpected_end);
            if (s.peek() == ',') {
                s.advance();
                s.skip_ws();
                continue;
            }
            if (s.peek() == '}') {
                s.advance();
                break;
            }
            return malformed(JsonError::unexpected_char);
        }
    }
    s.skip_ws();
    if (!s.at_end()) return malformed(JsonError::trailing_garbage);

    // Well-formed: echo the id whenever it is usable, then check the fields in a fixed order.
    const bool id_ok = id.empty() || id[0] == '"' || id[0] == '-' || is_digit(id[0]);
    if (id_ok) r.id = id;
    r.data = data;
    auto fail = [&](ControlError e) {
        r.error = e;
        return r;
    };
    if (duplicate) return fail(ControlError::duplicate_key);
    if (!id_ok) return fail(ControlError::bad_id);
    if (op.empty()) return fail(ControlError::missing_op);
    if (op[0] != '"') return fail(ControlError::bad_op);
    const std::string_view op_name = string_content(op);
    if (op_name == "sub") r.op = Op::sub;
    else if (op_name == "unsub") r.op = Op::unsub;
    else if (op_name == "pub") r.op = Op::pub;
    else return fail(ControlError::unknown_op);
    if (room.empty()) return fail(ControlError::missing_room);
    if (room[0] != '"') return fail(ControlError::bad_room);
    r.room = string_content(room);
    if (RoomNameError e = validate_room_name(r.room); e != RoomNameError::none) {
        r.room_error = e;
        return fail(ControlError::bad_room);
    }
    if (!since.empty()) {
        if (!parse_u64(since, r.since)) return fail(ControlError::bad_since);
        r.has_since = true;
    }
    if (!last.empty()) {
        if (last == "true") r.last = true;
        else if (last == "false") r.last = false;
        else return fail(ControlError::bad_last);
    }
    if (r.op == Op::pub && data.empty()) return fail(ControlError::missing_data);
    return r;
}

// ---- Writers ----------------------------------------------------------------------------------------
namespace {

constexpr char hex_digits[] = "0123456789abcdef";
constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::size_t decimal_digits(std::uint64_t v) noexcept {
    std::size_t n = 1;
    while (v >= 10) {
        v /= 10;
        ++n;
    }
    return n;
}

// Emits the same bytes to a counter or a pointer, so sizes and output can never disagree.
struct Counter {
    std::size_t n = 0;
    void lit(std::string_view s) noexcept { n += s.size(); }
    void u64(std::uint64_t v) noexcept { n += decimal_digits(v); }
    void esc(std::string_view s) noexcept { n += json_escaped_bytes(s); }
    void b64(std::span<const std::byte> in) noexcept { n += base64_bytes(in.size()); }
};
struct Writer {
    char* p;
    void lit(std::string_view s) noexcept {
        if (!s.empty()) std::memcpy(p, s.data(), s.size());
        p += s.size();
    }
    void u64(std::uint64_t v) noexcept {
        const std::size_t n = decimal_digits(v);
        for (std::size_t i = n; i-- > 0; v /= 10) p[i] = static_cast<char>('0' + v % 10);
        p += n;
    }
    void esc(std::string_view s) noexcept { p = write_json_escaped(p, s); }
    void b64(std::span<const std::byte> in) noexcept { p = write_base64(p, in); }
};

template <class Sink>
void emit_id(Sink& k, std::string_view id) noexcept {
    if (id.empty()) return;
    k.lit(",\"id\":");
    k.lit(id);
}

template <class Sink>
void emit(Sink& k, const SubscribedReply& r) noexcept {
    k.lit("{\"op\":\"subscribed\",\"room\":\"");
    k.esc(r.room);
    k.lit("\",\"seq\":");
    k.u64(r.seq);
    k.lit(",\"replayed\":");
    k.u64(r.replayed);
    k.lit(r.gap ? ",\"gap\":true" : ",\"gap\":false");
    emit_id(k, r.id);
    k.lit("}");
}
template <class Sink>
void emit(Sink& k, const UnsubscribedReply& r) noexcept {
    k.lit("{\"op\":\"unsubscribed\",\"room\":\"");
    k.esc(r.room);
    k.lit("\"");
    emit_id(k, r.id);
    k.lit("}");
}
template <class Sink>
void emit(Sink& k, const ErrorReply& r) noexcept {
    k.lit("{\"op\":\"error\",\"code\":\"");
    k.esc(r.code);
    k.lit("\",\"message\":\"");
    k.esc(r.message);
    k.lit("\"");
    emit_id(k, r.id);
    k.lit("}");
}
template <class Sink>
void emit(Sink& k, const PublishedReply& r) noexcept {
    k.lit("{\"room\":\"");
    k.esc(r.room);
    k.lit("\",\"seq\":");
    k.u64(r.seq);
    k.lit("}");
}

std::string_view as_text(std::span<const std::byte> b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}
std::string_view trim_ws(std::string_view s) noexcept {
    while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
    return s;
}

template <class Sink>
void emit_envelope(Sink& k, std::string_view room, std::uint64_t seq, DataKind kind,
                   std::span<const std::byte> payload) noexcept {
    k.lit("{\"room\":\"");
    k.esc(room);
    k.lit("\",\"seq\":");
    k.u64(seq);
    switch (kind) {
    case DataKind::json:
        k.lit(",\"data\":");
        k.lit(trim_ws(as_text(payload)));
        break;
    case DataKind::string:
        k.lit(",\"data\":\"");
        k.esc(as_text(payload));
        k.lit("\"");
        break;
    case DataKind::b64:
        k.lit(",\"b64\":\"");
        k.b64(payload);
        k.lit("\"");
        break;
    }
    k.lit("}");
}

}  // namespace

std::size_t json_escaped_bytes(std::string_view s) noexcept {
    std::size_t n = s.size();
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') n += 1;
        else if (c < 0x20) n += 5;  // \u00XX
    }
    return n;
}

char* write_json_escaped(char* out, std::string_view s) noexcept {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = ch;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex_digits[c >> 4];
            *out++ = hex_digits[c & 0xF];
        }
    }
    return out;
}

char* write_base64(char* out, std::span<const std::byte> in) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    std::size_t n = in.size();
    for (; n >= 3; n -= 3, p += 3) {
        const std::uint32_t v = (std::uint32_t(p[0]) << 16) | (std::uint32_t(p[1]) << 8) | p[2];
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = b64_alphabet[(v >> 6) & 63];
        *out++ = b64_alphabet[v & 63];
    }
    if (n) {
        const std::uint32_t v = (std::uint32_t(p[0]) << 16) | (n == 2 ? std::uint32_t(p[1]) << 8 : 0);
        *out++ = b64_alphabet[v >> 18];
        *out++ = b64_alphabet[(v >> 12) & 63];
        *out++ = n == 2 ? b64_alphabet[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    return out;
}

#define ROOMCAST_REPLY_WRITERS(T)                                      \
    std::size_t reply_bytes(const T& r) noexcept {                     \
        Counter k;                                                     \
        emit(k, r);                                                    \
        return k.n;                                                    \
    }                                                                  \
    char* write_reply(char* out, const T& r) noexcept {                \
        Writer k{out};                                                 \
        emit(k, r);                                                    \
        return k.p;                                                    \
    }
ROOMCAST_REPLY_WRITERS(SubscribedReply)
ROOMCAST_REPLY_WRITERS(UnsubscribedReply)
ROOMCAST_REPLY_WRITERS(ErrorReply)
ROOMCAST_REPLY_WRITERS(PublishedReply)
#undef ROOMCAST_REPLY_WRITERS

DataKind classify_payload(ws::Opcode op, std::span<const std::byte> payload) noexcept {
    if (op != ws::Opcode::text) return DataKind::b64;
    const std::string_view text = as_text(payload);
    // Embedded verbatim only if the envelope (one level more) stays within max_json_depth, so every
    // delivery is itself JSON our own validator (and depth-limited clients) accept.
    if (check_json_within(text, max_json_depth - 1).ok()) return DataKind::json;
    // A JSON string must hold UTF-8; text frames already are (RFC 6455 §8.1), other sources may not be.
    return valid_utf8(text) ? DataKind::string : DataKind::b64;
}

std::size_t envelope_bytes(std::string_view room, std::uint64_t seq, DataKind kind,
                           std::span<const std::byte> payload) noexcept {
    Counter k;
    emit_envelope(k, room, seq, kind, payload);
    return k.n;
}

char* write_envelope(char* out, std::string_view room, std::uint64_t seq, DataKind kind,
                     std::span<const std::byte> payload) noexcept {
    Writer k{out};
    emit_envelope(k, room, seq, kind, payload);
    return k.p;
}

FrameRef* make_envelope_frame(std::string_view room, std::uint64_t seq, ws::Opcode op,
                              std::span<const std::byte> payload) noexcept {
    const DataKind kind = classify_payload(op, payload);
    return FrameRef::make_with(ws::Opcode::text, envelope_bytes(room, seq, kind, payload), 0, seq, room,
                               Format::envelope, [&](std::byte* p) {
                                   write_envelope(reinterpret_cast<char*>(p), room, seq, kind, payload);
                               });
}

}  // namespace roomcast::pubsub
