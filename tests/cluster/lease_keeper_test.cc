// LeaseKeeper on a real SQLite store and a ManualClock: several keepers of one environment
// share its buckets, one owner each, balanced; joins and leaves move only what they must; a
// silent member's buckets are taken after the ttl and its late commits are refused.
#include "cluster/lease_keeper.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

using cluster::LeaseKeeper;
using cluster::LeaseOptions;

constexpr uint32_t kBuckets = 64;
constexpr int64_t kTtl = 10'000'000;  // 10 s

class LeaseKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions so;
    so.url = harness_.url();
    so.role = Role::kMigrator;
    so.clock = &clock_;
    ASSERT_TRUE((*EventStore::open(so))->migrate().ok());
  }
  // A keeper, each on its own store connection (as each process has).
  LeaseKeeper& keeper(const std::string& id) {
    StoreOptions so;
    so.url = harness_.url();
    so.role = Role::kMergeWorker;
    so.clock = &clock_;
    stores_.push_back(std::move(*EventStore::open(so)));
    LeaseOptions o;
    o.member = id;
    o.address = "http://" + id;
    o.buckets = kBuckets;
    o.ttl_us = kTtl;
    o.metrics = &metrics_;
    o.env = id;  // each keeper's figures under a label of its own
    auto k = LeaseKeeper::open(*stores_.back(), clock_, o);
    EXPECT_TRUE(k.ok()) << k.error().describe();
    keepers_[id] = std::move(*k);
    return *keepers_[id];
  }
  void tick(std::initializer_list<const char*> ids, int rounds = 2) {
    for (int r = 0; r < rounds; ++r) {
      for (const char* id : ids) {
        auto t = keepers_.at(id)->tick();
        EXPECT_TRUE(t.ok()) << id << ": " << t.error().describe();
      }
    }
  }
  std::map<uint32_t, uint64_t> owned(const std::string& id) {
    std::map<uint32_t, uint64_t> out;
    for (const BucketLease& l : keepers_.at(id)->owned()) out[l.bucket] = l.epoch;
    return out;
  }
  // Every bucket has exactly one owner among `ids`, as the keepers and as the store say.
  void expect_one_owner_each(std::initializer_list<const char*> ids) {
    std::map<uint32_t, std::string> by_keeper;
    for (const char* id : ids) {
      for (const auto& [b, e] : owned(id)) {
        EXPECT_TRUE(by_keeper.emplace(b, id).second) << "bucket " << b << " has two owners";
      }
    }
    EXPECT_EQ(by_keeper.size(), kBuckets);
    auto view = stores_.front()->beat({"observer", "", 0, true});
    ASSERT_TRUE(view.ok());
    for (const BucketLease& l : view->leases) EXPECT_EQ(l.owner, by_keeper[l.bucket]) << l.bucket;
    (void)stores_.front()->forget_members(std::vector<std::string>{"observer"});
  }
  size_t moved(const std::map<uint32_t, uint64_t>& before,
               const std::map<uint32_t, uint64_t>& after) {
    size_t n = 0;
    for (const auto& [b, e] : before) {
      auto it = after.find(b);
      if (it == after.end() || it->second != e) ++n;
    }
    return n;
  }

  Histogram& takeovers(const std::string& id) {
    return metrics_.histogram("backbone_cluster_takeover_seconds", "", {{"env", id}});
  }

  ManualClock clock_;
  Metrics metrics_;
  SqliteHarness harness_;
  std::vector<std::unique_ptr<EventStore>> stores_;
  std::map<std::string, std::unique_ptr<LeaseKeeper>> keepers_;
};

TEST_F(LeaseKeeperTest, OneProcessOwnsEveryBucketAtEpochOne) {
  LeaseKeeper& a = keeper("a");
  EXPECT_EQ(a.buckets(), kBuckets);
  EXPECT_TRUE(a.owned().empty()) << "nothing before the first tick";
  tick({"a"}, 1);
  ASSERT_EQ(a.owned().size(), kBuckets);
  EXPECT_EQ(a.epoch(5), 1u);
  tick({"a"}, 3);
  EXPECT_EQ(a.epoch(5), 1u) << "renewing changes no epoch";
  const uint64_t version = a.view().version;
  tick({"a"}, 2);
  EXPECT_EQ(a.view().version, version) << "beats alone are no change of the view";
  keeper("b");
  tick({"b"}, 1);
  tick({"a"}, 1);
  EXPECT_GT(a.view(version, 0).version, version) << "a new member is";
}

