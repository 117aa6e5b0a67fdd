#include "pubsub/inbox.hpp"

#include <unistd.h>

#include <cerrno>
#include <new>

namespace roomcast::pubsub {

MessageQueue::~MessageQueue() {
    while (head_) {
        Chunk* next = head_->next;
        delete head_;
        head_ = next;
    }
    delete spare_;
}

bool MessageQueue::push(const Message& m) noexcept {
    if (!tail_ || tail_pos_ == chunk_items) {
        Chunk* c = spare_ ? spare_ : new (std::nothrow) Chunk;
        if (!c) return false;
        spare_ = nullptr;
        c->next = nullptr;
        if (tail_) tail_->next = c;
        else head_ = c;
        tail_ = c;
        tail_pos_ = 0;
    }
    tail_->items[tail_pos_++] = m;
    ++size_;
    return true;
}

void MessageQueue::pop() noexcept {
    --size_;
    if (++head_pos_ < chunk_items && !(head_ == tail_ && head_pos_ == tail_pos_)) return;
    // The head chunk is used up (or the queue is empty): recycle it.
    Chunk* done = head_;
    if (head_ == tail_) {
        head_ = tail_ = nullptr;
        tail_pos_ = 0;
    } else {
        head_ = head_->next;
    }
    head_pos_ = 0;
    if (!spare_) spare_ = done;
    else delete done;
}

namespace {
std::size_t round_pow2(std::size_t n) {
    std::size_t c = 2;
    while (c < n) c <<= 1;
    return c;
}
}  // namespace

SpscRing::SpscRing(std::size_t capacity)
    : mask_(round_pow2(capacity) - 1), slots_(new Message[mask_ + 1]) {}

std::unique_ptr<Bus> Bus::create(unsigned reactors, std::size_t ring_capacity, int* err) {
    std::unique_ptr<Bus> bus(new Bus);
    bus->n_ = reactors;
    bus->rings_.resize(std::size_t(reactors) * reactors);
    for (unsigned f = 0; f < reactors; ++f)
        for (unsigned t = 0; t < reactors; ++t)
            if (f != t) bus->rings_[f * reactors + t] = std::make_unique<SpscRing>(ring_capacity);
    for (unsigned r = 0; r < reactors; ++r) {
        std::unique_ptr<Port> p(new Port);
        p->bus_ = bus.get();
        p->self_ = r;
        p->wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        if (!p->wake_fd_) {
            if (err) *err = errno;
            return nullptr;
        }
        p->overflow_ = std::vector<MessageQueue>(reactors);
        p->dirty_.assign(reactors, 0);
        p->dirty_list_.reserve(reactors);
        bus->ports_.push_back(std::move(p));
    }
    return bus;
}

bool Port::push_or_overflow(unsigned to, const Message& m) noexcept {
    SpscRing& ring = bus_->ring(self_, to);
    if (ring.try_push(m)) return true;
    // Full. Announce that we wait for space, then look again: either this second look sees the slots
    // the consumer freed, or the consumer's exchange after its next batch reads `true` and wakes us.
    // See inbox.hpp "Full ring".
    ring.producer_waiting().exchange(true, std::memory_order_acq_rel);
    return ring.try_push(m);
}

bool Port::send(unsigned to, const Message& m) noexcept {
    if (to == self_) {
        if (!self_queue_.push(m)) return false;
        ++stats_.sent;
        return true;
    }
    MessageQueue& q = overflow_[to];
    if (q.empty() && push_or_overflow(to, m)) {
        // in the ring
    } else {
        if (!q.push(m)) return false;
        ++overflow_total_;
        ++stats_.overflowed;
    }
    ++stats_.sent;
    if (!dirty_[to]) {
        dirty_[to] = 1;
        dirty_list_.push_back(to);
    }
    return true;
}

void Port::flush() noexcept {
    if (overflow_total_) {
        for (unsigned to = 0; to < overflow_.size(); ++to) {
            MessageQueue& q = overflow_[to];
            bool moved = false;
            while (!q.empty() && push_or_overflow(to, q.front())) {
                q.pop();
                --overflow_total_;
                moved = true;
            }
            if (moved && !dirty_[to]) {
                dirty_[to] = 1;
                dirty_list_.push_back(to);
            }
        }
    }
    for (unsigned to : dirty_list_) {
        dirty_[to] = 0;
        wake_consumer_of(to);
    }
    dirty_list_.clear();
}

void Port::wake_consumer_of(unsigned to) noexcept {
    Port& dst = bus_->port(to);
    // acq_rel RMW: pairs with the consumer's exchange in prepare_sleep() (inbox.hpp "Wake protocol").
    // Our ring pushes to `dst` are sequenced before this release.
    if (dst.sleeping_.exchange(false, std::memory_order_acq_rel)) {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(dst.wake_fd_.get(), &one, sizeof one);
        ++stats_.wakes_sent;
    }
}

void Port::after_drain(unsigned from) noexcept {
    SpscRing& ring = bus_->ring(from, self_);
    // The head store of the batch is sequenced before this RMW; pairs with push_or_overflow().
    if (ring.producer_waiting().exchange(false, std::memory_order_acq_rel)) {
        // Unconditional write: rare (only after an overflow), and an eventfd count cannot be lost.
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(bus_->port(from).wake_fd_.get(), &one, sizeof one);
        ++stats_.space_wakes_sent;
    }
}

bool Port::pending() const noexcept {
    if (!self_queue_.empty()) return true;
    for (unsigned from = 0; from < bus_->reactors(); ++from)
        if (from != self_ && !bus_->ring(from, self_).empty()) return true;
    return false;
}

bool Port::prepare_sleep() noexcept {
    // RMW, not a plain store: if a producer's exchange came first we read from it and acquire its
    // pushes, so pending() below sees them (inbox.hpp "Wake protocol").
    sleeping_.exchange(true, std::memory_order_acq_rel);
    if (pending()) {
        sleeping_.store(false, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void Port::consume_wake_fd() noexcept {
    std::uint64_t v;
    if (::read(wake_fd_.get(), &v, sizeof v) == static_cast<ssize_t>(sizeof v)) ++stats_.wake_reads;
}

}  // namespace roomcast::pubsub
