// Fuzz target: the /ws control protocol (src/pubsub/control.hpp): the strict JSON validator, the request
// parser and the reply/envelope writers.
//
// Input layout: byte 0 bit 0 = the payload is binary (for the envelope), bytes 1-8 = a seq; the rest is
// one text message as a client sends it.
// Checked:
//   - check_json() accepts exactly what a plain recursive RFC 8259 validator written here accepts (strings
//     UTF-8, surrogate escapes paired, nesting at most max_json_depth), and reports an offset inside the text;
//   - parse_control(): views point into the message; malformed_json iff check_json() fails (with its
//     error); a request without error has a known op, a valid room, and JSON `data` for pub; an `id` is a
//     JSON string or number;
//   - every writer writes exactly the size it announced (guard bytes untouched) and, for UTF-8 input,
//     produces valid JSON: escaped strings, error/subscribed replies echoing the id; the envelope always
//     (classify_payload() picks json, string or base64 to make sure of it).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "pubsub/control.hpp"
#include "simd/kernels.hpp"

namespace {

using namespace roomcast;
using namespace roomcast::pubsub;

bool utf8_valid(std::string_view s) {
    return simd::utf8_scalar(reinterpret_cast<const std::byte*>(s.data()), s.size(), simd::utf8_accept) ==
           simd::utf8_accept;
}

// RFC 8259, recursive descent. Returns false on any error.
struct RefJson {
    std::string_view s;
    std::size_t i = 0;

    void ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    }
    bool lit(std::string_view w) {
        if (s.substr(i, w.size()) != w) return false;
        i += w.size();
        return true;
    }
    bool digits() {
        const std::size_t b = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        return i > b;
    }
    bool number() {
        if (i < s.size() && s[i] == '-') ++i;
        if (i < s.size() && s[i] == '0') {
            ++i;
        } else if (!(i < s.size() && s[i] >= '1' && s[i] <= '9') || !digits()) {
            return false;
        }
        if (i < s.size() && s[i] == '.' && (++i, !digits())) return false;
        if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
            ++i;
            if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
            if (!digits()) return false;
        }
        return true;
    }
    int hex4() {  // -1 if not 4 hex digits
        if (s.size() - i < 4) return -1;
        int v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = s[i + k];
            const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        i += 4;
        return v;
    }
    bool string() {
        ++i;  // the opening quote
        const std::size_t start = i;
        std::string raw;  // unescaped bytes, to check UTF-8
        while (i < s.size() && s[i] != '"') {
            const auto c = static_cast<unsigned char>(s[i]);
            if (c < 0x20) return false;
            if (c != '\\') {
                raw += s[i++];
                continue;
            }
            if (++i == s.size()) return false;
            const char e = s[i++];
            if (std::strchr("\"\\/bfnrt", e) && e != '\0') continue;
            if (e != 'u') return false;
            const int u = hex4();
            if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) return false;  // lone low surrogate
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (!lit("\\u")) return false;
                const int low = hex4();
                if (low < 0xDC00 || low > 0xDFFF) return false;
            }
        }
        if (i == s.size()) return false;
        ++i;
        (void)start;
        return utf8_valid(raw);
    }
    bool value(std::size_t depth) {
        ws();
        if (i == s.size()) return false;
        const char c = s[i];
        if (c == '{' || c == '[') {
            if (depth == max_json_depth) return false;
            const char close = c == '{' ? '}' : ']';
            ++i;
            ws();
            if (i < s.size() && s[i] == close) return ++i, true;
            for (;;) {
                if (c == '{') {
                    ws();
                    if (i == s.size() || s[i] != '"' || !string()) return false;
                    ws();
                    if (i == s.size() || s[i] != ':') return false;
                    ++i;
                }
                if (!value(depth + 1)) return false;
                ws();
                if (i == s.size()) return false;
                if (s[i] == close) return ++i, true;
                if (s[i] != ',') return false;
                ++i;
            }
        }
        if (c == '"') return string();
        if (c == 't') return lit("true");
        if (c == 'f') return lit("false");
        if (c == 'n') return lit("null");
        return number();
    }
    bool document() {
        if (!value(0)) return false;
        ws();
        return i == s.size();
    }
};

bool inside(std::string_view v, std::string_view text) {
    return v.empty() || (v.data() >= text.data() && v.data() + v.size() <= text.data() + text.size());
}

constexpr std::size_t guard = 16;

