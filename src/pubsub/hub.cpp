#include "pubsub/hub.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace roomcast::pubsub {

namespace {

// R -> owner. Fixed-size name: one small allocation per cross-reactor subscribe.
struct SubscribeRequest {
    std::uint32_t sub_index = 0;
    std::uint32_t sub_generation = 0;
    std::uint64_t local_handle = 0;
    std::uint64_t since = 0;
    bool has_since = false;
    bool last = false;
    bool deflate = false;
    Format format = Format::raw;
    std::uint8_t name_len = 0;
    char name[max_room_name_bytes];
    std::string_view room() const noexcept { return {name, name_len}; }
};
static_assert(max_room_name_bytes <= 255);

// owner -> R: the plan and the replay frames (one reference each) in one malloc block; or a refusal
// (room == nullptr, no interest counted).
struct SubscribeAnswer {
    std::uint32_t sub_index;
    std::uint32_t sub_generation;
    Room* room;
    ReplayPlan plan;
    std::uint64_t count;
    Format format;
    bool refused;
    FrameRef** frames() noexcept { return reinterpret_cast<FrameRef**>(this + 1); }
};
static_assert(alignof(SubscribeAnswer) >= alignof(FrameRef*));

SubscribeAnswer* alloc_answer(std::uint64_t count) noexcept {
    void* mem = std::malloc(sizeof(SubscribeAnswer) + count * sizeof(FrameRef*));
    return mem ? ::new (mem) SubscribeAnswer{} : nullptr;
}
void free_answer(SubscribeAnswer* a) noexcept {
    for (std::uint64_t i = 0; i < a->count; ++i) a->frames()[i]->release();
    std::free(a);
}

std::uint64_t make_handle(std::uint32_t index, std::uint32_t generation) noexcept {
    return (std::uint64_t(generation) << 32) | index;
}

constexpr std::uint32_t kind(MsgKind k) noexcept { return static_cast<std::uint32_t>(k); }
constexpr std::uint32_t published_refused = 1;  // Message::tag of a `published` that is a refusal

}  // namespace

// ---- Deleting rooms ---------------------------------------------------------------------------------
// The owner deletes a room (RoomTable::collect) only when it holds nothing and its total interest, over
// every reactor and both formats, is zero. Claim: then no other reactor can still use its Room*.
// A Room* leaves the owner in exactly one way: in a SubscribeAnswer, created by on_subscribe() right
// after add_interest() for that subscription (if the answer cannot be sent, the interest is removed
// again before anything else runs). From then on, each copy of the pointer is backed by that one counted
// interest until the unsubscribe that gives the interest back has been handled by the owner:
//   - the answer in flight: its interest is counted (added before sending);
//   - on arrival, a pending sub becomes live and stores the pointer in LocalRoom::owner_room; a
//     cancelled sub sends UNSUBSCRIBE(answer's room) at once; a refusal carries no pointer and no
//     interest. owner_room is dereferenced only for a LIVE sub (unsubscribe()), and every live sub of a
//     LocalRoom was answered with the same Room: a later answer for the same LocalRoom can carry another
//     Room only if the first was deleted, i.e. its interest reached zero, i.e. every earlier live sub's
//     UNSUBSCRIBE was handled by the owner before the later SUBSCRIBE (R -> owner is FIFO), so none of
//     them is live any more. While only pending or cancelled subs remain, owner_room may be stale, but
//     it is not read: the next answer overwrites it before any sub becomes live.
//   - an UNSUBSCRIBE in flight names the room of a counted interest, and is the only message that
//     decrements it; remove_interest() on arrival is the last use (the self-owned path calls it
//     directly: the same).
// A lost UNSUBSCRIBE (Port::send out of memory) leaves its interest counted forever: the room leaks but
// is never freed under anyone. Deliveries carry frames (reference-counted) and the LocalRoom handle,
// publishes and subscribes carry names, acks carry seqs: none names a Room. So with zero interest no
// message in flight and no LocalRoom can reach the room any more, and freeing it is safe. A new
// SUBSCRIBE or PUBLISH for the name then creates a new Room (seq restarting at 1); answers from it reach
// a LocalRoom after everything the old room sent it (owner -> R is FIFO), and stale deliveries of the
// old room are dropped by the list or generation checks in on_deliver().

