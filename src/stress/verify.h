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
#pragma once

#include <string>
#include <vector>

#include "backbone/broker.h"
#include "backbone/event_store.h"
#include "pipeline/merge_rules.h"

namespace backbone::stress {

struct VerifyInput {
  EventStore* store = nullptr;
  Broker* broker = nullptr;
  std::string order_subscription;  // an ordered subscription on the merged topic, made before
  std::string dlq_subscription;    // the dlq inspect subscription
  std::vector<EventId> sent;       // ids in send order (a duplicate answered with its original)
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

// Consumes the order subscription. Store and broker errors are returned as such.
Result<VerifyReport> verify_stress(const VerifyInput& in);

}  // namespace backbone::stress
