// The pipeline of one environment, end to end on a real SQLite store and the embedded broker,
// driven step by step on a ManualClock: backoffs and the retry span pass by moving the clock.
#include "pipeline/pipeline.h"
#include "pipeline/merge_rules.h"
#include "pipeline/rebuild.h"

#include <gtest/gtest.h>

#include "backbone/forwarding_broker.h"
#include "backbone/record_key.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "backbone/event_json.h"
#include "pipeline/faulty_store.h"
#include "pipeline/messages.h"
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
    o.metrics = &metrics_;
    if (fenced_) {
      o.fence = [this](const std::string& key) -> Result<BucketFence> {
        const uint32_t bucket = bucket_of(key, 1);
        auto it = owned_.find(bucket);
        if (it == owned_.end()) return make_error(Errc::kFenced, "not this process's bucket");
        return BucketFence{bucket, it->second};
      };
    }
    o.open_store = [this](Role role) -> Result<std::unique_ptr<EventStore>> {
      StoreOptions s;
      s.url = store_url_;
      s.role = role;
      s.clock = &clock_;
      s.ids = &ids_;
      auto store = EventStore::open(s);
      if (!store.ok()) return store;
      auto faulty = std::make_unique<FaultyStore>(std::move(*store));
      (role == Role::kMergeWorker ? faulty_ : faulty_ingest_) = faulty.get();
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
  // A process of a cluster with one bucket, owned here, and record 1 merged at version 1.
  void own_the_bucket_of_record_1_at_v1() {
    fenced_ = true;
    open();
    EventStore& store = pipeline_->merge_store();
    ASSERT_EQ(*store.init_buckets(1), 1u);
    owned_[0] = *(*store.change_leases("me", std::vector<LeaseChange>{{0, 0, true}}))[0];
    ingest({draft("1", 0, R"({"v":0})")});
    step();
    ASSERT_EQ(record("1")->version, 1u);
  }

  Metrics metrics_;
  ManualClock clock_;
  EventIdGenerator ids_{clock_, 17};
  TempDir dir_;
  std::string store_url_ = "sqlite://" + dir_.file("sandbox.db");
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<EnvironmentPipeline> pipeline_;
  FaultyStore* faulty_ = nullptr;         // the merge stage's store
  FaultyStore* faulty_ingest_ = nullptr;  // ingest's
  // With fenced_ (set before open()), the Merger fences its commits with these leases (one
  // bucket), as a process of a cluster whose keeper owns them (doc/scale_out.md).
  bool fenced_ = false;
  std::map<uint32_t, uint64_t> owned_;
};

// Every column of every row, one line each (for readable comparisons).
std::string describe(const std::vector<StoredRecord>& rows) {
  std::string out;
  for (const StoredRecord& r : rows) {
    out += r.key.record_type + "/" + r.key.record_id + " v" + std::to_string(r.version) + " " +
           r.state + " " + r.field_versions + " @" + std::to_string(r.updated_at.micros()) + "\n";
  }
  return out;
}

// Waits (in real time, bounded) until `done` holds; false if it never did.
bool eventually(const std::function<bool()>& done) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

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

