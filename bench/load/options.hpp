// roomcast-bench command line: every knob of a load run, parsed once at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace roomcast::bench {

enum class Mode : std::uint8_t { echo, connect, broadcast, idle };
enum class CloseStyle : std::uint8_t { clean, rst };

inline constexpr unsigned max_duration_s = 600;
inline constexpr unsigned max_warmup_s = 60;
inline constexpr unsigned max_connections = 50'000;
inline constexpr unsigned max_depth = 1024;
inline constexpr unsigned max_threads = 64;
inline constexpr std::size_t max_message_bytes = 16u << 20;
// Broadcast payload: 8-byte publisher timestamp (CLOCK_MONOTONIC ns) + 8-byte sequence, then padding.
inline constexpr std::size_t broadcast_header_bytes = 16;
// Text broadcast payload (--text / --payload json): the same two numbers as ASCII hex so the message stays
// valid UTF-8 (and JSON): {"ts":"<16 hex>","seq":"<16 hex>" then the padding, which closes the object.
inline constexpr std::size_t text_header_bytes = 48;
inline constexpr std::size_t text_ts_offset = 7;
inline constexpr std::size_t text_seq_offset = 32;
inline constexpr std::size_t max_header_bytes = 48;  // the larger of the two

enum class PayloadKind : std::uint8_t { fill, json };

struct Options {
    Mode mode = Mode::echo;
    std::string host = "127.0.0.1";  // --host, or from --url
    std::uint16_t port = 8080;       // --port, or from --url
    std::string path;                // --path; default by mode (/echo)
    std::string room = "bench";      // --room: broadcast uses /ws/ROOM and /publish/ROOM
    std::string sub_path;            // --sub-path: overrides /ws/ROOM
    std::string pub_path;            // --pub-path: overrides /publish/ROOM

    unsigned connections = 100;      // --connections (echo, idle)
    unsigned depth = 1;              // --depth: messages in flight per connection (echo)
    std::size_t size_bytes = 0;      // --size; default 16 (echo), 64 (broadcast)
    bool binary = true;              // --binary / --text
    bool raw_tcp = false;            // --raw-tcp: no handshake, framed bytes echoed by a TCP echo server
    PayloadKind payload = PayloadKind::fill;  // --payload fill|json (json implies --text)

    // TLS (--tls or wss:// in --url): non-blocking OpenSSL on the same epoll loop.
    bool tls = false;
    std::string tls_ca;              // --tls-ca FILE: verify the chain and the host/IP; default: trust any cert
    std::string tls_sni;             // --tls-sni NAME: send SNI (default: none)
    int tls_version = 13;            // --tls-version 1.2|1.3 (exact version; default 1.3)
    std::string tls_ciphers;         // --tls-ciphers LIST (TLS 1.3 suites or 1.2 cipher list)
    bool tls_resume = false;         // --tls-resume: reuse a session ticket (connect mode: resumed handshakes)

    // permessage-deflate (RFC 7692), client side.
    bool deflate = false;            // --deflate: offer permessage-deflate; client_max_window_bits
    int deflate_level = 6;           // --deflate-level: client compression level (publishers; echo frame once)
    unsigned inflate_sample = 1;     // --inflate-sample N: subscribers inflate 1 in N compressed messages

    unsigned concurrency = 64;       // --concurrency: handshakes in flight (connect mode and set-up)
    CloseStyle close_style = CloseStyle::clean;  // --close clean|rst (connect mode)
    unsigned source_ips = 1;         // --source-ips N: rotate 127.0.0.1..N as local address (loopback only)

    unsigned subscribers = 100;      // --subscribers (broadcast)
    unsigned publishers = 1;         // --publishers (broadcast)
    double rate_per_publisher = 0;   // --rate msgs/s per publisher, 0 = as fast as the window allows
    unsigned window = 0;             // --window: unacknowledged messages per publisher; default by rate
    unsigned window_timeout_ms = 1000;  // --window-timeout: a message not seen by all subscribers after this
                                        // stops blocking the window (counted as window_timeouts)

    double duration_s = 10;          // --duration (<= max_duration_s)
    double warmup_s = 1;             // --warmup (<= max_warmup_s)
    unsigned threads = 1;            // --threads
    std::vector<int> pin_cpus;       // --pin CPU[,CPU...]: worker i runs on pin_cpus[i % n]
    int server_pid = 0;              // --server-pid: server CPU and memory from /proc
    std::string label;               // --label: copied into the JSON line
    bool progress = true;            // --quiet turns the per-second stderr line off
    bool io_uring = true;            // --io-uring: batch one wakeup's reads and echo replies (plain)
    unsigned setup_timeout_s = 60;   // --setup-timeout: all connections must be open by then
};

// Parses argv. On --help prints the usage and exits 0; on a bad option prints one line and exits 2.
Options parse_options(int argc, char** argv);

const char* mode_name(Mode m) noexcept;

}  // namespace roomcast::bench
