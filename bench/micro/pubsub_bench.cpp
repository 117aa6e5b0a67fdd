// Room path micro-benchmarks: control-message JSON parse (issue 3), JSON validation of published
// payloads, envelope build, FrameRef make/release, and the cross-reactor inbox.
// Run: build/release/roomcast-micro --benchmark_filter='Control|Json|Envelope|FrameRef|Inbox'
#include <benchmark/benchmark.h>

#include <atomic>
#include <string>
#include <thread>

#include "pubsub/control.hpp"
#include "pubsub/frame_ref.hpp"
#include "pubsub/inbox.hpp"

namespace {

using namespace roomcast;
using namespace roomcast::pubsub;

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

// A JSON object of about n bytes: what a market-data or chat payload looks like.
std::string json_payload(std::size_t n) {
    std::string s = "{\"items\":[";
    for (int i = 0; s.size() + 64 < n; ++i) {
        if (i) s += ',';
        s += "{\"px\":" + std::to_string(100.25 + i) + ",\"q\":" + std::to_string(i * 3) +
             ",\"s\":\"caf\xc3\xa9 \\\"x\\\"\",\"ok\":true}";
    }
    s += "],\"n\":null}";
    return s;
}

void ControlParseSub(benchmark::State& state) {
    const std::string msg = R"({"op":"sub","room":"BTC-USD","since":41,"id":1})";
    for (auto _ : state) {
        ControlRequest r = parse_control(msg);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(msg.size()));
}
BENCHMARK(ControlParseSub);

void ControlParsePub(benchmark::State& state) {
    const std::string msg = R"({"op":"pub","room":"chat","data":)" + json_payload(state.range(0)) + R"(,"id":3})";
    for (auto _ : state) {
        ControlRequest r = parse_control(msg);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(msg.size()));
}
BENCHMARK(ControlParsePub)->Arg(64)->Arg(1 << 10)->Arg(64 << 10);

void JsonValidate(benchmark::State& state) {
    const std::string doc = json_payload(state.range(0));
    for (auto _ : state) benchmark::DoNotOptimize(check_json(doc));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(doc.size()));
}
BENCHMARK(JsonValidate)->Arg(64)->Arg(1 << 10)->Arg(64 << 10);

void EnvelopeBuild(benchmark::State& state) {
    const std::string doc = json_payload(state.range(0));
    std::uint64_t seq = 0;
    for (auto _ : state) {
        FrameRef* f = make_envelope_frame("BTC-USD", ++seq, ws::Opcode::text, bytes(doc));
        benchmark::DoNotOptimize(f);
        f->release();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(doc.size()));
}
BENCHMARK(EnvelopeBuild)->Arg(64)->Arg(1 << 10)->Arg(64 << 10);

void FrameRefMakeRelease(benchmark::State& state) {
    const std::string payload(static_cast<std::size_t>(state.range(0)), 'x');
    for (auto _ : state) {
        FrameRef* f = FrameRef::make(ws::Opcode::text, bytes(payload), 0, 1, "BTC-USD");
        f->add_ref(3);  // the owner's hand-out to three reactors ...
        f->release(3);  // ... and their releases
        benchmark::DoNotOptimize(f->wire().data());
        f->release();
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(FrameRefMakeRelease)->Arg(16)->Arg(1 << 10)->Arg(64 << 10);

// Messages per second through one ring, producer and consumer on two threads.
void InboxTwoThreads(benchmark::State& state) {
    auto bus = Bus::create(2, 1024);
    std::atomic<bool> stop{false};
    std::thread consumer([&] {
        Port& p = bus->port(1);
        while (!stop.load(std::memory_order_relaxed)) p.drain([](unsigned, const Message& m) { benchmark::DoNotOptimize(m.a); });
    });
    Port& prod = bus->port(0);
    Message m;
    std::uint64_t i = 0;
    for (auto _ : state) {
        for (int k = 0; k < 64; ++k) {
            m.a = ++i;
            prod.send(1, m);
        }
        prod.flush();
    }
    while (prod.overflow_count()) prod.flush();
    stop = true;
    consumer.join();
    state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(InboxTwoThreads)->UseRealTime();

}  // namespace
