// KeyGate, the per-key rule of the pubsub:// backend, on explicit times: what it hands out, what
// it holds, how it counts attempts, and what it tells the backend to extend, ack and dead-letter.
#include "broker/pubsub/key_gate.h"

#include <gtest/gtest.h>

namespace backbone::pubsub {
namespace {

constexpr int64_t kT0 = 1'000 * kSecond;

ReceivedMessage from_server(const std::string& id, const std::string& key,
                            const std::string& ack_id, int attempt = 1) {
  ReceivedMessage m;
  m.ack_id = ack_id;
  m.message.id = id;
  m.message.data = "data of " + id;
  m.message.ordering_key = key;
  m.delivery_attempt = attempt;
  return m;
}

KeyGate::Policy policy(int max_attempts = 0) {
  KeyGate::Policy p;
  p.ack_deadline_us = 30 * kSecond;
  p.retry = RetryPolicy{10 * kSecond, 600 * kSecond};
  p.max_attempts = max_attempts;
  p.lease_us = 30 * kSecond;
  return p;
}

std::vector<std::string> ids(const std::vector<ReceivedMessage>& got) {
  std::vector<std::string> out;
  for (const auto& m : got) out.push_back(m.message.id);
  return out;
}

class KeyGateTest : public ::testing::Test {
 protected:
  void admit(std::vector<ReceivedMessage> got, int64_t now = kT0) {
    pass_.clear();
    ack_now_.clear();
    gate_.admit(std::move(got), now, pass_, ack_now_);
  }
  KeyGate gate_{policy(5)};
  std::vector<ReceivedMessage> pass_;
  std::vector<std::string> ack_now_;
};

TEST_F(KeyGateTest, OneMessageOfAKeyIsOutAtATimeAndKeysDoNotWaitOnEachOther) {
  admit({from_server("a1", "a", "s-a1"), from_server("a2", "a", "s-a2"),
         from_server("b1", "b", "s-b1"), from_server("a3", "a", "s-a3")});
  EXPECT_TRUE(pass_.empty());
  auto first = gate_.take(100, kT0);
  EXPECT_EQ(ids(first), (std::vector<std::string>{"a1", "b1"}));
  EXPECT_TRUE(gate_.take(100, kT0).empty()) << "a2 waits for a1";
  EXPECT_EQ(gate_.counts().out, 2u);
  EXPECT_EQ(gate_.counts().held, 2u);
  // The gate's ack ids are its own, and an ack gives back the server's.
  EXPECT_TRUE(gate_.owns(first[0].ack_id));
  EXPECT_FALSE(gate_.owns("s-a1"));
  auto server = gate_.ack(first[0].ack_id);
  ASSERT_TRUE(server);
  EXPECT_EQ(*server, (std::vector<std::string>{"s-a1"}));
  EXPECT_EQ(ids(gate_.take(100, kT0)), (std::vector<std::string>{"a2"}));
  EXPECT_FALSE(gate_.ack(first[0].ack_id)) << "acked once already";
}

TEST_F(KeyGateTest, MessagesWithoutAKeyPassStraightThrough) {
  admit({from_server("x", "", "s-x"), from_server("a1", "a", "s-a1")});
  ASSERT_EQ(pass_.size(), 1u);
  EXPECT_EQ(pass_[0].ack_id, "s-x");
  EXPECT_EQ(ids(gate_.take(10, kT0)), (std::vector<std::string>{"a1"}));
}

TEST_F(KeyGateTest, ANackWaitsOutTheBackoffAndItsKeyWaitsWithItWhileOthersFlow) {
  admit({from_server("a1", "a", "s-a1"), from_server("a2", "a", "s-a2"),
         from_server("b1", "b", "s-b1")});
  auto out = gate_.take(10, kT0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].delivery_attempt, 1);
  EXPECT_FALSE(gate_.fail(out[0].ack_id, std::nullopt, "busy", kT0));
  ASSERT_TRUE(gate_.ack(out[1].ack_id));  // b1
  admit({from_server("b2", "b", "s-b2")}, kT0 + kSecond);
  // b moves on; a waits 10 s (the retry policy's first backoff), and a2 waits behind a1.
  EXPECT_EQ(ids(gate_.take(10, kT0 + kSecond)), (std::vector<std::string>{"b2"}));
  EXPECT_TRUE(gate_.take(10, kT0 + 10 * kSecond - 1).empty());
  ASSERT_EQ(gate_.next_due(), kT0 + 10 * kSecond);
  auto again = gate_.take(10, kT0 + 10 * kSecond);
  ASSERT_EQ(ids(again), (std::vector<std::string>{"a1"}));
  EXPECT_EQ(again[0].delivery_attempt, 2);
  EXPECT_NE(again[0].ack_id, out[0].ack_id) << "each hand-out has an ack id of its own";
  // The second failure backs off 20 s; a nack's own delay wins over the policy.
  EXPECT_FALSE(gate_.fail(again[0].ack_id, std::nullopt, "busy", kT0 + 10 * kSecond));
  EXPECT_TRUE(gate_.take(10, kT0 + 30 * kSecond - 1).empty());
  auto third = gate_.take(10, kT0 + 30 * kSecond);
  ASSERT_EQ(ids(third), (std::vector<std::string>{"a1"}));
  EXPECT_FALSE(gate_.fail(third[0].ack_id, 2 * kSecond, "soon", kT0 + 30 * kSecond));
  EXPECT_EQ(ids(gate_.take(10, kT0 + 32 * kSecond)), (std::vector<std::string>{"a1"}));
}

TEST_F(KeyGateTest, TheLastAttemptIsDoomedAndTheKeyMovesOnOnlyOnceItIsDeadLettered) {
  admit({from_server("a1", "a", "s-a1"), from_server("a2", "a", "s-a2")});
  int64_t now = kT0;
  std::optional<KeyGate::Doomed> doomed;
  for (int attempt = 1; attempt <= 5; ++attempt) {
    auto out = gate_.take(10, now);
    ASSERT_EQ(ids(out), (std::vector<std::string>{"a1"})) << "attempt " << attempt;
    EXPECT_EQ(out[0].delivery_attempt, attempt);
    doomed = gate_.fail(out[0].ack_id, std::nullopt, "bad " + std::to_string(attempt), now);
    EXPECT_EQ(doomed.has_value(), attempt == 5);
    now += 700 * kSecond;  // past any backoff
  }
  ASSERT_TRUE(doomed);
  EXPECT_EQ(doomed->delivery.message.id, "a1");
  EXPECT_EQ(doomed->delivery.delivery_attempt, 5);
  EXPECT_EQ(doomed->reason, "bad 5");
  EXPECT_EQ(doomed->server_ack_ids, (std::vector<std::string>{"s-a1"}));
  EXPECT_TRUE(gate_.take(10, now).empty()) << "a2 waits until a1 is dead-lettered";
  // The dead-letter publish failed: a1 waits a backoff, and fails its last attempt again.
  gate_.retry_doomed("a1", now);
  auto retried = gate_.take(10, now + 600 * kSecond);
  ASSERT_EQ(ids(retried), (std::vector<std::string>{"a1"}));
  doomed = gate_.fail(retried[0].ack_id, std::nullopt, "bad again", now + 600 * kSecond);
  ASSERT_TRUE(doomed);
  gate_.dead_lettered("a1");
  EXPECT_EQ(ids(gate_.take(10, now + 600 * kSecond)), (std::vector<std::string>{"a2"}));
  // A redelivery of the dead-lettered message is to be acked at once.
  admit({from_server("a1", "a", "s-a1-again")}, now);
  EXPECT_EQ(ack_now_, (std::vector<std::string>{"s-a1-again"}));
}

TEST_F(KeyGateTest, DeadLetterNowDoomsACurrentDeliveryWhateverItsAttempt) {
  admit({from_server("a1", "a", "s-a1"), from_server("a2", "a", "s-a2")});
  auto out = gate_.take(10, kT0);
  auto doomed = gate_.doom(out[0].ack_id, "not retriable");
  ASSERT_TRUE(doomed);
  EXPECT_EQ(doomed->delivery.delivery_attempt, 1);
  EXPECT_FALSE(gate_.doom(out[0].ack_id, "twice")) << "no longer current";
  gate_.dead_lettered("a1");
  EXPECT_EQ(ids(gate_.take(10, kT0)), (std::vector<std::string>{"a2"}));
}

TEST_F(KeyGateTest, AnExpiredDeadlineIsAFailedAttemptAndItsStaleAckIsIgnored) {
  admit({from_server("a1", "a", "s-a1"), from_server("a2", "a", "s-a2")});
  auto out = gate_.take(10, kT0);
  ASSERT_TRUE(gate_.extend(out[0].ack_id, 60 * kSecond, kT0));
  EXPECT_TRUE(gate_.upkeep(kT0 + 59 * kSecond).doomed.empty());
  EXPECT_EQ(gate_.counts().out, 1u) << "extended to 60 s";
  auto u = gate_.upkeep(kT0 + 60 * kSecond);
  EXPECT_TRUE(u.doomed.empty());
  EXPECT_EQ(gate_.counts().out, 0u);
  EXPECT_FALSE(gate_.ack(out[0].ack_id)) << "stale: its deadline passed";
  auto again = gate_.take(10, kT0 + 70 * kSecond);  // after the first backoff (10 s)
  ASSERT_EQ(ids(again), (std::vector<std::string>{"a1"}));
  EXPECT_EQ(again[0].delivery_attempt, 2);
}

TEST_F(KeyGateTest, AnExpiredLastAttemptIsDoomedByTheUpkeep) {
  KeyGate gate(policy(5));
  std::vector<ReceivedMessage> pass;
  std::vector<std::string> ack_now;
  // The server counted four attempts already (a process that held it crashed, say).
  gate.admit({from_server("a1", "a", "s-a1", 5)}, kT0, pass, ack_now);
  auto out = gate.take(10, kT0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].delivery_attempt, 5);
  auto u = gate.upkeep(kT0 + 30 * kSecond);
  ASSERT_EQ(u.doomed.size(), 1u);
  EXPECT_EQ(u.doomed[0].reason, "ack deadline expired");
}

