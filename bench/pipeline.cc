// bench/pipeline: the main job end to end, as `backbone serve` runs it (HTTP API, SQLite store,
// embedded broker, merge stage; fsync durability), against two floors on the same disk, in the
// same run (bench/event_rows.h): plain inserts of the rows an append writes (each event, its
// `ingested` entry and its outbox entry) in transactions of the same batch size; and SPEC §2's
// floor, every statement SPEC §2 asks of an event (at ingest the event and its `ingested` entry;
// at merge `processed` 0 -> 1, the `merged` entry and the record's row) as bare prepared
// statements in the pipeline's transaction grouping (ingest batches, merge pulls of 500).
//
//  peak         `clients` HTTP clients post batches of `batch` events as fast as the server
//               answers (each client owns a share of the records, so per-record order holds);
//               end to end runs from the first post until the merged message of every event was
//               published (a subscription of the bench's own on the merged topic received it).
//  half load    the same clients, paced to half the median peak (open loop: a batch is due at
//               a fixed time whatever happened before); latency is from when the batch was due
//               to when its merged message arrived, so queueing counts.
//
//   bench_pipeline [--events N] [--records K] [--batch B] [--clients C] [--rounds R] [--dir D]
#include <httplib.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unordered_map>

#include "bench/bench_util.h"
#include "bench/event_rows.h"
#include "server/app.h"
#include "server/http_server.h"

namespace backbone::bench {
namespace {

using Steady = std::chrono::steady_clock;

struct Options {
  int events = 50'000;
  int records = 5'000;
  int batch = 100;
  int clients = 8;
  int rounds = 3;
  std::string dir = "var/bench/pipeline";
  bool half_load = true;
  double rate = 0;  // the paced run's offered load; 0: half the median peak
};

struct RunResult {
  double ingest_per_s = 0;
  double end_to_end_per_s = 0;
  double cpu_us_per_event = 0;     // the process's user + system time over the run
  double bytes_per_event = 0;      // written by the process over the run (store, WAL, broker)
  std::vector<double> latency_ms;  // per event, due (or sent) -> merged received
  std::vector<double> answer_ms;   // per event, due -> its batch's HTTP answer (ingest's part)
  std::vector<double> merge_ms;    // per event, its batch's HTTP answer -> merged received
};

std::string draft_json(const EventDraft& d) {
  return R"({"record_type":")" + d.record_type + R"(","record_id":")" + d.record_id +
         R"(","source":")" + d.source + R"(","base_version":)" + std::to_string(d.base_version) +
         R"(,"changes":)" + d.changes + "}";
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Bytes this process has written with write(2) and friends so far (/proc/self/io wchar).
double written_bytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  double value = 0;
  while (io >> key >> value) {
    if (key == "wchar:") return value;
  }
  return 0;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_pipeline: %s\n", what.c_str());
  std::exit(1);
}

