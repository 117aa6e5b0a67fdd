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
// since absent and last=true -> the latest message (kept even with --history 0); since absent -> nothing.
// since > last_seq (e.g. a client from before a restart) -> nothing and no gap; the reply's seq tells
// the client where the room is.
#pragma once
#include <cstddef>
#include <cstdint>
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
    bool gap = false;             // the client asked for messages the ring no longer holds
};

// What the owner knows about one other reactor's interest in a room.
struct Interest {
    std::uint32_t count[format_count] = {0, 0};  // that reactor's subscriptions per format
    std::uint64_t handle = 0;                    // that reactor's local-room handle (echoed in deliveries)
    bool any() const noexcept { return count[0] || count[1]; }
};

// Per-room state at the owner reactor. Single-threaded (owner only). Rooms live as long as the process:
// sequence numbers are never reused, so a room is never forgotten.
class Room {
public:
    Room(std::string_view name, std::uint32_t history, unsigned reactors);
    ~Room();
    Room(const Room&) = delete;
    Room& operator=(const Room&) = delete;

    std::string_view name() const noexcept { return name_; }
    std::uint64_t last_seq() const noexcept { return last_seq_; }
    std::uint32_t history_capacity() const noexcept { return capacity_; }
    std::uint64_t history_size() const noexcept { return last_seq_ < capacity_ ? last_seq_ : capacity_; }
    // Oldest seq the ring holds (last_seq + 1 when it holds nothing).
    std::uint64_t oldest_held() const noexcept { return last_seq_ - history_size() + 1; }

    // Assigns the next seq to `raw` (a Format::raw frame the caller owns alone; set_seq is called) and
    // records it as the latest value and in the history ring. Takes over the caller's reference.
    // Returns the seq.
    std::uint64_t publish(FrameRef* raw) noexcept;

    // The frame of a held seq in the given format, borrowed (the room keeps its reference; add_ref to
    // keep it). The envelope is built on first use and cached. nullptr if the seq is not held or the
    // envelope cannot be allocated.
    FrameRef* frame(std::uint64_t seq, Format f) noexcept;

    ReplayPlan plan_replay(std::optional<std::uint64_t> since, bool last) const noexcept;

    // Per reactor: see "Resume protocol". interest(r) for r < reactors.
    Interest& interest(unsigned reactor) noexcept { return interest_[reactor]; }
    std::uint32_t subscribers(Format f) const noexcept { return total_[static_cast<int>(f)]; }
    // Of those, the ones (on any reactor) that take compressed frames: while there is one, each new
    // frame of that format gets its compressed sibling (frame_ref.hpp) at publish.
    std::uint32_t deflate_subscribers(Format f) const noexcept { return deflate_[static_cast<int>(f)]; }
    void add_interest(unsigned reactor, Format f, std::uint64_t handle, bool deflate = false) noexcept;
    void remove_interest(unsigned reactor, Format f, bool deflate = false) noexcept;

private:
    struct Slot {
        FrameRef* raw = nullptr;
        FrameRef* env = nullptr;
        void clear() noexcept;
    };
    Slot* slot_for(std::uint64_t seq) noexcept;

    std::string name_;
    std::uint64_t last_seq_ = 0;
    std::uint32_t capacity_;
    std::vector<Slot> ring_;  // ring_[seq % capacity_]
    Slot latest_;             // used when capacity_ == 0 (the last value is kept regardless)
    std::vector<Interest> interest_;
    std::uint32_t total_[format_count] = {0, 0};
    std::uint32_t deflate_[format_count] = {0, 0};
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
