// The Broker conformance suite on the embedded backend, and what only that backend does: its
// files, compaction, checkpoints, torn tails and the single-process lock.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "broker/broker_conformance.h"
#include "broker/embedded/embedded_broker.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

class EmbeddedHarness final : public BrokerHarness {
 public:
  explicit EmbeddedHarness(std::string query = "") : query_(std::move(query)) {}
  std::string url() override { return "embedded://" + dir_.file("broker") + query_; }
  std::string path(const std::string& rel) const { return dir_.file("broker/" + rel); }

 private:
  TempDir dir_;
  std::string query_;
};

}  // namespace

INSTANTIATE_TEST_SUITE_P(
    Embedded, BrokerConformance,
    ::testing::Values(
        BrokerBackend{"embedded", [] { return std::make_unique<EmbeddedHarness>(); }},
        // Tiny segments and journal: every test also exercises rolling and checkpoints.
        BrokerBackend{"embedded_tiny_files",
                      [] {
                        return std::make_unique<EmbeddedHarness>(
                            "?segment_bytes=512&checkpoint_bytes=1024");
                      }}),
    [](const auto& info) { return info.param.name; });

namespace {

class EmbeddedBroker : public ::testing::Test {
 protected:
  std::unique_ptr<Broker> open(const std::string& query = "") {
    BrokerOptions o;
    o.url = harness_.url() + query;
    o.clock = &clock_;
    auto b = Broker::open(o);
    EXPECT_TRUE(b.ok()) << b.error().describe();
    return b.ok() ? std::move(*b) : nullptr;
  }
  size_t files_in(const std::string& rel) {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(harness_.path(rel))) {
      n += e.path().extension() == ".seg";
    }
    return n;
  }
  std::vector<OutgoingMessage> messages(int n, size_t size = 100) {
    std::vector<OutgoingMessage> out;
    for (int i = 0; i < n; ++i) out.push_back({std::string(size, 'a' + i % 26), {}, ""});
    return out;
  }
  ManualClock clock_;
  EmbeddedHarness harness_;
};

TEST_F(EmbeddedBroker, OnlyOneProcessMayOpenIt) {
  auto first = open();
  BrokerOptions o;
  o.url = harness_.url();
  auto second = Broker::open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), Errc::kUnavailable);
  first.reset();
  EXPECT_TRUE(Broker::open(o).ok());
}

TEST_F(EmbeddedBroker, BadUrlsAreRefused) {
  for (const char* url : {"embedded://", "embedded://x?segment_bytes=big", "embedded://x?color=red",
                          "kafka://x", "nats://"}) {
    BrokerOptions o;
    o.url = url;
    EXPECT_EQ(Broker::open(o).code(), Errc::kInvalidArgument) << url;
  }
}

TEST_F(EmbeddedBroker, AckedSegmentsAreDeleted) {
  auto b = open("?segment_bytes=4096");
  ASSERT_TRUE(b->create_topic({"orders", {}}).ok());
  ASSERT_TRUE(b->create_subscription({.name = "orders.work", .topic = "orders"}).ok());
  ASSERT_TRUE(b->publish("orders", messages(200)).ok());
  const std::string dir = "topics/1";
  const size_t before = files_in(dir);
  EXPECT_GT(before, 4u);
  for (;;) {
    auto got = b->pull("orders.work", 50);
    ASSERT_TRUE(got.ok());
    if (got->empty()) break;
    std::vector<std::string> ids;
    for (auto& m : *got) ids.push_back(m.ack_id);
    ASSERT_TRUE(b->ack("orders.work", ids).ok());
  }
  ASSERT_TRUE(b->publish("orders", messages(1)).ok());  // a flush runs the compaction
  EXPECT_LE(files_in(dir), 2u);
  b.reset();
  b = open("?segment_bytes=4096");
  auto got = b->pull("orders.work", 500);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), 1u);  // only the last message
}

// Acks everything `sub` has, in pulls of 50.
void drain(Broker& b, const std::string& sub) {
  for (;;) {
    auto got = b.pull(sub, 50);
    ASSERT_TRUE(got.ok());
    if (got->empty()) return;
    std::vector<std::string> ids;
    for (auto& m : *got) ids.push_back(m.ack_id);
    ASSERT_TRUE(b.ack(sub, ids).ok());
  }
}

TEST_F(EmbeddedBroker, ASeekBackToWhatCompactionDroppedIsRefusedSayingWhatIsHeld) {
  auto b = open("?segment_bytes=4096");
  ASSERT_TRUE(b->create_topic({"orders", {}}).ok());
  ASSERT_TRUE(b->create_subscription({.name = "orders.work", .topic = "orders"}).ok());
  const Timestamp t0 = clock_.now();
  ASSERT_TRUE(b->publish("orders", messages(200)).ok());
  clock_.advance_micros(kMinute);
  const Timestamp t1 = clock_.now();
  ASSERT_TRUE(b->publish("orders", messages(1)).ok());
  drain(*b, "orders.work");
  ASSERT_TRUE(b->publish("orders", messages(1)).ok());  // a flush runs the compaction
  ASSERT_LE(files_in("topics/1"), 2u);
  auto refused = b->seek_to_time("orders.work", t0);
  EXPECT_EQ(refused.code(), Errc::kImmutable);
  EXPECT_NE(refused.error().describe().find("no longer held"), std::string::npos)
      << refused.error().describe();
  // What the kept segment holds can be sought back to, before and after a restart.
  ASSERT_TRUE(b->seek_to_time("orders.work", t1).ok());
  b.reset();
  b = open("?segment_bytes=4096");
  EXPECT_EQ(b->seek_to_time("orders.work", t0).code(), Errc::kImmutable);
  auto got = b->pull("orders.work", 500);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), 2u);  // the two published at t1
}

