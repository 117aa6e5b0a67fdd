#include "server/worker.hpp"

#include <sys/eventfd.h>
#include <time.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "http/handshake.hpp"
#include "http/origin.hpp"
#include "net/clock.hpp"
#include "http/request_parser.hpp"
#include "server/http_responses.hpp"
#include "pubsub/control.hpp"
#include "util/log.hpp"
#include "ws/frame_parser.hpp"

namespace roomcast::server {

static_assert(std::is_standard_layout_v<Connection>);
static_assert(offsetof(Connection, timer) == 0, "timer callbacks recover the connection from its node");

namespace {

using net::monotonic_ms;

constexpr std::uint8_t ev_in = 1;
constexpr std::uint8_t ev_out = 2;
constexpr std::uint64_t never = ~std::uint64_t{0};

}  // namespace

// Echo: every message back with the same opcode, as one frame; rooms routes hand messages to the
// room engine. Pings are answered with pongs.
struct EchoHandler {
    Worker& w;
    Connection& c;
    bool on_message(ws::Opcode op, std::span<std::byte> payload) noexcept {
        if (!w.rate_ok(c)) return false;
        w.stats_.messages_in.add(1);
        return w.on_data_message(c, op, payload);
    }
    bool on_ping(std::span<std::byte> payload) noexcept {
        if (!w.rate_ok(c)) return false;
        w.answer_ping(c, payload);
        return !c.dead;
    }
    bool on_pong(std::span<std::byte>) noexcept { return true; }  // §5.5.3: unsolicited pongs are ignored
    bool on_close(std::uint16_t code, std::span<std::byte>) noexcept {
        // §5.5.1: reply with a close frame, echoing the status code; no code received -> empty close.
        if (code == 1005) w.out_frame(c, static_cast<std::uint8_t>(ws::Opcode::close), nullptr, 0);
        else w.out_close_frame(c, code, {});
        w.close_handshake_done(c);
        return false;
    }
};

// After we sent a close frame: the peer's data is discarded until its close arrives (§7.1.1).
struct DiscardHandler {
    Worker& w;
    Connection& c;
    bool on_message(ws::Opcode, std::span<std::byte>) noexcept { return true; }
    bool on_ping(std::span<std::byte>) noexcept { return true; }  // nothing is sent after a close frame
    bool on_pong(std::span<std::byte>) noexcept { return true; }
    bool on_close(std::uint16_t, std::span<std::byte>) noexcept {
        w.close_handshake_done(c);
        return false;
    }
};

Worker::Worker(unsigned id, Shared& shared, const int (&listen_fds)[2], const bool (&tls_listener)[2])
    : id_(id), shared_(shared), cfg_(*shared.cfg), wheel_(monotonic_ms()) {
    for (int i = 0; i < 2; ++i) {
        listen_fd_[i].reset(listen_fds[i]);
        listen_tls_[i] = tls_listener[i];
    }
    now_ms_ = monotonic_ms();
    epfd_.reset(::epoll_create1(EPOLL_CLOEXEC));
    wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    read_mem_ = std::make_unique<std::byte[]>(read_buffer_bytes + 2 * read_padding_bytes);
    rbuf_ = read_mem_.get() + read_padding_bytes;
    scratch_ = std::make_unique<std::byte[]>(scratch_bytes);
    if (cfg_.io_uring) {
        static std::atomic<bool> logged{false};
        int err = 0;
        if (ring_.init(batch_entries + read_group, &err)) {
            batching_ = true;
            reads_.reserve(read_group);
            read_arena_ = std::make_unique<std::byte[]>(read_padding_bytes + read_group * (read_slice_bytes + read_padding_bytes));
            batch_.reserve(batch_entries);
            adds_.reserve(ring_.capacity());
            closes_.reserve(ring_.capacity());
            biov_ = std::make_unique<iovec[]>(batch_iov);
            bmh_ = std::make_unique<msghdr[]>(batch_entries);
        } else if (!logged.exchange(true)) {
            ROOMCAST_LOG(info, "io_uring unavailable (%s): one send() per write\n", std::strerror(err));
        }
    }
    pool_.reserve_slots();
    closed_.reserve(1024);
    net::sys::epoll_set(epfd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), EPOLLIN, epoll_key(wake_slot, 0));
    set_listening(true);
    if (shared_.bus) {
        port_ = &shared_.bus->port(id_);
        hub_ = std::make_unique<pubsub::Hub>(*port_, static_cast<pubsub::HubSink&>(*this), cfg_.history,
                                             cfg_.room_memory_bytes);
        net::sys::epoll_set(epfd_.get(), EPOLL_CTL_ADD, port_->wake_fd(), EPOLLIN, epoll_key(bus_slot, 0));
    }
    dirty_.reserve(1024);
    ws::DeflateConfig dc;
    dc.enabled = cfg_.deflate;
    dc.level = cfg_.deflate_level;
    dc.window_bits = cfg_.deflate_window_bits;
    dc.min_size = cfg_.deflate_min_size;
    dc.context_takeover = cfg_.deflate_context_takeover;
    dpool_ = std::make_unique<ws::DeflatePool>(dc);
    if (hub_) hub_->set_compressor(static_cast<pubsub::FrameCompressor*>(this));
}

// A complete data message: inflated first if it was compressed (RFC 7692 §6.2), then echoed or handed
// to the room engine.
bool Worker::on_data_message(Connection& c, ws::Opcode op, std::span<std::byte> payload) noexcept {
    if (c.dfl && (c.parser.msg_rsv & 0x4)) {
        inflated_.clear();
        // Bounded: inflation stops the moment the output passes --max-message-size.
        switch (c.dfl->inflate(*dpool_, payload, true, inflated_, cfg_.max_message_bytes)) {
        case ws::InflateResult::ok:
            break;
        case ws::InflateResult::too_big:
            stats_.protocol_errors.add(1);
            fail_ws(c, 1009, "inflated message exceeds --max-message-size");
            return false;
        case ws::InflateResult::corrupt:
            stats_.protocol_errors.add(1);
            fail_ws(c, 1007, "corrupt permessage-deflate data");
            return false;
        case ws::InflateResult::no_memory:
            fail_ws(c, 1011, "out of memory");
            return false;
        }
        // §8.1 applies to the inflated text; the parser skipped it for the compressed bytes.
        if (op == ws::Opcode::text &&
            simd::validate_utf8(inflated_.data(), inflated_.size(), simd::utf8_accept) != simd::utf8_accept) {
            stats_.protocol_errors.add(1);
            fail_ws(c, 1007, ws::describe(ws::Error::invalid_utf8));
            return false;
        }
        payload = inflated_.span();
    }
    if (c.route != Route::echo) return on_room_message(c, op, payload);
    send_message(c, op, payload);
    return !c.dead;
}

