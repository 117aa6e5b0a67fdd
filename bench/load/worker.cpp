// The load generator's event loop. Costs per message are kept low so one client core can drive a fast
// server: level-triggered EPOLLIN with one recv(2) into a 256 KiB per-worker buffer per event (a short read
// means drained, so no extra EAGAIN call), one clock read per recv batch, frames parsed in place without
// copying payloads, and echo frames sent straight from a precomputed buffer of identical masked frames
// (D+1 copies, so any run of up to D frames starting at any offset is one contiguous send(2)).
#include "worker.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
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
constexpr int max_events = 512;
constexpr std::uint64_t connect_timeout_ns = 10'000'000'000ull;  // connect + handshake + close, per attempt
constexpr std::uint64_t idle_poll_ns = 5'000'000;               // how soon a worker notices a phase change
constexpr std::uint64_t cross_thread_poll_ns = 100'000;         // window blocked on another worker's acks
constexpr unsigned max_publish_batch = 256;                      // messages per publisher per loop turn
constexpr std::uint64_t seq_bits = 48;                           // sequence field: publisher << 48 | seq
constexpr std::uint64_t seq_mask = (1ull << seq_bits) - 1;
constexpr std::uint16_t close_normal = 1000;

enum class Role : std::uint8_t { echo, probe, subscriber, publisher };
enum class State : std::uint8_t { unused, connecting, handshaking, open, closing, dead };

