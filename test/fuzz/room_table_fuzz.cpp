// Fuzz target: the room table (src/pubsub/hub.hpp over the Bus of inbox.hpp, rooms of room.hpp, frames of
// frame_ref.hpp). 2-4 simulated reactors, each one Hub + Port + recording HubSink, all on this thread:
// the input chooses a sequence of subscribe / unsubscribe / publish / disconnect calls and, in between,
// which port drains how many messages and when each flushes, so it picks the interleaving of the
// cross-reactor messages. At the end everything is unsubscribed, pumped until quiet and disposed of, so
// LeakSanitizer sees any frame, request or answer the hub lost.
//
// Room memory: byte 0 also picks --room-memory for the run: unlimited (every room is kept and the replay
// rules hold exactly), or a tiny budget, so that the owners evict history, delete idle empty rooms and
// refuse new rooms all the time (room_table.hpp), while the checks below still hold, adjusted where
// eviction legitimately changes them (see "Incarnations").
//
// Input layout (past the end every byte reads as 0):
//   byte 0  bits 0-3: reactors = 2 + b % 3; bits 4-7: --room-memory (budget_choices; 0 = unlimited)
//   byte 1  bits 0-2 history per room (0 1 2 3 4 8 16 64), bits 3-4 ring capacity (2 4 16 256),
//           bit 5 the sinks hold frames until a `write` op (slow connections; one reference per subscriber
//           via add_ref(n)), bit 6 abrupt shutdown (dispose of what is in flight instead of settling),
//           bit 7 the sinks publish from inside on_deliver()/on_subscribed() (allowed by hub.hpp)
//   byte 2  how many publishes the sinks may make from callbacks in all
//   then operations, each a kind byte (b % 9) and its operands:
//     0 subscribe    conn, room, flags (bit 0 envelope, bit 1 last, bit 2 since), since
//                    since: 255 = 2^64-1; bit 7 = the owner's current last seq minus (b & 127), floor 0;
//                    else b (absolute)
//     1 unsubscribe  conn, pick: one of the handles this connection was ever given (pick % (n + 1); n
//                    = an invalid SubHandle{}), so ended and reused handles are exercised too
//     2 publish      conn, room, flags (bit 0 ack, bit 1 binary, bit 2 given a PublisherId to report a
//                    refusal to, with the publish number as its note), len, len payload bytes
//     3 disconnect   conn: unsubscribe every subscription it still holds
//     4 pump         reactor, budget: Port::drain() on that reactor with that budget (0 = unlimited); a
//                    sleeping reactor only wakes up for it if its eventfd is readable
//     5 flush        reactor: Port::flush()
//     6 write        reactor, n: its sink releases its n oldest held frame references (0 = all)
//     7 settle       run every reactor's loop (below) until all sleep, then check the quiescent invariants
//     8 sleep        reactor: flush, then prepare_sleep(); if it says block, the reactor sleeps
//   A sleeping reactor is blocked in epoll_wait: any other operation on it (a connection's event) wakes it
//   first; settle wakes it only through its eventfd, so a missed wake-up leaves messages stranded.
//   conn % 8 is a connection; connection c lives on reactor c % reactors. room % 6 picks a name.
// Every published payload is "#<publish number>:" + the operand bytes, so a delivered raw frame says
// which publish it is; envelope frames are matched against the envelope of a known publish.
//
// Incarnations. A room deleted by its owner (it held nothing and had no subscriber) starts over at seq 1
// when its name is used again. The model numbers each room's lives: the owner's answer to a publish is
// predicted when the owner handles it (the message, the room before, and whether the owner's published
// count moved tell everything), and a room that appears at the owner between two looks is a new life.
// Sequence numbers, acks and streams below are per (room, incarnation).
//
// Checked (hub.hpp, room.hpp "Resume protocol"; no allocation fails here, so no gap is allowed):
//   - each subscription is answered at most once, on its reactor, with its handle, room and format, and
//     never after it was unsubscribed; the plan is exactly plan_replay()'s rule for its since/last and
//     the history size (with a budget: the oldest held may be later, and then gap says so exactly),
//     end_seq <= the owner's last seq, and the replay frames are first_seq.. in order;
//   - a refusal (subscribe or publish) only with a budget, only for a room the owner does not hold, once,
//     to the right reactor with the right room and note; a refused publish is never sequenced; every
//     publish is either sequenced or refused;
//   - the owners' memory: each RoomTable's running byte and pinned counts equal a recount from its rooms,
//     its eviction heap is consistent, and it is within budget unless nothing is left to evict; no room is
//     held that holds nothing and has no subscriber; without a budget nothing is evicted or refused;
//   - a live subscription's room is never deleted under it (its seq goes on; ASan sees any use of a freed
//     Room through a cached pointer or an unsubscribe);
//   - live deliveries to a subscription are end_seq + 1, + 2, ... with no gap or duplicate; nothing is
//     delivered after unsubscribe; a delivery names every live local subscriber of its room and format
//     exactly once; per reactor and room, answers and deliveries arrive in the owner's order (a delivery
//     after an answer has seq > end_seq, an answer after a delivery has end_seq >= its seq);
//   - every frame has the subscriber's format, the room as tag and a well-formed header; a raw frame
//     carries exactly the publish it names; an envelope frame is exactly the envelope of its seq's publish;
//     one seq of a room is one publish; publishes from one reactor to one room are sequenced in order;
//   - acks reach the publishing reactor once, with seq > 0, increasing per (reactor, room);
//   - local_subscribers() always matches the model; when quiet: every request answered, every live
//     subscription has everything up to the room's last seq, owners count exactly the live subscribers,
//     local_rooms() is exact, Hub::stats and PortStats add up;
//   - the wake protocol of inbox.hpp: prepare_sleep() blocks exactly when nothing is pending, and when
//     every reactor sleeps with no eventfd readable, nothing is in flight (no lost wake-up, including the
//     "space again" wake of a producer sleeping with an overflow queue);
//   - every reference the sinks receive (plus those they add) is released exactly once, never below the
//     count they still hold (ASan/LSan catch the rest).
#include <poll.h>

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "fuzz_check.hpp"
#include "pubsub/control.hpp"
#include "pubsub/hub.hpp"

