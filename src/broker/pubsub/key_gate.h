// KeyGate: the port's per-key rule (one message of an ordering key out at a time, the next only
// after it is acked or dead-lettered) on top of a server that hands out several messages of one
// key at once and, after a nack, brings back the key's later messages too: Google Cloud
// Pub/Sub. The pubsub:// backend keeps one KeyGate per ordered subscription (doc/broker.md).
//
//  - A key's messages arrive from the server in order. The first is handed out; the rest are
//    held here, and the backend keeps their server leases alive (upkeep()), so that the server
//    neither redelivers them nor counts attempts against them.
//  - Failed attempts are counted here, not by the server: a nack or an expired deadline of a
//    handed-out message is never sent to the server (which would redeliver the whole key). The
//    message waits out its backoff (the nack's delay, else the retry policy's), and its key
//    waits with it. The attempt that reaches the dead-letter policy's maximum and fails is
//    returned to be dead-lettered, and the key moves on once dead_lettered() says it was.
//  - Redeliveries are recognised by message id: of a message held or out, its new server ack
//    id is kept; of one acked or dead-lettered (kept for kRememberSettled messages), it is to be
//    acked again at once.
//  - Every hand-out gets an ack id of its own, so a stale ack (of a delivery whose deadline
//    passed) is told apart from a current one and ignored, as the port says.
//  - A message's first attempt number is the server's delivery attempt (Pub/Sub counts only
//    expired leases once the gate holds a message: a crash, or a process that stalled).
//
// Time is what the caller passes (the backend's injected Clock). Pure logic: no I/O.
//
// Thread-safety: not thread-safe; the backend guards each gate with its mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backbone/broker.h"

namespace backbone::pubsub {

class KeyGate {
 public:
  struct Policy {
    int64_t ack_deadline_us = 10 * kSecond;  // the port's deadline of a handed-out message
    std::optional<RetryPolicy> retry;
    int max_attempts = 0;  // the dead-letter policy's; 0: no dead-letter policy
    // The server lease that upkeep() keeps up: extended to this once less than half is left.
    int64_t lease_us = 10 * kSecond;
    size_t max_held = 20'000;  // full() beyond this: the backend stops pulling from the server
  };
  static constexpr size_t kRememberSettled = 100'000;

  explicit KeyGate(Policy policy);
  // New policies (an update of the subscription): they apply from the next hand-out or failure.
  void set_policy(Policy policy) { policy_ = policy; }

  // A message to dead-letter: the failed delivery, why, and every server ack id it had.
  struct Doomed {
    ReceivedMessage delivery;  // its ack_id is the gate's; delivery_attempt the one that failed
    std::string reason;
    std::vector<std::string> server_ack_ids;
  };

  // Messages pulled from the server (their ack ids are the server's). Those with an ordering key
  // are taken in; the others are returned in `pass` to be handed out as they are. Server ack
  // ids of redeliveries of settled messages are returned in `ack_now`.
  void admit(std::vector<ReceivedMessage> got, int64_t now, std::vector<ReceivedMessage>& pass,
             std::vector<std::string>& ack_now);

  // Up to `max` messages whose turn has come (their key has nothing out, their backoff is over),
  // handed out with ack ids of the gate's.
  std::vector<ReceivedMessage> take(size_t max, int64_t now);

  // Whether `ack_id` is one the gate handed out (current or not).
  bool owns(const std::string& ack_id) const;

  // Ack of a handed-out delivery: the server ack ids to acknowledge, and the key moves on.
  // nullopt when the delivery is no longer current (stale: ignored) or unknown.
  std::optional<std::vector<std::string>> ack(const std::string& ack_id);

  // A failed attempt of a handed-out delivery (nack; a deadline of 0): after `delay_us` if
  // given, else the retry policy's backoff. Returns the message when that was its last attempt.
  std::optional<Doomed> fail(const std::string& ack_id, std::optional<int64_t> delay_us,
                             std::string_view reason, int64_t now);

  // Moves the deadline of a current handed-out delivery to now + deadline_us (> 0).
  bool extend(const std::string& ack_id, int64_t deadline_us, int64_t now);

  // dead_letter(): the current delivery `ack_id`, whatever its attempt.
  std::optional<Doomed> doom(const std::string& ack_id, std::string_view reason);

  // After the backend published a doomed message to the dead-letter topic and acked it: the key
  // moves on. If that failed, retry_doomed() makes it wait the retry policy's backoff and fail
  // its last attempt again.
  void dead_lettered(const std::string& message_id);
  void retry_doomed(const std::string& message_id, int64_t now);

  // Time passing: deadlines that passed are failed attempts (the doomed are returned); leases
  // with less than half left are to be extended (`extend`: server ack ids, each to lease_us).
  struct Upkeep {
    std::vector<Doomed> doomed;
    std::vector<std::string> extend;
  };
  Upkeep upkeep(int64_t now);

  // When the next backoff ends (for a pull that waits); nullopt if none is pending.
  std::optional<int64_t> next_due() const;

  struct Counts {
    uint64_t out = 0;   // handed out, not yet settled
    uint64_t held = 0;  // waiting behind their key or for their backoff (or being dead-lettered)
  };
  Counts counts() const;
  bool full() const;

 private:
  enum class State { kHeld, kOut, kDoomed };
  struct Entry {
    ReceivedMessage delivery;                 // the message; ack_id: the gate's ack id while out
    std::vector<std::string> server_ack_ids;  // the newest last
    int attempt = 1;                          // of the next (or current) hand-out
    State state = State::kHeld;
    int64_t not_before = 0;   // kHeld: its backoff ends
    int64_t deadline = 0;     // kOut: the port's deadline
    int64_t lease_until = 0;  // the server lease, as far as the gate knows
  };
  struct Key {
    std::deque<std::shared_ptr<Entry>> queue;  // in order; front: the one whose turn it is
  };
  using Due = std::set<std::pair<int64_t, std::string>>;  // (not_before, key) of held fronts

  std::optional<Doomed> fail_entry(Entry& e, std::optional<int64_t> delay_us,
                                   std::string_view reason, int64_t now);
  Doomed doom_entry(Entry& e, std::string_view reason);
  // Holds the front of `key` until `not_before` (it becomes due then).
  void hold_front(const std::string& key, Entry& e, int64_t not_before);
  // Takes a settled message out; its key's next message becomes due. The id is taken by
  // value: callers pass the entry's own id, and the entry is freed here.
  void settle(std::string message_id);
  Entry* current(const std::string& ack_id);

  Policy policy_;
  uint64_t next_ack_ = 1;
  std::map<std::string, Key> keys_;
  Due due_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> by_id_;  // message id -> entry
  std::unordered_map<std::string, std::string> out_;  // the gate's ack id -> message id
  std::unordered_set<std::string> settled_;           // message ids acked or dead-lettered
  std::list<std::string> settled_order_;              // oldest first
};

}  // namespace backbone::pubsub
