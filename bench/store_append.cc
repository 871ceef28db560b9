// bench/store_append: batched EventStore::append on SQLite (each event with its `ingested`
// audit entry, the duplicate check and the hash chain), against its floor: plain prepared
// INSERTs of the very same event, audit and outbox rows, into the same schema, with the same
// PRAGMAs and the same batch size. Both run in this process, alternating, on the same disk; the
// figure is the median of the rounds, and the ratio is library / floor (higher is better, 1.0 = no
// overhead).
//
// With a PostgreSQL or MariaDB server (--postgres URL, --mysql URL, admin URLs; by default
// BACKBONE_TEST_POSTGRES_URL and BACKBONE_TEST_MYSQL_URL, which `make bench` sets by starting
// throwaway servers), the same for each: the library's append (as sync_worker: a lock per
// fingerprint, a writer slot's head, the id and fingerprint checks, multi-row INSERTs) against
// its floor, the
// bare driver connection (PQexecPrepared / mysql_stmt_execute) running the very same prepared
// multi-row INSERTs of the same rows, BEGIN/COMMIT per batch, and nothing else.
//
// Then the same appends from 1, 2 and 3 processes at once to one server store (--processes),
// each taking every Nth event, against the floor's bare INSERTs from as many processes: each
// library append takes its fingerprints' locks and a writer slot of its own, so appends of
// different changes share no lock (doc/audit_chain.md, "Many writers").
//
//   bench_store_append [--events N] [--batch B] [--rounds R] [--dir PATH] [--postgres URL]
//                      [--mysql URL] [--processes 1,2,3]
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "backbone/event_store.h"
#include "bench/bench_util.h"
#include "bench/event_rows.h"
#include "store/open/store_open.h"
#include "store/sql/role_grants.h"
#include "store/sql/sql_dialect.h"
#include "store/sql/sql_login.h"
#include "store/sql/sql_rows.h"

namespace backbone::bench {
namespace {

struct Options {
  int events = 20'000;
  int batch = 100;
  int rounds = 5;
  std::string dir = "var/bench";
  int server_prefill = 20'000;  // events already in a server store when a round starts
};

// The library: EventStore::append in batches, as the sync_worker role, on the store at `url`.
double run_library(const std::string& url, const Options& o, const std::vector<Event>& events,
                   Durability durability, EventIdGenerator* ids = nullptr) {
  StoreOptions so;
  so.url = url;
  so.role = Role::kSyncWorker;
  so.durability = durability;
  so.ids = ids;
  auto store = EventStore::open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.error().describe().c_str());
    std::exit(1);
  }
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

// A server database for a round: made (or emptied) and granted as the admin, then migrated.
std::string fresh_server_db(const std::string& admin_url, const std::string& name) {
  auto url = parse_store_url(admin_url);
  const sql::SqlDialect& d = *server_store_dialect(*url);
  auto settings = sql::server_store_settings(*url);
  auto admin = d.connect(sql::admin_login(*url, *settings, d.maintenance_database()));
  if (!admin.ok()) {
    std::fprintf(stderr, "%s\n", admin.error().describe().c_str());
    std::exit(1);
  }
  (void)d.drop_database(**admin, name);
  const std::string db_url = with_database(admin_url, name);
  auto granted = sql::grant_roles(db_url, server_store_dialect(db_url));
  StoreOptions so;
  so.url = db_url;
  so.role = Role::kMigrator;
  auto store = EventStore::open(so);
  if (!granted.ok() || !store.ok() || !(*store)->migrate().ok()) {
    std::fprintf(stderr, "cannot set up %s\n", name.c_str());
    std::exit(1);
  }
  return db_url;
}

// Brings the server database's statistics up to date, as the admin (as autovacuum would).
void analyze(const std::string& db_url) {
  auto url = parse_store_url(db_url);
  const sql::SqlDialect& d = *server_store_dialect(*url);
  auto admin = d.connect(sql::admin_login(*url, *sql::server_store_settings(*url), url->database));
  if (!admin.ok() ||
      !(*admin)
           ->exec(url->scheme == "postgresql" ? "ANALYZE"
                                              : "ANALYZE TABLE events, event_audit_log, records")
           .ok()) {
    std::fprintf(stderr, "cannot analyze %s\n", url->database.c_str());
    std::exit(1);
  }
}

// The floor: the same rows through the bare driver connection, as sync_worker.
double run_server_floor(const std::string& db_url, const Options& o,
                        const std::vector<Event>& events, const std::vector<AuditEntry>& audit) {
  auto url = parse_store_url(db_url);
  auto settings = sql::server_store_settings(*url);
  auto c = server_store_dialect(*url)->connect(sql::role_login(*url, *settings, Role::kSyncWorker));
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.error().describe().c_str());
    std::exit(1);
  }
  std::vector<sql::SqlParam> ev, au, ob;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < events.size(); i += static_cast<size_t>(o.batch)) {
    const size_t n = std::min(static_cast<size_t>(o.batch), events.size() - i);
    ev.clear();
    au.clear();
    ob.clear();
    for (size_t k = i; k < i + n; ++k) {
      sql::event_params(events[k], ev);
      sql::audit_params(audit[k], au);
      ob.push_back(events[k].id().str());
      ob.push_back(sql::sql_time(audit[k].created_at));
    }
    bool ok = (*c)->exec("BEGIN").ok();
    ok = ok && (*c)->run(sql::kInsertEventsHead + sql::repeat_row(sql::kEventRow, n), ev).ok();
    ok = ok && (*c)->run(sql::kInsertAuditHead + sql::repeat_row(sql::kAuditRow, n), au).ok();
    ok = ok && (*c)->run(sql::kInsertOutboxHead + sql::repeat_row(sql::kOutboxRow, n), ob).ok();
    ok = ok && (*c)->exec("COMMIT").ok();
    if (!ok) {
      std::fprintf(stderr, "floor insert failed\n");
      std::exit(1);
    }
  }
  return static_cast<double>(events.size()) / seconds_since(t0);
}

