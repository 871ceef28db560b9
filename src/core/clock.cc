#include "backbone/clock.h"

#include <chrono>

namespace backbone {

Timestamp SystemClock::now() const {
  const auto d = std::chrono::system_clock::now().time_since_epoch();
  return Timestamp::from_micros(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

}  // namespace backbone
