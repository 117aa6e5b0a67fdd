// Hashed timing wheel: O(1) schedule/cancel per connection, intrusive nodes, no allocation.
// Resolution tick_ms; a deadline further than one revolution waits in its slot for extra rounds.
// One wheel per reactor; not thread-safe.
#pragma once
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace roomcast::net {

struct TimerNode {
    TimerNode* prev = nullptr;
    TimerNode* next = nullptr;
    std::uint64_t due_ms = 0;
    bool armed() const noexcept { return prev != nullptr; }
};

class TimerWheel {
public:
    static constexpr std::uint64_t tick_ms = 4;
    static constexpr std::size_t slot_count = 1024;  // one revolution = 4.096 s
    static constexpr std::size_t word_count = slot_count / 64;

    explicit TimerWheel(std::uint64_t now_ms) noexcept : current_tick_(now_ms / tick_ms) {
        for (auto& s : slots_) s.prev = s.next = &s;
    }
    TimerWheel(const TimerWheel&) = delete;
    TimerWheel& operator=(const TimerWheel&) = delete;

    // (Re)schedules n at due_ms (clamped to the next tick if in the past).
    void schedule(TimerNode& n, std::uint64_t due_ms) noexcept {
        if (n.armed()) unlink(n);
        n.due_ms = due_ms;
        std::uint64_t tick = due_ms / tick_ms;
        if (tick <= current_tick_) tick = current_tick_ + 1;
        const std::size_t slot = tick % slot_count;
        TimerNode& head = slots_[slot];
        n.prev = head.prev;
        n.next = &head;
        head.prev->next = &n;
        head.prev = &n;
        bits_[slot / 64] |= std::uint64_t{1} << (slot % 64);
        ++size_;
    }
    void cancel(TimerNode& n) noexcept {
        if (n.armed()) unlink(n);
    }
    std::size_t size() const noexcept { return size_; }

    // Fires every node due by now_ms: fire(TimerNode&) is called with the node already unlinked; it
    // may schedule it again (or any other node).
    template <class Fire>
    void advance(std::uint64_t now_ms, Fire&& fire) noexcept {
        const std::uint64_t target = now_ms / tick_ms;
        if (target <= current_tick_) return;
        // Visiting more than one revolution of slots adds nothing.
        std::uint64_t from = current_tick_ + 1;
        if (target - current_tick_ > slot_count) from = target - slot_count + 1;
        current_tick_ = target;
        for (std::uint64_t t = from; t <= target; ++t) {
            const std::size_t slot = t % slot_count;
            if (!(bits_[slot / 64] & (std::uint64_t{1} << (slot % 64)))) continue;
            // Detach the slot's list first so nodes rescheduled into it are not revisited now.
            TimerNode& head = slots_[slot];
            bits_[slot / 64] &= ~(std::uint64_t{1} << (slot % 64));
            if (head.next == &head) continue;  // emptied by cancel() since its bit was set
            TimerNode* first = head.next;
            TimerNode* last = head.prev;
            head.prev = head.next = &head;
            last->next = nullptr;
            for (TimerNode* n = first; n;) {
                TimerNode* next = n->next;
                n->prev = n->next = nullptr;
                --size_;
                if (n->due_ms / tick_ms <= target) fire(*n);
                else schedule(*n, n->due_ms);  // a later round
                n = next;
            }
        }
    }

    // Milliseconds until the next non-empty slot's tick (-1 if nothing is scheduled); used as the
    // epoll_wait timeout. A slot holding only later-round nodes wakes the reactor early, harmlessly.
    int ms_until_next(std::uint64_t now_ms) const noexcept {
        if (size_ == 0) return -1;
        const std::size_t start = (current_tick_ + 1) % slot_count;
        for (std::size_t i = 0; i < word_count + 1; ++i) {
            const std::size_t w = (start / 64 + i) % word_count;
            std::uint64_t bits = bits_[w];
            if (i == 0) bits &= ~std::uint64_t{0} << (start % 64);
            if (bits) {
                const std::size_t slot = w * 64 + static_cast<std::size_t>(std::countr_zero(bits));
                const std::size_t ahead = (slot + slot_count - start) % slot_count + 1;
                const std::uint64_t due = (current_tick_ + ahead) * tick_ms;
                return due <= now_ms ? 0 : static_cast<int>(due - now_ms);
            }
        }
        return static_cast<int>(tick_ms);
    }

private:
    void unlink(TimerNode& n) noexcept {
        n.prev->next = n.next;
        n.next->prev = n.prev;
        n.prev = n.next = nullptr;
        --size_;
        // The slot's bit is cleared lazily when the slot is visited.
    }

    std::array<TimerNode, slot_count> slots_{};
    std::array<std::uint64_t, word_count> bits_{};
    std::uint64_t current_tick_;
    std::size_t size_ = 0;
};

}  // namespace roomcast::net
