// WebSocket opening handshake, server side (RFC 6455 §4.2).
#include "http/handshake.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstring>

namespace roomcast::http {
namespace {

// §1.3 / §4.2.2: the GUID appended to the client's key before hashing.
constexpr std::string_view ws_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

constexpr std::string_view b64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static_assert(b64_alphabet.size() == 64);

constexpr bool is_b64_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// The pieces of the 101 response. max_101_bytes (in the header) is their sum with both optional lines.
constexpr std::string_view status_line = "HTTP/1.1 101 Switching Protocols\r\n";
constexpr std::string_view upgrade_line = "Upgrade: websocket\r\n";
constexpr std::string_view connection_line = "Connection: Upgrade\r\n";
constexpr std::string_view accept_name = "Sec-WebSocket-Accept: ";
constexpr std::string_view protocol_name = "Sec-WebSocket-Protocol: ";
constexpr std::string_view extensions_name = "Sec-WebSocket-Extensions: ";
constexpr std::string_view crlf = "\r\n";

constexpr std::size_t fixed_101_bytes = status_line.size() + upgrade_line.size() + connection_line.size() +
                                        accept_name.size() + accept_key_len + crlf.size() + crlf.size();
constexpr std::size_t optional_101_bytes =
    protocol_name.size() + crlf.size() + extensions_name.size() + crlf.size();
static_assert(fixed_101_bytes + optional_101_bytes == max_101_bytes,
              "max_101_bytes must be every byte of the 101 response except the two optional values");

char* put(char* p, std::string_view s) noexcept {
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
}

// SHA-1 through EVP. The algorithm is fetched once (an implicit fetch through EVP_sha1() takes the
// method-store lock on every call), and each thread reuses one context. OpenSSL 3.0 still allocates
// the provider's state on every init; that single small allocation is what remains per handshake.
const EVP_MD* sha1_md() noexcept {
    // Lives for the whole process; freeing it at exit would race OpenSSL's own atexit cleanup.
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    return md;
}

struct ThreadDigest {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~ThreadDigest() { EVP_MD_CTX_free(ctx); }
};

bool sha1_key_guid(std::string_view key, unsigned char (&digest)[sha1_digest_bytes]) noexcept {
    thread_local ThreadDigest td;
    const EVP_MD* md = sha1_md();
    unsigned len = 0;
    // Two updates instead of concatenating: no copy of the key, and any key length is fine.
    bool ok = md && td.ctx && EVP_DigestInit_ex2(td.ctx, md, nullptr) == 1 &&
              EVP_DigestUpdate(td.ctx, key.data(), key.size()) == 1 &&
              EVP_DigestUpdate(td.ctx, ws_guid.data(), ws_guid.size()) == 1 &&
              EVP_DigestFinal_ex(td.ctx, digest, &len) == 1 && len == sha1_digest_bytes;
    if (!ok) ERR_clear_error();
    return ok;
}

}  // namespace

std::uint16_t http_status(HandshakeError e) noexcept {
    switch (e) {
        case HandshakeError::none:
            return 101;  // not a failure: switch protocols
        case HandshakeError::method_not_get:
            return 405;
        case HandshakeError::http_version:
        case HandshakeError::missing_host:
        case HandshakeError::duplicate_host:
        case HandshakeError::missing_connection:
        case HandshakeError::missing_key:
        case HandshakeError::duplicate_key:
        case HandshakeError::bad_key:
        case HandshakeError::body_not_allowed:
            return 400;
        case HandshakeError::missing_upgrade:
        case HandshakeError::missing_version:
        case HandshakeError::unsupported_version:
            return 426;
    }
    return 400;
}

const char* describe(HandshakeError e) noexcept {
    switch (e) {
        case HandshakeError::none:
            return "ok";
        case HandshakeError::method_not_get:
            return "WebSocket upgrade requires GET";
        case HandshakeError::http_version:
            return "WebSocket upgrade requires HTTP/1.1";
        case HandshakeError::missing_host:
            return "missing Host header";
        case HandshakeError::duplicate_host:
            return "more than one Host header";
        case HandshakeError::missing_upgrade:
            return "missing 'Upgrade: websocket'";
        case HandshakeError::missing_connection:
            return "Connection header lacks 'Upgrade'";
        case HandshakeError::missing_key:
            return "missing Sec-WebSocket-Key";
        case HandshakeError::duplicate_key:
            return "more than one Sec-WebSocket-Key";
        case HandshakeError::bad_key:
            return "Sec-WebSocket-Key is not base64 of 16 bytes";
        case HandshakeError::missing_version:
            return "missing Sec-WebSocket-Version";
        case HandshakeError::unsupported_version:
            return "unsupported Sec-WebSocket-Version";
        case HandshakeError::body_not_allowed:
            return "WebSocket upgrade must not carry a body";
    }
    return "bad handshake";
}

bool wants_websocket(const Request& req) noexcept {
    return req.has_header("Upgrade") || req.has_header("Sec-WebSocket-Key");
}

HandshakeError validate_upgrade(const Request& req, std::string_view& key) noexcept {
    // One pass over the headers collects every fact; the rules are then checked in enum order. Names are
    // told apart by length first, so most headers cost one switch and at most one comparison.
    unsigned hosts = 0, keys = 0, versions = 0;
    bool upgrade_websocket = false, connection_upgrade = false, body = false;
    std::string_view k, version;
    for (std::size_t i = 0; i < req.header_count; ++i) {
        const Header& h = req.headers[i];
        switch (h.name.size()) {
            case 4:
                if (iequals(h.name, "Host")) ++hosts;
                break;
            case 7:
                if (iequals(h.name, "Upgrade") && !upgrade_websocket)
                    upgrade_websocket = list_has_token(h.value, "websocket");
                break;
            case 10:
                if (iequals(h.name, "Connection") && !connection_upgrade)
                    connection_upgrade = list_has_token(h.value, "Upgrade");
                break;
            case 14:
                if (iequals(h.name, "Content-Length") && h.value != "0") body = true;
                break;
            case 17:
                if (iequals(h.name, "Sec-WebSocket-Key")) {
                    if (keys++ == 0) k = h.value;
                } else if (iequals(h.name, "Transfer-Encoding")) {
                    body = true;
                }
                break;
            case 21:
                if (iequals(h.name, "Sec-WebSocket-Version") && versions++ == 0) version = h.value;
                break;
            default:
                break;
        }
    }

    // §4.2.1/1: a GET of HTTP/1.1 or higher.
    if (req.method != "GET") return HandshakeError::method_not_get;
    if (req.version_minor < 1) return HandshakeError::http_version;
    // §4.2.1/2 and RFC 9112 §3.2: exactly one Host.
    if (hosts == 0) return HandshakeError::missing_host;
    if (hosts > 1) return HandshakeError::duplicate_host;
    // §4.2.1/3-4: token lists, compared case-insensitively.
    if (!upgrade_websocket) return HandshakeError::missing_upgrade;
    if (!connection_upgrade) return HandshakeError::missing_connection;
    // §4.2.1/5: exactly one key, base64 of 16 bytes.
    if (keys == 0) return HandshakeError::missing_key;
    if (keys > 1) return HandshakeError::duplicate_key;
    if (!is_valid_ws_key(k)) return HandshakeError::bad_key;
    // §4.2.1/6: version 13, sent once; a list or a repeat is not "13".
    if (versions == 0) return HandshakeError::missing_version;
    if (versions > 1 || version != "13") return HandshakeError::unsupported_version;
    // An upgrade request has no body (RFC 9110 §9.3.1: a GET body has no defined meaning); bytes after
    // the head belong to the WebSocket stream, so any body framing is refused.
    if (body) return HandshakeError::body_not_allowed;

    key = k;
    return HandshakeError::none;
}

std::size_t base64_encode(const unsigned char* in, std::size_t n, char* out) noexcept {
    const char* const a = b64_alphabet.data();
    char* p = out;
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        std::uint32_t v = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
        p[0] = a[(v >> 18) & 63];
        p[1] = a[(v >> 12) & 63];
        p[2] = a[(v >> 6) & 63];
        p[3] = a[v & 63];
        p += 4;
    }
    if (std::size_t rest = n - i; rest > 0) {
        std::uint32_t v = std::uint32_t{in[i]} << 16;
        if (rest == 2) v |= std::uint32_t{in[i + 1]} << 8;
        p[0] = a[(v >> 18) & 63];
        p[1] = a[(v >> 12) & 63];
        p[2] = rest == 2 ? a[(v >> 6) & 63] : '=';
        p[3] = '=';
        p += 4;
    }
    return static_cast<std::size_t>(p - out);
}

