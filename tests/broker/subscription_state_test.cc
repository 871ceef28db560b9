// SubscriptionState alone: the delivery rules of SPEC §4, on timestamps the test chooses (no
// clock, no broker, no I/O). A RecordingSink keeps what the state machine reported, in order.
#include "broker/delivery/subscription_state.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker/delivery/journal_record.h"
#include "broker/delivery/stored_message.h"

namespace backbone::delivery {
namespace {

struct Reported {
  enum Kind { kAttempt, kAcked, kDead } kind;
  uint64_t offset;
  int attempt;
  int64_t at_us;
  std::string reason;
  bool operator==(const Reported&) const = default;
};

class RecordingSink final : public StateSink {
 public:
  void on_attempt(uint64_t offset, int attempt, Timestamp available_at,
                  const std::string& reason) override {
    out.push_back({Reported::kAttempt, offset, attempt, available_at.micros(), reason});
  }
  void on_acked(uint64_t offset) override { out.push_back({Reported::kAcked, offset, 0, 0, {}}); }
  void on_dead_letter(uint64_t offset, int attempt, const std::string& reason) override {
    out.push_back({Reported::kDead, offset, attempt, 0, reason});
  }
  std::vector<Reported> out;
};

Timestamp at(int64_t seconds) {
  return Timestamp::from_micros(1'000'000'000'000 + seconds * kSecond);
}

class SubscriptionStateTest : public ::testing::Test {
 protected:
  // Appends a message published at `published` with `key` (empty: none); returns its offset.
  uint64_t publish(const std::string& key = "", Timestamp published = at(0)) {
    MsgRef ref;
    ref.key_hash = key.empty() ? 0 : ordering_key_hash(key);
    ref.publish_time_us = published.micros();
    topic_.push_back(ref);
    return topic_.end() - 1;
  }
  SubscriptionState make(SubscriptionConfig c) { return SubscriptionState(std::move(c), 0, 1); }
  static SubscriptionConfig config() {
    SubscriptionConfig c;
    c.name = "sub";
    c.topic = "orders";
    c.ack_deadline_us = 10 * kSecond;
    return c;
  }
  std::vector<uint64_t> offsets(const std::vector<Delivery>& ds) {
    std::vector<uint64_t> out;
    for (const Delivery& d : ds) out.push_back(d.offset);
    return out;
  }

