// permessage-deflate (RFC 7692) data path over zlib raw deflate: bytes in, bytes out, no sockets.
//
// Not thread-safe: every object here belongs to one reactor (a DeflatePool per reactor; a connection's
// DeflateSession is only used by the reactor that owns the connection).
//
// Memory: a zlib deflate stream is ~256 KiB at window 15 (memLevel 8), an inflate stream ~7 KiB plus a
// 2^window_bits window allocated on first output, plus ~4 KiB of Huffman tables when the agreed client window
// is under 15 bits (the check that every back-reference stays inside it; see WindowCheck in deflate.cpp).
// Streams are created lazily, on the first message that needs one. With no context takeover (the default
// config), a connection borrows a stream from its reactor's DeflatePool for one message and gives it back, so
// an idle connection holds none. With context takeover the stream stays with the connection after its first
// message (that is the LZ77 window the peer relies on).
//
// How the server uses it, per connection:
//   handshake: negotiate_deflate() (ws/extensions.hpp) → DeflateSession session(params)
//   a data message arrives with RSV1 set (ParserState::msg_rsv & 0x4):
//       out.clear(); r = session.inflate(pool, payload, /*last=*/true, out, max_message_bytes);
//       ok → validate UTF-8 of out for text, deliver out; too_big → close 1009; corrupt → close 1007;
//       no_memory → drop the connection. (A message may also be fed fragment by fragment, last on the end.)
//   a message goes out to this connection only:
//       if (session.wants_compression(size, pool.config())) session.deflate(pool, payload, out) → RSV1 frame
//   a room message goes out to many connections: compress ONCE with compress_once(pool, payload,
//       pool.config().window_bits, out) and send that frame (RSV1) to every subscriber for which
//       session.can_share(pool.config().window_bits, size, pool.config()) is true; the others get the
//       plain frame, or their own session.deflate() if they want compression but cannot share (context
//       takeover, or a smaller agreed window). With context takeover a shared frame would desynchronise
//       the connection's own LZ77 window, so it is never sent to such a connection.
//   connection ends: session.release(pool).
#pragma once
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "util/byte_buffer.hpp"
#include "ws/extensions.hpp"

namespace roomcast::ws {

// Trailer every sync-flushed message ends with: removed by the sender, appended by the receiver (§7.2).
inline constexpr std::byte deflate_tail[4] = {std::byte{0x00}, std::byte{0x00}, std::byte{0xff},
                                              std::byte{0xff}};

// zlib memLevel of every deflate stream (zlib's default; hash table + pending buffer = 2 * 2^(memLevel+8) B).
inline constexpr int deflate_mem_level = 8;

enum class InflateResult : std::uint8_t {
    ok,         // the bytes so far are inflated into `out`
    too_big,    // the message inflates to more than max_message_bytes: close 1009
    corrupt,    // not a valid deflate stream per RFC 7692 §7.2.2, or a back-reference beyond the agreed
                // client window (§7.1.2.2) or before the first byte of history: close 1007
    no_memory,  // allocation failed: drop the connection
};

class WindowCheck;  // deflate.cpp

// Inflates client messages. One per connection at most (or borrowed from a DeflatePool).
class Inflater {
public:
    // nullptr if zlib cannot allocate. window_bits: the agreed client_max_window_bits (8..15); 8 is
    // inflated with 9, because zlib-based peers that agreed 8 really compress with 9 (zlib rejects 8).
    static std::unique_ptr<Inflater> create(int window_bits) noexcept;
    ~Inflater();
    Inflater(const Inflater&) = delete;
    Inflater& operator=(const Inflater&) = delete;

    // Appends the inflation of `in` (the next bytes of one message's compressed payload) to `out`.
    // last: `in` ends the message; the 00 00 ff ff tail is appended (§7.2.2) and the stream must end on a
    // block boundary. Every back-reference must stay inside the window (2^window_bits bytes) and the
    // history so far; the result does not depend on how the message is split into calls. After a last call
    // the LZ77 window is kept for the next message (context takeover); call reset() to drop it. Bounded:
    // stops as soon as this message's output would pass max_message_bytes (too_big), so work and memory stay
    // ~max_message_bytes whatever the ratio; out's capacity never exceeds what ByteBuffer needs to hold
    // max_message_bytes. After anything but ok the inflater must be reset() before reuse. Views are only read
    // during the call.
    InflateResult inflate(std::span<const std::byte> in, bool last, util::ByteBuffer& out,
                          std::size_t max_message_bytes) noexcept;
    // Forgets the window and any message in progress (cheap: keeps the allocations).
    void reset() noexcept;
    int window_bits() const noexcept { return window_bits_; }
    // Bytes of the message in progress inflated so far.
    std::size_t message_bytes() const noexcept { return msg_out_; }

private:
    Inflater() noexcept = default;
    // Inflates p[0..n); tail: these are the 4 bytes appended at message end.
    InflateResult run(const std::byte* p, std::size_t n, util::ByteBuffer& out, std::size_t max,
                      bool tail) noexcept;
    bool rewindow(int window_bits) noexcept;
    friend class DeflatePool;

    z_stream strm_{};
    std::unique_ptr<WindowCheck> check_;  // set iff window_bits_ < 15: zlib alone would be lenient
    std::size_t msg_in_ = 0;              // compressed bytes of the message in progress
    std::size_t msg_out_ = 0;             // inflated bytes of the message in progress
    int window_bits_ = max_window_bits;
    bool ended_ = false;  // the message's data ended with a final (BFINAL) block
};

// Compresses server messages (one whole message per call).
class Deflater {
public:
    // nullptr if zlib cannot allocate or window_bits is not 9..15. level 1..9.
    static std::unique_ptr<Deflater> create(int level, int window_bits) noexcept;
    ~Deflater();
    Deflater(const Deflater&) = delete;
    Deflater& operator=(const Deflater&) = delete;

