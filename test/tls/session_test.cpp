#include "tls/session.hpp"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "tls_test_util.hpp"

namespace roomcast::tls {
namespace {

using namespace testing;

// One server context for the whole suite (key generation is the slow part).
class TlsSessionTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir;
        files_ = new CertFiles(make_cert_files(*dir_, "localhost"));
        std::string error;
        ctx_ = new std::shared_ptr<const TlsContext>(TlsContext::load(files_->cert, files_->key, error));
        ASSERT_TRUE(*ctx_) << error;
    }
    static void TearDownTestSuite() {
        delete ctx_;
        delete files_;
        delete dir_;
    }
    void TearDown() override { EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL error queue left non-empty"; }

    static const TlsContext& ctx() { return **ctx_; }

    static inline TempDir* dir_ = nullptr;
    static inline CertFiles* files_ = nullptr;
    static inline std::shared_ptr<const TlsContext>* ctx_ = nullptr;

    // A connected pair with a finished handshake.
    struct Conn {
        SocketPair sp;
        ClientCtxPtr cctx{nullptr, SSL_CTX_free};
        ClientPtr client{nullptr, SSL_free};
        TlsSession server;
        HandshakeOutcome hs;
    };
    static void connect(Conn& c, const ClientOptions& o = {}, int sndbuf = 0, SSL_SESSION* resume = nullptr,
                        const TlsContext* server_ctx = nullptr) {
        c.sp = make_socket_pair(sndbuf);
        c.cctx = make_client_ctx(o);
        c.client = make_client(c.cctx.get(), c.sp.client.get(), resume);
        ASSERT_EQ(c.server.open(server_ctx ? *server_ctx : ctx(), c.sp.server.get()), Status::ok);
        c.hs = run_handshake(c.client.get(), c.server);
    }

    // Server -> client, the reactor way (backlog + retry), until the client has `n` bytes.
    static std::vector<std::byte> send_to_client(Conn& c, std::span<const iovec> pieces, std::size_t n,
                                                 int* want_writes = nullptr) {
        ReactorOut out;
        std::vector<std::byte> got;
        out.send(c.server, pieces);
        for (int turn = 0; turn < 100000 && got.size() < n; ++turn) {
            if (out.last == Status::want_write && want_writes) ++*want_writes;
            EXPECT_TRUE(out.last == Status::ok || out.last == Status::want_write) << describe(out.last);
            if (out.last == Status::error) break;
            client_drain(c.client.get(), got);
            out.flush(c.server);
        }
        EXPECT_TRUE(out.backlog.empty());
        return got;
    }

    // Client -> server: the client writes `data`; the server reads into a `buf_bytes` buffer.
    static std::vector<std::byte> send_to_server(Conn& c, const std::vector<std::byte>& data, std::size_t buf_bytes) {
        std::vector<std::byte> got, buf(buf_bytes);
        std::size_t sent = 0;
        for (int turn = 0; turn < 100000 && got.size() < data.size(); ++turn) {
            while (sent < data.size()) {
                std::size_t n = 0;
                if (SSL_write_ex(c.client.get(), data.data() + sent, data.size() - sent, &n) != 1) break;
                sent += n;
            }
            for (;;) {
                const IoResult r = c.server.read(buf);
                got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.bytes));
                if (r.status != Status::ok) {
                    EXPECT_EQ(r.status, Status::want_read) << c.server.error_reason();
                    break;
                }
            }
        }
        return got;
    }
};

TEST_F(TlsSessionTest, HandshakeNegotiatesTls13AndAlpnHttp11) {
    Conn c;
    connect(c);
    ASSERT_TRUE(c.hs.client_ok);
    ASSERT_EQ(c.hs.server, Status::ok) << c.server.error_reason();
    EXPECT_TRUE(c.server.handshake_done());
    EXPECT_EQ(c.server.protocol_version(), TLS1_3_VERSION);
    EXPECT_STREQ(c.server.protocol(), "TLSv1.3");
    EXPECT_EQ(c.server.alpn(), "http/1.1");
    EXPECT_FALSE(c.server.session_reused());
    EXPECT_EQ(c.server.handshake(), Status::ok) << "stays ok once complete";
}

