// The Broker conformance suite on the NATS JetStream backend, against the nats-server that
// `make test` starts, each test in a namespace of its own; and what only this backend does.
#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "backbone/record_key.h"
#include "broker/broker_conformance.h"
#include "broker/delivery/config_json.h"
#include "broker/nats/nats_client.h"
#include "broker/nats/nats_message.h"
#include "broker/nats/nats_names.h"
#include "broker/nats/nats_url.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

class NatsHarness final : public BrokerHarness {
 public:
  NatsHarness(std::string server, uint32_t buckets)
      : server_(std::move(server)), buckets_(buckets) {
    static std::atomic<int> n{0};
    ns_ = "t" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  }
  std::string url() override { return server_ + "?namespace=" + ns_; }
  uint32_t buckets() override { return buckets_; }

 private:
  std::string server_, ns_;
  uint32_t buckets_;
};

std::unique_ptr<BrokerHarness> make_nats_harness(uint32_t buckets = 0) {
  const std::string server = test_server_url("nats");
  if (server.empty()) return nullptr;
  return std::make_unique<NatsHarness>(server, buckets);
}

// The suite twice: subscriptions served whole, and split into buckets (every one served here,
// as by a process alone in its cluster), where each bucket's part has its own state and journal.
INSTANTIATE_TEST_SUITE_P(
    Nats, BrokerConformance,
    ::testing::Values(BrokerBackend{"nats", [] { return make_nats_harness(); }},
                      BrokerBackend{"nats_split", [] { return make_nats_harness(4); }}),
    [](const auto& info) { return info.param.name; });

// A topic reader whose buffer overflows loses messages on the way (libnats drops them); the
// subscription sees the gap and reads again, so every message is still delivered, once.
TEST(NatsBroker, MessagesThatTheReaderDroppedAreReadAgain) {
  BACKBONE_REQUIRE_TEST_SERVER("nats");
  auto harness = make_nats_harness();
  auto b = Broker::open(BrokerOptions{harness->url() + "&reader_buffer=16"});
  ASSERT_TRUE(b.ok()) << b.error().describe();
  ASSERT_TRUE((*b)->create_topic({"orders", {}}).ok());
  ASSERT_TRUE((*b)->create_subscription({.name = "orders.work", .topic = "orders"}).ok());
  constexpr int kMessages = 3000;
  std::vector<OutgoingMessage> batch;
  for (int i = 0; i < kMessages; ++i) {
    batch.push_back({std::to_string(i), {}, ""});
    if (batch.size() == 500) {
      ASSERT_TRUE((*b)->publish("orders", batch).ok());
      batch.clear();
    }
  }
  std::set<std::string> seen;
  int again = 0;
  for (int empty = 0; empty < 3;) {
    auto got = (*b)->pull("orders.work", 200);
    ASSERT_TRUE(got.ok()) << got.error().describe();
    if (got->empty()) {
      ++empty;
      continue;
    }
    std::vector<std::string> ids;
    for (const ReceivedMessage& m : *got) {
      again += seen.insert(m.message.data).second ? 0 : 1;
      ids.push_back(m.ack_id);
    }
    ASSERT_TRUE((*b)->ack("orders.work", ids).ok());
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kMessages));
  EXPECT_EQ(again, 0);
}

