// Reference UTF-8 validation: the DFA in kernels_impl.hpp, one byte at a time.
#include "simd/kernels.hpp"
#include "simd/kernels_impl.hpp"

namespace roomcast::simd {

std::uint32_t utf8_scalar(const std::byte* p, std::size_t n, std::uint32_t state) noexcept {
    return utf8_dfa::to_public(utf8_dfa::run(p, n, utf8_dfa::to_internal(state)));
}

}  // namespace roomcast::simd
