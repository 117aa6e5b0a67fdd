#include "server/flags.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace roomcast::server {
namespace {

FlagsResult parse(std::vector<const char*> args, Config& cfg, std::string& err) {
    args.insert(args.begin(), "roomcast");
    return parse_flags(static_cast<int>(args.size()), const_cast<char**>(args.data()), cfg, err);
}

TEST(Flags, DefaultsServeOnLoopback8080) {
    Config cfg;
    std::string err;
    EXPECT_EQ(parse({}, cfg, err), FlagsResult::run);
    EXPECT_EQ(cfg.listen, "127.0.0.1:8080");
}

TEST(Flags, ParsesEveryValueForm) {
    Config cfg;
    std::string err;
    ASSERT_EQ(parse({"--listen", "[::1]:0", "--threads=3", "--pin", "--max-message-size", "64K", "--idle-timeout", "2s",
                     "--ping-interval", "250ms", "--drain-timeout", "1500", "--subprotocols", "chat, superchat"},
                    cfg, err),
              FlagsResult::run)
        << err;
    EXPECT_EQ(cfg.listen, "[::1]:0");
    EXPECT_EQ(cfg.threads, 3u);
    EXPECT_TRUE(cfg.pin);
    EXPECT_EQ(cfg.max_message_bytes, 65536u);
    EXPECT_EQ(cfg.idle_timeout_ms, 2000u);
    EXPECT_EQ(cfg.ping_interval_ms, 250u);
    EXPECT_EQ(cfg.drain_timeout_ms, 1500u);
    EXPECT_EQ(cfg.subprotocols, (std::vector<std::string>{"chat", "superchat"}));
}

TEST(Flags, BadValuesAreOneLineErrors) {
    for (std::vector<const char*> bad : std::vector<std::vector<const char*>>{
             {"--threads", "0"}, {"--threads", "x"}, {"--listen", "localhost:80"}, {"--listen", "1.2.3.4:70000"},
             {"--max-message-size", "-1"}, {"--idle-timeout", "5h"}, {"--nope"}, {"--threads"}, {"--pin=1"},
             {"--log-level", "loud"}, {"--simd", "neon"}}) {
        Config cfg;
        std::string err;
        EXPECT_EQ(parse(bad, cfg, err), FlagsResult::error) << bad[0];
        EXPECT_FALSE(err.empty());
        EXPECT_EQ(err.find('\n'), std::string::npos);
    }
}

TEST(Flags, RoomMemoryTakesBytesWithAFloor) {
    Config cfg;
    std::string err;
    EXPECT_EQ(cfg.room_memory_bytes, std::size_t{1} << 30);  // 1G by default
    ASSERT_EQ(parse({"--room-memory", "64M"}, cfg, err), FlagsResult::run) << err;
    EXPECT_EQ(cfg.room_memory_bytes, std::size_t{64} << 20);
    ASSERT_EQ(parse({"--room-memory=64K"}, cfg, err), FlagsResult::run) << err;
    EXPECT_EQ(cfg.room_memory_bytes, std::size_t{64} << 10);
    for (const char* bad : {"63K", "0", "x", "-1", "1T"}) {
        EXPECT_EQ(parse({"--room-memory", bad}, cfg, err), FlagsResult::error) << bad;
        EXPECT_NE(err.find("--room-memory"), std::string::npos) << err;
    }
    EXPECT_NE(help_text().find("--room-memory BYTES"), std::string::npos);
    EXPECT_NE(help_text().find("refused [1G]"), std::string::npos);
}

TEST(Flags, HelpListsEveryFlagWithDefault) {
    Config cfg;
    std::string err;
    EXPECT_EQ(parse({"--help"}, cfg, err), FlagsResult::help);
    const std::string h = help_text();
    for (const char* f : {"--listen", "--threads", "--pin", "--max-connections", "--max-message-size", "--max-header-bytes",
                          "--handshake-timeout", "--idle-timeout", "--ping-interval", "--drain-timeout", "--subprotocols",
                          "--log-level", "--simd"})
        EXPECT_NE(h.find(f), std::string::npos) << f;
}

TEST(Flags, DurationAndSizeParsers) {
    std::uint32_t ms;
    EXPECT_TRUE(parse_duration_ms("1m", ms));
    EXPECT_EQ(ms, 60000u);
    EXPECT_FALSE(parse_duration_ms("", ms));
    EXPECT_FALSE(parse_duration_ms("99999999999", ms));
    std::size_t b;
    EXPECT_TRUE(parse_size_bytes("1G", b));
    EXPECT_EQ(b, 1u << 30);
    EXPECT_FALSE(parse_size_bytes("1T", b));
}

}  // namespace
}  // namespace roomcast::server
