#include "tls/context.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <cstring>

namespace roomcast::tls {

namespace {

// TLS 1.2 suites: forward secrecy (ECDHE) and AEAD only, ECDSA and RSA certificates (Mozilla
// "intermediate" minus DHE). TLS 1.3 suites stay OpenSSL's defaults, which are all AEAD.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Any fixed bytes do: the id context only has to be the same for every connection of one server.
constexpr unsigned char session_id_context[] = "roomcast";

// The earliest entry in the thread's error queue is the root cause (later ones are callers adding
// context, e.g. "PEM lib" on top of "no start line"). Empties the queue.
std::string take_error_reason() {
    const unsigned long e = ERR_peek_error();
    std::string reason;
    if (e == 0) {
        reason = "unknown OpenSSL error";
    } else if (ERR_SYSTEM_ERROR(e)) {  // fopen and friends: the reason is an errno
        reason = strerrordesc_np(ERR_GET_REASON(e));
    } else if (const char* r = ERR_reason_error_string(e)) {
        reason = r;
    } else {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        reason = buf;
    }
    ERR_clear_error();
    return reason;
}

// RFC 7301 §3.2: pick http/1.1 if offered; if the client offered ALPN without it, a fatal
// no_application_protocol alert (the only protocol we speak after the handshake is HTTP/1.1).
// A client that sends no ALPN extension never reaches this callback and is served.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
    const std::size_t ours_len = std::strlen(alpn_http11);
    // `in` is the wire form (length-prefixed names); OpenSSL has already checked that it is well formed.
    for (unsigned int i = 0; i < in_len;) {
        const unsigned int len = in[i];
        if (i + 1 + len > in_len) break;
        if (len == ours_len && std::memcmp(in + i + 1, alpn_http11, ours_len) == 0) {
            *out = in + i + 1;
            *out_len = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// An encrypted key must fail with a reason, never prompt on the terminal.
int no_password(char*, int, int, void*) { return 0; }

}  // namespace

std::shared_ptr<const TlsContext> TlsContext::load(const std::string& cert_chain_path, const std::string& key_path,
                                                   std::string& error) {
    ERR_clear_error();  // a stale entry would be mistaken for our failure's reason
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
        error = "SSL_CTX_new: " + take_error_reason();
        return nullptr;
    }
    SSL_CTX* c = ctx.get();
    if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) || !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION)) {
        error = "SSL_CTX_set_min/max_proto_version: " + take_error_reason();
        return nullptr;
    }
    if (!SSL_CTX_set_cipher_list(c, tls12_ciphers)) {
        error = "SSL_CTX_set_cipher_list: " + take_error_reason();
        return nullptr;
    }
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_ENABLE_KTLS);
    // Session tickets stay on (SSL_OP_NO_TICKET unset). The stateful cache is off: tickets resume both
    // TLS 1.2 and 1.3 without a cache that every reactor would lock and that grows with clients.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    if (!SSL_CTX_set_session_id_context(c, session_id_context, sizeof session_id_context - 1)) {
        error = "SSL_CTX_set_session_id_context: " + take_error_reason();
        return nullptr;
    }
    // RELEASE_BUFFERS: an idle connection holds no record buffers. PARTIAL_WRITE: SSL_write returns
    // after each record, so TlsSession::write knows exactly how much went out. MOVING_WRITE_BUFFER:
    // a retried write may come from another address (the reactor's backlog instead of its scratch).
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Read ahead: one read(2) per record instead of two (header, then body). Costs kTLS receive on
    // TLS 1.2 (OpenSSL needs record boundaries to hand over); OpenSSL 3.0 has no TLS 1.3 kTLS receive.
    SSL_CTX_set_read_ahead(c, 1);
    SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
    SSL_CTX_set_default_passwd_cb(c, no_password);

    if (SSL_CTX_use_certificate_chain_file(c, cert_chain_path.c_str()) != 1) {
        error = "certificate chain " + cert_chain_path + ": " + take_error_reason();
        return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(c, key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
        // OpenSSL already compares the key with the certificate of the same type here.
        const unsigned long e = ERR_peek_error();
        const bool mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
        // OpenSSL 3's decoders say only "unsupported" for a file that holds no key they recognize.
        const bool no_key = ERR_GET_REASON(e) == ERR_R_UNSUPPORTED;
        error = "private key " + key_path + (mismatch ? " does not match certificate " + cert_chain_path : "") +
                ": " + take_error_reason() + (no_key ? " (no PEM private key found)" : "");
        return nullptr;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        error = "private key " + key_path + " does not match certificate " + cert_chain_path + ": " +
                take_error_reason();
        return nullptr;
    }
    ERR_clear_error();
    return std::make_shared<const TlsContext>(std::move(ctx), cert_chain_path, key_path);
}

std::string TlsContextHolder::load(const std::string& cert_chain_path, const std::string& key_path) {
    std::lock_guard lock(reload_mu_);
    std::string error;
    std::shared_ptr<const TlsContext> fresh = TlsContext::load(cert_chain_path, key_path, error);
    if (!fresh) return error;
    cert_path_ = cert_chain_path;
    key_path_ = key_path;
    // Release: a reactor that sees the new generation also sees the new context.
    current_.store(std::move(fresh), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    return {};
}

std::string TlsContextHolder::reload() {
    std::string cert, key;
    {
        std::lock_guard lock(reload_mu_);
        if (cert_path_.empty()) return "no certificate loaded yet";
        cert = cert_path_;
        key = key_path_;
    }
    return load(cert, key);
}

}  // namespace roomcast::tls
