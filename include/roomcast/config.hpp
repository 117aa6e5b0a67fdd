// roomcast configuration: every field is a command-line flag (src/server/flags.cpp parses argv into it).
// A flag and its field share words; the unit is in the name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace roomcast {

enum class LogLevel : std::uint8_t { error, warn, info, debug };
enum class SlowConsumer : std::uint8_t { disconnect, drop, conflate };

struct Config {
    std::string listen = "127.0.0.1:8080";           // --listen ADDR:PORT (IPv4 or [IPv6]; port 0 = any)
    unsigned threads = 0;                             // --threads; 0 = one per online CPU
    bool pin = false;                                 // --pin: reactor i on CPU i
    std::size_t max_connections = 100'000;            // --max-connections (whole server)
    std::size_t max_message_bytes = 16u << 20;        // --max-message-size (whole message, all fragments)
    std::size_t max_header_bytes = 8192;              // --max-header-bytes (request line + headers)
    std::uint32_t handshake_timeout_ms = 5'000;       // --handshake-timeout
    std::uint32_t idle_timeout_ms = 60'000;           // --idle-timeout (0 = never)
    std::uint32_t ping_interval_ms = 30'000;          // --ping-interval (0 = no server pings)
    std::uint32_t drain_timeout_ms = 5'000;           // --drain-timeout (SIGTERM/SIGINT)
    std::vector<std::string> subprotocols;            // --subprotocols a,b
    LogLevel log_level = LogLevel::info;              // --log-level error|warn|info|debug
    std::string simd = "auto";                        // --simd auto|scalar|sse2|avx2|avx512
    bool io_uring = true;                             // --io-uring on|off (batched sends)
    std::size_t max_connections_per_ip = 0;           // --max-connections-per-ip (pending + open; 0 = no cap)
    std::vector<std::string> allowed_origins;         // --allowed-origins (empty = any Origin)
    std::uint32_t max_messages_per_second = 0;
    std::uint32_t history = 1024;                     // --history N (messages kept per room for resume)
    std::size_t room_memory_bytes = std::size_t{1} << 30;  // --room-memory (rooms and their history, all reactors)
    std::size_t max_backlog_bytes = 1u << 20;         // --max-backlog (unsent bytes per connection)
    SlowConsumer slow_consumer = SlowConsumer::disconnect;  // --slow-consumer disconnect|drop|conflate
    std::string publish_token;                        // --publish-token (empty = anyone may publish)
    std::string subscribe_token;                      // --subscribe-token (empty = anyone may subscribe)
    std::size_t max_rooms_per_connection = 100;       // --max-rooms-per-connection (/ws subscriptions)
    bool deflate = true;                              // --deflate on|off (permessage-deflate, RFC 7692)
    int deflate_level = 6;                            // --deflate-level 1..9
    int deflate_window_bits = 15;                     // --deflate-window-bits 9..15 (server's window)
    std::size_t deflate_min_size = 64;                // --deflate-min-size: smaller messages go out plain
    bool deflate_context_takeover = false;            // --deflate-context-takeover (per-connection windows)
    std::string tls_cert;                             // --tls-cert PEM (certificate chain)
    std::string tls_key;                              // --tls-key PEM
    std::string tls_listen;                           // --tls-listen ADDR:PORT (TLS beside a plain --listen)        // --max-messages-per-second (frames per connection; 0 = no cap)
};

}  // namespace roomcast
