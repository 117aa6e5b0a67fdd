// permessage-deflate throughput (uncompressed bytes/s) per message size, for JSON-like feed text and the
// Autobahn|Testsuite data (../shared/autobahn-testdata, read from the repo root), plus the fixed cost of
// resetting a stream (paid once per message without context takeover).
// Run: build/release/roomcast-micro --benchmark_filter=deflate --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ws/deflate.hpp"

namespace {

using namespace roomcast;

enum class Data { json, autobahn_json, autobahn_text, autobahn_bmp };
constexpr std::int64_t sizes[] = {64, 1 << 10, 16 << 10, 256 << 10};
// Distinct messages cycled through: at least 2 MiB of them, so that with context takeover a message never
// finds itself in the 32 KiB window (which would flatter the ratio and the speed).
std::size_t messages_per_set(std::size_t n) { return std::clamp<std::size_t>((2u << 20) / n, 8, 4096); }

std::string json_text(std::size_t n) {
    std::mt19937 rng(1);
    static const char* syms[] = {"BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "AAPL", "MSFT"};
    std::string s;
    while (s.size() < n) {
        s += "{\"room\":\"";
        s += syms[rng() % 6];
        s += "\",\"seq\":" + std::to_string(rng() % 1000000) +
             ",\"data\":{\"bid\":" + std::to_string(rng() % 90000) + "." + std::to_string(rng() % 100) +
             ",\"ask\":" + std::to_string(rng() % 90000) + ",\"side\":\"" + (rng() % 2 ? "buy" : "sell") +
             "\"}}\n";
    }
    s.resize(n);
    return s;
}

std::string read_file(const char* name) {
    std::ifstream f(std::string("../shared/autobahn-testdata/") + name, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

const std::string& corpus(Data d) {
    static const std::string json = json_text(4 << 20);
    static const std::string ab_json = read_file("data1.json");
    static const std::string ab_text = read_file("pg2229.txt");
    static const std::string ab_bmp = read_file("lena512.bmp");
    switch (d) {
        case Data::json:
            return json;
        case Data::autobahn_json:
            return ab_json;
        case Data::autobahn_text:
            return ab_text;
        case Data::autobahn_bmp:
            return ab_bmp;
    }
    return json;
}

// messages_per_set(n) messages of n bytes from different places of the corpus (wrapping around).
std::vector<std::string> messages(Data d, std::size_t n) {
    const std::string& c = corpus(d);
    std::vector<std::string> out;
    if (c.empty()) return out;
    for (std::size_t i = 0; i < messages_per_set(n); ++i) {
        std::string m;
        std::size_t pos = (i * 104729 + i * n) % c.size();
        while (m.size() < n) {
            const std::size_t take = std::min(n - m.size(), c.size() - pos);
            m.append(c, pos, take);
            pos = 0;
        }
        out.push_back(std::move(m));
    }
    return out;
}

std::span<const std::byte> bytes(const std::string& s) {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// plain / compressed: totals over the run.
void report(benchmark::State& state, std::size_t plain, std::size_t compressed) {
    state.SetBytesProcessed(static_cast<std::int64_t>(plain));
    state.counters["ratio"] = plain ? static_cast<double>(compressed) / static_cast<double>(plain) : 0.0;
}

// Compress one message. takeover=false: the broadcast path (compress_once: borrow, compress, reset).
void bm_deflate(benchmark::State& state, Data d, bool takeover) {
    const auto msgs = messages(d, static_cast<std::size_t>(state.range(0)));
    if (msgs.empty())
        return state.SkipWithError("../shared/autobahn-testdata not found (run from the repo root)");
    ws::DeflateConfig cfg;
    cfg.level = static_cast<int>(state.range(1));
    ws::DeflatePool pool(cfg);
    auto own = ws::Deflater::create(cfg.level, cfg.window_bits);
    util::ByteBuffer out;
    std::size_t i = 0, plain = 0, compressed = 0;
    for (auto _ : state) {
        const std::string& m = msgs[i++ % msgs.size()];
        out.clear();
        const bool ok =
            takeover ? own->compress(bytes(m), out) : ws::compress_once(pool, bytes(m), cfg.window_bits, out);
        if (!ok) return state.SkipWithError("compress failed");
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
        plain += m.size();
        compressed += out.size();
    }
    report(state, plain, compressed);
}

// Inflate one message (compressed at level 6 with window_bits, inflated with the same window, as agreed by
// client_max_window_bits). takeover=false: reset after each message.
void bm_inflate(benchmark::State& state, Data d, bool takeover, int window_bits = 15) {
    const auto msgs = messages(d, static_cast<std::size_t>(state.range(0)));
    if (msgs.empty())
        return state.SkipWithError("../shared/autobahn-testdata not found (run from the repo root)");
    // Compress a long sequence once, as the client would send it.
    auto d6 = ws::Deflater::create(6, window_bits);
    std::vector<std::string> wire;
    for (const std::string& m : msgs) {  // with takeover the sequence is replayed in order
        util::ByteBuffer c;
        d6->compress(bytes(m), c);
        if (!takeover) d6->reset();
        wire.emplace_back(reinterpret_cast<const char*>(c.data()), c.size());
    }
    auto inf = ws::Inflater::create(window_bits);
    util::ByteBuffer out;
    std::size_t i = 0, plain = 0, compressed = 0;
    for (auto _ : state) {
        if (takeover && i == wire.size()) {  // replay from the start with a fresh window
            state.PauseTiming();
            inf->reset();
            i = 0;
            state.ResumeTiming();
        }
        const std::string& c = wire[i++ % wire.size()];
        out.clear();
        if (inf->inflate(bytes(c), true, out, 64 << 20) != ws::InflateResult::ok)
            return state.SkipWithError("inflate failed");
        if (!takeover) inf->reset();
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
        plain += out.size();
        compressed += c.size();
    }
    report(state, plain, compressed);
}

void deflate_sizes(benchmark::internal::Benchmark* b) {
    for (std::int64_t level : {1, 6, 9})
        for (std::int64_t n : sizes) b->Args({n, level});
}
void plain_sizes(benchmark::internal::Benchmark* b) {
    for (std::int64_t n : sizes) b->Args({n, 6});
}

BENCHMARK_CAPTURE(bm_deflate, once_json, Data::json, false)->Apply(deflate_sizes);
BENCHMARK_CAPTURE(bm_deflate, takeover_json, Data::json, true)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_deflate, once_autobahn_json, Data::autobahn_json, false)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_deflate, once_autobahn_text, Data::autobahn_text, false)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_deflate, once_autobahn_bmp, Data::autobahn_bmp, false)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_inflate, fresh_json, Data::json, false)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_inflate, takeover_json, Data::json, true)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_inflate, fresh_autobahn_json, Data::autobahn_json, false)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_inflate, fresh_autobahn_text, Data::autobahn_text, false)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_inflate, fresh_autobahn_bmp, Data::autobahn_bmp, false)->Apply(plain_sizes);
// A client that agreed a small window (client_max_window_bits=9): every back-reference is checked against it.
BENCHMARK_CAPTURE(bm_inflate, fresh_json_w9, Data::json, false, 9)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_inflate, takeover_json_w9, Data::json, true, 9)->Apply(plain_sizes);
BENCHMARK_CAPTURE(bm_inflate, fresh_autobahn_text_w9, Data::autobahn_text, false, 9)->Apply(plain_sizes);

// The fixed per-message price of no context takeover.
void bm_deflate_reset(benchmark::State& state) {
    auto d = ws::Deflater::create(6, static_cast<int>(state.range(0)));
    for (auto _ : state) {
        d->reset();
        benchmark::ClobberMemory();
    }
}
BENCHMARK(bm_deflate_reset)->Arg(9)->Arg(15);

void bm_inflate_reset(benchmark::State& state) {
    auto inf = ws::Inflater::create(15);
    for (auto _ : state) {
        inf->reset();
        benchmark::ClobberMemory();
    }
}
BENCHMARK(bm_inflate_reset);

}  // namespace