    // Appends the compressed message (sync flush, 00 00 ff ff removed: §7.2.1) to `out`, keeping what
    // was in it (so a caller can leave room for a frame header in front). The window is kept for the next
    // message (context takeover): once compressed, the message MUST be sent compressed. Call reset() for
    // no context takeover. false: no memory (the stream must then be reset() or dropped).
    bool compress(std::span<const std::byte> in, util::ByteBuffer& out) noexcept;
    // Forgets the window (deflateReset: clears the 2^(memLevel+8)-byte hash table).
    void reset() noexcept;
    int window_bits() const noexcept { return window_bits_; }
    int level() const noexcept { return level_; }

private:
    Deflater() noexcept = default;
    friend class DeflatePool;

    z_stream strm_{};
    int window_bits_ = max_window_bits;
    int level_ = 6;
};

// Per-reactor pool of zlib streams, so that connections without context takeover hold none between
// messages. Keeps at most keep_inflaters / keep_deflaters idle streams; the rest are freed.
class DeflatePool {
public:
    static constexpr std::size_t keep_inflaters = 4;
    static constexpr std::size_t keep_deflaters = 2;

    struct Stats {
        std::uint64_t inflaters_created = 0;
        std::uint64_t deflaters_created = 0;
        std::uint64_t compress_once_calls = 0;  // shared (broadcast) frames built
        std::uint64_t messages_inflated = 0;
        std::uint64_t messages_deflated = 0;  // per-connection compressions (not compress_once)
    };

    explicit DeflatePool(const DeflateConfig& cfg);
    DeflatePool(const DeflatePool&) = delete;
    DeflatePool& operator=(const DeflatePool&) = delete;

    const DeflateConfig& config() const noexcept { return cfg_; }
    // A reset inflater with this window (pooled or new); nullptr on allocation failure.
    std::unique_ptr<Inflater> take_inflater(int window_bits) noexcept;
    // A reset deflater at the config's level with this window (9..15); nullptr on allocation failure.
    std::unique_ptr<Deflater> take_deflater(int window_bits) noexcept;
    // Resets the stream and keeps it (or frees it when the pool is full). Null is ignored.
    void give_back(std::unique_ptr<Inflater> s) noexcept;
    void give_back(std::unique_ptr<Deflater> s) noexcept;

    std::size_t idle_inflaters() const noexcept { return inflaters_.size(); }
    std::size_t idle_deflaters() const noexcept { return deflaters_.size(); }
    Stats& stats() noexcept { return stats_; }
    const Stats& stats() const noexcept { return stats_; }

private:
    DeflateConfig cfg_;
    std::vector<std::unique_ptr<Inflater>> inflaters_;  // capacity reserved: give_back never allocates
    std::vector<std::unique_ptr<Deflater>> deflaters_;
    Stats stats_;
};

// Compresses a message once for every subscriber (always without context takeover: the frame can be
// shared by every connection whose session.can_share(window_bits, size, cfg) is true). Appends to `out`
// like Deflater::compress. window_bits 9..15, normally pool.config().window_bits. false: no memory.
bool compress_once(DeflatePool& pool, std::span<const std::byte> in, int window_bits,
                   util::ByteBuffer& out) noexcept;

// The permessage-deflate state of one connection: the agreed params plus the streams it holds
// (none unless context takeover was agreed for that direction and a message has passed). 24 bytes.
class DeflateSession {
public:
    DeflateSession() noexcept = default;
    explicit DeflateSession(const DeflateParams& p) noexcept : params_(p) {}
    DeflateSession(DeflateSession&&) noexcept = default;
    DeflateSession& operator=(DeflateSession&&) noexcept = default;

    const DeflateParams& params() const noexcept { return params_; }

    // Inflates (part of) one RSV1 message from the client; see Inflater::inflate. With
    // client_no_context_takeover the stream is borrowed from `pool` for the message and given back
    // after its last part (or after a failure).
    InflateResult inflate(DeflatePool& pool, std::span<const std::byte> in, bool last, util::ByteBuffer& out,
                          std::size_t max_message_bytes) noexcept;

    // True if a message of `size` bytes to this connection should be compressed (server can compress at
    // the agreed window and size >= min_size).
    bool wants_compression(std::size_t size, const DeflateConfig& cfg) const noexcept {
        return params_.server_compresses() && size >= cfg.min_size;
    }
    // True if this connection may be sent a compress_once() frame made with window_bits.
    bool can_share(int window_bits, std::size_t size, const DeflateConfig& cfg) const noexcept {
        return wants_compression(size, cfg) && params_.server_no_context_takeover &&
               window_bits <= params_.server_window_bits;
    }
    // Compresses one message for this connection (appends to out; see Deflater::compress). With
    // server_no_context_takeover the stream is borrowed from `pool` for this call. false: no memory.
    bool deflate(DeflatePool& pool, std::span<const std::byte> in, util::ByteBuffer& out) noexcept;

    // Gives every held stream back to the pool (call when the connection ends).
    void release(DeflatePool& pool) noexcept;
    // Streams this connection holds right now (0 without context takeover): for memory tests/metrics.
    int held_streams() const noexcept { return (inflater_ ? 1 : 0) + (deflater_ ? 1 : 0); }

private:
    std::unique_ptr<Inflater> inflater_;
    std::unique_ptr<Deflater> deflater_;
    DeflateParams params_;
};

}  // namespace roomcast::ws
