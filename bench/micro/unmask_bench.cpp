// Unmasking throughput per kernel, with memcpy of the same size as the yardstick.
// Run: build/release/roomcast-micro --benchmark_filter='unmask|memcpy' --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "simd/kernels.hpp"

namespace {

using roomcast::simd::Kernels;

constexpr roomcast::simd::MaskKey bench_key = 0x9A'37'C5'E1;
constexpr std::int64_t sizes[] = {16, 64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20};

void bm_unmask(benchmark::State& state, const Kernels* k) {
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<std::byte> buf(n, std::byte{0x5A});
    std::uint32_t phase = 0;
    for (auto _ : state) {
        phase = k->unmask(buf.data(), n, bench_key, phase);
        benchmark::DoNotOptimize(buf.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void bm_memcpy(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<std::byte> src(n, std::byte{0x5A}), dst(n);
    for (auto _ : state) {
        std::memcpy(dst.data(), src.data(), n);
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// Only kernels this CPU can run are registered, so the same binary works everywhere.
const bool registered = [] {
    auto* copy = benchmark::RegisterBenchmark("memcpy", bm_memcpy);
    for (std::int64_t n : sizes) copy->Arg(n);
    for (const Kernels* k : roomcast::simd::supported_kernels()) {
        auto* b = benchmark::RegisterBenchmark((std::string("unmask/") + k->name).c_str(), bm_unmask, k);
        for (std::int64_t n : sizes) b->Arg(n);
    }
    return true;
}();

}  // namespace
