// Merger: the merge stage and the retry stage of one environment (SPEC §5). Each takes the
// deliveries of one pull from its subscription and answers, per delivery, with the decision for
// the broker:
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
// A pull is worked as a batch: every delivery is read and decided, the commits go to the store
// in one commit_merges call (one transaction), and the outcomes in one publish per topic. A
// record met twice in one pull is taken in rounds, one delivery of it per round, so its later
// events are decided on its earlier ones' committed result; after a transient failure its
// later deliveries of that pull wait (nack) behind it.
//
// The commit (record, processed, audit: one transaction) comes before the publish of its
// outcome (merged or dlq). A crash between the two leaves the event processed and its outcome
// unpublished. So before a record's next version is published, the Merger makes sure the
// current version's merged message went out (publishing it again from the audit entry when it
// cannot know), and a redelivered dead letter is forwarded again. Every outcome is published at
// least once, per record in version order; repeats happen only around restarts (consumers see
// the same event_id and version again).
//
// When buckets move between processes (deps.fence: split subscriptions, doc/scale_out.md), a
// record's events are in one process's hands at a time, and the parked events of a bucket are
// kept in memory by its owner. An owner reads a bucket's parked events from the store once per
// epoch of its lease, before it commits anything for the bucket at that epoch (set_fence
// refuses until then), and a park is a commit fenced like a merge (MergeCommit::park): a
// former owner cannot park an event after the new owner's claim, so the read finds them all.
//
// When the broker shares a subscription among processes (Broker::shares_subscriptions:
// pubsub://), a record's events may be in several processes' hands at once. The store's version
// check and `processed` keep each merge single and in order: a commit refused because another
// process moved the record first is decided again on what that process did. A parked event is
// then found in the store (an unprocessed event with a retry_scheduled entry whose base the
// record reached), not only in this process's memory, and a record parked just now is looked
// at again once its retry_scheduled entry is written, so that a merge in another process
// between the two is not missed.
//
// Thread-safety: thread-safe. The work on one record is serialized (KeyLocks), so the raw and
// retry stages may run on many threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backbone/event_store.h"
#include "backbone/log.h"
#include "backbone/metrics.h"
#include "backbone/streaming_consumer.h"
#include "backbone/topology.h"
#include "pipeline/key_locks.h"
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
  // Set when the stages' subscriptions are split into buckets over processes
  // (doc/scale_out.md): the fence that every commit for an ordering key carries, that is the
  // key's bucket at the epoch this process owns it at; kFenced when it does not own it.
  std::function<Result<BucketFence>(const std::string& ordering_key)> fence;
};

class Merger {
 public:
  explicit Merger(MergerDeps deps)
      : d_(std::move(deps)), shared_(d_.broker && d_.broker->shares_subscriptions()) {}

  // The merge stage: one decision per delivery of a pull from events.raw.E.merge, in order.
  std::vector<ConsumerDecision> on_raw(std::span<const ReceivedMessage> batch);
  // The retry stage: the same for a pull from events.error.E.retry.
  std::vector<ConsumerDecision> on_retry(std::span<const ReceivedMessage> batch);
  // After a restart: takes the events parked before it (unprocessed, with a retry_scheduled
  // entry) back into the parked set, and merges at once those that fit their record now, as if
  // the record had just been merged. Returns how many it merged. Without it they would wait for
  // their retry copies' backoff (up to 600 s) however soon their record moves on. With buckets
  // that move (deps.fence) it does nothing: each bucket's parked events are read when this
  // process first works on the bucket at an epoch (recover_buckets).
  Result<size_t> recover_parked();
  // The record as the store has it once it is at `version` or beyond, or when `timeout_us` (real
  // time) has passed: woken by this process's merges (nullopt: no version merged yet).
  // The event as the store has it once it is processed (merged or dead-lettered), or when
  // `timeout_us` (real time) has passed: woken by this process's merges and dead letters.
  Result<StoredEvent> wait_for_processed(const EventId& id, int64_t timeout_us);
  Result<std::optional<StoredRecord>> wait_for_version(const RecordKey& record, uint64_t version,
                                                       int64_t timeout_us);

 private:
  enum class Stage { kRaw, kRetry };
  struct Outcome {
    // kFenced: this process no longer owns the record's bucket; the delivery is left to the
    // bucket's owner (nacked, never acked).
    enum class Kind { kDone, kGap, kTransient, kDeadLettered, kFenced } kind = Kind::kDone;
    std::string reason;
    std::optional<Event> event;
    bool emit = true;  // for kDeadLettered: this Merger has not published it yet
  };
  // One event to merge: a delivery, or a parked event taken up again (no delivery).
  struct Item {
    const ReceivedMessage* delivery = nullptr;
    std::string key;            // the ordering key
    std::optional<EventId> id;  // nullopt: a poison message
    Outcome out;
    // Commits refused because another process changed the record first; lost_race: the last
    // one was, in the round just run.
    int races = 0;
    bool lost_race = false;
  };
  // What one item of a round will write and publish.
  struct Plan {
    Item* item = nullptr;
    std::optional<MergeCommit> commit;
    std::optional<OutgoingMessage> merged;  // published once the commit is durable
    std::optional<OutgoingMessage> dlq;     // likewise
    uint64_t next_version = 0;              // with `merged`
    const char* counter_kind = nullptr;     // with `merged`: how it merged
    bool dead_letter = false;               // the commit dead-letters the event
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

