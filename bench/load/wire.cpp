// WebSocket client wire helpers for roomcast-bench (set-up paths; the per-message path is in worker.cpp).
#include "wire.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cctype>
#include <cstdio>

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

std::string upgrade_request(std::string_view host, std::uint16_t port, std::string_view path) {
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
    r += "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    return r;
}

HandshakeStatus check_upgrade_response(std::string_view received, std::string_view expected_accept,
                                       std::size_t* header_bytes, int* status_code) {
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
    while (pos < head.size()) {
        std::size_t eol = head.find("\r\n", pos);
        std::string_view line = head.substr(pos, eol - pos);
        pos = eol + 2;
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        if (iequals(trim(line.substr(0, colon)), "sec-websocket-accept"))
            return trim(line.substr(colon + 1)) == expected_accept ? HandshakeStatus::ok : HandshakeStatus::bad_accept;
    }
    return HandshakeStatus::bad_accept;
}

std::size_t write_client_header(std::uint8_t* out, Opcode op, std::size_t payload_len, const std::uint8_t mask[4]) {
    out[0] = std::uint8_t(0x80u | std::uint8_t(op));
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
                                       const std::uint8_t mask[4]) {
    std::vector<std::uint8_t> f(max_frame_header_bytes + len);
    std::size_t h = write_client_header(f.data(), op, len, mask);
    if (len) std::memcpy(f.data() + h, payload, len);
    mask_bytes(f.data() + h, len, mask, 0);
    f.resize(h + len);
    return f;
}

}  // namespace roomcast::bench