TEST_F(KeyGateTest, RedeliveriesAreRecognisedByMessageIdAndTheirAckIdsKept) {
  admit({from_server("a1", "a", "s-a1"), from_server("a2", "a", "s-a2")});
  auto out = gate_.take(10, kT0);
  // The server redelivers the whole key (a lease ran out, or another stream got it).
  admit({from_server("a1", "a", "s-a1-b"), from_server("a2", "a", "s-a2-b")}, kT0 + kSecond);
  EXPECT_TRUE(ack_now_.empty());
  EXPECT_TRUE(gate_.take(10, kT0 + kSecond).empty()) << "nothing handed out twice";
  EXPECT_EQ(gate_.counts().out + gate_.counts().held, 2u);
  auto server = gate_.ack(out[0].ack_id);
  ASSERT_TRUE(server);
  EXPECT_EQ(*server, (std::vector<std::string>{"s-a1", "s-a1-b"}));
  auto next = gate_.take(10, kT0 + kSecond);
  ASSERT_EQ(ids(next), (std::vector<std::string>{"a2"}));
  EXPECT_EQ(*gate_.ack(next[0].ack_id), (std::vector<std::string>{"s-a2", "s-a2-b"}));
  // And of an acked one: acked again at once, not handed out.
  admit({from_server("a1", "a", "s-a1-c")}, kT0 + 2 * kSecond);
  EXPECT_EQ(ack_now_, (std::vector<std::string>{"s-a1-c"}));
  EXPECT_TRUE(gate_.take(10, kT0 + 2 * kSecond).empty());
}

