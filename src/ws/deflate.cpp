#include "ws/deflate.hpp"

#include <algorithm>
#include <bit>
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

// --- RFC 1951 decoding tables, for WindowCheck ----------------------------------------------------

constexpr unsigned max_code_bits = 15;                // §3.2.2: no Huffman code is longer
constexpr unsigned length_symbols = 29;               // 257..285 (§3.2.5); 286 and 287 never occur
constexpr unsigned distance_symbols = 30;             // 0..29; 30 and 31 never occur
constexpr unsigned max_literal_length_symbols = 286;  // HLIT + 257 (§3.2.7); more is rejected, as zlib does
constexpr unsigned code_length_symbols = 19;          // the code-length alphabet (§3.2.7)
constexpr unsigned max_pair_bits = max_code_bits + 5 + max_code_bits + 13;  // a length/distance pair: 48

struct ExtraBits {
    std::uint16_t base[distance_symbols];
    std::uint8_t bits[distance_symbols];
};

// §3.2.5: a length symbol's extra bits grow by one every 4 codes after the first 8; code 285 is 258 exactly.
constexpr ExtraBits make_lengths() {
    ExtraBits t{};
    unsigned base = 3;
    for (unsigned i = 0; i < length_symbols - 1; ++i) {
        t.bits[i] = static_cast<std::uint8_t>(i < 8 ? 0 : (i - 4) / 4);
        t.base[i] = static_cast<std::uint16_t>(base);
        base += 1u << t.bits[i];
    }
    t.base[length_symbols - 1] = 258;
    return t;
}
// §3.2.5: a distance symbol's extra bits grow by one every 2 codes after the first 4.
constexpr ExtraBits make_distances() {
    ExtraBits t{};
    unsigned base = 1;
    for (unsigned i = 0; i < distance_symbols; ++i) {
        t.bits[i] = static_cast<std::uint8_t>(i < 4 ? 0 : (i - 2) / 2);
        t.base[i] = static_cast<std::uint16_t>(base);
        base += 1u << t.bits[i];
    }
    return t;
}
constexpr ExtraBits length_codes = make_lengths();
constexpr ExtraBits distance_codes = make_distances();
static_assert(length_codes.base[27] == 227 && length_codes.bits[27] == 5);
static_assert(distance_codes.base[29] + (1u << distance_codes.bits[29]) - 1 == 1u << max_window_bits);

// Huffman::decode results besides a symbol: the code is longer than the bits there are; no code starts
// with these bits (an incomplete code).
constexpr std::uint32_t need_more_bits = 1u << 16;
constexpr std::uint32_t no_code = 1u << 17;
// A decoded symbol is `symbol << code_shift | code length`: the length in the low bits, so that
// `hold >> (e & 63)` drops the code in one shift.
constexpr unsigned code_shift = 6;
constexpr unsigned code_length_mask = (1u << code_shift) - 1;

constexpr unsigned reverse_bits(unsigned code, unsigned n) {
    unsigned r = 0;
    for (unsigned i = 0; i < n; ++i, code >>= 1) r = (r << 1) | (code & 1);
    return r;
}

// A canonical Huffman code (§3.2.2). Codes up to FastBits long are found with one lookup; longer ones
// (improbable symbols, so rare) with a walk over the code counts, one bit at a time.
template <unsigned FastBits, unsigned MaxSymbols>
struct Huffman {
    static constexpr unsigned fast_mask = (1u << FastBits) - 1;
    // fast[next FastBits bits of the stream] = symbol << code_shift | code length; 0: a longer code, or none.
    std::uint16_t fast[1u << FastBits];
    std::uint16_t count[max_code_bits + 1];  // number of codes of each length
    std::uint16_t sorted[MaxSymbols];        // symbols in code order: by length, then by symbol

