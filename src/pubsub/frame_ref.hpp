// One room message, framed once: an immutable, reference-counted block holding a complete server
// WebSocket frame (header + payload, contiguous, ready for writev) plus its sequence number, opcode,
// wire format, an optional short tag (the room name) and an optional note (a publisher's request id,
// carried to the room's owner and back with a refusal). One allocation per frame.
//
// Ownership. make*() returns the frame with ONE reference, owned by the caller. Across reactors the
// owner of a room hands each interested reactor ONE reference (add_ref(k) once, then k messages);
// that reactor counts its local users with a plain integer (or takes add_ref(n) for n holders in one
// operation) and releases at zero, so the atomic is touched once per reactor per message, not once
// per subscriber. Any thread may call add_ref/release; everything else is read-only once the frame
// has been shared. set_seq()/set_deflated() are for the single owner before the frame is shared.
//
// Compressed sibling. The owner of a room may attach the permessage-deflate form of a frame (the same
// message compressed once, RSV1 set, built with server_no_context_takeover) before sharing it; every
// reactor then hands that one compressed frame to its subscribers that can take it, so a room message
// is compressed once per process, not once per reactor. The frame holds one reference to its sibling.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ws/frame.hpp"

namespace roomcast::pubsub {

// Which audience a frame is built for: raw endpoints (payload as published) or the /ws control
// protocol (the {"room":R,"seq":N,"data":...} envelope).
enum class Format : std::uint8_t { raw = 0, envelope = 1 };
inline constexpr std::size_t format_count = 2;

class FrameRef {
public:
    // Longest tag (room names are at most 128 bytes) and note.
    static constexpr std::size_t max_tag_bytes = 0xFFFF;
    static constexpr std::size_t max_note_bytes = 0xFFFF;

    // A frame with FIN set, opcode `op`, RSV bits `rsv` (RSV1 = 0x4) and this payload. Returns nullptr
    // if the allocation fails or the sizes overflow (a tag or note over its maximum included).
    static FrameRef* make(ws::Opcode op, std::span<const std::byte> payload, std::uint8_t rsv = 0,
                          std::uint64_t seq = 0, std::string_view tag = {}, Format format = Format::raw,
                          std::string_view note = {}) noexcept;

    // The payload is the concatenation of `parts` (no intermediate copy).
    static FrameRef* make_from_parts(ws::Opcode op, std::span<const std::span<const std::byte>> parts,
                                     std::uint8_t rsv = 0, std::uint64_t seq = 0, std::string_view tag = {},
                                     Format format = Format::raw) noexcept;

    // The payload is exactly `payload_len` bytes written by fill(std::byte* payload) straight into the
    // block (used for the JSON envelope: measure, allocate once, write). nullptr on allocation failure
    // (fill is then not called).
    template <class Fill>
    static FrameRef* make_with(ws::Opcode op, std::size_t payload_len, std::uint8_t rsv, std::uint64_t seq,
                               std::string_view tag, Format format, Fill&& fill) noexcept {
        FrameRef* f = allocate(op, payload_len, rsv, seq, tag, format);
        if (f) fill(f->mutable_payload());
        return f;
    }

    FrameRef(const FrameRef&) = delete;
    FrameRef& operator=(const FrameRef&) = delete;

    void add_ref(std::uint32_t n = 1) noexcept {
        // Relaxed: a new reference is created from an existing one, which already orders the data.
        refs_.fetch_add(n, std::memory_order_relaxed);
    }
    // Drops n references; the last one frees the block. acq_rel: the release half publishes this
    // thread's reads of the frame before a possible free on another thread; the acquire half makes the
    // freeing thread see every other holder's reads as finished.
    void release(std::uint32_t n = 1) noexcept {
        if (refs_.fetch_sub(n, std::memory_order_acq_rel) == n) destroy();
    }
    // Diagnostics and tests only: the value may be stale by the time it is used.
    std::uint32_t ref_count() const noexcept { return refs_.load(std::memory_order_relaxed); }

    // Header + payload: what goes on the wire.
    std::span<const std::byte> wire() const noexcept { return {data(), wire_len_}; }
    std::span<const std::byte> payload() const noexcept {
        return {data() + header_len_, wire_len_ - header_len_};
    }
    std::size_t header_len() const noexcept { return header_len_; }
    ws::Opcode opcode() const noexcept { return static_cast<ws::Opcode>(opcode_); }
    std::uint64_t seq() const noexcept { return seq_; }
    Format format() const noexcept { return static_cast<Format>(format_); }
    std::string_view tag() const noexcept {
        return {reinterpret_cast<const char*>(data() + wire_len_), tag_len_};
    }
    std::string_view note() const noexcept {
        return {reinterpret_cast<const char*>(data() + wire_len_ + tag_len_), note_len_};
    }
    // The size of the block make*() allocated for this frame (control block, wire bytes, tag, note);
    // the compressed sibling is a block of its own.
    std::size_t alloc_bytes() const noexcept { return sizeof(FrameRef) + wire_len_ + tag_len_ + note_len_; }

    // Only while the caller holds the only reference and has not shared the frame yet.
    void set_seq(std::uint64_t seq) noexcept { seq_ = seq; }
    // Attaches the compressed form (takes over the caller's reference; null is ignored). Owner only,
    // before the frame is shared, and at most once.
    void set_deflated(FrameRef* z) noexcept {
        if (!deflated_) deflated_ = z;
        else if (z) z->release();
    }
    // The compressed form, borrowed from this frame (add_ref to keep it past this frame's reference), or
    // nullptr.
    FrameRef* deflated() const noexcept { return deflated_; }

private:
    FrameRef() = default;
    ~FrameRef() = default;
    static FrameRef* allocate(ws::Opcode op, std::size_t payload_len, std::uint8_t rsv, std::uint64_t seq,
                              std::string_view tag, Format format, std::string_view note = {}) noexcept;
    void destroy() noexcept;
    const std::byte* data() const noexcept { return reinterpret_cast<const std::byte*>(this + 1); }
    std::byte* mutable_payload() noexcept { return reinterpret_cast<std::byte*>(this + 1) + header_len_; }

    std::atomic<std::uint32_t> refs_{1};
    std::uint16_t tag_len_ = 0;
    std::uint16_t note_len_ = 0;
    std::uint8_t opcode_ = 0;
    std::uint8_t header_len_ = 0;
    std::uint8_t format_ = 0;
    std::uint64_t seq_ = 0;
    std::size_t wire_len_ = 0;
    FrameRef* deflated_ = nullptr;
};
static_assert(sizeof(FrameRef) == 40, "the wire bytes follow the 40-byte control block");

}  // namespace roomcast::pubsub
