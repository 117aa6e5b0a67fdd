#include "pubsub/inbox.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace roomcast::pubsub {
namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t scale = 10;  // sanitizers run ~10x slower; keep the suite under 10 s
#else
constexpr std::uint64_t scale = 1;
#endif

Message msg(std::uint64_t a, std::uint64_t b = 0) {
    Message m;
    m.kind = 1;
    m.a = a;
    m.b = b;
    return m;
}

std::uint64_t eventfd_value(int fd) {  // reads and resets; 0 if nothing was written
    std::uint64_t v = 0;
    return ::read(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v) ? v : 0;
}

bool wait_readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

TEST(MessageQueue, FifoAcrossChunksWithInterleavedPops) {
    MessageQueue q;
    std::uint64_t next_in = 0, next_out = 0;
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 37 * (round % 5 + 1); ++i) ASSERT_TRUE(q.push(msg(next_in++)));
        for (int i = 0; i < 29 * (round % 4 + 1) && !q.empty(); ++i) {
            ASSERT_EQ(q.front().a, next_out++);
            q.pop();
        }
    }
    while (!q.empty()) {
        ASSERT_EQ(q.front().a, next_out++);
        q.pop();
    }
    EXPECT_EQ(next_in, next_out);
    EXPECT_EQ(q.size(), 0u);
}

TEST(SpscRing, RoundsCapacityUpAndReportsFull) {
    SpscRing r(5);
    EXPECT_EQ(r.capacity(), 8u);
    for (int i = 0; i < 8; ++i) EXPECT_TRUE(r.try_push(msg(i)));
    EXPECT_FALSE(r.try_push(msg(99)));
    std::uint64_t want = 0;
    EXPECT_EQ(r.drain([&](const Message& m) { EXPECT_EQ(m.a, want++); }, 3), 3u);
    EXPECT_TRUE(r.try_push(msg(8)));
    EXPECT_EQ(r.drain([&](const Message& m) { EXPECT_EQ(m.a, want++); }, SIZE_MAX), 6u);
    EXPECT_TRUE(r.empty());
}

// Two threads, millions of messages; the full and empty edges are hit constantly (tiny rings are the
// flood tests' job). A ring of 1024 keeps yields rare on a loaded machine.
TEST(SpscRing, TwoThreadsKeepOrderAndLoseNothing) {
    const std::uint64_t total = 2'000'000 / scale;
    SpscRing r(1024);
    std::thread producer([&] {
        for (std::uint64_t i = 0; i < total;) {
            if (r.try_push(msg(i, ~i))) ++i;
            else std::this_thread::yield();  // the test machine may have fewer free cores than threads
        }
    });
    std::uint64_t want = 0;
    bool ok = true;
    while (want < total) {
        if (r.empty()) std::this_thread::yield();
        r.drain(
            [&](const Message& m) {
                ok &= m.a == want && m.b == ~want;
                ++want;
            },
            SIZE_MAX);
    }
    producer.join();
    EXPECT_TRUE(ok);
    EXPECT_TRUE(r.empty());
}

TEST(Port, SelfSendIsDeliveredByDrainAfterTheRings) {
    auto bus = Bus::create(2, 8);
    ASSERT_TRUE(bus);
    Port& p0 = bus->port(0);
    Port& p1 = bus->port(1);
    ASSERT_TRUE(p0.send(0, msg(10)));
    ASSERT_TRUE(p1.send(0, msg(20)));
    p1.flush();
    EXPECT_TRUE(p0.pending());
    std::vector<std::pair<unsigned, std::uint64_t>> got;
    EXPECT_EQ(p0.drain([&](unsigned from, const Message& m) { got.emplace_back(from, m.a); }), 2u);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], std::make_pair(1u, std::uint64_t{20}));
    EXPECT_EQ(got[1], std::make_pair(0u, std::uint64_t{10}));
    EXPECT_FALSE(p0.pending());
}

TEST(Port, DrainRespectsBudget) {
    auto bus = Bus::create(2, 16);
    for (int i = 0; i < 10; ++i) bus->port(1).send(0, msg(i));
    bus->port(1).flush();
    std::uint64_t want = 0;
    auto check = [&](unsigned, const Message& m) { EXPECT_EQ(m.a, want++); };
    EXPECT_EQ(bus->port(0).drain(check, 4), 4u);
    EXPECT_FALSE(bus->port(0).prepare_sleep());  // still pending: poll, do not block
    bus->port(0).woke();
    EXPECT_EQ(bus->port(0).drain(check, 100), 6u);
    EXPECT_TRUE(bus->port(0).prepare_sleep());
}

