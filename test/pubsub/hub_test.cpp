#include "pubsub/hub.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace roomcast::pubsub {
namespace {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int scale = 5;
#else
constexpr int scale = 1;
#endif

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::string room_owned_by(unsigned owner, unsigned reactors, int skip = 0) {
    for (int i = 0;; ++i) {
        std::string name = "room-" + std::to_string(i);
        if (owner_reactor(name, reactors) == owner && skip-- == 0) return name;
    }
}

// Records what a reactor's connections would have written.
struct Record {
    bool subscribed = false;
    ReplayPlan plan;
    std::vector<std::uint64_t> seqs;  // replay then live, in arrival order
    std::vector<std::string> payloads;
    std::vector<std::string> zpayloads;  // the compressed sibling's payload per message ("" if none)
};

struct RecordingSink : HubSink {
    std::map<SubscriberId, Record> subs;
    std::vector<std::pair<PublisherId, std::uint64_t>> acks;
    std::vector<SubscriberId> refused_subs;
    std::vector<std::pair<PublisherId, std::string>> refused_pubs;  // who, room + "|" + note
    std::string problems;

    void on_subscribed(SubscriberId who, SubHandle, std::string_view, Format, const ReplayPlan& plan,
                       std::span<FrameRef* const> replay) noexcept override {
        Record& r = subs[who];
        if (r.subscribed) problems += "subscribed twice;";
        r.subscribed = true;
        r.plan = plan;
        for (FrameRef* f : replay) {
            r.seqs.push_back(f->seq());
            r.payloads.push_back(text(f->payload()));
            r.zpayloads.push_back(f->deflated() ? text(f->deflated()->payload()) : "");
            f->release();
        }
    }
    void on_deliver(FrameRef* frame, std::span<const SubscriberId> ids) noexcept override {
        if (ids.empty()) problems += "empty delivery;";
        for (SubscriberId id : ids) {
            Record& r = subs[id];
            if (!r.subscribed) problems += "delivery before subscribed;";
            r.seqs.push_back(frame->seq());
            r.payloads.push_back(text(frame->payload()));
            r.zpayloads.push_back(frame->deflated() ? text(frame->deflated()->payload()) : "");
        }
        frame->release();  // one reference per reactor, whatever the number of subscribers
    }
    void on_published(PublisherId who, std::uint64_t seq) noexcept override { acks.emplace_back(who, seq); }
    void on_subscribe_refused(SubscriberId who, SubHandle, std::string_view, Format) noexcept override {
        if (subs[who].subscribed) problems += "refused after subscribed;";
        refused_subs.push_back(who);
    }
    void on_publish_refused(PublisherId who, std::string_view room, std::string_view note) noexcept override {
        refused_pubs.emplace_back(who, std::string(room) + "|" + std::string(note));
    }
};

// N reactors on one thread, pumped by hand: deterministic interleavings.
struct Cluster {
    std::unique_ptr<Bus> bus;
    std::vector<std::unique_ptr<RecordingSink>> sinks;
    std::vector<std::unique_ptr<Hub>> hubs;

    // `budget`: --room-memory for all n reactors together.
    Cluster(unsigned n, std::uint32_t history, std::size_t ring = 64, std::size_t budget = SIZE_MAX)
        : bus(Bus::create(n, ring)) {
        for (unsigned r = 0; r < n; ++r) {
            sinks.push_back(std::make_unique<RecordingSink>());
            hubs.push_back(std::make_unique<Hub>(bus->port(r), *sinks[r], history, budget));
        }
    }
    ~Cluster() {
        for (unsigned r = 0; r < bus->reactors(); ++r) bus->port(r).flush();
        for (unsigned r = 0; r < bus->reactors(); ++r)
            while (bus->port(r).drain([](unsigned, const Message& m) { Hub::dispose(m); })) {
            }
        for (auto& s : sinks) EXPECT_EQ(s->problems, "");
    }
    // One turn of reactor r: drain its inbox, flush its sends.
    std::size_t turn(unsigned r) {
        Port& p = bus->port(r);
        const std::size_t n = p.drain([&](unsigned from, const Message& m) { hubs[r]->handle(from, m); });
        p.flush();
        return n;
    }
    void settle() {
        for (unsigned r = 0; r < bus->reactors(); ++r) bus->port(r).flush();
        for (int i = 0; i < 10000; ++i) {
            std::size_t n = 0;
            for (unsigned r = 0; r < bus->reactors(); ++r) n += turn(r);
            bool pending = false;
            for (unsigned r = 0; r < bus->reactors(); ++r)
                pending |= bus->port(r).pending() || bus->port(r).overflow_count();
            if (!n && !pending) return;
        }
        ADD_FAILURE() << "cluster did not settle";
    }
    Hub& hub(unsigned r) { return *hubs[r]; }
    RecordingSink& sink(unsigned r) { return *sinks[r]; }
};

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> v;
    for (std::uint64_t s = first; s <= last; ++s) v.push_back(s);
    return v;
}

void publish(Hub& hub, std::string_view room, int n, std::string_view prefix = "m") {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(hub.publish(room, ws::Opcode::text, bytes(std::string(prefix) + std::to_string(i)), std::nullopt));
}

