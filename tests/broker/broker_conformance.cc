#include "broker/broker_conformance.h"

#include <algorithm>
#include <map>
#include <thread>

#include "test_servers.h"

namespace backbone::testing {

void BrokerConformance::SetUp() {
  harness_ = GetParam().make();
  if (!harness_) {
    ASSERT_FALSE(test_servers_required())
        << "no " << GetParam().name << " server for the tests (make test starts one)";
    GTEST_SKIP() << "no " << GetParam().name << " server: run through `make test`";
  }
  std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  test = test.substr(0, test.find('/'));
  if (auto it = GetParam().cannot.find(test); it != GetParam().cannot.end()) {
    GTEST_SKIP() << GetParam().name << " cannot: " << it->second;
  }
  harness_->run_on(clock_);
  reopen();
}

void BrokerConformance::reopen() {
  broker_.reset();
  BrokerOptions o;
  o.url = harness_->url();
  o.clock = &clock_;
  o.buckets = harness_->buckets();
  auto b = Broker::open(o);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  broker_ = std::move(*b);
}

void BrokerConformance::make_sub(const std::string& topic, const std::string& sub,
                                 SubscriptionConfig config) {
  if (!b().get_topic(topic).ok()) {
    ASSERT_TRUE(b().create_topic({topic, {}}).ok());
  }
  config.name = sub;
  config.topic = topic;
  auto r = b().create_subscription(config);
  ASSERT_TRUE(r.ok()) << r.error().describe();
}

std::vector<std::string> BrokerConformance::publish(
    const std::string& topic, const std::vector<std::pair<std::string, std::string>>& key_data) {
  std::vector<OutgoingMessage> msgs;
  for (const auto& [key, data] : key_data) msgs.push_back({data, {{"n", data}}, key});
  auto ids = b().publish(topic, msgs);
  EXPECT_TRUE(ids.ok()) << ids.error().describe();
  return ids.ok() ? *ids : std::vector<std::string>{};
}

std::vector<ReceivedMessage> BrokerConformance::pull(const std::string& sub, size_t max) {
  auto r = b().pull(sub, max);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.ok() ? *r : std::vector<ReceivedMessage>{};
}

void BrokerConformance::ack(const std::string& sub, const std::vector<ReceivedMessage>& msgs) {
  std::vector<std::string> ids;
  for (const auto& m : msgs) ids.push_back(m.ack_id);
  auto r = b().ack(sub, ids);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(*r, msgs.size());
}

void BrokerConformance::nack(const std::string& sub, const ReceivedMessage& m,
                             const std::string& reason) {
  auto r = b().nack(sub, std::span(&m.ack_id, 1), std::nullopt, reason);
  ASSERT_TRUE(r.ok()) << r.error().describe();
}

namespace {

std::vector<std::string> datas(const std::vector<ReceivedMessage>& msgs) {
  std::vector<std::string> out;
  for (const auto& m : msgs) out.push_back(m.message.data);
  return out;
}

// `got` without the labels that `want` does not have and the backend added (backbone's Pub/Sub
// front adds "env"); a label of `want` that is missing or changed stays a difference.
SubscriptionConfig without_added_labels(SubscriptionConfig got, const SubscriptionConfig& want) {
  std::erase_if(got.labels, [&](const auto& kv) { return !want.labels.contains(kv.first); });
  return got;
}

SubscriptionConfig with_dead_letter(const std::string& dlq_topic, int attempts = 5) {
  SubscriptionConfig c;
  c.dead_letter = DeadLetterPolicy{dlq_topic, attempts};
  return c;
}

}  // namespace

TEST_P(BrokerConformance, TopicsAndSubscriptionsAreCreatedListedAndDeleted) {
  ASSERT_TRUE(b().create_topic({"orders", {{"team", "a"}}}).ok());
  EXPECT_EQ(b().create_topic({"orders", {}}).code(), Errc::kAlreadyExists);
  EXPECT_EQ(b().get_topic("orders")->labels.at("team"), "a");
  EXPECT_EQ(b().get_topic("nope").code(), Errc::kNotFound);
  SubscriptionConfig c;
  c.name = "orders.audit";
  c.topic = "orders";
  c.ack_deadline_us = 60 * kSecond;
  c.ordered = true;
  c.retry = RetryPolicy{10 * kSecond, 600 * kSecond};
  c.retention_us = 31 * kDay;
  auto created = b().create_subscription(c);
  ASSERT_TRUE(created.ok()) << created.error().describe();
  EXPECT_EQ(b().create_subscription(c).code(), Errc::kAlreadyExists);
  EXPECT_EQ(without_added_labels(*b().get_subscription("orders.audit"), c), c);
  EXPECT_EQ(b().list_topics()->size(), 1u);
  EXPECT_EQ(b().list_subscriptions()->size(), 1u);
  c.name = "other";
  c.topic = "missing";
  EXPECT_EQ(b().create_subscription(c).code(), Errc::kNotFound);
  ASSERT_TRUE(b().delete_subscription("orders.audit").ok());
  EXPECT_EQ(b().get_subscription("orders.audit").code(), Errc::kNotFound);
  ASSERT_TRUE(b().delete_topic("orders").ok());
  EXPECT_TRUE(b().list_topics()->empty());
}

TEST_P(BrokerConformance, BadNamesAndPoliciesAreRefused) {
  EXPECT_EQ(b().create_topic({"x", {}}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(b().create_topic({"goog-topic", {}}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(b().create_topic({"1abc", {}}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(b().create_topic({"a b c", {}}).code(), Errc::kInvalidArgument);
  ASSERT_TRUE(b().create_topic({"orders", {}}).ok());
  ASSERT_TRUE(b().create_topic({"orders.dlq", {}}).ok());
  auto bad = [&](auto mutate, const char* field) {
    SubscriptionConfig c;
    c.name = "sub";
    c.topic = "orders";
    mutate(c);
    auto r = b().create_subscription(c);
    EXPECT_EQ(r.code(), Errc::kInvalidArgument) << field;
    if (!r.ok()) {
      EXPECT_EQ(r.error().where, field);
    }
  };
  bad([](auto& c) { c.ack_deadline_us = 9 * kSecond; }, "ack_deadline");
  bad([](auto& c) { c.ack_deadline_us = 601 * kSecond; }, "ack_deadline");
  bad(
      [](auto& c) {
        c.retry = RetryPolicy{20 * kSecond, 10 * kSecond};
      },
      "retry_policy.maximum_backoff");
  bad(
      [](auto& c) {
        c.retry = RetryPolicy{601 * kSecond, 601 * kSecond};
      },
      "retry_policy.minimum_backoff");
  bad(
      [](auto& c) {
        c.dead_letter = DeadLetterPolicy{"orders.dlq", 4};
      },
      "dead_letter_policy.max_delivery_attempts");
  bad(
      [](auto& c) {
        c.dead_letter = DeadLetterPolicy{"orders.dlq", 101};
      },
      "dead_letter_policy.max_delivery_attempts");
  bad([](auto& c) { c.retention_us = 32 * kDay; }, "message_retention_duration");
  SubscriptionConfig c = with_dead_letter("no.such.topic");
  c.name = "sub";
  c.topic = "orders";
  EXPECT_EQ(b().create_subscription(c).code(), Errc::kNotFound);
}

TEST_P(BrokerConformance, PublishedMessagesArriveWhole) {
  make_sub("orders", "orders.work");
  OutgoingMessage m{"payload \x01\x02", {{"type", "created"}, {"source", "crm"}}, "order:7"};
  auto ids = b().publish("orders", std::span(&m, 1));
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 1u);
  auto got = pull("orders.work");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message.id, (*ids)[0]);
  EXPECT_EQ(got[0].message.data, m.data);
  EXPECT_EQ(got[0].message.attributes, m.attributes);
  EXPECT_EQ(got[0].message.ordering_key, "order:7");
  EXPECT_EQ(got[0].message.publish_time, clock_.now());
  EXPECT_EQ(got[0].delivery_attempt, 1);
}

TEST_P(BrokerConformance, BadPublishesAreRefusedAndNothingIsStored) {
  make_sub("orders", "orders.work");
  OutgoingMessage empty;
  EXPECT_EQ(b().publish("orders", std::span(&empty, 1)).code(), Errc::kInvalidArgument);
  OutgoingMessage big{std::string(kMaxMessageBytes + 1, 'x'), {}, ""};
  EXPECT_EQ(b().publish("orders", std::span(&big, 1)).code(), Errc::kTooLarge);
  OutgoingMessage ok{"x", {}, ""};
  EXPECT_EQ(b().publish("missing.topic", std::span(&ok, 1)).code(), Errc::kNotFound);
  std::vector<OutgoingMessage> batch = {ok, empty};
  EXPECT_EQ(b().publish("orders", batch).code(), Errc::kInvalidArgument);
  EXPECT_TRUE(pull("orders.work").empty());
}

TEST_P(BrokerConformance, EverySubscriptionGetsEveryMessage) {
  make_sub("orders", "orders.a");
  make_sub("orders", "orders.b");
  publish("orders", {{"", "1"}, {"", "2"}});
  make_sub("orders", "orders.late");  // created after: sees only what follows
  publish("orders", {{"", "3"}});
  EXPECT_EQ(datas(pull("orders.a")), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(datas(pull("orders.b")), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(datas(pull("orders.late")), (std::vector<std::string>{"3"}));
}

TEST_P(BrokerConformance, AnAckedMessageNeverComesBack) {
  make_sub("orders", "orders.work");
  publish("orders", {{"", "1"}, {"", "2"}});
  auto got = pull("orders.work");
  ASSERT_EQ(got.size(), 2u);
  ack("orders.work", {got[0]});
  clock_.advance_micros(11 * kSecond);  // past the 10 s deadline
  auto again = pull("orders.work");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].message.data, "2");
  EXPECT_EQ(again[0].delivery_attempt, 2);
  // The first delivery's ack id is stale now: acking it does nothing.
  auto stale = b().ack("orders.work", std::span(&got[1].ack_id, 1));
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(*stale, 0u);
  ack("orders.work", again);
  clock_.advance_micros(60 * kSecond);
  EXPECT_TRUE(pull("orders.work").empty());
  auto bad = std::string("garbage");
  EXPECT_EQ(b().ack("orders.work", std::span(&bad, 1)).code(), Errc::kInvalidArgument);
}

TEST_P(BrokerConformance, AnUnackedMessageIsRedeliveredWhenItsDeadlinePasses) {
  SubscriptionConfig c;
  c.ack_deadline_us = 30 * kSecond;
  make_sub("orders", "orders.work", c);
  publish("orders", {{"", "1"}});
  ASSERT_EQ(pull("orders.work").size(), 1u);
  clock_.advance_micros(30 * kSecond - 1);
  EXPECT_TRUE(pull("orders.work").empty());
  EXPECT_EQ(b().stats("orders.work")->in_flight, 1u);
  clock_.advance_micros(1);
  auto again = pull("orders.work");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery_attempt, 2);
}

TEST_P(BrokerConformance, ModifyAckDeadlineExtendsADelivery) {
  make_sub("orders", "orders.work");
  publish("orders", {{"", "1"}});
  auto got = pull("orders.work");
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(
      b().modify_ack_deadline("orders.work", std::span(&got[0].ack_id, 1), 120 * kSecond).ok());
  clock_.advance_micros(119 * kSecond);
  EXPECT_TRUE(pull("orders.work").empty());
  ack("orders.work", got);  // still current
  clock_.advance_micros(600 * kSecond);
  EXPECT_TRUE(pull("orders.work").empty());
  EXPECT_EQ(
      b().modify_ack_deadline("orders.work", std::span(&got[0].ack_id, 1), 601 * kSecond).code(),
      Errc::kInvalidArgument);
}

TEST_P(BrokerConformance, ANackRedeliversAtOnceOrAfterItsDelay) {
  make_sub("orders", "orders.work");
  publish("orders", {{"", "1"}});
  auto got = pull("orders.work");
  nack("orders.work", got[0]);
  auto again = pull("orders.work");  // no retry policy: at once
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery_attempt, 2);
  ASSERT_TRUE(b().nack("orders.work", std::span(&again[0].ack_id, 1), 5 * kSecond, "later").ok());
  clock_.advance_micros(5 * kSecond - 1);
  EXPECT_TRUE(pull("orders.work").empty());
  clock_.advance_micros(1);
  EXPECT_EQ(pull("orders.work").size(), 1u);
}

TEST_P(BrokerConformance, RetriesFollowTheExponentialBackoffSchedule) {
  SubscriptionConfig c = with_dead_letter("orders.dlq", 10);
  c.retry = RetryPolicy{10 * kSecond, 600 * kSecond};
  ASSERT_TRUE(b().create_topic({"orders.dlq", {}}).ok());
  make_sub("orders", "orders.work", c);
  publish("orders", {{"", "1"}});
  const int64_t want[] = {10, 20, 40, 80, 160, 320, 600, 600, 600};
  auto got = pull("orders.work");
  ASSERT_EQ(got.size(), 1u);
  for (int attempt = 1; attempt <= 9; ++attempt) {
    ASSERT_EQ(got[0].delivery_attempt, attempt);
    nack("orders.work", got[0]);
    clock_.advance_micros(want[attempt - 1] * kSecond - 1);
    EXPECT_TRUE(pull("orders.work").empty()) << "attempt " << attempt;
    clock_.advance_micros(1);
    got = pull("orders.work");
    ASSERT_EQ(got.size(), 1u) << "attempt " << attempt;
  }
  EXPECT_EQ(retry_backoff_us(RetryPolicy{0, 0}, 3), 0);
  EXPECT_EQ(retry_backoff_us(std::nullopt, 3), 0);
}

TEST_P(BrokerConformance, AMessageIsDeadLetteredAfterExactlyMaxAttempts) {
  ASSERT_TRUE(b().create_topic({"orders.dlq", {}}).ok());
  make_sub("orders.dlq", "orders.dlq.inspect");
  make_sub("orders", "orders.work", with_dead_letter("orders.dlq", 5));
  OutgoingMessage m{"poison", {{"type", "created"}}, "order:1"};
  ASSERT_TRUE(b().publish("orders", std::span(&m, 1)).ok());
  for (int attempt = 1; attempt <= 5; ++attempt) {
    auto got = pull("orders.work");
    ASSERT_EQ(got.size(), 1u) << attempt;
    EXPECT_EQ(got[0].delivery_attempt, attempt);
    EXPECT_TRUE(pull("orders.dlq.inspect").empty());
    nack("orders.work", got[0], "boom " + std::to_string(attempt));
  }
  EXPECT_TRUE(pull("orders.work").empty());
  auto dead = pull("orders.dlq.inspect");
  ASSERT_EQ(dead.size(), 1u);
  const auto& attrs = dead[0].message.attributes;
  EXPECT_EQ(dead[0].message.data, "poison");
  EXPECT_EQ(dead[0].message.ordering_key, "order:1");
  EXPECT_EQ(attrs.at("type"), "created");
  EXPECT_EQ(attrs.at(std::string(kAttrDeliveryAttempt)), "5");
  EXPECT_EQ(attrs.at(std::string(kAttrLastError)), "boom 5");
  EXPECT_EQ(attrs.at(std::string(kAttrSourceSubscription)), "orders.work");
  EXPECT_FALSE(attrs.at(std::string(kAttrSourceMessageId)).empty());
}

TEST_P(BrokerConformance, StatsCountDeadLetters) {
  ASSERT_TRUE(b().create_topic({"orders.dlq", {}}).ok());
  make_sub("orders", "orders.work", with_dead_letter("orders.dlq", 5));
  publish("orders", {{"", "poison"}, {"", "fine"}});
  auto got = pull("orders.work");
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE(b().dead_letter("orders.work", got[0].ack_id, "bad").ok());
  auto s = b().stats("orders.work");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dead_lettered, 1u);
  EXPECT_EQ(s->in_flight, 1u);
  ack("orders.work", {got[1]});
  s = b().stats("orders.work");
  EXPECT_EQ(s->dead_lettered, 1u);
  EXPECT_EQ(s->undelivered, 0u);
  EXPECT_EQ(s->in_flight, 0u);
}

TEST_P(BrokerConformance, ExpiredDeadlinesCountTowardsTheDeadLetter) {
  ASSERT_TRUE(b().create_topic({"orders.dlq", {}}).ok());
  make_sub("orders.dlq", "orders.dlq.inspect");
  make_sub("orders", "orders.work", with_dead_letter("orders.dlq", 5));
  publish("orders", {{"", "slow"}});
  for (int attempt = 1; attempt <= 5; ++attempt) {
    ASSERT_EQ(pull("orders.work").size(), 1u);
    clock_.advance_micros(10 * kSecond);
  }
  EXPECT_TRUE(pull("orders.work").empty());
  auto dead = pull("orders.dlq.inspect");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].message.attributes.at(std::string(kAttrLastError)), "ack deadline exceeded");
}

