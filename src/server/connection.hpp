// One client connection: its state machine and the little it owns (parser state, a partial request
// head, a send backlog). Connections live in a reactor's slab and are touched only by that reactor.
#pragma once
#include <cstdint>

#include <string>
#include <vector>

#include "net/timer_wheel.hpp"
#include "pubsub/hub.hpp"
#include "tls/session.hpp"
#include "ws/deflate.hpp"
#include "server/ip_limiter.hpp"
#include "util/byte_buffer.hpp"
#include "ws/frame_parser.hpp"

namespace roomcast::server {

enum class ConnState : std::uint8_t {
    free,       // slot unused
    http,       // reading an HTTP request (plain or upgrade)
    websocket,  // open WebSocket
    closing,    // we sent a close frame and wait for the peer's (drain, idle): data is discarded
    lingering,  // close handshake done or connection failed: FIN sent once the backlog is out,
                // input discarded until the peer's EOF or the linger timer
};

enum class Route : std::uint8_t {
    none,
    echo,        // GET /echo
    control,     // GET /ws: JSON control protocol
    raw_sub,     // GET /ws/{room}
    raw_pub,     // GET /publish/{room}
};

class OutQueue;

// Room state of a connection that uses rooms (echo connections have none).
struct ConnRooms {
    struct Sub {
        std::string room;
        pubsub::SubHandle handle;
    };
    std::vector<Sub> subs;       // /ws: any number (capped); /ws/{room}: one
    std::string publish_room;    // /publish/{room}, or the room of a POST awaiting its seq
    bool can_publish = false;    // tokens checked at the upgrade
    bool can_subscribe = false;
    bool awaiting_publish = false;  // POST /publish: waiting for the owner's seq
    bool awaiting_subscribe = false;  // /ws/{room}: the 101 waits for the owner's answer
    std::string pending_101;        // that 101, without its final CRLF
    bool waiting() const noexcept { return awaiting_publish || awaiting_subscribe; }
};

struct Connection {
    net::TimerNode timer;             // handshake, idle/ping, close and linger deadlines
    ws::ParserState parser;           // frame parser (WebSocket states)
    util::ByteBuffer* head = nullptr;     // a request head split across reads (http state)
    OutQueue* outq = nullptr;             // bytes and room frames the kernel has not taken yet
    ConnRooms* rooms = nullptr;           // rooms routes only
    ws::DeflateSession* dfl = nullptr;    // permessage-deflate, when negotiated
    tls::TlsSession* tls = nullptr;       // wss:// connections
    util::ByteBuffer* pending_pong = nullptr;  // latest unanswered ping while the peer is not reading
    std::uint64_t last_rx_ms = 0;     // last time the peer sent anything
    std::uint64_t last_ping_ms = 0;   // last server ping
    int fd = -1;
    std::uint32_t generation = 0;     // bumps on every reuse of the slot: stale epoll events are dropped
    std::uint32_t index = 0;          // slot in the reactor's slab
    std::uint32_t next_free = 0;      // slab free list link while free
    std::uint32_t rate_window_s = 0;  // --max-messages-per-second: the current one-second window
    std::uint32_t rate_frames = 0;    // frames counted in it (ParserState::frames at its start)
    IpKey peer_ip{};                  // for --max-connections-per-ip
    ConnState state = ConnState::free;
    Route route = Route::none;
    std::uint8_t epoll_events = 0;    // registered: bit0 = EPOLLIN, bit1 = EPOLLOUT
    bool read_paused = false;         // backlog over the high-water mark: stop reading
    bool shutdown_pending = false;    // send FIN once the backlog is flushed
    bool keep_alive = true;           // plain HTTP: keep the connection after this response
    bool counted_ws = false;          // included in the reactor's WebSocket count
    bool counted_open = false;        // included in Shared::open_connections (the --max-connections cap)
    bool counted_ip = false;          // included in the IpLimiter
    bool peer_eof = false;            // the peer half-closed while our last bytes were still queued
    bool dead = false;                // closed this turn, freed at the end of it
    bool dirty = false;               // room frames queued this turn: flushed at the end of the turn
    bool conflating = false;          // --slow-consumer conflate: behind; one pending frame per room
    bool tls_wants_write = false;     // TLS handshake/renegotiation data waits for EPOLLOUT
    bool send_pending = false;        // a send of ours is in the reactor's io_uring batch
    // Two bits in one byte: the record stays at 216 bytes (idle memory per connection).
    bool epoll_add_pending : 1 = false;  // its EPOLL_CTL_ADD waits in the ring (update_events runs it first)
    bool close_when_sent : 1 = false;    // close handshake done: close once the batched close frame is out
};

}  // namespace roomcast::server
