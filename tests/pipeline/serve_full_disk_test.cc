// `backbone serve` on a full disk: its SQLite store and embedded broker live on a small tmpfs,
// filled up while a checked workload is ingested over HTTP. Ingest then answers 503 with a clear
// error (and `backbone publish` fails the same way, writing nothing), the process survives a
// SIGKILL and a start on the full disk, and once space is freed ingest resumes by itself, with
// no restart. Then the workload is sent to its end and the stress verifier checks what
// survived: nothing acknowledged lost, nothing applied twice, per-record order, and no file
// left damaged (SQLite's integrity check, the audit chain, a broker reopen that cuts nothing).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "auth/tokens.h"
#include "pipeline/serve_checks.h"
#include "serve_process.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite_harness.h"
#include "stress/generator.h"
#include "stress/http_target.h"
#include "tmpfs.h"

namespace backbone::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::map<std::string, uintmax_t> sizes_of_files(const std::string& dir) {
  std::map<std::string, uintmax_t> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[e.path().string()] = e.file_size();
  }
  return out;
}

// What lives on the small tmpfs: the store and the broker (the store fills first), or the
// broker alone (ingest stores the events, and publishing them fails).
struct FullDiskCase {
  const char* name;
  bool store_on_it;
};

class ServeFullDisk : public ::testing::TestWithParam<FullDiskCase> {};