// Processes that start at once provision the same topology at once: of the creators of one
// subscription, one makes it and the others find it, and its journal is whole (before the
// claim, a late creator deleted the journal the first had made, and publishing to it failed).
TEST(NatsBroker, ProcessesCreatingOneSubscriptionAtOnceMakeItOnce) {
  BACKBONE_REQUIRE_TEST_SERVER("nats");
  auto harness = make_nats_harness();
  ManualClock clock;
  std::vector<std::unique_ptr<Broker>> brokers;
  for (int i = 0; i < 4; ++i) {
    auto b = Broker::open(BrokerOptions{harness->url(), &clock, 4});
    ASSERT_TRUE(b.ok()) << b.error().describe();
    brokers.push_back(std::move(*b));
  }
  ASSERT_TRUE(brokers[0]->create_topic({"orders", {}}).ok());
  for (int round = 0; round < 5; ++round) {
    const std::string name = "orders.work" + std::to_string(round);
    std::vector<Result<void>> got(brokers.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < brokers.size(); ++i) {
      threads.emplace_back([&, i] {
        got[i] =
            brokers[i]->create_subscription({.name = name, .topic = "orders", .ordered = true});
      });
    }
    for (auto& t : threads) t.join();
    int made = 0, found = 0;
    for (const auto& r : got) {
      if (r.ok()) {
        ++made;
      } else if (r.code() == Errc::kAlreadyExists) {
        ++found;
      } else {
        ADD_FAILURE() << r.error().describe();
      }
    }
    EXPECT_EQ(made, 1) << name;
    EXPECT_EQ(found, 3) << name;
    // Every process serves it, from the one journal.
    const std::vector<OutgoingMessage> one = {{"m" + std::to_string(round), {}, "k"}};
    ASSERT_TRUE(brokers[3]->publish("orders", one).ok());
    for (auto& b : brokers) {
      ASSERT_TRUE(b->serve_buckets(name, {}).ok());
    }
    ASSERT_TRUE(brokers[1]->serve_buckets(name, {{0, 1}, {1, 1}, {2, 1}, {3, 1}}).ok());
    auto pulled = brokers[1]->pull(name, 10);
    ASSERT_TRUE(pulled.ok()) << pulled.error().describe();
    ASSERT_EQ(pulled->size(), 1u) << name;
    EXPECT_TRUE(brokers[1]->ack(name, std::vector<std::string>{(*pulled)[0].ack_id}).ok());
  }
}

