#include "server/flags.hpp"

#include <charconv>
#include <cstdio>
#include <functional>
#include <limits>
#include <vector>

#include "net/listener.hpp"

namespace roomcast::server {
namespace {

bool parse_u64(std::string_view t, std::uint64_t& out) {
    if (t.empty()) return false;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return ec == std::errc() && p == t.data() + t.size();
}

struct Flag {
    const char* name;
    const char* value_name;  // nullptr for boolean switches
    const char* def;
    const char* help;
    std::function<bool(std::string_view, Config&)> apply;
};

std::vector<std::string> split_list(std::string_view v) {
    std::vector<std::string> out;
    while (!v.empty()) {
        const auto comma = v.find(',');
        std::string_view item = v.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (!item.empty()) out.emplace_back(item);
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
    }
    return out;
}

const std::vector<Flag>& flags() {
    static const std::vector<Flag> table = {
        {"--listen", "ADDR:PORT", "127.0.0.1:8080",
         "address to serve on: IPv4 literal, [IPv6] literal or * (all IPv4); port 0 picks a free port",
         [](std::string_view v, Config& c) {
             net::ListenAddress a;
             std::string err;
             if (!net::parse_listen_address(v, a, err)) return false;
             c.listen = std::string(v);
             return true;
         }},
        {"--threads", "N", "online CPUs", "reactor threads, each with its own epoll loop and SO_REUSEPORT socket",
         [](std::string_view v, Config& c) {
             std::uint64_t n;
             if (!parse_u64(v, n) || n == 0 || n > 1024) return false;
             c.threads = static_cast<unsigned>(n);
             return true;
         }},
        {"--pin", nullptr, "off", "pin reactor i to CPU i (mod the CPU count)",
         [](std::string_view, Config& c) {
             c.pin = true;
             return true;
         }},
        {"--max-connections", "N", "100000",
         "open connections (all reactors); beyond it new connections get HTTP 503",
         [](std::string_view v, Config& c) {
             std::uint64_t n;
             if (!parse_u64(v, n) || n == 0) return false;
             c.max_connections = n;
             return true;
         }},
        {"--max-message-size", "BYTES", "16M",
         "largest WebSocket message (all fragments together); larger closes with 1009",
         [](std::string_view v, Config& c) {
             std::size_t n;
             if (!parse_size_bytes(v, n) || n == 0 || n > (std::size_t{1} << 31)) return false;
             c.max_message_bytes = n;
             return true;
         }},
        {"--max-header-bytes", "BYTES", "8K", "largest HTTP request head; larger gets 431",
         [](std::string_view v, Config& c) {
             std::size_t n;
             if (!parse_size_bytes(v, n) || n < 256 || n > (1u << 20)) return false;
             c.max_header_bytes = n;
             return true;
         }},
        {"--handshake-timeout", "DURATION", "5s",
         "the whole HTTP request (upgrade or plain) must arrive within this, else the socket is closed",
         [](std::string_view v, Config& c) { return parse_duration_ms(v, c.handshake_timeout_ms) && c.handshake_timeout_ms > 0; }},
        {"--idle-timeout", "DURATION", "60s", "close a WebSocket that sent nothing (not even a pong) for this long; 0 = never",
         [](std::string_view v, Config& c) { return parse_duration_ms(v, c.idle_timeout_ms); }},
        {"--ping-interval", "DURATION", "30s", "send a ping after this much silence from the peer; 0 = no pings",
         [](std::string_view v, Config& c) { return parse_duration_ms(v, c.ping_interval_ms); }},
        {"--drain-timeout", "DURATION", "5s",
         "on SIGINT/SIGTERM, wait this long for WebSockets to answer close 1001 before exiting",
         [](std::string_view v, Config& c) { return parse_duration_ms(v, c.drain_timeout_ms); }},
        {"--subprotocols", "LIST", "none",
         "comma-separated subprotocols; the first one the client offers that is listed here is selected",
         [](std::string_view v, Config& c) {
             c.subprotocols = split_list(v);
             for (const auto& p : c.subprotocols)
                 for (char ch : p)
                     if (ch <= ' ' || ch >= 0x7F || ch == ',' || ch == '"' || ch == ';') return false;
             return true;
         }},
        {"--max-connections-per-ip", "N", "0 (no cap)",
         "pending and open connections from one client address; beyond it new ones get HTTP 503",
         [](std::string_view v, Config& c) {
             std::uint64_t n;
             if (!parse_u64(v, n)) return false;
             c.max_connections_per_ip = n;
             return true;
         }},
        {"--allowed-origins", "LIST", "any",
         "comma list of allowed Origin values for WebSocket upgrades: full origins (https://app.example.com:8443), "
         "bare hosts (app.example.com, any scheme and port) or null; exact match, others get 403",
         [](std::string_view v, Config& c) {
             c.allowed_origins = split_list(v);
             return !c.allowed_origins.empty();
         }},
        {"--max-messages-per-second", "N", "0 (no cap)",
         "frames (data fragments and control frames) one connection may send per second; beyond it close 1008",
         [](std::string_view v, Config& c) {
             std::uint64_t n;
             if (!parse_u64(v, n) || n > 0xFFFFFFFFu) return false;
             c.max_messages_per_second = static_cast<std::uint32_t>(n);
             return true;
         }},
        {"--history", "N", "1024", "messages kept per room for resume (since) and \"last\"; 0 keeps only the latest",
         [](std::string_view v, Config& c) {
             std::uint64_t n;
             if (!parse_u64(v, n) || n > (1u << 24)) return false;
             c.history = static_cast<std::uint32_t>(n);
             return true;
         }},
        {"--room-memory", "BYTES", "1G",
         "memory for rooms and their history, all reactors together (each keeps the rooms it owns within an "
         "equal share); past it the oldest messages are evicted and empty rooms nobody subscribes to are deleted; "
         "a new room that cannot fit is refused",
         [](std::string_view v, Config& c) {
             std::size_t n;
             if (!parse_size_bytes(v, n) || n < (std::size_t{64} << 10)) return false;
             c.room_memory_bytes = n;
             return true;
         }},
        {"--max-backlog", "BYTES", "1M",
         "unsent bytes a connection may queue; past it --slow-consumer applies (and echo input is paused)",
         [](std::string_view v, Config& c) {
             std::size_t n;
             if (!parse_size_bytes(v, n) || n < 1024) return false;
             c.max_backlog_bytes = n;
             return true;
         }},
        {"--slow-consumer", "POLICY", "disconnect",
         "subscriber past --max-backlog: disconnect (close 1008), drop (skip messages; the seq gap shows it) "
         "or conflate (keep only the newest pending message per room)",
         [](std::string_view v, Config& c) {
             if (v == "disconnect") c.slow_consumer = SlowConsumer::disconnect;
             else if (v == "drop") c.slow_consumer = SlowConsumer::drop;
             else if (v == "conflate") c.slow_consumer = SlowConsumer::conflate;
             else return false;
             return true;
         }},
        {"--publish-token", "TOKEN", "none",
         "publishing (POST /publish, /publish/{room}, pub on /ws) needs Authorization: Bearer TOKEN or ?token=TOKEN",
         [](std::string_view v, Config& c) {
             c.publish_token = std::string(v);
             return !v.empty();
         }},
        {"--subscribe-token", "TOKEN", "none", "subscribing (/ws/{room}, sub on /ws) needs this token, likewise",
         [](std::string_view v, Config& c) {
             c.subscribe_token = std::string(v);
             return !v.empty();
         }},
        {"--max-rooms-per-connection", "N", "100", "rooms one /ws connection may subscribe to at once",
         [](std::string_view v, Config& c) {
             std::uint64_t n;
             if (!parse_u64(v, n) || n == 0 || n > 100000) return false;
             c.max_rooms_per_connection = n;
             return true;
         }},
        {"--deflate", "on|off", "on", "negotiate permessage-deflate (RFC 7692) when the client offers it",
         [](std::string_view v, Config& c) {
             if (v == "on") c.deflate = true;
             else if (v == "off") c.deflate = false;
             else return false;
             return true;
         }},
        {"--deflate-level", "N", "6", "zlib compression level 1 (fast) .. 9 (small)",
         [](std::string_view v, Config& c) {
             std::uint64_t n;
             if (!parse_u64(v, n) || n < 1 || n > 9) return false;
             c.deflate_level = static_cast<int>(n);
             return true;
         }},
        {"--deflate-window-bits", "N", "15", "the server's compression window, 9..15 (2^N bytes)",
         [](std::string_view v, Config& c) {
             std::uint64_t n;
             if (!parse_u64(v, n) || n < 9 || n > 15) return false;
             c.deflate_window_bits = static_cast<int>(n);
             return true;
         }},
        {"--deflate-min-size", "BYTES", "64", "messages smaller than this go out uncompressed (RSV1 is per message)",
         [](std::string_view v, Config& c) { return parse_size_bytes(v, c.deflate_min_size); }},
        {"--deflate-context-takeover", nullptr, "off",
         "keep per-connection compression windows between messages (better ratio, ~300 KiB per active "
         "connection); off: every message is compressed alone, so a room message is compressed once for all",
         [](std::string_view, Config& c) {
             c.deflate_context_takeover = true;
             return true;
         }},
        {"--tls-cert", "PEM", "none",
         "certificate chain (PEM) for wss://; with --tls-key the --listen port speaks TLS (unless --tls-listen)",
         [](std::string_view v, Config& c) {
             c.tls_cert = std::string(v);
             return !v.empty();
         }},
        {"--tls-key", "PEM", "none", "private key (PEM) of --tls-cert; SIGHUP reloads both from disk",
         [](std::string_view v, Config& c) {
             c.tls_key = std::string(v);
             return !v.empty();
         }},
        {"--tls-listen", "ADDR:PORT", "none", "a second, TLS port beside the plain --listen one",
         [](std::string_view v, Config& c) {
             net::ListenAddress a;
             std::string err;
             if (!net::parse_listen_address(v, a, err)) return false;
             c.tls_listen = std::string(v);
             return true;
         }},
        {"--log-level", "LEVEL", "info", "error, warn, info or debug",
         [](std::string_view v, Config& c) {
             if (v == "error") c.log_level = LogLevel::error;
             else if (v == "warn") c.log_level = LogLevel::warn;
             else if (v == "info") c.log_level = LogLevel::info;
             else if (v == "debug") c.log_level = LogLevel::debug;
             else return false;
             return true;
         }},
        {"--io-uring", "on|off", "on",
         "batch a reactor turn's socket work (registrations, reads, replies, room deliveries, closes) into a few "
         "io_uring system calls instead of one system call per socket and operation; off, or a kernel without "
         "io_uring, uses epoll_ctl()/recv()/send()/close()",
         [](std::string_view v, Config& c) {
             if (v != "on" && v != "off") return false;
             c.io_uring = v == "on";
             return true;
         }},
        {"--simd", "KERNEL", "auto", "force a SIMD kernel: auto, scalar, sse2, avx2 or avx512 (for tests and bug reports)",
         [](std::string_view v, Config& c) {
             if (v != "auto" && v != "scalar" && v != "sse2" && v != "avx2" && v != "avx512") return false;
             c.simd = std::string(v);
             return true;
         }},
    };
    return table;
}

}  // namespace

bool parse_duration_ms(std::string_view t, std::uint32_t& out) {
    std::uint64_t mult = 1;
    if (t.ends_with("ms")) t.remove_suffix(2);
    else if (t.ends_with("s")) { t.remove_suffix(1); mult = 1000; }
    else if (t.ends_with("m")) { t.remove_suffix(1); mult = 60'000; }
    std::uint64_t n;
    if (!parse_u64(t, n) || n > std::numeric_limits<std::uint32_t>::max() / mult) return false;
    out = static_cast<std::uint32_t>(n * mult);
    return true;
}

bool parse_size_bytes(std::string_view t, std::size_t& out) {
    std::uint64_t mult = 1;
    if (!t.empty()) {
        switch (t.back()) {
        case 'K': case 'k': mult = 1ull << 10; break;
        case 'M': case 'm': mult = 1ull << 20; break;
        case 'G': case 'g': mult = 1ull << 30; break;
        default: break;
        }
        if (mult != 1) t.remove_suffix(1);
    }
    std::uint64_t n;
    if (!parse_u64(t, n) || n > std::numeric_limits<std::uint64_t>::max() / mult) return false;
    out = n * mult;
    return true;
}

std::string help_text() {
    std::string s =
        "usage: roomcast [FLAGS]\n"
        "roomcast: a WebSocket server (RFC 6455) on one epoll reactor per core.\n"
        "Endpoints: GET /echo (WebSocket echo), GET /ws (rooms, JSON control protocol), GET /ws/{room}\n"
        "(raw subscriber, ?since=N), GET /publish/{room} (raw publisher), POST /publish/{room}, GET /health,\n"
        "GET /metrics, GET / (demo page).\n"
        "DURATION: 250 or 250ms, 2s, 1m.  BYTES: 4096, 64K, 16M, 1G.\n\nflags (default in brackets):\n";
    for (const Flag& f : flags()) {
        std::string left = std::string("  ") + f.name + (f.value_name ? std::string(" ") + f.value_name : "");
        if (left.size() < 32) left.resize(32, ' ');
        else left += ' ';
        s += left + f.help + " [" + f.def + "]\n";
    }
    s += "  --help                        print this and exit\n";
    return s;
}

FlagsResult parse_flags(int argc, char** argv, Config& cfg, std::string& error) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            error.clear();
            return FlagsResult::help;
        }
        std::string_view name = arg, value;
        bool has_value = false;
        if (const auto eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
            has_value = true;
        }
        const Flag* flag = nullptr;
        for (const Flag& f : flags())
            if (name == f.name) flag = &f;
        if (!flag) {
            error = "unknown flag '" + std::string(name) + "' (see --help)";
            return FlagsResult::error;
        }
        if (flag->value_name && !has_value) {
            if (i + 1 >= argc) {
                error = std::string(flag->name) + " needs a value (" + flag->value_name + ")";
                return FlagsResult::error;
            }
            value = argv[++i];
        } else if (!flag->value_name && has_value) {
            error = std::string(flag->name) + " takes no value";
            return FlagsResult::error;
        }
        if (!flag->apply(value, cfg)) {
            error = "bad value '" + std::string(value) + "' for " + flag->name + " (" + flag->help + ")";
            return FlagsResult::error;
        }
    }
    return FlagsResult::run;
}

}  // namespace roomcast::server
