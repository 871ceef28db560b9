// The delivery layer's encodings, alone: framed records and their CRCs, journal records and the
// fold that replays them, stored messages, and ack ids (doc/broker_log_format.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "broker/delivery/ack_id.h"
#include "broker/delivery/codec.h"
#include "broker/delivery/journal_record.h"
#include "broker/delivery/stored_message.h"
#include "broker/delivery/subscription_state.h"

namespace backbone::delivery {
namespace {

TEST(DeliveryCodec, AFrameRoundTripsAndADamagedOrShortOneIsRefused) {
  std::string data;
  append_frame(data, "first");
  append_frame(data, "");
  append_frame(data, std::string(1000, 'x'));
  auto a = read_frame(data, 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->payload, "first");
  EXPECT_EQ(a->size, kFrameHeader + 5);
  auto b = read_frame(data, a->size);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->payload, "");
  auto c = read_frame(data, a->size + b->size);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->payload.size(), 1000u);
  EXPECT_FALSE(read_frame(data, data.size()));  // nothing left

  std::string torn = data.substr(0, data.size() - 1);  // a crash cut the last write
  EXPECT_FALSE(read_frame(torn, a->size + b->size));
  std::string flipped = data;
  flipped[kFrameHeader + 1] ^= 0x20;  // one bit of "first"
  EXPECT_FALSE(read_frame(flipped, 0));
  EXPECT_FALSE(read_frame(data.substr(0, 3), 0));  // shorter than a header
}

TEST(DeliveryCodec, IntegersAndStringsRoundTripAndAShortReadFails) {
  std::string out;
  Writer w(out);
  w.u8(7);
  w.u32(0xdeadbeef);
  w.u64(0x0123456789abcdefULL);
  w.i64(-42);
  w.str("héllo");
  Reader r(out);
  uint8_t a;
  uint32_t b;
  uint64_t c;
  int64_t d;
  std::string e;
  ASSERT_TRUE(r.u8(a) && r.u32(b) && r.u64(c) && r.i64(d) && r.str(e));
  EXPECT_EQ(a, 7);
  EXPECT_EQ(b, 0xdeadbeefu);
  EXPECT_EQ(c, 0x0123456789abcdefULL);
  EXPECT_EQ(d, -42);
  EXPECT_EQ(e, "héllo");
  EXPECT_TRUE(r.done());
  Reader short_read(std::string_view(out).substr(0, out.size() - 2));
  ASSERT_TRUE(short_read.u8(a) && short_read.u32(b) && short_read.u64(c) && short_read.i64(d));
  EXPECT_FALSE(short_read.str(e));
}

TEST(DeliveryCodec, JournalRecordsRoundTripAndATruncatedPayloadIsNotARecord) {
  const JournalRecord in{JournalRecord::Type::kAttempt, 3, 99, 4, 1234567, 0, "it failed"};
  std::string framed;
  encode_journal_record(in, framed);
  auto f = read_frame(framed, 0);
  ASSERT_TRUE(f);
  JournalRecord out;
  ASSERT_TRUE(decode_journal_record(f->payload, out));
  EXPECT_EQ(out.type, in.type);
  EXPECT_EQ(out.sub_id, 3u);
  EXPECT_EQ(out.offset, 99u);
  EXPECT_EQ(out.attempts, 4u);
  EXPECT_EQ(out.when_us, 1234567);
  EXPECT_EQ(out.reason, "it failed");
  EXPECT_FALSE(decode_journal_record(f->payload.substr(0, f->payload.size() - 1), out));
}

TEST(DeliveryCodec, TheFoldKeepsAcksAboveTheBaseAndAttemptsOfUnackedMessages) {
  JournalFold fold;
  fold.apply({JournalRecord::Type::kBase, 1, 10, 0, 0, 2, {}});
  fold.apply({JournalRecord::Type::kAttempt, 1, 11, 1, 500, 0, {}});
  fold.apply({JournalRecord::Type::kAttempt, 1, 12, 2, 900, 0, "again"});
  fold.apply({JournalRecord::Type::kAck, 1, 11, 0, 0, 0, {}});
  fold.apply({JournalRecord::Type::kDead, 1, 13, 0, 0, 0, {}});
  fold.apply({JournalRecord::Type::kAck, 2, 5, 0, 0, 0, {}});  // another subscription
  RestoredState& s = fold.state(1);
  EXPECT_EQ(s.lwm, 10u);
  EXPECT_EQ(s.attempts.count(11), 0u);  // acked: no longer an attempt
  ASSERT_EQ(s.attempts.count(12), 1u);
  EXPECT_EQ(s.attempts[12].attempts, 2);
  EXPECT_EQ(s.attempts[12].available_at.micros(), 900);
  EXPECT_EQ(s.attempts[12].reason, "again");
  std::vector<uint64_t> acked = s.acked;
  std::sort(acked.begin(), acked.end());
  EXPECT_EQ(acked, (std::vector<uint64_t>{11, 13}));
  EXPECT_EQ(fold.dead_lettered(1), 3u);  // 2 before the base, 1 after
  EXPECT_EQ(fold.state(2).acked, std::vector<uint64_t>{5});
}

