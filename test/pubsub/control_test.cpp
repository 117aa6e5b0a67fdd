#include "pubsub/control.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../simd/guarded_pages.hpp"

namespace roomcast::pubsub {
namespace {

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Runs check_json on a copy that ends exactly at a PROT_NONE page: an over-read faults (STYLE §8).
JsonCheck check_guarded(std::string_view s) {
    static simd::test::GuardedPages pages(4);
    if (s.size() > pages.size()) return check_json(s);
    char* at = reinterpret_cast<char*>(pages.end()) - s.size();
    std::memcpy(at, s.data(), s.size());
    return check_json({at, s.size()});
}

// ---- JSON validator ---------------------------------------------------------------------------------

TEST(Json, AcceptsValidDocuments) {
    const char* valid[] = {
        "0", "-0", "1", "-1", "123456789012345678901234567890", "0.5", "-0.0e0", "1e5", "1E+5", "1e-5", "2.5E-10",
        "true", "false", "null", "\"\"", "\"a\"", " \t\r\n1 \t\r\n", "[]", "{}", "[ ]", "{ }", "[1,2,3]",
        "[[[]]]", "{\"a\":1}", "{\"a\":{\"b\":[true,false,null]}}", "[\"x\",{\"y\":\"z\"},-3.25e+2]",
        "{\"a\":1,\"a\":2}",  // duplicate keys are valid JSON (RFC 8259 §4: SHOULD be unique)
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0000\\u001f\\u00e9\\uFFFF\"", "\"\\ud83d\\ude00\"", "\"\\uD83D\\uDE00\"",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "\"\x7f\"", "{\"k\" : [ 1 , 2 ] , \"m\" : { } }",
    };
    for (const char* s : valid) {
        const JsonCheck c = check_guarded(s);
        EXPECT_TRUE(c.ok()) << s << " -> " << describe(c.error) << " at " << c.offset;
    }
}

TEST(Json, RejectsInvalidDocumentsWithTheRightError) {
    struct Case {
        std::string in;
        JsonError want;
    };
    const Case cases[] = {
        {"", JsonError::empty},
        {" \n ", JsonError::empty},
        {"[", JsonError::unexpected_end},
        {"{\"a\":", JsonError::unexpected_end},
        {"{\"a\"", JsonError::unexpected_end},
        {"\"abc", JsonError::unexpected_end},
        {"[1,]", JsonError::unexpected_char},
        {"[,1]", JsonError::unexpected_char},
        {"{\"a\":1,}", JsonError::unexpected_char},
        {"{a:1}", JsonError::unexpected_char},
        {"{\"a\" 1}", JsonError::unexpected_char},
        {"[1 2]", JsonError::unexpected_char},
        {"{'a':1}", JsonError::unexpected_char},
        {"+1", JsonError::unexpected_char},
        {".5", JsonError::unexpected_char},
        {"[1}", JsonError::unexpected_char},
        {"{\"a\":1]", JsonError::unexpected_char},
        {"\xef\xbb\xbf{}", JsonError::unexpected_char},  // a BOM is not JSON text (§8.1)
        {"tru", JsonError::bad_literal},
        {"True", JsonError::unexpected_char},
        {"nul", JsonError::bad_literal},
        {"falsey", JsonError::trailing_garbage},
        {"01", JsonError::bad_number},
        {"-01", JsonError::bad_number},
        {"-", JsonError::bad_number},
        {"-a", JsonError::bad_number},
        {"1.", JsonError::bad_number},
        {"1.e5", JsonError::bad_number},
        {"1e", JsonError::bad_number},
        {"1e+", JsonError::bad_number},
        {"[1.]", JsonError::bad_number},
        {"\"a\nb\"", JsonError::control_in_string},
        {std::string("\"a\0b\"", 5), JsonError::control_in_string},
        {"\"\\x\"", JsonError::bad_escape},
        {"\"\\'\"", JsonError::bad_escape},
        {"\"\\u12\"", JsonError::bad_unicode},
        {"\"\\u12G4\"", JsonError::bad_unicode},
        {"\"\\ud83d\"", JsonError::bad_unicode},         // lone high surrogate
        {"\"\\ud83dx\"", JsonError::bad_unicode},
        {"\"\\ud83d\\u0041\"", JsonError::bad_unicode},  // high + non-low
        {"\"\\ude00\"", JsonError::bad_unicode},         // lone low surrogate
        {"\"\\ude00\\ud83d\"", JsonError::bad_unicode},  // reversed pair
        {"\"\xc3\"", JsonError::invalid_utf8},
        {"\"\xc0\xaf\"", JsonError::invalid_utf8},       // overlong
        {"\"\xed\xa0\x80\"", JsonError::invalid_utf8},   // UTF-8 encoded surrogate
        {"\"\xf4\x90\x80\x80\"", JsonError::invalid_utf8},  // past U+10FFFF
        {"\"\x80\"", JsonError::invalid_utf8},
        {"\"\xff\"", JsonError::invalid_utf8},
        {"1 2", JsonError::trailing_garbage},
        {"{} x", JsonError::trailing_garbage},
        {"[]]", JsonError::trailing_garbage},
        {"\"a\"\"b\"", JsonError::trailing_garbage},
    };
    for (const Case& c : cases) {
        const JsonCheck r = check_guarded(c.in);
        EXPECT_EQ(r.error, c.want) << "input: " << c.in << " got: " << describe(r.error);
        EXPECT_LE(r.offset, c.in.size());
    }
}

TEST(Json, NestingCapIsExact) {
    const std::string ok = std::string(max_json_depth, '[') + std::string(max_json_depth, ']');
    EXPECT_TRUE(check_guarded(ok).ok());
    const std::string deep = std::string(max_json_depth + 1, '[') + std::string(max_json_depth + 1, ']');
    EXPECT_EQ(check_guarded(deep).error, JsonError::too_deep);
    std::string objs;
    for (std::size_t i = 0; i < max_json_depth; ++i) objs += "{\"a\":";
    objs += "1" + std::string(max_json_depth, '}');
    EXPECT_TRUE(check_guarded(objs).ok());
    // A million brackets are rejected quickly, without recursion.
    EXPECT_EQ(check_json(std::string(1'000'000, '[')).error, JsonError::too_deep);
}

TEST(Json, EveryProperPrefixOfAContainerIsRejected) {
    for (std::string_view doc : {R"({"op":"sub","room":"BTC-USD","since":41,"id":1})",
                                 R"([1,-2.5e3,"x\u00e9\ud83d\ude00",{"a":[true,false,null]}])"}) {
        EXPECT_TRUE(check_guarded(doc).ok());
        for (std::size_t n = 0; n < doc.size(); ++n)
            EXPECT_FALSE(check_guarded(doc.substr(0, n)).ok()) << doc.substr(0, n);
    }
}

// Each kind of special byte at every offset of a longer string (guards any future word-at-a-time path).
TEST(Json, SpecialByteAtEveryPositionOfALongString) {
    struct Special {
        std::string bytes;
        bool valid;
    };
    const Special specials[] = {{"\\\"", true}, {"\\n", true}, {"\\u00e9", true}, {"\xc3\xa9", true},
                                {"\xf0\x9f\x98\x80", true}, {" ", true}, {"\x7f", true}, {"\n", false},
                                {std::string(1, '\0'), false}, {"\x1f", false}, {"\x80", false},
                                {"\\q", false}, {"\"", false} /* ends the string early: trailing garbage */};
    for (const Special& sp : specials) {
        for (std::size_t at = 0; at <= 24; ++at) {
            const std::string doc = "\"" + std::string(at, 'a') + sp.bytes + std::string(24 - at, 'b') + "\"";
            EXPECT_EQ(check_guarded(doc).ok(), sp.valid) << "special #" << (&sp - specials) << " at " << at;
            if (sp.bytes == "\"") continue;  // a quote terminates the string
            const std::string cut = "\"" + std::string(at, 'a') + sp.bytes;  // unterminated
            EXPECT_FALSE(check_guarded(cut).ok()) << "special #" << (&sp - specials) << " at " << at;
        }
    }
}

TEST(Json, RandomBytesNeverCrashOrOverRead) {
    std::mt19937 rng(12345);
    const std::string alphabet = "{}[]\":,\\/ tfnrue0123456789-+.eEu\x80\xc3\xa9\xed\xa0";
    for (int i = 0; i < 20000; ++i) {
        std::string s(rng() % 24, ' ');
        for (char& c : s) c = alphabet[rng() % alphabet.size()];
        const JsonCheck r = check_guarded(s);
        EXPECT_LE(r.offset, s.size());
    }
}

// ---- Requests ---------------------------------------------------------------------------------------

TEST(Control, ParsesSubWithEveryField) {
    const ControlRequest r = parse_control(R"({"op":"sub","room":"BTC-USD","since":41,"last":true,"id":1})");
    ASSERT_EQ(r.error, ControlError::none) << r.message();
    EXPECT_EQ(r.op, Op::sub);
    EXPECT_EQ(r.room, "BTC-USD");
    EXPECT_TRUE(r.has_since);
    EXPECT_EQ(r.since, 41u);
    EXPECT_TRUE(r.last);
    EXPECT_EQ(r.id, "1");
}

TEST(Control, ParsesUnsubAndPubWithRawIdAndData) {
    ControlRequest r = parse_control(R"( { "op" : "unsub" , "room" : "chat" , "id" : "a\"b" } )");
    ASSERT_EQ(r.error, ControlError::none) << r.message();
    EXPECT_EQ(r.op, Op::unsub);
    EXPECT_EQ(r.id, R"("a\"b")");  // verbatim, quotes and escapes included
    EXPECT_FALSE(r.has_since);
    EXPECT_FALSE(r.last);

