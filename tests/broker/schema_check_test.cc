// The schema checks of src/broker/schema: definitions and messages, Avro and protocol buffers,
// JSON and binary, with what each refuses and why.
#include <gtest/gtest.h>

#include "broker/schema/schema_check.h"
#include "broker/schema/schema_registry.h"

namespace backbone::schema {
namespace {

const char* const kProvince = R"({
  "type": "record", "name": "Province", "namespace": "utilities",
  "fields": [{"name": "name", "type": "string"}, {"name": "post_abbr", "type": "string"}]})";

std::shared_ptr<const CompiledSchema> compiled(SchemaType type, std::string_view definition) {
  auto c = compile_schema(type, definition);
  EXPECT_TRUE(c.ok()) << c.error().describe();
  return c.ok() ? *c : nullptr;
}

std::string reason(const Result<void>& r) { return r.ok() ? "" : r.error().message; }

TEST(AvroSchema, RefusesWhatIsNotAnAvroSchemaSayingWhy) {
  EXPECT_TRUE(compile_schema(SchemaType::kAvro, kProvince).ok());
  for (const char* bad : {R"({"not_actually":"avro"})", "woohoo i am a schema, no really", "",
                          R"({"type": "record", "name": "R", "fields": [{"name": "a"}]})",
                          R"({"type": "enum", "name": "E"})", R"("nosuchtype")",
                          // A name defined twice (libavro leaked the second: refused before it).
                          R"({"type": "record", "name": "O", "fields": [{"name": "f", "type":
                              {"type": "fixed", "name": "O", "size": 2}}]})"}) {
    auto c = compile_schema(SchemaType::kAvro, bad);
    EXPECT_EQ(c.code(), Errc::kInvalidArgument) << bad;
    if (!c.ok()) {
      EXPECT_FALSE(c.error().message.empty());
    }
  }
}

TEST(AvroSchema, ChecksAJsonMessageFieldByField) {
  auto s = compiled(SchemaType::kAvro, kProvince);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->check(SchemaEncoding::kJson, R"({"name": "Alberta", "post_abbr": "AB"})").ok());
  EXPECT_NE(reason(s->check(SchemaEncoding::kJson, R"({"name": "Alberta"})")).find("post_abbr"),
            std::string::npos);
  EXPECT_NE(
      reason(s->check(SchemaEncoding::kJson, R"({"name": 1, "post_abbr": "AB"})")).find("$.name"),
      std::string::npos);
  EXPECT_NE(reason(s->check(SchemaEncoding::kJson, R"({"foo": "bar"})")), "");
  // Fields the schema does not declare are ignored, as Google's emulator does.
  EXPECT_TRUE(s->check(SchemaEncoding::kJson, R"({"name": "A", "post_abbr": "B", "x": 1})").ok());
  EXPECT_NE(reason(s->check(SchemaEncoding::kJson, "woohoo i am a message")).find("JSON"),
            std::string::npos);
}

TEST(AvroSchema, FollowsAvrosJsonEncodingOfUnionsDefaultsEnumsAndNesting) {
  const char* def = R"({"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID"]}},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line",
       "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
    {"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}},
    {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 2}, "default": "ab"},
    {"name": "next", "type": ["null", "Order"], "default": null}]})";
  auto s = compiled(SchemaType::kAvro, def);
  ASSERT_TRUE(s);
  const std::string line = R"("lines": [{"sku": "x", "qty": 2}])";
  EXPECT_TRUE(s->check(SchemaEncoding::kJson, R"({"id": 1, "state": "NEW", )" + line + "}").ok());
  EXPECT_TRUE(
      s->check(
           SchemaEncoding::kJson,
           R"({"id": 1, "note": {"string": "hi"}, "state": "PAID", )" + line +
               R"(, "tags": {"a": "b"}, "next": {"shop.Order": {"id": 2, "state": "NEW", "lines": []}}})")
          .ok());
  for (const std::string& bad : std::vector<std::string>{
           R"({"id": 1, "note": "hi", "state": "NEW", )" + line + "}",  // a bare union value
           R"({"id": 1, "state": "LOST", )" + line + "}",               // not a symbol
           R"({"id": 1.5, "state": "NEW", )" + line + "}",              // not a long
           R"({"id": 1, "state": "NEW", "lines": [{"sku": "x", "qty": 3000000000}]})",  // int range
           R"({"id": 1, "state": "NEW", "digest": "abc", )" + line + "}",  // fixed size
           R"({"state": "NEW", )" + line + "}"}) {                         // no default
    EXPECT_EQ(s->check(SchemaEncoding::kJson, bad).code(), Errc::kInvalidArgument) << bad;
  }
}

