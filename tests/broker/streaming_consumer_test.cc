// The callback consumer on the embedded broker. These tests wait for the workers (bounded
// waits on a condition), but no behaviour depends on how long anything takes.
#include "backbone/streaming_consumer.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>

#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

class StreamingConsumerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.url = "embedded://" + dir_.file("broker");
    o.clock = &clock_;
    broker_ = std::move(*Broker::open(o));
    ASSERT_TRUE(broker_->create_topic({"orders", {}}).ok());
    ASSERT_TRUE(broker_->create_topic({"orders.dlq", {}}).ok());
    ASSERT_TRUE(
        broker_->create_subscription({.name = "orders.dlq.inspect", .topic = "orders.dlq"}).ok());
    SubscriptionConfig c;
    c.name = "orders.work";
    c.topic = "orders";
    c.ordered = true;
    c.dead_letter = DeadLetterPolicy{"orders.dlq", 5};
    ASSERT_TRUE(broker_->create_subscription(c).ok());
  }
  void publish(int n, int keys) {
    std::vector<OutgoingMessage> msgs;
    for (int i = 0; i < n; ++i)
      msgs.push_back({std::to_string(i), {}, "k" + std::to_string(i % keys)});
    ASSERT_TRUE(broker_->publish("orders", msgs).ok());
  }
  // Waits (at most 30 s) until `done` holds.
  bool wait_for(const std::function<bool()>& done) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(30), done);
  }
  ManualClock clock_;
  TempDir dir_;
  std::unique_ptr<Broker> broker_;
  std::mutex mu_;
  std::condition_variable cv_;
};

TEST_F(StreamingConsumerTest, EveryMessageIsHandledOnceInKeyOrderAcrossWorkers) {
  publish(400, 10);
  std::map<std::string, std::vector<int>> seen;
  size_t handled = 0;
  StreamingConsumer consumer(*broker_, "orders.work",
                             [&](const ReceivedMessage& m) {
                               std::lock_guard lk(mu_);
                               seen[m.message.ordering_key].push_back(std::stoi(m.message.data));
                               ++handled;
                               cv_.notify_all();
                               return ConsumerDecision::ack();
                             },
                             {.workers = 4, .max_messages = 7});
  consumer.start();
  ASSERT_TRUE(wait_for([&] { return handled == 400; }));
  consumer.stop();
  for (const auto& [key, ns] : seen) {
    EXPECT_EQ(ns.size(), 40u) << key;
    EXPECT_TRUE(std::is_sorted(ns.begin(), ns.end())) << key;
  }
  EXPECT_EQ(broker_->stats("orders.work")->in_flight, 0u);
  EXPECT_EQ(broker_->stats("orders.work")->undelivered, 0u);
}

TEST_F(StreamingConsumerTest, DecisionsNackAndDeadLetterAreCarriedOut) {
  publish(3, 3);  // "0", "1", "2" on three keys
  std::map<std::string, int> attempts;
  StreamingConsumer consumer(*broker_, "orders.work",
                             [&](const ReceivedMessage& m) {
                               std::lock_guard lk(mu_);
                               ++attempts[m.message.data];
                               cv_.notify_all();
                               if (m.message.data == "1" && m.delivery_attempt == 1)
                                 return ConsumerDecision::nack("try again");
                               if (m.message.data == "2")
                                 return ConsumerDecision::dead_letter("poison");
                               if (m.message.data == "0" && m.delivery_attempt == 1)
                                 throw std::runtime_error("bug");
                               return ConsumerDecision::ack();
                             },
                             {});
  consumer.start();
  ASSERT_TRUE(
      wait_for([&] { return attempts["0"] == 2 && attempts["1"] == 2 && attempts["2"] == 1; }));
  consumer.stop();
  auto dead = broker_->pull("orders.dlq.inspect", 10);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].message.attributes.at(std::string(kAttrLastError)), "poison");
  EXPECT_EQ(broker_->stats("orders.work")->dead_lettered, 1u);
  EXPECT_EQ(broker_->stats("orders.work")->in_flight, 0u);
}

}  // namespace
}  // namespace backbone::testing
