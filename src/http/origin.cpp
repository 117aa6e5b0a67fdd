#include "http/origin.hpp"

#include "http/request_parser.hpp"

namespace roomcast::http {
namespace {

struct Parsed {
    std::string_view scheme, host, port;
};

// "scheme://host[:port]" with an optional trailing "/" (some clients add it). IPv6 hosts in brackets.
bool parse_origin(std::string_view o, Parsed& out) noexcept {
    const auto sep = o.find("://");
    if (sep == std::string_view::npos || sep == 0) return false;
    out.scheme = o.substr(0, sep);
    std::string_view rest = o.substr(sep + 3);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.empty()) return false;
    std::string_view host = rest, port;
    if (rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return false;
        host = rest.substr(0, close + 1);
        std::string_view tail = rest.substr(close + 1);
        if (!tail.empty()) {
            if (tail.front() != ':') return false;
            port = tail.substr(1);
        }
    } else {
        const auto colon = rest.rfind(':');
        if (colon != std::string_view::npos) {
            host = rest.substr(0, colon);
            port = rest.substr(colon + 1);
        }
    }
    if (host.empty()) return false;
    for (char c : host)
        if (c == '/' || c == '@' || c == '?' || c == '#' || static_cast<unsigned char>(c) <= ' ') return false;
    for (char c : port)
        if (c < '0' || c > '9') return false;
    if (port.size() > 5) return false;
    out.host = host;
    out.port = port;
    return true;
}

std::string_view default_port(std::string_view scheme) noexcept {
    if (iequals(scheme, "https") || iequals(scheme, "wss")) return "443";
    if (iequals(scheme, "http") || iequals(scheme, "ws")) return "80";
    return {};
}

bool same_port(std::string_view scheme, std::string_view a, std::string_view b) noexcept {
    const std::string_view d = default_port(scheme);
    if (a.empty()) a = d;
    if (b.empty()) b = d;
    return a == b;
}

}  // namespace

bool origin_allowed(std::string_view origin, std::span<const std::string> allowed) noexcept {
    if (allowed.empty()) return true;
    if (origin == "null") {
        for (const std::string& a : allowed)
            if (a == "null") return true;
        return false;
    }
    Parsed o;
    if (!parse_origin(origin, o)) return false;
    for (const std::string& entry : allowed) {
        if (entry == "null") continue;
        Parsed e;
        if (entry.find("://") != std::string::npos) {
            if (!parse_origin(entry, e)) continue;
            if (iequals(e.scheme, o.scheme) && iequals(e.host, o.host) && same_port(o.scheme, e.port, o.port))
                return true;
        } else if (iequals(entry, o.host)) {
            return true;
        }
    }
    return false;
}

}  // namespace roomcast::http