TEST(AvroSchema, ChecksABinaryMessageToItsLastByte) {
  auto s = compiled(SchemaType::kAvro, kProvince);
  ASSERT_TRUE(s);
  const std::string good(
      "\x0e"
      "Alberta"
      "\x04"
      "AB",
      11);
  EXPECT_TRUE(s->check(SchemaEncoding::kBinary, good).ok());
  EXPECT_NE(reason(s->check(SchemaEncoding::kBinary, good + "x")).find("follow"),
            std::string::npos);
  EXPECT_EQ(s->check(SchemaEncoding::kBinary, good.substr(0, 9)).code(), Errc::kInvalidArgument);
  // A length far beyond the data is refused without being allocated.
  EXPECT_NE(reason(s->check(SchemaEncoding::kBinary, std::string("\xfe\xff\xff\xff\xff\x7f", 6)))
                .find("past the end"),
            std::string::npos);
  EXPECT_EQ(s->check(SchemaEncoding::kBinary, std::string("\x01", 1)).code(),
            Errc::kInvalidArgument);  // a negative length
}

const char* const kProvinceProto = R"(syntax = "proto3";
package utilities;
message Province {
  string name = 1;
  string post_abbr = 2;
  message Note { string text = 1; }
  repeated Note notes = 3;
})";

TEST(ProtobufSchema, TakesOneTopLevelMessageWithoutImports) {
  EXPECT_TRUE(compile_schema(SchemaType::kProtocolBuffer, kProvinceProto).ok());
  for (const char* bad :
       {"syntax = \"proto3\"; message A { string a = 1; } message B { string b = 1; }",
        "syntax = \"proto3\"; import \"other.proto\"; message A { string a = 1; }",
        "syntax = \"proto3\"; message A { string a = 1 }", "syntax = \"proto3\";",
        "syntax = \"proto3\"; message A { Unknown a = 1; }", "woohoo"}) {
    auto c = compile_schema(SchemaType::kProtocolBuffer, bad);
    EXPECT_EQ(c.code(), Errc::kInvalidArgument) << bad;
    if (!c.ok()) {
      EXPECT_FALSE(c.error().message.empty()) << bad;
    }
  }
}

TEST(ProtobufSchema, ChecksJsonAndBinaryMessages) {
  auto s = compiled(SchemaType::kProtocolBuffer, kProvinceProto);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->check(SchemaEncoding::kJson, R"({"name": "Alberta", "postAbbr": "AB"})").ok());
  EXPECT_TRUE(
      s->check(SchemaEncoding::kJson, R"({"name": "A", "notes": [{"text": "cold"}]})").ok());
  EXPECT_EQ(s->check(SchemaEncoding::kJson, R"({"nome": "Alberta"})").code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(s->check(SchemaEncoding::kJson, R"({"name": 5})").code(), Errc::kInvalidArgument);
  EXPECT_EQ(s->check(SchemaEncoding::kJson, "not json").code(), Errc::kInvalidArgument);
  const std::string good(
      "\x0a\x07"
      "Alberta"
      "\x12\x02"
      "AB",
      13);
  EXPECT_TRUE(s->check(SchemaEncoding::kBinary, good).ok());
  EXPECT_EQ(s->check(SchemaEncoding::kBinary, std::string("\x0a\x20"
                                                          "abc",
                                                          5))
                .code(),
            Errc::kInvalidArgument);
  auto required = compiled(SchemaType::kProtocolBuffer,
                           "syntax = \"proto2\"; message P { required string name = 1; }");
  ASSERT_TRUE(required);
  EXPECT_NE(reason(required->check(SchemaEncoding::kBinary, "")).find("name"), std::string::npos);
}

