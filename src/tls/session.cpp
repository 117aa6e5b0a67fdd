#include "tls/session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <climits>
#include <cerrno>
#include <cstring>

#include "net/sys.hpp"

namespace roomcast::tls {

namespace {

// ex_data slot where the record callback marks a renegotiation attempt. One index per process.
int renegotiation_index() noexcept {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

// Any non-null pointer marks the flag; ex_data stores pointers.
char renegotiation_marker;

// Called by OpenSSL for every record header it reads. With TLS 1.2, a handshake record after the
// handshake finished can only be a ClientHello starting a renegotiation (HelloRequest goes the other
// way). SSL_OP_NO_RENEGOTIATION already makes OpenSSL refuse it with a no_renegotiation warning and
// carry on; we end the connection instead (issue 6: renegotiation attempts are an error).
// TLS 1.3 post-handshake messages travel as application_data records, and a plaintext handshake record
// there is already a fatal error inside OpenSSL.
void on_record(int write_p, int, int content_type, const void* buf, std::size_t len, SSL* ssl, void*) {
    if (write_p || content_type != SSL3_RT_HEADER || len < 1) return;
    if (static_cast<const unsigned char*>(buf)[0] != SSL3_RT_HANDSHAKE) return;
    if (!SSL_is_init_finished(ssl) || SSL_version(ssl) >= TLS1_3_VERSION) return;
    SSL_set_ex_data(ssl, renegotiation_index(), &renegotiation_marker);
}

// Gathers small pieces into one record. One per reactor thread; used only inside one write() call.
thread_local std::byte stage[TlsSession::record_bytes];

}  // namespace

const char* describe(Status s) noexcept {
    switch (s) {
    case Status::ok: return "ok";
    case Status::want_read: return "want_read";
    case Status::want_write: return "want_write";
    case Status::closed: return "closed";
    case Status::error: return "error";
    }
    return "?";
}

Status TlsSession::open(const TlsContext& ctx, int fd) noexcept {
    reset();
    SslPtr s(SSL_new(ctx.native()));
    if (!s || SSL_set_fd(s.get(), fd) != 1) {
        ERR_clear_error();
        return fail("SSL_new/SSL_set_fd failed (out of memory)");
    }
    SSL_set_accept_state(s.get());
    SSL_set_msg_callback(s.get(), on_record);
    ssl_ = std::move(s);
    return Status::ok;
}

void TlsSession::reset() noexcept {
    ssl_.reset();
    reason_ = "";
    retry_len_ = 0;
    handshake_done_ = false;
    direct_send_ = false;
    failed_ = false;
    shutdown_sent_ = false;
}

Status TlsSession::fail(const char* reason) noexcept {
    failed_ = true;
    reason_ = reason;
    return Status::error;
}

// Maps a failed SSL_* call to a status. Every path that is not a plain "would block" leaves the
// thread's error queue empty, so the next SSL_get_error on this reactor is not misled by stale entries.
Status TlsSession::on_ssl_failure(int ret, int saved_errno) noexcept {
    switch (SSL_get_error(ssl_.get(), ret)) {
    case SSL_ERROR_WANT_READ:
        return Status::want_read;
    case SSL_ERROR_WANT_WRITE:
        return Status::want_write;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
        ERR_clear_error();
        reason_ = "peer sent close_notify";
        return Status::closed;
    case SSL_ERROR_SYSCALL:  // a socket error (ECONNRESET, EPIPE); errno 0 = EOF outside a record
        ERR_clear_error();
        if (saved_errno == 0) {
            if (!handshake_done_) return fail("peer closed the connection during the TLS handshake");
            failed_ = true;
            reason_ = "peer closed the connection without close_notify";
            return Status::closed;
        }
        return fail(strerrordesc_np(saved_errno));
    case SSL_ERROR_SSL: {
        const unsigned long e = ERR_peek_error();
        const char* why = ERR_reason_error_string(e);
        ERR_clear_error();
        // OpenSSL 3 reports a bare EOF as this error. After the handshake the WebSocket layer sees any
        // truncation itself (no close frame = 1006), so an EOF then is an ordinary end of stream.
        if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            if (!handshake_done_) return fail("peer closed the connection during the TLS handshake");
            failed_ = true;
            reason_ = "peer closed the connection without close_notify";
            return Status::closed;
        }
        return fail(why ? why : "TLS protocol error");
    }
    default:
        ERR_clear_error();
        return fail("unexpected SSL_get_error result");
    }
}

Status TlsSession::handshake() noexcept {
    if (!ssl_ || failed_) return Status::error;
    if (handshake_done_) return Status::ok;
    errno = 0;
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) {
        handshake_done_ = true;
        // OpenSSL switches the socket to kTLS (if it can) when it installs the traffic keys, which is
        // before the handshake completes; from here on the answer does not change.
        direct_send_ = BIO_get_ktls_send(SSL_get_wbio(ssl_.get())) != 0;
        return Status::ok;
    }
    return on_ssl_failure(r, errno);
}

