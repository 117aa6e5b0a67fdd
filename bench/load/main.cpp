// roomcast-bench: start the workers, walk the run through set-up, warmup and the measured interval,
// sample the server's CPU time (and RSS) from /proc, and report: a progress line per second on stderr,
// a summary table and one "JSON {...}" line on stdout.
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "options.hpp"
#include "wire.hpp"
#include "worker.hpp"

namespace rb = roomcast::bench;

namespace {

constexpr std::uint64_t ns_per_s = 1'000'000'000u;

// utime + stime of every thread of the process, in seconds; < 0 when unreadable.
double server_cpu_s(int pid) {
    if (pid <= 0) return -1;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    std::ifstream in(path);
    std::string line;
    if (!std::getline(in, line)) return -1;
    std::size_t close = line.rfind(')');  // the command name may contain spaces and parentheses
    if (close == std::string::npos) return -1;
    std::istringstream fields(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {  // field 3 is the state
        if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
}

// RssAnon in KiB (anonymous resident memory: heap and anonymous mappings, i.e. what the server
// allocated; code pages of shared libraries faulted in on first use are file-backed and excluded);
// < 0 when unreadable.
long server_rss_kb(int pid) {
    if (pid <= 0) return -1;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", pid);
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("RssAnon:", 0) == 0) return std::strtol(line.c_str() + 8, nullptr, 10);
    return -1;
}

double client_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string human(double v) {
    char b[32];
    if (v >= 1e9) std::snprintf(b, sizeof b, "%.2fG", v / 1e9);
    else if (v >= 1e6) std::snprintf(b, sizeof b, "%.2fM", v / 1e6);
    else if (v >= 1e4) std::snprintf(b, sizeof b, "%.1fk", v / 1e3);
    else std::snprintf(b, sizeof b, "%.0f", v);
    return b;
}

const char* work_noun(rb::Mode m) {
    switch (m) {
    case rb::Mode::echo: return "msgs";
    case rb::Mode::connect: return "handshakes";
    case rb::Mode::broadcast: return "deliveries";
    case rb::Mode::idle: return "msgs";
    }
    return "msgs";
}

void raise_fd_limit(unsigned needed) {
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur >= needed) return;
    if (lim.rlim_max < needed) {
        std::fprintf(stderr,
                     "roomcast-bench: needs %u file descriptors but the hard limit (ulimit -Hn) is %llu\n",
                     needed, static_cast<unsigned long long>(lim.rlim_max));
        std::exit(2);
    }
    lim.rlim_cur = needed;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        std::fprintf(stderr, "roomcast-bench: setrlimit(RLIMIT_NOFILE, %u): %s\n", needed, std::strerror(errno));
        std::exit(2);
    }
}

void resolve(const rb::Options& o, rb::Shared& sh) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(o.port);
    if (int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res); rc != 0 || !res) {
        std::fprintf(stderr, "roomcast-bench: getaddrinfo(%s): %s\n", o.host.c_str(), gai_strerror(rc));
        std::exit(2);
    }
    std::memcpy(&sh.addr, res->ai_addr, res->ai_addrlen);
    sh.addr_len = res->ai_addrlen;
    freeaddrinfo(res);
}

// The client TLS context: exact version, optional cipher list, ALPN http/1.1, read-ahead (one socket read
// fills OpenSSL's buffer; the worker drains whole records), writes may be retried from a moved buffer.
// No verification unless --tls-ca.
SSL_CTX* make_tls_context(const rb::Options& o) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    auto die = [&](const char* what) {
        char why[256];
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        std::fprintf(stderr, "roomcast-bench: TLS set-up: %s: %s\n", what, why);
        std::exit(2);
    };
    if (!ctx) die("SSL_CTX_new");
    int v = o.tls_version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    if (!o.tls_ciphers.empty()) {
        int ok = o.tls_version == 13 ? SSL_CTX_set_ciphersuites(ctx, o.tls_ciphers.c_str())
                                     : SSL_CTX_set_cipher_list(ctx, o.tls_ciphers.c_str());
        if (ok != 1) die("--tls-ciphers");
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_read_ahead(ctx, 1);
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn);
    if (!o.tls_ca.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, o.tls_ca.c_str(), nullptr) != 1) die("--tls-ca");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    return ctx;
}

struct Totals {
    std::uint64_t work = 0, errors = 0;
    unsigned open = 0;
};

