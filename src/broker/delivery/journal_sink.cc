#include "broker/delivery/journal_sink.h"

namespace backbone::delivery {

void JournalSink::on_attempt(uint64_t offset, int attempt, Timestamp available_at,
                             const std::string& reason) {
  write({JournalRecord::Type::kAttempt, sub_id_, offset, static_cast<uint32_t>(attempt),
         available_at.micros(), 0, reason});
}

void JournalSink::on_acked(uint64_t offset) {
  settled(offset);
  write({JournalRecord::Type::kAck, sub_id_, offset, 0, 0, 0, {}});
}

void JournalSink::on_dead_letter(uint64_t offset, int attempt, const std::string& reason) {
  forward_dead_letter(offset, attempt, reason);
  write({JournalRecord::Type::kDead, sub_id_, offset, 0, 0, 0, {}});
}

}  // namespace backbone::delivery
