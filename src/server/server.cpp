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
#include "pubsub/inbox.hpp"
#include "tls/context.hpp"
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

    // TLS: a bad or unreadable certificate/key is one line and exit 2.
    const bool tls_on = !cfg.tls_cert.empty() || !cfg.tls_key.empty();
    if (tls_on && (cfg.tls_cert.empty() || cfg.tls_key.empty())) {
        std::fprintf(stderr, "roomcast: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (!cfg.tls_listen.empty() && !tls_on) {
        std::fprintf(stderr, "roomcast: --tls-listen needs --tls-cert and --tls-key\n");
        return 2;
    }
    tls::TlsContextHolder tls_holder;
    if (tls_on) {
        if (std::string e = tls_holder.load(cfg.tls_cert, cfg.tls_key); !e.empty()) {
            std::fprintf(stderr, "roomcast: TLS: %s\n", e.c_str());
            return 2;
        }
    }
    net::ListenAddress tls_addr;
    if (!cfg.tls_listen.empty() && !net::parse_listen_address(cfg.tls_listen, tls_addr, err)) {
        std::fprintf(stderr, "roomcast: --tls-listen %s: %s\n", cfg.tls_listen.c_str(), err.c_str());
        return 2;
    }
    // The --listen port is TLS when certificates are given without --tls-listen.
    const bool main_is_tls = tls_on && cfg.tls_listen.empty();

    // One listener per reactor on each address; with port 0 the first one picks the port.
    std::vector<int> listeners;
    std::vector<int> tls_listeners;
    constexpr int backlog = 4096;
    auto open_all = [&](net::ListenAddress& a, std::vector<int>& out) {
        for (unsigned i = 0; i < threads; ++i) {
            const int fd = net::open_listener(a, backlog);
            if (fd < 0) {
                std::fprintf(stderr, "roomcast: bind(%s): %s\n", net::format_address(a, a.port).c_str(), std::strerror(-fd));
                return false;
            }
            if (i == 0 && a.port == 0) {
                a.port = net::bound_port(fd);
                auto* sa = reinterpret_cast<sockaddr_in*>(&a.addr);  // sin_port and sin6_port share the offset
                sa->sin_port = htons(a.port);
            }
            out.push_back(fd);
        }
        return true;
    };
    if (!open_all(addr, listeners) || (!cfg.tls_listen.empty() && !open_all(tls_addr, tls_listeners))) {
        for (int l : listeners) ::close(l);
        for (int l : tls_listeners) ::close(l);
        return 2;
    }

    server::Shared shared;
    shared.cfg = &cfg;
    std::unique_ptr<server::IpLimiter> ip_limiter;
    if (cfg.max_connections_per_ip) {
        ip_limiter = std::make_unique<server::IpLimiter>(cfg.max_connections_per_ip);
        shared.ip_limiter = ip_limiter.get();
    }
    shared.start_ms = net::monotonic_ms();
    // Cross-reactor inboxes: one bounded ring per (producer, consumer) pair; a full ring spills into
    // the producer's own overflow queue, so no reactor ever blocks on another (pubsub/inbox.hpp).
    constexpr std::size_t inbox_ring_capacity = 4096;
    int bus_err = 0;
    std::unique_ptr<pubsub::Bus> bus = pubsub::Bus::create(threads, inbox_ring_capacity, &bus_err);
    if (!bus) {
        std::fprintf(stderr, "roomcast: creating the reactor inboxes: %s\n", std::strerror(bus_err));
        for (int l : listeners) ::close(l);
        for (int l : tls_listeners) ::close(l);
        return 2;
    }
    shared.bus = bus.get();
    if (tls_on) shared.tls = &tls_holder;
    std::vector<std::unique_ptr<server::Worker>> workers;
    for (unsigned i = 0; i < threads; ++i) {
        const int fds[2] = {listeners[i], tls_listeners.empty() ? -1 : tls_listeners[i]};
        const bool tls_flags[2] = {main_is_tls, !tls_listeners.empty()};
        workers.push_back(std::make_unique<server::Worker>(i, shared, fds, tls_flags));
        shared.workers.push_back(workers.back().get());
    }
    std::vector<std::thread> pool;
    for (unsigned i = 0; i < threads; ++i) {
        pool.emplace_back([w = workers[i].get()] { w->run(); });
        if (cfg.pin) pin_to_cpu(pool.back(), i);
    }

    const std::string where = net::format_address(addr, addr.port);
    std::printf("roomcast: listening on %s (%u reactor%s, simd %s%s)\n", where.c_str(), threads, threads == 1 ? "" : "s",
                simd::kernels().name, main_is_tls ? ", TLS" : "");
    const char* ws = main_is_tls ? "wss" : "ws";
    const char* http = main_is_tls ? "https" : "http";
    std::printf("  %s://%s/ws         rooms (JSON control protocol)\n  %s://%s/ws/{room}  raw subscriber\n"
                "  %s://%s/publish/{room}  raw publisher (POST: %s://%s/publish/{room})\n"
                "  %s://%s/echo       echo\n  %s://%s/health  %s://%s/metrics  %s://%s/ (demo)\n",
                ws, where.c_str(), ws, where.c_str(), ws, where.c_str(), http, where.c_str(), ws, where.c_str(), http,
                where.c_str(), http, where.c_str(), http, where.c_str());
    if (!tls_listeners.empty())
        std::printf("roomcast: TLS listening on %s (wss://%s/...)\n", net::format_address(tls_addr, tls_addr.port).c_str(),
                    net::format_address(tls_addr, tls_addr.port).c_str());
    std::fflush(stdout);

    for (;;) {
        int sig = 0;
        if (::sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGHUP) {
            // New connections get the new certificate; open ones keep theirs. A bad file keeps the old.
            if (!tls_on) {
                ROOMCAST_LOG(info, "SIGHUP: no TLS configured, nothing to reload\n");
            } else if (std::string e = tls_holder.reload(); !e.empty()) {
                ROOMCAST_LOG(error, "SIGHUP: keeping the old certificate: %s\n", e.c_str());
            } else {
                ROOMCAST_LOG(info, "SIGHUP: certificate and key reloaded from %s, %s\n", cfg.tls_cert.c_str(),
                             cfg.tls_key.c_str());
            }
            continue;
        }
        ROOMCAST_LOG(info, "%s: draining (up to %u ms)\n", sig == SIGINT ? "SIGINT" : "SIGTERM", cfg.drain_timeout_ms);
        break;
    }
    shared.stopping.store(true, std::memory_order_release);
    for (auto& w : workers) w->wake();
    for (auto& t : pool) t.join();
    // Frames still in flight between reactors, including those queued for ring space (freed only
    // once they reach a ring): until a whole pass finds nothing.
    for (bool busy = true; busy;) {
        busy = false;
        for (auto& w : workers) busy |= w->dispose_inbox() != 0;
    }
    workers.clear();
    ROOMCAST_LOG(info, "stopped\n");
    return 0;
}

}  // namespace roomcast
