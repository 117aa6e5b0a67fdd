// Plain HTTP answers: reason phrases and the /health document.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace roomcast::server {

struct Shared;

const char* reason_phrase(int status) noexcept;

// {"status":"ok","uptime_s":..,"connections":..,"sockets":..,"reactors":[{"id":0,"connections":..},..]}
// "connections" counts open WebSockets, "sockets" every accepted TCP connection. Any reactor may call it.
std::string health_json(const Shared& shared, std::uint64_t now_ms);

// GET /: a small live demo of rooms using the browser's own WebSocket API.
std::string_view demo_page() noexcept;

}  // namespace roomcast::server
