// `backbone serve` under SIGKILL: a client sends a checked workload over HTTP (resending a
// batch until it is answered; a resent batch is answered as duplicates), while the server
// process is killed with SIGKILL at random moments and started again. Then the server drains,
// stops, and the stress verifier checks the store and the broker: nothing lost, nothing applied
// twice, per-record order on the merged topic, and records equal to the reference fold.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "auth/tokens.h"
#include "backbone/event_json.h"
#include "backbone/topology.h"
#include "pipeline/serve_checks.h"
#include "serve_process.h"
#include "store/sqlite_harness.h"
#include "stress/generator.h"
#include "stress/http_target.h"
#include "stress/verify.h"

namespace backbone::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST(ServeFault, NothingIsLostOrAppliedTwiceAcrossSigkills) {
  TempDir dir;
  const int port = 18600 + static_cast<int>(::getpid() % 300);
  const std::string config = write_serve_config(dir.file(""), "127.0.0.1:0");
  const Watchers watchers =
      provision_watched("embedded://" + dir.file("broker"), {"sandbox", "production"});
  auto tokens = auth::TokenFile::open(dir.file("tokens.json"));
  const std::string token = *tokens->create("fault", "sandbox", {"publish", "read"});

  stress::WorkloadOptions wo;
  wo.events = 6000;
  wo.records = 60;
  wo.poison_rate = 0;
  wo.seed = 7;
  stress::Workload workload(wo);
  const auto& drafts = workload.events();

  ServeProcess serve(config, port);
  serve.start();
  ASSERT_TRUE(serve.wait_ready());
  std::atomic<bool> sending{true};
  std::mutex serve_mu;
  int kills = 0;
  std::thread killer([&] {
    std::mt19937 rng(20261128);
    while (sending && kills < 4) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 300));
      if (!sending) break;
      std::lock_guard lk(serve_mu);
      const int status = serve.kill(SIGKILL);
      EXPECT_TRUE(WIFSIGNALED(status));
      ++kills;
      serve.start();
      EXPECT_TRUE(serve.wait_ready());
    }
  });
  std::vector<EventId> sent;
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(10);
  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  const size_t batch = 10;
  for (size_t i = 0; i < drafts.size(); i += batch) {
    const std::string body =
        stress::ingest_body(std::span(drafts).subspan(i, std::min(drafts.size(), i + batch) - i));
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 600) << "the server did not come back";
      if (auto ids = post_events(port, token, body)) {
        sent.insert(sent.end(), ids->begin(), ids->end());
        break;
      }
      std::this_thread::sleep_for(50ms);  // the server is being restarted
    }
  }
  sending = false;
  killer.join();
  EXPECT_GE(kills, 2) << "the workload ended before the faults it was meant to meet";

  // Drain: wait until the merge stage has nothing left (at most 120 s).
  const std::string store_url = "sqlite://" + dir.file("sandbox.db");
  const std::string left = wait_drained(port, token, store_url, 120'000);
  ASSERT_TRUE(left.empty()) << "not drained: " << left;
  {
    std::lock_guard lk(serve_mu);
    const int status = serve.kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }

  BrokerOptions bo;
  bo.url = "embedded://" + dir.file("broker");
  auto broker = Broker::open(bo);
  ASSERT_TRUE(broker.ok());
  std::string problems;
  auto report = verify_run(store_url, **broker, watchers, sent, problems);
  ASSERT_TRUE(report.ok()) << report.error().describe();
  EXPECT_TRUE(report->ok()) << problems;

  // A restart publishes again only what the broker may not hold: the events stored since the
  // last group that the outbox heard was published (one request's batch at a time here), not
  // the unprocessed backlog.
  std::map<std::string, int> copies;
  size_t raw_messages = 0;
  for (;;) {
    auto got = (*broker)->pull(watchers.raw, 1000);
    ASSERT_TRUE(got.ok()) << got.error().describe();
    if (got->empty()) break;
    std::vector<std::string> acks;
    for (const ReceivedMessage& m : *got) {
      ++copies[m.message.attributes.count("event_id") ? m.message.attributes.at("event_id") : ""];
      acks.push_back(m.ack_id);
    }
    raw_messages += got->size();
    ASSERT_TRUE((*broker)->ack(watchers.raw, acks).ok());
  }
  const std::set<EventId> stored(sent.begin(), sent.end());
  EXPECT_EQ(copies.size(), stored.size()) << "every stored event was published";
  const size_t extra = raw_messages - copies.size();
  EXPECT_LE(extra, static_cast<size_t>(kills) * 2 * batch)
      << "restarts published the backlog again: " << extra << " copies beyond " << copies.size();
  std::printf(
      "serve fault test: %d SIGKILLs, %zu events sent, %zu merged, %zu rejected; raw topic: %zu "
      "messages for %zu events\n",
      kills, sent.size(), report->merged, report->rejected, raw_messages, copies.size());
}

