// EnvironmentPipeline: everything that moves one environment's events (SPEC §5): ingest, the
// relay, the merge and retry stages, and the dead-letter queue's list, show and replay.
//
// Least privilege: ingest and the DLQ commands use a store connection as sync_worker; the
// stages use one as merge_worker.
//
// Ingest stores first (events, `ingested` audit and outbox entries, one transaction) and
// publishes to the raw topic after, then takes the events out of the outbox. Concurrent ingest
// calls share one transaction and one publish (GroupCommit); each call's events are still all or
// nothing. What a crash or a failed publish leaves in the outbox, and what `backbone publish`
// stores, the relay publishes: when the pipeline opens, and every few seconds while its stages
// run. So no event is published without being stored, none is stored without being published,
// and what the broker holds already is not published again (but for the last group before a
// crash).
//
// Thread-safety: thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backbone/event_store.h"
#include "backbone/metrics.h"
#include "backbone/streaming_consumer.h"
#include "backbone/topology.h"
#include "core/group_commit.h"
#include "pipeline/dlq.h"
#include "pipeline/merger.h"
#include "pipeline/watchers.h"

namespace backbone::pipeline {

// Told of a failure of a running stage (a pull, ack or nack the broker refused), with the
// stage's subscription; the stage goes on. Called on the stages' threads.
using StageErrorHandler = std::function<void(const std::string& subscription, const Error& error)>;

struct PipelineOptions {
  std::string env;
  std::vector<std::string> environments;
  std::string store_url;
  Durability durability = Durability::kFsync;
  Broker* broker = nullptr;  // shared by environments; must outlive the pipeline
  const Topology* topology = nullptr;
  const Clock* clock = nullptr;
  EventIdGenerator* ids = nullptr;
  MergeSettings settings;
  size_t workers = 2;          // per stage, when started
  Metrics* metrics = nullptr;  // counters and latencies; may be null
  // Opens a store connection as a role; by default EventStore::open on store_url. Tests wrap
  // the real store to inject faults.
  std::function<Result<std::unique_ptr<EventStore>>(Role)> open_store;
  StageErrorHandler on_stage_error;  // may be null (the relay reports as "relay")
  // MergerDeps::fence: set when the stages' subscriptions are split into buckets over processes.
  std::function<Result<BucketFence>(const std::string& ordering_key)> fence;
  // With several processes: whether the running relay is this process's to run now (one
  // process relays an environment at a time; doc/scale_out.md). Null: always.
  std::function<bool()> relays_here;
  // While the stages run, the relay looks at the outbox this often (real time; 0: never), and
  // publishes what entered it at least relay_grace_us ago (on `clock`): an ingest in progress,
  // in this process or another, takes it out itself.
  int64_t relay_interval_us = 2 * kSecond;
  int64_t relay_grace_us = 5 * kSecond;
  // Whether start() also runs the watchers (watchers.h): the audit projector and the DLQ
  // inspector. `serve` does; tools and benchmarks that own their subscriptions do not.
  bool watchers = false;
};

struct IngestOutcome {
  EventId id;
  std::string fingerprint;
  bool duplicate = false;
};

class EnvironmentPipeline {
 public:
  static Result<std::unique_ptr<EnvironmentPipeline>> open(const PipelineOptions& options);
  ~EnvironmentPipeline();

  const std::string& env() const { return o_.env; }

  // Validates, stores and publishes. All or nothing for validation; `where` names the item.
  Result<std::vector<IngestOutcome>> ingest(std::span<const EventDraft> drafts);
  // Ingest calls waiting for the group in progress to finish.
  size_t ingest_queued() { return ingest_group_.queued(); }
  // Publishes the events of the outbox that entered it at least `min_age_us` ago (every one
  // without), in history order, and takes them out; returns how many were published (events
  // merged meanwhile are taken out unpublished).
  Result<size_t> relay(std::optional<int64_t> min_age_us = std::nullopt);

