// The pubsub:// backend: the Broker conformance suite over the wire, against backbone's own
// Pub/Sub front (started in process over an embedded broker that runs on the suite's manual
// clock, so that the time-dependent cases hold without sleeping), and its URL.
#include <gtest/gtest.h>

#include "backbone/topology.h"
#include "broker/broker_conformance.h"
#include "broker/pubsub/pubsub_url.h"
#include "pubsub/front/pubsub_front.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

constexpr const char* kProject = "backbone-test";

class FrontHarness : public BrokerHarness {
 public:
  void run_on(const Clock& clock) override { clock_ = &clock; }
  std::string url() override {
    if (!front_) start();
    return std::string("pubsub://") + kProject +
           "?endpoint=127.0.0.1:" + std::to_string(front_->port());
  }

 private:
  void start() {
    BrokerOptions bo;
    bo.url = "embedded://" + dir_.file("broker");
    bo.clock = clock_;
    broker_ = std::move(*Broker::open(bo));
    tokens_ = std::make_unique<server::TokenStore>(
        std::move(*server::TokenStore::open(dir_.file("tokens.json"))));
    pubsub::FrontOptions fo;
    fo.project = kProject;
    fo.envs = {"sandbox", "production"};
    fo.anonymous = "sandbox";  // the suite's calls carry no token
    fo.clock = clock_;
    front_ = std::move(
        *pubsub::PubsubFront::start(*broker_, Topology::built_in(), *tokens_, fo, "127.0.0.1:0"));
  }
  TempDir dir_;
  const Clock* clock_ = nullptr;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<server::TokenStore> tokens_;
  std::unique_ptr<pubsub::PubsubFront> front_;
};

// What Pub/Sub's API cannot carry, whichever server is behind it.
const std::string kNoAttempts =
    "it checks delivery_attempt on a subscription without a dead-letter policy, where Pub/Sub "
    "reports none (0)";
const std::map<std::string, std::string> kOverTheWire = {
    {"StatsReportBacklogInFlightAndAge",
     "stats(): Pub/Sub's API has no backlog figures (Cloud Monitoring has them)"},
    {"StatsCountDeadLetters", "stats(), as above"},
    {"AnUnackedMessageIsRedeliveredWhenItsDeadlinePasses", kNoAttempts + ", and stats()"},
    {"ANackRedeliversAtOnceOrAfterItsDelay", kNoAttempts},
    {"AKeyWaitingForItsRetryDoesNotBlockOtherKeys", kNoAttempts},
    {"AnAckedMessageNeverComesBack",
     kNoAttempts + "; and Pub/Sub's Acknowledge does not say which ack ids were current"},
    {"EverythingSurvivesAReopen",
     "reopen() restarts the client, not the server: a delivery in flight stays leased until its "
     "deadline instead of coming back at once"},
};

INSTANTIATE_TEST_SUITE_P(PubsubFront, BrokerConformance,
                         ::testing::Values(BrokerBackend{
                             "pubsub_front", [] { return std::make_unique<FrontHarness>(); },
                             kOverTheWire}),
                         [](const auto& info) { return info.param.name; });

TEST(PubsubUrl, ParsesAndRefusesWhatItShould) {
  auto u = pubsub::parse_pubsub_url("pubsub://my-project?endpoint=127.0.0.1:8085");
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->project, "my-project");
  EXPECT_EQ(u->endpoint, "127.0.0.1:8085");
  EXPECT_TRUE(u->plaintext);
  for (const char* bad : {"pubsub://", "pubsub://My_Project", "pubsub://p?endpoint=nohost",
                          "pubsub://p?endpoint=", "pubsub://p?colour=red", "pubsub://p?x",
                          "pubsub://p?token_env=BACKBONE_SURELY_UNSET_VARIABLE", "nats://p"}) {
    EXPECT_EQ(pubsub::parse_pubsub_url(bad).code(), Errc::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace backbone::testing