TEST(Hub, AnswersAreNeverSynchronous) {
    Cluster c(1, 16);
    const SubHandle h = c.hub(0).subscribe(1, "r", Format::raw, std::nullopt, false);
    ASSERT_TRUE(h.valid());
    EXPECT_FALSE(c.sink(0).subs[1].subscribed);  // not from inside subscribe()
    c.settle();
    EXPECT_TRUE(c.sink(0).subs[1].subscribed);
    EXPECT_EQ(c.sink(0).subs[1].plan.end_seq, 0u);
}

TEST(Hub, LocalOwnerDeliversAndAcknowledges) {
    Cluster c(1, 16);
    c.hub(0).subscribe(1, "r", Format::raw, std::nullopt, false);
    c.hub(0).subscribe(2, "r", Format::raw, std::nullopt, false);
    c.settle();
    ASSERT_TRUE(c.hub(0).publish("r", ws::Opcode::text, bytes("hello"), PublisherId{77}));
    ASSERT_TRUE(c.hub(0).publish("r", ws::Opcode::binary, bytes("bin"), PublisherId{78}));
    c.settle();
    for (SubscriberId s : {1, 2}) {
        EXPECT_EQ(c.sink(0).subs[s].seqs, range(1, 2));
        EXPECT_EQ(c.sink(0).subs[s].payloads, (std::vector<std::string>{"hello", "bin"}));
    }
    EXPECT_EQ(c.sink(0).acks, (std::vector<std::pair<PublisherId, std::uint64_t>>{{77, 1}, {78, 2}}));
    EXPECT_EQ(c.hub(0).stats().delivered, 2u);  // one call per message for both subscribers
}

TEST(Hub, RemoteSubscribersAndPublishersMeetAtTheOwner) {
    Cluster c(3, 16);
    const std::string room = room_owned_by(0, 3);
    c.hub(1).subscribe(10, room, Format::raw, std::nullopt, false);
    c.hub(2).subscribe(20, room, Format::envelope, std::nullopt, false);
    c.settle();
    ASSERT_TRUE(c.hub(1).publish(room, ws::Opcode::text, bytes("{\"p\":1}"), PublisherId{5}));
    c.settle();
    EXPECT_EQ(c.sink(1).acks, (std::vector<std::pair<PublisherId, std::uint64_t>>{{5, 1}}));
    EXPECT_EQ(c.sink(1).subs[10].payloads, std::vector<std::string>{"{\"p\":1}"});
    EXPECT_EQ(c.sink(2).subs[20].payloads,
              std::vector<std::string>{"{\"room\":\"" + room + "\",\"seq\":1,\"data\":{\"p\":1}}"});
    ASSERT_NE(c.hub(0).owned_room(room), nullptr);
    EXPECT_EQ(c.hub(0).owned_room(room)->last_seq(), 1u);
    EXPECT_EQ(c.hub(1).owned_room(room), nullptr);
}

TEST(Hub, ResumeReplaysThenGoesLiveWithoutGapOrDuplicate) {
    Cluster c(2, 4);
    const std::string room = room_owned_by(0, 2);
    publish(c.hub(0), room, 10);
    c.settle();
    c.hub(1).subscribe(1, room, Format::raw, 7, false);   // in reach: 8..10
    c.hub(1).subscribe(2, room, Format::raw, 2, false);   // too old: gap, 7..10
    c.hub(1).subscribe(3, room, Format::raw, 10, false);  // up to date
    c.hub(1).subscribe(4, room, Format::raw, std::nullopt, true);  // latest value
    c.settle();
    publish(c.hub(1), room, 2);
    c.settle();
    auto& s = c.sink(1).subs;
    EXPECT_EQ(s[1].seqs, range(8, 12));
    EXPECT_FALSE(s[1].plan.gap);
    EXPECT_EQ(s[2].seqs, range(7, 12));
    EXPECT_TRUE(s[2].plan.gap);
    EXPECT_EQ(s[3].seqs, range(11, 12));
    EXPECT_EQ(s[4].seqs, range(10, 12));
    for (int i = 1; i <= 4; ++i) EXPECT_EQ(s[i].plan.end_seq, 10u);
    EXPECT_EQ(s[1].payloads.front(), "m7");  // seq 8 is the eighth message, "m7"
}

// The ordering argument of room.hpp, step by step: live messages already queued towards the
// subscriber's reactor (seq <= end_seq) reach only the subscribers that were there before; the answer
// follows them in the same FIFO; later messages follow the answer.
TEST(Hub, ReplayAndLiveInterleaveCorrectlyWhilePublishesAreInFlight) {
    Cluster c(2, 16);
    const std::string room = room_owned_by(0, 2);
    c.hub(1).subscribe(1, room, Format::raw, std::nullopt, false);  // A: live from the start
    c.settle();
    publish(c.hub(0), room, 5);
    c.turn(0);  // owner sequences 1..5 and queues them to reactor 1 (not drained yet)
    c.hub(1).subscribe(2, room, Format::raw, 2, false);  // B resumes after 2
    c.bus->port(1).flush();
    c.turn(0);  // owner answers B: end_seq 5, replay 3..5, queued behind 1..5
    publish(c.hub(0), room, 1);
    c.turn(0);  // seq 6, queued behind the answer
    c.turn(1);  // reactor 1 drains everything in order
    auto& s = c.sink(1).subs;
    EXPECT_EQ(s[1].seqs, range(1, 6));
    EXPECT_EQ(s[2].seqs, range(3, 6));
    EXPECT_EQ(s[2].plan.end_seq, 5u);
    EXPECT_EQ(s[2].plan.count, 3u);
}

