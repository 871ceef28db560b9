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
#include "broker/nats/nats_seek.h"

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
// How far past what it holds a fill reads ahead at most (stream messages, any bucket's).
constexpr uint64_t kReadAhead = 4096;
constexpr auto kWaitSlice = std::chrono::milliseconds(50);
// How long a reader may take to deliver messages that its stream is known to hold.
constexpr int64_t kCatchUpMs = 5'000;
// How often a served subscription looks for journal writes that are not its own.
constexpr auto kLookForOthers = std::chrono::seconds(1);

uint64_t random_u64() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return rng();
}

}  // namespace

// Turns one part's decisions into pending journal records (in stream sequences) and
// dead-letter forwards; commit() makes them durable.
class NatsSubscription::Sink final : public delivery::JournalSink {
 public:
  Sink(NatsSubscription& s, Part& p) : JournalSink(0), s_(s), p_(p) {}

 private:
  void settled(uint64_t offset) override { p_.bodies.erase(offset); }
  void forward_dead_letter(uint64_t offset, int attempt, const std::string& reason) override {
    p_.pending_forwards.push_back({offset, attempt, reason});
  }
  void write(const JournalRecord& r) override {
    JournalRecord at = r;
    at.offset = s_.seq_of(p_, r.offset);
    auto& chunks = p_.pending_records;
    if (chunks.empty() || chunks.back().size() >= kJournalChunkBytes) chunks.emplace_back();
    delivery::encode_journal_record(at, chunks.back());
    ++p_.records_since_checkpoint;
  }
  NatsSubscription& s_;
  Part& p_;
};

NatsSubscription::NatsSubscription(NatsClient& client, std::string ns, SubscriptionEntry entry,
                                   uint32_t buckets, Router route, const Clock& clock)
    : client_(client),
      ns_(std::move(ns)),
      clock_(clock),
      buckets_(buckets),
      route_(std::move(route)),
      journal_stream_(journal_stream(ns_, entry.config.name)),
      journal_subject_(journal_subject(ns_, entry.config.name)),
      topic_stream_(topic_stream(ns_, entry.config.topic)),
      topic_subject_(buckets > 0 ? any_bucket(topic_subject(ns_, entry.config.topic))
                                 : topic_subject(ns_, entry.config.topic)),
      uid_(entry.uid),
      start_(entry.start),
      config_(std::move(entry.config)) {}

NatsSubscription::~NatsSubscription() = default;

Result<void> NatsSubscription::create_journal(NatsClient& client, const std::string& ns,
                                              const SubscriptionEntry& entry, uint32_t buckets) {
  const std::string stream = journal_stream(ns, entry.config.name);
  const std::string subject = journal_subject(ns, entry.config.name);
  if (auto d = client.delete_stream(stream); !d.ok() && d.code() != Errc::kNotFound) return d;
  BACKBONE_TRY(client.add_stream(
      {stream, buckets > 0 ? any_bucket(subject) : subject, client.url().replicas, 0, 0}));
  std::string first;
  delivery::encode_journal_record({JournalRecord::Type::kBase, 0, entry.start, 0, 0, 0, {}}, first);
  std::vector<OutgoingNatsMessage> bases;
  for (uint32_t b = 0; b < std::max<uint32_t>(buckets, 1); ++b) {
    bases.push_back(
        {part_subject(subject, buckets, b), entry.uid + "." + std::to_string(b) + ".base", first});
  }
  auto seqs = client.publish(bases);
  if (!seqs.ok()) return seqs.error();
  return {};
}

SubscriptionConfig NatsSubscription::config() const {
  std::lock_guard lk(mu_);
  return config_;
}

void NatsSubscription::set_config(SubscriptionConfig config) {
  std::lock_guard lk(mu_);
  config_ = std::move(config);
  for (auto& [b, p] : parts_) {
    if (p->state) p->state->set_config(config_);
  }
}

void NatsSubscription::detach() {
  std::lock_guard lk(mu_);
  detached_ = true;
  unload_all();
}

void NatsSubscription::serve(std::optional<std::map<uint32_t, uint64_t>> buckets) {
  // Taken up by the next call under mu_: a pull may hold mu_ across a journal replay, and the
  // caller (a lease keeper's tick) must not wait for it.
  {
    std::lock_guard lk(serve_mu_);
    next_served_ = std::move(buckets);
    serve_pending_ = true;
  }
  changed_.notify_all();
}

