// EventId: a UUIDv7 (RFC 9562 §5.7), the only key of events and audit entries.
//
// The canonical text form is lowercase, 36 characters ("0193...-7xxx-8xxx-..."). Because the
// first 48 bits are the Unix time in milliseconds, ids sort by creation time, both as bytes and
// as canonical text.
//
// EventIdGenerator makes ids that strictly increase within one generator (RFC 9562 §6.2,
// method 3: the 74 random bits act as a counter that is incremented when the clock has not
// moved on). Use one generator per process (EventIdGenerator::process()) or per test.
//
// Thread-safety: EventId is a plain value. EventIdGenerator is thread-safe.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>

#include "backbone/clock.h"
#include "backbone/result.h"

namespace backbone {

class EventId {
 public:
  EventId() = default;  // the nil UUID; never a valid event id
  static EventId from_bytes(const std::array<uint8_t, 16>& b) { return EventId(b); }

  // Parses the canonical form. Accepts only lowercase hex, version 7 and the RFC variant:
  // kInvalidArgument otherwise.
  static Result<EventId> parse(std::string_view text);

  const std::array<uint8_t, 16>& bytes() const { return b_; }
  std::string str() const;
  // The Unix time in milliseconds in the first 48 bits.
  int64_t unix_millis() const;
  bool is_nil() const { return b_ == std::array<uint8_t, 16>{}; }

  auto operator<=>(const EventId&) const = default;

 private:
  explicit EventId(const std::array<uint8_t, 16>& b) : b_(b) {}
  std::array<uint8_t, 16> b_{};
};

class EventIdGenerator {
 public:
  // `clock` must outlive the generator.
  explicit EventIdGenerator(const Clock& clock);
  EventIdGenerator(const Clock& clock, uint64_t seed);

  // A new id, greater than every id this generator returned before.
  EventId next();
  // A new id greater than both `floor` and every id this generator returned before. Used where
  // a total order across processes must hold (the audit chain).
  EventId next_after(const EventId& floor);

  // The generator of this process, on the system clock.
  static EventIdGenerator& process();

 private:
  EventId next_locked(int64_t now_ms);
  const Clock& clock_;
  std::mutex mu_;
  std::mt19937_64 rng_;   // GUARDED_BY(mu_)
  int64_t last_ms_ = -1;  // GUARDED_BY(mu_)
  uint64_t last_hi_ = 0;  // GUARDED_BY(mu_): the 12 bits of rand_a
  uint64_t last_lo_ = 0;  // GUARDED_BY(mu_): the 62 bits of rand_b
};

}  // namespace backbone
