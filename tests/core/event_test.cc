#include "backbone/event.h"

#include <gtest/gtest.h>

#include "backbone/canonical_json.h"
#include "backbone/sha256.h"

namespace backbone {
namespace {

class EventTest : public ::testing::Test {
 protected:
  EventDraft draft() const {
    EventDraft d;
    d.record_type = "contact";
    d.record_id = "42";
    d.source = "crm";
    d.base_version = 3;
    d.changes = R"({"name": "Ada", "tags": ["a", "b"]})";
    return d;
  }
  Result<Event> make(const EventDraft& d) { return Event::create(d, ids_, clock_); }
  void expect_invalid(const EventDraft& d, const std::string& field,
                      Errc code = Errc::kInvalidArgument) {
    auto e = make(d);
    ASSERT_FALSE(e.ok()) << "accepted a bad " << field;
    EXPECT_EQ(e.code(), code) << e.error().describe();
    EXPECT_EQ(e.error().where, field) << e.error().describe();
  }
  ManualClock clock_;
  EventIdGenerator ids_{clock_, 11};
};

TEST_F(EventTest, CreateGivesIdTimestampAndCanonicalChanges) {
  auto e = make(draft());
  ASSERT_TRUE(e.ok()) << e.error().describe();
  EXPECT_FALSE(e->id().is_nil());
  EXPECT_EQ(e->timestamp(), clock_.now());
  EXPECT_EQ(e->changes(), R"({"name":"Ada","tags":["a","b"]})");
  EXPECT_EQ(e->base_version(), 3u);
}

TEST_F(EventTest, FingerprintIsSha256OfTheCanonicalFiveFields) {
  auto e = make(draft());
  ASSERT_TRUE(e.ok());
  auto doc = canonicalize_json(
      R"({"record_type":"contact","record_id":"42","source":"crm","base_version":3,)"
      R"("changes":{"tags":["a","b"],"name":"Ada"}})");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(e->fingerprint(), sha256_hex(*doc));
  EXPECT_EQ(e->fingerprint().size(), 64u);
}

TEST_F(EventTest, FingerprintIgnoresIdTimestampKeyOrderAndWhitespace) {
  auto a = make(draft());
  EventDraft d = draft();
  d.changes = "{ \"tags\" : [ \"a\",\"b\" ] ,\n\"name\":\"Ada\" }";
  d.timestamp = Timestamp::from_micros(5);
  d.full_snapshot_ref = "gs://bucket/snap.json";
  auto b = make(d);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id(), b->id());
  EXPECT_EQ(a->fingerprint(), b->fingerprint());
}

TEST_F(EventTest, AnyChangeOfAFingerprintedFieldChangesTheFingerprint) {
  const std::string base = make(draft())->fingerprint();
  std::vector<EventDraft> variants(6, draft());
  variants[0].record_type = "contacts";
  variants[1].record_id = "43";
  variants[2].source = "erp";
  variants[3].base_version = 4;
  variants[4].changes = R"({"name": "Ada", "tags": ["b", "a"]})";
  variants[5].changes = R"({"name": "Ada ", "tags": ["a", "b"]})";
  for (const auto& v : variants) {
    auto e = make(v);
    ASSERT_TRUE(e.ok());
    EXPECT_NE(e->fingerprint(), base);
  }
}

TEST_F(EventTest, RecordTypeAndSourceMustMatchThePattern) {
  for (const char* bad : {"", "Contact", "1contact", "con tact", "contact!", "_x"}) {
    EventDraft d = draft();
    d.record_type = bad;
    expect_invalid(d, "record_type");
    d = draft();
    d.source = bad;
    expect_invalid(d, "source");
  }
  EventDraft d = draft();
  d.record_type = "a" + std::string(63, 'b');
  EXPECT_TRUE(make(d).ok());
  d.record_type += "c";
  expect_invalid(d, "record_type");
  d = draft();
  d.record_type = "crm.contact_v2-x";
  EXPECT_TRUE(make(d).ok());
}

TEST_F(EventTest, RecordIdIsOneTo191BytesOfPrintableUtf8) {
  EventDraft d = draft();
  d.record_id = "";
  expect_invalid(d, "record_id");
  d.record_id = std::string(191, 'x');
  EXPECT_TRUE(make(d).ok());
  d.record_id = std::string(192, 'x');
  expect_invalid(d, "record_id", Errc::kTooLarge);
  d.record_id = "caf\xc3\xa9 \xf0\x9f\x98\x80";
  EXPECT_TRUE(make(d).ok());
  for (const char* bad : {"a\nb", "a\x7f", "\xff", "\xc3", "\xed\xa0\x80", "\xc2\x85"}) {
    d.record_id = bad;
    expect_invalid(d, "record_id");
  }
}

TEST_F(EventTest, ChangesMustBeAJsonObjectOfAtMost256KiB) {
  EventDraft d = draft();
  for (const char* bad : {"[]", "1", "\"x\"", "null", "{", "{\"a\":1,\"a\":2}"}) {
    d.changes = bad;
    expect_invalid(d, "changes");
  }
  d.changes = R"({"n":9007199254740993})";
  expect_invalid(d, "changes.n");
  // 256 KiB in canonical form is the limit: {"k":"xxx..."} is 8 bytes plus the string.
  d.changes = "{\"k\":\"" + std::string(kMaxChangesBytes - 8, 'x') + "\"}";
  EXPECT_TRUE(make(d).ok());
  d.changes = "{\"k\":\"" + std::string(kMaxChangesBytes - 7, 'x') + "\"}";
  expect_invalid(d, "changes", Errc::kTooLarge);
  d.changes = "{\"k\":\"" + std::string(300 * 1024, 'x') + "\"}";
  expect_invalid(d, "changes", Errc::kTooLarge);
}

TEST_F(EventTest, SnapshotRefIsAKnownSchemeUriOfAtMost512Bytes) {
  EventDraft d = draft();
  for (const char* ok : {"gs://b/o", "s3://b/o", "file:///tmp/x", "https://example.test/x"}) {
    d.full_snapshot_ref = ok;
    EXPECT_TRUE(make(d).ok()) << ok;
  }
  for (const char* bad : {"http://x/y", "gs://", "ftp://x", "gs://a b", "snapshot"}) {
    d.full_snapshot_ref = bad;
    expect_invalid(d, "full_snapshot_ref");
  }
  d.full_snapshot_ref = "gs://" + std::string(507, 'x');  // 512 bytes
  EXPECT_TRUE(make(d).ok());
  d.full_snapshot_ref = "gs://" + std::string(508, 'x');
  expect_invalid(d, "full_snapshot_ref", Errc::kTooLarge);
}

TEST_F(EventTest, BaseVersionStaysWithinIJsonIntegers) {
  EventDraft d = draft();
  d.base_version = kMaxBaseVersion;
  EXPECT_TRUE(make(d).ok());
  d.base_version = kMaxBaseVersion + 1;
  expect_invalid(d, "base_version");
}

TEST_F(EventTest, CreateEventsNamesTheFirstBadItemAndMakesNothing) {
  std::vector<EventDraft> drafts(3, draft());
  drafts[1].record_type = "Bad";
  auto r = create_events(drafts, ids_, clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().location(), "events[1].record_type");
  drafts[1] = draft();
  auto ok = create_events(drafts, ids_, clock_);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 3u);
}

TEST_F(EventTest, RestoreRevalidatesStoredRows) {
  auto e = make(draft());
  ASSERT_TRUE(e.ok());
  EventDraft row = draft();
  row.id = e->id();
  row.timestamp = e->timestamp();
  auto back = Event::restore(row);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *e);
  row.record_type = "BAD";
  EXPECT_EQ(Event::restore(row).code(), Errc::kDataLoss);
  row = draft();
  EXPECT_EQ(Event::restore(row).code(), Errc::kDataLoss);  // no id
}

}  // namespace
}  // namespace backbone
