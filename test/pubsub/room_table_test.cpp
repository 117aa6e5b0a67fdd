#include "pubsub/room_table.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace roomcast::pubsub {
namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

FrameRef* raw(std::string_view room, std::string_view payload) {
    return FrameRef::make(ws::Opcode::text, bytes(payload), 0, 0, room);
}

// Publishes like the hub does: find or create, then publish and trim. Returns the seq, 0 if refused.
std::uint64_t publish(RoomTable& t, std::string_view room, std::string_view payload) {
    FrameRef* f = raw(room, payload);
    Room* r = t.find(room);
    if (!r) {
        CreateResult why;
        r = t.create(room, Room::first_message_bytes(f), &why);
        if (!r) {
            EXPECT_EQ(why, CreateResult::refused);
            f->release();
            return 0;
        }
    }
    const std::uint64_t seq = t.publish(*r, f);
    t.collect(*r);
    t.trim();
    return seq;
}

Room* subscribe(RoomTable& t, std::string_view room) {
    Room* r = t.find(room);
    if (!r) {
        CreateResult why;
        r = t.create(room, 0, &why);
        if (!r) return nullptr;
    }
    r->add_interest(0, Format::raw, 1);
    t.trim();
    return r;
}

// What one message costs (same name length, same payload length for all rooms here).
std::size_t message_bytes(std::string_view room, std::size_t payload) {
    FrameRef* f = raw(room, std::string(payload, 'x'));
    const std::size_t n = Room::frame_bytes(f);
    f->release();
    return n;
}

void expect_consistent(const RoomTable& t) {
    EXPECT_EQ(t.ledger().bytes, t.recount_bytes());
    EXPECT_EQ(t.ledger().pinned, t.recount_pinned());
    EXPECT_TRUE(t.heap_ok());
    EXPECT_TRUE(t.ledger().bytes <= t.budget_bytes() || t.evictable() == 0);
    EXPECT_EQ(t.stats().memory_bytes.load(), t.ledger().bytes);
    EXPECT_EQ(t.stats().rooms.load(), t.size());
}

TEST(RoomTable, UnlimitedBudgetKeepsEverything) {
    RoomTable t(4, 2, SIZE_MAX / 2);
    for (int i = 0; i < 100; ++i)
        EXPECT_EQ(publish(t, "r" + std::to_string(i % 10), "m"), std::uint64_t(i / 10 + 1));
    EXPECT_EQ(t.size(), 10u);
    EXPECT_EQ(t.stats().evictions.load(), 0u);
    expect_consistent(t);
}

TEST(RoomTable, AccountsEveryRoomAndFrame) {
    RoomTable t(8, 3, SIZE_MAX / 2);
    publish(t, "a", "hello");
    publish(t, "b", std::string(1000, 'x'));
    Room* a = t.find("a");
    ASSERT_NE(a->frame(1, Format::envelope), nullptr);
    a->attach_deflated(1, Format::envelope, raw("a", "z"));
    t.trim();  // the hub trims after building envelopes; that also refreshes stats()
    expect_consistent(t);
    EXPECT_EQ(t.ledger().bytes, t.find("a")->memory_bytes() + t.find("b")->memory_bytes());
    EXPECT_EQ(t.ledger().pinned, 0u);
    subscribe(t, "b");
    EXPECT_EQ(t.ledger().pinned, t.find("b")->base_bytes());
}

TEST(RoomTable, EvictsOldestFirstAcrossRoomsKeepingEachLatest) {
    const std::size_t m = message_bytes("a", 200);
    const std::size_t base = Room::base_bytes_for("a", 1);
    // Three rooms, each with a ring of 8 slots once grown, and room for about 9 messages.
    const std::size_t budget = 3 * (base + 8 * 24 + malloc_overhead_bytes) + 9 * m;
    RoomTable t(8, 1, budget);
    const std::string p(200, 'x');
    for (int i = 0; i < 5; ++i) publish(t, "a", p);  // stamps 1-5
    for (int i = 0; i < 4; ++i) publish(t, "b", p);  // 6-9
    for (int i = 0; i < 2; ++i) publish(t, "c", p);  // 10-11: over budget, a's oldest go first
    expect_consistent(t);
    const std::uint64_t evicted = t.stats().evictions.load();
    ASSERT_GT(evicted, 0u);
    ASSERT_LT(evicted, 4u);
    EXPECT_EQ(t.find("a")->oldest_held(), 1 + evicted);  // only a's, oldest first
    EXPECT_EQ(t.find("b")->oldest_held(), 1u);
    EXPECT_EQ(t.find("c")->oldest_held(), 1u);
    // Much more into c: a and b shrink to their latest message before any latest goes.
    for (int i = 0; i < 6; ++i) publish(t, "c", p);
    expect_consistent(t);
    EXPECT_EQ(t.find("a")->held(), 1u);
    EXPECT_EQ(t.find("a")->oldest_held(), 5u);  // the latest value of a is still there
    EXPECT_EQ(t.find("b")->held(), 1u);
    EXPECT_EQ(t.find("b")->oldest_held(), 4u);
    EXPECT_GE(t.find("c")->held(), 2u);
    EXPECT_EQ(t.stats().deleted.load(), 0u);
}