TEST_F(PipelineTest, ConcurrentIngestCallsShareACommitAndAFailingCallFailsAlone) {
  const auto stored = ingest({draft("0", 0, R"({"v":0})")});
  // The first call takes the lead and waits in the store; three more queue behind it and go
  // in one group. One of them reuses a stored id in its second event.
  faulty_ingest_->hold_appends(true);
  std::map<std::string, Result<std::vector<pipeline::IngestOutcome>>> results;
  std::mutex mu;
  auto call = [&](const std::string& name, std::vector<EventDraft> drafts) {
    return std::thread([&, name, drafts] {
      auto r = pipeline_->ingest(drafts);
      std::lock_guard lk(mu);
      results.emplace(name, std::move(r));
    });
  };
  std::vector<std::thread> threads;
  threads.push_back(call("a", {draft("a", 0, R"({"v":1})")}));
  ASSERT_TRUE(eventually([&] { return faulty_ingest_->appends_waiting() == 1; }));
  // Queued in this order, so that b's reused id is the group's fourth event but its own second.
  threads.push_back(call("c", {draft("c", 0, R"({"v":3})"), draft("c", 1, R"({"v":4})")}));
  ASSERT_TRUE(eventually([&] { return pipeline_->ingest_queued() == 1; }));
  EventDraft reused = draft("b", 1, R"({"v":"other"})");
  reused.id = stored[0].id;
  threads.push_back(call("b", {draft("b", 0, R"({"v":2})"), reused}));
  ASSERT_TRUE(eventually([&] { return pipeline_->ingest_queued() == 2; }));
  threads.push_back(call("d", {draft("d", 0, R"({"v":5})")}));
  ASSERT_TRUE(eventually([&] { return pipeline_->ingest_queued() == 3; }));
  faulty_ingest_->hold_appends(false);
  for (auto& t : threads) t.join();

  ASSERT_TRUE(results.at("a").ok());
  ASSERT_FALSE(results.at("b").ok());
  EXPECT_EQ(results.at("b").code(), Errc::kImmutable);
  EXPECT_EQ(results.at("b").error().location(), "events[1]");  // its own numbering, not the group's
  ASSERT_TRUE(results.at("c").ok()) << results.at("c").error().describe();
  ASSERT_TRUE(results.at("d").ok());
  EXPECT_EQ(results.at("c")->size(), 2u);
  step();
  for (const char* id : {"a", "c", "d"}) EXPECT_TRUE(record(id).has_value()) << id;
  EXPECT_EQ(record("c")->version, 2u);
  EXPECT_FALSE(record("b").has_value());  // nothing of the failed call was stored
  auto history = pipeline_->merge_store().history({"contact", "b"});
  ASSERT_TRUE(history.ok());
  EXPECT_TRUE(history->empty());
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

// The embedded broker as another process would share it: every call forwarded, and
// shares_subscriptions() as the test says (Pub/Sub's is true).
class SharedBroker final : public ForwardingBroker {
 public:
  SharedBroker(Broker& real, bool shared) : ForwardingBroker(real), shared_(shared) {}
  bool shares_subscriptions() const override { return shared_; }

 private:
  bool shared_;
};

// Two processes of one environment on a shared subscription: the event that one parks is taken
// up by the other as soon as that one merges the version it waits for, from the store, without
// waiting out the retry backoff. With a broker that does not share subscriptions, the second
// process looks in its own memory only, and the event waits: the test can tell the two apart.
class SharedSubscriptionTest : public PipelineTest, public ::testing::WithParamInterface<bool> {};

TEST_P(SharedSubscriptionTest, AnEventParkedByOneProcessIsTakenUpByTheOther) {
  const bool shared = GetParam();
  SharedBroker first_broker(*broker_, shared), second_broker(*broker_, shared);
  auto open_on = [&](Broker& b) {
    pipeline::PipelineOptions o;
    o.env = "sandbox";
    o.environments = kEnvs;
    o.store_url = store_url_;
    o.broker = &b;
    o.topology = &Topology::built_in();
    o.clock = &clock_;
    o.ids = &ids_;
    auto p = EnvironmentPipeline::open(o);
    EXPECT_TRUE(p.ok()) << p.error().describe();
    return p.ok() ? std::move(*p) : nullptr;
  };
  auto first = open_on(first_broker), second = open_on(second_broker);
  ASSERT_TRUE(first && second);
  auto ingest_on = [&](EnvironmentPipeline& p, EventDraft d) {
    auto r = p.ingest(std::span(&d, 1));
    EXPECT_TRUE(r.ok()) << r.error().describe();
    return r.ok() ? (*r)[0].id : EventId();
  };
  auto version = [&] { return first->merge_store().get_record({"contact", "1"})->value().version; };

  ingest_on(*first, draft("1", 0, R"({"v":0})"));
  ASSERT_TRUE(first->step().ok());
  ASSERT_EQ(version(), 1u);
  // The second process parks an event that waits for version 2; its retry copy is nacked.
  const EventId parked = ingest_on(*first, draft("1", 2, R"({"v":2})"));
  ASSERT_TRUE(second->step().ok());
  ASSERT_FALSE(first->merge_store().get(parked)->processed);
  // The first process merges version 2, and takes the parked event up at once when it may
  // know of it; no clock moves.
  ingest_on(*first, draft("1", 1, R"({"v":1})"));
  ASSERT_TRUE(first->step().ok());
  EXPECT_EQ(version(), shared ? 3u : 2u);
  EXPECT_EQ(first->merge_store().get(parked)->processed, shared);
  // Either way the retry copy settles it once its backoff passes, merged once.
  clock_.advance_micros(600 * kSecond);
  ASSERT_TRUE(second->step().ok());
  ASSERT_TRUE(first->step().ok());
  EXPECT_EQ(version(), 3u);
  EXPECT_EQ(first->merge_store().get_record({"contact", "1"})->value().state, R"({"v":2})");
  int merges = 0;
  for (const AuditEntry& a : *first->merge_store().audit_for_event(parked)) {
    merges += a.action == AuditAction::kMerged;
  }
  EXPECT_EQ(merges, 1);
}

// Another process moves the record between this one's read and its commit: the commit is
// refused (the version moved), and the event is decided again at once on what the other did,
// rather than nacked into a backoff with its record's later events behind it.
TEST_F(PipelineTest, ACommitThatLostARaceIsDecidedAgainAtOnce) {
  ingest({draft("1", 0, R"({"v":0})")});
  step();
  ASSERT_EQ(record("1")->version, 1u);
  auto e = ingest({draft("1", 1, R"({"d":1})"), draft("1", 1, R"({"x":1})")});
  const EventId mine = e[0].id, theirs = e[1].id;
  faulty_->before_next_commit([&](EventStore& real) {
    // The other process merges `theirs` first, by the same rules: version 2.
    const Event ev = real.get(theirs)->event;
    const StoredRecord now = real.get_record(ev.record_key())->value();
    auto d = pipeline::decide_merge(
        ev, {now.version, now.state, now.field_versions}, {},
        [](uint64_t) { return Result<pipeline::FieldOrigin>(pipeline::FieldOrigin{}); });
    ASSERT_TRUE(d.ok() && d->kind == pipeline::MergeDecision::Kind::kFastForward);
    MergeCommit c;
    c.event_id = theirs;
    c.record = ev.record_key();
    c.expected_version = now.version;
    c.next = StoredRecord{c.record, d->next.version, d->next.state, d->next.field_versions,
                          clock_.now()};
    c.audit.push_back({theirs, c.record, AuditAction::kMerged, ev.fingerprint(), d->detail});
    ASSERT_TRUE(real.commit_merge(c).ok());
  });
  step();  // no clock move
  EXPECT_EQ(record("1")->version, 3u) << "decided again on version 2: a rebase";
  EXPECT_EQ(record("1")->state, R"({"d":1,"v":0,"x":1})");
  EXPECT_TRUE(processed(mine));
  const auto done = actions(mine);
  EXPECT_EQ(done.back(), AuditAction::kRebased);
  EXPECT_EQ(std::count(done.begin(), done.end(), AuditAction::kRetryScheduled), 0)
      << "it was not sent to the retry stage";
  // Nor is its record held behind a nack: its next event merges in the next step, still with
  // no clock move.
  ingest({draft("1", 3, R"({"d":2})")});
  step();
  EXPECT_EQ(record("1")->version, 4u);
}

// A process of a cluster merges only under its lease: once another process has taken the
// bucket, the store refuses its commit, and the delivery is nacked, never acked, until the
// bucket is this process's again. Nothing is lost, merged twice or published for the refused
// commit.
TEST_F(PipelineTest, ACommitUnderALostLeaseIsRefusedAndItsEventWaitsForTheOwner) {
  fenced_ = true;
  open();
  EventStore& store = pipeline_->merge_store();
  ASSERT_EQ(*store.init_buckets(1), 1u);
  const std::vector<LeaseChange> claim = {{0, 0, true}};
  owned_[0] = *(*store.change_leases("me", claim))[0];
  ingest({draft("1", 0, R"({"v":0})")});
  step();
  ASSERT_EQ(record("1")->version, 1u);

  // Another process takes the bucket over; this one has not heard yet.
  const std::vector<LeaseChange> takeover = {{0, owned_[0], true}};
  ASSERT_TRUE((*store.change_leases("other", takeover))[0].has_value());
  const EventId late = ingest({draft("1", 1, R"({"v":1})")})[0].id;
  step();
  EXPECT_EQ(record("1")->version, 1u) << "merged under a lost lease";
  EXPECT_FALSE(processed(late));
  EXPECT_TRUE(actions(late) == std::vector<AuditAction>{AuditAction::kIngested});
  // Its keeper hears: no commit is even tried.
  owned_.clear();
  clock_.advance_micros(2 * kSecond);
  step();
  EXPECT_EQ(record("1")->version, 1u);
  EXPECT_FALSE(processed(late));
  // The bucket comes back at a later epoch: the event merges, once.
  const std::vector<LeaseChange> back = {{0, 2, true}};
  owned_[0] = *(*store.change_leases("me", back))[0];
  EXPECT_EQ(owned_[0], 3u);
  clock_.advance_micros(2 * kSecond);
  step();
  EXPECT_EQ(record("1")->version, 2u);
  EXPECT_TRUE(processed(late));
  std::vector<uint64_t> versions;
  for (const Message& m : drain("events.merged.sandbox.sync")) {
    versions.push_back(nlohmann::json::parse(m.data)["version"].get<uint64_t>());
  }
  EXPECT_EQ(versions, (std::vector<uint64_t>{1, 2}));
}

// Buckets that move: a bucket's new owner reads the events its former owner parked before it
// commits anything for the bucket, and takes them up as soon as their record reaches their base
// (not after their retry copy's backoff, and never after a later event of their record).
TEST_F(PipelineTest, ABucketsNewOwnerTakesUpAtOnceWhatItsFormerOwnerParked) {
  ASSERT_NO_FATAL_FAILURE(own_the_bucket_of_record_1_at_v1());
  EventStore& store = pipeline_->merge_store();

  // Another process takes the bucket, takes the record's next event from the raw topic and
  // parks it (its base is not there yet), then leaves.
  const uint64_t theirs =
      *(*store.change_leases("other", std::vector<LeaseChange>{{0, owned_[0], true}}))[0];
  owned_.clear();
  const StoredEvent parked =
      *pipeline_->merge_store().get(ingest({draft("1", 2, R"({"v":2})")})[0].id);
  EXPECT_EQ(drain("events.raw.sandbox.merge").size(), 1u);
  MergeCommit park;
  park.event_id = parked.event.id();
  park.record = parked.event.record_key();
  park.expected_version = 1;
  park.park = true;
  park.fence = BucketFence{0, theirs};
  park.audit.push_back({parked.event.id(), parked.event.record_key(), AuditAction::kRetryScheduled,
                        parked.event.fingerprint(), "{}"});
  ASSERT_TRUE(store.commit_merge(park).ok());
  const EventId missing = ingest({draft("1", 1, R"({"v":1})")})[0].id;

  // The bucket is this process's again: the missing version merges, and the parked event after
  // it, at once (the clock does not move, so no retry copy is due).
  owned_[0] = *(*store.change_leases("me", std::vector<LeaseChange>{{0, theirs, true}}))[0];
  step();
  EXPECT_TRUE(processed(missing));
  EXPECT_TRUE(processed(parked.event.id())) << "left to its retry copy";
  EXPECT_EQ(record("1")->version, 3u);
  EXPECT_EQ(record("1")->state, R"({"v":2})");
}

// A process that lost its bucket cannot park an event there: the park is refused with its
// commit, so the new owner, which read the parked events after its claim, misses none; the
// delivery is nacked, never acked, and no copy goes to the error topic.
TEST_F(PipelineTest, AProcessThatLostItsBucketCannotParkThere) {
  ASSERT_NO_FATAL_FAILURE(own_the_bucket_of_record_1_at_v1());
  EventStore& store = pipeline_->merge_store();
  ASSERT_TRUE((*store.change_leases("other", std::vector<LeaseChange>{{0, owned_[0], true}}))[0]);
  const EventId gap = ingest({draft("1", 5, R"({"v":5})")})[0].id;
  step();  // this process has not heard yet
  EXPECT_TRUE(actions(gap) == std::vector<AuditAction>{AuditAction::kIngested});
  EXPECT_TRUE(drain("events.error.sandbox.retry").empty());
  auto unacked = broker_->stats("events.raw.sandbox.merge");
  ASSERT_TRUE(unacked.ok());
  EXPECT_EQ(*unacked->undelivered + *unacked->in_flight, 1u) << "the delivery was acked";
}

INSTANTIATE_TEST_SUITE_P(Brokers, SharedSubscriptionTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Shared" : "OneProcessEach"; });

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
  // As after a crash between the store and the publish, or `backbone publish`: stored, not
  // published.
  std::vector<EventDraft> drafts = {draft("1", 0, R"({"a":1})"), draft("1", 1, R"({"a":2})")};
  auto events = create_events(drafts, ids_, clock_);
  ASSERT_TRUE(pipeline_->ingest_store().append(*events).ok());
  EXPECT_EQ(step(), 0u);
  // Younger than the grace: an ingest in progress, which publishes its own.
  EXPECT_EQ(*pipeline_->relay(5 * kSecond), 0u);
  clock_.advance_micros(5 * kSecond);
  auto relayed = pipeline_->relay(5 * kSecond);
  ASSERT_TRUE(relayed.ok()) << relayed.error().describe();
  EXPECT_EQ(*relayed, 2u);
  step();
  EXPECT_EQ(record("1")->version, 2u);
  // Relaying again (as a restart would) publishes nothing.
  EXPECT_EQ(*pipeline_->relay(), 0u);
}

TEST_F(PipelineTest, ARestartPublishesNothingThatTheBrokerHoldsAlready) {
  ingest({draft("1", 0, R"({"a":1})"), draft("1", 1, R"({"a":2})"), draft("2", 0, R"({"b":1})")});
  ingest({draft("3", 0, R"({"c":1})")});
  open();  // a restart before the merge stage ran
  EXPECT_EQ(*pipeline_->relay(), 0u);
  EXPECT_EQ(step(), 4u) << "each event delivered once";
  EXPECT_EQ(record("1")->version, 2u);
}

TEST_F(PipelineTest, EventsParkedBeforeARestartAreTakenUpWhenTheirRecordMovesOn) {
  ingest({draft("1", 1, R"({"a":2})"), draft("1", 2, R"({"a":3})")});
  step();
  EXPECT_FALSE(record("1").has_value()) << "both wait for version 1";
  open();  // a restart forgets what this process parked
  auto recovered = pipeline_->recover_parked();
  ASSERT_TRUE(recovered.ok()) << recovered.error().describe();
  EXPECT_EQ(*recovered, 0u) << "nothing fits version 0";
  ingest({draft("1", 0, R"({"a":1})")});
  step();
  // At once, not after the retry copies' 10 s backoff (the clock has not moved).
  EXPECT_EQ(record("1")->version, 3u);
  EXPECT_EQ(record("1")->state, R"({"a":3})");
}

TEST_F(PipelineTest, AParkedEventThatFitsAlreadyAfterARestartIsMergedAtOnce) {
  ingest({draft("1", 1, R"({"a":2})")});
  step();
  // Version 1 merges, and the process stops before it takes the parked event up: as a crash
  // between the two would leave it.
  ingest({draft("1", 0, R"({"a":1})")});
  open();
  auto raw = pipeline_->merger().on_raw(*broker_->pull("events.raw.sandbox.merge", 10));
  ASSERT_EQ(raw.size(), 1u);
  open();
  EXPECT_EQ(record("1")->version, 1u);
  EXPECT_EQ(*pipeline_->recover_parked(), 1u);
  EXPECT_EQ(record("1")->version, 2u);
}

TEST_F(PipelineTest, AnEventMergedBeforeItLeftTheOutboxIsTakenOutUnpublished) {
  // Published, then a crash before the outbox heard of it; then merged.
  std::vector<EventDraft> drafts = {draft("1", 0, R"({"a":1})")};
  auto events = create_events(drafts, ids_, clock_);
  ASSERT_TRUE(pipeline_->ingest_store().append(*events).ok());
  EnvPublisher pub(*broker_, Topology::built_in(), "sandbox", kEnvs);
  const OutgoingMessage m = pipeline::raw_message((*events)[0]);
  ASSERT_TRUE(pub.publish(TopicFamily::kRaw, std::span(&m, 1)).ok());
  EXPECT_EQ(step(), 1u);
  EXPECT_EQ(*pipeline_->relay(), 0u);
  EXPECT_TRUE(pipeline_->ingest_store().outbox(clock_.now(), 10)->empty());
  EXPECT_EQ(step(), 0u);
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
  ASSERT_TRUE(pipeline_->dlq_replay(e[1].id, "test").ok());
  step();
  EXPECT_EQ(record("1")->version, 3u);
  EXPECT_EQ(record("1")->state, R"({"v":2})");
  EXPECT_TRUE(pipeline_->dlq_list()->empty());
  auto acts = actions(e[1].id);
  EXPECT_EQ(acts.back(), AuditAction::kMerged);
  EXPECT_NE(std::find(acts.begin(), acts.end(), AuditAction::kReplayed), acts.end());
  EXPECT_EQ(pipeline_->dlq_replay(e[1].id, "test").code(), Errc::kNotFound);
  EXPECT_TRUE(verify_audit_chain(pipeline_->merge_store())->ok);
}

// A `reject` conflict comes back as a conflict when replayed; resolving it ends it: accepted, its
// change applies on the current version (audited `merged`, kind accepted, and published);
// discarded, it leaves the DLQ unapplied. Either way it is out of the DLQ for good, and a
// rebuild of the records agrees.
TEST_F(PipelineTest, AConflictIsResolvedByAcceptingOrDiscardingIt) {
  auto e = ingest({draft("1", 0, R"({"a":1,"b":1})"), draft("1", 1, R"({"a":2})"),
                   draft("1", 1, R"({"a":3,"c":3})"),  // a moved since v1: rejected
                   draft("2", 0, R"({"x":1})"), draft("2", 1, R"({"x":2})"),
                   draft("2", 1, R"({"x":3})")});  // rejected too
  step();
  ASSERT_EQ(pipeline_->dlq_list()->size(), 2u);
  (void)drain("events.merged.sandbox.audit");

  // A replay meets the same conflict.
  ASSERT_TRUE(pipeline_->dlq_replay(e[2].id, "test").ok());
  step();
  ASSERT_EQ(pipeline_->dlq_list()->size(), 2u);

  // The dry run of a bulk replay names them in history order, and changes nothing.
  auto preview = pipeline_->dlq_replay_all({}, true, "test");
  ASSERT_TRUE(preview.ok());
  ASSERT_EQ(preview->size(), 2u);
  EXPECT_EQ((*preview)[0].event.event.id(), e[2].id);
  EXPECT_EQ((*preview)[1].event.event.id(), e[5].id);
  pipeline::DlqFilter only_2;
  only_2.reason = "conflict";
  only_2.since = Timestamp::from_micros(0);
  EXPECT_EQ(pipeline_->dlq_replay_all(only_2, true, "test")->size(), 2u);
  pipeline::DlqFilter deals;
  deals.record_type = "deal";
  EXPECT_TRUE(pipeline_->dlq_replay_all(deals, true, "test")->empty());

  using R = pipeline::EnvironmentPipeline::DlqResolution;
  ASSERT_TRUE(
      pipeline_->dlq_resolve(e[2].id, R::kAccept, "token 7 (ops)", "the CRM is right").ok());
  ASSERT_TRUE(pipeline_->dlq_resolve(e[5].id, R::kDiscard, "token 7 (ops)", "stale").ok());
  EXPECT_TRUE(pipeline_->dlq_list()->empty());  // accepted: replayed; discarded: closed
  step();
  EXPECT_TRUE(pipeline_->dlq_list()->empty());
  // Accepted: on v2 ({"a":2,"b":1}), its whole change.
  EXPECT_EQ(record("1")->version, 3u);
  EXPECT_EQ(record("1")->state, R"({"a":3,"b":1,"c":3})");
  auto merged = drain("events.merged.sandbox.audit");
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_NE(merged[0].data.find("\"accepted\""), std::string::npos) << merged[0].data;
  auto acts = actions(e[2].id);
  EXPECT_EQ(acts.back(), AuditAction::kMerged);
  // Discarded: the record stays as it was.
  EXPECT_EQ(record("2")->version, 2u);
  EXPECT_EQ(record("2")->state, R"({"x":2})");
  EXPECT_EQ(actions(e[5].id).back(), AuditAction::kDeadLettered);
  // Neither can be resolved again.
  EXPECT_EQ(pipeline_->dlq_resolve(e[2].id, R::kDiscard, "x", "").code(), Errc::kNotFound);
  EXPECT_EQ(pipeline_->dlq_resolve(e[5].id, R::kAccept, "x", "").code(), Errc::kNotFound);
  auto rebuilt = pipeline::rebuild_records(pipeline_->merge_store(), false);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().describe();
  EXPECT_TRUE(rebuilt->matches());
  EXPECT_TRUE(verify_audit_chain(pipeline_->merge_store())->ok);
}

// The audit projector reads every merged message and finds each in the audit log; a forged one
// (a version the log never made, or other changes) is counted and logged, and acked either way.
TEST_F(PipelineTest, TheAuditProjectorChecksEachMergedMessageAgainstTheAuditLog) {
  auto e = ingest({draft("1", 0, R"({"a":1})"), draft("1", 1, R"({"b":2})")});
  step();
  auto mismatches = [&] {
    return metrics_.counter("backbone_audit_projection_mismatches_total", "", {{"env", "sandbox"}})
        .value();
  };
  ASSERT_EQ(*pipeline_->step_watchers(), 2u);  // nothing waits in the inspect subscription
  EXPECT_EQ(mismatches(), 0);
  auto stored = pipeline_->merge_store().get(e[1].id);
  EnvPublisher pub(*broker_, Topology::built_in(), "sandbox", kEnvs);
  // Version 2 with other changes, and a version 7 that was never made.
  for (const auto& forged :
       {pipeline::merged_message(stored->event, 2, "fast_forward", R"({"b":3})"),
        pipeline::merged_message(stored->event, 7, "fast_forward", R"({"b":2})")}) {
    ASSERT_TRUE(
        pub.publish_record(TopicFamily::kMerged, {"contact", "1"}, forged.data, forged.attributes)
            .ok());
  }
  ASSERT_EQ(*pipeline_->step_watchers(), 2u);
  EXPECT_EQ(mismatches(), 2);
  EXPECT_EQ(*broker_->stats("events.merged.sandbox.audit")->undelivered, 0u);
}

// The DLQ inspector keeps an open dead letter's message in the inspect subscription, so its
// backlog counts the open dead letters, and acks it once the dead letter is resolved.
TEST_F(PipelineTest, TheDlqInspectorHoldsOpenDeadLettersAndLetsResolvedOnesGo) {
  auto e = ingest({draft("1", 0, R"({"a":1})"), draft("1", 1, R"({"a":2})"),
                   draft("1", 1, R"({"a":3})"), draft("2", 0, R"({"x":1})"),
                   draft("2", 1, R"({"x":2})"), draft("2", 1, R"({"x":3})")});
  step();
  ASSERT_EQ(pipeline_->dlq_list()->size(), 2u);
  (void)pipeline_->step_watchers();
  auto backlog = [&] {
    auto s = broker_->stats("events.dlq.sandbox.inspect");
    return *s->undelivered + *s->in_flight;
  };
  EXPECT_EQ(backlog(), 2u);
  using R = pipeline::EnvironmentPipeline::DlqResolution;
  ASSERT_TRUE(pipeline_->dlq_resolve(e[2].id, R::kDiscard, "ops", "").ok());
  // A replay that conflicts again leaves one open dead letter, with a newer message; the older
  // one is superseded.
  clock_.advance_micros(kSecond);
  ASSERT_TRUE(pipeline_->dlq_replay(e[5].id, "ops").ok());
  step();
  clock_.advance_micros(pipeline::DlqInspector::kRecheckUs);
  (void)pipeline_->step_watchers();
  EXPECT_EQ(backlog(), 1u);
  ASSERT_TRUE(pipeline_->dlq_resolve(e[5].id, R::kAccept, "ops", "").ok());
  step();
  clock_.advance_micros(pipeline::DlqInspector::kRecheckUs);
  (void)pipeline_->step_watchers();
  EXPECT_EQ(backlog(), 0u);
  EXPECT_TRUE(pipeline_->dlq_list()->empty());
}

TEST_F(PipelineTest, RebuildReproducesTheRecordsTableExactly) {
  pipeline::MergeSettings settings;
  settings.policies["contact"] = pipeline::ConflictPolicy::kLastWriterWins;
  settings.policies["deal"] = pipeline::ConflictPolicy::kReject;
  open(settings);
  ingest({draft("1", 0, R"({"a":1,"b":{"x":1}})"), draft("1", 1, R"({"a":2})"),
          draft("1", 1, R"({"b":{"y":2}})"),     // rebased
          draft("1", 1, R"({"a":3,"c":null})"),  // a moved: resolved, the newer wins
          draft("2", 1, R"({"v":1})"),           // a gap, filled next
          draft("2", 0, R"({"v":0,"w":0})")});
  EventDraft deal = draft("9", 0, R"({"s":1})");
  deal.record_type = "deal";
  EventDraft stale = draft("9", 0, R"({"s":2})");
  stale.record_type = "deal";
  ingest({deal, stale});  // the second is rejected
  step();
  StoreOptions so;
  so.url = store_url_;
  so.role = Role::kMigrator;
  so.clock = &clock_;
  auto store = std::move(*EventStore::open(so));
  auto table = store->scan_records(std::nullopt, 100);
  ASSERT_TRUE(table.ok());
  ASSERT_EQ(table->size(), 3u);
  auto rebuilt = pipeline::fold_records(*store);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().describe();
  EXPECT_EQ(describe(rebuilt->rows), describe(*table));  // every column, updated_at included
  EXPECT_EQ(rebuilt->merges, 7u);
  auto report = pipeline::rebuild_records(*store, true);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->matches());
  EXPECT_FALSE(report->replaced);

  // A damaged table is found and put right.
  SqliteHarness raw(store_url_.substr(std::string("sqlite://").size()));
  ASSERT_TRUE(
      raw.raw_sql(Role::kMigrator, "UPDATE records SET state = '{}' WHERE record_id = '1'").ok());
  ASSERT_TRUE(raw.raw_sql(Role::kMigrator, "DELETE FROM records WHERE record_id = '2'").ok());
  ASSERT_TRUE(
      raw.raw_sql(Role::kMigrator, "INSERT INTO records VALUES ('contact', '77', 1, '{}', '{}', 0)")
          .ok());
  report = pipeline::rebuild_records(*store, false);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->differing, 1u);
  EXPECT_EQ(report->missing, 1u);
  EXPECT_EQ(report->extra, 1u);
  EXPECT_NE(describe(*store->scan_records(std::nullopt, 100)), describe(*table));
  report = pipeline::rebuild_records(*store, true);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->replaced);
  EXPECT_EQ(describe(*store->scan_records(std::nullopt, 100)), describe(*table));

  // Rows computed before a later merge are not written over it.
  auto before = pipeline::fold_records(*store);
  ASSERT_TRUE(before.ok());
  ingest({draft("3", 0, R"({"z":1})")});
  step();
  EXPECT_EQ(store->replace_records(before->rows, before->heads).code(), Errc::kConflict);
  EXPECT_TRUE(record("3").has_value());
}

}  // namespace
}  // namespace backbone::testing