TEST(Hub, OwnerLocalSubscriberNeverMissesThePublishAfterItsAnswer) {
    Cluster c(1, 16);
    publish(c.hub(0), "r", 3);
    c.hub(0).subscribe(1, "r", Format::raw, 1, false);
    publish(c.hub(0), "r", 3);  // queued behind the subscribe in the self queue
    c.settle();
    EXPECT_EQ(c.sink(0).subs[1].seqs, range(2, 6));
}

TEST(Hub, UnsubscribeStopsDeliveriesAndReleasesInterest) {
    Cluster c(2, 16);
    const std::string room = room_owned_by(0, 2);
    const SubHandle h = c.hub(1).subscribe(1, room, Format::raw, std::nullopt, false);
    c.settle();
    publish(c.hub(0), room, 1);
    c.settle();
    EXPECT_EQ(c.hub(0).owned_room(room)->subscribers(Format::raw), 1u);
    c.hub(1).unsubscribe(h);
    c.hub(1).unsubscribe(h);  // twice: ignored
    EXPECT_EQ(c.hub(1).local_rooms(), 0u);
    c.settle();
    EXPECT_EQ(c.hub(0).owned_room(room)->subscribers(Format::raw), 0u);
    publish(c.hub(0), room, 1);
    c.settle();
    EXPECT_EQ(c.sink(1).subs[1].seqs, range(1, 1));
    EXPECT_EQ(c.hub(1).stats().stale_delivers, 0u);  // the owner stopped sending
}

TEST(Hub, UnsubscribeWhilePendingIsNeverAnswered) {
    Cluster c(2, 16);
    const std::string room = room_owned_by(0, 2);
    publish(c.hub(0), room, 3);
    c.settle();
    const SubHandle h = c.hub(1).subscribe(1, room, Format::raw, 0, false);
    c.hub(1).unsubscribe(h);
    c.settle();
    EXPECT_FALSE(c.sink(1).subs[1].subscribed);
    EXPECT_EQ(c.hub(0).owned_room(room)->subscribers(Format::raw), 0u);
    EXPECT_EQ(c.hub(1).local_rooms(), 0u);
}

// Stands in for the server's deflater: "z:" + payload, RSV1, same seq/tag/format; counts its calls.
struct CountingCompressor : FrameCompressor {
    int calls = 0;
    std::size_t min_size = 0;
    FrameRef* compress(const FrameRef& f) noexcept override {
        ++calls;
        if (f.payload().size() < min_size) return nullptr;
        const std::string z = "z:" + text(f.payload());
        return FrameRef::make(f.opcode(), bytes(z), 0x4, f.seq(), f.tag(), f.format());
    }
};

TEST(Hub, OwnerCompressesOncePerMessageForEveryReactor) {
    Cluster c(3, 16);
    CountingCompressor comp;
    for (unsigned r = 0; r < 3; ++r) c.hub(r).set_compressor(&comp);
    const std::string room = room_owned_by(0, 3);
    const SubHandle z0 = c.hub(0).subscribe(1, room, Format::raw, std::nullopt, false, true);
    const SubHandle z1 = c.hub(1).subscribe(2, room, Format::raw, std::nullopt, false, true);
    const SubHandle z2 = c.hub(2).subscribe(3, room, Format::raw, std::nullopt, false, true);
    c.hub(1).subscribe(4, room, Format::raw, std::nullopt, false);       // plain, same format
    c.hub(2).subscribe(5, room, Format::envelope, std::nullopt, false);  // plain, other format
    c.settle();
    EXPECT_EQ(c.hub(0).owned_room(room)->deflate_subscribers(Format::raw), 3u);
    EXPECT_EQ(c.hub(0).owned_room(room)->deflate_subscribers(Format::envelope), 0u);
    publish(c.hub(2), room, 5);
    c.settle();
    EXPECT_EQ(comp.calls, 5);  // once per message for three reactors, none for the envelope
    const std::vector<std::string> want = {"z:m0", "z:m1", "z:m2", "z:m3", "z:m4"};
    EXPECT_EQ(c.sink(0).subs[1].zpayloads, want);
    EXPECT_EQ(c.sink(1).subs[2].zpayloads, want);
    EXPECT_EQ(c.sink(1).subs[4].zpayloads, want);  // same frame: the reactor picks per subscriber
    EXPECT_EQ(c.sink(2).subs[3].zpayloads, want);
    EXPECT_EQ(c.sink(2).subs[5].zpayloads, std::vector<std::string>(5, ""));
    // A resuming subscriber gets the held frames with their siblings.
    c.hub(1).subscribe(6, room, Format::raw, 2, false, true);
    c.settle();
    EXPECT_EQ(c.sink(1).subs[6].seqs, range(3, 5));
    EXPECT_EQ(c.sink(1).subs[6].zpayloads, (std::vector<std::string>{"z:m2", "z:m3", "z:m4"}));
    // Once no subscriber takes compressed frames, nothing more is compressed.
    c.hub(0).unsubscribe(z0);
    c.hub(1).unsubscribe(z1);
    c.hub(2).unsubscribe(z2);
    c.hub(1).unsubscribe(SubHandle{});  // invalid: ignored
    c.settle();
    EXPECT_EQ(c.hub(0).owned_room(room)->deflate_subscribers(Format::raw), 1u);  // subscriber 6
    c.hub(1).subscribe(7, room, Format::raw, std::nullopt, false, true);
    const SubHandle pending = c.hub(2).subscribe(8, room, Format::raw, std::nullopt, false, true);
    c.hub(2).unsubscribe(pending);  // cancelled in flight: its interest is given back too
    c.settle();
    EXPECT_EQ(c.hub(0).owned_room(room)->deflate_subscribers(Format::raw), 2u);
    EXPECT_EQ(c.hub(0).owned_room(room)->subscribers(Format::raw), 3u);  // 4, 6, 7
    publish(c.hub(0), room, 1, "n");
    c.settle();
    EXPECT_EQ(comp.calls, 6);
    EXPECT_EQ(c.sink(1).subs[7].zpayloads, std::vector<std::string>{"z:n0"});
}