// `processes` child processes append their share of `events` to one store at once (the
// library, or the floor's bare INSERTs); returns the events per second of the whole, from the
// moment all are released to the last one's exit.
double run_processes(const std::string& db_url, const Options& o, const std::vector<Event>& events,
                     const std::vector<AuditEntry>& audit, int processes, bool library) {
  std::vector<std::vector<Event>> share(static_cast<size_t>(processes));
  std::vector<std::vector<AuditEntry>> share_audit(static_cast<size_t>(processes));
  for (size_t i = 0; i < events.size(); ++i) {
    share[i % share.size()].push_back(events[i]);
    share_audit[i % share.size()].push_back(audit[i]);
  }
  int go[2];
  if (pipe(go) != 0) std::exit(1);
  std::vector<pid_t> children;
  for (int p = 0; p < processes; ++p) {
    const pid_t pid = fork();
    if (pid < 0) std::exit(1);
    if (pid == 0) {
      close(go[1]);
      char c;
      if (read(go[0], &c, 1) != 1) _exit(1);
      // Ids of its own: a forked generator would repeat the parent's.
      EventIdGenerator ids(SystemClock::instance(), std::random_device{}() + 7919u * p);
      if (library) {
        run_library(db_url, o, share[p], Durability::kFsync, &ids);
      } else {
        run_server_floor(db_url, o, share[p], share_audit[p]);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  close(go[0]);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string release(static_cast<size_t>(processes), 'x');
  if (write(go[1], release.data(), release.size()) != static_cast<ssize_t>(release.size())) {
    std::exit(1);
  }
  close(go[1]);
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "an appending process failed\n");
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
  const char* pg_env = std::getenv("BACKBONE_TEST_POSTGRES_URL");
  const char* my_env = std::getenv("BACKBONE_TEST_MYSQL_URL");
  std::string pg_url = pg_env ? pg_env : "", my_url = my_env ? my_env : "";
  app.add_option("--postgres", pg_url, "Admin URL of a PostgreSQL server to measure too");
  app.add_option("--mysql", my_url, "Admin URL of a MariaDB/MySQL server to measure too");
  app.add_option("--server-prefill", o.server_prefill,
                 "Events already in a server store (then analyzed) when a round starts");
  std::vector<int> processes = {1, 2, 3};
  app.add_option("--processes", processes,
                 "Numbers of processes appending to one server store at once (0: skip)")
      ->delimiter(',');
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
      const std::string path = o.dir + "/library.db";
      fresh_store(path, d);
      lib.push_back(run_library("sqlite://" + path, o, events, d));
      floor.push_back(
          run_sqlite_floor(o.dir + "/floor.db", events, audit, static_cast<size_t>(o.batch), d));
      ratio.push_back(lib.back() / floor.back());
    }
    std::printf("%-30s %14.0f %14.0f %8.2f\n",
                d == Durability::kFsync ? "fsync per commit (FULL)" : "relaxed (NORMAL, no fsync)",
                median(lib), median(floor), median(ratio));
  }
  std::printf("ratio = median over rounds of library/floor, each round run back to back\n");
  for (Role r : {Role::kMigrator, Role::kSyncWorker, Role::kMergeWorker, Role::kReader}) {
    // The roles' passwords, unless given (the bench's databases use their own).
    setenv(sql::role_password_variable(r).c_str(), (std::string("bench-") + role_name(r)).c_str(),
           0);
  }
  std::vector<EventDraft> prior_drafts = make_drafts(o.server_prefill, 1000);
  for (EventDraft& d : prior_drafts) d.record_type = "prior";  // other records, other changes
  const std::vector<Event> prior = make_events(prior_drafts, ids, clock);
  const std::vector<AuditEntry> prior_audit = ingested_entries(prior, ids, clock);
  std::printf("servers: each round starts on a store holding %d other events, analyzed\n",
              o.server_prefill);
  for (const auto& [name, admin] : {std::pair{"postgresql", pg_url}, std::pair{"mysql", my_url}}) {
    if (admin.empty()) {
      std::printf("%s: no server given, skipped\n", name);
      continue;
    }
    std::vector<double> lib, floor, ratio;
    for (int r = 0; r < o.rounds; ++r) {
      // Each side starts on a store that already holds `server_prefill` other events, written
      // its own way, with fresh statistics: the steady state of a store in use.
      const std::string lib_db = fresh_server_db(admin, "bb_bench_library");
      run_library(lib_db, o, prior, Durability::kFsync);
      analyze(lib_db);
      lib.push_back(run_library(lib_db, o, events, Durability::kFsync));
      const std::string floor_db = fresh_server_db(admin, "bb_bench_floor");
      run_server_floor(floor_db, o, prior, prior_audit);
      analyze(floor_db);
      floor.push_back(run_server_floor(floor_db, o, events, audit));
      ratio.push_back(lib.back() / floor.back());
    }
    std::printf("%-30s %14.0f %14.0f %8.2f\n",
                (std::string(name) + ", server's commit (fsync)").c_str(), median(lib),
                median(floor), median(ratio));
  }
  // Appends from several processes to one environment's store: each append takes its
  // fingerprints' locks and a writer slot (its own chain), the floor's bare INSERTs take none.
  std::printf(
      "several processes, one store (each takes every Nth event; per batch its fingerprints' "
      "locks and a writer slot; the server and the processes share this machine's cores)\n");
  std::printf("%-30s %14s %14s %8s %10s\n", "server, processes", "library ev/s", "floor ev/s",
              "ratio", "vs 1 proc");
  for (const auto& [name, admin] : {std::pair{"postgresql", pg_url}, std::pair{"mysql", my_url}}) {
    if (admin.empty()) continue;
    double one = 0;
    for (int n : processes) {
      if (n <= 0) continue;
      std::vector<double> lib, floor, ratio;
      for (int r = 0; r < o.rounds; ++r) {
        const std::string lib_db = fresh_server_db(admin, "bb_bench_library");
        run_library(lib_db, o, prior, Durability::kFsync);
        analyze(lib_db);
        lib.push_back(run_processes(lib_db, o, events, audit, n, true));
        const std::string floor_db = fresh_server_db(admin, "bb_bench_floor");
        run_server_floor(floor_db, o, prior, prior_audit);
        analyze(floor_db);
        floor.push_back(run_processes(floor_db, o, events, audit, n, false));
        ratio.push_back(lib.back() / floor.back());
      }
      if (one == 0) one = median(lib);
      std::printf("%-30s %14.0f %14.0f %8.2f %10.2f\n",
                  (std::string(name) + ", " + std::to_string(n)).c_str(), median(lib),
                  median(floor), median(ratio), median(lib) / one);
    }
  }
  return 0;
}
