#include "store/event_store_conformance.h"

#include <cstdlib>
#include <map>
#include <thread>

#include "test_servers.h"

namespace backbone::testing {

constexpr const char* kEventUpdated = "Event records are immutable and cannot be updated.";
constexpr const char* kEventDeleted = "Event records are immutable and cannot be deleted.";
constexpr const char* kAuditUpdated = "Audit log records are immutable and cannot be updated.";
constexpr const char* kAuditDeleted = "Audit log records are immutable and cannot be deleted.";

void EventStoreConformance::SetUp() {
  harness_ = GetParam().make();
  if (!harness_) {
    ASSERT_FALSE(test_servers_required())
        << "no " << GetParam().name << " server for the tests (make test starts one)";
    GTEST_SKIP() << "no " << GetParam().name << " server: run through `make test`";
  }
  if (HasFailure()) return;
  store_ = open(Role::kMigrator);
  ASSERT_TRUE(store_);
  auto applied = store_->migrate();
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
}

std::unique_ptr<EventStore> EventStoreConformance::open(Role role, const Clock* clock,
                                                        EventIdGenerator* ids) {
  StoreOptions o;
  o.url = harness_->url();
  o.role = role;
  o.clock = clock ? clock : &clock_;
  o.ids = ids ? ids : &ids_;
  auto s = EventStore::open(o);
  EXPECT_TRUE(s.ok()) << s.error().describe();
  return s.ok() ? std::move(*s) : nullptr;
}

Event EventStoreConformance::event(const std::string& record_id, const std::string& changes,
                                   uint64_t base_version, std::optional<EventId> id) {
  EventDraft d;
  d.id = id;
  d.record_type = "contact";
  d.record_id = record_id;
  d.source = "crm";
  d.base_version = base_version;
  d.changes = changes;
  clock_.advance_micros(1);
  auto e = Event::create(d, ids_, clock_);
  EXPECT_TRUE(e.ok()) << e.error().describe();
  return std::move(e).value();
}

int64_t EventStoreConformance::rows(const char* table) {
  auto n = harness_->raw_query_int(Role::kMigrator, std::string("SELECT COUNT(*) FROM ") + table);
  EXPECT_TRUE(n.ok()) << n.error().describe();
  return n.ok() ? *n : -1;
}

TEST_P(EventStoreConformance, MigrateIsIdempotent) {
  auto version = store_->schema_version();
  ASSERT_TRUE(version.ok());
  EXPECT_GE(*version, 1);
  auto again = store_->migrate();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(*store_->schema_version(), *version);
}

TEST_P(EventStoreConformance, AppendedEventsReadBackExactly) {
  EventDraft d;
  d.record_type = "crm.contact";
  d.record_id = "caf\xc3\xa9/\xf0\x9f\x98\x80 #1";
  d.source = "hubspot";
  d.base_version = 12;
  d.changes = R"({"email":"a@b.test","n":1.5,"gone":null,"nested":{"z":[1,"x"]}})";
  d.full_snapshot_ref = "gs://bucket/snapshots/1.json";
  d.timestamp = Timestamp::from_micros(1'795'838'706'123'456);
  auto e = Event::create(d, ids_, clock_);
  ASSERT_TRUE(e.ok());
  auto out = store_->append(std::span(&*e, 1));
  ASSERT_TRUE(out.ok()) << out.error().describe();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].id, e->id());
  EXPECT_EQ((*out)[0].fingerprint, e->fingerprint());
  EXPECT_FALSE((*out)[0].duplicate);

  auto got = store_->get(e->id());
  ASSERT_TRUE(got.ok()) << got.error().describe();
  EXPECT_EQ(got->event, *e);
  EXPECT_FALSE(got->processed);
  EXPECT_EQ(got->event.timestamp().micros(), 1'795'838'706'123'456);
}

TEST_P(EventStoreConformance, GettingAnUnknownIdIsNotFound) {
  EXPECT_EQ(store_->get(ids_.next()).code(), Errc::kNotFound);
}

TEST_P(EventStoreConformance, EveryAppendedEventGetsOneIngestedAuditEntry) {
  std::vector<Event> batch = {event("1", R"({"a":1})"), event("2", R"({"a":2})")};
  ASSERT_TRUE(store_->append(batch).ok());
  for (const Event& e : batch) {
    auto entries = store_->audit_for_event(e.id());
    ASSERT_TRUE(entries.ok());
    ASSERT_EQ(entries->size(), 1u);
    EXPECT_EQ((*entries)[0].action, AuditAction::kIngested);
    EXPECT_EQ((*entries)[0].fingerprint, e.fingerprint());
    EXPECT_EQ((*entries)[0].record, e.record_key());
  }
}

TEST_P(EventStoreConformance, SavingAnExistingIdFailsWithTheExactMessage) {
  const Event original = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&original, 1)).ok());
  const Event changed = event("1", R"({"a":2})", 0, original.id());
  auto r = store_->append(std::span(&changed, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kImmutable);
  EXPECT_EQ(r.error().message, kEventUpdated);
  EXPECT_EQ(r.error().location(), "events[0]");
  EXPECT_EQ(store_->get(original.id())->event.changes(), R"({"a":1})");
}

