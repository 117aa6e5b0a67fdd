#include "server/http_responses.hpp"

#include <cstdio>

#include "server/worker.hpp"

namespace roomcast::server {

const char* reason_phrase(int status) noexcept {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 411: return "Length Required";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

std::string health_json(const Shared& shared, std::uint64_t now_ms) {
    std::string reactors;
    std::uint64_t ws_total = 0, sockets = 0;
    for (const Worker* w : shared.workers) {
        const std::uint32_t n = w->websocket_count();
        ws_total += n;
        sockets += w->connection_count();
        char item[64];
        std::snprintf(item, sizeof item, "%s{\"id\":%u,\"connections\":%u}", reactors.empty() ? "" : ",", w->id(), n);
        reactors += item;
    }
    char head[160];
    std::snprintf(head, sizeof head, "{\"status\":\"ok\",\"uptime_s\":%.3f,\"connections\":%llu,\"sockets\":%llu,\"reactors\":[",
                  static_cast<double>(now_ms - shared.start_ms) / 1000.0, static_cast<unsigned long long>(ws_total),
                  static_cast<unsigned long long>(sockets));
    return std::string(head) + reactors + "]}\n";
}

std::string_view demo_page() noexcept {
    static constexpr std::string_view page = R"html(<!doctype html>
<html><head><meta charset="utf-8"><title>roomcast demo</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:48em}#log{border:1px solid #ccc;height:18em;overflow:auto;
padding:.5em;font-family:monospace;white-space:pre-wrap}input{margin:.2em}</style></head>
<body><h1>roomcast</h1><p>A live room over <code>/ws</code> with the browser's own WebSocket API.</p>
<p>Room <input id="room" value="demo"> <button id="sub">subscribe</button>
<input id="msg" value="hello"> <button id="pub">publish</button> <span id="state">connecting...</span></p>
<div id="log"></div>
<script>
const log = (t) => { const d = document.getElementById('log'); d.textContent += t + '\n'; d.scrollTop = d.scrollHeight; };
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' + location.search);
let id = 0;
ws.onopen = () => { document.getElementById('state').textContent = 'connected'; };
ws.onclose = (e) => { document.getElementById('state').textContent = 'closed ' + e.code + ' ' + e.reason; };
ws.onmessage = (e) => log('<- ' + e.data);
const send = (o) => { const s = JSON.stringify(o); log('-> ' + s); ws.send(s); };
document.getElementById('sub').onclick = () => send({op: 'sub', room: document.getElementById('room').value, last: true, id: ++id});
document.getElementById('pub').onclick = () => send({op: 'pub', room: document.getElementById('room').value,
  data: {text: document.getElementById('msg').value, at: new Date().toISOString()}, id: ++id});
</script></body></html>
)html";
    return page;
}

}  // namespace roomcast::server