TEST(Hub, NoCompressionWithoutADeflateSubscriberOrBelowTheThreshold) {
    Cluster c(2, 16);
    CountingCompressor comp;
    comp.min_size = 3;
    for (unsigned r = 0; r < 2; ++r) c.hub(r).set_compressor(&comp);
    const std::string room = room_owned_by(1, 2);
    c.hub(0).subscribe(1, room, Format::envelope, std::nullopt, false);
    c.settle();
    publish(c.hub(0), room, 2);
    c.settle();
    EXPECT_EQ(comp.calls, 0);
    c.hub(0).subscribe(2, room, Format::envelope, std::nullopt, false, true);
    c.hub(0).subscribe(3, room, Format::raw, std::nullopt, false, true);
    c.settle();
    // "x" raw is below the compressor's threshold (no sibling); its envelope is long enough.
    ASSERT_TRUE(c.hub(0).publish(room, ws::Opcode::text, bytes("x"), std::nullopt));
    ASSERT_TRUE(c.hub(0).publish(room, ws::Opcode::text, bytes("y"), std::nullopt));
    c.settle();
    EXPECT_EQ(comp.calls, 4);
    EXPECT_EQ(c.sink(0).subs[3].payloads, (std::vector<std::string>{"x", "y"}));
    EXPECT_EQ(c.sink(0).subs[3].zpayloads, std::vector<std::string>(2, ""));
    ASSERT_EQ(c.sink(0).subs[2].zpayloads.size(), 2u);
    EXPECT_EQ(c.sink(0).subs[2].zpayloads[0], "z:" + c.sink(0).subs[2].payloads[0]);
    const std::vector<std::string> none(2, "");
    EXPECT_EQ(std::vector<std::string>(c.sink(0).subs[1].zpayloads.begin(), c.sink(0).subs[1].zpayloads.begin() + 2), none);
}

TEST(Hub, DeliveriesInFlightForAnEndedRoomAreDroppedAndFreed) {
    Cluster c(2, 16);
    const std::string room = room_owned_by(0, 2);
    const SubHandle h = c.hub(1).subscribe(1, room, Format::raw, std::nullopt, false);
    c.settle();
    publish(c.hub(0), room, 3);
    c.turn(0);  // three deliveries queued to reactor 1
    c.hub(1).unsubscribe(h);
    c.hub(1).subscribe(2, room, Format::raw, std::nullopt, false);  // same name, new local room
    c.bus->port(1).flush();
    c.settle();
    EXPECT_EQ(c.hub(1).stats().stale_delivers, 3u);
    EXPECT_EQ(c.sink(1).subs[1].seqs.size(), 0u);
    EXPECT_EQ(c.sink(1).subs[2].seqs.size(), 0u);  // it joined at end_seq 3
    EXPECT_EQ(c.sink(1).subs[2].plan.end_seq, 3u);
    publish(c.hub(1), room, 1);
    c.settle();
    EXPECT_EQ(c.sink(1).subs[2].seqs, range(4, 4));
}

TEST(Hub, RawAndEnvelopeSubscribersGetTheirOwnFormat) {
    Cluster c(2, 0);  // no history: still delivers live, and last:true still works
    const std::string room = room_owned_by(1, 2);
    c.hub(0).subscribe(1, room, Format::raw, std::nullopt, false);
    c.hub(0).subscribe(2, room, Format::envelope, std::nullopt, false);
    c.settle();
    ASSERT_TRUE(c.hub(0).publish(room, ws::Opcode::text, bytes("not json"), std::nullopt));
    ASSERT_TRUE(c.hub(0).publish(room, ws::Opcode::binary, bytes("\x01\x02"), std::nullopt));
    c.settle();
    EXPECT_EQ(c.sink(0).subs[1].payloads, (std::vector<std::string>{"not json", "\x01\x02"}));
    EXPECT_EQ(c.sink(0).subs[2].payloads,
              (std::vector<std::string>{"{\"room\":\"" + room + "\",\"seq\":1,\"data\":\"not json\"}",
                                        "{\"room\":\"" + room + "\",\"seq\":2,\"b64\":\"AQI=\"}"}));
    c.hub(0).subscribe(3, room, Format::envelope, std::nullopt, true);
    c.hub(0).subscribe(4, room, Format::raw, 0, false);
    c.settle();
    EXPECT_EQ(c.sink(0).subs[3].seqs, range(2, 2));
    EXPECT_TRUE(c.sink(0).subs[4].plan.gap);
    EXPECT_EQ(c.sink(0).subs[4].seqs.size(), 0u);
}