// One run on a fresh server. `rate` > 0 paces the clients to that many events per second.
RunResult run(const Options& o, const std::vector<EventDraft>& drafts, double rate) {
  std::filesystem::remove_all(o.dir);
  std::filesystem::create_directories(o.dir);
  auto config = parse_config("", "bench");
  if (!config.ok()) die(config.error().describe());
  config->store = "sqlite://" + o.dir + "/{env}.db";
  config->broker = "embedded://" + o.dir + "/broker";
  config->tokens = o.dir + "/tokens.json";
  config->durability = Durability::kFsync;
  const std::string env = "sandbox";
  server::AppOptions ao;
  ao.config = *config;
  ao.envs = {env};
  if (const char* w = std::getenv("BENCH_WORKERS")) ao.workers = std::stoul(w);
  auto app = server::App::open(ao);
  if (!app.ok()) die(app.error().describe());
  auto token = (*app)->create_token(env, "bench", {"publish"});
  if (!token.ok()) die(token.error().describe());
  server::HttpServer http(**app);
  if (auto b = http.bind("127.0.0.1:0"); !b.ok()) die(b.error().describe());
  std::thread server([&] { http.run(); });

  // The bench's own subscription on the merged topic.
  Broker& broker = (*app)->broker();
  SubscriptionConfig watch;
  watch.topic = (*app)->topology().topic_name(TopicFamily::kMerged, env);
  watch.name = watch.topic + ".bench";
  watch.ack_deadline_us = 600 * kSecond;
  if (auto r = broker.create_subscription(watch); !r.ok()) die(r.error().describe());

  // Event i is merged as version base_version + 1 of its record.
  std::unordered_map<std::string, size_t> index;
  index.reserve(drafts.size());
  for (size_t i = 0; i < drafts.size(); ++i) {
    index.emplace(drafts[i].record_type + ":" + drafts[i].record_id + "#" +
                      std::to_string(drafts[i].base_version + 1),
                  i);
  }
  std::vector<std::atomic<int64_t>> due_ns(drafts.size());
  std::vector<std::atomic<int64_t>> answered_ns(drafts.size());  // 0 until the answer is read
  RunResult result;
  result.latency_ms.reserve(drafts.size());
  std::vector<std::pair<size_t, int64_t>> merged_ns;  // (event, when received), split at the end
  merged_ns.reserve(drafts.size());

  const double cpu0 = cpu_seconds();
  const double written0 = written_bytes();
  const Steady::time_point t0 = Steady::now();
  auto ns_since_t0 = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now() - t0).count();
  };
  std::atomic<int64_t> merged_at_ns{0};
  std::thread watcher([&] {
    size_t seen = 0;
    std::vector<std::string> acks;
    while (seen < drafts.size()) {
      auto got = broker.pull(watch.name, 1000, 200'000);
      if (!got.ok()) die(got.error().describe());
      const int64_t now = ns_since_t0();
      acks.clear();
      for (const ReceivedMessage& m : *got) {
        acks.push_back(m.ack_id);
        auto v = m.message.attributes.find("version");
        if (v == m.message.attributes.end()) continue;
        auto it = index.find(m.message.ordering_key + "#" + v->second);
        if (it == index.end()) continue;
        ++seen;
        result.latency_ms.push_back(static_cast<double>(now - due_ns[it->second].load()) / 1e6);
        merged_ns.emplace_back(it->second, now);
      }
      if (!acks.empty()) (void)broker.ack(watch.name, acks);
      if (ns_since_t0() > int64_t{600} * 1'000'000'000) die("not settled within 600 s");
    }
    merged_at_ns = ns_since_t0();
  });

  std::atomic<int64_t> ingested_at_ns{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < o.clients; ++c) {
    clients.emplace_back([&, c] {
      std::vector<size_t> mine;
      for (size_t i = 0; i < drafts.size(); ++i) {
        if (static_cast<int>(i % static_cast<size_t>(o.records)) % o.clients == c) {
          mine.push_back(i);
        }
      }
      httplib::Client client("127.0.0.1", http.port());
      client.set_read_timeout(120, 0);
      client.set_tcp_nodelay(true);
      const httplib::Headers headers = {{"Authorization", "Bearer " + *token}};
      // Paced: this client's batches are due at even intervals.
      const double interval_ns = rate > 0 ? 1e9 * o.batch * o.clients / rate : 0;
      size_t k = 0;
      for (size_t at = 0; at < mine.size(); at += static_cast<size_t>(o.batch), ++k) {
        const size_t end = std::min(mine.size(), at + static_cast<size_t>(o.batch));
        std::string body = "[";
        for (size_t j = at; j < end; ++j) {
          if (j > at) body += ",";
          body += draft_json(drafts[mine[j]]);
        }
        body += "]";
        int64_t due = ns_since_t0();
        if (rate > 0) {
          // Clients take turns, so that batches arrive evenly spread.
          due = static_cast<int64_t>(interval_ns *
                                     (static_cast<double>(k) + static_cast<double>(c) / o.clients));
          const int64_t wait = due - ns_since_t0();
          if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
        }
        for (size_t j = at; j < end; ++j) due_ns[mine[j]] = due;
        auto res = client.Post("/v1/envs/" + env + "/events", headers, body, "application/json");
        if (!res) die("POST failed: " + httplib::to_string(res.error()));
        if (res->status != 201) die("POST answered " + std::to_string(res->status) + res->body);
        const int64_t answered = ns_since_t0();
        for (size_t j = at; j < end; ++j) answered_ns[mine[j]] = answered;
      }
      int64_t now = ns_since_t0(), prev = ingested_at_ns.load();
      while (now > prev && !ingested_at_ns.compare_exchange_weak(prev, now)) {
      }
    });
  }
  for (auto& t : clients) t.join();
  watcher.join();
  // A merged message may come before the client has read its batch's answer: that part is 0.
  for (const auto& [i, at] : merged_ns) {
    const int64_t answered = std::min(answered_ns[i].load(), at);
    result.answer_ms.push_back(static_cast<double>(answered - due_ns[i].load()) / 1e6);
    result.merge_ms.push_back(static_cast<double>(at - answered) / 1e6);
  }
  result.ingest_per_s = static_cast<double>(drafts.size()) / (ingested_at_ns.load() / 1e9);
  result.end_to_end_per_s = static_cast<double>(drafts.size()) / (merged_at_ns.load() / 1e9);
  result.cpu_us_per_event = (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(drafts.size());
  result.bytes_per_event = (written_bytes() - written0) / static_cast<double>(drafts.size());
  http.stop();
  server.join();
  (*app)->stop();
  return result;
}

}  // namespace
}  // namespace backbone::bench

