#include "backbone/audit_entry.h"

#include "backbone/canonical_json.h"
#include "backbone/sha256.h"

namespace backbone {
namespace {

constexpr struct {
  AuditAction action;
  const char* name;
} kActions[] = {
    {AuditAction::kIngested, "ingested"},
    {AuditAction::kMerged, "merged"},
    {AuditAction::kRebased, "rebased"},
    {AuditAction::kConflict, "conflict"},
    {AuditAction::kRetryScheduled, "retry_scheduled"},
    {AuditAction::kDeadLettered, "dead_lettered"},
    {AuditAction::kReplayed, "replayed"},
    {AuditAction::kDuplicate, "duplicate"},
};

}  // namespace

uint32_t audit_slot_of(const EventId& id) {
  const auto& b = id.bytes();
  return (uint32_t{b[14]} << 8) | b[15];
}

EventId in_audit_slot(const EventId& id, uint32_t slot) {
  std::array<uint8_t, 16> b = id.bytes();
  b[14] = static_cast<uint8_t>(slot >> 8);
  b[15] = static_cast<uint8_t>(slot);
  return EventId::from_bytes(b);
}

const char* audit_action_name(AuditAction action) {
  for (const auto& a : kActions) {
    if (a.action == action) return a.name;
  }
  assert_fail("known AuditAction", __FILE__, __LINE__);
}

Result<AuditAction> parse_audit_action(std::string_view name) {
  for (const auto& a : kActions) {
    if (name == a.name) return a.action;
  }
  return make_error(Errc::kInvalidArgument, "unknown audit action \"" + std::string(name) + "\"");
}

std::string audit_content(const AuditEntry& e) {
  // Keys in RFC 8785 order: action, created_at, detail, event_id, fingerprint, id, record_id,
  // record_type.
  std::string out;
  out.reserve(320 + (e.detail ? e.detail->size() : 0));
  out += "{\"action\":\"";
  out += audit_action_name(e.action);
  out += "\",\"created_at\":";
  out += std::to_string(e.created_at.micros());
  out += ",\"detail\":";
  out += e.detail ? *e.detail : "null";
  out += ",\"event_id\":\"" + e.event_id.str();
  out += "\",\"fingerprint\":";
  append_canonical_string(out, e.fingerprint);
  out += ",\"id\":\"" + e.id.str();
  out += "\",\"record_id\":";
  append_canonical_string(out, e.record.record_id);
  out += ",\"record_type\":";
  append_canonical_string(out, e.record.record_type);
  out += "}";
  return out;
}

std::string audit_chain_hash(std::string_view previous_chain_hash, const AuditEntry& entry) {
  return sha256_hex(previous_chain_hash, audit_content(entry));
}

Result<AuditEntry> seal_audit_entry(const AuditDraft& draft, const EventId& id,
                                    Timestamp created_at, std::string_view previous_chain_hash) {
  AuditEntry e;
  e.id = id;
  e.event_id = draft.event_id;
  e.record = draft.record;
  e.action = draft.action;
  e.fingerprint = draft.fingerprint;
  e.created_at = created_at;
  if (draft.detail) {
    auto canonical = canonicalize_json(*draft.detail);
    if (!canonical.ok()) {
      return make_error(Errc::kInvalidArgument, canonical.error().message, "detail");
    }
    e.detail = std::move(*canonical);
  }
  e.chain_hash = audit_chain_hash(previous_chain_hash, e);
  return e;
}

}  // namespace backbone