    r = parse_control(R"({"op":"pub","room":"chat","data":{"text":"hi","n":[1, 2.5e-3]},"id":-3.5})");
    ASSERT_EQ(r.error, ControlError::none) << r.message();
    EXPECT_EQ(r.op, Op::pub);
    EXPECT_EQ(r.data, R"({"text":"hi","n":[1, 2.5e-3]})");
    EXPECT_EQ(r.id, "-3.5");
    for (std::string_view data : {"\"str\"", "17", "null", "[]", "false"}) {
        const std::string msg = std::string(R"({"op":"pub","room":"x","data":)") + std::string(data) + "}";
        r = parse_control(msg);
        ASSERT_EQ(r.error, ControlError::none) << msg;
        EXPECT_EQ(r.data, data);
    }
}

TEST(Control, IgnoresUnknownKeysAndAcceptsFieldsInAnyOrder) {
    const ControlRequest r =
        parse_control(R"({"x":{"op":"pub"},"since":0,"room":"a:b@c.d_e-f","extra":[1],"op":"sub"})");
    ASSERT_EQ(r.error, ControlError::none) << r.message();
    EXPECT_EQ(r.op, Op::sub);
    EXPECT_EQ(r.room, "a:b@c.d_e-f");
    EXPECT_TRUE(r.has_since);
    EXPECT_EQ(r.since, 0u);
}

TEST(Control, SinceCoversTheWholeU64Range) {
    ControlRequest r = parse_control(R"({"op":"sub","room":"r","since":18446744073709551615})");
    ASSERT_EQ(r.error, ControlError::none);
    EXPECT_EQ(r.since, UINT64_MAX);
    for (std::string_view bad : {"18446744073709551616", "99999999999999999999999", "-1", "1.0", "1e2", "\"5\"",
                                 "null", "true", "[1]"}) {
        const std::string msg = std::string(R"({"op":"sub","room":"r","since":)") + std::string(bad) + "}";
        EXPECT_EQ(parse_control(msg).error, ControlError::bad_since) << bad;
    }
}

struct ErrorCase {
    std::string in;
    ControlError want;
};

TEST(Control, EachErrorHasItsOwnCode) {
    const ErrorCase cases[] = {
        {"", ControlError::malformed_json},
        {"{\"op\":\"sub\"", ControlError::malformed_json},
        {"{\"op\":\"sub\",\"room\":\"r\"} x", ControlError::malformed_json},
        {"{\"op\":\"sub\",\"room\":\"r\",}", ControlError::malformed_json},
        {"[{\"op\":\"sub\"}]", ControlError::not_an_object},
        {"\"sub\"", ControlError::not_an_object},
        {"{\"op\":\"sub\",\"op\":\"sub\",\"room\":\"r\"}", ControlError::duplicate_key},
        {"{}", ControlError::missing_op},
        {"{\"room\":\"r\"}", ControlError::missing_op},
        {"{\"op\":1,\"room\":\"r\"}", ControlError::bad_op},
        {"{\"op\":\"subscribe\",\"room\":\"r\"}", ControlError::unknown_op},
        {"{\"op\":\"SUB\",\"room\":\"r\"}", ControlError::unknown_op},
        {"{\"op\":\"sub\"}", ControlError::missing_room},
        {"{\"op\":\"sub\",\"room\":7}", ControlError::bad_room},
        {"{\"op\":\"sub\",\"room\":\"\"}", ControlError::bad_room},
        {"{\"op\":\"sub\",\"room\":\"a b\"}", ControlError::bad_room},
        {"{\"op\":\"sub\",\"room\":\"a\\u0062\"}", ControlError::bad_room},  // escapes never make a valid name
        {"{\"op\":\"sub\",\"room\":\"r\",\"since\":-1}", ControlError::bad_since},
        {"{\"op\":\"sub\",\"room\":\"r\",\"last\":1}", ControlError::bad_last},
        {"{\"op\":\"sub\",\"room\":\"r\",\"id\":{}}", ControlError::bad_id},
        {"{\"op\":\"sub\",\"room\":\"r\",\"id\":true}", ControlError::bad_id},
        {"{\"op\":\"pub\",\"room\":\"r\"}", ControlError::missing_data},
    };
    for (const ErrorCase& c : cases) {
        const ControlRequest r = parse_control(c.in);
        EXPECT_EQ(r.error, c.want) << c.in << " -> " << name(r.error);
        EXPECT_GT(std::string_view(r.message()).size(), 5u) << c.in;
    }
}

TEST(Control, ErrorMessagesAreSpecific) {
    EXPECT_EQ(std::string_view(parse_control("{\"op\":\"sub\",\"room\":\"" + std::string(129, 'a') + "\"}").message()),
              "room name is longer than 128 bytes");
    EXPECT_EQ(std::string_view(parse_control("{\"op\":\"sub\",\"room\":\"a/b\"}").message()),
              "room name has a character outside [A-Za-z0-9._:@-]");
    EXPECT_EQ(std::string_view(parse_control("{\"op\":").message()), "malformed JSON: unexpected end of input");
    EXPECT_EQ(std::string_view(parse_control("{\"op\":\"nope\",\"room\":\"r\"}").message()),
              "unknown \"op\" (expected sub, unsub or pub)");
}

TEST(Control, EchoesTheIdEvenWhenTheRequestIsRejected) {
    EXPECT_EQ(parse_control(R"({"op":"nope","id":42})").id, "42");
    EXPECT_EQ(parse_control(R"({"id":"x","op":"sub","room":"bad room"})").id, "\"x\"");
    EXPECT_EQ(parse_control(R"({"id":"x","op":)").id, "");  // malformed: no id can be trusted
}

TEST(Control, ErrorTableIsComplete) {
    std::set<std::string_view> names, messages;
    for (int i = 0; i <= static_cast<int>(ControlError::missing_data); ++i) {
        const auto e = static_cast<ControlError>(i);
        EXPECT_TRUE(names.insert(name(e)).second) << i;
        EXPECT_TRUE(messages.insert(describe(e)).second) << i;
    }
    for (int i = 1; i <= static_cast<int>(JsonError::trailing_garbage); ++i)
        EXPECT_TRUE(std::string_view(describe(static_cast<JsonError>(i))).starts_with("malformed JSON: ")) << i;
}

// ---- Writers ----------------------------------------------------------------------------------------

template <class Reply>
std::string write(const Reply& r) {
    std::string out(reply_bytes(r), '\0');
    char* end = write_reply(out.data(), r);
    EXPECT_EQ(end, out.data() + out.size());
    EXPECT_TRUE(is_json(out)) << out;
    return out;
}

TEST(ControlReplies, ExactBytes) {
    EXPECT_EQ(write(SubscribedReply{"BTC-USD", 57, 16, false, "1"}),
              R"({"op":"subscribed","room":"BTC-USD","seq":57,"replayed":16,"gap":false,"id":1})");
    EXPECT_EQ(write(SubscribedReply{"r", 0, 0, true, ""}),
              R"({"op":"subscribed","room":"r","seq":0,"replayed":0,"gap":true})");
    EXPECT_EQ(write(SubscribedReply{"r", UINT64_MAX, 1, false, "\"q\""}),
              R"({"op":"subscribed","room":"r","seq":18446744073709551615,"replayed":1,"gap":false,"id":"q"})");
    EXPECT_EQ(write(UnsubscribedReply{"chat", "2"}), R"({"op":"unsubscribed","room":"chat","id":2})");
    EXPECT_EQ(write(UnsubscribedReply{"chat", ""}), R"({"op":"unsubscribed","room":"chat"})");
    EXPECT_EQ(write(ErrorReply{"bad_request", "missing \"op\"", "3"}),
              R"({"op":"error","code":"bad_request","message":"missing \"op\"","id":3})");
    EXPECT_EQ(write(PublishedReply{"chat", 9}), R"({"room":"chat","seq":9})");
}

