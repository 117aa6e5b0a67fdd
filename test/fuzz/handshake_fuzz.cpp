// Fuzz target: the WebSocket opening handshake (src/http/handshake.hpp) on top of parse_request. The input
// is a request head (browser upgrade requests make the seeds; the corpus format is http_request's).
//
// For every head that parses:
//  - validate_upgrade() returns exactly the first failing §4.2.1 rule, recomputed here in enum order from
//    the Request helpers and an OpenSSL base64 round trip for the key (a second implementation of the
//    same rules), and on success the key view is the Sec-WebSocket-Key value in the request buffer;
//  - select_subprotocol() returns the client's first offered token that is supported, as a view into the
//    request, for several supported lists;
//  - write_101() writes exactly the expected response (Accept computed here with OpenSSL one-shot SHA-1
//    and EVP_EncodeBlock), returns 0 when one byte short, and writes nothing past what it returns.
// For every input: is_valid_ws_key() and base64_encode() agree with OpenSSL on slices of it.
#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "http/handshake.hpp"

namespace {

using namespace roomcast::http;

constexpr std::size_t default_max_head_bytes = 8192;  // Config::max_header_bytes default
constexpr std::string_view ws_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 §1.3
constexpr std::string_view default_key = "dGhlIHNhbXBsZSBub25jZQ==";           // RFC 6455 §1.3 example

std::string openssl_base64(const unsigned char* p, std::size_t n) {
    std::string out(base64_len(n) + 1, '\0');  // EVP_EncodeBlock adds a NUL
    const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
    FUZZ_CHECK(len >= 0 && static_cast<std::size_t>(len) == base64_len(n));
    out.resize(static_cast<std::size_t>(len));
    return out;
}

std::string openssl_accept(std::string_view key) {
    const std::string text = std::string(key) + std::string(ws_guid);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    FUZZ_CHECK(EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha1(), nullptr) == 1 &&
               len == sha1_digest_bytes);
    return openssl_base64(digest, len);
}

// Canonical base64 of exactly 16 bytes: decodes, and re-encoding the 16 bytes gives the key back.
bool reference_valid_key(std::string_view key) {
    if (key.size() != base64_len(ws_key_bytes)) return false;
    unsigned char decoded[base64_len(ws_key_bytes)];
    const int n = EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(key.data()),
                                  static_cast<int>(key.size()));
    if (n < static_cast<int>(ws_key_bytes)) return false;
    return openssl_base64(decoded, ws_key_bytes) == key;
}