Hub::Hub(Port& port, HubSink& sink, std::uint32_t history, std::size_t room_memory)
    : port_(port), sink_(sink), self_(port.self()), reactors_(port.reactors()),
      rooms_(history, port.reactors(), room_memory / port.reactors()) {}

Hub::~Hub() = default;

void Hub::dispose(const Message& m) noexcept {
    switch (static_cast<MsgKind>(m.kind)) {
    case MsgKind::subscribe:
        delete static_cast<SubscribeRequest*>(m.ptr);
        break;
    case MsgKind::publish:
    case MsgKind::deliver:
        static_cast<FrameRef*>(m.ptr)->release();
        break;
    case MsgKind::subscribed:
        free_answer(static_cast<SubscribeAnswer*>(m.ptr));
        break;
    case MsgKind::published:
        if (m.ptr) static_cast<FrameRef*>(m.ptr)->release();
        break;
    case MsgKind::unsubscribe:
        break;
    }
}

void Hub::send_or_free(unsigned to, const Message& m) noexcept {
    if (port_.send(to, m)) return;
    ++stats_.send_failures;
    dispose(m);
}

// ---- Subscriber side --------------------------------------------------------------------------------

SubHandle Hub::subscribe(SubscriberId who, std::string_view room, Format format, std::optional<std::uint64_t> since,
                         bool last, bool deflate) noexcept {
    if (room.size() > max_room_name_bytes || room.empty()) return {};
    auto* req = new (std::nothrow) SubscribeRequest;
    if (!req) {
        ++stats_.alloc_failures;
        return {};
    }
    // The local room: found by name, or a slot reused from the free list (its generation was bumped
    // when it was freed, so deliveries addressed to its previous life are recognised as stale).
    std::uint32_t li;
    if (auto it = local_by_name_.find(room); it != local_by_name_.end()) {
        li = it->second;
    } else {
        if (free_local_ != UINT32_MAX) {
            li = free_local_;
            free_local_ = locals_[li].next_free;
        } else {
            li = static_cast<std::uint32_t>(locals_.size());
            locals_.emplace_back();
        }
        LocalRoom& lr = locals_[li];
        lr.name.assign(room);
        lr.owner = owner_reactor(room, reactors_);
        lr.owner_room = nullptr;
        lr.next_free = UINT32_MAX;
        local_by_name_.emplace(lr.name, li);
    }
    std::uint32_t si;
    if (free_sub_ != UINT32_MAX) {
        si = free_sub_;
        free_sub_ = subs_[si].next_free;
    } else {
        si = static_cast<std::uint32_t>(subs_.size());
        subs_.emplace_back();
    }
    Sub& s = subs_[si];
    s.who = who;
    s.local = li;
    s.format = format;
    s.deflate = deflate;
    s.state = SubState::pending;
    s.next_free = UINT32_MAX;
    LocalRoom& lr = locals_[li];
    ++lr.subs;

    req->sub_index = si;
    req->sub_generation = s.generation;
    req->local_handle = make_handle(li, lr.generation);
    req->has_since = since.has_value();
    req->since = since.value_or(0);
    req->last = last;
    req->deflate = deflate;
    req->format = format;
    req->name_len = static_cast<std::uint8_t>(room.size());
    std::memcpy(req->name, room.data(), room.size());
    // Even when we own the room, the request goes through our own queue: the answer never arrives from
    // inside this call.
    Message m;
    m.kind = kind(MsgKind::subscribe);
    m.ptr = req;
    if (!port_.send(lr.owner, m)) {
        delete req;
        ++stats_.send_failures;
        drop_sub(si);
        return {};
    }
    return {si, s.generation};
}

