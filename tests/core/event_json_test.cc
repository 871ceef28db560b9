#include "backbone/event_json.h"

#include <gtest/gtest.h>

namespace backbone {
namespace {

constexpr const char* kGood =
    R"({"record_type":"contact","record_id":"42","source":"crm","base_version":0,)"
    R"("changes":{"name":"Ada"}})";

void expect_bad(const std::string& json, const std::string& where) {
  auto r = parse_event_draft(json);
  ASSERT_FALSE(r.ok()) << json;
  EXPECT_EQ(r.code(), Errc::kInvalidArgument) << json;
  EXPECT_EQ(r.error().where, where) << r.error().describe();
}

TEST(EventJson, ParsesAMinimalEvent) {
  auto d = parse_event_draft(kGood);
  ASSERT_TRUE(d.ok()) << d.error().describe();
  EXPECT_EQ(d->record_type, "contact");
  EXPECT_EQ(d->record_id, "42");
  EXPECT_FALSE(d->id.has_value());
  EXPECT_FALSE(d->timestamp.has_value());
}

TEST(EventJson, ParsesOptionalFields) {
  auto d = parse_event_draft(
      R"({"id":"0193c3f2-7b1a-7c3d-8e4f-0123456789ab","record_type":"contact","record_id":"42",)"
      R"("source":"crm","timestamp":"2026-11-28T04:05:06.000123Z","base_version":7,)"
      R"("changes":{},"full_snapshot_ref":"s3://b/k"})");
  ASSERT_TRUE(d.ok()) << d.error().describe();
  EXPECT_EQ(d->id->str(), "0193c3f2-7b1a-7c3d-8e4f-0123456789ab");
  EXPECT_EQ(d->timestamp->to_rfc3339(), "2026-11-28T04:05:06.000123Z");
  EXPECT_EQ(d->base_version, 7u);
  EXPECT_EQ(*d->full_snapshot_ref, "s3://b/k");
}

TEST(EventJson, NamesTheFieldAtFault) {
  expect_bad(R"({"record_id":"42","source":"crm","base_version":0,"changes":{}})", "record_type");
  expect_bad(R"({"record_type":5,"record_id":"42","source":"crm","base_version":0,"changes":{}})",
             "record_type");
  expect_bad(R"({"record_type":"c","record_id":42,"source":"crm","base_version":0,"changes":{}})",
             "record_id");
  expect_bad(R"({"record_type":"c","record_id":"1","source":"crm","base_version":-1,"changes":{}})",
             "base_version");
  expect_bad(
      R"({"record_type":"c","record_id":"1","source":"crm","base_version":"1","changes":{}})",
      "base_version");
  expect_bad(
      R"({"record_type":"c","record_id":"1","source":"crm","base_version":1.5,"changes":{}})",
      "base_version");
  expect_bad(R"({"record_type":"c","record_id":"1","source":"crm","base_version":0,"changes":[]})",
             "changes");
  expect_bad(R"({"record_type":"c","record_id":"1","source":"crm","base_version":0})", "changes");
  expect_bad(
      R"({"id":"nope","record_type":"c","record_id":"1","source":"s","base_version":0,"changes":{}})",
      "id");
  expect_bad(
      R"({"timestamp":"yesterday","record_type":"c","record_id":"1","source":"s","base_version":0,"changes":{}})",
      "timestamp");
  expect_bad(
      R"({"recordType":"c","record_type":"c","record_id":"1","source":"s","base_version":0,"changes":{}})",
      "recordType");
}

TEST(EventJson, RefusesMalformedAndTruncatedJson) {
  const std::string good = kGood;
  for (size_t cut : {size_t{0}, size_t{1}, good.size() / 2, good.size() - 1}) {
    auto r = parse_event_draft(good.substr(0, cut));
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_EQ(r.code(), Errc::kInvalidArgument);
  }
  auto r = parse_event_draft("[1,2]");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("must be a JSON object"), std::string::npos);
  EXPECT_NE(parse_event_draft("{not json}").error().message.find("malformed JSON"),
            std::string::npos);
}

TEST(EventJson, RoundTripsThroughTheWireForm) {
  ManualClock clock;
  EventIdGenerator ids(clock, 1);
  auto e = Event::create(*parse_event_draft(kGood), ids, clock);
  ASSERT_TRUE(e.ok());
  const std::string json = event_to_json(*e, true);
  EXPECT_NE(json.find("\"processed\":true"), std::string::npos);
  // The wire form minus the output-only fields parses back to the same event.
  auto draft = parse_event_draft(json.substr(0, json.find(",\"fingerprint\"")) + "}");
  ASSERT_TRUE(draft.ok()) << draft.error().describe();
  auto back = Event::create(*draft, ids, clock);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *e);
}

}  // namespace
}  // namespace backbone