HandshakeError reference_validate(const Request& r) {
    if (r.method != "GET") return HandshakeError::method_not_get;
    if (r.version_minor < 1) return HandshakeError::http_version;
    const unsigned hosts = r.header_count_of("host");
    if (hosts == 0) return HandshakeError::missing_host;
    if (hosts > 1) return HandshakeError::duplicate_host;
    if (!r.has_token("upgrade", "WebSocket")) return HandshakeError::missing_upgrade;
    if (!r.has_token("connection", "upgrade")) return HandshakeError::missing_connection;
    const unsigned keys = r.header_count_of("sec-websocket-key");
    if (keys == 0) return HandshakeError::missing_key;
    if (keys > 1) return HandshakeError::duplicate_key;
    if (!reference_valid_key(r.header("sec-websocket-key"))) return HandshakeError::bad_key;
    const unsigned versions = r.header_count_of("sec-websocket-version");
    if (versions == 0) return HandshakeError::missing_version;
    if (versions > 1 || r.header("sec-websocket-version") != "13") return HandshakeError::unsupported_version;
    bool body = false;
    for (std::size_t i = 0; i < r.header_count; ++i) {
        const Header& h = r.headers[i];
        if (iequals(h.name, "content-length") && h.value != "0") body = true;
        if (iequals(h.name, "transfer-encoding")) body = true;
    }
    if (body) return HandshakeError::body_not_allowed;
    return HandshakeError::none;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Every offered subprotocol element, in order, across all Sec-WebSocket-Protocol headers.
std::vector<std::string_view> offered_protocols(const Request& r) {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < r.header_count; ++i) {
        if (!iequals(r.headers[i].name, "sec-websocket-protocol")) continue;
        std::string_view v = r.headers[i].value;
        for (;;) {
            const std::size_t comma = v.find(',');
            if (std::string_view e = trim(v.substr(0, comma)); !e.empty()) out.push_back(e);
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    return out;
}

std::string_view check_select(const Request& r, std::string_view buf, const std::vector<std::string>& supported) {
    const std::string_view got = select_subprotocol(r, supported);
    std::string_view want;
    for (std::string_view e : offered_protocols(r)) {
        bool found = false;
        for (const std::string& s : supported) found = found || e == s;
        if (found) {
            want = e;
            break;
        }
    }
    FUZZ_CHECK(got == want, "select_subprotocol gave '%.*s', want '%.*s'", int(got.size()), got.data(),
               int(want.size()), want.data());
    FUZZ_CHECK(got.empty() || (got.data() >= buf.data() && got.data() + got.size() <= buf.data() + buf.size()),
               "selected subprotocol does not point into the request");
    return got;
}

void check_101(std::string_view key, std::string_view protocol, std::string_view extensions) {
    std::string want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    want += "Sec-WebSocket-Accept: " + openssl_accept(key) + "\r\n";
    if (!protocol.empty()) want += "Sec-WebSocket-Protocol: " + std::string(protocol) + "\r\n";
    if (!extensions.empty()) want += "Sec-WebSocket-Extensions: " + std::string(extensions) + "\r\n";
    want += "\r\n";

    constexpr std::size_t guard = 64;
    constexpr char fill = '\xAA';
    const std::size_t promised = max_101_bytes + protocol.size() + extensions.size();
    FUZZ_CHECK(want.size() <= promised, "101 of %zu bytes, header promises %zu", want.size(), promised);
    for (std::size_t cap : {want.size() - 1, want.size(), promised}) {
        std::vector<char> out(cap + guard, fill);
        const std::size_t n = write_101(out.data(), cap, key, protocol, extensions);
        const std::size_t expect = cap < want.size() ? 0 : want.size();
        FUZZ_CHECK(n == expect, "write_101 cap %zu returned %zu, want %zu", cap, n, expect);
        FUZZ_CHECK(std::string_view(out.data(), n) == std::string_view(want).substr(0, n), "101 differs");
        for (std::size_t i = n; i < out.size(); ++i)
            FUZZ_CHECK(out[i] == fill, "write_101 wrote byte %zu past its result %zu (cap %zu)", i, n, cap);
    }
}

void check_key_and_base64(std::string_view s) {
    FUZZ_CHECK(is_valid_ws_key(s) == reference_valid_key(s), "is_valid_ws_key('%.*s')", int(s.size()),
               s.data());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // RFC 6455 §1.3's worked example, once: the oracle and the code under test agree on the known answer.
    char accept[accept_key_len];
    compute_accept_key(default_key, accept);
    FUZZ_CHECK(std::string_view(accept, accept_key_len) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    FUZZ_CHECK(openssl_accept(default_key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view buf(reinterpret_cast<const char*>(data), size);

    // Key check and base64 on raw slices, whatever the input is.
    check_key_and_base64(buf.substr(0, base64_len(ws_key_bytes)));
    if (size > base64_len(ws_key_bytes)) check_key_and_base64(buf.substr(size - base64_len(ws_key_bytes)));
    for (std::size_t n = 0; n <= size && n <= 48; ++n) {
        char out[base64_len(48)];
        const std::size_t len = base64_encode(data, n, out);
        FUZZ_CHECK(std::string_view(out, len) == openssl_base64(data, n), "base64_encode of %zu bytes", n);
    }

    auto req = std::make_unique<Request>();
    ParseError perr = ParseError::none;
    if (parse_request(buf, default_max_head_bytes, *req, perr) != ParseStatus::done) return 0;
    const Request& r = *req;

    FUZZ_CHECK(wants_websocket(r) == (r.has_header("upgrade") || r.has_header("sec-websocket-key")));
    std::string_view key;
    const HandshakeError err = validate_upgrade(r, key);
    const HandshakeError want = reference_validate(r);
    FUZZ_CHECK(err == want, "validate_upgrade %d (%s), reference %d (%s)", int(err), describe(err), int(want),
               describe(want));
    const std::uint16_t status = http_status(err);
    FUZZ_CHECK(status == 101 || status == 400 || status == 405 || status == 426, "status %u", status);
    FUZZ_CHECK((status == 101) == (err == HandshakeError::none) && describe(err) != nullptr);
    if (err == HandshakeError::none) {
        const std::string_view sent = r.header("sec-websocket-key");
        FUZZ_CHECK(key.data() == sent.data() && key.size() == sent.size(), "key is not the request's view");
        FUZZ_CHECK(is_valid_ws_key(key));
    }
    for (std::size_t i = 0; i < r.header_count; ++i) check_key_and_base64(r.headers[i].value);

    // Supported lists: none, a fixed one, and one built to match (the client's last offer, then a decoy).
    const std::vector<std::string_view> offers = offered_protocols(r);
    FUZZ_CHECK(check_select(r, buf, {}).empty());
    const std::vector<std::string> fixed = {"chat", "superchat", "roomcast.v1", "mqtt"};
    std::string_view protocol = check_select(r, buf, fixed);
    if (!offers.empty()) {
        const std::vector<std::string> matching = {std::string(offers.back()), "chat"};
        protocol = check_select(r, buf, matching);
        FUZZ_CHECK(!protocol.empty());
    }

    // The response, for the validated key or (to exercise write_101 with any bytes) another one.
    if (key.empty()) key = r.has_header("sec-websocket-key") ? r.header("sec-websocket-key") : default_key;
    const std::string_view extensions = r.header("sec-websocket-extensions");
    check_101(key, protocol, extensions);
    check_101(key, {}, {});
    return 0;
}