TEST_P(EventStoreConformance, ABatchWithOneFailingItemWritesNothing) {
  const Event existing = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&existing, 1)).ok());
  const int64_t events_before = rows("events");
  const int64_t audit_before = rows("event_audit_log");
  std::vector<Event> batch = {event("2", R"({"a":2})"), event("9", R"({"b":1})", 0, existing.id()),
                              event("3", R"({"a":3})")};
  auto r = store_->append(batch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().location(), "events[1]");
  EXPECT_EQ(rows("events"), events_before);
  EXPECT_EQ(rows("event_audit_log"), audit_before);
  EXPECT_EQ(store_->get(batch[0].id()).code(), Errc::kNotFound);
  EXPECT_EQ(store_->get(batch[2].id()).code(), Errc::kNotFound);
}

TEST_P(EventStoreConformance, TheSameChangeIsStoredOnceAndAnsweredAsADuplicate) {
  const Event first = event("1", R"({"a":1,"b":2})");
  ASSERT_TRUE(store_->append(std::span(&first, 1)).ok());
  // The same change again under a new id, twice in one batch, and the very same event again.
  std::vector<Event> again = {event("1", R"({"b":2,"a":1})"), event("1", R"({"b":2, "a":1})"),
                              first, event("2", R"({"a":1})")};
  auto out = store_->append(again);
  ASSERT_TRUE(out.ok()) << out.error().describe();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE((*out)[i].duplicate) << i;
    EXPECT_EQ((*out)[i].id, first.id()) << i;
  }
  EXPECT_FALSE((*out)[3].duplicate);
  EXPECT_EQ(store_->history({"contact", "1"})->size(), 1u);
  auto entries = store_->audit_by_fingerprint(first.fingerprint());
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0].action, AuditAction::kIngested);
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ((*entries)[i].action, AuditAction::kDuplicate);
    EXPECT_EQ((*entries)[i].event_id, first.id());
  }
}

// The next batch of the store that wrote last: its duplicate of an earlier batch is still found
// (the server stores seal a batch before they know; they must not keep that guess).
TEST_P(EventStoreConformance, ADuplicateOfAnEarlierBatchIsFoundByTheStoreThatWroteIt) {
  auto sync = open(Role::kSyncWorker);
  const Event first = event("1", R"({"a":1})");
  ASSERT_TRUE(sync->append(std::span(&first, 1)).ok());
  const std::vector<Event> next = {event("2", R"({"a":2})"), event("1", R"({ "a": 1 })")};
  auto out = sync->append(next);
  ASSERT_TRUE(out.ok()) << out.error().describe();
  EXPECT_FALSE((*out)[0].duplicate);
  EXPECT_TRUE((*out)[1].duplicate);
  EXPECT_EQ((*out)[1].id, first.id());
  EXPECT_EQ(rows("events"), 2);
  auto entries = store_->audit_for_event(first.id());
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[1].action, AuditAction::kDuplicate);
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
}

TEST_P(EventStoreConformance, HistoryIsInTimestampOrder) {
  std::vector<Event> events;
  for (int64_t t : {30, 10, 20}) {
    EventDraft d;
    d.record_type = "contact";
    d.record_id = "7";
    d.source = "crm";
    d.changes = "{\"t\":" + std::to_string(t) + "}";
    d.timestamp = Timestamp::from_micros(1'795'838'706'000'000 + t);
    events.push_back(*Event::create(d, ids_, clock_));
  }
  events.push_back(event("8", R"({"other":1})"));
  ASSERT_TRUE(store_->append(events).ok());
  auto h = store_->history({"contact", "7"});
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].event.changes(), R"({"t":10})");
  EXPECT_EQ((*h)[1].event.changes(), R"({"t":20})");
  EXPECT_EQ((*h)[2].event.changes(), R"({"t":30})");
  EXPECT_TRUE(store_->history({"contact", "nobody"})->empty());
}