// One message to one connection, compressed when deflate was negotiated and it is big enough.
void Worker::send_message(Connection& c, ws::Opcode op, std::span<const std::byte> payload) noexcept {
    if (c.dfl && c.dfl->wants_compression(payload.size(), dpool_->config())) {
        deflated_.clear();
        if (!c.dfl->deflate(*dpool_, payload, deflated_)) {
            fail_ws(c, 1011, "compression failed");
            return;
        }
        // RSV1 marks a compressed message (RFC 7692 §6); encode_header ORs the opcode byte in.
        out_frame(c, static_cast<std::uint8_t>(op) | 0x40, deflated_.data(), deflated_.size());
        return;
    }
    out_frame(c, static_cast<std::uint8_t>(op), payload.data(), payload.size());
}

Worker::~Worker() {
    for (std::uint32_t i = 0; i < slots_used_; ++i) {
        Connection& c = slot(i);
        if (c.state != ConnState::free && !c.dead) close_now(c);
    }
    if (ring_.ok()) submit_batch();  // the closes just prepared
    reap();
    for (OutQueue* q : free_queues_) delete q;
}

std::size_t Worker::dispose_inbox() noexcept {
    if (!port_) return 0;
    port_->flush();  // what waited in our overflow queues for ring space moves on (or stays: counted below)
    const std::size_t n = port_->drain([](unsigned, const pubsub::Message& m) { pubsub::Hub::dispose(m); });
    return n + port_->overflow_count() + (port_->pending() ? 1 : 0);
}

void Worker::wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(wake_fd_.get(), &one, sizeof one);
}

Connection* Worker::alloc_connection() noexcept {
    if (free_head_ == 0xFFFFFFFFu) {
        if (slots_used_ == chunks_.size() * chunk_size) {
            auto chunk = std::unique_ptr<Connection[]>(new (std::nothrow) Connection[chunk_size]);
            if (!chunk) return nullptr;
            chunks_.push_back(std::move(chunk));
        }
        Connection& c = slot(slots_used_);
        c.index = slots_used_++;
        return &c;
    }
    Connection& c = slot(free_head_);
    free_head_ = c.next_free;
    return &c;
}

void Worker::run() noexcept {
    for (;;) {
        int timeout = wheel_.ms_until_next(now_ms_);
        if (stopping_ || accept_paused_until_ms_) timeout = (timeout < 0 || timeout > 50) ? 50 : timeout;
        if (port_) {
            port_->flush();
            if (!port_->prepare_sleep()) timeout = 0;  // messages are waiting: poll
        }
        submit_batch();  // closes (timers, shutdown) prepared since the last run: not while we sleep
        const int n = net::sys::epoll_wait_for(epfd_.get(), events_, static_cast<int>(std::size(events_)), timeout);
        if (port_) port_->woke();
        now_ms_ = monotonic_ms();
        for (int i = 0; i < n; ++i) {
            const std::uint64_t key = events_[i].data.u64;
            const auto s = static_cast<std::uint32_t>(key);
            if (s == listener_slot || s == listener2_slot) {
                on_accept(s == listener_slot ? 0 : 1);
            } else if (s == bus_slot) {
                port_->consume_wake_fd();
            } else if (s == wake_slot) {
                std::uint64_t v;
                [[maybe_unused]] ssize_t r = ::read(wake_fd_.get(), &v, sizeof v);
                if (shared_.stopping.load(std::memory_order_acquire) && !stopping_) begin_stop();
            } else {
                Connection& c = slot(s);
                if (c.generation != static_cast<std::uint32_t>(key >> 32) || c.state == ConnState::free || c.dead)
                    continue;  // a stale event for a slot closed earlier this turn
                if (batching_ && !c.tls) on_event_batched(c, events_[i].events);
                else on_event(c, events_[i].events);
            }
        }
        run_reads();
        submit_batch();  // the replies of this turn's reads: one system call
        if (port_) {
            port_->drain([this](unsigned from, const pubsub::Message& m) { hub_->handle(from, m); });
            for (pubsub::SubHandle h : deferred_unsubs_) hub_->unsubscribe(h);
            deferred_unsubs_.clear();
        }
        flush_dirty();
        submit_batch();  // room deliveries of this turn
        wheel_.advance(now_ms_, [this](net::TimerNode& node) {
            Connection& c = *reinterpret_cast<Connection*>(&node);
            if (!c.dead) on_timer(c);
        });
        reap();
        if (accept_paused_until_ms_ && now_ms_ >= accept_paused_until_ms_ && !stopping_) {
            accept_paused_until_ms_ = 0;
            set_listening(true);
        }
        if (!stopping_ && shared_.stopping.load(std::memory_order_acquire)) begin_stop();
        if (stopping_) {
            if (live_ == 0) break;
            if (now_ms_ >= drain_deadline_ms_) {
                for (std::uint32_t i = 0; i < slots_used_; ++i) {
                    Connection& c = slot(i);
                    if (c.state != ConnState::free && !c.dead) close_now(c);
                }
                reap();
                break;
            }
        }
    }
}

void Worker::begin_stop() noexcept {
    stopping_ = true;
    drain_deadline_ms_ = now_ms_ + cfg_.drain_timeout_ms;
    set_listening(false);
    listen_fd_[0].reset();
    listen_fd_[1].reset();
    for (std::uint32_t i = 0; i < slots_used_; ++i) {
        Connection& c = slot(i);
        if (c.state == ConnState::free || c.dead) continue;
        if (c.state == ConnState::http) close_now(c);
        else if (c.state == ConnState::websocket) start_close(c, 1001, "server shutting down", cfg_.drain_timeout_ms);
    }
}

void Worker::set_listening(bool on) noexcept {
    if (on == listening_) return;
    for (int i = 0; i < 2; ++i) {
        if (!listen_fd_[i]) continue;
        if (on) net::sys::epoll_set(epfd_.get(), EPOLL_CTL_ADD, listen_fd_[i].get(), EPOLLIN, epoll_key(i ? listener2_slot : listener_slot, 0));
        else net::sys::epoll_set(epfd_.get(), EPOLL_CTL_DEL, listen_fd_[i].get(), 0, 0);
    }
    listening_ = on;
}

// A readable listener: up to 64 connections per event. (Accepting through the ring, in rounds with
// IORING_ACCEPT_DONTWAIT, measured no better than accept4() here, nor did a first read of the request
// in the same turn: both were tried and dropped.)
void Worker::on_accept(int which) noexcept {
    for (int i = 0; i < 64; ++i) {
        sockaddr_storage ss;
        socklen_t len = sizeof ss;
        const int fd = net::sys::accept_nb(listen_fd_[which].get(), &ss, &len);
        if (fd < 0) {
            if (accept_error(-fd)) return;
            continue;
        }
        setup_accepted(fd, ss, which);
    }
}

// An accept failed with err: true if accepting stops for now (nothing waits, or out of descriptors),
// false if it was about one connection only (ECONNABORTED and friends).
bool Worker::accept_error(int err) noexcept {
    if (err == EAGAIN || err == EWOULDBLOCK) return true;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of descriptors: stop accepting for a moment instead of spinning on a readable listener.
        ROOMCAST_LOG(warn, "reactor %u: accept: %s; pausing accepts for 100 ms\n", id_, std::strerror(err));
        set_listening(false);
        accept_paused_until_ms_ = now_ms_ + 100;
        return true;
    }
    return false;
}

