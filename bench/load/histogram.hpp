// HDR-style log-linear latency histogram (values in nanoseconds).
// Each power of two is split into 64 linear sub-buckets, so a reported value is within 1/64 (1.6 %)
// above the true one; values below 128 ns are exact. Recording is a clz, a shift and an increment:
// cheap enough for one call per message on the load generator's hot path.
// Not thread-safe: each worker owns one, and the main thread merges them after the workers joined.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace roomcast::bench {

class LatencyHistogram {
public:
    static constexpr unsigned sub_bucket_bits = 7;                        // 128 exact values at the bottom
    static constexpr std::uint64_t sub_bucket_half = 1u << (sub_bucket_bits - 1);  // linear steps per octave
    static constexpr std::size_t bucket_count = (64 - sub_bucket_bits + 2) * sub_bucket_half;

    void record(std::uint64_t value_ns) noexcept {
        ++counts_[index_of(value_ns)];
        ++total_;
        sum_ += value_ns;
        max_ = std::max(max_, value_ns);
        min_ = std::min(min_, value_ns);
    }

    void merge(const LatencyHistogram& other) noexcept {
        for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
        total_ += other.total_;
        sum_ += other.sum_;
        max_ = std::max(max_, other.max_);
        min_ = std::min(min_, other.min_);
    }

    void reset() noexcept { *this = LatencyHistogram{}; }

    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return total_ ? max_ : 0; }
    std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
    double mean() const noexcept { return total_ ? double(sum_) / double(total_) : 0.0; }

    // Smallest recorded bucket's highest value such that at least `percent` % of the samples are
    // at or below it (HDR semantics); never above the exact maximum. 0 when empty.
    std::uint64_t percentile(double percent) const noexcept {
        if (total_ == 0) return 0;
        auto target = std::uint64_t(std::ceil(percent / 100.0 * double(total_)));
        target = std::clamp<std::uint64_t>(target, 1, total_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += counts_[i];
            if (seen >= target) return std::min(highest_in_bucket(i), max_);
        }
        return max_;
    }

    static std::size_t index_of(std::uint64_t v) noexcept {
        if (v < 2 * sub_bucket_half) return std::size_t(v);
        unsigned msb = 63u - unsigned(std::countl_zero(v));
        unsigned shift = msb - (sub_bucket_bits - 1);  // brings v into [half, 2*half)
        return std::size_t(shift) * sub_bucket_half + std::size_t(v >> shift);
    }

    static std::uint64_t highest_in_bucket(std::size_t index) noexcept {
        if (index < 2 * sub_bucket_half) return index;
        std::uint64_t shift = index / sub_bucket_half - 1;
        std::uint64_t mantissa = index - shift * sub_bucket_half;
        return ((mantissa + 1) << shift) - 1;
    }

private:
    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = UINT64_MAX;
};

}  // namespace roomcast::bench
