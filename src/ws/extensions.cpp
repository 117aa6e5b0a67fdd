#include "ws/extensions.hpp"

#include <algorithm>
#include <cstring>

namespace roomcast::ws {
namespace {

constexpr std::string_view deflate_name = "permessage-deflate";

// RFC 7230 §3.2.6 tchar.
constexpr bool is_tchar(unsigned char c) noexcept {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }
// qdtext (RFC 7230 §3.2.6): HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
constexpr bool is_qdtext(unsigned char c) noexcept {
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E) ||
           c >= 0x80;
}
// The byte after a backslash in a quoted-pair: HTAB / SP / VCHAR / obs-text.
constexpr bool is_quoted_pair_char(unsigned char c) noexcept {
    return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7F);
}

// A parameter value after unquoting. Window sizes are at most 2 digits, so only a few bytes are kept;
// `len` keeps counting past them so that a longer value is still recognised as invalid.
struct Value {
    bool present = false;  // "=" was there
    bool token = false;  // after unquoting, a non-empty token (RFC 6455 §9.1 requires it for quoted values)
    std::size_t len = 0;
    char text[4] = {};
    void push(char c) noexcept {
        if (len < sizeof text) text[len] = c;
        ++len;
        if (!is_tchar(static_cast<unsigned char>(c))) token = false;
    }
};

// Window bits value per RFC 7692 §7.1.2.1: a decimal integer 8..15 without leading zeros. -1 if invalid.
int window_bits_value(const Value& v) noexcept {
    if (!v.token || v.len == 0 || v.len > 2) return -1;
    if (v.text[0] < '1' || v.text[0] > '9') return -1;  // no leading zero (and no sign)
    int n = v.text[0] - '0';
    if (v.len == 2) {
        if (v.text[1] < '0' || v.text[1] > '9') return -1;
        n = n * 10 + (v.text[1] - '0');
    }
    return (n >= min_window_bits && n <= max_window_bits) ? n : -1;
}

// One permessage-deflate offer being read.
struct Offer {
    enum : unsigned { server_nct = 1, client_nct = 2, server_bits = 4, client_bits = 8 };
    unsigned seen = 0;
    bool declined = false;
    int server_window = -1;  // offered server_max_window_bits
    int client_window = -1;  // offered client_max_window_bits (0: offered without a value)

    void apply(std::string_view name, const Value& v) noexcept {
        if (declined) return;
        unsigned bit;
        if (name == "server_no_context_takeover") {
            bit = server_nct;
            if (v.present) declined = true;  // §7.1.1.1: the parameter has no value
        } else if (name == "client_no_context_takeover") {
            bit = client_nct;
            if (v.present) declined = true;  // §7.1.1.2: the parameter has no value
        } else if (name == "server_max_window_bits") {
            bit = server_bits;
            server_window = v.present ? window_bits_value(v) : -1;
            if (server_window < 0) declined = true;  // §7.1.2.1: value required, 8..15
        } else if (name == "client_max_window_bits") {
            bit = client_bits;
            client_window = v.present ? window_bits_value(v) : 0;
            if (client_window < 0) declined = true;  // §7.1.2.2: no value, or 8..15
        } else {
            declined = true;  // §7.1: a parameter not defined for an offer
            return;
        }
        if (seen & bit) declined = true;  // §7.1: the same parameter twice
        seen |= bit;
    }
};

// Reads one header value: elements separated by ',', each "token *( OWS ';' OWS param )",
// param = token [ OWS '=' OWS ( token / quoted-string ) ]. One pass, every byte looked at O(1) times.
class ValueReader {
public:
    ValueReader(std::string_view s) noexcept : s_(s) {}

