#include "http/handshake.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace roomcast::http {
namespace {

constexpr std::string_view rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";         // RFC 6455 §1.3
constexpr std::string_view rfc_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";  // RFC 6455 §1.3

constexpr std::string_view good_headers =
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n";

// A request to validate: owns its text, so the views in req stay valid.
struct Upgrade {
    std::string text;
    Request req;
};

Upgrade parse(std::string text) {
    Upgrade u{std::move(text), {}};
    ParseError err;
    EXPECT_EQ(parse_request(u.text, 1 << 20, u.req, err), ParseStatus::done) << describe(err) << "\n"
                                                                             << u.text.substr(0, 200);
    return u;
}

// The good request with `drop` removed from its headers (each line given in full) and `add` appended.
Upgrade upgrade_with(std::string_view add, std::vector<std::string_view> drop = {},
                     std::string_view request_line = "GET /chat HTTP/1.1") {
    std::string headers(good_headers);
    for (std::string_view d : drop) {
        std::size_t at = headers.find(d);
        EXPECT_NE(at, std::string::npos) << d;
        if (at != std::string::npos) headers.erase(at, d.size());
    }
    return parse(std::string(request_line) + "\r\n" + headers + std::string(add) + "\r\n");
}

HandshakeError validate(const Upgrade& u) {
    std::string_view key;
    return validate_upgrade(u.req, key);
}

constexpr std::string_view host_line = "Host: server.example.com\r\n";
constexpr std::string_view upgrade_line = "Upgrade: websocket\r\n";
constexpr std::string_view connection_line = "Connection: Upgrade\r\n";
constexpr std::string_view key_line = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
constexpr std::string_view version_line = "Sec-WebSocket-Version: 13\r\n";

TEST(AcceptKey, MatchesRfc6455Example) {  // §1.3
    char out[accept_key_len];
    compute_accept_key(rfc_key, out);
    EXPECT_EQ(std::string_view(out, sizeof out), rfc_accept);
}

TEST(AcceptKey, HashesKeysOfAnyLength) {
    // Accept keys are only computed for validated keys, but nothing may break on other lengths.
    char a[accept_key_len], b[accept_key_len];
    std::string long_key(4096, 'k');
    compute_accept_key(long_key, a);
    compute_accept_key("", b);
    EXPECT_NE(std::string_view(a, sizeof a), std::string_view(b, sizeof b));
    compute_accept_key("", a);
    EXPECT_EQ(std::string_view(a, sizeof a), std::string_view(b, sizeof b));
}

TEST(Base64, MatchesRfc4648Vectors) {  // RFC 4648 §10
    const std::pair<std::string_view, std::string_view> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (auto [in, want] : vectors) {
        char out[16];
        std::size_t n = base64_encode(reinterpret_cast<const unsigned char*>(in.data()), in.size(), out);
        EXPECT_EQ(n, base64_len(in.size()));
        EXPECT_EQ(std::string_view(out, n), want) << in;
    }
}

TEST(Base64, EncodesEveryByteValue) {
    unsigned char in[3] = {0xFB, 0xEF, 0xFF};
    char out[4];
    base64_encode(in, 3, out);
    EXPECT_EQ(std::string_view(out, 4), "++//");
}

TEST(WsKey, AcceptsCanonicalBase64Of16Bytes) {  // §4.1
    EXPECT_TRUE(is_valid_ws_key(rfc_key));
    EXPECT_TRUE(is_valid_ws_key("AAAAAAAAAAAAAAAAAAAAAA=="));
    EXPECT_TRUE(is_valid_ws_key("/+/+/+/+/+/+/+/+/+/+/w=="));
}

TEST(WsKey, RejectsWrongLengths) {
    EXPECT_FALSE(is_valid_ws_key(""));
    EXPECT_FALSE(is_valid_ws_key("dGhlIHNhbXBsZSBub25jZQ="));    // 23
    EXPECT_FALSE(is_valid_ws_key("dGhlIHNhbXBsZSBub25jZQ==="));  // 25
    EXPECT_FALSE(is_valid_ws_key("dGhlIHNhbXBsZSBub25jZQ"));     // unpadded
    EXPECT_FALSE(is_valid_ws_key("dGhlIHNhbXBsZSBub25jZXgx"));   // 24 chars, 18 bytes
}

TEST(WsKey, RejectsNonCanonicalPaddingBits) {  // RFC 4648 §3.5
    const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t value = 0; value < alphabet.size(); ++value) {
        std::string key(rfc_key);
        key[21] = alphabet[value];
        EXPECT_EQ(is_valid_ws_key(key), value % 16 == 0) << key;
    }
}

