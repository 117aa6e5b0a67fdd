// Rooms: names, the owner reactor of a name, the owner's per-room state (sequence numbers, history
// ring, last value, which reactors are interested) and a reactor's local subscriber list.
//
// ---- Resume protocol: replay then live, no gap, no duplicate --------------------------------------
// Every subscription, with or without `since`, is decided by the room's OWNER reactor O, and the
// answer travels on the same FIFO channel (ring + overflow, inbox.hpp) as the room's live deliveries
// from O to the subscriber's reactor R. Ordering is therefore by construction, not by filtering:
//   1. R creates the subscription in state `pending` (it is NOT in R's local delivery list yet) and
//      sends SUBSCRIBE{room, since?, last?, format, R's local-room handle} to O.
//   2. O handles it between two publishes (O is single-threaded): it counts R as interested in the room
//      (from now on every publish is also sent to R), plans the replay with Room::plan_replay(), and
//      sends SUBSCRIBED{end_seq = room.last_seq(), gap, the replay frames (one reference each)} to R.
//   3. Every publish after that has seq > end_seq and is sent to R after SUBSCRIBED (same FIFO).
//      Deliveries that reach R BEFORE SUBSCRIBED (seq <= end_seq, meant for R's other subscribers) do
//      not reach the pending subscription, because it is not in the list yet.
//   4. R, on SUBSCRIBED: writes the "subscribed" reply, then the replay frames (seqs since+1..end_seq,
//      or oldest-held..end_seq with gap=true), then moves the subscription into the local list. The
//      next delivery it sees for the room is end_seq + 1. No gap, no duplicate, no seq filter needed.
// O == R: the request still goes through R's self queue (so it is never answered from inside
// subscribe()), and O answers synchronously while handling it, so no publish can slip between the
// answer and the list insert. Unsubscribe goes R -> O on the same channel, so O's per-reactor interest
// count is exact; deliveries already in flight for a local room that has since been freed carry its old
// generation and are dropped (and released) on arrival. hub.hpp implements all of this.
//
// Replay rules (plan_replay): since >= last_seq -> nothing; since in the ring's reach -> since+1..last;
// older than the ring (or history 0) -> gap=true, from the oldest held message (nothing with history 0);
// since absent and last=true -> the latest message (kept even with --history 0, unless evicted for
// memory); since absent -> nothing. since > last_seq (e.g. a client from before a restart, or from
// before the room was deleted and started over at seq 1) -> nothing and no gap; the reply's seq tells
// the client where the room is. Messages evicted for memory (--room-memory, room_table.hpp) count as
// "no longer held", exactly like ring overflow.
//
// Lifetime. A room lives while it holds a message or has a subscriber on any reactor. One that holds
// nothing and has no subscriber is deleted by its owner (room_table.hpp); the name starts over at seq 1
// if it is used again. Room pointers that other reactors hold (LocalRoom::owner_room, unsubscribe
// messages, answers in flight) are covered by the owner's interest count: hub.cpp "Deleting rooms".
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pubsub/frame_ref.hpp"

namespace roomcast::pubsub {

// ---- Names and owners -------------------------------------------------------------------------------
inline constexpr std::size_t max_room_name_bytes = 128;

enum class RoomNameError : std::uint8_t {
    none,
    empty,     // 0 bytes
    too_long,  // over max_room_name_bytes
    bad_char,  // a byte outside [A-Za-z0-9._:@-]
};
RoomNameError validate_room_name(std::string_view name) noexcept;
const char* describe(RoomNameError e) noexcept;  // e.g. "room name has a character outside [A-Za-z0-9._:@-]"

// 64-bit FNV-1a: stable across runs and builds (owners must agree between reactors, and with tests).
constexpr std::uint64_t room_hash(std::string_view name) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (char c : name) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ull;
    }
    return h;
}
// The reactor that owns a room. The high half is folded in because FNV-1a's low bits mix weakly.
constexpr unsigned owner_reactor(std::string_view name, unsigned reactors) noexcept {
    const std::uint64_t h = room_hash(name);
    return static_cast<unsigned>((h ^ (h >> 32)) % reactors);
}

// ---- Owner-side room --------------------------------------------------------------------------------
struct ReplayPlan {
    std::uint64_t end_seq = 0;    // room's last seq at this moment: live continues at end_seq + 1
    std::uint64_t first_seq = 0;  // first seq to replay (valid when count > 0)
    std::uint64_t count = 0;      // first_seq .. first_seq + count - 1 == end_seq
    bool gap = false;             // the client asked for messages the room no longer holds
};

