// NatsSubscription: one subscription of the NATS backend, as served by this process.
//
// The delivery rules are the embedded broker's, in one place: a delivery::SubscriptionState on
// the injected Clock decides what is delivered, when deadlines expire, when a retry is due, and
// when a message is dead-lettered; JetStream keeps what must outlive the process:
//
//  - the topic's messages are read, in stream order, by one ordered consumer (ephemeral,
//    unacknowledged); bodies stay in memory only while unacked;
//  - every decision (delivery attempt, ack, dead-letter) is a journal record
//    (delivery/journal_record.h), appended to the subscription's journal before the call that
//    made it returns; each append expects the journal's last sequence to be the one this
//    process wrote last, so a second process that takes the journal over fences this one off
//    (its next append fails and it reloads);
//  - a checkpoint writes the whole state as one journal message and purges what lies below it.
//
// A subscription of a split topic (doc/scale_out.md) has a part per bucket, each with its own
// SubscriptionState and its own journal (a subject of the journal stream, fenced by that
// subject's last sequence), so that each bucket can be served by another process. serve() says
// which buckets are served here (every one until it is called); a process that starts serving a
// bucket appends a claim to its journal before it delivers anything, which fences off whoever
// served it before. The one topic reader feeds every part served here.
//
// Offsets: each part numbers the messages it reads densely (SubscriptionState's offsets), and
// its journal records carry stream sequences, translated when they are written and back when
// they are replayed.
//
// On first use of a part (and after a fenced-off or failed append) its journal is replayed and
// its unacked messages are read back from the topic, as the embedded broker does on restart.
//
// Thread-safety: thread-safe. reader_mu_ serialises reading the topic and is taken before mu_;
// serve() takes neither (it may be called on a lease keeper's tick, which must not wait). No
// network wait for the stream happens under mu_ (a reader lets it go while it waits), and
// stats() reads the topic only when no pull is reading it: a stats call (every /metrics) used
// to hold both locks across a reader's catch-up wait of up to 5 s, and the stages' pulls and
// acks queued behind it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "backbone/broker.h"
#include "broker/delivery/stored_message.h"
#include "broker/delivery/subscription_state.h"
#include "broker/nats/nats_client.h"

namespace backbone::nats {

// What the catalog keeps of a subscription besides its config.
struct SubscriptionEntry {
  SubscriptionConfig config;
  uint64_t start = 1;  // the topic stream's first sequence that the subscription sees
  std::string uid;     // names this incarnation of the subscription (ack ids, dead-letter ids)
  // False while its creator makes its journal: the entry claims the name first, so that two
  // processes creating one subscription at once cannot both make (and one delete) a journal.
  bool ready = true;
  int64_t claimed_at_ms = 0;  // when a creator claimed it (while not ready)
};

class NatsSubscription {
 public:
  // The subject that a message with this ordering key and id goes to on `topic` (its bucket's,
  // when the topic is split).
  using Router = std::function<Result<std::string>(
      const std::string& topic, const std::string& ordering_key, const std::string& message_id)>;

  // `buckets`: the topic's bucket count, 0 when it is not split.
  NatsSubscription(NatsClient& client, std::string ns, SubscriptionEntry entry, uint32_t buckets,
                   Router route, const Clock& clock);
  ~NatsSubscription();

  // Creates the journal of a new subscription (each part's first record: everything below
  // `start` is acked).
  static Result<void> create_journal(NatsClient& client, const std::string& ns,
                                     const SubscriptionEntry& entry, uint32_t buckets);

  Result<std::vector<ReceivedMessage>> pull(size_t max, int64_t wait_us);
  Result<size_t> ack(std::span<const std::string> ack_ids);
  Result<void> nack(std::span<const std::string> ack_ids, std::optional<int64_t> delay_us,
                    const std::string& reason);
  Result<void> modify_ack_deadline(std::span<const std::string> ack_ids, int64_t deadline_us);
  Result<void> dead_letter(const std::string& ack_id, const std::string& reason);
  // The subscription's figures when every bucket is served here; otherwise this process's part
  // of them, as SubscriptionStats::client.
  Result<SubscriptionStats> stats();

  SubscriptionConfig config() const;
  void set_config(SubscriptionConfig config);
  // The topic was deleted: nothing more is delivered.
  void detach();
  uint32_t buckets() const { return buckets_; }
  // Serves only these buckets here (a split subscription), each at the epoch of this process's
  // lease; nullopt: all of them, with no claims. The parts no longer served, or served at
  // another epoch now, are dropped with their deliveries (their ack ids go stale).
  void serve(std::optional<std::map<uint32_t, uint64_t>> buckets);
  // Drops what is held here, so that the next call replays the journals: after this process
  // reset them (a seek). A reset by another process is noticed by the next call after a
  // second of real time, when the journal's last sequence is not the one written here.
  void reload();

