#include "simd/kernels.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace roomcast::simd {
namespace {

// Restores the process-wide choice, so test order does not matter.
struct RestoreAuto {
    ~RestoreAuto() { select_kernels("auto"); }
};

TEST(Kernels, ScalarIsListedFirst) {
    const auto all = supported_kernels();
    ASSERT_FALSE(all.empty());
    EXPECT_STREQ(all[0]->name, "scalar");
    EXPECT_EQ(all[0]->unmask, &unmask_scalar);
    EXPECT_EQ(all[0]->validate_utf8, &utf8_scalar);
}

TEST(Kernels, NamesAreUniqueAndComplete) {
    std::set<std::string> names;
    for (const Kernels* k : supported_kernels()) {
        EXPECT_TRUE(names.insert(k->name).second) << k->name;
        EXPECT_NE(k->unmask, nullptr);
        EXPECT_NE(k->validate_utf8, nullptr);
    }
#if defined(__x86_64__)
    EXPECT_TRUE(names.count("sse2")) << "SSE2 is part of x86-64";
#endif
}

TEST(Kernels, DefaultIsTheWidestSupported) {
    RestoreAuto restore;
    ASSERT_TRUE(select_kernels("auto"));
    EXPECT_EQ(&kernels(), supported_kernels().back());
}

TEST(Kernels, SelectsEverySupportedKernelByName) {
    RestoreAuto restore;
    for (const Kernels* k : supported_kernels()) {
        ASSERT_TRUE(select_kernels(k->name)) << k->name;
        EXPECT_EQ(&kernels(), k);
    }
}

TEST(Kernels, RejectsUnknownNamesAndKeepsTheChoice) {
    RestoreAuto restore;
    ASSERT_TRUE(select_kernels("scalar"));
    EXPECT_FALSE(select_kernels("neon"));
    EXPECT_FALSE(select_kernels(""));
    EXPECT_FALSE(select_kernels("AVX2"));
    EXPECT_STREQ(kernels().name, "scalar");
}

TEST(Kernels, RefusesKernelsThisCpuCannotRun) {
    RestoreAuto restore;
    for (const char* name : {"sse2", "avx2", "avx512"}) {
        bool supported = false;
        for (const Kernels* k : supported_kernels()) supported |= std::string(k->name) == name;
        EXPECT_EQ(select_kernels(name), supported) << name;
    }
}

TEST(Kernels, WrappersUseTheChosenKernel) {
    RestoreAuto restore;
    std::byte b[3] = {std::byte{0}, std::byte{0}, std::byte{0}};
    ASSERT_TRUE(select_kernels("scalar"));
    EXPECT_EQ(unmask(b, 3, 0x04030201, 1), 0u);
    EXPECT_EQ(b[0], std::byte{2});
    EXPECT_EQ(b[2], std::byte{4});
    const std::byte bad[1] = {std::byte{0xFF}};
    EXPECT_EQ(validate_utf8(bad, 1, utf8_accept), utf8_reject);
}

}  // namespace
}  // namespace roomcast::simd