IoResult TlsSession::read(std::span<std::byte> into) noexcept {
    if (!ssl_ || failed_) return {Status::error, 0};
    if (!handshake_done_) {
        const Status h = handshake();
        if (h != Status::ok) return {h, 0};
    }
    std::size_t total = 0;
    while (total < into.size()) {
        std::size_t n = 0;
        errno = 0;
        const int r = SSL_read_ex(ssl_.get(), into.data() + total, into.size() - total, &n);
        const int saved_errno = errno;
        if (SSL_get_ex_data(ssl_.get(), renegotiation_index())) {
            ERR_clear_error();
            return {fail("peer attempted TLS renegotiation (refused)"), total};
        }
        if (r == 1) {
            total += n;
            continue;
        }
        return {on_ssl_failure(r, saved_errno), total};
    }
    return {Status::ok, total};
}

IoResult TlsSession::write(std::span<const std::byte> bytes) noexcept {
    const iovec one{const_cast<std::byte*>(bytes.data()), bytes.size()};
    return write(std::span<const iovec>(&one, 1));
}

IoResult TlsSession::write(std::span<const iovec> pieces) noexcept {
    if (!ssl_ || failed_) return {Status::error, 0};
    if (!handshake_done_) {
        const Status h = handshake();
        if (h != Status::ok) return {h, 0};
    }
    if (direct_send_) return write_direct(pieces);
    std::size_t last_nonempty = 0;
    for (std::size_t k = 0; k < pieces.size(); ++k)
        if (pieces[k].iov_len) last_nonempty = k;
    std::size_t taken = 0;
    std::size_t i = 0;    // cursor: piece index
    std::size_t off = 0;  // cursor: offset inside piece i
    for (;;) {
        while (i < pieces.size() && off == pieces[i].iov_len) {
            ++i;
            off = 0;
        }
        if (i == pieces.size()) return {Status::ok, taken};

        // Each SSL_write gets at most one record (PARTIAL_WRITE returns after each record anyway), so a
        // failed call leaves at most one record for the retry, and the retry length stays bounded.
        // After a failure OpenSSL wants the same length again (the record is already encrypted).
        const std::size_t want = retry_len_ ? retry_len_ : record_bytes;
        const std::byte* src = static_cast<const std::byte*>(pieces[i].iov_base) + off;
        std::size_t len = pieces[i].iov_len - off;
        const bool last_piece = i == last_nonempty;
        if (len >= want) {
            len = want;  // straight from the caller's memory
        } else if (!(last_piece && retry_len_ == 0)) {
            // Gather this piece and the next ones into the stage until one record is full: a small piece
            // (a frame header before its payload) then shares a record instead of costing one.
            std::size_t staged = 0, gi = i, goff = off;
            while (staged < want && gi < pieces.size()) {
                const std::size_t avail = pieces[gi].iov_len - goff;
                const std::size_t n = avail < want - staged ? avail : want - staged;
                if (n) std::memcpy(stage + staged, static_cast<const std::byte*>(pieces[gi].iov_base) + goff, n);
                staged += n;
                goff += n;
                if (goff == pieces[gi].iov_len) {
                    ++gi;
                    goff = 0;
                }
            }
            if (retry_len_ && staged < retry_len_)
                return {fail("TLS write retried with fewer bytes than the write that blocked"), taken};
            src = stage;
            len = staged;
        }

        std::size_t written = 0;
        errno = 0;
        const int r = SSL_write_ex(ssl_.get(), src, len, &written);
        if (r != 1) {
            const int saved_errno = errno;
            const Status s = on_ssl_failure(r, saved_errno);
            if (s == Status::want_read || s == Status::want_write) retry_len_ = static_cast<std::uint32_t>(len);
            return {s, taken};
        }
        retry_len_ = 0;
        taken += written;
        // Advance the cursor by `written` (the whole chunk, or less if the peer negotiated smaller records).
        for (std::size_t left = written; left > 0;) {
            const std::size_t avail = pieces[i].iov_len - off;
            const std::size_t n = avail < left ? avail : left;
            off += n;
            left -= n;
            if (off == pieces[i].iov_len && left > 0) {
                ++i;
                off = 0;
            }
        }
    }
}

