// The pubsub:// backend: the Broker conformance suite over the wire, against backbone's own
// Pub/Sub front (started in process over an embedded broker that runs on the suite's manual
// clock, so that the time-dependent cases hold without sleeping), and its URL.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "auth/tokens.h"
#include "backbone/topology.h"
#include "broker/broker_conformance.h"
#include "broker/pubsub/pubsub_url.h"
#include "pubsub/front/pubsub_front.h"
#include "serve_process.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

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
    tokens_ = std::make_unique<auth::TokenFile>(
        std::move(*auth::TokenFile::open(dir_.file("tokens.json"))));
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
  std::unique_ptr<auth::TokenFile> tokens_;
  std::unique_ptr<pubsub::PubsubFront> front_;
};

// What Pub/Sub's API cannot carry, whichever server is behind it.
const std::string kNoAttempts =
    "it checks delivery_attempt on a subscription without a dead-letter policy, where Pub/Sub "
    "reports none (0)";
// (On ordered subscriptions the backend counts attempts itself, so those cases run.)
const std::map<std::string, std::string> kOverTheWire = {
    {"StatsReportBacklogInFlightAndAge",
     "stats(): Pub/Sub's API has no backlog figures (Cloud Monitoring has them); the backend "
     "says they are unknown and gives its own part (PubsubBroker.StatsAreUnknownButThisClients)"},
    {"StatsCountDeadLetters", "stats(), as above"},
    {"AnUnackedMessageIsRedeliveredWhenItsDeadlinePasses", kNoAttempts + ", and stats()"},
    {"ANackRedeliversAtOnceOrAfterItsDelay", kNoAttempts},
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

// Google's emulator (test_servers.h): each harness gets a project of its own.
class EmulatorHarness : public BrokerHarness {
 public:
  std::string url() override {
    static std::atomic<int> next{0};
    return "pubsub://emu-" + std::to_string(::getpid()) + "-" + std::to_string(next++) +
           "?endpoint=127.0.0.1:" + std::to_string(google_emulator_port());
  }
};

std::map<std::string, std::string> emulator_cannot() {
  const std::string clock =
      "the emulator runs on its own real-time clock; this case moves the suite's manual clock";
  auto out = kOverTheWire;
  for (const char* t :
       {"ModifyAckDeadlineExtendsADelivery", "RetriesFollowTheExponentialBackoffSchedule",
        "ExpiredDeadlinesCountTowardsTheDeadLetter", "ANonRetriableFailureIsDeadLetteredAtOnce",
        "UnackedMessagesOlderThanTheRetentionAreDropped",
        "ANackOnAStreamedKeyBringsItsLaterMessagesBackAfterIt",
        "ASeekToATimeRedeliversWhatWasPublishedSinceAndAcksWhatCameBefore",
        "ASnapshotPutsBackTheAcknowledgementStateItWasMadeWith",
        "ASnapshotLapsesAtItsExpireTime"}) {
    out[t] = clock;
  }
  out["PublishedMessagesArriveWhole"] = clock + " (publish_time)";
  // Where Pub/Sub's own rules differ from the port's (Google's service too, as documented).
  out["DeletingATopicDetachesItsSubscriptions"] =
      "Pub/Sub deletes a dead-letter topic in use, and a subscription of a deleted topic still "
      "delivers the messages it held";
  out["ATopicsLabelsAndRetentionAreUpdated"] =
      "the emulator refuses \"labels\" in UpdateTopic's mask (\"not a known Topic field\")";
  out["ADetachedSubscriptionHoldsAndReceivesNothing"] =
      "the emulator does not implement DetachSubscription (UNIMPLEMENTED)";
  out["ASchemaKeepsItsRevisionsNewestFirst"] =
      "the emulator finds no revision by its name \"S@<revision id>\" (GetSchema and "
      "DeleteSchemaRevision answer NOT_FOUND)";
  out["ATopicWithASchemaRefusesAMessageThatDoesNotMatch"] =
      "the case reopens the broker, which here is a new project (the emulator refused every bad "
      "message and took the good one up to that point)";
  out["TopicsAndSubscriptionsAreCreatedListedAndDeleted"] =
      "the emulator keeps at most 7 days of retention (Pub/Sub 31): the backend creates a longer "
      "one at that limit, so it reads back otherwise (PubsubEmulator.ProvisionClampsRetention)";
  return out;
}

std::vector<BrokerBackend> emulator_backends() {
  if (!google_emulator_installed()) return {};
  return {BrokerBackend{"pubsub_emulator", [] { return std::make_unique<EmulatorHarness>(); },
                        emulator_cannot()}};
}

INSTANTIATE_TEST_SUITE_P(PubsubEmulator, BrokerConformance,
                         ::testing::ValuesIn(emulator_backends()),
                         [](const auto& info) { return info.param.name; });

TEST(PubsubEmulator, IsInstalledOrTheRunAgainstItIsSkipped) {
  if (!google_emulator_installed()) {
    GTEST_SKIP() << "Google's Pub/Sub emulator is not installed (" << kGoogleEmulator
                 << "): the pubsub:// conformance run against it is skipped";
  }
  EXPECT_GT(google_emulator_port(), 0) << "the emulator did not start";
}

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
