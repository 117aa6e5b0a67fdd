// Thin syscall wrappers: the result or -errno, never throw, never log, retry EINTR.
#pragma once
#include <cerrno>
#include <cstddef>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <span>
#include <utility>

namespace roomcast::net::sys {

inline ssize_t recv_some(int fd, void* into, std::size_t n) noexcept {
    ssize_t r;
    do { r = ::recv(fd, into, n, 0); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

// sendmsg with MSG_NOSIGNAL: a peer that reset never raises SIGPIPE.
inline ssize_t send_iov(int fd, const iovec* iov, int count) noexcept {
    msghdr mh{};
    mh.msg_iov = const_cast<iovec*>(iov);
    mh.msg_iovlen = static_cast<std::size_t>(count);
    ssize_t r;
    do { r = ::sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

inline ssize_t send_some(int fd, const void* p, std::size_t n) noexcept {
    ssize_t r;
    do { r = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

inline int accept_nb(int lfd, sockaddr_storage* addr, socklen_t* len) noexcept {
    int r;
    do { r = ::accept4(lfd, reinterpret_cast<sockaddr*>(addr), len, SOCK_NONBLOCK | SOCK_CLOEXEC); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

inline int epoll_wait_for(int epfd, epoll_event* ev, int max, int timeout_ms) noexcept {
    int r = ::epoll_wait(epfd, ev, max, timeout_ms);
    return r < 0 ? -errno : r;
}

inline int epoll_set(int epfd, int op, int fd, std::uint32_t events, std::uint64_t data) noexcept {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    return ::epoll_ctl(epfd, op, fd, &ev) < 0 ? -errno : 0;
}

inline void close_fd(int fd) noexcept {
    if (fd >= 0) ::close(fd);  // Linux: never retry close on EINTR
}

// Owns a file descriptor.
class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    ~UniqueFd() { close_fd(fd_); }
    UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) {
            close_fd(fd_);
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        close_fd(fd_);
        fd_ = fd;
    }
    explicit operator bool() const noexcept { return fd_ >= 0; }

private:
    int fd_ = -1;
};

}  // namespace roomcast::net::sys
