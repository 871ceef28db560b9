#include "pipeline/serve_checks.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "backbone/event_store.h"
#include "backbone/topology.h"

namespace backbone::testing {

using nlohmann::json;

Watchers provision_watched(const BrokerOptions& broker, const std::vector<std::string>& envs) {
  const Topology& topology = Topology::built_in();
  Watchers w;
  w.merged = topology.topic_name(TopicFamily::kMerged, "sandbox") + ".fault-verify";
  w.raw = topology.topic_name(TopicFamily::kRaw, "sandbox") + ".fault-count";
  w.dlq = topology.topic_name(TopicFamily::kDlq, "sandbox") + ".fault-verify";
  auto b = Broker::open(broker);
  EXPECT_TRUE(b.ok()) << b.error().describe();
  if (!b.ok()) return w;
  EXPECT_TRUE(provision_topology(**b, topology, "sandbox", envs).ok());
  for (auto [name, family, ordered] :
       {std::tuple{w.merged, TopicFamily::kMerged, true},
        std::tuple{w.raw, TopicFamily::kRaw, false}, std::tuple{w.dlq, TopicFamily::kDlq, false}}) {
    SubscriptionConfig c;
    c.name = name;
    c.topic = topology.topic_name(family, "sandbox");
    c.ordered = ordered;
    c.ack_deadline_us = 600 * kSecond;
    EXPECT_TRUE((*b)->create_subscription(c).ok()) << name;
  }
  return w;
}

std::string wait_drained(int port, const std::string& token, const std::string& sandbox_store_url,
                         int ms) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(10);
  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  const std::string merge_sub = Topology::built_in().subscription_for("merge", "sandbox")->name;
  StoreOptions so;
  so.url = sandbox_store_url;
  so.role = Role::kReader;
  std::string left;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  do {
    left.clear();
    auto r = client.Get("/v1/envs/sandbox/topology", auth);
    if (!r || r->status != 200) {
      left = "the topology route: " + (r ? r->body : std::string("no answer"));
    } else {
      const json topology = json::parse(r->body);
      for (const auto& s : topology["subscriptions"]) {
        const auto& b = s["backlog"];
        if (s["name"] == merge_sub &&
            b["undelivered"].get<int>() + b["in_flight"].get<int>() != 0) {
          left = "the merge subscription: " + b.dump();
        }
      }
    }
    auto store = EventStore::open(so);
    auto unprocessed = store.ok() ? (*store)->unprocessed(10, std::nullopt)
                                  : Result<std::vector<StoredEvent>>(store.error());
    if (!unprocessed.ok()) {
      left += "; the store: " + unprocessed.error().describe();
    } else if (!unprocessed->empty()) {
      left += "; unprocessed:";
      for (const auto& e : *unprocessed) {
        left += " " + e.event.id().str() + " (" + e.event.record_id() + " base " +
                std::to_string(e.event.base_version()) + ")";
      }
    }
    if (left.empty()) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < until);
  return left;
}

Result<stress::VerifyReport> verify_run(const std::string& sandbox_store_url, Broker& broker,
                                        const Watchers& watchers, const std::vector<EventId>& sent,
                                        std::string& problems) {
  StoreOptions so;
  so.url = sandbox_store_url;
  so.role = Role::kReader;
  auto store = EventStore::open(so);
  if (!store.ok()) return store.error();
  stress::VerifyInput in;
  in.store = store->get();
  stress::use_broker(in, broker, watchers.merged, watchers.dlq);
  in.sent = sent;
  auto report = stress::verify_stress(in);
  if (!report.ok()) return report.error();
  problems.clear();
  for (const auto& v : report->violations) problems += v + "\n";
  return report;
}

}  // namespace backbone::testing
