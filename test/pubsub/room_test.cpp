#include "pubsub/room.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "pubsub/control.hpp"

namespace roomcast::pubsub {
namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

FrameRef* raw(std::string_view payload, ws::Opcode op = ws::Opcode::text, std::string_view room = "r") {
    return FrameRef::make(op, bytes(payload), 0, 0, room);
}

// Publishes messages "m1".."mN".
void publish_n(Room& room, int n) {
    for (int i = 0; i < n; ++i) room.publish(raw("m" + std::to_string(room.last_seq() + 1)));
}

TEST(RoomName, AcceptsTheDocumentedAlphabet) {
    EXPECT_EQ(validate_room_name("BTC-USD"), RoomNameError::none);
    EXPECT_EQ(validate_room_name("a"), RoomNameError::none);
    EXPECT_EQ(validate_room_name("chat.room_1:eu@west-2"), RoomNameError::none);
    EXPECT_EQ(validate_room_name("AZaz09._:@-"), RoomNameError::none);
    EXPECT_EQ(validate_room_name(std::string(128, 'x')), RoomNameError::none);
}

TEST(RoomName, RejectsEmptyTooLongAndEachBadCharacter) {
    EXPECT_EQ(validate_room_name(""), RoomNameError::empty);
    EXPECT_EQ(validate_room_name(std::string(129, 'x')), RoomNameError::too_long);
    for (char c : std::string("/ \\\"#%?&+=!*~,;<>[]{}()'`|^$\t\n\x7f") + std::string(1, '\0') + "\x80\xff") {
        const std::string name = std::string("ok") + c;
        EXPECT_EQ(validate_room_name(name), RoomNameError::bad_char) << int(static_cast<unsigned char>(c));
    }
}

TEST(RoomName, EveryErrorHasAReason) {
    for (auto e : {RoomNameError::empty, RoomNameError::too_long, RoomNameError::bad_char})
        EXPECT_GT(std::string_view(describe(e)).size(), 10u);
    EXPECT_EQ(std::string_view(describe(RoomNameError::bad_char)),
              "room name has a character outside [A-Za-z0-9._:@-]");
}

TEST(RoomOwner, HashIsStableFnv1a) {
    static_assert(room_hash("") == 0xcbf29ce484222325ull);  // FNV-1a 64 offset basis
    static_assert(room_hash("a") == 0xaf63dc4c8601ec8cull);  // published FNV-1a 64 test vector
    static_assert(owner_reactor("BTC-USD", 1) == 0);
    EXPECT_EQ(owner_reactor("BTC-USD", 4), owner_reactor(std::string("BTC-") + "USD", 4));
}

TEST(RoomOwner, SpreadsNamesOverReactors) {
    for (unsigned reactors : {2u, 3u, 4u, 8u}) {
        std::vector<int> count(reactors, 0);
        for (int i = 0; i < 4000; ++i) ++count[owner_reactor("room-" + std::to_string(i), reactors)];
        for (unsigned r = 0; r < reactors; ++r) {
            EXPECT_GT(count[r], 4000 / int(reactors) * 7 / 10) << reactors << " reactors, #" << r;
            EXPECT_LT(count[r], 4000 / int(reactors) * 13 / 10) << reactors << " reactors, #" << r;
        }
    }
}

TEST(Room, SequenceStartsAtOneAndNeverRepeats) {
    Room room("r", 4, 1);
    EXPECT_EQ(room.last_seq(), 0u);
    for (std::uint64_t i = 1; i <= 20; ++i) {
        FrameRef* f = raw("x");
        EXPECT_EQ(room.publish(f), i);
        EXPECT_EQ(f->seq(), i);  // the frame carries its seq
    }
    EXPECT_EQ(room.history_size(), 4u);
    EXPECT_EQ(room.oldest_held(), 17u);
}

TEST(Room, HistoryHoldsTheLastNInTheirFormats) {
    Room room("BTC-USD", 4, 1);
    publish_n(room, 10);
    for (std::uint64_t s = 1; s <= 6; ++s) EXPECT_EQ(room.frame(s, Format::raw), nullptr) << s;
    EXPECT_EQ(room.frame(0, Format::raw), nullptr);
    EXPECT_EQ(room.frame(11, Format::raw), nullptr);
    for (std::uint64_t s = 7; s <= 10; ++s) {
        FrameRef* f = room.frame(s, Format::raw);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(text(f->payload()), "m" + std::to_string(s));
        FrameRef* e = room.frame(s, Format::envelope);
        ASSERT_NE(e, nullptr);
        EXPECT_EQ(e->format(), Format::envelope);
        EXPECT_EQ(e->seq(), s);
        EXPECT_EQ(text(e->payload()), "{\"room\":\"BTC-USD\",\"seq\":" + std::to_string(s) + ",\"data\":\"m" +
                                          std::to_string(s) + "\"}");
        EXPECT_EQ(room.frame(s, Format::envelope), e);  // built once, cached
    }
}

TEST(Room, EvictionReleasesTheRoomsReference) {
    Room room("r", 2, 1);
    room.publish(raw("a"));
    FrameRef* first = room.frame(1, Format::raw);
    first->add_ref();  // a reactor still writing it
    FrameRef* env = room.frame(1, Format::envelope);
    env->add_ref();
    EXPECT_EQ(first->ref_count(), 2u);
    publish_n(room, 2);  // seq 1 falls out of the ring
    EXPECT_EQ(first->ref_count(), 1u);
    EXPECT_EQ(env->ref_count(), 1u);
    first->release();
    env->release();
}

struct ReplayCase {
    std::optional<std::uint64_t> since;
    bool last;
    std::uint64_t first, count;
    bool gap;
};

void expect_plan(const Room& room, const ReplayCase& c) {
    const ReplayPlan p = room.plan_replay(c.since, c.last);
    const std::string what = "since=" + (c.since ? std::to_string(*c.since) : "none") + " last=" +
                             std::to_string(c.last) + " history=" + std::to_string(room.history_capacity());
    EXPECT_EQ(p.end_seq, room.last_seq()) << what;
    EXPECT_EQ(p.count, c.count) << what;
    if (c.count) {
        EXPECT_EQ(p.first_seq, c.first) << what;
        EXPECT_EQ(p.first_seq + p.count - 1, p.end_seq) << what;  // replay ends where live starts
    }
    EXPECT_EQ(p.gap, c.gap) << what;
}

TEST(RoomReplay, EdgesWithARingOfFour) {
    Room room("r", 4, 1);
    publish_n(room, 10);  // holds 7..10
    expect_plan(room, {0, false, 7, 4, true});                      // since=0: from the start, ring too short
    expect_plan(room, {5, false, 7, 4, true});                      // older than the ring
    expect_plan(room, {6, false, 7, 4, false});                     // exactly the ring's reach
    expect_plan(room, {8, false, 9, 2, false});                     // in the middle
    expect_plan(room, {9, false, 10, 1, false});                    //
    expect_plan(room, {10, false, 0, 0, false});                    // since = last: nothing
    expect_plan(room, {11, false, 0, 0, false});                    // since > last (e.g. before a restart)
    expect_plan(room, {std::nullopt, false, 0, 0, false});          // no resume: live only
    expect_plan(room, {std::nullopt, true, 10, 1, false});          // last:true: the latest value
    expect_plan(room, {UINT64_MAX, false, 0, 0, false});            //
}

TEST(RoomReplay, RingNotYetFull) {
    Room room("r", 4, 1);
    expect_plan(room, {0, false, 0, 0, false});  // empty room
    expect_plan(room, {std::nullopt, true, 0, 0, false});
    publish_n(room, 3);
    expect_plan(room, {0, false, 1, 3, false});  // everything since the start, no gap
    expect_plan(room, {1, false, 2, 2, false});
}

TEST(RoomReplay, HistoryZeroKeepsOnlyTheLastValue) {
    Room room("r", 0, 1);
    publish_n(room, 5);
    EXPECT_EQ(room.history_size(), 0u);
    expect_plan(room, {0, false, 0, 0, true});  // asked for old messages: gap, nothing to replay
    expect_plan(room, {4, false, 0, 0, true});
    expect_plan(room, {5, false, 0, 0, false});
    expect_plan(room, {std::nullopt, true, 5, 1, false});
    ASSERT_NE(room.frame(5, Format::raw), nullptr);
    EXPECT_EQ(text(room.frame(5, Format::raw)->payload()), "m5");
    EXPECT_EQ(room.frame(4, Format::raw), nullptr);
}

TEST(RoomReplay, EveryFramePlannedIsHeld) {
    for (std::uint32_t history : {0u, 1u, 3u, 8u}) {
        Room room("r", history, 1);
        for (int n = 0; n < 12; ++n) {
            for (std::uint64_t since = 0; since <= room.last_seq() + 1; ++since) {
                const ReplayPlan p = room.plan_replay(since, false);
                for (std::uint64_t s = p.first_seq; s < p.first_seq + p.count; ++s)
                    ASSERT_NE(room.frame(s, Format::raw), nullptr) << history << " " << since << " " << s;
                if (!p.gap && p.count) {
                    EXPECT_EQ(p.first_seq, since + 1);
                }
            }
            publish_n(room, 1);
        }
    }
}

// ---- Lazy ring and memory ------------------------------------------------------------------------------

TEST(RoomRing, StartsEmptyAndDoublesUpToHistory) {
    Room room("r", 1000, 1);
    EXPECT_EQ(room.ring_slots(), 0u);
    std::vector<std::uint32_t> sizes;  // every size the ring took: each change is one allocation
    for (int i = 0; i < 3000; ++i) {
        room.publish(raw("m" + std::to_string(room.last_seq() + 1)));
        if (sizes.empty() || sizes.back() != room.ring_slots()) sizes.push_back(room.ring_slots());
    }
    EXPECT_EQ(sizes, (std::vector<std::uint32_t>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000}));
    EXPECT_EQ(room.history_size(), 1000u);
    EXPECT_EQ(room.oldest_held(), 2001u);
    for (std::uint64_t s = 2001; s <= 3000; ++s) {
        ASSERT_NE(room.frame(s, Format::raw), nullptr) << s;
        EXPECT_EQ(text(room.frame(s, Format::raw)->payload()), "m" + std::to_string(s));
    }
    EXPECT_EQ(room.frame(2000, Format::raw), nullptr);
}

