#include "net/listener.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace roomcast::net {
namespace {

// The reactor no longer sets TCP_NODELAY per accepted socket: it relies on the listener's option being
// inherited. If a kernel ever stopped doing that, small frames would wait for Nagle: this catches it.
TEST(Listener, AcceptedSocketsInheritNoDelay) {
    for (const char* text : {"127.0.0.1:0", "[::1]:0"}) {
        ListenAddress addr;
        std::string err;
        ASSERT_TRUE(parse_listen_address(text, addr, err)) << err;
        const int lfd = open_listener(addr, 16);
        if (lfd == -EAFNOSUPPORT || lfd == -EADDRNOTAVAIL) continue;  // no IPv6 on this machine
        ASSERT_GE(lfd, 0) << text << ": " << -lfd;
        int v = 0;
        socklen_t vl = sizeof v;
        ASSERT_EQ(::getsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
        EXPECT_EQ(v, 1);
        sockaddr_storage bound{};
        socklen_t blen = sizeof bound;
        ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&bound), &blen), 0);
        const int cfd = ::socket(bound.ss_family, SOCK_STREAM, 0);
        ASSERT_GE(cfd, 0);
        ASSERT_EQ(::connect(cfd, reinterpret_cast<sockaddr*>(&bound), blen), 0);
        int afd = -1;
        for (int i = 0; i < 1000 && afd < 0; ++i) {
            afd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
            if (afd < 0) ::usleep(1000);
        }
        ASSERT_GE(afd, 0);
        v = 0;
        vl = sizeof v;
        ASSERT_EQ(::getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
        EXPECT_EQ(v, 1) << text << ": the accepted socket did not inherit TCP_NODELAY";
        ::close(afd);
        ::close(cfd);
        ::close(lfd);
    }
}

}  // namespace
}  // namespace roomcast::net
