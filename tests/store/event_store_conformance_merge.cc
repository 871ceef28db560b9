// The EventStore conformance suite, part two: the merge stage's writes (commit_merges, the
// records projection, and the reads the merge stage relies on).
#include <atomic>
#include <thread>

#include "store/event_store_conformance.h"

namespace backbone::testing {
namespace {

MergeCommit merged(const Event& e, uint64_t from, uint64_t to, const std::string& state,
                   Timestamp at) {
  MergeCommit c;
  c.event_id = e.id();
  c.record = e.record_key();
  c.expected_version = from;
  c.next = StoredRecord{e.record_key(), to, state, "{}", at};
  c.audit.push_back({e.id(), e.record_key(), AuditAction::kMerged, e.fingerprint(),
                     "{\"version\":" + std::to_string(to) + "}"});
  return c;
}

}  // namespace

TEST_P(EventStoreConformance, ACommittedMergeWritesTheRecordMarksProcessedAndAudits) {
  const Event e = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&e, 1)).ok());
  auto merge = open(Role::kMergeWorker);
  auto r = merge->commit_merge(merged(e, 0, 1, R"({"a":1})", clock_.now()));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].action, AuditAction::kMerged);
  EXPECT_EQ((*r)[0].event_id, e.id());
  EXPECT_TRUE(store_->get(e.id())->processed);
  auto record = store_->get_record(e.record_key());
  ASSERT_TRUE(record.ok() && *record);
  EXPECT_EQ((*record)->version, 1u);
  EXPECT_EQ((*record)->state, R"({"a":1})");
  auto audit = store_->audit_for_event(e.id());
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);  // ingested, merged
  EXPECT_EQ(audit->back().action, AuditAction::kMerged);
  EXPECT_EQ(audit->back().detail, R"({"version":1})");
}

TEST_P(EventStoreConformance, AMergeOnAStaleVersionIsAConflictAndChangesNothing) {
  const Event a = event("1", R"({"a":1})");
  const Event b = event("1", R"({"a":2})");
  ASSERT_TRUE(store_->append(std::vector<Event>{a, b}).ok());
  auto merge = open(Role::kMergeWorker);
  ASSERT_TRUE(merge->commit_merge(merged(a, 0, 1, R"({"a":1})", clock_.now())).ok());
  const int64_t audit_before = rows("event_audit_log");
  auto stale = merge->commit_merge(merged(b, 0, 1, R"({"a":2})", clock_.now()));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.code(), Errc::kConflict);
  EXPECT_FALSE(store_->get(b.id())->processed);
  EXPECT_EQ((*store_->get_record(a.record_key()))->state, R"({"a":1})");
  EXPECT_EQ(rows("event_audit_log"), audit_before);
}

TEST_P(EventStoreConformance, MergingAProcessedEventAgainIsAConflictUnlessItIsAReplay) {
  const Event e = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&e, 1)).ok());
  auto merge = open(Role::kMergeWorker);
  ASSERT_TRUE(merge->commit_merge(merged(e, 0, 1, R"({"a":1})", clock_.now())).ok());
  auto again = merge->commit_merge(merged(e, 1, 2, R"({"a":1})", clock_.now()));
  EXPECT_EQ(again.code(), Errc::kConflict);
  EXPECT_EQ((*store_->get_record(e.record_key()))->version, 1u);
  MergeCommit replay = merged(e, 1, 2, R"({"a":1})", clock_.now());
  replay.replay = true;
  auto replayed = merge->commit_merge(replay);
  ASSERT_TRUE(replayed.ok()) << replayed.error().describe();
  EXPECT_EQ((*store_->get_record(e.record_key()))->version, 2u);
}