TEST_F(EmbeddedBroker, ATopicsRetentionAndASnapshotKeepAckedSegments) {
  auto b = open("?segment_bytes=4096");
  ASSERT_TRUE(b->create_topic({"orders", {}, 10 * kMinute}).ok());
  ASSERT_TRUE(b->create_topic({"payments", {}}).ok());
  ASSERT_TRUE(b->create_subscription({.name = "orders.work", .topic = "orders"}).ok());
  ASSERT_TRUE(b->create_subscription({.name = "payments.work", .topic = "payments"}).ok());
  ASSERT_TRUE(b->create_snapshot("payments-start", "payments.work", {}).ok());
  const Timestamp t0 = clock_.now();
  ASSERT_TRUE(b->publish("orders", messages(200)).ok());
  ASSERT_TRUE(b->publish("payments", messages(200)).ok());
  drain(*b, "orders.work");
  drain(*b, "payments.work");
  ASSERT_TRUE(b->publish("orders", messages(1)).ok());
  EXPECT_GT(files_in("topics/1"), 4u);  // within the topic's 10 minutes
  EXPECT_GT(files_in("topics/2"), 4u);  // the snapshot needs them
  ASSERT_TRUE(b->seek_to_time("orders.work", t0).ok());
  ASSERT_TRUE(b->seek_to_snapshot("payments.work", "payments-start").ok());
  auto orders = b->pull("orders.work", 1000);
  ASSERT_TRUE(orders.ok());
  EXPECT_EQ(orders->size(), 201u);
  std::vector<std::string> ids;
  for (auto& m : *orders) ids.push_back(m.ack_id);
  ASSERT_TRUE(b->ack("orders.work", ids).ok());
  drain(*b, "payments.work");
  // Past the retention, and with the snapshot gone, they go at the next flush.
  clock_.advance_micros(11 * kMinute);
  ASSERT_TRUE(b->delete_snapshot("payments-start").ok());
  ASSERT_TRUE(b->publish("orders", messages(1)).ok());
  EXPECT_LE(files_in("topics/1"), 2u);
  EXPECT_LE(files_in("topics/2"), 2u);
}

TEST_F(EmbeddedBroker, TheJournalIsCheckpointedAndStaysSmall) {
  auto b = open("?checkpoint_bytes=4096");
  ASSERT_TRUE(b->create_topic({"orders", {}}).ok());
  ASSERT_TRUE(b->create_subscription({.name = "orders.work", .topic = "orders"}).ok());
  for (int round = 0; round < 50; ++round) {
    ASSERT_TRUE(b->publish("orders", messages(20, 10)).ok());
    auto got = b->pull("orders.work", 100);
    std::vector<std::string> ids;
    for (auto& m : *got) ids.push_back(m.ack_id);
    ASSERT_TRUE(b->ack("orders.work", ids).ok());
  }
  EXPECT_LT(std::filesystem::file_size(harness_.path("state.journal")), 8192u);
  b.reset();
  b = open("?checkpoint_bytes=4096");
  EXPECT_TRUE(b->pull("orders.work", 100)->empty());
}

TEST_F(EmbeddedBroker, ATornTailIsCutOffAndEverythingBeforeItKept) {
  {
    auto b = open();
    ASSERT_TRUE(b->create_topic({"orders", {}}).ok());
    ASSERT_TRUE(b->create_subscription({.name = "orders.work", .topic = "orders"}).ok());
    ASSERT_TRUE(b->publish("orders", messages(3)).ok());
  }
  // A crash in the middle of a write leaves half a record at the end of each file.
  for (const std::string& rel :
       {std::string("topics/1/00000000000000000000.seg"), std::string("state.journal")}) {
    std::ofstream(harness_.path(rel), std::ios::app) << std::string("\x20\x00\x00\x00\x01\x02", 6);
  }
  auto b = open();
  auto got = b->pull("orders.work", 10);
  ASSERT_TRUE(got.ok()) << got.error().describe();
  EXPECT_EQ(got->size(), 3u);
  ASSERT_TRUE(b->publish("orders", messages(1)).ok());  // appends after the cut
  EXPECT_EQ(b->pull("orders.work", 10)->size(), 1u);
}

TEST_F(EmbeddedBroker, ASegmentMadeAfterAnUnsyncedTailIsDropped) {
  {
    auto b = open("?segment_bytes=4096");
    ASSERT_TRUE(b->create_topic({"orders", {}}).ok());
    ASSERT_TRUE(b->create_subscription({.name = "orders.work", .topic = "orders"}).ok());
    ASSERT_TRUE(b->publish("orders", messages(3)).ok());
  }
  // As after a kill: the next segment file was made when the first filled up, but the records
  // between were never written.
  std::ofstream(harness_.path("topics/1/00000000000000000090.seg")).flush();
  auto b = open("?segment_bytes=4096");
  ASSERT_TRUE(b);
  auto got = b->pull("orders.work", 10);
  ASSERT_TRUE(got.ok()) << got.error().describe();
  EXPECT_EQ(got->size(), 3u);
  EXPECT_EQ(files_in("topics/1"), 1u);
  ASSERT_TRUE(b->publish("orders", messages(1)).ok());
  EXPECT_EQ(b->pull("orders.work", 10)->size(), 1u);
}

}  // namespace
}  // namespace backbone::testing
