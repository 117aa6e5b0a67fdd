// Replays fuzz inputs through a target without libFuzzer, so the same <target>_fuzz.cpp builds with g++
// and `make test` re-runs the committed corpus and every saved crasher (test/fuzz/crashers/<target>/).
//   <target> [-flags ignored] FILE_OR_DIR...
// Directories are read recursively, files in sorted order; a missing path is skipped (a target may have
// no crashers yet). A broken invariant aborts (FUZZ_CHECK), so the exit status tells the outcome.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "fuzz_check.hpp"

extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);
// Present in sanitizer builds: called before a sanitizer report ends the process.
extern "C" __attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)());

namespace {

namespace fs = std::filesystem;

// The input being replayed, named on the way down if it kills the process (async-signal-safe writes).
const char* current_input = nullptr;

void name_current_input() {
    if (!current_input) return;
    const char prefix[] = "replay: failing input: ";
    [[maybe_unused]] ssize_t r = ::write(2, prefix, sizeof prefix - 1);
    r = ::write(2, current_input, std::char_traits<char>::length(current_input));
    r = ::write(2, "\n", 1);
}

void on_fatal_signal(int sig) {
    name_current_input();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void collect(const fs::path& p, std::vector<fs::path>& out) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
        for (const auto& e : fs::recursive_directory_iterator(p, ec))
            if (e.is_regular_file(ec)) out.push_back(e.path());
    } else if (fs::is_regular_file(p, ec)) {
        out.push_back(p);
    }
}

}  // namespace

int main(int argc, char** argv) {
    // SIGABRT is a failed FUZZ_CHECK. Sanitizer builds keep their own handlers for the others (they print
    // the report) and call us back.
    ::signal(SIGABRT, on_fatal_signal);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(name_current_input);
    else
        for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, on_fatal_signal);
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i)
        if (argv[i][0] != '-') collect(argv[i], files);
    std::sort(files.begin(), files.end());

    const auto start = std::chrono::steady_clock::now();
    std::size_t bytes = 0;
    for (const fs::path& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) {
            std::fprintf(stderr, "replay: cannot read %s\n", f.c_str());
            return 2;
        }
        // An exact-size heap copy, as libFuzzer gives, so a sanitizer build catches reads past the end.
        std::vector<char> text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto* copy = new std::uint8_t[text.size()];
        std::copy(text.begin(), text.end(), copy);
        current_input = f.c_str();
        LLVMFuzzerTestOneInput(copy, text.size());
        current_input = nullptr;
        delete[] copy;
        bytes += text.size();
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::printf("replay %s: %zu inputs, %zu bytes, %lld ms, ok\n", argc > 0 ? argv[0] : "?", files.size(), bytes,
                static_cast<long long>(ms.count()));
    return 0;
}
