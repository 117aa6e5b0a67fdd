// Minimal leveled logging to stderr. One fprintf per line (stdio locks the stream, so lines from
// different reactors never interleave). Not for per-message paths.
#pragma once
#include <atomic>
#include <cstdio>

#include "roomcast/config.hpp"

namespace roomcast::log {

inline std::atomic<LogLevel> level{LogLevel::info};

inline bool enabled(LogLevel l) noexcept { return l <= level.load(std::memory_order_relaxed); }

}  // namespace roomcast::log

#define ROOMCAST_LOG(lvl, ...)                                            \
    do {                                                                  \
        if (::roomcast::log::enabled(::roomcast::LogLevel::lvl)) {        \
            std::fprintf(stderr, "roomcast: " #lvl ": " __VA_ARGS__);      \
        }                                                                 \
    } while (0)