    // false: over-subscribed (more codes than the lengths leave room for), which zlib rejects as well. An
    // incomplete code is accepted; bits that start no code fail in decode() (zlib fails there or earlier).
    constexpr bool build(const std::uint8_t* lengths, unsigned n) noexcept {
        std::fill(std::begin(count), std::end(count), 0);
        for (unsigned s = 0; s < n; ++s) ++count[lengths[s]];
        count[0] = 0;
        int left = 1;  // codes still available at the current length
        for (unsigned len = 1; len <= max_code_bits; ++len) {
            left = 2 * left - count[len];
            if (left < 0) return false;
        }
        std::uint16_t next[max_code_bits + 1] = {};
        for (unsigned len = 1; len < max_code_bits; ++len) next[len + 1] = next[len] + count[len];
        for (unsigned s = 0; s < n; ++s)
            if (lengths[s] != 0) sorted[next[lengths[s]]++] = static_cast<std::uint16_t>(s);
        std::fill(std::begin(fast), std::end(fast), 0);
        unsigned code = 0, i = 0;  // the first code of each length follows the last of the one before
        for (unsigned len = 1; len <= FastBits; ++len, code <<= 1) {
            for (unsigned k = 0; k < count[len]; ++k, ++code, ++i) {
                // Codes are sent most significant bit first (§3.1.1), so the table is indexed reversed.
                const auto entry = static_cast<std::uint16_t>(sorted[i] << code_shift | len);
                for (unsigned j = reverse_bits(code, len); j <= fast_mask; j += 1u << len) fast[j] = entry;
            }
        }
        return true;
    }

    // The symbol at the start of `hold` (`bits` valid bits, lowest first): symbol << code_shift | code
    // length, or need_more_bits, or no_code.
    std::uint32_t decode(std::uint64_t hold, unsigned bits) const noexcept {
        const std::uint16_t e = fast[hold & fast_mask];
        if (e != 0) return (e & code_length_mask) <= bits ? e : need_more_bits;
        return decode_long(hold, bits);
    }
    // A code longer than FastBits, or none.
    [[gnu::noinline]] std::uint32_t decode_long(std::uint64_t hold, unsigned bits) const noexcept {
        unsigned code = 0, first = 0, index = 0;  // first: the first code of length len
        for (unsigned len = 1; len <= max_code_bits; ++len) {
            if (len > bits) return need_more_bits;
            code |= (hold >> (len - 1)) & 1;
            if (code - first < count[len])
                return static_cast<std::uint32_t>(sorted[index + code - first]) << code_shift | len;
            index += count[len];
            first = (first + count[len]) << 1;
            code <<= 1;
        }
        return no_code;
    }
};

// Table sizes: measured with bench/micro/deflate_bench (fresh_json_w9); 10 bits hold almost every
// literal/length code of text, distance codes are shorter.
using LiteralTable = Huffman<10, 288>;
using DistanceTable = Huffman<8, 32>;
using CodeLengthTable = Huffman<7, code_length_symbols>;

