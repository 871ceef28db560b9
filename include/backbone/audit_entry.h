// AuditEntry: one row of `event_audit_log` (SPEC §2), and the hash chain that links the rows of
// one environment. doc/audit_chain.md describes the chain in prose.
//
// Entries are totally ordered by `id` (UUIDv7). A store appends an entry only with an id above
// the last one, while it holds its append lock, so the chain order is the id order.
//
//   content(e)    = RFC 8785 JSON of {action, created_at (µs integer), detail (JSON or null),
//                   event_id, fingerprint, id, record_id, record_type}
//   chain_hash(e) = lowercase hex SHA-256( chain_hash(previous entry) ‖ content(e) )
//   the first entry's previous chain_hash is 64 '0' characters (kAuditGenesis).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "backbone/event_id.h"
#include "backbone/record_key.h"
#include "backbone/result.h"
#include "backbone/timestamp.h"

namespace backbone {

enum class AuditAction {
  kIngested,
  kMerged,
  kRebased,
  kConflict,
  kRetryScheduled,
  kDeadLettered,
  kReplayed,
  kDuplicate,
};

const char* audit_action_name(AuditAction action);  // "ingested", "retry_scheduled", ...
Result<AuditAction> parse_audit_action(std::string_view name);

inline constexpr std::string_view kAuditGenesis =
    "0000000000000000000000000000000000000000000000000000000000000000";

// What a caller asks to append; the store gives id, created_at and chain_hash.
struct AuditDraft {
  EventId event_id;
  RecordKey record;
  AuditAction action = AuditAction::kIngested;
  std::string fingerprint;            // the event's fingerprint
  std::optional<std::string> detail;  // JSON text; canonicalized when sealed
};

struct AuditEntry {
  EventId id;
  EventId event_id;
  RecordKey record;
  AuditAction action = AuditAction::kIngested;
  std::string fingerprint;
  std::string chain_hash;
  std::optional<std::string> detail;  // canonical JSON text
  Timestamp created_at;

  bool operator==(const AuditEntry&) const = default;
};

// The canonical content of an entry (everything but chain_hash).
std::string audit_content(const AuditEntry& entry);
// SHA-256(previous_chain_hash ‖ audit_content(entry)).
std::string audit_chain_hash(std::string_view previous_chain_hash, const AuditEntry& entry);

// Makes the entry that follows `previous_chain_hash`: canonicalizes detail (kInvalidArgument if
// it is not JSON) and computes the chain hash.
Result<AuditEntry> seal_audit_entry(const AuditDraft& draft, const EventId& id,
                                    Timestamp created_at, std::string_view previous_chain_hash);

}  // namespace backbone
