// The per-reactor room engine: subscribe / unsubscribe / publish for this reactor's connections, and
// the owner side for the rooms this reactor owns. Implements the resume protocol of room.hpp over the
// Bus of inbox.hpp. No sockets: the reactor plugs in a HubSink that writes to connections.
//
// Integration (one Hub per reactor, all calls on that reactor's thread):
//   loop turn:  port.flush(); block = port.prepare_sleep(); epoll_wait(block ? t : 0); port.woke();
//               wake fd readable -> port.consume_wake_fd();
//               connection handlers call hub.subscribe/unsubscribe/publish;
//               port.drain([&](unsigned from, const Message& m) { hub.handle(from, m); });
//               port.flush(); writes; reap
//   shutdown:   after every reactor has stopped, each drains its port with hub.dispose() (frees
//               the frames still in flight), then the hubs are destroyed.
// Everything the hub answers comes through the sink, never from inside subscribe()/publish().
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pubsub/frame_ref.hpp"
#include "pubsub/inbox.hpp"
#include "pubsub/room.hpp"

namespace roomcast::pubsub {

using SubscriberId = std::uint64_t;  // opaque to the hub (e.g. connection slot | generation << 32)
using PublisherId = std::uint64_t;

// Message kinds on the Bus (Message::kind). Pointers transfer ownership to the receiver.
enum class MsgKind : std::uint32_t {
    subscribe = 1,  // R -> owner   ptr = SubscribeRequest*
    unsubscribe,    // R -> owner   ptr = Room* (owner's, borrowed), tag = Format, b = 1: it took deflate
    publish,        // any -> owner ptr = FrameRef* (raw, unshared, tag = room name), a = PublisherId, b = 1: ack
    subscribed,     // owner -> R   ptr = SubscribeAnswer*
    deliver,        // owner -> R   ptr = FrameRef* (one reference), a = R's local-room handle
    published,      // owner -> P   a = PublisherId, b = seq
};

struct SubHandle {
    std::uint32_t index = UINT32_MAX;
    std::uint32_t generation = 0;
    bool valid() const noexcept { return index != UINT32_MAX; }
};

class HubSink {
public:
    virtual ~HubSink() = default;
    // The answer to subscribe(): write the "subscribed" reply, then `replay` (plan.count frames in seq
    // order, or fewer only if memory ran out). Each replay frame carries one reference now owned by
    // the sink. Called before any live delivery reaches this subscriber, whose next one is
    // plan.end_seq + 1. `room` is valid during the call.
    virtual void on_subscribed(SubscriberId who, SubHandle h, std::string_view room, Format format,
                               const ReplayPlan& plan, std::span<FrameRef* const> replay) noexcept = 0;
    // A live message for every local subscriber of its room in frame->format(): `subs` (valid during
    // the call; never empty). ONE reference, now owned by the sink: count the subscribers that keep
    // the frame and release at zero (or add_ref(n) once).
    // No callback may call subscribe() or unsubscribe() (defer closes to the end of the turn, STYLE §5);
    // publish() is fine.
    virtual void on_deliver(FrameRef* frame, std::span<const SubscriberId> subs) noexcept = 0;
    // A publish that asked for an acknowledgement got its seq (0: it failed, out of memory).
    virtual void on_published(PublisherId who, std::uint64_t seq) noexcept = 0;
};

// Builds the compressed sibling of a room frame (FrameRef::set_deflated): a new frame with the same
// opcode, seq, tag and format, RSV1 set, payload compressed without context takeover; or nullptr when
// the message stays uncompressed (below the size threshold, or no memory). Called on the owner's
// reactor, once per message and format while the room has a subscriber that takes compressed frames.
class FrameCompressor {
public:
    virtual ~FrameCompressor() = default;
    virtual FrameRef* compress(const FrameRef& frame) noexcept = 0;
};

struct HubStats {
    std::uint64_t published = 0;        // messages this reactor sequenced as owner
    std::uint64_t delivered = 0;        // on_deliver calls
    std::uint64_t stale_delivers = 0;   // deliveries for a local room already gone (released)
    std::uint64_t send_failures = 0;    // Port::send out of memory (message dropped, resources freed)
    std::uint64_t alloc_failures = 0;
};

class Hub {
public:
    // `history`: --history N (frames kept per room for resume). The port and sink outlive the hub.
    Hub(Port& port, HubSink& sink, std::uint32_t history);
    ~Hub();
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    // Where the owner side gets compressed siblings from (none: frames are never compressed here).
    void set_compressor(FrameCompressor* c) noexcept { compressor_ = c; }

