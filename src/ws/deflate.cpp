#include "ws/deflate.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace roomcast::ws {
namespace {

// zlib counts in uInt (32 bits): longer inputs and outputs are handed over in pieces.
constexpr std::size_t max_zlib_chunk = std::size_t{1} << 30;
// First output reservation of an inflate call with an empty buffer, and the least it grows by.
constexpr std::size_t min_inflate_growth_bytes = 4096;

// zlib's API takes non-const input pointers but never writes through them.
Bytef* zin(const std::byte* p) noexcept { return reinterpret_cast<Bytef*>(const_cast<std::byte*>(p)); }

int inflate_window(int window_bits) noexcept {
    // Peers built on zlib cannot compress with 8 (zlib >= 1.2.9 rejects raw 8) and use 9 instead,
    // so an agreed 8 is inflated with 9: a superset that costs 256 more bytes of window.
    return std::clamp(window_bits, min_zlib_deflate_window_bits, max_window_bits);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Inflater

std::unique_ptr<Inflater> Inflater::create(int window_bits) noexcept {
    std::unique_ptr<Inflater> s(new (std::nothrow) Inflater());
    if (!s) return nullptr;
    s->window_bits_ = inflate_window(window_bits);
    // Negative window bits: raw deflate, no zlib header or checksum (RFC 7692 §7.2).
    if (inflateInit2(&s->strm_, -s->window_bits_) != Z_OK) return nullptr;
    return s;
}

Inflater::~Inflater() { inflateEnd(&strm_); }  // harmless on a stream whose init failed

void Inflater::reset() noexcept {
    inflateReset(&strm_);
    msg_in_ = msg_out_ = 0;
    ended_ = false;
}

bool Inflater::rewindow(int window_bits) noexcept {
    const int w = inflate_window(window_bits);
    // inflateReset2 frees the window only if its size changes; the 7 KiB state is kept.
    if (inflateReset2(&strm_, -w) != Z_OK) return false;
    window_bits_ = w;
    msg_in_ = msg_out_ = 0;
    ended_ = false;
    return true;
}

InflateResult Inflater::inflate(std::span<const std::byte> in, bool last, util::ByteBuffer& out,
                                std::size_t max_message_bytes) noexcept {
    if (!in.empty()) {
        if (ended_) return InflateResult::corrupt;  // data after the final (BFINAL) block
        msg_in_ += in.size();
        const InflateResult r = run(in.data(), in.size(), out, max_message_bytes, false);
        if (r != InflateResult::ok) return r;
    }
    if (!last) return InflateResult::ok;
    // An empty payload is an empty message: the tail alone would leave zlib inside a stored block
    // header and break the next message's context.
    if (msg_in_ != 0 && !ended_) {
        // §7.2.2: append 00 00 ff ff, the LEN/NLEN of the empty stored block the sender removed.
        const InflateResult r = run(deflate_tail, sizeof deflate_tail, out, max_message_bytes, true);
        if (r != InflateResult::ok) return r;
        // The message must end where a sync flush ends: on a block boundary (zlib reports "between
        // blocks" as bit 128 of data_type). Otherwise the sender did not follow §7.2.1.
        if (!ended_ && (strm_.data_type & 128) == 0) return InflateResult::corrupt;
    }
    if (ended_) {
        // §7.2.3.4 BFINAL: the zlib stream is over, but the LZ77 window carries on (context takeover),
        // so restart the block parser and keep the window.
        inflateResetKeep(&strm_);
        ended_ = false;
    }
    msg_in_ = msg_out_ = 0;
    return InflateResult::ok;
}

InflateResult Inflater::run(const std::byte* p, std::size_t n, util::ByteBuffer& out, std::size_t max,
                            bool tail) noexcept {
    Bytef probe;  // where output goes once `max` bytes are out: one more byte means too big
    do {
        const auto chunk = static_cast<uInt>(std::min(n, max_zlib_chunk));
        strm_.next_in = zin(p);
        strm_.avail_in = chunk;
        p += chunk;
        n -= chunk;
        for (;;) {
            Bytef* dst = &probe;
            std::size_t room = 1;
            if (msg_out_ < max) {
                std::size_t spare = out.capacity() - out.size();
                if (spare == 0) {
                    // Roughly double this message's output, never reserving past the limit: a bomb costs
                    // at most ~max bytes of buffer and ~max bytes of inflate work.
                    const std::size_t grow = std::min(
                        std::max({msg_out_, min_inflate_growth_bytes, 2 * std::size_t{strm_.avail_in}}),
                        max - msg_out_);
                    if (!out.prepare(grow)) return InflateResult::no_memory;
                    spare = out.capacity() - out.size();
                }
                room = std::min({spare, max - msg_out_, max_zlib_chunk});
                dst = reinterpret_cast<Bytef*>(out.data() + out.size());
            }
            strm_.next_out = dst;
            strm_.avail_out = static_cast<uInt>(room);
            const int rc = ::inflate(&strm_, Z_SYNC_FLUSH);
            const std::size_t got = room - strm_.avail_out;
            if (dst == &probe) {
                if (got != 0) return InflateResult::too_big;  // one byte past max_message_bytes
            } else {
                out.commit(got);
                msg_out_ += got;
            }
            switch (rc) {
                case Z_STREAM_END:
                    ended_ = true;
                    // Sender data after the final block is corrupt; what is left of our own tail is not
                    // (a stream may end with BFINAL, §7.2.3.4, and then the tail is not needed).
                    if (!tail && (strm_.avail_in != 0 || n != 0)) return InflateResult::corrupt;
                    return InflateResult::ok;
                case Z_OK:
                case Z_BUF_ERROR:  // no progress possible: input used up or output full
                    break;
                case Z_MEM_ERROR:
                    return InflateResult::no_memory;
                default:  // Z_DATA_ERROR; Z_NEED_DICT (raw streams never have a dictionary id)
                    return InflateResult::corrupt;
            }
            // Output space left means zlib stopped for want of input: the chunk is used up and every
            // byte it produced is out. A full output may hide more pending output, so go round again.
            if (strm_.avail_out != 0) break;
        }
    } while (n > 0);
    return InflateResult::ok;
}

// ---------------------------------------------------------------------------------------------------
// Deflater

std::unique_ptr<Deflater> Deflater::create(int level, int window_bits) noexcept {
    if (window_bits < min_zlib_deflate_window_bits || window_bits > max_window_bits) return nullptr;
    std::unique_ptr<Deflater> s(new (std::nothrow) Deflater());
    if (!s) return nullptr;
    s->window_bits_ = window_bits;
    s->level_ = std::clamp(level, 1, 9);
    if (deflateInit2(&s->strm_, s->level_, Z_DEFLATED, -window_bits, deflate_mem_level, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return nullptr;
    return s;
}

Deflater::~Deflater() { deflateEnd(&strm_); }  // harmless on a stream whose init failed

void Deflater::reset() noexcept { deflateReset(&strm_); }

bool Deflater::compress(std::span<const std::byte> in, util::ByteBuffer& out) noexcept {
    // The last 4 bytes of output so far are held back (outside `out`) until the end, because a sync
    // flush ends with 00 00 ff ff, which §7.2.1 removes, and ByteBuffer cannot shrink.
    std::byte held[sizeof deflate_tail];
    std::size_t held_n = 0;
    const std::byte* p = in.data();
    std::size_t n = in.size();
    do {  // at least once: an empty message still compresses to one byte (an empty stored block header)
        const auto chunk = static_cast<uInt>(std::min(n, max_zlib_chunk));
        strm_.next_in = zin(p);
        strm_.avail_in = chunk;
        p += chunk;
        n -= chunk;
        const int flush = n == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        for (;;) {
            // deflateBound covers the compressed data; + slack for the flush's empty stored block.
            const std::size_t want = deflateBound(&strm_, strm_.avail_in) + 64;
            std::byte* dst = out.prepare(held_n + want);
            if (!dst) return false;
            std::memcpy(dst, held, held_n);
            const std::size_t room = std::min(out.capacity() - out.size() - held_n, max_zlib_chunk);
            strm_.next_out = reinterpret_cast<Bytef*>(dst + held_n);
            strm_.avail_out = static_cast<uInt>(room);
            const int rc = ::deflate(&strm_, flush);
            if (rc != Z_OK && rc != Z_BUF_ERROR) return false;  // Z_STREAM_ERROR: a broken stream
            const std::size_t total = held_n + (room - strm_.avail_out);
            held_n = std::min(total, sizeof held);
            out.commit(total - held_n);
            std::memcpy(held, out.data() + out.size(), held_n);
            // Output space left: the input is used up and (for Z_SYNC_FLUSH) the flush is complete.
            if (strm_.avail_out != 0) break;
        }
    } while (n > 0);
    // `held` is now 00 00 ff ff, dropped per §7.2.1.
    return true;
}

// ---------------------------------------------------------------------------------------------------
// DeflatePool

DeflatePool::DeflatePool(const DeflateConfig& cfg) : cfg_(cfg) {
    cfg_.level = std::clamp(cfg_.level, 1, 9);
    cfg_.window_bits = std::clamp(cfg_.window_bits, min_zlib_deflate_window_bits, max_window_bits);
    inflaters_.reserve(keep_inflaters);
    deflaters_.reserve(keep_deflaters);
}

std::unique_ptr<Inflater> DeflatePool::take_inflater(int window_bits) noexcept {
    const int w = inflate_window(window_bits);
    for (auto it = inflaters_.begin(); it != inflaters_.end(); ++it) {
        if ((*it)->window_bits() == w) {
            std::unique_ptr<Inflater> s = std::move(*it);
            inflaters_.erase(it);
            return s;
        }
    }
    if (!inflaters_.empty()) {  // re-window an idle one rather than allocate a new state
        std::unique_ptr<Inflater> s = std::move(inflaters_.back());
        inflaters_.pop_back();
        if (s->rewindow(w)) return s;
    }
    std::unique_ptr<Inflater> s = Inflater::create(w);
    if (s) ++stats_.inflaters_created;
    return s;
}

std::unique_ptr<Deflater> DeflatePool::take_deflater(int window_bits) noexcept {
    for (auto it = deflaters_.begin(); it != deflaters_.end(); ++it) {
        if ((*it)->window_bits() == window_bits) {
            std::unique_ptr<Deflater> s = std::move(*it);
            deflaters_.erase(it);
            return s;
        }
    }
    std::unique_ptr<Deflater> s = Deflater::create(cfg_.level, window_bits);
    if (s) ++stats_.deflaters_created;
    return s;
}

void DeflatePool::give_back(std::unique_ptr<Inflater> s) noexcept {
    if (!s) return;
    s->reset();
    if (inflaters_.size() < keep_inflaters) inflaters_.push_back(std::move(s));  // capacity reserved
}

void DeflatePool::give_back(std::unique_ptr<Deflater> s) noexcept {
    if (!s) return;
    s->reset();
    if (deflaters_.size() < keep_deflaters) deflaters_.push_back(std::move(s));  // capacity reserved
}

bool compress_once(DeflatePool& pool, std::span<const std::byte> in, int window_bits,
                   util::ByteBuffer& out) noexcept {
    std::unique_ptr<Deflater> d = pool.take_deflater(window_bits);
    if (!d) return false;
    const bool ok = d->compress(in, out);
    ++pool.stats().compress_once_calls;
    pool.give_back(std::move(d));  // reset: the frame depends on no earlier message
    return ok;
}

// ---------------------------------------------------------------------------------------------------
// DeflateSession

InflateResult DeflateSession::inflate(DeflatePool& pool, std::span<const std::byte> in, bool last,
                                      util::ByteBuffer& out, std::size_t max_message_bytes) noexcept {
    if (!inflater_ && !(inflater_ = pool.take_inflater(params_.client_window_bits)))
        return InflateResult::no_memory;
    const InflateResult r = inflater_->inflate(in, last, out, max_message_bytes);
    if (r == InflateResult::ok && last) ++pool.stats().messages_inflated;
    // Without client context takeover nothing is kept between messages; after a failure the
    // connection is closing, so the stream goes back either way.
    if (r != InflateResult::ok || (last && params_.client_no_context_takeover))
        pool.give_back(std::move(inflater_));
    return r;
}

bool DeflateSession::deflate(DeflatePool& pool, std::span<const std::byte> in,
                             util::ByteBuffer& out) noexcept {
    if (!params_.server_compresses()) return false;
    if (!deflater_ && !(deflater_ = pool.take_deflater(params_.server_window_bits))) return false;
    const bool ok = deflater_->compress(in, out);
    if (ok) ++pool.stats().messages_deflated;
    if (!ok || params_.server_no_context_takeover) pool.give_back(std::move(deflater_));
    return ok;
}

void DeflateSession::release(DeflatePool& pool) noexcept {
    pool.give_back(std::move(inflater_));
    pool.give_back(std::move(deflater_));
}

}  // namespace roomcast::ws
