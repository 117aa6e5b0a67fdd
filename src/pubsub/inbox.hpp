// Cross-reactor messaging: N reactors, one bounded lock-free SPSC ring per ordered pair (from, to),
// one eventfd per reactor. Messages are small PODs (32 bytes); anything bigger travels by pointer.
//
// Shape. Reactor r's Port is its whole view: it SENDS into rings (r, x) and DRAINS rings (x, r).
// Every Port method is called only by reactor r's own thread; the Bus is created before the reactor
// threads start and outlives them. N x N SPSC rings instead of one MPSC queue per reactor: no CAS, no
// contended cache line between producers, and per-producer FIFO order by construction.
//
// Wake protocol (the consumer is woken once per batch, and only if it may be sleeping).
//   consumer, before epoll_wait:  sleeping.exchange(true, acq_rel); if any ring non-empty -> don't block
//   producer, at flush():         pushes (tail.store release) ...; if (sleeping.exchange(false, acq_rel))
//                                 write(eventfd)
// Both sides use a read-modify-write on the same atomic, so they are totally ordered in its
// modification order: if the producer's RMW comes first, the consumer's RMW reads from it and acquires
// the producer's earlier tail stores, so the consumer sees the messages and does not block; if the
// consumer's RMW comes first, the producer reads `true` and writes the eventfd. Only the producer that
// reads `true` pays the syscall, once per sleep. (RMWs rather than fences + loads: the argument holds in
// the C++ memory model as written, and ThreadSanitizer can check it.) A spurious eventfd count only
// costs one extra, non-blocking loop turn.
//
// Full ring: never block, never drop, never deadlock. send() that finds the ring (r, x) full appends
// the message to r's private overflow queue for x (unbounded, owned by r, no lock); while that queue
// is non-empty every later message for x goes behind it, so per-(r, x) order is kept. flush() (call
// it once per loop turn, before sleeping) moves the overflow into the ring as space appears. A
// producer that finds the ring full does waiting.exchange(true) and looks at the head once more; the
// consumer, after every batch that freed slots, does waiting.exchange(false) and, if it read true,
// writes the producer's eventfd. Same RMW argument: either the producer's second look sees the freed
// slots or the consumer sees `waiting`. So a producer with overflow may sleep without polling.
// Neither side ever waits for the other, so two reactors flooding each other cannot deadlock: each
// keeps draining its own inbox every turn, which is what frees the other's ring.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "net/sys.hpp"

namespace roomcast::pubsub {

// One cross-reactor message. `kind` is chosen by the protocol on top (see hub.hpp); pointers carried
// here transfer ownership to the receiver unless the protocol says otherwise.
struct Message {
    std::uint32_t kind = 0;
    std::uint32_t tag = 0;
    void* ptr = nullptr;
    std::uint64_t a = 0;
    std::uint64_t b = 0;
};
static_assert(sizeof(Message) == 32 && std::is_trivially_copyable_v<Message>);

// Unbounded FIFO of Messages in chunks (allocated with nothrow new; one spare chunk is kept).
// Single-threaded.
class MessageQueue {
public:
    MessageQueue() noexcept = default;
    ~MessageQueue();
    MessageQueue(const MessageQueue&) = delete;
    MessageQueue& operator=(const MessageQueue&) = delete;

    bool push(const Message& m) noexcept;  // false only if a chunk cannot be allocated
    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    const Message& front() const noexcept { return head_->items[head_pos_]; }
    void pop() noexcept;

private:
    static constexpr std::size_t chunk_items = 62;
    struct Chunk {
        Chunk* next = nullptr;
        Message items[chunk_items];
    };
    Chunk* head_ = nullptr;
    Chunk* tail_ = nullptr;
    Chunk* spare_ = nullptr;
    std::size_t head_pos_ = 0;
    std::size_t tail_pos_ = 0;
    std::size_t size_ = 0;
};

// Bounded single-producer single-consumer ring (capacity a power of two).
class SpscRing {
public:
    explicit SpscRing(std::size_t capacity);  // startup only: allocates
    SpscRing(const SpscRing&) = delete;
    SpscRing& operator=(const SpscRing&) = delete;

    std::size_t capacity() const noexcept { return mask_ + 1; }

    // Producer thread. False when full.
    bool try_push(const Message& m) noexcept {
        const std::uint64_t t = prod_.tail_local;
        if (t - prod_.head_cache > mask_) {
            prod_.head_cache = cons_.head.load(std::memory_order_acquire);
            if (t - prod_.head_cache > mask_) return false;
        }
        slots_[t & mask_] = m;
        prod_.tail_local = t + 1;
        prod_.tail.store(t + 1, std::memory_order_release);
        return true;
    }

    // Consumer thread: calls f(const Message&) for up to `max` messages in order; frees their slots
    // with one store at the end (producers see the space once per batch). Returns the count.
    template <class F>
    std::size_t drain(F&& f, std::size_t max) noexcept {
        const std::uint64_t h = cons_.head_local;
        const std::uint64_t t = prod_.tail.load(std::memory_order_acquire);
        std::size_t n = static_cast<std::size_t>(t - h);
        if (n > max) n = max;
        for (std::size_t i = 0; i < n; ++i) f(static_cast<const Message&>(slots_[(h + i) & mask_]));
        if (n) {
            cons_.head_local = h + n;
            cons_.head.store(h + n, std::memory_order_release);
        }
        return n;
    }

    // Consumer thread (acquire load of the producer's tail).
    bool empty() const noexcept { return prod_.tail.load(std::memory_order_acquire) == cons_.head_local; }

