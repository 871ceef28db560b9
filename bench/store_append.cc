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
#include "bench/event_rows.h"

namespace backbone::bench {
namespace {

struct Options {
  int events = 20'000;
  int batch = 100;
  int rounds = 5;
  std::string dir = "var/bench";
};

// The library: EventStore::append in batches, as the sync_worker role.
double run_library(const Options& o, const std::vector<Event>& events, Durability durability) {
  const std::string path = o.dir + "/library.db";
  fresh_store(path, durability);
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
  const std::vector<Event> events = make_events(make_drafts(o.events, 1000), ids, clock);
  const std::vector<AuditEntry> audit = ingested_entries(events, ids, clock);

  std::printf("bench/store_append  machine: %s\n", machine_description().c_str());
  std::printf("events: %d, batch: %d, changes: %zu B average, rounds: %d, SQLite %s, dir: %s\n",
              o.events, o.batch, average_changes_bytes(events), o.rounds, sqlite3_libversion(),
              o.dir.c_str());
  std::printf("%-30s %14s %14s %8s\n", "durability tier", "library ev/s", "floor ev/s", "ratio");
  for (Durability d : {Durability::kFsync, Durability::kRelaxed}) {
    std::vector<double> lib, floor, ratio;
    for (int r = 0; r < o.rounds; ++r) {
      lib.push_back(run_library(o, events, d));
      floor.push_back(
          run_sqlite_floor(o.dir + "/floor.db", events, audit, static_cast<size_t>(o.batch), d));
      ratio.push_back(lib.back() / floor.back());
    }
    std::printf("%-30s %14.0f %14.0f %8.2f\n",
                d == Durability::kFsync ? "fsync per commit (FULL)" : "relaxed (NORMAL, no fsync)",
                median(lib), median(floor), median(ratio));
  }
  std::printf("ratio = median over rounds of library/floor, each round run back to back\n");
  return 0;
}
