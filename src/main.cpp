// roomcast: parse flags, run the server.
#include <cstdio>
#include <string>

#include "roomcast/config.hpp"
#include "roomcast/server.hpp"
#include "server/flags.hpp"

int main(int argc, char** argv) {
    roomcast::Config cfg;
    std::string error;
    switch (roomcast::server::parse_flags(argc, argv, cfg, error)) {
    case roomcast::server::FlagsResult::help:
        std::fputs(roomcast::server::help_text().c_str(), stdout);
        return 0;
    case roomcast::server::FlagsResult::error:
        std::fprintf(stderr, "roomcast: %s\n", error.c_str());
        return 2;
    case roomcast::server::FlagsResult::run:
        break;
    }
    return roomcast::run_server(cfg);
}