TEST_F(TlsSessionTest, ClientCappedAtTls12GetsTls12WithAeadSuite) {
    Conn c;
    ClientOptions o;
    o.max_version = TLS1_2_VERSION;
    connect(c, o);
    ASSERT_EQ(c.hs.server, Status::ok) << c.server.error_reason();
    EXPECT_EQ(c.server.protocol_version(), TLS1_2_VERSION);
    EXPECT_EQ(std::string(c.server.cipher()).rfind("ECDHE-", 0), 0u) << c.server.cipher();
    EXPECT_EQ(c.server.alpn(), "http/1.1");
}

TEST_F(TlsSessionTest, Tls11ClientIsRejected) {
    Conn c;
    ClientOptions o;
    o.legacy = true;
    o.min_version = TLS1_1_VERSION;
    o.max_version = TLS1_1_VERSION;
    connect(c, o);
    EXPECT_FALSE(c.hs.client_ok);
    EXPECT_EQ(c.hs.server, Status::error);
    EXPECT_STREQ(c.server.error_reason(), "unsupported protocol");
    EXPECT_EQ(c.server.read(std::span<std::byte>()).status, Status::error) << "stays failed";
    EXPECT_EQ(c.server.shutdown(), Status::ok) << "nothing to say after a failed handshake";
}

// RFC 7301 §3.2: no protocol in common -> fatal no_application_protocol alert.
TEST_F(TlsSessionTest, AlpnWithoutHttp11GetsNoApplicationProtocol) {
    Conn c;
    ClientOptions o;
    o.alpn_wire = "\x02h2";
    connect(c, o);
    EXPECT_FALSE(c.hs.client_ok);
    EXPECT_EQ(c.hs.server, Status::error);
    EXPECT_STREQ(c.server.error_reason(), "no application protocol");
}

TEST_F(TlsSessionTest, AlpnPicksHttp11AmongOthers) {
    Conn c;
    ClientOptions o;
    o.alpn_wire = "\x02h2\x08http/1.1\x06spdy/1";
    connect(c, o);
    ASSERT_EQ(c.hs.server, Status::ok) << c.server.error_reason();
    EXPECT_EQ(c.server.alpn(), "http/1.1");
}

TEST_F(TlsSessionTest, ClientWithoutAlpnIsServed) {
    Conn c;
    ClientOptions o;
    o.alpn_wire = nullptr;
    connect(c, o);
    ASSERT_EQ(c.hs.server, Status::ok) << c.server.error_reason();
    EXPECT_TRUE(c.hs.client_ok);
    EXPECT_EQ(c.server.alpn(), "");
}

TEST_F(TlsSessionTest, SmallMessagesRoundTripBothWays) {
    Conn c;
    connect(c);
    ASSERT_EQ(c.hs.server, Status::ok);
    const std::string req = "GET /echo HTTP/1.1\r\n\r\n";
    ASSERT_EQ(SSL_write(c.client.get(), req.data(), static_cast<int>(req.size())), static_cast<int>(req.size()));
    std::byte buf[256];
    IoResult r = c.server.read(buf);
    EXPECT_EQ(r.status, Status::want_read) << "drained: the socket said EAGAIN";
    ASSERT_EQ(r.bytes, req.size());
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r.bytes), req);

    // Nothing more: want_read, no bytes.
    r = c.server.read(buf);
    EXPECT_EQ(r.status, Status::want_read);
    EXPECT_EQ(r.bytes, 0u);

    const std::string a = "HTTP/1.1 101 ", b = "Switching", d = " Protocols\r\n\r\n";
    const iovec pieces[] = {{const_cast<char*>(a.data()), a.size()},
                            {nullptr, 0},
                            {const_cast<char*>(b.data()), b.size()},
                            {const_cast<char*>(d.data()), d.size()}};
    const IoResult w = c.server.write(pieces);
    EXPECT_EQ(w.status, Status::ok);
    EXPECT_EQ(w.bytes, a.size() + b.size() + d.size());
    std::vector<std::byte> got;
    EXPECT_EQ(client_drain(c.client.get(), got), SSL_ERROR_WANT_READ);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(got.data()), got.size()), a + b + d);
}