// A view is read at the start of a tick; what the tick then claims or releases is in it at once,
// as the store holds it, not a beat later.
TEST_F(LeaseKeeperTest, AViewShowsWhatItsOwnTickChanged) {
  LeaseKeeper& a = keeper("a");
  tick({"a"}, 1);
  const auto owners = [](const LeaseKeeper& k) {
    std::map<uint32_t, std::pair<std::string, uint64_t>> out;
    for (const BucketLease& l : k.view().view.leases) out[l.bucket] = {l.owner, l.epoch};
    return out;
  };
  auto seen = owners(a);
  ASSERT_EQ(seen.size(), kBuckets);
  for (const auto& [bucket, owner] : seen) {
    EXPECT_EQ(owner, std::make_pair(std::string("a"), a.epoch(bucket).value_or(0))) << bucket;
  }
  LeaseKeeper& b = keeper("b");
  tick({"b"}, 1);  // B sees A alive with every bucket: it claims none
  tick({"a"}, 1);  // A sees B: it releases its upper half
  const uint64_t version = a.view().version;
  seen = owners(a);
  size_t released = 0;
  for (const auto& [bucket, owner] : seen) {
    if (a.epoch(bucket)) {
      EXPECT_EQ(owner.first, "a") << bucket;
    } else {
      ++released;
      EXPECT_EQ(owner.first, "") << bucket << " was released by this very tick";
    }
  }
  EXPECT_EQ(released, 32u);
  tick({"b"}, 1);  // B claims them
  for (const auto& [bucket, owner] : owners(b)) {
    EXPECT_EQ(owner.first, b.epoch(bucket) ? "b" : "a") << bucket;
    if (b.epoch(bucket)) {
      EXPECT_EQ(owner.second, *b.epoch(bucket)) << bucket;
    }
  }
  // And the store agrees with what the views showed: A's next read changes nothing of B's.
  tick({"a"}, 1);
  EXPECT_GT(a.view().version, version) << "B's claims are news to A";
  EXPECT_EQ(owners(a), owners(b));
}

TEST_F(LeaseKeeperTest, JoinsSplitTheBucketsEvenlyAndMoveOnlyWhatTheyMust) {
  keeper("a");
  tick({"a"});
  keeper("b");
  tick({"a", "b"});
  EXPECT_EQ(owned("a").size(), 32u);
  EXPECT_EQ(owned("b").size(), 32u);
  expect_one_owner_each({"a", "b"});
  const auto a_before = owned("a"), b_before = owned("b");
  keeper("c");
  tick({"a", "b", "c"});
  EXPECT_EQ(owned("a").size(), 22u);
  EXPECT_EQ(owned("b").size(), 21u);
  EXPECT_EQ(owned("c").size(), 21u);
  expect_one_owner_each({"a", "b", "c"});
  // Only C's 21 moved; what A and B kept kept its epoch.
  EXPECT_EQ(moved(a_before, owned("a")) + moved(b_before, owned("b")), 21u);
  for (const auto& [bucket, epoch] : owned("c")) EXPECT_GE(epoch, 2u) << "a new owner, a new epoch";
}

TEST_F(LeaseKeeperTest, ALeavingProcessHandsItsBucketsOverAtOnce) {
  keeper("a");
  keeper("b");
  keeper("c");
  tick({"a", "b", "c"}, 3);
  expect_one_owner_each({"a", "b", "c"});
  std::vector<uint32_t> lost;
  keepers_.at("b")->on_change(
      [&](const std::vector<BucketLease>&, const std::vector<uint32_t>& l) { lost = l; });
  const uint64_t taken_before = takeovers("a").count() + takeovers("c").count();
  const double sum_before = takeovers("a").sum() + takeovers("c").sum();
  ASSERT_TRUE(keepers_.at("b")->leave().ok());
  EXPECT_EQ(lost.size(), 21u);
  EXPECT_TRUE(owned("b").empty());
  tick({"a", "c"});  // no time passes: no lease has to expire
  EXPECT_EQ(owned("a").size(), 32u);
  EXPECT_EQ(owned("c").size(), 32u);
  expect_one_owner_each({"a", "c"});
  EXPECT_EQ(keepers_.at("a")->view().view.members.size(), 2u) << "the leaver forgot itself";
  // Taken the moment they were released: 21 takeovers of 0 s between A and C.
  EXPECT_EQ(takeovers("a").count() + takeovers("c").count() - taken_before, 21u);
  EXPECT_EQ(takeovers("a").sum() + takeovers("c").sum(), sum_before);
  EXPECT_EQ(metrics_.gauge("backbone_cluster_buckets_owned", "", {{"env", "b"}}).value(), 0);
  EXPECT_EQ(metrics_.gauge("backbone_cluster_buckets_owned", "", {{"env", "a"}}).value(), 32);
}

