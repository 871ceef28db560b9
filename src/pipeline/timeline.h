// A record's timeline: its events in history order, each with the merge decision the audit log
// records for it and its audit entries. What `events history`, GET .../records/T/I/timeline and
// the console's record page show.
//
//   decision        from the event's audit entries (the last that decides)
//   pending         only `ingested`: not merged yet
//   fast-forward    `merged`, kind fast_forward: based on the current version
//   rebased         `merged`, kind rebased: an older base, on fields nobody changed since
//   resolved        `merged`, kind resolved: a conflict resolved by the record type's policy
//   accepted        `merged`, kind accepted: an operator accepted it from the DLQ
//   conflict        `conflict` with no version made (the `reject` policy, or every field lost)
//   parked          `retry_scheduled` for a gap: waits for the versions before its base
//   retrying        `retry_scheduled` after a transient failure
//   dead-lettered   `dead_lettered`: in the DLQ
//   discarded       `dead_lettered`, a discard: an operator closed it, its change not applied
//   replayed        `replayed`: sent back from the DLQ, not decided again yet
//
// `duplicate` entries (the same change sent again) stay in the event's audit entries and count
// in `duplicates`; they decide nothing.
//
// Thread-safety: as the store.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backbone/event_store.h"

namespace backbone::pipeline {

struct TimelineEntry {
  StoredEvent event;
  std::string decision;             // one of the names above
  std::string reason;               // the deciding entry's detail "reason", if any
  std::optional<uint64_t> version;  // the version it made, if it made one
  size_t duplicates = 0;            // times the same change was sent again
  std::vector<AuditEntry> audit;    // every audit entry of the event, in order
};

Result<std::vector<TimelineEntry>> record_timeline(EventStore& store, const RecordKey& record);

// {"record_type","record_id","events":[{"event":{...},"decision","reason","version",
// "duplicates","audit":[...]}]}
std::string timeline_to_json(const RecordKey& record, const std::vector<TimelineEntry>& timeline);

}  // namespace backbone::pipeline
