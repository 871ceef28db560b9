#include "backbone/audit_entry.h"

#include <gtest/gtest.h>

#include "backbone/sha256.h"

namespace backbone {
namespace {

AuditDraft draft(const EventId& event_id) {
  return AuditDraft{
      event_id, {"contact", "42"}, AuditAction::kIngested, std::string(64, 'a'), std::nullopt};
}

TEST(AuditEntry, ActionsRoundTripByName) {
  for (auto a : {AuditAction::kIngested, AuditAction::kMerged, AuditAction::kRebased,
                 AuditAction::kConflict, AuditAction::kRetryScheduled, AuditAction::kDeadLettered,
                 AuditAction::kReplayed, AuditAction::kDuplicate}) {
    EXPECT_EQ(*parse_audit_action(audit_action_name(a)), a);
  }
  EXPECT_STREQ(audit_action_name(AuditAction::kRetryScheduled), "retry_scheduled");
  EXPECT_FALSE(parse_audit_action("deleted").ok());
}

TEST(AuditEntry, ChainHashIsSha256OfPreviousHashAndCanonicalContent) {
  ManualClock clock;
  EventIdGenerator ids(clock, 1);
  const EventId ev = ids.next();
  auto e = seal_audit_entry(draft(ev), ids.next(), clock.now(), kAuditGenesis);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->chain_hash, sha256_hex(std::string(kAuditGenesis) + audit_content(*e)));
  // The content is canonical JSON with sorted keys.
  const std::string content = audit_content(*e);
  EXPECT_EQ(content.rfind("{\"action\":\"ingested\",\"created_at\":", 0), 0u) << content;
  EXPECT_NE(content.find("\"detail\":null"), std::string::npos);
}

TEST(AuditEntry, EveryFieldChangesTheChainHash) {
  ManualClock clock;
  EventIdGenerator ids(clock, 2);
  const EventId ev = ids.next();
  auto base = *seal_audit_entry(draft(ev), ids.next(), clock.now(), kAuditGenesis);
  std::vector<AuditEntry> variants(8, base);
  variants[0].id = ids.next();
  variants[1].event_id = ids.next();
  variants[2].record.record_type = "deal";
  variants[3].record.record_id = "43";
  variants[4].action = AuditAction::kMerged;
  variants[5].fingerprint = std::string(64, 'b');
  variants[6].detail = "{\"x\":1}";
  variants[7].created_at = clock.now().plus_micros(1);
  for (const auto& v : variants) {
    EXPECT_NE(audit_chain_hash(kAuditGenesis, v), base.chain_hash);
  }
  EXPECT_NE(audit_chain_hash(std::string(64, '1'), base), base.chain_hash);
}

TEST(AuditEntry, DetailIsCanonicalizedAndMustBeJson) {
  ManualClock clock;
  EventIdGenerator ids(clock, 3);
  AuditDraft d = draft(ids.next());
  d.detail = "{ \"b\": 1, \"a\": [ 2 ] }";
  auto e = seal_audit_entry(d, ids.next(), clock.now(), kAuditGenesis);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e->detail, R"({"a":[2],"b":1})");
  d.detail = "{oops";
  auto bad = seal_audit_entry(d, ids.next(), clock.now(), kAuditGenesis);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().where, "detail");
}

}  // namespace
}  // namespace backbone
