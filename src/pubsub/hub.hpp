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
//
// Room memory (--room-memory): the owner side keeps its rooms in a RoomTable (room_table.hpp) within
// its share of the budget, evicting old messages and deleting idle empty rooms. A subscribe or publish
// that would CREATE a room that cannot fit is refused: the owner's answer says so (on_subscribe_refused,
// on_publish_refused), on the same FIFO channel as every other answer.
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
#include "pubsub/room_table.hpp"

namespace roomcast::pubsub {

using SubscriberId = std::uint64_t;  // opaque to the hub (e.g. connection slot | generation << 32)
using PublisherId = std::uint64_t;

// Message kinds on the Bus (Message::kind). Pointers transfer ownership to the receiver.
enum class MsgKind : std::uint32_t {
    subscribe = 1,  // R -> owner   ptr = SubscribeRequest*
    unsubscribe,    // R -> owner   ptr = Room* (owner's, borrowed), tag = Format, b = 1: it took deflate
    publish,        // any -> owner ptr = FrameRef* (raw, unshared, tag = room name, note = publisher's),
                    //              a = PublisherId, b = publish_ack | publish_report
    subscribed,     // owner -> R   ptr = SubscribeAnswer* (the plan and replay, or a refusal)
    deliver,        // owner -> R   ptr = FrameRef* (one reference), a = R's local-room handle
    published,      // owner -> P   a = PublisherId, b = seq (0: out of memory); tag = 1: refused, and
                    //              ptr = the refused FrameRef (its tag is the room, its note the publisher's)
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
    // The owner refused to create the room of this subscription (--room-memory: its share is full of
    // what cannot be evicted). The subscription has ended (its handle is stale); nothing more comes for
    // it. Comes instead of on_subscribed(). `room` is valid during the call.
    virtual void on_subscribe_refused(SubscriberId who, SubHandle h, std::string_view room,
                                      Format format) noexcept = 0;
    // The owner refused to create the room of a publish (as above): the message was not published.
    // For publishes given a PublisherId to report to (with an ack, this comes instead of on_published).
    // `note` is the one given to publish(); both views are valid during the call.
    virtual void on_publish_refused(PublisherId who, std::string_view room, std::string_view note) noexcept = 0;
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
    // `room_memory`: the budget of all reactors together (--room-memory); each reactor's owner side
    // keeps the rooms it owns within room_memory / reactors.
    Hub(Port& port, HubSink& sink, std::uint32_t history, std::size_t room_memory = SIZE_MAX);
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
    // Publishes a copy of `payload` to a valid room name. With `ack`, on_published(*ack, seq) follows
    // (or on_publish_refused(*ack, room, {})). False on allocation failure.
    bool publish(std::string_view room, ws::Opcode op, std::span<const std::byte> payload,
                 std::optional<PublisherId> ack) noexcept;
    // The same, reporting a refusal to `who` in any case: on_publish_refused(who, room, note) (`note`, at
    // most FrameRef::max_note_bytes, e.g. the request id to echo; a longer one is given back empty).
    // With `ack`, on_published(who, seq) follows otherwise.
    bool publish(std::string_view room, ws::Opcode op, std::span<const std::byte> payload, PublisherId who,
                 bool ack, std::string_view note) noexcept;

    // One message from Port::drain().
    void handle(unsigned from, const Message& m) noexcept;
    // Frees what a message carries without acting on it (shutdown).
    static void dispose(const Message& m) noexcept;

    // Introspection (tests, metrics). rooms().stats() may be read from any thread.
    const Room* owned_room(std::string_view name) const noexcept;
    const RoomTable& rooms() const noexcept { return rooms_; }
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
        Room* owner_room = nullptr;  // from the latest answer; used only while a sub is live (hub.cpp)
        SubscriberList list[format_count];
    };
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return room_hash(s); }
    };
    template <class V>
    using NameMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
    // Message::b of a publish.
    static constexpr std::uint64_t publish_ack = 1;     // on_published() follows
    static constexpr std::uint64_t publish_report = 2;  // a refusal is reported (on_publish_refused)

    void on_subscribe(unsigned from, const Message& m) noexcept;
    void on_unsubscribe(unsigned from, const Message& m) noexcept;
    void on_publish(unsigned from, const Message& m) noexcept;
    void on_answer(void* answer) noexcept;
    void on_deliver(FrameRef* frame, std::uint64_t handle) noexcept;
    bool send_publish(std::string_view room, ws::Opcode op, std::span<const std::byte> payload, PublisherId who,
                      std::uint64_t flags, std::string_view note) noexcept;
    void send_or_free(unsigned to, const Message& m) noexcept;
    void send_unsubscribe(unsigned owner, Room* room, Format f, bool deflate) noexcept;
    void drop_sub(std::uint32_t index) noexcept;  // frees the Sub and maybe its LocalRoom

    Port& port_;
    HubSink& sink_;
    FrameCompressor* compressor_ = nullptr;
    unsigned self_;
    unsigned reactors_;
    RoomTable rooms_;
    NameMap<std::uint32_t> local_by_name_;
    std::vector<LocalRoom> locals_;
    std::uint32_t free_local_ = UINT32_MAX;
    std::vector<Sub> subs_;
    std::uint32_t free_sub_ = UINT32_MAX;
    HubStats stats_;
};

}  // namespace roomcast::pubsub
