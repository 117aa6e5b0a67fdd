// A connection's unsent output, in order: byte segments it owns (echoes and replies the kernel did not
// take) and shared room frames (no per-subscriber copy: the segment points at the frame's bytes).
// Shared frames are counted per reactor: a LocalFrame holds the reactor's ONE reference to a FrameRef
// and a plain count of the segments that use it (STYLE.md §5), released at zero.
// One reactor only; allocated lazily (idle connections have none).
#pragma once
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pubsub/frame_ref.hpp"
#include "util/byte_buffer.hpp"

namespace roomcast::server {

struct LocalFrame {
    pubsub::FrameRef* frame = nullptr;
    std::uint32_t users = 0;
    LocalFrame* next_free = nullptr;
};

class LocalFramePool {
public:
    LocalFramePool() = default;
    ~LocalFramePool() {
        while (free_) {
            LocalFrame* n = free_->next_free;
            delete free_;
            free_ = n;
        }
    }
    LocalFramePool(const LocalFramePool&) = delete;
    LocalFramePool& operator=(const LocalFramePool&) = delete;

    // Takes over one reference of f.
    LocalFrame* wrap(pubsub::FrameRef* f) noexcept {
        LocalFrame* lf = free_;
        if (lf) free_ = lf->next_free;
        else if (!(lf = new (std::nothrow) LocalFrame())) return nullptr;
        lf->frame = f;
        lf->users = 0;
        lf->next_free = nullptr;
        return lf;
    }
    // One user fewer; at zero the reference is dropped and the wrapper recycled.
    void unuse(LocalFrame* lf) noexcept {
        if (--lf->users == 0) drop(lf);
    }
    // For a wrapper nobody used.
    void drop(LocalFrame* lf) noexcept {
        lf->frame->release(1);
        lf->frame = nullptr;
        lf->next_free = free_;
        free_ = lf;
    }

private:
    LocalFrame* free_ = nullptr;
};

struct Segment {
    LocalFrame* shared = nullptr;       // a room frame, or
    util::ByteBuffer* owned = nullptr;  // bytes this connection owns
    std::size_t sent = 0;               // bytes of it already written
    const std::byte* data() const noexcept {
        return shared ? shared->frame->wire().data() : owned->data();
    }
    std::size_t size() const noexcept { return shared ? shared->frame->wire().size() : owned->size(); }
};

class OutQueue {
public:
    bool empty() const noexcept { return head_ == segs_.size(); }
    std::size_t bytes() const noexcept { return bytes_; }  // unsent bytes
    std::size_t segments() const noexcept { return segs_.size() - head_; }

    // Appends bytes, into the last owned segment when there is one.
    bool append_bytes(const void* p, std::size_t n, util::BufferPool& pool) noexcept {
        if (!empty() && segs_.back().owned) {
            if (!segs_.back().owned->append(p, n)) return false;
        } else {
            util::ByteBuffer* b = pool.acquire();
            if (!b || !b->append(p, n)) {
                pool.release(b);
                return false;
            }
            if (!push({nullptr, b, 0})) {
                pool.release(b);
                return false;
            }
        }
        bytes_ += n;
        return true;
    }
    bool append_frame(LocalFrame* lf) noexcept {
        if (!push({lf, nullptr, 0})) return false;
        ++lf->users;
        bytes_ += lf->frame->wire().size();
        return true;
    }

    // Fills iov from the front (at most max); returns the count.
    int gather(iovec* iov, int max) const noexcept {
        int n = 0;
        for (std::size_t i = head_; i < segs_.size() && n < max; ++i) {
            const Segment& s = segs_[i];
            iov[n++] = {const_cast<std::byte*>(s.data()) + s.sent, s.size() - s.sent};
        }
        return n;
    }
    // Drops `n` written bytes from the front.
    void consume(std::size_t n, util::BufferPool& pool, LocalFramePool& frames) noexcept {
        bytes_ -= n;
        while (n > 0 && !empty()) {
            Segment& s = segs_[head_];
            const std::size_t left = s.size() - s.sent;
            if (n < left) {
                s.sent += n;
                return;
            }
            n -= left;
            release(s, pool, frames);
            ++head_;
        }
        if (empty()) {
            segs_.clear();
            head_ = 0;
        }
    }
    // Drops every segment nothing has been written of, except the first `keep_started` rule: a segment
    // partly written must be finished or the stream breaks. If `same_tag` is given, only shared frames
    // with that tag (room) and format are dropped (conflation).
    template <class Pred>
    void drop_unstarted(Pred&& pred, util::BufferPool& pool, LocalFramePool& frames) noexcept {
        std::size_t out = head_;
        for (std::size_t i = head_; i < segs_.size(); ++i) {
            Segment& s = segs_[i];
            if (s.sent == 0 && pred(s)) {
                bytes_ -= s.size();
                release(s, pool, frames);
                continue;
            }
            segs_[out++] = s;
        }
        segs_.resize(out);
        if (empty()) {
            segs_.clear();
            head_ = 0;
        }
    }
    void clear(util::BufferPool& pool, LocalFramePool& frames) noexcept {
        for (std::size_t i = head_; i < segs_.size(); ++i) release(segs_[i], pool, frames);
        segs_.clear();
        head_ = 0;
        bytes_ = 0;
    }

private:
    bool push(const Segment& s) noexcept {
        if (head_ > 64 && head_ * 2 > segs_.size()) {  // compact the consumed front
            segs_.erase(segs_.begin(), segs_.begin() + static_cast<long>(head_));
            head_ = 0;
        }
        if (segs_.size() == segs_.capacity()) {
            // Growth is amortised; out of memory here closes the connection.
            segs_.reserve(segs_.empty() ? 8 : segs_.size() * 2);
        }
        segs_.push_back(s);
        return true;
    }
    static void release(Segment& s, util::BufferPool& pool, LocalFramePool& frames) noexcept {
        if (s.shared) frames.unuse(s.shared);
        if (s.owned) {
            if (s.owned->capacity() > util::BufferPool::keep_capacity_bytes) s.owned->release_memory();
            pool.release(s.owned);
        }
        s.shared = nullptr;
        s.owned = nullptr;
    }

    std::vector<Segment> segs_;
    std::size_t head_ = 0;
    std::size_t bytes_ = 0;
};

}  // namespace roomcast::server