// What the owner knows about one other reactor's interest in a room.
struct Interest {
    std::uint32_t count[format_count] = {0, 0};  // that reactor's subscriptions per format
    std::uint64_t handle = 0;                    // that reactor's local-room handle (echoed in deliveries)
    bool any() const noexcept { return count[0] || count[1]; }
};

// The memory of all the rooms one owner reactor holds, kept up to date by the rooms themselves (owner
// thread only; room_table.hpp enforces the budget with it).
struct RoomLedger {
    std::size_t bytes = 0;  // the sum of memory_bytes() over the rooms
    std::size_t pinned =
        0;  // the sum of base_bytes() over the rooms with a subscriber: what no eviction frees
    std::uint64_t stamps =
        0;  // publishes so far: a message's stamp is its place in the owner's publish order
};

// Memory estimates (glibc malloc; the point is a budget that tracks RSS, not an exact count).
inline constexpr std::size_t malloc_overhead_bytes = 16;  // per allocation: chunk header and rounding
// The owner's index entry of a room: its name-map node and bucket plus its eviction-heap entry
// (room_table.hpp).
inline constexpr std::size_t room_index_bytes = 64 + 8 + 16;

// Per-room state at the owner reactor. Single-threaded (owner only).
//
// History. The ring of the last --history messages is allocated lazily: it starts empty and doubles as
// messages arrive, up to --history slots (allocations only while it grows: amortised O(1), none in
// steady state). A room that holds one small message costs a few hundred bytes.
//
// Memory. memory_bytes() = base_bytes() (this object, its name, its interest table and its index entry
// at the owner) + the ring's slots + every held frame (raw frame, cached envelope, and their compressed
// siblings; FrameRef::alloc_bytes() plus malloc overhead each). The owner may evict held messages, oldest
// first (evict_oldest()); they are then reported exactly like ring overflow (gap=true, replay from the
// oldest held). The latest message is evicted only when nothing else can go (room_table.hpp), and a room
// that holds nothing and has no subscriber is deleted: if its name is used again, it starts over at
// seq 1 (a client resuming with an older since then sees "nothing and no gap": its since is ahead).
class Room {
public:
    // `ledger`: the owner's accounting (nullptr: this room alone, for tests).
    Room(std::string_view name, std::uint32_t history, unsigned reactors, RoomLedger* ledger = nullptr);
    ~Room();
    Room(const Room&) = delete;
    Room& operator=(const Room&) = delete;

    std::string_view name() const noexcept { return name_; }
    std::uint64_t last_seq() const noexcept { return last_seq_; }
    std::uint32_t history_capacity() const noexcept { return capacity_; }
    // Ring slots allocated so far (grows to max(history, 1)).
    std::uint32_t ring_slots() const noexcept { return ring_slots_; }
    // Messages held for resume (the latest one is not counted with --history 0).
    std::uint64_t history_size() const noexcept { return capacity_ ? held_ : 0; }
    // Messages held, the latest value with --history 0 included.
    std::uint32_t held() const noexcept { return held_; }
    // Oldest seq held for resume (last_seq + 1 when none is).
    std::uint64_t oldest_held() const noexcept { return last_seq_ - history_size() + 1; }

    // Assigns the next seq to `raw` (a Format::raw frame the caller owns alone; set_seq is called) and
    // records it as the latest value and in the history ring. Takes over the caller's reference.
    // Returns the seq. Never fails: if the ring cannot grow, the oldest held message makes way.
    std::uint64_t publish(FrameRef* raw) noexcept;

    // The frame of a held seq in the given format, borrowed (the room keeps its reference; add_ref to
    // keep it). The envelope is built on first use and cached. nullptr if the seq is not held or the
    // envelope cannot be allocated.
    FrameRef* frame(std::uint64_t seq, Format f) noexcept;
    // Attaches the compressed sibling `z` (one reference, taken over; nullptr is ignored) to the held
    // frame of `seq` in format f (FrameRef::set_deflated), counting its memory.
    void attach_deflated(std::uint64_t seq, Format f, FrameRef* z) noexcept;

    ReplayPlan plan_replay(std::optional<std::uint64_t> since, bool last) const noexcept;

    // Per reactor: see "Resume protocol". interest(r) for r < reactors.
    const Interest& interest(unsigned reactor) const noexcept { return interest_[reactor]; }
    std::uint32_t subscribers(Format f) const noexcept { return total_[static_cast<int>(f)]; }
    bool has_subscribers() const noexcept { return total_[0] || total_[1]; }
    // Of those, the ones (on any reactor) that take compressed frames: while there is one, each new
    // frame of that format gets its compressed sibling (frame_ref.hpp) at publish.
    std::uint32_t deflate_subscribers(Format f) const noexcept { return deflate_[static_cast<int>(f)]; }
    void add_interest(unsigned reactor, Format f, std::uint64_t handle, bool deflate = false) noexcept;
    void remove_interest(unsigned reactor, Format f, bool deflate = false) noexcept;

