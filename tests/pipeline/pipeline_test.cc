// The pipeline of one environment, end to end on a real SQLite store and the embedded broker,
// driven step by step on a ManualClock: backoffs and the retry span pass by moving the clock.
#include "pipeline/pipeline.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "backbone/event_json.h"
#include "pipeline/faulty_store.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

using pipeline::EnvironmentPipeline;

const std::vector<std::string> kEnvs = {"sandbox", "production"};

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open(pipeline::MergeSettings settings = {}) {
    pipeline_.reset();
    broker_.reset();
    StoreOptions so;
    so.url = store_url_;
    so.role = Role::kMigrator;
    ASSERT_TRUE((*EventStore::open(so))->migrate().ok());
    BrokerOptions bo;
    bo.url = "embedded://" + dir_.file("broker");
    bo.clock = &clock_;
    broker_ = std::move(*Broker::open(bo));
    ASSERT_TRUE(provision_topology(*broker_, Topology::built_in(), "sandbox", kEnvs).ok());
    pipeline::PipelineOptions o;
    o.env = "sandbox";
    o.environments = kEnvs;
    o.store_url = store_url_;
    o.broker = broker_.get();
    o.topology = &Topology::built_in();
    o.clock = &clock_;
    o.ids = &ids_;
    o.settings = std::move(settings);
    o.open_store = [this](Role role) -> Result<std::unique_ptr<EventStore>> {
      StoreOptions s;
      s.url = store_url_;
      s.role = role;
      s.clock = &clock_;
      s.ids = &ids_;
      auto store = EventStore::open(s);
      if (!store.ok() || role != Role::kMergeWorker) return store;
      auto faulty = std::make_unique<FaultyStore>(std::move(*store));
      faulty_ = faulty.get();
      return std::unique_ptr<EventStore>(std::move(faulty));
    };
    auto p = EnvironmentPipeline::open(o);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    pipeline_ = std::move(*p);
  }
  EventDraft draft(const std::string& record_id, uint64_t base, const std::string& changes,
                   const std::string& source = "crm") {
    EventDraft d;
    d.record_type = "contact";
    d.record_id = record_id;
    d.source = source;
    d.base_version = base;
    d.changes = changes;
    clock_.advance_micros(1);
    d.timestamp = clock_.now();
    return d;
  }
  std::vector<pipeline::IngestOutcome> ingest(std::vector<EventDraft> drafts) {
    auto r = pipeline_->ingest(drafts);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    return r.ok() ? *r : std::vector<pipeline::IngestOutcome>{};
  }
  size_t step() {
    auto r = pipeline_->step();
    EXPECT_TRUE(r.ok()) << r.error().describe();
    return r.ok() ? *r : 0;
  }
  std::optional<StoredRecord> record(const std::string& id) {
    auto r = pipeline_->merge_store().get_record({"contact", id});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  }
  // Drains a subscription (acking), returning the messages.
  std::vector<Message> drain(const std::string& sub) {
    std::vector<Message> out;
    for (;;) {
      auto got = broker_->pull(sub, 100);
      EXPECT_TRUE(got.ok());
      if (!got.ok() || got->empty()) return out;
      std::vector<std::string> ids;
      for (auto& m : *got) {
        ids.push_back(m.ack_id);
        out.push_back(m.message);
      }
      EXPECT_TRUE(broker_->ack(sub, ids).ok());
    }
  }
  std::vector<AuditAction> actions(const EventId& id) {
    std::vector<AuditAction> out;
    auto entries = pipeline_->merge_store().audit_for_event(id);
    EXPECT_TRUE(entries.ok());
    for (const auto& a : *entries) out.push_back(a.action);
    return out;
  }
  bool processed(const EventId& id) { return pipeline_->merge_store().get(id)->processed; }

  ManualClock clock_;
  EventIdGenerator ids_{clock_, 17};
  TempDir dir_;
  std::string store_url_ = "sqlite://" + dir_.file("sandbox.db");
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<EnvironmentPipeline> pipeline_;
  FaultyStore* faulty_ = nullptr;
};

