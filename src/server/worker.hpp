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
#include <unordered_map>
#include <vector>

#include "net/sys.hpp"
#include "net/timer_wheel.hpp"
#include "net/uring.hpp"
#include "roomcast/config.hpp"
#include "server/connection.hpp"
#include "server/ip_limiter.hpp"
#include "server/out_queue.hpp"
#include "pubsub/hub.hpp"
#include "pubsub/inbox.hpp"
#include "http/request_parser.hpp"
#include "util/byte_buffer.hpp"
#include "util/counter.hpp"
#include "tls/context.hpp"
#include "ws/deflate.hpp"

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
    tls::TlsContextHolder* tls = nullptr;  // certificate (swapped by SIGHUP); nullptr: no TLS
    pubsub::Bus* bus = nullptr;       // cross-reactor inboxes (rooms)
};

// Per-reactor counters: written by the reactor's own thread, readable from any (/metrics).
struct WorkerStats {
    util::OwnedCounter messages_in;                   // data messages received
    util::OwnedCounter published;                     // messages published by this reactor's clients
    util::OwnedCounter deliveries;                    // room frames queued to subscribers
    util::OwnedCounter dropped;                       // --slow-consumer drop / conflate skips
    util::OwnedCounter slow_disconnects;              // --slow-consumer disconnect closes
    util::OwnedCounter protocol_errors;               // connections failed with 1002/1007/1009/1008
    util::OwnedCounter http_errors;                   // 4xx/5xx answers
    util::OwnedCounter deflate_shared;                // compressed room frames built (see routes.cpp)
    util::OwnedCounter io_batches;                    // io_uring_enter calls for batched I/O
    util::OwnedCounter io_batched_ops;                // sends and reads they carried
};

class Worker final : private pubsub::HubSink, private pubsub::FrameCompressor {
public:
    // Read buffer: shared by all connections of this reactor. Parsers may not read before data() or
    // past data() + size(); the padding is there so a SIMD over-read stays inside our own memory.
    static constexpr std::size_t read_buffer_bytes = 256 * 1024;
    static constexpr std::size_t read_padding_bytes = 64;
    // Output staging for one connection's writes while handling one read ("cork").
    static constexpr std::size_t scratch_bytes = 512 * 1024;
    // Batched sends (net/uring.hpp): operations per io_uring_enter, iovecs for backlog writes, and the
    // staging space a reply may need before the batch must run.
    static constexpr unsigned batch_entries = 256;
    static constexpr std::size_t batch_iov = 16384;
    static constexpr std::size_t batch_scratch_reserve = 64 * 1024;
    // Batched reads: connections per group, and each one's slice of the group's read arena (a read that
    // fills its slice continues with the big buffer at once).
    static constexpr std::size_t read_group = 32;
    static constexpr std::size_t read_slice_bytes = 256 * 1024;
    static constexpr std::uint64_t read_tag = 1ull << 63;
    // Other ring operations (tag = kind | index): epoll registrations and closes.
    static constexpr std::uint64_t add_tag = 1ull << 62;
    static constexpr std::uint64_t close_tag = 1ull << 61;
    static constexpr std::uint64_t tag_kinds = read_tag | add_tag | close_tag;
    static constexpr int max_iov = 256;
    // Payloads at least this big are sent from where they lie (iovec) instead of being copied.
    static constexpr std::size_t copy_threshold_bytes = 4096;
    // How long a closed connection waits for the peer's FIN/close reply.
    static constexpr std::uint32_t linger_ms = 2000;

    // listen_fds[i] >= 0 is a listener; tls_listener[i] says whether it speaks TLS.
    Worker(unsigned id, Shared& shared, const int (&listen_fds)[2], const bool (&tls_listener)[2]);
    ~Worker() override;
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Runs the loop until the server stops and every connection is closed (or the drain timed out).
    void run() noexcept;
    // From any thread: make the loop look at Shared::stopping.
    void wake() noexcept;

    unsigned id() const noexcept { return id_; }
    std::uint32_t websocket_count() const noexcept { return ws_count_.load(std::memory_order_relaxed); }
    std::uint32_t connection_count() const noexcept { return conn_count_.load(std::memory_order_relaxed); }
    const WorkerStats& stats() const noexcept { return stats_; }
    // After every reactor has stopped: move this reactor's overflow into the rings, then free what its
    // own inbox holds. Returns how much was or still is in flight (0: nothing left here). Repeat over
    // all reactors until every call returns 0: a message waiting for ring space reaches a ring only
    // when its sender flushes.
    std::size_t dispose_inbox() noexcept;

private:
    static constexpr std::uint32_t listener_slot = 0xFFFFFFFFu;
    static constexpr std::uint32_t wake_slot = 0xFFFFFFFEu;
    static constexpr std::uint32_t bus_slot = 0xFFFFFFFDu;
    static constexpr std::uint32_t listener2_slot = 0xFFFFFFFCu;