TEST(Hub, TinyRingsStillDeliverEverything) {
    Cluster c(2, 1024, 2);
    const std::string room = room_owned_by(0, 2);
    for (SubscriberId s = 0; s < 5; ++s) c.hub(1).subscribe(s, room, Format::raw, std::nullopt, false);
    c.settle();
    publish(c.hub(1), room, 250);  // through the ring 1 -> 0
    publish(c.hub(0), room, 250);  // through the owner's self queue: 250 deliveries in one turn
    c.settle();
    for (SubscriberId s = 0; s < 5; ++s) EXPECT_EQ(c.sink(1).subs[s].seqs, range(1, 500));
    EXPECT_GT(c.bus->port(1).stats().overflowed, 0u);
    EXPECT_GT(c.bus->port(0).stats().overflowed, 0u);
}

TEST(Hub, ShutdownDisposesMessagesInFlight) {
    Cluster c(2, 8);  // ~Cluster disposes; ASan reports any frame or request leaked
    const std::string room = room_owned_by(0, 2);
    c.hub(1).subscribe(1, room, Format::envelope, std::nullopt, false);
    c.settle();
    publish(c.hub(0), room, 5);
    c.turn(0);
    c.hub(1).subscribe(2, room, Format::raw, 0, false);
    publish(c.hub(1), room, 3);
    c.bus->port(1).flush();
}

// ---- Room memory (--room-memory) ---------------------------------------------------------------------

// A budget (all reactors together) that holds about `rooms` one-message rooms of these names per reactor.
std::size_t budget_for(unsigned reactors, double rooms, std::size_t payload = 100) {
    FrameRef* f = FrameRef::make(ws::Opcode::text, bytes(std::string(payload, 'x')), 0, 0, "room-00");
    const std::size_t one = Room::base_bytes_for("room-00", reactors) + 24 + malloc_overhead_bytes + Room::frame_bytes(f);
    f->release();
    return static_cast<std::size_t>(rooms * double(one)) * reactors;
}

TEST(HubMemory, EvictedHistoryIsAGapOnResumeAndLiveGoesOn) {
    Cluster c(2, 64, 64, budget_for(2, 12));
    const std::string room = room_owned_by(0, 2);
    c.hub(1).subscribe(1, room, Format::raw, std::nullopt, false);  // live all along
    c.settle();
    for (int i = 0; i < 30; ++i)
        ASSERT_TRUE(c.hub(1).publish(room, ws::Opcode::text, bytes(std::string(100, 'a' + i % 26)), std::nullopt));
    c.settle();
    const Room* r = c.hub(0).owned_room(room);
    ASSERT_NE(r, nullptr);
    EXPECT_GT(r->oldest_held(), 1u);  // the budget holds fewer than 30 messages
    EXPECT_GT(c.hub(0).rooms().stats().evictions.load(), 0u);
    EXPECT_EQ(c.sink(1).subs[1].seqs, range(1, 30));  // eviction never costs a live subscriber anything
    const std::uint64_t oldest = r->oldest_held();
    c.hub(1).subscribe(3, room, Format::raw, oldest - 1, false);  // exactly the reach: no gap
    c.hub(1).subscribe(2, room, Format::envelope, 0, false);      // its envelopes cost memory too
    c.settle();
    EXPECT_FALSE(c.sink(1).subs[3].plan.gap);
    EXPECT_EQ(c.sink(1).subs[3].seqs, range(oldest, 30));
    EXPECT_TRUE(c.sink(1).subs[2].plan.gap);
    const std::uint64_t first = c.sink(1).subs[2].plan.first_seq;
    EXPECT_EQ(first, oldest);  // planned before the envelopes were built
    EXPECT_EQ(c.sink(1).subs[2].seqs, range(first, 30));
    EXPECT_GT(c.hub(0).owned_room(room)->oldest_held(), oldest);  // building them evicted more
    ASSERT_TRUE(c.hub(0).publish(room, ws::Opcode::text, bytes("next"), std::nullopt));
    c.settle();
    EXPECT_EQ(c.sink(1).subs[2].seqs.back(), 31u);
    EXPECT_EQ(c.sink(1).subs[1].seqs, range(1, 31));
    EXPECT_LE(c.hub(0).rooms().ledger().bytes, c.hub(0).rooms().budget_bytes());
}

TEST(HubMemory, ARoomWithoutSubscribersIsDeletedAndStartsOverAtSeqOne) {
    Cluster c(2, 16, 64, budget_for(2, 4));
    const std::string room = room_owned_by(1, 2);
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(c.hub(0).publish(room, ws::Opcode::text, bytes(std::string(100, 'x')), PublisherId(i + 1)));
    c.settle();
    EXPECT_EQ(c.sink(0).acks.back(), (std::pair<PublisherId, std::uint64_t>{3, 3}));
    for (int i = 0; i < 12; ++i)  // newer rooms on the same owner push it out
        ASSERT_TRUE(c.hub(0).publish(room_owned_by(1, 2, i + 1), ws::Opcode::text, bytes(std::string(100, 'y')),
                                     std::nullopt));
    c.settle();
    EXPECT_EQ(c.hub(1).owned_room(room), nullptr);
    EXPECT_GT(c.hub(1).rooms().stats().deleted.load(), 0u);
    ASSERT_TRUE(c.hub(0).publish(room, ws::Opcode::text, bytes("again"), PublisherId(9)));
    c.settle();
    EXPECT_EQ(c.sink(0).acks.back(), (std::pair<PublisherId, std::uint64_t>{9, 1}));  // a new room
    // A client resuming from the old room's seqs is "ahead": nothing, no gap, and the reply's end_seq.
    c.hub(0).subscribe(1, room, Format::raw, 3, false);
    c.settle();
    EXPECT_EQ(c.sink(0).subs[1].plan.end_seq, 1u);
    EXPECT_EQ(c.sink(0).subs[1].plan.count, 0u);
    EXPECT_FALSE(c.sink(0).subs[1].plan.gap);
}

