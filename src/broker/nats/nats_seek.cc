#include "broker/nats/nats_seek.h"

#include <algorithm>
#include <functional>

#include "broker/delivery/codec.h"
#include "broker/nats/nats_message.h"
#include "broker/nats/nats_names.h"

namespace backbone::nats {
namespace {

using delivery::JournalRecord;
using delivery::RestoredState;

constexpr int64_t kSeekReadWaitMs = 5'000;  // how long a reader may take to deliver what is stored
constexpr int kResetTries = 8;
// One append holds at most this much (NATS refuses payloads over 1 MiB by default).
constexpr size_t kMaxAppendBytes = 900 << 10;
// How far a snapshot's compaction reads the topic at most.
constexpr uint64_t kCompactionScan = 1'000'000;

// Calls `each` with every record on `subject` of `stream` up to its last sequence `last`, in
// order; kDataLoss for a damaged one.
Result<uint64_t> read_records(NatsClient& client, const std::string& stream,
                              const std::string& subject, uint64_t last,
                              const std::function<void(const JournalRecord&)>& each) {
  uint64_t records = 0;
  if (last == 0) return records;
  auto reader = client.reader(stream, subject, 1);
  if (!reader.ok()) return reader.error();
  uint64_t seen = 0;
  while (seen < last) {
    auto batch = (*reader)->fetch(256, kSeekReadWaitMs);
    if (!batch.ok()) return batch.error();
    if (batch->empty()) {
      return make_error(Errc::kUnavailable,
                        subject + " ended before its last sequence " + std::to_string(last));
    }
    for (const FetchedMessage& m : *batch) {
      seen = m.seq;
      size_t pos = 0;
      while (pos < m.payload.size()) {
        auto frame = delivery::read_frame(m.payload, pos);
        JournalRecord rec;
        if (!frame || !delivery::decode_journal_record(frame->payload, rec)) {
          return make_error(Errc::kDataLoss,
                            subject + " has a damaged record at sequence " + std::to_string(m.seq));
        }
        each(rec);
        ++records;
        pos += frame->size;
      }
    }
  }
  return records;
}

// Appends `records` (framed) in messages of at most kMaxAppendBytes, cut between frames.
std::vector<std::string> cut(const std::string& records) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < records.size()) {
    size_t end = pos;
    while (end < records.size()) {
      auto frame = delivery::read_frame(records, end);
      if (!frame || (end + frame->size - pos > kMaxAppendBytes && end > pos)) break;
      end += frame->size;
    }
    out.push_back(records.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

}  // namespace

Result<ReplayedJournal> replay_journal(NatsClient& client, const std::string& stream,
                                       const std::string& subject) {
  ReplayedJournal out;
  auto last = client.last_seq_of(stream, subject);
  if (!last.ok()) return last.error();
  out.last = *last;
  auto records = read_records(client, stream, subject, *last, [&](const JournalRecord& r) {
    out.fold.apply(r);
    if (r.type == JournalRecord::Type::kClaim) out.claimed = std::max(out.claimed, r.offset);
  });
  if (!records.ok()) return records.error();
  out.records = *records;
  return out;
}

Result<void> reset_journal(NatsClient& client, const std::string& stream,
                           const std::string& subject, const RestoredState& base) {
  for (int attempt = 0; attempt < kResetTries; ++attempt) {
    auto held = replay_journal(client, stream, subject);
    if (!held.ok()) return held.error();
    RestoredState next;
    next.lwm = base.lwm;
    next.acked = base.acked;
    std::string records;
    delivery::encode_restored(0, next, held->fold.dead_lettered(0), records);
    // The claim goes along, so that the reset may stand in for everything below it.
    if (held->claimed > 0) {
      delivery::encode_journal_record({JournalRecord::Type::kClaim, 0, held->claimed, 0, 0, 0, {}},
                                      records);
    }
    uint64_t expected = held->last, first = 0;
    bool conflict = false;
    for (const std::string& chunk : cut(records)) {
      auto seq = client.publish_fenced(subject, chunk, expected);
      if (seq.code() == Errc::kConflict) {
        conflict = true;  // its server wrote meanwhile: read again, and reset after that
        break;
      }
      if (!seq.ok()) return seq.error();
      if (first == 0) first = *seq;
      expected = *seq;
    }
    if (conflict) continue;
    // What lies below the reset is redundant now; a failed purge only costs space.
    (void)client.purge_below(stream, first, subject);
    return {};
  }
  return make_error(Errc::kUnavailable, subject + " kept being written to while it was reset");
}

Result<PartsState> read_parts(NatsClient& client, const std::string& ns,
                              const SubscriptionEntry& entry, uint32_t buckets) {
  const std::string stream = topic_stream(ns, entry.config.topic);
  auto ts = client.stream_state(stream);
  if (!ts.ok()) return ts.error();
  const uint32_t count = std::max<uint32_t>(buckets, 1);
  PartsState out;
  out.parts.resize(count);
  const std::string journal = journal_stream(ns, entry.config.name);
  for (uint32_t b = 0; b < count; ++b) {
    auto held = replay_journal(client, journal,
                               part_subject(journal_subject(ns, entry.config.name), buckets, b));
    if (!held.ok()) return held.error();
    const RestoredState& s = held->fold.state(0);
    RestoredState& p = out.parts[b];
    p.lwm = std::max(s.lwm, entry.start);
    if (ts->messages > 0) p.lwm = std::max(p.lwm, ts->first_seq);
    for (uint64_t seq : s.acked) {
      if (seq >= p.lwm && seq <= ts->last_seq) p.acked.push_back(seq);
    }
    std::sort(p.acked.begin(), p.acked.end());
    p.acked.erase(std::unique(p.acked.begin(), p.acked.end()), p.acked.end());
  }

  // Read the topic from the lowest low-water mark: each part's mark moves past its acked
  // messages up to its first unacked one, which says how old the oldest unacked message is.
  uint64_t from = UINT64_MAX;
  for (const RestoredState& p : out.parts) from = std::min(from, p.lwm);
  if (from > ts->last_seq) return out;  // nothing held is unacked
  std::vector<bool> blocked(count, false);
  std::vector<size_t> next_ack(count, 0);  // the first of each part's acks not passed yet
  uint32_t open = count;
  auto reader = client.reader(stream,
                              buckets > 0 ? any_bucket(topic_subject(ns, entry.config.topic))
                                          : topic_subject(ns, entry.config.topic),
                              from);
  if (!reader.ok()) return reader.error();
  uint64_t expect = 0, scanned = 0;
  std::optional<Timestamp> last_seen;
  bool whole = false;
  while (open > 0 && scanned < kCompactionScan) {
    auto batch = (*reader)->fetch(1024, kSeekReadWaitMs);
    if (!batch.ok()) return batch.error();
    if (batch->empty()) break;
    bool gap = false;
    for (const FetchedMessage& f : *batch) {
      // A gap after the first message is one the reader dropped: stop where it is exact.
      if (expect != 0 && f.seq != expect) {
        gap = true;
        break;
      }
      expect = f.seq + 1;
      ++scanned;
      std::string id;
      delivery::StoredMessage m;
      const bool ours = decode_nats_message(f.payload, id, m);
      if (ours) last_seen = Timestamp::from_micros(m.publish_time_us);
      uint32_t b = 0;
      if (buckets > 0) {
        auto parsed = subject_bucket(f.subject);
        if (!parsed || *parsed >= count) continue;
        b = *parsed;
      }
      RestoredState& p = out.parts[b];
      if (blocked[b] || f.seq < p.lwm) continue;
      std::vector<uint64_t>& acked = p.acked;
      while (next_ack[b] < acked.size() && acked[next_ack[b]] < f.seq) ++next_ack[b];
      if (!ours || (next_ack[b] < acked.size() && acked[next_ack[b]] == f.seq)) {
        p.lwm = f.seq + 1;  // acked (or not a message): the mark moves past it
        continue;
      }
      blocked[b] = true;
      --open;
      const Timestamp at = Timestamp::from_micros(m.publish_time_us);
      if (!out.oldest_unacked || at < *out.oldest_unacked) out.oldest_unacked = at;
      if (open == 0) break;
    }
    if (gap || (*reader)->lost_messages()) break;
    if (expect > ts->last_seq) {
      whole = true;
      break;
    }
  }
  for (RestoredState& p : out.parts) {
    std::erase_if(p.acked, [&](uint64_t seq) { return seq < p.lwm; });
  }
  // Read short of the end: what was not read may hold older unacked messages than the last
  // one read, as far as the clock goes, so that one's time stands in (the snapshot lapses
  // sooner, never later).
  if (open > 0 && !whole && last_seen &&
      (!out.oldest_unacked || *last_seen < *out.oldest_unacked)) {
    out.oldest_unacked = last_seen;
  }
  return out;
}

Result<void> reset_parts(NatsClient& client, const std::string& ns, const std::string& name,
                         uint32_t buckets, const std::vector<RestoredState>& parts) {
  const std::string stream = journal_stream(ns, name);
  const std::string subject = journal_subject(ns, name);
  for (uint32_t b = 0; b < parts.size(); ++b) {
    BACKBONE_TRY(reset_journal(client, stream, part_subject(subject, buckets, b), parts[b]));
  }
  return {};
}

Result<Timestamp> published_at(NatsClient& client, const std::string& stream, uint64_t seq) {
  auto m = client.get_message(stream, seq);
  if (!m.ok()) return m.error();
  std::string id;
  delivery::StoredMessage sm;
  if (!decode_nats_message(m->payload, id, sm)) {
    return make_error(Errc::kDataLoss,
                      "message " + std::to_string(seq) + " of " + stream + " is not backbone's");
  }
  return Timestamp::from_micros(sm.publish_time_us);
}

Result<uint64_t> first_published_at_or_after(NatsClient& client, const std::string& stream,
                                             uint64_t from, uint64_t to, Timestamp time) {
  uint64_t lo = from, hi = to;  // the answer is in [lo, hi]
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    auto at = published_at(client, stream, mid);
    // A message gone meanwhile (by age) was published long before.
    if (at.code() == Errc::kNotFound || (at.ok() && *at < time)) {
      lo = mid + 1;
    } else if (at.ok()) {
      hi = mid;
    } else {
      return at.error();
    }
  }
  return lo;
}

Result<void> save_parts(NatsClient& client, const std::string& ns, const std::string& uid,
                        const std::vector<RestoredState>& parts) {
  BACKBONE_TRY(client.add_stream(
      {snapshot_stream(ns), snapshot_subject(ns, "*"), client.url().replicas, 0, 0}));
  std::string records;
  for (uint32_t b = 0; b < parts.size(); ++b) delivery::encode_restored(b, parts[b], 0, records);
  std::vector<OutgoingNatsMessage> out;
  const std::string subject = snapshot_subject(ns, uid);
  for (std::string& chunk : cut(records)) {
    out.push_back({subject, uid + "." + std::to_string(out.size()), std::move(chunk)});
  }
  auto r = client.publish(out);
  if (!r.ok()) return r.error();
  return {};
}

Result<std::vector<RestoredState>> load_parts(NatsClient& client, const std::string& ns,
                                              const std::string& uid, size_t count) {
  const std::string stream = snapshot_stream(ns), subject = snapshot_subject(ns, uid);
  auto last = client.last_seq_of(stream, subject);
  if (!last.ok() && last.code() != Errc::kNotFound) return last.error();
  delivery::JournalFold fold;
  std::vector<bool> seen(count, false);
  if (last.ok()) {
    auto records = read_records(client, stream, subject, *last, [&](const JournalRecord& r) {
      fold.apply(r);
      if (r.type == JournalRecord::Type::kBase && r.sub_id < count) seen[r.sub_id] = true;
    });
    if (!records.ok()) return records.error();
  }
  std::vector<RestoredState> parts(count);
  for (uint32_t b = 0; b < count; ++b) {
    if (!seen[b]) {
      return make_error(Errc::kDataLoss, "the state of snapshot " + uid +
                                             " is not all kept (part " + std::to_string(b) +
                                             " is missing)");
    }
    parts[b] = std::move(fold.state(b));
  }
  return parts;
}

Result<void> drop_parts(NatsClient& client, const std::string& ns, const std::string& uid) {
  auto r = client.purge_below(snapshot_stream(ns), 0, snapshot_subject(ns, uid));
  if (!r.ok() && r.code() != Errc::kNotFound) return r;
  return {};
}

}  // namespace backbone::nats