TEST(RoomTable, LatestMessagesGoLastOldestFirstThenTheirRoomsAreDeleted) {
    const std::size_t m = message_bytes("r000", 100);
    const std::size_t room = Room::base_bytes_for("r000", 2) + 24 + malloc_overhead_bytes + m;
    RoomTable t(16, 2, 10 * room + room / 2);  // ten one-message rooms fit
    for (int i = 0; i < 10; ++i) {
        char name[8];
        std::snprintf(name, sizeof name, "r%03d", i);
        publish(t, name, std::string(100, 'x'));
    }
    EXPECT_EQ(t.size(), 10u);
    EXPECT_EQ(t.stats().evictions.load(), 0u);
    subscribe(t, "r001");  // a subscriber keeps r001 even when its message goes
    for (int i = 10; i < 13; ++i) {
        char name[8];
        std::snprintf(name, sizeof name, "r%03d", i);
        EXPECT_EQ(publish(t, name, std::string(100, 'x')), 1u);
        expect_consistent(t);
    }
    // The oldest latest values went first: r000, then r001 (kept, empty: it has a subscriber), r002, ...
    // and every room that lost its message without a subscriber was deleted.
    EXPECT_EQ(t.find("r000"), nullptr);
    ASSERT_NE(t.find("r001"), nullptr);
    EXPECT_EQ(t.find("r001")->held(), 0u);
    EXPECT_EQ(t.find("r001")->last_seq(), 1u);
    EXPECT_EQ(t.find("r002"), nullptr);
    bool deleting = true;  // the deleted rooms are a prefix of the publish order
    std::uint64_t deleted = 1;
    for (int i = 2; i < 13; ++i) {
        char name[8];
        std::snprintf(name, sizeof name, "r%03d", i);
        const Room* r = t.find(name);
        if (r) {
            deleting = false;
            EXPECT_EQ(r->held(), 1u) << name;
        } else {
            EXPECT_TRUE(deleting) << name << " deleted after a younger room survived";
            ++deleted;
        }
    }
    EXPECT_GE(deleted, 2u);
    EXPECT_NE(t.find("r012"), nullptr);
    EXPECT_EQ(t.stats().deleted.load(), deleted);
    EXPECT_EQ(t.stats().evictions.load(), deleted + 1);  // r001's message too
    // A deleted room's name starts over at seq 1.
    EXPECT_EQ(publish(t, "r000", "again"), 1u);
    expect_consistent(t);
}

TEST(RoomTable, AnEmptyRoomWithoutSubscribersIsDeletedWhenItsLastSubscriberLeaves) {
    RoomTable t(16, 2, SIZE_MAX / 2);
    Room* r = subscribe(t, "lobby");
    ASSERT_NE(r, nullptr);
    r->add_interest(1, Format::envelope, 2);
    EXPECT_FALSE(t.remove_interest(*r, 0, Format::raw, false));  // reactor 1 still has one
    EXPECT_TRUE(t.remove_interest(*r, 1, Format::envelope, false));
    EXPECT_EQ(t.find("lobby"), nullptr);
    EXPECT_EQ(t.ledger().bytes, 0u);
    // One that holds a message stays (when within budget).
    r = subscribe(t, "kept");
    publish(t, "kept", "v");
    EXPECT_FALSE(t.remove_interest(*r, 0, Format::raw, false));
    EXPECT_NE(t.find("kept"), nullptr);
    expect_consistent(t);
}

TEST(RoomTable, CreationIsRefusedWhenOnlyPinnedRoomsRemainAndNothingIsEvictedForIt) {
    const std::size_t base = Room::base_bytes_for("s00", 1);
    RoomTable t(4, 1, 5 * base + base / 2);
    for (int i = 0; i < 5; ++i) ASSERT_NE(subscribe(t, "s0" + std::to_string(i)), nullptr);
    publish(t, "s00", "a message that can still be evicted");
    const std::size_t before = t.ledger().bytes;
    CreateResult why = CreateResult::created;
    EXPECT_EQ(t.create("new", 0, &why), nullptr);
    EXPECT_EQ(why, CreateResult::refused);
    EXPECT_EQ(t.ledger().bytes, before);  // refused up front: nothing evicted in vain
    EXPECT_EQ(t.stats().evictions.load(), 0u);
    EXPECT_EQ(t.stats().refusals.load(), 1u);
    EXPECT_EQ(publish(t, "new", "x"), 0u);
    EXPECT_EQ(t.stats().refusals.load(), 2u);
    // Publishing to an existing pinned room is never refused: delivered, then evicted if need be.
    EXPECT_EQ(publish(t, "s01", std::string(4 * base, 'x')), 1u);
    EXPECT_EQ(t.find("s01")->held(), 0u);
    EXPECT_EQ(t.find("s01")->last_seq(), 1u);
    expect_consistent(t);
    // One subscriber leaves: its room goes, and there is room again.
    EXPECT_TRUE(t.remove_interest(*t.find("s04"), 0, Format::raw, false));
    EXPECT_NE(subscribe(t, "new"), nullptr);
    expect_consistent(t);
}

