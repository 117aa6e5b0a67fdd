// One server-side TLS connection, non-blocking, driven by a reactor. No sockets are created or closed
// here and nothing blocks: every call does what the socket allows now and says what it waits for.
//
// Design: SSL over the connection's socket (OpenSSL socket BIO, SSL_set_fd), not memory BIOs.
//  - kTLS needs it: OpenSSL can only hand keys to the kernel for a socket BIO (issue 6 asks for kTLS
//    where the kernel has it). With kTLS send on, write() is one sendmsg of the reactor's iovecs, as
//    for plain ws://; the kernel frames and encrypts. ktls_send()/ktls_recv() say whether it took
//    (log once; the machines without the kernel "tls" module fall back silently to OpenSSL).
//  - No extra copy: with memory BIOs every byte is copied once more each way (socket -> read buffer ->
//    BIO -> plaintext buffer, and plaintext -> BIO -> staging -> socket), and every connection keeps two
//    BIO buffers. Here the reactor's shared read buffer receives plaintext straight from SSL_read, and
//    idle connections hold no record buffers (SSL_MODE_RELEASE_BUFFERS).
//  - Cost: OpenSSL makes the read(2)/write(2) calls itself: one write(2) per TLS record (16 KiB), and
//    write(2) has no MSG_NOSIGNAL, so SIGPIPE must be ignored process-wide (server.cpp does; tests do).
//    And readiness changes meaning, see "Reactor rules" below.
//
// Reactor rules (how to call it):
//   accept:    s.open(*holder.current(), fd)  (fd: connected, non-blocking, still owned by the caller)
//   EPOLLIN:   r = s.read(rbuf)  -- drives the handshake first if it is not done yet. Hand r.bytes
//              (plaintext, may be > 0 with any status) to handle_bytes(), then act on r.status:
//                ok          the buffer filled up; call read() again (more may already be decrypted or
//                            buffered inside OpenSSL, and EPOLLIN will NOT announce it). If the per-turn
//                            read budget is spent, remember the connection and read it next turn.
//                want_read   drained: wait for EPOLLIN (the socket said EAGAIN, nothing is buffered).
//                want_write  OpenSSL must send first (handshake flight): arm EPOLLOUT, call read() then.
//                closed      the peer ended TLS (close_notify, or EOF after the handshake): like recv()=0.
//                error       error_reason() says why (handshake failure, renegotiation attempt, reset):
//                            close the socket; do not call shutdown().
//              After the handshake completes inside read(), application data that came in the same
//              flight is returned by the same call, so there is no lost wake-up.
//              After un-pausing reads (backpressure), call read() at once; do not wait for EPOLLIN.
//   flush:     r = s.write(iov)  -- the turn's corked output, any number of pieces. r.bytes were taken
//              (encrypted and sent, whole records). Queue iov from r.bytes on in the backlog, as after a
//              short sendmsg; want_write => arm EPOLLOUT. The pieces may be freed after the call returns.
//   EPOLLOUT:  r = s.write(backlog) and consume r.bytes (if the handshake is not done, read() instead).
//              OpenSSL's retry rule: after a write() that returned want_write/want_read, the next write()
//              must start with the same not-taken bytes (the backlog does this naturally) and pass at
//              least as many of them as before; where they live may change.
//   close:     once the backlog is empty, s.shutdown() sends close_notify (want_write: retry on EPOLLOUT),
//              then shutdown(fd, SHUT_WR) and linger with read() as before. close(fd) + reset() (or the
//              destructor) at the end; a session never closes the fd.
//
// Threading: a session belongs to one reactor thread. Without kTLS the write path uses a per-thread
// 16 KiB staging area to turn small pieces into full records (no allocation, nothing per connection).
// Memory per connection: the SSL object; record buffers only while bytes are in flight.
#pragma once
#include <openssl/ssl.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "tls/context.hpp"

