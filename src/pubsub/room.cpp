#include "pubsub/room.hpp"

#include <new>

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

std::size_t Room::base_bytes_for(std::string_view name, unsigned reactors) noexcept {
    // A name that does not fit the string's inline buffer gets its own allocation.
    const std::size_t name_heap = name.size() > std::string().capacity() ? name.size() + 1 + malloc_overhead_bytes : 0;
    return sizeof(Room) + malloc_overhead_bytes + name_heap + reactors * sizeof(Interest) + malloc_overhead_bytes +
           room_index_bytes;
}

std::size_t Room::frame_bytes(const FrameRef* f) noexcept {
    if (!f) return 0;
    std::size_t n = f->alloc_bytes() + malloc_overhead_bytes;
    if (const FrameRef* z = f->deflated()) n += z->alloc_bytes() + malloc_overhead_bytes;
    return n;
}

std::size_t Room::first_message_bytes(const FrameRef* f) noexcept {
    return frame_bytes(f) + sizeof(Slot) + malloc_overhead_bytes;
}

Room::Room(std::string_view name, std::uint32_t history, unsigned reactors, RoomLedger* ledger)
    : name_(name), ledger_(ledger), capacity_(history), base_bytes_(base_bytes_for(name, reactors)),
      interest_(reactors) {
    charge(static_cast<std::ptrdiff_t>(base_bytes_));
}

Room::~Room() {
    for (std::uint32_t i = 0; i < ring_slots_; ++i) clear(ring_[i]);
    free_ring();
    if (ledger_) {
        if (has_subscribers()) ledger_->pinned -= base_bytes_;
        ledger_->bytes -= bytes_;
    }
}

void Room::clear(Slot& s) noexcept {
    const std::size_t n = frame_bytes(s.raw) + frame_bytes(s.env);
    if (s.raw) s.raw->release();
    if (s.env) s.env->release();
    s.raw = s.env = nullptr;
    charge(-static_cast<std::ptrdiff_t>(n));
}

const Room::Slot* Room::slot_for(std::uint64_t seq) const noexcept {
    if (seq == 0 || seq > last_seq_ || seq + held_ <= last_seq_) return nullptr;  // held: last - held < seq
    return &ring_[seq % ring_slots_];
}

Room::Slot* Room::slot_for(std::uint64_t seq) noexcept {
    return const_cast<Slot*>(static_cast<const Room*>(this)->slot_for(seq));
}

// Doubles the ring (up to its limit) and lays the held seqs out again for the new modulus. Called only
// when every slot is in use, so steady state never gets here.
bool Room::grow() noexcept {
    const std::uint32_t limit = ring_limit();
    const std::uint32_t slots = ring_slots_ == 0 ? 1 : (ring_slots_ > limit / 2 ? limit : ring_slots_ * 2);
    std::unique_ptr<Slot[]> ring(new (std::nothrow) Slot[slots]);
    if (!ring) return false;
    for (std::uint64_t seq = last_seq_ - held_ + 1; seq <= last_seq_ && held_; ++seq)
        ring[seq % slots] = ring_[seq % ring_slots_];
    charge(static_cast<std::ptrdiff_t>((slots - ring_slots_) * sizeof(Slot)) +
           (ring_slots_ ? 0 : static_cast<std::ptrdiff_t>(malloc_overhead_bytes)));
    ring_ = std::move(ring);
    ring_slots_ = slots;
    return true;
}

void Room::free_ring() noexcept {
    if (!ring_slots_) return;
    charge(-static_cast<std::ptrdiff_t>(ring_slots_ * sizeof(Slot) + malloc_overhead_bytes));
    ring_.reset();
    ring_slots_ = 0;
}

std::uint64_t Room::publish(FrameRef* raw) noexcept {
    if (held_ == ring_slots_ && ring_slots_ < ring_limit()) grow();
    const std::uint64_t seq = ++last_seq_;
    raw->set_seq(seq);
    if (!ring_slots_) {  // no ring and none to be had: the message is not held
        raw->release();
        return seq;
    }
    Slot& s = ring_[seq % ring_slots_];
    if (held_ == ring_slots_) clear(s);  // full: this slot holds seq - ring_slots_, the oldest (overflow)
    else ++held_;                        // a free slot: the held seqs are fewer than the slots
    s.raw = raw;
    s.stamp = ledger_ ? ++ledger_->stamps : seq;
    charge(static_cast<std::ptrdiff_t>(frame_bytes(raw)));
    return seq;
}

bool Room::evict_oldest() noexcept {
    if (!held_) return false;
    clear(ring_[(last_seq_ - held_ + 1) % ring_slots_]);
    if (--held_ == 0) free_ring();
    return true;
}

std::uint64_t Room::oldest_stamp() const noexcept { return ring_[(last_seq_ - held_ + 1) % ring_slots_].stamp; }

std::size_t Room::recount_bytes() const noexcept {
    std::size_t n = base_bytes_;
    if (ring_slots_) n += ring_slots_ * sizeof(Slot) + malloc_overhead_bytes;
    for (std::uint32_t i = 0; i < ring_slots_; ++i) n += frame_bytes(ring_[i].raw) + frame_bytes(ring_[i].env);
    return n;
}

FrameRef* Room::frame(std::uint64_t seq, Format f) noexcept {
    Slot* s = slot_for(seq);
    if (!s) return nullptr;
    if (f == Format::raw) return s->raw;
    if (!s->env) {
        s->env = make_envelope_frame(name_, seq, s->raw->opcode(), s->raw->payload());
        charge(static_cast<std::ptrdiff_t>(frame_bytes(s->env)));
    }
    return s->env;
}

void Room::attach_deflated(std::uint64_t seq, Format f, FrameRef* z) noexcept {
    if (!z) return;
    FrameRef* frame = this->frame(seq, f);
    if (!frame || frame->deflated()) {
        z->release();
        return;
    }
    frame->set_deflated(z);
    charge(static_cast<std::ptrdiff_t>(z->alloc_bytes() + malloc_overhead_bytes));
}

ReplayPlan Room::plan_replay(std::optional<std::uint64_t> since, bool last) const noexcept {
    ReplayPlan p;
    p.end_seq = last_seq_;
    if (!since) {
        if (last && held_) {  // the latest is held whenever anything is
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
    if (ledger_ && !has_subscribers()) ledger_->pinned += base_bytes_;
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
    if (ledger_ && !has_subscribers()) ledger_->pinned -= base_bytes_;
}

}  // namespace roomcast::pubsub