    // ---- Memory (see above) ----
    std::size_t memory_bytes() const noexcept { return bytes_; }
    std::size_t base_bytes() const noexcept { return base_bytes_; }
    // base_bytes() of a room with this name, before creating it.
    static std::size_t base_bytes_for(std::string_view name, unsigned reactors) noexcept;
    // What a held frame costs (with its compressed sibling).
    static std::size_t frame_bytes(const FrameRef* f) noexcept;
    // What a new room's first message adds: the frame and the ring's first slot.
    static std::size_t first_message_bytes(const FrameRef* f) noexcept;
    // Drops the oldest held message (the latest one when it is the only one); the ring's slots are given
    // back when nothing is left. False if nothing is held.
    bool evict_oldest() noexcept;
    // The stamp (RoomLedger::stamps) of the oldest held message; valid while held() > 0.
    std::uint64_t oldest_stamp() const noexcept;
    // memory_bytes() recomputed from scratch (tests and fuzzing: checks the running count).
    std::size_t recount_bytes() const noexcept;

private:
    friend class RoomTable;

    struct Slot {
        FrameRef* raw = nullptr;
        FrameRef* env = nullptr;
        std::uint64_t stamp = 0;
    };
    Slot* slot_for(std::uint64_t seq) noexcept;
    const Slot* slot_for(std::uint64_t seq) const noexcept;
    std::uint32_t ring_limit() const noexcept { return capacity_ ? capacity_ : 1; }
    bool grow() noexcept;
    void free_ring() noexcept;
    void clear(Slot& s) noexcept;
    void charge(std::ptrdiff_t delta) noexcept {
        bytes_ += static_cast<std::size_t>(delta);
        if (ledger_) ledger_->bytes += static_cast<std::size_t>(delta);
    }

    std::string name_;
    std::uint64_t last_seq_ = 0;
    RoomLedger* ledger_;
    // ring_[seq % ring_slots_] for the held seqs last_seq_ - held_ + 1 .. last_seq_. With --history 0 the
    // ring has one slot, for the latest value.
    std::unique_ptr<Slot[]> ring_;
    std::uint32_t capacity_;
    std::uint32_t ring_slots_ = 0;
    std::uint32_t held_ = 0;
    std::uint32_t total_[format_count] = {0, 0};
    std::uint32_t deflate_[format_count] = {0, 0};
    std::size_t base_bytes_;
    std::size_t bytes_ = 0;
    std::uint32_t heap_index_ = UINT32_MAX;  // RoomTable's eviction heap (room_table.hpp)
    std::vector<Interest> interest_;
};

// ---- Local subscriber list (any reactor) -------------------------------------------------------------
// A dense array of subscriber ids: add and remove are O(1) (remove swaps the last entry into the hole
// and reports it, so the caller can update that entry's stored position), iteration is a contiguous
// scan. Allocation only when the array grows (amortised). Delivery order within a list is arbitrary.
// Removing during iteration over ids() is not allowed: defer closes to the end of the turn.
class SubscriberList {
public:
    using Id = std::uint64_t;
    // Appends (id, key); returns its position. `key` is the caller's back-reference to its own record.
    std::uint32_t add(Id id, std::uint32_t key) {
        ids_.push_back(id);
        keys_.push_back(key);
        return static_cast<std::uint32_t>(ids_.size() - 1);
    }
    // Removes the entry at `pos`. If another entry moved into `pos`, returns true and its key in *moved
    // (update that record's position to `pos`).
    bool remove(std::uint32_t pos, std::uint32_t* moved) noexcept {
        const auto last = static_cast<std::uint32_t>(ids_.size() - 1);
        const bool swapped = pos != last;
        if (swapped) {
            ids_[pos] = ids_[last];
            keys_[pos] = keys_[last];
            *moved = keys_[pos];
        }
        ids_.pop_back();
        keys_.pop_back();
        return swapped;
    }
    std::span<const Id> ids() const noexcept { return ids_; }
    std::span<const std::uint32_t> keys() const noexcept { return keys_; }
    std::size_t size() const noexcept { return ids_.size(); }
    bool empty() const noexcept { return ids_.empty(); }

private:
    std::vector<Id> ids_;
    std::vector<std::uint32_t> keys_;
};

}  // namespace roomcast::pubsub
