// JournalRecord: one decision of a SubscriptionState that must outlive the process (a delivery
// attempt, an ack, a dead-letter, or a checkpoint's base), its framed byte encoding
// (doc/broker_log_format.md), and the fold that turns a replay of records back into each
// subscription's RestoredState. The embedded broker keeps the records in a file
// (embedded/state_journal.h), the NATS backend in a JetStream stream per subscription.
//
// Thread-safety: plain values and functions; a JournalFold is used by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/delivery/subscription_state.h"

namespace backbone::delivery {

struct JournalRecord {
  enum class Type : uint8_t {
    kAttempt = 1,  // offset was delivered (attempt = attempts) or failed and waits until `when`
    kAck = 2,      // offset is acked (or dropped by retention)
    kDead = 3,     // offset was dead-lettered (and so is acked)
    kBase = 4,     // checkpoint: everything below `offset` is acked; `count` dead-lettered so far
    kClaim = 5,    // a process took the journal over (NATS buckets); changes nothing in the fold
  };
  Type type = Type::kAck;
  uint32_t sub_id = 0;
  uint64_t offset = 0;
  uint32_t attempts = 0;
  int64_t when_us = 0;
  uint64_t count = 0;
  std::string reason;  // kept up to 1 KiB
};

// Appends the record as one frame.
void encode_journal_record(const JournalRecord& r, std::string& framed_out);
// Decodes one frame's payload; false when it is not a whole record.
bool decode_journal_record(std::string_view payload, JournalRecord& r);
// Appends the frames that describe `state` as of now: a base record, then the acks above the
// low-water mark and the attempts of the unacked messages.
void encode_snapshot(uint32_t sub_id, const SubscriptionState& state, std::string& framed_out);
// The same for a state given as a RestoredState (with offsets of the journal's choosing).
void encode_restored(uint32_t sub_id, const RestoredState& state, uint64_t dead_lettered,
                     std::string& framed_out);

// Replays records, in the order they were written, into per-subscription state.
class JournalFold {
 public:
  void apply(const JournalRecord& r);
  // What the records said of subscription `sub_id` (empty if nothing).
  RestoredState& state(uint32_t sub_id) { return states_[sub_id]; }
  uint64_t dead_lettered(uint32_t sub_id) const {
    auto it = dead_.find(sub_id);
    return it == dead_.end() ? 0 : it->second;
  }

 private:
  std::unordered_map<uint32_t, RestoredState> states_;
  std::unordered_map<uint32_t, uint64_t> dead_;
};

}  // namespace backbone::delivery