    // Starts a subscription of `who` to a valid room name (validate_room_name first). The answer comes
    // through on_subscribed() from a later handle() call. Invalid handle on allocation failure.
    // `deflate`: this subscriber can be sent the shared compressed frame, so the owner builds one.
    SubHandle subscribe(SubscriberId who, std::string_view room, Format format, std::optional<std::uint64_t> since,
                        bool last, bool deflate = false) noexcept;
    // Ends a subscription (pending or live). Nothing more is delivered for it; an unknown or already
    // ended handle is ignored. Not from inside a HubSink callback.
    void unsubscribe(SubHandle h) noexcept;
    // Publishes a copy of `payload` to a valid room name. With `ack`, on_published(*ack, seq) follows.
    // False on allocation failure.
    bool publish(std::string_view room, ws::Opcode op, std::span<const std::byte> payload,
                 std::optional<PublisherId> ack) noexcept;

    // One message from Port::drain().
    void handle(unsigned from, const Message& m) noexcept;
    // Frees what a message carries without acting on it (shutdown).
    static void dispose(const Message& m) noexcept;

    // Introspection (tests, metrics).
    const Room* owned_room(std::string_view name) const noexcept;
    std::size_t local_subscribers(std::string_view room, Format f) const noexcept;
    std::size_t local_rooms() const noexcept { return local_by_name_.size(); }
    const HubStats& stats() const noexcept { return stats_; }

private:
    enum class SubState : std::uint8_t { free, pending, live, cancelled };
    struct Sub {
        SubscriberId who = 0;
        std::uint32_t local = 0;  // LocalRoom index
        std::uint32_t pos = 0;    // position in the LocalRoom's list when live
        std::uint32_t generation = 0;
        std::uint32_t next_free = UINT32_MAX;
        Format format = Format::raw;
        SubState state = SubState::free;
        bool deflate = false;
    };
    struct LocalRoom {
        std::string name;
        std::uint32_t generation = 0;
        std::uint32_t subs = 0;  // pending + live + cancelled-awaiting-answer
        std::uint32_t next_free = UINT32_MAX;
        unsigned owner = 0;
        Room* owner_room = nullptr;  // learned from the first answer (owner-side pointer, never freed)
        SubscriberList list[format_count];
    };
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return room_hash(s); }
    };
    template <class V>
    using NameMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

    void on_subscribe(unsigned from, const Message& m) noexcept;
    void on_unsubscribe(unsigned from, const Message& m) noexcept;
    void on_publish(unsigned from, const Message& m) noexcept;
    void on_answer(void* answer) noexcept;
    void on_deliver(FrameRef* frame, std::uint64_t handle) noexcept;
    Room* owned(std::string_view name) noexcept;
    void send_or_free(unsigned to, const Message& m) noexcept;
    void send_unsubscribe(unsigned owner, Room* room, Format f, bool deflate) noexcept;
    void drop_sub(std::uint32_t index) noexcept;  // frees the Sub and maybe its LocalRoom

    Port& port_;
    HubSink& sink_;
    std::uint32_t history_;
    FrameCompressor* compressor_ = nullptr;
    unsigned self_;
    unsigned reactors_;
    NameMap<std::unique_ptr<Room>> owned_;
    NameMap<std::uint32_t> local_by_name_;
    std::vector<LocalRoom> locals_;
    std::uint32_t free_local_ = UINT32_MAX;
    std::vector<Sub> subs_;
    std::uint32_t free_sub_ = UINT32_MAX;
    HubStats stats_;
};

}  // namespace roomcast::pubsub
