// Rooms on the reactor: the /ws control protocol, raw subscribers and publishers, POST /publish, and
// the HubSink side of the room engine (src/pubsub/hub.hpp): subscription answers, deliveries with
// slow-consumer control, publish acknowledgements. /metrics.
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

#include "http/handshake.hpp"
#include "pubsub/control.hpp"
#include "pubsub/room.hpp"
#include "server/http_responses.hpp"
#include "server/worker.hpp"
#include "simd/kernels.hpp"

namespace roomcast::server {
namespace {

// Constant-time comparison (the token's length is not secret; its bytes are).
bool token_equals(std::string_view given, std::string_view want) noexcept {
    if (given.size() != want.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
        diff |= static_cast<unsigned char>(given[i] ^ want[i]);
    return diff == 0;
}

// Value of `name` in a query string (no percent-decoding: tokens and numbers need none).
bool query_param(std::string_view query, std::string_view name, std::string_view& value) noexcept {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view item = query.substr(0, amp);
        const auto eq = item.find('=');
        if (item.substr(0, eq) == name) {
            value = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
            return true;
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return false;
}

enum class TokenCheck { ok, missing, wrong };

// The owner of a room could not create it within --room-memory (pubsub/room_table.hpp): the answer to
// the subscribe or publish that wanted it. /ws: an error reply with this code; POST: 503; raw publisher:
// close 1013 (Try Again Later); raw subscriber: 503 instead of the 101.
constexpr std::string_view room_limit_code = "room_memory_limit";
constexpr std::string_view room_limit_message = "room memory limit reached (--room-memory)";

// Key of a pending /ws subscription in Worker::sub_ids_.
std::uint64_t sub_key(pubsub::SubHandle h) noexcept { return (std::uint64_t{h.generation} << 32) | h.index; }

// Authorization: Bearer T, or ?token=T (browsers cannot set headers on WebSockets).
TokenCheck check_token(const http::Request& req, std::string_view want) noexcept {
    if (want.empty()) return TokenCheck::ok;
    std::string_view given;
    bool present = false;
    if (req.has_header("authorization")) {
        std::string_view v = req.header("authorization");
        if (v.size() > 7 && http::iequals(v.substr(0, 7), "bearer ")) {
            given = v.substr(7);
            while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
            present = true;
        }
    }
    if (!present) present = query_param(req.query, "token", given);
    if (!present) return TokenCheck::missing;
    return token_equals(given, want) ? TokenCheck::ok : TokenCheck::wrong;
}

}  // namespace

Connection* Worker::lookup(std::uint64_t who) noexcept {
    const auto index = static_cast<std::uint32_t>(who);
    if (index >= slots_used_) return nullptr;
    Connection& c = slot(index);
    if (c.generation != static_cast<std::uint32_t>(who >> 32) || c.dead || c.state == ConnState::free) return nullptr;
    return &c;
}

// Returns false only while a POST body is still arriving (the caller keeps the bytes).
bool Worker::route_rooms(Connection& c, const http::Request& req, std::size_t available, std::size_t& consumed) noexcept {
    auto deny = [&](TokenCheck t) {
        c.keep_alive = false;
        stats_.http_errors.add(1);
        if (t == TokenCheck::missing)
            out_http(c, 401, "WWW-Authenticate: Bearer\r\n", "text/plain", "token required (Authorization: Bearer or ?token=)\n");
        else
            out_http(c, 403, "", "text/plain", "wrong token\n");
    };
    auto bad = [&](int status, std::string_view why) {
        c.keep_alive = false;
        stats_.http_errors.add(1);
        out_http(c, status, status == 405 ? "Allow: GET\r\n" : "", "text/plain", std::string(why) + "\n");
    };
    const bool is_ws = req.path == "/ws";
    const bool is_sub = req.path.starts_with("/ws/");
    std::string_view room;
    if (!is_ws) {
        room = req.path.substr(is_sub ? 4 : 9);
        if (const pubsub::RoomNameError e = pubsub::validate_room_name(room); e != pubsub::RoomNameError::none) {
            bad(400, pubsub::describe(e));
            return true;
        }
    }
    if (req.method == "POST" && !is_ws && !is_sub) return post_publish(c, req, room, available, consumed);
    if (req.method != "GET") {
        bad(405, "method not allowed: use GET with a WebSocket upgrade (or POST /publish/{room})");
        return true;
    }
    if (!http::wants_websocket(req)) {
        c.keep_alive = false;
        out_http(c, 426, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", "text/plain",
                 "426 upgrade required: this is a WebSocket endpoint\n");
        return true;
    }
    const TokenCheck sub_tok = check_token(req, cfg_.subscribe_token);
    const TokenCheck pub_tok = check_token(req, cfg_.publish_token);
    std::optional<std::uint64_t> since;
    if (is_sub) {
        if (sub_tok != TokenCheck::ok) {
            deny(sub_tok);
            return true;
        }
        std::string_view v;
        if (query_param(req.query, "since", v)) {
            std::uint64_t n = 0;
            auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) {
                bad(400, "since must be a sequence number (0..2^64-1)");
                return true;
            }
            since = n;
        }
    } else if (!is_ws) {
        if (pub_tok != TokenCheck::ok) {
            deny(pub_tok);
            return true;
        }
    } else if (sub_tok != TokenCheck::ok && pub_tok != TokenCheck::ok) {
        // /ws does both; a token good for neither is refused at the door.
        deny(sub_tok == TokenCheck::wrong || pub_tok == TokenCheck::wrong ? TokenCheck::wrong : TokenCheck::missing);
        return true;
    }
    auto* rooms = new (std::nothrow) ConnRooms();
    if (!rooms) {
        bad(503, "out of memory");
        return true;
    }
    // A raw subscriber's 101 waits for the owner's answer: it then carries the room's seq, and every
    // message published after the client saw the 101 reaches it.
    if (!upgrade(c, req, is_ws ? Route::control : (is_sub ? Route::raw_sub : Route::raw_pub),
                 is_sub ? &rooms->pending_101 : nullptr)) {
        delete rooms;
        return true;
    }
    if (c.dead) {
        delete rooms;
        return true;
    }
    c.rooms = rooms;
    rooms->can_subscribe = sub_tok == TokenCheck::ok;
    rooms->can_publish = pub_tok == TokenCheck::ok;
    if (is_sub) {
        const pubsub::SubHandle h = hub_->subscribe(who_of(c), room, pubsub::Format::raw, since, false, takes_shared_deflate(c));
        if (!h.valid()) {
            fail_ws(c, 1011, "out of memory");
            return true;
        }
        rooms->subs.push_back({std::string(room), h});
        rooms->awaiting_subscribe = true;
        c.read_paused = true;  // nothing is read until the 101 is out
        update_events(c);
    } else if (!is_ws) {
        rooms->publish_room = std::string(room);
    }
    return true;
}

// POST /publish/{room}: the body (Content-Length) is published; the answer waits for the owner's seq.
bool Worker::post_publish(Connection& c, const http::Request& req, std::string_view room, std::size_t available,
                          std::size_t& consumed) noexcept {
    auto bad = [&](int status, std::string_view why, std::string_view extra = {}) {
        c.keep_alive = false;
        stats_.http_errors.add(1);
        out_http(c, status, extra, "text/plain", std::string(why) + "\n");
        return true;
    };
    if (const TokenCheck t = check_token(req, cfg_.publish_token); t != TokenCheck::ok) {
        if (t == TokenCheck::missing)
            return bad(401, "token required (Authorization: Bearer or ?token=)", "WWW-Authenticate: Bearer\r\n");
        return bad(403, "wrong token");
    }
    if (req.has_header("transfer-encoding")) return bad(411, "send the body with Content-Length (no chunked encoding)");
    if (req.header_count_of("content-length") != 1) return bad(411, "Content-Length required");
    const std::string_view cl = req.header("content-length");
    std::uint64_t len = 0;
    auto [ptr, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), len);
    if (cl.empty() || ec != std::errc() || ptr != cl.data() + cl.size()) return bad(400, "bad Content-Length");
    if (len > cfg_.max_message_bytes) return bad(413, "body over --max-message-size");
    if (available < req.head_bytes + len) return false;  // wait for the rest of the body
    consumed = req.head_bytes + static_cast<std::size_t>(len);
    const std::byte* body = req_base_ + req.head_bytes;
    // Text if it is UTF-8 (JSON bodies are), else binary: subscribers get the opcode that fits.
    const bool text = simd::validate_utf8(body, len, simd::utf8_accept) == simd::utf8_accept;
    if (!c.rooms && !(c.rooms = new (std::nothrow) ConnRooms())) return bad(503, "out of memory");
    if (!hub_->publish(room, text ? ws::Opcode::text : ws::Opcode::binary, {body, static_cast<std::size_t>(len)},
                       who_of(c), true, {}))
        return bad(503, "out of memory");
    stats_.published.add(1);
    c.rooms->publish_room = std::string(room);
    c.rooms->awaiting_publish = true;
    c.read_paused = true;  // one request at a time: the next is read after this answer
    update_events(c);
    return true;
}

void Worker::on_published(pubsub::PublisherId who, std::uint64_t seq) noexcept {
    Connection* cp = lookup(who);
    if (!cp || !cp->rooms || !cp->rooms->awaiting_publish) return;
    Connection& c = *cp;
    if (seq == 0) {
        c.keep_alive = false;
        answer_post(c, 503, "publish failed (out of memory)\n");
        return;
    }
    const pubsub::PublishedReply r{c.rooms->publish_room, seq};
    std::string body(pubsub::reply_bytes(r), '\0');
    pubsub::write_reply(body.data(), r);
    body += '\n';
    answer_post(c, 200, body);
}

// The answer to a POST /publish waiting for its room's owner; then the next pipelined request, if any.
void Worker::answer_post(Connection& c, int status, std::string_view body) noexcept {
    c.rooms->awaiting_publish = false;
    c.read_paused = false;
    if (status == 200) {
        out_http(c, 200, "Cache-Control: no-store\r\n", "application/json", body);
    } else {
        stats_.http_errors.add(1);
        out_http(c, status, "", "text/plain", body);
    }
    finish_response(c);
    flush(c);
    if (c.dead || c.state != ConnState::http) return;
    update_events(c);
    if (c.head && !c.head->empty()) {
        handle_http(c, nullptr, 0);  // a pipelined request was waiting
        if (!c.dead) flush(c);
    }
}

void Worker::on_publish_refused(pubsub::PublisherId who, std::string_view, std::string_view note) noexcept {
    Connection* cp = lookup(who);
    if (!cp || !cp->rooms) return;
    Connection& c = *cp;
    if (c.state == ConnState::http) {
        if (c.rooms->awaiting_publish) answer_post(c, 503, std::string(room_limit_message) + "\n");
        return;
    }
    if (c.state != ConnState::websocket) return;  // already closing: later answers find nobody to tell
    switch (c.route) {
    case Route::control:  // the connection stays open, as after any error reply; `note` is the pub's id
        control_error(c, room_limit_code, room_limit_message, note);
        flush(c);
        return;
    case Route::raw_pub:  // nobody to answer on a raw publisher: it is closed, to retry later
        fail_ws(c, 1013, room_limit_message);
        return;
    default:
        return;
    }
}

void Worker::on_subscribe_refused(pubsub::SubscriberId who, pubsub::SubHandle h, std::string_view,
                                  pubsub::Format) noexcept {
    std::string id;
    if (auto it = sub_ids_.find(sub_key(h)); it != sub_ids_.end()) {
        id = std::move(it->second);
        sub_ids_.erase(it);
    }
    Connection* cp = lookup(who);
    if (!cp || !cp->rooms) return;
    Connection& c = *cp;
    std::vector<ConnRooms::Sub>& subs = c.rooms->subs;  // the hub has ended the subscription already
    for (std::size_t i = 0; i < subs.size(); ++i) {
        if (subs[i].handle.index == h.index && subs[i].handle.generation == h.generation) {
            subs.erase(subs.begin() + static_cast<long>(i));
            break;
        }
    }
    if (c.state == ConnState::http && c.rooms->awaiting_subscribe) {
        // A raw subscriber's 101 waits for this answer: it gets a 503 instead, and the connection closes.
        c.rooms->awaiting_subscribe = false;
        std::string().swap(c.rooms->pending_101);
        c.read_paused = false;
        c.keep_alive = false;
        stats_.http_errors.add(1);
        out_http(c, 503, "", "text/plain", std::string(room_limit_message) + "\n");
        finish_response(c);
        flush(c);
        if (!c.dead) update_events(c);
        return;
    }
    if (c.state != ConnState::websocket || c.route != Route::control) return;
    control_error(c, room_limit_code, room_limit_message, id);
    flush(c);
}


bool Worker::on_room_message(Connection& c, ws::Opcode op, std::span<std::byte> payload) noexcept {
    switch (c.route) {
    case Route::raw_pub:
        if (!hub_->publish(c.rooms->publish_room, op, payload, who_of(c), false, {})) {
            fail_ws(c, 1011, "out of memory");
            return false;
        }
        stats_.published.add(1);
        return true;
    case Route::control:
        if (op != ws::Opcode::text) {
            control_error(c, "bad_request", "binary messages are not part of the control protocol", {});
            return !c.dead;
        }
        on_control(c, payload);
        return !c.dead;
    default:
        return true;  // raw subscribers only listen; what they send is ignored
    }
}

template <class Reply>
void Worker::send_reply(Connection& c, const Reply& r) noexcept {
    char stack[512];
    const std::size_t n = pubsub::reply_bytes(r);
    if (n <= sizeof stack) {
        pubsub::write_reply(stack, r);
        out_frame(c, static_cast<std::uint8_t>(ws::Opcode::text), reinterpret_cast<const std::byte*>(stack), n);
        return;
    }
    std::string buf(n, '\0');
    pubsub::write_reply(buf.data(), r);
    out_frame(c, static_cast<std::uint8_t>(ws::Opcode::text), reinterpret_cast<const std::byte*>(buf.data()), n);
    flush(c);  // buf goes away
}

void Worker::control_error(Connection& c, std::string_view code, std::string_view message, std::string_view id) noexcept {
    send_reply(c, pubsub::ErrorReply{code, message, id});
}

void Worker::on_control(Connection& c, std::span<std::byte> text) noexcept {
    const std::string_view t(reinterpret_cast<const char*>(text.data()), text.size());
    const pubsub::ControlRequest req = pubsub::parse_control(t);
    if (req.error != pubsub::ControlError::none) {
        control_error(c, "bad_request", req.message(), req.id);
        return;
    }
    ConnRooms& rooms = *c.rooms;
    auto find = [&](std::string_view room) {
        for (std::size_t i = 0; i < rooms.subs.size(); ++i)
            if (rooms.subs[i].room == room) return static_cast<long>(i);
        return -1L;
    };
    switch (req.op) {
    case pubsub::Op::sub: {
        if (!rooms.can_subscribe) return control_error(c, "forbidden", "subscribing needs --subscribe-token", req.id);
        if (find(req.room) >= 0) return control_error(c, "already_subscribed", "already subscribed to this room", req.id);
        if (rooms.subs.size() >= cfg_.max_rooms_per_connection)
            return control_error(c, "too_many_rooms", "subscriptions over --max-rooms-per-connection", req.id);
        std::optional<std::uint64_t> since;
        if (req.has_since) since = req.since;
        const pubsub::SubHandle h =
            hub_->subscribe(who_of(c), req.room, pubsub::Format::envelope, since, req.last, takes_shared_deflate(c));
        if (!h.valid()) return control_error(c, "internal", "out of memory", req.id);
        if (!req.id.empty()) sub_ids_[sub_key(h)] = std::string(req.id);
        rooms.subs.push_back({std::string(req.room), h});
        return;  // "subscribed" comes with the owner's answer (on_subscribed)
    }
    case pubsub::Op::unsub: {
        const long i = find(req.room);
        if (i < 0) return control_error(c, "not_subscribed", "not subscribed to this room", req.id);
        hub_->unsubscribe(rooms.subs[static_cast<std::size_t>(i)].handle);
        sub_ids_.erase(sub_key(rooms.subs[static_cast<std::size_t>(i)].handle));
        rooms.subs.erase(rooms.subs.begin() + i);
        send_reply(c, pubsub::UnsubscribedReply{req.room, req.id});
        return;
    }
    case pubsub::Op::pub: {
        if (!rooms.can_publish) return control_error(c, "forbidden", "publishing needs --publish-token", req.id);
        const std::span<const std::byte> data(reinterpret_cast<const std::byte*>(req.data.data()), req.data.size());
        if (!hub_->publish(req.room, ws::Opcode::text, data, who_of(c), false, req.id))
            return control_error(c, "internal", "out of memory", req.id);
        stats_.published.add(1);
        return;
    }
    case pubsub::Op::unknown:
        break;
    }
    control_error(c, "bad_request", "unknown op", req.id);
}

void Worker::on_subscribed(pubsub::SubscriberId who, pubsub::SubHandle h, std::string_view room, pubsub::Format format,
                           const pubsub::ReplayPlan& plan, std::span<pubsub::FrameRef* const> replay) noexcept {
    std::string id;
    if (auto it = sub_ids_.find(sub_key(h)); it != sub_ids_.end()) {
        id = std::move(it->second);
        sub_ids_.erase(it);
    }
    Connection* cp = lookup(who);
    const bool pending_upgrade = cp && cp->state == ConnState::http && cp->rooms && cp->rooms->awaiting_subscribe;
    if (!cp || (cp->state != ConnState::websocket && !pending_upgrade)) {
        for (pubsub::FrameRef* f : replay) f->release(1);
        return;
    }
    Connection& c = *cp;
    if (pending_upgrade) {
        // The deferred 101 of a raw subscriber, with where the room stands.
        char extra[160];
        const int n = std::snprintf(extra, sizeof extra, "X-Roomcast-Seq: %llu\r\nX-Roomcast-Replayed: %zu\r\nX-Roomcast-Gap: %s\r\n\r\n",
                                    static_cast<unsigned long long>(plan.end_seq), replay.size(), plan.gap ? "true" : "false");
        c.rooms->pending_101.append(extra, static_cast<std::size_t>(n));
        out_copy(c, c.rooms->pending_101.data(), c.rooms->pending_101.size());
        flush(c);
        std::string().swap(c.rooms->pending_101);
        c.rooms->awaiting_subscribe = false;
        if (c.dead) {
            for (pubsub::FrameRef* f : replay) f->release(1);
            return;
        }
        complete_upgrade(c, Route::raw_sub);
        c.read_paused = false;
        update_events(c);
        if (c.head && !c.head->empty()) {  // frames the client sent right after its request
            handle_ws(c, c.head->data(), c.head->size());
            pool_.release(c.head);
            c.head = nullptr;
            if (!c.dead) flush(c);
            if (c.dead || c.state != ConnState::websocket) {
                for (pubsub::FrameRef* f : replay) f->release(1);
                return;
            }
        }
    }
    if (format == pubsub::Format::envelope) {
        send_reply(c, pubsub::SubscribedReply{room, plan.end_seq, replay.size(), plan.gap, id});
        flush(c);  // the reply goes before the replayed frames
    }
    const bool zshare = takes_shared_deflate(c);
    for (pubsub::FrameRef* f : replay) {
        // A replayed message that was compressed at publish goes out compressed (the plain reference is
        // given back); older ones go out plain.
        if (zshare && f->deflated()) {
            pubsub::FrameRef* z = f->deflated();
            z->add_ref();
            f->release(1);
            f = z;
        }
        LocalFrame* lf = frames_.wrap(f);
        if (!lf) {
            f->release(1);
            continue;
        }
        deliver(c, lf);
        if (lf->users == 0) frames_.drop(lf);
    }
}

// Compress once for broadcast (RFC 7692 §7.1.1.1 server_no_context_takeover, which the server always
// agrees to unless --deflate-context-takeover). The owner reactor of a room compresses each message once
// for the whole process (compress() below, called by the hub at publish while the room has a subscriber
// that takes compressed frames) and attaches the result to the frame every reactor receives. A frame
// without one (published before the first such subscriber, or a replay of an older message) is
// compressed here instead, once per reactor. Either way the compressed frame is shared by every
// subscriber here that negotiated deflate with a window at least as large.
bool Worker::takes_shared_deflate(const Connection& c) const noexcept {
    const ws::DeflateConfig& dc = dpool_->config();
    return c.dfl && c.dfl->can_share(dc.window_bits, dc.min_size, dc);
}

pubsub::FrameRef* Worker::compress(const pubsub::FrameRef& frame) noexcept {
    const ws::DeflateConfig& dc = dpool_->config();
    if (frame.payload().size() < dc.min_size) return nullptr;
    deflated_.clear();
    if (!ws::compress_once(*dpool_, frame.payload(), dc.window_bits, deflated_)) return nullptr;
    pubsub::FrameRef* z =
        pubsub::FrameRef::make(frame.opcode(), deflated_.span(), 0x4, frame.seq(), frame.tag(), frame.format());
    if (z) stats_.deflate_shared.add(1);
    return z;
}

// The compressed form of `frame` for this reactor's subscribers: the owner's sibling (one more
// reference, taken once per reactor) or, failing that, one compressed here. nullptr: send it plain.
LocalFrame* Worker::shared_deflated(pubsub::FrameRef* frame) noexcept {
    pubsub::FrameRef* z = frame->deflated();
    if (z) z->add_ref();
    else if (!(z = compress(*frame))) return nullptr;
    LocalFrame* zf = frames_.wrap(z);
    if (!zf) z->release(1);
    return zf;
}

void Worker::on_deliver(pubsub::FrameRef* frame, std::span<const pubsub::SubscriberId> subs) noexcept {
    LocalFrame* lf = frames_.wrap(frame);
    if (!lf) {
        frame->release(1);
        return;
    }
    LocalFrame* zf = nullptr;
    bool tried = false;
    const ws::DeflateConfig& dc = dpool_->config();
    for (pubsub::SubscriberId who : subs) {
        Connection* c = lookup(who);
        if (!c) continue;
        if (c->dfl && c->dfl->can_share(dc.window_bits, frame->payload().size(), dc)) {
            if (!tried) {
                tried = true;
                zf = shared_deflated(frame);
            }
            if (zf) {
                deliver(*c, zf);
                continue;
            }
        }
        deliver(*c, lf);
    }
    if (lf->users == 0) frames_.drop(lf);
    if (zf && zf->users == 0) frames_.drop(zf);
}

// Queues one room frame for a subscriber; the write happens at the end of the loop turn, one sendmsg
// for everything the turn brought it. A subscriber past --max-backlog never slows anyone else.
void Worker::deliver(Connection& c, LocalFrame* lf) noexcept {
    if (c.dead || c.state != ConnState::websocket) return;
    OutQueue* q = queue_of(c);
    if (!q) {
        close_now(c);
        return;
    }
    const std::size_t size = lf->frame->wire().size();
    if (cfg_.slow_consumer == SlowConsumer::conflate && !c.conflating && q->bytes() + size > cfg_.max_backlog_bytes)
        c.conflating = true;  // until its queue has drained completely
    if (c.conflating) {
        // Conflation: once past --max-backlog and until it has caught up, only the newest pending
        // message of each room is kept: older unsent frames of this room make way for this one.
        const std::string_view tag = lf->frame->tag();
        const pubsub::Format fmt = lf->frame->format();
        const std::size_t before = q->segments();
        q->drop_unstarted(
            [&](const Segment& s) { return s.shared && s.shared->frame->format() == fmt && s.shared->frame->tag() == tag; },
            pool_, frames_);
        stats_.dropped.add(before - q->segments());
    }
    if (q->bytes() + size > cfg_.max_backlog_bytes) {
        switch (cfg_.slow_consumer) {
        case SlowConsumer::disconnect: {
            stats_.slow_disconnects.add(1);
            // What it has not started to receive is dropped; a frame already part-written is finished.
            q->drop_unstarted([](const Segment&) { return true; }, pool_, frames_);
            char reason[96];
            std::snprintf(reason, sizeof reason, "slow consumer: send backlog over --max-backlog (%zu bytes)",
                          cfg_.max_backlog_bytes);
            fail_ws(c, 1008, reason);
            return;
        }
        case SlowConsumer::drop:
        case SlowConsumer::conflate:  // other rooms' pending frames fill the backlog: skip this one
            stats_.dropped.add(1);
            return;  // the subscriber sees the seq gap
        }
    }
    if (!q->append_frame(lf)) {
        close_now(c);
        return;
    }
    stats_.deliveries.add(1);
    if (!c.dirty) {
        c.dirty = true;
        dirty_.push_back(&c);
    }
}

void Worker::flush_dirty() noexcept {
    for (Connection* c : dirty_) {
        c->dirty = false;
        if (!c->dead && !queue_batched(*c)) flush_queue(*c);
    }
    dirty_.clear();
}

// Ends every subscription of a closing connection. The hub is told after this turn's inbox drain
// (a close can happen inside a HubSink callback, where unsubscribe() is not allowed).
void Worker::release_rooms(Connection& c) noexcept {
    if (!c.rooms) return;
    for (const ConnRooms::Sub& s : c.rooms->subs) {
        deferred_unsubs_.push_back(s.handle);
        sub_ids_.erase(sub_key(s.handle));
    }
    delete c.rooms;
    c.rooms = nullptr;
}

// Prometheus text: every counter summed over the reactors (relaxed reads; /metrics is not a hot path).
std::string Worker::metrics_text() {
    const auto sum = [this](auto get) {
        std::uint64_t total = 0;
        for (const Worker* w : shared_.workers) total += get(*w);
        return total;
    };
    const auto stat = [&](util::OwnedCounter WorkerStats::*f) {
        return sum([f](const Worker& w) { return (w.stats().*f).load(); });
    };
    const auto room = [&](std::atomic<std::uint64_t> pubsub::RoomTableStats::*f) {
        return sum([f](const Worker& w) -> std::uint64_t {
            return w.hub_ ? (w.hub_->rooms().stats().*f).load(std::memory_order_relaxed) : 0;
        });
    };
    std::string out;
    out.reserve(4096);
    const auto metric = [&out](const char* name, const char* type, const char* help, std::uint64_t value) {
        char num[24];
        std::snprintf(num, sizeof num, "%llu", static_cast<unsigned long long>(value));
        out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name);
        out.append(" ").append(type).append("\n").append(name).append(" ").append(num).append("\n");
    };
    metric("roomcast_websockets", "gauge",
           "Open WebSocket connections.",
           sum([](const Worker& w) -> std::uint64_t { return w.websocket_count(); }));
    metric("roomcast_sockets", "gauge",
           "Accepted TCP connections not yet closed.",
           sum([](const Worker& w) -> std::uint64_t { return w.connection_count(); }));
    metric("roomcast_messages_received_total", "counter",
           "Data messages received.",
           stat(&WorkerStats::messages_in));
    metric("roomcast_published_total", "counter",
           "Messages published to rooms.",
           stat(&WorkerStats::published));
    metric("roomcast_deliveries_total", "counter",
           "Room frames queued to subscribers.",
           stat(&WorkerStats::deliveries));
    metric("roomcast_dropped_total", "counter",
           "Deliveries skipped by --slow-consumer drop/conflate.",
           stat(&WorkerStats::dropped));
    metric("roomcast_slow_consumer_disconnects_total", "counter",
           "Subscribers closed with 1008 past --max-backlog.",
           stat(&WorkerStats::slow_disconnects));
    metric("roomcast_protocol_errors_total", "counter",
           "WebSockets failed for a protocol violation.",
           stat(&WorkerStats::protocol_errors));
    metric("roomcast_http_errors_total", "counter",
           "Requests answered with an error status.",
           stat(&WorkerStats::http_errors));
    metric("roomcast_deflate_shared_frames_total", "counter",
           "Compressed room frames built (once per message and format at the room's owner; replays of older messages once per reactor).",
           stat(&WorkerStats::deflate_shared));
    metric("roomcast_io_batches_total", "counter",
           "io_uring system calls that carried batched socket operations (--io-uring).",
           stat(&WorkerStats::io_batches));
    metric("roomcast_io_batched_ops_total", "counter",
           "Operations (registrations, reads, sends, closes) carried by those calls.",
           stat(&WorkerStats::io_batched_ops));
    metric("roomcast_rooms", "gauge",
           "Rooms held (by their owner reactors).",
           room(&pubsub::RoomTableStats::rooms));
    metric("roomcast_room_memory_bytes", "gauge",
           "Memory the rooms hold: history frames and per-room overhead (--room-memory).",
           room(&pubsub::RoomTableStats::memory_bytes));
    metric("roomcast_room_evictions_total", "counter",
           "History messages evicted to stay within --room-memory.",
           room(&pubsub::RoomTableStats::evictions));
    metric("roomcast_rooms_deleted_total", "counter",
           "Rooms deleted because they held nothing and had no subscriber.",
           room(&pubsub::RoomTableStats::deleted));
    metric("roomcast_room_refusals_total", "counter",
           "Subscribes and publishes refused: their new room did not fit --room-memory.",
           room(&pubsub::RoomTableStats::refusals));
    return out;
}

}  // namespace roomcast::server