void Hub::unsubscribe(SubHandle h) noexcept {
    if (!h.valid() || h.index >= subs_.size()) return;
    Sub& s = subs_[h.index];
    if (s.generation != h.generation) return;
    if (s.state == SubState::pending) {
        s.state = SubState::cancelled;  // the answer will undo the owner's interest and free it
        return;
    }
    if (s.state != SubState::live) return;
    LocalRoom& lr = locals_[s.local];
    std::uint32_t moved;
    if (lr.list[static_cast<int>(s.format)].remove(s.pos, &moved)) subs_[moved].pos = s.pos;
    send_unsubscribe(lr.owner, lr.owner_room, s.format, s.deflate);
    drop_sub(h.index);
}

void Hub::send_unsubscribe(unsigned owner, Room* room, Format f, bool deflate) noexcept {
    if (owner == self_) {
        rooms_.remove_interest(*room, self_, f, deflate);  // may delete it: not used after this
        return;
    }
    Message m;
    m.kind = kind(MsgKind::unsubscribe);
    m.tag = static_cast<std::uint32_t>(f);
    m.b = deflate;
    m.ptr = room;
    if (!port_.send(owner, m)) ++stats_.send_failures;  // the owner keeps sending; we drop as stale
}

void Hub::drop_sub(std::uint32_t index) noexcept {
    Sub& s = subs_[index];
    LocalRoom& lr = locals_[s.local];
    if (--lr.subs == 0) {
        local_by_name_.erase(lr.name);
        ++lr.generation;
        lr.owner_room = nullptr;
        lr.next_free = free_local_;
        free_local_ = s.local;
    }
    s.state = SubState::free;
    ++s.generation;
    s.next_free = free_sub_;
    free_sub_ = index;
}

void Hub::on_answer(void* p) noexcept {
    auto* a = static_cast<SubscribeAnswer*>(p);
    Sub* s = a->sub_index < subs_.size() ? &subs_[a->sub_index] : nullptr;
    if (s && s->generation == a->sub_generation && a->refused) {
        // No interest was counted: nothing to give back. A cancelled sub just ends.
        const std::uint32_t si = a->sub_index;
        if (s->state == SubState::pending)
            sink_.on_subscribe_refused(s->who, SubHandle{si, s->generation}, locals_[s->local].name, s->format);
        if (subs_[si].state == SubState::pending || subs_[si].state == SubState::cancelled) drop_sub(si);
        free_answer(a);
        return;
    }
    if (s && s->generation == a->sub_generation && s->state == SubState::pending) {
        const std::uint32_t si = a->sub_index;
        LocalRoom& lr = locals_[s->local];
        lr.owner_room = a->room;
        // Into the list first: the owner sends everything after end_seq to this reactor from now on.
        s->pos = lr.list[static_cast<int>(s->format)].add(s->who, si);
        s->state = SubState::live;
        sink_.on_subscribed(s->who, SubHandle{si, s->generation}, lr.name, s->format, a->plan,
                            std::span<FrameRef* const>(a->frames(), a->count));
        std::free(a);  // the frames' references now belong to the sink
        return;
    }
    // Cancelled while the request was in flight: give back the owner's interest.
    if (s && s->generation == a->sub_generation && s->state == SubState::cancelled) {
        send_unsubscribe(locals_[s->local].owner, a->room, a->format, s->deflate);
        drop_sub(a->sub_index);
    }
    free_answer(a);
}

void Hub::on_deliver(FrameRef* frame, std::uint64_t handle) noexcept {
    const auto li = static_cast<std::uint32_t>(handle);
    const auto gen = static_cast<std::uint32_t>(handle >> 32);
    if (li >= locals_.size() || locals_[li].generation != gen) {
        ++stats_.stale_delivers;  // the local room ended while this was in flight
        frame->release();
        return;
    }
    const SubscriberList& list = locals_[li].list[static_cast<int>(frame->format())];
    if (list.empty()) {  // only pending/cancelled subscriptions here right now
        frame->release();
        return;
    }
    ++stats_.delivered;
    sink_.on_deliver(frame, list.ids());
}

// ---- Owner side -------------------------------------------------------------------------------------

