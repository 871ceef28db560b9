// SubscriptionState: the delivery state machine of one subscription, free of I/O and locks, so
// that every rule of SPEC §4 is in one place and can be tested on its own:
//
//  - fresh messages are taken from a cursor over the topic; the acked ones below the cursor are
//    a bit each, and only delivered-but-unacked messages carry state (`Touched`);
//  - a delivery is in flight until its deadline; a nack or an expired deadline makes it wait for
//    its backoff, or dead-letters it when the attempts are spent;
//  - on an ordered subscription each ordering key has a line: its messages not yet settled, in
//    order, of which a prefix is out. KeyDelivery::kOneAtATime lets one out at a time (the next
//    follows an ack or a dead-letter); kStreamed lets the whole line out in order, and a failed
//    delivery withdraws the key's later ones out so that they come again after it. Keys never
//    block each other, and a dead-letter frees its key like an ack;
//  - unacked messages older than the retention are dropped.
//
// Everything it decides that must be kept (attempts, acks) it reports to a StateSink, in order;
// the broker turns that into journal records and dead-letter publishes.
//
// Thread-safety: none; the broker's mutex guards it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "backbone/broker.h"
#include "broker/delivery/topic_index.h"

namespace backbone::delivery {

class StateSink {
 public:
  virtual ~StateSink() = default;
  // A delivery (attempt number `attempt`), or a failed attempt that waits until `available_at`.
  virtual void on_attempt(uint64_t offset, int attempt, Timestamp available_at,
                          const std::string& reason) = 0;
  // Acked, or dropped by retention: it never comes back.
  virtual void on_acked(uint64_t offset) = 0;
  // Spent its attempts or was dead-lettered at once: the broker forwards it, then it is acked.
  virtual void on_dead_letter(uint64_t offset, int attempt, const std::string& reason) = 0;
};

struct Delivery {
  uint64_t offset;
  int attempt;
  uint64_t generation;  // with the offset, names this delivery (the ack id)
};

// What a journal replay knows of a subscription (see restore()).
struct RestoredState {
  uint64_t lwm = 0;             // every offset below is acked
  std::vector<uint64_t> acked;  // acked offsets at or above lwm
  struct Attempt {
    int attempts = 0;
    Timestamp available_at;
    std::string reason;
  };
  std::unordered_map<uint64_t, Attempt> attempts;  // unacked offsets that were delivered
};

class SubscriptionState {
 public:
  // A new subscription that starts at `start` (the topic's end when it was created).
  SubscriptionState(SubscriptionConfig config, uint64_t start, uint64_t first_generation);

  // Rebuilds the state after a restart: messages that were in flight wait no longer than their
  // recorded availability; ordered keys get their first unacked message as head.
  void restore(const RestoredState& restored, const TopicIndex& topic, Timestamp now);

  const SubscriptionConfig& config() const { return config_; }
  void set_config(SubscriptionConfig config) { config_ = std::move(config); }

  // Expires deadlines and retention, then picks up to `max` deliveries.
  std::vector<Delivery> take(size_t max, Timestamp now, const TopicIndex& topic, StateSink& sink);
  // Whether take() at `now` could return something (cheap; for waiting pullers).
  bool has_deliverable(Timestamp now, const TopicIndex& topic) const;

  // Each returns false when (offset, generation) is not a current delivery.
  bool ack(uint64_t offset, uint64_t generation, const TopicIndex& topic, StateSink& sink,
           Timestamp now);
  bool nack(uint64_t offset, uint64_t generation, std::optional<int64_t> delay_us,
            const std::string& reason, Timestamp now, const TopicIndex& topic, StateSink& sink);
  bool modify_deadline(uint64_t offset, uint64_t generation, int64_t deadline_us, Timestamp now,
                       const TopicIndex& topic, StateSink& sink);
  bool dead_letter(uint64_t offset, uint64_t generation, const std::string& reason, Timestamp now,
                   const TopicIndex& topic, StateSink& sink);

  SubscriptionStats stats(Timestamp now, const TopicIndex& topic);

