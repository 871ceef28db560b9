// The row forms of events, audit entries, outbox entries and records in the SQLite schema: the
// statements that write them and how a value binds to them. Shared by the store and by the
// benchmark's floor, so that both write the very same rows.
#pragma once

#include "backbone/audit_entry.h"
#include "backbone/event.h"
#include "backbone/event_store.h"
#include "store/sqlite/sqlite_db.h"

namespace backbone::sqlite {

inline constexpr const char* kInsertEventSql =
    "INSERT INTO events (id, record_type, record_id, source, timestamp, base_version, changes, "
    "full_snapshot_ref, processed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)";
inline constexpr const char* kInsertAuditSql =
    "INSERT INTO event_audit_log (id, event_id, record_type, record_id, action, fingerprint, "
    "chain_hash, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
inline constexpr const char* kInsertOutboxSql =
    "INSERT INTO event_outbox (event_id, created_at) VALUES (?, ?)";
// A merge's writes besides its audit entries: the event's processed flag 0 -> 1, and the
// record's row (an upsert: ?1..?6 are record_type, record_id, version, state, field_versions,
// updated_at).
inline constexpr const char* kMarkProcessedSql =
    "UPDATE events SET processed = 1 WHERE id = ? AND processed = 0";
inline constexpr const char* kInsertRecordSql =
    "INSERT INTO records (record_type, record_id, version, state, field_versions, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
inline constexpr const char* kUpsertRecordSuffix =
    " ON CONFLICT (record_type, record_id) DO UPDATE SET version = ?3, state = ?4, "
    "field_versions = ?5, updated_at = ?6";

// REQUIRES: `s` was prepared from kInsertEventSql.
inline Stmt& bind_event_row(Stmt& s, const Event& e) {
  return s.bind(1, e.id().str())
      .bind(2, e.record_type())
      .bind(3, e.record_id())
      .bind(4, e.source())
      .bind(5, e.timestamp().micros())
      .bind(6, static_cast<int64_t>(e.base_version()))
      .bind(7, e.changes())
      .bind_optional(8, e.full_snapshot_ref());
}

// REQUIRES: `s` was prepared from kInsertAuditSql.
inline Stmt& bind_audit_row(Stmt& s, const AuditEntry& a) {
  return s.bind(1, a.id.str())
      .bind(2, a.event_id.str())
      .bind(3, a.record.record_type)
      .bind(4, a.record.record_id)
      .bind(5, audit_action_name(a.action))
      .bind(6, a.fingerprint)
      .bind(7, a.chain_hash)
      .bind_optional(8, a.detail)
      .bind(9, a.created_at.micros());
}

// REQUIRES: `s` was prepared from kInsertRecordSql (and kUpsertRecordSuffix).
inline Stmt& bind_record_row(Stmt& s, const StoredRecord& r) {
  return s.bind(1, r.key.record_type)
      .bind(2, r.key.record_id)
      .bind(3, static_cast<int64_t>(r.version))
      .bind(4, r.state)
      .bind(5, r.field_versions)
      .bind(6, r.updated_at.micros());
}

}  // namespace backbone::sqlite
