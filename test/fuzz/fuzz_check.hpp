// Shared by the fuzz targets in test/fuzz/: an always-on check and a reader over the fuzzer's input.
// Header-only, no global state: every target stays deterministic (same input, same run).
#pragma once
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

// A broken invariant. Not assert(): it must also fire in release (-DNDEBUG) builds of the replay, and it
// aborts so that libFuzzer saves the input under build/fuzz/crashes/ and the replay exits non-zero.
// Optional printf-style arguments describe the values involved.
#define FUZZ_CHECK(cond, ...)                                                                   \
    do {                                                                                        \
        if (!(cond)) [[unlikely]]                                                               \
            ::roomcast::fuzz::check_failed(__FILE__, __LINE__, #cond __VA_OPT__(, ) __VA_ARGS__); \
    } while (0)

namespace roomcast::fuzz {

[[noreturn]] inline void check_failed(const char* file, int line, const char* cond) {
    std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", file, line, cond);
    std::abort();
}

[[noreturn]] __attribute__((format(printf, 4, 5))) inline void check_failed(const char* file, int line,
                                                                            const char* cond, const char* fmt,
                                                                            ...) {
    std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", file, line, cond);
    va_list args;
    va_start(args, fmt);
    std::vfprintf(stderr, fmt, args);
    va_end(args);
    std::fputc('\n', stderr);
    std::abort();
}

}  // namespace roomcast::fuzz

namespace roomcast::fuzz {

// Takes control bytes from the front of the input; the rest is the payload. Past the end it yields
// zeros, so every input, even an empty one, decodes to some configuration.
class InputReader {
public:
    InputReader(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}

    std::uint8_t byte() noexcept { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint32_t u32() noexcept {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v |= std::uint32_t{byte()} << (8 * i);
        return v;
    }
    // Up to n bytes as a view (fewer at the end of the input).
    std::span<const std::uint8_t> bytes(std::size_t n) noexcept {
        const std::size_t take = n < size_ - pos_ ? n : size_ - pos_;
        std::span<const std::uint8_t> s{data_ + pos_, take};
        pos_ += take;
        return s;
    }
    std::span<const std::uint8_t> rest() noexcept { return bytes(size_ - pos_); }
    std::size_t remaining() const noexcept { return size_ - pos_; }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// Splits a length into chunks whose sizes come from a short list of input bytes, used cyclically, so
// that a few bytes describe any fragmentation: 0 = an empty call, 1..239 = that many bytes,
// 240..255 = (b - 239) * 512 bytes. An empty list (or all zeros) means one chunk: the whole input.
class ChunkPlan {
public:
    explicit ChunkPlan(std::span<const std::uint8_t> sizes) noexcept : sizes_(sizes) {
        bool any = false;
        for (std::uint8_t b : sizes_) any = any || b != 0;
        if (!any) sizes_ = {};
    }
    // Size of the next chunk when `left` bytes remain (may be 0: an empty call).
    std::size_t next(std::size_t left) noexcept {
        if (sizes_.empty()) return left;
        const std::uint8_t b = sizes_[i_++ % sizes_.size()];
        const std::size_t want = b < 240 ? b : static_cast<std::size_t>(b - 239) * 512;
        return want < left ? want : left;
    }

private:
    std::span<const std::uint8_t> sizes_;
    std::size_t i_ = 0;
};

inline std::string_view as_chars(std::span<const std::uint8_t> s) noexcept {
    return {reinterpret_cast<const char*>(s.data()), s.size()};
}

}  // namespace roomcast::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