TEST_P(EventStoreConformance, OneFailingMergeOfACallLeavesTheOthers) {
  const Event a = event("1", R"({"a":1})");
  const Event stale = event("2", R"({"b":1})", 3);
  const Event c = event("3", R"({"c":1})");
  ASSERT_TRUE(store_->append(std::vector<Event>{a, stale, c}).ok());
  auto merge = open(Role::kMergeWorker);
  std::vector<MergeCommit> commits = {merged(a, 0, 1, R"({"a":1})", clock_.now()),
                                      merged(stale, 3, 4, R"({"b":1})", clock_.now()),
                                      merged(c, 0, 1, R"({"c":1})", clock_.now())};
  auto results = merge->commit_merges(commits);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[1].code(), Errc::kConflict);
  EXPECT_TRUE(results[2].ok());
  EXPECT_TRUE(store_->get(a.id())->processed);
  EXPECT_FALSE(store_->get(stale.id())->processed);
  EXPECT_TRUE(store_->get(c.id())->processed);
  EXPECT_FALSE(*store_->get_record(stale.record_key()));
  EXPECT_EQ(rows("records"), 2);
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
}

TEST_P(EventStoreConformance, MergesOfOneRecordInOneCallChainInOrder) {
  const Event a = event("1", R"({"a":1})");
  const Event b = event("1", R"({"a":2})", 1);
  const Event c = event("1", R"({"a":3})", 2);
  ASSERT_TRUE(store_->append(std::vector<Event>{a, b, c}).ok());
  auto merge = open(Role::kMergeWorker);
  std::vector<MergeCommit> commits = {merged(a, 0, 1, R"({"a":1})", clock_.now()),
                                      merged(b, 1, 2, R"({"a":2})", clock_.now())};
  for (const auto& r : merge->commit_merges(commits)) EXPECT_TRUE(r.ok());
  EXPECT_EQ((*store_->get_record(a.record_key()))->version, 2u);
  // A chain whose first link fails: the second finds the record where the first left it.
  const Event d = event("1", R"({"a":4})", 3);
  ASSERT_TRUE(store_->append(std::span(&d, 1)).ok());
  std::vector<MergeCommit> broken = {merged(c, 1, 3, R"({"a":3})", clock_.now()),
                                     merged(d, 3, 4, R"({"a":4})", clock_.now())};
  auto results = merge->commit_merges(broken);
  EXPECT_EQ(results[0].code(), Errc::kConflict);
  EXPECT_EQ(results[1].code(), Errc::kConflict);
  EXPECT_EQ((*store_->get_record(a.record_key()))->version, 2u);
}

TEST_P(EventStoreConformance, ConcurrentMergeCallsFromThreadsAllLand) {
  std::vector<std::vector<Event>> per_thread(4);
  for (size_t t = 0; t < per_thread.size(); ++t) {
    for (int i = 0; i < 30; ++i) {
      per_thread[t].push_back(
          event("t" + std::to_string(t) + "-" + std::to_string(i), R"({"v":1})"));
    }
    ASSERT_TRUE(store_->append(per_thread[t]).ok());
  }
  auto merge = open(Role::kMergeWorker);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  const Timestamp at = clock_.now();
  for (auto& events : per_thread) {
    threads.emplace_back([&] {
      // In calls of 1, 2, 3, ... commits.
      size_t i = 0;
      for (size_t n = 1; i < events.size(); ++n) {
        std::vector<MergeCommit> commits;
        for (; commits.size() < n && i < events.size(); ++i) {
          commits.push_back(merged(events[i], 0, 1, R"({"v":1})", at));
        }
        for (const auto& r : merge->commit_merges(commits)) failures += r.ok() ? 0 : 1;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(rows("records"), 120);
  EXPECT_EQ(rows("events WHERE processed = TRUE"), 120);
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->entries_checked, 240u);
}

TEST_P(EventStoreConformance, OnlyTheMergeWorkerAndMigratorMayCommitMerges) {
  const Event e = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&e, 1)).ok());
  for (Role role : {Role::kSyncWorker, Role::kReader}) {
    auto s = open(role);
    auto r = s->commit_merge(merged(e, 0, 1, R"({"a":1})", clock_.now()));
    EXPECT_EQ(r.code(), Errc::kPermissionDenied) << role_name(role);
  }
  EXPECT_EQ(rows("records"), 0);
  EXPECT_FALSE(store_->get(e.id())->processed);
}

