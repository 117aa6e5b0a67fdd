#include "tls/context.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "tls/session.hpp"
#include "tls_test_util.hpp"

namespace roomcast::tls {
namespace {

using namespace testing;

// A load error is one line that names the file it is about.
void expect_one_line_naming(const std::string& error, const std::string& path) {
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_EQ(ERR_peek_error(), 0u) << "the thread's OpenSSL error queue must be left empty";
}

TEST(TlsContext, LoadsChainAndKeyWithTheServerPolicy) {
    TempDir dir;
    const CertFiles f = make_cert_files(dir, "localhost");
    std::string error;
    auto ctx = TlsContext::load(f.cert, f.key, error);
    ASSERT_TRUE(ctx) << error;
    EXPECT_TRUE(error.empty());
    SSL_CTX* c = ctx->native();
    EXPECT_EQ(SSL_CTX_get_min_proto_version(c), TLS1_2_VERSION);
    EXPECT_EQ(SSL_CTX_get_max_proto_version(c), TLS1_3_VERSION);
    const std::uint64_t opts = SSL_CTX_get_options(c);
    EXPECT_TRUE(opts & SSL_OP_NO_RENEGOTIATION);
    EXPECT_TRUE(opts & SSL_OP_ENABLE_KTLS);
    EXPECT_FALSE(opts & SSL_OP_NO_TICKET) << "session tickets stay on";
    const long mode = SSL_CTX_get_mode(c);
    EXPECT_TRUE(mode & SSL_MODE_RELEASE_BUFFERS);
    EXPECT_TRUE(mode & SSL_MODE_ENABLE_PARTIAL_WRITE);
    EXPECT_TRUE(mode & SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    EXPECT_EQ(ctx->cert_chain_path(), f.cert);
}

TEST(TlsContext, Tls12CipherListIsEcdheAeadOnly) {
    TempDir dir;
    const CertFiles f = make_cert_files(dir, "localhost");
    std::string error;
    auto ctx = TlsContext::load(f.cert, f.key, error);
    ASSERT_TRUE(ctx) << error;
    STACK_OF(SSL_CIPHER)* list = SSL_CTX_get_ciphers(ctx->native());
    ASSERT_NE(list, nullptr);
    for (int i = 0; i < sk_SSL_CIPHER_num(list); ++i) {
        const SSL_CIPHER* c = sk_SSL_CIPHER_value(list, i);
        const std::string name = SSL_CIPHER_get_name(c);
        if (name.rfind("TLS_", 0) == 0) continue;  // TLS 1.3 suites: OpenSSL's defaults, all AEAD
        EXPECT_EQ(name.rfind("ECDHE-", 0), 0u) << name;
        EXPECT_TRUE(SSL_CIPHER_is_aead(c)) << name;
    }
}

TEST(TlsContext, MissingCertificateFileNamesFileAndReason) {
    TempDir dir;
    const CertFiles f = make_cert_files(dir, "localhost");
    const std::string missing = dir.file("nope.pem");
    std::string error;
    EXPECT_FALSE(TlsContext::load(missing, f.key, error));
    expect_one_line_naming(error, missing);
    EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

TEST(TlsContext, MissingKeyFileNamesFileAndReason) {
    TempDir dir;
    const CertFiles f = make_cert_files(dir, "localhost");
    const std::string missing = dir.file("nokey.pem");
    std::string error;
    EXPECT_FALSE(TlsContext::load(f.cert, missing, error));
    expect_one_line_naming(error, missing);
    EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

TEST(TlsContext, GarbageCertificatePemIsRejected) {
    TempDir dir;
    const CertFiles f = make_cert_files(dir, "localhost");
    const std::string garbage = dir.file("garbage.pem");
    write_file(garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n");
    std::string error;
    EXPECT_FALSE(TlsContext::load(garbage, f.key, error));
    expect_one_line_naming(error, garbage);
}

TEST(TlsContext, NonPemCertificateIsRejected) {
    TempDir dir;
    const CertFiles f = make_cert_files(dir, "localhost");
    const std::string text = dir.file("text.pem");
    write_file(text, "hello, I am not a certificate\n");
    std::string error;
    EXPECT_FALSE(TlsContext::load(text, f.key, error));
    expect_one_line_naming(error, text);
    EXPECT_NE(error.find("no start line"), std::string::npos) << error;
}

TEST(TlsContext, GarbageKeyPemIsRejected) {
    TempDir dir;
    const CertFiles f = make_cert_files(dir, "localhost");
    const std::string garbage = dir.file("garbage-key.pem");
    write_file(garbage, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    std::string error;
    EXPECT_FALSE(TlsContext::load(f.cert, garbage, error));
    expect_one_line_naming(error, garbage);
}

TEST(TlsContext, KeyOfAnotherCertificateIsAMismatch) {
    TempDir dir;
    const CertFiles a = make_cert_files(dir, "localhost", "a-");
    const CertFiles b = make_cert_files(dir, "localhost", "b-");
    std::string error;
    EXPECT_FALSE(TlsContext::load(a.cert, b.key, error));
    expect_one_line_naming(error, b.key);
    EXPECT_NE(error.find("does not match"), std::string::npos) << error;
    EXPECT_NE(error.find(a.cert), std::string::npos) << error;
}

TEST(TlsContext, EncryptedKeyFailsInsteadOfPrompting) {
    TempDir dir;
    PkeyPtr key = make_key();
    X509Ptr cert = make_cert(key.get(), "localhost", nullptr, nullptr, false);
    const std::string cert_path = dir.file("cert.pem"), key_path = dir.file("enc-key.pem");
    write_file(cert_path, pem_of(cert.get()));
    write_file(key_path, pem_of(key.get(), "secret"));
    std::string error;
    EXPECT_FALSE(TlsContext::load(cert_path, key_path, error));
    expect_one_line_naming(error, key_path);
}

TEST(TlsContextHolder, EmptyUntilLoadedAndReloadNeedsALoad) {
    TlsContextHolder holder;
    EXPECT_EQ(holder.current(), nullptr);
    EXPECT_EQ(holder.generation(), 0u);
    EXPECT_FALSE(holder.reload().empty());
}

TEST(TlsContextHolder, BadReloadKeepsTheCurrentContext) {
    TempDir dir;
    const CertFiles f = make_cert_files(dir, "localhost");
    TlsContextHolder holder;
    ASSERT_EQ(holder.load(f.cert, f.key), "");
    const auto before = holder.current();
    ASSERT_TRUE(before);
    EXPECT_EQ(holder.generation(), 1u);

    write_file(f.cert, "truncated by an editor\n");
    const std::string error = holder.reload();
    EXPECT_FALSE(error.empty());
    EXPECT_NE(error.find(f.cert), std::string::npos) << error;
    EXPECT_EQ(holder.current(), before);
    EXPECT_EQ(holder.generation(), 1u);

    // A bad first load of other paths does not replace the remembered ones either.
    EXPECT_FALSE(holder.load(dir.file("missing.pem"), f.key).empty());
    EXPECT_EQ(holder.current(), before);
}

TEST(TlsContextHolder, ReloadPicksUpNewFilesAndBumpsGeneration) {
    TempDir dir;
    const CertFiles a = make_cert_files(dir, "a.test");
    TlsContextHolder holder;
    ASSERT_EQ(holder.load(a.cert, a.key), "");
    const auto first = holder.current();
    const CertFiles b = make_cert_files(dir, "b.test", "b-");
    std::filesystem::copy_file(b.cert, a.cert, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(b.key, a.key, std::filesystem::copy_options::overwrite_existing);
    ASSERT_EQ(holder.reload(), "");
    EXPECT_NE(holder.current(), first);
    EXPECT_EQ(holder.generation(), 2u);
    X509* leaf = SSL_CTX_get0_certificate(holder.current()->native());
    ASSERT_NE(leaf, nullptr);
    char cn[64] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
    EXPECT_STREQ(cn, "b.test");
}

// scripts/gen-cert.sh: its output loads, and a verifying client accepts it for localhost and
// 127.0.0.1. Running it twice keeps the same files.
TEST(GenCertScript, MakesACaAndServerCertificateThatVerify) {
    namespace fs = std::filesystem;
    const fs::path script = fs::path(__FILE__).parent_path() / ".." / ".." / "scripts" / "gen-cert.sh";
    if (!fs::exists(script)) GTEST_SKIP() << "run from the repository root: " << script;
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
    TempDir dir;
    const std::string out = dir.file("certs");
    const std::string cmd = script.string() + " " + out + " >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const auto first_write = fs::last_write_time(out + "/server.pem");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    EXPECT_EQ(fs::last_write_time(out + "/server.pem"), first_write) << "second run must not rewrite";

    std::string error;
    auto ctx = TlsContext::load(out + "/server.pem", out + "/server-key.pem", error);
    ASSERT_TRUE(ctx) << error;
    for (const char* ip : {static_cast<const char*>("127.0.0.1"), "::1", static_cast<const char*>(nullptr)}) {
        const std::string ca = out + "/ca.pem";
        ClientOptions o;
        o.verify_ca = ca.c_str();
        ClientCtxPtr cctx = make_client_ctx(o);
        SocketPair sp = make_socket_pair();
        ClientPtr client = make_client(cctx.get(), sp.client.get());
        if (ip) {
            SSL_set1_host(client.get(), nullptr);
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(client.get()), ip);
        }
        TlsSession server;
        ASSERT_EQ(server.open(*ctx, sp.server.get()), Status::ok);
        const HandshakeOutcome h = run_handshake(client.get(), server);
        EXPECT_TRUE(h.client_ok) << (ip ? ip : "localhost");
        EXPECT_EQ(h.server, Status::ok) << server.error_reason();
        EXPECT_EQ(SSL_get_verify_result(client.get()), X509_V_OK);
    }
}

}  // namespace
}  // namespace roomcast::tls
