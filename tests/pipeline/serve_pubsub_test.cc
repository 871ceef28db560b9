// The main job on Google Cloud Pub/Sub: `backbone stress --url` through `serve` with a pubsub://
// broker, against Google's emulator and against backbone's own Pub/Sub front as the endpoint,
// with one `serve` process and with two on one store. Each run must end with every check of the
// stress verifier green: nothing lost or applied twice, per-record order on the merged topic,
// the DLQ count right, records equal to the reference fold, the audit chain intact.
//
// 20,000 events a run; under the sanitizers 2,000 (the same paths, at a cost the test cycle
// can carry), and there one process only: the code each process runs is the one-process runs'
// (pubsub:// shares its subscriptions however many processes pull them), and the two-process
// runs under the sanitizers took 160 s of a fresh `make test`. Two processes through the front
// run 5,000 events: four backbone processes and MariaDB on two cores, alongside the sanitizer
// build, took over 300 s at 20,000 (62 s alone), more than the test cycle's 15 minutes carry.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "auth/tokens.h"
#include "serve_process.h"
#include "store/server_harness.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

using nlohmann::json;

#ifdef BACKBONE_SANITIZED
constexpr int kEvents = 2'000;
#else
constexpr int kEvents = 20'000;
#endif
constexpr int kFrontTwoProcessEvents = 5'000;
constexpr const char* kFrontTokenVar = "BACKBONE_TEST_FRONT_TOKEN";

class ServePubsub : public ::testing::Test {
 protected:
  // `stress --url` through every process in turn (its batches spread over them); its report,
  // checked green.
  void stress_through(const std::string& config, const std::vector<int>& ports, int events) {
    auto [created, token] = run_cli("--config " + config +
                                    " --json token create --env sandbox --roles "
                                    "publish,read,subscribe 2>/dev/null");
    ASSERT_EQ(created, 0) << token;
    token = json::parse(token)["token"];
    auto [status, out] = run_cli(
        "--config " + config + " --json --env sandbox stress" + urls(ports) + " --token " + token +
        " --events " + std::to_string(events) + " --records 300 --poison-rate 0.01 --timeout 600");
    ASSERT_EQ(status, 0) << out;
    const json report = json::parse(out, nullptr, false);
    ASSERT_TRUE(report.is_object()) << out;
    EXPECT_EQ(report["ok"], true) << out;
    EXPECT_TRUE(report["violations"].empty()) << out;
    EXPECT_EQ(report["events"], events);
    EXPECT_GT(report["merged"].get<int>(), events * 9 / 10) << out;
    EXPECT_GT(report["audit_entries_checked"].get<int>(), events) << out;
    std::printf("stress through pubsub://: %s\n", out.c_str());
  }

  static std::string urls(const std::vector<int>& ports) {
    std::string out;
    for (int p : ports) out += " --url http://127.0.0.1:" + std::to_string(p);
    return out;
  }

  // One or two `serve` processes of the sandbox on `store` and `broker`, each checked to have
  // merged part of the work.
  // `db`: where the run's store is a server, to report how often events waited for a retry.
  void run(const std::string& store, const std::string& broker, int processes,
           StoreHarness* db = nullptr, int events = kEvents) {
    const std::string config = write_serve_config(dir_.file(""), store, broker, "off");
    std::vector<std::unique_ptr<ServeProcess>> serves;
    std::vector<int> ports;
    for (int i = 0; i < processes; ++i) {
      ports.push_back(free_loopback_port());
      serves.push_back(std::make_unique<ServeProcess>(config, ports.back()));
      serves.back()->start();
      ASSERT_TRUE(serves.back()->wait_ready()) << "serve " << i << " did not start";
    }
    stress_through(config, ports, events);
    if (db) {
      auto retries = [&](const char* failure) {
        auto n = db->raw_query_int(Role::kReader,
                                   "SELECT COUNT(*) FROM event_audit_log WHERE action = "
                                   "'retry_scheduled' AND detail LIKE '%\"failure\":\"" +
                                       std::string(failure) + "\"%'");
        return n.ok() ? *n : -1;
      };
      std::printf("retries scheduled: %lld for a gap, %lld after a transient failure\n",
                  static_cast<long long>(retries("gap")),
                  static_cast<long long>(retries("transient")));
    }
    if (::testing::Test::HasFailure()) {
      for (int p : ports) {
        httplib::Client c("127.0.0.1", p);
        auto m = c.Get("/metrics");
        if (m) {
          std::istringstream in(m->body);
          for (std::string line; std::getline(in, line);) {
            if (line.find("subscription_client") != std::string::npos ||
                line.find("_events_total") != std::string::npos)
              std::printf("serve :%d %s\n", p, line.c_str());
          }
        }
      }
    }
    for (int i = 0; i < processes; ++i) {
      EXPECT_GT(counter_sum(ports[i], "backbone_merged_events_total"), 0)
          << "serve " << i << " merged nothing";
    }
    for (auto& s : serves) EXPECT_EQ(s->kill(SIGTERM) & 0x7f, 0);
  }

  std::string emulator_broker() {
    static int next = 0;
    return "pubsub://serve-" + std::to_string(::getpid()) + "-" + std::to_string(next++) +
           "?endpoint=127.0.0.1:" + std::to_string(google_emulator_port());
  }

