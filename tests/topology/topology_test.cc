#include "backbone/topology.h"

#include <gtest/gtest.h>

#include <set>

#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

const std::vector<std::string> kEnvs = {"sandbox", "production"};

class TopologyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.url = "embedded://" + dir_.file("broker");
    o.clock = &clock_;
    auto b = Broker::open(o);
    ASSERT_TRUE(b.ok()) << b.error().describe();
    broker_ = std::move(*b);
  }
  const Topology& topo() { return Topology::built_in(); }
  ManualClock clock_;
  TempDir dir_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(TopologyTest, TwoEnvironmentsHaveExactlyEightTopicsAndTenSubscriptions) {
  for (const auto& env : kEnvs) {
    auto r = provision_topology(*broker_, topo(), env, kEnvs);
    ASSERT_TRUE(r.ok()) << r.error().describe();
  }
  auto topics = broker_->list_topics();
  auto subs = broker_->list_subscriptions();
  ASSERT_EQ(topics->size(), 8u);
  ASSERT_EQ(subs->size(), 10u);
  std::set<std::string> names;
  for (const auto& t : *topics) names.insert(t.name);
  EXPECT_EQ(names, (std::set<std::string>{"events.raw.sandbox", "events.merged.sandbox",
                                          "events.error.sandbox", "events.dlq.sandbox",
                                          "events.raw.production", "events.merged.production",
                                          "events.error.production", "events.dlq.production"}));
}

TEST_F(TopologyTest, SubscriptionsCarryTheSpecPolicies) {
  ASSERT_TRUE(provision_topology(*broker_, topo(), "production", kEnvs).ok());
  auto merge = *broker_->get_subscription("events.raw.production.merge");
  EXPECT_EQ(merge.topic, "events.raw.production");
  EXPECT_TRUE(merge.ordered);
  EXPECT_EQ(merge.ack_deadline_us, 30 * kSecond);
  auto sync = *broker_->get_subscription("events.merged.production.sync");
  EXPECT_TRUE(sync.ordered);
  EXPECT_EQ(sync.ack_deadline_us, 60 * kSecond);
  EXPECT_EQ(sync.retry, (RetryPolicy{10 * kSecond, 600 * kSecond}));
  EXPECT_EQ(sync.dead_letter, (DeadLetterPolicy{"events.dlq.production", 5}));
  auto audit = *broker_->get_subscription("events.merged.production.audit");
  EXPECT_EQ(audit.topic, "events.merged.production");
  EXPECT_FALSE(audit.ordered);
  auto retry = *broker_->get_subscription("events.error.production.retry");
  EXPECT_TRUE(retry.ordered);
  EXPECT_EQ(retry.retry, (RetryPolicy{10 * kSecond, 600 * kSecond}));
  EXPECT_EQ(retry.dead_letter, (DeadLetterPolicy{"events.dlq.production", 5}));
  auto inspect = *broker_->get_subscription("events.dlq.production.inspect");
  EXPECT_FALSE(inspect.ordered);
  EXPECT_EQ(inspect.retention_us, 31 * kDay);
  EXPECT_EQ(inspect.labels.at("env"), "production");
}

TEST_F(TopologyTest, ProvisioningAgainChangesNothing) {
  auto first = provision_topology(*broker_, topo(), "sandbox", kEnvs);
  ASSERT_TRUE(first.ok());
  int missing = 0;
  for (const auto& i : *first) missing += i.state == ProvisionItem::State::kMissing;
  EXPECT_EQ(missing, 9);
  auto second = provision_topology(*broker_, topo(), "sandbox", kEnvs);
  ASSERT_TRUE(second.ok());
  for (const auto& i : *second) EXPECT_EQ(i.state, ProvisionItem::State::kOk) << i.name;
}

TEST_F(TopologyTest, DriftIsShownAndFixed) {
  ASSERT_TRUE(provision_topology(*broker_, topo(), "sandbox", kEnvs).ok());
  auto sync = *broker_->get_subscription("events.merged.sandbox.sync");
  sync.ack_deadline_us = 10 * kSecond;
  sync.dead_letter->max_delivery_attempts = 7;
  ASSERT_TRUE(broker_->update_subscription(sync).ok());
  ASSERT_TRUE(broker_->create_topic({"events.scratch.sandbox", {{"env", "sandbox"}}}).ok());
  auto plan = plan_topology(*broker_, topo(), "sandbox", kEnvs);
  ASSERT_TRUE(plan.ok());
  bool saw_drift = false, saw_extra = false;
  for (const auto& i : *plan) {
    if (i.name == "events.merged.sandbox.sync") {
      EXPECT_EQ(i.state, ProvisionItem::State::kDrift);
      EXPECT_EQ(i.differences.size(), 2u);
      saw_drift = true;
    } else if (i.name == "events.scratch.sandbox") {
      EXPECT_EQ(i.state, ProvisionItem::State::kExtra);
      saw_extra = true;
    } else {
      EXPECT_EQ(i.state, ProvisionItem::State::kOk) << i.name;
    }
  }
  EXPECT_TRUE(saw_drift && saw_extra);
  ASSERT_TRUE(provision_topology(*broker_, topo(), "sandbox", kEnvs).ok());
  EXPECT_EQ(broker_->get_subscription("events.merged.sandbox.sync")->ack_deadline_us, 60 * kSecond);
  // The other environment's plan does not see sandbox's extra topic.
  auto production = plan_topology(*broker_, topo(), "production", kEnvs);
  ASSERT_TRUE(production.ok());
  for (const auto& i : *production) {
    EXPECT_NE(i.name, "events.scratch.sandbox");
  }
}