TEST_F(PipelineTest, EventsAreStoredPublishedAndMergedInOrder) {
  auto out =
      ingest({draft("1", 0, R"({"name":"Ada","email":"a@x"})"), draft("1", 1, R"({"email":null})"),
              draft("2", 0, R"({"name":"Bob"})"), draft("1", 2, R"({"phone":"1"})")});
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(step(), 4u);
  auto r1 = record("1");
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->version, 3u);
  EXPECT_EQ(r1->state, R"({"name":"Ada","phone":"1"})");
  EXPECT_EQ(r1->field_versions, R"({"email":2,"name":1,"phone":3})");
  EXPECT_EQ(record("2")->version, 1u);
  for (const auto& o : out) {
    EXPECT_TRUE(processed(o.id));
    EXPECT_EQ(actions(o.id),
              (std::vector<AuditAction>{AuditAction::kIngested, AuditAction::kMerged}));
  }
  auto merged = drain("events.merged.sandbox.audit");
  ASSERT_EQ(merged.size(), 4u);
  std::map<std::string, uint64_t> last;
  for (const auto& m : merged) {
    auto body = nlohmann::json::parse(m.data);
    EXPECT_EQ(m.ordering_key, "contact:" + body["record_id"].get<std::string>());
    const uint64_t v = body["version"];
    EXPECT_EQ(v, last[m.ordering_key] + 1) << m.data;
    last[m.ordering_key] = v;
  }
  EXPECT_TRUE(verify_audit_chain(pipeline_->merge_store())->ok);
}

TEST_F(PipelineTest, ADuplicateIsAnsweredWithTheOriginalAndNeverMergedTwice) {
  auto first = ingest({draft("1", 0, R"({"a":1})")});
  auto again = ingest({draft("1", 0, R"({"a":1})")});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].duplicate);
  EXPECT_EQ(again[0].id, first[0].id);
  step();
  EXPECT_EQ(record("1")->version, 1u);
  EXPECT_EQ(drain("events.merged.sandbox.audit").size(), 1u);
  EXPECT_EQ(actions(first[0].id),
            (std::vector<AuditAction>{AuditAction::kIngested, AuditAction::kDuplicate,
                                      AuditAction::kMerged}));
}

TEST_F(PipelineTest, AStaleBaseRebasesOrIsRejectedAndTheRecordFlowsOn) {
  auto e = ingest({draft("1", 0, R"({"a":1,"b":1})"), draft("1", 1, R"({"a":2})"),
                   draft("1", 1, R"({"b":2})"),  // b unchanged since v1: rebase
                   draft("1", 1, R"({"a":3})"),  // a changed at v2: conflict, reject
                   draft("1", 3, R"({"c":1})")});
  step();
  auto r = record("1");
  EXPECT_EQ(r->version, 4u);
  EXPECT_EQ(r->state, R"({"a":2,"b":2,"c":1})");
  EXPECT_EQ(actions(e[2].id).back(), AuditAction::kRebased);
  EXPECT_EQ(actions(e[3].id),
            (std::vector<AuditAction>{AuditAction::kIngested, AuditAction::kConflict,
                                      AuditAction::kDeadLettered}));
  EXPECT_TRUE(processed(e[3].id));
  auto dlq = drain("events.dlq.sandbox.inspect");
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].attributes.at("event_id"), e[3].id.str());
  EXPECT_NE(dlq[0].attributes.at("reason").find("conflict"), std::string::npos);
  auto list = pipeline_->dlq_list();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].event.event.id(), e[3].id);
}

TEST_F(PipelineTest, ConflictPoliciesResolveFieldByField) {
  pipeline::MergeSettings s;
  s.policies["contact"] = pipeline::ConflictPolicy::kSourcePriority;
  s.source_priority = {"erp", "crm"};
  open(s);
  ingest({draft("1", 0, R"({"a":0,"b":0})", "crm"), draft("1", 1, R"({"a":1})", "crm"),
          draft("1", 1, R"({"a":2,"b":2})", "erp")});  // erp outranks crm on a; b is a rebase
  step();
  EXPECT_EQ(record("1")->state, R"({"a":2,"b":2})");
  EXPECT_EQ(record("1")->version, 3u);
}

