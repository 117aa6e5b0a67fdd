// Test helper: read-write pages fenced by PROT_NONE pages, so a kernel that reads one byte before or
// after the input it was given faults instead of passing by luck (STYLE.md §8).
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>

namespace roomcast::simd::test {

class GuardedPages {
public:
    explicit GuardedPages(std::size_t usable_pages)
        : page_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) {
        total_ = (usable_pages + 2) * page_;
        void* m = ::mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) std::abort();
        base_ = static_cast<std::byte*>(m);
        if (::mprotect(base_, page_, PROT_NONE) != 0) std::abort();
        if (::mprotect(base_ + total_ - page_, page_, PROT_NONE) != 0) std::abort();
        size_ = usable_pages * page_;
    }
    ~GuardedPages() { ::munmap(base_, total_); }
    GuardedPages(const GuardedPages&) = delete;
    GuardedPages& operator=(const GuardedPages&) = delete;

    std::byte* begin() const { return base_ + page_; }  // the byte before is PROT_NONE
    std::byte* end() const { return begin() + size_; }  // PROT_NONE from here on
    std::size_t size() const { return size_; }

private:
    std::size_t page_;
    std::size_t total_ = 0;
    std::size_t size_ = 0;
    std::byte* base_ = nullptr;
};

}  // namespace roomcast::simd::test