TEST_P(EventStoreConformance, TheUnprocessedScanPagesInOrderAndSkipsProcessed) {
  std::vector<Event> events;
  for (int i = 0; i < 7; ++i)
    events.push_back(event(std::to_string(i), "{\"i\":" + std::to_string(i) + "}"));
  ASSERT_TRUE(store_->append(events).ok());
  ASSERT_TRUE(*store_->mark_processed(events[2].id()));
  std::vector<EventId> seen;
  std::optional<EventCursor> cursor;
  for (;;) {
    auto page = store_->unprocessed(2, cursor);
    ASSERT_TRUE(page.ok()) << page.error().describe();
    if (page->empty()) break;
    EXPECT_LE(page->size(), 2u);
    for (const auto& s : *page) {
      EXPECT_FALSE(s.processed);
      seen.push_back(s.event.id());
    }
    cursor = EventCursor{page->back().event.timestamp(), page->back().event.id()};
  }
  std::vector<EventId> want;
  for (int i = 0; i < 7; ++i) {
    if (i != 2) want.push_back(events[i].id());
  }
  EXPECT_EQ(seen, want);
}

TEST_P(EventStoreConformance, MarkProcessedGoesFromZeroToOneOnce) {
  const Event e = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&e, 1)).ok());
  auto merge = open(Role::kMergeWorker);
  auto first = merge->mark_processed(e.id());
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_TRUE(*first);
  EXPECT_FALSE(*merge->mark_processed(e.id()));
  EXPECT_TRUE(store_->get(e.id())->processed);
  EXPECT_EQ(merge->mark_processed(ids_.next()).code(), Errc::kNotFound);
}

TEST_P(EventStoreConformance, TheDatabaseRefusesUpdateAndDeleteWithTheExactMessages) {
  const Event e = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&e, 1)).ok());
  const std::string id = "'" + e.id().str() + "'";
  const std::vector<std::string> refused = {
      "UPDATE events SET source = 'tampered' WHERE id = " + id,
      "UPDATE events SET base_version = 5 WHERE id = " + id,
      "UPDATE events SET processed = TRUE, record_id = '2' WHERE id = " + id};
  for (const std::string& sql : refused) {
    auto r = harness_->raw_sql(Role::kMigrator, sql);
    ASSERT_FALSE(r.ok()) << sql;
    EXPECT_EQ(r.code(), Errc::kImmutable) << r.error().describe();
    EXPECT_EQ(r.error().message, kEventUpdated);
  }
  auto del = harness_->raw_sql(Role::kMigrator, "DELETE FROM events WHERE id = " + id);
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.error().message, kEventDeleted);
  EXPECT_EQ(store_->get(e.id())->event, e);
}

TEST_P(EventStoreConformance, ProcessedMayGoFromZeroToOneButNeverBack) {
  const Event e = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&e, 1)).ok());
  const std::string id = "'" + e.id().str() + "'";
  auto up =
      harness_->raw_sql(Role::kMigrator, "UPDATE events SET processed = TRUE WHERE id = " + id);
  ASSERT_TRUE(up.ok()) << up.error().describe();
  auto down =
      harness_->raw_sql(Role::kMigrator, "UPDATE events SET processed = FALSE WHERE id = " + id);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().message, kEventUpdated);
  EXPECT_TRUE(store_->get(e.id())->processed);
}

TEST_P(EventStoreConformance, TheDatabaseRefusesAuditUpdateAndDelete) {
  const Event e = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&e, 1)).ok());
  auto up = harness_->raw_sql(Role::kMigrator, "UPDATE event_audit_log SET action = 'merged'");
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.code(), Errc::kImmutable);
  EXPECT_EQ(up.error().message, kAuditUpdated);
  auto del = harness_->raw_sql(Role::kMigrator, "DELETE FROM event_audit_log");
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.error().message, kAuditDeleted);
  EXPECT_EQ(rows("event_audit_log"), 1);
}

