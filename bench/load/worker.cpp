// The load generator's event loop. Costs per message are kept low so one client core can drive a fast
// server: level-triggered EPOLLIN with one recv(2) into a 256 KiB per-worker buffer per event (a short read
// means drained, so no extra EAGAIN call), one clock read per recv batch, frames parsed in place without
// copying payloads, and echo frames sent straight from a precomputed buffer of identical masked frames
// (D+1 copies, so any run of up to D frames starting at any offset is one contiguous send(2)).
//
// TLS (--tls): one SSL per connection directly over the socket (SSL_set_fd), non-blocking, handshake driven
// by the same epoll events (WANT_READ/WANT_WRITE pick the interest set). read_ahead is on, so one SSL_read
// pulls a whole socket read into OpenSSL's buffer; records are then drained while SSL_has_pending(). Writes
// are whole-buffer SSL_write calls (not partial-write mode): one call per flush, and a call that hit
// WANT_WRITE is retried with the same bytes (possibly more of them), as OpenSSL requires.
//
// permessage-deflate (--deflate): received RSV1 payloads are gathered per connection and inflated in one
// call at message end (a worker-wide inflater, reset per message, when the server agreed to
// server_no_context_takeover; otherwise one per connection). Echo frames are compressed once per worker
// (identical payloads, no context takeover); publishers compress each message (it carries its own
// timestamp and sequence).
#include "worker.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <liburing.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "wire.hpp"

namespace roomcast::bench {

std::uint64_t now_ns() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

namespace {

constexpr std::size_t read_buffer_bytes = 256 * 1024;
// --io-uring on: reads batched per wakeup, each connection into its own slice (a full slice means more may
// be waiting: level-triggered epoll reports the socket again).
constexpr unsigned read_group = 64;
constexpr std::size_t read_slice_bytes = read_buffer_bytes;  // as much as one plain recv() takes
constexpr int max_events = 512;
constexpr std::uint64_t connect_timeout_ns = 10'000'000'000ull;  // connect + handshake + close, per attempt
constexpr std::uint64_t idle_poll_ns = 5'000'000;               // how soon a worker notices a phase change
constexpr std::uint64_t cross_thread_poll_ns = 100'000;         // window blocked on another worker's acks
constexpr unsigned max_publish_batch = 256;                      // messages per publisher per loop turn
constexpr std::uint64_t seq_bits = 48;                           // sequence field: publisher << 48 | seq
constexpr std::uint64_t seq_mask = (1ull << seq_bits) - 1;
constexpr std::uint16_t close_normal = 1000;

enum class Role : std::uint8_t { echo, probe, subscriber, publisher };
enum class State : std::uint8_t { unused, connecting, tls, handshaking, open, closing, dead };

struct InflaterDeleter {
    void operator()(z_stream* z) const noexcept {
        inflateEnd(z);
        delete z;
    }
};
using InflaterPtr = std::unique_ptr<z_stream, InflaterDeleter>;

struct Conn {
    int fd = -1;
    std::uint32_t gen = 0;
    Role role = Role::echo;
    State state = State::unused;
    bool want_out = false;  // EPOLLOUT registered
    bool send_queued = false;  // --io-uring: an echo send of this connection is in the current batch
    bool got_close = false;
    std::uint8_t attempts = 0;
    std::uint32_t publisher = 0;  // global publisher index (publisher role)
    std::uint64_t started_ns = 0;

    // handshake
    std::size_t request_sent = 0;
    std::string response;

    // frame parser (server frames are never masked)
    std::uint8_t hdr[max_frame_header_bytes];
    std::uint8_t hdr_len = 0;
    std::uint8_t frame_op = 0;
    bool frame_fin = false;
    bool in_payload = false;
    std::uint8_t msg_op = 0;
    std::uint8_t first_byte = 0;
    std::uint8_t last_byte = 0;
    std::uint8_t ctl_len = 0;
    std::uint64_t payload_left = 0;
    std::uint64_t msg_len = 0;
    std::uint8_t cap[max_header_bytes];
    std::uint8_t ctl[125];

    // TLS / deflate
    SSL* ssl = nullptr;
    bool echo_blocked = false;  // TLS: an echo SSL_write returned WANT_WRITE; retry it before anything else
    bool deflate = false;       // permessage-deflate agreed
    bool msg_z = false;         // the message being received is compressed (RSV1 on its first frame)
    bool msg_skip = false;      // --inflate-sample: this compressed message is not inflated
    std::uint32_t zcount = 0;   // compressed messages received (sampling)
    std::vector<std::uint8_t> zmsg;  // its compressed payload so far
    InflaterPtr zin;            // per-connection inflater (only when the server keeps its context)

    // echo / raw: identical frames owed from the shared send buffer
    std::uint64_t owed = 0;
    std::uint64_t sent_total = 0;
    std::uint64_t raw_pos = 0;  // raw-tcp: bytes into the current echoed frame
    std::unique_ptr<std::uint64_t[]> ring;  // send timestamps of the frames in flight
    std::uint32_t ring_head = 0;
    std::uint32_t ring_count = 0;
    std::uint32_t refill = 0;

    // other frames (publisher messages, pong, close)
    std::vector<std::uint8_t> out;
    std::size_t out_off = 0;

    // subscriber: next expected sequence per publisher
    std::unique_ptr<std::uint64_t[]> expected;
    // publisher
    std::uint64_t next_seq = 1;
    std::uint64_t oldest_seq = 1;
    std::uint64_t next_due_ns = 0;
};

class Worker {
public:
    Worker(Shared& shared, unsigned index, unsigned count, LiveCounters& live, WorkerResult& result)
        : sh_(shared), opt_(*shared.opt), index_(index), count_(count), live_(live), res_(result) {}

    void run();

private:
    // set-up
    void plan_connections();
    bool start_connect(std::uint32_t slot, std::uint64_t now);
    void start_more(std::uint64_t now);
    void on_opened(Conn& c, std::uint64_t now);
    void finish(Conn& c, bool count_failure_as_setup);

    // events
    void on_event(std::uint32_t slot, std::uint32_t events, std::uint64_t now);
    void on_writable_connecting(Conn& c, std::uint32_t slot, std::uint64_t now);
    void send_request(Conn& c, std::uint32_t slot);
    void start_tls(Conn& c, std::uint32_t slot, std::uint64_t now);
    void tls_step(Conn& c, std::uint32_t slot, std::uint64_t now);
    void on_readable(Conn& c, std::uint32_t slot, std::uint64_t now);
    bool took_read(Conn& c, std::uint32_t slot, ssize_t n, const std::uint8_t* p, std::uint64_t now);
    void after_reads(Conn& c, std::uint32_t slot, std::uint64_t now);
    bool batchable(const Conn& c, std::uint32_t events) const noexcept;
    void run_reads(std::uint64_t now);
    void run_sends();
    template <class Done>
    bool run_ring(unsigned want, Done&& done);
    bool consume(Conn& c, std::uint32_t slot, const std::uint8_t* p, std::size_t len, std::uint64_t now);
    bool setup_deflate(Conn& c, const DeflateAgreement& a);
    bool inflate_message(Conn& c);
    std::size_t compress(z_stream& d, const std::uint8_t* in, std::size_t n, std::vector<std::uint8_t>& out);
    void stamp(std::uint8_t* pay, std::uint64_t now, std::uint64_t seqword) const noexcept;
    ssize_t io_send(Conn& c, const std::uint8_t* p, std::size_t n);
    ssize_t io_recv(Conn& c, std::uint8_t* p, std::size_t n);
    void feed(Conn& c, const std::uint8_t* p, std::size_t n, std::uint64_t now);
    void feed_raw(Conn& c, const std::uint8_t* p, std::size_t n, std::uint64_t now);
    void on_frame_end(Conn& c, std::uint64_t now);
    void on_message(Conn& c, std::uint64_t now);
    void on_control(Conn& c, std::uint64_t now);
    void on_eof(Conn& c, std::uint32_t slot, std::uint64_t now);