// Small pieces are gathered into one record per write() (the reactor's corked turn).
TEST_F(TlsSessionTest, SmallPiecesShareOneRecord) {
    Conn c;
    connect(c);
    ASSERT_EQ(c.hs.server, Status::ok);
    int records = 0;
    SSL_set_msg_callback_arg(c.server.native(), &records);
    SSL_set_msg_callback(c.server.native(), [](int write_p, int, int type, const void* buf, std::size_t, SSL*,
                                               void* arg) {
        if (write_p && type == SSL3_RT_HEADER && static_cast<const unsigned char*>(buf)[0] == SSL3_RT_APPLICATION_DATA)
            ++*static_cast<int*>(arg);
    });
    std::vector<std::string> frames;
    std::vector<iovec> pieces;
    for (int i = 0; i < 50; ++i) frames.push_back("frame " + std::to_string(i) + ";");
    for (auto& f : frames) pieces.push_back({f.data(), f.size()});
    EXPECT_EQ(c.server.write(pieces).status, Status::ok);
    EXPECT_EQ(records, 1);
}

TEST_F(TlsSessionTest, MegabyteToClientSurvivesPartialWrites) {
    Conn c;
    connect(c, {}, /*sndbuf=*/16 * 1024);
    ASSERT_EQ(c.hs.server, Status::ok);
    const std::vector<std::byte> data = pattern(1 << 20);
    // Odd piece sizes: a tiny header, a piece just under a record, a large payload, a few small tails.
    const std::size_t cuts[] = {0, 3, 3 + 16383, 3 + 16383 + 700000, (1 << 20) - 5, (1 << 20) - 1, 1 << 20};
    std::vector<iovec> pieces;
    for (std::size_t i = 0; i + 1 < std::size(cuts); ++i)
        pieces.push_back({const_cast<std::byte*>(data.data()) + cuts[i], cuts[i + 1] - cuts[i]});
    int want_writes = 0;
    const std::vector<std::byte> got = send_to_client(c, pieces, data.size(), &want_writes);
    EXPECT_GT(want_writes, 0) << "the small socket buffer must have forced partial writes";
    ASSERT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
}

// Writes queued behind a blocked one keep their order (the backlog is retried from its front).
TEST_F(TlsSessionTest, WritesAfterABlockedWriteKeepOrder) {
    Conn c;
    connect(c, {}, 8 * 1024);
    ASSERT_EQ(c.hs.server, Status::ok);
    const std::vector<std::byte> data = pattern(300000, 7);
    ReactorOut out;
    std::vector<std::byte> got;
    std::size_t off = 0;
    for (std::size_t chunk : {100000u, 5u, 1u, 60000u, 139994u}) {
        // The reactor's staging memory is reused right after the call: scribble over it.
        std::vector<std::byte> staged(data.begin() + static_cast<std::ptrdiff_t>(off),
                                      data.begin() + static_cast<std::ptrdiff_t>(off + chunk));
        const iovec v{staged.data(), staged.size()};
        out.send(c.server, std::span<const iovec>(&v, 1));
        std::fill(staged.begin(), staged.end(), std::byte{0xEE});
        off += chunk;
    }
    ASSERT_EQ(off, data.size());
    for (int turn = 0; turn < 100000 && got.size() < data.size(); ++turn) {
        client_drain(c.client.get(), got);
        out.flush(c.server);
    }
    EXPECT_TRUE(got == data);
    EXPECT_EQ(c.server.locked_bytes(), 0u);
}

TEST_F(TlsSessionTest, RetryWithFewerBytesThanTheBlockedWriteIsAnError) {
    Conn c;
    connect(c, {}, 4 * 1024);
    ASSERT_EQ(c.hs.server, Status::ok);
    const std::vector<std::byte> data = pattern(1 << 20, 3);
    IoResult r{Status::ok, 0};
    std::size_t taken = 0;
    while (r.status == Status::ok && taken < data.size()) {
        r = c.server.write(std::span<const std::byte>(data).subspan(taken));
        taken += r.bytes;
    }
    ASSERT_EQ(r.status, Status::want_write);
    EXPECT_GT(c.server.locked_bytes(), 0u);
    EXPECT_LE(c.server.locked_bytes(), TlsSession::record_bytes);
    const IoResult bad = c.server.write(std::span<const std::byte>(data).subspan(taken, 1));
    EXPECT_EQ(bad.status, Status::error);
}

