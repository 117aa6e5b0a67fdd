// Flag parsing for roomcast-bench. Start-up only: failing fast with one line and exit code 2 is the
// contract scripts rely on.
#include "options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace roomcast::bench {
namespace {

constexpr const char* usage_text = R"(usage: roomcast-bench MODE [options]

Load generator for WebSocket servers (epoll, one or more threads). Every run stops by itself.

modes:
  echo       C connections, D messages of S bytes in flight each; msgs/s, MB/s, round-trip percentiles
  connect    W handshakes in flight; each connection upgrades, then closes (--close); handshakes/s + latency
  broadcast  C raw subscribers (GET /ws/ROOM), P raw publishers (GET /publish/ROOM); deliveries/s,
             publish-to-delivery latency, per-subscriber sequence check (gaps and duplicates)
  idle       open C WebSockets, send nothing; with --server-pid reports server RSS per connection

target:
  --url ws[s]://HOST:PORT/PATH  target (default ws://127.0.0.1:8080, path by mode: /echo); wss:// = --tls
  --host HOST                server address (default 127.0.0.1)
  --port PORT                server port (default 8080)
  --path PATH                request path for echo/connect/idle (default /echo)
  --room NAME                broadcast room (default bench)
  --sub-path PATH            subscriber path (default /ws/ROOM)
  --pub-path PATH            publisher path (default /publish/ROOM)

echo / idle:
  --connections C            connections (default 100, max 50000, limited by RLIMIT_NOFILE)
  --depth D                  messages in flight per connection, pipelined (default 1, max 1024)
  --size S                   payload bytes (default 16; broadcast default 64, min 16; max 16 MiB)
  --binary | --text          opcode of the messages sent (default --binary; text payload is ASCII)
  --payload fill|json        fill (default): byte pattern; json: JSON-like text (order-book records with
                             varying numbers, compresses like a real feed), implies --text
  --raw-tcp                  no WebSocket handshake: send the same masked frames to a plain TCP echo
                             server and count every echoed frame-sized chunk as one message (ceiling)

connect:
  --concurrency W            handshakes in flight (default 64; also bounds connection set-up in all modes)
  --close clean|rst          clean (default): after the 101 send a masked close frame (1000), wait for the
                             server's close frame and its FIN (RFC 6455 7.1.1: server closes TCP first, so
                             TIME_WAIT stays on the server), then close. rst: SO_LINGER 0 close right after
                             the 101 (a RST; no close handshake, no TIME_WAIT anywhere)
  --source-ips N             spread connections over local addresses 127.0.0.1..127.0.0.N (loopback targets
                             only; more ephemeral ports for long connect storms; default 1)

