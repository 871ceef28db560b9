// The embedded broker on a full disk (a small tmpfs, filled up): publishes, pulls and acks fail
// with a clear error while nothing can be written, the broker resumes by itself once space is
// freed (no reopen), nothing whose publish was acknowledged is lost or reordered, and the files
// are left whole: a reopen cuts nothing off them.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "backbone/broker.h"
#include "tmpfs.h"

namespace backbone::testing {
namespace {

constexpr int kFullDiskKeys = 4;
constexpr int kFullDiskBatch = 8;
constexpr const char* kTopic = "full-disk-topic";
constexpr const char* kSub = "full-disk-sub";

// Every file of the broker with its size.
std::map<std::string, uintmax_t> broker_file_sizes(const std::string& dir) {
  std::map<std::string, uintmax_t> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[e.path().string()] = e.file_size();
  }
  return out;
}

class EmbeddedFullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs_.mounted()) GTEST_SKIP() << fs_.why_not();
    // Small segments and journal: the full disk meets new segment files and checkpoints too.
    url_ = "embedded://" + fs_.file("broker") + "?segment_bytes=65536&checkpoint_bytes=32768";
    broker_ = open();
    ASSERT_TRUE(broker_);
    ASSERT_TRUE(broker_->create_topic({kTopic}).ok());
    SubscriptionConfig s;
    s.name = kSub;
    s.topic = kTopic;
    s.ordered = true;
    s.ack_deadline_us = 60 * kSecond;
    ASSERT_TRUE(broker_->create_subscription(s).ok());
  }
  std::unique_ptr<Broker> open() {
    BrokerOptions o;
    o.url = url_;
    o.clock = &clock_;
    auto b = Broker::open(o);
    EXPECT_TRUE(b.ok()) << b.error().describe();
    return b.ok() ? std::move(*b) : nullptr;
  }
  // The next batch: 2 KiB messages whose data starts with their sequence number.
  std::vector<OutgoingMessage> batch() {
    std::vector<OutgoingMessage> out;
    for (int i = 0; i < kFullDiskBatch; ++i, ++next_) {
      std::string data = std::to_string(next_) + ":";
      data.resize(2048, 'x');
      out.push_back({data, {}, "k" + std::to_string(next_ % kFullDiskKeys)});
    }
    return out;
  }
  // Pulls what is there and acks it; false when the pull or the ack failed.
  bool pull_and_ack() {
    auto got = broker_->pull(kSub, 64, 0);
    if (!got.ok()) return false;
    std::vector<std::string> ids;
    for (const ReceivedMessage& m : *got) {
      const int seq = std::stoi(m.message.data.substr(0, m.message.data.find(':')));
      auto& seen = received_[m.message.ordering_key];
      // Ordered per key: a message comes after every other one of its key received before, or
      // is one of them again (a redelivery).
      EXPECT_TRUE(seen.empty() || seq >= seen.back() ||
                  std::find(seen.begin(), seen.end(), seq) != seen.end())
          << "key " << m.message.ordering_key << ": " << seq << " after " << seen.back();
      if (seen.empty() || seq > seen.back()) seen.push_back(seq);
      ids.push_back(m.ack_id);
    }
    return ids.empty() || broker_->ack(kSub, ids).ok();
  }

  Tmpfs fs_{8 << 20};
  ManualClock clock_{Timestamp::from_millis(1'795'838'706'000)};
  std::string url_;
  std::unique_ptr<Broker> broker_;
  int next_ = 0;
  std::map<std::string, std::vector<int>> received_;  // by key, in order of first receipt
};