void Worker::setup_accepted(int fd, const sockaddr_storage& ss, int which) noexcept {
    // TCP_NODELAY comes from the listener (net/listener.cpp).
    Connection* cp = alloc_connection();
    if (!cp) {
        net::sys::close_fd(fd);
        return;
    }
    Connection& c = *cp;
    const std::uint32_t gen = c.generation;
    const std::uint32_t index = c.index;
    c.~Connection();
    new (&c) Connection();
    c.generation = gen;
    c.index = index;
    c.fd = fd;
    c.last_rx_ms = now_ms_;
    c.last_ping_ms = now_ms_;
    ++live_;
    conn_count_.fetch_add(1, std::memory_order_relaxed);
    const bool over_cap = shared_.open_connections.fetch_add(1, std::memory_order_relaxed) >= cfg_.max_connections;
    c.counted_open = true;
    c.state = ConnState::http;
    if (batching_ && adds_.size() < adds_.capacity() && !ring_.full()) {
        // Registered by the ring with this turn's next batch (run_ring() closes it if that fails).
        PendingAdd& a = adds_.emplace_back();
        a.c = &c;
        a.generation = c.generation;
        a.ev.events = EPOLLIN;
        a.ev.data.u64 = epoll_key(c.index, c.generation);
        a.res = -EIO;
        ring_.epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &a.ev, add_tag | (adds_.size() - 1));
        c.epoll_add_pending = true;
    } else if (net::sys::epoll_set(epfd_.get(), EPOLL_CTL_ADD, fd, EPOLLIN, epoll_key(c.index, c.generation)) < 0) {
        close_now(c);
        return;
    }
    c.epoll_events = ev_in;
    if (listen_tls_[which]) {
        // The TLS handshake happens in the http state, under --handshake-timeout.
        const std::shared_ptr<const tls::TlsContext> ctx = shared_.tls->current();
        c.tls = new (std::nothrow) tls::TlsSession();
        if (!c.tls || !ctx || c.tls->open(*ctx, fd) == tls::Status::error) {
            close_now(c);
            return;
        }
    }
    bool over_ip_cap = false;
    if (shared_.ip_limiter) {
        c.peer_ip = ip_key(ss);
        if (shared_.ip_limiter->try_acquire(c.peer_ip)) c.counted_ip = true;
        else over_ip_cap = true;
    }
    if (over_cap || over_ip_cap) {
        // At the cap: answer 503 and close; the connection stops counting at once.
        shared_.open_connections.fetch_sub(1, std::memory_order_relaxed);
        c.counted_open = false;
        c.keep_alive = false;
        out_http(c, 503, "Retry-After: 1\r\n", "text/plain",
                 over_cap ? "connection limit reached (--max-connections)\n"
                          : "too many connections from your address (--max-connections-per-ip)\n");
        linger(c);
        return;
    }
    wheel_.schedule(c.timer, now_ms_ + cfg_.handshake_timeout_ms);
}

void Worker::on_event(Connection& c, std::uint32_t events) noexcept {
    if (c.tls && (events & EPOLLOUT) && (c.tls_wants_write || !c.tls->handshake_done())) {
        tls_read(c);  // the handshake (or a record) was waiting to be written
        if (c.dead) return;
    }
    if (events & EPOLLOUT) on_writable(c);
    if (!c.dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c);
}

// wss://: OpenSSL reads the socket; plaintext lands in the shared read buffer. Bytes OpenSSL already
// holds raise no EPOLLIN, so keep reading until it asks for more from the socket.
void Worker::tls_read(Connection& c) noexcept {
    static std::atomic<bool> ktls_logged{false};
    for (int round = 0; round < 64 && !c.dead && !c.read_paused; ++round) {
        const bool was_done = c.tls->handshake_done();
        const tls::IoResult r = c.tls->read({rbuf_, read_buffer_bytes});
        if (!was_done && c.tls->handshake_done() && !ktls_logged.exchange(true)) {
            ROOMCAST_LOG(info, "TLS: %s; kernel TLS %s\n", c.tls->protocol(),
                         c.tls->ktls_send() ? "on for sending" : "not available here (userspace TLS)");
        }
        if (r.bytes) {
            c.last_rx_ms = now_ms_;
            handle_bytes(c, rbuf_, r.bytes);
            if (!c.dead) flush(c);
            if (c.dead) return;
        }
        c.tls_wants_write = r.status == tls::Status::want_write;
        switch (r.status) {
        case tls::Status::ok:
            continue;
        case tls::Status::want_read:
        case tls::Status::want_write:
            update_events(c);
            return;
        case tls::Status::closed:
            if (c.outq && !c.outq->empty() && c.state == ConnState::lingering) {
                c.peer_eof = true;
                c.read_paused = true;
                update_events(c);
                return;
            }
            close_now(c);
            return;
        case tls::Status::error:
            ROOMCAST_LOG(debug, "TLS: %s\n", c.tls->error_reason());
            close_now(c);
            return;
        }
    }
}

ssize_t Worker::send_out(Connection& c, const iovec* iov, int count) noexcept {
    if (!c.tls) return net::sys::send_iov(c.fd, iov, count);
    const tls::IoResult r = c.tls->write({iov, static_cast<std::size_t>(count)});
    switch (r.status) {
    case tls::Status::ok:
        return static_cast<ssize_t>(r.bytes);
    case tls::Status::want_write:
    case tls::Status::want_read:
        if (r.status == tls::Status::want_read) c.tls_wants_write = false;
        return r.bytes ? static_cast<ssize_t>(r.bytes) : -EAGAIN;
    case tls::Status::closed:
    case tls::Status::error:
        break;
    }
    return -EPIPE;
}

void Worker::on_readable(Connection& c) noexcept {
    if (c.tls) {
        tls_read(c);
        return;
    }
    for (int round = 0; round < 4 && !c.dead && !c.read_paused; ++round) {
        const ssize_t r = net::sys::recv_some(c.fd, rbuf_, read_buffer_bytes);
        if (!took_read(c, rbuf_, read_buffer_bytes, r)) return;
    }
}

// One read's result (bytes at p, or -errno, or 0 = EOF). True if the read filled `cap`: more may wait.
bool Worker::took_read(Connection& c, std::byte* p, std::size_t cap, ssize_t r) noexcept {
    if (r > 0) {
        c.last_rx_ms = now_ms_;
        handle_bytes(c, p, static_cast<std::size_t>(r));
        if (!c.dead) flush_batched(c);
        return static_cast<std::size_t>(r) == cap;  // otherwise drained (level-triggered)
    }
    if (r == -EAGAIN || r == -EWOULDBLOCK) return false;
    if (r == 0 && c.outq && !c.outq->empty() && c.state == ConnState::lingering) {
        // The peer half-closed; our close reply is still queued: finish sending it first.
        c.peer_eof = true;
        c.read_paused = true;
        update_events(c);
        return false;
    }
    close_now(c);  // EOF (abnormal closure if no close handshake happened) or a socket error
    return false;
}

