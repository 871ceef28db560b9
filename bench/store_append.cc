// bench/store_append: batched EventStore::append on SQLite (each event with its `ingested`
// audit entry, the duplicate check and the hash chain), against its floor: plain prepared
// INSERTs of the very same event and audit rows, into the same schema, with the same PRAGMAs
// and the same batch size. Both run in this process, alternating, on the same disk; the figure
// is the median of the rounds, and the ratio is library / floor (higher is better, 1.0 = no
// overhead).
//
//   bench_store_append [--events N] [--batch B] [--rounds R] [--dir PATH]
#include <sqlite3.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "backbone/event_store.h"
#include "bench/bench_util.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_rows.h"

namespace backbone::bench {
namespace {

struct Options {
  int events = 20'000;
  int batch = 100;
  int rounds = 5;
  std::string dir = "var/bench";
};

std::vector<Event> make_events(int n, EventIdGenerator& ids, const Clock& clock) {
  std::vector<Event> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    EventDraft d;
    d.record_type = "contact";
    d.record_id = "rec-" + std::to_string(i % 1000);
    d.source = "crm";
    d.base_version = static_cast<uint64_t>(i / 1000);
    d.changes = R"({"email":"user)" + std::to_string(i) +
                R"(@example.test","name":"Ada Lovelace","phone":"+44 20 7946 0000",)"
                R"("score":)" +
                std::to_string(i % 97) +
                R"(,"tags":["customer","newsletter"],"address":{"city":"London","zip":"N1 9GU"}})";
    out.push_back(*Event::create(d, ids, clock));
  }
  return out;
}

std::string fresh_db(const Options& o, const char* name, Role role, Durability durability) {
  const std::string path = o.dir + "/" + name + ".db";
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
  (void)role;
  return path;
}

// The library: EventStore::append in batches, as the sync_worker role.
double run_library(const Options& o, const std::vector<Event>& events, Durability durability) {
  const std::string path = fresh_db(o, "library", Role::kSyncWorker, durability);
  StoreOptions so;
  so.url = "sqlite://" + path;
  so.role = Role::kSyncWorker;
  so.durability = durability;
  auto store = EventStore::open(so);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < events.size(); i += static_cast<size_t>(o.batch)) {
    const size_t n = std::min(static_cast<size_t>(o.batch), events.size() - i);
    auto r = (*store)->append(std::span(events.data() + i, n));
    if (!r.ok()) {
      std::fprintf(stderr, "append failed: %s\n", r.error().describe().c_str());
      std::exit(1);
    }
  }
  return static_cast<double>(events.size()) / seconds_since(t0);
}

// The floor: the same rows with plain prepared statements, no checks, no hashing.
double run_floor(const Options& o, const std::vector<Event>& events,
                 const std::vector<AuditEntry>& audit, Durability durability) {
  const std::string path = fresh_db(o, "floor", Role::kMigrator, durability);
  auto db = sqlite::SqliteDb::open(path, Role::kMigrator, durability);
  auto ins_event = (*db)->prepare(sqlite::kInsertEventSql);
  auto ins_audit = (*db)->prepare(sqlite::kInsertAuditSql);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < events.size(); i += static_cast<size_t>(o.batch)) {
    const size_t end = std::min(events.size(), i + static_cast<size_t>(o.batch));
    (void)(*db)->exec("BEGIN IMMEDIATE");
    for (size_t k = i; k < end; ++k) {
      (void)sqlite::bind_event_row(**ins_event, events[k]).run();
      (void)sqlite::bind_audit_row(**ins_audit, audit[k]).run();
    }
    (void)(*db)->exec("COMMIT");
  }
  return static_cast<double>(events.size()) / seconds_since(t0);
}

}  // namespace
}  // namespace backbone::bench

int main(int argc, char** argv) {
  using namespace backbone;
  using namespace backbone::bench;
  Options o;
  CLI::App app{"bench/store_append: EventStore::append against plain INSERTs"};
  app.add_option("--events", o.events, "Events per round");
  app.add_option("--batch", o.batch, "Events per append");
  app.add_option("--rounds", o.rounds, "Rounds (the median is reported)");
  app.add_option("--dir", o.dir, "Folder for the databases");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::create_directories(o.dir);
  SystemClock& clock = SystemClock::instance();
  EventIdGenerator ids(clock);
  const std::vector<Event> events = make_events(o.events, ids, clock);
  std::vector<AuditEntry> audit;
  std::string prev(kAuditGenesis);
  for (const Event& e : events) {
    AuditDraft d{e.id(), e.record_key(), AuditAction::kIngested, e.fingerprint(), std::nullopt};
    audit.push_back(*seal_audit_entry(d, ids.next(), clock.now(), prev));
    prev = audit.back().chain_hash;
  }
  size_t bytes = 0;
  for (const Event& e : events) bytes += e.changes().size();

  std::printf("bench/store_append  machine: %s\n", machine_description().c_str());
  std::printf("events: %d, batch: %d, changes: %zu B average, rounds: %d, SQLite %s, dir: %s\n",
              o.events, o.batch, bytes / events.size(), o.rounds, sqlite3_libversion(),
              o.dir.c_str());
  std::printf("%-30s %14s %14s %8s\n", "durability tier", "library ev/s", "floor ev/s", "ratio");
  for (Durability d : {Durability::kFsync, Durability::kRelaxed}) {
    std::vector<double> lib, floor, ratio;
    for (int r = 0; r < o.rounds; ++r) {
      lib.push_back(run_library(o, events, d));
      floor.push_back(run_floor(o, events, audit, d));
      ratio.push_back(lib.back() / floor.back());
    }
    std::printf("%-30s %14.0f %14.0f %8.2f\n",
                d == Durability::kFsync ? "fsync per commit (FULL)" : "relaxed (NORMAL, no fsync)",
                median(lib), median(floor), median(ratio));
  }
  std::printf("ratio = median over rounds of library/floor, each round run back to back\n");
  return 0;
}
