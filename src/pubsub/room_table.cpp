#include "pubsub/room_table.hpp"

#include <algorithm>
#include <new>

namespace roomcast::pubsub {

namespace {
// Keys: the latest-only rooms after every room that holds an older message (stamps stay far below).
constexpr std::uint64_t latest_only_bit = std::uint64_t{1} << 63;

void store(std::atomic<std::uint64_t>& a, std::uint64_t v) noexcept { a.store(v, std::memory_order_relaxed); }
}  // namespace

RoomTable::RoomTable(std::uint32_t history, unsigned reactors, std::size_t budget_bytes) noexcept
    : history_(history), reactors_(reactors), budget_(budget_bytes) {}

RoomTable::~RoomTable() = default;

Room* RoomTable::find(std::string_view name) noexcept {
    auto it = rooms_.find(name);
    return it == rooms_.end() ? nullptr : it->second.get();
}

const Room* RoomTable::find(std::string_view name) const noexcept {
    auto it = rooms_.find(name);
    return it == rooms_.end() ? nullptr : it->second.get();
}

std::uint64_t RoomTable::key_of(const Room& r) noexcept {
    return (r.held() < 2 ? latest_only_bit : 0) | r.oldest_stamp();
}

Room* RoomTable::create(std::string_view name, std::size_t extra_bytes, CreateResult* result) noexcept {
    const std::size_t need = Room::base_bytes_for(name, reactors_) + extra_bytes;
    // Everything evictable gone, the owner holds exactly `pinned` (rooms with subscribers, holding
    // nothing, ring freed). If the new room does not fit beside that, evicting anything would be in vain.
    if (ledger_.pinned > budget_ || need > budget_ - ledger_.pinned) {
        ++refusals_;
        *result = CreateResult::refused;
        sync_stats();
        return nullptr;
    }
    if (!reserve_heap(rooms_.size() + 1)) {
        *result = CreateResult::no_memory;
        return nullptr;
    }
    while (ledger_.bytes > budget_ - need && evict_one()) {
    }
    auto room = std::unique_ptr<Room>(new (std::nothrow) Room(name, history_, reactors_, &ledger_));
    if (!room) {
        *result = CreateResult::no_memory;
        return nullptr;
    }
    Room* r = room.get();
    rooms_.emplace(r->name(), std::move(room));
    *result = CreateResult::created;
    sync_stats();
    return r;
}

std::uint64_t RoomTable::publish(Room& room, FrameRef* raw) noexcept {
    const std::uint32_t before = room.held();
    const std::uint64_t seq = room.publish(raw);
    if (room.heap_index_ == UINT32_MAX) {
        if (room.held()) heap_push(room);
    } else if (before == 1 && room.held() == 2) {
        // The one key change on this path that lowers a key: the room now holds more than its latest.
        heap_[room.heap_index_].key = key_of(room);
        sift_up(room.heap_index_);
    }
    return seq;
}

void RoomTable::trim() noexcept {
    while (ledger_.bytes > budget_ && evict_one()) {
    }
    sync_stats();
}

bool RoomTable::collect(Room& room) noexcept {
    if (room.held() || room.has_subscribers()) return false;
    // See hub.cpp "Deleting rooms": with no interest counted on any reactor, nothing in flight and no
    // live subscription anywhere names this room.
    rooms_.erase(rooms_.find(room.name()));  // by iterator: the key views the room's own name
    ++deleted_;
    return true;
}

bool RoomTable::remove_interest(Room& room, unsigned reactor, Format f, bool deflate) noexcept {
    room.remove_interest(reactor, f, deflate);
    const bool gone = collect(room);
    sync_stats();
    return gone;
}

void RoomTable::sync_stats() noexcept {
    store(stats_.rooms, rooms_.size());
    store(stats_.memory_bytes, ledger_.bytes);
    store(stats_.evictions, evictions_);
    store(stats_.deleted, deleted_);
    store(stats_.refusals, refusals_);
}

// Evicts the oldest message in the order of the header. False if no room holds anything.
bool RoomTable::evict_one() noexcept {
    while (heap_size_) {
        Room& r = *heap_[0].room;
        const std::uint64_t key = key_of(r);
        if (heap_[0].key != key) {  // raised lazily on the publish path: re-key and look again
            heap_[0].key = key;
            sift_down(0);
            continue;
        }
        r.evict_oldest();
        ++evictions_;
        if (r.held()) {
            heap_[0].key = key_of(r);
            sift_down(0);
        } else {
            heap_remove(0);
            collect(r);
        }
        return true;
    }
    return false;
}

// Room for n entries, so heap_push() never fails (every room is in the heap at most once).
bool RoomTable::reserve_heap(std::size_t n) noexcept {
    if (n <= heap_cap_) return true;
    if (n > UINT32_MAX / 2) return false;
    const std::uint32_t cap = std::max<std::uint32_t>(64, heap_cap_ * 2);
    std::unique_ptr<HeapEntry[]> heap(new (std::nothrow) HeapEntry[std::max<std::size_t>(cap, n)]);
    if (!heap) return false;
    std::copy(heap_.get(), heap_.get() + heap_size_, heap.get());
    heap_ = std::move(heap);
    heap_cap_ = static_cast<std::uint32_t>(std::max<std::size_t>(cap, n));
    return true;
}

void RoomTable::heap_push(Room& r) noexcept {
    const std::uint32_t i = heap_size_++;
    place(i, {key_of(r), &r});
    sift_up(i);
}

void RoomTable::heap_remove(std::uint32_t i) noexcept {
    heap_[i].room->heap_index_ = UINT32_MAX;
    const std::uint32_t last = --heap_size_;
    if (i == last) return;
    Room* moved = heap_[last].room;
    place(i, heap_[last]);
    sift_up(i);
    sift_down(moved->heap_index_);
}

void RoomTable::sift_up(std::uint32_t i) noexcept {
    const HeapEntry e = heap_[i];
    while (i > 0) {
        const std::uint32_t parent = (i - 1) / 2;
        if (heap_[parent].key <= e.key) break;
        place(i, heap_[parent]);
        i = parent;
    }
    place(i, e);
}

void RoomTable::sift_down(std::uint32_t i) noexcept {
    const HeapEntry e = heap_[i];
    for (;;) {
        std::uint32_t child = 2 * i + 1;
        if (child >= heap_size_) break;
        if (child + 1 < heap_size_ && heap_[child + 1].key < heap_[child].key) ++child;
        if (e.key <= heap_[child].key) break;
        place(i, heap_[child]);
        i = child;
    }
    place(i, e);
}

std::size_t RoomTable::recount_bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& [name, room] : rooms_) n += room->recount_bytes();
    return n;
}

std::size_t RoomTable::recount_pinned() const noexcept {
    std::size_t n = 0;
    for (const auto& [name, room] : rooms_)
        if (room->has_subscribers()) n += room->base_bytes();
    return n;
}

bool RoomTable::heap_ok() const noexcept {
    std::size_t holding = 0;
    for (const auto& [name, room] : rooms_) {
        if (!room->held()) {
            if (room->heap_index_ != UINT32_MAX) return false;
            continue;
        }
        ++holding;
        const std::uint32_t i = room->heap_index_;
        if (i >= heap_size_ || heap_[i].room != room.get() || heap_[i].key > key_of(*room)) return false;
    }
    if (holding != heap_size_) return false;
    for (std::uint32_t i = 1; i < heap_size_; ++i)
        if (heap_[(i - 1) / 2].key > heap_[i].key) return false;
    return true;
}

}  // namespace roomcast::pubsub