    // sending
    bool flush(Conn& c, std::uint32_t slot);
    void set_want_out(Conn& c, std::uint32_t slot, bool want);
    void queue_echo(Conn& c, std::uint32_t frames, std::uint64_t now);
    void queue_control(Conn& c, Opcode op, const std::uint8_t* payload, std::size_t len);
    void tick_publishers(std::uint64_t now);

    // lifecycle
    void close_conn(Conn& c, bool reset);
    void fail(Conn& c, std::uint64_t& counter);
    void on_phase(Phase p, std::uint64_t now);
    void check_timeouts(std::uint64_t now);
    std::uint64_t next_wait_ns(std::uint64_t now) const;
    bool measuring() const noexcept { return phase_ == Phase::measure; }

    Shared& sh_;
    const Options& opt_;
    unsigned index_;
    unsigned count_;
    LiveCounters& live_;
    WorkerResult& res_;

    int epfd_ = -1;
    Phase phase_ = Phase::setup;
    std::vector<Conn> conns_;
    std::vector<std::uint32_t> publishers_;  // slots holding publishers
    std::unique_ptr<std::uint8_t[]> rbuf_;
    // --io-uring: the ring, the read slices, and this wakeup's batched reads and echo sends
    io_uring ring_{};
    bool ring_ok_ = false;
    std::unique_ptr<std::uint8_t[]> arena_;
    struct Pending {  // one batched operation: its connection (slot and generation) and its result
        std::uint32_t slot;
        std::uint32_t gen;
        int res;
    };
    std::vector<Pending> reads_;
    std::vector<Pending> sends_;
    bool batch_sends_ = false;  // while handling batched reads: echo replies join one io_uring_enter
    std::vector<std::uint8_t> echo_frames_;  // D+1 identical masked frames
    std::size_t frame_len_ = 0;
    std::uint8_t mask_[4] = {0x37, 0xfa, 0x21, 0x3d};
    std::vector<std::uint8_t> pub_template_;  // one masked broadcast frame, header + masked padding
    std::size_t pub_header_len_ = 0;
    std::uint32_t next_to_connect_ = 0;       // set-up: next slot to start
    unsigned in_flight_ = 0;                  // connects/handshakes under way
    unsigned concurrency_ = 1;
    unsigned settled_ = 0;                    // set-up: opened or given up
    bool reported_ready_ = false;
    unsigned source_rr_ = 0;
    std::uint64_t last_timeout_scan_ns_ = 0;
    std::uint64_t work_total_ = 0;
    std::uint64_t interval_ns_ = 0;           // --rate: ns between messages of one publisher
    std::uint8_t expect_op_ = 2;

    // deflate
    z_stream inf_{};                          // worker inflater (server_no_context_takeover)
    bool inf_ready_ = false;
    z_stream def_{};                          // publisher deflater
    int def_bits_ = 0;                        // its window bits, 0 = not yet initialised
    std::unique_ptr<std::uint8_t[]> zout_;    // inflate output (size + 1: one more byte = oversized)
    std::size_t zout_cap_ = 0;
    std::vector<std::uint8_t> zscratch_;      // compressed publisher payload
    std::vector<std::uint8_t> pub_plain_;     // plaintext publisher payload (deflate publishers)
    std::vector<std::uint8_t> echo_z_;        // D+1 identical compressed masked echo frames
    std::size_t zframe_len_ = 0;
    int echo_z_bits_ = 0;
    // TLS
    SSL_SESSION* session_ = nullptr;          // --tls-resume: the newest session (ticket) seen
};

void Worker::plan_connections() {
    const unsigned i = index_, n = count_;
    auto share = [&](unsigned total) { return total / n + (i < total % n ? 1 : 0); };
    switch (opt_.mode) {
    case Mode::echo:
    case Mode::idle:
        conns_.resize(share(opt_.connections));
        for (auto& c : conns_) c.role = Role::echo;
        break;
    case Mode::connect:
        conns_.resize(std::max(1u, share(opt_.concurrency)));
        for (auto& c : conns_) c.role = Role::probe;
        break;
    case Mode::broadcast: {
        unsigned subs = share(opt_.subscribers);
        conns_.resize(subs);
        for (auto& c : conns_) {
            c.role = Role::subscriber;
            c.expected = std::make_unique<std::uint64_t[]>(opt_.publishers);
            std::fill_n(c.expected.get(), opt_.publishers, 1);
        }
        for (unsigned p = i; p < opt_.publishers; p += n) {
            Conn c;
            c.role = Role::publisher;
            c.publisher = p;
            publishers_.push_back(std::uint32_t(conns_.size()));
            conns_.push_back(std::move(c));
        }
        break;
    }
    }
    if (opt_.mode == Mode::echo)
        for (auto& c : conns_) c.ring = std::make_unique<std::uint64_t[]>(opt_.depth);
    concurrency_ = std::max(1u, share(opt_.concurrency));
}

bool Worker::start_connect(std::uint32_t slot, std::uint64_t now) {
    Conn& c = conns_[slot];
    ++c.gen;
    c.state = State::connecting;
    c.started_ns = now;
    c.request_sent = 0;
    c.response.clear();
    c.hdr_len = 0;
    c.in_payload = false;
    c.payload_left = 0;
    c.msg_len = 0;
    c.got_close = false;
    c.out.clear();
    c.out_off = 0;
    c.echo_blocked = c.deflate = c.msg_z = false;
    c.zmsg.clear();
    c.zin.reset();
    c.owed = c.sent_total = c.raw_pos = 0;
    c.ring_head = c.ring_count = 0;
    c.want_out = true;
    ++c.attempts;
    int fd = ::socket(sh_.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ++res_.errors.connect;
        c.state = State::dead;
        return false;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt_.source_ips > 1 && sh_.addr.ss_family == AF_INET) {
        // Spread the 4-tuples over several local addresses; the port is chosen at connect time.
        ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_addr.s_addr = htonl(0x7f000001u + (source_rr_++ % opt_.source_ips));
        ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local);
    }
    c.fd = fd;
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sh_.addr), sh_.addr_len);
    if (rc < 0 && errno != EINPROGRESS) {
        ++res_.errors.connect;
        close_conn(c, true);
        return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = (std::uint64_t(c.gen) << 32) | slot;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    ++in_flight_;
    return true;
}