  // Takes up the events parked before a restart (Merger::recover_parked); run before start().
  Result<size_t> recover_parked() { return merger_->recover_parked(); }
  // Runs the stages on worker threads until stop().
  void start();
  void stop();
  // Runs each stage once over what is deliverable now (for tests and tools on a manual clock);
  // returns how many deliveries were settled.
  Result<size_t> step();
  // Runs the watchers once over what is deliverable now: the audit projector and the DLQ
  // inspector (a manual clock's tests); returns how many messages they settled.
  Result<size_t> step_watchers();

  // The dead-letter queue, from the audit log: events whose latest terminal entry is
  // `dead_lettered`.
  Result<std::vector<DlqEntry>> dlq_list();
  // The poison messages of the DLQ (naming no stored event) that this process's inspector holds;
  // an operator discards one with the admin act DlqInspector::kDiscardPoison.
  std::vector<PoisonLetter> dlq_poison() const;
  Result<DlqEntry> dlq_show(const EventId& id);
  // Audits `replayed` (with `actor`, who asked) and publishes the event to the raw topic
  // again: the merge stage decides it afresh. kNotFound when it is not an open dead letter.
  Result<void> dlq_replay(const EventId& id, const std::string& actor);
  // Replays the dead letters `filter` takes, in history order; with `dry_run`, only says which
  // and in which order.
  Result<std::vector<DlqEntry>> dlq_replay_all(const DlqFilter& filter, bool dry_run,
                                               const std::string& actor);
  // Resolves a dead letter for good. Accept: audits `replayed` with "resolution": "accept" and
  // sends it back; the merge stage then applies its change on the record's current version,
  // whatever its base, audited `merged` of kind "accepted". Discard: a last `dead_lettered`
  // entry with "resolution": "discarded" closes it, its change not applied. `note` says why.
  enum class DlqResolution { kAccept, kDiscard };
  Result<void> dlq_resolve(const EventId& id, DlqResolution how, const std::string& actor,
                           const std::string& note);

  EventStore& merge_store() { return *merge_store_; }
  EventStore& ingest_store() { return *ingest_store_; }
  Merger& merger() { return *merger_; }

 private:
  // Audits `replayed` with `detail` and publishes the dead letter's event to the raw topic.
  Result<void> send_back(const DlqEntry& entry, const std::string& detail);
  explicit EnvironmentPipeline(PipelineOptions o) : o_(std::move(o)) {}
  Result<size_t> drain(const std::string& subscription, bool raw);
  // One ingest call waiting for its group's store commit and publish.
  struct PendingIngest {
    std::span<const Event> events;
    Result<std::vector<IngestOutcome>> result;
  };
  // Stores and publishes a group of ingest calls: one store transaction, one publish.
  void store_group(std::vector<PendingIngest*>& group);
  void run_relay();  // the relay thread: relay(relay_grace_us) every relay_interval_us

  PipelineOptions o_;
  std::unique_ptr<EventStore> ingest_store_;  // sync_worker
  std::unique_ptr<EventStore> merge_store_;   // merge_worker
  std::unique_ptr<EnvPublisher> publisher_;
  std::unique_ptr<Merger> merger_;
  std::string raw_subscription_, retry_subscription_;
  GroupCommit<PendingIngest> ingest_group_;
  // One group at a time (and the relay and DLQ replays): store order and publish order alike.
  std::mutex ingest_mu_;
  std::unique_ptr<StreamingConsumer> merge_consumer_, retry_consumer_;
  std::unique_ptr<AuditProjector> projector_;
  std::unique_ptr<DlqInspector> inspector_;
  std::string audit_subscription_, inspect_subscription_;
  std::unique_ptr<StreamingConsumer> projector_consumer_, inspector_consumer_;
  std::mutex relay_mu_;
  std::condition_variable relay_wake_;  // with relay_mu_: stop
  bool relay_stop_ = false;             // GUARDED_BY(relay_mu_)
  std::thread relay_thread_;
};

}  // namespace backbone::pipeline