TEST(ServeStress, StressAgainstARunningServerPassesItsChecks) {
  TempDir dir;
  const int port = 18300 + static_cast<int>(::getpid() % 300);
  const std::string config = write_serve_config(dir.file(""), "127.0.0.1:0");
  ServeProcess serve(config, port);
  serve.start();
  ASSERT_TRUE(serve.wait_ready());
  // Made while the server runs: it must know the token at once.
  auto [created, token] = run_cli("--config " + config +
                                  " --json token create --env sandbox --roles publish,read,"
                                  "subscribe 2>/dev/null");
  ASSERT_EQ(created, 0);
  token = json::parse(token)["token"];
  const std::string url = " --url http://127.0.0.1:" + std::to_string(port);
  auto [status, out] = run_cli("--config " + config + " --json stress" + url + " --token " + token +
                               " --events 3000 --records 60 --poison-rate 0.01");
  ASSERT_EQ(status, 0) << out;
  const json report = json::parse(out);
  EXPECT_EQ(report["ok"], true) << out;
  EXPECT_GT(report["merged"].get<int>(), 2500);
  EXPECT_GT(report["poison"].get<int>(), 0);  // sent, and refused with 400
  // A second run on the same server keeps to its own records; it posts on four connections at
  // once, each record's events through one in order, so its checks (the fold, the merged
  // order) hold as with one.
  auto again =
      run_cli("--config " + config + " --json stress" + url + " --token " + token +
              " --events 1000 --records 20 --seed 9 --connections 4 --batch 25 --timeout 120");
  ASSERT_EQ(again.first, 0) << again.second;
  const json second = json::parse(again.second);
  EXPECT_EQ(second["ok"], true) << again.second;
  EXPECT_GT(second["merged"].get<int>(), 800) << again.second;
  // A token the server does not know.
  auto refused = run_cli("--config " + config + " stress" + url +
                         " --token bb_sandbox_nope --events 10 2>/dev/null");
  EXPECT_NE(refused.first, 0);

  // Events that `backbone publish` stores while serve runs: the relay of the running server
  // publishes them within seconds (the relay's grace, 5 s, and its interval, 2 s).
  {
    std::ofstream f(dir.file("cli.jsonl"));
    for (int v = 0; v < 3; ++v) {
      f << json{{"record_type", "contact"},
                {"record_id", "from-cli"},
                {"source", "crm"},
                {"base_version", v},
                {"changes", {{"n", v + 1}}}}
               .dump()
        << "\n";
    }
  }
  auto [published, ids] = run_cli("--config " + config + " --env sandbox publish --file " +
                                  dir.file("cli.jsonl") + " 2>&1");
  ASSERT_EQ(published, 0) << ids;
  // The server answers once the record reaches version 3 (or after 30 s).
  const auto since = std::chrono::steady_clock::now();
  httplib::Client reader("127.0.0.1", port);
  reader.set_read_timeout(40);
  auto answer = reader.Get("/v1/envs/sandbox/records/contact/from-cli?min_version=3&wait_ms=30000",
                           {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(answer) << "no answer";
  const uint64_t version =
      answer->status == 200 ? json::parse(answer->body)["version"].get<uint64_t>() : 0;
  EXPECT_EQ(version, 3u) << "the events that `backbone publish` stored were not merged in 30 s";
  std::printf("events stored by `backbone publish` merged after %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - since)
                                         .count()));
  EXPECT_EQ(serve.kill(SIGTERM) & 0x7f, 0);
}

}  // namespace
}  // namespace backbone::testing