TEST(WsKey, RejectsCharactersOutsideTheAlphabet) {
    for (char bad : {'!', '-', '_', ' ', '=', '.', '\0', '\x80'}) {
        std::string key(rfc_key);
        key[3] = bad;
        EXPECT_FALSE(is_valid_ws_key(key)) << static_cast<int>(bad);
    }
    EXPECT_FALSE(is_valid_ws_key("dGhlIHNhbXBsZSBub25jZQ=A"));
}

TEST(Handshake, AcceptsTheRfcExample) {
    Upgrade u = upgrade_with("Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n");
    std::string_view key;
    EXPECT_EQ(validate_upgrade(u.req, key), HandshakeError::none);
    EXPECT_EQ(key, rfc_key);
    EXPECT_GE(key.data(), u.text.data());  // a view into the request
    EXPECT_LT(key.data(), u.text.data() + u.text.size());
}

TEST(Handshake, AcceptsTokenListsAndAnyCase) {  // §4.2.1/3-4: case-insensitive tokens
    Upgrade u = parse(
        "GET / HTTP/1.1\r\nhost: h\r\nUPGRADE: h2c, WebSocket\r\nconnection: keep-alive\r\n"
        "Connection: UPGRADE\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
        "Content-Length: 0\r\n\r\n");
    EXPECT_EQ(validate(u), HandshakeError::none);
}

TEST(Handshake, RejectsMethodOtherThanGet) {
    EXPECT_EQ(validate(upgrade_with("", {}, "POST /chat HTTP/1.1")), HandshakeError::method_not_get);
    EXPECT_EQ(validate(upgrade_with("", {}, "get /chat HTTP/1.1")), HandshakeError::method_not_get);
    EXPECT_EQ(http_status(HandshakeError::method_not_get), 405);
}

TEST(Handshake, RejectsHttp10) {
    EXPECT_EQ(validate(upgrade_with("", {}, "GET /chat HTTP/1.0")), HandshakeError::http_version);
}

TEST(Handshake, RequiresExactlyOneHost) {
    EXPECT_EQ(validate(upgrade_with("", {host_line})), HandshakeError::missing_host);
    EXPECT_EQ(validate(upgrade_with("host: other\r\n")), HandshakeError::duplicate_host);
}

TEST(Handshake, RequiresUpgradeWebsocket) {
    EXPECT_EQ(validate(upgrade_with("", {upgrade_line})), HandshakeError::missing_upgrade);
    EXPECT_EQ(validate(upgrade_with("Upgrade: h2c\r\n", {upgrade_line})), HandshakeError::missing_upgrade);
    EXPECT_EQ(validate(upgrade_with("Upgrade: websockets\r\n", {upgrade_line})),
              HandshakeError::missing_upgrade);
    EXPECT_EQ(http_status(HandshakeError::missing_upgrade), 426);
}

TEST(Handshake, RequiresConnectionUpgrade) {
    EXPECT_EQ(validate(upgrade_with("", {connection_line})), HandshakeError::missing_connection);
    EXPECT_EQ(validate(upgrade_with("Connection: keep-alive\r\n", {connection_line})),
              HandshakeError::missing_connection);
    EXPECT_EQ(validate(upgrade_with("Connection: upgrader\r\n", {connection_line})),
              HandshakeError::missing_connection);
}