TEST_F(EmbeddedFullDisk, WritesFailClearlyWhileFullAndResumeOnceSpaceIsFreed) {
  ASSERT_TRUE(fs_.fill(256 << 10));
  std::set<int> acknowledged;  // sequence numbers whose publish was answered with ids
  std::optional<Error> full;
  for (int round = 0; round < 500 && !full; ++round) {
    const int first = next_;
    auto r = broker_->publish(kTopic, batch());
    if (r.ok()) {
      for (int i = first; i < next_; ++i) acknowledged.insert(i);
    } else {
      full = r.error();
    }
    (void)pull_and_ack();  // acks fill the journal as publishes fill the segments
  }
  ASSERT_TRUE(full) << "the disk never filled";
  EXPECT_EQ(full->code, Errc::kUnavailable);
  EXPECT_NE(full->message.find("the disk is full"), std::string::npos) << full->message;
  EXPECT_NE(full->message.find("No space left on device"), std::string::npos) << full->message;
  EXPECT_GT(acknowledged.size(), 50u) << "the disk filled before the test began";

  // Still full: every write fails at once with the same clear error, and reads go on.
  for (int i = 0; i < 3; ++i) {
    auto r = broker_->publish(kTopic, batch());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("the disk is full"), std::string::npos);
  }
  EXPECT_TRUE(broker_->list_topics().ok());

  // Space comes back: the very next publish is durable, without a reopen.
  fs_.free_filler();
  const int resumed_from = next_;
  auto r = broker_->publish(kTopic, batch());
  ASSERT_TRUE(r.ok()) << r.error().describe();
  for (int i = resumed_from; i < next_; ++i) acknowledged.insert(i);
  for (int round = 0; round < 20; ++round) {
    const int first = next_;
    ASSERT_TRUE(broker_->publish(kTopic, batch()).ok());
    for (int i = first; i < next_; ++i) acknowledged.insert(i);
    ASSERT_TRUE(pull_and_ack());
  }
  for (int round = 0; round < 100; ++round) ASSERT_TRUE(pull_and_ack());
  ASSERT_TRUE(broker_->pull(kSub, 64, 0)->empty());

  // Every acknowledged message arrived; nothing arrived that was never published. Messages whose
  // publish failed may arrive (their batch was written once space came back), as a publish that
  // failed on Pub/Sub may have been published.
  std::set<int> got;
  for (const auto& [key, seqs] : received_) got.insert(seqs.begin(), seqs.end());
  for (int seq : acknowledged) EXPECT_TRUE(got.count(seq)) << "lost: " << seq;
  EXPECT_LT(*got.rbegin(), next_);

  // Reopened, the files are whole (recovery cuts nothing), and every ack survived.
  const auto before = broker_file_sizes(fs_.file("broker"));
  broker_.reset();
  broker_ = open();
  ASSERT_TRUE(broker_);
  EXPECT_EQ(broker_file_sizes(fs_.file("broker")), before);
  auto again = broker_->pull(kSub, 64, 0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << again->size() << " acknowledged deliveries came back";
}

TEST_F(EmbeddedFullDisk, AReopenOnAFullDiskFindsEveryAcknowledgedMessage) {
  std::set<int> acknowledged;
  ASSERT_TRUE(fs_.fill(128 << 10));
  for (int round = 0; round < 500; ++round) {
    const int first = next_;
    auto r = broker_->publish(kTopic, batch());
    if (!r.ok()) break;
    for (int i = first; i < next_; ++i) acknowledged.insert(i);
  }
  ASSERT_FALSE(acknowledged.empty());
  // Closed while the disk is full (what could not be written was never acknowledged), and opened
  // again on the same full disk: the broker opens and serves what it holds.
  broker_.reset();
  broker_ = open();
  ASSERT_TRUE(broker_);
  for (int round = 0; round < 100; ++round) (void)pull_and_ack();
  std::set<int> got;
  for (const auto& [key, seqs] : received_) got.insert(seqs.begin(), seqs.end());
  for (int seq : acknowledged) EXPECT_TRUE(got.count(seq)) << "lost: " << seq;
  EXPECT_LT(*got.rbegin(), next_);
}

}  // namespace
}  // namespace backbone::testing
