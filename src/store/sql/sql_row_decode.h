// Row decoding of the server store: what a SELECT of events, audit entries or records returns,
// read back into the port's types. Each table's columns are named once, here: the select list
// (in the order of its enum) and the enum that reads a row by column name. Every value arrives as
// text (SqlRow); JSON columns are brought back to canonical form (PostgreSQL's jsonb reorders
// and spaces them).
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backbone/event_store.h"
#include "store/sql/sql_connection.h"
#include "store/sql/sql_dialect.h"

namespace backbone::sql {

// The columns of `SELECT <event_columns()> FROM events`, in order.
enum class EventColumn : size_t {
  kId,
  kRecordType,
  kRecordId,
  kSource,
  kTimestamp,
  kBaseVersion,
  kChanges,
  kFullSnapshotRef,
  kProcessed,
};
// The columns of `SELECT <audit_columns()> FROM event_audit_log`, in order.
enum class AuditColumn : size_t {
  kId,
  kEventId,
  kRecordType,
  kRecordId,
  kAction,
  kFingerprint,
  kChainHash,
  kDetail,
  kCreatedAt,
};
// The columns of `SELECT <record_columns()> FROM records`, in order.
enum class RecordColumn : size_t {
  kRecordType,
  kRecordId,
  kVersion,
  kState,
  kFieldVersions,
  kUpdatedAt,
};

// The select lists (times as microseconds since the epoch, in the dialect's syntax).
std::string event_columns(const SqlDialect& d);
std::string audit_columns(const SqlDialect& d);
std::string record_columns(const SqlDialect& d);

// The value of column `c` of `row` (nullopt for NULL). REQUIRES: `row` is of that select list.
template <typename Column>
const std::optional<std::string>& column(const SqlRow& row, Column c) {
  return row[static_cast<size_t>(c)];
}

// Text as the servers send it: integers, and booleans as "t"/"1"/"true".
int64_t to_int(const std::optional<std::string>& v);
bool to_bool(const std::optional<std::string>& v);

// kDataLoss for a stored value that does not read back.
Result<StoredEvent> read_event(const SqlRow& row);
Result<AuditEntry> read_audit(const SqlRow& row);
Result<StoredRecord> read_record(const SqlRow& row);

template <typename T>
Result<std::vector<T>> read_rows(const SqlRows& rows, Result<T> (*read)(const SqlRow&)) {
  std::vector<T> out;
  out.reserve(rows.rows.size());
  for (const SqlRow& r : rows.rows) {
    auto item = read(r);
    if (!item.ok()) return item.error();
    out.push_back(std::move(*item));
  }
  return out;
}

}  // namespace backbone::sql
