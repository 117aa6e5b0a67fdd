#include "roomcast/server.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "net/clock.hpp"
#include "net/listener.hpp"
#include "server/worker.hpp"
#include "simd/kernels.hpp"
#include "util/log.hpp"

namespace roomcast {

namespace {

// Descriptors are the limit on connections: take the hard limit.
void raise_fd_limit() noexcept {
    rlimit rl;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

void pin_to_cpu(std::thread& t, unsigned cpu) noexcept {
    const long ncpu = ::sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % static_cast<unsigned>(ncpu > 0 ? ncpu : 1), &set);
    if (::pthread_setaffinity_np(t.native_handle(), sizeof set, &set) != 0)
        ROOMCAST_LOG(warn, "could not pin reactor %u to a CPU\n", cpu);
}

}  // namespace

int run_server(const Config& cfg) {
    log::level.store(cfg.log_level);
    if (!simd::select_kernels(cfg.simd)) {
        std::fprintf(stderr, "roomcast: --simd %s: not supported by this CPU\n", cfg.simd.c_str());
        return 2;
    }
    net::ListenAddress addr;
    std::string err;
    if (!net::parse_listen_address(cfg.listen, addr, err)) {
        std::fprintf(stderr, "roomcast: --listen %s: %s\n", cfg.listen.c_str(), err.c_str());
        return 2;
    }
    unsigned threads = cfg.threads;
    if (threads == 0) {
        const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? static_cast<unsigned>(n) : 1;
    }
    raise_fd_limit();

    // SIGPIPE never kills us (sends also use MSG_NOSIGNAL); the others are taken by sigwait below,
    // so they are blocked in every thread (threads inherit the mask).
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    // One listener per reactor on the same address; with port 0 the first one picks the port.
    std::vector<int> listeners;
    constexpr int backlog = 4096;
    for (unsigned i = 0; i < threads; ++i) {
        const int fd = net::open_listener(addr, backlog);
        if (fd < 0) {
            std::fprintf(stderr, "roomcast: bind(%s): %s\n", net::format_address(addr, addr.port).c_str(), std::strerror(-fd));
            for (int l : listeners) ::close(l);
            return 2;
        }
        if (i == 0 && addr.port == 0) {
            addr.port = net::bound_port(fd);
            auto* sa = reinterpret_cast<sockaddr_in*>(&addr.addr);  // sin_port and sin6_port share the offset
            sa->sin_port = htons(addr.port);
        }
        listeners.push_back(fd);
    }

    server::Shared shared;
    shared.cfg = &cfg;
    std::unique_ptr<server::IpLimiter> ip_limiter;
    if (cfg.max_connections_per_ip) {
        ip_limiter = std::make_unique<server::IpLimiter>(cfg.max_connections_per_ip);
        shared.ip_limiter = ip_limiter.get();
    }
    shared.start_ms = net::monotonic_ms();
    std::vector<std::unique_ptr<server::Worker>> workers;
    for (unsigned i = 0; i < threads; ++i) {
        workers.push_back(std::make_unique<server::Worker>(i, shared, listeners[i]));
        shared.workers.push_back(workers.back().get());
    }
    std::vector<std::thread> pool;
    for (unsigned i = 0; i < threads; ++i) {
        pool.emplace_back([w = workers[i].get()] { w->run(); });
        if (cfg.pin) pin_to_cpu(pool.back(), i);
    }

    const std::string where = net::format_address(addr, addr.port);
    std::printf("roomcast: listening on %s (%u reactor%s, simd %s)\n", where.c_str(), threads, threads == 1 ? "" : "s",
                simd::kernels().name);
    std::printf("  ws://%s/echo      WebSocket echo\n  http://%s/health  health JSON\n", where.c_str(), where.c_str());
    std::fflush(stdout);

    for (;;) {
        int sig = 0;
        if (::sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGHUP) {
            ROOMCAST_LOG(info, "SIGHUP: nothing to reload\n");
            continue;
        }
        ROOMCAST_LOG(info, "%s: draining (up to %u ms)\n", sig == SIGINT ? "SIGINT" : "SIGTERM", cfg.drain_timeout_ms);
        break;
    }
    shared.stopping.store(true, std::memory_order_release);
    for (auto& w : workers) w->wake();
    for (auto& t : pool) t.join();
    ROOMCAST_LOG(info, "stopped\n");
    return 0;
}

}  // namespace roomcast
