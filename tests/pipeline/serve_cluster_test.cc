// Several `backbone serve` processes of one environment, on PostgreSQL or MariaDB and NATS: they
// find each other through the environment's store and split its buckets evenly; SIGTERM hands a
// process's buckets over at once, and SIGKILL once its lease has run out (doc/scale_out.md). And
// the scale-out fault test: a checked workload spread over the processes while they crash,
// stall and join.
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
#include <set>
#include <thread>

#include "auth/tokens.h"
#include "backbone/event_json.h"
#include "backbone/record_key.h"
#include "backbone/topology.h"
#include "pipeline/serve_checks.h"
#include "serve_process.h"
#include "store/server_harness.h"
#include "store/sqlite_harness.h"
#include "stress/generator.h"
#include "stress/http_target.h"
#include "stress/verify.h"
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

// Each bucket's owner in a view, by bucket ("" for none).
std::map<int, std::string> owners(const json& view) {
  std::map<int, std::string> out;
  if (view.is_null()) return out;
  for (const auto& l : view["leases"]) {
    out[l["bucket"].get<int>()] = l["owner"].is_null() ? "" : l["owner"].get<std::string>();
  }
  return out;
}

// One environment's shared engines for several `serve` processes: a fresh database on the
// `database` test server, a namespace of its own on the test nats-server, and a backbone.toml
// with kBuckets buckets and a kTtlMs lease (the tokens in `dir`).
struct ClusterSetup {
  ClusterSetup(const std::string& database, const std::string& ns, const std::string& pubsub_listen)
      : db((set_test_role_passwords(), test_server_url(database))),
        broker_url(test_server_url("nats") + "?namespace=" + ns + std::to_string(::getpid())),
        config(write_serve_config(dir.path(), db.url(), broker_url, pubsub_listen)) {
    std::ofstream(config, std::ios::app)
        << "[cluster]\nbuckets = " << kBuckets << "\nlease_ttl_ms = " << kTtlMs << "\n";
  }
  ServerHarness db;
  TempDir dir;
  std::string broker_url, config;
};

// The status of GET /v1/envs/sandbox/dlq on `port` with `token` (0 when it does not answer).
int dlq_status(int port, const std::string& token) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2);
  c.set_read_timeout(5);
  auto r = c.Get("/v1/envs/sandbox/dlq", {{"Authorization", "Bearer " + token}});
  return r ? r->status : 0;
}