TEST_P(EventStoreConformance, SyncWorkerMaySelectAndInsertAndNothingElse) {
  auto sync = open(Role::kSyncWorker);
  const Event e = event("1", R"({"a":1})");
  auto appended = sync->append(std::span(&e, 1));
  ASSERT_TRUE(appended.ok()) << appended.error().describe();
  EXPECT_TRUE(sync->get(e.id()).ok());
  EXPECT_EQ(*harness_->raw_query_int(Role::kSyncWorker, "SELECT COUNT(*) FROM events"), 1);
  EXPECT_EQ(*harness_->raw_query_int(Role::kSyncWorker, "SELECT COUNT(*) FROM event_audit_log"), 1);
  const std::string id = "'" + e.id().str() + "'";
  const std::vector<std::string> refused = {"UPDATE events SET source = 'x' WHERE id = " + id,
                                            "UPDATE events SET processed = TRUE WHERE id = " + id,
                                            "DELETE FROM events",
                                            "UPDATE event_audit_log SET action = 'merged'",
                                            "DELETE FROM event_audit_log",
                                            "SELECT COUNT(*) FROM records",
                                            "DROP TABLE events",
                                            "CREATE TABLE sneaky (x INTEGER)"};
  for (const std::string& sql : refused) {
    auto r = harness_->raw_sql(Role::kSyncWorker, sql);
    ASSERT_FALSE(r.ok()) << sql;
    EXPECT_EQ(r.code(), Errc::kPermissionDenied) << sql << ": " << r.error().describe();
  }
  auto mark = sync->mark_processed(e.id());
  ASSERT_FALSE(mark.ok());
  EXPECT_EQ(mark.code(), Errc::kPermissionDenied);
  EXPECT_FALSE(store_->get(e.id())->processed);
}

TEST_P(EventStoreConformance, MergeWorkerMayMarkProcessedButChangeNothingElse) {
  const Event e = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&e, 1)).ok());
  const std::string id = "'" + e.id().str() + "'";
  const std::vector<std::string> refused = {"UPDATE events SET source = 'x' WHERE id = " + id,
                                            "DELETE FROM events", "DELETE FROM event_audit_log",
                                            "DELETE FROM event_outbox", "DROP TABLE records"};
  for (const std::string& sql : refused) {
    auto r = harness_->raw_sql(Role::kMergeWorker, sql);
    ASSERT_FALSE(r.ok()) << sql;
    EXPECT_EQ(r.code(), Errc::kPermissionDenied) << sql << ": " << r.error().describe();
  }
  EXPECT_TRUE(harness_->raw_query_int(Role::kMergeWorker, "SELECT COUNT(*) FROM records").ok());
  auto merge = open(Role::kMergeWorker);
  EXPECT_TRUE(*merge->mark_processed(e.id()));
}

TEST_P(EventStoreConformance, ReaderMayOnlyRead) {
  const Event e = event("1", R"({"a":1})");
  ASSERT_TRUE(store_->append(std::span(&e, 1)).ok());
  auto reader = open(Role::kReader);
  EXPECT_TRUE(reader->get(e.id()).ok());
  EXPECT_TRUE(reader->history(e.record_key()).ok());
  const Event other = event("2", R"({"a":2})");
  EXPECT_EQ(reader->append(std::span(&other, 1)).code(), Errc::kPermissionDenied);
  EXPECT_EQ(reader->mark_processed(e.id()).code(), Errc::kPermissionDenied);
  EXPECT_EQ(reader->migrate().code(), Errc::kPermissionDenied);
  EXPECT_EQ(rows("events"), 1);
}

TEST_P(EventStoreConformance, TheOutboxHoldsWhatWasStoredUntilItIsPublished) {
  auto sync = open(Role::kSyncWorker);
  const Event a = event("1", R"({"a":1})");
  const Event b = event("2", R"({"b":1})");
  const Event again = event("1", R"({"a":1})");  // a's change again: a duplicate
  const Timestamp before = clock_.now();
  clock_.advance_micros(10);
  const Timestamp stored = clock_.now();
  ASSERT_TRUE(sync->append(std::vector<Event>{b, a, again}).ok());
  auto ids = [&](Timestamp by, size_t limit) {
    std::vector<EventId> out;
    auto waiting = sync->outbox(by, limit);
    EXPECT_TRUE(waiting.ok()) << waiting.error().describe();
    if (waiting.ok()) {
      for (const StoredEvent& e : *waiting) out.push_back(e.event.id());
    }
    return out;
  };
  EXPECT_TRUE(ids(before, 10).empty()) << "they entered the outbox when they were stored";
  EXPECT_EQ(ids(stored, 10), (std::vector<EventId>{a.id(), b.id()})) << "history order";
  EXPECT_EQ(ids(stored, 1), std::vector<EventId>{a.id()});
  const EventId unknown = event("3", R"({"c":1})").id();
  ASSERT_TRUE(sync->published(std::vector<EventId>{a.id(), unknown}).ok());
  EXPECT_EQ(ids(stored, 10), std::vector<EventId>{b.id()});
  // A merged event stays until it is published, and says that it was merged.
  ASSERT_TRUE(*store_->mark_processed(b.id()));
  auto left = sync->outbox(stored, 10);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_TRUE((*left)[0].processed);
  for (Role role : {Role::kMergeWorker, Role::kReader}) {
    auto refused = open(role)->published(std::vector<EventId>{b.id()});
    EXPECT_EQ(refused.code(), Errc::kPermissionDenied) << role_name(role);
  }
  EXPECT_EQ(rows("event_outbox"), 1);
  ASSERT_TRUE(sync->published(std::vector<EventId>{b.id()}).ok());
  EXPECT_TRUE(ids(stored, 10).empty());
  EXPECT_EQ(rows("event_outbox"), 0);
}