TEST(ControlReplies, EscapesTheMessage) {
    const std::string msg = std::string("a\"b\\c\nd\re\tf\bg\fh") + '\x01' + '\x1f' + "\xc3\xa9/";
    EXPECT_EQ(write(ErrorReply{"bad_request", msg, ""}),
              "{\"op\":\"error\",\"code\":\"bad_request\",\"message\":"
              "\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001\\u001f\xc3\xa9/\"}");
}

TEST(ControlReplies, ReplyFrameIsACompleteTextFrame) {
    FrameRef* f = make_reply_frame(UnsubscribedReply{"chat", "2"});
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(std::to_integer<unsigned>(f->wire()[0]), 0x81u);  // FIN + text
    EXPECT_EQ(text(f->payload()), R"({"op":"unsubscribed","room":"chat","id":2})");
    f->release();
}

TEST(ControlReplies, EveryParsedIdRoundTrips) {
    for (std::string_view id : {"0", "-12.5e3", "\"\"", "\"a\\\"\\u00e9\"", "123456789012345678901234567890"}) {
        const std::string in = std::string(R"({"op":"sub","room":"r","id":)") + std::string(id) + "}";
        const ControlRequest r = parse_control(in);
        ASSERT_EQ(r.error, ControlError::none) << in;
        const std::string out = write(SubscribedReply{r.room, 1, 0, false, r.id});
        EXPECT_EQ(parse_control(std::string(R"({"op":"sub","room":"r","id":)") + std::string(r.id) + "}").id, id);
        EXPECT_NE(out.find(std::string(",\"id\":") + std::string(id) + "}"), std::string::npos) << out;
    }
}

