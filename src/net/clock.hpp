// The reactors' clock: CLOCK_MONOTONIC_COARSE (a vDSO read, no syscall), read once per loop turn.
#pragma once
#include <time.h>

#include <cstdint>

namespace roomcast::net {

inline std::uint64_t monotonic_ms() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

}  // namespace roomcast::net
