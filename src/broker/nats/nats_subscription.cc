#include "broker/nats/nats_subscription.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <random>

#include "broker/delivery/ack_id.h"
#include "broker/delivery/codec.h"
#include "broker/delivery/journal_record.h"
#include "broker/delivery/journal_sink.h"
#include "broker/nats/nats_message.h"
#include "broker/nats/nats_names.h"

namespace backbone::nats {
namespace {

using delivery::JournalRecord;
using delivery::MsgRef;

constexpr size_t kJournalChunkBytes = 256 << 10;  // one journal message holds at most this
constexpr size_t kMaxSnapshotBytes = 900 << 10;   // under NATS' default 1 MiB payload limit
constexpr uint64_t kCheckpointRecords = 20'000;
// A fill takes everything the reader holds, up to this: messages left in the reader's buffer
// hold back its flow-control answer, and with it the server's next push.
constexpr int kDrainMax = 8192;
constexpr auto kWaitSlice = std::chrono::milliseconds(50);
// How long a reader may take to deliver messages that its stream is known to hold.
constexpr int64_t kCatchUpMs = 5'000;

uint64_t random_u64() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return rng();
}

}  // namespace

// Turns the state machine's decisions into pending journal records and dead-letter forwards;
// commit() makes them durable.
class NatsSubscription::Sink final : public delivery::JournalSink {
 public:
  explicit Sink(NatsSubscription& s) : JournalSink(0), s_(s) {}

 private:
  void settled(uint64_t offset) override { s_.bodies_.erase(offset); }
  void forward_dead_letter(uint64_t offset, int attempt, const std::string& reason) override {
    s_.pending_forwards_.push_back({offset, attempt, reason});
  }
  void write(const JournalRecord& r) override {
    auto& chunks = s_.pending_records_;
    if (chunks.empty() || chunks.back().size() >= kJournalChunkBytes) chunks.emplace_back();
    delivery::encode_journal_record(r, chunks.back());
    ++s_.records_since_checkpoint_;
  }
  NatsSubscription& s_;
};

NatsSubscription::NatsSubscription(NatsClient& client, std::string ns, SubscriptionEntry entry,
                                   const Clock& clock)
    : client_(client),
      ns_(std::move(ns)),
      clock_(clock),
      journal_stream_(journal_stream(ns_, entry.config.name)),
      journal_subject_(journal_subject(ns_, entry.config.name)),
      topic_stream_(topic_stream(ns_, entry.config.topic)),
      topic_subject_(topic_subject(ns_, entry.config.topic)),
      uid_(entry.uid),
      start_(entry.start),
      config_(std::move(entry.config)) {}

NatsSubscription::~NatsSubscription() = default;

Result<void> NatsSubscription::create_journal(NatsClient& client, const std::string& ns,
                                              const SubscriptionEntry& entry) {
  const std::string stream = journal_stream(ns, entry.config.name);
  if (auto d = client.delete_stream(stream); !d.ok() && d.code() != Errc::kNotFound) return d;
  BACKBONE_TRY(client.add_stream(
      {stream, journal_subject(ns, entry.config.name), client.url().replicas, 0, 0}));
  std::string first;
  delivery::encode_journal_record({JournalRecord::Type::kBase, 0, entry.start, 0, 0, 0, {}}, first);
  auto seq = client.publish_fenced(journal_subject(ns, entry.config.name), first, 0);
  if (!seq.ok()) return seq.error();
  return {};
}

SubscriptionConfig NatsSubscription::config() const {
  std::lock_guard lk(mu_);
  return config_;
}

void NatsSubscription::set_config(SubscriptionConfig config) {
  std::lock_guard lk(mu_);
  config_ = std::move(config);
  if (state_) state_->set_config(config_);
}

void NatsSubscription::detach() {
  std::lock_guard lk(mu_);
  detached_ = true;
  unload();
}

std::string NatsSubscription::ack_id(uint64_t offset, uint64_t generation) const {
  return delivery::encode_ack_id(uid_, offset, generation);
}

void NatsSubscription::unload() {
  loaded_ = false;
  state_.reset();
  index_ = delivery::TopicIndex();
  bodies_.clear();
  pending_records_.clear();
  pending_forwards_.clear();
}

Result<void> NatsSubscription::ensure_loaded() {
  if (loaded_) return {};
  auto r = load();
  if (!r.ok()) unload();
  return r;
}

