#include "pipeline/merge_rules.h"

#include "backbone/canonical_json.h"
#include "pipeline/messages.h"

#include <gtest/gtest.h>

namespace backbone::pipeline {
namespace {

class MergeRules : public ::testing::Test {
 protected:
  Event event(uint64_t base, const std::string& changes, const std::string& source = "crm",
              int64_t ts_offset = 0) {
    EventDraft d;
    d.record_type = "contact";
    d.record_id = "1";
    d.source = source;
    d.base_version = base;
    d.changes = changes;
    d.timestamp = clock_.now().plus_micros(ts_offset);
    return *Event::create(d, ids_, clock_);
  }
  MergeDecision decide(const Event& e, const RecordState& s, OriginLookup origin = nullptr) {
    if (!origin) origin = [](uint64_t) -> Result<FieldOrigin> { return FieldOrigin{}; };
    auto d = decide_merge(e, s, settings_, origin);
    EXPECT_TRUE(d.ok()) << d.error().describe();
    return d.ok() ? *d : MergeDecision{};
  }
  ManualClock clock_;
  EventIdGenerator ids_{clock_, 3};
  MergeSettings settings_;
};

TEST_F(MergeRules, AFreshBaseFastForwardsWithAMergePatch) {
  RecordState s{2, R"({"a":1,"keep":true,"nested":{"x":1,"y":2}})",
                R"({"a":1,"keep":2,"nested":1})"};
  auto d = decide(event(2, R"({"a":null,"b":"new","nested":{"y":null,"z":3}})"), s);
  EXPECT_EQ(d.kind, MergeDecision::Kind::kFastForward);
  EXPECT_EQ(d.next.version, 3u);
  EXPECT_EQ(d.next.state, R"({"b":"new","keep":true,"nested":{"x":1,"z":3}})");
  EXPECT_EQ(d.next.field_versions, R"({"a":3,"b":3,"keep":2,"nested":3})");
  EXPECT_TRUE(d.new_version(2));
}

TEST_F(MergeRules, ANewRecordStartsAtVersionOne) {
  auto d = decide(event(0, R"({"name":"Ada"})"), RecordState{});
  EXPECT_EQ(d.kind, MergeDecision::Kind::kFastForward);
  EXPECT_EQ(d.next.version, 1u);
  EXPECT_EQ(d.next.state, R"({"name":"Ada"})");
}

TEST_F(MergeRules, AStaleBaseRebasesWhenItsFieldsDidNotMove) {
  RecordState s{3, R"({"a":1,"b":2})", R"({"a":1,"b":3})"};
  auto d = decide(event(1, R"({"a":5})"), s);
  EXPECT_EQ(d.kind, MergeDecision::Kind::kRebased);
  EXPECT_EQ(d.next.version, 4u);
  EXPECT_EQ(d.next.state, R"({"a":5,"b":2})");
}

TEST_F(MergeRules, AStaleBaseOnAMovedFieldIsRejectedByDefault) {
  RecordState s{3, R"({"a":1,"b":2})", R"({"a":1,"b":3})"};
  auto d = decide(event(2, R"({"a":5,"b":6})"), s);
  EXPECT_EQ(d.kind, MergeDecision::Kind::kRejected);
  EXPECT_EQ(d.conflicting_fields, (std::vector<std::string>{"b"}));
  EXPECT_FALSE(d.new_version(3));
  EXPECT_NE(d.detail.find("\"policy\":\"reject\""), std::string::npos);
}

TEST_F(MergeRules, LastWriterWinsFieldByField) {
  settings_.policies["contact"] = ConflictPolicy::kLastWriterWins;
  RecordState s{3, R"({"a":1,"b":2})", R"({"a":3,"b":3})"};
  const Timestamp record_time = clock_.now();
  auto origin = [&](uint64_t) -> Result<FieldOrigin> { return FieldOrigin{record_time, "erp"}; };
  auto newer = decide(event(1, R"({"a":9,"c":1})", "crm", +5), s, origin);
  EXPECT_EQ(newer.kind, MergeDecision::Kind::kResolved);
  EXPECT_EQ(newer.next.state, R"({"a":9,"b":2,"c":1})");
  EXPECT_EQ(newer.effective_changes, R"({"a":9,"c":1})");
  auto older = decide(event(1, R"({"a":9})", "crm", -5), s, origin);
  EXPECT_EQ(older.kind, MergeDecision::Kind::kResolved);
  EXPECT_FALSE(older.new_version(3));  // the record kept its newer value
  EXPECT_EQ(older.effective_changes, "{}");
}

TEST_F(MergeRules, SourcePriorityFieldByField) {
  settings_.policies["contact"] = ConflictPolicy::kSourcePriority;
  settings_.source_priority = {"erp", "crm"};
  RecordState s{3, R"({"a":1})", R"({"a":3})"};
  auto from = [](std::string src) {
    return [src](uint64_t) -> Result<FieldOrigin> { return FieldOrigin{Timestamp(), src}; };
  };
  EXPECT_EQ(decide(event(1, R"({"a":2})", "erp"), s, from("crm")).next.state, R"({"a":2})");
  EXPECT_FALSE(decide(event(1, R"({"a":2})", "crm"), s, from("erp")).new_version(3));
  // An unranked source loses to a ranked one.
  EXPECT_FALSE(decide(event(1, R"({"a":2})", "web"), s, from("crm")).new_version(3));
}

TEST_F(MergeRules, ABaseAheadOfTheRecordIsAGap) {
  auto d = decide(event(5, R"({"a":1})"), RecordState{3, "{}", "{}"});
  EXPECT_EQ(d.kind, MergeDecision::Kind::kGap);
  EXPECT_FALSE(d.new_version(3));
}

TEST_F(MergeRules, ADamagedStoredRecordIsDataLoss) {
  auto d = decide_merge(event(1, R"({"a":1})"), RecordState{1, "[1]", "{}"}, settings_, nullptr);
  EXPECT_EQ(d.code(), Errc::kDataLoss);
}

TEST_F(MergeRules, TheMergedMessageFromTheDecisionEqualsTheOneFromTheAuditDetail) {
  EventDraft d;
  d.record_type = "contact";
  d.record_id = "Zoë \"q\" \u2028 😀";
  d.source = "crm.eu";
  d.base_version = 0;
  d.changes = R"({"z":1,"a":{"é":[1.5,"x\n"]},"m":null})";
  const Event e = *Event::create(d, ids_, clock_);
  const MergeDecision decision = decide(e, RecordState{});
  auto from_detail = merged_message(e, decision.detail);
  ASSERT_TRUE(from_detail.ok()) << from_detail.error().describe();
  const OutgoingMessage direct = merged_message(
      e, decision.next.version, merge_kind_name(decision.kind), decision.effective_changes);
  EXPECT_EQ(direct.data, from_detail->data);
  EXPECT_EQ(direct.attributes, from_detail->attributes);
  EXPECT_EQ(direct.ordering_key, from_detail->ordering_key);
  auto canonical = canonicalize_json(direct.data);  // already canonical: unchanged
  ASSERT_TRUE(canonical.ok());
  EXPECT_EQ(*canonical, direct.data);
}

}  // namespace
}  // namespace backbone::pipeline