void NatsSubscription::apply_serve() {
  if (!serve_pending_.load()) return;
  {
    std::lock_guard lk(serve_mu_);
    served_ = std::move(next_served_);
    serve_pending_ = false;
  }
  for (auto it = parts_.begin(); it != parts_.end();) {
    bool keep = true;
    if (served_) {
      auto s = served_->find(it->first);
      keep = s != served_->end() && s->second == it->second->epoch;
    }
    if (!keep) {
      it = parts_.erase(it);
    } else {
      ++it;
    }
  }
}

void NatsSubscription::reload() {
  std::lock_guard lk(mu_);
  unload_all();
  changed_.notify_all();
}

void NatsSubscription::notice_others() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_look_) return;
  next_look_ = now + kLookForOthers;
  uint64_t mine = 0;
  bool any = false;
  for (const auto& [b, p] : parts_) {
    if (!p->loaded) continue;
    any = true;
    mine = std::max(mine, p->journal_last);
  }
  if (!any) return;
  // Failures here are left to the next append, which is fenced anyway.
  auto st = client_.stream_state(journal_stream_);
  if (!st.ok() || st->last_seq == journal_seen_) return;
  // One journal subject whose last message is this process's: nobody wrote after it, and a
  // write before it would have failed it.
  if (buckets_ == 0 && st->last_seq == mine) {
    journal_seen_ = st->last_seq;
    return;
  }
  for (auto& [b, p] : parts_) {
    if (!p->loaded) continue;
    auto last = client_.last_seq_of(journal_stream_, p->journal_subject);
    if (!last.ok()) return;
    if (*last != p->journal_last) unload(*p);
  }
  journal_seen_ = st->last_seq;
}

std::string NatsSubscription::ack_id(const Part& p, uint64_t offset, uint64_t generation) const {
  return delivery::encode_ack_id(p.owner, offset, generation);
}

NatsSubscription::Part* NatsSubscription::find_part(const std::string& owner) {
  uint32_t bucket = 0;
  if (buckets_ > 0) {
    if (!owner.starts_with(uid_ + ".")) return nullptr;
    auto b = subject_bucket(owner);
    if (!b) return nullptr;
    bucket = *b;
  } else if (owner != uid_) {
    return nullptr;
  }
  auto it = parts_.find(bucket);
  return it == parts_.end() || !it->second->loaded ? nullptr : it->second.get();
}

std::vector<NatsSubscription::Part*> NatsSubscription::served_parts() {
  std::vector<Part*> out;
  auto add = [&](uint32_t b, uint64_t epoch) {
    auto& slot = parts_[b];
    if (!slot) {
      slot = std::make_unique<Part>();
      slot->bucket = b;
      slot->epoch = epoch;
      slot->journal_subject = part_subject(journal_subject_, buckets_, b);
      slot->owner = buckets_ > 0 ? uid_ + "." + std::to_string(b) : uid_;
    }
    out.push_back(slot.get());
  };
  if (buckets_ == 0) {
    add(0, 0);
  } else if (served_) {
    for (const auto& [b, epoch] : *served_) {
      if (b < buckets_) add(b, epoch);
    }
  } else {
    for (uint32_t b = 0; b < buckets_; ++b) add(b, 0);
  }
  return out;
}

uint64_t NatsSubscription::seq_of(const Part& p, uint64_t offset) const {
  if (offset >= p.index.begin() && offset < p.index.end()) return p.seqs[offset - p.index.begin()];
  // Past the index: every message of the part below the reader's position is indexed.
  return std::max(p.next_seq, reader_next_);
}

void NatsSubscription::unload(Part& p) {
  p.active = p.loaded = false;
  p.state.reset();
  p.index = delivery::TopicIndex();
  p.seqs.clear();
  p.bodies.clear();
  p.pending_records.clear();
  p.pending_forwards.clear();
}

void NatsSubscription::unload_all() {
  for (auto& [b, p] : parts_) unload(*p);
}