// A creator that crashed between claiming a subscription's name and making it ready leaves a
// claim; another creator takes it over once the claim is older than 30 s (the clock's).
TEST(NatsBroker, ACrashedCreatorsClaimIsTakenOverAfterItsTimeout) {
  BACKBONE_REQUIRE_TEST_SERVER("nats");
  auto harness = make_nats_harness();
  ManualClock clock;
  auto b = Broker::open(BrokerOptions{harness->url(), &clock});
  ASSERT_TRUE(b.ok()) << b.error().describe();
  ASSERT_TRUE((*b)->create_topic({"orders", {}}).ok());
  // The claim as a crashed creator left it: no journal, not ready.
  auto client = nats::NatsClient::connect(*nats::parse_nats_url(harness->url()));
  ASSERT_TRUE(client.ok()) << client.error().describe();
  const auto url = *nats::parse_nats_url(harness->url());
  ASSERT_TRUE((*client)->open_bucket(nats::catalog_bucket(url.ns), url.replicas).ok());
  SubscriptionConfig config{.name = "orders.work", .topic = "orders"};
  const std::string claim = nlohmann::json{
      {"config", delivery::subscription_config_to_json(config)},
      {"start", 1},
      {"uid", "dead0000dead0000"},
      {"ready", false},
      {"claimed_at_ms",
       clock.now().millis()}}.dump();
  auto put = (*client)->kv_create(nats::subscription_key("orders.work"), claim);
  ASSERT_TRUE(put.ok()) << put.error().describe();
  clock.advance_millis(29'000);
  EXPECT_EQ((*b)->create_subscription({.name = "orders.work", .topic = "orders"}).code(),
            Errc::kAlreadyExists);
  clock.advance_millis(1'000);
  auto made = (*b)->create_subscription({.name = "orders.work", .topic = "orders"});
  ASSERT_TRUE(made.ok()) << made.error().describe();
  ASSERT_TRUE((*b)->publish("orders", std::vector<OutgoingMessage>{{"after", {}, ""}}).ok());
  auto pulled = (*b)->pull("orders.work", 10);
  ASSERT_TRUE(pulled.ok()) << pulled.error().describe();
  ASSERT_EQ(pulled->size(), 1u);
  EXPECT_EQ((*pulled)[0].message.data, "after");
}

// The port takes messages of up to 10 MB, a nats-server 1 MiB unless configured otherwise: a
// batch with a message over the server's max_payload is refused whole, with the reason, and not
// retried (the server would refuse it every time).
TEST(NatsBroker, ABatchWithAMessageOverTheServersMaxPayloadIsRefusedWhole) {
  BACKBONE_REQUIRE_TEST_SERVER("nats");
  auto harness = make_nats_harness();
  auto b = Broker::open(BrokerOptions{harness->url()});
  ASSERT_TRUE(b.ok()) << b.error().describe();
  ASSERT_TRUE((*b)->create_topic({"orders", {}}).ok());
  ASSERT_TRUE((*b)->create_subscription({.name = "orders.work", .topic = "orders"}).ok());
  const std::vector<OutgoingMessage> batch = {{"small", {}, ""},
                                              {std::string(2 << 20, 'x'), {}, ""}};
  auto refused = (*b)->publish("orders", batch);
  ASSERT_EQ(refused.code(), Errc::kInvalidArgument);
  EXPECT_EQ(refused.error().where, "data");
  EXPECT_NE(refused.error().message.find("max_payload"), std::string::npos)
      << refused.error().message;
  ASSERT_TRUE((*b)->publish("orders", std::vector<OutgoingMessage>{{"after", {}, ""}}).ok());
  auto pulled = (*b)->pull("orders.work", 10);
  ASSERT_TRUE(pulled.ok()) << pulled.error().describe();
  ASSERT_EQ(pulled->size(), 1u);
  EXPECT_EQ((*pulled)[0].message.data, "after");
}

// Two processes of one cluster: two brokers on one namespace, topics split into 4 buckets, and
// an ordered subscription "orders.work" of topic "orders".
class NatsSplit : public ::testing::Test {
 protected:
  void SetUp() override {
    BACKBONE_REQUIRE_TEST_SERVER("nats");
    harness_ = make_nats_harness();
    auto a = Broker::open(BrokerOptions{harness_->url(), &clock_, 4});
    auto b = Broker::open(BrokerOptions{harness_->url(), &clock_, 4});
    ASSERT_TRUE(a.ok() && b.ok());
    a_ = std::move(*a);
    b_ = std::move(*b);
    ASSERT_TRUE(a_->create_topic({"orders", {}}).ok());
    ASSERT_TRUE(
        a_->create_subscription({.name = "orders.work", .topic = "orders", .ordered = true}).ok());
  }
  std::unique_ptr<BrokerHarness> harness_;
  ManualClock clock_;
  std::unique_ptr<Broker> a_, b_;
};

// Two processes (two brokers on one namespace) split one ordered subscription's buckets: each
// is handed the messages of its own buckets only, every message once, each key in order.
TEST_F(NatsSplit, TwoProcessesServeTheirOwnBucketsOfOneSubscription) {
  EXPECT_EQ(*b_->buckets("orders.work"), 4u);
  ASSERT_TRUE(a_->serve_buckets("orders.work", {{0, 1}, {1, 1}}).ok());
  ASSERT_TRUE(b_->serve_buckets("orders.work", {{2, 1}, {3, 1}}).ok());
  EXPECT_EQ(a_->serve_buckets("orders.work", {{4, 1}}).code(), Errc::kInvalidArgument);

  constexpr int kKeys = 40, kEach = 5;
  std::vector<OutgoingMessage> batch;
  for (int i = 0; i < kEach; ++i) {
    for (int k = 0; k < kKeys; ++k) {
      batch.push_back({std::to_string(i), {}, "key" + std::to_string(k)});
    }
  }
  ASSERT_TRUE(b_->publish("orders", batch).ok());

  std::map<std::string, int> next;  // key -> the next message it must get
  int delivered = 0, wrong_owner = 0, out_of_order = 0;
  for (int idle = 0; idle < 3;) {
    bool any = false;
    for (const auto& [broker, mine] : {std::pair{a_.get(), std::set<uint32_t>{0, 1}},
                                       std::pair{b_.get(), std::set<uint32_t>{2, 3}}}) {
      auto got = broker->pull("orders.work", 50);
      ASSERT_TRUE(got.ok()) << got.error().describe();
      std::vector<std::string> ids;
      for (const ReceivedMessage& m : *got) {
        ++delivered;
        if (!mine.count(bucket_of(m.message.ordering_key, 4))) ++wrong_owner;
        if (std::stoi(m.message.data) != next[m.message.ordering_key]++) ++out_of_order;
        ids.push_back(m.ack_id);
      }
      any = any || !ids.empty();
      if (!ids.empty()) {
        ASSERT_TRUE(broker->ack("orders.work", ids).ok());
      }
    }
    idle = any ? 0 : idle + 1;
  }
  EXPECT_EQ(delivered, kKeys * kEach);
  EXPECT_EQ(wrong_owner, 0);
  EXPECT_EQ(out_of_order, 0);
  // Each process knows its own part only.
  auto sa = a_->stats("orders.work");
  ASSERT_TRUE(sa.ok());
  EXPECT_FALSE(sa->undelivered.has_value());
  ASSERT_TRUE(sa->client.has_value());
  EXPECT_EQ(sa->client->in_flight + sa->client->held, 0u);
}

// A process that starts serving a bucket that another still serves fences the other off: the
// former owner's ack of a delivery it holds does not land, and the message comes to the new
// owner, with its attempt counted.
TEST_F(NatsSplit, TakingABucketOverFencesOffItsFormerOwner) {
  std::string key;  // a key of bucket 0
  for (int k = 0; key.empty(); ++k) {
    if (bucket_of("key" + std::to_string(k), 4) == 0) key = "key" + std::to_string(k);
  }
  ASSERT_TRUE(a_->serve_buckets("orders.work", {{0, 1}, {1, 1}}).ok());
  ASSERT_TRUE(b_->serve_buckets("orders.work", {{2, 1}, {3, 1}}).ok());
  std::vector<OutgoingMessage> two = {{"first", {}, key}, {"second", {}, key}};
  ASSERT_TRUE(a_->publish("orders", two).ok());
  auto held = a_->pull("orders.work", 10);
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].message.data, "first");

  // a stalls; b takes bucket 0 over at the next epoch, without a's leave.
  ASSERT_TRUE(b_->serve_buckets("orders.work", {{0, 2}, {2, 1}, {3, 1}}).ok());
  auto again = b_->pull("orders.work", 10);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].message.data, "first");
  EXPECT_EQ((*again)[0].delivery_attempt, 2);
  // a's late ack is refused, and changes nothing.
  const std::vector<std::string> late = {(*held)[0].ack_id};
  EXPECT_EQ(a_->ack("orders.work", late).code(), Errc::kUnavailable);
  // Not told yet, a reads the bucket's journal again, finds the later epoch, and leaves the
  // bucket alone: b is not fenced off in turn.
  auto stale = a_->pull("orders.work", 10);
  ASSERT_TRUE(stale.ok()) << stale.error().describe();
  EXPECT_TRUE(stale->empty());
  // a learns it lost the bucket; its deliveries are stale.
  ASSERT_TRUE(a_->serve_buckets("orders.work", {{1, 1}}).ok());
  EXPECT_EQ(*a_->ack("orders.work", late), 0u);
  // b goes on with the key, in order.
  const std::vector<std::string> done = {(*again)[0].ack_id};
  EXPECT_EQ(*b_->ack("orders.work", done), 1u);
  auto next = b_->pull("orders.work", 10);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].message.data, "second");
  auto none = a_->pull("orders.work", 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // A process serving no bucket pulls nothing, and knows it holds nothing.
  ASSERT_TRUE(a_->serve_buckets("orders.work", {}).ok());
  auto nothing = a_->pull("orders.work", 10);
  ASSERT_TRUE(nothing.ok());
  EXPECT_TRUE(nothing->empty());
  auto idle = a_->stats("orders.work");
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->idle(), std::optional<bool>(true));
}

