// Running the server: one reactor thread per configured core.
#pragma once
#include "roomcast/config.hpp"

namespace roomcast {

// Opens every listener, starts the reactors, prints "roomcast: listening on ADDR:PORT" on stdout,
// and blocks until SIGINT/SIGTERM has been handled (graceful drain). Returns the process exit code:
// 0 after a clean drain, 2 if start-up failed (one line on stderr names the call and argument).
int run_server(const Config& cfg);

}  // namespace roomcast