TEST_P(EventStoreConformance, ARecordsUnprocessedEventsByBaseAndTheRecordScanReadInOrder) {
  const Event a = event("1", R"({"a":1})");
  const Event b = event("1", R"({"a":2})", 1);
  const Event c = event("1", R"({"c":2})", 1);  // a concurrent edit of version 1
  const Event d = event("1", R"({"a":3})", 2);
  const Event other = event("2", R"({"b":1})");
  ASSERT_TRUE(store_->append(std::vector<Event>{a, b, c, d, other}).ok());
  auto merge = open(Role::kMergeWorker);
  auto ids = [&](uint64_t base, size_t window) {
    std::vector<EventId> out;
    auto pending = merge->unprocessed_based_on(a.record_key(), base, window);
    EXPECT_TRUE(pending.ok()) << pending.error().describe();
    if (pending.ok()) {
      for (const StoredEvent& e : *pending) out.push_back(e.event.id());
    }
    return out;
  };
  EXPECT_EQ(ids(0, 10), std::vector<EventId>{a.id()});
  EXPECT_EQ(ids(1, 10), (std::vector<EventId>{b.id(), c.id()}));
  // The window is of the record's newest events: d, then c, then b.
  EXPECT_TRUE(ids(1, 1).empty());
  EXPECT_EQ(ids(1, 2), std::vector<EventId>{c.id()});
  EXPECT_EQ(ids(1, 3), (std::vector<EventId>{b.id(), c.id()}));
  EXPECT_EQ(ids(2, 1), std::vector<EventId>{d.id()});
  EXPECT_TRUE(ids(0, 3).empty()) << "a is older than the three newest";
  EXPECT_TRUE(ids(3, 10).empty());
  EXPECT_TRUE(merge->unprocessed_based_on(RecordKey{"contact", "nobody"}, 0, 10)->empty());
  ASSERT_TRUE(merge->commit_merge(merged(a, 0, 1, R"({"a":1})", clock_.now())).ok());
  ASSERT_TRUE(merge->commit_merge(merged(other, 0, 1, R"({"b":1})", clock_.now())).ok());
  ASSERT_TRUE(merge->commit_merge(merged(b, 1, 2, R"({"a":2})", clock_.now())).ok());
  EXPECT_TRUE(ids(0, 10).empty()) << "processed events are not listed";
  EXPECT_EQ(ids(1, 10), std::vector<EventId>{c.id()});
  auto first = store_->scan_records(std::nullopt, 1);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].key.record_id, "1");
  auto rest = store_->scan_records((*first)[0].key, 10);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].key.record_id, "2");
}

