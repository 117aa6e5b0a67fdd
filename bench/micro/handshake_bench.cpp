// The connect path: parsing an upgrade request, the accept key, and the whole handshake up to the 101 bytes.
// Run: make bench BENCH_ARGS=--benchmark_filter='ParseRequest|AcceptKey|FullUpgrade'
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <vector>

#include "http/handshake.hpp"
#include "http/request_parser.hpp"

namespace roomcast::http {
namespace {

// What Chrome 124 sends for new WebSocket("ws://localhost:8080/ws/BTC-USD", ["v2.roomcast", "v1.roomcast"]).
constexpr std::string_view chrome_upgrade =
    "GET /ws/BTC-USD HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Sec-WebSocket-Protocol: v2.roomcast, v1.roomcast\r\n"
    "\r\n";

constexpr std::size_t max_head_bytes = 8192;

void BM_ParseRequest(benchmark::State& state) {
    std::string buf(chrome_upgrade);  // in a heap buffer, like the read buffer
    Request req;
    ParseError err;
    for (auto _ : state) {
        benchmark::DoNotOptimize(buf.data());
        ParseStatus st = parse_request(buf, max_head_bytes, req, err);
        benchmark::DoNotOptimize(st);
        benchmark::DoNotOptimize(req);
    }
    if (parse_request(buf, max_head_bytes, req, err) != ParseStatus::done)
        state.SkipWithError("parse failed");
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(buf.size()));
}
BENCHMARK(BM_ParseRequest);

void BM_AcceptKey(benchmark::State& state) {
    char out[accept_key_len];
    std::string key = "x3JJHMbDL1EzLkh9GBhXDw==";
    for (auto _ : state) {
        benchmark::DoNotOptimize(key.data());
        compute_accept_key(key, out);
        benchmark::DoNotOptimize(out);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AcceptKey);

void BM_FullUpgrade(benchmark::State& state) {
    std::string buf(chrome_upgrade);
    const std::vector<std::string> supported = {"v1.roomcast", "v2.roomcast"};
    Request req;
    char out[max_101_bytes + 64];
    for (auto _ : state) {
        benchmark::DoNotOptimize(buf.data());
        ParseError err;
        std::string_view key;
        std::size_t n = 0;
        if (parse_request(buf, max_head_bytes, req, err) == ParseStatus::done &&
            validate_upgrade(req, key) == HandshakeError::none) {
            std::string_view protocol = select_subprotocol(req, supported);
            n = write_101(out, sizeof out, key, protocol, {});
        }
        if (n == 0) {
            state.SkipWithError("handshake failed");
            break;
        }
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FullUpgrade);

}  // namespace
}  // namespace roomcast::http
