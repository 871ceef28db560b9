// The dead-letter queue as the audit log records it: an event is in the DLQ when its latest
// terminal audit entry is `dead_lettered` (a later `replayed`, `merged`, ... takes it out), and
// that entry is not a discard (`dlq resolve --discard` closes a dead letter with a last
// `dead_lettered` entry whose detail says "resolution": "discarded", and who did it).
// Listing and showing need only the store, so they work while `serve` holds the broker.
//
// Thread-safety: as the store.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backbone/event_store.h"

namespace backbone::pipeline {

struct DlqEntry {
  StoredEvent event;
  AuditEntry dead_lettered;         // the latest `dead_lettered` entry
  std::vector<AuditEntry> history;  // every audit entry of the event
};

// Whether a `dead_lettered` entry is a discard: the event is closed, its change not applied.
bool is_discard(const AuditEntry& entry);
// What the latest `dead_lettered` entry says: the reason, and the stage ("merge" or "retry").
std::string dlq_reason(const DlqEntry& entry);
std::string dlq_stage(const DlqEntry& entry);

// Which dead letters a bulk action takes; an empty field takes any.
struct DlqFilter {
  std::string record_type;
  std::string reason;                     // a part of the reason, as typed
  std::string stage;                      // "merge" or "retry"
  std::optional<Timestamp> since, until;  // dead-lettered at or after `since`, before `until`
  bool matches(const DlqEntry& entry) const;
  // From named values (a query string, command-line flags): record_type, reason, stage ("merge"
  // or "retry"), since and until (RFC 3339). `get(name)` gives the value, or nullopt. Bad values
  // are kInvalidArgument naming the field.
  static Result<DlqFilter> from(
      const std::function<std::optional<std::string>(const char* name)>& get);
};

// {"event":{...},"dead_lettered_at","reason","stage","detail":{...}} and, with `history`,
// "audit": every audit entry of the event. One form for the CLI and the HTTP API.
std::string dlq_entry_to_json(const DlqEntry& entry, bool history);

// Dead letters in the order they were dead-lettered.
Result<std::vector<DlqEntry>> list_dead_letters(EventStore& store);
// The dead letters `filter` takes, in the order their events were sent (history order): the
// order a replay sends them in.
Result<std::vector<DlqEntry>> select_dead_letters(EventStore& store, const DlqFilter& filter);
// kNotFound when the event does not exist or is not dead-lettered now.
Result<DlqEntry> show_dead_letter(EventStore& store, const EventId& id);

}  // namespace backbone::pipeline