// An event for a plain connection while batching: the write side now, the read joins the turn's read
// group (one io_uring_enter for the whole group, see run_reads()).
void Worker::on_event_batched(Connection& c, std::uint32_t events) noexcept {
    if (events & EPOLLOUT) on_writable(c);
    if (c.dead || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c.read_paused) return;
    reads_.push_back({&c, c.generation, 0});
    if (reads_.size() == read_group) run_reads();
}

std::byte* Worker::read_slice(std::size_t i) noexcept {
    return read_arena_.get() + read_padding_bytes + i * (read_slice_bytes + read_padding_bytes);
}

// Reads every connection of the group into its own slice with one system call (together with any
// batched sends), then handles them in order. Connections closed since they joined are not read.
void Worker::run_reads() noexcept {
    if (reads_.empty()) return;
    if (ring_.prepared() + reads_.size() > ring_.capacity()) submit_batch();
    if (!ring_.ok()) {  // retired in between: read the plain way
        for (PendingRead& pr : reads_)
            if (!pr.c->dead && pr.c->generation == pr.generation && !pr.c->read_paused) on_readable(*pr.c);
        reads_.clear();
        return;
    }
    for (std::size_t i = 0; i < reads_.size(); ++i) {
        PendingRead& pr = reads_[i];
        pr.res = -EIO;
        if (pr.c->dead || pr.c->generation != pr.generation) continue;
        ring_.recv(pr.c->fd, read_slice(i), read_slice_bytes, read_tag | i);
    }
    run_ring();
    for (std::size_t i = 0; i < reads_.size(); ++i) {
        PendingRead& pr = reads_[i];
        Connection& c = *pr.c;
        if (c.dead || c.generation != pr.generation) continue;
        if (took_read(c, read_slice(i), read_slice_bytes, pr.res) && !c.dead) on_readable(c);  // more waiting
    }
    reads_.clear();
}

void Worker::on_writable(Connection& c) noexcept { flush_queue(c); }

void Worker::handle_bytes(Connection& c, std::byte* p, std::size_t n) noexcept {
    switch (c.state) {
    case ConnState::http:
        handle_http(c, p, n);
        break;
    case ConnState::websocket:
        handle_ws(c, p, n);
        break;
    case ConnState::closing: {
        DiscardHandler h{*this, c};
        const ws::ParserLimits lim{cfg_.max_message_bytes, static_cast<std::uint8_t>(c.dfl ? 0x4 : 0)};
        const ws::ParseOutcome o = ws::parse_frames(c.parser, p, n, lim, pool_, h);
        if (o.result == ws::ParseResult::failed || o.result == ws::ParseResult::no_memory) linger(c);
        break;
    }
    case ConnState::lingering:
    case ConnState::free:
        break;  // input after the close handshake is discarded
    }
}

void Worker::handle_http(Connection& c, std::byte* p, std::size_t n) noexcept {
    std::byte* data = p;
    std::size_t len = n;
    if (c.head) {
        if (!c.head->append(p, n)) {
            close_now(c);
            return;
        }
        data = c.head->data();
        len = c.head->size();
    }
    std::size_t off = 0;
    while (off < len && c.state == ConnState::http && !c.dead && !(c.rooms && c.rooms->waiting())) {
        std::size_t consumed = 0;
        if (!handle_request(c, data + off, len - off, consumed)) break;
        off += consumed;
    }
    if (c.state == ConnState::http && !c.dead) {
        if (off == len) {
            pool_.release(c.head);
            c.head = nullptr;
        } else if (c.head) {
            c.head->consume(off);
        } else if (!(c.head = pool_.acquire()) || !c.head->append(data + off, len - off)) {
            close_now(c);
        }
        return;
    }
    // Upgraded: the bytes after the request head are the first frames.
    if (c.state == ConnState::websocket && off < len) handle_ws(c, data + off, len - off);
    pool_.release(c.head);
    c.head = nullptr;
}

// One request. Returns false if the head is not complete yet; else `consumed` = its size.
bool Worker::handle_request(Connection& c, std::byte* p, std::size_t n, std::size_t& consumed) noexcept {
    http::Request req;
    http::ParseError perr = http::ParseError::none;
    const std::string_view text(reinterpret_cast<const char*>(p), n);
    const http::ParseStatus st = http::parse_request(text, cfg_.max_header_bytes, req, perr);
    if (st == http::ParseStatus::need_more) return false;
    req_base_ = p;
    consumed = n;
    c.keep_alive = false;
    if (st == http::ParseStatus::failed) {
        out_http(c, http::http_status(perr), "", "text/plain", std::string(http::describe(perr)) + "\n");
        linger(c);
        return true;
    }
    consumed = req.head_bytes;
    // Keep-alive for plain requests: HTTP/1.1 unless "Connection: close". Only POST /publish reads a
    // body; any other request that announces one ends the connection after the answer.
    const bool has_body = req.has_header("transfer-encoding") ||
                          (req.has_header("content-length") && req.header("content-length") != "0");
    c.keep_alive = req.version_minor == 1 ? !req.has_token("connection", "close")
                                          : req.has_token("connection", "keep-alive");

    const bool post_publish = req.method == "POST" && req.path.starts_with("/publish/");
    if (has_body && !post_publish) c.keep_alive = false;

    if (req.path == "/health") {
        if (req.method != "GET" && req.method != "HEAD") {
            c.keep_alive = false;
            out_http(c, 405, "Allow: GET, HEAD\r\n", "text/plain", "method not allowed\n");
        } else {
            std::string body = health_json(shared_, now_ms_);
            out_http(c, 200, "Cache-Control: no-store\r\n", "application/json",
                     req.method == "HEAD" ? std::string_view{} : std::string_view(body));
        }
    } else if (req.path == "/metrics") {
        if (req.method != "GET") {
            c.keep_alive = false;
            out_http(c, 405, "Allow: GET\r\n", "text/plain", "method not allowed\n");
        } else {
            const std::string body = metrics_text();
            out_http(c, 200, "Cache-Control: no-store\r\n", "text/plain; version=0.0.4", body);
        }
    } else if (req.path == "/") {
        if (req.method != "GET") {
            c.keep_alive = false;
            out_http(c, 405, "Allow: GET\r\n", "text/plain", "method not allowed\n");
        } else {
            out_http(c, 200, "", "text/html; charset=utf-8", demo_page());
        }
    } else if (req.path == "/echo") {
        if (req.method != "GET") {
            c.keep_alive = false;
            out_http(c, 405, "Allow: GET\r\n", "text/plain", "method not allowed: /echo is a WebSocket (GET + Upgrade)\n");
        } else if (!http::wants_websocket(req)) {
            out_http(c, 426, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", "text/plain",
                     "426 upgrade required: /echo is a WebSocket endpoint\n");
        } else if (upgrade(c, req, Route::echo)) {
            return true;
        }
    } else if (req.path == "/ws" || req.path.starts_with("/ws/") || req.path.starts_with("/publish/")) {
        if (!route_rooms(c, req, n, consumed)) return false;  // a POST body still arriving
        if (c.dead || c.state != ConnState::http) return true;  // upgraded, or failed and lingering
        if (c.rooms && c.rooms->waiting()) return true;  // answered when the room's owner replies
    } else {
        out_http(c, 404, "", "text/plain", "not found\n");
    }
    finish_response(c);
    if (!c.keep_alive) consumed = n;
    return true;
}