    // See "Full ring" above.
    std::atomic<bool>& producer_waiting() noexcept { return waiting_.flag; }

private:
    struct alignas(64) ProducerSide {
        std::atomic<std::uint64_t> tail{0};
        std::uint64_t tail_local = 0;  // producer only
        std::uint64_t head_cache = 0;  // producer only: last head seen, refreshed when the ring looks full
    };
    struct alignas(64) ConsumerSide {
        std::atomic<std::uint64_t> head{0};
        std::uint64_t head_local = 0;  // consumer only
    };
    ProducerSide prod_;
    ConsumerSide cons_;
    // Own line: the consumer exchanges it after every batch, the producer only when the ring is full.
    struct alignas(64) Waiting {
        std::atomic<bool> flag{false};
    };
    Waiting waiting_;
    std::uint64_t mask_;
    std::unique_ptr<Message[]> slots_;
};

struct PortStats {
    std::uint64_t sent = 0;              // messages accepted by send()
    std::uint64_t received = 0;          // messages handed to drain()'s callback
    std::uint64_t overflowed = 0;        // messages that went through the overflow queue
    std::uint64_t wakes_sent = 0;        // eventfd writes for "you have messages"
    std::uint64_t space_wakes_sent = 0;  // eventfd writes for "your ring to me has space again"
    std::uint64_t wake_reads = 0;        // consume_wake_fd() calls that found a count
};

class Bus;

class Port {
public:
    unsigned self() const noexcept { return self_; }
    unsigned reactors() const noexcept;
    // Register EPOLLIN on this fd; call consume_wake_fd() when it is readable.
    int wake_fd() const noexcept { return wake_fd_.get(); }

    // Producer side. Queues m for reactor `to` (to == self() is allowed: delivered by this port's own
    // drain(), after the rings). Never blocks. Returns false only when the ring is full AND the overflow
    // queue cannot allocate; the message is then not sent (count it, treat like OOM).
    bool send(unsigned to, const Message& m) noexcept;
    // Once per loop turn (and before sleeping): move overflow into rings, then wake each destination
    // that received messages since the last flush, if it may be sleeping.
    void flush() noexcept;
    // Messages still waiting in overflow queues (they go out at a later flush()).
    std::size_t overflow_count() const noexcept { return overflow_total_; }

    // Consumer side. Calls f(unsigned from, const Message&) for up to `budget` messages: each ring
    // in turn (FIFO per producer), then self-sent messages. The Message reference is valid during the
    // call only. f may call send(). Returns how many were handled.
    template <class F>
    std::size_t drain(F&& f, std::size_t budget = SIZE_MAX) noexcept;
    // Before epoll_wait: true = nothing pending, block (a producer will write the eventfd);
    // false = messages are pending, poll with timeout 0. Call woke() when epoll_wait returns.
    bool prepare_sleep() noexcept;
    void woke() noexcept { sleeping_.store(false, std::memory_order_relaxed); }
    // Reads (resets) the eventfd. Harmless when not readable.
    void consume_wake_fd() noexcept;
    // True if a ring or the self queue holds messages.
    bool pending() const noexcept;

    const PortStats& stats() const noexcept { return stats_; }

private:
    friend class Bus;
    Port() = default;
    void wake_consumer_of(unsigned to) noexcept;
    void after_drain(unsigned from) noexcept;
    bool push_or_overflow(unsigned to, const Message& m) noexcept;

    Bus* bus_ = nullptr;
    unsigned self_ = 0;
    net::sys::UniqueFd wake_fd_;
    alignas(64) std::atomic<bool> sleeping_{false};  // see "Wake protocol"
    alignas(64) PortStats stats_;
    std::vector<MessageQueue> overflow_;   // per destination (index self unused)
    std::vector<std::uint8_t> dirty_;      // per destination: sent to since the last flush
    std::vector<unsigned> dirty_list_;     // capacity reserved at creation
    std::size_t overflow_total_ = 0;
    MessageQueue self_queue_;
    unsigned drain_start_ = 0;             // round-robin start so one producer cannot starve others
};

class Bus {
public:
    // `reactors` ports, each with an eventfd, and reactors*(reactors-1) rings of `ring_capacity`
    // (rounded up to a power of two, at least 2). Startup only. nullptr on failure (*err = errno).
    static std::unique_ptr<Bus> create(unsigned reactors, std::size_t ring_capacity, int* err = nullptr);

    unsigned reactors() const noexcept { return n_; }
    Port& port(unsigned reactor) noexcept { return *ports_[reactor]; }
    SpscRing& ring(unsigned from, unsigned to) noexcept { return *rings_[from * n_ + to]; }

private:
    Bus() = default;
    unsigned n_ = 0;
    std::vector<std::unique_ptr<Port>> ports_;
    std::vector<std::unique_ptr<SpscRing>> rings_;  // [from * n + to]; null on the diagonal
};

inline unsigned Port::reactors() const noexcept { return bus_->reactors(); }

template <class F>
std::size_t Port::drain(F&& f, std::size_t budget) noexcept {
    std::size_t done = 0;
    const unsigned n = bus_->reactors();
    for (unsigned k = 0; k < n && done < budget; ++k) {
        const unsigned from = (drain_start_ + k) % n;
        if (from == self_) continue;
        const std::size_t got =
            bus_->ring(from, self_).drain([&](const Message& m) { f(from, m); }, budget - done);
        if (got) {
            done += got;
            after_drain(from);
        }
    }
    drain_start_ = n ? (drain_start_ + 1) % n : 0;
    // Self-sent messages: only those present at the start, so a handler that sends to itself again
    // cannot keep this loop going forever.
    std::size_t local = self_queue_.size();
    while (local-- && done < budget) {
        const Message m = self_queue_.front();
        self_queue_.pop();
        f(self_, m);
        ++done;
    }
    stats_.received += done;
    return done;
}

}  // namespace roomcast::pubsub
