// The rooms one reactor owns (room.hpp), the memory they may hold (--room-memory) and its eviction.
// Owner thread only, except stats(), which any thread may read (/metrics).
//
// Budget. --room-memory is split equally between the reactors: each owner keeps the rooms it owns
// within its share, budget_bytes(), as counted by its RoomLedger (room.hpp "Memory"). Nothing on the
// publish path touches another thread's counters.
//
// Eviction order (trim(), after a publish or a replay that built envelopes): held messages go oldest
// first in the owner's publish order across all its rooms, except that each room's latest message is
// kept while any room still holds an older one; then the latest messages go, oldest first. A room left
// holding nothing, with no subscriber on any reactor, is deleted at once (room.hpp "Lifetime"). A room
// with a subscriber is never deleted, so what eviction cannot free is the base cost of those rooms:
// RoomLedger::pinned.
//
// Creating a room (create()): the new room plus what comes with it (its first message) must fit once
// everything evictable is gone, pinned + need <= budget. If it cannot, the creation is refused without
// evicting anything; if it can, messages and rooms are evicted in the order above until it fits.
// Publishing to an existing room is never refused: its message is delivered, then trim() evicts (that
// very message last of all, when it is bigger than what can be freed).
//
// Index. Rooms that hold messages sit in a binary min-heap keyed by (holds only its latest message,
// stamp of its oldest held message). A publish can only raise a room's key (ring overflow moves its
// oldest message forward), except when the room goes from one held message to two (its key drops: the
// entry is sifted up at once). So raised keys are updated lazily: an entry's key may be lower than its
// room's, never higher, and evict_one() re-keys the top entry before trusting it. Steady-state
// publishing does no heap work and no allocation.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "pubsub/room.hpp"

namespace roomcast::pubsub {

// Written by the owner thread only (relaxed stores, sync_stats()); any thread may read them.
struct RoomTableStats {
    std::atomic<std::uint64_t> rooms{0};         // rooms held
    std::atomic<std::uint64_t> memory_bytes{0};  // RoomLedger::bytes
    std::atomic<std::uint64_t> evictions{0};     // held messages evicted for memory
    std::atomic<std::uint64_t> deleted{0};       // rooms deleted (held nothing, no subscriber)
    std::atomic<std::uint64_t> refusals{0};      // room creations refused (publish or subscribe)
};

enum class CreateResult : std::uint8_t { created, refused, no_memory };

class RoomTable {
public:
    // `budget_bytes`: this owner's share of --room-memory.
    RoomTable(std::uint32_t history, unsigned reactors, std::size_t budget_bytes) noexcept;
    ~RoomTable();
    RoomTable(const RoomTable&) = delete;
    RoomTable& operator=(const RoomTable&) = delete;

    // The room of that name, or nullptr. Valid until the next call that may delete rooms (create,
    // trim, collect, remove_interest).
    Room* find(std::string_view name) noexcept;
    const Room* find(std::string_view name) const noexcept;
    // Creates the room `name` (which must not exist). `extra_bytes`: memory that comes with it at once
    // (the first message). May evict (and so delete other rooms). nullptr with *result = refused when it
    // cannot fit, or no_memory when an allocation fails.
    Room* create(std::string_view name, std::size_t extra_bytes, CreateResult* result) noexcept;
    // Room::publish() plus the eviction index. Returns the seq.
    std::uint64_t publish(Room& room, FrameRef* raw) noexcept;
    // Evicts (see above) until the rooms fit the budget or nothing more can go.
    void trim() noexcept;
    // Deletes `room` if it holds nothing and has no subscriber. True if it was deleted.
    bool collect(Room& room) noexcept;
    // Room::remove_interest(), then collect(). True if the room was deleted.
    bool remove_interest(Room& room, unsigned reactor, Format f, bool deflate) noexcept;
    // Copies the counters into stats() (call at the end of each owner-side operation).
    void sync_stats() noexcept;

    std::size_t budget_bytes() const noexcept { return budget_; }
    const RoomLedger& ledger() const noexcept { return ledger_; }
    std::size_t size() const noexcept { return rooms_.size(); }
    // Rooms that hold a message (what eviction can work on).
    std::size_t evictable() const noexcept { return heap_size_; }
    const RoomTableStats& stats() const noexcept { return stats_; }
    // Tests and fuzzing: the ledger recomputed from every room, and a check of the heap's invariants.
    std::size_t recount_bytes() const noexcept;
    std::size_t recount_pinned() const noexcept;
    bool heap_ok() const noexcept;

private:
    struct HeapEntry {
        std::uint64_t key;
        Room* room;
    };
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return room_hash(s); }
    };
    static std::uint64_t key_of(const Room& r) noexcept;
    bool evict_one() noexcept;
    bool reserve_heap(std::size_t n) noexcept;
    void heap_push(Room& r) noexcept;
    void heap_remove(std::uint32_t i) noexcept;
    void sift_up(std::uint32_t i) noexcept;
    void sift_down(std::uint32_t i) noexcept;
    void place(std::uint32_t i, const HeapEntry& e) noexcept {
        heap_[i] = e;
        e.room->heap_index_ = i;
    }

    std::uint32_t history_;
    unsigned reactors_;
    std::size_t budget_;
    std::uint64_t evictions_ = 0;
    std::uint64_t deleted_ = 0;
    std::uint64_t refusals_ = 0;
    RoomLedger ledger_;  // declared before rooms_: the rooms give their bytes back to it when destroyed
    // Keys view the rooms' own names.
    std::unordered_map<std::string_view, std::unique_ptr<Room>, NameHash, std::equal_to<>> rooms_;
    std::unique_ptr<HeapEntry[]> heap_;
    std::uint32_t heap_size_ = 0;
    std::uint32_t heap_cap_ = 0;
    RoomTableStats stats_;
};

}  // namespace roomcast::pubsub
