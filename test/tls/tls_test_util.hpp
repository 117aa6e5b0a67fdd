// Shared by the TLS tests: throwaway certificates made with the OpenSSL API, a temporary directory,
// non-blocking socket pairs, a client SSL, and loops that drive a client SSL and a server TlsSession
// in one thread until they are done (bounded, so a bug fails the test instead of hanging it).
#pragma once
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "net/sys.hpp"
#include "tls/session.hpp"

namespace roomcast::tls::testing {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using ClientCtxPtr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using ClientPtr = std::unique_ptr<SSL, decltype(&SSL_free)>;
using SessionPtr = std::unique_ptr<SSL_SESSION, decltype(&SSL_SESSION_free)>;

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/roomcast-tls-XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        path_ = p ? p : "";
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

inline std::string pem_of(X509* x) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char* p = nullptr;
    const long n = BIO_get_mem_data(b, &p);
    std::string s(p, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

inline std::string pem_of(EVP_PKEY* k, const char* password = nullptr) {
    BIO* b = BIO_new(BIO_s_mem());
    if (password)
        PEM_write_bio_PrivateKey(b, k, EVP_aes_128_cbc(), reinterpret_cast<const unsigned char*>(password),
                                 static_cast<int>(std::strlen(password)), nullptr, nullptr);
    else
        PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* p = nullptr;
    const long n = BIO_get_mem_data(b, &p);
    std::string s(p, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

inline PkeyPtr make_key() { return PkeyPtr(EVP_EC_gen("P-256"), EVP_PKEY_free); }

inline void add_ext(X509* x, X509V3_CTX* ctx, int nid, const char* value) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

// A certificate for `key` named `cn`, signed by issuer/issuer_key (self-signed when issuer is null).
inline X509Ptr make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool is_ca) {
    static long serial = 1;
    X509Ptr x(X509_new(), X509_free);
    X509_set_version(x.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 30L * 24 * 3600);
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(x.get(), key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
    add_ext(x.get(), &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (!is_ca) add_ext(x.get(), &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    X509_sign(x.get(), issuer_key ? issuer_key : key, EVP_sha256());
    return x;
}

// ca.pem (trust anchor), <prefix>cert.pem (leaf named `cn`), <prefix>key.pem, in `dir`.
struct CertFiles {
    std::string ca, cert, key;
};

inline CertFiles make_cert_files(const TempDir& dir, const char* cn, const std::string& prefix = "") {
    PkeyPtr ca_key = make_key();
    X509Ptr ca = make_cert(ca_key.get(), "roomcast test CA", nullptr, nullptr, true);
    PkeyPtr key = make_key();
    X509Ptr leaf = make_cert(key.get(), cn, ca.get(), ca_key.get(), false);
    CertFiles f{dir.file(prefix + "ca.pem"), dir.file(prefix + "cert.pem"), dir.file(prefix + "key.pem")};
    write_file(f.ca, pem_of(ca.get()));
    write_file(f.cert, pem_of(leaf.get()));
    write_file(f.key, pem_of(key.get()));
    return f;
}

// The common name of the certificate the client was shown.
inline std::string peer_cn(SSL* client) {
    X509* x = SSL_get0_peer_certificate(client);
    if (!x) return {};
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
    return buf;
}

struct SocketPair {
    net::sys::UniqueFd client, server;
};

// AF_UNIX stream pair, both ends non-blocking. Ignores SIGPIPE (OpenSSL's socket BIO uses write(2)).
inline SocketPair make_socket_pair(int sndbuf_bytes = 0) {
    ::signal(SIGPIPE, SIG_IGN);
    int fds[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return {};
    if (sndbuf_bytes > 0) {
        ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf_bytes, sizeof sndbuf_bytes);
        ::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf_bytes, sizeof sndbuf_bytes);
    }
    return {net::sys::UniqueFd(fds[0]), net::sys::UniqueFd(fds[1])};
}

struct ClientOptions {
    int max_version = 0;             // 0 = library default (TLS 1.3)
    int min_version = 0;
    const char* alpn_wire = "\x08http/1.1";  // length-prefixed list; nullptr = no ALPN extension
    bool legacy = false;             // security level 0, so a TLS 1.0/1.1 ClientHello can be sent at all
    const char* verify_ca = nullptr; // CA file: verify the server (hostname "localhost")
};

inline ClientCtxPtr make_client_ctx(const ClientOptions& o = {}) {
    ClientCtxPtr ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (o.legacy) {
        SSL_CTX_set_security_level(ctx.get(), 0);
        SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0");
    }
    if (o.min_version) SSL_CTX_set_min_proto_version(ctx.get(), o.min_version);
    if (o.max_version) SSL_CTX_set_max_proto_version(ctx.get(), o.max_version);
    if (o.alpn_wire)
        SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(o.alpn_wire),
                                static_cast<unsigned>(std::strlen(o.alpn_wire)));
    if (o.verify_ca) {
        SSL_CTX_load_verify_locations(ctx.get(), o.verify_ca, nullptr);
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    }
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

inline ClientPtr make_client(SSL_CTX* ctx, int fd, SSL_SESSION* resume = nullptr) {
    ClientPtr c(SSL_new(ctx), SSL_free);
    SSL_set_fd(c.get(), fd);
    SSL_set_connect_state(c.get());
    SSL_set_tlsext_host_name(c.get(), "localhost");
    SSL_set1_host(c.get(), "localhost");
    if (resume) SSL_set_session(c.get(), resume);
    return c;
}

struct HandshakeOutcome {
    Status server = Status::want_read;
    bool client_ok = false;
    int client_error = SSL_ERROR_NONE;  // SSL_get_error of the client's failure
    int steps = 0;
};

// Steps both sides until each has finished or failed, or `max_steps` turns pass (a hang).
inline HandshakeOutcome run_handshake(SSL* client, TlsSession& server, int max_steps = 200) {
    HandshakeOutcome out;
    bool client_failed = false;
    for (out.steps = 0; out.steps < max_steps; ++out.steps) {
        if (!out.client_ok && !client_failed) {
            const int r = SSL_do_handshake(client);
            if (r == 1) {
                out.client_ok = true;
            } else {
                const int e = SSL_get_error(client, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    client_failed = true;
                    out.client_error = e;
                    ERR_clear_error();
                }
            }
        }
        if (out.server != Status::ok && out.server != Status::error) out.server = server.handshake();
        const bool server_over = out.server == Status::ok || out.server == Status::error;
        if ((out.client_ok || client_failed) && server_over) break;
    }
    return out;
}

// Reads whatever the client can read now into `sink`. Returns SSL_get_error of the last call
// (WANT_READ when drained, ZERO_RETURN on close_notify).
inline int client_drain(SSL* client, std::vector<std::byte>& sink) {
    for (;;) {
        std::byte buf[16384];
        std::size_t n = 0;
        const int r = SSL_read_ex(client, buf, sizeof buf, &n);
        if (r == 1) {
            sink.insert(sink.end(), buf, buf + n);
            continue;
        }
        const int e = SSL_get_error(client, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ERR_clear_error();
        return e;
    }
}

// The reactor's output path in miniature: write the pieces, keep what was not taken in a backlog,
// retry the backlog (from its front) when asked.
struct ReactorOut {
    std::vector<std::byte> backlog;
    Status last = Status::ok;

    void send(TlsSession& s, std::span<const iovec> pieces) {
        if (!backlog.empty()) {  // older bytes first: queue behind them
            for (const iovec& v : pieces) append(v);
            flush(s);
            return;
        }
        const IoResult r = s.write(pieces);
        last = r.status;
        std::size_t skip = r.bytes;
        for (const iovec& v : pieces) {
            if (skip >= v.iov_len) {
                skip -= v.iov_len;
                continue;
            }
            append({static_cast<std::byte*>(v.iov_base) + skip, v.iov_len - skip});
            skip = 0;
        }
    }
    void flush(TlsSession& s) {
        if (backlog.empty()) return;
        const IoResult r = s.write(std::span<const std::byte>(backlog));
        last = r.status;
        backlog.erase(backlog.begin(), backlog.begin() + static_cast<std::ptrdiff_t>(r.bytes));
    }
    void append(const iovec& v) {
        const auto* p = static_cast<const std::byte*>(v.iov_base);
        backlog.insert(backlog.end(), p, p + v.iov_len);
    }
};

inline std::vector<std::byte> pattern(std::size_t n, unsigned seed = 1) {
    std::vector<std::byte> v(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& b : v) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::byte>(x >> 24);
    }
    return v;
}

}  // namespace roomcast::tls::testing
