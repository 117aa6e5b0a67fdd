#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "guarded_pages.hpp"
#include "simd/kernels.hpp"

namespace roomcast::simd {
namespace {

constexpr MaskKey test_key = 0x9A'37'C5'E1;  // all four bytes differ, so a wrong phase shows

std::vector<std::byte> random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::byte> v(n);
    for (auto& b : v) b = static_cast<std::byte>(rng());
    return v;
}

// The plainest possible statement of RFC 6455 §5.3: octet i is XORed with key octet (i mod 4).
std::uint32_t unmask_bytewise(std::byte* p, std::size_t n, MaskKey key, std::uint32_t phase) {
    unsigned char k[4];
    std::memcpy(k, &key, 4);
    for (std::size_t i = 0; i < n; ++i) p[i] ^= static_cast<std::byte>(k[(phase + i) % 4]);
    return static_cast<std::uint32_t>((phase + n) % 4);
}

std::string kernel_name(const ::testing::TestParamInfo<const Kernels*>& info) { return info.param->name; }

TEST(UnmaskScalar, MatchesBytewiseDefinition) {
    const auto input = random_bytes(300 + 8, 1);
    for (std::size_t len = 0; len <= 300; ++len)
        for (std::uint32_t phase = 0; phase < 4; ++phase) {
            auto a = input, b = input;
            const auto ra = unmask_scalar(a.data() + 1, len, test_key, phase);
            const auto rb = unmask_bytewise(b.data() + 1, len, test_key, phase);
            ASSERT_EQ(ra, rb) << "len=" << len << " phase=" << phase;
            ASSERT_EQ(a, b) << "len=" << len << " phase=" << phase;
        }
}

class UnmaskTest : public ::testing::TestWithParam<const Kernels*> {};

// Unmasks a copy of `input` at [off, off + len) with the kernel under test and with unmask_scalar;
// the whole buffers (including the bytes around the range) and the returned phases must match.
void expect_matches_scalar(const Kernels& k, const std::vector<std::byte>& input, std::size_t off,
                           std::size_t len, std::uint32_t phase) {
    auto fast = input, ref = input;
    const auto fast_phase = k.unmask(fast.data() + off, len, test_key, phase);
    const auto ref_phase = unmask_scalar(ref.data() + off, len, test_key, phase);
    ASSERT_EQ(fast_phase, ref_phase) << k.name << " off=" << off << " len=" << len << " phase=" << phase;
    ASSERT_TRUE(fast == ref) << k.name << " off=" << off << " len=" << len << " phase=" << phase;
}

TEST_P(UnmaskTest, MatchesScalarForEveryLengthPhaseAndOffset) {
    const auto input = random_bytes(300 + 8, 2);
    for (std::size_t off : {0, 1, 3})
        for (std::size_t len = 0; len <= 300; ++len)
            for (std::uint32_t phase = 0; phase < 4; ++phase)
                expect_matches_scalar(*GetParam(), input, off, len, phase);
}

TEST_P(UnmaskTest, MatchesScalarForLargeSizes) {
    const auto input = random_bytes(65536 + 7 + 64, 3);
    for (std::size_t len : {4095, 4096, 65536 + 7})
        for (std::size_t off : {0, 1, 3, 63})
            for (std::uint32_t phase = 0; phase < 4; ++phase)
                expect_matches_scalar(*GetParam(), input, off, len, phase);
}

// A sentinel-filled buffer: only [p, p + n) may change.
TEST_P(UnmaskTest, LeavesGuardBytesUntouched) {
    constexpr std::size_t guard = 64;
    for (std::size_t len = 0; len <= 300; ++len)
        for (std::size_t off : {0, 1, 3}) {
            std::vector<std::byte> buf(guard + off + len + guard, std::byte{0xA5});
            std::byte* p = buf.data() + guard + off;
            std::memset(p, 0, len);  // unmasking zeros yields the repeated key, easy to check
            GetParam()->unmask(p, len, test_key, 0);
            for (std::size_t i = 0; i < guard + off; ++i)
                ASSERT_EQ(buf[i], std::byte{0xA5}) << "before, len=" << len;
            for (std::size_t i = guard + off + len; i < buf.size(); ++i)
                ASSERT_EQ(buf[i], std::byte{0xA5}) << "after, len=" << len;
            for (std::size_t i = 0; i < len; ++i)
                ASSERT_EQ(p[i], static_cast<std::byte>(test_key >> (8 * (i % 4))))
                    << "len=" << len << " i=" << i;
        }
}

// kernels.hpp promises no over-read: input that starts right after, or ends right before, a PROT_NONE
// page must not fault.
TEST_P(UnmaskTest, NeverTouchesBytesOutsideTheRange) {
    test::GuardedPages pages(17);  // enough for 65536 + 7 bytes
    const auto input = random_bytes(pages.size(), 4);
    std::memcpy(pages.begin(), input.data(), input.size());
    std::vector<std::size_t> lengths;
    for (std::size_t len = 0; len <= 300; ++len) lengths.push_back(len);
    lengths.insert(lengths.end(), {4095, 65536 + 7});
    for (std::size_t len : lengths)
        for (std::uint32_t phase = 0; phase < 4; ++phase) {
            std::byte* at_end = pages.end() - len;
            std::vector<std::byte> expected(at_end, pages.end());
            unmask_scalar(expected.data(), len, test_key, phase);
            ASSERT_EQ(GetParam()->unmask(at_end, len, test_key, phase), (phase + len) % 4);
            ASSERT_TRUE(std::equal(at_end, pages.end(), expected.begin())) << "at end, len=" << len;

            std::byte* at_begin = pages.begin();
            expected.assign(at_begin, at_begin + len);
            unmask_scalar(expected.data(), len, test_key, phase);
            GetParam()->unmask(at_begin, len, test_key, phase);
            ASSERT_TRUE(std::equal(at_begin, at_begin + len, expected.begin())) << "at begin, len=" << len;
        }
}

// A payload split across reads (RFC 6455 §5.3 masks the whole payload as one sequence): unmasking the
// pieces with the returned phase equals unmasking it in one go.
TEST_P(UnmaskTest, PhaseCarriesAcrossSplits) {
    const auto input = random_bytes(300, 5);
    auto whole = input;
    unmask_scalar(whole.data(), whole.size(), test_key, 0);
    for (std::size_t cut1 = 0; cut1 <= input.size(); cut1 += 7)
        for (std::size_t cut2 = cut1; cut2 <= input.size(); cut2 += 13) {
            auto pieces = input;
            std::uint32_t phase = GetParam()->unmask(pieces.data(), cut1, test_key, 0);
            phase = GetParam()->unmask(pieces.data() + cut1, cut2 - cut1, test_key, phase);
            phase = GetParam()->unmask(pieces.data() + cut2, input.size() - cut2, test_key, phase);
            ASSERT_EQ(phase, input.size() % 4);
            ASSERT_TRUE(pieces == whole) << "cuts " << cut1 << ", " << cut2;
        }
}

TEST_P(UnmaskTest, EmptyInputKeepsPhase) {
    for (std::uint32_t phase = 0; phase < 4; ++phase)
        EXPECT_EQ(GetParam()->unmask(nullptr, 0, test_key, phase), phase);
}

INSTANTIATE_TEST_SUITE_P(Cpu, UnmaskTest, ::testing::ValuesIn(supported_kernels()), kernel_name);

}  // namespace
}  // namespace roomcast::simd
