#include "backbone/event_id.h"

namespace backbone {
namespace {

constexpr uint64_t kLoMask = (uint64_t{1} << 62) - 1;
constexpr uint64_t kHiMask = (uint64_t{1} << 12) - 1;

int lower_hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::array<uint8_t, 16> pack(int64_t ms, uint64_t hi, uint64_t lo) {
  std::array<uint8_t, 16> b{};
  const auto ums = static_cast<uint64_t>(ms);
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ums >> (40 - 8 * i));
  b[6] = static_cast<uint8_t>(0x70 | ((hi >> 8) & 0x0f));
  b[7] = static_cast<uint8_t>(hi & 0xff);
  b[8] = static_cast<uint8_t>(0x80 | ((lo >> 56) & 0x3f));
  for (int i = 0; i < 7; ++i) b[9 + i] = static_cast<uint8_t>(lo >> (48 - 8 * i));
  return b;
}

void unpack(const std::array<uint8_t, 16>& b, int64_t& ms, uint64_t& hi, uint64_t& lo) {
  uint64_t m = 0;
  for (int i = 0; i < 6; ++i) m = (m << 8) | b[i];
  ms = static_cast<int64_t>(m);
  hi = (uint64_t{b[6] & 0x0fu} << 8) | b[7];
  lo = uint64_t{b[8] & 0x3fu};
  for (int i = 9; i < 16; ++i) lo = (lo << 8) | b[i];
}

}  // namespace

Result<EventId> EventId::parse(std::string_view s) {
  auto bad = [&](const char* why) {
    return make_error(Errc::kInvalidArgument, std::string("invalid UUIDv7: ") + why);
  };
  if (s.size() != 36) return bad("want 36 characters in canonical form");
  std::array<uint8_t, 16> b{};
  size_t j = 0;
  for (size_t i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return bad("hyphens belong at positions 9, 14, 19 and 24");
      continue;
    }
    const int v = lower_hex_value(s[i]);
    if (v < 0) return bad("only lowercase hexadecimal digits are allowed");
    b[j / 2] = static_cast<uint8_t>(b[j / 2] | (j % 2 == 0 ? v << 4 : v));
    ++j;
  }
  if ((b[6] >> 4) != 7) return bad("version nibble is not 7");
  if ((b[8] & 0xc0) != 0x80) return bad("variant bits are not 10 (RFC 9562)");
  return EventId(b);
}

std::string EventId::str() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b_[i] >> 4]);
    out.push_back(kHex[b_[i] & 0x0f]);
  }
  return out;
}

int64_t EventId::unix_millis() const {
  int64_t ms;
  uint64_t hi, lo;
  unpack(b_, ms, hi, lo);
  return ms;
}

EventIdGenerator::EventIdGenerator(const Clock& clock)
    : EventIdGenerator(clock, std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32)) {}

EventIdGenerator::EventIdGenerator(const Clock& clock, uint64_t seed) : clock_(clock), rng_(seed) {}

EventId EventIdGenerator::next_locked(int64_t now_ms) {
  if (now_ms > last_ms_) {
    last_ms_ = now_ms;
    // Leave headroom in rand_a so that many increments fit before the counter overflows.
    last_hi_ = rng_() & (kHiMask >> 1);
    last_lo_ = rng_() & kLoMask;
  } else {
    // The clock has not moved on (or went back): count up from the last id.
    if (++last_lo_ > kLoMask) {
      last_lo_ = 0;
      if (++last_hi_ > kHiMask) {
        last_hi_ = 0;
        ++last_ms_;  // overflow: borrow the next millisecond (RFC 9562 §6.2)
      }
    }
  }
  return EventId::from_bytes(pack(last_ms_, last_hi_, last_lo_));
}

EventId EventIdGenerator::next() {
  const int64_t now_ms = clock_.now().millis();
  std::lock_guard lock(mu_);
  return next_locked(now_ms);
}

EventId EventIdGenerator::next_after(const EventId& floor) {
  const int64_t now_ms = clock_.now().millis();
  std::lock_guard lock(mu_);
  int64_t fms;
  uint64_t fhi, flo;
  unpack(floor.bytes(), fms, fhi, flo);
  const EventId last = EventId::from_bytes(pack(last_ms_, last_hi_, last_lo_));
  if (last_ms_ < 0 || floor > last) {
    last_ms_ = fms;
    last_hi_ = fhi;
    last_lo_ = flo;
  }
  return next_locked(now_ms);
}

EventIdGenerator& EventIdGenerator::process() {
  static EventIdGenerator gen(SystemClock::instance());
  return gen;
}

}  // namespace backbone