TEST_P(EventStoreConformance, TheRetryingScanListsUnprocessedEventsWithARetryScheduled) {
  const Event a = event("1", R"({"a":1})");
  const Event b = event("1", R"({"a":2})", 5);
  const Event c = event("2", R"({"b":1})", 3);
  ASSERT_TRUE(store_->append(std::vector<Event>{a, b, c}).ok());
  std::vector<AuditDraft> parked;
  for (const Event* e : {&c, &b}) {
    parked.push_back({e->id(), e->record_key(), AuditAction::kRetryScheduled, e->fingerprint(),
                      std::string(R"({"failure":"gap"})")});
  }
  ASSERT_TRUE(store_->append_audit(parked).ok());
  auto ids = [&](size_t limit, std::optional<EventCursor> after) {
    std::vector<EventId> out;
    auto page = open(Role::kMergeWorker)->unprocessed_retrying(limit, after);
    EXPECT_TRUE(page.ok()) << page.error().describe();
    if (page.ok()) {
      for (const StoredEvent& e : *page) out.push_back(e.event.id());
    }
    return out;
  };
  EXPECT_EQ(ids(10, std::nullopt), (std::vector<EventId>{b.id(), c.id()}));
  EXPECT_EQ(ids(1, std::nullopt), std::vector<EventId>{b.id()});
  EXPECT_EQ(ids(10, EventCursor{b.timestamp(), b.id()}), std::vector<EventId>{c.id()});
  ASSERT_TRUE(*store_->mark_processed(b.id()));
  EXPECT_EQ(ids(10, std::nullopt), std::vector<EventId>{c.id()});
}

TEST_P(EventStoreConformance, AuditEntriesAreFoundByEventRecordAndFingerprint) {
  std::vector<Event> batch = {event("1", R"({"a":1})"), event("1", R"({"a":2})", 1),
                              event("2", R"({"a":1})")};
  ASSERT_TRUE(store_->append(batch).ok());
  AuditDraft merged{batch[0].id(), batch[0].record_key(), AuditAction::kMerged,
                    batch[0].fingerprint(), std::string(R"({"version":1})")};
  auto appended = store_->append_audit(std::span(&merged, 1));
  ASSERT_TRUE(appended.ok()) << appended.error().describe();
  EXPECT_EQ(*(*appended)[0].detail, R"({"version":1})");

  auto by_event = store_->audit_for_event(batch[0].id());
  ASSERT_EQ(by_event->size(), 2u);
  EXPECT_EQ((*by_event)[1].action, AuditAction::kMerged);
  EXPECT_EQ(store_->audit_for_record({"contact", "1"})->size(), 3u);
  EXPECT_EQ(store_->audit_for_record({"contact", "2"})->size(), 1u);
  EXPECT_EQ(store_->audit_by_fingerprint(batch[2].fingerprint())->size(), 1u);
}

TEST_P(EventStoreConformance, EachSlotsChainRunsInIdOrderUpToItsRecordedHead) {
  for (int i = 0; i < 5; ++i) {
    std::vector<Event> batch = {event(std::to_string(i), R"({"a":1})"),
                                event(std::to_string(i), R"({"a":2})", 1)};
    ASSERT_TRUE(store_->append(batch).ok());
  }
  auto all = store_->scan_audit(std::nullopt, 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 10u);
  std::map<uint32_t, std::string> previous;  // slot -> its chain's last hash
  for (const auto& e : *all) {
    auto [it, fresh] = previous.emplace(audit_slot_of(e.id), std::string(kAuditGenesis));
    EXPECT_EQ(e.chain_hash, audit_chain_hash(it->second, e));
    it->second = e.chain_hash;
  }
  auto heads = store_->audit_heads();
  ASSERT_TRUE(heads.ok()) << heads.error().describe();
  size_t written = 0;
  for (const AuditHead& h : *heads) {
    if (h.empty()) {
      EXPECT_EQ(previous.count(h.slot), 0u) << "slot " << h.slot;
      continue;
    }
    ++written;
    ASSERT_EQ(previous.count(h.slot), 1u) << "slot " << h.slot;
    EXPECT_EQ(h.chain_hash, previous[h.slot]);
    EXPECT_EQ(audit_slot_of(h.id), h.slot);
  }
  EXPECT_EQ(written, previous.size());
  auto page = store_->scan_audit((*all)[3].id, 2);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0], (*all)[4]);
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->entries_checked, 10u);
}

