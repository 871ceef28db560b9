#include "broker/delivery/journal_record.h"

#include "broker/delivery/codec.h"

namespace backbone::delivery {

void encode_journal_record(const JournalRecord& r, std::string& out) {
  std::string payload;
  Writer w(payload);
  w.u8(static_cast<uint8_t>(r.type));
  w.u32(r.sub_id);
  switch (r.type) {
    case JournalRecord::Type::kAttempt:
      w.u64(r.offset);
      w.u32(r.attempts);
      w.i64(r.when_us);
      w.str(r.reason.size() > 1024 ? std::string_view(r.reason).substr(0, 1024) : r.reason);
      break;
    case JournalRecord::Type::kAck:
    case JournalRecord::Type::kDead:
    case JournalRecord::Type::kClaim:
      w.u64(r.offset);
      break;
    case JournalRecord::Type::kBase:
      w.u64(r.offset);
      w.u64(r.count);
      break;
  }
  append_frame(out, payload);
}

bool decode_journal_record(std::string_view payload, JournalRecord& r) {
  Reader in(payload);
  uint8_t type;
  if (!in.u8(type) || !in.u32(r.sub_id)) return false;
  r.type = static_cast<JournalRecord::Type>(type);
  switch (r.type) {
    case JournalRecord::Type::kAttempt:
      return in.u64(r.offset) && in.u32(r.attempts) && in.i64(r.when_us) && in.str(r.reason) &&
             in.done();
    case JournalRecord::Type::kAck:
    case JournalRecord::Type::kDead:
    case JournalRecord::Type::kClaim:
      return in.u64(r.offset) && in.done();
    case JournalRecord::Type::kBase:
      return in.u64(r.offset) && in.u64(r.count) && in.done();
  }
  return false;
}

void encode_snapshot(uint32_t sub_id, const SubscriptionState& state, std::string& out) {
  encode_restored(sub_id, state.snapshot(), state.dead_lettered(), out);
}

void encode_restored(uint32_t sub_id, const RestoredState& s, uint64_t dead_lettered,
                     std::string& out) {
  encode_journal_record({JournalRecord::Type::kBase, sub_id, s.lwm, 0, 0, dead_lettered, {}}, out);
  for (uint64_t off : s.acked) {
    encode_journal_record({JournalRecord::Type::kAck, sub_id, off, 0, 0, 0, {}}, out);
  }
  for (const auto& [off, a] : s.attempts) {
    encode_journal_record({JournalRecord::Type::kAttempt, sub_id, off,
                           static_cast<uint32_t>(a.attempts), a.available_at.micros(), 0, a.reason},
                          out);
  }
}

void JournalFold::apply(const JournalRecord& r) {
  RestoredState& s = states_[r.sub_id];
  switch (r.type) {
    case JournalRecord::Type::kBase:
      s = RestoredState();
      s.lwm = r.offset;
      dead_[r.sub_id] = r.count;
      break;
    case JournalRecord::Type::kAttempt:
      s.attempts[r.offset] = {static_cast<int>(r.attempts), Timestamp::from_micros(r.when_us),
                              r.reason};
      break;
    case JournalRecord::Type::kDead:
      ++dead_[r.sub_id];
      [[fallthrough]];
    case JournalRecord::Type::kAck:
      s.attempts.erase(r.offset);
      s.acked.push_back(r.offset);
      break;
    case JournalRecord::Type::kClaim:
      break;
  }
}

}  // namespace backbone::delivery
