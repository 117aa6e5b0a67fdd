#include "net/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace roomcast::net {
namespace {

TEST(TimerWheel, FiresAtOrAfterDeadlineNeverBefore) {
    TimerWheel w(1000);
    TimerNode a, b, c;
    w.schedule(a, 1010);
    w.schedule(b, 1100);
    w.schedule(c, 1000 + 10'000);  // beyond one revolution
    std::vector<TimerNode*> fired;
    auto fire = [&](TimerNode& n) { fired.push_back(&n); };
    for (std::uint64_t t = 1000; t <= 12'000; t += 3) {
        w.advance(t, fire);
        for (TimerNode* n : fired) EXPECT_LE(n->due_ms / TimerWheel::tick_ms, t / TimerWheel::tick_ms);
        if (fired.size() == 1) {
            EXPECT_EQ(fired[0], &a);
        }
    }
    ASSERT_EQ(fired.size(), 3u);
    EXPECT_EQ(fired[1], &b);
    EXPECT_EQ(fired[2], &c);
    EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, CancelAndRescheduleAreO1AndExact) {
    TimerWheel w(0);
    TimerNode a, b;
    w.schedule(a, 100);
    w.schedule(b, 100);
    w.cancel(a);
    EXPECT_FALSE(a.armed());
    w.schedule(b, 500);  // moved later
    int count = 0;
    w.advance(200, [&](TimerNode&) { ++count; });
    EXPECT_EQ(count, 0);
    w.advance(600, [&](TimerNode& n) {
        ++count;
        EXPECT_EQ(&n, &b);
    });
    EXPECT_EQ(count, 1);
}

TEST(TimerWheel, FireMayRescheduleTheSameNode) {
    TimerWheel w(0);
    TimerNode a;
    w.schedule(a, 10);
    int count = 0;
    for (std::uint64_t t = 0; t < 1000; t += 5)
        w.advance(t, [&](TimerNode& n) {
            ++count;
            w.schedule(n, t + 10);
        });
    EXPECT_GE(count, 60);
    EXPECT_LE(count, 100);
}

TEST(TimerWheel, NextTimeoutPointsAtTheNextSlot) {
    TimerWheel w(0);
    EXPECT_EQ(w.ms_until_next(0), -1);
    TimerNode a;
    w.schedule(a, 40);
    const int ms = w.ms_until_next(0);
    EXPECT_GE(ms, 40);
    EXPECT_LE(ms, 40 + static_cast<int>(TimerWheel::tick_ms));
}

TEST(TimerWheel, LongSleepVisitsEachNodeOnce) {
    TimerWheel w(0);
    std::vector<TimerNode> nodes(1000);
    for (std::size_t i = 0; i < nodes.size(); ++i) w.schedule(nodes[i], i * 7);
    int count = 0;
    w.advance(1'000'000, [&](TimerNode&) { ++count; });
    EXPECT_EQ(count, 1000);
}

}  // namespace
}  // namespace roomcast::net

namespace roomcast::net {
namespace {

// A slot emptied by cancel() keeps its bit until visited; visiting it must not treat the list head
// as a node (regression: the head was "fired" and the next schedule into the slot crashed).
TEST(TimerWheel, SlotEmptiedByCancelIsSafeToVisitAndReuse) {
    TimerWheel w(0);
    TimerNode a;
    w.schedule(a, 40);
    w.cancel(a);
    int fired = 0;
    w.advance(100, [&](TimerNode&) { ++fired; });
    EXPECT_EQ(fired, 0);
    EXPECT_EQ(w.size(), 0u);
    TimerNode b;
    w.schedule(b, 40 + TimerWheel::slot_count * TimerWheel::tick_ms);  // the same slot, next round
    w.advance(100 + 2 * TimerWheel::slot_count * TimerWheel::tick_ms, [&](TimerNode& n) {
        ++fired;
        EXPECT_EQ(&n, &b);
    });
    EXPECT_EQ(fired, 1);
    EXPECT_EQ(w.size(), 0u);
}

}  // namespace
}  // namespace roomcast::net