// After a plain response: close, or wait for the next request on this keep-alive connection.
void Worker::finish_response(Connection& c) noexcept {
    if (c.dead) return;
    if (!c.keep_alive) {
        linger(c);
        return;
    }
    wheel_.schedule(c.timer, now_ms_ + cfg_.handshake_timeout_ms);  // the next request's deadline
}

// Validates the upgrade (RFC 6455 §4.2.1, Origin) and writes the 101. False: an error answer was
// written instead (the connection will close).
// With deferred_101 the response is kept there (without its final CRLF) and the connection stays in
// the http state until complete_upgrade().
bool Worker::upgrade(Connection& c, const http::Request& req, Route route, std::string* deferred_101) noexcept {
    std::string_view key;
    const http::HandshakeError herr = http::validate_upgrade(req, key);
    if (herr != http::HandshakeError::none) {
        c.keep_alive = false;
        const int status = http::http_status(herr);
        out_http(c, status, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : (status == 405 ? "Allow: GET\r\n" : ""),
                 "text/plain", std::string(http::describe(herr)) + "\n");
        return false;
    }
    if (!cfg_.allowed_origins.empty() && req.has_header("origin") &&
        (req.header_count_of("origin") != 1 || !http::origin_allowed(req.header("origin"), cfg_.allowed_origins))) {
        // §10.2: a browser's Origin the server does not accept gets 403. Clients that send no Origin
        // (not browsers) are not subject to it.
        c.keep_alive = false;
        out_http(c, 403, "", "text/plain", "origin not allowed (--allowed-origins)\n");
        return false;
    }
    const std::string_view proto = http::select_subprotocol(req, cfg_.subprotocols);
    // permessage-deflate (RFC 7692 §5): the first acceptable offer across every extensions header.
    std::string_view offers[ws::max_extension_offers];
    std::size_t offer_count = 0;
    for (std::uint16_t i = 0; i < req.header_count && offer_count < ws::max_extension_offers; ++i)
        if (http::iequals(req.headers[i].name, "sec-websocket-extensions")) offers[offer_count++] = req.headers[i].value;
    ws::DeflateParams dparams;
    char ext_value[ws::max_deflate_response_bytes];
    std::string_view ext;
    const bool deflate = offer_count && ws::negotiate_deflate({offers, offer_count}, dpool_->config(), dparams);
    if (deflate) ext = {ext_value, ws::write_deflate_response(dparams, ext_value)};
    char resp[http::max_101_bytes + 256 + ws::max_deflate_response_bytes];
    const std::size_t m = http::write_101(resp, sizeof resp, key, proto, ext);
    if (m == 0) {
        c.keep_alive = false;
        out_http(c, 400, "", "text/plain", "subprotocol too long\n");
        return false;
    }
    if (deflate && !(c.dfl = new (std::nothrow) ws::DeflateSession(dparams))) {
        close_now(c);
        return true;
    }
    if (deferred_101) {
        deferred_101->assign(resp, m - 2);
        c.route = route;
        return true;
    }
    out_copy(c, resp, m);
    complete_upgrade(c, route);
    return true;
}

void Worker::complete_upgrade(Connection& c, Route route) noexcept {
    c.state = ConnState::websocket;
    c.route = route;
    c.counted_ws = true;
    ws_count_.fetch_add(1, std::memory_order_relaxed);
    c.last_rx_ms = c.last_ping_ms = now_ms_;
    arm_ws_timer(c);
}

void Worker::handle_ws(Connection& c, std::byte* p, std::size_t n) noexcept {
    EchoHandler h{*this, c};
    const ws::ParserLimits lim{cfg_.max_message_bytes, static_cast<std::uint8_t>(c.dfl ? 0x4 : 0)};
    frames_before_ = c.parser.frames;
    const ws::ParseOutcome o = ws::parse_frames(c.parser, p, n, lim, pool_, h);
    if (!rate_ok(c)) return;
    switch (o.result) {
    case ws::ParseResult::ok:
    case ws::ParseResult::stopped:
        break;
    case ws::ParseResult::failed:
        stats_.protocol_errors.add(1);
        fail_ws(c, ws::close_code(o.error), ws::describe(o.error));
        break;
    case ws::ParseResult::no_memory:
        fail_ws(c, 1011, "out of memory");
        break;
    }
}

void Worker::on_timer(Connection& c) noexcept {
    switch (c.state) {
    case ConnState::http:
        close_now(c);  // the request did not arrive within --handshake-timeout
        return;
    case ConnState::websocket: {
        if (cfg_.idle_timeout_ms && now_ms_ >= c.last_rx_ms + cfg_.idle_timeout_ms) {
            start_close(c, 1001, "idle timeout", linger_ms);
            return;
        }
        if (cfg_.ping_interval_ms) {
            const std::uint64_t since = c.last_rx_ms > c.last_ping_ms ? c.last_rx_ms : c.last_ping_ms;
            if (now_ms_ >= since + cfg_.ping_interval_ms) {
                out_frame(c, static_cast<std::uint8_t>(ws::Opcode::ping), nullptr, 0);
                c.last_ping_ms = now_ms_;
                flush(c);
                if (c.dead) return;
            }
        }
        arm_ws_timer(c);
        return;
    }
    case ConnState::closing:  // no close reply within the wait
    case ConnState::lingering:
    case ConnState::free:
        close_now(c);
        return;
    }
}

void Worker::arm_ws_timer(Connection& c) noexcept {
    std::uint64_t due = never;
    if (cfg_.idle_timeout_ms) due = c.last_rx_ms + cfg_.idle_timeout_ms;
    if (cfg_.ping_interval_ms) {
        const std::uint64_t since = c.last_rx_ms > c.last_ping_ms ? c.last_rx_ms : c.last_ping_ms;
        if (since + cfg_.ping_interval_ms < due) due = since + cfg_.ping_interval_ms;
    }
    if (due == never) wheel_.cancel(c.timer);
    else wheel_.schedule(c.timer, due);
}

// A peer that does not read gets no pile of pongs: while its backlog is non-empty only the latest
// ping is remembered (§5.5.3 allows answering only the most recent one) and answered once it drains.
void Worker::answer_ping(Connection& c, std::span<const std::byte> payload) noexcept {
    if (!c.outq || c.outq->empty()) {
        out_frame(c, static_cast<std::uint8_t>(ws::Opcode::pong), payload.data(), payload.size());
        return;
    }
    if (!c.pending_pong && !(c.pending_pong = pool_.acquire())) return;
    c.pending_pong->clear();
    c.pending_pong->append(payload.data(), payload.size());
}

