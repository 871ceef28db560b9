// The event rows the benchmarks write, and their floors, into the store's schema with the store's
// PRAGMAs, with plain prepared statements, no checks and no hashing:
//  - run_sqlite_floor: the rows an append writes (each event, its `ingested` audit entry and its
//    outbox entry), in transactions of `batch` events;
//  - run_spec_floor: what SPEC §2 asks of each event, in the pipeline's transaction grouping: at
//    ingest the event and its `ingested` entry (transactions of `batch`), at merge `processed`
//    0 -> 1, the `merged` entry and the record's row (transactions of `merge_batch`, the merge
//    stage's pull).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "backbone/event_store.h"
#include "bench/bench_util.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_rows.h"

namespace backbone::bench {

// `n` contact changes of about 170 B over `records` records, each a fast-forward of the one
// before it on its record (base_version counts up per record).
inline std::vector<EventDraft> make_drafts(int n, int records) {
  std::vector<EventDraft> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    EventDraft d;
    d.record_type = "contact";
    d.record_id = "rec-" + std::to_string(i % records);
    d.source = "crm";
    d.base_version = static_cast<uint64_t>(i / records);
    d.changes = R"({"email":"user)" + std::to_string(i) +
                R"(@example.test","name":"Ada Lovelace","phone":"+44 20 7946 0000",)"
                R"("score":)" +
                std::to_string(i % 97) +
                R"(,"tags":["customer","newsletter"],"address":{"city":"London","zip":"N1 9GU"}})";
    out.push_back(std::move(d));
  }
  return out;
}

inline std::vector<Event> make_events(const std::vector<EventDraft>& drafts, EventIdGenerator& ids,
                                      const Clock& clock) {
  std::vector<Event> out;
  out.reserve(drafts.size());
  for (const EventDraft& d : drafts) out.push_back(*Event::create(d, ids, clock));
  return out;
}

// The average size of the events' changes, in bytes (printed with every result).
inline size_t average_changes_bytes(const std::vector<Event>& events) {
  size_t bytes = 0;
  for (const Event& e : events) bytes += e.changes().size();
  return events.empty() ? 0 : bytes / events.size();
}

// Each event's `ingested` audit entry, chained.
inline std::vector<AuditEntry> ingested_entries(const std::vector<Event>& events,
                                                EventIdGenerator& ids, const Clock& clock) {
  std::vector<AuditEntry> audit;
  audit.reserve(events.size());
  std::string prev(kAuditGenesis);
  for (const Event& e : events) {
    AuditDraft d{e.id(), e.record_key(), AuditAction::kIngested, e.fingerprint(), std::nullopt};
    audit.push_back(*seal_audit_entry(d, ids.next(), clock.now(), prev));
    prev = audit.back().chain_hash;
  }
  return audit;
}

// A migrated, empty store at `path` (older files removed).
inline void fresh_store(const std::string& path, Durability durability) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  StoreOptions so;
  so.url = "sqlite://" + path;
  so.role = Role::kMigrator;
  so.durability = durability;
  auto s = EventStore::open(so);
  if (!s.ok() || !(*s)->migrate().ok()) {
    std::fprintf(stderr, "cannot create %s\n", path.c_str());
    std::exit(1);
  }
}

// Runs `row(k)` for k in [0, n), `batch` of them per transaction.
template <class Row>
void in_transactions(sqlite::SqliteDb& db, size_t n, size_t batch, const Row& row) {
  for (size_t i = 0; i < n; i += batch) {
    (void)db.exec("BEGIN IMMEDIATE");
    for (size_t k = i; k < std::min(n, i + batch); ++k) row(k);
    (void)db.exec("COMMIT");
  }
}

// The floor: rows per second.
inline double run_sqlite_floor(const std::string& path, const std::vector<Event>& events,
                               const std::vector<AuditEntry>& audit, size_t batch,
                               Durability durability) {
  fresh_store(path, durability);
  auto db = sqlite::SqliteDb::open(path, Role::kMigrator, durability);
  auto ins_event = (*db)->prepare(sqlite::kInsertEventSql);
  auto ins_audit = (*db)->prepare(sqlite::kInsertAuditSql);
  auto ins_outbox = (*db)->prepare(sqlite::kInsertOutboxSql);
  const auto t0 = std::chrono::steady_clock::now();
  in_transactions(**db, events.size(), batch, [&](size_t k) {
    (void)sqlite::bind_event_row(**ins_event, events[k]).run();
    (void)sqlite::bind_audit_row(**ins_audit, audit[k]).run();
    (void)(*ins_outbox)->bind(1, events[k].id().str()).bind(2, audit[k].created_at.micros()).run();
  });
  return static_cast<double>(events.size()) / seconds_since(t0);
}

// Each event's `merged` audit entry (with a detail of the merge's form: the version made and the
// changes applied), chained after `after`, and the record row it leaves (version counted per
// record, the changes as its state).
struct MergeRows {
  std::vector<AuditEntry> merged;
  std::vector<StoredRecord> records;
};
inline MergeRows merge_rows(const std::vector<Event>& events, EventIdGenerator& ids,
                            const Clock& clock, std::string after) {
  MergeRows out;
  std::map<std::string, uint64_t> versions;
  for (const Event& e : events) {
    const uint64_t v = ++versions[e.record_id()];
    const std::string detail = R"({"changes":)" + e.changes() +
                               R"(,"kind":"fast_forward","version":)" + std::to_string(v) + "}";
    AuditDraft d{e.id(), e.record_key(), AuditAction::kMerged, e.fingerprint(), detail};
    out.merged.push_back(*seal_audit_entry(d, ids.next(), clock.now(), after));
    after = out.merged.back().chain_hash;
    out.records.push_back({e.record_key(), v, e.changes(), "{}", clock.now()});
  }
  return out;
}

// SPEC §2's floor: events per second over both phases.
inline double run_spec_floor(const std::string& path, const std::vector<Event>& events,
                             const std::vector<AuditEntry>& ingested, const MergeRows& merges,
                             size_t batch, size_t merge_batch, Durability durability) {
  fresh_store(path, durability);
  auto db = sqlite::SqliteDb::open(path, Role::kMigrator, durability);
  auto ins_event = (*db)->prepare(sqlite::kInsertEventSql);
  auto ins_audit = (*db)->prepare(sqlite::kInsertAuditSql);
  auto mark = (*db)->prepare(sqlite::kMarkProcessedSql);
  auto upsert = (*db)->prepare(std::string(sqlite::kInsertRecordSql) + sqlite::kUpsertRecordSuffix);
  const auto t0 = std::chrono::steady_clock::now();
  in_transactions(**db, events.size(), batch, [&](size_t k) {
    (void)sqlite::bind_event_row(**ins_event, events[k]).run();
    (void)sqlite::bind_audit_row(**ins_audit, ingested[k]).run();
  });
  in_transactions(**db, events.size(), merge_batch, [&](size_t k) {
    (void)(*mark)->bind(1, events[k].id().str()).run();
    (void)sqlite::bind_audit_row(**ins_audit, merges.merged[k]).run();
    (void)sqlite::bind_record_row(**upsert, merges.records[k]).run();
  });
  return static_cast<double>(events.size()) / seconds_since(t0);
}

}  // namespace backbone::bench
