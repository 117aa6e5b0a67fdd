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

// owner -> R: the plan and the replay frames (one reference each) in one malloc block.
struct SubscribeAnswer {
    std::uint32_t sub_index;
    std::uint32_t sub_generation;
    Room* room;
    ReplayPlan plan;
    std::uint64_t count;
    Format format;
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

}  // namespace

Hub::Hub(Port& port, HubSink& sink, std::uint32_t history)
    : port_(port), sink_(sink), history_(history), self_(port.self()), reactors_(port.reactors()) {}

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
    case MsgKind::unsubscribe:
    case MsgKind::published:
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
        room->remove_interest(self_, f, deflate);
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

Room* Hub::owned(std::string_view name) noexcept {
    if (auto it = owned_.find(name); it != owned_.end()) return it->second.get();
    auto room = std::unique_ptr<Room>(new (std::nothrow) Room(name, history_, reactors_));
    if (!room) return nullptr;
    Room* r = room.get();
    owned_.emplace(std::string(name), std::move(room));
    return r;
}

void Hub::on_subscribe(unsigned from, const Message& m) noexcept {
    std::unique_ptr<SubscribeRequest> req(static_cast<SubscribeRequest*>(m.ptr));
    Room* room = owned(req->room());
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
    for (std::uint64_t i = 0; i < plan.count; ++i) {
        FrameRef* f = room->frame(plan.first_seq + i, req->format);
        if (!f) break;  // out of memory: the client sees the jump to end_seq + 1
        f->add_ref();
        a->frames()[a->count++] = f;
    }
    // From here on every publish is also sent to `from`, after this answer (same FIFO channel).
    room->add_interest(from, req->format, req->local_handle, req->deflate);
    if (from == self_) {
        on_answer(a);  // synchronous: a publish handled next must find the subscriber in the list
        return;
    }
    Message out;
    out.kind = kind(MsgKind::subscribed);
    out.ptr = a;
    if (!port_.send(from, out)) {
        ++stats_.send_failures;
        room->remove_interest(from, req->format, req->deflate);
        free_answer(a);
    }
}

void Hub::on_unsubscribe(unsigned from, const Message& m) noexcept {
    static_cast<Room*>(m.ptr)->remove_interest(from, static_cast<Format>(m.tag), m.b != 0);
}

void Hub::on_publish(unsigned from, const Message& m) noexcept {
    auto* raw = static_cast<FrameRef*>(m.ptr);
    Room* room = owned(raw->tag());
    std::uint64_t seq = 0;
    if (!room) {
        ++stats_.alloc_failures;
        raw->release();
    } else {
        seq = room->publish(raw);  // the room holds the publisher's reference now
        ++stats_.published;
        // Compress once per process: the sibling is attached here, before any reactor sees the frame.
        if (compressor_) {
            for (std::size_t f = 0; f < format_count; ++f) {
                if (!room->deflate_subscribers(static_cast<Format>(f))) continue;
                if (FrameRef* frame = room->frame(seq, static_cast<Format>(f)); frame && !frame->deflated())
                    frame->set_deflated(compressor_->compress(*frame));
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
    }
    if (!m.b) return;
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
    if (room.empty() || room.size() > max_room_name_bytes) return false;
    FrameRef* raw = FrameRef::make(op, payload, 0, 0, room, Format::raw);
    if (!raw) {
        ++stats_.alloc_failures;
        return false;
    }
    Message m;
    m.kind = kind(MsgKind::publish);
    m.ptr = raw;
    m.a = ack.value_or(0);
    m.b = ack.has_value();
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
    case MsgKind::published: sink_.on_published(m.a, m.b); return;
    }
}

const Room* Hub::owned_room(std::string_view name) const noexcept {
    auto it = owned_.find(name);
    return it == owned_.end() ? nullptr : it->second.get();
}

std::size_t Hub::local_subscribers(std::string_view room, Format f) const noexcept {
    auto it = local_by_name_.find(room);
    return it == local_by_name_.end() ? 0 : locals_[it->second].list[static_cast<int>(f)].size();
}

}  // namespace roomcast::pubsub