TEST_F(KeyGateTest, HeldAndOutMessagesHaveTheirLeasesExtendedBeforeHalfIsLeft) {
  admit({from_server("a1", "a", "s-a1"), from_server("a2", "a", "s-a2")});
  auto out = gate_.take(10, kT0);
  EXPECT_TRUE(gate_.upkeep(kT0 + 15 * kSecond).extend.empty());
  auto u = gate_.upkeep(kT0 + 15 * kSecond + 1);
  std::sort(u.extend.begin(), u.extend.end());
  EXPECT_EQ(u.extend, (std::vector<std::string>{"s-a1", "s-a2"}));
  EXPECT_TRUE(gate_.upkeep(kT0 + 20 * kSecond).extend.empty()) << "extended just now";
  // A redelivery refreshes the lease, and the newest ack id is the one extended.
  admit({from_server("a2", "a", "s-a2-b")}, kT0 + 25 * kSecond);
  u = gate_.upkeep(kT0 + 31 * kSecond);
  EXPECT_EQ(u.extend, (std::vector<std::string>{"s-a1"}));
  u = gate_.upkeep(kT0 + 41 * kSecond);
  EXPECT_EQ(u.extend, (std::vector<std::string>{"s-a2-b"}));
}

TEST_F(KeyGateTest, WithoutADeadLetterPolicyAttemptsGoOn) {
  KeyGate gate(policy(0));
  std::vector<ReceivedMessage> pass;
  std::vector<std::string> ack_now;
  gate.admit({from_server("a1", "a", "s-a1")}, kT0, pass, ack_now);
  int64_t now = kT0;
  for (int attempt = 1; attempt <= 8; ++attempt) {
    auto out = gate.take(10, now);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].delivery_attempt, attempt);
    EXPECT_FALSE(gate.fail(out[0].ack_id, std::nullopt, "busy", now));
    now += 700 * kSecond;
  }
}

TEST_F(KeyGateTest, ItIsFullAtItsCap) {
  KeyGate::Policy p = policy();
  p.max_held = 3;
  KeyGate gate(p);
  std::vector<ReceivedMessage> pass;
  std::vector<std::string> ack_now;
  gate.admit({from_server("a1", "a", "1"), from_server("a2", "a", "2")}, kT0, pass, ack_now);
  EXPECT_FALSE(gate.full());
  gate.admit({from_server("b1", "b", "3")}, kT0, pass, ack_now);
  EXPECT_TRUE(gate.full());
  auto out = gate.take(10, kT0);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(gate.ack(out[0].ack_id));
  EXPECT_FALSE(gate.full());
}

}  // namespace
}  // namespace backbone::pubsub