TEST(RoomTable, AMessageBiggerThanTheBudgetCannotCreateARoom) {
    RoomTable t(4, 1, 64 << 10);
    EXPECT_EQ(publish(t, "big", std::string(70 << 10, 'x')), 0u);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(publish(t, "big", "small"), 1u);
    EXPECT_EQ(publish(t, "big", std::string(70 << 10, 'x')), 2u);  // existing room: kept live, then evicted
    EXPECT_EQ(t.find("big"), nullptr);                             // nothing held, no subscriber: gone
    expect_consistent(t);
}

// The exact order against a brute-force model: after every operation, the messages the table evicted
// are the first ones the rule picks (held messages oldest first, each room's latest only after every
// older one anywhere), and exactly the rooms left empty without a subscriber are gone.
TEST(RoomTable, EvictionOrderMatchesABruteForceModel) {
    for (std::uint32_t history : {0u, 1u, 3u, 16u}) {
        for (unsigned seed = 1; seed <= 4; ++seed) {
            std::mt19937 rng(seed * 31 + history);
            const std::size_t budget = 2500 + rng() % 6000;
            RoomTable t(history, 2, budget);
            struct Msg {
                std::uint64_t seq, stamp;
            };
            std::map<std::string, std::deque<Msg>> model;  // room -> held messages, oldest first
            std::map<std::string, bool> subscribed;
            std::uint64_t stamp = 0;
            const std::string what = "history " + std::to_string(history) + " seed " + std::to_string(seed);
            auto sync = [&](int step) {
                std::size_t held = 0;
                for (auto& [name, msgs] : model) {
                    const Room* r = t.find(name);
                    held += r ? r->held() : 0;
                }
                for (;;) {  // evict in the model until it holds as many messages as the table
                    std::size_t model_held = 0;
                    for (auto& [name, msgs] : model) model_held += msgs.size();
                    if (model_held == held) break;
                    ASSERT_GT(model_held, held) << what;
                    const std::string* pick = nullptr;
                    std::uint64_t best = UINT64_MAX;
                    for (int pass = 0; pass < 2 && !pick; ++pass)
                        for (auto& [name, msgs] : model)
                            if (msgs.size() >= (pass == 0 ? 2u : 1u) && msgs.front().stamp < best) {
                                best = msgs.front().stamp;
                                pick = &name;
                            }
                    ASSERT_NE(pick, nullptr);
                    model[*pick].pop_front();
                }
                for (auto it = model.begin(); it != model.end();) {
                    const Room* r = t.find(it->first);
                    if (it->second.empty() && !subscribed[it->first]) {
                        ASSERT_EQ(r, nullptr) << it->first << " should have been deleted, " << what;
                        it = model.erase(it);
                        continue;
                    }
                    ASSERT_NE(r, nullptr) << it->first << " " << what;
                    ASSERT_EQ(r->held(), it->second.size()) << it->first << " step " << step << " " << what;
                    if (!it->second.empty()) {
                        ASSERT_EQ(r->last_seq() - r->held() + 1, it->second.front().seq)
                            << it->first << " " << what;
                    }
                    ++it;
                }
                expect_consistent(t);
            };
            for (int step = 0; step < 600; ++step) {
                const std::string room = "room" + std::to_string(rng() % 12);
                if (rng() % 10 == 0) {  // toggle a subscriber
                    Room* r = t.find(room);
                    if (subscribed[room]) {
                        ASSERT_NE(r, nullptr);
                        subscribed[room] = false;
                        t.remove_interest(*r, 0, Format::raw, false);
                    } else if (subscribe(t, room)) {
                        subscribed[room] = true;
                        model[room];
                    }
                    sync(step);
                    if (HasFatalFailure()) return;
                    continue;
                }
                const std::uint64_t seq = publish(t, room, std::string(rng() % 300, 'p'));
                if (seq) {
                    ++stamp;
                    std::deque<Msg>& q = model[room];
                    q.push_back({seq, stamp});
                    if (q.size() > (history ? history : 1)) q.pop_front();  // ring overflow
                } else {
                    EXPECT_EQ(t.find(room), nullptr);
                }
                sync(step);
                if (HasFatalFailure()) return;
            }
        }
    }
}

TEST(RoomTable, FramesStayIntactForHoldersAfterEviction) {
    RoomTable t(16, 1, 3000);
    publish(t, "a", "first");
    FrameRef* kept = t.find("a")->frame(1, Format::raw);
    kept->add_ref();  // a subscriber's queue still holds it
    for (int i = 0; i < 50; ++i) publish(t, "b" + std::to_string(i), std::string(100, 'y'));
    EXPECT_EQ(t.find("a"), nullptr);
    EXPECT_EQ(text(kept->payload()), "first");
    kept->release();
}

}  // namespace
}  // namespace roomcast::pubsub