  // backbone's own front: a `serve` of the production environment on an embedded broker, its
  // Pub/Sub front on a port of its own, reached with a sandbox token (the processes under test
  // provision the sandbox's topology through it).
  std::string front_broker() {
    const int front_port = free_loopback_port();
    const std::string config =
        write_serve_config(front_dir_.file(""), "127.0.0.1:" + std::to_string(front_port));
    // The front serves production; the sandbox token is in sandbox's store, which it reads.
    auto [made, out] = run_cli("--config " + config +
                               " --env sandbox --json token create --roles admin,pipeline --name "
                               "pubsub-backend");
    EXPECT_EQ(made, 0) << out;
    const std::string token = json::parse(out)["token"];
    ::setenv(kFrontTokenVar, token.c_str(), 1);
    // The front serves the topology's resources but does not make them: `provision` does.
    EXPECT_EQ(run_cli("--config " + config + " --env sandbox provision > /dev/null").first, 0);
    front_ = std::make_unique<ServeProcess>(config, free_loopback_port());
    front_->serve_env("production");
    front_->start();
    EXPECT_TRUE(front_->wait_ready());
    EXPECT_TRUE(wait_for_port(front_port, 10'000));
    return "pubsub://backbone-local?endpoint=127.0.0.1:" + std::to_string(front_port) +
           "&token_env=" + kFrontTokenVar;
  }

  void TearDown() override {
    if (front_) {
      EXPECT_EQ(front_->kill(SIGTERM) & 0x7f, 0);
    }
  }

  TempDir dir_, front_dir_;
  std::unique_ptr<ServeProcess> front_;
};

#define REQUIRE_EMULATOR()                                                                        \
  if (!google_emulator_installed()) {                                                             \
    GTEST_SKIP() << "Google's Pub/Sub emulator is not installed (" << kGoogleEmulator             \
                 << "; package google-cloud-cli-pubsub-emulator): the run against it is skipped"; \
  }                                                                                               \
  ASSERT_GT(google_emulator_port(), 0) << "the emulator did not start"

// The default topology against the emulator: the inspect subscription's 31 days are above
// the emulator's 7, so it is made at 7 with a warning, and `topology show` reports the
// difference as drift. Provisioning again changes nothing and succeeds.

TEST_F(ServePubsub, ProvisionOnGooglesEmulatorClampsRetentionWithAWarningAndShowsDrift) {
  REQUIRE_EMULATOR();
  const std::string config = write_serve_config(dir_.file(""), "sqlite://" + dir_.file("{env}.db"),
                                                emulator_broker(), "off");
  const std::string inspect = "events.dlq.sandbox.inspect";
  auto [status, out] = run_cli("--config " + config + " --env sandbox provision 2>&1");
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("warning: " + inspect + ": retention: broker 7d, config 31d"),
            std::string::npos)
      << out;

  auto [shown, text] = run_cli("--config " + config + " --env sandbox --json topology show");
  ASSERT_EQ(shown, 0) << text;
  const json topology = json::parse(text, nullptr, false);
  ASSERT_TRUE(topology.is_object()) << text;
  bool found = false;
  for (const json& sub : topology["environments"][0]["subscriptions"]) {
    if (sub["name"] == inspect) {
      found = true;
      EXPECT_EQ(sub["state"], "drift") << sub.dump();
      EXPECT_EQ(sub["differences"], json::array({"retention: broker 7d, config 31d"}))
          << sub.dump();
      // The emulator has no backlog API: the figures are said to be unknown.
      EXPECT_TRUE(sub["backlog"]["undelivered"].is_null()) << sub.dump();
    } else {
      EXPECT_EQ(sub["state"], "ok") << sub.dump();
    }
  }
  EXPECT_TRUE(found) << text;

  // Again: the drift is the emulator's limit, which an update cannot change, so nothing fails.
  auto [again, second] = run_cli("--config " + config + " --env sandbox provision 2>&1");
  EXPECT_EQ(again, 0) << second;
}

TEST_F(ServePubsub, OneProcessOnGooglesEmulator) {
  REQUIRE_EMULATOR();
  run("sqlite://" + dir_.file("{env}.db"), emulator_broker(), 1);
}

// Pub/Sub spreads a subscription's keys over every subscriber: a message may reach the second
// process while the first still has it, and an event parked by one waits for a version the
// other merges. The store's version check and `processed` decide, and parked events are found
// in the store (doc/broker.md, "What runs where on pubsub://").
TEST_F(ServePubsub, TwoProcessesOnGooglesEmulatorShareTheWork) {
  REQUIRE_EMULATOR();
  SKIP_UNDER_SANITIZERS();
  { BACKBONE_REQUIRE_TEST_SERVER("mysql"); }
  set_test_role_passwords();
  ServerHarness db(test_server_url("mysql"));
  run(db.url(), emulator_broker(), 2, &db);
}

// backbone's own front as the endpoint: the processes under test pull their stages'
// subscriptions through it with the pipeline role.
TEST_F(ServePubsub, OneProcessOnBackbonesFront) {
  run("sqlite://" + dir_.file("{env}.db"), front_broker(), 1);
}

TEST_F(ServePubsub, TwoProcessesOnBackbonesFrontShareTheWork) {
  SKIP_UNDER_SANITIZERS();
  { BACKBONE_REQUIRE_TEST_SERVER("mysql"); }
  set_test_role_passwords();
  ServerHarness db(test_server_url("mysql"));
  run(db.url(), front_broker(), 2, &db, kFrontTwoProcessEvents);
}

}  // namespace
}  // namespace backbone::testing
