// AuditEntry: one row of `event_audit_log` (SPEC §2), and the hash chain that links the rows of
// one environment. doc/audit_chain.md describes the chain in prose.
//
// A store's entries form one hash chain per writer slot, so that writers of several processes
// need not queue for one tail (doc/audit_chain.md, "Many writers"). An entry's slot is the last 16
// bits of its `id` (UUIDv7, in the rand_b field), but for the entries written before chains had
// slots (up to AuditHead::legacy_until of slot 0), which are slot 0's. A writer appends to a slot
// only while it holds the slot's head, with an id above the head's, so each chain's order is id
// order. The store records every slot's head (AuditHead), which `audit verify` checks.
//
//   content(e)    = RFC 8785 JSON of {action, created_at (µs integer), detail (JSON or null),
//                   event_id, fingerprint, id, record_id, record_type}
//   chain_hash(e) = lowercase hex SHA-256( chain_hash(previous entry) ‖ content(e) )
//   the first entry's previous chain_hash is 64 '0' characters (kAuditGenesis).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
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

// Writer slots: how many a store has, and the slot an id names.
inline constexpr uint32_t kAuditSlots = 64;
uint32_t audit_slot_of(const EventId& id);
// `id` with its last 16 bits set to `slot`.
EventId in_audit_slot(const EventId& id, uint32_t slot);

// The head of one slot's chain, as the store records it with every append: its last entry, or
// the nil id and the genesis hash before the first. Slot 0 of a store made before chains had
// slots continues its single chain: `legacy_until` is that chain's last entry then.
struct AuditHead {
  uint32_t slot = 0;
  EventId id;
  std::string chain_hash{kAuditGenesis};
  Timestamp created_at;
  std::optional<EventId> legacy_until;

  // No entry yet.
  bool empty() const { return chain_hash == kAuditGenesis; }
  // This slot's head once `e` is appended to it.
  AuditHead after(const AuditEntry& e) const {
    return {slot, e.id, e.chain_hash, e.created_at, legacy_until};
  }
  // The slot of the entry `id`, given slot 0's `legacy_until`.
  static uint32_t slot_of(const EventId& id, const std::optional<EventId>& legacy_until) {
    return legacy_until && !(*legacy_until < id) ? 0 : audit_slot_of(id);
  }
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
