// KeyLocks: a guard holds all its keys or none. The test orders the threads with futures, so
// that what it checks does not depend on timing.
#include "pipeline/key_locks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace backbone::pipeline {
namespace {

TEST(KeyLocks, DisjointKeysAreHeldAtOnce) {
  KeyLocks locks;
  KeyLocks::Guard a(locks, {"contact:1", "contact:2"});
  bool b_held = false;
  std::thread t([&] {
    KeyLocks::Guard b(locks, {"contact:3", "contact:3"});  // duplicates allowed
    b_held = true;
  });
  t.join();  // would hang (and time out) if b waited for a
  EXPECT_TRUE(b_held);
}

// Waits (bounded, in real time) until `n` callers wait for their keys.
bool waiting(KeyLocks& locks, size_t n) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (locks.waiting() != n) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(KeyLocks, AGuardWaitsForItsKeysAndHoldsNoneWhileItWaits) {
  KeyLocks locks;
  std::atomic<bool> b_holds{false};
  auto a = std::make_unique<KeyLocks::Guard>(locks, std::vector<std::string>{"x"});
  // b wants y and x: it must wait for x, and meanwhile must not hold y.
  std::thread b([&] {
    KeyLocks::Guard g(locks, {"y", "x"});
    b_holds = true;
  });
  ASSERT_TRUE(waiting(locks, 1));
  EXPECT_FALSE(locks.held("y"));
  // Keys that no one holds or waits for are had at once.
  std::thread c([&] { KeyLocks::Guard g(locks, {"z"}); });
  c.join();
  EXPECT_FALSE(b_holds.load());  // x is still held by a
  a.reset();
  b.join();
  EXPECT_TRUE(b_holds.load());
}

// First come, first served where keys meet: a caller that wants one key of a waiting caller's
// set waits behind it, even while that key is free, so that a caller with many keys is never
// starved by callers that each take a few of them.
TEST(KeyLocks, ALaterCallerWaitsBehindAnEarlierOneThatWantsItsKey) {
  KeyLocks locks;
  std::atomic<int> order{0};
  int b_at = 0, c_at = 0;
  auto a = std::make_unique<KeyLocks::Guard>(locks, std::vector<std::string>{"x"});
  std::thread b([&] {
    KeyLocks::Guard g(locks, {"x", "y"});
    b_at = ++order;
  });
  ASSERT_TRUE(waiting(locks, 1));
  std::thread c([&] {
    KeyLocks::Guard g(locks, {"y"});
    c_at = ++order;
  });
  ASSERT_TRUE(waiting(locks, 2)) << "c took y although b waits for it";
  EXPECT_FALSE(locks.held("y"));
  a.reset();
  b.join();
  c.join();
  EXPECT_EQ(b_at, 1);
  EXPECT_EQ(c_at, 2);
}

TEST(KeyLocks, ManyThreadsOnOneKeyNeverOverlap) {
  KeyLocks locks;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        KeyLocks::Guard g(locks, {"shared", "own" + std::to_string(t)});
        if (inside.fetch_add(1) != 0) ++overlaps;
        inside.fetch_sub(1);
        ++done;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(done.load(), 8 * 200);
}

}  // namespace
}  // namespace backbone::pipeline