    bool at_end() const noexcept { return i_ >= s_.size(); }
    char peek() const noexcept { return s_[i_]; }
    void skip_ows() noexcept {
        while (i_ < s_.size() && is_ows(s_[i_])) ++i_;
    }
    // Skips empty list elements (RFC 7230 §7: a recipient accepts them) and whitespace.
    void skip_separators() noexcept {
        while (i_ < s_.size() && (is_ows(s_[i_]) || s_[i_] == ',')) ++i_;
    }
    std::string_view token() noexcept {
        const std::size_t b = i_;
        while (i_ < s_.size() && is_tchar(static_cast<unsigned char>(s_[i_]))) ++i_;
        return s_.substr(b, i_ - b);
    }
    bool consume(char c) noexcept {
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    // A token or quoted-string value into v. false: neither (malformed element).
    bool value(Value& v) noexcept {
        v.present = true;
        if (consume('"')) {
            v.token = true;
            while (i_ < s_.size()) {
                const auto c = static_cast<unsigned char>(s_[i_]);
                if (c == '"') {
                    ++i_;
                    if (v.len == 0) v.token = false;  // "" is not a token
                    return true;
                }
                if (c == '\\') {
                    if (i_ + 1 >= s_.size() || !is_quoted_pair_char(static_cast<unsigned char>(s_[i_ + 1])))
                        return false;
                    v.push(s_[i_ + 1]);
                    i_ += 2;
                    continue;
                }
                if (!is_qdtext(c)) return false;
                v.push(static_cast<char>(c));
                ++i_;
            }
            return false;  // unterminated quoted-string
        }
        const std::string_view t = token();
        if (t.empty()) return false;
        v.token = true;
        for (char c : t.substr(0, sizeof v.text)) v.text[v.len++] = c;
        v.len = t.size();
        return true;
    }
    // Recovery after a malformed element: skip to the next ',' outside a quoted-string.
    void skip_element() noexcept {
        bool quoted = false;
        while (i_ < s_.size()) {
            const char c = s_[i_];
            if (quoted) {
                if (c == '\\') {
                    i_ += 2;
                    continue;
                }
                if (c == '"') quoted = false;
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                return;
            }
            ++i_;
        }
    }

private:
    std::string_view s_;
    std::size_t i_ = 0;
};

void accept(const Offer& o, const DeflateConfig& cfg, DeflateParams& out) noexcept {
    out = DeflateParams{};
    // §7.1.1.1: MUST answer server_no_context_takeover if offered; MAY always answer it.
    out.server_no_context_takeover = (o.seen & Offer::server_nct) || !cfg.context_takeover;
    // §7.1.1.2: MAY answer client_no_context_takeover (a hint when offered, a demand otherwise).
    out.client_no_context_takeover = (o.seen & Offer::client_nct) || !cfg.context_takeover;
    const int cfg_bits = std::clamp(cfg.window_bits, min_zlib_deflate_window_bits, max_window_bits);
    if (o.seen & Offer::server_bits) {
        // §7.1.2.1: answer with the same or a smaller value.
        out.server_window_bits = static_cast<std::uint8_t>(std::min(o.server_window, cfg_bits));
        out.send_server_window_bits = true;
    } else {
        out.server_window_bits = static_cast<std::uint8_t>(cfg_bits);  // a client inflater at 15 copes
    }
    if (o.seen & Offer::client_bits) {
        // §7.1.2.2: only if offered; without a value we may pick any, and 15 compresses best for the client.
        out.client_window_bits =
            static_cast<std::uint8_t>(o.client_window > 0 ? o.client_window : max_window_bits);
        out.send_client_window_bits = true;
    }
}

char* put(char* p, std::string_view s) noexcept {
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
}
char* put_bits(char* p, unsigned bits) noexcept {
    if (bits >= 10) *p++ = static_cast<char>('0' + bits / 10);
    *p++ = static_cast<char>('0' + bits % 10);
    return p;
}

}  // namespace

bool negotiate_deflate(std::span<const std::string_view> header_values, const DeflateConfig& cfg,
                       DeflateParams& out) noexcept {
    if (!cfg.enabled) return false;
    std::size_t offers = 0;
    for (std::string_view value : header_values) {
        ValueReader r(value);
        for (;;) {
            r.skip_separators();
            if (r.at_end()) break;
            if (offers == max_extension_offers) return false;  // the rest is ignored
            ++offers;
            const std::string_view name = r.token();
            if (name.empty()) {  // not an extension token: skip the element
                r.skip_element();
                continue;
            }
            const bool ours = name == deflate_name;  // extension tokens are compared exactly
            Offer o;
            std::size_t params = 0;
            bool malformed = false;
            for (;;) {
                r.skip_ows();
                if (r.at_end() || r.peek() == ',') break;
                if (!r.consume(';')) {  // junk after the token or a parameter
                    malformed = true;
                    break;
                }
                r.skip_ows();
                const std::string_view pname = r.token();
                if (pname.empty()) {
                    malformed = true;
                    break;
                }
                r.skip_ows();
                Value v;
                if (r.consume('=')) {
                    r.skip_ows();
                    if (!r.value(v)) {
                        malformed = true;
                        break;
                    }
                }
                if (++params > max_offer_params) o.declined = true;
                if (ours) o.apply(pname, v);
            }
            if (malformed) {
                r.skip_element();
                continue;
            }
            if (ours && !o.declined) {
                accept(o, cfg, out);
                return true;
            }
        }
    }
    return false;
}

std::size_t write_deflate_response(const DeflateParams& p, std::span<char> out) noexcept {
    if (out.size() < max_deflate_response_bytes) return 0;
    char* w = put(out.data(), deflate_name);
    if (p.server_no_context_takeover) w = put(w, "; server_no_context_takeover");
    if (p.client_no_context_takeover) w = put(w, "; client_no_context_takeover");
    if (p.send_server_window_bits) w = put_bits(put(w, "; server_max_window_bits="), p.server_window_bits);
    if (p.send_client_window_bits) w = put_bits(put(w, "; client_max_window_bits="), p.client_window_bits);
    return static_cast<std::size_t>(w - out.data());
}

}  // namespace roomcast::ws
