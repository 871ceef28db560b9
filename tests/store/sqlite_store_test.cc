// The EventStore conformance suite on SQLite, and what only the SQLite backend does.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "backbone/event_store.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {

INSTANTIATE_TEST_SUITE_P(Sqlite, EventStoreConformance,
                         ::testing::Values(StoreBackend{"sqlite", make_sqlite_harness}),
                         [](const auto& info) { return info.param.name; });

namespace {

class SqliteStore : public ::testing::Test {
 protected:
  std::unique_ptr<EventStore> open(const std::string& url, Role role) {
    StoreOptions o;
    o.url = url;
    o.role = role;
    o.clock = &clock_;
    o.ids = &ids_;
    auto s = EventStore::open(o);
    EXPECT_TRUE(s.ok()) << s.error().describe();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::vector<Event> events(int n) {
    std::vector<Event> out;
    for (int i = 0; i < n; ++i) {
      EventDraft d;
      d.record_type = "contact";
      d.record_id = std::to_string(i % 3);
      d.source = "crm";
      d.changes = "{\"i\":" + std::to_string(i) + "}";
      clock_.advance_micros(10);
      out.push_back(*Event::create(d, ids_, clock_));
    }
    return out;
  }
  ManualClock clock_;
  EventIdGenerator ids_{clock_, 5};
  TempDir dir_;
};

TEST_F(SqliteStore, OnlyTheMigratorCreatesADatabase) {
  StoreOptions o;
  o.url = "sqlite://" + dir_.file("absent.db");
  o.role = Role::kSyncWorker;
  auto s = EventStore::open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::kNotFound);
  EXPECT_NE(s.error().message.find("backbone migrate"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_.file("absent.db")));
}

TEST_F(SqliteStore, AnUnmigratedStoreSaysToMigrate) {
  auto s = open("sqlite://" + dir_.file("sub/folder/new.db"), Role::kMigrator);
  ASSERT_TRUE(s);
  auto e = events(1);
  auto r = s->append(e);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kUnavailable);
  EXPECT_NE(r.error().message.find("backbone migrate"), std::string::npos);
  ASSERT_EQ(*s->migrate(), 8);  // schemas 1 to 8
  EXPECT_TRUE(s->append(e).ok());
}

TEST_F(SqliteStore, BadUrlsAreRefused) {
  for (const char* url : {"sqlite://", "var/x.db", "sqlite://var/{env}.db", "redis://x"}) {
    StoreOptions o;
    o.url = url;
    auto s = EventStore::open(o);
    ASSERT_FALSE(s.ok()) << url;
    EXPECT_EQ(s.code(), Errc::kInvalidArgument) << url;
  }
}

TEST_F(SqliteStore, DataSurvivesReopening) {
  const std::string url = "sqlite://" + dir_.file("durable.db");
  auto batch = events(5);
  {
    auto s = open(url, Role::kMigrator);
    ASSERT_EQ(*s->migrate(), 8);  // schemas 1 to 8
    ASSERT_TRUE(s->append(batch).ok());
  }
  auto again = open(url, Role::kReader);
  for (const auto& e : batch) EXPECT_EQ(again->get(e.id())->event, e);
  EXPECT_TRUE(verify_audit_chain(*again)->ok);
}

TEST_F(SqliteStore, MigratingToSchema2PutsTheUnprocessedEventsInTheOutbox) {
  const std::string url = "sqlite://" + dir_.file("v1.db");
  auto s = open(url, Role::kMigrator);
  ASSERT_EQ(*s->migrate(), 8);
  auto e = events(3);
  ASSERT_TRUE(s->append(e).ok());
  ASSERT_TRUE(*s->mark_processed(e[1].id()));
  s.reset();
  {
    // Back to schema 1 with these events: no outbox yet.
    auto db = sqlite::SqliteDb::open(dir_.file("v1.db"), Role::kMigrator, Durability::kFsync);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->exec("DROP TABLE event_outbox; DELETE FROM schema_migrations WHERE version "
                           "= 2; PRAGMA user_version = 1")
                    .ok());
  }
  s = open(url, Role::kMigrator);
  ASSERT_EQ(*s->migrate(), 1);
  auto waiting = s->outbox(clock_.now(), 10);
  ASSERT_TRUE(waiting.ok()) << waiting.error().describe();
  std::vector<EventId> ids;
  for (const StoredEvent& w : *waiting) ids.push_back(w.event.id());
  EXPECT_EQ(ids, (std::vector<EventId>{e[0].id(), e[2].id()}));
}