TEST_F(TlsSessionTest, MegabyteFromClientArrivesWhole) {
    Conn c;
    connect(c);
    ASSERT_EQ(c.hs.server, Status::ok);
    const std::vector<std::byte> data = pattern(1 << 20, 2);
    const std::vector<std::byte> got = send_to_server(c, data, 256 * 1024);
    ASSERT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
}

// A full buffer returns ok (call again); bytes already inside OpenSSL are not announced by EPOLLIN.
TEST_F(TlsSessionTest, FullReadBufferReturnsOkAndKeepsTheRest) {
    Conn c;
    connect(c);
    ASSERT_EQ(c.hs.server, Status::ok);
    const std::string msg(1000, 'x');
    ASSERT_EQ(SSL_write(c.client.get(), msg.data(), static_cast<int>(msg.size())), 1000);
    std::byte small[100];
    IoResult r = c.server.read(small);
    EXPECT_EQ(r.status, Status::ok);
    EXPECT_EQ(r.bytes, sizeof small);
    EXPECT_TRUE(c.server.has_buffered_input());
    std::size_t total = r.bytes;
    while (r.status == Status::ok) {
        r = c.server.read(small);
        total += r.bytes;
    }
    EXPECT_EQ(r.status, Status::want_read);
    EXPECT_EQ(total, msg.size());
    EXPECT_FALSE(c.server.has_buffered_input());
}

// The client's Finished and its first request can arrive together; read() returns the request in the
// same call that completes the handshake, so no EPOLLIN is needed for it.
TEST_F(TlsSessionTest, DataInTheHandshakeFlightIsReturnedAtOnce) {
    SocketPair sp = make_socket_pair();
    ClientCtxPtr cctx = make_client_ctx();
    ClientPtr client = make_client(cctx.get(), sp.client.get());
    TlsSession server;
    ASSERT_EQ(server.open(ctx(), sp.server.get()), Status::ok);
    std::byte buf[256];
    EXPECT_EQ(SSL_do_handshake(client.get()), -1);  // ClientHello out
    ERR_clear_error();
    EXPECT_EQ(server.read(buf).status, Status::want_read);  // server flight out, waits for Finished
    ASSERT_EQ(SSL_do_handshake(client.get()), 1);
    const std::string req = "GET / HTTP/1.1\r\n\r\n";
    ASSERT_EQ(SSL_write(client.get(), req.data(), static_cast<int>(req.size())), static_cast<int>(req.size()));
    const IoResult r = server.read(buf);
    EXPECT_TRUE(server.handshake_done());
    EXPECT_EQ(r.status, Status::want_read);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), r.bytes), req);
}

TEST_F(TlsSessionTest, CloseNotifyBothWays) {
    Conn c;
    connect(c);
    ASSERT_EQ(c.hs.server, Status::ok);
    EXPECT_EQ(c.server.shutdown(), Status::ok);
    EXPECT_EQ(c.server.shutdown(), Status::ok) << "only once";
    std::vector<std::byte> got;
    EXPECT_EQ(client_drain(c.client.get(), got), SSL_ERROR_ZERO_RETURN);
    EXPECT_GE(SSL_shutdown(c.client.get()), 0);
    std::byte buf[64];
    const IoResult r = c.server.read(buf);
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_STREQ(c.server.error_reason(), "peer sent close_notify");
}

// Data queued before the close_notify arrives before it.
TEST_F(TlsSessionTest, CloseNotifyFollowsQueuedData) {
    Conn c;
    connect(c, {}, 8 * 1024);
    ASSERT_EQ(c.hs.server, Status::ok);
    const std::vector<std::byte> data = pattern(200000, 4);
    ReactorOut out;
    const iovec v{const_cast<std::byte*>(data.data()), data.size()};
    out.send(c.server, std::span<const iovec>(&v, 1));
    ASSERT_EQ(out.last, Status::want_write);
    std::vector<std::byte> got;
    int e = SSL_ERROR_WANT_READ;
    bool shut = false;
    for (int turn = 0; turn < 100000 && e == SSL_ERROR_WANT_READ; ++turn) {
        out.flush(c.server);
        if (out.backlog.empty() && !shut) shut = c.server.shutdown() == Status::ok;
        e = client_drain(c.client.get(), got);
    }
    EXPECT_TRUE(shut);
    EXPECT_EQ(e, SSL_ERROR_ZERO_RETURN);
    EXPECT_TRUE(got == data);
}

