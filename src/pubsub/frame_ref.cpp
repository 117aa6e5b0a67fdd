#include "pubsub/frame_ref.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace roomcast::pubsub {

FrameRef* FrameRef::allocate(ws::Opcode op, std::size_t payload_len, std::uint8_t rsv, std::uint64_t seq,
                             std::string_view tag, Format format, std::string_view note) noexcept {
    if (tag.size() > max_tag_bytes || note.size() > max_note_bytes) return nullptr;
    const std::size_t hlen = ws::server_header_len(payload_len);
    // Overflow guard: block = control block + header + payload + tag + note must fit a size_t.
    const std::size_t fixed = sizeof(FrameRef) + hlen + tag.size() + note.size();
    if (payload_len > SIZE_MAX - fixed) return nullptr;
    void* mem = std::malloc(fixed + payload_len);
    if (!mem) return nullptr;
    auto* f = ::new (mem) FrameRef();
    std::byte* base = reinterpret_cast<std::byte*>(f + 1);
    f->header_len_ = static_cast<std::uint8_t>(ws::encode_header(base, op, payload_len, true, rsv));
    f->wire_len_ = f->header_len_ + payload_len;
    f->opcode_ = static_cast<std::uint8_t>(op);
    f->format_ = static_cast<std::uint8_t>(format);
    f->seq_ = seq;
    f->tag_len_ = static_cast<std::uint16_t>(tag.size());
    f->note_len_ = static_cast<std::uint16_t>(note.size());
    if (!tag.empty()) std::memcpy(base + f->wire_len_, tag.data(), tag.size());
    if (!note.empty()) std::memcpy(base + f->wire_len_ + tag.size(), note.data(), note.size());
    return f;
}

FrameRef* FrameRef::make(ws::Opcode op, std::span<const std::byte> payload, std::uint8_t rsv, std::uint64_t seq,
                         std::string_view tag, Format format, std::string_view note) noexcept {
    FrameRef* f = allocate(op, payload.size(), rsv, seq, tag, format, note);
    if (f && !payload.empty()) std::memcpy(f->mutable_payload(), payload.data(), payload.size());
    return f;
}

FrameRef* FrameRef::make_from_parts(ws::Opcode op, std::span<const std::span<const std::byte>> parts,
                                    std::uint8_t rsv, std::uint64_t seq, std::string_view tag,
                                    Format format) noexcept {
    std::size_t total = 0;
    for (auto p : parts) {
        if (p.size() > SIZE_MAX - total) return nullptr;
        total += p.size();
    }
    FrameRef* f = allocate(op, total, rsv, seq, tag, format);
    if (!f) return nullptr;
    std::byte* out = f->mutable_payload();
    for (auto p : parts) {
        if (p.empty()) continue;
        std::memcpy(out, p.data(), p.size());
        out += p.size();
    }
    return f;
}

void FrameRef::destroy() noexcept {
    if (deflated_) deflated_->release();
    this->~FrameRef();
    std::free(this);
}

}  // namespace roomcast::pubsub
