// Batched socket I/O through io_uring: many sends and reads, one system call.
//
// Why: a reactor turn often writes to many sockets (a room message to every subscriber, echo replies to
// every connection that was readable). One send() per socket pays the user/kernel transition each time;
// on virtual machines that transition alone can cost a microsecond. Here the turn prepares one SQE per
// socket and io_uring_enter() runs them all.
//
// Semantics are those of send()/sendmsg() with MSG_DONTWAIT | MSG_NOSIGNAL: every operation is attempted
// at once, in submission order, and completes with the byte count (possibly short), -EAGAIN when the
// socket buffer is full, or another -errno. MSG_DONTWAIT makes io_uring complete a would-block
// operation with -EAGAIN instead of parking it, so run() never waits on a peer.
//
// Ordering: operations on DIFFERENT sockets are independent. Two operations on the SAME socket in one
// batch could interleave their bytes if the first is short: callers never put a socket in a batch twice.
//
// Not thread-safe: one per reactor. Unavailable (old kernel, io_uring disabled by sysctl or seccomp):
// init() returns false and the caller keeps using plain syscalls.
#pragma once
#include <liburing.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace roomcast::net {

class BatchRing {
public:
    BatchRing() = default;
    ~BatchRing() {
        if (ok_) io_uring_queue_exit(&ring_);
    }
    BatchRing(const BatchRing&) = delete;
    BatchRing& operator=(const BatchRing&) = delete;

    // `entries`: the most operations one run() carries. False (and errno-style code in *err) if the
    // kernel refuses io_uring.
    bool init(unsigned entries, int* err = nullptr) noexcept {
        const int r = io_uring_queue_init(entries, &ring_, 0);
        if (r < 0) {
            if (err) *err = -r;
            return false;
        }
        ok_ = true;
        capacity_ = entries;
        return true;
    }
    bool ok() const noexcept { return ok_; }
    unsigned capacity() const noexcept { return capacity_; }
    unsigned prepared() const noexcept { return prepared_; }
    bool full() const noexcept { return prepared_ == capacity_; }

    // Queue one send of [p, p+n) on fd; `tag` comes back in run(). Requires !full(). The bytes must stay
    // valid until run() returns.
    // `more`: MSG_MORE, the bytes may wait in the kernel for what follows (a close() then puts its FIN
    // in the same segment).
    void send(int fd, const void* p, std::size_t n, std::uint64_t tag, bool more = false) noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_send(sqe, fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        io_uring_sqe_set_data64(sqe, tag);
        ++prepared_;
    }
    // Queue one recv into [p, p+n) (MSG_DONTWAIT: -EAGAIN when nothing is there). Requires !full().
    void recv(int fd, void* p, std::size_t n, std::uint64_t tag) noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_recv(sqe, fd, p, n, MSG_DONTWAIT);
        io_uring_sqe_set_data64(sqe, tag);
        ++prepared_;
    }
    // Queue one sendmsg (msghdr and its iovecs stay valid until run() returns). Requires !full().
    void sendmsg(int fd, const msghdr* mh, std::uint64_t tag) noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_sendmsg(sqe, fd, mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, tag);
        ++prepared_;
    }

    // Queue one close(fd) (the descriptor number stays ours until run() ran it). Requires !full().
    void close(int fd, std::uint64_t tag) noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_close(sqe, fd);
        io_uring_sqe_set_data64(sqe, tag);
        ++prepared_;
    }
    // Queue one epoll_ctl(epfd, op, fd, ev) (*ev stays valid until run() returns). Requires !full().
    void epoll_ctl(int epfd, int op, int fd, epoll_event* ev, std::uint64_t tag) noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        io_uring_prep_epoll_ctl(sqe, epfd, fd, op, ev);
        io_uring_sqe_set_data64(sqe, tag);
        ++prepared_;
    }
    // Runs everything queued with one io_uring_enter and calls done(tag, result) for each operation that
    // ran (result: bytes sent or -errno). False if the kernel did not take every operation: those were
    // not reported through done() (callers preset a failure result for them) and the ring is retired:
    // ok() is false from then on and the caller goes back to plain syscalls.
    template <class Done>
    bool run(Done&& done) noexcept {
        const unsigned want = prepared_;
        if (want == 0) return true;
        prepared_ = 0;
        int r;
        do {
            r = io_uring_submit_and_wait(&ring_, want);
        } while (r == -EINTR);
        const unsigned submitted = r > 0 ? static_cast<unsigned>(r) : 0;
        unsigned got = 0;
        while (got < submitted) {
            io_uring_cqe* cqe = nullptr;
            int w;
            do {
                w = io_uring_wait_cqe(&ring_, &cqe);
            } while (w == -EINTR);
            if (w < 0) break;
            done(io_uring_cqe_get_data64(cqe), cqe->res);
            io_uring_cqe_seen(&ring_, cqe);
            ++got;
        }
        if (got == want) return true;
        ok_ = false;  // SQEs may be left in the ring with pointers that will go stale: never submit again
        return false;
    }

private:
    io_uring ring_{};
    bool ok_ = false;
    unsigned capacity_ = 0;
    unsigned prepared_ = 0;
};

}  // namespace roomcast::net