TEST(DeliveryCodec, AStoredMessageRoundTrips) {
  StoredMessage m;
  m.offset = 17;
  m.publish_time_us = 1'700'000'000'000'000;
  m.ordering_key = "contact:42";
  m.attributes = {{"a", "1"}, {"backbone.event_id", "x"}};
  m.data = std::string("\0binary\xff", 8);
  std::string bytes;
  encode_message(m, bytes);
  StoredMessage back;
  ASSERT_TRUE(decode_message(bytes, back));
  EXPECT_EQ(back.offset, m.offset);
  EXPECT_EQ(back.publish_time_us, m.publish_time_us);
  EXPECT_EQ(back.ordering_key, m.ordering_key);
  EXPECT_EQ(back.attributes, m.attributes);
  EXPECT_EQ(back.data, m.data);
  EXPECT_NE(ordering_key_hash("contact:42"), 0u);
  EXPECT_NE(ordering_key_hash("contact:42"), ordering_key_hash("contact:43"));
  EXPECT_FALSE(decode_message(std::string_view(bytes).substr(0, bytes.size() - 1), back));
}

TEST(DeliveryCodec, ASnapshotFoldsBackToTheStateItDescribes) {
  TopicIndex topic;
  for (int i = 0; i < 5; ++i) topic.push_back(MsgRef{});
  SubscriptionConfig c;
  c.name = "s";
  c.topic = "t";
  SubscriptionState state(c, 0, 1);
  struct NullSink final : StateSink {
    void on_attempt(uint64_t, int, Timestamp, const std::string&) override {}
    void on_acked(uint64_t) override {}
    void on_dead_letter(uint64_t, int, const std::string&) override {}
  } sink;
  const Timestamp now = Timestamp::from_micros(5'000'000);
  auto got = state.take(5, now, topic, sink);
  ASSERT_EQ(got.size(), 5u);
  ASSERT_TRUE(state.ack(0, got[0].generation, topic, sink, now));
  ASSERT_TRUE(state.ack(3, got[3].generation, topic, sink, now));
  ASSERT_TRUE(state.nack(2, got[2].generation, 7 * kSecond, "slow", now, topic, sink));

  std::string framed;
  encode_snapshot(9, state, framed);
  JournalFold fold;
  for (size_t pos = 0; pos < framed.size();) {
    auto f = read_frame(framed, pos);
    ASSERT_TRUE(f);
    JournalRecord r;
    ASSERT_TRUE(decode_journal_record(f->payload, r));
    fold.apply(r);
    pos += f->size;
  }
  const RestoredState want = state.snapshot();
  RestoredState& got_back = fold.state(9);
  EXPECT_EQ(got_back.lwm, want.lwm);
  EXPECT_EQ(got_back.acked, want.acked);
  ASSERT_EQ(got_back.attempts.size(), want.attempts.size());
  for (const auto& [off, a] : want.attempts) {
    ASSERT_EQ(got_back.attempts.count(off), 1u) << off;
    EXPECT_EQ(got_back.attempts[off].attempts, a.attempts);
    EXPECT_EQ(got_back.attempts[off].available_at, a.available_at);
    EXPECT_EQ(got_back.attempts[off].reason, a.reason);
  }
}

TEST(AckId, EncodesAndParsesBack) {
  const std::string text = encode_ack_id("7", 123, 456);
  EXPECT_EQ(text, "7:123:456");
  auto id = parse_ack_id(text);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, (AckId{"7", 123, 456}));
  auto uid = parse_ack_id("0f3a9c:18446744073709551615:0");
  ASSERT_TRUE(uid.ok());
  EXPECT_EQ(uid->owner, "0f3a9c");
  EXPECT_EQ(uid->offset, 18446744073709551615ULL);
}

TEST(AckId, MalformedIdsAreInvalidArguments) {
  for (const char* bad : {"", "7", "7:1", ":1:2", "7:1:2x", "7:x:2", "7:1:", "7::2", "7:1:2:3",
                          "7:-1:2", "7:18446744073709551616:0", "7: 1:2"}) {
    auto id = parse_ack_id(bad);
    ASSERT_FALSE(id.ok()) << bad;
    EXPECT_EQ(id.code(), Errc::kInvalidArgument) << bad;
    EXPECT_EQ(id.error().where, "ack_ids");
  }
}

}  // namespace
}  // namespace backbone::delivery