// Asks again and again (each answer paces the next question; at most 10 s) until `token` gets
// `status` on every one of `ports`; the time until the last did.
std::chrono::milliseconds until_status(const std::vector<int>& ports, const std::string& token,
                                       int status) {
  const auto t0 = Clock::now();
  std::set<int> waiting(ports.begin(), ports.end());
  while (!waiting.empty() && Clock::now() - t0 < 10s) {
    for (auto it = waiting.begin(); it != waiting.end();) {
      it = dlq_status(*it, token) == status ? waiting.erase(it) : std::next(it);
    }
  }
  EXPECT_TRUE(waiting.empty()) << waiting.size() << " processes never answered " << status;
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

// Tokens live in the environment's store: one made through one process works on the others
// within 5 s, and one revoked through another stops working on all within 5 s.
TEST(ServeCluster, ATokenMadeOrRevokedThroughOneProcessCountsOnEveryOneWithinFiveSeconds) {
  SKIP_UNDER_SANITIZERS();
  { BACKBONE_REQUIRE_TEST_SERVER("postgresql"); }
  { BACKBONE_REQUIRE_TEST_SERVER("nats"); }
  ClusterSetup setup("postgresql", "tokens", "127.0.0.1:0");
  auto tokens = auth::TokenFile::open(setup.dir.file("tokens.json"));
  const std::string admin = *tokens->create("admin", "sandbox", {"admin"});  // imported at start
  const int base = 18990 + static_cast<int>(::getpid() % 30) * 3;
  ServeProcess a(setup.config, base), b(setup.config, base + 1), c(setup.config, base + 2);
  // All three at once, as a deployment starts them: they migrate the one store and provision
  // the one topology at the same time.
  for (ServeProcess* p : {&a, &b, &c}) p->start();
  for (ServeProcess* p : {&a, &b, &c}) ASSERT_TRUE(p->wait_ready());

  httplib::Client to_a("127.0.0.1", base);
  auto made = to_a.Post("/v1/envs/sandbox/tokens", {{"Authorization", "Bearer " + admin}},
                        R"({"name":"deploy","roles":["read"]})", "application/json");
  ASSERT_TRUE(made);
  ASSERT_EQ(made->status, 201) << made->body;
  const json m = json::parse(made->body);
  const std::string token = m["token"];
  const auto works = until_status({base, base + 1, base + 2}, token, 200);
  EXPECT_LT(works, 5s);

  httplib::Client to_c("127.0.0.1", base + 2);
  auto revoked = to_c.Post("/v1/envs/sandbox/tokens/" + m["id"].get<std::string>() + ":revoke",
                           {{"Authorization", "Bearer " + admin}}, "", "application/json");
  ASSERT_TRUE(revoked);
  ASSERT_EQ(revoked->status, 200) << revoked->body;
  const auto stops = until_status({base, base + 1, base + 2}, token, 401);
  EXPECT_LT(stops, 5s);
  std::printf(
      "token made through one process worked on all 3 after %lld ms; revoked through "
      "another, refused on all 3 after %lld ms\n",
      static_cast<long long>(works.count()), static_cast<long long>(stops.count()));
  // The CLI sees the same tokens, with the last use that the processes recorded.
  const auto [status, out] =
      run_cli("--config '" + setup.config + "' --env sandbox --json token list");
  ASSERT_EQ(status, 0) << out;
  const json listed = json::parse(out, nullptr, false);
  ASSERT_TRUE(listed.is_object()) << out;
  ASSERT_EQ(listed["tokens"].size(), 2u) << out;
  EXPECT_EQ(listed["tokens"][1]["name"], "deploy");
  EXPECT_FALSE(listed["tokens"][1]["revoked_at"].is_null());
}

TEST(ServeCluster, ProcessesSplitTheBucketsAndHandThemOverWhenTheyGo) {
  { BACKBONE_REQUIRE_TEST_SERVER("postgresql"); }
  { BACKBONE_REQUIRE_TEST_SERVER("nats"); }
  ClusterSetup setup("postgresql", "cluster", "127.0.0.1:0");
  const std::string& config = setup.config;
  TempDir& dir = setup.dir;
  auto tokens = auth::TokenFile::open(dir.file("tokens.json"));
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
  json settled;
  wait_for(base + 2, token, [&](const json& v) {
    settled = v;
    auto s = shares(v);
    // 8 over 3: the members in the order of their ids take 3, 3 and 2. The ids hold the
    // process ids, so which process is last varies (a's came last once, pid 977 against 1027).
    std::map<std::string, int> by_id;
    for (const auto& m : v["members"]) by_id[m["id"].get<std::string>()] = m["buckets"].get<int>();
    std::vector<int> in_order;
    for (const auto& [id, n] : by_id) in_order.push_back(n);
    return s.size() == 3 && s[a_addr] + s[b_addr] + s[c_addr] == kBuckets &&
           in_order == std::vector<int>{3, 3, 2} && v["unowned"] == 0;
  });
  // Seeing the cluster: `backbone cluster show` (from the store, no serve asked) and every
  // process's route list each bucket once, with one owner, a member that is there, at the same
  // epoch; each member's bucket count adds up.
  {
    const auto [status, out] =
        run_cli("--config '" + config + "' --env sandbox --json cluster show");
    ASSERT_EQ(status, 0) << out;
    const json shown = json::parse(out, nullptr, false);
    ASSERT_TRUE(shown.is_object()) << out;
    std::set<std::string> ids;
    int counted = 0;
    for (const auto& m : shown["members"]) {
      ids.insert(m["id"].get<std::string>());
      counted += m["buckets"].get<int>();
      EXPECT_FALSE(m["beat_age_seconds"].is_null());
    }
    EXPECT_EQ(ids.size(), 3u);
    EXPECT_EQ(counted, kBuckets);
    EXPECT_EQ(shown["unowned"], 0);
    ASSERT_EQ(shown["leases"].size(), static_cast<size_t>(kBuckets));
    std::set<int> buckets;
    for (const auto& l : shown["leases"]) {
      EXPECT_TRUE(buckets.insert(l["bucket"].get<int>()).second) << "bucket listed twice";
      ASSERT_TRUE(l["owner"].is_string()) << l.dump();
      EXPECT_TRUE(ids.count(l["owner"].get<std::string>())) << l.dump();
      EXPECT_GE(l["age_seconds"].get<double>(), 0) << "an owned lease has changed hands";
      EXPECT_EQ(l["backlog"], 0);
    }
    for (int port : {base, base + 1, base + 2}) {
      const json routed = cluster(port, token);
      ASSERT_TRUE(routed.is_object());
      EXPECT_EQ(owners(routed), owners(shown)) << "process on " << port;
      for (size_t i = 0; i < routed["leases"].size(); ++i) {
        EXPECT_EQ(routed["leases"][i]["epoch"], shown["leases"][i]["epoch"]);
      }
    }
  }

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
  // A counts the lease from C's last heartbeat that it saw change, which may have come up to a
  // beat interval (a quarter of the ttl here) before the kill; the exact boundary is
  // LeaseKeeperTest's, on the manual clock.
  EXPECT_GE(taken_over.count(), kTtlMs - kTtlMs / 4) << "taken before the lease ran out";
  // A counted what it took, and how long each waited since C's last heartbeat that it saw: at
  // least the lease.
  const double takeovers = counter_sum(base, "backbone_cluster_takeover_seconds_count");
  const double waited = counter_sum(base, "backbone_cluster_takeover_seconds_sum");
  EXPECT_GE(takeovers, 4 + 3) << "B's four and C's three at least (after the first claims)";
  EXPECT_EQ(counter_sum(base, "backbone_cluster_buckets_owned"), kBuckets);
  EXPECT_GE(counter_sum(base, "backbone_cluster_rebalances_total"), 4);
  std::printf("takeovers counted by A: %.0f, %.2f s waited in all\n", takeovers, waited);
  std::printf(
      "serve cluster: join balanced in %lld ms; SIGTERM handed over in %lld ms; SIGKILL taken "
      "over in %lld ms (ttl %d ms)\n",
      static_cast<long long>(joined.count()), static_cast<long long>(handed_over.count()),
      static_cast<long long>(taken_over.count()), kTtlMs);
  EXPECT_EQ(a.kill(SIGTERM) & 0x7f, 0);
}

// The member id of the process serving at `address`, in a view ("" if it is not there).
std::string member_at(const json& view, const std::string& address) {
  for (const auto& m : view["members"]) {
    if (m["address"] == address) return m["id"];
  }
  return "";
}

// Waits until each of `sent` is processed, asking the owner of its bucket (in `bucket_owner`,
// with the owners' ports in `port_of`), which answers once it has merged or dead-lettered it
// (GET …/events/{id}?wait_ms): at most 120 s an event.
void wait_processed(const std::vector<EventId>& sent, EventStore& store,
                    const std::map<int, std::string>& bucket_owner,
                    const std::map<std::string, int>& port_of, const std::string& token) {
  for (const EventId& id : sent) {
    auto stored = store.get(id);
    ASSERT_TRUE(stored.ok()) << stored.error().describe();
    const std::string& owner = bucket_owner.at(
        static_cast<int>(bucket_of(OrderingKey(stored->event.record_key()).str(), kBuckets)));
    auto port = port_of.find(owner);
    ASSERT_NE(port, port_of.end()) << "the owner of " << id.str() << "'s bucket is not live";
    httplib::Client c("127.0.0.1", port->second);
    c.set_read_timeout(40);
    bool processed = false;
    for (int ask = 0; ask < 4 && !processed; ++ask) {  // 30 s each
      auto r = c.Get("/v1/envs/sandbox/events/" + id.str() + "?wait_ms=30000",
                     {{"Authorization", "Bearer " + token}});
      processed = r && r->status == 200 && json::parse(r->body).value("processed", false);
    }
    ASSERT_TRUE(processed) << id.str() << " still unprocessed after 120 s";
  }
}

// The scale-out fault test (doc/scale_out.md, "Failure cases"): three `serve` processes of the
// sandbox share one store and one nats-server, with 8 buckets and a 3 s lease. A client sends a
// checked workload spread over the live processes, a batch at a time (one that is not answered
// goes again, to the next process; a resent batch is answered as duplicates). A quarter of the
// way in one process is killed with SIGKILL; half-way one is stopped with SIGSTOP until the others
// have taken its buckets, then continued; three quarters in a fourth joins. Afterwards nothing is
// lost or applied twice, each record's merged versions are in order, the records equal the
// reference fold, the DLQ holds exactly the rejected conflicts, the audit chain verifies, and
// every bucket has one owner, the same in every process's view. And a consumer of the sync
// subscription that pulls through one process and acks through another gets every merged
// version, each record's in order, and its acks count.
class ServeScaleOut : public ::testing::TestWithParam<const char*> {};

TEST_P(ServeScaleOut, NothingIsLostAppliedTwiceOrReorderedWhileProcessesCrashStallAndJoin) {
  SKIP_UNDER_SANITIZERS();
  { BACKBONE_REQUIRE_TEST_SERVER(GetParam()); }
  { BACKBONE_REQUIRE_TEST_SERVER("nats"); }
  ClusterSetup setup(GetParam(), std::string("scale") + GetParam(), "off");
  const std::string &config = setup.config, &broker_url = setup.broker_url;
  TempDir& dir = setup.dir;
  ServerHarness& db = setup.db;
  const std::vector<std::string> envs = {"sandbox", "production"};
  const Watchers watchers = provision_watched(BrokerOptions{broker_url, nullptr, kBuckets}, envs);
  if (HasFailure()) return;
  auto tokens = auth::TokenFile::open(dir.file("tokens.json"));
  const std::string token = *tokens->create("scale", "sandbox", {"publish", "read"});
  const std::string sync_token = *tokens->create("sync", "sandbox", {"subscribe"});

  std::vector<std::unique_ptr<ServeProcess>> serves;
  std::vector<int> ports;
  std::vector<bool> up;
  auto address = [&](size_t i) { return "http://127.0.0.1:" + std::to_string(ports[i]); };
  auto start = [&] {
    ports.push_back(free_loopback_port());
    serves.push_back(std::make_unique<ServeProcess>(config, ports.back()));
    serves.back()->start();
    up.push_back(serves.back()->wait_ready());
    ASSERT_TRUE(up.back()) << "serve " << serves.size() - 1 << " did not start";
  };
  for (int i = 0; i < 3; ++i) start();
  wait_for(ports[0], token, [&](const json& v) {
    auto s = shares(v);
    return s.size() == 3 && v["unowned"] == 0;
  });

  stress::WorkloadOptions wo;
  wo.events = 3000;
  wo.records = 40;
  wo.poison_rate = 0;
  wo.seed = 17;
  stress::Workload workload(wo);
  const auto& drafts = workload.events();
  const size_t batch = 10;
  const size_t batches = (drafts.size() + batch - 1) / batch;
  std::vector<EventId> sent;
  size_t next_target = 0, resent = 0;
  std::chrono::milliseconds stalled_taken_over{0};
  for (size_t n = 0; n < batches; ++n) {
    if (n == batches / 4) {  // SIGKILL the third process
      EXPECT_TRUE(WIFSIGNALED(serves[2]->kill(SIGKILL)));
      up[2] = false;
    } else if (n == batches / 2) {  // stall the second past its lease, then let it go on
      const std::string stalled = member_at(cluster(ports[0], token), address(1));
      ASSERT_FALSE(stalled.empty());
      serves[1]->signal(SIGSTOP);
      up[1] = false;
      stalled_taken_over = wait_for(ports[0], token, [&](const json& v) {
        for (const auto& [bucket, owner] : owners(v)) {
          if (owner.empty() || owner == stalled) return false;
        }
        return true;
      });
      serves[1]->signal(SIGCONT);
      up[1] = true;
    } else if (n == 3 * batches / 4) {  // a fourth joins
      start();
      wait_for(ports[3], token, [&](const json& v) { return shares(v).count(address(3)) > 0; });
    }
    const size_t first = n * batch;
    const std::string body = stress::ingest_body(
        std::span(drafts).subspan(first, std::min(drafts.size(), first + batch) - first));
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 100) << "no process took batch " << n;
      size_t t = next_target++ % serves.size();
      while (!up[t]) t = next_target++ % serves.size();
      if (auto ids = post_events(ports[t], token, body)) {
        sent.insert(sent.end(), ids->begin(), ids->end());
        break;
      }
      ++resent;
    }
  }

  // Drained once every event sent is processed: each is asked of its bucket's owner, which
  // answers when it has merged or dead-lettered it (GET …/events/{id}?wait_ms).
  // The view once the join has settled: three processes own every bucket between them.
  json drain_view;
  wait_for(ports[0], token, [&](const json& v) {
    drain_view = v;
    return shares(v).size() == 3 && v["unowned"] == 0;
  });
  std::map<std::string, int> port_of;  // member id -> its port
  for (size_t i : {size_t{0}, size_t{1}, size_t{3}}) {
    port_of[member_at(drain_view, address(i))] = ports[i];
  }
  StoreOptions so;
  so.url = db.url();
  so.role = Role::kReader;
  auto store = EventStore::open(so);
  ASSERT_TRUE(store.ok()) << store.error().describe();
  const auto drain_from = Clock::now();
  wait_processed(sent, **store, owners(drain_view), port_of, token);
  if (HasFatalFailure()) return;
  auto left = (*store)->unprocessed(1, std::nullopt);
  ASSERT_TRUE(left.ok() && left->empty()) << "an event is unprocessed";
  const auto drain_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - drain_from);

  // One owner per bucket, a live process, and every live process sees the same.
  const std::vector<size_t> live = {0, 1, 3};
  const json view = cluster(ports[0], token);
  std::set<std::string> live_members;
  for (size_t i : live) live_members.insert(member_at(view, address(i)));
  const auto by_bucket = owners(view);
  EXPECT_EQ(by_bucket.size(), static_cast<size_t>(kBuckets)) << view.dump();
  for (const auto& [bucket, owner] : by_bucket) {
    EXPECT_TRUE(live_members.count(owner)) << "bucket " << bucket << ": " << owner;
  }
  for (size_t i : live) {
    wait_for(ports[i], token, [&](const json& v) { return owners(v) == by_bucket; });
    // The work was spread: each live process merged part of it.
    EXPECT_GT(counter_sum(ports[i], "backbone_merged_events_total"), 0) << "serve " << i;
  }
  // An external consumer of the sync subscription pulls through the fourth process and acks
  // through the first: it gets each record's versions in order, and its acks count.
  std::map<std::string, uint64_t> last_version;
  std::set<std::pair<std::string, uint64_t>> versions_seen;
  size_t sync_disorder = 0;
  auto sync_call = [&](size_t via, const std::string& verb, const json& body) {
    httplib::Client c("127.0.0.1", ports[via]);
    c.set_read_timeout(30);
    auto r = c.Post("/v1/envs/sandbox/subscriptions/sync:" + verb,
                    {{"Authorization", "Bearer " + sync_token}}, body.dump(), "application/json");
    return r && r->status == 200 ? json::parse(r->body) : json();
  };
  for (int empty = 0; empty < 2;) {
    const json got = sync_call(3, "pull", {{"max_messages", 1000}});
    ASSERT_TRUE(got.is_object()) << "sync pull through serve 3 failed";
    json acks = json::array();
    for (const auto& m : got.value("received_messages", json::array())) {
      const json data = m["message"]["data"];
      const std::string key = m["message"]["ordering_key"];
      const uint64_t v = data["version"];
      if (versions_seen.insert({data["event_id"].get<std::string>(), v}).second) {
        if (v <= last_version[key]) ++sync_disorder;
        last_version[key] = v;
      }
      acks.push_back(m["ack_id"]);
    }
    if (acks.empty()) {
      ++empty;
      continue;
    }
    empty = 0;
    const json acked = sync_call(0, "acknowledge", {{"ack_ids", acks}});
    EXPECT_EQ(acked.value("acknowledged", size_t{0}), acks.size());
  }
  EXPECT_EQ(sync_disorder, 0u);
  // Acked means gone, through any process.
  const json after = sync_call(1, "pull", {{"max_messages", 1000}});
  EXPECT_TRUE(after.value("received_messages", json::array()).empty()) << after.dump();

  for (size_t i : live) {
    const int status = serves[i]->kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "serve " << i << ": " << status;
  }

  auto broker = Broker::open(BrokerOptions{broker_url, nullptr, kBuckets});
  ASSERT_TRUE(broker.ok());
  std::string problems;
  auto report = verify_run(db.url(), **broker, watchers, sent, problems);
  ASSERT_TRUE(report.ok()) << report.error().describe();
  EXPECT_TRUE(report->ok()) << problems;
  EXPECT_GT(report->merged, sent.size() / 2);
  EXPECT_EQ(versions_seen.size(), report->merged) << "merged versions the sync consumer got";
  std::printf(
      "scale-out fault test on %s: %zu events sent (%zu batches resent), %zu merged, %zu "
      "rejected, %zu dead letters; the stalled process's buckets taken over in %lld ms (ttl %d "
      "ms); drained %lld ms after the last batch\n",
      GetParam(), sent.size(), resent, report->merged, report->rejected, report->dlq,
      static_cast<long long>(stalled_taken_over.count()), kTtlMs,
      static_cast<long long>(drain_ms.count()));
}