  // Merges a pull: one item per delivery, in order (a poison message has no id). REQUIRES: the
  // keys held.
  std::vector<Item> merge_batch(Stage stage, std::span<const ReceivedMessage> batch);
  // Merges the items in rounds that take each record at most once. REQUIRES: the keys held.
  void merge_items(Stage stage, std::vector<Item>& items);
  // One round: reads and decides each item, commits in one call, publishes in one call per
  // topic.
  void merge_round(Stage stage, std::span<Item* const> round);
  // Reads and decides one item; sets item->out when nothing is to be committed.
  Plan plan(Stage stage, Item& item);
  // Gives the commit its record's bucket fence (deps.fence); kFenced when the bucket is not
  // this process's, or its parked events at that epoch are not read yet.
  Result<void> set_fence(MergeCommit& commit);
  // With buckets that move (deps.fence): for the buckets of `batch` that this process owns at an
  // epoch whose parked events it has not read, forgets what it kept of them, reads them from the
  // store (one scan for all), and merges those that fit their record now. REQUIRES: no key held.
  Result<void> recover_buckets(std::span<const ReceivedMessage> batch);
  // The events of the store parked in `buckets` (bucket -> epoch), parked again in memory and
  // merged where they fit (as after a merge of their records); nullopt: every bucket.
  Result<size_t> load_parked(const std::optional<std::map<uint32_t, uint64_t>>& buckets);
  // Whether the key's bucket is one of `buckets` at its epoch.
  bool in_buckets(const std::string& key, const std::map<uint32_t, uint64_t>& buckets) const;
  // How a delivery whose bucket is another's is answered.
  static ConsumerDecision fenced_decision(const Error& e);
  // A fenced delivery comes back after this, should the bucket still be served here.
  static constexpr int64_t kFencedRedelivery = 1'000'000;
  // Takes up the parked events of the items' records that fit now, and returns the ids of
  // those it merged. With a shared subscription the records of items parked just now are
  // looked at again too: another process may have merged the missing version meanwhile.
  // REQUIRES: the keys held.
  std::unordered_set<std::string> apply_parked(std::span<const Item> items);
  // The record's parked event that fits its version now, if any (nullopt on a store error
  // too: its retry copy takes it on). With a shared subscription another process may have
  // parked it, and the store is asked.
  std::optional<EventId> next_parked(const std::string& key, const RecordKey& record);
  // An unprocessed event of the record based on `version` that a merge stage parked.
  std::optional<EventId> parked_in_store(const RecordKey& record, uint64_t version);

  // merger_history.cc: what the audit log says about earlier work.
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
  // Publishes the merged message of `version`, the record's current version, unless this Merger
  // knows it went out. REQUIRES: the record's key held.
  Result<void> ensure_published(const RecordKey& record, uint64_t version);
  // The commit that dead-letters `event` from `stage` with `reason`; sets plan.dlq for the raw
  // stage (the retry stage leaves the forward to the broker).
  void plan_dead_letter(Plan& plan, const Event& event, Stage stage, const std::string& reason,
                        std::vector<AuditDraft> audit_before, bool replay, uint64_t record_version);
  std::string failure_history(const Event& event, const std::string& last_reason);
  AuditDraft retry_entry(const Event& event, const std::string& failure, const std::string& reason,
                         int attempt);
  void count(const char* name, const char* help, Labels labels = {}, double n = 1);
  // A debug line (`-v`) about an event: `what` with env, event and record, then `more`.
  void log_decision(std::string_view what, const Event& event,
                    std::initializer_list<log::Field> more);
  void note_published(const RecordKey& record, uint64_t version);
  // Wakes those waiting for a version or an event (merges_ grows).
  void note_decided();
  // read() until done(value) holds, its read failed, or timeout_us (real time) has passed;
  // woken by note_decided().
  template <typename Read, typename Done>
  auto wait_for_decisions(int64_t timeout_us, const Read& read, const Done& done)
      -> decltype(read());
  // Parked events, per record: kept in memory when an event is parked (by the merge or the
  // retry stage), taken when the record reaches the event's base. A restart forgets them;
  // recover_parked() and the retry copies park them again.
  void note_parked(const std::string& key, const Event& event);
  bool maybe_parked(const std::string& key);
  // The parked event of `key` whose base is `version`, if any; forgets those below it.
  std::optional<EventId> take_parked(const std::string& key, uint64_t version);

  MergerDeps d_;
  // The broker may hand this environment's deliveries to other processes too
  // (Broker::shares_subscriptions): what this Merger keeps in memory is then not all there is.
  const bool shared_;
  PublishedSet published_;
  KeyLocks keys_;
  std::mutex bookkeeping_mu_;
  // Per record key: base version -> parked event.
  std::unordered_map<std::string, std::map<uint64_t, EventId>>
      parked_;  // GUARDED_BY(bookkeeping_mu_)
  // Per record, the highest version whose merged message this Merger published or checked.
  std::unordered_map<std::string, uint64_t> published_version_;  // GUARDED_BY(bookkeeping_mu_)
  // Per bucket, the epoch of this process's lease whose parked events are in parked_.
  std::map<uint32_t, uint64_t> recovered_;  // GUARDED_BY(bookkeeping_mu_)
  std::mutex recover_mu_;                   // one recover_buckets at a time; before bookkeeping_mu_
  // GUARDED_BY(bookkeeping_mu_): grows with every version published and every dead letter.
  uint64_t merges_ = 0;
  std::condition_variable merged_;  // with bookkeeping_mu_: merges_ grew
};

}  // namespace backbone::pipeline