TEST_F(LeaseKeeperTest, ASilentProcessLosesItsBucketsAfterTheTtlAndItsLateCommitsAreRefused) {
  keeper("a");
  keeper("b");
  tick({"a", "b"}, 3);
  const auto b_had = owned("b");
  ASSERT_EQ(b_had.size(), 32u);
  // B stops (SIGSTOP, or a crash) after its beat; A keeps beating, and sees that last beat at
  // its next tick: the ttl runs from there.
  tick({"a"}, 1);
  clock_.advance_micros(kTtl - 1);
  tick({"a"});
  EXPECT_EQ(owned("a").size(), 32u) << "not before the ttl";
  const uint64_t before = takeovers("a").count();
  const double before_sum = takeovers("a").sum();
  clock_.advance_micros(1);
  tick({"a"});
  EXPECT_EQ(owned("a").size(), kBuckets);
  // Each of B's 32 taken one ttl after B's last heartbeat that A saw.
  EXPECT_EQ(takeovers("a").count() - before, 32u);
  EXPECT_DOUBLE_EQ(takeovers("a").sum() - before_sum, 32 * kTtl / 1e6);
  EXPECT_GE(metrics_.counter("backbone_cluster_rebalances_total", "", {{"env", "a"}}).value(), 2);
  // B, resumed, still holds its old epochs in hand: the store refuses its commit.
  const auto [bucket, old_epoch] = *b_had.begin();
  EXPECT_EQ(keepers_.at("b")->epoch(bucket), old_epoch);
  EventDraft d;
  d.record_type = "contact";
  d.record_id = "1";
  d.source = "crm";
  d.changes = R"({"a":1})";
  EventIdGenerator ids(clock_, 3);
  auto e = Event::create(d, ids, clock_);
  StoreOptions so;
  so.url = harness_.url();
  so.role = Role::kSyncWorker;
  so.clock = &clock_;
  ASSERT_TRUE((*EventStore::open(so))->append(std::span(&*e, 1)).ok());
  MergeCommit late;
  late.event_id = e->id();
  late.record = e->record_key();
  late.next = StoredRecord{e->record_key(), 1, R"({"a":1})", "{}", clock_.now()};
  late.fence = BucketFence{bucket, old_epoch};
  EXPECT_EQ(stores_.at(1)->commit_merge(late).code(), Errc::kFenced);
  // Its next tick tells it, and it drops them; then, alive again, it gets its share back.
  std::vector<uint32_t> lost;
  keepers_.at("b")->on_change([&](const std::vector<BucketLease>&, const std::vector<uint32_t>& l) {
    if (lost.empty()) lost = l;
  });
  tick({"b"}, 1);
  EXPECT_EQ(lost.size(), 32u);
  EXPECT_FALSE(keepers_.at("b")->epoch(bucket).has_value());
  tick({"a", "b"}, 3);
  EXPECT_EQ(owned("a").size(), 32u);
  EXPECT_EQ(owned("b").size(), 32u);
  expect_one_owner_each({"a", "b"});
}

TEST_F(LeaseKeeperTest, AProcessCutOffFromTheStoreDropsItsBucketsAfterTheTtl) {
  keeper("a");
  tick({"a"}, 1);
  ASSERT_EQ(owned("a").size(), kBuckets);
  // Its heartbeats fail from now on (as when the store is out of reach).
  ASSERT_TRUE(harness_.raw_sql(Role::kMigrator, "DROP TABLE cluster_members").ok());
  EXPECT_FALSE(keepers_.at("a")->tick().ok());
  EXPECT_EQ(owned("a").size(), kBuckets) << "one failed beat is not the end";
  clock_.advance_micros(kTtl);
  EXPECT_FALSE(keepers_.at("a")->tick().ok());
  EXPECT_TRUE(owned("a").empty());
}

TEST_F(LeaseKeeperTest, TheBucketOfAKeyIsStable) {
  // Part of the stored format: a change here moves every record to another bucket.
  EXPECT_EQ(bucket_of("contact:1", 64), bucket_of("contact:1", 64));
  EXPECT_EQ(bucket_of("", 64), 14695981039346656037ull % 64);
  std::set<uint32_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(bucket_of("contact:" + std::to_string(i), 64));
  EXPECT_EQ(seen.size(), 64u) << "a thousand keys reach every bucket";
}

}  // namespace
}  // namespace backbone::testing