// ---- Envelope ---------------------------------------------------------------------------------------

std::string envelope(std::string_view room, std::uint64_t seq, ws::Opcode op, std::string_view payload) {
    FrameRef* f = make_envelope_frame(room, seq, op, bytes(payload));
    EXPECT_NE(f, nullptr);
    if (!f) return {};
    EXPECT_EQ(f->opcode(), ws::Opcode::text);
    EXPECT_EQ(f->format(), Format::envelope);
    EXPECT_EQ(f->seq(), seq);
    EXPECT_EQ(f->tag(), room);
    std::string out = text(f->payload());
    f->release();
    EXPECT_TRUE(is_json(out)) << out;
    return out;
}

TEST(Envelope, EmbedsValidJsonVerbatim) {
    EXPECT_EQ(envelope("BTC-USD", 42, ws::Opcode::text, R"({"px":1.5,"q":[1,2]})"),
              R"({"room":"BTC-USD","seq":42,"data":{"px":1.5,"q":[1,2]}})");
    EXPECT_EQ(envelope("r", 1, ws::Opcode::text, " \n[1, 2]\t"), R"({"room":"r","seq":1,"data":[1, 2]})");
    EXPECT_EQ(envelope("r", 1, ws::Opcode::text, "17"), R"({"room":"r","seq":1,"data":17})");
    EXPECT_EQ(envelope("r", 1, ws::Opcode::text, "\"s\""), R"({"room":"r","seq":1,"data":"s"})");
}

