// The event rows the benchmarks write, and their floor: the same rows (each event and its
// `ingested` audit entry) inserted with plain prepared statements, no checks and no hashing, in
// transactions of `batch` rows, into the store's schema with the store's PRAGMAs.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
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
  for (size_t i = 0; i < events.size(); i += batch) {
    const size_t end = std::min(events.size(), i + batch);
    (void)(*db)->exec("BEGIN IMMEDIATE");
    for (size_t k = i; k < end; ++k) {
      (void)sqlite::bind_event_row(**ins_event, events[k]).run();
      (void)sqlite::bind_audit_row(**ins_audit, audit[k]).run();
      (void)(*ins_outbox)
          ->bind(1, events[k].id().str())
          .bind(2, audit[k].created_at.micros())
          .run();
    }
    (void)(*db)->exec("COMMIT");
  }
  return static_cast<double>(events.size()) / seconds_since(t0);
}

}  // namespace backbone::bench