Result<void> NatsSubscription::load() {
  // Replay the journal.
  auto js = client_.stream_state(journal_stream_);
  if (!js.ok()) return js.error();
  delivery::JournalFold fold;
  uint64_t records = 0;
  if (js->last_seq > 0) {
    auto jr = client_.reader(journal_stream_, journal_subject_, 1);
    if (!jr.ok()) return jr.error();
    uint64_t seen = 0;
    while (seen < js->last_seq) {
      auto batch = (*jr)->fetch(256, kCatchUpMs);
      if (!batch.ok()) return batch.error();
      if (batch->empty()) {
        return make_error(Errc::kUnavailable, "the journal " + journal_stream_ +
                                                  " ended before its last sequence " +
                                                  std::to_string(js->last_seq));
      }
      for (const FetchedMessage& m : *batch) {
        seen = m.seq;
        size_t pos = 0;
        while (pos < m.payload.size()) {
          auto frame = delivery::read_frame(m.payload, pos);
          JournalRecord rec;
          if (!frame || !delivery::decode_journal_record(frame->payload, rec)) {
            return make_error(Errc::kDataLoss, "the journal " + journal_stream_ +
                                                   " has a damaged record at sequence " +
                                                   std::to_string(m.seq));
          }
          fold.apply(rec);
          ++records;
          pos += frame->size;
        }
      }
    }
  }
  journal_last_ = js->last_seq;
  records_since_checkpoint_ = records;

  // Read back the topic's unacked messages.
  auto ts = client_.stream_state(topic_stream_);
  if (!ts.ok()) return ts.error();
  delivery::RestoredState& restored = fold.state(0);
  uint64_t lwm = std::max(restored.lwm, start_);
  if (ts->messages > 0) lwm = std::max(lwm, ts->first_seq);
  uint64_t end = lwm;
  for (uint64_t off : restored.acked) end = std::max(end, off + 1);
  for (const auto& [off, a] : restored.attempts) end = std::max(end, off + 1);
  end = std::min(end, ts->last_seq + 1);
  index_ = delivery::TopicIndex(lwm);
  bodies_.clear();
  auto reader = client_.reader(topic_stream_, topic_subject_, lwm);
  if (!reader.ok()) return reader.error();
  reader_ = std::move(*reader);
  BACKBONE_TRY(read_topic(end));
  for (uint64_t off : restored.acked) bodies_.erase(off);

  state_ = std::make_unique<delivery::SubscriptionState>(config_, lwm, (random_u64() >> 16) + 1);
  state_->restore(restored, index_, clock_.now());
  state_->set_dead_lettered(fold.dead_lettered(0));
  pending_records_.clear();
  pending_forwards_.clear();
  loaded_ = true;
  return {};
}

Result<void> NatsSubscription::read_topic(uint64_t until_seq) {
  while (index_.end() < until_seq) {
    const auto want = static_cast<int>(std::min<uint64_t>(until_seq - index_.end(), 1024));
    auto batch = reader_->fetch(want, kCatchUpMs);
    if (!batch.ok()) return batch.error();
    if (batch->empty()) {
      // The age limit may have removed the rest: they read as long-expired messages.
      auto ts = client_.stream_state(topic_stream_);
      if (!ts.ok()) return ts.error();
      if (ts->first_seq > index_.end()) {
        while (index_.end() < std::min(ts->first_seq, until_seq)) index_.push_back(MsgRef{});
        continue;
      }
      return make_error(Errc::kUnavailable, "the topic stream " + topic_stream_ +
                                                " ended before sequence " +
                                                std::to_string(until_seq - 1));
    }
    BACKBONE_TRY(append(std::move(*batch)));
  }
  return {};
}

Result<void> NatsSubscription::fill(size_t want) {
  if (index_.end() - state_->cursor() >= want) return {};
  auto batch = reader_->fetch(kDrainMax, 0);
  if (!batch.ok()) return batch.error();
  BACKBONE_TRY(append(std::move(*batch)));
  if (index_.end() - state_->cursor() >= want) return {};
  // Delivery is asynchronous: what the stream already holds (a publish acknowledged to anyone)
  // must be seen before a pull comes back short. Unless the messages read so far tell of
  // enough more, ask the stream how far it goes.
  const uint64_t target = state_->cursor() + want;
  uint64_t last = reader_->known_last_seq();
  if (last + 1 < target) {
    auto ts = client_.stream_state(topic_stream_);
    if (!ts.ok()) return ts.error();
    last = ts->last_seq;
  }
  return read_topic(std::min<uint64_t>(last + 1, target));
}