TEST_F(PipelineTest, AGapIsParkedAndAppliedAsSoonAsItIsFilled) {
  auto e = ingest(
      {draft("1", 0, R"({"v":0})"), draft("1", 2, R"({"v":2})"), draft("2", 0, R"({"x":1})")});
  step();
  EXPECT_EQ(record("1")->version, 1u);  // v2 waits for v1
  EXPECT_EQ(record("2")->version, 1u);  // other records are not held up
  EXPECT_FALSE(processed(e[1].id));
  ingest({draft("1", 1, R"({"v":1})")});
  step();  // no clock move: the parked event goes right after its gap fills
  EXPECT_EQ(record("1")->version, 3u);
  EXPECT_EQ(record("1")->state, R"({"v":2})");
  EXPECT_TRUE(processed(e[1].id));
  EXPECT_TRUE(drain("events.dlq.sandbox.inspect").empty());
  clock_.advance_micros(600 * kSecond);
  step();  // the parked event's retry copy finds it done
  EXPECT_EQ(record("1")->version, 3u);
  EXPECT_EQ(broker_->stats("events.error.sandbox.retry")->undelivered, 0u);
}

TEST_F(PipelineTest, AGapNeverFilledEndsInTheDlqAfterTheRetrySpan) {
  auto e = ingest({draft("1", 0, R"({"v":0})"), draft("1", 5, R"({"v":5})")});
  step();
  // The retry stage tries at 0, 10, 30, 70 and 150 s (backoff 10, 20, 40, 80 s).
  for (int64_t wait : {10, 20, 40, 80}) {
    EXPECT_TRUE(drain("events.dlq.sandbox.inspect").empty());
    clock_.advance_micros(wait * kSecond - 1);
    step();
    clock_.advance_micros(1);
    step();
  }
  auto dlq = drain("events.dlq.sandbox.inspect");
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].attributes.at(std::string(kAttrDeliveryAttempt)), "5");
  EXPECT_TRUE(processed(e[1].id));
  auto shown = pipeline_->dlq_show(e[1].id);
  ASSERT_TRUE(shown.ok()) << shown.error().describe();
  auto detail = nlohmann::json::parse(*shown->dead_lettered.detail);
  EXPECT_GE(detail["failure_history"].size(), 4u);
  int retries = 0;
  for (const auto& a : shown->history) retries += a.action == AuditAction::kRetryScheduled;
  EXPECT_EQ(retries, 5);  // the park, then attempts 1 to 4
  EXPECT_EQ(record("1")->version, 1u);
}

TEST_F(PipelineTest, ATransientFailureHoldsItsRecordInOrderButNoOther) {
  faulty_->fail_merges_for(RecordKey{"contact", "1"});
  ingest({draft("1", 0, R"({"a":1})"), draft("1", 1, R"({"a":2})"), draft("2", 0, R"({"b":1})")});
  step();
  EXPECT_FALSE(record("1").has_value());
  EXPECT_EQ(record("2")->version, 1u);
  EXPECT_GT(faulty_->injected(), 0);
  faulty_->fail_merges_for(std::nullopt);
  clock_.advance_micros(10 * kSecond);
  step();
  EXPECT_EQ(record("1")->version, 2u);
  EXPECT_EQ(record("1")->state, R"({"a":2})");
  auto merged = drain("events.merged.sandbox.audit");
  std::vector<uint64_t> versions;
  for (const auto& m : merged) {
    if (m.ordering_key == "contact:1") versions.push_back(nlohmann::json::parse(m.data)["version"]);
  }
  EXPECT_EQ(versions, (std::vector<uint64_t>{1, 2}));
}

TEST_F(PipelineTest, ATransientFailureThatLastsIsDeadLetteredAfterFiveAttempts) {
  faulty_->fail_merges_for(RecordKey{"contact", "1"});
  auto e = ingest({draft("1", 0, R"({"a":1})")});
  step();
  for (int64_t wait : {10, 20, 40, 80}) {
    clock_.advance_micros(wait * kSecond);
    step();
  }
  auto dlq = drain("events.dlq.sandbox.inspect");
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].attributes.at(std::string(kAttrDeliveryAttempt)), "5");
  EXPECT_NE(dlq[0].attributes.at(std::string(kAttrLastError)).find("unavailable"),
            std::string::npos);
}