void Hub::on_subscribe(unsigned from, const Message& m) noexcept {
    std::unique_ptr<SubscribeRequest> req(static_cast<SubscribeRequest*>(m.ptr));
    Room* room = rooms_.find(req->room());
    CreateResult created = CreateResult::created;
    if (!room) room = rooms_.create(req->room(), 0, &created);
    if (!room && created == CreateResult::refused) {
        // The answer says so, on the same channel as every answer; no interest is counted.
        SubscribeAnswer* a = alloc_answer(0);
        if (!a) {
            ++stats_.alloc_failures;
            return;  // the subscription stays pending until unsubscribed
        }
        a->sub_index = req->sub_index;
        a->sub_generation = req->sub_generation;
        a->room = nullptr;
        a->format = req->format;
        a->count = 0;
        a->refused = true;
        if (from == self_) {
            on_answer(a);
            return;
        }
        Message out;
        out.kind = kind(MsgKind::subscribed);
        out.ptr = a;
        send_or_free(from, out);
        return;
    }
    if (!room) {
        ++stats_.alloc_failures;
        return;  // the subscription stays pending until unsubscribed
    }
    const ReplayPlan plan =
        room->plan_replay(req->has_since ? std::optional<std::uint64_t>(req->since) : std::nullopt, req->last);
    SubscribeAnswer* a = alloc_answer(plan.count);
    if (!a) {
        ++stats_.alloc_failures;
        return;
    }
    a->sub_index = req->sub_index;
    a->sub_generation = req->sub_generation;
    a->room = room;
    a->plan = plan;
    a->format = req->format;
    a->count = 0;
    a->refused = false;
    for (std::uint64_t i = 0; i < plan.count; ++i) {
        FrameRef* f = room->frame(plan.first_seq + i, req->format);
        if (!f) break;  // out of memory: the client sees the jump to end_seq + 1
        f->add_ref();
        a->frames()[a->count++] = f;
    }
    // From here on every publish is also sent to `from`, after this answer (same FIFO channel).
    room->add_interest(from, req->format, req->local_handle, req->deflate);
    // The replay may have built envelopes. The room has a subscriber now: trimming cannot delete it.
    rooms_.trim();
    if (from == self_) {
        on_answer(a);  // synchronous: a publish handled next must find the subscriber in the list
        return;
    }
    Message out;
    out.kind = kind(MsgKind::subscribed);
    out.ptr = a;
    if (!port_.send(from, out)) {
        ++stats_.send_failures;
        free_answer(a);
        rooms_.remove_interest(*room, from, req->format, req->deflate);
    }
}

void Hub::on_unsubscribe(unsigned from, const Message& m) noexcept {
    rooms_.remove_interest(*static_cast<Room*>(m.ptr), from, static_cast<Format>(m.tag), m.b != 0);
}