// Two writers (as two processes would be) whose clocks disagree still build valid chains.
TEST_P(EventStoreConformance, TwoWritersWithSkewedClocksKeepValidChains) {
  ManualClock behind(Timestamp::from_millis(1'795'838'000'000));  // 706 s behind
  EventIdGenerator other_ids(behind, 99);
  auto other = open(Role::kSyncWorker, &behind, &other_ids);
  auto mine = open(Role::kSyncWorker);
  for (int i = 0; i < 10; ++i) {
    const Event a = event("a" + std::to_string(i), R"({"x":1})");
    ASSERT_TRUE(mine->append(std::span(&a, 1)).ok());
    EventDraft d;
    d.record_type = "contact";
    d.record_id = "b" + std::to_string(i);
    d.source = "erp";
    d.changes = R"({"y":1})";
    const Event b = *Event::create(d, other_ids, behind);
    ASSERT_TRUE(other->append(std::span(&b, 1)).ok());
  }
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->entries_checked, 20u);
  auto all = store_->scan_audit(std::nullopt, 100);
  for (size_t i = 1; i < all->size(); ++i) {
    EXPECT_LE((*all)[i - 1].created_at, (*all)[i].created_at);  // time never runs backwards
  }
}

// Two writers that store the same changes at once (a client that sent them to two processes)
// store each once: the other gets a duplicate naming the same original.
TEST_P(EventStoreConformance, TwoWritersStoringTheSameChangesAtOnceStoreEachOnce) {
  auto one = open(Role::kSyncWorker);
  auto two = open(Role::kSyncWorker);
  std::vector<Event> mine, theirs;  // the same changes, under different ids
  for (int i = 0; i < 60; ++i) {
    const std::string changes = "{\"n\":" + std::to_string(i) + "}";
    mine.push_back(event("d" + std::to_string(i % 20), changes));
    theirs.push_back(event("d" + std::to_string(i % 20), changes));
  }
  std::vector<AppendOutcome> got_one, got_two;
  std::atomic<int> failures{0};
  auto send = [&](EventStore& s, const std::vector<Event>& events,
                  std::vector<AppendOutcome>& got) {
    for (size_t at = 0; at < events.size(); at += 3) {
      auto r = s.append(std::span(events).subspan(at, 3));
      if (!r.ok()) {
        ++failures;
        continue;
      }
      got.insert(got.end(), r->begin(), r->end());
    }
  };
  std::thread a([&] { send(*one, mine, got_one); });
  std::thread b([&] { send(*two, theirs, got_two); });
  a.join();
  b.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_EQ(got_one.size(), 60u);
  ASSERT_EQ(got_two.size(), 60u);
  EXPECT_EQ(rows("events"), 60);
  for (size_t i = 0; i < 60; ++i) {
    EXPECT_EQ(got_one[i].id, got_two[i].id) << "change " << i << " has one original";
    EXPECT_NE(got_one[i].duplicate, got_two[i].duplicate) << "change " << i;
  }
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->entries_checked, 120u);
}

// One process's stores write to chains of their own, but its entries stay in the order it wrote
// them (one id generator), whatever their slots: a record's history reads in order.
TEST_P(EventStoreConformance, OneProcesssEntriesAreInTheOrderItWroteThemWhateverTheirSlots) {
  auto one = open(Role::kSyncWorker);
  auto two = open(Role::kSyncWorker);
  std::vector<EventId> written;
  for (int i = 0; i < 10; ++i) {
    const Event e = event("o", "{\"i\":" + std::to_string(i) + "}", 0);
    auto r = (i % 2 ? *two : *one).append(std::span(&e, 1));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    written.push_back(e.id());
  }
  auto audit = store_->audit_for_record(RecordKey{"contact", "o"});  // in id order
  ASSERT_TRUE(audit.ok());
  std::vector<EventId> read;
  for (const AuditEntry& a : *audit) read.push_back(a.event_id);
  EXPECT_EQ(read, written);
}