// Keeps up to `concurrency_` connects in flight: during set-up for the long-lived connections, and
// for the whole warmup+measure phases in connect mode (a finished probe is replaced at once).
void Worker::start_more(std::uint64_t now) {
    if (opt_.mode == Mode::connect) {
        if (phase_ != Phase::warmup && phase_ != Phase::measure) return;
        for (std::uint32_t s = 0; s < conns_.size() && in_flight_ < concurrency_; ++s)
            if (conns_[s].state == State::unused || conns_[s].state == State::dead) {
                conns_[s].attempts = 0;
                start_connect(s, now);
            }
        return;
    }
    while (in_flight_ < concurrency_ && next_to_connect_ < conns_.size()) {
        std::uint32_t s = next_to_connect_++;
        if (!start_connect(s, now)) ++settled_;
    }
}

void Worker::on_opened(Conn& c, std::uint64_t now) {
    c.state = State::open;
    if (c.role == Role::probe) {  // a probe stays in flight until its close completes
        ++work_total_;
        if (measuring()) {
            ++res_.messages;
            res_.latency.record(now - c.started_ns);
        }
        return;
    }
    --in_flight_;
    ++settled_;
    ++res_.opened;
    live_.open.fetch_add(1, std::memory_order_relaxed);
    if (c.role == Role::subscriber) sh_.open_subscribers.fetch_add(1, std::memory_order_relaxed);
    if (c.role == Role::echo && opt_.mode == Mode::echo && phase_ >= Phase::warmup) queue_echo(c, opt_.depth, now);
}

void Worker::close_conn(Conn& c, bool reset) {
    if (c.fd < 0) return;
    if (reset) {
        linger lg{1, 0};
        ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (c.ssl) {  // no close_notify: the WebSocket close handshake (or a reset) ends the connection
        SSL_set_shutdown(c.ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(c.ssl);
        c.ssl = nullptr;
    }
    ::close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
    bool live = c.state == State::open || c.state == State::closing;
    if (c.role == Role::probe) {
        if (c.state != State::dead && c.state != State::unused) --in_flight_;
    } else if (c.state == State::connecting || c.state == State::tls || c.state == State::handshaking) {
        --in_flight_;
    } else if (live) {
        live_.open.fetch_sub(1, std::memory_order_relaxed);
        if (c.role == Role::subscriber) sh_.open_subscribers.fetch_sub(1, std::memory_order_relaxed);
    }
    c.state = State::dead;
    c.response = std::string();
}

// A connection failed: count it, drop it; during set-up it is retried twice before it counts as settled.
void Worker::fail(Conn& c, std::uint64_t& counter) {
    ++counter;
    bool setup_conn = c.role != Role::probe &&
                      (c.state == State::connecting || c.state == State::tls || c.state == State::handshaking);
    close_conn(c, true);
    if (setup_conn) {
        auto slot = std::uint32_t(&c - conns_.data());
        if (c.attempts < 3 && phase_ != Phase::stop) {
            if (!start_connect(slot, now_ns())) ++settled_;
        } else {
            ++settled_;
        }
    }
}

void Worker::set_want_out(Conn& c, std::uint32_t slot, bool want) {
    if (c.want_out == want || c.fd < 0) return;
    c.want_out = want;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.u64 = (std::uint64_t(c.gen) << 32) | slot;
    ::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
}

// Sends control/publisher frames and owed echo frames in wire order: other frames go out only at an
// echo frame boundary. Returns false when the connection was closed.
bool Worker::flush(Conn& c, std::uint32_t slot) {
    bool need_out = false;
    const std::size_t flen = c.deflate ? zframe_len_ : frame_len_;
    const std::uint8_t* frames = c.deflate ? echo_z_.data() : echo_frames_.data();
    const std::size_t frames_size = c.deflate ? echo_z_.size() : echo_frames_.size();
    for (;;) {
        // A blocked TLS echo write must be retried first (and no shorter), so other frames wait for it.
        bool at_boundary = (flen == 0 || c.sent_total % flen == 0) && !c.echo_blocked;
        if (c.out_off < c.out.size() && at_boundary) {
            ssize_t n = io_send(c, c.out.data() + c.out_off, c.out.size() - c.out_off);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) { need_out = true; break; }
                fail(c, c.role == Role::probe ? res_.errors.io : res_.errors.closed);
                return false;
            }
            c.out_off += std::size_t(n);
            if (c.out_off < c.out.size()) { need_out = true; break; }
            c.out.clear();
            c.out_off = 0;
            continue;
        }
        if (c.owed == 0) break;
        std::size_t pos = std::size_t(c.sent_total % flen);
        std::size_t len = c.out_off < c.out.size() && !c.echo_blocked
                              ? flen - pos
                              : std::size_t(std::min<std::uint64_t>(c.owed, frames_size - pos));
        len = std::size_t(std::min<std::uint64_t>(len, c.owed));
        ssize_t n = io_send(c, frames + pos, len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                if (c.ssl) c.echo_blocked = true;
                need_out = true;
                break;
            }
            fail(c, res_.errors.closed);
            return false;
        }
        c.echo_blocked = false;
        c.sent_total += std::uint64_t(n);
        c.owed -= std::uint64_t(n);
        if (std::size_t(n) < len) { need_out = true; break; }
    }
    set_want_out(c, slot, need_out);
    return true;
}

void Worker::queue_echo(Conn& c, std::uint32_t frames, std::uint64_t now) {
    for (std::uint32_t k = 0; k < frames; ++k) {
        c.ring[(c.ring_head + c.ring_count) % opt_.depth] = now;
        ++c.ring_count;
    }
    c.owed += std::uint64_t(frames) * (c.deflate ? zframe_len_ : frame_len_);
    const auto slot = std::uint32_t(&c - conns_.data());
    if (batch_sends_ && !c.ssl && !c.deflate && !c.send_queued && !c.want_out && c.out_off == c.out.size()) {
        // The first contiguous run of owed frames goes in the batch; run_sends() finishes the rest.
        const std::size_t pos = std::size_t(c.sent_total % frame_len_);
        const std::size_t len = std::size_t(std::min<std::uint64_t>(c.owed, echo_frames_.size() - pos));
        if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) {
            io_uring_prep_send(sqe, c.fd, echo_frames_.data() + pos, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            io_uring_sqe_set_data64(sqe, sends_.size());
            sends_.push_back({slot, c.gen, -EAGAIN});
            c.send_queued = true;
            return;
        }
    }
    flush(c, slot);
}

// Submits the `want` prepared operations and waits for them; done(tag, result) for each. False if not all
// of them ran (the ring is then not to be used again).
template <class Done>
bool Worker::run_ring(unsigned want, Done&& done) {
    int r;
    do {
        r = io_uring_submit_and_wait(&ring_, want);
    } while (r == -EINTR);
    unsigned got = 0;
    while (r > 0 && got < unsigned(r)) {
        io_uring_cqe* cqe = nullptr;
        if (io_uring_wait_cqe(&ring_, &cqe) < 0) break;
        done(io_uring_cqe_get_data64(cqe), cqe->res);
        io_uring_cqe_seen(&ring_, cqe);
        ++got;
    }
    return got == want;
}

// The echo replies prepared while handling a read batch: one io_uring_enter, then whatever a send did not
// take (short, EAGAIN, error) is left to flush(), which retries it or arms EPOLLOUT or fails the connection.
void Worker::run_sends() {
    if (sends_.empty()) return;
    if (!run_ring(unsigned(sends_.size()), [this](std::uint64_t i, int res) { sends_[i].res = res; }))
        ring_ok_ = false;  // not all ran: those report -EAGAIN and flush() sends them itself
    for (const Pending& ps : sends_) {
        Conn& c = conns_[ps.slot];
        c.send_queued = false;
        if (c.fd < 0 || c.gen != ps.gen) continue;
        if (ps.res > 0) {
            c.sent_total += std::uint64_t(ps.res);
            c.owed -= std::uint64_t(ps.res);
        }
        if (c.owed > 0 || ps.res < 0) flush(c, ps.slot);
    }
    sends_.clear();
}