  // Every offset below this is acked.
  uint64_t low_water_mark() const { return lwm_; }
  uint64_t cursor() const { return cursor_; }
  // For checkpoints: the acked offsets in [lwm, cursor) and the delivered-but-unacked ones.
  std::vector<uint64_t> acked_above_lwm() const;
  RestoredState snapshot() const;
  uint64_t dead_lettered() const { return dead_lettered_; }
  void set_dead_lettered(uint64_t n) { dead_lettered_ = n; }
  // Drops everything (the topic was deleted).
  void detach(uint64_t topic_end);
  // A seek: the acknowledgement state becomes `to` (every offset below to.lwm acked, and those
  // of to.acked; every other one not, from to.lwm on, which must be at or above topic.begin()).
  // Every delivery and attempt count is dropped, so ack ids out go stale; keys start afresh.
  void reset(const RestoredState& to, const TopicIndex& topic, Timestamp now);

 private:
  // kWaiting: scheduled in waiting_; kQueued: behind its key, not scheduled (a queued message has
  // a Touched only when it has a history: attempts, or a backoff to honour).
  enum class Phase : uint8_t { kInFlight, kWaiting, kQueued };
  struct Touched {
    int attempts = 0;
    Phase phase = Phase::kWaiting;
    Timestamp when;  // the deadline (in flight) or the earliest redelivery (waiting, queued)
    uint64_t generation = 0;
    uint64_t key_hash = 0;
    std::string last_error;
  };
  struct Timed {
    Timestamp when;
    uint64_t offset;
    uint64_t generation;
    bool operator>(const Timed& o) const {
      return when != o.when ? when > o.when : offset > o.offset;
    }
  };
  using MinHeap = std::priority_queue<Timed, std::vector<Timed>, std::greater<Timed>>;

  // One ordering key's messages taken from the cursor and not settled, in order; offsets[0, out)
  // are in flight, and offsets[out] is scheduled (kWaiting) whenever the window lets it out.
  struct KeyLine {
    std::deque<uint64_t> offsets;
    size_t out = 0;
  };

  bool ordered_key(uint64_t key_hash) const { return config_.ordered && key_hash != 0; }
  size_t key_window() const;
  // Schedules the key's next message when its window has room (and drops an empty line).
  void line_up(uint64_t key_hash, Timestamp now);
  // A delivery of the key at `offset` failed: the key's later messages out are withdrawn (their
  // deliveries go stale) and the one scheduled is unscheduled, so that all follow it again.
  void withdraw_after(uint64_t key_hash, uint64_t offset, Timestamp now);
  void expire_deadlines(Timestamp now, const TopicIndex& topic, StateSink& sink);
  // Marks `offset` acked, frees its key, and moves the low-water mark on.
  void settle(uint64_t offset, uint64_t key_hash, Timestamp now);
  void deliver(uint64_t offset, uint64_t key_hash, Timestamp now, std::vector<Delivery>& out,
               StateSink& sink);
  void fail(uint64_t offset, Touched& t, std::optional<int64_t> delay_us, const std::string& reason,
            Timestamp now, StateSink& sink);
  void to_dead_letter(uint64_t offset, const std::string& reason, Timestamp now, StateSink& sink);
  bool retention_expired(uint64_t offset, const TopicIndex& topic, Timestamp now) const;
  Touched* current(uint64_t offset, uint64_t generation);

  SubscriptionConfig config_;
  uint64_t lwm_;
  uint64_t cursor_;
  std::deque<uint8_t> acked_;  // for offsets [lwm_, cursor_): 1 when acked
  std::unordered_map<uint64_t, Touched> touched_;
  std::unordered_map<uint64_t, KeyLine> keys_;  // ordered: by key hash
  MinHeap waiting_;                             // kWaiting entries, by earliest redelivery
  MinHeap deadlines_;                           // kInFlight entries, by deadline
  uint64_t next_generation_;
  uint64_t in_flight_ = 0;
  uint64_t waiting_count_ = 0;
  uint64_t blocked_count_ = 0;  // queued behind their keys
  uint64_t dead_lettered_ = 0;
};

}  // namespace backbone::delivery