Result<void> NatsSubscription::ensure_loaded() {
  std::vector<Part*> todo;
  bool any_loaded = false;
  for (Part* p : served_parts()) {
    if (p->loaded) {
      any_loaded = true;
    } else if (!p->fenced) {
      todo.push_back(p);
    }
  }
  if (todo.empty()) return {};
  auto r = load(todo);
  if (!r.ok()) {
    for (Part* p : todo) {
      if (!p->loaded && !p->fenced) unload(*p);
    }
    if (!any_loaded) return r;
  }
  return {};
}

Result<void> NatsSubscription::load(const std::vector<Part*>& parts) {
  // Replay each part's journal.
  struct Replayed {
    ReplayedJournal journal;
    uint64_t lwm_seq = 0, end_seq = 0;
  };
  std::vector<Replayed> replayed(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    Part& p = *parts[i];
    auto held = replay_journal(client_, journal_stream_, p.journal_subject);
    if (!held.ok()) return held.error();
    replayed[i].journal = std::move(*held);
    p.journal_last = replayed[i].journal.last;
    p.records_since_checkpoint = replayed[i].journal.records;
    // Served at a later epoch already: this process's lease is stale, and its keeper will
    // hear so; the part stays unserved here until then.
    if (served_ && replayed[i].journal.claimed > p.epoch) p.fenced = true;
  }

  // Read back the topic's unacked messages, for every part at once.
  auto ts = client_.stream_state(topic_stream_);
  if (!ts.ok()) return ts.error();
  uint64_t from = UINT64_MAX, until = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    Part& p = *parts[i];
    if (p.fenced) continue;
    const delivery::RestoredState& restored = replayed[i].journal.fold.state(0);
    uint64_t lwm = std::max(restored.lwm, start_);
    if (ts->messages > 0) lwm = std::max(lwm, ts->first_seq);
    uint64_t end = lwm;
    for (uint64_t seq : restored.acked) end = std::max(end, seq + 1);
    for (const auto& [seq, a] : restored.attempts) end = std::max(end, seq + 1);
    replayed[i].lwm_seq = lwm;
    replayed[i].end_seq = std::min(end, ts->last_seq + 1);
    p.index = delivery::TopicIndex(0);
    p.seqs.clear();
    p.bodies.clear();
    p.next_seq = lwm;
    p.active = true;
    from = std::min(from, lwm);
    until = std::max(until, replayed[i].end_seq);
  }
  if (from == UINT64_MAX) return {};  // every part fenced
  if (!reader_ || from < reader_next_) BACKBONE_TRY(restart_reader(from));
  BACKBONE_TRY(read_topic(until));

  // Rebuild each part's state in its local offsets, then claim its journal if a lease says it
  // is this process's.
  for (size_t i = 0; i < parts.size(); ++i) {
    Part& p = *parts[i];
    if (p.fenced) continue;
    const delivery::RestoredState& restored = replayed[i].journal.fold.state(0);
    auto local = [&](uint64_t seq) -> std::optional<uint64_t> {
      auto it = std::lower_bound(p.seqs.begin(), p.seqs.end(), seq);
      if (it == p.seqs.end() || *it != seq) return std::nullopt;
      return p.index.begin() + static_cast<uint64_t>(it - p.seqs.begin());
    };
    delivery::RestoredState mine;
    mine.lwm = p.index.begin();
    for (uint64_t seq : restored.acked) {
      if (auto off = local(seq)) {
        mine.acked.push_back(*off);
        p.bodies.erase(*off);
      }
    }
    for (const auto& [seq, a] : restored.attempts) {
      if (auto off = local(seq)) mine.attempts[*off] = a;
    }
    p.state =
        std::make_unique<delivery::SubscriptionState>(config_, mine.lwm, (random_u64() >> 16) + 1);
    p.state->restore(mine, p.index, clock_.now());
    p.state->set_dead_lettered(replayed[i].journal.fold.dead_lettered(0));
    p.pending_records.clear();
    p.pending_forwards.clear();
    if (served_) {
      std::string claim;
      delivery::encode_journal_record({JournalRecord::Type::kClaim, 0, p.epoch, 0, 0, 0, {}},
                                      claim);
      auto seq = client_.publish_fenced(p.journal_subject, claim, p.journal_last);
      if (!seq.ok()) {
        return make_error(Errc::kUnavailable,
                          "bucket " + std::to_string(p.bucket) + " of subscription " +
                              config_.name +
                              " is still being served elsewhere: " + seq.error().message);
      }
      p.journal_last = *seq;
    }
    p.loaded = true;
  }
  return {};
}

