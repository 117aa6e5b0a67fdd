#include "ws/frame.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace roomcast::ws {
namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
    std::vector<std::byte> out;
    for (int b : v) out.push_back(std::byte(b));
    return out;
}

TEST(FrameHeader, DecodesSmallMaskedText) {
    auto b = bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d});  // RFC 6455 §5.7 "Hello" (masked)
    FrameHeader h;
    Error e = Error::none;
    ASSERT_EQ(decode_header(b.data(), b.size(), h, e), DecodeStatus::done);
    EXPECT_TRUE(h.fin);
    EXPECT_EQ(h.opcode, Opcode::text);
    EXPECT_TRUE(h.masked);
    EXPECT_EQ(h.payload_len, 5u);
    EXPECT_EQ(h.header_len, 6);
    EXPECT_EQ(h.rsv, 0);
}

TEST(FrameHeader, NeedsMoreForEveryPrefix) {
    auto b = bytes({0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4});
    for (std::size_t n = 0; n < b.size(); ++n) {
        FrameHeader h;
        Error e = Error::none;
        EXPECT_EQ(decode_header(b.data(), n, h, e), DecodeStatus::need_more) << n;
    }
    FrameHeader h;
    Error e = Error::none;
    ASSERT_EQ(decode_header(b.data(), b.size(), h, e), DecodeStatus::done);
    EXPECT_EQ(h.payload_len, 65536u);
    EXPECT_EQ(h.header_len, 14);
}

TEST(FrameHeader, RejectsNonMinimal16BitLength) {  // §5.2
    auto b = bytes({0x82, 0xFE, 0x00, 0x7D, 1, 2, 3, 4});
    FrameHeader h;
    Error e = Error::none;
    EXPECT_EQ(decode_header(b.data(), b.size(), h, e), DecodeStatus::failed);
    EXPECT_EQ(e, Error::length_not_minimal);
}

TEST(FrameHeader, RejectsNonMinimal64BitLength) {  // §5.2
    auto b = bytes({0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4});
    FrameHeader h;
    Error e = Error::none;
    EXPECT_EQ(decode_header(b.data(), b.size(), h, e), DecodeStatus::failed);
    EXPECT_EQ(e, Error::length_not_minimal);
}

TEST(FrameHeader, RejectsTopBitOf64BitLength) {  // §5.2: 2^63
    auto b = bytes({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4});
    FrameHeader h;
    Error e = Error::none;
    EXPECT_EQ(decode_header(b.data(), b.size(), h, e), DecodeStatus::failed);
    EXPECT_EQ(e, Error::length_top_bit);
}

TEST(FrameHeader, ReportsRsvBitsAndOpcode) {
    auto b = bytes({0x7F, 0x80, 1, 2, 3, 4});
    FrameHeader h;
    Error e = Error::none;
    ASSERT_EQ(decode_header(b.data(), b.size(), h, e), DecodeStatus::done);
    EXPECT_FALSE(h.fin);
    EXPECT_EQ(h.rsv, 7);
    EXPECT_EQ(static_cast<int>(h.opcode), 0xF);
}

TEST(FrameHeader, EncodeRoundTripsEveryLengthClass) {
    for (std::uint64_t len : {0ull, 1ull, 125ull, 126ull, 65535ull, 65536ull, (1ull << 40)}) {
        std::byte out[max_server_header_bytes];
        const std::size_t n = encode_header(out, Opcode::binary, len);
        EXPECT_EQ(n, server_header_len(len));
        EXPECT_EQ(std::to_integer<int>(out[0]), 0x82);
        EXPECT_EQ(std::to_integer<int>(out[1]) & 0x80, 0) << "server frames are never masked";
        FrameHeader h;
        Error e = Error::none;
        ASSERT_EQ(decode_header(out, n, h, e), DecodeStatus::done) << len;
        EXPECT_EQ(h.payload_len, len);
        EXPECT_FALSE(h.masked);
    }
}

TEST(CloseCodes, ValidityFollowsSection7_4) {
    for (int code = 0; code < 6000; ++code) {
        const bool expect = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
        EXPECT_EQ(is_valid_close_code(static_cast<std::uint16_t>(code)), expect) << code;
    }
}

TEST(CloseCodes, EveryErrorMapsToItsCode) {
    const std::pair<Error, std::uint16_t> table[] = {
        {Error::unmasked_frame, 1002},          {Error::reserved_bits, 1002},
        {Error::bad_opcode, 1002},              {Error::control_fragmented, 1002},
        {Error::control_too_long, 1002},        {Error::length_not_minimal, 1002},
        {Error::length_top_bit, 1002},          {Error::unexpected_continuation, 1002},
        {Error::expected_continuation, 1002},   {Error::message_too_big, 1009},
        {Error::invalid_utf8, 1007},            {Error::close_payload_too_short, 1002},
        {Error::bad_close_code, 1002},          {Error::invalid_close_reason, 1007},
    };
    for (auto [e, code] : table) {
        EXPECT_EQ(close_code(e), code) << describe(e);
        EXPECT_LT(std::strlen(describe(e)), 123u) << "a close reason must fit a control frame";
        EXPECT_GT(std::strlen(describe(e)), 0u);
    }
}

}  // namespace
}  // namespace roomcast::ws