Totals sum_live(const std::vector<std::unique_ptr<rb::LiveCounters>>& live) {
    Totals t;
    for (auto& l : live) {
        t.work += l->work.load(std::memory_order_relaxed);
        t.errors += l->errors.load(std::memory_order_relaxed);
        t.open += l->open.load(std::memory_order_relaxed);
    }
    return t;
}

// Sleeps through one phase, printing a progress line at every whole second.
void run_phase(const rb::Options& o, const char* name, double seconds, unsigned expected_open,
               const std::vector<std::unique_ptr<rb::LiveCounters>>& live) {
    using clock = std::chrono::steady_clock;
    auto start = clock::now();
    auto end = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
    Totals last = sum_live(live);
    double last_cpu = server_cpu_s(o.server_pid);
    auto last_t = start;
    int tick = 0;
    while (clock::now() < end) {
        auto next = start + std::chrono::seconds(++tick);
        std::this_thread::sleep_until(std::min(next, end));
        auto now = clock::now();
        if (!o.progress || now < next) continue;
        Totals t = sum_live(live);
        double dt = std::chrono::duration<double>(now - last_t).count();
        double cpu = server_cpu_s(o.server_pid);
        char cpu_text[32] = "";
        if (cpu >= 0 && last_cpu >= 0) std::snprintf(cpu_text, sizeof cpu_text, "  server-cpu %3.0f%%", 100 * (cpu - last_cpu) / dt);
        std::fprintf(stderr, "roomcast-bench [%-7s %3d/%.0fs] %s %s/s  errors %" PRIu64 "  open %u/%u%s\n", name, tick,
                     seconds, human(double(t.work - last.work) / dt).c_str(), work_noun(o.mode), t.errors, t.open,
                     expected_open, cpu_text);
        last = t;
        last_t = now;
        last_cpu = cpu;
    }
}

}  // namespace

