// NatsSubscription: one subscription of the NATS backend, as served by this process.
//
// The delivery rules are the embedded broker's, in one place: a delivery::SubscriptionState on
// the injected Clock decides what is delivered, when deadlines expire, when a retry is due, and
// when a message is dead-lettered; JetStream keeps what must outlive the process:
//
//  - the topic's messages are read, in stream order, by an ordered consumer (ephemeral,
//    unacknowledged; stream sequence = offset); bodies stay in memory only while unacked;
//  - every decision (delivery attempt, ack, dead-letter) is a journal record
//    (delivery/journal_record.h), appended to the subscription's own journal stream before the
//    call that made it returns; each append expects the journal's last sequence to be the one
//    this process wrote last, so a second process that takes the subscription over fences this
//    one off (its next append fails and it reloads);
//  - a checkpoint writes the whole state as one journal message and purges what lies below it.
//
// On first use (and after a fenced-off or failed append) the journal is replayed and the
// unacked messages are read back from the topic, as the embedded broker does on restart.
//
// Thread-safety: thread-safe. reader_mu_ serialises reading the topic and is taken before mu_.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
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
};

class NatsSubscription {
 public:
  NatsSubscription(NatsClient& client, std::string ns, SubscriptionEntry entry, const Clock& clock);
  ~NatsSubscription();

  // Creates the journal of a new subscription (its first record: everything below `start` is
  // acked).
  static Result<void> create_journal(NatsClient& client, const std::string& ns,
                                     const SubscriptionEntry& entry);

  Result<std::vector<ReceivedMessage>> pull(size_t max, int64_t wait_us);
  Result<size_t> ack(std::span<const std::string> ack_ids);
  Result<void> nack(std::span<const std::string> ack_ids, std::optional<int64_t> delay_us,
                    const std::string& reason);
  Result<void> modify_ack_deadline(std::span<const std::string> ack_ids, int64_t deadline_us);
  Result<void> dead_letter(const std::string& ack_id, const std::string& reason);
  Result<SubscriptionStats> stats();

  SubscriptionConfig config() const;
  void set_config(SubscriptionConfig config);
  // The topic was deleted: nothing more is delivered.
  void detach();

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
  using Op = std::function<void(delivery::SubscriptionState&, uint64_t offset, uint64_t generation,
                                delivery::StateSink& sink)>;

  // REQUIRES: mu_ held.
  Result<void> ensure_loaded();
  Result<void> load();
  void unload();
  Result<void> read_topic(uint64_t until_seq);  // reads [index end, until_seq) (reader_mu_ held)
  Result<void> fill(size_t want);               // reads ahead without waiting (reader_mu_ held)
  // Indexes what the reader read; re-creates the reader if it skipped messages that the stream
  // still holds (reader_mu_ held).
  Result<void> append(std::vector<FetchedMessage> fetched);
  // A new reader from the index's end (reader_mu_ held).
  Result<void> restart_reader();
  Result<void> commit();  // forwards dead letters, then appends the journal records
  Result<void> for_each(std::span<const std::string> ack_ids, const Op& op);
  std::string ack_id(uint64_t offset, uint64_t generation) const;

  NatsClient& client_;
  const std::string ns_;
  const Clock& clock_;
  const std::string journal_stream_, journal_subject_, topic_stream_, topic_subject_;
  const std::string uid_;
  const uint64_t start_;

  std::timed_mutex reader_mu_;
  std::unique_ptr<StreamReader> reader_;  // GUARDED_BY(reader_mu_)

  mutable std::mutex mu_;
  std::condition_variable changed_;  // with mu_: an ack, nack or deadline change was applied
  SubscriptionConfig config_;        // GUARDED_BY(mu_)
  bool detached_ = false;            // GUARDED_BY(mu_)
  bool loaded_ = false;              // GUARDED_BY(mu_)
  std::unique_ptr<delivery::SubscriptionState> state_;  // GUARDED_BY(mu_)
  delivery::TopicIndex index_;                          // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, Body> bodies_;           // GUARDED_BY(mu_): unacked, read
  uint64_t journal_last_ = 0;                           // GUARDED_BY(mu_)
  uint64_t records_since_checkpoint_ = 0;               // GUARDED_BY(mu_)
  std::vector<std::string> pending_records_;            // GUARDED_BY(mu_): framed, in chunks
  std::vector<Forward> pending_forwards_;               // GUARDED_BY(mu_)
  uint64_t forwarded_ = 0;                              // GUARDED_BY(mu_): for dead-letter ids
};

}  // namespace backbone::nats