struct Conn {
    int fd = -1;
    std::uint32_t gen = 0;
    Role role = Role::echo;
    State state = State::unused;
    bool want_out = false;  // EPOLLOUT registered
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
    std::uint8_t cap[broadcast_header_bytes];
    std::uint8_t ctl[125];

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
    void on_readable(Conn& c, std::uint32_t slot, std::uint64_t now);
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
    ::close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
    bool live = c.state == State::open || c.state == State::closing;
    if (c.role == Role::probe) {
        if (c.state != State::dead && c.state != State::unused) --in_flight_;
    } else if (c.state == State::connecting || c.state == State::handshaking) {
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
    bool setup_conn = c.role != Role::probe && (c.state == State::connecting || c.state == State::handshaking);
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
    for (;;) {
        bool at_boundary = frame_len_ == 0 || c.sent_total % frame_len_ == 0;
        if (c.out_off < c.out.size() && at_boundary) {
            ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
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
        std::size_t pos = std::size_t(c.sent_total % frame_len_);
        std::size_t len = c.out_off < c.out.size() ? frame_len_ - pos
                                                   : std::size_t(std::min<std::uint64_t>(c.owed, echo_frames_.size() - pos));
        len = std::size_t(std::min<std::uint64_t>(len, c.owed));
        ssize_t n = ::send(c.fd, echo_frames_.data() + pos, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) { need_out = true; break; }
            fail(c, res_.errors.closed);
            return false;
        }
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
    c.owed += std::uint64_t(frames) * frame_len_;
    flush(c, std::uint32_t(&c - conns_.data()));
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
    c.state = State::handshaking;
    const std::string& req = c.role == Role::subscriber  ? sh_.request_sub
                             : c.role == Role::publisher ? sh_.request_pub
                                                         : sh_.request_main;
    ssize_t n = ::send(c.fd, req.data() + c.request_sent, req.size() - c.request_sent, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN) return;
        fail(c, res_.errors.connect);
        return;
    }
    c.request_sent += std::size_t(n);
    if (c.request_sent == req.size()) set_want_out(c, slot, false);
}

void Worker::on_event(std::uint32_t slot, std::uint32_t events, std::uint64_t now) {
    Conn& c = conns_[slot];
    if (c.fd < 0) return;
    if (c.state == State::connecting) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable_connecting(c, slot, now);
        return;
    }
    if (c.state == State::handshaking && c.want_out && (events & EPOLLOUT)) {
        on_writable_connecting(c, slot, now);  // rest of a partly sent request
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
    ssize_t n = ::recv(c.fd, rbuf_.get(), read_buffer_bytes, 0);
    if (n == 0) {
        on_eof(c, slot, now);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        if (c.role == Role::probe && c.state == State::closing) {  // reset after the close handshake
            ++res_.unclean_closes;
            close_conn(c, false);
            if (measuring()) ++res_.cycles;
            start_more(now);
            return;
        }
        on_eof(c, slot, now);
        return;
    }
    const std::uint8_t* p = rbuf_.get();
    std::size_t len = std::size_t(n);
    if (c.state == State::handshaking) {
        c.response.append(reinterpret_cast<const char*>(p), len);
        std::size_t head = 0;
        int status = 0;
        switch (check_upgrade_response(c.response, sh_.expected_accept, &head, &status)) {
        case HandshakeStatus::need_more: return;
        case HandshakeStatus::bad_status:
        case HandshakeStatus::bad_accept:
        case HandshakeStatus::too_large:
            fail(c, res_.errors.handshake);
            if (c.role == Role::probe) start_more(now);
            return;
        case HandshakeStatus::ok: break;
        }
        std::string rest = c.response.substr(head);
        c.response = std::string();
        on_opened(c, now);
        if (c.role == Role::probe) {
            if (opt_.close_style == CloseStyle::rst || phase_ == Phase::stop) {
                close_conn(c, true);
                if (measuring()) ++res_.cycles;
                start_more(now);
                return;
            }
            std::uint8_t code[2] = {std::uint8_t(close_normal >> 8), std::uint8_t(close_normal & 0xff)};
            queue_control(c, Opcode::close, code, sizeof code);
            c.state = State::closing;
            if (!flush(c, slot)) {
                start_more(now);
                return;
            }
        }
        if (rest.empty()) return;
        std::memcpy(rbuf_.get(), rest.data(), rest.size());
        len = rest.size();
    }
    if (opt_.raw_tcp) feed_raw(c, p, len, now);
    else feed(c, p, len, now);
    if (c.fd >= 0 && c.refill) {
        std::uint32_t k = c.refill;
        c.refill = 0;
        if (phase_ != Phase::stop) queue_echo(c, k, now);
    } else if (c.fd >= 0 && c.out_off < c.out.size()) {
        flush(c, slot);
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
            if ((h[0] & 0x70) != 0 || (c.frame_op > 2 && c.frame_op < 8) || c.frame_op > 10 ||
                (c.frame_op >= 8 && (plen > 125 || !c.frame_fin)) || plen > max_message_bytes) {
                fail(c, res_.errors.protocol);
                return;
            }
            if (c.frame_op >= 8) {
                c.ctl_len = 0;
            } else if (c.frame_op != 0) {
                c.msg_op = c.frame_op;
                c.msg_len = 0;
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
        } else {
            if (c.msg_len < broadcast_header_bytes) {
                std::size_t k = std::min<std::size_t>(m, broadcast_header_bytes - c.msg_len);
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
    if (c.frame_fin) on_message(c, now);
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
        std::memcpy(&sent, c.cap, 8);
        std::memcpy(&seqword, c.cap + 8, 8);
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
        std::size_t at = c.out.size();
        c.out.resize(at + flen * batch);
        for (std::uint64_t k = 0; k < batch; ++k) {
            std::uint64_t seq = c.next_seq++;
            std::uint8_t* f = c.out.data() + at + k * flen;
            std::memcpy(f, pub_template_.data(), flen);
            std::uint64_t seqword = (std::uint64_t(c.publisher) << seq_bits) | seq;
            std::uint8_t* pay = f + pub_header_len_;
            std::memcpy(pay, &now, 8);
            std::memcpy(pay + 8, &seqword, 8);
            mask_bytes(pay, broadcast_header_bytes, mask_, 0);
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
        bool pending = c.state == State::connecting || c.state == State::handshaking ||
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
            on_event(slot, events[i].events, now);
        }
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