namespace {

using namespace roomcast;
using namespace roomcast::pubsub;

constexpr unsigned max_reactors = 4;
constexpr unsigned connections = 8;
constexpr std::size_t room_count = 6;
constexpr std::uint32_t history_choices[] = {0, 1, 2, 3, 4, 8, 16, 64};
constexpr std::size_t ring_choices[] = {2, 4, 16, 256};
// --room-memory of all reactors together. A room costs a few hundred bytes (the longest name more),
// a frame here about 60-350: from "not even one room" up to a few rooms with some history per owner.
constexpr std::size_t budget_choices[16] = {SIZE_MAX, 300,  600,  900,  1200, 1600, 2000,  2500,
                                            3000,     3600, 4400, 5400, 7000, 9000, 12000, 20000};
// Enough for any input of the run's -max_len; the point is to catch a livelock, not to be tight.
constexpr int max_settle_rounds = 1'000'000;

std::span<const std::byte> as_bytes(std::string_view s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}
std::string_view as_text(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::uint64_t handle_key(SubHandle h) { return std::uint64_t(h.generation) << 32 | h.index; }

struct PubRecord {
    unsigned reactor = 0;
    unsigned room = 0;
    ws::Opcode op = ws::Opcode::text;
    bool ack = false;
    bool acked = false;
    bool report = false;        // a refusal is reported (PublisherId given)
    bool sequenced = false;     // the owner took it
    bool refused = false;       // the owner refused it (its room did not fit)
    bool refusal_told = false;  // on_publish_refused() came
    std::string note;           // given with the publish, expected back with a refusal
    std::string payload;        // "#<number>:" + bytes, as published
    std::uint64_t seq = 0;      // set when the owner handles it
    std::uint64_t inc = 0;      // the room's incarnation it went to
};

struct SubRecord {
    enum class State : std::uint8_t { pending, live, ended };
    unsigned reactor = 0;
    unsigned room = 0;
    Format format = Format::raw;
    std::optional<std::uint64_t> since;
    bool last = false;
    SubHandle handle;
    State state = State::pending;
    bool answered = false;
    bool refused = false;
    std::uint64_t next = 0;  // next live seq once answered
    std::uint64_t inc = 0;   // the room's incarnation that answered it
};

// A reference a sink keeps (a connection that has not written the frame yet).
struct Held {
    FrameRef* frame;
    std::uint64_t seq;
    Format format;
};

class World;

class Sink final : public HubSink {
public:
    Sink(World& w, unsigned reactor) : world_(w), reactor_(reactor) {}
    void on_subscribed(SubscriberId who, SubHandle h, std::string_view room, Format format,
                       const ReplayPlan& plan, std::span<FrameRef* const> replay) noexcept override;
    void on_deliver(FrameRef* frame, std::span<const SubscriberId> subs) noexcept override;
    void on_published(PublisherId who, std::uint64_t seq) noexcept override;
    void on_subscribe_refused(SubscriberId who, SubHandle h, std::string_view room,
                              Format format) noexcept override;
    void on_publish_refused(PublisherId who, std::string_view room, std::string_view note) noexcept override;

private:
    World& world_;
    unsigned reactor_;
};

class World {
public:
    World(unsigned reactors, std::uint32_t history, std::size_t ring, bool hold, bool echo,
          unsigned echo_budget, std::size_t budget)
        : n_(reactors),
          history_(history),
          hold_(hold),
          echo_budget_(echo ? echo_budget : 0),
          budget_(budget) {
        // Chosen so that for 2, 3 and 4 reactors every reactor owns at least one room; one name has the
        // maximum length and the rest use every class of character the alphabet allows.
        names_ = {"lobby",
                  "a",
                  "ticker:ETH-EUR",
                  "Z9",
                  std::string(max_room_name_bytes, 'r'),
                  "chat.room_1@eu-west"};
        for (const std::string& n : names_) FUZZ_CHECK(validate_room_name(n) == RoomNameError::none);
        bus_ = Bus::create(n_, ring);
        FUZZ_CHECK(bus_ != nullptr, "Bus::create");
        for (unsigned r = 0; r < n_; ++r) sinks_.push_back(std::make_unique<Sink>(*this, r));
        for (unsigned r = 0; r < n_; ++r)
            hubs_.push_back(std::make_unique<Hub>(bus_->port(r), *sinks_[r], history_, budget_));
    }

    unsigned reactors() const { return n_; }
    std::size_t budget() const { return budget_; }
    bool limited() const { return budget_ != SIZE_MAX; }
    unsigned reactor_of(unsigned conn) const { return conn % n_; }

    // ---- operations -----------------------------------------------------------------------------------
    void subscribe(unsigned conn, unsigned room, std::uint8_t flags, std::uint8_t since_byte) {
        const unsigned r = reactor_of(conn);
        awake(r);
        SubRecord s;
        s.reactor = r;
        s.room = room;
        s.format = flags & 1 ? Format::envelope : Format::raw;
        s.last = flags & 2;
        if (flags & 4) {
            if (since_byte == 0xFF) {
                s.since = UINT64_MAX;
            } else if (since_byte & 0x80) {
                const std::uint64_t back = since_byte & 0x7F, last = owner_last_seq(room);
                s.since = last > back ? last - back : 0;
            } else {
                s.since = since_byte;
            }
        }
        const auto who = static_cast<SubscriberId>(subs_.size());
        s.handle = hubs_[r]->subscribe(who, names_[room], s.format, s.since, s.last);
        FUZZ_CHECK(s.handle.valid(), "subscribe failed without an allocation failure");
        FUZZ_CHECK(issued_[r].insert(handle_key(s.handle)).second, "handle {%u, %u} issued twice",
                   s.handle.index, s.handle.generation);
        subs_.push_back(s);
        conns_[conn].push_back(static_cast<std::uint32_t>(who));
    }

    void unsubscribe_pick(unsigned conn, std::uint8_t pick) {
        awake(reactor_of(conn));
        const std::vector<std::uint32_t>& held = conns_[conn];
        const std::size_t i = pick % (held.size() + 1);
        if (i == held.size()) {
            hubs_[reactor_of(conn)]->unsubscribe(SubHandle{});  // ignored
            return;
        }
        unsubscribe(held[i]);
    }

    // Ends one subscription; an ended one is unsubscribed again, which the hub must ignore (its slot may
    // belong to a newer subscription by now).
    void unsubscribe(std::uint32_t who) {
        SubRecord& s = subs_[who];
        hubs_[s.reactor]->unsubscribe(s.handle);
        if (s.state == SubRecord::State::live) --live_[s.reactor][s.room][static_cast<int>(s.format)];
        s.state = SubRecord::State::ended;
    }

    void disconnect(unsigned conn) {
        awake(reactor_of(conn));
        for (std::uint32_t who : conns_[conn])
            if (subs_[who].state != SubRecord::State::ended) unsubscribe(who);
    }

    void publish(unsigned r, unsigned room, ws::Opcode op, bool ack, bool report, std::string_view bytes) {
        awake(r);
        const std::size_t number = pubs_.size();
        PubRecord p;
        p.reactor = r;
        p.room = room;
        p.op = op;
        p.ack = ack;
        p.report = report || ack;  // with an ack, a refusal comes instead of it
        if (report) p.note = std::to_string(number);
        p.payload = "#" + std::to_string(number) + ":";
        p.payload.append(bytes);
        pubs_.push_back(std::move(p));
        const std::string& payload = pubs_.back().payload;
        const bool ok =
            report
                ? hubs_[r]->publish(names_[room], op, as_bytes(payload), number + 1, ack, pubs_.back().note)
                : hubs_[r]->publish(names_[room], op, as_bytes(payload),
                                    ack ? std::optional<PublisherId>(number + 1) : std::nullopt);
        FUZZ_CHECK(ok, "publish failed without an allocation failure");
    }

    void pump(unsigned r, std::size_t budget) {
        if (asleep_[r] && !wake_readable(r)) return;  // still blocked in epoll_wait
        awake(r);
        drain(r, budget);
    }
    void flush(unsigned r) {
        awake(r);
        bus_->port(r).flush();
    }

    // The end of a loop turn: flush, then block if nothing is pending (hub.hpp "Integration").
    void sleep(unsigned r) {
        if (asleep_[r]) return;
        Port& p = bus_->port(r);
        p.flush();
        const bool block = p.prepare_sleep();
        FUZZ_CHECK(block == !p.pending(), "reactor %u: prepare_sleep() says %s", r, block ? "block" : "poll");
        if (block)
            asleep_[r] = true;
        else
            p.woke();
    }

    // epoll_wait returned (a connection's event, or the eventfd): woke(), and read the eventfd.
    void awake(unsigned r) {
        if (!asleep_[r]) return;
        asleep_[r] = false;
        bus_->port(r).woke();
        bus_->port(r).consume_wake_fd();
    }

    void write(unsigned r, std::size_t n) {
        awake(r);
        std::deque<Held>& q = held_[r];
        if (n == 0 || n > q.size()) n = q.size();
        for (std::size_t i = 0; i < n; ++i) {
            const Held h = q.front();
            q.pop_front();
            release(h);
        }
    }

    // Runs every reactor's loop until all of them sleep with no eventfd readable; by the wake protocol
    // nothing can be in flight then. Leaves every reactor awake.
    void settle() {
        for (int round = 0; round < max_settle_rounds; ++round) {
            bool any_awake = false;
            for (unsigned r = 0; r < n_; ++r) {
                if (asleep_[r] && !wake_readable(r)) continue;
                awake(r);
                any_awake = true;
                drain(r, SIZE_MAX);
                sleep(r);
            }
            if (any_awake) continue;
            FUZZ_CHECK(quiet(),
                       "every reactor sleeps and none was woken, but messages are in flight (lost wake-up)");
            for (unsigned r = 0; r < n_; ++r) awake(r);
            return;
        }
        FUZZ_CHECK(false, "the reactors did not settle in %d rounds", max_settle_rounds);
    }

    // ---- checks -----------------------------------------------------------------------------------------
    // Holds between any two operations (after observe_all()).
    void check_tables() const {
        for (unsigned r = 0; r < n_; ++r)
            for (unsigned room = 0; room < room_count; ++room)
                for (std::size_t f = 0; f < format_count; ++f) {
                    const std::size_t got = hubs_[r]->local_subscribers(names_[room], static_cast<Format>(f));
                    FUZZ_CHECK(got == live_[r][room][f],
                               "reactor %u room %u format %zu: hub has %zu live, model %u", r, room, f, got,
                               live_[r][room][f]);
                }
        for (unsigned r = 0; r < n_; ++r) {
            const RoomTable& t = hubs_[r]->rooms();
            FUZZ_CHECK(t.ledger().bytes == t.recount_bytes(), "reactor %u: room memory %zu, recounted %zu", r,
                       t.ledger().bytes, t.recount_bytes());
            FUZZ_CHECK(t.ledger().pinned == t.recount_pinned(), "reactor %u: pinned %zu, recounted %zu", r,
                       t.ledger().pinned, t.recount_pinned());
            FUZZ_CHECK(t.heap_ok(), "reactor %u: eviction heap inconsistent", r);
            FUZZ_CHECK(t.ledger().bytes <= t.budget_bytes() || t.evictable() == 0,
                       "reactor %u: %zu bytes over its budget %zu with %zu rooms still evictable", r,
                       t.ledger().bytes, t.budget_bytes(), t.evictable());
            FUZZ_CHECK(t.budget_bytes() == budget_ / n_);
            FUZZ_CHECK(
                t.stats().memory_bytes.load() == t.ledger().bytes && t.stats().rooms.load() == t.size(),
                "reactor %u: stats not up to date", r);
            if (!limited())
                FUZZ_CHECK(t.stats().evictions.load() == 0 && t.stats().refusals.load() == 0,
                           "reactor %u: evicted or refused without a budget", r);
        }
        for (unsigned room = 0; room < room_count; ++room) {
            const Room* owned = hubs_[owner_of(room)]->owned_room(names_[room]);
            FUZZ_CHECK((owned != nullptr) == alive_[room], "room %u: owner has it %d, model %d", room,
                       owned != nullptr, alive_[room]);
            FUZZ_CHECK(!owned || owned->held() || owned->has_subscribers(),
                       "room %u is kept with nothing held and no subscriber", room);
        }
    }

    // Takes note of rooms that appeared or disappeared at their owners since the last look.
    void observe_all() {
        for (unsigned room = 0; room < room_count; ++room) observe(room);
    }

    // After settle(): nothing in flight, so every promise about completeness can be checked.
    void check_quiet() {
        observe_all();
        std::uint64_t sent = 0, received = 0, published = 0;
        for (unsigned r = 0; r < n_; ++r) {
            const Port& p = bus_->port(r);
            sent += p.stats().sent;
            received += p.stats().received;
            const HubStats& st = hubs_[r]->stats();
            FUZZ_CHECK(st.alloc_failures == 0 && st.send_failures == 0, "reactor %u: failures without OOM",
                       r);
            FUZZ_CHECK(st.delivered == deliver_calls_[r], "reactor %u: stats.delivered %llu, sink saw %llu",
                       r, (unsigned long long)st.delivered, (unsigned long long)deliver_calls_[r]);
            published += st.published;
        }
        FUZZ_CHECK(sent == received, "the bus accepted %llu messages and handed out %llu",
                   (unsigned long long)sent, (unsigned long long)received);
        std::size_t sequenced = 0;
        for (const PubRecord& p : pubs_) {
            sequenced += p.sequenced;
            FUZZ_CHECK(p.sequenced != p.refused, "a publish is %s",
                       p.sequenced ? "sequenced and refused" : "lost");
            FUZZ_CHECK(!p.refused || limited(), "a publish refused without a budget");
            FUZZ_CHECK(p.refusal_told == (p.refused && p.report), "a refusal %s",
                       p.refusal_told ? "reported for nothing" : "not reported");
            FUZZ_CHECK(p.acked == (p.ack && p.sequenced), "an ack is missing");
        }
        FUZZ_CHECK(published == sequenced, "owners sequenced %llu publishes, the model %zu",
                   (unsigned long long)published, sequenced);

        std::array<std::uint64_t, room_count> pubs_per_room{};
        for (const PubRecord& p : pubs_)
            if (p.sequenced && alive_[p.room] && p.inc == inc_[p.room]) ++pubs_per_room[p.room];
        for (unsigned room = 0; room < room_count; ++room) {
            const unsigned owner = owner_reactor(names_[room], n_);
            for (unsigned r = 0; r < n_; ++r)
                if (r != owner)
                    FUZZ_CHECK(hubs_[r]->owned_room(names_[room]) == nullptr, "room %u owned twice", room);
            const Room* owned = hubs_[owner]->owned_room(names_[room]);
            const std::uint64_t last = owned ? owned->last_seq() : 0;
            FUZZ_CHECK(last == pubs_per_room[room], "room %u: last seq %llu after %llu publishes", room,
                       (unsigned long long)last, (unsigned long long)pubs_per_room[room]);
            for (std::size_t f = 0; f < format_count; ++f) {
                std::uint32_t live = 0;
                for (unsigned r = 0; r < n_; ++r) live += live_[r][room][f];
                const std::uint32_t counted = owned ? owned->subscribers(static_cast<Format>(f)) : 0;
                FUZZ_CHECK(counted == live, "room %u format %zu: owner counts %u subscribers, %u are live",
                           room, f, counted, live);
            }
        }
        std::array<std::array<bool, room_count>, max_reactors> in_use{};
        for (const SubRecord& s : subs_) {
            if (s.state == SubRecord::State::ended) continue;
            FUZZ_CHECK(s.state == SubRecord::State::live, "a subscription is still unanswered when quiet");
            FUZZ_CHECK(alive_[s.room] && s.inc == inc_[s.room], "room %u was deleted under a live subscriber",
                       s.room);
            const std::uint64_t last = owner_last_seq(s.room);
            FUZZ_CHECK(s.next == last + 1, "a live subscriber of room %u has up to %llu, the room is at %llu",
                       s.room, (unsigned long long)(s.next - 1), (unsigned long long)last);
            in_use[s.reactor][s.room] = true;
        }
        for (unsigned r = 0; r < n_; ++r) {
            std::size_t rooms = 0;
            for (bool b : in_use[r]) rooms += b;
            FUZZ_CHECK(hubs_[r]->local_rooms() == rooms, "reactor %u: %zu local rooms, %zu in use", r,
                       hubs_[r]->local_rooms(), rooms);
        }
        check_publish_order();
    }

    // Publishes from one reactor to one room travel one FIFO channel to a single-threaded owner: in order,
    // within a room's life, and never to an older life of it.
    void check_publish_order() const {
        std::array<std::array<std::pair<std::uint64_t, std::uint64_t>, room_count>, max_reactors> prev{};
        for (const PubRecord& p : pubs_) {
            if (!p.sequenced) continue;
            auto& [inc, seq] = prev[p.reactor][p.room];
            FUZZ_CHECK(p.inc > inc || (p.inc == inc && p.seq > seq),
                       "reactor %u room %u: seq %llu (life %llu) sequenced after %llu (life %llu)", p.reactor,
                       p.room, (unsigned long long)p.seq, (unsigned long long)p.inc, (unsigned long long)seq,
                       (unsigned long long)inc);
            inc = p.inc;
            seq = p.seq;
        }
    }

    // ---- the end --------------------------------------------------------------------------------------
    void finish(bool abrupt) {
        if (!abrupt) {
            settle();
            check_quiet();
            for (std::uint32_t who = 0; who < subs_.size(); ++who)
                if (subs_[who].state != SubRecord::State::ended) unsubscribe(who);
            settle();
            check_quiet();
            for (unsigned r = 0; r < n_; ++r) FUZZ_CHECK(hubs_[r]->local_rooms() == 0);
        }
        // Shutdown (hub.hpp): free what is still in flight without acting on it. One drain per port is
        // not enough: a message waiting in a producer's overflow queue reaches the ring only through that
        // producer's flush(), and ~Port frees the queue's chunks, not what the messages point to. So
        // flush and drain until every ring and overflow queue is empty.
        for (unsigned r = 0; r < n_; ++r) awake(r);
        std::size_t disposed = 0;
        for (int round = 0;; ++round) {
            FUZZ_CHECK(round < max_settle_rounds, "shutdown did not drain");
            for (unsigned r = 0; r < n_; ++r) flush(r);
            std::size_t n = 0;
            for (unsigned r = 0; r < n_; ++r)
                n += bus_->port(r).drain([](unsigned, const Message& m) { Hub::dispose(m); });
            disposed += n;
            if (n == 0 && quiet()) break;
        }
        if (!abrupt) FUZZ_CHECK(disposed == 0, "%zu messages after settling", disposed);
        for (unsigned r = 0; r < n_; ++r) write(r, 0);
        FUZZ_CHECK(outstanding_.empty());
        FUZZ_CHECK(refs_released_ == refs_taken_, "the sinks took %llu references and released %llu",
                   (unsigned long long)refs_taken_, (unsigned long long)refs_released_);
        check_publish_order();
    }

    // ---- sink callbacks -----------------------------------------------------------------------------------
    void on_subscribed(unsigned r, SubscriberId who, SubHandle h, std::string_view room, Format format,
                       const ReplayPlan& plan, std::span<FrameRef* const> replay) {
        refs_taken_ += replay.size();
        FUZZ_CHECK(who < subs_.size(), "answer for unknown subscriber %llu", (unsigned long long)who);
        SubRecord& s = subs_[who];
        FUZZ_CHECK(s.reactor == r, "answer on reactor %u for a subscription of reactor %u", r, s.reactor);
        FUZZ_CHECK(s.state != SubRecord::State::ended, "answer after unsubscribe");
        FUZZ_CHECK(!s.answered, "answered twice");
        FUZZ_CHECK(h.index == s.handle.index && h.generation == s.handle.generation,
                   "answer with another handle");
        FUZZ_CHECK(room == names_[s.room] && format == s.format, "answer for another room or format");
        // The room that answered holds this subscriber's interest until it unsubscribes: it is the life
        // the owner has now (looked at now, since a self-owned answer comes from inside handle()).
        observe(s.room);
        FUZZ_CHECK(alive_[s.room], "room %u answered but its owner does not hold it", s.room);
        s.inc = inc_[s.room];

        // room.hpp "Replay rules", with the history size of this run.
        const std::uint64_t end = plan.end_seq;
        bool gap = false;
        std::uint64_t first = end, count = 0;
        if (!s.since) {
            count = s.last && end ? 1 : 0;
        } else if (*s.since < end) {
            const std::uint64_t oldest = end - std::min<std::uint64_t>(end, history_) + 1;
            first = *s.since + 1;
            if (first < oldest) {
                gap = true;
                first = oldest;
            }
            count = first <= end ? end - first + 1 : 0;
        }
        // With a budget the owner may have evicted the oldest of those (or the latest value): the replay
        // then starts later, and says gap exactly when it does not start at since + 1.
        bool plan_ok = plan.gap == gap && plan.count == count && (!count || plan.first_seq == first);
        if (!plan_ok && limited()) {
            if (!s.since)
                plan_ok = !plan.gap && plan.count == 0 && count == 1;  // the latest value was evicted
            else if (*s.since < end)
                plan_ok = plan.count <= count &&
                          (plan.count ? plan.first_seq >= first && plan.first_seq + plan.count - 1 == end &&
                                            plan.gap == (plan.first_seq > *s.since + 1)
                                      : plan.gap);
        }
        FUZZ_CHECK(
            plan_ok,
            "since %lld last %d history %u end %llu: plan first %llu count %llu gap %d, want %llu %llu %d",
            s.since ? (long long)*s.since : -1LL, s.last, history_, (unsigned long long)end,
            (unsigned long long)plan.first_seq, (unsigned long long)plan.count, plan.gap,
            (unsigned long long)first, (unsigned long long)count, gap);
        FUZZ_CHECK(replay.size() == plan.count, "replay of %zu frames for a plan of %llu", replay.size(),
                   (unsigned long long)plan.count);
        FUZZ_CHECK(end <= owner_last_seq(s.room), "end_seq beyond the room");
        Stream& st = stream(r, s.room, s.inc);
        FUZZ_CHECK(end >= st.delivered && end >= st.answered,
                   "answer end_seq %llu after seq %llu / end_seq %llu", (unsigned long long)end,
                   (unsigned long long)st.delivered, (unsigned long long)st.answered);
        st.answered = end;
        for (std::size_t i = 0; i < replay.size(); ++i) {
            FUZZ_CHECK(replay[i]->seq() == plan.first_seq + i, "replay frame %zu has seq %llu", i,
                       (unsigned long long)replay[i]->seq());
            check_frame(*replay[i], s.room, s.format, s.inc);
        }
        s.answered = true;
        s.state = SubRecord::State::live;
        s.next = end + 1;
        ++live_[r][s.room][static_cast<int>(s.format)];
        for (FrameRef* f : replay) keep_or_release(r, {f, f->seq(), f->format()});
        echo(r, s.room, end);
    }

    void on_deliver(unsigned r, FrameRef* frame, std::span<const SubscriberId> ids) {
        ++refs_taken_;
        ++deliver_calls_[r];
        FUZZ_CHECK(!ids.empty(), "a delivery for nobody");
        const std::uint64_t seq = frame->seq();
        const Format format = frame->format();
        unsigned room = room_count;
        for (unsigned k = 0; k < room_count; ++k)
            if (frame->tag() == names_[k]) room = k;
        FUZZ_CHECK(room < room_count, "a frame tagged with no room of this run");
        FUZZ_CHECK(ids[0] < subs_.size(), "delivery to unknown subscriber");
        const std::uint64_t inc = subs_[ids[0]].inc;  // every live subscriber of a local room: one life
        check_frame(*frame, room, format, inc);
        Stream& st = stream(r, room, inc);
        FUZZ_CHECK(seq > st.answered && seq >= st.delivered, "seq %llu after seq %llu / end_seq %llu",
                   (unsigned long long)seq, (unsigned long long)st.delivered,
                   (unsigned long long)st.answered);
        st.delivered = seq;
        FUZZ_CHECK(ids.size() == live_[r][room][static_cast<int>(format)],
                   "a delivery to %zu of %u live subscribers", ids.size(),
                   live_[r][room][static_cast<int>(format)]);
        for (SubscriberId who : ids) {
            FUZZ_CHECK(who < subs_.size(), "delivery to unknown subscriber %llu", (unsigned long long)who);
            SubRecord& s = subs_[who];
            FUZZ_CHECK(s.state == SubRecord::State::live, "delivery to a subscription that is %s",
                       s.state == SubRecord::State::ended ? "ended" : "not answered yet");
            FUZZ_CHECK(s.reactor == r && s.room == room && s.format == format && s.inc == inc,
                       "delivery to the wrong subscriber");
            FUZZ_CHECK(seq == s.next, "room %u: subscriber got seq %llu, expected %llu", room,
                       (unsigned long long)seq, (unsigned long long)s.next);
            ++s.next;  // also catches a subscriber listed twice
        }
        if (hold_) {
            // One reference per connection that will write it (frame_ref.hpp: add_ref(n) once).
            if (ids.size() > 1) frame->add_ref(static_cast<std::uint32_t>(ids.size() - 1));
            refs_taken_ += ids.size() - 1;
            for (std::size_t i = 0; i < ids.size(); ++i) keep_or_release(r, {frame, seq, format});
        } else {
            keep_or_release(r, {frame, seq, format});
        }
        echo(r, room, seq);
    }

    void on_published(unsigned r, PublisherId who, std::uint64_t seq) {
        FUZZ_CHECK(who >= 1 && who <= pubs_.size(), "ack for unknown publisher %llu",
                   (unsigned long long)who);
        const std::size_t number = who - 1;
        PubRecord& p = pubs_[number];
        FUZZ_CHECK(p.reactor == r && p.ack && !p.acked && !p.refusal_told,
                   "ack on reactor %u for publish %zu (reactor %u, ack %d, acked %d)", r, number, p.reactor,
                   p.ack, p.acked);
        FUZZ_CHECK(seq > 0, "publish failed without an allocation failure");
        FUZZ_CHECK(p.inc && seq == p.seq, "publish %zu acked as seq %llu, the owner gave it %llu", number,
                   (unsigned long long)seq, (unsigned long long)p.seq);
        p.acked = true;
        auto& [inc, prev] = last_ack_[r][p.room];
        FUZZ_CHECK(p.inc > inc || (p.inc == inc && seq > prev), "reactor %u room %u: ack seq %llu after %llu",
                   r, p.room, (unsigned long long)seq, (unsigned long long)prev);
        inc = p.inc;
        prev = seq;
    }

    void on_subscribe_refused(unsigned r, SubscriberId who, SubHandle h, std::string_view room,
                              Format format) {
        FUZZ_CHECK(limited(), "a subscription refused without a budget");
        FUZZ_CHECK(who < subs_.size(), "refusal for unknown subscriber %llu", (unsigned long long)who);
        SubRecord& s = subs_[who];
        FUZZ_CHECK(s.reactor == r, "refusal on reactor %u for a subscription of reactor %u", r, s.reactor);
        FUZZ_CHECK(s.state == SubRecord::State::pending && !s.answered,
                   "refusal for a subscription not pending");
        FUZZ_CHECK(h.index == s.handle.index && h.generation == s.handle.generation,
                   "refusal with another handle");
        FUZZ_CHECK(room == names_[s.room] && format == s.format, "refusal for another room or format");
        s.answered = true;
        s.refused = true;
        s.state = SubRecord::State::ended;  // the hub ended it
    }

    void on_publish_refused(unsigned r, PublisherId who, std::string_view room, std::string_view note) {
        FUZZ_CHECK(limited(), "a publish refused without a budget");
        FUZZ_CHECK(who >= 1 && who <= pubs_.size(), "refusal for unknown publisher %llu",
                   (unsigned long long)who);
        PubRecord& p = pubs_[who - 1];
        FUZZ_CHECK(p.reactor == r && p.report && !p.refusal_told && !p.acked && !p.sequenced,
                   "refusal on reactor %u for publish %llu (reactor %u, report %d, told %d)", r,
                   (unsigned long long)(who - 1), p.reactor, p.report, p.refusal_told);
        FUZZ_CHECK(room == names_[p.room] && note == p.note, "refusal with another room or note");
        p.refusal_told = true;
    }

private:
    struct Stream {  // per (reactor, room): the latest seq seen in a delivery and as end_seq of an answer
        std::uint64_t inc = 0;  // of this life of the room (a newer one starts a new stream)
        std::uint64_t delivered = 0;
        std::uint64_t answered = 0;
    };

    // Per reactor and room, what arrives from the owner is in the owner's order, life after life.
    Stream& stream(unsigned r, unsigned room, std::uint64_t inc) {
        Stream& st = stream_[r][room];
        FUZZ_CHECK(inc >= st.inc, "reactor %u room %u: life %llu after life %llu", r, room,
                   (unsigned long long)inc, (unsigned long long)st.inc);
        if (inc > st.inc) st = Stream{inc, 0, 0};
        return st;
    }

    unsigned owner_of(unsigned room) const { return owner_reactor(names_[room], n_); }

    // A room that appeared at its owner since the last look is a new life; one that vanished was deleted.
    // Between two looks (each handle() and each operation) at most one room is created (the one the
    // message names, and only if it did not exist), so nothing is missed.
    void observe(unsigned room) {
        const Room* now = hubs_[owner_of(room)]->owned_room(names_[room]);
        if (!now) {
            alive_[room] = false;
            ptr_[room] = nullptr;
            return;
        }
        if (!alive_[room]) {
            ++inc_[room];
            alive_[room] = true;
        } else if (ptr_[room]) {
            FUZZ_CHECK(ptr_[room] == now, "room %u replaced between two looks", room);
        }
        ptr_[room] = now;
    }

    void drain(unsigned r, std::size_t budget) {
        bus_->port(r).drain([&](unsigned from, const Message& m) { handle(r, from, m); }, budget);
    }

    // One message on reactor r. A publish is followed into its owner: its room, life and seq are known
    // before any callback can show it, and whether it was taken or refused right after.
    void handle(unsigned r, unsigned from, const Message& m) {
        if (static_cast<MsgKind>(m.kind) != MsgKind::publish) {
            hubs_[r]->handle(from, m);
            observe_all();
            return;
        }
        const auto* raw = static_cast<const FrameRef*>(m.ptr);
        unsigned room = room_count;
        for (unsigned k = 0; k < room_count; ++k)
            if (raw->tag() == names_[k]) room = k;
        FUZZ_CHECK(room < room_count && owner_of(room) == r,
                   "a publish handled by a reactor that does not own it");
        const std::size_t number = publish_number(as_text(raw->payload()));
        PubRecord& p = pubs_[number];
        FUZZ_CHECK(p.room == room && !p.sequenced && !p.refused,
                   "publish %zu handled twice or for another room", number);
        observe(room);
        const Room* before = hubs_[r]->owned_room(names_[room]);
        if (!before) {  // the owner creates it, unless it refuses
            ++inc_[room];
            alive_[room] = true;
        }
        p.inc = inc_[room];
        p.seq = before ? before->last_seq() + 1 : 1;
        std::vector<std::int64_t>& by_seq = seq_pub_[{room, p.inc}];
        if (by_seq.size() <= p.seq) by_seq.resize(p.seq + 1, -1);
        FUZZ_CHECK(by_seq[p.seq] < 0, "room %u life %llu seq %llu is publish %lld and %zu", room,
                   (unsigned long long)p.inc, (unsigned long long)p.seq, (long long)by_seq[p.seq], number);
        by_seq[p.seq] = static_cast<std::int64_t>(number);
        const std::uint64_t published = hubs_[r]->stats().published;
        hubs_[r]->handle(from, m);  // callbacks may publish: pubs_ may move
        PubRecord& q = pubs_[number];
        if (hubs_[r]->stats().published == published + 1) {
            q.sequenced = true;
            // create() made room for the room and its first message: it is not evicted at once.
            FUZZ_CHECK(before || hubs_[r]->owned_room(names_[room]),
                       "room %u created by a publish and deleted at once", room);
        } else {
            FUZZ_CHECK(!before && limited(), "publish %zu neither sequenced nor refusable", number);
            FUZZ_CHECK(!q.acked, "a refused publish was acked");
            seq_pub_[{room, q.inc}][q.seq] = -1;
            --inc_[room];
            alive_[room] = false;
            q.refused = true;
            q.seq = 0;
            q.inc = 0;
        }
        observe_all();
    }

    std::size_t publish_number(std::string_view payload) const {
        std::size_t number = 0, i = 1;
        FUZZ_CHECK(payload.size() >= 3 && payload[0] == '#', "raw payload without publish number");
        while (i < payload.size() && payload[i] >= '0' && payload[i] <= '9' && number < pubs_.size())
            number = number * 10 + static_cast<std::size_t>(payload[i++] - '0');
        FUZZ_CHECK(i < payload.size() && payload[i] == ':' && number < pubs_.size(),
                   "raw payload not a publish");
        return number;
    }

    bool wake_readable(unsigned r) {
        pollfd p{bus_->port(r).wake_fd(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }

    bool quiet() const {
        for (unsigned r = 0; r < n_; ++r)
            if (bus_->port(r).pending() || bus_->port(r).overflow_count()) return false;
        return true;
    }

    std::uint64_t owner_last_seq(unsigned room) const {
        const Room* owned = hubs_[owner_reactor(names_[room], n_)]->owned_room(names_[room]);
        return owned ? owned->last_seq() : 0;
    }

    std::string envelope_of(unsigned room, std::uint64_t seq, const PubRecord& p) const {
        const auto payload = as_bytes(p.payload);
        const DataKind kind = classify_payload(p.op, payload);
        std::string out(envelope_bytes(names_[room], seq, kind, payload), '\0');
        const char* end = write_envelope(out.data(), names_[room], seq, kind, payload);
        FUZZ_CHECK(end == out.data() + out.size(), "envelope size");
        return out;
    }

    // A frame of `room` in its life `inc`.
    void check_frame(const FrameRef& f, unsigned room, Format format, std::uint64_t inc) {
        const std::uint64_t seq = f.seq();
        FUZZ_CHECK(seq > 0, "a room frame without seq");
        FUZZ_CHECK(f.format() == format, "a %s frame for a %s subscriber",
                   f.format() == Format::raw ? "raw" : "envelope",
                   format == Format::raw ? "raw" : "envelope");
        FUZZ_CHECK(f.tag() == names_[room], "frame tagged '%.*s', room %u", int(f.tag().size()),
                   f.tag().data(), room);
        const auto wire = f.wire();
        FUZZ_CHECK(wire.size() == f.header_len() + f.payload().size() && f.header_len() >= 2);
        FUZZ_CHECK(std::to_integer<unsigned>(wire[0]) == (0x80u | static_cast<unsigned>(f.opcode())),
                   "first header byte %#x", std::to_integer<unsigned>(wire[0]));
        const std::string_view payload = as_text(f.payload());
        auto it = seq_pub_.find({room, inc});
        FUZZ_CHECK(it != seq_pub_.end() && seq < it->second.size() && it->second[seq] >= 0,
                   "room %u life %llu seq %llu is no publish", room, (unsigned long long)inc,
                   (unsigned long long)seq);
        const std::size_t number = static_cast<std::size_t>(it->second[seq]);
        const PubRecord& p = pubs_[number];
        FUZZ_CHECK(!p.refused && p.inc == inc && p.seq == seq, "frame of a publish refused or elsewhere");
        if (format == Format::raw) {
            // "#<number>:" names the publish.
            FUZZ_CHECK(publish_number(payload) == number, "raw frame of room %u seq %llu is another publish",
                       room, (unsigned long long)seq);
            FUZZ_CHECK(payload == p.payload && f.opcode() == p.op, "raw frame differs from publish %zu",
                       number);
            return;
        }
        FUZZ_CHECK(f.opcode() == ws::Opcode::text, "envelope frames are text");
        FUZZ_CHECK(payload == envelope_of(room, seq, p),
                   "envelope of room %u seq %llu differs from publish %zu", room, (unsigned long long)seq,
                   number);
    }

    void keep_or_release(unsigned r, const Held& h) {
        if (!hold_) {
            ++outstanding_[h.frame];
            release(h);
            return;
        }
        ++outstanding_[h.frame];
        held_[r].push_back(h);
    }

    void release(const Held& h) {
        auto it = outstanding_.find(h.frame);
        FUZZ_CHECK(it != outstanding_.end() && it->second > 0, "released a reference the sinks do not hold");
        // The frame must still be intact: read it (ASan reports a frame freed too early) and check that
        // nobody else dropped the references we still hold.
        FUZZ_CHECK(h.frame->seq() == h.seq && h.frame->format() == h.format && !h.frame->wire().empty());
        FUZZ_CHECK(h.frame->ref_count() >= it->second, "frame seq %llu: %u references, the sinks hold %u",
                   (unsigned long long)h.seq, h.frame->ref_count(), it->second);
        if (--it->second == 0) outstanding_.erase(it);
        ++refs_released_;
        h.frame->release();
    }

    // A connection handler publishing from inside a callback (hub.hpp allows publish()).
    void echo(unsigned r, unsigned room, std::uint64_t seq) {
        if (!echo_budget_) return;
        --echo_budget_;
        publish(r, static_cast<unsigned>((room + seq) % room_count),
                seq & 2 ? ws::Opcode::binary : ws::Opcode::text, seq & 1, seq & 4, "echo");
    }

    unsigned n_;
    std::uint32_t history_;
    bool hold_;
    unsigned echo_budget_;
    std::size_t budget_;  // --room-memory, all reactors
    std::vector<std::string> names_;
    // Declaration order is destruction order reversed: hubs go first, then their sinks, then the bus.
    std::unique_ptr<Bus> bus_;
    std::vector<std::unique_ptr<Sink>> sinks_;
    std::vector<std::unique_ptr<Hub>> hubs_;

    std::vector<SubRecord> subs_;  // index = SubscriberId
    std::array<std::vector<std::uint32_t>, connections> conns_;
    std::array<std::set<std::uint64_t>, max_reactors> issued_;
    std::vector<PubRecord> pubs_;  // index + 1 = PublisherId
    // Per (room, life), per seq: publish number or -1.
    std::map<std::pair<unsigned, std::uint64_t>, std::vector<std::int64_t>> seq_pub_;
    std::array<std::uint64_t, room_count> inc_{};  // each room's current (or last) life, 1 = first
    std::array<bool, room_count> alive_{};         // its owner holds it now
    std::array<const Room*, room_count> ptr_{};    // as last seen
    std::uint32_t live_[max_reactors][room_count][format_count] = {};
    Stream stream_[max_reactors][room_count] = {};
    std::pair<std::uint64_t, std::uint64_t> last_ack_[max_reactors][room_count] = {};  // (life, seq)
    std::uint64_t deliver_calls_[max_reactors] = {};
    bool asleep_[max_reactors] = {};
    std::array<std::deque<Held>, max_reactors> held_;
    std::unordered_map<const FrameRef*, std::uint32_t> outstanding_;  // references the sinks hold now
    std::uint64_t refs_taken_ = 0;
    std::uint64_t refs_released_ = 0;
};

void Sink::on_subscribed(SubscriberId who, SubHandle h, std::string_view room, Format format,
                         const ReplayPlan& plan, std::span<FrameRef* const> replay) noexcept {
    world_.on_subscribed(reactor_, who, h, room, format, plan, replay);
}
void Sink::on_deliver(FrameRef* frame, std::span<const SubscriberId> subs) noexcept {
    world_.on_deliver(reactor_, frame, subs);
}
void Sink::on_published(PublisherId who, std::uint64_t seq) noexcept {
    world_.on_published(reactor_, who, seq);
}
void Sink::on_subscribe_refused(SubscriberId who, SubHandle h, std::string_view room,
                                Format format) noexcept {
    world_.on_subscribe_refused(reactor_, who, h, room, format);
}
void Sink::on_publish_refused(PublisherId who, std::string_view room, std::string_view note) noexcept {
    world_.on_publish_refused(reactor_, who, room, note);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::InputReader in(data, size);
    const std::uint8_t first = in.byte();
    const unsigned reactors = 2 + (first & 15) % 3;
    const std::uint8_t config = in.byte();
    const unsigned echo_budget = in.byte();
    World w(reactors, history_choices[config & 7], ring_choices[(config >> 3) & 3], config & 0x20,
            config & 0x80, echo_budget, budget_choices[first >> 4]);
    const bool abrupt = config & 0x40;

    while (in.remaining()) {
        switch (in.byte() % 9) {
            case 0: {
                const unsigned conn = in.byte() % connections;
                const unsigned room = in.byte() % room_count;
                const std::uint8_t flags = in.byte();
                w.subscribe(conn, room, flags, in.byte());
                break;
            }
            case 1: {
                const unsigned conn = in.byte() % connections;
                w.unsubscribe_pick(conn, in.byte());
                break;
            }
            case 2: {
                const unsigned conn = in.byte() % connections;
                const unsigned room = in.byte() % room_count;
                const std::uint8_t flags = in.byte();
                const std::string_view bytes = fuzz::as_chars(in.bytes(in.byte()));
                w.publish(w.reactor_of(conn), room, flags & 2 ? ws::Opcode::binary : ws::Opcode::text,
                          flags & 1, flags & 4, bytes);
                break;
            }
            case 3:
                w.disconnect(in.byte() % connections);
                break;
            case 4: {
                const unsigned r = in.byte() % w.reactors();
                const std::uint8_t budget = in.byte();
                w.pump(r, budget ? budget : SIZE_MAX);
                break;
            }
            case 5:
                w.flush(in.byte() % w.reactors());
                break;
            case 6: {
                const unsigned r = in.byte() % w.reactors();
                w.write(r, in.byte());
                break;
            }
            case 7:
                w.settle();
                w.check_quiet();
                break;
            case 8:
                w.sleep(in.byte() % w.reactors());
                break;
        }
        w.observe_all();
        w.check_tables();
    }
    w.finish(abrupt);
    return 0;
}
