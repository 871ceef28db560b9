// Ack ids: the text that names one delivery, "<owner>:<offset>:<generation>".
//
// The owner says which subscription (and which incarnation of it) handed the delivery out: the
// embedded broker's subscription id, a NATS subscription's uid. The offset is the message's place
// in its topic and the generation tells this delivery from earlier ones of the same message, so
// an ack of a stale delivery is recognised and ignored (SubscriptionState::current).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backbone/result.h"

namespace backbone::delivery {

struct AckId {
  std::string owner;
  uint64_t offset = 0;
  uint64_t generation = 0;
  bool operator==(const AckId&) const = default;
};

// REQUIRES: `owner` is not empty and holds no ':'.
std::string encode_ack_id(std::string_view owner, uint64_t offset, uint64_t generation);
// kInvalidArgument (where "ack_ids") unless `text` is "<owner>:<decimal>:<decimal>" with a
// non-empty owner free of ':' and numbers that fit 64 bits.
Result<AckId> parse_ack_id(std::string_view text);

}  // namespace backbone::delivery