Result<void> NatsSubscription::read_topic(uint64_t until_seq, std::unique_lock<std::mutex>* state) {
  if (!reader_) return {};  // no part served here
  while (reader_next_ < until_seq) {
    const auto want = static_cast<int>(std::min<uint64_t>(until_seq - reader_next_, 1024));
    // What has arrived is taken at once; only a wait lets mu_ go.
    auto batch = reader_->fetch(want, 0);
    if (batch.ok() && batch->empty()) {
      // Wait only for what the stream holds: an end known from the reader's messages can be
      // past it, and each pull then waited 5 s for nothing (a record's events merged one per
      // 5 s once its ingest was over, in the stalls of bench/scale_out).
      auto ts = client_.stream_state(topic_stream_);
      if (!ts.ok()) return ts.error();
      if (ts->last_seq < reader_next_) return {};
      if (state) state->unlock();
      batch = reader_->fetch(want, kCatchUpMs);
      if (state) state->lock();
    }
    if (!batch.ok()) return batch.error();
    if (batch->empty()) {
      auto ts = client_.stream_state(topic_stream_);
      if (!ts.ok()) return ts.error();
      // The age limit may have removed the rest: they are beyond every retention.
      if (ts->first_seq > reader_next_) {
        reader_next_ = std::min(ts->first_seq, until_seq);
        continue;
      }
      if (ts->last_seq < reader_next_) return {};  // nothing more
      return make_error(Errc::kUnavailable, "the topic stream " + topic_stream_ +
                                                " ended before sequence " +
                                                std::to_string(until_seq - 1));
    }
    BACKBONE_TRY(dispatch(std::move(*batch)));
  }
  return {};
}

uint64_t NatsSubscription::undelivered_read() const {
  uint64_t n = 0;
  for (const auto& [b, p] : parts_) {
    if (p->loaded) n += p->index.end() - p->state->cursor();
  }
  return n;
}

Result<void> NatsSubscription::fill(size_t want, std::unique_lock<std::mutex>* state) {
  if (!reader_ || undelivered_read() >= want) return {};
  auto batch = reader_->fetch(kDrainMax, 0);
  if (!batch.ok()) return batch.error();
  BACKBONE_TRY(dispatch(std::move(*batch)));
  if (undelivered_read() >= want) return {};
  // Delivery is asynchronous: what the stream already holds (a publish acknowledged to anyone)
  // must be seen before a pull comes back short. Unless the messages read so far tell of
  // more, ask the stream how far it goes.
  uint64_t last = reader_->known_last_seq();
  if (last < reader_next_) {
    auto ts = client_.stream_state(topic_stream_);
    if (!ts.ok()) return ts.error();
    last = ts->last_seq;
  }
  const uint64_t ahead = buckets_ > 0 ? std::max<uint64_t>(want, kReadAhead) : want;
  return read_topic(std::min<uint64_t>(last + 1, reader_next_ + ahead), state);
}

Result<void> NatsSubscription::dispatch(std::vector<FetchedMessage> fetched) {
  for (FetchedMessage& f : fetched) {
    if (f.seq < reader_next_) continue;  // read twice
    if (f.seq > reader_next_) {
      // Messages that the stream's age limit removed are beyond every retention. Any other gap
      // is a reader that skipped messages on the way: read again from the first one missing.
      auto ts = client_.stream_state(topic_stream_);
      if (!ts.ok()) return ts.error();
      reader_next_ = std::max(reader_next_, std::min(f.seq, ts->first_seq));
      if (reader_next_ < f.seq) return restart_reader(reader_next_);
    }
    reader_next_ = f.seq + 1;
    uint32_t bucket = 0;
    if (buckets_ > 0) {
      auto b = subject_bucket(f.subject);
      if (!b) continue;  // not a message of this backend
      bucket = *b;
    }
    auto it = parts_.find(bucket);
    if (it == parts_.end()) continue;
    Part& p = *it->second;
    if (!p.active || f.seq < p.next_seq) continue;
    p.next_seq = f.seq + 1;
    Body body;
    if (!decode_nats_message(f.payload, body.id, body.message)) continue;  // not one of ours
    MsgRef ref;
    ref.key_hash = delivery::ordering_key_hash(body.message.ordering_key);
    ref.publish_time_us = body.message.publish_time_us;
    const uint64_t offset = p.index.end();
    p.index.push_back(ref);
    p.seqs.push_back(f.seq);
    p.bodies.emplace(offset, std::move(body));
  }
  if (reader_->lost_messages()) return restart_reader(reader_next_);
  return {};
}

