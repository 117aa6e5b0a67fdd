// WebSocket client wire helpers for roomcast-bench (set-up paths; the per-message path is in worker.cpp).
#include "wire.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cctype>
#include <cstdio>
#include <string>

namespace roomcast::bench {
namespace {

constexpr std::string_view ws_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 1.3
constexpr std::size_t max_response_head_bytes = 8192;

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

std::string accept_for_key(std::string_view key) {
    std::string joined = std::string(key) + std::string(ws_guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(joined.data()), joined.size(), digest);
    unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<char*>(out), std::size_t(n));
}

std::string upgrade_request(std::string_view host, std::uint16_t port, std::string_view path, bool offer_deflate) {
    std::string host_header(host);
    if (host_header.find(':') != std::string::npos) host_header = "[" + host_header + "]";  // IPv6 literal
    std::string r;
    r.reserve(256);
    r += "GET ";
    r += path;
    r += " HTTP/1.1\r\nHost: ";
    r += host_header;
    r += ':';
    r += std::to_string(port);
    r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
    r += client_key;
    r += "\r\nSec-WebSocket-Version: 13\r\n";
    if (offer_deflate) r += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    r += "\r\n";
    return r;
}

HandshakeStatus check_upgrade_response(std::string_view received, std::string_view expected_accept,
                                       std::size_t* header_bytes, int* status_code,
                                       std::string_view* extensions) {
    if (extensions) *extensions = {};
    std::size_t end = received.find("\r\n\r\n");
    if (end == std::string_view::npos)
        return received.size() > max_response_head_bytes ? HandshakeStatus::too_large : HandshakeStatus::need_more;
    *header_bytes = end + 4;
    std::string_view head = received.substr(0, end + 2);
    std::size_t line_end = head.find("\r\n");
    std::string_view status_line = head.substr(0, line_end);
    // "HTTP/1.1 101 Switching Protocols"
    *status_code = 0;
    if (status_line.size() >= 12 && status_line.substr(0, 5) == "HTTP/") {
        std::size_t sp = status_line.find(' ');
        if (sp != std::string_view::npos && sp + 4 <= status_line.size()) {
            int code = 0;
            for (std::size_t i = sp + 1; i < sp + 4; ++i) {
                char c = status_line[i];
                if (c < '0' || c > '9') return HandshakeStatus::bad_status;
                code = code * 10 + (c - '0');
            }
            *status_code = code;
        }
    }
    if (*status_code != 101) return HandshakeStatus::bad_status;
    std::size_t pos = line_end + 2;
    bool accept_ok = false;
    while (pos < head.size()) {
        std::size_t eol = head.find("\r\n", pos);
        std::string_view line = head.substr(pos, eol - pos);
        pos = eol + 2;
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view name = trim(line.substr(0, colon));
        if (iequals(name, "sec-websocket-accept")) {
            if (trim(line.substr(colon + 1)) != expected_accept) return HandshakeStatus::bad_accept;
            accept_ok = true;
        } else if (extensions && iequals(name, "sec-websocket-extensions")) {
            *extensions = trim(line.substr(colon + 1));
        }
    }
    return accept_ok ? HandshakeStatus::ok : HandshakeStatus::bad_accept;
}

std::size_t write_client_header(std::uint8_t* out, Opcode op, std::size_t payload_len, const std::uint8_t mask[4],
                                bool rsv1) {
    out[0] = std::uint8_t(0x80u | (rsv1 ? 0x40u : 0u) | std::uint8_t(op));
    std::size_t n;
    if (payload_len < 126) {
        out[1] = std::uint8_t(0x80u | payload_len);
        n = 2;
    } else if (payload_len <= 0xFFFF) {
        out[1] = 0x80u | 126u;
        out[2] = std::uint8_t(payload_len >> 8);
        out[3] = std::uint8_t(payload_len);
        n = 4;
    } else {
        out[1] = 0x80u | 127u;
        for (int i = 0; i < 8; ++i) out[2 + i] = std::uint8_t(std::uint64_t(payload_len) >> (56 - 8 * i));
        n = 10;
    }
    std::memcpy(out + n, mask, 4);
    return n + 4;
}

std::vector<std::uint8_t> masked_frame(Opcode op, const std::uint8_t* payload, std::size_t len,
                                       const std::uint8_t mask[4], bool rsv1) {
    std::vector<std::uint8_t> f(max_frame_header_bytes + len);
    std::size_t h = write_client_header(f.data(), op, len, mask, rsv1);
    if (len) std::memcpy(f.data() + h, payload, len);
    mask_bytes(f.data() + h, len, mask, 0);
    f.resize(h + len);
    return f;
}

DeflateAgreement parse_deflate_response(std::string_view ext, bool offered) {
    DeflateAgreement a;
    if (ext.empty()) return a;
    // We offer exactly one extension, so the answer is one element: permessage-deflate; params.
    if (!offered || ext.find(',') != std::string_view::npos) {
        a.ok = false;
        return a;
    }
    bool first = true, seen_snct = false, seen_cnct = false, seen_cbits = false, seen_sbits = false;
    while (!ext.empty()) {
        std::size_t semi = ext.find(';');
        std::string_view item = trim(ext.substr(0, semi));
        ext = semi == std::string_view::npos ? std::string_view{} : ext.substr(semi + 1);
        if (first) {
            first = false;
            if (!iequals(item, "permessage-deflate")) {
                a.ok = false;
                return a;
            }
            a.on = true;
            continue;
        }
        std::size_t eq = item.find('=');
        std::string_view name = trim(item.substr(0, eq));
        std::string_view value = eq == std::string_view::npos ? std::string_view{} : trim(item.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        auto bits = [&](int* out) {
            if (value.empty() || value.size() > 2) return false;
            int v = 0;
            for (char c : value) {
                if (c < '0' || c > '9') return false;
                v = v * 10 + (c - '0');
            }
            if (v < 8 || v > 15) return false;
            *out = v;
            return true;
        };
        bool good = true;
        if (iequals(name, "server_no_context_takeover")) {
            good = !seen_snct && value.empty();
            seen_snct = a.server_no_context_takeover = true;
        } else if (iequals(name, "client_no_context_takeover")) {
            good = !seen_cnct && value.empty();
            seen_cnct = a.client_no_context_takeover = true;
        } else if (iequals(name, "client_max_window_bits")) {
            good = !seen_cbits && bits(&a.client_window_bits);
            seen_cbits = true;
        } else if (iequals(name, "server_max_window_bits")) {
            good = !seen_sbits && bits(&a.server_window_bits);
            seen_sbits = true;
        } else {
            good = false;
        }
        if (!good) {
            a.ok = false;
            return a;
        }
    }
    return a;
}

void write_hex16(std::uint8_t* out, std::uint64_t v) noexcept {
    static constexpr char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
        out[i] = std::uint8_t(digits[v & 15]);
        v >>= 4;
    }
}

bool parse_hex16(const std::uint8_t* in, std::uint64_t* v) noexcept {
    std::uint64_t r = 0;
    for (int i = 0; i < 16; ++i) {
        std::uint8_t c = in[i];
        std::uint8_t d;
        if (c >= '0' && c <= '9') d = std::uint8_t(c - '0');
        else if (c >= 'a' && c <= 'f') d = std::uint8_t(c - 'a' + 10);
        else return false;
        r = (r << 4) | d;
    }
    *v = r;
    return true;
}

std::vector<std::uint8_t> build_payload(std::size_t size, bool binary, bool json, bool broadcast) {
    std::vector<std::uint8_t> p(size);
    if (binary) {
        for (std::size_t i = 0; i < size; ++i) p[i] = std::uint8_t(i * 31 + 7);
        return p;
    }
    if (!json) {
        for (std::size_t i = 0; i < size; ++i) p[i] = std::uint8_t('a' + i % 26);
        if (!broadcast) return p;
    }
    // JSON-like order-book text. Deterministic pseudo-random numbers (xorshift) so it compresses like a
    // real feed: repeated keys, varying digits.
    std::string s;
    std::size_t body_start = 0;
    if (broadcast) {
        s = "{\"ts\":\"0000000000000000\",\"seq\":\"0000000000000000\"";
        body_start = s.size();  // == text_header_bytes
    } else {
        s = "{";
    }
    std::size_t target = size;
    if (!json) {
        // text fill with a broadcast prefix: ,"pad":"abc..."}
        std::string body = broadcast ? ",\"pad\":\"" : "";
        while (s.size() + body.size() + 2 < target) body += char('a' + body.size() % 26);
        if (s.size() + body.size() + 2 <= target) s += body + "\"";
        s += "}";
    } else {
        std::uint64_t x = 0x9e3779b97f4a7c15ull;
        auto rnd = [&]() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            return x;
        };
        static constexpr const char* syms[] = {"AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "TSLA", "META", "BRK.B"};
        std::string body = std::string(s.size() > 1 ? "," : "") + "\"sym\":\"" + syms[rnd() % 8] + "\",\"book\":[";
        bool any = false;
        for (;;) {
            char rec[128];
            std::uint64_t r = rnd();
            int n = std::snprintf(rec, sizeof rec, "%s{\"px\":%u.%02u,\"qty\":%u,\"side\":\"%s\",\"id\":%u}",
                                  any ? "," : "", unsigned(100 + r % 400), unsigned((r >> 12) % 100),
                                  unsigned(((r >> 20) % 50 + 1) * 100), (r >> 40) & 1 ? "bid" : "ask",
                                  unsigned(1000000 + (r >> 44) % 9000000));
            if (s.size() + body.size() + std::size_t(n) + 2 > target) break;
            body.append(rec, std::size_t(n));
            any = true;
        }
        if (s.size() + body.size() + 2 <= target) {
            s += body;
            s += "]";
        }
        s += "}";
    }
    // Pad to exactly size with JSON whitespace before the closing brace (or cut, for tiny sizes).
    if (s.size() < target) s.insert(s.size() - 1, target - s.size(), ' ');
    s.resize(target);
    (void)body_start;
    std::memcpy(p.data(), s.data(), target);
    return p;
}

}  // namespace roomcast::bench