broadcast:
  --subscribers C            raw subscribers (default 100)
  --publishers P             raw publishers (default 1, max 65535); all in one room
  --rate R                   messages/s per publisher; 0 = as fast as the window allows (default 0)
  --window N                 per publisher, messages not yet seen by every subscriber (default 64 when
                             --rate 0, 4096 with a rate)
  --window-timeout MS        a message missing at some subscriber stops blocking the window after MS
                             (default 1000; counted as window_timeouts)
  payload: 8-byte CLOCK_MONOTONIC ns at send, 8-byte sequence (publisher index << 48 | seq from 1),
  then padding. Latency = receive time - send time (same host clock). With --text/--payload json the two
  numbers are ASCII hex in a JSON object prefix: {"ts":"<16 hex>","seq":"<16 hex>",... (min size 49).

TLS (wss://), echo, connect, broadcast and idle:
  --tls                      TLS over every connection (non-blocking OpenSSL on the same epoll loop; the
                             handshake is part of set-up, and of each measured handshake in connect mode)
  --tls-version 1.2|1.3      exact protocol version (default 1.3)
  --tls-ciphers LIST         TLS 1.3 ciphersuites (or the TLS 1.2 cipher list with --tls-version 1.2);
                             default: OpenSSL's (TLS_AES_256_GCM_SHA384 first)
  --tls-ca FILE              verify the server chain against FILE and the certificate against the target
                             host (IP or name). Default: NO verification (any certificate is accepted) and
                             no SNI -- for loopback benchmarking only
  --tls-sni NAME             send NAME as SNI (default: none)
  --tls-resume               resume sessions from a ticket (connect mode: resumed vs full handshakes;
                             default: every handshake is a full one)

permessage-deflate (RFC 7692):
  --deflate                  offer "permessage-deflate; client_max_window_bits" on every connection. When the
                             server accepts: outgoing messages are compressed (raw deflate, no context takeover,
                             trailing 00 00 ff ff stripped, RSV1 set) -- echo frames are identical, so each
                             worker compresses its echo frame once; publishers compress every message; every
                             received RSV1 message is inflated in full (00 00 ff ff appended; with the server's
                             context takeover a per-connection inflater) and verified like a plain one. Reports
                             how many connections negotiated it and received payload vs WebSocket bytes (ratio)
  --deflate-level N          client compression level 0..9 (default 6)
  --inflate-sample N         broadcast subscribers inflate and verify (sequence, length, content, latency)
                             only 1 in N compressed messages; the others are counted as the next sequence
                             number without inflating (a wrong guess shows as a gap/duplicate at the next
                             sampled one). For when the client's inflation, 1000x the server's compression,
                             would be the bottleneck. Needs --publishers 1. Default 1 (inflate all)

common:
  --duration S               measured seconds (default 10, max 600)
  --warmup S                 seconds of load before measuring (default 1, max 60)
  --threads N                worker threads, each with its own epoll and share of connections (default 1)
  --pin CPU[,CPU...]         pin worker i to CPU list[i % n] (and the reporting thread to the first)
  --io-uring on|off          on (default): the reads of one epoll wakeup's ready plain connections go in one
                             io_uring_enter and the echo replies they produce in one more (not a recv and a
                             send per socket: keeps the generator's own core from being the bottleneck with
                             many connections); off, or no io_uring: recv and send per socket
  --server-pid PID           read /proc/PID/stat utime+stime over the measured interval: server CPU-s and
                             work per server CPU-second; idle mode also reads RssAnon before/after
  --setup-timeout S          seconds to open all connections before giving up (default 60)
  --label TEXT               copied into the JSON line
  --quiet                    no per-second progress line on stderr
  --help                     this text

output: one progress line per second on stderr, a summary table and one line starting with "JSON " on
stdout. Exit 0 when the run completed (errors are counted and reported), 1 when it could not run
(nothing connected), 2 for a bad option.
)";

[[noreturn]] void fail(const char* flag, const char* what, std::string_view got) {
    std::fprintf(stderr, "roomcast-bench: %s: %s, got '%.*s'\n", flag, what, int(got.size()), got.data());
    std::exit(2);
}

unsigned long long parse_uint(const char* flag, std::string_view text, unsigned long long lo,
                              unsigned long long hi) {
    std::string s(text);
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || s[0] == '-' || errno != 0 || *end != '\0' || v < lo || v > hi) {
        char what[96];
        std::snprintf(what, sizeof what, "expected an integer %llu..%llu", lo, hi);
        fail(flag, what, text);
    }
    return v;
}

double parse_double(const char* flag, std::string_view text, double lo, double hi) {
    std::string s(text);
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || errno != 0 || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
        char what[96];
        std::snprintf(what, sizeof what, "expected a number %g..%g", lo, hi);
        fail(flag, what, text);
    }
    return v;
}

void parse_url(Options& o, std::string_view url) {
    std::string_view rest;
    if (url.substr(0, 6) == "wss://") {
        o.tls = true;
        rest = url.substr(6);
    } else if (url.substr(0, 5) == "ws://") {
        rest = url.substr(5);
    } else {
        fail("--url", "expected ws://HOST[:PORT][/PATH] or wss://...", url);
    }
    const std::uint16_t default_port = o.tls ? 443 : 80;
    std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) o.path = std::string(rest.substr(slash));
    std::string_view host = authority;
    if (!authority.empty() && authority[0] == '[') {  // [v6]:port
        std::size_t close = authority.find(']');
        if (close == std::string_view::npos) fail("--url", "unterminated [IPv6] host", url);
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') fail("--url", "expected :PORT after ]", url);
            o.port = std::uint16_t(parse_uint("--url", after.substr(1), 1, 65535));
        } else {
            o.port = default_port;
        }
    } else if (std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        o.port = std::uint16_t(parse_uint("--url", authority.substr(colon + 1), 1, 65535));
    } else {
        o.port = default_port;
    }
    if (host.empty()) fail("--url", "missing host", url);
    o.host = std::string(host);
}