// A store from before chains had slots: its one chain, whose ids end in any 16 bits, becomes
// slot 0's up to its newest entry; new entries go on after it, and the whole verifies.
TEST_F(SqliteStore, AChainFromBeforeSlotsBecomesSlot0sAndGoesOn) {
  const std::string path = dir_.file("legacy.db");
  auto s = open("sqlite://" + path, Role::kMigrator);
  ASSERT_EQ(*s->migrate(), 8);
  auto before = events(4);
  ASSERT_TRUE(s->append(before).ok());
  s.reset();
  // Made as schema 4 made it: one chain over ids from a generator, then no audit_heads.
  std::vector<EventId> legacy;
  {
    auto db = sqlite::SqliteDb::open(path, Role::kMigrator, Durability::kFsync);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->exec("DROP TRIGGER audit_refuse_delete; DELETE FROM event_audit_log").ok());
    EventIdGenerator old_ids(clock_, 1234);
    std::string previous(kAuditGenesis);
    for (const Event& e : before) {
      AuditDraft d{e.id(), e.record_key(), AuditAction::kIngested, e.fingerprint(), std::nullopt};
      legacy.push_back(old_ids.next());
      auto entry = seal_audit_entry(d, legacy.back(), clock_.now(), previous);
      ASSERT_TRUE(entry.ok());
      previous = entry->chain_hash;
      ASSERT_TRUE((*db)
                      ->exec("INSERT INTO event_audit_log VALUES ('" + entry->id.str() + "', '" +
                             e.id().str() + "', 'contact', '" + e.record_id() + "', 'ingested', '" +
                             e.fingerprint() + "', '" + entry->chain_hash + "', NULL, " +
                             std::to_string(entry->created_at.micros()) + ")")
                      .ok());
    }
    ASSERT_TRUE((*db)
                    ->exec("DROP TABLE audit_heads; DELETE FROM schema_migrations WHERE version "
                           "= 5; PRAGMA user_version = 4")
                    .ok());
  }
  const bool other_bits = std::any_of(legacy.begin(), legacy.end(),
                                      [](const EventId& id) { return audit_slot_of(id) != 0; });
  ASSERT_TRUE(other_bits) << "the old ids must end in bits other than slot 0's";
  s = open("sqlite://" + path, Role::kMigrator);
  ASSERT_EQ(*s->migrate(), 1);
  auto heads = s->audit_heads();
  ASSERT_TRUE(heads.ok()) << heads.error().describe();
  ASSERT_EQ(heads->size(), 1u);
  EXPECT_EQ((*heads)[0].id, legacy.back());
  EXPECT_EQ((*heads)[0].legacy_until, std::optional<EventId>(legacy.back()));
  ASSERT_TRUE(s->append(events(2)).ok());
  auto r = verify_audit_chain(*s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok) << r->problem;
  EXPECT_EQ(r->entries_checked, 6u);
}