TEST(RoomRing, GrowingKeepsEveryHeldMessageAtItsSeq) {
    // Odd histories (the last step is not a doubling) and growth right after eviction made room.
    for (std::uint32_t history : {1u, 2u, 3u, 5u, 7u, 12u}) {
        Room room("r", history, 1);
        for (int i = 0; i < 40; ++i) {
            if (i % 9 == 8) room.evict_oldest();
            room.publish(raw("m" + std::to_string(room.last_seq() + 1)));
            ASSERT_LE(room.ring_slots(), history);
            for (std::uint64_t s = room.oldest_held(); s <= room.last_seq(); ++s) {
                ASSERT_NE(room.frame(s, Format::raw), nullptr) << history << " " << s;
                ASSERT_EQ(text(room.frame(s, Format::raw)->payload()), "m" + std::to_string(s)) << history;
            }
        }
    }
}

TEST(RoomRing, SteadyStateDoesNotGrow) {
    Room room("r", 64, 1);
    for (int i = 0; i < 64; ++i) room.publish(raw("same size"));
    const std::uint32_t slots = room.ring_slots();
    const std::size_t bytes = room.memory_bytes();
    for (int i = 0; i < 500; ++i) room.publish(raw("same size"));  // overflow reuses the slots
    EXPECT_EQ(room.ring_slots(), slots);
    EXPECT_EQ(room.memory_bytes(), bytes);
}

