#include "backbone/event_id.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

namespace backbone {
namespace {

TEST(EventId, HasVersion7AndTheRfcVariantInCanonicalLowercase) {
  ManualClock clock;
  EventIdGenerator gen(clock, 42);
  const std::string s = gen.next().str();
  ASSERT_EQ(s.size(), 36u);
  EXPECT_EQ(s[8], '-');
  EXPECT_EQ(s[14], '7');
  EXPECT_TRUE(s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b') << s;
  for (char c : s) EXPECT_FALSE(c >= 'A' && c <= 'F') << s;
}

TEST(EventId, CarriesTheClockMillisecondsInItsFirst48Bits) {
  ManualClock clock(Timestamp::from_millis(1'795'838'706'123));
  EventIdGenerator gen(clock, 1);
  EXPECT_EQ(gen.next().unix_millis(), 1'795'838'706'123);
}

TEST(EventId, ParsesItsOwnTextAndRefusesOthers) {
  ManualClock clock;
  EventIdGenerator gen(clock, 7);
  const EventId id = gen.next();
  auto back = EventId::parse(id.str());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, id);
  std::string upper = id.str();
  upper[0] = 'A';
  for (const std::string& bad :
       {std::string(""), std::string("not-a-uuid"), upper,
        std::string("0193c3f2-7b1a-4c3d-8e4f-0123456789ab"),  // version 4
        std::string("0193c3f2-7b1a-7c3d-ce4f-0123456789ab"),  // variant 110
        std::string("0193c3f27b1a7c3d8e4f0123456789ab"),      // no hyphens
        std::string("0193c3f2-7b1a-7c3d-8e4f-0123456789abc")}) {
    EXPECT_FALSE(EventId::parse(bad).ok()) << bad;
  }
}

TEST(EventIdGenerator, IsMonotonicWithinOneMillisecond) {
  ManualClock clock;  // never advances
  EventIdGenerator gen(clock, 3);
  EventId prev = gen.next();
  for (int i = 0; i < 100'000; ++i) {
    const EventId next = gen.next();
    ASSERT_LT(prev, next);
    ASSERT_LT(prev.str(), next.str());  // text order equals byte order
    prev = next;
  }
}

TEST(EventIdGenerator, StaysMonotonicWhenTheClockGoesBack) {
  ManualClock clock(Timestamp::from_millis(10'000));
  EventIdGenerator gen(clock, 5);
  const EventId a = gen.next();
  clock.set(Timestamp::from_millis(9'000));
  EXPECT_LT(a, gen.next());
}

TEST(EventIdGenerator, NextAfterExceedsAFloorFromAnotherGenerator) {
  ManualClock ahead(Timestamp::from_millis(20'000));
  ManualClock behind(Timestamp::from_millis(10'000));
  EventIdGenerator a(ahead, 1), b(behind, 2);
  const EventId floor = a.next();
  const EventId next = b.next_after(floor);
  EXPECT_LT(floor, next);
  EXPECT_LT(next, b.next());  // and b keeps counting up from there
}

TEST(EventIdGenerator, IsSafeAcrossThreads) {
  ManualClock clock;
  EventIdGenerator gen(clock, 9);
  std::vector<std::vector<EventId>> got(4);
  std::vector<std::thread> threads;
  for (auto& v : got) {
    threads.emplace_back([&gen, &v] {
      for (int i = 0; i < 5000; ++i) v.push_back(gen.next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<EventId> all;
  for (auto& v : got) {
    for (size_t i = 1; i < v.size(); ++i) ASSERT_LT(v[i - 1], v[i]);
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), 20'000u);
}

}  // namespace
}  // namespace backbone
