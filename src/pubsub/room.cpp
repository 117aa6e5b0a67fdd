#include "pubsub/room.hpp"

#include "pubsub/control.hpp"

namespace roomcast::pubsub {

RoomNameError validate_room_name(std::string_view name) noexcept {
    if (name.empty()) return RoomNameError::empty;
    if (name.size() > max_room_name_bytes) return RoomNameError::too_long;
    for (char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == ':' || c == '@' || c == '-';
        if (!ok) return RoomNameError::bad_char;
    }
    return RoomNameError::none;
}

const char* describe(RoomNameError e) noexcept {
    switch (e) {
    case RoomNameError::none: return "";
    case RoomNameError::empty: return "room name is empty";
    case RoomNameError::too_long: return "room name is longer than 128 bytes";
    case RoomNameError::bad_char: return "room name has a character outside [A-Za-z0-9._:@-]";
    }
    return "invalid room name";
}

void Room::Slot::clear() noexcept {
    if (raw) raw->release();
    if (env) env->release();
    raw = env = nullptr;
}

Room::Room(std::string_view name, std::uint32_t history, unsigned reactors)
    : name_(name), capacity_(history), ring_(history), interest_(reactors) {}

Room::~Room() {
    for (Slot& s : ring_) s.clear();
    latest_.clear();
}

Room::Slot* Room::slot_for(std::uint64_t seq) noexcept {
    if (seq == 0 || seq > last_seq_) return nullptr;
    if (capacity_ == 0) return seq == last_seq_ ? &latest_ : nullptr;
    if (seq < oldest_held()) return nullptr;
    return &ring_[seq % capacity_];
}

std::uint64_t Room::publish(FrameRef* raw) noexcept {
    const std::uint64_t seq = ++last_seq_;
    raw->set_seq(seq);
    Slot& s = capacity_ ? ring_[seq % capacity_] : latest_;
    s.clear();  // evicts seq - capacity (or the previous latest value)
    s.raw = raw;
    return seq;
}

FrameRef* Room::frame(std::uint64_t seq, Format f) noexcept {
    Slot* s = slot_for(seq);
    if (!s) return nullptr;
    if (f == Format::raw) return s->raw;
    if (!s->env) s->env = make_envelope_frame(name_, seq, s->raw->opcode(), s->raw->payload());
    return s->env;
}

ReplayPlan Room::plan_replay(std::optional<std::uint64_t> since, bool last) const noexcept {
    ReplayPlan p;
    p.end_seq = last_seq_;
    if (!since) {
        if (last && last_seq_) {
            p.first_seq = last_seq_;
            p.count = 1;
        }
        return p;
    }
    if (*since >= last_seq_) return p;  // up to date, or ahead of us (see room.hpp)
    std::uint64_t from = *since + 1;
    const std::uint64_t oldest = oldest_held();
    if (from < oldest) {
        p.gap = true;
        from = oldest;
    }
    if (from <= last_seq_) {
        p.first_seq = from;
        p.count = last_seq_ - from + 1;
    }
    return p;
}

void Room::add_interest(unsigned reactor, Format f, std::uint64_t handle, bool deflate) noexcept {
    Interest& in = interest_[reactor];
    ++in.count[static_cast<int>(f)];
    in.handle = handle;
    ++total_[static_cast<int>(f)];
    if (deflate) ++deflate_[static_cast<int>(f)];
}

void Room::remove_interest(unsigned reactor, Format f, bool deflate) noexcept {
    Interest& in = interest_[reactor];
    if (in.count[static_cast<int>(f)] == 0) return;
    --in.count[static_cast<int>(f)];
    --total_[static_cast<int>(f)];
    if (deflate && deflate_[static_cast<int>(f)]) --deflate_[static_cast<int>(f)];
}

}  // namespace roomcast::pubsub
