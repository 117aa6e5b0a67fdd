// UTF-8 validation throughput per kernel on three kinds of valid text.
// Run: build/release/roomcast-micro --benchmark_filter=utf8 --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "simd/kernels.hpp"

namespace {

using roomcast::simd::Kernels;

enum class Text { ascii, mixed, four_byte };
constexpr std::int64_t sizes[] = {64, 1 << 10, 64 << 10};

void append_utf8(std::vector<std::byte>& out, std::uint32_t cp) {
    auto put = [&](std::uint32_t b) { out.push_back(static_cast<std::byte>(b)); };
    if (cp < 0x80) {
        put(cp);
    } else if (cp < 0x800) {
        put(0xC0 | cp >> 6), put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        put(0xE0 | cp >> 12), put(0x80 | (cp >> 6 & 0x3F)), put(0x80 | (cp & 0x3F));
    } else {
        put(0xF0 | cp >> 18), put(0x80 | (cp >> 12 & 0x3F)), put(0x80 | (cp >> 6 & 0x3F)),
            put(0x80 | (cp & 0x3F));
    }
}

// Valid text of exactly n bytes. mixed: ~10% of characters are 2- or 3-byte (European text with a few
// symbols); four_byte: ~90% emoji-range characters.
std::vector<std::byte> make_text(Text kind, std::size_t n) {
    std::mt19937 rng(1);
    std::vector<std::byte> out;
    while (out.size() < n) {
        const unsigned roll = rng() % 100;
        std::uint32_t cp = 0x20 + rng() % 0x5F;
        if (kind == Text::mixed && roll < 7)
            cp = 0xA0 + rng() % 0x700;  // 2-byte
        else if (kind == Text::mixed && roll < 10)
            cp = 0x2000 + rng() % 0x1000;  // 3-byte
        else if (kind == Text::four_byte && roll < 90)
            cp = 0x1F300 + rng() % 0x300;
        const std::size_t before = out.size();
        append_utf8(out, cp);
        if (out.size() > n) out.resize(before);  // does not fit: finish with ASCII
        if (out.size() == before) out.push_back(std::byte{'.'});
    }
    return out;
}

void bm_utf8(benchmark::State& state, const Kernels* k, Text kind) {
    const auto text = make_text(kind, static_cast<std::size_t>(state.range(0)));
    if (roomcast::simd::utf8_scalar(text.data(), text.size(), roomcast::simd::utf8_accept) !=
        roomcast::simd::utf8_accept) {
        state.SkipWithError("benchmark input is not valid UTF-8");
        return;
    }
    for (auto _ : state) {
        auto s = k->validate_utf8(text.data(), text.size(), roomcast::simd::utf8_accept);
        benchmark::DoNotOptimize(s);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

const bool registered = [] {
    const std::pair<Text, const char*> kinds[] = {
        {Text::ascii, "ascii"}, {Text::mixed, "mixed"}, {Text::four_byte, "4byte"}};
    for (const Kernels* k : roomcast::simd::supported_kernels())
        for (const auto& [kind, name] : kinds) {
            auto* b = benchmark::RegisterBenchmark((std::string("utf8/") + k->name + "/" + name).c_str(),
                                                   bm_utf8, k, kind);
            for (std::int64_t n : sizes) b->Arg(n);
        }
    return true;
}();

}  // namespace
