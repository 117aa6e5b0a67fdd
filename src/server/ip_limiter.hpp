// --max-connections-per-ip: pending and open connections per client address, across all reactors.
// Touched once per accept and once per close (never per message), so a mutex-guarded map is fine.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace roomcast::server {

using IpKey = std::array<std::uint8_t, 16>;  // IPv4 as ::ffff:a.b.c.d

inline IpKey ip_key(const sockaddr_storage& ss) noexcept {
    IpKey k{};
    if (ss.ss_family == AF_INET) {
        k[10] = k[11] = 0xFF;
        std::memcpy(k.data() + 12, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        std::memcpy(k.data(), &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, 16);
    }
    return k;
}

struct IpKeyHash {
    std::size_t operator()(const IpKey& k) const noexcept {
        std::uint64_t a, b;
        std::memcpy(&a, k.data(), 8);
        std::memcpy(&b, k.data() + 8, 8);
        return static_cast<std::size_t>((a * 0x9E3779B97F4A7C15ull) ^ (b + 0x632BE59BD9B4E019ull + (a << 6)));
    }
};

class IpLimiter {
public:
    explicit IpLimiter(std::size_t limit) : limit_(limit) {}
    bool enabled() const noexcept { return limit_ != 0; }
    // Counts one more connection from `k`; false (nothing counted) if that would pass the limit.
    bool try_acquire(const IpKey& k) {
        std::lock_guard<std::mutex> lock(mu_);
        std::size_t& n = counts_[k];
        if (n >= limit_) {
            if (n == 0) counts_.erase(k);
            return false;
        }
        ++n;
        return true;
    }
    void release(const IpKey& k) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = counts_.find(k);
        if (it != counts_.end() && --it->second == 0) counts_.erase(it);
    }
    std::size_t tracked() {
        std::lock_guard<std::mutex> lock(mu_);
        return counts_.size();
    }

private:
    const std::size_t limit_;
    std::mutex mu_;
    std::unordered_map<IpKey, std::size_t, IpKeyHash> counts_;
};

}  // namespace roomcast::server