TEST_F(TlsSessionTest, EofWithoutCloseNotifyAfterHandshakeIsClosed) {
    Conn c;
    connect(c);
    ASSERT_EQ(c.hs.server, Status::ok);
    const std::string last = "bye";
    ASSERT_EQ(SSL_write(c.client.get(), last.data(), 3), 3);
    std::vector<std::byte> tickets;
    client_drain(c.client.get(), tickets);  // closing with unread input would be a reset, not an EOF
    c.client.reset();
    c.sp.client.reset();
    std::byte buf[64];
    const IoResult r = c.server.read(buf);
    EXPECT_EQ(r.status, Status::closed);
    EXPECT_EQ(r.bytes, 3u) << "data before the EOF is still delivered";
    EXPECT_STREQ(c.server.error_reason(), "peer closed the connection without close_notify");
    EXPECT_EQ(c.server.shutdown(), Status::ok);
}

// Closing with unread input makes the kernel reset the connection: an error, with errno's words.
TEST_F(TlsSessionTest, PeerResetAfterHandshakeIsAnError) {
    Conn c;
    connect(c);
    ASSERT_EQ(c.hs.server, Status::ok);
    c.client.reset();  // the session tickets are still unread on this side
    c.sp.client.reset();
    std::byte buf[64];
    const IoResult r = c.server.read(buf);
    EXPECT_EQ(r.status, Status::error);
    EXPECT_STREQ(c.server.error_reason(), "Connection reset by peer");
    EXPECT_EQ(c.server.write(std::span<const std::byte>(buf)).status, Status::error);
}

TEST_F(TlsSessionTest, PeerClosingBeforeClientHelloIsAnError) {
    SocketPair sp = make_socket_pair();
    TlsSession server;
    ASSERT_EQ(server.open(ctx(), sp.server.get()), Status::ok);
    EXPECT_EQ(server.handshake(), Status::want_read);
    sp.client.reset();
    EXPECT_EQ(server.handshake(), Status::error);
    EXPECT_STREQ(server.error_reason(), "peer closed the connection during the TLS handshake");
}

TEST_F(TlsSessionTest, PeerClosingAfterClientHelloIsAnError) {
    Conn c;
    c.sp = make_socket_pair();
    c.cctx = make_client_ctx();
    c.client = make_client(c.cctx.get(), c.sp.client.get());
    ASSERT_EQ(c.server.open(ctx(), c.sp.server.get()), Status::ok);
    EXPECT_EQ(SSL_do_handshake(c.client.get()), -1);
    ERR_clear_error();
    c.client.reset();
    c.sp.client.reset();
    Status s = Status::want_read;
    for (int i = 0; i < 10 && s != Status::error; ++i) s = c.server.handshake();
    EXPECT_EQ(s, Status::error);
    EXPECT_NE(std::string(c.server.error_reason()), "");
}

// A ClientHello cut in the middle of its record, then EOF: an error, not a wait.
TEST_F(TlsSessionTest, PartialClientHelloThenCloseIsAnError) {
    // Capture a real ClientHello with a memory-BIO client.
    ClientCtxPtr cctx = make_client_ctx();
    ClientPtr mem_client(SSL_new(cctx.get()), SSL_free);
    BIO* rb = BIO_new(BIO_s_mem());
    BIO* wb = BIO_new(BIO_s_mem());
    SSL_set_bio(mem_client.get(), rb, wb);
    SSL_set_connect_state(mem_client.get());
    EXPECT_EQ(SSL_do_handshake(mem_client.get()), -1);
    ERR_clear_error();
    char* p = nullptr;
    const long hello_len = BIO_get_mem_data(wb, &p);
    ASSERT_GT(hello_len, 10);

    SocketPair sp = make_socket_pair();
    TlsSession server;
    ASSERT_EQ(server.open(ctx(), sp.server.get()), Status::ok);
    ASSERT_EQ(::write(sp.client.get(), p, static_cast<std::size_t>(hello_len / 2)), hello_len / 2);
    EXPECT_EQ(server.handshake(), Status::want_read) << "half a record: wait for more";
    sp.client.reset();
    EXPECT_EQ(server.handshake(), Status::error);
}