struct FixedTables {
    LiteralTable literals;
    DistanceTable distances;
};
// §3.2.6. Only distance symbols 0..29 get a code: 30 and 31 are invalid, as zlib treats them.
constexpr FixedTables make_fixed_tables() {
    FixedTables t{};
    std::uint8_t lengths[288] = {};
    for (unsigned s = 0; s < 288; ++s) lengths[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
    t.literals.build(lengths, 288);
    std::fill(std::begin(lengths), std::end(lengths), 5);
    t.distances.build(lengths, distance_symbols);
    return t;
}
constexpr FixedTables fixed_tables = make_fixed_tables();

// The bit buffer: `bits` valid bits in `hold`, lowest first, zero above. Takes whole bytes only, so that
// bits % 8 is always the rest of the current byte. Afterwards bits >= max_pair_bits unless the input is
// used up (then every byte is in `hold`).
inline void refill(const std::uint8_t*& in, const std::uint8_t* end, std::uint64_t& hold,
                   unsigned& bits) noexcept {
    if (bits >= max_pair_bits) return;
    if (end - in >= 8) {
        std::uint64_t w;
        std::memcpy(&w, in, sizeof w);
        if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
        const unsigned take = (63 - bits) / 8;  // whole bytes that fit: bits ends in 56..63
        hold |= (w & ((std::uint64_t{1} << (8 * take)) - 1)) << bits;
        in += take;
        bits += 8 * take;
        return;
    }
    while (bits <= 56 && in != end) {
        hold |= std::uint64_t{*in++} << bits;
        bits += 8;
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// WindowCheck: the agreed client window, enforced (RFC 7692 §7.1.2.2)
//
// zlib checks a distance only against the history it holds when it meets the back-reference: its window
// (whave: min(2^w, bytes inflated since the last reset)) plus whatever the same inflate() call has
// produced before it (inffast.c and the MATCH state: too far back when dist > whave + output of this
// call). Inflating a message in one call therefore accepts distances up to 2^w + that output, while the
// same bytes fed in small pieces are rejected. Capping each call's output at 2^w is not enough: a call that
// starts with a full window still accepts 2^w + its own output so far, and where calls start depends on how
// the input was split (distance 550 at w = 9 passes whole with 512-byte output steps and fails with 5-byte
// input pieces). zlib's check is exact only for a back-reference met first thing in a call, i.e. with one
// output byte per call: far too slow.
//
// What zlib does get exactly right is the other half of the rule: whave + output of this call never
// exceeds the history, and it is at least min(2^w, history), so a distance of at most 2^w is rejected
// if and only if it reaches before the first byte of history, however the calls fall. So for windows under
// 2^15 this scanner reads the same bytes as zlib and fails the message at the first distance greater than
// 2^w; at w = 15 nothing is needed, as no deflate distance exceeds 32768 = 2^15. It decodes, without
// producing output (RFC 1951 §3.2), the fixed-code blocks and the dynamic ones whose distance code has a
// symbol that can reach beyond 2^w. A dynamic block without such a symbol (every block a compliant zlib
// peer sends with a 2^w window) cannot break the rule: the scanner reads its header only, lets zlib find
// its end (Z_BLOCK) and goes on from there. Stored blocks are skipped by their length.
//
// Only distances are judged here. Anything else malformed (bad block type, over-subscribed code, invalid
// symbol, ...) stops the scan for the message: zlib rejects those bytes too, at the same output position
// or earlier, and the scanner never stops on bytes zlib accepts. A bad distance counts only if it starts
// within the first max_message_bytes of output; after that the message is too big, which zlib reports.
// Cost (bench/micro/deflate_bench, *_w9): about as much again as zlib's for the blocks decoded here (zlib
// peers send short messages as fixed-code blocks), a header per block otherwise; no allocation, no copy.
class WindowCheck {
public:
    explicit WindowCheck(int window_bits) noexcept { set_window(window_bits); }

    void set_window(int window_bits) noexcept {
        window_ = std::uint32_t{1} << window_bits;
        far_symbol_ = 0;
        while (far_symbol_ < distance_symbols &&
               distance_codes.base[far_symbol_] + (1u << distance_codes.bits[far_symbol_]) - 1 <= window_)
            ++far_symbol_;
        reset();
    }
    // No message in progress (inflateReset).
    void reset() noexcept {
        out_ = 0;
        hold_ = 0;
        bits_ = 0;
        mode_ = Mode::header;
    }
    // The message ended (ok). After a final block zlib restarts the block parser with an empty bit buffer
    // (inflateResetKeep); otherwise it carries on with the bits it holds.
    void next_message(bool stream_ended) noexcept {
        out_ = 0;
        if (stream_ended) {
            hold_ = 0;
            bits_ = 0;
            mode_ = Mode::header;
        }
    }

    // Reads the next n bytes of the stream (call at the start of every Inflater::run, before zlib gets
    // them). false: a back-reference reaches beyond the window, within the first `max` bytes of this
    // message's output.
    bool scan(const std::byte* p, std::size_t n, std::size_t max) noexcept {
        if (n != 0) last_byte_ = static_cast<std::uint8_t>(p[n - 1]);
        ends_to_skip_ = 0;
        return scan_from(reinterpret_cast<const std::uint8_t*>(p), n, max);
    }
    // A block that cannot refer further back than the window (a dynamic block whose distance code has
    // no symbol for more) need not be decoded: the scan stops after its header and waits for zlib to
    // find its end. Then zlib must be run with Z_BLOCK, and block_ended() called whenever it returns at
    // a block boundary (data_type & 128).
    bool waiting() const noexcept { return mode_ == Mode::wait; }
    // zlib returned at the end of a block, with its next input byte at `next` (in [begin, end), the input
    // given to the last scan()) and `unused_bits` (data_type & 63) of the byte before still unread; `out`
    // bytes of this message are out. If that block is the one waited for, the scan goes on from there.
    // false: as scan().
    bool block_ended(const std::byte* next, const std::byte* begin, const std::byte* end,
                     unsigned unused_bits, std::size_t out, std::size_t max) noexcept {
        if (mode_ != Mode::wait) return true;
        // A block the scan went through before the one it waits for. (Going on from there would be
        // right too, but would decode those blocks again: quadratic in the number of blocks.)
        if (ends_to_skip_ != 0) {
            --ends_to_skip_;
            return true;
        }
        // zlib keeps under a byte at a block end (inffast.c gives whole bytes back; the slow path pulls
        // one at a time). Were it ever more, the scan could not go on: fail rather than stop checking.
        if (unused_bits > 7) return false;
        // The byte before `next` is in this input: a block cannot end within the bits zlib kept from the
        // previous one (every block takes more than 7 bits). last_byte_ only keeps that certain.
        const std::uint8_t before = next != begin ? static_cast<std::uint8_t>(next[-1]) : last_byte_;
        hold_ = unused_bits == 0 ? 0 : before >> (8 - unused_bits);
        bits_ = unused_bits;
        out_ = out;
        mode_ = final_ ? Mode::done : Mode::header;
        return scan_from(reinterpret_cast<const std::uint8_t*>(next), static_cast<std::size_t>(end - next),
                         max);
    }

private:
    enum class Mode : std::uint8_t {
        header,        // BFINAL, BTYPE (§3.2.3)
        stored_sizes,  // LEN, NLEN (§3.2.4)
        stored_data,
        table_sizes,  // HLIT, HDIST, HCLEN (§3.2.7)
        code_length_code,
        code_lengths,
        codes,  // literals and length/distance pairs
        wait,   // for zlib to reach the end of a block that needs no check (waiting())
        done,   // after the final block, or nothing more to judge in this message
    };
    enum class Codes : std::uint8_t { end_of_block, need_input, bad_distance, stop };

    bool need(unsigned n) noexcept {
        refill(in_, end_, hold_, bits_);
        return bits_ >= n;
    }
    unsigned take(unsigned n) noexcept {  // n <= 32 and bits_ >= n
        const auto v = static_cast<unsigned>(hold_ & ((std::uint64_t{1} << n) - 1));
        hold_ >>= n;
        bits_ -= n;
        return v;
    }
    bool scan_from(const std::uint8_t* p, std::size_t n, std::size_t max) noexcept;
    Codes codes(std::size_t max) noexcept;
    void block_end() noexcept {
        mode_ = final_ ? Mode::done : Mode::header;
        ++ends_to_skip_;  // zlib, behind, will report this end before that of a block waited for
    }
    // Nothing more to judge in this message: zlib rejects the same bytes, or the message is too big.
    bool stop() noexcept {
        mode_ = Mode::done;
        return true;
    }

    LiteralTable literals_;
    DistanceTable distances_;
    CodeLengthTable code_length_code_;
    std::uint8_t lengths_[max_literal_length_symbols + distance_symbols];  // code lengths being read
    const LiteralTable* lit_ = nullptr;  // the current block's codes: fixed_tables or the ones above
    const DistanceTable* dist_ = nullptr;
    const std::uint8_t* in_ = nullptr;  // the input of the scan() in progress
    const std::uint8_t* end_ = nullptr;
    std::uint64_t hold_ = 0;
    unsigned bits_ = 0;
    std::uint32_t window_ = 0;
    std::size_t out_ = 0;  // bytes of this message so far
    std::uint32_t stored_left_ = 0;
    std::uint32_t ends_to_skip_ = 0;  // block ends since the scan and zlib were last at the same place
    std::uint16_t nlen_ = 0, ndist_ = 0, ncode_ = 0, index_ = 0;
    std::uint8_t far_symbol_ = 0;  // the first distance symbol that can reach beyond the window
    std::uint8_t last_byte_ = 0;   // the last byte of the previous scan()'s input
    bool final_ = false;           // the current block is the last of the stream (BFINAL)
    Mode mode_ = Mode::header;
};

static_assert(sizeof(WindowCheck) <= 4096);  // "~4 KiB" in deflate.hpp
bool WindowCheck::scan_from(const std::uint8_t* p, std::size_t n, std::size_t max) noexcept {
    in_ = p;
    end_ = p + n;
    for (;;) {
        switch (mode_) {
            case Mode::header: {
                if (!need(3)) return true;
                final_ = take(1) != 0;
                switch (take(2)) {
                    case 0:
                        mode_ = Mode::stored_sizes;
                        break;
                    case 1:
                        lit_ = &fixed_tables.literals;
                        dist_ = &fixed_tables.distances;
                        mode_ = Mode::codes;
                        break;
                    case 2:
                        mode_ = Mode::table_sizes;
                        break;
                    default:  // BTYPE 11 is reserved
                        return stop();
                }
                break;
            }
            case Mode::stored_sizes: {
                take(bits_ % 8);  // to the byte boundary
                if (!need(32)) return true;
                const unsigned len = take(16);
                if (take(16) != (~len & 0xffff)) return stop();  // NLEN is not LEN's complement
                stored_left_ = len;
                mode_ = Mode::stored_data;
                break;
            }
            case Mode::stored_data: {
                // Whole bytes still in the bit buffer first (bits_ % 8 == 0 here), then the input itself.
                const unsigned buffered = std::min<unsigned>(stored_left_, bits_ / 8);
                hold_ = buffered == 8 ? 0 : hold_ >> (8 * buffered);
                bits_ -= 8 * buffered;
                const auto direct = static_cast<std::uint32_t>(
                    std::min<std::size_t>(stored_left_ - buffered, static_cast<std::size_t>(end_ - in_)));
                in_ += direct;
                stored_left_ -= buffered + direct;
                out_ += buffered + direct;
                if (out_ > max) return stop();
                if (stored_left_ != 0) return true;  // the input is used up
                block_end();
                break;
            }
            case Mode::table_sizes: {
                if (!need(14)) return true;
                nlen_ = static_cast<std::uint16_t>(257 + take(5));
                ndist_ = static_cast<std::uint16_t>(1 + take(5));
                ncode_ = static_cast<std::uint16_t>(4 + take(4));
                if (nlen_ > max_literal_length_symbols || ndist_ > distance_symbols) return stop();
                std::fill(lengths_, lengths_ + code_length_symbols, 0);
                index_ = 0;
                mode_ = Mode::code_length_code;
                break;
            }
            case Mode::code_length_code: {
                static constexpr std::uint8_t order[code_length_symbols] = {
                    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
                for (; index_ < ncode_; ++index_) {
                    if (!need(3)) return true;
                    lengths_[order[index_]] = static_cast<std::uint8_t>(take(3));
                }
                if (!code_length_code_.build(lengths_, code_length_symbols)) return stop();
                index_ = 0;
                mode_ = Mode::code_lengths;
                break;
            }
            case Mode::code_lengths: {
                const unsigned total = nlen_ + ndist_;
                while (index_ < total) {
                    refill(in_, end_, hold_, bits_);
                    const std::uint32_t e = code_length_code_.decode(hold_, bits_);
                    if (e == need_more_bits) return true;  // every byte is in hold_: wait for more
                    if (e == no_code) return stop();
                    const unsigned sym = e >> code_shift, len = e & code_length_mask;
                    if (sym < 16) {  // a length
                        take(len);
                        lengths_[index_++] = static_cast<std::uint8_t>(sym);
                        continue;
                    }
                    // 16: repeat the previous length 3-6 times; 17: 3-10 zeros; 18: 11-138 zeros.
                    const unsigned extra = sym == 16 ? 2 : sym == 17 ? 3 : 7;
                    if (bits_ < len + extra) return true;
                    take(len);
                    const unsigned repeat = (sym == 18 ? 11 : 3) + take(extra);
                    if (sym == 16 && index_ == 0) return stop();  // nothing to repeat
                    if (index_ + repeat > total) return stop();   // past the last length
                    const std::uint8_t value = sym == 16 ? lengths_[index_ - 1] : 0;
                    std::fill(lengths_ + index_, lengths_ + index_ + repeat, value);
                    index_ = static_cast<std::uint16_t>(index_ + repeat);
                }
                if (lengths_[256] == 0) return stop();  // no end-of-block code
                if (std::all_of(lengths_ + nlen_ + std::min<unsigned>(far_symbol_, ndist_), lengths_ + total,
                                [](std::uint8_t len) { return len == 0; })) {
                    // No distance code can reach beyond the window: what a compliant zlib peer sends.
                    mode_ = Mode::wait;
                    return true;
                }
                if (!literals_.build(lengths_, nlen_) || !distances_.build(lengths_ + nlen_, ndist_))
                    return stop();
                lit_ = &literals_;
                dist_ = &distances_;
                mode_ = Mode::codes;
                break;
            }
            case Mode::codes:
                switch (codes(max)) {
                    case Codes::end_of_block:
                        block_end();
                        break;
                    case Codes::need_input:
                        return true;
                    case Codes::bad_distance:
                        return false;
                    case Codes::stop:
                        return stop();
                }
                break;
            case Mode::wait:
            case Mode::done:
                return true;
        }
    }
}

// The hot loop: decodes literals and length/distance pairs until the block ends or the input runs out.
WindowCheck::Codes WindowCheck::codes(std::size_t max) noexcept {
    const LiteralTable& lit = *lit_;
    const DistanceTable& dist = *dist_;
    const std::uint8_t* in = in_;
    const std::uint8_t* const end = end_;
    std::uint64_t hold = hold_;
    unsigned bits = bits_;
    std::size_t out = out_;
    Codes result;
    for (;;) {
        refill(in, end, hold, bits);
        std::uint32_t e = lit.fast[hold & LiteralTable::fast_mask];
        // A literal, the common case: a short code (e != 0) for a symbol under 256, all of it there.
        if (e - 1 < (256u << code_shift) - 1 && (e & code_length_mask) <= bits) {
            hold >>= e & code_length_mask;
            bits -= e & code_length_mask;
            ++out;
            continue;
        }
        e = lit.decode(hold, bits);
        if (e >= need_more_bits) {  // need_more_bits: every byte is in hold; no_code: zlib rejects it
            result = e == need_more_bits ? Codes::need_input : Codes::stop;
            break;
        }
        const unsigned sym = e >> code_shift;
        unsigned used = e & code_length_mask;
        if (sym < 256) {  // a literal with a long code
            hold >>= used;
            bits -= used;
            ++out;
            continue;
        }
        if (sym == 256) {
            hold >>= used;
            bits -= used;
            result = Codes::end_of_block;
            break;
        }
        const unsigned li = sym - 257;
        if (li >= length_symbols) {  // 286, 287
            result = Codes::stop;
            break;
        }
        // Nothing of the pair is taken until all of it is there, so need_input leaves hold at its start.
        const unsigned length_extra = length_codes.bits[li];
        if (bits < used + length_extra) {
            result = Codes::need_input;
            break;
        }
        const unsigned length =
            length_codes.base[li] + static_cast<unsigned>((hold >> used) & ((1u << length_extra) - 1));
        used += length_extra;
        const std::uint32_t d = dist.decode(hold >> used, bits - used);
        if (d >= need_more_bits) {
            result = d == need_more_bits ? Codes::need_input : Codes::stop;
            break;
        }
        const unsigned di = d >> code_shift;
        used += d & code_length_mask;
        if (di >= distance_symbols) {  // 30, 31
            result = Codes::stop;
            break;
        }
        const unsigned distance_extra = distance_codes.bits[di];
        if (bits < used + distance_extra) {
            result = Codes::need_input;
            break;
        }
        const unsigned distance =
            distance_codes.base[di] + static_cast<unsigned>((hold >> used) & ((1u << distance_extra) - 1));
        used += distance_extra;
        hold >>= used;
        bits -= used;
        // §7.1.2.2 (zlib rejects a distance past the first byte of history exactly: see above).
        if (distance > window_) {
            // Past max_message_bytes the message is too big before it is corrupt (zlib reports that).
            result = out <= max ? Codes::bad_distance : Codes::stop;
            break;
        }
        out += length;
        if (out > max) {  // too big: zlib says so; no more work here
            result = Codes::stop;
            break;
        }
    }
    in_ = in;
    hold_ = hold;
    bits_ = bits;
    out_ = out;
    return result;
}

// ---------------------------------------------------------------------------------------------------
// Inflater

std::unique_ptr<Inflater> Inflater::create(int window_bits) noexcept {
    std::unique_ptr<Inflater> s(new (std::nothrow) Inflater());
    if (!s) return nullptr;
    s->window_bits_ = inflate_window(window_bits);
    // Negative window bits: raw deflate, no zlib header or checksum (RFC 7692 §7.2).
    if (inflateInit2(&s->strm_, -s->window_bits_) != Z_OK) return nullptr;
    if (s->window_bits_ < max_window_bits) {
        s->check_.reset(new (std::nothrow) WindowCheck(s->window_bits_));
        if (!s->check_) return nullptr;
    }
    return s;
}

Inflater::~Inflater() { inflateEnd(&strm_); }  // harmless on a stream whose init failed

void Inflater::reset() noexcept {
    inflateReset(&strm_);
    if (check_) check_->reset();
    msg_in_ = msg_out_ = 0;
    ended_ = false;
}

bool Inflater::rewindow(int window_bits) noexcept {
    const int w = inflate_window(window_bits);
    if (w == max_window_bits) {
        check_.reset();
    } else if (check_) {
        check_->set_window(w);
    } else if (!(check_ = std::unique_ptr<WindowCheck>(new (std::nothrow) WindowCheck(w)))) {
        return false;
    }
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
    if (check_) check_->next_message(ended_);
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
    // Distances first: zlib alone would accept some beyond a window under 2^15 (see WindowCheck).
    if (check_ && !check_->scan(p, n, max)) return InflateResult::corrupt;
    const std::byte* const begin = p;
    const std::byte* const end = p + n;
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
            // While the window check waits for the end of a block, zlib stops at every block end.
            const bool waiting = check_ && check_->waiting();
            const int rc = ::inflate(&strm_, waiting ? Z_BLOCK : Z_SYNC_FLUSH);
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
            if (waiting && (strm_.data_type & 128) != 0) {  // at a block boundary
                const auto* next = reinterpret_cast<const std::byte*>(strm_.next_in);
                const unsigned bits = strm_.data_type & 63;
                if (!check_->block_ended(next, begin, end, bits, msg_out_, max))
                    return InflateResult::corrupt;
                // Carry on as Z_SYNC_FLUSH would have from here (inflate.c, TYPEDO): after a final block to
                // the end of the stream, else to the next block header if its 3 bits are there. (Calling
                // again when they are not would only lose the block boundary from data_type.)
                if (strm_.avail_in != 0 || (strm_.data_type & 64) != 0 || bits >= 3) continue;
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