TEST(Handshake, RequiresExactlyOneValidKey) {
    EXPECT_EQ(validate(upgrade_with("", {key_line})), HandshakeError::missing_key);
    EXPECT_EQ(validate(upgrade_with("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n")),
              HandshakeError::duplicate_key);
    EXPECT_EQ(validate(upgrade_with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n", {key_line})),
              HandshakeError::bad_key);
    EXPECT_EQ(validate(upgrade_with("Sec-WebSocket-Key: \r\n", {key_line})), HandshakeError::bad_key);
    // The parser trims the value, so surrounding blanks are fine.
    EXPECT_EQ(validate(upgrade_with("Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  \r\n", {key_line})),
              HandshakeError::none);
}

TEST(Handshake, RequiresVersion13) {  // §4.2.1/6, §4.4
    EXPECT_EQ(validate(upgrade_with("", {version_line})), HandshakeError::missing_version);
    for (std::string_view v : {"12", "13, 8", "8, 13", "013", "", "13 13"}) {
        std::string line = "Sec-WebSocket-Version: " + std::string(v) + "\r\n";
        EXPECT_EQ(validate(upgrade_with(line, {version_line})), HandshakeError::unsupported_version) << v;
    }
    EXPECT_EQ(validate(upgrade_with(version_line)), HandshakeError::unsupported_version);  // sent twice
    EXPECT_EQ(http_status(HandshakeError::missing_version), 426);
    EXPECT_EQ(http_status(HandshakeError::unsupported_version), 426);
}

TEST(Handshake, RejectsABody) {
    EXPECT_EQ(validate(upgrade_with("Content-Length: 0\r\n")), HandshakeError::none);
    EXPECT_EQ(validate(upgrade_with("Content-Length: 5\r\n")), HandshakeError::body_not_allowed);
    EXPECT_EQ(validate(upgrade_with("Content-Length: 0\r\ncontent-length: 1\r\n")),
              HandshakeError::body_not_allowed);
    EXPECT_EQ(validate(upgrade_with("Transfer-Encoding: chunked\r\n")), HandshakeError::body_not_allowed);
    EXPECT_EQ(validate(upgrade_with("Transfer-Encoding: identity\r\nContent-Length: 0\r\n")),
              HandshakeError::body_not_allowed);
}

TEST(Handshake, ChecksRulesInEnumOrder) {
    // A request that breaks every rule reports the first; fixing rules one at a time walks the enum.
    std::string bad_all =
        "POST / HTTP/1.0\r\nContent-Length: 3\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Key: y\r\n\r\n";
    EXPECT_EQ(validate(parse(bad_all)), HandshakeError::method_not_get);
    EXPECT_EQ(validate(parse("GET / HTTP/1.0\r\n\r\n")), HandshakeError::http_version);
    EXPECT_EQ(validate(parse("GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n")), HandshakeError::missing_host);
    EXPECT_EQ(validate(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")),
              HandshakeError::duplicate_host);
    EXPECT_EQ(validate(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n")),
              HandshakeError::missing_upgrade);
    EXPECT_EQ(
        validate(parse("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n")),
        HandshakeError::missing_connection);
    EXPECT_EQ(
        validate(upgrade_with("Sec-WebSocket-Key: x\r\nTransfer-Encoding: chunked\r\n", {version_line})),
        HandshakeError::duplicate_key);
    EXPECT_EQ(validate(upgrade_with("Sec-WebSocket-Key: x\r\n", {key_line, version_line})),
              HandshakeError::bad_key);
    EXPECT_EQ(validate(upgrade_with("Transfer-Encoding: chunked\r\n", {version_line})),
              HandshakeError::missing_version);
    EXPECT_EQ(validate(upgrade_with("Sec-WebSocket-Version: 8\r\nContent-Length: 9\r\n", {version_line})),
              HandshakeError::unsupported_version);
}

TEST(Handshake, WantsWebsocketWhenUpgradeOrKeyIsPresent) {
    EXPECT_TRUE(wants_websocket(upgrade_with("").req));
    EXPECT_TRUE(wants_websocket(parse("GET / HTTP/1.1\r\nupgrade: h2c\r\n\r\n").req));
    EXPECT_TRUE(wants_websocket(parse("GET / HTTP/1.1\r\nSec-WebSocket-Key: x\r\n\r\n").req));
    EXPECT_FALSE(wants_websocket(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n").req));
}

TEST(Handshake, EveryErrorHasAStatusAndADescription) {
    const std::pair<HandshakeError, int> table[] = {
        {HandshakeError::none, 101},
        {HandshakeError::method_not_get, 405},
        {HandshakeError::http_version, 400},
        {HandshakeError::missing_host, 400},
        {HandshakeError::duplicate_host, 400},
        {HandshakeError::missing_upgrade, 426},
        {HandshakeError::missing_connection, 400},
        {HandshakeError::missing_key, 400},
        {HandshakeError::duplicate_key, 400},
        {HandshakeError::bad_key, 400},
        {HandshakeError::missing_version, 426},
        {HandshakeError::unsupported_version, 426},
        {HandshakeError::body_not_allowed, 400},
    };
    static_assert(std::size(table) == static_cast<std::size_t>(HandshakeError::body_not_allowed) + 1);
    for (auto [e, status] : table) {
        EXPECT_EQ(http_status(e), status) << static_cast<int>(e);
        EXPECT_GT(std::strlen(describe(e)), 0u);
    }
}

class Subprotocol : public ::testing::Test {
protected:
    std::string_view pick(std::string_view offered_headers, std::vector<std::string> supported) {
        supported_ = std::move(supported);
        u_ = upgrade_with(offered_headers);
        return select_subprotocol(u_.req, supported_);
    }
    bool points_into_request(std::string_view v) const {
        return v.data() >= u_.text.data() && v.data() + v.size() <= u_.text.data() + u_.text.size();
    }
    std::vector<std::string> supported_;
    Upgrade u_;
};

TEST_F(Subprotocol, ClientOrderWins) {  // §4.2.2/5.4: the client lists in order of preference
    std::string_view p = pick("Sec-WebSocket-Protocol: chat, superchat\r\n", {"superchat", "chat"});
    EXPECT_EQ(p, "chat");
    EXPECT_TRUE(points_into_request(p));
}

TEST_F(Subprotocol, SearchesEveryHeaderInOrder) {
    EXPECT_EQ(pick("Sec-WebSocket-Protocol: a ,b\r\nsec-websocket-protocol:  ,c,\t d \r\n", {"d", "c"}), "c");
    EXPECT_EQ(pick("Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: x, d\r\n", {"d"}), "d");
}

TEST_F(Subprotocol, NoneWhenNothingMatches) {
    EXPECT_EQ(pick("Sec-WebSocket-Protocol: chat\r\n", {"superchat"}), "");
    EXPECT_EQ(pick("Sec-WebSocket-Protocol: chat\r\n", {}), "");
    EXPECT_EQ(pick("", {"chat"}), "");
    EXPECT_EQ(pick("Sec-WebSocket-Protocol: , ,\r\n", {"", "chat"}), "");  // empty elements are not offers
    EXPECT_EQ(pick("Sec-WebSocket-Protocol: chatter, cha\r\n", {"chat"}), "");
}

TEST_F(Subprotocol, ComparesCaseSensitively) {  // §11.3.4: subprotocol names are case-sensitive
    EXPECT_EQ(pick("Sec-WebSocket-Protocol: Chat\r\n", {"chat"}), "");
    EXPECT_EQ(pick("Sec-WebSocket-Protocol: Chat, chat\r\n", {"chat"}), "chat");
}

TEST_F(Subprotocol, HandlesAHugeOffer) {
    std::string offer;
    for (int i = 0; i < 20'000; ++i) offer += "p" + std::to_string(i) + ", ";
    std::string_view p = pick("Sec-WebSocket-Protocol: " + offer + "wanted\r\n", {"x", "wanted"});
    EXPECT_EQ(p, "wanted");
    EXPECT_TRUE(points_into_request(p));
}

std::string expected_101(std::string_view protocol, std::string_view extensions) {
    std::string s =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    if (!protocol.empty()) s += "Sec-WebSocket-Protocol: " + std::string(protocol) + "\r\n";
    if (!extensions.empty()) s += "Sec-WebSocket-Extensions: " + std::string(extensions) + "\r\n";
    return s + "\r\n";
}

TEST(Write101, WritesTheExactResponse) {  // §4.2.2/5
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"", ""},
        {"chat", ""},
        {"", "permessage-deflate"},
        {"chat", "permessage-deflate; server_max_window_bits=10"},
    };
    for (auto [protocol, extensions] : cases) {
        std::string want = expected_101(protocol, extensions);
        std::vector<char> out(max_101_bytes + protocol.size() + extensions.size(), '#');
        std::size_t n = write_101(out.data(), out.size(), rfc_key, protocol, extensions);
        EXPECT_EQ(std::string_view(out.data(), n), want);
    }
}

TEST(Write101, MaxBytesIsEverythingButTheOptionalValues) {
    EXPECT_EQ(expected_101("p", "e").size(), max_101_bytes + 2);
    std::vector<char> out(max_101_bytes + 2);
    EXPECT_EQ(write_101(out.data(), out.size(), rfc_key, "p", "e"), out.size());
}

TEST(Write101, ReturnsZeroWhenCapIsTooSmall) {
    for (auto [protocol, extensions] :
         {std::pair<std::string_view, std::string_view>{"", ""}, {"chat", "x"}}) {
        std::size_t need = expected_101(protocol, extensions).size();
        std::vector<char> out(need, '#');
        EXPECT_EQ(write_101(out.data(), need - 1, rfc_key, protocol, extensions), 0u);
        EXPECT_EQ(std::string_view(out.data(), need), std::string(need, '#'));  // untouched
        EXPECT_EQ(write_101(out.data(), need, rfc_key, protocol, extensions), need);
    }
    EXPECT_EQ(write_101(nullptr, 0, rfc_key, "", ""), 0u);
}

}  // namespace
}  // namespace roomcast::http
