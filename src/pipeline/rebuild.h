// Rebuild: the `records` projection, computed again from the event store (SPEC §2: `backbone
// rebuild` must reproduce the table exactly).
//
// Every merge that made a version left an audit entry (`merged` or `rebased`) whose detail
// holds the version and the changes it applied, in commit order along the chain. The rebuild
// replays those entries in chain order: each one's changes are checked against its event (every
// field is the event's own value, so the table is derived from events) and applied with
// apply_effective, the function the merge stage uses; versions must follow each other, and
// updated_at is the entry's time, as the commit set it. An inconsistency fails with kDataLoss
// naming the entry.
//
// Thread-safety: as the store.
#pragma once

#include <optional>
#include <vector>

#include "backbone/event_store.h"

namespace backbone::pipeline {

struct RebuiltRecords {
  std::vector<StoredRecord> rows;  // ordered by (record_type, record_id)
  uint64_t merges = 0;             // the version-making merges replayed
  std::vector<AuditHead> heads;    // every chain's head before the log was read
};

Result<RebuiltRecords> fold_records(EventStore& store);

// `record` as it was at `version`, folded from its audit entries as fold_records does (the
// console's state as of a version, and its diffs); none when the record never reached it.
Result<std::optional<StoredRecord>> record_as_of(EventStore& store, const RecordKey& record,
                                                 uint64_t version);

struct RebuildReport {
  uint64_t merges = 0;     // merges replayed
  uint64_t records = 0;    // rows rebuilt
  uint64_t differing = 0;  // rows of the table that differ from the rebuilt row
  uint64_t missing = 0;    // rebuilt rows the table lacks
  uint64_t extra = 0;      // rows of the table that no merge made
  bool replaced = false;   // the table was replaced
  bool matches() const { return differing == 0 && missing == 0 && extra == 0; }
};

// Folds, compares with the table, and when `apply` and they differ, replaces the table (the
// store must act as migrator; kConflict if a merge committed meanwhile).
Result<RebuildReport> rebuild_records(EventStore& store, bool apply);

}  // namespace backbone::pipeline