// Every byte of the handshake and of the data arrives alone: partial records everywhere.
TEST_F(TlsSessionTest, ByteByByteHandshakeAndData) {
    SocketPair sp = make_socket_pair();
    ClientCtxPtr cctx = make_client_ctx();
    ClientPtr client(SSL_new(cctx.get()), SSL_free);
    BIO* rb = BIO_new(BIO_s_mem());
    BIO* wb = BIO_new(BIO_s_mem());
    SSL_set_bio(client.get(), rb, wb);
    SSL_set_connect_state(client.get());
    TlsSession server;
    ASSERT_EQ(server.open(ctx(), sp.server.get()), Status::ok);

    // Moves the client's pending output to the server one byte per step, reading the server's answer
    // back into the client, until `done` or the step budget runs out.
    std::vector<std::byte> to_server;
    std::byte buf[4096];
    auto pump = [&](auto&& step_server, auto&& done) {
        for (int steps = 0; steps < 20000 && !done(); ++steps) {
            char tmp[4096];
            for (int n; (n = BIO_read(wb, tmp, sizeof tmp)) > 0;)
                to_server.insert(to_server.end(), reinterpret_cast<std::byte*>(tmp), reinterpret_cast<std::byte*>(tmp) + n);
            if (!to_server.empty()) {
                ASSERT_EQ(::write(sp.client.get(), to_server.data(), 1), 1);
                to_server.erase(to_server.begin());
            }
            step_server();
            for (ssize_t n; (n = ::read(sp.client.get(), tmp, sizeof tmp)) > 0;) BIO_write(rb, tmp, static_cast<int>(n));
        }
    };
    Status hs = Status::want_read;
    bool client_done = false;
    pump(
        [&] {
            if (!client_done) {
                client_done = SSL_do_handshake(client.get()) == 1;
                ERR_clear_error();
            }
            if (hs == Status::want_read || hs == Status::want_write) {
                hs = server.handshake();
                EXPECT_NE(hs, Status::error) << server.error_reason();
            }
        },
        [&] { return client_done && hs == Status::ok && to_server.empty(); });
    ASSERT_TRUE(client_done);
    ASSERT_EQ(hs, Status::ok);

    const std::string msg = "a message split into single bytes";
    ASSERT_EQ(SSL_write(client.get(), msg.data(), static_cast<int>(msg.size())), static_cast<int>(msg.size()));
    std::string got;
    pump(
        [&] {
            const IoResult r = server.read(buf);
            got.append(reinterpret_cast<char*>(buf), r.bytes);
            EXPECT_TRUE(r.status == Status::want_read || r.status == Status::ok) << describe(r.status);
        },
        [&] { return got.size() == msg.size(); });
    EXPECT_EQ(got, msg);
}

TEST_F(TlsSessionTest, Tls13SessionTicketResumes) {
    ClientCtxPtr cctx = make_client_ctx();
    SessionPtr saved(nullptr, SSL_SESSION_free);
    {
        Conn c;
        c.sp = make_socket_pair();
        c.client = make_client(cctx.get(), c.sp.client.get());
        ASSERT_EQ(c.server.open(ctx(), c.sp.server.get()), Status::ok);
        c.hs = run_handshake(c.client.get(), c.server);
        ASSERT_EQ(c.hs.server, Status::ok);
        std::vector<std::byte> got;
        client_drain(c.client.get(), got);  // TLS 1.3 tickets arrive after the handshake
        saved.reset(SSL_get1_session(c.client.get()));
        ASSERT_TRUE(saved);
        ASSERT_TRUE(SSL_SESSION_is_resumable(saved.get())) << "no ticket received";
        SSL_shutdown(c.client.get());  // freeing an SSL that was not shut down makes its session unresumable
    }
    Conn c2;
    c2.sp = make_socket_pair();
    c2.client = make_client(cctx.get(), c2.sp.client.get(), saved.get());
    ASSERT_EQ(c2.server.open(ctx(), c2.sp.server.get()), Status::ok);
    c2.hs = run_handshake(c2.client.get(), c2.server);
    ASSERT_EQ(c2.hs.server, Status::ok) << c2.server.error_reason();
    EXPECT_TRUE(c2.server.session_reused());
    EXPECT_EQ(SSL_session_reused(c2.client.get()), 1);
}