Result<void> NatsSubscription::restart_reader(uint64_t from) {
  auto r = client_.reader(topic_stream_, topic_subject_, from);
  if (!r.ok()) return r.error();
  reader_ = std::move(*r);
  reader_next_ = std::max<uint64_t>(from, 1);
  return {};
}

Result<void> NatsSubscription::commit(Part& p) {
  auto fail = [&](Error e) {
    unload(p);
    if (e.code == Errc::kConflict) {
      e = make_error(Errc::kUnavailable,
                     "subscription " + config_.name +
                         (buckets_ > 0 ? " (bucket " + std::to_string(p.bucket) + ")" : "") +
                         " was taken over by another process; reloaded");
    }
    return e;
  };
  if (!p.pending_forwards.empty()) {
    const auto& policy = config_.dead_letter;
    BACKBONE_ASSERT(policy.has_value());
    std::vector<OutgoingNatsMessage> out;
    for (const Forward& f : p.pending_forwards) {
      Body& b = p.bodies[f.offset];
      delivery::StoredMessage m = b.message;
      m.offset = 0;
      m.publish_time_us = clock_.now().micros();
      add_dead_letter_attributes(m.attributes, f.attempt, f.reason, config_.name, b.id,
                                 clock_.now());
      OutgoingNatsMessage o;
      // Named by the stream sequence, so that a forward repeated after a crash is dropped.
      o.msg_id = uid_ + "." + std::to_string(seq_of(p, f.offset)) + ".dead";
      auto subject = route_(policy->topic, m.ordering_key, o.msg_id);
      if (!subject.ok()) return fail(subject.error());
      o.subject = std::move(*subject);
      encode_nats_message(o.msg_id, m, o.payload);
      out.push_back(std::move(o));
    }
    auto r = client_.publish(out);
    if (!r.ok()) return fail(r.error());
    for (const Forward& f : p.pending_forwards) p.bodies.erase(f.offset);
    p.pending_forwards.clear();
  }
  for (const std::string& chunk : p.pending_records) {
    auto seq = client_.publish_fenced(p.journal_subject, chunk, p.journal_last);
    if (!seq.ok()) return fail(seq.error());
    p.journal_last = *seq;
  }
  p.pending_records.clear();
  const uint64_t lwm = p.state->low_water_mark();
  if (lwm > p.index.begin()) {
    const uint64_t n = std::min<uint64_t>(lwm - p.index.begin(), p.seqs.size());
    p.seqs.erase(p.seqs.begin(), p.seqs.begin() + static_cast<std::ptrdiff_t>(n));
  }
  p.index.drop_before(lwm);
  if (p.records_since_checkpoint >= kCheckpointRecords) {
    delivery::RestoredState snap = p.state->snapshot();
    snap.lwm = seq_of(p, snap.lwm);
    for (uint64_t& off : snap.acked) off = seq_of(p, off);
    std::unordered_map<uint64_t, delivery::RestoredState::Attempt> attempts;
    for (auto& [off, a] : snap.attempts) attempts[seq_of(p, off)] = std::move(a);
    snap.attempts = std::move(attempts);
    std::string snapshot;
    delivery::encode_restored(0, snap, p.state->dead_lettered(), snapshot);
    if (snapshot.size() <= kMaxSnapshotBytes) {
      auto seq = client_.publish_fenced(p.journal_subject, snapshot, p.journal_last);
      if (!seq.ok()) return fail(seq.error());
      p.journal_last = *seq;
      p.records_since_checkpoint = 0;
      // Everything below the snapshot is now redundant; a failed purge only costs space.
      (void)client_.purge_below(journal_stream_, *seq, p.journal_subject);
    }
  }
  return {};
}

