#include "http/origin.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace roomcast::http {
namespace {

TEST(Origin, EmptyListAllowsAnything) { EXPECT_TRUE(origin_allowed("https://x.test", {})); }

TEST(Origin, BareHostMatchesExactlyWithAnySchemeAndPort) {
    const std::vector<std::string> allow = {"example.com"};
    EXPECT_TRUE(origin_allowed("https://example.com", allow));
    EXPECT_TRUE(origin_allowed("http://EXAMPLE.com:8080", allow));
    EXPECT_FALSE(origin_allowed("https://evil-example.com", allow));   // prefix trick
    EXPECT_FALSE(origin_allowed("https://example.com.evil.test", allow));  // suffix trick
    EXPECT_FALSE(origin_allowed("https://sub.example.com", allow));
    EXPECT_FALSE(origin_allowed("https://example.co", allow));
    EXPECT_FALSE(origin_allowed("https://user@example.com", allow));
}

TEST(Origin, FullOriginMatchesSchemeHostAndPort) {
    const std::vector<std::string> allow = {"https://app.example.com"};
    EXPECT_TRUE(origin_allowed("https://app.example.com", allow));
    EXPECT_TRUE(origin_allowed("https://app.example.com:443", allow));
    EXPECT_FALSE(origin_allowed("http://app.example.com", allow));
    EXPECT_FALSE(origin_allowed("https://app.example.com:8443", allow));
    const std::vector<std::string> with_port = {"http://localhost:3000"};
    EXPECT_TRUE(origin_allowed("http://localhost:3000", with_port));
    EXPECT_FALSE(origin_allowed("http://localhost:30000", with_port));
    EXPECT_FALSE(origin_allowed("http://localhost", with_port));
}

TEST(Origin, NullOnlyWhenListed) {
    EXPECT_FALSE(origin_allowed("null", std::vector<std::string>{"example.com"}));
    EXPECT_TRUE(origin_allowed("null", std::vector<std::string>{"null"}));
}

TEST(Origin, MalformedIsNeverAllowed) {
    const std::vector<std::string> allow = {"example.com"};
    for (const char* bad : {"", "example.com", "://example.com", "https://", "https://example.com:80x",
                            "https://exa mple.com", "https://example.com/path", "https://[::1"})
        EXPECT_FALSE(origin_allowed(bad, allow)) << bad;
}

TEST(Origin, Ipv6Hosts) {
    const std::vector<std::string> allow = {"http://[::1]:8080"};
    EXPECT_TRUE(origin_allowed("http://[::1]:8080", allow));
    EXPECT_FALSE(origin_allowed("http://[::2]:8080", allow));
}

}  // namespace
}  // namespace roomcast::http
