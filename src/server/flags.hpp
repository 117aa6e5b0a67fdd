// Command-line flags -> Config. Every flag is listed by --help with its default and unit.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "roomcast/config.hpp"

namespace roomcast::server {

enum class FlagsResult { run, help, error };

// Parses argv into cfg (which holds the defaults on entry). On error, `error` is one line naming the
// flag and the problem. On help, `error` is empty and the caller prints help_text().
FlagsResult parse_flags(int argc, char** argv, Config& cfg, std::string& error);
std::string help_text();

// Value parsers, exposed for tests. Durations: "250" (ms), "250ms", "2s", "1m". Sizes: "4096", "64K",
// "16M", "1G" (powers of 1024). False on anything else, on overflow, and on negative numbers.
bool parse_duration_ms(std::string_view text, std::uint32_t& out);
bool parse_size_bytes(std::string_view text, std::size_t& out);

}  // namespace roomcast::server
