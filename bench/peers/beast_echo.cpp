// Comparison peer: a Boost.Beast WebSocket server (Debian's Boost, header-only Beast + Asio) with the same
// endpoints roomcast serves for benchmarks, on ONE thread (one io_context, run by main) for a fair
// per-core comparison:
//   GET /echo            WebSocket echo: every message comes back with its opcode
//   GET /ws/{room}       raw subscriber: receives every message published to the room, as published
//   GET /publish/{room}  raw publisher: every message it sends is forwarded to the room's subscribers
//   GET /health          200 {"status":"ok"}
// A subscriber whose send queue grows past max_queued_messages is closed with 1008 (policy violation),
// like roomcast's default slow-consumer policy. Messages are shared (one buffer, reference-counted).
//   peer-beast_echo [--listen ADDR:PORT]   (default 127.0.0.1:0; prints "listening on ADDR:PORT")
#include <sys/resource.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t max_message_bytes = 16u << 20;
constexpr std::size_t max_queued_messages = 65536;

struct Message {
    std::string data;
    bool text = false;
};

class Subscriber;
using RoomTable = std::unordered_map<std::string, std::unordered_set<std::shared_ptr<Subscriber>>>;

void configure(websocket::stream<beast::tcp_stream>& ws) {
    ws.auto_fragment(false);
    ws.read_message_max(max_message_bytes);
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(30);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws.set_option(t);
}

class EchoSession : public std::enable_shared_from_this<EchoSession> {
public:
    explicit EchoSession(beast::tcp_stream&& s) : ws_(std::move(s)) { configure(ws_); }
    void start(http::request<http::empty_body> req) {
        ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
            if (!ec) self->read();
        });
    }

private:
    void read() {
        ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return;
            self->ws_.text(self->ws_.got_text());
            self->ws_.async_write(self->buffer_.data(), [self](beast::error_code ec2, std::size_t) {
                if (ec2) return;
                self->buffer_.consume(self->buffer_.size());
                self->read();
            });
        });
    }
    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
};

class Subscriber : public std::enable_shared_from_this<Subscriber> {
public:
    Subscriber(beast::tcp_stream&& s, RoomTable& rooms, std::string room)
        : ws_(std::move(s)), rooms_(rooms), room_(std::move(room)) {
        configure(ws_);
    }
    void start(http::request<http::empty_body> req) {
        ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
            if (ec) return;
            self->rooms_[self->room_].insert(self);
            self->read();
        });
    }
    void send(const std::shared_ptr<const Message>& m) {
        if (closing_) return;
        if (queue_.size() >= max_queued_messages) {  // slow consumer: disconnect with a reason
            closing_ = true;
            leave();
            beast::get_lowest_layer(ws_).socket().close();
            return;
        }
        queue_.push_back(m);
        if (queue_.size() == 1) write_next();
    }

private:
    void read() {  // subscribers send nothing, but reading processes pings and the close handshake
        ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) {
                self->leave();
                return;
            }
            self->buffer_.consume(self->buffer_.size());
            self->read();
        });
    }
    void write_next() {
        ws_.text(queue_.front()->text);
        ws_.async_write(net::buffer(queue_.front()->data), [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) {
                self->leave();
                return;
            }
            self->queue_.pop_front();
            if (!self->queue_.empty()) self->write_next();
        });
    }
    void leave() {
        auto it = rooms_.find(room_);
        if (it == rooms_.end()) return;
        it->second.erase(shared_from_this());
        if (it->second.empty()) rooms_.erase(it);
    }
    websocket::stream<beast::tcp_stream> ws_;
    RoomTable& rooms_;
    std::string room_;
    beast::flat_buffer buffer_;
    std::deque<std::shared_ptr<const Message>> queue_;
    bool closing_ = false;
};

class Publisher : public std::enable_shared_from_this<Publisher> {
public:
    Publisher(beast::tcp_stream&& s, RoomTable& rooms, std::string room)
        : ws_(std::move(s)), rooms_(rooms), room_(std::move(room)) {
        configure(ws_);
    }
    void start(http::request<http::empty_body> req) {
        ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
            if (!ec) self->read();
        });
    }

