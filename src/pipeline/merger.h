// Merger: the merge stage and the retry stage of one environment (SPEC §5). Each takes a
// delivery from its subscription and answers with the decision for the broker:
//
//  raw (events.raw.E.merge)
//    merged / rebased / resolved   commit, publish to merged, ack; then apply the record's
//                                  parked events that now fit, at once
//    conflict under `reject`       dead letter at once (not retriable): commit `conflict` and
//                                  `dead_lettered`, publish to dlq, ack
//    gap                           park: audit `retry_scheduled`, publish to error, ack (the
//                                  record is not blocked)
//    transient failure             first time: publish to error; nack with the retry backoff,
//                                  so the record's later events wait behind it
//    poison                        dead letter at once
//  error (events.error.E.retry)
//    done meanwhile                ack
//    merged now                    ack
//    still a gap, or transient     audit `retry_scheduled`, nack (the broker backs off); on the
//                                  last attempt, commit `dead_lettered` and dead letter
//
// The commit (record, processed, audit: one transaction) comes before the publish of its
// outcome (merged or dlq). A crash between the two leaves the event processed and its outcome
// unpublished. So before a record's next version is published, the Merger makes sure the
// current version's merged message went out (publishing it again from the audit entry when it
// cannot know), and a redelivered dead letter is forwarded again. Every outcome is published at
// least once, per record in version order; repeats happen only around restarts (consumers see
// the same event_id and version again).
//
// Thread-safety: thread-safe. The work on one record is serialized (record_lock), so the
// raw and retry stages may run on many threads.
#pragma once

#include <array>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "backbone/event_store.h"
#include "backbone/metrics.h"
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
  Metrics* metrics = nullptr;               // may be null
  std::string env;
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
    bool emit = true;  // for kDeadLettered: this Merger has not published it yet
  };
  // The events whose outcome this Merger published (bounded; oldest forgotten first).
  class PublishedSet {
   public:
    bool contains(const EventId& id);
    void add(const EventId& id);

   private:
    std::mutex mu_;
    std::unordered_set<std::string> ids_;
    std::deque<std::string> order_;
  };
  // Tries to merge the event; never throws away a transient failure.
  Outcome process(const EventId& id, Stage stage, const ReceivedMessage* delivery);
  // The event's latest terminal audit entry (merged, rebased, conflict, dead_lettered or
  // replayed), if any.
  Result<std::optional<AuditEntry>> terminal_entry(const EventId& id);
  // Publishes the outcome of an event merged or dead-lettered earlier, unless this Merger did.
  Outcome reemit(const Event& ev, const AuditEntry& terminal, Stage stage);
  Result<FieldOrigin> origin_of(const RecordKey& record, uint64_t version);
  // The event that made `version` of the record and its audit detail, from the audit log.
  struct VersionMerge {
    Event event;
    std::string detail;
  };
  Result<std::optional<VersionMerge>> merge_of_version(const RecordKey& record, uint64_t version);
  // Dead-letters `event` from `stage` with `reason`: the commit, then (raw stage) the dlq
  // message. The retry stage leaves the forward to the broker.
  Result<void> dead_letter(const Event& event, Stage stage, const std::string& reason,
                           std::vector<AuditDraft> audit_before, bool replay,
                           uint64_t record_version);
  Result<void> publish_dlq(const Event& event, const std::string& reason,
                           const std::string& history);
  std::string failure_history(const Event& event, const std::string& last_reason);
  void count(const char* name, const char* help, Labels labels = {});
  void audit_retry(const Event& event, const std::string& failure, const std::string& reason,
                   int attempt);

  // Serializes the work on one record within this Merger: the raw stage, the retry stage and
  // the parked events of a record never run at once, so its commits and their merged
  // publishes keep the same order.
  std::mutex& record_lock(const std::string& ordering_key);
  // Records that have (or may have) parked events.
  void note_parked(const RecordKey& record, bool parked);
  // Publishes the merged message of the record's current version unless this Merger knows it
  // went out. REQUIRES: the record's lock.
  Result<void> ensure_current_published(const RecordKey& record);

  MergerDeps d_;
  PublishedSet published_;
  std::array<std::mutex, 64> record_locks_;
  std::mutex parked_mu_;
  std::unordered_set<std::string> parked_records_;  // GUARDED_BY(parked_mu_)
  // Per record, the highest version whose merged message this Merger published or checked.
  std::unordered_map<std::string, uint64_t> published_version_;  // GUARDED_BY(parked_mu_)
};

}  // namespace backbone::pipeline
