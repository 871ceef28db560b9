// GroupCommit: concurrent callers share one run. The leader's run is held open by the test, so
// which requests form which group is decided by the test, not by timing.
#include "core/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace backbone {
namespace {

struct Request {
  int value = 0;
  int result = 0;
  int group = -1;
};

TEST(GroupCommit, AloneACallerRunsAtOnceInAGroupOfOne) {
  GroupCommit<Request> gc;
  Request r{5};
  int runs = 0;
  gc.submit(r, [&](std::vector<Request*>& group) {
    ++runs;
    ASSERT_EQ(group.size(), 1u);
    group[0]->result = group[0]->value * 2;
  });
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(r.result, 10);
  EXPECT_EQ(gc.queued(), 0u);
}

TEST(GroupCommit, RequestsThatArriveDuringARunFormTheNextGroupInArrivalOrder) {
  GroupCommit<Request> gc;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> groups{0};
  std::vector<std::vector<int>> seen;  // written by leaders only, one at a time
  auto run = [&](std::vector<Request*>& group) {
    const int g = groups++;
    std::vector<int> values;
    for (Request* r : group) {
      values.push_back(r->value);
      r->result = r->value + 100;
      r->group = g;
    }
    seen.push_back(values);
    if (g == 0) released.wait();  // the first group holds the leadership until released
  };
  Request first{0};
  std::thread leader([&] { gc.submit(first, run); });
  while (groups.load() == 0) std::this_thread::yield();  // the first run has started

  constexpr int kWaiting = 5;
  std::vector<Request> waiting(kWaiting);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiting; ++i) {
    waiting[i].value = i + 1;
    threads.emplace_back([&, i] { gc.submit(waiting[i], run); });
    while (gc.queued() < static_cast<size_t>(i + 1)) std::this_thread::yield();  // in order
  }
  EXPECT_EQ(gc.queued(), static_cast<size_t>(kWaiting));
  release.set_value();
  leader.join();
  for (auto& t : threads) t.join();

  EXPECT_EQ(groups.load(), 2);  // the five waited behind the first run and ran as one group
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::vector<int>{0});
  EXPECT_EQ(seen[1], (std::vector<int>{1, 2, 3, 4, 5}));
  for (const Request& r : waiting) {
    EXPECT_EQ(r.result, r.value + 100);
    EXPECT_EQ(r.group, 1);
  }
}

}  // namespace
}  // namespace backbone
