// bench/broker_storage: the measurement behind the embedded broker's storage choice. The same
// messages are made durable in group commits, once through the broker's own segment log
// (append, then write and fdatasync per commit) and once through SQLite (one INSERT per
// message into an indexed table, WAL, synchronous=FULL, one transaction per commit), on the
// same disk, in the same run. Both tiers fsync every commit.
//
//   bench_broker_storage [--messages N] [--commit N] [--size BYTES] [--rounds R] [--dir PATH]
#include <sqlite3.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "broker/embedded/segment_log.h"

namespace backbone::bench {
namespace {

struct Options {
  int messages = 200'000;
  int commit = 500;
  size_t size = 256;
  int rounds = 5;
  std::string dir = "var/bench/storage";
};

double run_segment_log(const Options& o) {
  const std::string dir = o.dir + "/log";
  std::filesystem::remove_all(dir);
  auto log = embedded::SegmentLog::open(dir, 64ull << 20, [](uint64_t, const embedded::MsgRef&) {});
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < o.messages;) {
    for (int k = 0; k < o.commit && i < o.messages; ++k, ++i) {
      embedded::StoredMessage m;
      m.offset = static_cast<uint64_t>(i);
      m.publish_time_us = i;
      m.ordering_key = "k" + std::to_string(i % 1000);
      m.data.assign(o.size, 'x');
      (void)(*log)->append(m);
    }
    embedded::SegmentLog::Pending p;
    (*log)->take_pending(p);
    if (!embedded::SegmentLog::write_pending(p).ok()) std::exit(1);
  }
  return o.messages / seconds_since(t0);
}

double run_sqlite(const Options& o) {
  const std::string path = o.dir + "/messages.db";
  for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(path + s);
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
               "CREATE TABLE messages (offset INTEGER PRIMARY KEY, publish_time INTEGER NOT NULL,"
               " ordering_key TEXT NOT NULL, attributes BLOB, data BLOB NOT NULL);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO messages VALUES (?, ?, ?, NULL, ?)", -1, &ins, nullptr);
  const std::string data(o.size, 'x');
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < o.messages;) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (int k = 0; k < o.commit && i < o.messages; ++k, ++i) {
      const std::string key = "k" + std::to_string(i % 1000);
      sqlite3_bind_int64(ins, 1, i);
      sqlite3_bind_int64(ins, 2, i);
      sqlite3_bind_text(ins, 3, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
      sqlite3_bind_blob(ins, 4, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
      if (sqlite3_step(ins) != SQLITE_DONE) std::exit(1);
      sqlite3_reset(ins);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  const double rate = o.messages / seconds_since(t0);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  return rate;
}

}  // namespace
}  // namespace backbone::bench

int main(int argc, char** argv) {
  using namespace backbone::bench;
  Options o;
  CLI::App app{"bench/broker_storage: the segment log against SQLite"};
  app.add_option("--messages", o.messages, "Messages per round");
  app.add_option("--commit", o.commit, "Messages per commit");
  app.add_option("--size", o.size, "Message size in bytes");
  app.add_option("--rounds", o.rounds, "Rounds (the median is reported)");
  app.add_option("--dir", o.dir, "Folder for the files");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::create_directories(o.dir);
  std::printf("bench/broker_storage  machine: %s\n", machine_description().c_str());
  std::printf(
      "%d messages of %zu B, %d per commit, fsync per commit, median of %d rounds, "
      "SQLite %s\n",
      o.messages, o.size, o.commit, o.rounds, sqlite3_libversion());
  std::vector<double> log, sql, ratio;
  for (int r = 0; r < o.rounds; ++r) {
    log.push_back(run_segment_log(o));
    sql.push_back(run_sqlite(o));
    ratio.push_back(log.back() / sql.back());
  }
  std::printf("%-22s %14.0f msg/s\n", "segment log", median(log));
  std::printf("%-22s %14.0f msg/s\n", "SQLite (WAL, FULL)", median(sql));
  std::printf("%-22s %14.2f\n", "ratio log/SQLite", median(ratio));
  std::filesystem::remove_all(o.dir);
  return 0;
}
