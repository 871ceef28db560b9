// KeyLocks: a guard holds all its keys or none. The test orders the threads with futures, so
// that what it checks does not depend on timing.
#include "pipeline/key_locks.h"

#include <gtest/gtest.h>

#include <atomic>
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

TEST(KeyLocks, AGuardWaitsForItsKeysAndHoldsNoneWhileItWaits) {
  KeyLocks locks;
  std::atomic<bool> b_holds{false};
  std::promise<void> release_a;
  auto a = std::make_unique<KeyLocks::Guard>(locks, std::vector<std::string>{"x"});
  // b wants y and x: it must wait for x, and meanwhile must not hold y.
  std::promise<void> b_started;
  std::thread b([&] {
    b_started.set_value();
    KeyLocks::Guard g(locks, {"y", "x"});
    b_holds = true;
  });
  b_started.get_future().wait();
  // c wants only y: it gets it although b is waiting for a set that includes y.
  std::thread c([&] { KeyLocks::Guard g(locks, {"y"}); });
  c.join();
  EXPECT_FALSE(b_holds.load());  // x is still held by a
  a.reset();
  b.join();
  EXPECT_TRUE(b_holds.load());
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