int main(int argc, char** argv) {
    rb::Options o = rb::parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);

    unsigned conns = o.mode == rb::Mode::broadcast ? o.subscribers + o.publishers
                     : o.mode == rb::Mode::connect ? o.concurrency
                                                   : o.connections;
    raise_fd_limit(conns + 64 + 8 * o.threads);

    rb::Shared sh;
    sh.opt = &o;
    resolve(o, sh);
    sh.request_main = rb::upgrade_request(o.host, o.port, o.path, o.deflate);
    sh.request_sub = rb::upgrade_request(o.host, o.port, o.sub_path, o.deflate);
    sh.request_pub = rb::upgrade_request(o.host, o.port, o.pub_path, o.deflate);
    sh.expected_accept = rb::accept_for_key(rb::client_key);
    const bool broadcast = o.mode == rb::Mode::broadcast;
    // text: printable ASCII / JSON (valid UTF-8); binary: all byte values
    sh.payload = rb::build_payload(o.size_bytes, o.binary, o.payload == rb::PayloadKind::json, broadcast);
    sh.header_bytes = broadcast && !o.binary ? rb::text_header_bytes : rb::broadcast_header_bytes;
    if (o.tls) sh.tls_ctx = make_tls_context(o);
    if (o.mode == rb::Mode::broadcast) {
        sh.windows = std::make_unique<rb::PublishWindow[]>(o.publishers);
        for (unsigned p = 0; p < o.publishers; ++p) {
            sh.windows[p].size = o.window;
            sh.windows[p].slots = std::make_unique<rb::PublishWindow::Slot[]>(o.window);
        }
    }
    if (!o.pin_cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.pin_cpus[0], &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    unsigned expected_open = o.mode == rb::Mode::connect ? 0 : conns;
    long rss_before = o.mode == rb::Mode::idle ? server_rss_kb(o.server_pid) : -1;

    std::vector<std::unique_ptr<rb::LiveCounters>> live;
    std::vector<std::unique_ptr<rb::WorkerResult>> results;
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < o.threads; ++i) {
        live.push_back(std::make_unique<rb::LiveCounters>());
        results.push_back(std::make_unique<rb::WorkerResult>());
    }
    for (unsigned i = 0; i < o.threads; ++i)
        threads.emplace_back(rb::run_worker, std::ref(sh), i, o.threads, std::ref(*live[i]), std::ref(*results[i]));

    // Set-up: wait until every worker has opened (or given up on) its connections.
    auto setup_start = std::chrono::steady_clock::now();
    double setup_s = 0;
    int last_report = 0;
    while (sh.ready_workers.load(std::memory_order_acquire) < o.threads) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - setup_start).count();
        if (setup_s > o.setup_timeout_s) break;
        if (o.progress && int(setup_s) > last_report) {
            last_report = int(setup_s);
            std::fprintf(stderr, "roomcast-bench [setup   %3ds] open %u/%u  errors %" PRIu64 "\n", last_report,
                         sum_live(live).open, expected_open, sum_live(live).errors);
        }
    }
    setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - setup_start).count();
    Totals after_setup = sum_live(live);
    if (o.mode != rb::Mode::connect && after_setup.open == 0) {
        sh.phase.store(int(rb::Phase::stop), std::memory_order_release);
        for (auto& t : threads) t.join();
        rb::ErrorCounts e;
        for (auto& r : results) e.add(r->errors);
        std::fprintf(stderr,
                     "roomcast-bench: no connection to %s:%u could be opened (connect errors %" PRIu64
                     ", handshake errors %" PRIu64 ", TLS errors %" PRIu64 ")\n",
                     o.host.c_str(), o.port, e.connect, e.handshake, e.tls);
        return 1;
    }

    sh.phase.store(int(rb::Phase::warmup), std::memory_order_release);
    run_phase(o, "warmup", o.warmup_s, expected_open, live);

    double cpu0 = server_cpu_s(o.server_pid);
    double client0 = client_cpu_s();
    auto t0 = std::chrono::steady_clock::now();
    sh.phase.store(int(rb::Phase::measure), std::memory_order_release);
    run_phase(o, "measure", o.duration_s, expected_open, live);
    long rss_after = o.mode == rb::Mode::idle ? server_rss_kb(o.server_pid) : -1;
    sh.phase.store(int(rb::Phase::stop), std::memory_order_release);
    auto t1 = std::chrono::steady_clock::now();
    double cpu1 = server_cpu_s(o.server_pid);
    double client1 = client_cpu_s();
    for (auto& t : threads) t.join();

    rb::WorkerResult total;
    for (auto& r : results) {
        total.messages += r->messages;
        total.bytes += r->bytes;
        total.published += r->published;
        total.cycles += r->cycles;
        total.latency.merge(r->latency);
        total.errors.add(r->errors);
        total.gaps += r->gaps;
        total.duplicates += r->duplicates;
        total.window_timeouts += r->window_timeouts;
        total.unclean_closes += r->unclean_closes;
        total.publisher_lag_max_ns = std::max(total.publisher_lag_max_ns, r->publisher_lag_max_ns);
        total.opened += r->opened;
        total.still_open += r->still_open;
        total.ws_bytes += r->ws_bytes;
        total.z_messages += r->z_messages;
        total.z_skipped += r->z_skipped;
        total.deflate_conns += r->deflate_conns;
        total.tls_handshakes += r->tls_handshakes;
        total.tls_resumed += r->tls_resumed;
        if (total.tls_desc.empty()) total.tls_desc = r->tls_desc;
        if (total.deflate_desc.empty()) total.deflate_desc = r->deflate_desc;
    }
    if (sh.tls_ctx) SSL_CTX_free(sh.tls_ctx);
    const double wire_ratio = total.ws_bytes > 0 ? double(total.bytes) / double(total.ws_bytes) : 0;

    const double secs = std::chrono::duration<double>(t1 - t0).count();
    const double rate = double(total.messages) / secs;
    const double mb_s = double(total.bytes) / secs / 1e6;
    const bool have_cpu = cpu0 >= 0 && cpu1 >= 0;
    const double server_cpu = have_cpu ? cpu1 - cpu0 : 0;
    const double per_cpu = have_cpu && server_cpu > 0 ? double(total.messages) / server_cpu : 0;
    const double client_cpu = client1 - client0;
    const auto& h = total.latency;
    auto us = [](std::uint64_t ns) { return double(ns) / 1e3; };
    const double p50 = us(h.percentile(50)), p90 = us(h.percentile(90)), p99 = us(h.percentile(99)),
                 p999 = us(h.percentile(99.9)), pmax = us(h.max()), mean = h.mean() / 1e3;
    const char* noun = work_noun(o.mode);
    long rss_delta = rss_before >= 0 && rss_after >= 0 ? rss_after - rss_before : -1;
    double rss_per_conn = rss_delta >= 0 && after_setup.open > 0 ? double(rss_delta) * 1024.0 / after_setup.open : -1;

    // Human summary.
    std::printf("\nroomcast-bench %s  %s:%u", rb::mode_name(o.mode), o.host.c_str(), o.port);
    if (o.mode == rb::Mode::broadcast) std::printf("  sub %s pub %s\n", o.sub_path.c_str(), o.pub_path.c_str());
    else std::printf("%s%s\n", o.path.c_str(), o.raw_tcp ? "  (raw TCP)" : "");
    switch (o.mode) {
    case rb::Mode::echo:
        std::printf("  %u connections x depth %u x %zu B %s, %u thread(s)\n", o.connections, o.depth, o.size_bytes,
                    o.binary ? "binary" : "text", o.threads);
        break;
    case rb::Mode::connect:
        std::printf("  %u handshakes in flight, close %s, %u thread(s)\n", o.concurrency,
                    o.close_style == rb::CloseStyle::clean ? "clean" : "rst", o.threads);
        break;
    case rb::Mode::broadcast:
        std::printf("  %u subscribers, %u publishers at %s, window %u, %zu B %s, %u thread(s)\n", o.subscribers,
                    o.publishers, o.rate_per_publisher > 0 ? (human(o.rate_per_publisher) + " msgs/s").c_str() : "max",
                    o.window, o.size_bytes, o.binary ? "binary" : "text", o.threads);
        break;
    case rb::Mode::idle: std::printf("  %u idle connections\n", o.connections); break;
    }
    std::printf("  %-28s %.2f s (setup %.2f s, warmup %.1f s)\n", "measured", secs, setup_s, o.warmup_s);
    if (o.mode != rb::Mode::idle) {
        std::printf("  %-28s %s/s  (%" PRIu64 " total)\n", noun, human(rate).c_str(), total.messages);
        if (o.mode != rb::Mode::connect) std::printf("  %-28s %.1f MB/s payload\n", "throughput", mb_s);
        if (o.mode == rb::Mode::broadcast)
            std::printf("  %-28s %s/s\n", "published", human(double(total.published) / secs).c_str());
        if (o.mode == rb::Mode::connect)
            std::printf("  %-28s %s/s (unclean %" PRIu64 ")\n", "closed cycles", human(double(total.cycles) / secs).c_str(),
                        total.unclean_closes);
        std::printf("  %-28s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (mean %.1f)\n",
                    o.mode == rb::Mode::echo        ? "round trip us"
                    : o.mode == rb::Mode::broadcast ? "publish->delivery us"
                                                    : "handshake us",
                    p50, p90, p99, p999, pmax, mean);
    }
    if (have_cpu) {
        std::printf("  %-28s %.2f s (%.0f%% of one core)\n", "server CPU", server_cpu, 100 * server_cpu / secs);
        if (o.mode != rb::Mode::idle)
            std::printf("  %-28s %s\n", (std::string(noun) + " per server CPU-s").c_str(), human(per_cpu).c_str());
    }
    std::printf("  %-28s %.2f s (%.0f%% of one core)\n", "client CPU", client_cpu, 100 * client_cpu / secs);
    if (o.mode == rb::Mode::idle && rss_delta >= 0)
        std::printf("  %-28s %ld -> %ld KiB, %.0f B per connection\n", "server anon RSS", rss_before, rss_after, rss_per_conn);
    std::printf("  %-28s %u opened, %u open at the end\n", "connections", total.opened, total.still_open);
    if (o.tls)
        std::printf("  %-28s %s, %" PRIu64 " handshakes (%" PRIu64 " resumed), %s\n", "tls",
                    total.tls_desc.empty() ? "no handshake completed" : total.tls_desc.c_str(), total.tls_handshakes,
                    total.tls_resumed, o.tls_ca.empty() ? "certificate NOT verified" : "certificate verified");
    if (o.deflate)
        std::printf("  %-28s agreed on %u connections (server: %s); %" PRIu64 " messages received compressed (%" PRIu64 " not inflated: --inflate-sample)\n",
                    "permessage-deflate", total.deflate_conns, total.deflate_desc.c_str(), total.z_messages, total.z_skipped);
    if (o.mode == rb::Mode::echo || o.mode == rb::Mode::broadcast)
        std::printf("  %-28s %.1f MB/s WebSocket bytes received (headers + payload as sent), payload/wire %.2f\n",
                    "wire", double(total.ws_bytes) / secs / 1e6, wire_ratio);
    if (o.mode == rb::Mode::broadcast)
        std::printf("  %-28s gaps %" PRIu64 "  duplicates %" PRIu64 "  window timeouts %" PRIu64 "  publisher lag max %.1f ms\n",
                    "sequence check", total.gaps, total.duplicates, total.window_timeouts,
                    double(total.publisher_lag_max_ns) / 1e6);
    const auto& e = total.errors;
    std::printf("  %-28s %" PRIu64 " (connect %" PRIu64 ", handshake %" PRIu64 ", verify %" PRIu64 ", protocol %" PRIu64
                ", closed %" PRIu64 ", timeout %" PRIu64 ", io %" PRIu64 ")\n",
                "errors", e.total(), e.connect, e.handshake, e.verify, e.protocol, e.closed, e.timeout, e.io);
    if (e.tls) std::printf("  %-28s %" PRIu64 "\n", "tls errors", e.tls);

    // One machine-readable line.
    std::string label;
    for (char c : o.label)
        if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) label += c;
    std::printf(
        "JSON {\"mode\":\"%s\",\"label\":\"%s\",\"host\":\"%s\",\"port\":%u,\"path\":\"%s\",\"raw_tcp\":%s,\"io_uring\":%s,"
        "\"threads\":%u,\"connections\":%u,\"depth\":%u,\"size\":%zu,\"binary\":%s,\"concurrency\":%u,"
        "\"close\":\"%s\",\"subscribers\":%u,\"publishers\":%u,\"rate\":%.0f,\"window\":%u,"
        "\"duration_s\":%.3f,\"setup_s\":%.3f,\"work\":\"%s\",\"count\":%" PRIu64 ",\"per_s\":%.1f,\"mb_per_s\":%.3f,"
        "\"published\":%" PRIu64 ",\"cycles\":%" PRIu64 ","
        "\"latency_us\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f,\"mean\":%.2f},"
        "\"server_cpu_s\":%.3f,\"server_cpu_util\":%.3f,\"per_server_cpu_s\":%.1f,\"client_cpu_s\":%.3f,"
        "\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"rss_per_conn_bytes\":%.1f,"
        "\"opened\":%u,\"still_open\":%u,\"gaps\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"window_timeouts\":%" PRIu64
        ",\"unclean_closes\":%" PRIu64 ",\"errors_total\":%" PRIu64 ","
        "\"errors\":{\"connect\":%" PRIu64 ",\"handshake\":%" PRIu64 ",\"verify\":%" PRIu64 ",\"protocol\":%" PRIu64
        ",\"closed\":%" PRIu64 ",\"timeout\":%" PRIu64 ",\"io\":%" PRIu64 ",\"tls\":%" PRIu64 "},"
        "\"tls\":%s,\"tls_desc\":\"%s\",\"tls_handshakes\":%" PRIu64 ",\"tls_resumed\":%" PRIu64 ",\"tls_verify\":%s,"
        "\"deflate\":%s,\"deflate_conns\":%u,\"compressed_msgs\":%" PRIu64 ",\"inflate_sample\":%u,\"not_inflated\":%" PRIu64 ",\"payload\":\"%s\","
        "\"ws_bytes\":%" PRIu64 ",\"payload_bytes\":%" PRIu64 ",\"wire_ratio\":%.3f}\n",
        rb::mode_name(o.mode), label.c_str(), o.host.c_str(), o.port,
        (o.mode == rb::Mode::broadcast ? o.sub_path : o.path).c_str(), o.raw_tcp ? "true" : "false", o.io_uring ? "true" : "false", o.threads,
        o.connections, o.depth, o.size_bytes, o.binary ? "true" : "false", o.concurrency,
        o.close_style == rb::CloseStyle::clean ? "clean" : "rst", o.subscribers, o.publishers, o.rate_per_publisher,
        o.window, secs, setup_s, noun, total.messages, rate, mb_s, total.published, total.cycles, p50, p90, p99, p999,
        pmax, mean, have_cpu ? server_cpu : -1.0, have_cpu ? server_cpu / secs : -1.0, have_cpu ? per_cpu : -1.0,
        client_cpu, rss_before, rss_after, rss_per_conn, total.opened, total.still_open, total.gaps, total.duplicates,
        total.window_timeouts, total.unclean_closes, e.total() + total.gaps + total.duplicates, e.connect, e.handshake,
        e.verify, e.protocol, e.closed, e.timeout, e.io, e.tls, o.tls ? "true" : "false", total.tls_desc.c_str(),
        total.tls_handshakes, total.tls_resumed, o.tls_ca.empty() ? "false" : "true", o.deflate ? "true" : "false",
        total.deflate_conns, total.z_messages, o.inflate_sample, total.z_skipped, o.payload == rb::PayloadKind::json ? "json" : "fill", total.ws_bytes,
        total.bytes, wire_ratio);
    std::fflush(stdout);
    return 0;
}