TEST(RoomMemory, AnIdleRoomWithOneSmallMessageCostsAFewHundredBytes) {
    Room room("ticker:BTC-USD", 1024, 8);
    room.publish(raw("{\"p\":1}"));
    EXPECT_EQ(room.ring_slots(), 1u);
    EXPECT_LT(room.memory_bytes(), 600u);  // was 1024 slots x 16 B = 16 KiB before the lazy ring
    EXPECT_GT(room.memory_bytes(), room.base_bytes());
    EXPECT_EQ(room.base_bytes(), Room::base_bytes_for("ticker:BTC-USD", 8));
}

TEST(RoomMemory, CountsFramesEnvelopesSiblingsAndSlotsExactly) {
    RoomLedger ledger;
    {
        Room room(std::string(40, 'n'), 8, 2, &ledger);  // a name long enough for its own allocation
        EXPECT_EQ(ledger.bytes, room.base_bytes());
        EXPECT_GT(room.base_bytes(), Room::base_bytes_for("short", 2));
        publish_n(room, 5);
        ASSERT_NE(room.frame(3, Format::envelope), nullptr);  // a cached envelope counts
        room.attach_deflated(4, Format::raw, raw("zz"));        // so does a compressed sibling
        room.attach_deflated(4, Format::raw, raw("again"));     // already has one: released, not counted
        EXPECT_EQ(room.memory_bytes(), room.recount_bytes());
        EXPECT_EQ(ledger.bytes, room.memory_bytes());
        const std::size_t frames = Room::frame_bytes(room.frame(1, Format::raw));
        EXPECT_EQ(frames, room.frame(1, Format::raw)->alloc_bytes() + malloc_overhead_bytes);
        publish_n(room, 20);  // overflow: the old frames' bytes go, the new ones come
        EXPECT_EQ(room.memory_bytes(), room.recount_bytes());
        while (room.evict_oldest()) EXPECT_EQ(room.memory_bytes(), room.recount_bytes());
        EXPECT_EQ(room.ring_slots(), 0u);  // nothing held: the ring is given back
        EXPECT_EQ(room.memory_bytes(), room.base_bytes());
        room.add_interest(1, Format::raw, 1);
        EXPECT_EQ(ledger.pinned, room.base_bytes());
        room.add_interest(0, Format::envelope, 1);
        EXPECT_EQ(ledger.pinned, room.base_bytes());  // once per room, not per subscriber
    }
    EXPECT_EQ(ledger.bytes, 0u);  // a deleted room gives everything back, pinned base included
    EXPECT_EQ(ledger.pinned, 0u);
}

