// The JSON wire form of events, shared by the CLI and the HTTP API:
//
//   {"id": "<uuidv7>", "record_type": "contact", "record_id": "42", "source": "crm",
//    "timestamp": "2026-11-28T04:05:06.123456Z", "base_version": 0,
//    "changes": {"name": "Ada"}, "full_snapshot_ref": null}
//
// `id`, `timestamp` and `full_snapshot_ref` are optional on input. Unknown fields are refused, so
// that a misspelt field is never silently dropped.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "backbone/audit_entry.h"
#include "backbone/event.h"
#include "backbone/result.h"

namespace backbone {

// Parses one event object. Errors are kInvalidArgument with `where` naming the field.
Result<EventDraft> parse_event_draft(std::string_view json);

// The event as one JSON object (changes inline), with "fingerprint", and "processed" if given.
std::string event_to_json(const Event& event, std::optional<bool> processed = std::nullopt);

// An audit entry as one JSON object: id, event_id, record_type, record_id, action, fingerprint,
// chain_hash, detail (inline, or null) and created_at.
std::string audit_entry_to_json(const AuditEntry& entry);

}  // namespace backbone
