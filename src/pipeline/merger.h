// Merger: the merge stage and the retry stage of one environment (SPEC §5). Each takes a
// delivery from its subscription and answers with the decision for the broker:
//
//  raw (events.raw.E.merge)
//    merged / rebased / resolved   publish to merged, commit, ack; then apply the record's
//                                  parked events that now fit, at once
//    conflict under `reject`       dead letter at once (not retriable): publish to dlq, commit
//                                  `conflict` + `dead_lettered`, ack
//    gap                           park: audit `retry_scheduled`, publish to error, ack (the
//                                  record is not blocked)
//    transient failure             first time: publish to error; nack with the retry backoff,
//                                  so the record's later events wait behind it
//    poison                        dead letter at once
//  error (events.error.E.retry)
//    done meanwhile                ack
//    merged now                    ack
//    still a gap, or transient     audit `retry_scheduled`, nack (the broker backs off); on the
//                                  last attempt, dead letter
//
// Messages for events already merged (duplicates after a crash, the relay's re-publishes) are
// acked without effect. A merged publish precedes its commit, so a crash between the two
// repeats the publish (at least once; consumers see the same event_id and version again).
//
// Thread-safety: thread-safe (the broker serializes each record's messages).
#pragma once

#include <optional>
#include <string>

#include "backbone/event_store.h"
#include "backbone/streaming_consumer.h"
#include "backbone/topology.h"
#include "pipeline/merge_rules.h"

namespace backbone::pipeline {

struct MergerDeps {
  EventStore* store = nullptr;  // as merge_worker
  Broker* broker = nullptr;
  EnvPublisher* publisher = nullptr;
  const Clock* clock = nullptr;
  MergeSettings settings;
  std::string retry_subscription;           // events.error.E.retry
  std::optional<RetryPolicy> retry_policy;  // the retry subscription's
  int max_attempts = 5;                     // the retry subscription's dead-letter attempts
};

class Merger {
 public:
  explicit Merger(MergerDeps deps) : d_(std::move(deps)) {}

  ConsumerDecision on_raw(const ReceivedMessage& m);
  ConsumerDecision on_retry(const ReceivedMessage& m);

  // Merges the record's parked events that fit its version now. Returns how many merged.
  Result<size_t> apply_parked(const RecordKey& record);

 private:
  enum class Stage { kRaw, kRetry };
  struct Outcome {
    enum class Kind { kDone, kGap, kTransient, kDeadLettered } kind = Kind::kDone;
    std::string reason;
    std::optional<Event> event;
  };
  // Tries to merge the event; never throws away a transient failure.
  Outcome process(const EventId& id, Stage stage, const ReceivedMessage* delivery);
  Result<bool> needs_merge(const StoredEvent& e);
  Result<FieldOrigin> origin_of(const RecordKey& record, uint64_t version);
  // Dead-letters `event` from `stage` with `reason`: the dlq message (raw stage) and the commit.
  Result<void> dead_letter(const Event& event, Stage stage, const std::string& reason,
                           std::vector<AuditDraft> audit_before, bool replay);
  std::string failure_history(const Event& event, const std::string& last_reason);
  void audit_retry(const Event& event, const std::string& failure, const std::string& reason,
                   int attempt);

  MergerDeps d_;
};

}  // namespace backbone::pipeline
