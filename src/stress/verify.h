// The stress verifier: after a workload settled, checks the store and the broker against the
// reference fold (generator.h). Shared by `backbone stress` and the SIGKILL fault test.
//
//   lost            every event sent (by id, duplicates folded) is processed
//   applied twice   no event has more than one merged or rebased audit entry
//   merged          as many events merged as the fold merges
//   records         each record's version, state and field versions equal the fold's
//   order           per record, the merged topic's versions strictly increase (repeats of the
//                   same event and version, allowed after a crash, are skipped)
//   dlq             the dlq subscription holds the poison messages plus the rejected conflicts
//                   (distinct events: a crash may repeat a dead letter)
//   audit           the hash chain verifies
//
// Only the workload's records count (so that a store and topics shared with other traffic can
// be checked). Where the merged messages and the dead letters come from is the caller's: a
// broker held by this process (use_broker), or a running server's HTTP API.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backbone/broker.h"
#include "backbone/event_store.h"
#include "pipeline/merge_rules.h"

namespace backbone::stress {

// A message of the merged topic, as the order check reads it.
struct MergedSeen {
  std::string ordering_key;
  std::string data;  // the merged message's JSON
  Timestamp publish_time;
};

struct VerifyInput {
  EventStore* store = nullptr;
  // The merged topic's messages, in delivery order, a page at a time (empty: drained).
  std::function<Result<std::vector<MergedSeen>>()> next_merged;
  // The event id of every dead letter (nullopt: a poison message, which names no event).
  std::function<Result<std::vector<std::optional<std::string>>>()> dead_letters;
  std::vector<EventId> sent;  // ids in send order (a duplicate answered with its original)
  size_t poison = 0;
  pipeline::MergeSettings settings;
};

struct VerifyReport {
  std::vector<std::string> violations;
  size_t merged = 0, rejected = 0, dlq = 0;
  uint64_t audit_entries = 0;
  std::vector<double> latency_ms;  // merged publish time minus event timestamp
  bool ok() const { return violations.empty(); }
};

// Drains next_merged. Store and source errors are returned as such.
Result<VerifyReport> verify_stress(const VerifyInput& in);

// Sources on a broker this process holds: `order_subscription`, an ordered subscription on the
// merged topic made before the run (drained and acked), and `dlq_subscription`, the dlq
// inspect subscription (its messages are handed back once counted). `broker` must outlive `in`.
void use_broker(VerifyInput& in, Broker& broker, const std::string& order_subscription,
                const std::string& dlq_subscription);

}  // namespace backbone::stress
