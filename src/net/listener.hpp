// Listening sockets: one per reactor, bound with SO_REUSEPORT to the same address so the kernel
// spreads incoming connections over the reactors.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace roomcast::net {

struct ListenAddress {
    sockaddr_storage addr{};
    socklen_t len = 0;
    std::string host;  // as given, without brackets
    std::uint16_t port = 0;
};

// Parses "A.B.C.D:PORT", "[v6]:PORT" (also "*:PORT" = 0.0.0.0). False with a message on bad input.
bool parse_listen_address(std::string_view text, ListenAddress& out, std::string& error);

// Opens a non-blocking, close-on-exec listening socket with SO_REUSEADDR and SO_REUSEPORT on addr.
// Returns the fd or -errno.
int open_listener(const ListenAddress& addr, int backlog) noexcept;

// The port a bound socket got (for port 0).
std::uint16_t bound_port(int fd) noexcept;

// "127.0.0.1:8080" / "[::1]:8080" for display.
std::string format_address(const ListenAddress& addr, std::uint16_t port);

}  // namespace roomcast::net