 private:
  class Sink;
  struct Body {
    std::string id;
    delivery::StoredMessage message;
  };
  struct Forward {
    uint64_t offset;
    int attempt;
    std::string reason;
  };
  // One bucket's delivery state (the only one of a subscription that is not split).
  struct Part {
    uint32_t bucket = 0;
    uint64_t epoch = 0;  // of this process's lease, when served_ is set
    std::string journal_subject;
    std::string owner;    // of its ack ids
    bool active = false;  // indexes what the reader reads (loading or loaded)
    bool loaded = false;
    bool fenced = false;  // its journal names a later epoch: not served here
    std::unique_ptr<delivery::SubscriptionState> state;
    delivery::TopicIndex index;  // by local offset
    std::deque<uint64_t> seqs;   // the stream sequence of each index entry
    uint64_t next_seq = 0;       // each of the part's messages below it is indexed, or acked
    std::unordered_map<uint64_t, Body> bodies;  // by local offset: unacked, read
    uint64_t journal_last = 0;
    uint64_t records_since_checkpoint = 0;
    std::vector<std::string> pending_records;  // framed, in chunks
    std::vector<Forward> pending_forwards;
  };
  using Op = std::function<void(Part& part, uint64_t offset, uint64_t generation,
                                delivery::StateSink& sink)>;

  // Takes up what serve() said last. REQUIRES: mu_ held.
  void apply_serve();
  // Unloads the parts whose journal another process wrote to since this one did (a seek, a
  // takeover), looking at most once every kLookForOthers. REQUIRES: mu_ held.
  void notice_others();
  // REQUIRES: reader_mu_ and mu_ held. Loads the served parts that are not loaded; fails only
  // when none is loaded.
  Result<void> ensure_loaded();
  Result<void> load(const std::vector<Part*>& parts);
  void unload(Part& p);
  void unload_all();
  std::vector<Part*> served_parts();  // creating them as needed
  Part* find_part(const std::string& owner);
  // The stream sequence of a part's local offset (of its next message, at the index's end).
  uint64_t seq_of(const Part& p, uint64_t offset) const;
  // Reads the topic until the reader is at `until_seq` (reader_mu_ held). With `state`, the
  // held lock of mu_, it lets mu_ go while it waits for the stream, so that acks and deadline
  // changes never wait behind a read (the caller then holds no Part pointer across the call).
  Result<void> read_topic(uint64_t until_seq, std::unique_lock<std::mutex>* state = nullptr);
  // Reads ahead until the served parts hold `want` messages not yet delivered, or the stream
  // has no more (reader_mu_ held; `state` as for read_topic).
  Result<void> fill(size_t want, std::unique_lock<std::mutex>* state);
  uint64_t undelivered_read() const;
  // Hands what the reader read to the parts; re-creates the reader if it skipped messages that
  // the stream still holds (reader_mu_ held).
  Result<void> dispatch(std::vector<FetchedMessage> fetched);
  Result<void> restart_reader(uint64_t from);  // (reader_mu_ held)
  Result<void> commit(Part& p);  // forwards dead letters, then appends the journal records
  Result<void> for_each(std::span<const std::string> ack_ids, const Op& op);
  std::string ack_id(const Part& p, uint64_t offset, uint64_t generation) const;

  NatsClient& client_;
  const std::string ns_;
  const Clock& clock_;
  const uint32_t buckets_;
  const Router route_;
  const std::string journal_stream_, journal_subject_, topic_stream_, topic_subject_;
  const std::string uid_;
  const uint64_t start_;

  std::timed_mutex reader_mu_;
  std::unique_ptr<StreamReader> reader_;  // GUARDED_BY(reader_mu_)

  mutable std::mutex mu_;
  std::condition_variable changed_;  // with mu_: an ack, nack or deadline change was applied
  SubscriptionConfig config_;        // GUARDED_BY(mu_)
  bool detached_ = false;            // GUARDED_BY(mu_)
  uint64_t reader_next_ = 0;         // GUARDED_BY(mu_): the sequence the reader delivers next
  std::optional<std::map<uint32_t, uint64_t>> served_;       // GUARDED_BY(mu_); nullopt: all
  std::map<uint32_t, std::unique_ptr<Part>> parts_;          // GUARDED_BY(mu_)
  std::mutex serve_mu_;                                      // taken after mu_, or alone
  std::optional<std::map<uint32_t, uint64_t>> next_served_;  // GUARDED_BY(serve_mu_)
  std::atomic<bool> serve_pending_{false};  // serve() was called since the last apply_serve()
  std::chrono::steady_clock::time_point next_look_{};  // GUARDED_BY(mu_)
  uint64_t journal_seen_ = 0;  // GUARDED_BY(mu_): the journal stream's last sequence then
};

}  // namespace backbone::nats