TEST_P(EventStoreConformance, BucketsAreRecordedOnceAndLeasesChangeByCompareAndSet) {
  auto merge = open(Role::kMergeWorker);
  EXPECT_EQ(*merge->init_buckets(4), 4u);
  EXPECT_EQ(*merge->init_buckets(16), 4u) << "the count first recorded stays";
  auto view = merge->beat({"m1", "http://a:1", 0, false});
  ASSERT_TRUE(view.ok()) << view.error().describe();
  ASSERT_EQ(view->leases.size(), 4u);
  EXPECT_EQ(view->leases[3], (BucketLease{3, "", 0}));
  ASSERT_EQ(view->members.size(), 1u);
  EXPECT_EQ(view->members[0], (ClusterMember{"m1", "http://a:1", 1, false}));
  const std::string key(64, 'c');
  view = merge->beat({"m2", "http://b:2", 0, false, key});
  view = merge->beat({"m1", "http://a:1", 0, true});
  ASSERT_EQ(view->members.size(), 2u);
  EXPECT_EQ(view->members[0], (ClusterMember{"m1", "http://a:1", 2, true}));
  EXPECT_EQ(view->members[1], (ClusterMember{"m2", "http://b:2", 1, false, key}))
      << "a member's key hash is kept for the others to check";

  const LeaseChange claim0{0, 0, true}, claim1{1, 0, true};
  auto got = merge->change_leases("m1", std::vector<LeaseChange>{claim0, claim1});
  ASSERT_TRUE(got.ok()) << got.error().describe();
  EXPECT_EQ(*got, (std::vector<std::optional<uint64_t>>{1, 1}));
  // Another member at the epoch it read before: refused.
  EXPECT_EQ(*merge->change_leases("m2", std::vector<LeaseChange>{claim0}),
            (std::vector<std::optional<uint64_t>>{std::nullopt}));
  // A release by a member that does not own it: refused; by the owner: free, epoch 2.
  EXPECT_EQ(*merge->change_leases("m2", std::vector<LeaseChange>{{0, 1, false}}),
            (std::vector<std::optional<uint64_t>>{std::nullopt}));
  EXPECT_EQ(*merge->change_leases("m1", std::vector<LeaseChange>{{0, 1, false}}),
            (std::vector<std::optional<uint64_t>>{2}));
  EXPECT_EQ(*merge->change_leases("m2", std::vector<LeaseChange>{{0, 2, true}}),
            (std::vector<std::optional<uint64_t>>{3}));
  view = merge->beat({"m1", "http://a:1", 0, false});
  EXPECT_EQ(view->leases[0], (BucketLease{0, "m2", 3}));
  EXPECT_EQ(view->leases[1], (BucketLease{1, "m1", 1}));
  // When each changed hands, by the store's clock; and the same seen by a reader, unchanged.
  ASSERT_TRUE(view->leases[0].changed_at.has_value());
  EXPECT_EQ(view->leases[0].changed_at->micros(), clock_.now().micros());
  EXPECT_FALSE(view->leases[2].changed_at.has_value()) << "never owned";
  ASSERT_TRUE(view->members[0].beat_at.has_value());
  const ClusterView before = *view;
  auto seen = open(Role::kReader)->cluster_view();
  ASSERT_TRUE(seen.ok()) << seen.error().describe();
  EXPECT_EQ(seen->leases, before.leases);
  EXPECT_EQ(seen->members, before.members) << "reading is not a heartbeat";
  EXPECT_EQ(seen->leases[0].changed_at->micros(), before.leases[0].changed_at->micros());
  ASSERT_TRUE(merge->forget_members(std::vector<std::string>{"m2"}).ok());
  view = merge->beat({"m1", "http://a:1", 0, false});
  ASSERT_EQ(view->members.size(), 1u);
  EXPECT_EQ(view->leases[0].owner, "m2") << "a forgotten member's buckets stay until taken";
  auto reader = open(Role::kReader);
  EXPECT_EQ(reader->change_leases("m3", std::vector<LeaseChange>{{2, 0, true}}).code(),
            Errc::kPermissionDenied);
  EXPECT_EQ(open(Role::kSyncWorker)->beat({"m3", "x", 0, false}).code(), Errc::kPermissionDenied);
}