bool is_valid_ws_key(std::string_view key) noexcept {
    // 16 bytes = 5 groups of 3 bytes plus 1 byte: 22 significant characters and "==".
    constexpr std::size_t key_chars = base64_len(ws_key_bytes);
    static_assert(key_chars == 24);
    if (key.size() != key_chars) return false;
    if (key[key_chars - 2] != '=' || key[key_chars - 1] != '=') return false;
    for (std::size_t i = 0; i < key_chars - 2; ++i)
        if (!is_b64_char(key[i])) return false;
    // The last significant character carries 2 data bits and 4 padding bits; canonical base64 has the
    // padding bits zero (RFC 4648 §3.5), leaving only the values 0, 16, 32, 48: 'A', 'Q', 'g', 'w'.
    char last = key[key_chars - 3];
    return last == 'A' || last == 'Q' || last == 'g' || last == 'w';
}

void compute_accept_key(std::string_view key, char* out) noexcept {
    unsigned char digest[sha1_digest_bytes];
    // On an OpenSSL failure we still write 28 bytes: a digest of zeros the client will reject (§4.1).
    if (!sha1_key_guid(key, digest)) std::memset(digest, 0, sizeof digest);
    base64_encode(digest, sizeof digest, out);
}

std::string_view select_subprotocol(const Request& req, std::span<const std::string> supported) noexcept {
    if (supported.empty()) return {};
    // §4.2.2/5.4 and §11.3.4: tokens are compared case-sensitively. The view returned points into the
    // request, so it is always something the client offered.
    for (std::size_t i = 0; i < req.header_count; ++i) {
        if (!iequals(req.headers[i].name, "Sec-WebSocket-Protocol")) continue;
        std::string_view v = req.headers[i].value;
        while (!v.empty()) {
            std::size_t comma = v.find(',');
            std::string_view element = v.substr(0, comma);
            v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
            std::size_t b = element.find_first_not_of(" \t");
            if (b == std::string_view::npos) continue;  // empty list element
            element = element.substr(b, element.find_last_not_of(" \t") - b + 1);
            for (const std::string& s : supported)
                if (element == s) return element;
        }
    }
    return {};
}

std::size_t write_101(char* out, std::size_t cap, std::string_view key, std::string_view protocol,
                      std::string_view extensions) noexcept {
    std::size_t need = fixed_101_bytes;
    if (!protocol.empty()) need += protocol_name.size() + protocol.size() + crlf.size();
    if (!extensions.empty()) need += extensions_name.size() + extensions.size() + crlf.size();
    if (cap < need) return 0;

    char* p = out;
    p = put(p, status_line);
    p = put(p, upgrade_line);
    p = put(p, connection_line);
    p = put(p, accept_name);
    compute_accept_key(key, p);  // §4.2.2/5.4: straight into its place in the response
    p += accept_key_len;
    p = put(p, crlf);
    if (!protocol.empty()) {
        p = put(p, protocol_name);
        p = put(p, protocol);
        p = put(p, crlf);
    }
    if (!extensions.empty()) {
        p = put(p, extensions_name);
        p = put(p, extensions);
        p = put(p, crlf);
    }
    p = put(p, crlf);
    return static_cast<std::size_t>(p - out);
}

}  // namespace roomcast::http