TEST(HubMemory, ARoomWithASubscriberIsNeverDeleted) {
    Cluster c(2, 16, 64, budget_for(2, 4));
    const std::string room = room_owned_by(1, 2);
    c.hub(0).subscribe(1, room, Format::raw, std::nullopt, false);
    c.settle();
    publish(c.hub(0), room, 3);
    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(c.hub(1).publish(room_owned_by(1, 2, i + 1), ws::Opcode::text, bytes(std::string(100, 'y')),
                                     std::nullopt));
    c.settle();
    const Room* r = c.hub(1).owned_room(room);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->held(), 0u);  // even its latest value went, in the end
    EXPECT_EQ(r->last_seq(), 3u);
    publish(c.hub(0), room, 1);
    c.settle();
    EXPECT_EQ(c.sink(0).subs[1].seqs, range(1, 4));  // the seq goes on
}

TEST(HubMemory, SubscribeThatWouldCreateARoomIsRefusedWhenNothingCanBeEvicted) {
    for (unsigned subscriber : {0u, 1u}) {  // remote and local owner
        Cluster c(2, 16, 64, budget_for(2, 6));
        std::vector<SubHandle> handles;
        for (SubscriberId i = 0; i < 20; ++i)
            handles.push_back(c.hub(subscriber).subscribe(i, room_owned_by(1, 2, static_cast<int>(i)), Format::raw,
                                                          std::nullopt, false));
        c.settle();
        RecordingSink& s = c.sink(subscriber);
        ASSERT_FALSE(s.refused_subs.empty());
        const std::size_t answered = 20 - s.refused_subs.size();
        EXPECT_GE(answered, 4u);
        for (SubscriberId i = 0; i < 20; ++i) {  // the first ones fit, the rest are refused, in order
            const bool refused = std::find(s.refused_subs.begin(), s.refused_subs.end(), i) != s.refused_subs.end();
            EXPECT_EQ(refused, i >= answered) << i;
            EXPECT_EQ(s.subs[i].subscribed, i < answered) << i;
        }
        const RoomTable& t = c.hub(1).rooms();
        EXPECT_EQ(t.size(), answered);
        EXPECT_EQ(t.stats().refusals.load(), 20 - answered);
        EXPECT_EQ(t.stats().evictions.load(), 0u);
        EXPECT_EQ(c.hub(subscriber).local_rooms(), answered);  // the refused ones are gone here too
        // A refused handle is stale: unsubscribing it does nothing.
        c.hub(subscriber).unsubscribe(handles.back());
        // A publish that would create a room is refused as well, with the room and the note given back.
        ASSERT_TRUE(c.hub(0).publish(room_owned_by(1, 2, 99), ws::Opcode::text, bytes("x"), PublisherId(5), false, "\"id-7\""));
        ASSERT_TRUE(c.hub(0).publish(room_owned_by(1, 2, 98), ws::Opcode::text, bytes("x"), PublisherId(6)));  // ack
        ASSERT_TRUE(c.hub(0).publish(room_owned_by(1, 2, 97), ws::Opcode::text, bytes("x"), std::nullopt));  // silent
        c.settle();
        EXPECT_EQ(c.sink(0).refused_pubs,
                  (std::vector<std::pair<PublisherId, std::string>>{{5, room_owned_by(1, 2, 99) + "|\"id-7\""},
                                                                    {6, room_owned_by(1, 2, 98) + "|"}}));
        EXPECT_TRUE(c.sink(0).acks.empty());  // the refusal comes instead of the ack
        // Publishing to a room that exists still works.
        ASSERT_TRUE(c.hub(0).publish(room_owned_by(1, 2, 0), ws::Opcode::text, bytes("y"), PublisherId(8)));
        c.settle();
        EXPECT_EQ(c.sink(0).acks, (std::vector<std::pair<PublisherId, std::uint64_t>>{{8, 1}}));
        EXPECT_EQ(s.subs[0].payloads, std::vector<std::string>{"y"});
        // Everyone leaves: every room goes, and a new room fits again.
        for (SubscriberId i = 0; i < answered; ++i) c.hub(subscriber).unsubscribe(handles[i]);
        c.settle();
        EXPECT_EQ(t.size(), 0u);
        EXPECT_EQ(t.ledger().bytes, 0u);
        EXPECT_EQ(t.ledger().pinned, 0u);
        EXPECT_EQ(t.stats().deleted.load(), answered);
        c.hub(subscriber).subscribe(100, room_owned_by(1, 2, 99), Format::raw, std::nullopt, false);
        c.settle();
        EXPECT_TRUE(s.subs[100].subscribed);
    }
}

