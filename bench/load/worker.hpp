// One load-generator thread: its own epoll, its share of the connections, its own histogram.
// Workers share only the read-only run description (Shared) plus a few atomics: the run phase,
// readiness, and the broadcast publish windows (acknowledged by subscribers on any worker).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "histogram.hpp"
#include "options.hpp"

typedef struct ssl_ctx_st SSL_CTX;

namespace roomcast::bench {

enum class Phase : int { setup = 0, warmup = 1, measure = 2, stop = 3 };

// One broadcast publisher's window: messages sent but not yet seen by every subscriber.
struct PublishWindow {
    struct Slot {
        std::atomic<std::uint64_t> seq{0};   // which message occupies the slot (0 = none)
        std::atomic<std::uint32_t> acks{0};  // subscribers that received it
        std::uint64_t sent_ns = 0;           // publisher's own bookkeeping
    };
    std::unique_ptr<Slot[]> slots;
    std::uint32_t size = 0;
};

struct Shared {
    const Options* opt = nullptr;
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string request_main;  // upgrade request for echo/connect/idle
    std::string request_sub;
    std::string request_pub;
    std::string expected_accept;
    std::vector<std::uint8_t> payload;  // the S payload bytes (echo) / padding template (broadcast)
    std::size_t header_bytes = broadcast_header_bytes;  // broadcast: 16 (binary) or text_header_bytes
    SSL_CTX* tls_ctx = nullptr;         // --tls: one client context shared by the workers
    std::atomic<int> phase{int(Phase::setup)};
    std::atomic<unsigned> ready_workers{0};
    std::atomic<unsigned> open_subscribers{0};
    std::unique_ptr<PublishWindow[]> windows;  // one per publisher
};

// Counted over the whole run (correctness), not only the measured interval.
struct ErrorCounts {
    std::uint64_t connect = 0;        // connect(2) failed or refused
    std::uint64_t handshake = 0;      // non-101 status, wrong Sec-WebSocket-Accept, oversized head
    std::uint64_t verify = 0;         // echoed/delivered message with wrong length, opcode or content
    std::uint64_t protocol = 0;       // malformed frame from the server (masked, reserved opcode...)
    std::uint64_t closed = 0;         // server closed or reset a connection that should have stayed open
    std::uint64_t timeout = 0;        // connect/handshake/close not finished within its time limit
    std::uint64_t io = 0;             // other send/recv errors
    std::uint64_t tls = 0;            // TLS handshake failed (or a TLS error on an open connection)
    std::uint64_t total() const noexcept { return connect + handshake + verify + protocol + closed + timeout + io + tls; }
    void add(const ErrorCounts& o) noexcept {
        connect += o.connect; handshake += o.handshake; verify += o.verify; protocol += o.protocol;
        closed += o.closed; timeout += o.timeout; io += o.io; tls += o.tls;
    }
};

struct WorkerResult {
    // measured interval only
    std::uint64_t messages = 0;     // echo: round trips; broadcast: deliveries; connect: handshakes
    std::uint64_t bytes = 0;        // payload bytes received (after inflation)
    std::uint64_t ws_bytes = 0;     // WebSocket bytes received (frame headers + payload as sent; TLS plaintext)
    std::uint64_t z_messages = 0;   // messages received compressed (RSV1)
    std::uint64_t z_skipped = 0;    // of which not inflated (--inflate-sample)
    std::uint64_t published = 0;    // broadcast: messages sent by publishers
    std::uint64_t cycles = 0;       // connect: connections fully closed
    LatencyHistogram latency;
    // whole run
    ErrorCounts errors;
    std::uint64_t gaps = 0;          // broadcast: sequence numbers skipped at a subscriber
    std::uint64_t duplicates = 0;    // broadcast: sequence numbers seen again (or out of order)
    std::uint64_t window_timeouts = 0;
    std::uint64_t unclean_closes = 0;  // connect clean: the server reset instead of FIN after close frames
    std::uint64_t publisher_lag_max_ns = 0;  // broadcast --rate: worst lateness behind the schedule
    unsigned opened = 0;            // connections that completed set-up
    unsigned deflate_conns = 0;     // connections (or probes) on which permessage-deflate was agreed
    std::uint64_t tls_handshakes = 0;  // completed TLS handshakes (whole run)
    std::uint64_t tls_resumed = 0;     // of which resumed from a session ticket
    std::string tls_desc;              // "TLSv1.3 TLS_AES_256_GCM_SHA384" of the first handshake
    std::string deflate_desc;          // the server's Sec-WebSocket-Extensions answer (first one)
    unsigned still_open = 0;        // at the end of the run
};

// Live numbers for the per-second progress line, written by the worker once per loop turn.
struct alignas(64) LiveCounters {
    std::atomic<std::uint64_t> work{0};    // messages / deliveries / handshakes since start
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint32_t> open{0};
};

// Runs worker `index` of `count` until the phase becomes stop. Never throws on the I/O path.
void run_worker(Shared& shared, unsigned index, unsigned count, LiveCounters& live, WorkerResult& result);

std::uint64_t now_ns() noexcept;

}  // namespace roomcast::bench