// Frames per one-second window (data fragments and control frames alike, so floods of empty
// fragments or pings count as much as messages).
// Checked per message and control frame and once more after each read (for fragments). On excess the
// connection is failed with 1008 and false is returned.
bool Worker::rate_ok(Connection& c) noexcept {
    if (!cfg_.max_messages_per_second || c.dead || c.state != ConnState::websocket) return true;
    const auto now_s = static_cast<std::uint32_t>((now_ms_ - shared_.start_ms) / 1000);
    if (now_s != c.rate_window_s) {  // a new window starts with this read
        c.rate_window_s = now_s;
        c.rate_frames = frames_before_;
    }
    if (c.parser.frames - c.rate_frames <= cfg_.max_messages_per_second) return true;
    fail_ws(c, 1008, "message rate over --max-messages-per-second");
    return false;
}

// ---- output ----

void Worker::out_copy(Connection& c, const void* p, std::size_t n) noexcept {
    if (out_owner_ && out_owner_ != &c) flush(*out_owner_);
    out_owner_ = &c;
    if (scratch_used_ + n > scratch_bytes || iov_count_ == max_iov) flush(c);
    if (n > scratch_bytes) {  // larger than the whole staging area: send it from where it is
        out_ref(c, p, n);
        return;
    }
    out_owner_ = &c;
    std::byte* dst = scratch_.get() + scratch_used_;
    std::memcpy(dst, p, n);
    if (iov_count_ > 0 && static_cast<std::byte*>(iov_[iov_count_ - 1].iov_base) + iov_[iov_count_ - 1].iov_len == dst) {
        iov_[iov_count_ - 1].iov_len += n;
    } else {
        iov_[iov_count_++] = {dst, n};
    }
    scratch_used_ += n;
    out_bytes_ += n;
}

// Sends p[0..n) together with what is staged, before returning: the caller's memory may go away after.
void Worker::out_ref(Connection& c, const void* p, std::size_t n) noexcept {
    if (out_owner_ && out_owner_ != &c) flush(*out_owner_);
    out_owner_ = &c;
    if (iov_count_ == max_iov) flush(c);
    out_owner_ = &c;
    iov_[iov_count_++] = {const_cast<void*>(p), n};
    out_bytes_ += n;
    // A payload in the read buffer stays put until the read is handled (took_read/tls_read flush before
    // the next read), so the replies of one read go out in one sendmsg; anything else may be reused at once.
    if (!in_read_buffers(p)) flush(c);
}

void Worker::out_frame(Connection& c, std::uint8_t opcode, const std::byte* p, std::size_t n) noexcept {
    std::byte hdr[ws::max_server_header_bytes];
    const std::size_t h = ws::encode_header(hdr, static_cast<ws::Opcode>(opcode), n);
    if (n < copy_threshold_bytes) {
        if (scratch_used_ + h + n > scratch_bytes) flush(out_owner_ ? *out_owner_ : c);  // keep header and payload together
        out_copy(c, hdr, h);
        if (n) out_copy(c, p, n);
    } else {
        out_copy(c, hdr, h);
        out_ref(c, p, n);
    }
}

void Worker::out_close_frame(Connection& c, std::uint16_t code, std::string_view reason) noexcept {
    std::byte payload[ws::max_control_payload];
    ws::store_be16(payload, code);
    const std::size_t rlen = reason.size() > ws::max_control_payload - 2 ? ws::max_control_payload - 2 : reason.size();
    if (rlen) std::memcpy(payload + 2, reason.data(), rlen);
    out_frame(c, static_cast<std::uint8_t>(ws::Opcode::close), payload, 2 + rlen);
}

void Worker::out_http(Connection& c, int status, std::string_view extra_headers, std::string_view content_type,
                      std::string_view body) noexcept {
    char head[1024];
    const int m = std::snprintf(head, sizeof head,
                                "HTTP/1.1 %d %s\r\nServer: roomcast\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n%s%.*s\r\n",
                                status, reason_phrase(status), static_cast<int>(content_type.size()), content_type.data(),
                                body.size(), c.keep_alive ? "" : "Connection: close\r\n",
                                static_cast<int>(extra_headers.size()), extra_headers.data());
    if (m <= 0 || static_cast<std::size_t>(m) >= sizeof head) return;
    out_copy(c, head, static_cast<std::size_t>(m));
    if (!body.empty()) out_copy(c, body.data(), body.size());
}

OutQueue* Worker::queue_of(Connection& c) noexcept {
    if (c.outq) return c.outq;
    if (!free_queues_.empty()) {
        c.outq = free_queues_.back();
        free_queues_.pop_back();
    } else {
        c.outq = new (std::nothrow) OutQueue();
    }
    return c.outq;
}

void Worker::drop_queue(Connection& c) noexcept {
    if (!c.outq) return;
    c.outq->clear(pool_, frames_);
    if (free_queues_.size() < 1024) free_queues_.push_back(c.outq);
    else delete c.outq;
    c.outq = nullptr;
}

void Worker::flush(Connection& c) noexcept {
    if (iov_count_ == 0) {
        out_owner_ = nullptr;
        submit_batch();  // frees the staging area for whoever asked (out_copy/out_frame making room)
        return;
    }
    // Batched sends may point into the staging area this resets, and one of them may be c's: they go
    // first (the staged bytes of c stay where they are until then).
    if (!batch_.empty()) submit_batch();
    const int count = iov_count_;
    const std::size_t total = out_bytes_;
    iov_count_ = 0;
    scratch_used_ = 0;
    out_bytes_ = 0;
    out_owner_ = nullptr;
    if (c.dead) return;
    const bool queued = c.outq && !c.outq->empty();
    ssize_t r = 0;
    if (!queued) r = send_out(c, iov_, count);
    after_send(c, iov_, count, total, r, queued);
}

// What follows a write of staged bytes (r: the send's result; `queued`: there was an older backlog, so
// nothing was sent and everything joins it).
void Worker::after_send(Connection& c, const iovec* iov, int count, std::size_t total, ssize_t r, bool queued) noexcept {
    if (c.dead) return;
    std::size_t sent = 0;
    if (!queued) {
        if (r < 0 && r != -EAGAIN && r != -EWOULDBLOCK) {
            close_now(c);  // EPIPE / ECONNRESET: the peer is gone
            return;
        }
        sent = r > 0 ? static_cast<std::size_t>(r) : 0;
        if (sent == total) {
            if (c.close_when_sent) {
                // MSG_MORE held the frame back for the FIN. Half-close before the close: a close() that
                // finds unread input (a peer that sent more after its close frame) resets the connection
                // and discards a held-back frame, while shutdown(SHUT_WR) sends frame and FIN at once.
                // (Not through the ring: io_uring runs a shutdown on a worker thread, after the close.)
                ::shutdown(c.fd, SHUT_WR);
                close_now(c);
                return;
            }
            if (c.shutdown_pending && c.state == ConnState::lingering) {
                half_close(c);
                c.shutdown_pending = false;
            }
            return;
        }
    }
    if (c.close_when_sent) {  // the rest of the close frame goes out first, then FIN (close_handshake_done)
        c.close_when_sent = false;
        c.shutdown_pending = true;
        wheel_.schedule(c.timer, now_ms_ + linger_ms);
    }
    // Queue what the kernel did not take, in order (the staged bytes may point into the read buffer).
    OutQueue* q = queue_of(c);
    if (!q) {
        close_now(c);
        return;
    }
    std::size_t skip = sent;
    for (int i = 0; i < count; ++i) {
        const std::size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        if (!q->append_bytes(static_cast<const std::byte*>(iov[i].iov_base) + skip, len - skip, pool_)) {
            close_now(c);
            return;
        }
        skip = 0;
    }
    if (q->bytes() > cfg_.max_backlog_bytes) c.read_paused = true;  // backpressure on our own input
    if (queued) flush_queue(c);  // the older bytes go first; try to drain now
    else update_events(c);
}

