// The cluster answer shared by GET /v1/envs/{env}/cluster and `backbone cluster show`
// (src/server/cluster_json.h): each bucket's backlog from the store, capped, and the ages.
#include "server/cluster_json.h"

#include <gtest/gtest.h>

#include "backbone/record_key.h"
#include "store/sqlite_harness.h"

namespace backbone::server {
namespace {

class ClusterJson : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions so;
    so.url = harness_.url();
    so.role = Role::kMigrator;
    so.clock = &clock_;
    auto s = EventStore::open(so);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_ = std::move(*s);
    ASSERT_TRUE(store_->migrate().ok());
    // 2,500 unprocessed events over 7 records (more than one page of the backlog's reads).
    std::vector<EventDraft> drafts;
    for (int i = 0; i < 2500; ++i) {
      EventDraft d;
      d.record_type = "contact";
      d.record_id = std::to_string(i % 7);
      d.source = "crm";
      d.changes = "{\"n\":" + std::to_string(i) + "}";
      drafts.push_back(d);
    }
    auto events = create_events(drafts, ids_, clock_);
    ASSERT_TRUE(events.ok()) << events.error().describe();
    ASSERT_TRUE(store_->append(*events).ok());
    for (int r = 0; r < 7; ++r) {
      expected_[bucket_of(OrderingKey(RecordKey{"contact", std::to_string(r)}).str(), kBuckets)] +=
          2500 / 7 + (r < 2500 % 7 ? 1 : 0);
    }
  }
  static constexpr uint32_t kBuckets = 4;
  ManualClock clock_;
  EventIdGenerator ids_{clock_, 5};
  testing::SqliteHarness harness_;
  std::unique_ptr<EventStore> store_;
  std::vector<uint64_t> expected_ = std::vector<uint64_t>(kBuckets, 0);
};

TEST_F(ClusterJson, EachBucketsBacklogIsItsUnprocessedEvents) {
  auto all = bucket_backlog(*store_, kBuckets);
  ASSERT_TRUE(all.ok()) << all.error().describe();
  EXPECT_EQ(all->events, expected_);
  EXPECT_FALSE(all->capped);
  auto exact = bucket_backlog(*store_, kBuckets, 2500);
  EXPECT_FALSE(exact->capped) << "exactly the cap is not more than it";
  auto some = bucket_backlog(*store_, kBuckets, 1200);
  ASSERT_TRUE(some.ok());
  EXPECT_TRUE(some->capped);
  uint64_t read = 0;
  for (uint64_t n : some->events) read += n;
  EXPECT_EQ(read, 1200u);
}

TEST_F(ClusterJson, LeasesAndMembersCarryTheirAgesAndBacklogs) {
  const Timestamp now = clock_.now();
  ClusterView view;
  view.members.push_back({"m1", "http://a", 7, false, "", now});
  view.members.push_back({"m2", "http://b", 3, true, "", std::nullopt});
  for (uint32_t b = 0; b < kBuckets; ++b) {
    BucketLease l{b, b % 2 ? "m1" : "", b};
    if (b > 0) l.changed_at = Timestamp::from_micros(now.micros() - 2'500'000);
    view.leases.push_back(l);
  }
  auto backlog = bucket_backlog(*store_, kBuckets);
  const nlohmann::json j = cluster_json(view, *backlog, now);
  EXPECT_EQ(j["buckets"], kBuckets);
  EXPECT_EQ(j["unowned"], 2);
  EXPECT_EQ(j["backlog"], 2500);
  EXPECT_EQ(j["members"][0]["buckets"], 2);
  EXPECT_EQ(j["members"][0]["beat_age_seconds"], 0.0);
  EXPECT_TRUE(j["members"][1]["beat_age_seconds"].is_null());
  EXPECT_TRUE(j["members"][1]["leaving"].get<bool>());
  EXPECT_TRUE(j["leases"][0]["owner"].is_null());
  EXPECT_TRUE(j["leases"][0]["age_seconds"].is_null()) << "never owned";
  EXPECT_EQ(j["leases"][3]["age_seconds"], 2.5);
  for (uint32_t b = 0; b < kBuckets; ++b) EXPECT_EQ(j["leases"][b]["backlog"], expected_[b]);
}

}  // namespace
}  // namespace backbone::server
