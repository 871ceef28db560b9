// The row forms of events, audit entries and outbox entries on the server backends: the multi-row
// INSERT heads, one row's placeholders, and each value as the text parameter both servers take.
// Shared by the store and by bench/store_append's floor, so that both write the very same rows.
#pragma once

#include <string>
#include <vector>

#include "backbone/audit_entry.h"
#include "backbone/event.h"
#include "store/sql/sql_connection.h"

namespace backbone::sql {

inline constexpr const char* kInsertEventsHead =
    "INSERT INTO events (id, record_type, record_id, source, timestamp, base_version, changes, "
    "full_snapshot_ref, processed) VALUES ";
inline constexpr const char* kEventRow = "(?, ?, ?, ?, ?, ?, ?, ?, FALSE)";
inline constexpr const char* kInsertAuditHead =
    "INSERT INTO event_audit_log (id, event_id, record_type, record_id, action, fingerprint, "
    "chain_hash, detail, created_at) VALUES ";
inline constexpr const char* kAuditRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
inline constexpr const char* kInsertOutboxHead =
    "INSERT INTO event_outbox (event_id, created_at) VALUES ";
inline constexpr const char* kOutboxRow = "(?, ?)";

// "YYYY-MM-DD HH:MM:SS.ffffff": how timestamps travel (sessions run in UTC).
inline std::string sql_time(Timestamp t) {
  std::string s = t.to_rfc3339();  // YYYY-MM-DDTHH:MM:SS.ffffffZ
  s[10] = ' ';
  s.pop_back();
  return s;
}

inline void event_params(const Event& e, std::vector<SqlParam>& p) {
  p.push_back(e.id().str());
  p.push_back(e.record_type());
  p.push_back(e.record_id());
  p.push_back(e.source());
  p.push_back(sql_time(e.timestamp()));
  p.push_back(std::to_string(e.base_version()));
  p.push_back(e.changes());
  p.push_back(e.full_snapshot_ref());
}

inline void audit_params(const AuditEntry& a, std::vector<SqlParam>& p) {
  p.push_back(a.id.str());
  p.push_back(a.event_id.str());
  p.push_back(a.record.record_type);
  p.push_back(a.record.record_id);
  p.push_back(std::string(audit_action_name(a.action)));
  p.push_back(a.fingerprint);
  p.push_back(a.chain_hash);
  p.push_back(a.detail);
  p.push_back(sql_time(a.created_at));
}

inline constexpr size_t kMaxRowsPerStatement = 256;  // multi-row statements and IN lists

// Splits n into statements of at most kMaxRowsPerStatement rows: a batch of up to 256 rows is
// one statement. (Each distinct size is one prepared statement; the drivers bound their caches.)
inline std::vector<size_t> chunk_sizes(size_t n) {
  std::vector<size_t> out;
  for (; n > kMaxRowsPerStatement; n -= kMaxRowsPerStatement) out.push_back(kMaxRowsPerStatement);
  if (n > 0) out.push_back(n);
  return out;
}

// "(?, ?), (?, ?)": `rows` copies of `row`.
inline std::string repeat_row(const std::string& row, size_t rows) {
  std::string out;
  out.reserve((row.size() + 2) * rows);
  for (size_t i = 0; i < rows; ++i) {
    if (i) out += ", ";
    out += row;
  }
  return out;
}

}  // namespace backbone::sql