TEST(Envelope, CarriesOtherTextAsAJsonString) {
    EXPECT_EQ(envelope("chat", 3, ws::Opcode::text, "hello \"world\"\n"),
              R"({"room":"chat","seq":3,"data":"hello \"world\"\n"})");
    EXPECT_EQ(envelope("chat", 3, ws::Opcode::text, ""), R"({"room":"chat","seq":3,"data":""})");
    EXPECT_EQ(envelope("chat", 3, ws::Opcode::text, "{\"a\":1"), R"({"room":"chat","seq":3,"data":"{\"a\":1"})");
    EXPECT_EQ(envelope("chat", 3, ws::Opcode::text, "caf\xc3\xa9"), "{\"room\":\"chat\",\"seq\":3,\"data\":\"caf\xc3\xa9\"}");
}

TEST(Envelope, CarriesBinaryAsBase64) {  // RFC 4648 §10 test vectors
    const std::pair<std::string_view, std::string_view> vectors[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"}};
    for (auto [in, b64] : vectors)
        EXPECT_EQ(envelope("bin", 7, ws::Opcode::binary, in),
                  std::string(R"({"room":"bin","seq":7,"b64":")") + std::string(b64) + "\"}");
    EXPECT_EQ(envelope("bin", 1, ws::Opcode::binary, std::string_view("\xff\xfe\x00", 3)), R"({"room":"bin","seq":1,"b64":"//4A"})");
    // Text that is not UTF-8 (e.g. a REST body) cannot be a JSON string: base64 too.
    EXPECT_EQ(classify_payload(ws::Opcode::text, bytes("\xff")), DataKind::b64);
}

TEST(Envelope, AlwaysValidJsonForRandomPayloads) {
    std::mt19937 rng(7);
    for (int i = 0; i < 3000; ++i) {
        std::string s(rng() % 40, ' ');
        for (char& c : s) c = static_cast<char>(rng() % 128);  // ASCII incl. controls
        const auto op = (i % 3 == 0) ? ws::Opcode::binary : ws::Opcode::text;
        const std::string out = envelope("r", i, op, s);
        const ControlRequest probe = parse_control(out);  // the envelope is an object: no "op" in it
        EXPECT_EQ(probe.error, ControlError::missing_op) << out;
    }
}

TEST(Envelope, LargePayloadGetsAnExtendedHeader) {
    const std::string big(70000, 'a');
    FrameRef* f = make_envelope_frame("r", 1, ws::Opcode::text, bytes(big));
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->header_len(), 10u);
    EXPECT_EQ(f->payload().size(), envelope_bytes("r", 1, DataKind::string, bytes(big)));
    f->release();
}

}  // namespace
}  // namespace roomcast::pubsub