TEST_F(TlsSessionTest, Tls12SessionTicketResumes) {
    ClientOptions o;
    o.max_version = TLS1_2_VERSION;
    ClientCtxPtr cctx = make_client_ctx(o);
    SessionPtr saved(nullptr, SSL_SESSION_free);
    {
        Conn c;
        c.sp = make_socket_pair();
        c.client = make_client(cctx.get(), c.sp.client.get());
        ASSERT_EQ(c.server.open(ctx(), c.sp.server.get()), Status::ok);
        c.hs = run_handshake(c.client.get(), c.server);
        ASSERT_EQ(c.hs.server, Status::ok);
        saved.reset(SSL_get1_session(c.client.get()));
        ASSERT_TRUE(saved && SSL_SESSION_has_ticket(saved.get()));
        SSL_shutdown(c.client.get());
    }
    Conn c2;
    c2.sp = make_socket_pair();
    c2.client = make_client(cctx.get(), c2.sp.client.get(), saved.get());
    ASSERT_EQ(c2.server.open(ctx(), c2.sp.server.get()), Status::ok);
    c2.hs = run_handshake(c2.client.get(), c2.server);
    ASSERT_EQ(c2.hs.server, Status::ok) << c2.server.error_reason();
    EXPECT_EQ(c2.server.protocol_version(), TLS1_2_VERSION);
    EXPECT_TRUE(c2.server.session_reused());
}

TEST_F(TlsSessionTest, RenegotiationFromTls12ClientFailsCleanly) {
    Conn c;
    ClientOptions o;
    o.max_version = TLS1_2_VERSION;
    connect(c, o);
    ASSERT_EQ(c.hs.server, Status::ok);
    EXPECT_FALSE(c.server.peer_attempted_renegotiation());
    ASSERT_EQ(SSL_renegotiate(c.client.get()), 1);
    EXPECT_NE(SSL_do_handshake(c.client.get()), 1);  // sends the new ClientHello
    ERR_clear_error();
    std::byte buf[256];
    const IoResult r = c.server.read(buf);
    EXPECT_EQ(r.status, Status::error);
    EXPECT_TRUE(c.server.peer_attempted_renegotiation());
    EXPECT_STREQ(c.server.error_reason(), "peer attempted TLS renegotiation (refused)");
    // The reactor now closes the socket; the client's renegotiation never completes.
    c.server.reset();
    c.sp.server.reset();
    EXPECT_NE(SSL_do_handshake(c.client.get()), 1);
    ERR_clear_error();
}