Result<void> NatsSubscription::append(std::vector<FetchedMessage> fetched) {
  for (FetchedMessage& f : fetched) {
    if (f.seq < index_.end()) continue;  // read twice
    if (f.seq > index_.end()) {
      // Messages that the stream's age limit removed read as long-expired ones, which the
      // retention rule drops. Any other gap is a reader that skipped messages on the way: read
      // again from the first one missing.
      auto ts = client_.stream_state(topic_stream_);
      if (!ts.ok()) return ts.error();
      while (index_.end() < std::min(f.seq, ts->first_seq)) index_.push_back(MsgRef{});
      if (index_.end() < f.seq) return restart_reader();
    }
    Body body;
    if (!decode_nats_message(f.payload, body.id, body.message)) {
      index_.push_back(MsgRef{});
      continue;
    }
    MsgRef ref;
    ref.key_hash = delivery::ordering_key_hash(body.message.ordering_key);
    ref.publish_time_us = body.message.publish_time_us;
    index_.push_back(ref);
    bodies_.emplace(f.seq, std::move(body));
  }
  if (reader_->lost_messages()) return restart_reader();
  return {};
}

Result<void> NatsSubscription::restart_reader() {
  auto r = client_.reader(topic_stream_, topic_subject_, index_.end());
  if (!r.ok()) return r.error();
  reader_ = std::move(*r);
  return {};
}

Result<void> NatsSubscription::commit() {
  auto fail = [&](Error e) {
    unload();
    if (e.code == Errc::kConflict) {
      e = make_error(Errc::kUnavailable, "subscription " + config_.name +
                                             " was taken over by another process; reloaded");
    }
    return e;
  };
  if (!pending_forwards_.empty()) {
    const auto& policy = config_.dead_letter;
    BACKBONE_ASSERT(policy.has_value());
    std::vector<OutgoingNatsMessage> out;
    for (const Forward& f : pending_forwards_) {
      Body& b = bodies_[f.offset];
      delivery::StoredMessage m = b.message;
      m.offset = 0;
      m.publish_time_us = clock_.now().micros();
      add_dead_letter_attributes(m.attributes, f.attempt, f.reason, config_.name, b.id,
                                 clock_.now());
      OutgoingNatsMessage o;
      o.subject = topic_subject(ns_, policy->topic);
      o.msg_id = uid_ + "." + std::to_string(f.offset) + ".dead";
      encode_nats_message(o.msg_id, m, o.payload);
      out.push_back(std::move(o));
    }
    auto r = client_.publish(out);
    if (!r.ok()) return fail(r.error());
    for (const Forward& f : pending_forwards_) bodies_.erase(f.offset);
    pending_forwards_.clear();
  }
  for (const std::string& chunk : pending_records_) {
    auto seq = client_.publish_fenced(journal_subject_, chunk, journal_last_);
    if (!seq.ok()) return fail(seq.error());
    journal_last_ = *seq;
  }
  pending_records_.clear();
  index_.drop_before(state_->low_water_mark());
  if (records_since_checkpoint_ >= kCheckpointRecords) {
    std::string snapshot;
    delivery::encode_snapshot(0, *state_, snapshot);
    if (snapshot.size() <= kMaxSnapshotBytes) {
      auto seq = client_.publish_fenced(journal_subject_, snapshot, journal_last_);
      if (!seq.ok()) return fail(seq.error());
      journal_last_ = *seq;
      records_since_checkpoint_ = 0;
      // Everything below the snapshot is now redundant; a failed purge only costs space.
      (void)client_.purge_below(journal_stream_, *seq);
    }
  }
  return {};
}