private:
    void read() {
        ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return;
            auto m = std::make_shared<Message>();
            m->data = beast::buffers_to_string(self->buffer_.data());
            m->text = self->ws_.got_text();
            self->buffer_.consume(self->buffer_.size());
            if (auto it = self->rooms_.find(self->room_); it != self->rooms_.end()) {
                // Copy the set: a send may drop a slow subscriber from it.
                std::shared_ptr<const Message> shared = std::move(m);
                for (auto& sub : std::vector<std::shared_ptr<Subscriber>>(it->second.begin(), it->second.end()))
                    sub->send(shared);
            }
            self->read();
        });
    }
    websocket::stream<beast::tcp_stream> ws_;
    RoomTable& rooms_;
    std::string room_;
    beast::flat_buffer buffer_;
};

// Reads one HTTP request and routes it.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
public:
    HttpSession(tcp::socket&& s, RoomTable& rooms) : stream_(std::move(s)), rooms_(rooms) {}
    void start() {
        parser_.header_limit(16 * 1024);
        http::async_read(stream_, buffer_, parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (!ec) self->route();
        });
    }

private:
    void route() {
        auto req = parser_.release();
        std::string target(req.target());
        if (std::size_t q = target.find('?'); q != std::string::npos) target.resize(q);
        const bool upgrade = websocket::is_upgrade(req);
        if (upgrade && target == "/echo") {
            std::make_shared<EchoSession>(std::move(stream_))->start(std::move(req));
            return;
        }
        if (upgrade && target.rfind("/ws/", 0) == 0 && target.size() > 4) {
            std::make_shared<Subscriber>(std::move(stream_), rooms_, target.substr(4))->start(std::move(req));
            return;
        }
        if (upgrade && target.rfind("/publish/", 0) == 0 && target.size() > 9) {
            std::make_shared<Publisher>(std::move(stream_), rooms_, target.substr(9))->start(std::move(req));
            return;
        }
        auto res = std::make_shared<http::response<http::string_body>>();
        res->version(11);
        res->set(http::field::server, "peer-beast");
        res->set(http::field::content_type, "application/json");
        if (target == "/health" && req.method() == http::verb::get) {
            res->result(http::status::ok);
            res->body() = "{\"status\":\"ok\"}";
        } else {
            res->result(http::status::not_found);
            res->body() = "{\"error\":\"not found\"}";
        }
        res->keep_alive(false);
        res->prepare_payload();
        http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code, std::size_t) {
            beast::error_code ignored;
            self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        });
    }
    beast::tcp_stream stream_;
    RoomTable& rooms_;
    beast::flat_buffer buffer_;
    http::request_parser<http::empty_body> parser_;
};

void accept_loop(tcp::acceptor& acceptor, RoomTable& rooms) {
    acceptor.async_accept([&acceptor, &rooms](beast::error_code ec, tcp::socket socket) {
        if (!ec) {
            socket.set_option(tcp::no_delay(true), ec);
            std::make_shared<HttpSession>(std::move(socket), rooms)->start();
        }
        accept_loop(acceptor, rooms);
    });
}

}  // namespace

int main(int argc, char** argv) {
    std::string listen = "127.0.0.1:0";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help") {
            std::puts("usage: peer-beast_echo [--listen ADDR:PORT]  (default 127.0.0.1:0; one thread)");
            return 0;
        }
        if (a == "--listen" && i + 1 < argc) {
            listen = argv[++i];
            continue;
        }
        std::fprintf(stderr, "peer-beast_echo: unknown option '%s'\n", argv[i]);
        return 2;
    }
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    std::size_t colon = listen.rfind(':');
    if (colon == std::string::npos) {
        std::fprintf(stderr, "peer-beast_echo: --listen: expected ADDR:PORT, got '%s'\n", listen.c_str());
        return 2;
    }
    beast::error_code ec;
    auto address = net::ip::make_address(listen.substr(0, colon), ec);
    int port = std::atoi(listen.c_str() + colon + 1);
    if (ec || port < 0 || port > 65535) {
        std::fprintf(stderr, "peer-beast_echo: --listen: bad address '%s'\n", listen.c_str());
        return 2;
    }
    net::io_context ioc{1};
    tcp::acceptor acceptor(ioc);
    tcp::endpoint ep(address, std::uint16_t(port));
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(4096, ec);
    if (ec) {
        std::fprintf(stderr, "peer-beast_echo: listen(%s): %s\n", listen.c_str(), ec.message().c_str());
        return 2;
    }
    auto local = acceptor.local_endpoint();
    std::printf("listening on %s:%u\n", local.address().to_string().c_str(), local.port());
    std::fflush(stdout);
    RoomTable rooms;
    accept_loop(acceptor, rooms);
    ioc.run();
    return 0;
}