TEST_P(BrokerConformance, ANonRetriableFailureIsDeadLetteredAtOnce) {
  ASSERT_TRUE(b().create_topic({"orders.dlq", {}}).ok());
  make_sub("orders.dlq", "orders.dlq.inspect");
  make_sub("orders", "orders.work", with_dead_letter("orders.dlq", 5));
  make_sub("orders", "orders.plain");
  publish("orders", {{"", "1"}});
  auto got = pull("orders.work");
  ASSERT_TRUE(b().dead_letter("orders.work", got[0].ack_id, "conflict: stale base").ok());
  auto dead = pull("orders.dlq.inspect");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].message.attributes.at(std::string(kAttrDeliveryAttempt)), "1");
  EXPECT_EQ(dead[0].message.attributes.at(std::string(kAttrLastError)), "conflict: stale base");
  clock_.advance_micros(600 * kSecond);
  EXPECT_TRUE(pull("orders.work").empty());
  auto plain = pull("orders.plain");
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(b().dead_letter("orders.plain", plain[0].ack_id, "x").code(), Errc::kInvalidArgument);
}

TEST_P(BrokerConformance, AnOrderedKeyHasOneMessageOutAtATime) {
  SubscriptionConfig c;
  c.ordered = true;
  make_sub("orders", "orders.work", c);
  publish("orders", {{"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {"a", "a3"}, {"b", "b2"}, {"", "x"}});
  auto first = pull("orders.work");
  EXPECT_EQ(datas(first), (std::vector<std::string>{"a1", "b1", "x"}));
  EXPECT_TRUE(pull("orders.work").empty());  // a and b each have their head out
  ack("orders.work", {first[0]});
  EXPECT_EQ(datas(pull("orders.work")), (std::vector<std::string>{"a2"}));
  ack("orders.work", {first[1]});
  auto b2 = pull("orders.work");
  EXPECT_EQ(datas(b2), (std::vector<std::string>{"b2"}));
}

TEST_P(BrokerConformance, AKeyWaitingForItsRetryDoesNotBlockOtherKeys) {
  SubscriptionConfig c;
  c.ordered = true;
  c.retry = RetryPolicy{10 * kSecond, 600 * kSecond};
  make_sub("orders", "orders.work", c);
  publish("orders", {{"a", "a1"}, {"a", "a2"}, {"b", "b1"}, {"b", "b2"}});
  auto got = pull("orders.work");
  ASSERT_EQ(datas(got), (std::vector<std::string>{"a1", "b1"}));
  nack("orders.work", got[0]);   // a1 waits 10 s; a2 waits behind it
  ack("orders.work", {got[1]});  // b flows on
  EXPECT_EQ(datas(pull("orders.work")), (std::vector<std::string>{"b2"}));
  clock_.advance_micros(10 * kSecond);
  auto retry = pull("orders.work");
  ASSERT_EQ(datas(retry), (std::vector<std::string>{"a1"}));
  EXPECT_EQ(retry[0].delivery_attempt, 2);
  ack("orders.work", retry);
  EXPECT_EQ(datas(pull("orders.work")), (std::vector<std::string>{"a2"}));
}

TEST_P(BrokerConformance, AKeyFlowsOnAfterADeadLetter) {
  ASSERT_TRUE(b().create_topic({"orders.dlq", {}}).ok());
  make_sub("orders.dlq", "orders.dlq.inspect");
  SubscriptionConfig c = with_dead_letter("orders.dlq", 5);
  c.ordered = true;
  make_sub("orders", "orders.work", c);
  publish("orders", {{"k", "1"}, {"k", "2"}, {"k", "3"}});
  for (int attempt = 1; attempt <= 5; ++attempt) {
    auto got = pull("orders.work");
    ASSERT_EQ(datas(got), (std::vector<std::string>{"1"})) << attempt;
    nack("orders.work", got[0]);
  }
  auto next = pull("orders.work");
  ASSERT_EQ(datas(next), (std::vector<std::string>{"2"}));
  EXPECT_EQ(next[0].delivery_attempt, 1);
  ASSERT_TRUE(b().dead_letter("orders.work", next[0].ack_id, "non-retriable").ok());
  EXPECT_EQ(datas(pull("orders.work")), (std::vector<std::string>{"3"}));
  EXPECT_EQ(datas(pull("orders.dlq.inspect")), (std::vector<std::string>{"1", "2"}));
}

TEST_P(BrokerConformance, AStreamedKeyGoesOutInOrderWithoutWaitingForAcks) {
  SubscriptionConfig c;
  c.ordered = true;
  c.key_delivery = KeyDelivery::kStreamed;
  make_sub("orders", "orders.work", c);
  auto got = b().get_subscription("orders.work");
  ASSERT_TRUE(got.ok()) << got.error().describe();
  EXPECT_EQ(got->key_delivery, KeyDelivery::kStreamed);
  publish("orders", {{"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {"a", "a3"}, {"b", "b2"}});
  std::vector<ReceivedMessage> all;
  for (int i = 0; i < 20 && all.size() < 5; ++i) {
    for (auto& m : pull("orders.work")) all.push_back(std::move(m));
  }
  std::map<std::string, std::vector<std::string>> by_key;
  for (const auto& m : all) by_key[m.message.ordering_key].push_back(m.message.data);
  EXPECT_EQ(by_key["a"], (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(by_key["b"], (std::vector<std::string>{"b1", "b2"}));
  ack("orders.work", all);
  EXPECT_TRUE(pull("orders.work").empty());
}

TEST_P(BrokerConformance, ANackOnAStreamedKeyBringsItsLaterMessagesBackAfterIt) {
  SubscriptionConfig c;
  c.ordered = true;
  c.key_delivery = KeyDelivery::kStreamed;
  c.retry = RetryPolicy{10 * kSecond, 600 * kSecond};
  make_sub("orders", "orders.work", c);
  publish("orders", {{"a", "a1"}, {"a", "a2"}, {"a", "a3"}, {"b", "b1"}});
  std::map<std::string, ReceivedMessage> got;  // by data: keys may interleave either way
  for (const auto& m : pull("orders.work")) got[m.message.data] = m;
  ASSERT_EQ(got.size(), 4u);
  ack("orders.work", {got["a1"]});
  nack("orders.work", got["a2"]);  // a2 waits 10 s; a3, out behind it, is withdrawn
  ack("orders.work", {got["b1"]});
  EXPECT_TRUE(pull("orders.work").empty());  // a3 does not overtake a2
  clock_.advance_micros(10 * kSecond);
  auto again = pull("orders.work");
  ASSERT_EQ(datas(again), (std::vector<std::string>{"a2", "a3"}));
  ack("orders.work", again);
  EXPECT_TRUE(pull("orders.work").empty());
}

TEST_P(BrokerConformance, AnUnorderedSubscriptionIgnoresKeys) {
  make_sub("orders", "orders.work");
  publish("orders", {{"a", "1"}, {"a", "2"}, {"a", "3"}});
  EXPECT_EQ(pull("orders.work").size(), 3u);
}

TEST_P(BrokerConformance, PerKeyOrderHoldsUnderConcurrentPublishers) {
  SubscriptionConfig c;
  c.ordered = true;
  make_sub("orders", "orders.work", c);
  constexpr int kThreads = 4, kPerThread = 100, kKeys = 5;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        OutgoingMessage m{
            std::to_string(t) + ":" + std::to_string(i), {}, "key" + std::to_string(i % kKeys)};
        EXPECT_TRUE(b().publish("orders", std::span(&m, 1)).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<std::string, std::map<int, int>> last;  // key -> thread -> last i
  size_t received = 0;
  for (int rounds = 0; rounds < 10'000 && received < kThreads * kPerThread; ++rounds) {
    auto got = pull("orders.work", 50);
    for (const auto& m : got) {
      const auto colon = m.message.data.find(':');
      const int t = std::stoi(m.message.data.substr(0, colon));
      const int i = std::stoi(m.message.data.substr(colon + 1));
      auto& prev = last[m.message.ordering_key];
      if (prev.count(t)) {
        EXPECT_LT(prev[t], i) << m.message.ordering_key;
      }
      prev[t] = i;
    }
    received += got.size();
    ack("orders.work", got);
  }
  EXPECT_EQ(received, static_cast<size_t>(kThreads * kPerThread));
}

TEST_P(BrokerConformance, StatsReportBacklogInFlightAndAge) {
  make_sub("orders", "orders.work");
  publish("orders", {{"", "1"}, {"", "2"}, {"", "3"}});
  clock_.advance_micros(7 * kSecond);
  auto s = b().stats("orders.work");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->undelivered, 3u);
  EXPECT_EQ(s->in_flight, 0u);
  EXPECT_EQ(s->oldest_unacked_age_us, 7 * kSecond);
  auto got = pull("orders.work", 2);
  s = b().stats("orders.work");
  EXPECT_EQ(s->undelivered, 1u);
  EXPECT_EQ(s->in_flight, 2u);
  ack("orders.work", got);
  s = b().stats("orders.work");
  EXPECT_EQ(s->in_flight, 0u);
  EXPECT_EQ(s->oldest_unacked_age_us, 7 * kSecond);  // message 3 is still unacked
  ack("orders.work", pull("orders.work"));
  s = b().stats("orders.work");
  EXPECT_EQ(s->undelivered, 0u);
  EXPECT_EQ(s->oldest_unacked_age_us, 0);
  EXPECT_EQ(b().stats("nope").code(), Errc::kNotFound);
}

TEST_P(BrokerConformance, UnackedMessagesOlderThanTheRetentionAreDropped) {
  SubscriptionConfig c;
  c.retention_us = 10 * kMinute;
  make_sub("orders", "orders.work", c);
  publish("orders", {{"", "old"}});
  clock_.advance_micros(5 * kMinute);
  publish("orders", {{"", "new"}});
  clock_.advance_micros(5 * kMinute);
  EXPECT_EQ(datas(pull("orders.work")), (std::vector<std::string>{"new"}));
}

TEST_P(BrokerConformance, EverythingSurvivesAReopen) {
  ASSERT_TRUE(b().create_topic({"orders.dlq", {}}).ok());
  SubscriptionConfig c = with_dead_letter("orders.dlq", 5);
  c.ordered = true;
  c.retry = RetryPolicy{10 * kSecond, 600 * kSecond};
  make_sub("orders", "orders.work", c);
  publish("orders", {{"a", "a1"}, {"a", "a2"}, {"b", "b1"}, {"", "x"}});
  auto got = pull("orders.work");
  ASSERT_EQ(datas(got), (std::vector<std::string>{"a1", "b1", "x"}));
  ack("orders.work", {got[2]});  // x is done
  nack("orders.work", got[0]);   // a1 failed once; waits 10 s
  // b1 stays in flight across the restart.
  reopen();
  c.name = "orders.work";
  c.topic = "orders";
  EXPECT_EQ(without_added_labels(*b().get_subscription("orders.work"), c), c);
  auto after = pull("orders.work");
  ASSERT_EQ(datas(after), (std::vector<std::string>{"b1"}));
  EXPECT_EQ(after[0].delivery_attempt, 2);
  clock_.advance_micros(10 * kSecond);
  auto a = pull("orders.work");
  ASSERT_EQ(datas(a), (std::vector<std::string>{"a1"}));
  EXPECT_EQ(a[0].delivery_attempt, 2);
  ack("orders.work", a);
  EXPECT_EQ(datas(pull("orders.work")), (std::vector<std::string>{"a2"}));
  // Old ack ids from before the restart are stale.
  auto stale = b().ack("orders.work", std::span(&got[1].ack_id, 1));
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(*stale, 0u);
}

TEST_P(BrokerConformance, UpdateChangesPoliciesButNotOrderingOrTopic) {
  make_sub("orders", "orders.work");
  auto c = *b().get_subscription("orders.work");
  c.ack_deadline_us = 90 * kSecond;
  c.retry = RetryPolicy{kSecond, 2 * kSecond};
  auto updated = b().update_subscription(c);
  ASSERT_TRUE(updated.ok()) << updated.error().describe();
  EXPECT_EQ(without_added_labels(*b().get_subscription("orders.work"), c), c);
  auto reorder = c;
  reorder.ordered = true;
  EXPECT_EQ(b().update_subscription(reorder).code(), Errc::kInvalidArgument);
  ASSERT_TRUE(b().create_topic({"other", {}}).ok());
  auto retopic = c;
  retopic.topic = "other";
  EXPECT_EQ(b().update_subscription(retopic).code(), Errc::kInvalidArgument);
  auto missing = c;
  missing.name = "nope";
  EXPECT_EQ(b().update_subscription(missing).code(), Errc::kNotFound);
}

TEST_P(BrokerConformance, DeletingATopicDetachesItsSubscriptions) {
  ASSERT_TRUE(b().create_topic({"orders.dlq", {}}).ok());
  make_sub("orders", "orders.work", with_dead_letter("orders.dlq", 5));
  publish("orders", {{"", "1"}});
  EXPECT_EQ(b().delete_topic("orders.dlq").code(), Errc::kConflict);
  ASSERT_TRUE(b().delete_topic("orders").ok());
  EXPECT_TRUE(pull("orders.work").empty());
  EXPECT_NE(b().get_subscription("orders.work")->topic, "orders");
  ASSERT_TRUE(b().create_topic({"orders", {}}).ok());  // a new topic of the same name
  OutgoingMessage m{"2", {}, ""};
  ASSERT_TRUE(b().publish("orders", std::span(&m, 1)).ok());
  EXPECT_TRUE(pull("orders.work").empty());
}

TEST_P(BrokerConformance, ATopicsLabelsAndRetentionAreUpdated) {
  ASSERT_TRUE(b().create_topic({"orders", {{"team", "a"}}, std::nullopt}).ok());
  TopicConfig want{"orders", {{"team", "b"}, {"tier", "gold"}}, 3 * kDay};
  auto up = b().update_topic(want);
  ASSERT_TRUE(up.ok()) << up.error().describe();
  auto check = [&] {
    auto got = b().get_topic("orders");
    ASSERT_TRUE(got.ok()) << got.error().describe();
    EXPECT_EQ(got->retention_us, want.retention_us);
    for (const auto& [k, v] : want.labels) EXPECT_EQ(got->labels[k], v) << k;
  };
  check();
  reopen();
  check();
  EXPECT_EQ(b().update_topic({"nowhere", {}, std::nullopt}).code(), Errc::kNotFound);
  EXPECT_EQ(b().update_topic({"orders", {}, 5 * kMinute}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(b().update_topic({"orders", {}, 32 * kDay}).code(), Errc::kInvalidArgument);
  check();  // a refused update changed nothing
}

TEST_P(BrokerConformance, ADetachedSubscriptionHoldsAndReceivesNothing) {
  make_sub("orders", "orders.work");
  make_sub("orders", "orders.audit");
  publish("orders", {{"", "1"}, {"", "2"}});
  ASSERT_EQ(pull("orders.work", 1).size(), 1u);  // one in flight, one waiting
  auto d = b().detach_subscription("orders.work");
  ASSERT_TRUE(d.ok()) << d.error().describe();
  auto check = [&] {
    auto got = b().get_subscription("orders.work");
    ASSERT_TRUE(got.ok()) << got.error().describe();
    EXPECT_TRUE(got->detached);
    EXPECT_EQ(b().pull("orders.work", 10).code(), Errc::kImmutable);
  };
  check();
  publish("orders", {{"", "3"}});
  check();
  EXPECT_EQ(datas(pull("orders.audit")), (std::vector<std::string>{"1", "2", "3"}));
  SubscriptionConfig again = *b().get_subscription("orders.work");
  again.detached = false;
  EXPECT_EQ(b().update_subscription(again).code(), Errc::kInvalidArgument);
  reopen();
  check();
  EXPECT_EQ(b().detach_subscription("nowhere").code(), Errc::kNotFound);
  EXPECT_TRUE(b().delete_subscription("orders.work").ok());
}

TEST_P(BrokerConformance, ASeekToATimeRedeliversWhatWasPublishedSinceAndAcksWhatCameBefore) {
  make_sub("orders", "orders.work");
  const Timestamp t0 = clock_.now();
  publish("orders", {{"", "1"}, {"", "2"}});
  clock_.advance_micros(10 * kSecond);
  const Timestamp t1 = clock_.now();
  publish("orders", {{"", "3"}, {"", "4"}});
  auto first = pull("orders.work");
  ASSERT_EQ(first.size(), 4u);
  ack("orders.work", first);
  ASSERT_TRUE(b().seek_to_time("orders.work", t1).ok());
  EXPECT_EQ(datas(pull("orders.work")), (std::vector<std::string>{"3", "4"}));
  auto back = b().seek_to_time("orders.work", t0);
  ASSERT_TRUE(back.ok()) << back.error().describe();
  reopen();  // the seek is durable
  auto again = pull("orders.work");
  EXPECT_EQ(datas(again), (std::vector<std::string>{"1", "2", "3", "4"}));
  // A delivery from before a seek is stale after it.
  ASSERT_TRUE(b().seek_to_time("orders.work", t1.plus_micros(kHour)).ok());  // ahead: a purge
  EXPECT_TRUE(pull("orders.work").empty());
  publish("orders", {{"", "5"}});
  EXPECT_EQ(datas(pull("orders.work")), (std::vector<std::string>{"5"}));
  EXPECT_EQ(b().seek_to_time("nowhere", t0).code(), Errc::kNotFound);
}

TEST_P(BrokerConformance, ASnapshotPutsBackTheAcknowledgementStateItWasMadeWith) {
  make_sub("orders", "orders.work");
  make_sub("orders", "orders.other");
  make_sub("payments", "payments.work");
  publish("orders", {{"", "1"}, {"", "2"}, {"", "3"}});
  auto got = pull("orders.work");
  ASSERT_EQ(datas(got), (std::vector<std::string>{"1", "2", "3"}));
  ack("orders.work", {got[0]});
  auto made = b().create_snapshot("before-2", "orders.work", {{"why", "test"}});
  ASSERT_TRUE(made.ok()) << made.error().describe();
  EXPECT_EQ(made->topic, "orders");
  EXPECT_EQ(made->labels.at("why"), "test");
  // It lasts 7 days from its oldest unacked message, published now.
  EXPECT_EQ(made->expire_time, clock_.now().plus_micros(kSnapshotLifeUs));
  ack("orders.work", {got[1], got[2]});
  publish("orders", {{"", "4"}});
  ack("orders.work", pull("orders.work"));
  EXPECT_TRUE(pull("orders.work").empty());

  ASSERT_TRUE(b().seek_to_snapshot("orders.work", "before-2").ok());
  EXPECT_EQ(datas(pull("orders.work")), (std::vector<std::string>{"2", "3", "4"}));
  // Another subscription of the same topic may take it up too; one of another topic may not.
  ack("orders.other", pull("orders.other"));
  ASSERT_TRUE(b().seek_to_snapshot("orders.other", "before-2").ok());
  EXPECT_EQ(datas(pull("orders.other")), (std::vector<std::string>{"2", "3", "4"}));
  EXPECT_EQ(b().seek_to_snapshot("payments.work", "before-2").code(), Errc::kInvalidArgument);

  auto listed = b().list_snapshots();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].name, "before-2");
  EXPECT_EQ(b().create_snapshot("before-2", "orders.work", {}).code(), Errc::kAlreadyExists);
  EXPECT_EQ(b().create_snapshot("other", "nowhere", {}).code(), Errc::kNotFound);
  EXPECT_EQ(b().seek_to_snapshot("orders.work", "nowhere").code(), Errc::kNotFound);
  EXPECT_EQ(b().create_snapshot("bad name!", "orders.work", {}).code(), Errc::kInvalidArgument);

  SnapshotConfig later = *made;
  later.expire_time = made->expire_time.plus_micros(kDay);
  EXPECT_EQ(b().update_snapshot(later).code(), Errc::kInvalidArgument);
  SnapshotConfig relabelled = *made;
  relabelled.labels = {{"why", "kept"}};
  ASSERT_TRUE(b().update_snapshot(relabelled).ok());
  reopen();
  auto kept = b().get_snapshot("before-2");
  ASSERT_TRUE(kept.ok()) << kept.error().describe();
  EXPECT_EQ(kept->labels.at("why"), "kept");
  ASSERT_TRUE(b().delete_snapshot("before-2").ok());
  EXPECT_EQ(b().get_snapshot("before-2").code(), Errc::kNotFound);
  EXPECT_EQ(b().delete_snapshot("before-2").code(), Errc::kNotFound);
}

TEST_P(BrokerConformance, ASnapshotLapsesAtItsExpireTime) {
  make_sub("orders", "orders.work");
  publish("orders", {{"", "1"}});
  ASSERT_TRUE(b().create_snapshot("weekly", "orders.work", {}).ok());
  clock_.advance_micros(kSnapshotLifeUs - kSecond);
  EXPECT_TRUE(b().get_snapshot("weekly").ok());
  clock_.advance_micros(kSecond);
  EXPECT_EQ(b().get_snapshot("weekly").code(), Errc::kNotFound);
  EXPECT_EQ(b().seek_to_snapshot("orders.work", "weekly").code(), Errc::kNotFound);
  EXPECT_TRUE(b().list_snapshots()->empty());
  // A subscription whose oldest unacked message is within an hour of 7 days old cannot.
  EXPECT_EQ(b().create_snapshot("late", "orders.work", {}).code(), Errc::kImmutable);
}

const char* const kProvinceAvro =
    R"({"type": "record", "name": "Province", "namespace": "utilities",
  "fields": [{"name": "name", "type": "string"}, {"name": "post_abbr", "type": "string"}]})";
const char* const kProvinceAvroV2 =
    R"({"type": "record", "name": "Province", "namespace": "utilities",
  "fields": [{"name": "name", "type": "string"}, {"name": "post_abbr", "type": "string"},
             {"name": "capital", "type": ["null", "string"], "default": null}]})";

TEST_P(BrokerConformance, ASchemaKeepsItsRevisionsNewestFirst) {
  auto first = b().create_schema({"province", SchemaType::kAvro, kProvinceAvro});
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(first->revision_id.size(), 8u);
  EXPECT_EQ(b().create_schema({"province", SchemaType::kAvro, kProvinceAvro}).code(),
            Errc::kAlreadyExists);
  EXPECT_EQ(b().create_schema({"broken", SchemaType::kAvro, R"({"not_actually":"avro"})"}).code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(b().create_schema({"words", SchemaType::kAvro, "woohoo i am a schema"}).code(),
            Errc::kInvalidArgument);
  auto second = b().commit_schema({"province", SchemaType::kAvro, kProvinceAvroV2});
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_NE(second->revision_id, first->revision_id);
  EXPECT_EQ(b().commit_schema({"province", SchemaType::kAvro, "{"}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(b().commit_schema({"nowhere", SchemaType::kAvro, kProvinceAvro}).code(),
            Errc::kNotFound);
  auto check = [&] {
    auto newest = b().get_schema("province");
    ASSERT_TRUE(newest.ok()) << newest.error().describe();
    EXPECT_EQ(newest->revision_id, second->revision_id);
    EXPECT_EQ(newest->definition, kProvinceAvroV2);
    auto old = b().get_schema("province", first->revision_id);
    ASSERT_TRUE(old.ok()) << old.error().describe();
    EXPECT_EQ(old->definition, kProvinceAvro);
    EXPECT_EQ(old->type, SchemaType::kAvro);
    auto revisions = b().list_schema_revisions("province");
    ASSERT_TRUE(revisions.ok()) << revisions.error().describe();
    ASSERT_EQ(revisions->size(), 2u);
    EXPECT_EQ((*revisions)[0].revision_id, second->revision_id);
    EXPECT_EQ((*revisions)[1].revision_id, first->revision_id);
    auto all = b().list_schemas();
    ASSERT_TRUE(all.ok()) << all.error().describe();
    ASSERT_EQ(all->size(), 1u);  // the refused ones were not made
    EXPECT_EQ((*all)[0].name, "province");
    EXPECT_EQ((*all)[0].revision_id, second->revision_id);
  };
  check();
  reopen();
  check();
  EXPECT_EQ(b().get_schema("province", "0badf00d").code(), Errc::kNotFound);
  auto dropped = b().delete_schema_revision("province", first->revision_id);
  ASSERT_TRUE(dropped.ok()) << dropped.error().describe();
  EXPECT_EQ(b().get_schema("province", first->revision_id).code(), Errc::kNotFound);
  EXPECT_NE(b().delete_schema_revision("province", second->revision_id).code(), Errc::kOk)
      << "a schema's only revision stays";
  ASSERT_TRUE(b().delete_schema("province").ok());
  EXPECT_EQ(b().get_schema("province").code(), Errc::kNotFound);
  EXPECT_EQ(b().delete_schema("province").code(), Errc::kNotFound);
  reopen();
  EXPECT_EQ(b().get_schema("province").code(), Errc::kNotFound);
}

TEST_P(BrokerConformance, ATopicWithASchemaRefusesAMessageThatDoesNotMatch) {
  auto schema = b().create_schema({"province", SchemaType::kAvro, kProvinceAvro});
  ASSERT_TRUE(schema.ok()) << schema.error().describe();
  TopicConfig topic{"provinces",
                    {},
                    std::nullopt,
                    TopicSchemaSettings{"province", SchemaEncoding::kJson, "", ""}};
  EXPECT_EQ(b().create_topic({"elsewhere",
                              {},
                              std::nullopt,
                              TopicSchemaSettings{"nowhere", SchemaEncoding::kJson, "", ""}})
                .code(),
            Errc::kNotFound);
  ASSERT_TRUE(b().create_topic(topic).ok());
  SubscriptionConfig sc;
  sc.name = "provinces.read";
  sc.topic = "provinces";
  ASSERT_TRUE(b().create_subscription(sc).ok());
  const std::string good = R"({"name": "Alberta", "post_abbr": "AB"})";
  const OutgoingMessage ok_msg{good, {}, ""};
  auto sent = b().publish("provinces", std::vector{ok_msg});
  ASSERT_TRUE(sent.ok()) << sent.error().describe();
  for (const std::string bad :
       {R"({"name": "Alberta"})", R"({"name": "Alberta", "post_abbr": 3})", "not json"}) {
    auto refused = b().publish("provinces", std::vector{ok_msg, OutgoingMessage{bad, {}, ""}});
    EXPECT_EQ(refused.code(), Errc::kInvalidArgument) << bad;
  }
  auto got = pull("provinces.read");
  ASSERT_EQ(datas(got), std::vector<std::string>{good}) << "a refused batch wrote nothing";
  EXPECT_EQ(got[0].message.attributes[std::string(kAttrSchemaRevision)], schema->revision_id);
  EXPECT_EQ(got[0].message.attributes[std::string(kAttrSchemaEncoding)], "JSON");
  ack("provinces.read", got);
  reopen();
  auto held = b().get_topic("provinces");
  ASSERT_TRUE(held.ok()) << held.error().describe();
  ASSERT_TRUE(held->schema.has_value());
  EXPECT_EQ(held->schema->schema, "province");
  EXPECT_EQ(held->schema->encoding, SchemaEncoding::kJson);
  EXPECT_EQ(b().publish("provinces", std::vector{OutgoingMessage{"{}", {}, ""}}).code(),
            Errc::kInvalidArgument);
  // Without its schema, the topic takes anything again.
  ASSERT_TRUE(b().update_topic({"provinces", {}, std::nullopt, std::nullopt}).ok());
  EXPECT_TRUE(b().publish("provinces", std::vector{OutgoingMessage{"{}", {}, ""}}).ok());
  EXPECT_EQ(datas(pull("provinces.read")), std::vector<std::string>{"{}"});
}

TEST_P(BrokerConformance, APullCanWaitForAPublish) {
  make_sub("orders", "orders.work");
  std::vector<ReceivedMessage> got;
  std::thread puller([&] {
    auto r = b().pull("orders.work", 10, 30 * kSecond);
    ASSERT_TRUE(r.ok());
    got = *r;
  });
  publish("orders", {{"", "wake"}});
  puller.join();
  EXPECT_EQ(datas(got), (std::vector<std::string>{"wake"}));
}

}  // namespace backbone::testing