  TopicIndex topic_;
  RecordingSink sink_;
};

TEST_F(SubscriptionStateTest, DeliversInOffsetOrderAndAnAckMovesTheLowWaterMark) {
  for (int i = 0; i < 3; ++i) publish();
  auto s = make(config());
  auto got = s.take(10, at(1), topic_, sink_);
  EXPECT_EQ(offsets(got), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_TRUE(s.ack(1, got[1].generation, topic_, sink_, at(2)));
  EXPECT_EQ(s.low_water_mark(), 0u);  // 0 is still out
  EXPECT_TRUE(s.ack(0, got[0].generation, topic_, sink_, at(2)));
  EXPECT_EQ(s.low_water_mark(), 2u);
  EXPECT_EQ(s.acked_above_lwm(), std::vector<uint64_t>{});
  EXPECT_EQ(s.stats(at(2), topic_).in_flight, 1u);
}

TEST_F(SubscriptionStateTest, AnAckOfAStaleDeliveryIsRefused) {
  publish();
  auto s = make(config());
  auto first = s.take(1, at(0), topic_, sink_);
  ASSERT_EQ(first.size(), 1u);
  // The deadline passes: the message goes out again, under a new generation.
  auto second = s.take(1, at(11), topic_, sink_);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_NE(second[0].generation, first[0].generation);
  EXPECT_FALSE(s.ack(0, first[0].generation, topic_, sink_, at(12)));
  EXPECT_EQ(s.low_water_mark(), 0u);
  EXPECT_TRUE(s.ack(0, second[0].generation, topic_, sink_, at(12)));
  EXPECT_EQ(s.low_water_mark(), 1u);
}

TEST_F(SubscriptionStateTest, ANackWaitsForTheRetryBackoffThatDoublesPerAttempt) {
  publish();
  SubscriptionConfig c = config();
  c.retry = RetryPolicy{10 * kSecond, 60 * kSecond};
  auto s = make(c);
  int64_t now = 0;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    auto got = s.take(1, at(now), topic_, sink_);
    ASSERT_EQ(got.size(), 1u) << attempt;
    EXPECT_EQ(got[0].attempt, attempt);
    ASSERT_TRUE(s.nack(0, got[0].generation, std::nullopt, "boom", at(now), topic_, sink_));
    const int64_t backoff = std::min<int64_t>(10 << (attempt - 1), 60);
    EXPECT_TRUE(s.take(1, at(now + backoff - 1), topic_, sink_).empty()) << attempt;
    EXPECT_FALSE(s.has_deliverable(at(now + backoff - 1), topic_));
    EXPECT_TRUE(s.has_deliverable(at(now + backoff), topic_));
    now += backoff;
  }
  // The sink was told of each failed attempt and when it may come back.
  const Reported& last = sink_.out.back();
  EXPECT_EQ(last.kind, Reported::kAttempt);
  EXPECT_EQ(last.attempt, 4);
  EXPECT_EQ(last.reason, "boom");
}

TEST_F(SubscriptionStateTest, SpentAttemptsDeadLetterTheMessageAndFreeItsKey) {
  const uint64_t first = publish("contact:1");
  const uint64_t second = publish("contact:1");
  SubscriptionConfig c = config();
  c.ordered = true;
  c.dead_letter = DeadLetterPolicy{"dlq", 5};
  auto s = make(c);
  for (int attempt = 1; attempt <= 5; ++attempt) {
    auto got = s.take(10, at(attempt * 100), topic_, sink_);
    ASSERT_EQ(offsets(got), std::vector<uint64_t>{first}) << attempt;  // the key's head only
    ASSERT_TRUE(s.nack(first, got[0].generation, 0, "bad " + std::to_string(attempt),
                       at(attempt * 100), topic_, sink_));
  }
  ASSERT_FALSE(sink_.out.empty());
  bool dead = false;
  for (const Reported& r : sink_.out) {
    if (r.kind == Reported::kDead) {
      dead = true;
      EXPECT_EQ(r.offset, first);
      EXPECT_EQ(r.attempt, 5);
      EXPECT_EQ(r.reason, "bad 5");
    }
  }
  EXPECT_TRUE(dead);
  EXPECT_EQ(s.dead_lettered(), 1u);
  auto next = s.take(10, at(600), topic_, sink_);
  EXPECT_EQ(offsets(next), std::vector<uint64_t>{second});
  EXPECT_EQ(next[0].attempt, 1);
}

TEST_F(SubscriptionStateTest, AnOrderedKeyHasOneMessageOutAndOtherKeysDoNotWait) {
  const uint64_t a1 = publish("a");
  const uint64_t a2 = publish("a");
  const uint64_t b1 = publish("b");
  const uint64_t none = publish();
  SubscriptionConfig c = config();
  c.ordered = true;
  auto s = make(c);
  auto got = s.take(10, at(0), topic_, sink_);
  EXPECT_EQ(offsets(got), (std::vector<uint64_t>{a1, b1, none}));
  EXPECT_TRUE(s.take(10, at(1), topic_, sink_).empty());  // a2 waits for a1
  EXPECT_EQ(s.stats(at(1), topic_).undelivered, 1u);
  ASSERT_TRUE(s.ack(a1, got[0].generation, topic_, sink_, at(2)));
  EXPECT_EQ(offsets(s.take(10, at(2), topic_, sink_)), std::vector<uint64_t>{a2});
}

TEST_F(SubscriptionStateTest, ANackOnAnOrderedKeyRedeliversTheSameHeadFirst) {
  const uint64_t a1 = publish("a");
  publish("a");
  SubscriptionConfig c = config();
  c.ordered = true;
  auto s = make(c);
  auto got = s.take(10, at(0), topic_, sink_);
  ASSERT_EQ(offsets(got), std::vector<uint64_t>{a1});
  ASSERT_TRUE(s.nack(a1, got[0].generation, 5 * kSecond, "later", at(0), topic_, sink_));
  EXPECT_TRUE(s.take(10, at(4), topic_, sink_).empty());
  auto again = s.take(10, at(5), topic_, sink_);
  EXPECT_EQ(offsets(again), std::vector<uint64_t>{a1});
  EXPECT_EQ(again[0].attempt, 2);
}

class StreamedKeys : public SubscriptionStateTest {
 protected:
  static SubscriptionConfig streamed() {
    SubscriptionConfig c = config();
    c.ordered = true;
    c.key_delivery = KeyDelivery::kStreamed;
    c.retry = RetryPolicy{10 * kSecond, 600 * kSecond};
    return c;
  }
};

TEST_F(StreamedKeys, AKeysMessagesGoOutTogetherInOrderAndFollowOnesPublishedLater) {
  const uint64_t a1 = publish("a"), a2 = publish("a"), b1 = publish("b"), a3 = publish("a");
  auto s = make(streamed());
  auto got = s.take(2, at(0), topic_, sink_);
  EXPECT_EQ(offsets(got), (std::vector<uint64_t>{a1, a2}));
  got = s.take(10, at(0), topic_, sink_);
  EXPECT_EQ(offsets(got), (std::vector<uint64_t>{b1, a3}));
  const uint64_t a4 = publish("a");
  EXPECT_EQ(offsets(s.take(10, at(0), topic_, sink_)), std::vector<uint64_t>{a4});
  EXPECT_EQ(s.stats(at(0), topic_).in_flight, 5u);
  EXPECT_EQ(s.stats(at(0), topic_).undelivered, 0u);
}

TEST_F(StreamedKeys, AnExpiredDeadlineWithdrawsTheKeysLaterDeliveriesUntilItIsThrough) {
  const uint64_t a1 = publish("a"), a2 = publish("a"), a3 = publish("a"), b1 = publish("b");
  auto s = make(streamed());
  auto first = s.take(10, at(0), topic_, sink_);
  ASSERT_EQ(offsets(first), (std::vector<uint64_t>{a1, a2, a3, b1}));
  // a2 and b1 are acked in time; a1 and a3 are not.
  ASSERT_TRUE(s.ack(a2, first[1].generation, topic_, sink_, at(5)));
  ASSERT_TRUE(s.ack(b1, first[3].generation, topic_, sink_, at(5)));
  auto second = s.take(10, at(11), topic_, sink_);  // a1's deadline passed: it waits 10 s
  EXPECT_TRUE(second.empty());
  // a3 was out behind a1 and is withdrawn: its ack id is stale now.
  EXPECT_FALSE(s.ack(a3, first[2].generation, topic_, sink_, at(11)));
  const SubscriptionStats st = s.stats(at(11), topic_);
  EXPECT_EQ(st.in_flight, 0u);
  EXPECT_EQ(st.undelivered, 2u);  // a1 waiting, a3 queued behind it
  auto again = s.take(10, at(21), topic_, sink_);
  ASSERT_EQ(offsets(again), (std::vector<uint64_t>{a1, a3}));
  EXPECT_EQ(again[0].attempt, 2);
  EXPECT_EQ(again[1].attempt, 2);
  ASSERT_TRUE(s.ack(a3, again[1].generation, topic_, sink_, at(22)));
  ASSERT_TRUE(s.ack(a1, again[0].generation, topic_, sink_, at(22)));
  EXPECT_EQ(s.low_water_mark(), 4u);
}

TEST_F(StreamedKeys, ADeadLetterInTheMiddleLetsTheKeyFlowOn) {
  const uint64_t a1 = publish("a"), a2 = publish("a"), a3 = publish("a");
  SubscriptionConfig c = streamed();
  c.dead_letter = DeadLetterPolicy{"dlq", 5};
  auto s = make(c);
  auto got = s.take(10, at(0), topic_, sink_);
  ASSERT_EQ(offsets(got), (std::vector<uint64_t>{a1, a2, a3}));
  ASSERT_TRUE(s.dead_letter(a2, got[1].generation, "poison", at(1), topic_, sink_));
  // a3 stays out: a dead-letter is settled, not failed.
  ASSERT_TRUE(s.ack(a3, got[2].generation, topic_, sink_, at(1)));
  ASSERT_TRUE(s.ack(a1, got[0].generation, topic_, sink_, at(1)));
  EXPECT_EQ(s.low_water_mark(), 3u);
  EXPECT_EQ(s.stats(at(1), topic_).dead_lettered, 1u);
}

TEST_F(StreamedKeys, SpentAttemptsDeadLetterTheHeadAndItsWithdrawnFollowersComeAtOnce) {
  const uint64_t a1 = publish("a"), a2 = publish("a");
  SubscriptionConfig c = streamed();
  c.dead_letter = DeadLetterPolicy{"dlq", 5};
  auto s = make(c);
  int64_t t = 0;
  for (int attempt = 1; attempt <= 5; ++attempt) {
    auto got = s.take(10, at(t), topic_, sink_);
    ASSERT_FALSE(got.empty()) << attempt;
    ASSERT_EQ(got[0].offset, a1) << attempt;
    ASSERT_TRUE(s.nack(a1, got[0].generation, 0, "no", at(t), topic_, sink_));
    t += 1;
  }
  auto next = s.take(10, at(t), topic_, sink_);
  ASSERT_EQ(offsets(next), std::vector<uint64_t>{a2});
  EXPECT_EQ(sink_.out.back().kind, Reported::kAttempt);
  EXPECT_EQ(s.stats(at(t), topic_).dead_lettered, 1u);
}

TEST_F(StreamedKeys, ASnapshotRestoresTheKeysOrderAndTheWithdrawnAttempts) {
  const uint64_t a1 = publish("a"), a2 = publish("a"), a3 = publish("a");
  auto s = make(streamed());
  auto got = s.take(10, at(0), topic_, sink_);
  ASSERT_EQ(got.size(), 3u);
  ASSERT_TRUE(s.nack(a1, got[0].generation, 30 * kSecond, "later", at(0), topic_, sink_));
  auto r = SubscriptionState(streamed(), 0, 100);
  r.restore(s.snapshot(), topic_, at(1));
  EXPECT_TRUE(r.take(10, at(29), topic_, sink_).empty());  // a1's backoff holds the key
  auto after = r.take(10, at(30), topic_, sink_);
  ASSERT_EQ(offsets(after), (std::vector<uint64_t>{a1, a2, a3}));
  EXPECT_EQ(after[0].attempt, 2);
  EXPECT_EQ(after[1].attempt, 2);
}

TEST_F(SubscriptionStateTest, UnackedMessagesOlderThanTheRetentionAreDropped) {
  publish("", at(0));
  publish("", at(500));
  SubscriptionConfig c = config();
  c.retention_us = 10 * kMinute;
  auto s = make(c);
  auto got = s.take(10, at(601), topic_, sink_);
  EXPECT_EQ(offsets(got), std::vector<uint64_t>{1});  // 0 is past its 600 s
  EXPECT_EQ(s.low_water_mark(), 1u);
  EXPECT_EQ(sink_.out.front(), (Reported{Reported::kAcked, 0, 0, 0, {}}));
}

TEST_F(SubscriptionStateTest, ASnapshotRestoresAcksAndAttempts) {
  for (int i = 0; i < 4; ++i) publish();
  SubscriptionConfig c = config();
  c.retry = RetryPolicy{30 * kSecond, 600 * kSecond};
  auto s = make(c);
  auto got = s.take(10, at(0), topic_, sink_);
  ASSERT_EQ(got.size(), 4u);
  ASSERT_TRUE(s.ack(0, got[0].generation, topic_, sink_, at(1)));
  ASSERT_TRUE(s.ack(2, got[2].generation, topic_, sink_, at(1)));
  ASSERT_TRUE(s.nack(1, got[1].generation, std::nullopt, "why", at(1), topic_, sink_));
  // 3 stays in flight: after a restart it is redelivered at once.
  const RestoredState snap = s.snapshot();
  EXPECT_EQ(snap.lwm, 1u);
  EXPECT_EQ(snap.acked, std::vector<uint64_t>{2});

  auto r = SubscriptionState(c, 0, 100);
  r.restore(snap, topic_, at(2));
  auto after = r.take(10, at(2), topic_, sink_);
  EXPECT_EQ(offsets(after), std::vector<uint64_t>{3});  // 1 waits for its backoff
  EXPECT_EQ(offsets(r.take(10, at(31), topic_, sink_)), std::vector<uint64_t>{1});
}

TEST_F(SubscriptionStateTest, AJournalReplayRebuildsTheSameState) {
  for (int i = 0; i < 3; ++i) publish();
  SubscriptionConfig c = config();
  c.dead_letter = DeadLetterPolicy{"dlq", 5};
  auto s = make(c);
  auto got = s.take(10, at(0), topic_, sink_);
  ASSERT_TRUE(s.ack(1, got[1].generation, topic_, sink_, at(1)));
  ASSERT_TRUE(s.dead_letter(2, got[2].generation, "poison", at(1), topic_, sink_));
  // The records a backend would write for what the sink heard, folded back.
  JournalFold fold;
  for (const Reported& r : sink_.out) {
    JournalRecord rec;
    rec.sub_id = 7;
    rec.offset = r.offset;
    rec.type = r.kind == Reported::kAttempt ? JournalRecord::Type::kAttempt
               : r.kind == Reported::kAcked ? JournalRecord::Type::kAck
                                            : JournalRecord::Type::kDead;
    rec.attempts = static_cast<uint32_t>(r.attempt);
    rec.when_us = r.at_us;
    fold.apply(rec);
  }
  EXPECT_EQ(fold.dead_lettered(7), 1u);
  auto r = SubscriptionState(c, 0, 50);
  r.restore(fold.state(7), topic_, at(2));
  EXPECT_EQ(offsets(r.take(10, at(2), topic_, sink_)), std::vector<uint64_t>{0});
}

}  // namespace
}  // namespace backbone::delivery