namespace roomcast::tls {

struct SslDeleter {
    void operator()(SSL* s) const noexcept { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

enum class Status : std::uint8_t {
    ok,          // done: handshake complete, bytes moved, close_notify sent
    want_read,   // call again when the socket is readable
    want_write,  // call again when the socket is writable
    closed,      // the peer ended the TLS stream (close_notify, or EOF after the handshake)
    error,       // fatal; error_reason() says why. Close the socket.
};
const char* describe(Status s) noexcept;

// bytes: plaintext moved by this call (read into the caller's buffer / taken for sending). Valid with
// every status: consume them first, then act on the status.
struct IoResult {
    Status status;
    std::size_t bytes;
};

class TlsSession {
public:
    // Plaintext per TLS record; write() aims for full records.
    static constexpr std::size_t record_bytes = SSL3_RT_MAX_PLAIN_LENGTH;

    TlsSession() noexcept = default;  // empty; open() starts it
    TlsSession(TlsSession&&) noexcept = default;
    TlsSession& operator=(TlsSession&&) noexcept = default;

    // Starts a server session on `fd` (connected, non-blocking; stays owned by the caller). The session
    // keeps its own reference on ctx's SSL_CTX, so a reload does not affect it. ok or error (no memory).
    Status open(const TlsContext& ctx, int fd) noexcept;
    // Frees the SSL object (no close_notify; call shutdown() first for a clean end). Safe when empty.
    void reset() noexcept;
    bool is_open() const noexcept { return ssl_ != nullptr; }

    // One non-blocking handshake step: ok once complete (then stays ok), want_read/want_write, or error.
    Status handshake() noexcept;
    // Decrypts into `into` (non-empty) until it is full or the socket has nothing more. See the rules above.
    IoResult read(std::span<std::byte> into) noexcept;
    // Encrypts and sends the pieces in order, in full records where it can. bytes = how many were taken.
    IoResult write(std::span<const iovec> pieces) noexcept;
    IoResult write(std::span<const std::byte> bytes) noexcept;
    // Sends close_notify once (ok; also ok when there is nothing to say: no handshake, failed session).
    // Call only when every earlier write() was fully taken. want_write: call again when writable.
    Status shutdown() noexcept;

    bool handshake_done() const noexcept { return handshake_done_; }
    // After a write() that did not take everything: how many of the first not-taken bytes are already
    // inside an encrypted record waiting for the socket. They must be offered again unchanged, so a
    // backlog policy that drops or conflates queued messages must keep the message(s) covering them.
    std::size_t locked_bytes() const noexcept { return retry_len_; }
    // Bytes inside OpenSSL (decrypted or still encrypted) that read() can return without a socket read.
    bool has_buffered_input() const noexcept { return ssl_ && SSL_has_pending(ssl_.get()) == 1; }

    // After the handshake:
    std::string_view alpn() const noexcept;  // "http/1.1", or empty if the client sent no ALPN
    const char* protocol() const noexcept;   // "TLSv1.3", "TLSv1.2"
    int protocol_version() const noexcept;   // TLS1_3_VERSION ...
    const char* cipher() const noexcept;
    bool session_reused() const noexcept;    // resumed from a session ticket
    bool ktls_send() const noexcept;         // the kernel encrypts what we send (write() is then a sendmsg)
    bool ktls_recv() const noexcept;         // the kernel decrypts what we receive
    bool peer_attempted_renegotiation() const noexcept;

    // Why the last call returned error or closed. Static storage; never null.
    const char* error_reason() const noexcept { return reason_; }
    // For tests and diagnostics; owned by the session.
    SSL* native() const noexcept { return ssl_.get(); }

private:
    Status fail(const char* reason) noexcept;
    Status on_ssl_failure(int ret, int saved_errno) noexcept;
    IoResult write_direct(std::span<const iovec> pieces) noexcept;

    SslPtr ssl_;
    const char* reason_ = "";
    std::uint32_t retry_len_ = 0;  // length the next SSL_write must repeat (OpenSSL's retry rule), or 0
    bool handshake_done_ = false;
    bool direct_send_ = false;     // kTLS send is on: application data bypasses SSL_write
    bool failed_ = false;          // a fatal error happened: no more I/O, no close_notify
    bool shutdown_sent_ = false;
};

}  // namespace roomcast::tls