// ---- batched sends (io_uring, net/uring.hpp) ----
// The end of a read's handling: c's staged reply joins the turn's batch instead of being sent now, when
// it can (plain socket, no backlog, all of it in the staging area, not already in the batch). The batch
// runs with one system call at the end of the event loop, or earlier when anything needs the order.
void Worker::flush_batched(Connection& c, bool closing) noexcept {
    if (iov_count_ == 0) {
        out_owner_ = nullptr;
        return;
    }
    const bool in_scratch = iov_count_ == 1 && iov_[0].iov_base >= static_cast<void*>(scratch_.get()) &&
                            iov_[0].iov_base < static_cast<void*>(scratch_.get() + scratch_bytes);
    if (!batching_ || c.tls || c.dead || c.send_pending || (c.outq && !c.outq->empty()) ||
        !in_scratch || batch_.size() == batch_entries || ring_.prepared() >= batch_entries ||
        scratch_bytes - scratch_used_ < batch_scratch_reserve) {
        flush(c);
        return;
    }
    BatchedSend b;
    b.c = &c;
    b.data = static_cast<const std::byte*>(iov_[0].iov_base);
    b.len = out_bytes_;
    b.mh = nullptr;
    ring_.send(c.fd, b.data, b.len, batch_.size(), closing);
    batch_.push_back(b);
    c.send_pending = true;
    iov_count_ = 0;  // the bytes stay in the staging area (scratch_used_ unchanged) until the batch ran
    out_bytes_ = 0;
    out_owner_ = nullptr;
}

// A room subscriber's backlog joins the batch (one sendmsg of up to max_iov iovecs). False: not
// batchable now, use flush_queue().
bool Worker::queue_batched(Connection& c) noexcept {
    if (!batching_ || c.tls || c.dead || c.send_pending || !c.outq || c.outq->empty()) return false;
    if (batch_.size() == batch_entries || ring_.prepared() >= batch_entries || biov_used_ + max_iov > batch_iov)
        submit_batch();
    if (!batching_) return false;
    iovec* iov = biov_.get() + biov_used_;
    const int n = c.outq->gather(iov, max_iov);
    biov_used_ += static_cast<std::size_t>(n);
    BatchedSend b;
    b.c = &c;
    b.mh = &bmh_[batch_.size()];
    *b.mh = msghdr{};
    b.mh->msg_iov = iov;
    b.mh->msg_iovlen = static_cast<std::size_t>(n);
    ring_.sendmsg(c.fd, b.mh, batch_.size());
    batch_.push_back(b);
    c.send_pending = true;
    return true;
}

// Runs the batch and finishes every send in it, in the order they were queued.
void Worker::submit_batch() noexcept {
    if (batch_.empty() && ring_.prepared() == 0) return;
    run_ring();
}

// One io_uring_enter for everything prepared (batched sends, and the read group when run_reads() called),
// then the sends are finished; run_reads() handles the reads itself. A connection with a send in the
// batch is never closed before it ran (close_now() runs the batch first), so no send can reach a
// descriptor number that another reactor's accept() has since reused.
void Worker::run_ring() noexcept {
    for (BatchedSend& b : batch_) b.res = -EIO;  // not reported: treated as a failed send (closed)
    stats_.io_batches.add(1);
    stats_.io_batched_ops.add(ring_.prepared());
    ring_.run([this](std::uint64_t tag, int res) {
        const std::size_t i = tag & ~tag_kinds;
        if (tag & read_tag) reads_[i].res = res;
        else if (tag & add_tag) adds_[i].res = res;
        else if (tag & close_tag) closes_[i].ran = true;
        else batch_[i].res = res;
    });
    if (!ring_.ok()) ROOMCAST_LOG(warn, "io_uring failed; this reactor goes back to one syscall per read and write\n");
    batching_ = false;  // what the completions trigger is written directly
    // A close the ring did not report was not taken (the ring retired): close it the plain way.
    for (const PendingClose& pc : closes_)
        if (!pc.ran) net::sys::close_fd(pc.fd);
    closes_.clear();
    // Registrations first: a connection whose ADD failed is closed before anything else looks at it.
    for (PendingAdd& a : adds_) {
        Connection& c = *a.c;
        if (c.generation != a.generation || c.dead) continue;
        c.epoll_add_pending = false;
        if (a.res < 0) close_now(c);
    }
    adds_.clear();
    for (BatchedSend& b : batch_) {
        Connection& c = *b.c;
        c.send_pending = false;
        if (c.dead) continue;
        if (b.mh) {
            after_queue_write(c, b.res);
        } else {
            const iovec iov{const_cast<std::byte*>(b.data), b.len};
            after_send(c, &iov, 1, b.len, b.res, false);
        }
    }
    batch_.clear();
    biov_used_ = 0;
    if (iov_count_ == 0) scratch_used_ = 0;
    batching_ = ring_.ok();
}

// Writes the queue (shared room frames and owned bytes) with one sendmsg per call.
void Worker::flush_queue(Connection& c) noexcept {
    if (c.dead) return;
    if (c.send_pending) submit_batch();  // c's batched bytes come before its backlog
    if (c.dead) return;
    ssize_t r = 0;
    if (c.outq && !c.outq->empty()) {
        const int n = c.outq->gather(iov_, max_iov);
        r = send_out(c, iov_, n);
    }
    after_queue_write(c, r);
}