// A full ring: the producer keeps the rest in order in its overflow queue; flush() moves them as the
// consumer frees slots, and the consumer wakes the producer when it frees space for a waiting producer.
TEST(Port, FullRingOverflowsInOrderAndSpaceWakesTheProducer) {
    auto bus = Bus::create(2, 4);
    Port& prod = bus->port(0);
    Port& cons = bus->port(1);
    for (std::uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(prod.send(1, msg(i)));
    EXPECT_EQ(prod.overflow_count(), 96u);
    EXPECT_EQ(prod.stats().overflowed, 96u);
    prod.flush();
    EXPECT_EQ(prod.overflow_count(), 96u);  // nothing freed yet
    std::uint64_t want = 0;
    int rounds = 0;
    while (want < 100) {
        ASSERT_LT(++rounds, 100);
        const std::size_t before = cons.stats().space_wakes_sent;
        cons.drain([&](unsigned from, const Message& m) {
            EXPECT_EQ(from, 0u);
            EXPECT_EQ(m.a, want++);
        });
        if (prod.overflow_count()) {
            // The producer announced it waits: the drain that freed slots wrote its eventfd.
            EXPECT_EQ(cons.stats().space_wakes_sent, before + 1);
            EXPECT_EQ(eventfd_value(prod.wake_fd()), 1u);
        }
        prod.flush();
    }
    EXPECT_EQ(prod.overflow_count(), 0u);
    // New sends after the overflow emptied go straight into the ring again.
    prod.send(1, msg(100));
    EXPECT_EQ(prod.overflow_count(), 0u);
}

TEST(Port, NoWakeWhileTheConsumerIsAwake) {
    auto bus = Bus::create(2, 1024);
    for (int i = 0; i < 100; ++i) bus->port(0).send(1, msg(i));
    bus->port(0).flush();
    EXPECT_EQ(bus->port(0).stats().wakes_sent, 0u);
    EXPECT_EQ(eventfd_value(bus->port(1).wake_fd()), 0u);
}

TEST(Port, OneWakePerSleepNotPerMessage) {
    auto bus = Bus::create(3, 1024);
    Port& cons = bus->port(2);
    ASSERT_TRUE(cons.prepare_sleep());  // nothing pending: may block
    for (int i = 0; i < 100; ++i) bus->port(0).send(2, msg(i));
    bus->port(0).flush();
    for (int i = 0; i < 100; ++i) bus->port(1).send(2, msg(i));
    bus->port(1).flush();
    bus->port(0).send(2, msg(0));
    bus->port(0).flush();
    EXPECT_EQ(bus->port(0).stats().wakes_sent + bus->port(1).stats().wakes_sent, 1u);
    EXPECT_EQ(eventfd_value(cons.wake_fd()), 1u);
    cons.woke();
    EXPECT_EQ(cons.drain([](unsigned, const Message&) {}), 201u);
    // Next sleep, next batch: exactly one more wake.
    ASSERT_TRUE(cons.prepare_sleep());
    bus->port(1).send(2, msg(1));
    bus->port(1).flush();
    EXPECT_EQ(eventfd_value(cons.wake_fd()), 1u);
    EXPECT_EQ(bus->port(0).stats().wakes_sent + bus->port(1).stats().wakes_sent, 2u);
}

TEST(Port, PrepareSleepSeesMessagesAlreadyQueued) {
    auto bus = Bus::create(2, 8);
    bus->port(0).send(1, msg(1));
    bus->port(0).flush();
    EXPECT_FALSE(bus->port(1).prepare_sleep());
    bus->port(1).woke();
}

// The full-inbox case: every reactor floods every other through rings of 4 while draining its own,
// and sleeps on its eventfd whenever it has nothing else to do. Every message must arrive exactly once
// and in per-producer order, and nobody may wait forever (a missed wake fails the poll timeout).
void mutual_flood(unsigned reactors, std::uint64_t per_pair) {
    auto bus = Bus::create(reactors, 4);
    ASSERT_TRUE(bus);
    std::atomic<bool> failed{false};
    std::vector<std::thread> ts;
    for (unsigned r = 0; r < reactors; ++r) {
        ts.emplace_back([&, r] {
            Port& port = bus->port(r);
            std::vector<std::uint64_t> next_to_send(reactors, 0), next_expected(reactors, 0);
            std::uint64_t received = 0;
            const std::uint64_t want = per_pair * (reactors - 1);
            auto all_sent = [&] {
                for (unsigned to = 0; to < reactors; ++to)
                    if (to != r && next_to_send[to] < per_pair) return false;
                return true;
            };
            while (!failed.load(std::memory_order_relaxed)) {
                port.flush();
                if (received == want && all_sent() && port.overflow_count() == 0) break;
                // Sleep only when there is nothing to send (overflow waits for a space wake).
                if (all_sent() && port.prepare_sleep()) {
                    if (!wait_readable(port.wake_fd(), 5000)) {
                        ADD_FAILURE() << "reactor " << r << " never woken: received " << received << "/" << want
                                      << " overflow " << port.overflow_count();
                        failed = true;
                    }
                }
                port.woke();
                port.consume_wake_fd();
                port.drain([&](unsigned from, const Message& m) {
                    if (m.a != next_expected[from] || m.b != from) {
                        ADD_FAILURE() << "reactor " << r << " from " << from << ": got " << m.a << " want "
                                      << next_expected[from];
                        failed = true;
                    }
                    next_expected[from] = m.a + 1;
                    ++received;
                });
                // A burst per destination per turn: far more than a ring holds.
                for (unsigned to = 0; to < reactors; ++to) {
                    if (to == r) continue;
                    for (int k = 0; k < 64 && next_to_send[to] < per_pair; ++k)
                        if (!port.send(to, msg(next_to_send[to]++, r))) failed = true;
                }
            }
            for (unsigned from = 0; from < reactors; ++from)
                if (from != r) {
                    EXPECT_EQ(next_expected[from], per_pair) << "reactor " << r << " from " << from;
                }
            EXPECT_GT(port.stats().overflowed, 0u);  // the overflow path was really taken
        });
    }
    for (auto& t : ts) t.join();
    EXPECT_FALSE(failed.load());
    std::uint64_t space_wakes = 0;
    for (unsigned r = 0; r < reactors; ++r) space_wakes += bus->port(r).stats().space_wakes_sent;
    EXPECT_GT(space_wakes, 0u);  // producers really slept on a full ring and were woken for space
}

TEST(Port, TwoReactorsFloodingEachOtherNeverDeadlockOrLose) { mutual_flood(2, 100'000 / scale); }
TEST(Port, ThreeReactorsFloodingEachOtherNeverDeadlockOrLose) { mutual_flood(3, 50'000 / scale); }

// Several producers into one consumer (the MPSC view), with sleeping consumer: per-producer order.
TEST(Port, ManyProducersOneSleepingConsumer) {
    constexpr unsigned producers = 3;
    const std::uint64_t each = 100'000 / scale;
    auto bus = Bus::create(producers + 1, 16);
    std::vector<std::thread> ts;
    for (unsigned p = 1; p <= producers; ++p) {
        ts.emplace_back([&, p] {
            Port& port = bus->port(p);
            for (std::uint64_t i = 0; i < each; ++i) {
                port.send(0, msg(i, p));
                if (i % 32 == 31) port.flush();
            }
            while (port.overflow_count()) {
                port.flush();
                if (port.overflow_count()) wait_readable(port.wake_fd(), 100);
                port.consume_wake_fd();
            }
            port.flush();
        });
    }
    Port& cons = bus->port(0);
    std::vector<std::uint64_t> next(producers + 1, 0);
    std::uint64_t got = 0;
    bool ok = true;
    while (got < each * producers) {
        if (cons.prepare_sleep() && !wait_readable(cons.wake_fd(), 5000)) {
            ADD_FAILURE() << "consumer never woken at " << got;
            break;
        }
        cons.woke();
        cons.consume_wake_fd();
        got += cons.drain([&](unsigned from, const Message& m) {
            ok &= m.a == next[from]++ && m.b == from;
        });
    }
    for (auto& t : ts) t.join();
    EXPECT_TRUE(ok);
    EXPECT_EQ(got, each * producers);
}

}  // namespace
}  // namespace roomcast::pubsub
