// The stress workload (SPEC §6 `stress`): a deterministic stream of events over K records from
// S sources, with chosen rates of stale bases (rebases), conflicts (rejected stale bases),
// out-of-order arrivals (gaps) and poison messages, and the reference fold that says what the
// pipeline must end with: a single-threaded merge of the same events in the same per-record
// order, with the same merge rules.
//
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backbone/event.h"
#include "pipeline/merge_rules.h"

namespace backbone::stress {

struct WorkloadOptions {
  size_t events = 10'000;
  size_t records = 100;
  size_t sources = 3;
  double stale_rate = 0.05;     // stale base, fields untouched since: a rebase
  double conflict_rate = 0.02;  // stale base on a field changed since: a reject
  double gap_rate = 0.05;       // the next two events of a record sent in swapped order
  double poison_rate = 0.001;   // messages that are not events, straight to the raw topic
  uint64_t seed = 1;
  std::string record_prefix = "r";  // record ids are prefix + number
};

class Workload {
 public:
  explicit Workload(WorkloadOptions o);
  // The events in send order (poison messages excluded).
  const std::vector<EventDraft>& events() const { return events_; }
  size_t poison() const { return poison_; }

  // The reference fold of `stored` (the events as ingested, in send order, with their ids):
  // each record's final state, and how many events the `reject` policy dead-letters.
  struct Expected {
    std::map<RecordKey, pipeline::RecordState> records;
    size_t rejected = 0;
    size_t merged = 0;  // events that made a new version
  };
  static Result<Expected> fold(const std::vector<Event>& stored, const pipeline::MergeSettings& s);

 private:
  WorkloadOptions o_;
  std::vector<EventDraft> events_;
  size_t poison_ = 0;
};

}  // namespace backbone::stress