TEST_P(ServeFullDisk, IngestAnswers503WhileFullLosesNothingAndResumesOnceSpaceIsFreed) {
  Tmpfs fs(64 << 20);
  if (!fs.mounted()) GTEST_SKIP() << fs.why_not();
  TempDir dir;  // the configuration, the tokens, and the store when it is not on the tmpfs
  const bool store_full = GetParam().store_on_it;
  const int port = 19100 + static_cast<int>(::getpid() % 100) * 2 + (store_full ? 0 : 1);
  const std::string store_dir = store_full ? fs.file("") : dir.file("");
  const std::string store_url = "sqlite://" + store_dir + "{env}.db";
  const std::string sandbox_store = "sqlite://" + store_dir + "sandbox.db";
  const std::string broker_url = "embedded://" + fs.file("broker") + "?segment_bytes=1048576";
  const std::string config = write_serve_config(dir.file(""), store_url, broker_url, "127.0.0.1:0");
  const Watchers watchers = provision_watched(broker_url, {"sandbox", "production"});
  auto tokens = auth::TokenFile::open(dir.file("tokens.json"));
  const std::string token = *tokens->create("full-disk", "sandbox", {"publish", "read"});

  stress::WorkloadOptions wo;
  wo.events = 3000;
  wo.records = 40;
  wo.poison_rate = 0;
  wo.seed = 11;
  stress::Workload workload(wo);
  const auto& drafts = workload.events();

  // Three events of other records for `backbone publish`.
  const std::string cli_file = dir.file("cli.jsonl");
  {
    std::ofstream out(cli_file);
    for (int i = 0; i < 3; ++i) {
      out << json{{"record_type", "contact"},
                  {"record_id", "full-disk-cli-" + std::to_string(i)},
                  {"source", "crm"},
                  {"base_version", 0},
                  {"changes", {{"name", "n" + std::to_string(i)}}}}
                 .dump()
          << "\n";
    }
  }
  const std::string cli_publish =
      "--config " + config + " --env sandbox --json publish --file " + cli_file + " 2>&1";

  ServeProcess serve(config, port);
  serve.start();
  ASSERT_TRUE(serve.wait_ready());
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(30);
  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  auto post = [&](const std::string& body) {
    return client.Post("/v1/envs/sandbox/events", auth, body, "application/json");
  };

  // Leave a few MiB: the disk fills within the first part of the workload.
  ASSERT_TRUE(fs.fill(store_full ? 3 << 20 : 512 << 10));
  std::vector<EventId> sent;
  // An event of a record outside the workload.
  auto probe = [](int n) {
    return json::array({{{"record_type", "contact"},
                         {"record_id", "full-disk-probe-" + std::to_string(n)},
                         {"source", "crm"},
                         {"base_version", 0},
                         {"changes", {{"name", "probe"}}}}})
        .dump();
  };
  auto acknowledged = [&](const std::string& body) {
    const json answer = json::parse(body);
    for (const auto& e : answer["events"]) {
      sent.push_back(*EventId::parse(e["id"].get<std::string>()));
    }
  };
  size_t acknowledged_before_full = 0;
  std::string first_refusal;
  bool filled = false;
  std::optional<std::chrono::milliseconds> resumed_after;
  const size_t batch = 10;
  for (size_t i = 0; i < drafts.size(); i += batch) {
    const std::string body =
        stress::ingest_body(std::span(drafts).subspan(i, std::min(drafts.size(), i + batch) - i));
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 2) << "batch " << i / batch << " was never taken";
      auto r = post(body);
      ASSERT_TRUE(r) << "no answer: " << httplib::to_string(r.error());
      if (r->status == 201) {
        acknowledged(r->body);
        break;
      }
      ASSERT_EQ(r->status, 503) << r->body;
      const json err = json::parse(r->body)["error"];
      EXPECT_EQ(err["code"], "unavailable");
      EXPECT_NE(err["message"].get<std::string>().find("the disk is full"), std::string::npos)
          << r->body;
      EXPECT_EQ(r->get_header_value("Retry-After"), "1");
      // Once space came back, nothing is refused again.
      ASSERT_FALSE(filled) << "batch " << i / batch << " refused after the space came back";
      filled = true;
      first_refusal = err["message"];
      acknowledged_before_full = sent.size();
      // The disk is full. The process answers, and keeps answering.
      auto health = client.Get("/healthz");
      ASSERT_TRUE(health && health->status == 200);
      // With the store full, `backbone publish` fails as clearly, with its exit status for
      // "unavailable", and writes nothing (checked below: the same lines are not duplicates once
      // they are stored). With the broker full, it stores them, for the relay.
      auto [status, out] = run_cli(cli_publish);
      if (store_full) {
        EXPECT_EQ(status, 6) << out;
        EXPECT_NE(out.find("the disk is full"), std::string::npos) << out;
      } else {
        EXPECT_EQ(status, 0) << out;
      }
      // Killed and started again on the full disk: it starts, and still answers 503.
      EXPECT_TRUE(WIFSIGNALED(serve.kill(SIGKILL)));
      serve.start();
      ASSERT_TRUE(serve.wait_ready()) << "serve did not start on a full disk";
      // New events (not a resend: events stored already are answered as duplicates, the relay
      // publishing them).
      EXPECT_EQ(post(probe(0))->status, 503);
      // Space comes back: the very next new event is taken, without a restart (the store's next
      // transaction succeeds; the broker writes its held batch again when a call comes).
      fs.free_filler();
      const auto freed = std::chrono::steady_clock::now();
      auto r2 = post(probe(1));
      ASSERT_TRUE(r2);
      ASSERT_EQ(r2->status, 201) << "ingest did not resume once space was freed: " << r2->body;
      resumed_after = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - freed);
      // And the refused batch is sent again, as a client would.
    }
  }
  ASSERT_TRUE(filled) << "the disk never filled";

  // `backbone publish` works again; a failed attempt had written nothing.
  auto [status, out] = run_cli(cli_publish);
  ASSERT_EQ(status, 0) << out;
  const json published = json::parse(out);
  ASSERT_EQ(published["events"].size(), 3u);
  for (const auto& e : published["events"]) {
    EXPECT_EQ(e["duplicate"].get<bool>(), !store_full) << out;
  }

  // Every event, the workload's and the CLI's (relayed by the server), is processed.
  const std::string left = wait_drained(port, token, sandbox_store, 120'000);
  ASSERT_TRUE(left.empty()) << "not drained: " << left;
  const int stopped = serve.kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(stopped) && WEXITSTATUS(stopped) == 0) << stopped;

  // No file is left damaged.
  {
    auto db = sqlite::SqliteDb::open(store_dir + "sandbox.db", Role::kMigrator, Durability::kFsync);
    ASSERT_TRUE(db.ok()) << db.error().describe();
    auto check = (*db)->prepare("PRAGMA integrity_check");
    ASSERT_TRUE(check.ok());
    auto row = (*check)->step();
    ASSERT_TRUE(row.ok() && *row);
    EXPECT_EQ((*check)->text(0), "ok");
  }
  const auto before = sizes_of_files(fs.file("broker"));
  BrokerOptions bo;
  bo.url = broker_url;
  auto broker = Broker::open(bo);
  ASSERT_TRUE(broker.ok()) << broker.error().describe();
  EXPECT_EQ(sizes_of_files(fs.file("broker")), before) << "the broker's recovery cut a file";

  std::string problems;
  auto report = verify_run(sandbox_store, **broker, watchers, sent, problems);
  ASSERT_TRUE(report.ok()) << report.error().describe();
  EXPECT_TRUE(report->ok()) << problems;
  std::printf(
      "full-disk test (%s): the disk full after %zu events (\"%s\"); ingest resumed %lld ms after "
      "space was freed; %zu events acknowledged in all, %zu merged, %zu rejected\n",
      GetParam().name, acknowledged_before_full, first_refusal.c_str(),
      static_cast<long long>(resumed_after->count()), sent.size(), report->merged,
      report->rejected);
}

INSTANTIATE_TEST_SUITE_P(Disks, ServeFullDisk,
                         ::testing::Values(FullDiskCase{"store_and_broker", true},
                                           FullDiskCase{"broker", false}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace backbone::testing