// What a drain of "orders.work" by the processes serving its buckets got: each key's messages
// in the order they came, and how many came to a process that does not serve their bucket.
struct Drained {
  std::map<std::string, std::vector<std::string>> by_key;
  int delivered = 0, wrong_owner = 0;
};

// Pulls and acks until `want` messages came, or every process came back empty three times in a
// row, then once more (waiting 200 ms) to catch any extra. Each pull before waits up to 1.2 s,
// longer than a process takes to notice a journal written by another (a second).
Drained drain(const std::vector<std::pair<Broker*, std::set<uint32_t>>>& servers, int want) {
  Drained d;
  constexpr int64_t kWait = 1'200'000;
  for (int idle = 0; idle < 3;) {
    const bool last = d.delivered >= want;
    bool any = false;
    for (const auto& [broker, mine] : servers) {
      auto got = broker->pull("orders.work", 50, last ? kWait / 6 : kWait);
      EXPECT_TRUE(got.ok()) << got.error().describe();
      if (!got.ok()) return d;
      std::vector<std::string> ids;
      for (const ReceivedMessage& m : *got) {
        ++d.delivered;
        if (!mine.count(bucket_of(m.message.ordering_key, 4))) ++d.wrong_owner;
        d.by_key[m.message.ordering_key].push_back(m.message.data);
        ids.push_back(m.ack_id);
      }
      any = any || !ids.empty();
      if (!ids.empty()) {
        auto acked = broker->ack("orders.work", ids);
        EXPECT_TRUE(acked.ok()) << acked.error().describe();
      }
    }
    if (last && !any) break;
    idle = any ? 0 : idle + 1;
  }
  return d;
}