int main(int argc, char** argv) {
  using namespace backbone;
  using namespace backbone::bench;
  Options o;
  CLI::App cli{"bench/pipeline: HTTP ingest until merged, against plain SQLite inserts"};
  cli.add_option("--events", o.events, "Events per run");
  cli.add_option("--records", o.records, "Records they touch");
  cli.add_option("--batch", o.batch, "Events per HTTP request (and per floor transaction)");
  cli.add_option("--clients", o.clients, "Concurrent HTTP clients");
  cli.add_option("--rounds", o.rounds, "Peak rounds (the median is reported)");
  cli.add_option("--dir", o.dir, "Scratch folder");
  cli.add_flag("!--no-half-load", o.half_load, "Skip the half-load latency run");
  cli.add_option("--rate", o.rate, "Offered load of the paced run, ev/s (default: half the peak)");
  CLI11_PARSE(cli, argc, argv);
  std::filesystem::create_directories(o.dir);
  const std::vector<EventDraft> drafts = make_drafts(o.events, o.records);
  SystemClock& clock = SystemClock::instance();
  EventIdGenerator ids(clock);
  const std::vector<Event> events = make_events(drafts, ids, clock);
  const std::vector<AuditEntry> audit = ingested_entries(events, ids, clock);
  const MergeRows merges = merge_rows(events, ids, clock, audit.back().chain_hash);
  constexpr size_t kMergePull = 500;  // the merge stage's pull (src/pipeline/pipeline.cc)

  std::printf("bench/pipeline  machine: %s\n", machine_description().c_str());
  std::printf(
      "events: %d over %d records, batch: %d, clients: %d, changes: %zu B average, durability: "
      "fsync (FULL), SQLite %s\n",
      o.events, o.records, o.batch, o.clients, average_changes_bytes(events), sqlite3_libversion());
  std::vector<double> ingest, e2e, floor, ratio, spec, spec_ratio;
  for (int r = 0; r < o.rounds; ++r) {
    RunResult res = run(o, drafts, 0);
    ingest.push_back(res.ingest_per_s);
    e2e.push_back(res.end_to_end_per_s);
    const double floor_written0 = written_bytes();
    floor.push_back(run_sqlite_floor(o.dir + "-floor.db", events, audit,
                                     static_cast<size_t>(o.batch), Durability::kFsync));
    ratio.push_back(e2e.back() / floor.back());
    const double floor_bytes =
        (written_bytes() - floor_written0) / static_cast<double>(events.size());
    const double spec_written0 = written_bytes();
    spec.push_back(run_spec_floor(o.dir + "-spec-floor.db", events, audit, merges,
                                  static_cast<size_t>(o.batch), kMergePull, Durability::kFsync));
    spec_ratio.push_back(e2e.back() / spec.back());
    const double spec_bytes =
        (written_bytes() - spec_written0) / static_cast<double>(events.size());
    std::printf(
        "  round %d: ingest %.0f ev/s, end to end %.0f ev/s (per event: %.0f us CPU, %.0f B "
        "written), floor %.0f rows/s (%.0f B written per row), SPEC floor %.0f ev/s (%.0f B "
        "written per event)\n",
        r + 1, ingest.back(), e2e.back(), res.cpu_us_per_event, res.bytes_per_event, floor.back(),
        floor_bytes, spec.back(), spec_bytes);
  }
  std::printf("%-34s %12s %12s %12s %8s %14s %8s\n", "", "ingest ev/s", "e2e ev/s", "floor ev/s",
              "ratio", "SPEC floor", "ratio");
  std::printf("%-34s %12.0f %12.0f %12.0f %8.2f %14.0f %8.2f\n", "peak (median of rounds)",
              median(ingest), median(e2e), median(floor), median(ratio), median(spec),
              median(spec_ratio));
  if (!o.half_load) return 0;
  const double half = o.rate > 0 ? o.rate : median(e2e) / 2;
  RunResult paced = run(o, drafts, half);
  std::printf(
      "half load: %.0f ev/s offered, end to end %.0f ev/s; ingest->merged latency ms: "
      "p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n",
      half, paced.end_to_end_per_s, percentile(paced.latency_ms, 0.50),
      percentile(paced.latency_ms, 0.95), percentile(paced.latency_ms, 0.99),
      percentile(paced.latency_ms, 1.0));
  for (const auto& [name, v] : {std::pair{"due -> batch answered", &paced.answer_ms},
                                std::pair{"answered -> merged", &paced.merge_ms}}) {
    std::printf("  of which %-22s p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n", name,
                percentile(*v, 0.50), percentile(*v, 0.95), percentile(*v, 0.99),
                percentile(*v, 1.0));
  }
  std::printf(
      "ratio = median over rounds of end-to-end / floor (plain inserts of the append's rows), and "
      "of end-to-end / SPEC floor (SPEC §2's statements per event, in the pipeline's transaction "
      "grouping), each round run back to back\n");
  return 0;
}