TEST(RoomMemory, EvictedMessagesAreAGapExactlyLikeRingOverflow) {
    Room room("r", 16, 1);
    publish_n(room, 10);
    EXPECT_TRUE(room.evict_oldest());
    EXPECT_TRUE(room.evict_oldest());
    EXPECT_TRUE(room.evict_oldest());  // holds 4..10 now
    EXPECT_EQ(room.oldest_held(), 4u);
    EXPECT_EQ(room.frame(3, Format::raw), nullptr);
    expect_plan(room, {0, false, 4, 7, true});               // from the start: gap, from the oldest held
    expect_plan(room, {2, false, 4, 7, true});               // 3 was evicted
    expect_plan(room, {3, false, 4, 7, false});              // exactly the reach
    expect_plan(room, {std::nullopt, true, 10, 1, false});   // the latest is still there
    publish_n(room, 1);                                      // and the ring goes on: holds 4..11
    expect_plan(room, {3, false, 4, 8, false});
}

TEST(RoomMemory, TheLatestValueGoesOnlyWhenEvictedLast) {
    Room room("r", 0, 1);  // --history 0: only the last value
    publish_n(room, 3);
    expect_plan(room, {std::nullopt, true, 3, 1, false});
    EXPECT_TRUE(room.evict_oldest());
    EXPECT_FALSE(room.evict_oldest());
    expect_plan(room, {std::nullopt, true, 0, 0, false});  // nothing held: "last" finds nothing
    expect_plan(room, {1, false, 0, 0, true});
    EXPECT_EQ(room.last_seq(), 3u);  // the seq goes on while the room exists
    EXPECT_EQ(room.publish(raw("x")), 4u);
    expect_plan(room, {std::nullopt, true, 4, 1, false});
}

TEST(RoomInterest, CountsPerReactorAndFormat) {
    Room room("r", 4, 3);
    room.add_interest(1, Format::raw, 7);
    room.add_interest(1, Format::envelope, 8);
    room.add_interest(2, Format::raw, 9);
    EXPECT_EQ(room.subscribers(Format::raw), 2u);
    EXPECT_EQ(room.interest(1).handle, 8u);
    room.remove_interest(1, Format::raw);
    room.remove_interest(1, Format::raw);  // extra removals are ignored
    EXPECT_EQ(room.subscribers(Format::raw), 1u);
    EXPECT_TRUE(room.interest(1).any());
    room.remove_interest(1, Format::envelope);
    EXPECT_FALSE(room.interest(1).any());
    EXPECT_FALSE(room.interest(0).any());
}

TEST(SubscriberList, AddAndRemoveAreConstantTimeAndReportTheMovedEntry) {
    SubscriberList list;
    std::vector<std::uint32_t> pos(10);  // key -> position, as the owner of the records keeps it
    for (std::uint32_t k = 0; k < 10; ++k) pos[k] = list.add(100 + k, k);
    std::set<std::uint32_t> alive{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (std::uint32_t k : {3u, 9u, 0u, 5u}) {
        std::uint32_t moved = 0;
        if (list.remove(pos[k], &moved)) pos[moved] = pos[k];
        alive.erase(k);
        ASSERT_EQ(list.size(), alive.size());
        for (std::uint32_t a : alive) {  // every live record's stored position is still right
            EXPECT_EQ(list.keys()[pos[a]], a);
            EXPECT_EQ(list.ids()[pos[a]], 100 + a);
        }
    }
}

}  // namespace
}  // namespace roomcast::pubsub
