// Origin checks for WebSocket upgrades (RFC 6455 §10.2, RFC 6454 serialization).
#pragma once
#include <span>
#include <string>
#include <string_view>

namespace roomcast::http {

// True if `origin` (the Origin header value, trimmed) is allowed by `allowed`. Entries are:
//   "scheme://host[:port]"  the exact origin (scheme and host case-insensitive; a missing port in the
//                           entry matches only the scheme's default port or no port),
//   "host"                  that exact host with any scheme and port,
//   "null"                  the opaque origin "null" (sandboxed iframes, file: pages).
// Matching is exact: "example.com" never matches "evil-example.com", "example.com.evil" or
// "sub.example.com". A malformed Origin is never allowed. An empty `allowed` allows everything.
bool origin_allowed(std::string_view origin, std::span<const std::string> allowed) noexcept;

}  // namespace roomcast::http