// SIGHUP: new connections get the new certificate; an open one keeps talking with the old.
TEST_F(TlsSessionTest, ReloadServesNewCertificateWhileOldSessionContinues) {
    TempDir dir;
    const CertFiles a = make_cert_files(dir, "old.test");
    TlsContextHolder holder;
    ASSERT_EQ(holder.load(a.cert, a.key), "");
    Conn old_conn;
    connect(old_conn, {}, 0, nullptr, holder.current().get());
    ASSERT_EQ(old_conn.hs.server, Status::ok);
    EXPECT_EQ(peer_cn(old_conn.client.get()), "old.test");

    const CertFiles b = make_cert_files(dir, "new.test", "new-");
    std::filesystem::copy_file(b.cert, a.cert, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(b.key, a.key, std::filesystem::copy_options::overwrite_existing);
    ASSERT_EQ(holder.reload(), "");

    Conn new_conn;
    connect(new_conn, {}, 0, nullptr, holder.current().get());
    ASSERT_EQ(new_conn.hs.server, Status::ok);
    EXPECT_EQ(peer_cn(new_conn.client.get()), "new.test");

    // Nothing holds the old TlsContext now but the old SSL's own reference to its SSL_CTX.
    const std::vector<std::byte> data = pattern(100000, 9);
    const iovec v{const_cast<std::byte*>(data.data()), data.size()};
    EXPECT_TRUE(send_to_client(old_conn, std::span<const iovec>(&v, 1), data.size()) == data);
    EXPECT_TRUE(send_to_server(old_conn, data, 65536) == data);
}

// kTLS needs the kernel's "tls" ULP and a TCP socket. Where it is missing the session must still work
// (silent fallback) and report false; where it exists, this prints what took.
TEST_F(TlsSessionTest, KtlsStatusOverTcpMatchesTheKernel) {
    net::sys::UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(lfd.get(), 4), 0);
    ASSERT_EQ(::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    auto connected_pair = [&](net::sys::UniqueFd& cfd, net::sys::UniqueFd& sfd) {
        cfd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        ASSERT_EQ(::connect(cfd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        sfd.reset(::accept4(lfd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        ASSERT_TRUE(sfd);
        ::fcntl(cfd.get(), F_SETFL, ::fcntl(cfd.get(), F_GETFL) | O_NONBLOCK);
    };
    net::sys::UniqueFd probe_c, probe_s;
    connected_pair(probe_c, probe_s);
    const bool kernel_has_tls_ulp = ::setsockopt(probe_s.get(), SOL_TCP, TCP_ULP, "tls", 3) == 0;

    net::sys::UniqueFd cfd, sfd;
    connected_pair(cfd, sfd);
    ::signal(SIGPIPE, SIG_IGN);
    ClientCtxPtr cctx = make_client_ctx();
    ClientPtr client = make_client(cctx.get(), cfd.get());
    TlsSession server;
    ASSERT_EQ(server.open(ctx(), sfd.get()), Status::ok);
    const HandshakeOutcome h = run_handshake(client.get(), server, 100000);
    ASSERT_EQ(h.server, Status::ok) << server.error_reason();
    const std::string msg = "over kTLS or not";
    const IoResult w = server.write(std::as_bytes(std::span(msg)));
    EXPECT_EQ(w.status, Status::ok);
    std::vector<std::byte> got;
    for (int i = 0; i < 100000 && got.size() < msg.size(); ++i) client_drain(client.get(), got);
    EXPECT_EQ(got.size(), msg.size());
    if (!kernel_has_tls_ulp) {
        EXPECT_FALSE(server.ktls_send());
        EXPECT_FALSE(server.ktls_recv());
    }
    std::printf("[ INFO     ] kernel tls ULP: %s; kTLS send: %s, receive: %s (%s)\n",
                kernel_has_tls_ulp ? "yes" : "no", server.ktls_send() ? "on" : "off",
                server.ktls_recv() ? "on" : "off", server.protocol());
    RecordProperty("ktls_send", server.ktls_send() ? "on" : "off");
}

// A session can live inside the reactor's slab Connection (which must stay standard-layout) cheaply.
static_assert(std::is_standard_layout_v<TlsSession>);
static_assert(sizeof(TlsSession) <= 32);

TEST(TlsSessionBasics, EmptySessionIsInert) {
    TlsSession s;
    EXPECT_FALSE(s.is_open());
    EXPECT_EQ(s.handshake(), Status::error);
    std::byte buf[8];
    EXPECT_EQ(s.read(buf).status, Status::error);
    EXPECT_EQ(s.write(std::span<const std::byte>(buf)).status, Status::error);
    EXPECT_EQ(s.shutdown(), Status::ok);
    EXPECT_FALSE(s.has_buffered_input());
    EXPECT_EQ(s.alpn(), "");
    s.reset();
}

TEST(TlsSessionBasics, StatusNames) {
    EXPECT_STREQ(describe(Status::ok), "ok");
    EXPECT_STREQ(describe(Status::want_read), "want_read");
    EXPECT_STREQ(describe(Status::want_write), "want_write");
    EXPECT_STREQ(describe(Status::closed), "closed");
    EXPECT_STREQ(describe(Status::error), "error");
}

}  // namespace
}  // namespace roomcast::tls