std::vector<int> parse_cpu_list(std::string_view text) {
    std::vector<int> cpus;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t comma = text.find(',', start);
        std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
        cpus.push_back(int(parse_uint("--pin", item, 0, 4095)));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return cpus;
}

}  // namespace

const char* mode_name(Mode m) noexcept {
    switch (m) {
    case Mode::echo: return "echo";
    case Mode::connect: return "connect";
    case Mode::broadcast: return "broadcast";
    case Mode::idle: return "idle";
    }
    return "?";
}

Options parse_options(int argc, char** argv) {
    Options o;
    bool have_mode = false;
    bool size_given = false;
    bool text_given = false;
    bool binary_given = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fputs(usage_text, stdout);
            std::exit(0);
        }
        if (arg.substr(0, 2) != "--") {
            if (have_mode) fail("MODE", "only one mode may be given", arg);
            if (arg == "echo") o.mode = Mode::echo;
            else if (arg == "connect") o.mode = Mode::connect;
            else if (arg == "broadcast") o.mode = Mode::broadcast;
            else if (arg == "idle") o.mode = Mode::idle;
            else fail("MODE", "expected echo, connect, broadcast or idle", arg);
            have_mode = true;
            continue;
        }
        // --name=value or --name value
        std::string name(arg);
        std::string_view value;
        bool inline_value = false;
        if (std::size_t eq = arg.find('='); eq != std::string_view::npos) {
            name = std::string(arg.substr(0, eq));
            value = arg.substr(eq + 1);
            inline_value = true;
        }
        auto flag_only = [&]() {
            if (inline_value) fail(name.c_str(), "takes no value", value);
        };
        auto need = [&]() -> std::string_view {
            if (inline_value) return value;
            if (i + 1 >= argc) fail(name.c_str(), "needs a value", "");
            return std::string_view(argv[++i]);
        };
        const char* f = name.c_str();
        if (name == "--url") parse_url(o, need());
        else if (name == "--host") o.host = std::string(need());
        else if (name == "--port") o.port = std::uint16_t(parse_uint(f, need(), 1, 65535));
        else if (name == "--path") o.path = std::string(need());
        else if (name == "--room") o.room = std::string(need());
        else if (name == "--sub-path") o.sub_path = std::string(need());
        else if (name == "--pub-path") o.pub_path = std::string(need());
        else if (name == "--connections") o.connections = unsigned(parse_uint(f, need(), 1, max_connections));
        else if (name == "--depth") o.depth = unsigned(parse_uint(f, need(), 1, max_depth));
        else if (name == "--size") {
            o.size_bytes = std::size_t(parse_uint(f, need(), 1, max_message_bytes));
            size_given = true;
        } else if (name == "--binary") {
            flag_only();
            o.binary = true;
            binary_given = true;
        } else if (name == "--text") {
            flag_only();
            o.binary = false;
            text_given = true;
        } else if (name == "--payload") {
            std::string_view v = need();
            if (v == "fill") o.payload = PayloadKind::fill;
            else if (v == "json") o.payload = PayloadKind::json;
            else fail(f, "expected fill or json", v);
        } else if (name == "--tls") {
            flag_only();
            o.tls = true;
        } else if (name == "--tls-ca") {
            o.tls_ca = std::string(need());
            o.tls = true;
        } else if (name == "--tls-sni") {
            o.tls_sni = std::string(need());
        } else if (name == "--tls-version") {
            std::string_view v = need();
            if (v == "1.2") o.tls_version = 12;
            else if (v == "1.3") o.tls_version = 13;
            else fail(f, "expected 1.2 or 1.3", v);
        } else if (name == "--tls-ciphers") {
            o.tls_ciphers = std::string(need());
        } else if (name == "--tls-resume") {
            flag_only();
            o.tls_resume = true;
        } else if (name == "--deflate") {
            flag_only();
            o.deflate = true;
        } else if (name == "--inflate-sample") {
            o.inflate_sample = unsigned(parse_uint(f, need(), 1, 1'000'000));
        } else if (name == "--deflate-level") {
            o.deflate_level = int(parse_uint(f, need(), 0, 9));
        } else if (name == "--raw-tcp") {
            flag_only();
            o.raw_tcp = true;
        } else if (name == "--concurrency") o.concurrency = unsigned(parse_uint(f, need(), 1, max_connections));
        else if (name == "--close") {
            std::string_view v = need();
            if (v == "clean") o.close_style = CloseStyle::clean;
            else if (v == "rst") o.close_style = CloseStyle::rst;
            else fail(f, "expected clean or rst", v);
        } else if (name == "--source-ips") o.source_ips = unsigned(parse_uint(f, need(), 1, 254));
        else if (name == "--subscribers") o.subscribers = unsigned(parse_uint(f, need(), 1, max_connections));
        else if (name == "--publishers") o.publishers = unsigned(parse_uint(f, need(), 1, 65535));
        else if (name == "--rate") o.rate_per_publisher = parse_double(f, need(), 0, 10'000'000);
        else if (name == "--window") o.window = unsigned(parse_uint(f, need(), 1, 1u << 20));
        else if (name == "--window-timeout") o.window_timeout_ms = unsigned(parse_uint(f, need(), 1, 60'000));
        else if (name == "--duration") o.duration_s = parse_double(f, need(), 0.1, max_duration_s);
        else if (name == "--warmup") o.warmup_s = parse_double(f, need(), 0, max_warmup_s);
        else if (name == "--threads") o.threads = unsigned(parse_uint(f, need(), 1, max_threads));
        else if (name == "--pin") o.pin_cpus = parse_cpu_list(need());
        else if (name == "--io-uring") {
            const std::string_view v = need();
            if (v == "on") o.io_uring = true;
            else if (v == "off") o.io_uring = false;
            else fail(f, "expected on or off", v);
        }
        else if (name == "--server-pid") o.server_pid = int(parse_uint(f, need(), 1, 1u << 30));
        else if (name == "--setup-timeout") o.setup_timeout_s = unsigned(parse_uint(f, need(), 1, 600));
        else if (name == "--label") o.label = std::string(need());
        else if (name == "--quiet") {
            flag_only();
            o.progress = false;
        } else {
            fail("option", "unknown (see --help)", arg);
        }
    }
    if (!have_mode) fail("MODE", "missing (echo, connect, broadcast or idle; see --help)", "");
    if (text_given && binary_given) fail("--text", "conflicts with --binary", "");
    if (o.payload == PayloadKind::json) {
        if (binary_given) fail("--payload", "json conflicts with --binary", "json");
        o.binary = false;
    }
    if (o.path.empty()) o.path = "/echo";
    if (o.path[0] != '/') fail("--path", "must start with /", o.path);
    if (o.sub_path.empty()) o.sub_path = "/ws/" + o.room;
    if (o.pub_path.empty()) o.pub_path = "/publish/" + o.room;
    if (!size_given) o.size_bytes = o.mode == Mode::broadcast ? 64 : 16;
    if (o.mode == Mode::broadcast && o.size_bytes < broadcast_header_bytes)
        fail("--size", "broadcast needs at least 16 bytes (timestamp + sequence)", std::to_string(o.size_bytes));
    if (o.mode == Mode::broadcast && !o.binary && o.size_bytes <= text_header_bytes)
        fail("--size", "text broadcast needs at least 49 bytes (JSON timestamp + sequence prefix)",
             std::to_string(o.size_bytes));
    if (o.inflate_sample > 1 && (o.mode != Mode::broadcast || o.publishers != 1 || !o.deflate))
        fail("--inflate-sample", "needs broadcast --deflate with --publishers 1", std::to_string(o.inflate_sample));
    if (o.raw_tcp && (o.tls || o.deflate)) fail("--raw-tcp", "conflicts with --tls and --deflate", "");
    if (o.window == 0) o.window = o.rate_per_publisher > 0 ? 4096 : 64;
    if (o.raw_tcp && o.mode != Mode::echo) fail("--raw-tcp", "only applies to echo mode", mode_name(o.mode));
    if (o.mode == Mode::broadcast && std::size_t(o.subscribers) + o.publishers > max_connections)
        fail("--subscribers", "subscribers + publishers over the connection cap 50000",
             std::to_string(o.subscribers + o.publishers));
    if (o.source_ips > 1 && o.host.rfind("127.", 0) != 0)
        fail("--source-ips", "only for a 127.x.x.x target", o.host);
    return o;
}

}  // namespace roomcast::bench