    // Slab
    Connection* alloc_connection() noexcept;
    Connection& slot(std::uint32_t i) noexcept { return chunks_[i / chunk_size][i % chunk_size]; }
    static std::uint64_t epoll_key(std::uint32_t slot, std::uint32_t gen) noexcept {
        return (std::uint64_t{gen} << 32) | slot;
    }

    // Events
    void on_accept(int which) noexcept;
    bool accept_error(int err) noexcept;
    void setup_accepted(int fd, const sockaddr_storage& ss, int which) noexcept;
    void close_fd(Connection& c) noexcept;
    void set_listening(bool on) noexcept;
    ssize_t send_out(Connection& c, const iovec* iov, int count) noexcept;
    void tls_read(Connection& c) noexcept;
    void on_event(Connection& c, std::uint32_t events) noexcept;
    void on_readable(Connection& c) noexcept;
    void on_writable(Connection& c) noexcept;
    void on_timer(Connection& c) noexcept;
    void handle_bytes(Connection& c, std::byte* p, std::size_t n) noexcept;
    void handle_http(Connection& c, std::byte* p, std::size_t n) noexcept;
    bool handle_request(Connection& c, std::byte* p, std::size_t n, std::size_t& consumed) noexcept;
    void handle_ws(Connection& c, std::byte* p, std::size_t n) noexcept;
    bool upgrade(Connection& c, const http::Request& req, Route route, std::string* deferred_101 = nullptr) noexcept;
    void complete_upgrade(Connection& c, Route route) noexcept;
    void finish_response(Connection& c) noexcept;
    bool route_rooms(Connection& c, const http::Request& req, std::size_t available, std::size_t& consumed) noexcept;
    bool post_publish(Connection& c, const http::Request& req, std::string_view room, std::size_t available,
                      std::size_t& consumed) noexcept;
    bool on_room_message(Connection& c, ws::Opcode op, std::span<std::byte> payload) noexcept;
    bool on_data_message(Connection& c, ws::Opcode op, std::span<std::byte> payload) noexcept;
    void send_message(Connection& c, ws::Opcode op, std::span<const std::byte> payload) noexcept;
    void on_control(Connection& c, std::span<std::byte> text) noexcept;
    void control_error(Connection& c, std::string_view code, std::string_view message, std::string_view id) noexcept;
    template <class Reply>
    void send_reply(Connection& c, const Reply& r) noexcept;
    void deliver(Connection& c, LocalFrame* lf) noexcept;
    void flush_dirty() noexcept;
    void after_send(Connection& c, const iovec* iov, int count, std::size_t total, ssize_t r, bool queued) noexcept;
    void after_queue_write(Connection& c, ssize_t r) noexcept;
    void flush_batched(Connection& c, bool closing = false) noexcept;  // closing: the close() follows
    bool queue_batched(Connection& c) noexcept;
    void submit_batch() noexcept;
    void close_handshake_done(Connection& c) noexcept;
    void run_ring() noexcept;
    bool took_read(Connection& c, std::byte* p, std::size_t cap, ssize_t r) noexcept;
    void on_event_batched(Connection& c, std::uint32_t events) noexcept;
    void run_reads() noexcept;
    std::byte* read_slice(std::size_t i) noexcept;
    bool in_read_buffers(const void* p) const noexcept {
        const auto* b = static_cast<const std::byte*>(p);
        if (b >= rbuf_ && b < rbuf_ + read_buffer_bytes) return true;
        const std::byte* arena = read_arena_.get();
        return arena && b >= arena && b < arena + read_padding_bytes + read_group * (read_slice_bytes + read_padding_bytes);
    }
    Connection* lookup(std::uint64_t who) noexcept;
    static std::uint64_t who_of(const Connection& c) noexcept { return epoll_key(c.index, c.generation); }
    void release_rooms(Connection& c) noexcept;
    std::string metrics_text();