// Seeks and snapshots made through a process that serves none of the subscription's buckets
// (c) are taken up by the two that serve them (a and b), which notice the reset journals on
// their own: every message comes again once, to its bucket's owner, each key in order.
TEST_F(NatsSplit, ASeekThroughAnotherProcessIsTakenUpByTheProcessesServingTheBuckets) {
  auto c = Broker::open(BrokerOptions{harness_->url(), &clock_, 4});
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(a_->serve_buckets("orders.work", {{0, 1}, {1, 1}}).ok());
  ASSERT_TRUE(b_->serve_buckets("orders.work", {{2, 1}, {3, 1}}).ok());
  const std::vector<std::pair<Broker*, std::set<uint32_t>>> servers = {{a_.get(), {0, 1}},
                                                                       {b_.get(), {2, 3}}};
  constexpr int kKeys = 12, kEach = 3;
  auto batch = [&](const std::string& tag) {
    std::vector<OutgoingMessage> out;
    for (int i = 0; i < kEach; ++i) {
      for (int k = 0; k < kKeys; ++k) {
        out.push_back({tag + std::to_string(i), {}, "key" + std::to_string(k)});
      }
    }
    return out;
  };
  // What each key must get, for the batches named.
  auto expected = [&](std::vector<std::string> tags) {
    std::map<std::string, std::vector<std::string>> out;
    for (const std::string& tag : tags) {
      for (int i = 0; i < kEach; ++i) {
        for (int k = 0; k < kKeys; ++k)
          out["key" + std::to_string(k)].push_back(tag + std::to_string(i));
      }
    }
    return out;
  };
  auto check = [&](const std::vector<std::string>& tags) {
    const Drained d = drain(servers, static_cast<int>(tags.size()) * kKeys * kEach);
    EXPECT_EQ(d.wrong_owner, 0);
    EXPECT_EQ(d.delivered, static_cast<int>(tags.size()) * kKeys * kEach);
    EXPECT_EQ(d.by_key, expected(tags));  // each once, in order
  };

  const Timestamp t0 = clock_.now();
  clock_.advance_micros(kSecond);
  ASSERT_TRUE(b_->publish("orders", batch("a")).ok());
  check({"a"});
  auto snap = (*c)->create_snapshot("after-a", "orders.work", {});
  ASSERT_TRUE(snap.ok()) << snap.error().describe();
  // Nothing was unacked: it lasts 7 days from its making.
  EXPECT_EQ(snap->expire_time, clock_.now().plus_micros(kSnapshotLifeUs));
  clock_.advance_micros(kSecond);
  ASSERT_TRUE(b_->publish("orders", batch("b")).ok());
  // One delivery is out when the seek comes: its late ack changes nothing.
  auto out = a_->pull("orders.work", 1, 3 * kSecond / 2);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 1u);
  const std::string held_key = (*out)[0].message.ordering_key;

  ASSERT_TRUE((*c)->seek_to_time("orders.work", t0).ok());
  const std::vector<std::string> late = {(*out)[0].ack_id};
  auto late_ack = a_->ack("orders.work", late);
  EXPECT_TRUE(!late_ack.ok() || *late_ack == 0u);
  check({"a", "b"});

  ASSERT_TRUE((*c)->seek_to_snapshot("orders.work", "after-a").ok());
  check({"b"});
  EXPECT_FALSE(held_key.empty());

  // A snapshot made with messages unacked lasts 7 days from the oldest of them, and brings
  // back exactly those.
  clock_.advance_micros(kSecond);
  const Timestamp published_c = clock_.now();
  ASSERT_TRUE(b_->publish("orders", batch("c")).ok());
  clock_.advance_micros(kHour);
  auto pending = (*c)->create_snapshot("c-pending", "orders.work", {});
  ASSERT_TRUE(pending.ok()) << pending.error().describe();
  EXPECT_EQ(pending->expire_time, published_c.plus_micros(kSnapshotLifeUs));
  check({"c"});
  ASSERT_TRUE((*c)->seek_to_snapshot("orders.work", "c-pending").ok());
  check({"c"});
  // A seek ahead is a purge: nothing comes, until something new is published.
  ASSERT_TRUE((*c)->seek_to_time("orders.work", clock_.now().plus_micros(kHour)).ok());
  ASSERT_TRUE((*c)->seek_to_time("orders.work", t0).ok());
  ASSERT_TRUE((*c)->seek_to_time("orders.work", clock_.now().plus_micros(kHour)).ok());
  check({});
  // Deleting the topic deletes its snapshots.
  ASSERT_TRUE((*c)->delete_topic("orders").ok());
  EXPECT_EQ((*c)->get_snapshot("after-a").code(), Errc::kNotFound);
  EXPECT_TRUE((*c)->list_snapshots()->empty());
}

