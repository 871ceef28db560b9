// Clock: the one source of time (STYLE.md, habit 2). Backoff, deadlines, retention, event
// timestamps and id generation read time only through an injected Clock. Tests use ManualClock
// and never sleep.
//
// Thread-safety: every Clock is safe to call from many threads.
#pragma once

#include <atomic>
#include <cstdint>

#include "backbone/timestamp.h"

namespace backbone {

class Clock {
 public:
  virtual ~Clock() = default;
  // The current UTC time, in microseconds.
  virtual Timestamp now() const = 0;
};

// The wall clock (CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  Timestamp now() const override;
  // A process-wide instance.
  static SystemClock& instance();
};

// A clock that moves only when told to. Starts at `start`.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start = Timestamp::from_micros(1'767'225'600'000'000))
      : us_(start.micros()) {}
  Timestamp now() const override { return Timestamp::from_micros(us_.load()); }
  void advance_micros(int64_t us) { us_.fetch_add(us); }
  void advance_millis(int64_t ms) { advance_micros(ms * 1000); }
  void set(Timestamp t) { us_.store(t.micros()); }

 private:
  std::atomic<int64_t> us_;
};

}  // namespace backbone