TEST_F(PipelineTest, TheRelayPublishesStoredEventsThatWereNeverPublished) {
  // As after a crash between the store and the publish: stored, not published.
  std::vector<EventDraft> drafts = {draft("1", 0, R"({"a":1})"), draft("1", 1, R"({"a":2})")};
  auto events = create_events(drafts, ids_, clock_);
  ASSERT_TRUE(pipeline_->ingest_store().append(*events).ok());
  EXPECT_EQ(step(), 0u);
  auto relayed = pipeline_->relay();
  ASSERT_TRUE(relayed.ok());
  EXPECT_EQ(*relayed, 2u);
  step();
  EXPECT_EQ(record("1")->version, 2u);
  // Relaying again (as a second restart would) changes nothing.
  EXPECT_EQ(*pipeline_->relay(), 0u);
}

TEST_F(PipelineTest, ARelayedDuplicateOfAMergedEventIsIgnored) {
  auto e = ingest({draft("1", 0, R"({"a":1})")});
  auto ev = pipeline_->ingest_store().get(e[0].id);
  // Publish the raw message once more by hand, before and after merging.
  EnvPublisher pub(*broker_, Topology::built_in(), "sandbox", kEnvs);
  ASSERT_TRUE(pub.publish_record(TopicFamily::kRaw, {"contact", "1"}, event_to_json(ev->event),
                                 {{"event_id", e[0].id.str()}})
                  .ok());
  step();
  EXPECT_EQ(record("1")->version, 1u);
  EXPECT_EQ(drain("events.merged.sandbox.audit").size(), 1u);
}

TEST_F(PipelineTest, APoisonMessageGoesToTheDlqAtOnce) {
  EnvPublisher pub(*broker_, Topology::built_in(), "sandbox", kEnvs);
  ASSERT_TRUE(pub.publish_record(TopicFamily::kRaw, {"contact", "9"}, "{not an event").ok());
  ASSERT_TRUE(pub.publish_record(TopicFamily::kRaw, {"contact", "9"}, "x",
                                 {{"event_id", "01a2205c-d11c-7327-b6d6-f43dd781f1e7"}})
                  .ok());
  step();
  auto dlq = drain("events.dlq.sandbox.inspect");
  ASSERT_EQ(dlq.size(), 2u);
  EXPECT_NE(dlq[0].attributes.at("reason").find("poison"), std::string::npos);
  EXPECT_NE(dlq[1].attributes.at("reason").find("poison"), std::string::npos);
}

TEST_F(PipelineTest, AReplayedDeadLetterMergesOnceItCan) {
  auto e = ingest({draft("1", 0, R"({"v":0})"), draft("1", 2, R"({"v":2})")});
  step();
  for (int64_t wait : {10, 20, 40, 80}) {
    clock_.advance_micros(wait * kSecond);
    step();
  }
  ASSERT_EQ(pipeline_->dlq_list()->size(), 1u);
  ingest({draft("1", 1, R"({"v":1})")});
  step();
  EXPECT_EQ(record("1")->version, 2u);
  ASSERT_TRUE(pipeline_->dlq_replay(e[1].id).ok());
  step();
  EXPECT_EQ(record("1")->version, 3u);
  EXPECT_EQ(record("1")->state, R"({"v":2})");
  EXPECT_TRUE(pipeline_->dlq_list()->empty());
  auto acts = actions(e[1].id);
  EXPECT_EQ(acts.back(), AuditAction::kMerged);
  EXPECT_NE(std::find(acts.begin(), acts.end(), AuditAction::kReplayed), acts.end());
  EXPECT_EQ(pipeline_->dlq_replay(e[1].id).code(), Errc::kNotFound);
  EXPECT_TRUE(verify_audit_chain(pipeline_->merge_store())->ok);
}

}  // namespace
}  // namespace backbone::testing