TEST(HubMemory, ACancelledSubscriptionThatIsRefusedEndsQuietly) {
    Cluster c(2, 16, 64, budget_for(2, 0.5));  // not even one room fits
    const std::string room = room_owned_by(1, 2);
    const SubHandle h = c.hub(0).subscribe(1, room, Format::raw, std::nullopt, false);
    c.hub(0).unsubscribe(h);
    c.settle();
    EXPECT_TRUE(c.sink(0).refused_subs.empty());
    EXPECT_FALSE(c.sink(0).subs[1].subscribed);
    EXPECT_EQ(c.hub(0).local_rooms(), 0u);
    EXPECT_EQ(c.hub(1).rooms().stats().refusals.load(), 1u);
}

// The owner deletes a room while another reactor's local room still exists (a pending sub keeps it):
// the pending sub's answer comes from a new room, and the stale pointer is never used (ASan).
TEST(HubMemory, ARoomDeletedWhileALocalRoomWaitsIsNeverTouched) {
    Cluster c(2, 16);
    const std::string room = room_owned_by(0, 2);
    const SubHandle a = c.hub(1).subscribe(1, room, Format::raw, std::nullopt, false);
    c.settle();
    const Room* first = c.hub(0).owned_room(room);
    ASSERT_NE(first, nullptr);
    c.hub(1).unsubscribe(a);                                                     // sent first
    const SubHandle b = c.hub(1).subscribe(2, room, Format::raw, 0, false);      // then this
    c.bus->port(1).flush();
    c.turn(0);  // the owner: unsubscribe (the room holds nothing: deleted), then subscribe (a new room)
    EXPECT_EQ(c.hub(0).rooms().stats().deleted.load(), 1u);
    c.settle();
    EXPECT_TRUE(c.sink(1).subs[2].subscribed);
    publish(c.hub(1), room, 2);
    c.settle();
    EXPECT_EQ(c.sink(1).subs[2].seqs, range(1, 2));
    c.hub(1).unsubscribe(b);  // goes to the new room
    c.settle();
    EXPECT_EQ(c.hub(0).owned_room(room)->subscribers(Format::raw), 0u);
}

// ---- Many threads -----------------------------------------------------------------------------------
// Reactor threads publish to shared rooms while their subscribers come and go, resume with `since`,
// or ask for the last value. Every subscriber must see replay then live as one run of consecutive
// sequence numbers (no gap other than a reported one before the first replayed message, no duplicate),
// ending at the room's last seq.
struct StressSub {
    std::string room;
    std::optional<std::uint64_t> since;
    bool last = false;
    bool subscribed = false;
    bool ended = false;
    std::uint64_t next = 0;  // next seq expected once subscribed
    SubHandle handle;
};

struct StressSink : HubSink {
    std::vector<StressSub>* subs = nullptr;
    std::string problems;
    void fail(const std::string& s) {
        if (problems.size() < 2000) problems += s + "; ";
    }
    void on_subscribed(SubscriberId who, SubHandle, std::string_view room, Format, const ReplayPlan& plan,
                       std::span<FrameRef* const> replay) noexcept override {
        StressSub& s = (*subs)[who];
        if (s.subscribed || s.ended) fail("answer for a subscriber already answered or ended");
        if (room != s.room) fail("answer for the wrong room");
        s.subscribed = true;
        if (replay.size() != plan.count) fail("replay count");
        if (s.since) {
            if (*s.since >= plan.end_seq && plan.count) fail("replay for an up-to-date client");
            if (plan.count && !plan.gap && plan.first_seq != *s.since + 1) fail("replay does not start at since+1");
            if (plan.count && plan.gap && plan.first_seq <= *s.since + 1) fail("gap reported without a gap");
        }
        std::uint64_t expect = plan.first_seq;
        for (FrameRef* f : replay) {
            if (f->seq() != expect++) fail("replay not consecutive");
            f->release();
        }
        if (plan.count && plan.first_seq + plan.count - 1 != plan.end_seq) fail("replay does not reach end_seq");
        s.next = plan.end_seq + 1;
    }
    void on_subscribe_refused(SubscriberId, SubHandle, std::string_view, Format) noexcept override {
        fail("refused without a memory limit");
    }
    void on_publish_refused(PublisherId, std::string_view, std::string_view) noexcept override {
        fail("publish refused without a memory limit");
    }
    void on_deliver(FrameRef* frame, std::span<const SubscriberId> ids) noexcept override {
        for (SubscriberId id : ids) {
            StressSub& s = (*subs)[id];
            if (!s.subscribed || s.ended) fail("delivery to a subscriber not live");
            if (frame->seq() != s.next)
                fail("room " + s.room + ": got seq " + std::to_string(frame->seq()) + ", expected " +
                     std::to_string(s.next));
            s.next = frame->seq() + 1;
            if (frame->format() == Format::envelope &&
                text(frame->payload()).find("\"seq\":" + std::to_string(frame->seq()) + ",") == std::string::npos)
                fail("envelope seq mismatch");
        }
        frame->release();
    }
    void on_published(PublisherId, std::uint64_t seq) noexcept override {
        if (seq == 0) fail("publish failed");
    }
};