TEST_P(EventStoreConformance, AFencedCommitHoldsOnlyAtItsBucketsEpoch) {
  auto merge = open(Role::kMergeWorker);
  ASSERT_EQ(*merge->init_buckets(2), 2u);
  ASSERT_TRUE(merge->change_leases("m1", std::vector<LeaseChange>{{1, 0, true}}).ok());
  const Event a = event("1", R"({"a":1})");
  const Event b = event("2", R"({"b":1})");
  ASSERT_TRUE(store_->append(std::vector<Event>{a, b}).ok());
  MergeCommit stale = merged(a, 0, 1, R"({"a":1})", clock_.now());
  stale.fence = BucketFence{1, 0};
  MergeCommit current = merged(b, 0, 1, R"({"b":1})", clock_.now());
  current.fence = BucketFence{1, 1};
  auto results = merge->commit_merges(std::vector<MergeCommit>{stale, current});
  ASSERT_EQ(results.size(), 2u);
  ASSERT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].code(), Errc::kFenced) << results[0].error().describe();
  EXPECT_TRUE(results[1].ok()) << results[1].error().describe();
  EXPECT_FALSE(store_->get(a.id())->processed) << "a fenced commit changes nothing";
  EXPECT_FALSE(store_->get_record(a.record_key())->has_value());
  EXPECT_EQ((*store_->get_record(b.record_key()))->version, 1u);
  // A bucket that does not exist fences too.
  MergeCommit nowhere = merged(a, 0, 1, R"({"a":1})", clock_.now());
  nowhere.fence = BucketFence{7, 0};
  EXPECT_EQ(merge->commit_merge(nowhere).code(), Errc::kFenced);
}

// A park (a gap's retry_scheduled entry) is a fenced commit of its own kind: it writes its entry
// and leaves the event unprocessed, and a process whose lease is stale cannot park (the new owner
// reads the parked events after its claim, and must find them all).
TEST_P(EventStoreConformance, AParkWritesItsEntryUnderTheFenceAndLeavesTheEventUnprocessed) {
  auto merge = open(Role::kMergeWorker);
  ASSERT_EQ(*merge->init_buckets(1), 1u);
  ASSERT_TRUE(merge->change_leases("m1", std::vector<LeaseChange>{{0, 0, true}}).ok());
  const Event gap = event("1", R"({"a":2})", 1);
  const Event done = event("2", R"({"b":1})");
  ASSERT_TRUE(store_->append(std::vector<Event>{gap, done}).ok());
  ASSERT_TRUE(merge->commit_merge(merged(done, 0, 1, R"({"b":1})", clock_.now())).ok());
  auto park = [&](const Event& e, uint64_t epoch) {
    MergeCommit c;
    c.event_id = e.id();
    c.record = e.record_key();
    c.park = true;
    c.fence = BucketFence{0, epoch};
    c.audit.push_back({e.id(), e.record_key(), AuditAction::kRetryScheduled, e.fingerprint(),
                       R"({"failure":"gap"})"});
    return c;
  };
  const int64_t audit_before = rows("event_audit_log");
  auto results =
      merge->commit_merges(std::vector<MergeCommit>{park(gap, 0), park(gap, 1), park(done, 1)});
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].code(), Errc::kFenced) << "a stale lease cannot park";
  ASSERT_TRUE(results[1].ok()) << results[1].error().describe();
  ASSERT_EQ(results[1]->size(), 1u);
  EXPECT_EQ((*results[1])[0].action, AuditAction::kRetryScheduled);
  EXPECT_EQ(results[2].code(), Errc::kConflict) << "a processed event is not parked";
  EXPECT_EQ(rows("event_audit_log"), audit_before + 1);
  EXPECT_FALSE(store_->get(gap.id())->processed);
  EXPECT_FALSE(store_->get_record(gap.record_key())->has_value());
  auto parked = merge->unprocessed_retrying(10, std::nullopt);
  ASSERT_TRUE(parked.ok());
  ASSERT_EQ(parked->size(), 1u);
  EXPECT_EQ((*parked)[0].event.id(), gap.id());
  // Parked, it still merges once its base is there.
  ASSERT_TRUE(merge->commit_merge(merged(gap, 0, 2, R"({"a":2})", clock_.now())).ok());
  EXPECT_TRUE(store_->get(gap.id())->processed);
}