void Worker::queue_control(Conn& c, Opcode op, const std::uint8_t* payload, std::size_t len) {
    if (c.out_off == c.out.size()) {
        c.out.clear();
        c.out_off = 0;
    }
    std::size_t at = c.out.size();
    c.out.resize(at + max_frame_header_bytes + len);
    std::size_t h = write_client_header(c.out.data() + at, op, len, mask_);
    if (len) std::memcpy(c.out.data() + at + h, payload, len);
    mask_bytes(c.out.data() + at + h, len, mask_, 0);
    c.out.resize(at + h + len);
}

void Worker::on_writable_connecting(Conn& c, std::uint32_t slot, std::uint64_t now) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        fail(c, res_.errors.connect);
        return;
    }
    if (opt_.raw_tcp) {
        set_want_out(c, slot, false);
        on_opened(c, now);
        return;
    }
    if (sh_.tls_ctx) {
        start_tls(c, slot, now);
        return;
    }
    c.state = State::handshaking;
    send_request(c, slot);
}

void Worker::send_request(Conn& c, std::uint32_t slot) {
    const std::string& req = c.role == Role::subscriber  ? sh_.request_sub
                             : c.role == Role::publisher ? sh_.request_pub
                                                         : sh_.request_main;
    ssize_t n = io_send(c, reinterpret_cast<const std::uint8_t*>(req.data()) + c.request_sent,
                        req.size() - c.request_sent);
    if (n < 0) {
        if (errno == EAGAIN) {
            set_want_out(c, slot, true);
            return;
        }
        fail(c, res_.errors.connect);
        return;
    }
    c.request_sent += std::size_t(n);
    set_want_out(c, slot, c.request_sent != req.size());
}

void Worker::start_tls(Conn& c, std::uint32_t slot, std::uint64_t now) {
    c.ssl = SSL_new(sh_.tls_ctx);
    if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1) {
        ERR_clear_error();
        fail(c, res_.errors.tls);
        return;
    }
    SSL_set_connect_state(c.ssl);
    if (!opt_.tls_sni.empty()) SSL_set_tlsext_host_name(c.ssl, opt_.tls_sni.c_str());
    if (!opt_.tls_ca.empty()) {
        // Verify the certificate against the target: an IP literal as an IP SAN, otherwise a DNS name.
        X509_VERIFY_PARAM* vp = SSL_get0_param(c.ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, opt_.host.c_str()) != 1) {
            ERR_clear_error();
            SSL_set1_host(c.ssl, opt_.host.c_str());
        }
    }
    if (opt_.tls_resume && session_) SSL_set_session(c.ssl, session_);
    c.state = State::tls;
    tls_step(c, slot, now);
}

void Worker::tls_step(Conn& c, std::uint32_t slot, std::uint64_t now) {
    int r = SSL_do_handshake(c.ssl);
    if (r == 1) {
        ++res_.tls_handshakes;
        if (SSL_session_reused(c.ssl)) ++res_.tls_resumed;
        if (res_.tls_desc.empty()) res_.tls_desc = std::string(SSL_get_version(c.ssl)) + " " + SSL_get_cipher_name(c.ssl);
        c.state = State::handshaking;
        c.request_sent = 0;
        send_request(c, slot);
        return;
    }
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        set_want_out(c, slot, false);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        set_want_out(c, slot, true);
        return;
    }
    if (res_.errors.tls == 0) {  // say why once per worker
        char why[256];
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
        std::fprintf(stderr, "roomcast-bench: TLS handshake failed: %s\n", ERR_peek_last_error() ? why : "connection closed");
    }
    ERR_clear_error();
    fail(c, res_.errors.tls);
    if (c.role == Role::probe) start_more(now);
}

ssize_t Worker::io_send(Conn& c, const std::uint8_t* p, std::size_t n) {
    if (!c.ssl) return ::send(c.fd, p, n, MSG_NOSIGNAL);
    int r = SSL_write(c.ssl, p, int(std::min<std::size_t>(n, INT_MAX)));
    if (r > 0) return r;
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        errno = EAGAIN;
        return -1;
    }
    ERR_clear_error();
    if (errno == 0 || errno == EAGAIN) errno = EPIPE;
    return -1;
}

ssize_t Worker::io_recv(Conn& c, std::uint8_t* p, std::size_t n) {
    if (!c.ssl) return ::recv(c.fd, p, n, 0);
    int r = SSL_read(c.ssl, p, int(std::min<std::size_t>(n, INT_MAX)));
    if (r > 0) return r;
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN) return 0;  // close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF)
    ERR_clear_error();
    if (errno == 0 || errno == EAGAIN) errno = ECONNRESET;
    return -1;
}

void Worker::on_event(std::uint32_t slot, std::uint32_t events, std::uint64_t now) {
    Conn& c = conns_[slot];
    if (c.fd < 0) return;
    if (c.state == State::connecting) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable_connecting(c, slot, now);
        return;
    }
    if (c.state == State::tls) {
        tls_step(c, slot, now);
        return;
    }
    if (c.state == State::handshaking && c.want_out && (events & EPOLLOUT)) {
        send_request(c, slot);  // rest of a partly sent request
        if (c.fd < 0) return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(c, slot, now);
        if (c.fd < 0) return;
    }
    if ((events & EPOLLOUT) && c.want_out && c.state != State::handshaking) flush(c, slot);
}

void Worker::on_eof(Conn& c, std::uint32_t slot, std::uint64_t now) {
    (void)slot;
    if (c.role == Role::probe && c.state == State::closing) {
        if (!c.got_close) ++res_.unclean_closes;
        close_conn(c, false);
        if (measuring()) ++res_.cycles;
        start_more(now);
        return;
    }
    if (phase_ == Phase::stop) {
        close_conn(c, false);
        return;
    }
    fail(c, c.state == State::handshaking ? res_.errors.handshake : res_.errors.closed);
    if (c.role == Role::probe) start_more(now);
}

void Worker::on_readable(Conn& c, std::uint32_t slot, std::uint64_t now) {
    for (;;) {
        ssize_t n = io_recv(c, rbuf_.get(), read_buffer_bytes);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        if (!took_read(c, slot, n < 0 ? -errno : n, rbuf_.get(), now)) return;
        // Plain TCP: one recv per event (a short read means drained; level-triggered epoll covers the rest).
        // TLS: records OpenSSL already holds never wake epoll, so drain them now.
        if (!c.ssl || !SSL_has_pending(c.ssl)) break;
    }
    after_reads(c, slot, now);
}

