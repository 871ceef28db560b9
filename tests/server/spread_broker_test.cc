// SpreadBroker (src/server/spread_broker.h): the answer format of member calls, and what it
// does with its own deliveries and with those of members it cannot reach. Its forwarding between
// live processes runs in ServeCluster.TheNodeClientGetsEverySyncVersionInOrderThroughEitherFront.
#include "server/spread_broker.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "store/sqlite_harness.h"

namespace backbone::server {
namespace {

using nlohmann::json;

TEST(MemberCalls, DeliveriesSurviveTheirCborAnswerByteForByte) {
  ReceivedMessage m;
  m.ack_id = "a.3.17.1";
  m.delivery_attempt = 4;
  m.message.id = "42";
  m.message.data = std::string("\0\xff{not json", 11);
  m.message.attributes = {{"k", "v"}, {"empty", ""}};
  m.message.ordering_key = "customer:7";
  m.message.publish_time = Timestamp::from_micros(1'767'225'600'123'456);
  const std::vector<ReceivedMessage> in = {m, m};
  auto out = decode_deliveries(encode_deliveries(in));
  ASSERT_TRUE(out.ok()) << out.error().describe();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[1].ack_id, m.ack_id);
  EXPECT_EQ((*out)[1].delivery_attempt, 4);
  EXPECT_EQ((*out)[1].message.id, "42");
  EXPECT_EQ((*out)[1].message.data, m.message.data);
  EXPECT_EQ((*out)[1].message.attributes, m.message.attributes);
  EXPECT_EQ((*out)[1].message.ordering_key, "customer:7");
  EXPECT_EQ((*out)[1].message.publish_time.micros(), m.message.publish_time.micros());
  EXPECT_TRUE(decode_deliveries(encode_deliveries({}))->empty());
}

TEST(MemberCalls, AnAnswerThatLacksAFieldOrIsNotCborIsRefused) {
  const auto cbor = [](const json& j) {
    const auto b = json::to_cbor(j);
    return std::string(b.begin(), b.end());
  };
  std::vector<uint8_t> bytes = {1, 2};
  json full = {{"ack_id", "x"},
               {"attempt", 1},
               {"id", "1"},
               {"data", json::binary(bytes)},
               {"attributes", json::object()},
               {"ordering_key", ""},
               {"publish_us", 5}};
  ASSERT_TRUE(decode_deliveries(cbor(json::array({full}))).ok());
  for (const char* field :
       {"ack_id", "attempt", "id", "data", "attributes", "ordering_key", "publish_us"}) {
    json lacking = full;
    lacking.erase(field);
    auto r = decode_deliveries(cbor(json::array({lacking})));
    EXPECT_EQ(r.code(), Errc::kInvalidArgument) << field;
    EXPECT_NE(r.error().message.find(field), std::string::npos) << r.error().message;
  }
  json wrong = full;
  wrong["data"] = "text, not bytes";
  EXPECT_EQ(decode_deliveries(cbor(json::array({wrong}))).code(), Errc::kInvalidArgument);
  wrong = full;
  wrong["attributes"] = {{"k", 1}};
  EXPECT_EQ(decode_deliveries(cbor(json::array({wrong}))).code(), Errc::kInvalidArgument);
  EXPECT_EQ(decode_deliveries(cbor(full)).code(), Errc::kInvalidArgument) << "not a list";
  EXPECT_EQ(decode_deliveries("{\"json\": true}").code(), Errc::kInvalidArgument);
  const std::string whole = cbor(json::array({full}));
  EXPECT_EQ(decode_deliveries(whole.substr(0, whole.size() / 2)).code(), Errc::kInvalidArgument)
      << "a truncated answer";
}

class Spread : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.url = "embedded://" + dir_.file("broker");
    o.clock = &clock_;
    auto b = Broker::open(o);
    ASSERT_TRUE(b.ok()) << b.error().describe();
    local_ = std::move(*b);
    ASSERT_TRUE(local_->create_topic({"topic-a"}).ok());
    SubscriptionConfig s;
    s.name = "sub-a";
    s.topic = "topic-a";
    ASSERT_TRUE(local_->create_subscription(s).ok());
    const std::vector<OutgoingMessage> m = {{"one", {}, ""}, {"two", {}, ""}};
    ASSERT_TRUE(local_->publish("topic-a", m).ok());
  }
  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Broker> local_;
};

TEST_F(Spread, ASubscriptionServedWholeIsTheLocalBrokersAsItIs) {
  SpreadBroker spread(*local_, [](std::string_view) { return std::nullopt; });
  auto got = spread.pull("sub-a", 10);
  ASSERT_TRUE(got.ok()) << got.error().describe();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].ack_id.find('~'), std::string::npos);
  EXPECT_EQ(*spread.ack("sub-a", std::vector<std::string>{(*got)[0].ack_id}), 1u);
}

TEST_F(Spread, DeliveriesNameTheirMemberAndMembersThatAreGoneHoldNothing) {
  // One other member, at an address where nothing answers.
  SpreadBroker spread(*local_, [](std::string_view sub) -> std::optional<SpreadPeers> {
    if (sub != "sub-a") return std::nullopt;
    return SpreadPeers{"sandbox", "m1", "key", {{"m2", "http://127.0.0.1:1"}}};
  });
  auto got = spread.pull("sub-a", 10);
  ASSERT_TRUE(got.ok()) << got.error().describe();
  ASSERT_EQ(got->size(), 2u) << "this member's own, though the other does not answer";
  for (const auto& m : *got) EXPECT_EQ(m.ack_id.rfind("m1~", 0), 0u) << m.ack_id;
  const std::string mine = (*got)[0].ack_id;
  const std::string theirs = "m2~" + mine.substr(3);
  const std::string gone = "m3~" + mine.substr(3);
  EXPECT_EQ(*spread.ack("sub-a", std::vector<std::string>{theirs, gone}), 0u)
      << "another member's delivery is its own to settle; this one is not settled here";
  EXPECT_EQ(*spread.ack("sub-a", std::vector<std::string>{mine}), 1u);
  EXPECT_EQ(*spread.ack("sub-a", std::vector<std::string>{mine}), 0u) << "settled once";
  EXPECT_EQ(
      spread.modify_ack_deadline("sub-a", std::vector<std::string>{(*got)[1].ack_id}, 601 * kSecond)
          .code(),
      Errc::kInvalidArgument);
  ASSERT_TRUE(
      spread.modify_ack_deadline("sub-a", std::vector<std::string>{(*got)[1].ack_id}, 0).ok());
  auto again = spread.pull("sub-a", 10);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 1u) << "a deadline of 0 hands it out again";
  EXPECT_EQ((*again)[0].message.data, "two");
  EXPECT_EQ((*again)[0].delivery_attempt, 2);
}

}  // namespace
}  // namespace backbone::server
