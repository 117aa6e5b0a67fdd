#include "net/listener.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace roomcast::net {

bool parse_listen_address(std::string_view text, ListenAddress& out, std::string& error) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            error = "expected [IPv6]:PORT";
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            error = "expected ADDR:PORT";
            return false;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host == "*") host = "0.0.0.0";
    }
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p > 65535) {
        error = "bad port '" + std::string(port) + "'";
        return false;
    }
    out = ListenAddress{};
    out.host = std::string(host);
    out.port = static_cast<std::uint16_t>(p);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
    if (inet_pton(AF_INET, out.host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(out.port);
        out.len = sizeof(sockaddr_in);
        return true;
    }
    if (inet_pton(AF_INET6, out.host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(out.port);
        out.len = sizeof(sockaddr_in6);
        return true;
    }
    error = "'" + out.host + "' is not an IPv4 or IPv6 literal";
    return false;
}

int open_listener(const ListenAddress& addr, int backlog) noexcept {
    const int fd = ::socket(addr.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        const int e = errno;
        ::close(fd);
        return -e;
    }
    if (addr.addr.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    // Accepted sockets inherit TCP_NODELAY from the listener (Linux clones the listening socket), which
    // saves one setsockopt per connection (test/net/listener_test.cpp checks the inheritance).
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
        const int e = errno;
        ::close(fd);
        return -e;
    }
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr.addr), addr.len) < 0 || ::listen(fd, backlog) < 0) {
        const int e = errno;
        ::close(fd);
        return -e;
    }
    return fd;
}

std::uint16_t bound_port(int fd) noexcept {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

std::string format_address(const ListenAddress& addr, std::uint16_t port) {
    if (addr.addr.ss_family == AF_INET6) return "[" + addr.host + "]:" + std::to_string(port);
    return addr.host + ":" + std::to_string(port);
}

}  // namespace roomcast::net
