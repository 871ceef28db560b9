// Several `backbone serve` processes of one environment, on PostgreSQL and NATS: they find each
// other through the environment's store and split its buckets evenly; SIGTERM hands a process's
// buckets over at once, and SIGKILL once its lease has run out (doc/scale_out.md).
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "auth/tokens.h"
#include "serve_process.h"
#include "store/server_harness.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kBuckets = 8;
constexpr int kTtlMs = 3000;

// GET /v1/envs/sandbox/cluster of the process on `port`, once its view is newer than `since`
// (at most `wait_ms`); null when it does not answer.
json cluster(int port, const std::string& token, uint64_t since = 0, int wait_ms = 0) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2);
  c.set_read_timeout(wait_ms / 1000 + 5);
  auto r = c.Get("/v1/envs/sandbox/cluster?since=" + std::to_string(since) +
                     "&wait_ms=" + std::to_string(wait_ms),
                 {{"Authorization", "Bearer " + token}});
  if (!r || r->status != 200) return nullptr;
  return json::parse(r->body);
}

// Bucket counts by member address, of members that own any, as `port` sees them.
std::map<std::string, int> shares(const json& view) {
  std::map<std::string, int> out;
  if (view.is_null()) return out;
  for (const auto& m : view["members"]) {
    if (m["buckets"].get<int>() > 0) out[m["address"]] = m["buckets"];
  }
  return out;
}

// Waits (at most 30 s) until `done` holds for the view from `port`, each request answered when
// that view changes; returns the time it took.
std::chrono::milliseconds wait_for(int port, const std::string& token,
                                   const std::function<bool(const json&)>& done) {
  const auto t0 = Clock::now();
  uint64_t since = 0;
  while (Clock::now() - t0 < 30s) {
    const json v = cluster(port, token, since, 5'000);
    if (v.is_null()) break;
    if (done(v)) return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    since = v["version"];
  }
  ADD_FAILURE() << "not reached in 30 s; last view: " << cluster(port, token).dump();
  return 30s;
}

TEST(ServeCluster, ProcessesSplitTheBucketsAndHandThemOverWhenTheyGo) {
  { BACKBONE_REQUIRE_TEST_SERVER("postgresql"); }
  { BACKBONE_REQUIRE_TEST_SERVER("nats"); }
  set_test_role_passwords();
  ServerHarness db(test_server_url("postgresql"));
  TempDir dir;
  const std::string broker =
      test_server_url("nats") + "?namespace=cluster" + std::to_string(::getpid());
  const std::string config = write_serve_config(dir.path(), db.url(), broker, "127.0.0.1:0");
  std::ofstream(config, std::ios::app)
      << "[cluster]\nbuckets = " << kBuckets << "\nlease_ttl_ms = " << kTtlMs << "\n";
  auto tokens = auth::TokenStore::open(dir.file("tokens.json"));
  const std::string token = *tokens->create("cluster", "sandbox", {"read"});

  const int base = 18900 + static_cast<int>(::getpid() % 30) * 3;
  const std::string a_addr = "http://127.0.0.1:" + std::to_string(base);
  const std::string b_addr = "http://127.0.0.1:" + std::to_string(base + 1);
  const std::string c_addr = "http://127.0.0.1:" + std::to_string(base + 2);
  ServeProcess a(config, base), b(config, base + 1), c(config, base + 2);
  a.start();
  ASSERT_TRUE(a.wait_ready());
  wait_for(base, token, [&](const json& v) {
    return v["buckets"] == kBuckets && shares(v) == std::map<std::string, int>{{a_addr, 8}};
  });

  b.start();
  ASSERT_TRUE(b.wait_ready());
  const auto joined = wait_for(base, token, [&](const json& v) {
    return shares(v) == std::map<std::string, int>{{a_addr, 4}, {b_addr, 4}} && v["unowned"] == 0;
  });
  c.start();
  ASSERT_TRUE(c.wait_ready());
  wait_for(base + 2, token, [&](const json& v) {
    auto s = shares(v);
    return s.size() == 3 && s[a_addr] + s[b_addr] + s[c_addr] == kBuckets && s[a_addr] == 3 &&
           v["unowned"] == 0;
  });

  // SIGTERM: B hands its buckets over as it stops, with no lease to run out.
  const auto term_at = Clock::now();
  const int status = b.kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  wait_for(base, token, [&](const json& v) {
    return shares(v) == std::map<std::string, int>{{a_addr, 4}, {c_addr, 4}} && v["unowned"] == 0;
  });
  const auto handed_over =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - term_at);
  EXPECT_LT(handed_over.count(), kTtlMs) << "the buckets waited for the lease to run out";

  // SIGKILL: C's buckets wait out its lease, then A takes them.
  const auto kill_at = Clock::now();
  c.kill(SIGKILL);
  wait_for(base, token, [&](const json& v) {
    return shares(v) == std::map<std::string, int>{{a_addr, 8}};
  });
  const auto taken_over =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - kill_at);
  EXPECT_GE(taken_over.count(), kTtlMs) << "taken before the lease ran out";
  std::printf(
      "serve cluster: join balanced in %lld ms; SIGTERM handed over in %lld ms; SIGKILL taken "
      "over in %lld ms (ttl %d ms)\n",
      static_cast<long long>(joined.count()), static_cast<long long>(handed_over.count()),
      static_cast<long long>(taken_over.count()), kTtlMs);
  EXPECT_EQ(a.kill(SIGTERM) & 0x7f, 0);
}

}  // namespace
}  // namespace backbone::testing
