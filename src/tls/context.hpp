// TLS server configuration: one SSL_CTX built from a certificate chain and a private key (PEM files),
// and a holder that swaps it on SIGHUP while open connections keep the one they started with.
//
// Policy (issue 6): TLS 1.2 minimum, TLS 1.3 maximum; TLS 1.2 suites are ECDHE with AES-GCM or
// ChaCha20-Poly1305 only, TLS 1.3 suites are OpenSSL's defaults. ALPN: "http/1.1" is selected when the
// client offers it; a client that offers ALPN but not http/1.1 gets a fatal no_application_protocol
// alert (RFC 7301 §3.2 "SHALL"; it could not speak to us anyway); a client without ALPN is served.
// Session tickets are on (stateless, so no lock is shared between reactors); the server-side session
// cache is off. Renegotiation is refused. kTLS is requested (SSL_OP_ENABLE_KTLS) and used where the
// kernel has the "tls" ULP; TlsSession::ktls_send()/ktls_recv() say whether it took.
//
// Thread safety: a TlsContext is immutable after load() and may be used by every reactor at once.
// SSL_new() takes its own reference on the SSL_CTX, so a session outlives a reload safely.
#pragma once
#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace roomcast::tls {

struct SslCtxDeleter {
    void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// The ALPN protocol we speak. Exposed for tests and for logging.
inline constexpr const char* alpn_http11 = "http/1.1";

class TlsContext {
public:
    // Builds a server context from a PEM certificate chain (leaf first) and a PEM private key.
    // On failure returns nullptr and sets `error` to one line naming the file and OpenSSL's reason,
    // e.g. "certificate chain /etc/x.pem: No such file or directory". Clears the thread's error queue.
    // Startup / reload path only (allocates, reads files); does not throw on bad input.
    static std::shared_ptr<const TlsContext> load(const std::string& cert_chain_path, const std::string& key_path,
                                                  std::string& error);

    // The SSL_CTX, for SSL_new(). Owned by this object; valid while it lives.
    SSL_CTX* native() const noexcept { return ctx_.get(); }
    const std::string& cert_chain_path() const noexcept { return cert_path_; }
    const std::string& key_path() const noexcept { return key_path_; }

    explicit TlsContext(SslCtxPtr ctx, std::string cert_path, std::string key_path) noexcept
        : ctx_(std::move(ctx)), cert_path_(std::move(cert_path)), key_path_(std::move(key_path)) {}

private:
    SslCtxPtr ctx_;
    std::string cert_path_;
    std::string key_path_;
};

// The context new connections use. Reactors call current() once per accepted TLS connection (accept is
// not the hot path; the load is a short lock inside std::atomic<std::shared_ptr>). load()/reload()
// run on the signal-handling thread.
class TlsContextHolder {
public:
    // Loads the files and, on success, publishes the new context and remembers the paths.
    // Returns "" on success, else the one-line reason; on failure the previous context stays current.
    std::string load(const std::string& cert_chain_path, const std::string& key_path);
    // load() with the remembered paths (SIGHUP). Returns "" or the reason; the old context stays on failure.
    // A reload also rotates the session-ticket keys: tickets issued before it fall back to a full handshake.
    std::string reload();

    // The context for a new connection; nullptr before the first successful load().
    std::shared_ptr<const TlsContext> current() const noexcept { return current_.load(std::memory_order_acquire); }
    // Bumps on every successful load/reload: a reactor may cache current() and re-read it when this changes.
    std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

private:
    std::mutex reload_mu_;  // serializes load/reload; readers never take it
    std::string cert_path_;
    std::string key_path_;
    std::atomic<std::shared_ptr<const TlsContext>> current_;
    std::atomic<std::uint64_t> generation_{0};
};

}  // namespace roomcast::tls
