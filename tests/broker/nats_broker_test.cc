// The Broker conformance suite on the NATS JetStream backend, against the nats-server that
// `make test` starts, each test in a namespace of its own; and what only this backend does.
#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <set>

#include "broker/broker_conformance.h"
#include "broker/nats/nats_message.h"
#include "broker/nats/nats_names.h"
#include "broker/nats/nats_url.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

class NatsHarness final : public BrokerHarness {
 public:
  explicit NatsHarness(std::string server) : server_(std::move(server)) {
    static std::atomic<int> n{0};
    ns_ = "t" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  }
  std::string url() override { return server_ + "?namespace=" + ns_; }

 private:
  std::string server_, ns_;
};

std::unique_ptr<BrokerHarness> make_nats_harness() {
  const std::string server = test_server_url("nats");
  if (server.empty()) return nullptr;
  return std::make_unique<NatsHarness>(server);
}

INSTANTIATE_TEST_SUITE_P(Nats, BrokerConformance,
                         ::testing::Values(BrokerBackend{"nats", make_nats_harness}),
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