INSTANTIATE_TEST_SUITE_P(Databases, ServeScaleOut, ::testing::Values("postgresql", "mysql"),
                         [](const auto& info) { return std::string(info.param); });

// Runs tests/pubsub/node/sync_consumer.cjs (Google's Node client) against the front on `port`;
// its one-line JSON report, or null.
json run_sync_consumer(int port, const std::string& token, const std::string& subscription,
                       size_t expected) {
  const std::string cmd =
      std::string("cd '") + BACKBONE_SOURCE_DIR + "/tests/pubsub/node' && env NODE_PATH='" +
      BACKBONE_NODE_MODULES + "' PUBSUB_EMULATOR_HOST=127.0.0.1:" + std::to_string(port) +
      " PUBSUB_TARGET=backbone PUBSUB_PROJECT_ID=backbone-local"
      " BACKBONE_PUBSUB_TOKEN=" +
      token + " SYNC_SUBSCRIPTION=" + subscription + " SYNC_EXPECTED=" + std::to_string(expected) +
      " SYNC_TIMEOUT_MS=60000 node sync_consumer.cjs";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  const size_t line = out.rfind('{');
  if (line == std::string::npos) return nullptr;
  auto j = json::parse(out.substr(line), nullptr, false);
  return j.is_discarded() ? json() : j;
}