TEST(HubThreads, ReplayAndLiveStayOrderedUnderConcurrentPublishing) {
    constexpr unsigned reactors = 3;
    constexpr int rooms = 4;
    const int per_thread_per_room = 1500 / scale;
    const std::uint64_t total = std::uint64_t(per_thread_per_room) * reactors;  // final last_seq of every room
    std::vector<std::string> names;
    for (int i = 0; i < rooms; ++i) names.push_back(room_owned_by(i % reactors, reactors, i));
    auto bus = Bus::create(reactors, 8);  // small rings: the overflow path is part of the test
    std::vector<std::vector<StressSub>> subs(reactors);
    std::vector<StressSink> sinks(reactors);
    std::vector<std::unique_ptr<Hub>> hubs;
    for (unsigned r = 0; r < reactors; ++r) {
        subs[r].reserve(100000);  // the sink holds a pointer to the vector, not to elements
        sinks[r].subs = &subs[r];
        hubs.push_back(std::make_unique<Hub>(bus->port(r), sinks[r], 64));
    }
    std::atomic<unsigned> complete{0};
    std::atomic<bool> timed_out{false};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::vector<std::thread> ts;
    for (unsigned r = 0; r < reactors; ++r) {
        ts.emplace_back([&, r] {
            Port& port = bus->port(r);
            Hub& hub = *hubs[r];
            std::vector<StressSub>& mine = subs[r];
            std::mt19937 rng(r * 7919 + 1);
            std::vector<int> published(rooms, 0);
            bool said_complete = false;
            auto publishing = [&] {
                for (int n : published)
                    if (n < per_thread_per_room) return true;
                return false;
            };
            auto live_done = [&] {
                for (const StressSub& s : mine) {
                    if (s.ended) continue;
                    if (!s.subscribed || s.next != total + 1) return false;
                }
                return true;
            };
            for (;;) {
                port.flush();
                const bool busy = publishing();
                if (!busy && port.prepare_sleep()) {
                    pollfd p{port.wake_fd(), POLLIN, 0};
                    ::poll(&p, 1, 20);
                }
                port.woke();
                port.consume_wake_fd();
                if (busy) {
                    for (int k = 0; k < 8; ++k) {
                        const int room = static_cast<int>(rng() % rooms);
                        if (published[room] == per_thread_per_room) continue;
                        const std::string payload =
                            "{\"r\":" + std::to_string(r) + ",\"i\":" + std::to_string(published[room]) + "}";
                        hub.publish(names[room], ws::Opcode::text, bytes(payload), PublisherId{r});
                        ++published[room];
                    }
                    const unsigned action = rng() % 16;
                    if (action < 3) {  // a new subscriber: live only, from 0, recent resume, or last value
                        StressSub s;
                        s.room = names[rng() % rooms];
                        const unsigned mode = rng() % 4;
                        if (mode == 1) s.since = 0;
                        if (mode == 2) s.since = std::uint64_t(published[0] * reactors) / 2;  // somewhere back
                        if (mode == 3) s.last = true;
                        const Format f = rng() % 2 ? Format::raw : Format::envelope;
                        const SubscriberId id = mine.size();
                        mine.push_back(s);
                        mine.back().handle = hub.subscribe(id, mine.back().room, f, mine.back().since, mine.back().last);
                    } else if (action == 3 && !mine.empty()) {  // someone leaves, then resumes where it was
                        StressSub& old = mine[rng() % mine.size()];
                        if (!old.ended && old.subscribed) {
                            hub.unsubscribe(old.handle);
                            old.ended = true;
                            StressSub s;
                            s.room = old.room;
                            s.since = old.next - 1;
                            const SubscriberId id = mine.size();
                            mine.push_back(s);
                            mine.back().handle = hub.subscribe(id, s.room, Format::raw, s.since, false);
                        }
                    } else if (action == 4 && !mine.empty()) {  // someone leaves before its answer, maybe
                        StressSub& old = mine[rng() % mine.size()];
                        if (!old.ended) {
                            hub.unsubscribe(old.handle);
                            old.ended = true;
                        }
                    }
                }
                port.drain([&](unsigned from, const Message& m) { hub.handle(from, m); });
                port.flush();
                if (!busy && !said_complete && live_done() && port.overflow_count() == 0) {
                    said_complete = true;
                    complete.fetch_add(1);
                }
                if (complete.load() == reactors) break;
                if (std::chrono::steady_clock::now() > deadline) {
                    timed_out = true;
                    break;
                }
            }
        });
    }
    for (auto& t : ts) t.join();
    EXPECT_FALSE(timed_out.load()) << "reactors did not finish: " << complete.load() << " complete";
    std::size_t answered = 0, resumed = 0;
    for (unsigned r = 0; r < reactors; ++r) {
        EXPECT_EQ(sinks[r].problems, "") << "reactor " << r;
        for (const StressSub& s : subs[r]) {
            answered += s.subscribed;
            resumed += s.since.has_value() && s.subscribed;
        }
    }
    EXPECT_GT(answered, 20u);
    EXPECT_GT(resumed, 5u);
    for (int i = 0; i < rooms; ++i) {
        const Room* room = hubs[owner_reactor(names[i], reactors)]->owned_room(names[i]);
        ASSERT_NE(room, nullptr);
        EXPECT_EQ(room->last_seq(), total);
    }
    for (unsigned r = 0; r < reactors; ++r) bus->port(r).flush();
    for (unsigned r = 0; r < reactors; ++r)
        while (bus->port(r).drain([](unsigned, const Message& m) { Hub::dispose(m); })) {
        }
}

}  // namespace
}  // namespace roomcast::pubsub