// One read's result: n bytes at p, 0 = EOF, or -errno (not EAGAIN). False: the connection is finished with
// (closed, or it stops reading) and after_reads() must not run.
bool Worker::took_read(Conn& c, std::uint32_t slot, ssize_t n, const std::uint8_t* p, std::uint64_t now) {
    if (n == 0) {
        on_eof(c, slot, now);
        return false;
    }
    if (n < 0) {
        if (c.role == Role::probe && c.state == State::closing) {  // reset after the close handshake
            ++res_.unclean_closes;
            close_conn(c, false);
            if (measuring()) ++res_.cycles;
            start_more(now);
            return false;
        }
        on_eof(c, slot, now);
        return false;
    }
    if (measuring()) res_.ws_bytes += std::uint64_t(n);
    return consume(c, slot, p, std::size_t(n), now) && c.fd >= 0;
}

// After a connection's reads: echo frames owed for the replies, or other frames waiting to go.
void Worker::after_reads(Conn& c, std::uint32_t slot, std::uint64_t now) {
    if (c.fd >= 0 && c.refill) {
        std::uint32_t k = c.refill;
        c.refill = 0;
        if (phase_ != Phase::stop) queue_echo(c, k, now);
    } else if (c.fd >= 0 && c.out_off < c.out.size()) {
        flush(c, slot);
    }
}

// Only plain connections with nothing but input to handle join the batch (the upgrade response, frames,
// or the close handshake's reply and EOF).
bool Worker::batchable(const Conn& c, std::uint32_t events) const noexcept {
    return ring_ok_ && !c.ssl && events == EPOLLIN &&
           (c.state == State::open || c.state == State::handshaking || c.state == State::closing);
}

// One io_uring_enter reads every connection of the batch into its own slice (MSG_DONTWAIT: never waits),
// then each is handled as a plain recv would have been.
void Worker::run_reads(std::uint64_t now) {
    if (reads_.empty()) return;
    for (std::size_t i = 0; i < reads_.size(); ++i) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_recv(sqe, conns_[reads_[i].slot].fd, arena_.get() + i * read_slice_bytes, read_slice_bytes,
                           MSG_DONTWAIT);
        io_uring_sqe_set_data64(sqe, i);
        reads_[i].res = -EAGAIN;
    }
    if (!run_ring(unsigned(reads_.size()), [this](std::uint64_t i, int res) { reads_[i].res = res; })) {
        // the kernel did not run them all: back to recv() for good (the sockets are still readable)
        ring_ok_ = false;
        reads_.clear();
        return;
    }
    batch_sends_ = true;
    for (std::size_t i = 0; i < reads_.size(); ++i) {
        const Pending& pr = reads_[i];
        Conn& c = conns_[pr.slot];
        if (c.fd < 0 || c.gen != pr.gen) continue;
        if (pr.res != -EAGAIN && pr.res != -EINTR &&
            !took_read(c, pr.slot, pr.res, arena_.get() + i * read_slice_bytes, now))
            continue;
        after_reads(c, pr.slot, now);
    }
    batch_sends_ = false;
    reads_.clear();
    run_sends();
}

// Handles len bytes at p: the upgrade response while handshaking, then frames. false: stop reading.
bool Worker::consume(Conn& c, std::uint32_t slot, const std::uint8_t* p, std::size_t len, std::uint64_t now) {
    std::string rest;  // bytes after the 101 head
    if (c.state == State::handshaking) {
        c.response.append(reinterpret_cast<const char*>(p), len);
        std::size_t head = 0;
        int status = 0;
        std::string_view ext;
        switch (check_upgrade_response(c.response, sh_.expected_accept, &head, &status, &ext)) {
        case HandshakeStatus::need_more: return true;
        case HandshakeStatus::bad_status:
        case HandshakeStatus::bad_accept:
        case HandshakeStatus::too_large:
            fail(c, res_.errors.handshake);
            if (c.role == Role::probe) start_more(now);
            return false;
        case HandshakeStatus::ok: break;
        }
        if (opt_.deflate && res_.deflate_desc.empty()) res_.deflate_desc = ext.empty() ? "(declined)" : std::string(ext);
        if (!setup_deflate(c, parse_deflate_response(ext, opt_.deflate))) {
            fail(c, res_.errors.handshake);
            if (c.role == Role::probe) start_more(now);
            return false;
        }
        if (opt_.tls_resume && c.ssl) {  // keep the newest ticket (TLS 1.3 sends it before the 101)
            if (SSL_SESSION* sess = SSL_get1_session(c.ssl)) {
                if (SSL_SESSION_is_resumable(sess)) {
                    if (session_) SSL_SESSION_free(session_);
                    session_ = sess;
                } else {
                    SSL_SESSION_free(sess);
                }
            }
        }
        rest = c.response.substr(head);
        c.response = std::string();
        on_opened(c, now);
        if (c.role == Role::probe) {
            if (opt_.close_style == CloseStyle::rst || phase_ == Phase::stop) {
                close_conn(c, true);
                if (measuring()) ++res_.cycles;
                start_more(now);
                return false;
            }
            std::uint8_t code[2] = {std::uint8_t(close_normal >> 8), std::uint8_t(close_normal & 0xff)};
            queue_control(c, Opcode::close, code, sizeof code);
            c.state = State::closing;
            if (!flush(c, slot)) {
                start_more(now);
                return false;
            }
        }
        if (rest.empty()) return true;
        p = reinterpret_cast<const std::uint8_t*>(rest.data());
        len = rest.size();
    }
    if (opt_.raw_tcp) feed_raw(c, p, len, now);
    else feed(c, p, len, now);
    return true;
}