// After a takeover, the new owner's entries for a record come after the former owner's in id
// order, even when the new owner's clock is far behind (its claim raises its ids above every
// chain's head), so `rebuild` folds the record's merges in their order.
TEST_P(EventStoreConformance, AClaimantsEntriesFollowTheFormerOwnersWhateverItsClock) {
  ManualClock behind(Timestamp::from_micros(clock_.now().micros() - 706'000'000));
  EventIdGenerator behind_ids(behind, 99);
  auto first = open(Role::kMergeWorker);
  auto second = open(Role::kMergeWorker, &behind, &behind_ids);
  ASSERT_EQ(*first->init_buckets(1), 1u);
  const Event a = event("r", R"({"a":1})");
  const Event b = event("r", R"({"a":2})", 1);
  ASSERT_TRUE(store_->append(std::vector<Event>{a, b}).ok());
  ASSERT_TRUE(first->change_leases("m1", std::vector<LeaseChange>{{0, 0, true}}).ok());
  MergeCommit one = merged(a, 0, 1, R"({"a":1})", clock_.now());
  one.fence = BucketFence{0, 1};
  ASSERT_TRUE(first->commit_merge(one).ok());
  ASSERT_TRUE(first->change_leases("m1", std::vector<LeaseChange>{{0, 1, false}}).ok());
  auto claimed = second->change_leases("m2", std::vector<LeaseChange>{{0, 2, true}});
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ((*claimed)[0], std::optional<uint64_t>(3));
  MergeCommit two = merged(b, 1, 2, R"({"a":2})", behind.now());
  two.fence = BucketFence{0, 3};
  auto r = second->commit_merge(two);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  auto audit = store_->audit_for_record(a.record_key());  // in id order
  ASSERT_TRUE(audit.ok());
  std::vector<std::string> order;
  for (const AuditEntry& e : *audit) {
    if (e.action == AuditAction::kMerged) order.push_back(e.event_id.str());
  }
  EXPECT_EQ(order, (std::vector<std::string>{a.id().str(), b.id().str()}));
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
}

// Merges of different buckets by different writers, and appends alongside, run at once; every
// commit lands once and every chain verifies.
TEST_P(EventStoreConformance, MergesOfTwoOwnersAndAppendsRunAtOnceAndEveryChainVerifies) {
  auto m1 = open(Role::kMergeWorker);
  auto m2 = open(Role::kMergeWorker);
  auto sync = open(Role::kSyncWorker);
  ASSERT_EQ(*m1->init_buckets(2), 2u);
  ASSERT_TRUE(m1->change_leases("m1", std::vector<LeaseChange>{{0, 0, true}}).ok());
  ASSERT_TRUE(m2->change_leases("m2", std::vector<LeaseChange>{{1, 0, true}}).ok());
  std::vector<Event> events;
  for (int i = 0; i < 40; ++i) events.push_back(event("k" + std::to_string(i), R"({"v":1})"));
  ASSERT_TRUE(store_->append(events).ok());
  std::atomic<int> failures{0};
  auto merge_part = [&](EventStore& s, uint32_t bucket) {
    for (size_t i = bucket; i < events.size(); i += 2) {
      MergeCommit c = merged(events[i], 0, 1, R"({"v":1})", clock_.now());
      c.fence = BucketFence{bucket, 1};
      if (!s.commit_merge(c).ok()) ++failures;
    }
  };
  std::thread t1([&] { merge_part(*m1, 0); });
  std::thread t2([&] { merge_part(*m2, 1); });
  std::thread t3([&] {
    for (int i = 0; i < 20; ++i) {
      const Event e = event("n" + std::to_string(i), R"({"v":2})");
      if (!sync->append(std::span(&e, 1)).ok()) ++failures;
    }
  });
  t1.join();
  t2.join();
  t3.join();
  EXPECT_EQ(failures.load(), 0);
  for (const Event& e : events) EXPECT_TRUE(store_->get(e.id())->processed);
  EXPECT_EQ(rows("event_audit_log"), 40 + 40 + 20);
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->entries_checked, 100u);
}

}  // namespace backbone::testing