TEST(NatsMessage, AckRepliesOfBothFormsGiveSequenceAndPending) {
  nats::AckReply r;
  ASSERT_TRUE(nats::parse_ack_reply("$JS.ACK.bb-t-orders.Xy12.1.4711.42.1700000000000000000.9", r));
  EXPECT_EQ(r.stream_seq, 4711u);
  EXPECT_EQ(r.pending, 9u);
  ASSERT_TRUE(nats::parse_ack_reply(
      "$JS.ACK.hub.ACCHASH.bb-t-orders.Xy12.1.815.3.1700000000000000000.0.abc", r));
  EXPECT_EQ(r.stream_seq, 815u);
  EXPECT_EQ(r.pending, 0u);
  for (const char* bad :
       {"", "_INBOX.x", "$JS.ACK.s.c.1.2.3", "$JS.ACK.s.c.1.x.3.4.5", "$JS.ACK.s.c.1.2.3.4.5x"}) {
    EXPECT_FALSE(nats::parse_ack_reply(bad, r)) << bad;
  }
}

TEST(NatsMessage, TheIdTravelsWithTheMessage) {
  delivery::StoredMessage m{0, 123, "k", {{"a", "b"}}, "data"}, back;
  std::string payload, id;
  nats::encode_nats_message("0190-id", m, payload);
  ASSERT_TRUE(nats::decode_nats_message(payload, id, back));
  EXPECT_EQ(id, "0190-id");
  EXPECT_EQ(back.data, "data");
  EXPECT_EQ(back.attributes, m.attributes);
  EXPECT_FALSE(nats::decode_nats_message(payload.substr(0, payload.size() - 1), id, back));
  EXPECT_FALSE(nats::decode_nats_message("ab", id, back));
}

TEST(NatsUrl, ServersUserAndOptionsAreParsed) {
  auto u = nats::parse_nats_url(
      "nats://"
      "bb:p%40ss@10.0.0.1:4222,10.0.0.2:4223?namespace=prod-1&replicas=3&dup_window_ms=5000&"
      "inbox_prefix=_INBOX_prod&reader_buffer=1000");
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->servers, (std::vector<std::string>{"nats://10.0.0.1:4222", "nats://10.0.0.2:4223"}));
  EXPECT_EQ(u->user, "bb");
  EXPECT_EQ(u->password, "p@ss");
  EXPECT_EQ(u->ns, "prod-1");
  EXPECT_EQ(u->replicas, 3);
  EXPECT_EQ(u->dup_window_ms, 5000);
  EXPECT_EQ(u->inbox_prefix, "_INBOX_prod");
  EXPECT_EQ(u->reader_buffer, 1000);
  EXPECT_EQ(nats::redact_nats_url("nats://bb:secret@h:1"), "nats://bb:***@h:1");
}

TEST(NatsUrl, BadUrlsAreRefusedWithTheReason) {
  for (const char* bad :
       {"nats://", "nats://host", "nats://h:0", "nats://h:99999", "nats://h:1?replicas=9",
        "nats://h:1?namespace=a.b", "nats://h:1?bogus=1", "http://h:1",
        "nats://h:1?dup_window_ms=10", "nats://u:p%4@h:1", "nats://h:1?inbox_prefix=a.b"}) {
    auto u = nats::parse_nats_url(bad);
    EXPECT_EQ(u.code(), Errc::kInvalidArgument) << bad;
  }
}

TEST(NatsNames, NamesBecomeOneSubjectTokenInjectively) {
  EXPECT_EQ(nats::encode_name("events.raw.sandbox"), "events_2Eraw_2Esandbox");
  EXPECT_EQ(nats::encode_name("a_b"), "a_5Fb");
  EXPECT_NE(nats::encode_name("a._b"), nats::encode_name("a_.b"));
  EXPECT_EQ(nats::topic_subject("bb", "events.raw.production"), "bb.t.events_2Eraw_2Eproduction");
  EXPECT_EQ(nats::topic_stream("bb", "x~y"), "bb-t-x_7Ey");
  EXPECT_EQ(nats::check_encodable(std::string(201, 'a'), "topic").code(), Errc::kInvalidArgument);
  EXPECT_TRUE(nats::check_encodable(std::string(200, 'a'), "topic").ok());
}

}  // namespace
}  // namespace backbone::testing