void Hub::on_publish(unsigned from, const Message& m) noexcept {
    auto* raw = static_cast<FrameRef*>(m.ptr);
    Room* room = rooms_.find(raw->tag());
    CreateResult created = CreateResult::created;
    if (!room) room = rooms_.create(raw->tag(), Room::first_message_bytes(raw), &created);
    if (!room && created == CreateResult::refused) {
        if (!(m.b & publish_report)) {
            raw->release();
            return;
        }
        if (from == self_) {
            sink_.on_publish_refused(m.a, raw->tag(), raw->note());
            raw->release();
            return;
        }
        Message no;
        no.kind = kind(MsgKind::published);
        no.tag = published_refused;
        no.ptr = raw;  // the publisher's reactor releases it
        no.a = m.a;
        send_or_free(from, no);
        return;
    }
    std::uint64_t seq = 0;
    if (!room) {
        ++stats_.alloc_failures;
        raw->release();
    } else {
        seq = rooms_.publish(*room, raw);  // the room holds the publisher's reference now
        ++stats_.published;
        // Compress once per process: the sibling is attached here, before any reactor sees the frame.
        if (compressor_) {
            for (std::size_t f = 0; f < format_count; ++f) {
                if (!room->deflate_subscribers(static_cast<Format>(f))) continue;
                if (FrameRef* frame = room->frame(seq, static_cast<Format>(f)); frame && !frame->deflated())
                    room->attach_deflated(seq, static_cast<Format>(f), compressor_->compress(*frame));
            }
        }
        for (unsigned r = 0; r < reactors_; ++r) {
            const Interest& in = room->interest(r);
            for (std::size_t f = 0; f < format_count; ++f) {
                if (!in.count[f]) continue;
                FrameRef* frame = room->frame(seq, static_cast<Format>(f));
                if (!frame) {
                    ++stats_.alloc_failures;  // subscribers see the gap at the next seq
                    continue;
                }
                frame->add_ref();  // the one reference for reactor r
                if (r == self_) {
                    on_deliver(frame, in.handle);
                    continue;
                }
                Message d;
                d.kind = kind(MsgKind::deliver);
                d.ptr = frame;
                d.a = in.handle;
                send_or_free(r, d);
            }
        }
        // Every reactor has its reference: now the budget. The room may be deleted here (no subscriber
        // and nothing left; e.g. a message bigger than what eviction can free): not used after this.
        rooms_.collect(*room);
        rooms_.trim();
        room = nullptr;
    }
    if (!(m.b & publish_ack)) return;
    if (from == self_) {
        sink_.on_published(m.a, seq);
        return;
    }
    Message ack;
    ack.kind = kind(MsgKind::published);
    ack.a = m.a;
    ack.b = seq;
    send_or_free(from, ack);
}

bool Hub::publish(std::string_view room, ws::Opcode op, std::span<const std::byte> payload,
                  std::optional<PublisherId> ack) noexcept {
    return send_publish(room, op, payload, ack.value_or(0), ack ? publish_ack | publish_report : 0, {});
}

bool Hub::publish(std::string_view room, ws::Opcode op, std::span<const std::byte> payload, PublisherId who,
                  bool ack, std::string_view note) noexcept {
    if (note.size() > FrameRef::max_note_bytes) note = {};
    return send_publish(room, op, payload, who, (ack ? publish_ack : 0) | publish_report, note);
}

bool Hub::send_publish(std::string_view room, ws::Opcode op, std::span<const std::byte> payload, PublisherId who,
                       std::uint64_t flags, std::string_view note) noexcept {
    if (room.empty() || room.size() > max_room_name_bytes) return false;
    FrameRef* raw = FrameRef::make(op, payload, 0, 0, room, Format::raw, note);
    if (!raw) {
        ++stats_.alloc_failures;
        return false;
    }
    Message m;
    m.kind = kind(MsgKind::publish);
    m.ptr = raw;
    m.a = who;
    m.b = flags;
    if (!port_.send(owner_reactor(room, reactors_), m)) {
        ++stats_.send_failures;
        raw->release();
        return false;
    }
    return true;
}

// ---- Dispatch ---------------------------------------------------------------------------------------

void Hub::handle(unsigned from, const Message& m) noexcept {
    switch (static_cast<MsgKind>(m.kind)) {
    case MsgKind::subscribe: on_subscribe(from, m); return;
    case MsgKind::unsubscribe: on_unsubscribe(from, m); return;
    case MsgKind::publish: on_publish(from, m); return;
    case MsgKind::subscribed: on_answer(m.ptr); return;
    case MsgKind::deliver: on_deliver(static_cast<FrameRef*>(m.ptr), m.a); return;
    case MsgKind::published:
        if (m.tag == published_refused) {
            auto* raw = static_cast<FrameRef*>(m.ptr);
            sink_.on_publish_refused(m.a, raw->tag(), raw->note());
            raw->release();
            return;
        }
        sink_.on_published(m.a, m.b);
        return;
    }
}

const Room* Hub::owned_room(std::string_view name) const noexcept {
    return rooms_.find(name);
}

std::size_t Hub::local_subscribers(std::string_view room, Format f) const noexcept {
    auto it = local_by_name_.find(room);
    return it == local_by_name_.end() ? 0 : locals_[it->second].list[static_cast<int>(f)].size();
}

}  // namespace roomcast::pubsub
