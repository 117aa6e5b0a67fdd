// A reactor: one thread, one epoll fd, one SO_REUSEPORT listener, its own connections, timers and
// buffers. Nothing here is shared with other reactors except the atomics in Shared.
#pragma once
#include <sys/epoll.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "net/sys.hpp"
#include "net/timer_wheel.hpp"
#include "roomcast/config.hpp"
#include "server/connection.hpp"
#include "server/ip_limiter.hpp"
#include "util/byte_buffer.hpp"

namespace roomcast::server {

class Worker;

// State every reactor may read (and a few counters all of them update). Written before the threads
// start, except the atomics.
struct Shared {
    const Config* cfg = nullptr;
    std::uint64_t start_ms = 0;
    std::vector<Worker*> workers;
    std::atomic<std::size_t> open_connections{0};  // all reactors, against --max-connections
    std::atomic<bool> stopping{false};
    IpLimiter* ip_limiter = nullptr;  // --max-connections-per-ip (nullptr: no cap)
};

class Worker {
public:
    // Read buffer: shared by all connections of this reactor. Parsers may not read before data() or
    // past data() + size(); the padding is there so a SIMD over-read stays inside our own memory.
    static constexpr std::size_t read_buffer_bytes = 256 * 1024;
    static constexpr std::size_t read_padding_bytes = 64;
    // Output staging for one connection's writes while handling one read ("cork").
    static constexpr std::size_t scratch_bytes = 128 * 1024;
    static constexpr int max_iov = 256;
    // Payloads at least this big are sent from where they lie (iovec) instead of being copied.
    static constexpr std::size_t copy_threshold_bytes = 4096;
    // A connection whose backlog passes this stops being read until it drains (backpressure).
    static constexpr std::size_t backlog_pause_bytes = 4u << 20;
    // How long a closed connection waits for the peer's FIN/close reply.
    static constexpr std::uint32_t linger_ms = 2000;

    Worker(unsigned id, Shared& shared, int listen_fd);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Runs the loop until the server stops and every connection is closed (or the drain timed out).
    void run() noexcept;
    // From any thread: make the loop look at Shared::stopping.
    void wake() noexcept;

    unsigned id() const noexcept { return id_; }
    std::uint32_t websocket_count() const noexcept { return ws_count_.load(std::memory_order_relaxed); }
    std::uint32_t connection_count() const noexcept { return conn_count_.load(std::memory_order_relaxed); }

private:
    static constexpr std::uint32_t listener_slot = 0xFFFFFFFFu;
    static constexpr std::uint32_t wake_slot = 0xFFFFFFFEu;

    // Slab
    Connection* alloc_connection() noexcept;
    Connection& slot(std::uint32_t i) noexcept { return chunks_[i / chunk_size][i % chunk_size]; }
    static std::uint64_t epoll_key(std::uint32_t slot, std::uint32_t gen) noexcept {
        return (std::uint64_t{gen} << 32) | slot;
    }

    // Events
    void on_accept() noexcept;
    void on_event(Connection& c, std::uint32_t events) noexcept;
    void on_readable(Connection& c) noexcept;
    void on_writable(Connection& c) noexcept;
    void on_timer(Connection& c) noexcept;
    void handle_bytes(Connection& c, std::byte* p, std::size_t n) noexcept;
    void handle_http(Connection& c, std::byte* p, std::size_t n) noexcept;
    bool handle_request(Connection& c, std::byte* p, std::size_t n, std::size_t& consumed) noexcept;
    void handle_ws(Connection& c, std::byte* p, std::size_t n) noexcept;
    void begin_stop() noexcept;

    // Output
    void out_copy(Connection& c, const void* p, std::size_t n) noexcept;
    void out_ref(Connection& c, const void* p, std::size_t n) noexcept;
    void out_frame(Connection& c, std::uint8_t opcode, const std::byte* p, std::size_t n) noexcept;
    void out_close_frame(Connection& c, std::uint16_t code, std::string_view reason) noexcept;
    void out_http(Connection& c, int status, std::string_view extra_headers, std::string_view content_type,
                  std::string_view body) noexcept;
    void flush(Connection& c) noexcept;
    void flush_backlog(Connection& c) noexcept;
    void update_events(Connection& c) noexcept;

    // Closing
    void fail_ws(Connection& c, std::uint16_t code, std::string_view reason) noexcept;
    void start_close(Connection& c, std::uint16_t code, std::string_view reason, std::uint32_t wait_ms) noexcept;
    void linger(Connection& c) noexcept;
    void close_now(Connection& c) noexcept;
    void reap() noexcept;
    void arm_ws_timer(Connection& c) noexcept;
    void answer_ping(Connection& c, std::span<const std::byte> payload) noexcept;
    bool rate_ok(Connection& c) noexcept;

    friend struct EchoHandler;
    friend struct DiscardHandler;

    const unsigned id_;
    Shared& shared_;
    const Config& cfg_;
    net::sys::UniqueFd epfd_;
    net::sys::UniqueFd listen_fd_;
    net::sys::UniqueFd wake_fd_;
    std::uint64_t now_ms_ = 0;
    net::TimerWheel wheel_;
    util::BufferPool pool_;

    static constexpr std::size_t chunk_size = 1024;
    std::vector<std::unique_ptr<Connection[]>> chunks_;
    std::uint32_t free_head_ = 0xFFFFFFFFu;
    std::uint32_t slots_used_ = 0;
    std::vector<Connection*> closed_;
    std::atomic<std::uint32_t> ws_count_{0};
    std::atomic<std::uint32_t> conn_count_{0};
    std::uint32_t live_ = 0;  // connections not yet freed (this thread only)
    bool stopping_ = false;
    std::uint64_t drain_deadline_ms_ = 0;
    std::uint64_t accept_paused_until_ms_ = 0;
    bool listening_ = false;

    std::unique_ptr<std::byte[]> read_mem_;
    std::byte* rbuf_ = nullptr;
    std::unique_ptr<std::byte[]> scratch_;
    std::size_t scratch_used_ = 0;
    iovec iov_[max_iov];
    int iov_count_ = 0;
    std::size_t out_bytes_ = 0;
    std::uint32_t frames_before_ = 0;  // the parser's frame count before the current read
    Connection* out_owner_ = nullptr;
    epoll_event events_[256];
};

}  // namespace roomcast::server