    // HubSink
    void on_subscribed(pubsub::SubscriberId who, pubsub::SubHandle h, std::string_view room, pubsub::Format format,
                       const pubsub::ReplayPlan& plan, std::span<pubsub::FrameRef* const> replay) noexcept override;
    void on_deliver(pubsub::FrameRef* frame, std::span<const pubsub::SubscriberId> subs) noexcept override;
    void on_published(pubsub::PublisherId who, std::uint64_t seq) noexcept override;
    void on_subscribe_refused(pubsub::SubscriberId who, pubsub::SubHandle h, std::string_view room,
                              pubsub::Format format) noexcept override;
    void on_publish_refused(pubsub::PublisherId who, std::string_view room, std::string_view note) noexcept override;
    void answer_post(Connection& c, int status, std::string_view body) noexcept;
    // FrameCompressor (owner side: the compressed sibling of a room frame, once per process)
    pubsub::FrameRef* compress(const pubsub::FrameRef& frame) noexcept override;
    bool takes_shared_deflate(const Connection& c) const noexcept;
    LocalFrame* shared_deflated(pubsub::FrameRef* frame) noexcept;
    void begin_stop() noexcept;

    // Output
    void out_copy(Connection& c, const void* p, std::size_t n) noexcept;
    void out_ref(Connection& c, const void* p, std::size_t n) noexcept;
    void out_frame(Connection& c, std::uint8_t opcode, const std::byte* p, std::size_t n) noexcept;
    void out_close_frame(Connection& c, std::uint16_t code, std::string_view reason) noexcept;
    void out_http(Connection& c, int status, std::string_view extra_headers, std::string_view content_type,
                  std::string_view body) noexcept;
    void flush(Connection& c) noexcept;
    void flush_queue(Connection& c) noexcept;
    OutQueue* queue_of(Connection& c) noexcept;
    void drop_queue(Connection& c) noexcept;
    void update_events(Connection& c) noexcept;

    // Closing
    void fail_ws(Connection& c, std::uint16_t code, std::string_view reason) noexcept;
    void start_close(Connection& c, std::uint16_t code, std::string_view reason, std::uint32_t wait_ms) noexcept;
    void linger(Connection& c) noexcept;
    void half_close(Connection& c) noexcept;
    void close_now(Connection& c) noexcept;
    void reap() noexcept;
    void arm_ws_timer(Connection& c) noexcept;
    void answer_ping(Connection& c, std::span<const std::byte> payload) noexcept;
    bool rate_ok(Connection& c) noexcept;

    friend struct EchoHandler;
    friend struct RoomHandler;
    friend struct DiscardHandler;

    const unsigned id_;
    Shared& shared_;
    const Config& cfg_;
    net::sys::UniqueFd epfd_;
    net::sys::UniqueFd listen_fd_[2];
    bool listen_tls_[2] = {false, false};
    net::sys::UniqueFd wake_fd_;
    std::uint64_t now_ms_ = 0;
    net::TimerWheel wheel_;
    util::BufferPool pool_;
    LocalFramePool frames_;
    std::unique_ptr<ws::DeflatePool> dpool_;
    util::ByteBuffer inflated_;    // the message being handled, inflated (reused)
    util::ByteBuffer deflated_;    // an outgoing message, compressed (reused)
    std::vector<OutQueue*> free_queues_;
    pubsub::Port* port_ = nullptr;
    std::unique_ptr<pubsub::Hub> hub_;
    std::vector<Connection*> dirty_;
    std::vector<pubsub::SubHandle> deferred_unsubs_;
    // Pending /ws subscriptions: handle -> the request id to echo in "subscribed".
    std::unordered_map<std::uint64_t, std::string> sub_ids_;
    WorkerStats stats_;

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
    struct BatchedSend {
        Connection* c;
        const std::byte* data;  // staged reply (mh == nullptr)
        std::size_t len;
        msghdr* mh;             // backlog write
        int res;
    };
    net::BatchRing ring_;
    bool batching_ = false;  // ring usable and not inside submit_batch()
    std::vector<BatchedSend> batch_;
    std::unique_ptr<iovec[]> biov_;
    std::size_t biov_used_ = 0;
    std::unique_ptr<msghdr[]> bmh_;
    struct PendingRead {
        Connection* c;
        std::uint32_t generation;
        int res;
    };
    std::vector<PendingRead> reads_;
    // Epoll registrations (ADD of a new connection) and closes prepared in the ring.
    struct PendingAdd {
        Connection* c;
        std::uint32_t generation;
        epoll_event ev;
        int res;
    };
    std::vector<PendingAdd> adds_;  // capacity reserved: the ring reads each ev at submit
    struct PendingClose {
        int fd;
        bool ran;
    };
    std::vector<PendingClose> closes_;
    std::unique_ptr<std::byte[]> read_arena_;
    std::size_t out_bytes_ = 0;
    std::uint32_t frames_before_ = 0;
    const std::byte* req_base_ = nullptr;  // start of the request being handled (bodies follow its head)  // the parser's frame count before the current read
    Connection* out_owner_ = nullptr;
    epoll_event events_[256];
};

}  // namespace roomcast::server
