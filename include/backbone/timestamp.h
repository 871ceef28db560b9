// Timestamp: a UTC instant with microsecond resolution, the unit of every time column
// (`events.timestamp`, `event_audit_log.created_at`) and of the Clock.
//
// Thread-safety: a plain value.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "backbone/result.h"

namespace backbone {

class Timestamp {
 public:
  constexpr Timestamp() = default;
  static constexpr Timestamp from_micros(int64_t us) { return Timestamp(us); }
  static constexpr Timestamp from_millis(int64_t ms) { return Timestamp(ms * 1000); }

  constexpr int64_t micros() const { return us_; }
  constexpr int64_t millis() const { return us_ >= 0 ? us_ / 1000 : -((-us_ + 999) / 1000); }

  constexpr Timestamp plus_micros(int64_t us) const { return Timestamp(us_ + us); }
  constexpr auto operator<=>(const Timestamp&) const = default;

  // RFC 3339 in UTC with exactly six fraction digits: "2026-11-28T04:05:06.000123Z".
  std::string to_rfc3339() const;
  // Parses RFC 3339 ("Z" or a "+hh:mm"/"-hh:mm" offset, 0 to 6 fraction digits). Years 1970 to
  // 9999 only. Errors are kInvalidArgument.
  static Result<Timestamp> parse_rfc3339(std::string_view text);

 private:
  constexpr explicit Timestamp(int64_t us) : us_(us) {}
  int64_t us_ = 0;
};

}  // namespace backbone
