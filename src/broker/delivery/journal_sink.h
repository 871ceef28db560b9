// JournalSink: the StateSink of a backend that keeps a subscription's decisions as journal
// records (journal_record.h) and forwards its dead letters. The mapping from a decision to a
// record is written here once; a backend says only where records go (write) and how a dead
// letter reaches its topic (forward_dead_letter). A dead letter is forwarded before its kDead
// record is written, so a replay never finds a message acked as dead that was not forwarded.
//
// Thread-safety: none; used under the backend's lock for one batch of decisions.
#pragma once

#include <cstdint>
#include <string>

#include "broker/delivery/journal_record.h"
#include "broker/delivery/subscription_state.h"

namespace backbone::delivery {

class JournalSink : public StateSink {
 public:
  // `sub_id` goes into every record (0 where a journal holds one subscription only).
  explicit JournalSink(uint32_t sub_id) : sub_id_(sub_id) {}

  void on_attempt(uint64_t offset, int attempt, Timestamp available_at,
                  const std::string& reason) final;
  void on_acked(uint64_t offset) final;
  void on_dead_letter(uint64_t offset, int attempt, const std::string& reason) final;

 protected:
  virtual void write(const JournalRecord& r) = 0;
  virtual void forward_dead_letter(uint64_t offset, int attempt, const std::string& reason) = 0;
  // The message at `offset` was acked and will not be delivered again (before its kAck record).
  virtual void settled(uint64_t /*offset*/) {}

 private:
  uint32_t sub_id_;
};

}  // namespace backbone::delivery