// A proto3 string that is not UTF-8 is refused, and protobuf's own log says nothing of it: every
// such message a client sends used to write an ERROR line to the server's stderr.
TEST(ProtobufSchema, RefusesAStringThatIsNotUtf8WithoutLoggingIt) {
  auto s = compiled(SchemaType::kProtocolBuffer, kProvinceProto);
  ASSERT_TRUE(s);
  const std::string bad_utf8("\x0a\x02\xc3\x28", 4);
  ::testing::internal::CaptureStderr();
  const Result<void> checked = s->check(SchemaEncoding::kBinary, bad_utf8);
  const std::string logged = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(checked.code(), Errc::kInvalidArgument);
  EXPECT_EQ(logged, "");
}

TEST(SchemaGate, ChecksARevisionRangeAndNamesTheRevisionThatMatched) {
  const Timestamp now = Timestamp::from_millis(1'795'838'706'000);
  auto r1 = make_revision({"province", SchemaType::kAvro, kProvince}, {}, now);
  ASSERT_TRUE(r1.ok());
  const char* v2 =
      R"({"type": "record", "name": "Province", "fields": [{"name": "n", "type": "int"}]})";
  auto r2 = make_revision({"province", SchemaType::kAvro, v2}, {*r1}, now);
  ASSERT_TRUE(r2.ok());
  SchemaRevisions revisions{*r2, *r1};
  EXPECT_EQ(make_revision({"province", SchemaType::kProtocolBuffer, kProvinceProto}, revisions, now)
                .code(),
            Errc::kInvalidArgument);  // a schema keeps its type

  SchemaGate gate;
  const OutgoingMessage old_shape{R"({"name": "A", "post_abbr": "B"})", {}, ""};
  const OutgoingMessage new_shape{R"({"n": 1})", {}, ""};
  TopicSchemaSettings all{"province", SchemaEncoding::kJson, "", ""};
  auto both = gate.admit(all, revisions, std::vector{old_shape, new_shape});
  ASSERT_TRUE(both.ok()) << both.error().describe();
  EXPECT_EQ((*both)[0].attributes.at(std::string(kAttrSchemaRevision)), r1->revision_id);
  EXPECT_EQ((*both)[1].attributes.at(std::string(kAttrSchemaRevision)), r2->revision_id);
  TopicSchemaSettings newest{"province", SchemaEncoding::kJson, r2->revision_id, ""};
  auto refused = gate.admit(newest, revisions, std::vector{new_shape, old_shape});
  ASSERT_EQ(refused.code(), Errc::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("message 1 "), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(gate.admit(all, Result<SchemaRevisions>(no_schema("province")), std::vector{old_shape})
                .code(),
            Errc::kImmutable);
  EXPECT_EQ(SchemaGate::check_settings(
                {"province", SchemaEncoding::kJson, r2->revision_id, r1->revision_id}, revisions)
                .code(),
            Errc::kInvalidArgument);  // the first is newer than the last
  EXPECT_EQ(
      SchemaGate::check_settings({"province", SchemaEncoding::kJson, "nope", ""}, revisions).code(),
      Errc::kInvalidArgument);
  EXPECT_TRUE(SchemaGate::check_settings(newest, revisions).ok());
}

// Schemas made and deleted one after another do not grow the gate's compiled revisions without
// bound; what is in use still checks after the gate starts afresh.
TEST(SchemaGate, HoldsABoundedNumberOfCompiledRevisions) {
  const Timestamp now = Timestamp::from_millis(1'795'838'706'000);
  SchemaGate gate;
  const OutgoingMessage good{R"({"name": "A", "post_abbr": "B"})", {}, ""};
  const OutgoingMessage bad{R"({"name": 5})", {}, ""};
  for (size_t i = 0; i < SchemaGate::kMaxCompiled + 50; ++i) {
    const std::string name = "schema-" + std::to_string(i);
    auto r = make_revision({name, SchemaType::kAvro, kProvince}, {}, now);
    ASSERT_TRUE(r.ok());
    const TopicSchemaSettings settings{name, SchemaEncoding::kJson, "", ""};
    ASSERT_TRUE(gate.admit(settings, SchemaRevisions{*r}, std::vector{good}).ok());
    ASSERT_EQ(gate.admit(settings, SchemaRevisions{*r}, std::vector{bad}).code(),
              Errc::kInvalidArgument);
    EXPECT_LE(gate.compiled_count(), SchemaGate::kMaxCompiled);
  }
  EXPECT_GT(gate.compiled_count(), 0u);
}

}  // namespace
}  // namespace backbone::schema
