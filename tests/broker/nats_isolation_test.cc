// Environment isolation in the engine itself: a nats-server (private to the test) whose sandbox
// and production users have the permissions that `backbone topology permissions` prints
// (nats_permissions.h). The sandbox user can run its environment's work, and the server refuses
// every publish of it to a production subject: topics, journals, catalog keys and the
// JetStream API of production streams. Nothing of production changes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backbone/broker.h"
#include "backbone/topology.h"
#include "broker/nats/nats_client.h"
#include "broker/nats/nats_names.h"
#include "broker/nats/nats_permissions.h"
#include "broker/nats/nats_url.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

constexpr char kIsolationNs[] = "iso";
const std::vector<std::string> kEnvs = {"sandbox", "production"};

std::vector<std::string> names_of(const std::vector<TopicConfig>& v) {
  std::vector<std::string> out;
  for (const auto& t : v) out.push_back(t.name);
  return out;
}
std::vector<std::string> names_of(const std::vector<SubscriptionConfig>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(s.name);
  return out;
}

class NatsIsolation : public ::testing::Test {
 protected:
  void SetUp() override {
    BACKBONE_REQUIRE_TEST_SERVER("nats");
    dir_ = std::make_unique<TempDir>();
    std::filesystem::create_directories(dir_->file("n1"));
    std::ofstream conf(dir_->file("n1/extra.conf"));
    conf << "authorization {\n  users: [\n    {user: admin, password: adminpw}\n";
    for (const std::string& env : kEnvs) {
      const auto perms = nats::environment_permissions(
          kIsolationNs, nats::environment_inbox_prefix(env), names_of(topology().topics(env)),
          names_of(topology().subscriptions(env)));
      conf << "    {user: " << env << ", password: " << env
           << "pw, permissions: " << nats::format_permissions(perms) << "}\n";
    }
    conf << "  ]\n}\n";
    conf.close();
    port_ = std::to_string(free_loopback_port());
    run_test_script("test-nats.sh", "start " + dir_->path() + " " + port_);
  }
  void TearDown() override {
    if (dir_) run_test_script("test-nats.sh", "stop " + dir_->path());
  }