// What follows a write from the backlog (r: the send's result, 0 if nothing was written).
void Worker::after_queue_write(Connection& c, ssize_t r) noexcept {
    if (c.dead) return;
    if (r < 0 && r != -EAGAIN && r != -EWOULDBLOCK) {
        close_now(c);
        return;
    }
    if (r > 0 && c.outq) c.outq->consume(static_cast<std::size_t>(r), pool_, frames_);
    if (c.outq && c.outq->empty()) {
        drop_queue(c);  // idle connections hold no buffers
        c.conflating = false;  // caught up
        if (c.pending_pong) {
            util::ByteBuffer* pong = c.pending_pong;
            c.pending_pong = nullptr;
            if (c.state == ConnState::websocket)
                out_frame(c, static_cast<std::uint8_t>(ws::Opcode::pong), pong->data(), pong->size());
            pool_.release(pong);
            flush(c);
            if (c.dead || (c.outq && !c.outq->empty())) return;
        }
        if (c.state == ConnState::lingering) {
            if (c.peer_eof) {
                close_now(c);
                return;
            }
            if (c.shutdown_pending) {
                half_close(c);
                c.shutdown_pending = false;
            }
        }
    }
    if (c.read_paused && !c.peer_eof && !(c.rooms && c.rooms->awaiting_publish) &&
        (!c.outq || c.outq->bytes() <= cfg_.max_backlog_bytes / 2)) {
        c.read_paused = false;
        if (c.tls && c.tls->has_buffered_input()) {  // no EPOLLIN will announce what OpenSSL holds
            update_events(c);
            tls_read(c);
            return;
        }
    }
    update_events(c);
}

void Worker::update_events(Connection& c) noexcept {
    if (c.dead) return;
    const std::uint8_t want = static_cast<std::uint8_t>((c.read_paused ? 0 : ev_in) |
                                                        ((c.outq && !c.outq->empty()) || c.tls_wants_write ? ev_out : 0));
    if (want == c.epoll_events) return;
    if (c.epoll_add_pending) {  // a MOD before the ring's ADD would fail: register first
        if (batching_) submit_batch();
        if (c.dead) return;
    }
    const std::uint32_t events = ((want & ev_in) ? EPOLLIN : 0u) | ((want & ev_out) ? EPOLLOUT : 0u);
    if (net::sys::epoll_set(epfd_.get(), EPOLL_CTL_MOD, c.fd, events, epoll_key(c.index, c.generation)) < 0) {
        close_now(c);
        return;
    }
    c.epoll_events = want;
}

// ---- closing ----

// FIN after our last bytes (TLS: close_notify first, RFC 8446 §6.1).
void Worker::half_close(Connection& c) noexcept {
    if (c.tls && c.tls->handshake_done()) c.tls->shutdown();
    ::shutdown(c.fd, SHUT_WR);
}

void Worker::fail_ws(Connection& c, std::uint16_t code, std::string_view reason) noexcept {
    // §7.1.7: _Fail the WebSocket Connection_: send a close frame, then close; no further frames parsed.
    out_close_frame(c, code, reason);
    linger(c);
}

void Worker::start_close(Connection& c, std::uint16_t code, std::string_view reason, std::uint32_t wait_ms) noexcept {
    out_close_frame(c, code, reason);
    flush(c);
    if (c.dead) return;
    c.state = ConnState::closing;
    wheel_.schedule(c.timer, now_ms_ + wait_ms);
}

// Both close frames have been exchanged (the peer's arrived; ours is staged or already sent). On a plain
// socket whose bytes are all with the kernel, the server closes the TCP connection first (§7.1.1): the
// kernel still delivers the close frame, then FIN. A peer should send nothing after its close frame
// (§5.5.1); if it does, the unread input turns close() into a reset, so the frame must have left by then
// (after_send() half-closes before closing a frame held back with MSG_MORE). With a backlog (or TLS,
// whose close_notify goes first) the lingering path below waits for the bytes to leave.
void Worker::close_handshake_done(Connection& c) noexcept {
    if (c.dead) return;
    if (c.tls) {
        linger(c);
        return;
    }
    c.state = ConnState::lingering;
    // The close frame joins the turn's batch when it can (else it is sent now), with MSG_MORE: the
    // shutdown() that follows once the kernel took all of it puts the FIN in the same segment (one packet
    // less per connection; if the frame is not all taken, the rest is written without MSG_MORE, which
    // pushes everything).
    flush_batched(c, true);
    if (c.dead) return;
    if (c.send_pending) {
        c.close_when_sent = true;  // run_ring() closes it once the kernel took the whole frame
        return;
    }
    if (!c.outq || c.outq->empty()) {
        close_now(c);
        return;
    }
    c.shutdown_pending = true;  // FIN once the backlog is out
    wheel_.schedule(c.timer, now_ms_ + linger_ms);
}

// The close handshake is over (or the connection failed): flush, send FIN, discard input until the
// peer's EOF or the linger timer. Half-closing first keeps the peer from seeing a reset that could
// destroy our last bytes (the close frame) before it reads them.
void Worker::linger(Connection& c) noexcept {
    if (c.dead) return;
    c.state = ConnState::lingering;
    c.shutdown_pending = true;
    flush(c);
    if (c.dead) return;
    if (!c.outq || c.outq->empty()) {
        half_close(c);
        c.shutdown_pending = false;
    }
    wheel_.schedule(c.timer, now_ms_ + linger_ms);
}

void Worker::close_now(Connection& c) noexcept {
    if (c.dead || c.state == ConnState::free) return;
    if (out_owner_ == &c) {  // drop anything staged for it
        iov_count_ = 0;
        scratch_used_ = 0;
        out_bytes_ = 0;
        out_owner_ = nullptr;
    }
    c.dead = true;
    delete c.tls;  // no close_notify on an abrupt close
    c.tls = nullptr;
    close_fd(c);  // also removes it from the epoll set
    c.fd = -1;
    wheel_.cancel(c.timer);
    c.parser.release(pool_);
    pool_.release(c.head);
    c.head = nullptr;
    drop_queue(c);
    release_rooms(c);
    if (c.dfl) {
        c.dfl->release(*dpool_);
        delete c.dfl;
        c.dfl = nullptr;
    }
    if (c.counted_ws) {
        ws_count_.fetch_sub(1, std::memory_order_relaxed);
        c.counted_ws = false;
    }
    pool_.release(c.pending_pong);
    c.pending_pong = nullptr;
    if (c.counted_ip) {
        shared_.ip_limiter->release(c.peer_ip);
        c.counted_ip = false;
    }
    if (c.counted_open) {
        shared_.open_connections.fetch_sub(1, std::memory_order_relaxed);
        c.counted_open = false;
    }
    conn_count_.fetch_sub(1, std::memory_order_relaxed);
    closed_.push_back(&c);
}

// The close(2) of c's descriptor, in the ring when it has room: it runs with the turn's other
// operations, after any send of c already there (operations run in order; a send never waits, see
// net/uring.hpp). Until then the number stays ours, so no send of ours can reach a descriptor another
// reactor's accept() got. Without room in the ring: a pending send of c runs first, then close().
void Worker::close_fd(Connection& c) noexcept {
    if (ring_.ok() && !ring_.full() && closes_.size() < closes_.capacity()) {
        closes_.push_back({c.fd, false});
        ring_.close(c.fd, close_tag | (closes_.size() - 1));
        return;
    }
    if (c.send_pending && batching_) submit_batch();  // (inside run_ring() the sends have already run)
    net::sys::close_fd(c.fd);
}

void Worker::reap() noexcept {
    for (Connection* c : closed_) {
        c->state = ConnState::free;
        c->dead = false;
        ++c->generation;
        c->next_free = free_head_;
        free_head_ = c->index;
        --live_;
    }
    closed_.clear();
}

}  // namespace roomcast::server
