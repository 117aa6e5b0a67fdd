// The loopback ceiling: a single-threaded epoll TCP echo server, no WebSocket at all. Whatever a client
// sends comes straight back. roomcast-bench echo --raw-tcp sends it the same masked frames it would send a
// WebSocket server, so "msgs/s" here is what one core can do with no protocol work.
//   peer-tcp_echo [--listen ADDR:PORT]   (default 127.0.0.1:0; prints "listening on ADDR:PORT")
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr std::size_t buffer_bytes = 256 * 1024;
constexpr int max_events = 512;

// Bytes read but not yet written back (only when the socket's send buffer was full).
struct Pending {
    std::vector<char> bytes;
    std::size_t off = 0;
    bool want_out = false;
};

void raise_fd_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

bool parse_listen(const char* text, sockaddr_in& addr) {
    std::string s(text);
    std::size_t colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, s.substr(0, colon).c_str(), &addr.sin_addr) != 1) return false;
    char* end = nullptr;
    long port = std::strtol(s.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) return false;
    addr.sin_port = htons(std::uint16_t(port));
    return true;
}

void close_fd(int fd, std::vector<std::unique_ptr<Pending>>& pending) {
    if (std::size_t(fd) < pending.size()) pending[fd].reset();
    ::close(fd);
}

// Writes bytes, keeping what the kernel did not take; false when the peer is gone.
bool write_all(int epfd, int fd, const char* p, std::size_t n, std::vector<std::unique_ptr<Pending>>& pending) {
    auto& slot = pending[fd];
    if (slot && slot->off < slot->bytes.size()) {  // keep order: append behind what is waiting
        slot->bytes.insert(slot->bytes.end(), p, p + n);
        return true;
    }
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return false;
            break;
        }
        p += w;
        n -= std::size_t(w);
    }
    if (n == 0) return true;
    if (!slot) slot = std::make_unique<Pending>();
    slot->bytes.assign(p, p + n);
    slot->off = 0;
    if (!slot->want_out) {
        slot->want_out = true;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.fd = fd;
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    return true;
}

bool drain_pending(int epfd, int fd, Pending& p) {
    while (p.off < p.bytes.size()) {
        ssize_t w = ::send(fd, p.bytes.data() + p.off, p.bytes.size() - p.off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN;
        }
        p.off += std::size_t(w);
    }
    p.bytes.clear();
    p.off = 0;
    p.want_out = false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help") {
            std::puts("usage: peer-tcp_echo [--listen ADDR:PORT]  (default 127.0.0.1:0)");
            return 0;
        }
        if (a == "--listen" && i + 1 < argc) {
            if (!parse_listen(argv[++i], addr)) {
                std::fprintf(stderr, "peer-tcp_echo: --listen: expected IPv4:PORT, got '%s'\n", argv[i]);
                return 2;
            }
            continue;
        }
        std::fprintf(stderr, "peer-tcp_echo: unknown option '%s'\n", argv[i]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 4096) != 0) {
        std::fprintf(stderr, "peer-tcp_echo: bind/listen: %s\n", std::strerror(errno));
        return 2;
    }
    socklen_t len = sizeof addr;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
    std::printf("listening on %s:%u\n", ip, ntohs(addr.sin_port));
    std::fflush(stdout);

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    std::vector<std::unique_ptr<Pending>> pending(1024);
    auto buf = std::make_unique<char[]>(buffer_bytes);
    epoll_event events[max_events];
    for (;;) {
        int n = epoll_wait(epfd, events, max_events, -1);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (std::size_t(c) >= pending.size()) pending.resize(std::size_t(c) * 2);
                    epoll_event cev{};
                    cev.events = EPOLLIN;
                    cev.data.fd = c;
                    epoll_ctl(epfd, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            if (events[i].events & EPOLLOUT) {
                if (pending[fd] && !drain_pending(epfd, fd, *pending[fd])) {
                    close_fd(fd, pending);
                    continue;
                }
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (pending[fd] && pending[fd]->want_out) continue;  // backpressure: read when drained
                ssize_t r = ::recv(fd, buf.get(), buffer_bytes, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    close_fd(fd, pending);
                    continue;
                }
                if (r > 0 && !write_all(epfd, fd, buf.get(), std::size_t(r), pending)) close_fd(fd, pending);
            }
        }
    }
}