// The sync subscription through the Pub/Sub front of any process (doc/scale_out.md, "Any process
// serves every route"): two processes own four buckets each, and Google's Node client streams
// the subscription from the second one's front alone. It gets every merged version of every
// record, each record's in order, and its acks count: afterwards nothing is in flight or
// waiting in any bucket. A member call without the member's key is refused.
TEST(ServeCluster, TheNodeClientGetsEverySyncVersionInOrderThroughEitherFront) {
  SKIP_UNDER_SANITIZERS();
  { BACKBONE_REQUIRE_TEST_SERVER("postgresql"); }
  { BACKBONE_REQUIRE_TEST_SERVER("nats"); }
  ClusterSetup setup("postgresql", "front", "off");
  const std::string &config = setup.config, &broker_url = setup.broker_url;
  TempDir& dir = setup.dir;
  ServerHarness& db = setup.db;
  auto tokens = auth::TokenFile::open(dir.file("tokens.json"));
  const std::string token = *tokens->create("front", "sandbox", {"publish", "read"});
  const std::string sync_token = *tokens->create("sync", "sandbox", {"subscribe"});
  const int ports[] = {free_loopback_port(), free_loopback_port()};
  const int fronts[] = {free_loopback_port(), free_loopback_port()};
  std::vector<std::unique_ptr<ServeProcess>> serves;
  for (int i = 0; i < 2; ++i) {
    serves.push_back(std::make_unique<ServeProcess>(
        config, ports[i],
        std::vector<std::string>{"--pubsub-listen", "127.0.0.1:" + std::to_string(fronts[i])}));
    serves.back()->start();
    ASSERT_TRUE(serves.back()->wait_ready());
    ASSERT_TRUE(wait_for_port(fronts[i], 10'000));
  }
  json view;
  wait_for(ports[0], token, [&](const json& v) {
    view = v;
    auto s = shares(v);
    return s.size() == 2 && v["unowned"] == 0;
  });

  // Not a member: refused, whatever it claims to be.
  {
    httplib::Client c("127.0.0.1", ports[1]);
    const json ask = {
        {"subscription", Topology::built_in().subscription_for("sync", "sandbox")->name},
        {"max_messages", 10}};
    auto r = c.Post(
        "/v1/envs/sandbox/cluster:pull",
        {{"Authorization", "Bearer " + std::string(64, '0')},
         {"X-Backbone-Member", member_at(view, "http://127.0.0.1:" + std::to_string(ports[0]))}},
        ask.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << r->body;
  }

  stress::WorkloadOptions wo;
  wo.events = 600;
  wo.records = 24;
  wo.poison_rate = 0;
  wo.seed = 29;
  stress::Workload workload(wo);
  const auto& drafts = workload.events();
  std::vector<EventId> sent;
  for (size_t first = 0; first < drafts.size(); first += 20) {
    const std::string body = stress::ingest_body(
        std::span(drafts).subspan(first, std::min<size_t>(20, drafts.size() - first)));
    auto ids = post_events(ports[first / 20 % 2], token, body);
    ASSERT_TRUE(ids) << "batch at " << first << " not taken";
    sent.insert(sent.end(), ids->begin(), ids->end());
  }
  std::map<std::string, int> port_of;
  for (int i = 0; i < 2; ++i) {
    port_of[member_at(view, "http://127.0.0.1:" + std::to_string(ports[i]))] = ports[i];
  }
  StoreOptions so;
  so.url = db.url();
  so.role = Role::kReader;
  auto store = EventStore::open(so);
  ASSERT_TRUE(store.ok()) << store.error().describe();
  wait_processed(sent, **store, owners(view), port_of, token);
  if (HasFatalFailure()) return;
  // One sync message per merged version: every record's versions.
  size_t versions = 0;
  std::optional<RecordKey> after;
  for (;;) {
    auto page = (*store)->scan_records(after, 500);
    ASSERT_TRUE(page.ok()) << page.error().describe();
    if (page->empty()) break;
    for (const StoredRecord& r : *page) versions += r.version;
    after = page->back().key;
  }
  ASSERT_GT(versions, 0u);

  const std::string sync_sub = Topology::built_in().subscription_for("sync", "sandbox")->name;
  const json report = run_sync_consumer(fronts[1], sync_token, sync_sub, versions);
  ASSERT_TRUE(report.is_object()) << "the Node consumer gave no report";
  EXPECT_EQ(report.value("reason", ""), "complete") << report.dump();
  EXPECT_EQ(report.value("distinct", size_t{0}), versions) << report.dump();
  EXPECT_EQ(report.value("disorder", -1), 0) << report.dump();
  EXPECT_EQ(report.value("unreadable", -1), 0) << report.dump();
  std::printf("sync through the second front: %zu versions of %zu records, report %s\n", versions,
              static_cast<size_t>(wo.records), report.dump().c_str());

  for (auto& s : serves) {
    const int status = s->kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  // The acks counted, in whichever process delivered. An ack is best effort, as on Google's
  // service: one that reaches its delivery after the delivery's deadline is stale and the
  // message comes again. In `make test`'s busiest phase 1-2 of 588 were left so (2 of 7 full
  // runs; never alone, nor under a CPU load); without the forwarding of acks to the member that
  // delivered, every ack of the other member's deliveries would be lost (each delivers about
  // half: reasoned, not measured). So at most 1% may be left waiting, and none in flight.
  auto broker = Broker::open(BrokerOptions{broker_url, nullptr, kBuckets});
  ASSERT_TRUE(broker.ok()) << broker.error().describe();
  auto stats = (*broker)->stats(sync_sub);
  ASSERT_TRUE(stats.ok()) << stats.error().describe();
  EXPECT_LE(stats->undelivered.value_or(versions), versions / 100);
  EXPECT_EQ(stats->in_flight.value_or(1), 0u);
  if (stats->undelivered.value_or(1) != 0) {
    auto left = (*broker)->pull(sync_sub, 10);
    for (const auto& m : *left) {
      std::printf("left unacked: %s (key %s, attempt %d)\n", m.message.data.substr(0, 300).c_str(),
                  m.message.ordering_key.c_str(), m.delivery_attempt);
    }
  }
}

}  // namespace
}  // namespace backbone::testing
