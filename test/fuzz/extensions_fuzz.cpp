// Fuzz target: permessage-deflate negotiation (src/ws/extensions.hpp), the Sec-WebSocket-Extensions offer
// parser.
//
// Input layout:
//   byte 0   config: bit 0 enabled, bits 1-3 window_bits 9..15 (9 + value % 7), bit 4 context_takeover
//   rest     header values, one per line ('\n' separates header lines)
// Checked:
//   - disabled: never agrees; enabled: agreed params are in range (8..15);
//   - write_deflate_response(): 0 for a buffer one byte short of max_deflate_response_bytes; otherwise a
//     well-formed value ("permessage-deflate" then "; "-separated known parameters, each at most once,
//     window values 8..15) that says exactly what the params say;
//   - the response, offered back as the only header, is agreed with the same params (a fixpoint).
#include <algorithm>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "ws/extensions.hpp"

namespace {

using namespace roomcast::ws;

void check_response(const DeflateParams& p, std::string_view v) {
    FUZZ_CHECK(v.substr(0, 18) == "permessage-deflate", "response '%.*s'", int(v.size()), v.data());
    v.remove_prefix(18);
    bool snct = false, cnct = false;
    int sbits = -1, cbits = -1;
    while (!v.empty()) {
        FUZZ_CHECK(v.substr(0, 2) == "; ", "separator in '%.*s'", int(v.size()), v.data());
        v.remove_prefix(2);
        const std::size_t end = std::min(v.find(';'), v.size());
        const std::string_view param = v.substr(0, end);
        v.remove_prefix(end);
        const std::size_t eq = param.find('=');
        const std::string_view name = param.substr(0, eq);
        int value = -1;
        if (eq != std::string_view::npos) {
            const std::string_view digits = param.substr(eq + 1);
            FUZZ_CHECK(digits == "8" || digits == "9" || digits == "10" || digits == "11" || digits == "12" ||
                           digits == "13" || digits == "14" || digits == "15",
                       "window value '%.*s'", int(digits.size()), digits.data());
            value = std::stoi(std::string(digits));
        }
        if (name == "server_no_context_takeover" && eq == std::string_view::npos && !snct) {
            snct = true;
        } else if (name == "client_no_context_takeover" && eq == std::string_view::npos && !cnct) {
            cnct = true;
        } else if (name == "server_max_window_bits" && value > 0 && sbits < 0) {
            sbits = value;
        } else if (name == "client_max_window_bits" && value > 0 && cbits < 0) {
            cbits = value;
        } else {
            FUZZ_CHECK(false, "unexpected or repeated parameter '%.*s'", int(param.size()), param.data());
        }
    }
    FUZZ_CHECK(snct == p.server_no_context_takeover && cnct == p.client_no_context_takeover);
    FUZZ_CHECK((sbits >= 0) == p.send_server_window_bits && (sbits < 0 || sbits == p.server_window_bits),
               "server_max_window_bits %d, params %d (send %d)", sbits, p.server_window_bits,
               p.send_server_window_bits);
    FUZZ_CHECK((cbits >= 0) == p.send_client_window_bits && (cbits < 0 || cbits == p.client_window_bits),
               "client_max_window_bits %d, params %d (send %d)", cbits, p.client_window_bits,
               p.send_client_window_bits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    roomcast::fuzz::InputReader in(data, size);
    const std::uint8_t c = in.byte();
    DeflateConfig cfg;
    cfg.enabled = c & 1;
    cfg.window_bits = 9 + ((c >> 1) & 7) % 7;
    cfg.context_takeover = c & 0x10;
    const std::string_view text = roomcast::fuzz::as_chars(in.rest());

    std::vector<std::string_view> values;
    for (std::size_t start = 0;;) {
        const std::size_t nl = text.find('\n', start);
        values.push_back(text.substr(start, nl == std::string_view::npos ? nl : nl - start));
        if (nl == std::string_view::npos) break;
        start = nl + 1;
    }

    DeflateParams p;
    const bool agreed = negotiate_deflate(values, cfg, p);
    if (!cfg.enabled) FUZZ_CHECK(!agreed, "agreed with deflate disabled");
    if (!agreed) return 0;
    FUZZ_CHECK(p.server_window_bits >= min_window_bits && p.server_window_bits <= max_window_bits);
    FUZZ_CHECK(p.client_window_bits >= min_window_bits && p.client_window_bits <= max_window_bits);

    std::vector<char> out(max_deflate_response_bytes);
    FUZZ_CHECK(write_deflate_response(p, std::span<char>(out.data(), out.size() - 1)) == 0);
    const std::size_t n = write_deflate_response(p, out);
    FUZZ_CHECK(n > 0 && n <= max_deflate_response_bytes, "response of %zu bytes", n);
    const std::string_view response(out.data(), n);
    check_response(p, response);

    DeflateParams again;
    const std::string_view offer[] = {response};
    FUZZ_CHECK(negotiate_deflate(offer, cfg, again), "own response '%.*s' not agreed", int(n), out.data());
    FUZZ_CHECK(again == p, "own response '%.*s' agreed differently", int(n), out.data());
    return 0;
}
