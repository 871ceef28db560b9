#include "backbone/timestamp.h"

#include <gtest/gtest.h>

#include "backbone/clock.h"

namespace backbone {
namespace {

TEST(Timestamp, FormatsRfc3339WithMicroseconds) {
  EXPECT_EQ(Timestamp::from_micros(0).to_rfc3339(), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(Timestamp::from_micros(1'795'838'706'000'123).to_rfc3339(),
            "2026-11-28T04:05:06.000123Z");
}

TEST(Timestamp, ParsesWhatItFormats) {
  for (int64_t us : {int64_t{0}, int64_t{951'782'400'000'001}, int64_t{1'795'838'706'999'999},
                     int64_t{253'402'300'799'999'999}}) {
    const auto t = Timestamp::from_micros(us);
    auto back = Timestamp::parse_rfc3339(t.to_rfc3339());
    ASSERT_TRUE(back.ok()) << t.to_rfc3339();
    EXPECT_EQ(back->micros(), us);
  }
}

TEST(Timestamp, ParsesOffsetsAndShortFractions) {
  EXPECT_EQ(Timestamp::parse_rfc3339("2026-11-28T05:00:00.5+01:00")->to_rfc3339(),
            "2026-11-28T04:00:00.500000Z");
  EXPECT_EQ(Timestamp::parse_rfc3339("2026-11-28T04:00:00Z")->micros() % 1'000'000, 0);
  EXPECT_EQ(Timestamp::parse_rfc3339("2024-02-29T00:00:00-00:30")->to_rfc3339(),
            "2024-02-29T00:30:00.000000Z");
}

TEST(Timestamp, RefusesMalformedText) {
  for (const char* bad :
       {"", "2026-11-28", "2026-11-28 04:00:00Z", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
        "2026-11-28T24:00:00Z", "2026-11-28T04:00:00", "2026-11-28T04:00:00.Z",
        "2026-11-28T04:00:00.1234567Z", "1969-12-31T23:59:59Z", "2026-11-28T04:00:00Zjunk"}) {
    auto r = Timestamp::parse_rfc3339(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.code(), Errc::kInvalidArgument);
    }
  }
}

TEST(ManualClock, MovesOnlyWhenTold) {
  ManualClock clock(Timestamp::from_micros(1000));
  EXPECT_EQ(clock.now().micros(), 1000);
  EXPECT_EQ(clock.now().micros(), 1000);
  clock.advance_millis(2);
  EXPECT_EQ(clock.now().micros(), 3000);
  clock.set(Timestamp::from_micros(5));
  EXPECT_EQ(clock.now().micros(), 5);
}

}  // namespace
}  // namespace backbone
