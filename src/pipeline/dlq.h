// The dead-letter queue as the audit log records it: an event is in the DLQ when its latest
// terminal audit entry is `dead_lettered` (a later `replayed`, `merged`, ... takes it out).
// Listing and showing need only the store, so they work while `serve` holds the broker.
//
// Thread-safety: as the store.
#pragma once

#include <vector>

#include "backbone/event_store.h"

namespace backbone::pipeline {

struct DlqEntry {
  StoredEvent event;
  AuditEntry dead_lettered;         // the latest `dead_lettered` entry
  std::vector<AuditEntry> history;  // every audit entry of the event
};

// Dead letters in the order they were dead-lettered.
Result<std::vector<DlqEntry>> list_dead_letters(EventStore& store);
// kNotFound when the event does not exist or is not dead-lettered now.
Result<DlqEntry> show_dead_letter(EventStore& store, const EventId& id);

}  // namespace backbone::pipeline