Result<std::vector<ReceivedMessage>> NatsSubscription::pull(size_t max, int64_t wait_us) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::microseconds(wait_us);
  // A part whose append was refused was unloaded: another process wrote its journal (a seek,
  // or a takeover). The pull loads it again once, at once, before it answers the failure.
  bool reloaded = false;
  for (;;) {
    {
      std::lock_guard rl(reader_mu_);
      std::unique_lock lk(mu_);
      if (detached_) return std::vector<ReceivedMessage>{};
      apply_serve();
      notice_others();
      BACKBONE_TRY(ensure_loaded());
      BACKBONE_TRY(fill(max, &lk));
      if (detached_) return std::vector<ReceivedMessage>{};
      apply_serve();
      std::vector<std::pair<uint64_t, ReceivedMessage>> out;  // with stream sequences
      std::optional<Error> failed;
      // Start at a different part each time, so that no bucket waits behind the others.
      std::vector<Part*> parts = served_parts();
      const size_t first = parts.empty() ? 0 : random_u64() % parts.size();
      for (size_t k = 0; k < parts.size() && out.size() < max; ++k) {
        Part& p = *parts[(first + k) % parts.size()];
        if (!p.loaded) continue;
        Sink sink(*this, p);
        const std::vector<delivery::Delivery> deliveries =
            p.state->take(max - out.size(), clock_.now(), p.index, sink);
        std::vector<std::pair<uint64_t, ReceivedMessage>> mine;
        mine.reserve(deliveries.size());
        for (const delivery::Delivery& d : deliveries) {
          auto it = p.bodies.find(d.offset);
          BACKBONE_ASSERT(it != p.bodies.end());
          const Body& b = it->second;
          ReceivedMessage r;
          r.ack_id = ack_id(p, d.offset, d.generation);
          r.delivery_attempt = d.attempt;
          r.message.id = b.id;
          r.message.data = b.message.data;
          r.message.attributes = b.message.attributes;
          r.message.ordering_key = b.message.ordering_key;
          r.message.publish_time = Timestamp::from_micros(b.message.publish_time_us);
          mine.emplace_back(seq_of(p, d.offset), std::move(r));
        }
        // A part whose records did not land hands nothing out.
        if (auto c = commit(p); !c.ok()) {
          if (!failed) failed = c.error();
          continue;
        }
        for (auto& r : mine) out.push_back(std::move(r));
      }
      if (!out.empty()) {
        // In publish order across buckets too, as far as one pull goes.
        std::stable_sort(out.begin(), out.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        std::vector<ReceivedMessage> received;
        received.reserve(out.size());
        for (auto& [seq, r] : out) received.push_back(std::move(r));
        return received;
      }
      if (failed && !reloaded) {
        reloaded = true;
        continue;
      }
      if (failed) return *failed;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= give_up) return std::vector<ReceivedMessage>{};
    // Wait for a publish, a slice at a time, then look at the clock again (a retry may be due).
    const auto slice = std::min<std::chrono::steady_clock::duration>(kWaitSlice, give_up - now);
    {
      // Messages that were read but could not be delivered (their keys are busy) wait for an
      // ack or a nack, not for the stream.
      std::unique_lock lk(mu_);
      if (detached_ || !reader_) continue;
      if (undelivered_read() > 0) {
        changed_.wait_for(lk, slice);
        continue;
      }
    }
    std::unique_lock rl(reader_mu_, std::defer_lock);
    if (!rl.try_lock_for(kWaitSlice)) continue;
    if (!reader_) continue;
    const int64_t wait_ms =
        std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(slice).count());
    auto got = reader_->fetch(1, wait_ms);
    std::lock_guard lk(mu_);
    if (!got.ok()) {
      unload_all();
      reader_.reset();
      return got.error();
    }
    if (auto r = dispatch(std::move(*got)); !r.ok()) {
      unload_all();
      reader_.reset();
      return r.error();
    }
  }
}

