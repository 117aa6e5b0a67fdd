// A growable heap byte buffer and a small per-reactor pool of them. Used for the rare paths: a message
// or control frame split across reads, a request head split across reads, a send backlog. The common
// path (complete frames in the reactor's read buffer) never touches these.
// Not thread-safe: a pool and its buffers belong to one reactor.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <vector>

namespace roomcast::util {

class ByteBuffer {
public:
    ByteBuffer() noexcept = default;
    ~ByteBuffer() { std::free(data_); }
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;

    std::byte* data() noexcept { return data_; }
    const std::byte* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return cap_; }
    bool empty() const noexcept { return size_ == 0; }
    std::span<std::byte> span() noexcept { return {data_, size_}; }

    // Grows geometrically; false on allocation failure (the caller closes the connection).
    bool reserve(std::size_t want) noexcept {
        if (want <= cap_) return true;
        std::size_t cap = cap_ ? cap_ : 256;
        while (cap < want) cap *= 2;
        void* p = std::realloc(data_, cap);
        if (!p) return false;
        data_ = static_cast<std::byte*>(p);
        cap_ = cap;
        return true;
    }
    bool append(const void* p, std::size_t n) noexcept {
        if (!reserve(size_ + n)) return false;
        if (n) std::memcpy(data_ + size_, p, n);
        size_ += n;
        return true;
    }
    // Makes room for n more bytes and returns where they go; commit(n) after writing them.
    std::byte* prepare(std::size_t n) noexcept { return reserve(size_ + n) ? data_ + size_ : nullptr; }
    void commit(std::size_t n) noexcept { size_ += n; }
    // Drops the first n bytes (memmove; backlogs drain from the front).
    void consume(std::size_t n) noexcept {
        if (n >= size_) {
            size_ = 0;
            return;
        }
        std::memmove(data_, data_ + n, size_ - n);
        size_ -= n;
    }
    void clear() noexcept { size_ = 0; }
    void release_memory() noexcept {
        std::free(data_);
        data_ = nullptr;
        size_ = cap_ = 0;
    }

private:
    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t cap_ = 0;
};

// Keeps a few emptied buffers of modest capacity so that split frames do not malloc each time.
class BufferPool {
public:
    static constexpr std::size_t keep_count = 256;
    static constexpr std::size_t keep_capacity_bytes = 64 * 1024;  // bigger buffers are freed

    BufferPool() = default;
    ~BufferPool() {
        for (ByteBuffer* b : free_) delete b;
    }
    BufferPool(const BufferPool&) = delete;
    BufferPool& operator=(const BufferPool&) = delete;

    ByteBuffer* acquire() noexcept {
        if (!free_.empty()) {
            ByteBuffer* b = free_.back();
            free_.pop_back();
            return b;
        }
        return new (std::nothrow) ByteBuffer();
    }
    void release(ByteBuffer* b) noexcept {
        if (!b) return;
        b->clear();
        if (free_.size() < keep_count && b->capacity() <= keep_capacity_bytes && free_.capacity() > free_.size()) {
            free_.push_back(b);
            return;
        }
        delete b;
    }
    void reserve_slots() { free_.reserve(keep_count); }
    std::size_t pooled() const noexcept { return free_.size(); }

private:
    std::vector<ByteBuffer*> free_;
};

}  // namespace roomcast::util