TEST_P(EventStoreConformance, ConcurrentAppendsFromThreadsAllLand) {
  auto sync = open(Role::kSyncWorker);
  std::vector<std::vector<Event>> per_thread(4);
  for (size_t t = 0; t < per_thread.size(); ++t) {
    for (int i = 0; i < 25; ++i) {
      per_thread[t].push_back(
          event("t" + std::to_string(t) + "-" + std::to_string(i), R"({"v":1})"));
    }
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (auto& events : per_thread) {
    threads.emplace_back([&] {
      for (const Event& e : events) {
        if (!sync->append(std::span(&e, 1)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(rows("events"), 100);
  auto report = verify_audit_chain(*store_);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->entries_checked, 100u);
}

// Tokens: the migrator makes and revokes them, every role reads them, ingest records their use.
TEST_P(EventStoreConformance, TokensAreKeptAsHashesRevokedOnceAndTheirLastUseOnlyMovesOn) {
  const Timestamp t0 = clock_.now();
  StoredToken a{std::string(64, 'a'), "ci",         {"publish", "read"}, t0,
                std::nullopt,         std::nullopt, std::nullopt};
  StoredToken b{std::string(64, 'b'),
                "ops",
                {"admin"},
                Timestamp::from_micros(t0.micros() + 5),
                Timestamp::from_micros(t0.micros() + 3'600'000'000),
                std::nullopt,
                std::nullopt};
  ASSERT_TRUE(store_->add_token(a).ok());
  ASSERT_TRUE(store_->add_token(b).ok());
  EXPECT_EQ(store_->add_token(a).code(), Errc::kAlreadyExists);
  StoredToken bad = a;
  bad.sha256 = "not-a-hash";
  EXPECT_EQ(store_->add_token(bad).code(), Errc::kInvalidArgument);
  bad = a;
  bad.sha256 = std::string(64, 'c');
  bad.roles = {};
  EXPECT_EQ(store_->add_token(bad).code(), Errc::kInvalidArgument);
  for (Role r : {Role::kSyncWorker, Role::kMergeWorker, Role::kReader}) {
    auto s = open(r);
    StoredToken c = a;
    c.sha256 = std::string(64, 'd');
    EXPECT_EQ(s->add_token(c).code(), Errc::kPermissionDenied) << role_name(r);
    EXPECT_EQ(s->revoke_token(a.sha256, t0).code(), Errc::kPermissionDenied) << role_name(r);
    auto seen = s->tokens();
    ASSERT_TRUE(seen.ok()) << role_name(r) << ": " << seen.error().describe();
    EXPECT_EQ(*seen, (std::vector<StoredToken>{a, b})) << role_name(r);
  }
  auto sync = open(Role::kSyncWorker);
  const Timestamp later = Timestamp::from_micros(t0.micros() + 1000);
  const Timestamp earlier = Timestamp::from_micros(t0.micros() + 10);
  ASSERT_TRUE(sync->note_token_uses(std::vector<TokenUse>{{a.sha256, later}}).ok());
  ASSERT_TRUE(sync->note_token_uses(std::vector<TokenUse>{{a.sha256, earlier}}).ok());
  EXPECT_EQ(open(Role::kReader)->note_token_uses(std::vector<TokenUse>{{a.sha256, later}}).code(),
            Errc::kPermissionDenied);
  EXPECT_EQ(*store_->revoke_token(b.sha256, later), true);
  EXPECT_EQ(*store_->revoke_token(b.sha256, Timestamp::from_micros(later.micros() + 1)), false);
  EXPECT_EQ(store_->revoke_token(std::string(64, 'e'), later).code(), Errc::kNotFound);
  auto all = store_->tokens();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].last_used_at, std::optional<Timestamp>(later)) << "a use never goes back";
  EXPECT_EQ((*all)[0].revoked_at, std::nullopt);
  EXPECT_EQ((*all)[1].revoked_at, std::optional<Timestamp>(later)) << "the first revocation stays";
  EXPECT_EQ((*all)[1].roles, (std::vector<std::string>{"admin"}));
  EXPECT_EQ((*all)[1].expires_at, b.expires_at);
}

// IAM policies: the migrator sets them (each set one version on, compare-and-set on the
// version), every role reads them, and a malformed one is refused.
TEST_P(EventStoreConformance, IamPoliciesAreSetByTheMigratorVersionByVersionAndReadByEveryRole) {
  const Timestamp t0 = clock_.now();
  const std::string pub = R"([{"role":"roles/pubsub.publisher","members":["token:ci"]}])";
  auto first = store_->set_iam_policy("topics/orders", pub, 0, t0);
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(*first, (StoredPolicy{"topics/orders", pub, 1, t0}));
  EXPECT_EQ(store_->set_iam_policy("topics/orders", "[]", 0, t0).code(), Errc::kConflict)
      << "a policy set meanwhile is not overwritten";
  const Timestamp t1 = Timestamp::from_micros(t0.micros() + 9);
  auto second = store_->set_iam_policy("topics/orders", "[]", 1, t1);
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_EQ(second->version, 2);
  auto sub = store_->set_iam_policy("subscriptions/orders.sync", pub, std::nullopt, t1);
  ASSERT_TRUE(sub.ok()) << sub.error().describe();
  EXPECT_EQ(sub->version, 1);
  EXPECT_EQ(store_->set_iam_policy("", pub, std::nullopt, t1).code(), Errc::kInvalidArgument);
  EXPECT_EQ(store_->set_iam_policy("topics/x", "", std::nullopt, t1).code(),
            Errc::kInvalidArgument);
  const std::vector<StoredPolicy> want{{"subscriptions/orders.sync", pub, 1, t1},
                                       {"topics/orders", "[]", 2, t1}};
  for (Role r : {Role::kSyncWorker, Role::kMergeWorker, Role::kReader}) {
    auto s = open(r);
    EXPECT_EQ(s->set_iam_policy("topics/orders", pub, std::nullopt, t1).code(),
              Errc::kPermissionDenied)
        << role_name(r);
    auto seen = s->iam_policies();
    ASSERT_TRUE(seen.ok()) << role_name(r) << ": " << seen.error().describe();
    EXPECT_EQ(*seen, want) << role_name(r);
  }
  auto all = store_->iam_policies();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, want);
}

// The admin audit: the migrator appends acts, the reader reads them in order, nobody changes
// one (the triggers' messages, as for the audit log), and a malformed act is refused.
TEST_P(EventStoreConformance, AdminActsAreAppendedByTheMigratorReadInOrderAndNeverChanged) {
  const Timestamp t0 = clock_.now();
  AdminActionDraft made{t0, "token 1a2b (ci)", "token.create", "9f8e", R"({ "roles" : ["read"] })"};
  AdminActionDraft replayed{Timestamp::from_micros(t0.micros() + 7), "cli ops@host", "dlq.replay",
                            "0190a0b0-0000-7000-8000-000000000001", std::nullopt};
  auto first = store_->append_admin_action(made);
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(first->detail, std::optional<std::string>(R"({"roles":["read"]})"))
      << "kept in canonical JSON";
  auto second = store_->append_admin_action(replayed);
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_LT(first->id, second->id);
  for (const AdminActionDraft& bad :
       {AdminActionDraft{t0, "", "token.create", "x", std::nullopt},
        AdminActionDraft{t0, "a", "Token Create", "x", std::nullopt},
        AdminActionDraft{t0, "a", "token.create", "x", std::string("[1]")},
        AdminActionDraft{t0, "a", "token.create", "x", std::string("{oops")},
        AdminActionDraft{t0, "a\nb", "token.create", "x", std::nullopt},
        AdminActionDraft{t0, "a", "token.create", std::string(201, 'x'), std::nullopt}}) {
    EXPECT_EQ(store_->append_admin_action(bad).code(), Errc::kInvalidArgument) << bad.action;
  }
  auto reader = open(Role::kReader);
  auto all = reader->admin_actions(std::nullopt, 10);
  ASSERT_TRUE(all.ok()) << all.error().describe();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, first->id);
  EXPECT_EQ((*all)[0].at, t0);
  EXPECT_EQ((*all)[0].actor, "token 1a2b (ci)");
  EXPECT_EQ((*all)[0].action, "token.create");
  EXPECT_EQ((*all)[0].target, "9f8e");
  EXPECT_EQ((*all)[0].detail, first->detail);
  EXPECT_EQ((*all)[1].detail, std::nullopt);
  EXPECT_EQ((*all)[1].actor, "cli ops@host");
  auto after = reader->admin_actions(first->id, 10);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].id, second->id);
  for (Role r : {Role::kSyncWorker, Role::kMergeWorker, Role::kReader}) {
    EXPECT_EQ(open(r)->append_admin_action(made).code(), Errc::kPermissionDenied) << role_name(r);
  }
  auto up = harness_->raw_sql(Role::kMigrator, "UPDATE admin_audit SET actor = 'someone else'");
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.code(), Errc::kImmutable);
  EXPECT_EQ(up.error().message, "Admin audit records are immutable and cannot be updated.");
  auto del = harness_->raw_sql(Role::kMigrator, "DELETE FROM admin_audit");
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.error().message, "Admin audit records are immutable and cannot be deleted.");
  EXPECT_EQ(rows("admin_audit"), 2);
}

}  // namespace backbone::testing