Result<void> NatsSubscription::for_each(std::span<const std::string> ack_ids, const Op& op) {
  struct Parsed {
    std::string owner;
    uint64_t offset, generation;
  };
  std::vector<Parsed> parsed;
  parsed.reserve(ack_ids.size());
  for (const std::string& text : ack_ids) {
    auto id = delivery::parse_ack_id(text);
    if (!id.ok()) return id.error();
    parsed.push_back({std::move(id->owner), id->offset, id->generation});
  }
  std::lock_guard lk(mu_);
  if (detached_) return {};
  apply_serve();
  std::vector<Part*> touched;
  for (const Parsed& a : parsed) {
    Part* p = find_part(a.owner);  // ack ids of an earlier load, or of another's bucket, are stale
    if (p == nullptr) continue;
    Sink sink(*this, *p);
    op(*p, a.offset, a.generation, sink);
    if (std::find(touched.begin(), touched.end(), p) == touched.end()) touched.push_back(p);
  }
  Result<void> committed;
  for (Part* p : touched) {
    if (auto c = commit(*p); !c.ok() && committed.ok()) committed = c.error();
  }
  changed_.notify_all();  // acks free ordering keys; nacks may make messages deliverable
  return committed;
}

Result<size_t> NatsSubscription::ack(std::span<const std::string> ack_ids) {
  size_t acked = 0;
  BACKBONE_TRY(
      for_each(ack_ids, [&](Part& p, uint64_t off, uint64_t gen, delivery::StateSink& sink) {
        if (p.state->ack(off, gen, p.index, sink, clock_.now())) ++acked;
      }));
  return acked;
}

Result<void> NatsSubscription::nack(std::span<const std::string> ack_ids,
                                    std::optional<int64_t> delay_us, const std::string& reason) {
  return for_each(ack_ids, [&](Part& p, uint64_t off, uint64_t gen, delivery::StateSink& sink) {
    p.state->nack(off, gen, delay_us, reason, clock_.now(), p.index, sink);
  });
}

Result<void> NatsSubscription::modify_ack_deadline(std::span<const std::string> ack_ids,
                                                   int64_t deadline_us) {
  return for_each(ack_ids, [&](Part& p, uint64_t off, uint64_t gen, delivery::StateSink& sink) {
    p.state->modify_deadline(off, gen, deadline_us, clock_.now(), p.index, sink);
  });
}

Result<void> NatsSubscription::dead_letter(const std::string& ack_id, const std::string& reason) {
  return for_each(std::span(&ack_id, 1),
                  [&](Part& p, uint64_t off, uint64_t gen, delivery::StateSink& sink) {
                    p.state->dead_letter(off, gen, reason, clock_.now(), p.index, sink);
                  });
}

Result<SubscriptionStats> NatsSubscription::stats() {
  auto ts = client_.stream_state(topic_stream_);
  if (!ts.ok()) return ts.error();
  // Reads the topic only when no pull is reading it (what is read so far counts otherwise), and
  // lets mu_ go while it waits.
  std::unique_lock rl(reader_mu_, std::try_to_lock);
  std::unique_lock lk(mu_);
  if (detached_) return SubscriptionStats::zero();
  apply_serve();
  const bool all = buckets_ == 0 || !served_ || served_->size() >= buckets_;  // (valid buckets)
  if (rl.owns_lock()) {
    notice_others();
    BACKBONE_TRY(ensure_loaded());
    if (all) {
      BACKBONE_TRY(fill(1, &lk));
    } else {
      // This process's part: what its buckets hold must have been read to be counted.
      BACKBONE_TRY(read_topic(std::min<uint64_t>(ts->last_seq + 1, reader_next_ + 65536), &lk));
    }
    if (detached_) return SubscriptionStats::zero();
    apply_serve();
  }
  SubscriptionStats sum = SubscriptionStats::zero();
  for (Part* p : served_parts()) {
    if (!p->loaded) continue;
    Sink sink(*this, *p);
    (void)p->state->take(0, clock_.now(), p->index, sink);  // expires deadlines
    BACKBONE_TRY(commit(*p));
    const SubscriptionStats s = p->state->stats(clock_.now(), p->index);
    *sum.undelivered += *s.undelivered;
    *sum.in_flight += *s.in_flight;
    *sum.dead_lettered += *s.dead_lettered;
    sum.oldest_unacked_age_us = std::max(*sum.oldest_unacked_age_us, *s.oldest_unacked_age_us);
  }
  if (!all) {
    SubscriptionStats part;
    part.client = SubscriptionStats::Client{*sum.in_flight, *sum.undelivered, *sum.dead_lettered};
    return part;
  }
  if (ts->last_seq + 1 > reader_next_) *sum.undelivered += ts->last_seq + 1 - reader_next_;
  return sum;
}

}  // namespace backbone::nats