  static const Topology& topology() { return Topology::built_in(); }
  std::string url(const std::string& user) const {
    std::string u =
        "nats://" + user + ":" + user + "pw@127.0.0.1:" + port_ + "?namespace=" + kIsolationNs;
    if (user != "admin") u += "&inbox_prefix=" + nats::environment_inbox_prefix(user);
    return u;
  }
  std::unique_ptr<Broker> open(const std::string& user) {
    auto b = Broker::open(BrokerOptions{url(user)});
    EXPECT_TRUE(b.ok()) << user << ": " << b.error().describe();
    return b.ok() ? std::move(*b) : nullptr;
  }
  std::unique_ptr<nats::NatsClient> client(const std::string& user) {
    auto parsed = nats::parse_nats_url(url(user));
    EXPECT_TRUE(parsed.ok());
    auto c = nats::NatsClient::connect(*parsed);
    EXPECT_TRUE(c.ok()) << c.error().describe();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::unique_ptr<TempDir> dir_;
  std::string port_;
};

TEST_F(NatsIsolation, ASandboxUserWorksInSandboxAndCannotPublishToAnyProductionSubject) {
  auto admin = open("admin");
  ASSERT_TRUE(admin);
  for (const std::string& env : kEnvs) {
    auto p = provision_topology(*admin, topology(), env, kEnvs);
    ASSERT_TRUE(p.ok()) << p.error().describe();
  }
  auto admin_client = client("admin");
  ASSERT_TRUE(admin_client);
  // What production holds before the sandbox user tries anything.
  std::map<std::string, uint64_t> before;
  auto snapshot = [&] {
    std::map<std::string, uint64_t> out;
    for (const std::string& t : names_of(topology().topics("production"))) {
      auto st = admin_client->stream_state(nats::topic_stream(kIsolationNs, t));
      out[t] = st.ok() ? st->last_seq : ~0ull;
    }
    for (const std::string& s : names_of(topology().subscriptions("production"))) {
      auto st = admin_client->stream_state(nats::journal_stream(kIsolationNs, s));
      out[s] = st.ok() ? st->last_seq : ~0ull;
    }
    auto catalog = admin_client->stream_state("KV_" + nats::catalog_bucket(kIsolationNs));
    out["catalog"] = catalog.ok() ? catalog->last_seq : ~0ull;
    return out;
  };
  before = snapshot();

  // The sandbox user does its environment's work.
  auto sandbox = open("sandbox");
  ASSERT_TRUE(sandbox);
  auto again = provision_topology(*sandbox, topology(), "sandbox", kEnvs);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  const std::string raw = topology().topic_name(TopicFamily::kRaw, "sandbox");
  const std::vector<OutgoingMessage> one = {{"hello", {}, "contact:1"}};
  ASSERT_TRUE(sandbox->publish(raw, one).ok());
  auto merge = topology().subscription_for("merge", "sandbox");
  ASSERT_TRUE(merge.ok());
  auto got = sandbox->pull(merge->name, 10);
  ASSERT_TRUE(got.ok()) << got.error().describe();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].message.data, "hello");
  ASSERT_TRUE(sandbox->ack(merge->name, std::vector<std::string>{(*got)[0].ack_id}).ok());

  // Through the port: every production topic is refused by the server.
  for (const std::string& t : names_of(topology().topics("production"))) {
    EXPECT_EQ(sandbox->publish(t, one).code(), Errc::kPermissionDenied) << t;
  }
  // Underneath: every production subject the backend knows.
  auto raw_client = client("sandbox");
  ASSERT_TRUE(raw_client);
  std::vector<std::string> subjects;
  const std::string bucket = nats::catalog_bucket(kIsolationNs);
  for (const std::string& t : names_of(topology().topics("production"))) {
    subjects.push_back(nats::topic_subject(kIsolationNs, t));
    subjects.push_back("$KV." + bucket + "." + nats::topic_key(t));
    subjects.push_back("$JS.API.STREAM.DELETE." + nats::topic_stream(kIsolationNs, t));
    subjects.push_back("$JS.API.STREAM.PURGE." + nats::topic_stream(kIsolationNs, t));
    subjects.push_back("$JS.API.CONSUMER.CREATE." + nats::topic_stream(kIsolationNs, t));
  }
  for (const std::string& s : names_of(topology().subscriptions("production"))) {
    subjects.push_back(nats::journal_subject(kIsolationNs, s));
    subjects.push_back("$KV." + bucket + "." + nats::subscription_key(s));
    subjects.push_back("$JS.API.STREAM.DELETE." + nats::journal_stream(kIsolationNs, s));
  }
  for (const std::string& subject : subjects) {
    const std::vector<nats::OutgoingNatsMessage> m = {{subject, "x-" + subject, "{}"}};
    EXPECT_EQ(raw_client->publish(m).code(), Errc::kPermissionDenied) << subject;
  }
  // And the production user is refused in sandbox, the other way round.
  auto production = open("production");
  ASSERT_TRUE(production);
  EXPECT_EQ(production->publish(raw, one).code(), Errc::kPermissionDenied);
  ASSERT_TRUE(
      production->publish(topology().topic_name(TopicFamily::kRaw, "production"), one).ok());

  // Production is as it was, but for the production user's own message.
  auto after = snapshot();
  after[topology().topic_name(TopicFamily::kRaw, "production")] -= 1;
  EXPECT_EQ(after, before);
}

TEST(NatsPermissions, OneEnvironmentsListNamesNothingOfAnother) {
  const Topology& t = Topology::built_in();
  const auto perms = nats::environment_permissions(
      "bb", "_INBOX_sandbox", names_of(t.topics("sandbox")), names_of(t.subscriptions("sandbox")));
  EXPECT_FALSE(perms.publish.empty());
  for (const std::string& s : perms.publish) {
    EXPECT_EQ(s.find("production"), std::string::npos) << s;
    // Nothing broader than named resources: a wildcard only as the bucket of a named subject.
    if (s.ends_with(".*")) {
      EXPECT_NE(std::find(perms.publish.begin(), perms.publish.end(), s.substr(0, s.size() - 2)),
                perms.publish.end())
          << s;
      EXPECT_EQ(s.substr(0, s.size() - 2).find('*'), std::string::npos) << s;
    } else {
      EXPECT_EQ(s.find('*'), std::string::npos) << s;
    }
  }
  EXPECT_EQ(perms.subscribe, (std::vector<std::string>{"_INBOX_sandbox.>"}));
  EXPECT_NE(std::find(perms.publish.begin(), perms.publish.end(),
                      nats::topic_subject("bb", t.topic_name(TopicFamily::kRaw, "sandbox"))),
            perms.publish.end());
}

}  // namespace
}  // namespace backbone::testing