Result<std::vector<ReceivedMessage>> NatsSubscription::pull(size_t max, int64_t wait_us) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::microseconds(wait_us);
  for (;;) {
    {
      std::lock_guard rl(reader_mu_);
      std::lock_guard lk(mu_);
      if (detached_) return std::vector<ReceivedMessage>{};
      BACKBONE_TRY(ensure_loaded());
      BACKBONE_TRY(fill(max));
      Sink sink(*this);
      const std::vector<delivery::Delivery> deliveries =
          state_->take(max, clock_.now(), index_, sink);
      std::vector<ReceivedMessage> out;
      out.reserve(deliveries.size());
      for (const delivery::Delivery& d : deliveries) {
        auto it = bodies_.find(d.offset);
        BACKBONE_ASSERT(it != bodies_.end());
        const Body& b = it->second;
        ReceivedMessage r;
        r.ack_id = ack_id(d.offset, d.generation);
        r.delivery_attempt = d.attempt;
        r.message.id = b.id;
        r.message.data = b.message.data;
        r.message.attributes = b.message.attributes;
        r.message.ordering_key = b.message.ordering_key;
        r.message.publish_time = Timestamp::from_micros(b.message.publish_time_us);
        out.push_back(std::move(r));
      }
      BACKBONE_TRY(commit());
      if (!out.empty()) return out;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= give_up) return std::vector<ReceivedMessage>{};
    // Wait for a publish, a slice at a time, then look at the clock again (a retry may be due).
    const auto slice = std::min<std::chrono::steady_clock::duration>(kWaitSlice, give_up - now);
    {
      // Messages that were read but could not be delivered (their keys are busy) wait for an
      // ack or a nack, not for the stream.
      std::unique_lock lk(mu_);
      if (!loaded_ || detached_) continue;
      if (index_.end() > state_->cursor()) {
        changed_.wait_for(lk, slice);
        continue;
      }
    }
    std::unique_lock rl(reader_mu_, std::defer_lock);
    if (!rl.try_lock_for(kWaitSlice)) continue;
    const int64_t wait_ms =
        std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(slice).count());
    auto got = reader_->fetch(1, wait_ms);
    std::lock_guard lk(mu_);
    if (!got.ok()) {
      unload();
      return got.error();
    }
    if (!loaded_) continue;
    if (auto r = append(std::move(*got)); !r.ok()) {
      unload();
      return r.error();
    }
  }
}

Result<void> NatsSubscription::for_each(std::span<const std::string> ack_ids, const Op& op) {
  struct Parsed {
    uint64_t offset, generation;
    bool current;
  };
  std::vector<Parsed> parsed;
  parsed.reserve(ack_ids.size());
  for (const std::string& text : ack_ids) {
    auto id = delivery::parse_ack_id(text);
    if (!id.ok()) return id.error();
    parsed.push_back({id->offset, id->generation, id->owner == uid_});
  }
  std::lock_guard lk(mu_);
  if (!loaded_ || detached_) return {};  // ack ids of an earlier load are stale
  Sink sink(*this);
  for (const Parsed& p : parsed) {
    if (p.current) op(*state_, p.offset, p.generation, sink);
  }
  auto committed = commit();
  changed_.notify_all();  // acks free ordering keys; nacks may make messages deliverable
  return committed;
}

Result<size_t> NatsSubscription::ack(std::span<const std::string> ack_ids) {
  size_t acked = 0;
  BACKBONE_TRY(for_each(ack_ids, [&](delivery::SubscriptionState& s, uint64_t off, uint64_t gen,
                                     delivery::StateSink& sink) {
    if (s.ack(off, gen, index_, sink, clock_.now())) ++acked;
  }));
  return acked;
}

Result<void> NatsSubscription::nack(std::span<const std::string> ack_ids,
                                    std::optional<int64_t> delay_us, const std::string& reason) {
  return for_each(ack_ids, [&](delivery::SubscriptionState& s, uint64_t off, uint64_t gen,
                               delivery::StateSink& sink) {
    s.nack(off, gen, delay_us, reason, clock_.now(), index_, sink);
  });
}

Result<void> NatsSubscription::modify_ack_deadline(std::span<const std::string> ack_ids,
                                                   int64_t deadline_us) {
  return for_each(ack_ids, [&](delivery::SubscriptionState& s, uint64_t off, uint64_t gen,
                               delivery::StateSink& sink) {
    s.modify_deadline(off, gen, deadline_us, clock_.now(), index_, sink);
  });
}

Result<void> NatsSubscription::dead_letter(const std::string& ack_id, const std::string& reason) {
  return for_each(std::span(&ack_id, 1), [&](delivery::SubscriptionState& s, uint64_t off,
                                             uint64_t gen, delivery::StateSink& sink) {
    s.dead_letter(off, gen, reason, clock_.now(), index_, sink);
  });
}

Result<SubscriptionStats> NatsSubscription::stats() {
  std::lock_guard rl(reader_mu_);
  std::lock_guard lk(mu_);
  if (detached_) return SubscriptionStats::zero();
  BACKBONE_TRY(ensure_loaded());
  BACKBONE_TRY(fill(1));
  Sink sink(*this);
  (void)state_->take(0, clock_.now(), index_, sink);  // expires deadlines
  BACKBONE_TRY(commit());
  SubscriptionStats s = state_->stats(clock_.now(), index_);
  auto ts = client_.stream_state(topic_stream_);
  if (!ts.ok()) return ts.error();
  if (ts->last_seq + 1 > index_.end()) *s.undelivered += ts->last_seq + 1 - index_.end();
  return s;
}

}  // namespace backbone::nats