TEST_F(TopologyTest, APublisherCannotReachAnotherEnvironmentsTopic) {
  for (const auto& env : kEnvs) ASSERT_TRUE(provision_topology(*broker_, topo(), env, kEnvs).ok());
  EnvPublisher sandbox(*broker_, topo(), "sandbox", kEnvs);
  OutgoingMessage m{"x", {}, "contact:1"};
  auto denied = sandbox.publish_to("events.raw.production", std::span(&m, 1));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.code(), Errc::kPermissionDenied);
  EXPECT_EQ(sandbox.publish_to("events.unknown", std::span(&m, 1)).code(), Errc::kPermissionDenied);
  EXPECT_EQ(sandbox.publish_to("events.raw.sandbox.merge", std::span(&m, 1)).code(),
            Errc::kPermissionDenied);
  EXPECT_TRUE(sandbox.publish_to("events.raw.sandbox", std::span(&m, 1)).ok());
  EXPECT_EQ(broker_->stats("events.raw.production.merge")->undelivered, 0u);
  EXPECT_EQ(broker_->stats("events.raw.sandbox.merge")->undelivered, 1u);
}

TEST_F(TopologyTest, RawAndMergedPublishesNeedTheRecordOrderingKey) {
  ASSERT_TRUE(provision_topology(*broker_, topo(), "sandbox", kEnvs).ok());
  EnvPublisher pub(*broker_, topo(), "sandbox", kEnvs);
  OutgoingMessage keyless{"x", {}, ""};
  EXPECT_EQ(pub.publish(TopicFamily::kRaw, std::span(&keyless, 1)).code(), Errc::kInvalidArgument);
  EXPECT_EQ(pub.publish(TopicFamily::kMerged, std::span(&keyless, 1)).code(),
            Errc::kInvalidArgument);
  EXPECT_TRUE(pub.publish(TopicFamily::kDlq, std::span(&keyless, 1)).ok());
  ASSERT_TRUE(pub.publish_record(TopicFamily::kRaw, {"contact", "42"}, "payload").ok());
  auto got = broker_->pull("events.raw.sandbox.merge", 10);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].message.ordering_key, "contact:42");
}

TEST_F(TopologyTest, BadTopologiesAreRefusedNamingTheKey) {
  auto no_env = Topology::parse(
      "project = \"p\"\n[topics]\nraw = \"events.raw\"\nmerged = \"m.{env}\"\nerror = "
      "\"e.{env}\"\ndlq = \"d.{env}\"\n[[subscriptions]]\nname = \"s.{env}\"\ntopic = \"raw\"\n",
      "t.toml");
  ASSERT_FALSE(no_env.ok());
  EXPECT_EQ(no_env.error().where, "t.toml: topics.raw");
  auto bad_deadline = Topology::parse(
      "project = \"p\"\n[topics]\nraw = \"r.{env}\"\nmerged = \"m.{env}\"\nerror = "
      "\"e.{env}\"\ndlq = \"d.{env}\"\n[[subscriptions]]\nname = \"s.{env}\"\ntopic = "
      "\"raw\"\nack_deadline_seconds = 5\n",
      "t.toml");
  ASSERT_FALSE(bad_deadline.ok());
  EXPECT_EQ(bad_deadline.error().where, "t.toml: subscriptions[0].ack_deadline");
  auto bad_family = Topology::parse(
      "project = \"p\"\n[topics]\nraw = \"r.{env}\"\nmerged = \"m.{env}\"\nerror = "
      "\"e.{env}\"\ndlq = \"d.{env}\"\n[[subscriptions]]\nname = \"s.{env}\"\ntopic = \"nope\"\n",
      "t.toml");
  ASSERT_FALSE(bad_family.ok());
  EXPECT_EQ(bad_family.error().where, "t.toml: subscriptions[0].topic");
}

TEST_F(TopologyTest, NamesResolveToTheirEnvironment) {
  EXPECT_EQ(topo().environment_of("events.dlq.production.inspect", kEnvs), "production");
  EXPECT_EQ(topo().environment_of("events.raw.sandbox", kEnvs), "sandbox");
  EXPECT_EQ(topo().environment_of("events.raw.staging", kEnvs), std::nullopt);
}

}  // namespace
}  // namespace backbone::testing