// The test: in a copy of a database, drop the triggers, edit one row, and verify must
// name that row.
class SqliteTamper : public SqliteStore {
 protected:
  void SetUp() override {
    auto s = open("sqlite://" + original_, Role::kMigrator);
    ASSERT_EQ(*s->migrate(), 8);  // schemas 1 to 8
    batch_ = events(6);
    ASSERT_TRUE(s->append(batch_).ok());
    AuditDraft merged{batch_[0].id(), batch_[0].record_key(), AuditAction::kMerged,
                      batch_[0].fingerprint(), std::string("{\"version\":1}")};
    ASSERT_TRUE(s->append_audit(std::span(&merged, 1)).ok());
    s.reset();
    std::filesystem::copy_file(original_, copy_);
  }
  // Runs `sql` on the copy with the immutability triggers dropped.
  void tamper(const std::string& sql) {
    auto db = sqlite::SqliteDb::open(copy_, Role::kMigrator, Durability::kFsync);
    ASSERT_TRUE(db.ok());
    for (const char* t : {"events_refuse_update", "audit_refuse_update"}) {
      ASSERT_TRUE((*db)->exec(std::string("DROP TRIGGER ") + t).ok());
    }
    auto r = (*db)->exec(sql);
    ASSERT_TRUE(r.ok()) << r.error().describe();
  }
  AuditVerifyReport verify_copy() {
    auto s = open("sqlite://" + copy_, Role::kReader);
    auto r = verify_audit_chain(*s);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : AuditVerifyReport{};
  }
  std::vector<AuditEntry> entries() {
    auto s = open("sqlite://" + original_, Role::kReader);
    return *s->scan_audit(std::nullopt, 100);
  }
  std::string original_ = dir_.file("original.db");
  std::string copy_ = dir_.file("copy.db");
  std::vector<Event> batch_;
};

TEST_F(SqliteTamper, TheUntouchedCopyVerifies) {
  auto r = verify_copy();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.entries_checked, 7u);
}

TEST_F(SqliteTamper, AnEditedAuditDetailIsNamed) {
  const auto all = entries();
  tamper("UPDATE event_audit_log SET detail = '{\"version\":2}' WHERE id = '" + all[6].id.str() +
         "'");
  auto r = verify_copy();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(*r.first_bad_entry, all[6].id);
  EXPECT_EQ(r.first_bad_position, 6u);
  EXPECT_NE(r.problem.find("chain_hash"), std::string::npos) << r.problem;
}

TEST_F(SqliteTamper, AnEditedEventIsNamedThroughItsFingerprint) {
  const auto all = entries();
  tamper("UPDATE events SET changes = '{\"i\":99}' WHERE id = '" + batch_[3].id().str() + "'");
  auto r = verify_copy();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(*r.first_bad_entry, all[3].id);
  EXPECT_NE(r.problem.find("fingerprint"), std::string::npos) << r.problem;
}

TEST_F(SqliteTamper, AnEditedFingerprintWithARecomputedHashBreaksTheNextLink) {
  // Rewriting one entry's fingerprint and chain hash consistently still breaks the chain at
  // the entry that follows... and the edited entry's fingerprint no longer matches its event.
  const auto all = entries();
  tamper("UPDATE event_audit_log SET fingerprint = '" + std::string(64, 'f') + "' WHERE id = '" +
         all[2].id.str() + "'");
  auto r = verify_copy();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(*r.first_bad_entry, all[2].id);
}

TEST_F(SqliteTamper, ADeletedEntryIsNamedAtTheBrokenLink) {
  const auto all = entries();
  auto db = sqlite::SqliteDb::open(copy_, Role::kMigrator, Durability::kFsync);
  ASSERT_TRUE((*db)->exec("DROP TRIGGER audit_refuse_delete").ok());
  ASSERT_TRUE((*db)->exec("DELETE FROM event_audit_log WHERE id = '" + all[1].id.str() + "'").ok());
  db->reset();
  auto r = verify_copy();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(*r.first_bad_entry, all[2].id);  // the entry whose predecessor vanished
}

// Removing a chain's newest entries leaves a shorter chain whose links all hold; the head the
// store recorded with them says that entries are missing.
TEST_F(SqliteTamper, RemovedNewestEntriesAreFoundAgainstTheRecordedHead) {
  const auto all = entries();
  auto db = sqlite::SqliteDb::open(copy_, Role::kMigrator, Durability::kFsync);
  ASSERT_TRUE((*db)->exec("DROP TRIGGER audit_refuse_delete").ok());
  ASSERT_TRUE(
      (*db)->exec("DELETE FROM event_audit_log WHERE id >= '" + all[5].id.str() + "'").ok());
  db->reset();
  auto r = verify_copy();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_entry, std::optional<EventId>(all[6].id));
  EXPECT_EQ(r.first_bad_position, 5u);
  EXPECT_NE(r.problem.find("removed from its end"), std::string::npos) << r.problem;
}

}  // namespace
}  // namespace backbone::testing