bool Worker::setup_deflate(Conn& c, const DeflateAgreement& a) {
    if (!a.ok) return false;
    c.deflate = a.on;
    if (!a.on) return true;
    ++res_.deflate_conns;
    if (!a.server_no_context_takeover) {  // the server may refer back to earlier messages
        c.zin.reset(new z_stream{});
        if (inflateInit2(c.zin.get(), -15) != Z_OK) return false;
    }
    const int bits = a.client_window_bits;
    if (c.role == Role::echo && opt_.mode == Mode::echo) {
        if (echo_z_bits_ == 0) {
            z_stream d{};
            if (deflateInit2(&d, opt_.deflate_level, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
            std::vector<std::uint8_t> z;
            std::size_t zl = compress(d, sh_.payload.data(), opt_.size_bytes, z);
            deflateEnd(&d);
            std::vector<std::uint8_t> one = masked_frame(Opcode(expect_op_), z.data(), zl, mask_, true);
            zframe_len_ = one.size();
            echo_z_.reserve(zframe_len_ * (opt_.depth + 1));
            for (unsigned k = 0; k <= opt_.depth; ++k) echo_z_.insert(echo_z_.end(), one.begin(), one.end());
            echo_z_bits_ = bits;
        }
        return echo_z_bits_ == bits;  // one server: every connection gets the same answer
    }
    if (c.role == Role::publisher) {
        if (def_bits_ == 0) {
            if (deflateInit2(&def_, opt_.deflate_level, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
            def_bits_ = bits;
            pub_plain_ = sh_.payload;
            zscratch_.resize(deflateBound(&def_, uLong(opt_.size_bytes)) + 64);
        }
        return def_bits_ == bits;
    }
    return true;
}

// Raw deflate of one whole message (context reset first), sync-flushed, 00 00 ff ff stripped (RFC 7692
// 7.2.1). out is grown as needed but never shrunk; returns the compressed length.
std::size_t Worker::compress(z_stream& d, const std::uint8_t* in, std::size_t n, std::vector<std::uint8_t>& out) {
    deflateReset(&d);
    std::size_t cap = deflateBound(&d, uLong(n)) + 64;
    if (out.size() < cap) out.resize(cap);
    d.next_in = const_cast<Bytef*>(in);
    d.avail_in = uInt(n);
    d.next_out = out.data();
    d.avail_out = uInt(out.size());
    deflate(&d, Z_SYNC_FLUSH);
    std::size_t len = out.size() - d.avail_out;
    if (len >= 4 && out[len - 4] == 0 && out[len - 3] == 0 && out[len - 2] == 0xff && out[len - 1] == 0xff) len -= 4;
    return len;
}

// At the end of a compressed message: append 00 00 ff ff and inflate it in one call into zout_ (one byte
// larger than the expected size, so an oversized message is caught without unbounded work).
bool Worker::inflate_message(Conn& c) {
    static constexpr std::uint8_t tail[4] = {0, 0, 0xff, 0xff};
    c.zmsg.insert(c.zmsg.end(), tail, tail + 4);
    z_stream* zs = c.zin ? c.zin.get() : &inf_;
    if (!c.zin) {
        if (!inf_ready_) {
            if (inflateInit2(&inf_, -15) != Z_OK) {
                fail(c, res_.errors.io);
                return false;
            }
            inf_ready_ = true;
        } else {
            inflateReset(&inf_);
        }
    }
    zs->next_in = c.zmsg.data();
    zs->avail_in = uInt(c.zmsg.size());
    zs->next_out = zout_.get();
    zs->avail_out = uInt(zout_cap_);
    int r = inflate(zs, Z_SYNC_FLUSH);
    std::size_t out = zout_cap_ - zs->avail_out;
    bool left = zs->avail_in != 0;
    c.zmsg.clear();
    if (r == Z_STREAM_END && c.zin) inflateReset(c.zin.get());
    if (r != Z_OK && r != Z_BUF_ERROR && r != Z_STREAM_END) {
        fail(c, res_.errors.protocol);  // corrupt deflate data
        return false;
    }
    if (left && r != Z_STREAM_END) {  // more output than the expected message size
        ++res_.errors.verify;
        if (c.zin) fail(c, res_.errors.protocol);  // a shared-context stream cannot be resumed
        return false;
    }
    c.msg_len = out;
    if (out > 0) {
        c.first_byte = zout_[0];
        c.last_byte = zout_[out - 1];
        std::memcpy(c.cap, zout_.get(), std::min(out, max_header_bytes));
    }
    if (measuring()) ++res_.z_messages;
    return true;
}

void Worker::stamp(std::uint8_t* pay, std::uint64_t now, std::uint64_t seqword) const noexcept {
    if (sh_.header_bytes == text_header_bytes) {
        write_hex16(pay + text_ts_offset, now);
        write_hex16(pay + text_seq_offset, seqword);
    } else {
        std::memcpy(pay, &now, 8);
        std::memcpy(pay + 8, &seqword, 8);
    }
}

// Streaming parse of server frames: only a partial header (<= 14 bytes), the first 16 payload bytes of a
// data message and control payloads are copied; everything else is looked at in place.
void Worker::feed(Conn& c, const std::uint8_t* p, std::size_t n, std::uint64_t now) {
    while (n > 0 && c.fd >= 0) {
        if (!c.in_payload) {
            // Assemble the header: 2 bytes, then 0, 2 or 8 bytes of extended length.
            const std::uint8_t* h;
            std::size_t need;
            std::uint8_t b1 = c.hdr_len >= 2 ? c.hdr[1] : (c.hdr_len == 1 ? p[0] : (n >= 2 ? p[1] : 0));
            if (c.hdr_len + n < 2) {
                c.hdr[c.hdr_len++] = p[0];
                return;
            }
            std::uint8_t len7 = b1 & 0x7f;
            need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
            if (c.hdr_len == 0 && n >= need) {
                h = p;
                p += need;
                n -= need;
            } else {
                std::size_t take = std::min(n, need - c.hdr_len);
                std::memcpy(c.hdr + c.hdr_len, p, take);
                c.hdr_len = std::uint8_t(c.hdr_len + take);
                p += take;
                n -= take;
                if (c.hdr_len < need) return;
                h = c.hdr;
            }
            c.hdr_len = 0;
            if (b1 & 0x80) {  // RFC 6455 5.1: a server must not mask
                fail(c, res_.errors.protocol);
                return;
            }
            std::uint64_t plen = len7;
            if (len7 == 126) plen = (std::uint64_t(h[2]) << 8) | h[3];
            else if (len7 == 127) {
                plen = 0;
                for (int i = 0; i < 8; ++i) plen = (plen << 8) | h[2 + i];
            }
            c.frame_fin = (h[0] & 0x80) != 0;
            c.frame_op = h[0] & 0x0f;
            const bool rsv1 = (h[0] & 0x40) != 0;  // RFC 7692 6: only on the first frame of a data message
            if ((h[0] & 0x30) != 0 || (rsv1 && (!c.deflate || c.frame_op == 0 || c.frame_op >= 8)) ||
                (c.frame_op > 2 && c.frame_op < 8) || c.frame_op > 10 ||
                (c.frame_op >= 8 && (plen > 125 || !c.frame_fin)) || plen > max_message_bytes) {
                fail(c, res_.errors.protocol);
                return;
            }
            if (c.frame_op >= 8) {
                c.ctl_len = 0;
            } else if (c.frame_op != 0) {
                c.msg_op = c.frame_op;
                c.msg_len = 0;
                c.msg_z = rsv1;
                c.msg_skip = rsv1 && opt_.inflate_sample > 1 && c.role == Role::subscriber &&
                             ++c.zcount % opt_.inflate_sample != 0;
            }
            c.payload_left = plen;
            c.in_payload = true;
            if (plen == 0) {
                c.in_payload = false;
                on_frame_end(c, now);
            }
            continue;
        }
        std::size_t m = std::size_t(std::min<std::uint64_t>(n, c.payload_left));
        if (c.frame_op >= 8) {
            std::memcpy(c.ctl + c.ctl_len, p, m);
            c.ctl_len = std::uint8_t(c.ctl_len + m);
        } else if (c.msg_z) {
            if (!c.msg_skip) c.zmsg.insert(c.zmsg.end(), p, p + m);  // inflated at the end of the message
        } else {
            if (c.msg_len < sh_.header_bytes) {
                std::size_t k = std::min<std::size_t>(m, sh_.header_bytes - c.msg_len);
                if (c.msg_len == 0) c.first_byte = p[0];
                std::memcpy(c.cap + c.msg_len, p, k);
            }
            c.last_byte = p[m - 1];
            c.msg_len += m;
        }
        c.payload_left -= m;
        p += m;
        n -= m;
        if (c.payload_left == 0) {
            c.in_payload = false;
            on_frame_end(c, now);
        }
    }
}

// Raw TCP ceiling: the echo server returns our own masked frames; every frame_len bytes is one message.
void Worker::feed_raw(Conn& c, const std::uint8_t* p, std::size_t n, std::uint64_t now) {
    const std::uint8_t first = echo_frames_[0], last = echo_frames_[frame_len_ - 1];
    while (n > 0) {
        std::size_t m = std::size_t(std::min<std::uint64_t>(n, frame_len_ - c.raw_pos));
        if (c.raw_pos == 0 && p[0] != first) ++res_.errors.verify;
        c.raw_pos += m;
        p += m;
        n -= m;
        if (c.raw_pos == frame_len_) {
            if (p[-1] != last) ++res_.errors.verify;
            c.raw_pos = 0;
            c.msg_len = opt_.size_bytes;
            c.msg_op = expect_op_;
            c.first_byte = sh_.payload[0];
            c.last_byte = sh_.payload[opt_.size_bytes - 1];
            on_message(c, now);
        }
    }
}

void Worker::on_frame_end(Conn& c, std::uint64_t now) {
    if (c.frame_op >= 8) {
        on_control(c, now);
        return;
    }
    if (!c.frame_fin) return;
    if (c.msg_z && c.msg_skip) {  // sampled out: it is the next message of the (single) publisher
        std::uint64_t seq = c.expected[0]++;
        PublishWindow& w = sh_.windows[0];
        auto& slot = w.slots[seq % w.size];
        if (slot.seq.load(std::memory_order_relaxed) == seq) slot.acks.fetch_add(1, std::memory_order_relaxed);
        ++work_total_;
        if (measuring()) {
            ++res_.messages;
            ++res_.z_messages;
            ++res_.z_skipped;
            res_.bytes += opt_.size_bytes;
        }
        return;
    }
    if (c.msg_z && !inflate_message(c)) return;
    on_message(c, now);
}

void Worker::on_control(Conn& c, std::uint64_t now) {
    (void)now;
    switch (Opcode(c.frame_op)) {
    case Opcode::ping:
        queue_control(c, Opcode::pong, c.ctl, c.ctl_len);
        break;
    case Opcode::pong: break;
    case Opcode::close:
        if (c.role == Role::probe && c.state == State::closing) {
            c.got_close = true;  // now wait for the server's FIN
            break;
        }
        if (phase_ == Phase::stop) {
            close_conn(c, true);
            break;
        }
        fail(c, res_.errors.closed);
        break;
    default: break;
    }
}

void Worker::on_message(Conn& c, std::uint64_t now) {
    ++work_total_;
    switch (c.role) {
    case Role::echo: {
        if (c.msg_op != expect_op_ || c.msg_len != opt_.size_bytes || c.first_byte != sh_.payload[0] ||
            c.last_byte != sh_.payload[opt_.size_bytes - 1])
            ++res_.errors.verify;
        if (c.ring_count == 0) {
            ++res_.errors.verify;  // more replies than requests
            return;
        }
        std::uint64_t sent = c.ring[c.ring_head];
        c.ring_head = (c.ring_head + 1) % opt_.depth;
        --c.ring_count;
        if (measuring()) {
            ++res_.messages;
            res_.bytes += c.msg_len;
            res_.latency.record(now - sent);
        }
        ++c.refill;
        break;
    }
    case Role::subscriber: {
        if (c.msg_op != expect_op_ || c.msg_len != opt_.size_bytes) {
            ++res_.errors.verify;
            return;
        }
        std::uint64_t sent, seqword;
        if (sh_.header_bytes == text_header_bytes) {
            if (!parse_hex16(c.cap + text_ts_offset, &sent) || !parse_hex16(c.cap + text_seq_offset, &seqword)) {
                ++res_.errors.verify;
                return;
            }
        } else {
            std::memcpy(&sent, c.cap, 8);
            std::memcpy(&seqword, c.cap + 8, 8);
        }
        std::uint64_t pub = seqword >> seq_bits, seq = seqword & seq_mask;
        if (pub >= opt_.publishers || seq == 0) {
            ++res_.errors.verify;
            return;
        }
        std::uint64_t& want = c.expected[pub];
        if (seq == want) ++want;
        else if (seq > want) {
            res_.gaps += seq - want;
            want = seq + 1;
        } else {
            ++res_.duplicates;
        }
        PublishWindow& w = sh_.windows[pub];
        auto& slot = w.slots[seq % w.size];
        if (slot.seq.load(std::memory_order_relaxed) == seq) slot.acks.fetch_add(1, std::memory_order_relaxed);
        if (measuring()) {
            ++res_.messages;
            res_.bytes += c.msg_len;
            res_.latency.record(now > sent ? now - sent : 0);
        }
        break;
    }
    case Role::publisher: break;  // nothing is expected back on a raw publisher
    case Role::probe: break;      // a data frame after the 101 of a probe: ignored
    }
}

void Worker::tick_publishers(std::uint64_t now) {
    if (phase_ != Phase::warmup && phase_ != Phase::measure) return;
    const std::uint32_t target = sh_.open_subscribers.load(std::memory_order_relaxed);
    const std::uint64_t timeout_ns = std::uint64_t(opt_.window_timeout_ms) * 1'000'000u;
    for (std::uint32_t slot_index : publishers_) {
        Conn& c = conns_[slot_index];
        if (c.state != State::open) continue;
        PublishWindow& w = sh_.windows[c.publisher];
        while (c.oldest_seq < c.next_seq) {
            auto& s = w.slots[c.oldest_seq % w.size];
            if (s.acks.load(std::memory_order_relaxed) >= target) {
                ++c.oldest_seq;
            } else if (now - s.sent_ns > timeout_ns) {
                ++res_.window_timeouts;
                ++c.oldest_seq;
            } else {
                break;
            }
        }
        std::uint64_t room = w.size - (c.next_seq - c.oldest_seq);
        std::uint64_t batch = std::min<std::uint64_t>(room, max_publish_batch);
        if (opt_.rate_per_publisher > 0) {
            if (c.next_due_ns == 0) c.next_due_ns = now;
            std::uint64_t due = now >= c.next_due_ns ? (now - c.next_due_ns) / interval_ns_ + 1 : 0;
            batch = std::min(batch, due);
            if (due > 0) res_.publisher_lag_max_ns = std::max(res_.publisher_lag_max_ns, now - c.next_due_ns);
        }
        if (batch == 0) continue;
        if (c.out_off == c.out.size()) {
            c.out.clear();
            c.out_off = 0;
        }
        const std::size_t flen = pub_template_.size();
        const std::size_t hb = sh_.header_bytes;
        std::size_t at = c.out.size();
        if (!c.deflate) c.out.resize(at + flen * batch);
        for (std::uint64_t k = 0; k < batch; ++k) {
            std::uint64_t seq = c.next_seq++;
            std::uint64_t seqword = (std::uint64_t(c.publisher) << seq_bits) | seq;
            if (c.deflate) {  // compress this message alone, then frame it with RSV1
                stamp(pub_plain_.data(), now, seqword);
                std::size_t zl = compress(def_, pub_plain_.data(), opt_.size_bytes, zscratch_);
                std::size_t fat = c.out.size();
                c.out.resize(fat + max_frame_header_bytes + zl);
                std::size_t h = write_client_header(c.out.data() + fat, Opcode(expect_op_), zl, mask_, true);
                std::memcpy(c.out.data() + fat + h, zscratch_.data(), zl);
                mask_bytes(c.out.data() + fat + h, zl, mask_, 0);
                c.out.resize(fat + h + zl);
            } else {
                std::uint8_t* f = c.out.data() + at + k * flen;
                std::memcpy(f, pub_template_.data(), flen);
                std::uint8_t* pay = f + pub_header_len_;
                std::memcpy(pay, sh_.payload.data(), hb);  // plaintext prefix, stamped, then masked again
                stamp(pay, now, seqword);
                mask_bytes(pay, hb, mask_, 0);
            }
            auto& s = w.slots[seq % w.size];
            s.acks.store(0, std::memory_order_relaxed);
            s.seq.store(seq, std::memory_order_release);
            s.sent_ns = now;
        }
        if (opt_.rate_per_publisher > 0) c.next_due_ns += batch * interval_ns_;
        if (measuring()) res_.published += batch;
        flush(c, slot_index);
    }
}

void Worker::on_phase(Phase p, std::uint64_t now) {
    // A short warmup may be skipped entirely (setup -> measure): load starts on leaving set-up.
    bool load_starts = phase_ == Phase::setup && (p == Phase::warmup || p == Phase::measure);
    phase_ = p;
    if (load_starts && opt_.mode == Mode::echo)
        for (auto& c : conns_)
            if (c.state == State::open) queue_echo(c, opt_.depth, now);
    if (load_starts && opt_.mode == Mode::connect) start_more(now);
    if (p == Phase::measure) {
        // Counters of the measured interval start now; correctness counters keep the whole run.
        res_.messages = res_.bytes = res_.published = res_.cycles = 0;
        res_.latency.reset();
    }
}

void Worker::check_timeouts(std::uint64_t now) {
    for (auto& c : conns_) {
        bool pending = c.state == State::connecting || c.state == State::tls || c.state == State::handshaking ||
                       (c.state == State::closing && c.role == Role::probe);
        if (!pending || now - c.started_ns < connect_timeout_ns) continue;
        fail(c, res_.errors.timeout);
    }
    if (opt_.mode == Mode::connect) start_more(now);
}

std::uint64_t Worker::next_wait_ns(std::uint64_t now) const {
    std::uint64_t wait = idle_poll_ns;
    if (publishers_.empty() || (phase_ != Phase::warmup && phase_ != Phase::measure)) return wait;
    for (std::uint32_t s : publishers_) {
        const Conn& c = conns_[s];
        if (c.state != State::open) continue;
        if (opt_.rate_per_publisher > 0) {
            wait = std::min(wait, c.next_due_ns > now ? c.next_due_ns - now : 0);
        } else if (count_ > 1) {
            wait = std::min(wait, cross_thread_poll_ns);  // acks may arrive on another worker
        }
    }
    return wait;
}

void Worker::run() {
    rbuf_ = std::make_unique<std::uint8_t[]>(read_buffer_bytes);
    if (opt_.io_uring) {
        const int r = io_uring_queue_init(read_group, &ring_, 0);
        if (r == 0) {
            ring_ok_ = true;
            arena_ = std::make_unique<std::uint8_t[]>(read_group * read_slice_bytes);
            reads_.reserve(read_group);
        } else if (index_ == 0) {
            std::fprintf(stderr, "roomcast-bench: io_uring unavailable (%s): one recv per socket\n", std::strerror(-r));
        }
    }
    zout_cap_ = std::max<std::size_t>(opt_.size_bytes, 64) + 1;
    if (opt_.deflate) zout_ = std::make_unique<std::uint8_t[]>(zout_cap_);
    expect_op_ = opt_.binary ? std::uint8_t(Opcode::binary) : std::uint8_t(Opcode::text);
    // Each worker gets its own fixed mask, varied so the server cannot rely on a constant key.
    mask_[0] = std::uint8_t(mask_[0] + 17 * index_);
    if (opt_.mode == Mode::echo) {
        std::vector<std::uint8_t> one = masked_frame(Opcode(expect_op_), sh_.payload.data(), opt_.size_bytes, mask_);
        frame_len_ = one.size();
        echo_frames_.reserve(frame_len_ * (opt_.depth + 1));
        for (unsigned k = 0; k <= opt_.depth; ++k) echo_frames_.insert(echo_frames_.end(), one.begin(), one.end());
    }
    if (opt_.mode == Mode::broadcast) {
        pub_template_ = masked_frame(Opcode(expect_op_), sh_.payload.data(), opt_.size_bytes, mask_);
        pub_header_len_ = pub_template_.size() - opt_.size_bytes;
        if (opt_.rate_per_publisher > 0)
            interval_ns_ = std::max<std::uint64_t>(1, std::uint64_t(1e9 / opt_.rate_per_publisher));
    }
    plan_connections();
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    std::vector<epoll_event> events(max_events);
    std::uint64_t now = now_ns();
    if (opt_.mode != Mode::connect) start_more(now);
    last_timeout_scan_ns_ = now;

    for (;;) {
        auto p = Phase(sh_.phase.load(std::memory_order_acquire));
        if (p != phase_) on_phase(p, now_ns());
        if (phase_ == Phase::stop) break;
        if (!reported_ready_ && (opt_.mode == Mode::connect || settled_ >= conns_.size())) {
            reported_ready_ = true;
            sh_.ready_workers.fetch_add(1, std::memory_order_acq_rel);
        }
        std::uint64_t wait = next_wait_ns(now_ns());
        timespec ts{time_t(wait / 1'000'000'000u), long(wait % 1'000'000'000u)};
        int n = ::epoll_pwait2(epfd_, events.data(), max_events, &ts, nullptr);
        if (n < 0 && errno == ENOSYS) n = ::epoll_wait(epfd_, events.data(), max_events, int(wait / 1'000'000u));
        now = now_ns();
        for (int i = 0; i < n; ++i) {
            std::uint64_t d = events[i].data.u64;
            auto slot = std::uint32_t(d);
            if (slot >= conns_.size() || conns_[slot].gen != std::uint32_t(d >> 32)) continue;  // stale
            Conn& c = conns_[slot];
            if (c.fd >= 0 && batchable(c, events[i].events)) {
                reads_.push_back({slot, c.gen, 0});
                if (reads_.size() == read_group) run_reads(now);
                continue;
            }
            on_event(slot, events[i].events, now);
        }
        run_reads(now);
        if (!publishers_.empty()) tick_publishers(now);
        if (opt_.mode == Mode::connect ? in_flight_ < concurrency_ : phase_ == Phase::setup) start_more(now);
        if (now - last_timeout_scan_ns_ > 100'000'000u) {
            last_timeout_scan_ns_ = now;
            check_timeouts(now);
        }
        live_.work.store(work_total_, std::memory_order_relaxed);
        live_.errors.store(res_.errors.total() + res_.gaps + res_.duplicates, std::memory_order_relaxed);
    }
    unsigned open = 0;
    for (auto& c : conns_) {
        if (c.state == State::open && c.role != Role::probe) ++open;
        // Reset rather than close: thousands of client-side TIME_WAIT sockets would eat ephemeral ports
        // for the next run.
        if (c.fd >= 0) close_conn(c, true);
    }
    res_.still_open = open;
    ::close(epfd_);
    if (ring_ok_ || arena_) io_uring_queue_exit(&ring_);
    if (inf_ready_) inflateEnd(&inf_);
    if (def_bits_) deflateEnd(&def_);
    if (session_) SSL_SESSION_free(session_);
}

}  // namespace

void run_worker(Shared& shared, unsigned index, unsigned count, LiveCounters& live, WorkerResult& result) {
    const Options& o = *shared.opt;
    if (!o.pin_cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.pin_cpus[index % o.pin_cpus.size()], &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    Worker w(shared, index, count, live, result);
    w.run();
}

}  // namespace roomcast::bench