// Runs a writer into a buffer of exactly `size` bytes plus guard bytes; checks it ends at `size`.
template <class Write>
std::string written(std::size_t size, Write&& write, const char* what) {
    std::vector<char> buf(size + guard, '\x5A');
    char* end = write(buf.data());
    FUZZ_CHECK(end == buf.data() + size, "%s wrote %td bytes, announced %zu", what, end - buf.data(), size);
    for (std::size_t k = size; k < buf.size(); ++k) FUZZ_CHECK(buf[k] == '\x5A', "%s wrote past its size", what);
    return std::string(buf.data(), size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::InputReader in(data, size);
    const bool binary = in.byte() & 1;
    std::uint64_t seq = 0;
    for (int k = 0; k < 8; ++k) seq = seq << 8 | in.byte();
    const std::string_view text = fuzz::as_chars(in.rest());
    const bool text_utf8 = utf8_valid(text);

    const JsonCheck jc = check_json(text);
    RefJson ref{text};
    const bool want = ref.document();
    FUZZ_CHECK(jc.ok() == want, "check_json %s (error %d at %zu), reference %s", jc.ok() ? "accepts" : "rejects",
               int(jc.error), jc.offset, want ? "accepts" : "rejects");
    FUZZ_CHECK(jc.offset <= text.size() && describe(jc.error) != nullptr);

    const ControlRequest r = parse_control(text);
    FUZZ_CHECK(inside(r.room, text) && inside(r.id, text) && inside(r.data, text), "a view outside the message");
    FUZZ_CHECK((r.error == ControlError::malformed_json) == !jc.ok(), "error %s, check_json ok %d", name(r.error),
               jc.ok());
    if (r.error == ControlError::malformed_json) FUZZ_CHECK(r.json_error == jc.error);
    FUZZ_CHECK(r.message() != nullptr && name(r.error) != nullptr && describe(r.error) != nullptr);
    if (!r.id.empty()) {
        FUZZ_CHECK(is_json(r.id) && (r.id.front() == '"' || r.id.front() == '-' ||
                                     (r.id.front() >= '0' && r.id.front() <= '9')),
                   "id '%.*s'", int(r.id.size()), r.id.data());
    }
    if (r.error == ControlError::none) {
        FUZZ_CHECK(r.op == Op::sub || r.op == Op::unsub || r.op == Op::pub, "op %d", int(r.op));
        FUZZ_CHECK(validate_room_name(r.room) == RoomNameError::none, "room '%.*s'", int(r.room.size()),
                   r.room.data());
        if (r.op == Op::pub) FUZZ_CHECK(!r.data.empty() && is_json(r.data), "pub data");
    }

    // Writers. Every output must be JSON when the text it embeds is UTF-8.
    const std::string escaped = written(json_escaped_bytes(text), [&](char* o) { return write_json_escaped(o, text); },
                                        "write_json_escaped");
    if (text_utf8) FUZZ_CHECK(is_json("\"" + escaped + "\""), "escaped string is not JSON");

    const ErrorReply er{"bad_request", text, r.id};
    const std::string err_json = written(reply_bytes(er), [&](char* o) { return write_reply(o, er); }, "ErrorReply");
    if (text_utf8) FUZZ_CHECK(is_json(err_json), "error reply is not JSON: %s", err_json.c_str());
    if (r.error == ControlError::none) {
        const SubscribedReply sr{r.room, seq, seq / 3, (seq & 1) != 0, r.id};
        FUZZ_CHECK(is_json(written(reply_bytes(sr), [&](char* o) { return write_reply(o, sr); }, "SubscribedReply")));
        const UnsubscribedReply ur{r.room, r.id};
        FUZZ_CHECK(is_json(written(reply_bytes(ur), [&](char* o) { return write_reply(o, ur); }, "UnsubscribedReply")));
        const PublishedReply pr{r.room, seq};
        FUZZ_CHECK(is_json(written(reply_bytes(pr), [&](char* o) { return write_reply(o, pr); }, "PublishedReply")));
    }

    const auto payload = std::as_bytes(std::span(text.data(), text.size()));
    const ws::Opcode op = binary ? ws::Opcode::binary : ws::Opcode::text;
    const DataKind kind = classify_payload(op, payload);
    // Text that is JSON goes in as is, other UTF-8 text as a string, anything else (binary, or text from a
    // source that skipped UTF-8 validation) as base64.
    // JSON is embedded verbatim only if the envelope (one level deeper) stays within max_json_depth.
    std::size_t depth = 0, max_depth = 0;
    bool in_string = false, after_backslash = false;
    for (char ch : text) {
        if (in_string) {
            if (after_backslash) after_backslash = false;
            else if (ch == '\\') after_backslash = true;
            else if (ch == '"') in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            max_depth = std::max(max_depth, ++depth);
        } else if (ch == ']' || ch == '}') {
            --depth;
        }
    }
    const bool embeddable = jc.ok() && max_depth < max_json_depth;
    const DataKind want_kind = binary ? DataKind::b64 : embeddable ? DataKind::json : text_utf8 ? DataKind::string : DataKind::b64;
    FUZZ_CHECK(kind == want_kind, "kind %d, want %d", int(kind), int(want_kind));
    const std::string_view room = r.error == ControlError::none ? r.room : "lobby";
    const std::string env = written(envelope_bytes(room, seq, kind, payload),
                                    [&](char* o) { return write_envelope(o, room, seq, kind, payload); }, "envelope");
    FUZZ_CHECK(is_json(env), "envelope is not JSON: %s", env.c_str());
    written(base64_bytes(payload.size()), [&](char* o) { return write_base64(o, payload); }, "write_base64");
    return 0;
}
