// Reference unmasking (RFC 6455 §5.3): the test oracle and the first benchmark line.
#include "simd/kernels.hpp"
#include "simd/kernels_impl.hpp"

namespace roomcast::simd {

std::uint32_t unmask_scalar(std::byte* p, std::size_t n, MaskKey key, std::uint32_t phase) noexcept {
    unmask_short(p, n, key_for_phase(key, phase));
    return (phase + n) & 3;
}

}  // namespace roomcast::simd
