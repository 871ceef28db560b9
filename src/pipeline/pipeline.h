// EnvironmentPipeline: everything that moves one environment's events (SPEC §5): ingest, the
// relay, the merge and retry stages, and the dead-letter queue's list, show and replay.
//
// Least privilege: ingest and the DLQ commands use a store connection as sync_worker; the
// stages use one as merge_worker.
//
// Ingest stores first (events, `ingested` audit, one transaction) and publishes to the raw
// topic after. Concurrent ingest calls share one transaction and one publish (GroupCommit);
// each call's events are still all or nothing. A crash between the two leaves stored events
// unpublished; the relay, run when the pipeline starts, publishes every unprocessed event again
// (the merge stage ignores the ones it has merged meanwhile). So no event is published without
// being stored, and none is stored without being published.
//
// Thread-safety: thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backbone/event_store.h"
#include "backbone/metrics.h"
#include "backbone/streaming_consumer.h"
#include "backbone/topology.h"
#include "core/group_commit.h"
#include "pipeline/dlq.h"
#include "pipeline/merger.h"

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
  StageErrorHandler on_stage_error;  // may be null
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
  // Publishes every unprocessed event to the raw topic again, in history order.
  Result<size_t> relay();

  // Runs the stages on worker threads until stop().
  void start();
  void stop();
  // Runs each stage once over what is deliverable now (for tests and tools on a manual clock);
  // returns how many deliveries were settled.
  Result<size_t> step();

  // The dead-letter queue, from the audit log: events whose latest terminal entry is
  // `dead_lettered`.
  Result<std::vector<DlqEntry>> dlq_list();
  Result<DlqEntry> dlq_show(const EventId& id);
  // Audits `replayed` and publishes the event to the raw topic again; `--all` replays in
  // history order.
  Result<void> dlq_replay(const EventId& id);
  Result<size_t> dlq_replay_all();

  EventStore& merge_store() { return *merge_store_; }
  EventStore& ingest_store() { return *ingest_store_; }
  Merger& merger() { return *merger_; }

 private:
  explicit EnvironmentPipeline(PipelineOptions o) : o_(std::move(o)) {}
  Result<size_t> drain(const std::string& subscription, bool raw);
  // One ingest call waiting for its group's store commit and publish.
  struct PendingIngest {
    std::span<const Event> events;
    Result<std::vector<IngestOutcome>> result;
  };
  // Stores and publishes a group of ingest calls: one store transaction, one publish.
  void store_group(std::vector<PendingIngest*>& group);

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
};

}  // namespace backbone::pipeline