// kTLS send: the kernel frames and encrypts, so application data is a plain sendmsg of the pieces
// (one call, no copy, no coalescing needed, the kernel's partial-write rules). This also avoids an
// OpenSSL 3.0 trap: with kTLS its pending write keeps pointing at the caller's buffer, whatever
// SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER says, and the reactor's staging memory is gone by the retry.
// Control records (alerts, tickets) still go through OpenSSL, which marks their record type.
IoResult TlsSession::write_direct(std::span<const iovec> pieces) noexcept {
    const int fd = SSL_get_fd(ssl_.get());
    std::size_t taken = 0;
    while (!pieces.empty()) {
        const std::size_t count = pieces.size() < IOV_MAX ? pieces.size() : IOV_MAX;
        std::size_t want = 0;
        for (std::size_t k = 0; k < count; ++k) want += pieces[k].iov_len;
        const ssize_t r = net::sys::send_iov(fd, pieces.data(), static_cast<int>(count));
        if (r == -EAGAIN || r == -EWOULDBLOCK) return {Status::want_write, taken};
        if (r < 0) return {fail(strerrordesc_np(static_cast<int>(-r))), taken};
        taken += static_cast<std::size_t>(r);
        if (static_cast<std::size_t>(r) < want) return {Status::want_write, taken};
        pieces = pieces.subspan(count);
    }
    return {Status::ok, taken};
}

Status TlsSession::shutdown() noexcept {
    if (!ssl_ || failed_ || !handshake_done_ || shutdown_sent_) return Status::ok;
    // A blocked record must go out before the alert; OpenSSL cannot queue an alert behind it.
    if (retry_len_) return Status::want_write;
    errno = 0;
    const int r = SSL_shutdown(ssl_.get());
    if (r >= 0) {  // 0: ours sent, the peer's not seen yet; 1: both. We do not wait for the peer's.
        shutdown_sent_ = true;
        return Status::ok;
    }
    const Status s = on_ssl_failure(r, errno);
    return s == Status::closed ? Status::ok : s;
}

std::string_view TlsSession::alpn() const noexcept {
    if (!ssl_) return {};
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl_.get(), &p, &n);
    return p ? std::string_view(reinterpret_cast<const char*>(p), n) : std::string_view{};
}

const char* TlsSession::protocol() const noexcept { return ssl_ ? SSL_get_version(ssl_.get()) : ""; }

int TlsSession::protocol_version() const noexcept { return ssl_ ? SSL_version(ssl_.get()) : 0; }

const char* TlsSession::cipher() const noexcept {
    if (!ssl_) return "";
    const char* name = SSL_get_cipher_name(ssl_.get());
    return name ? name : "";
}

bool TlsSession::session_reused() const noexcept { return ssl_ && SSL_session_reused(ssl_.get()) == 1; }

bool TlsSession::ktls_send() const noexcept { return ssl_ && BIO_get_ktls_send(SSL_get_wbio(ssl_.get())); }

bool TlsSession::ktls_recv() const noexcept { return ssl_ && BIO_get_ktls_recv(SSL_get_rbio(ssl_.get())); }

bool TlsSession::peer_attempted_renegotiation() const noexcept {
    return ssl_ && SSL_get_ex_data(ssl_.get(), renegotiation_index()) != nullptr;
}

}  // namespace roomcast::tls
