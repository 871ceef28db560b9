#include "store/sql/sql_row_decode.h"

#include <cstdlib>

#include "backbone/canonical_json.h"

namespace backbone::sql {
namespace {

Error stored_malformed(const std::string& what) {
  return make_error(Errc::kDataLoss, "stored " + what + " is malformed");
}

// JSON as the server returns it, in canonical form.
Result<std::string> canonical(const std::optional<std::string>& json, const char* what) {
  if (!json) return stored_malformed(what);
  auto c = canonicalize_json(*json);
  if (!c.ok()) return stored_malformed(what);
  return std::move(*c);
}

std::string text_of(const SqlRow& row, size_t c) { return row[c].value_or(""); }

}  // namespace

std::string event_columns(const SqlDialect& d) {
  return "id, record_type, record_id, source, " + d.epoch_micros("timestamp") +
         ", base_version, changes, full_snapshot_ref, processed";
}

std::string audit_columns(const SqlDialect& d) {
  return "id, event_id, record_type, record_id, action, fingerprint, chain_hash, detail, " +
         d.epoch_micros("created_at");
}

std::string record_columns(const SqlDialect& d) {
  return "record_type, record_id, version, state, field_versions, " + d.epoch_micros("updated_at");
}

int64_t to_int(const std::optional<std::string>& v) {
  return v ? std::strtoll(v->c_str(), nullptr, 10) : 0;
}

bool to_bool(const std::optional<std::string>& v) {
  return v && (*v == "t" || *v == "1" || *v == "true");
}

Result<StoredEvent> read_event(const SqlRow& r) {
  using C = EventColumn;
  auto text = [&](C c) { return text_of(r, static_cast<size_t>(c)); };
  EventDraft row;
  auto id = EventId::parse(text(C::kId));
  if (!id.ok()) return stored_malformed("event id");
  row.id = *id;
  row.record_type = text(C::kRecordType);
  row.record_id = text(C::kRecordId);
  row.source = text(C::kSource);
  row.timestamp = Timestamp::from_micros(to_int(column(r, C::kTimestamp)));
  row.base_version = static_cast<uint64_t>(to_int(column(r, C::kBaseVersion)));
  row.changes = text(C::kChanges);
  row.full_snapshot_ref = column(r, C::kFullSnapshotRef);
  auto e = Event::restore(row);
  if (!e.ok()) return e.error();
  return StoredEvent{std::move(*e), to_bool(column(r, C::kProcessed))};
}

Result<AuditEntry> read_audit(const SqlRow& r) {
  using C = AuditColumn;
  auto text = [&](C c) { return text_of(r, static_cast<size_t>(c)); };
  AuditEntry a;
  auto id = EventId::parse(text(C::kId));
  auto event_id = EventId::parse(text(C::kEventId));
  auto action = parse_audit_action(text(C::kAction));
  if (!id.ok() || !event_id.ok() || !action.ok()) return stored_malformed("audit entry");
  a.id = *id;
  a.event_id = *event_id;
  a.record = {text(C::kRecordType), text(C::kRecordId)};
  a.action = *action;
  a.fingerprint = text(C::kFingerprint);
  a.chain_hash = text(C::kChainHash);
  if (column(r, C::kDetail)) {
    auto detail = canonical(column(r, C::kDetail), "audit detail");
    if (!detail.ok()) return detail.error();
    a.detail = std::move(*detail);
  }
  a.created_at = Timestamp::from_micros(to_int(column(r, C::kCreatedAt)));
  return a;
}

Result<StoredRecord> read_record(const SqlRow& r) {
  using C = RecordColumn;
  StoredRecord rec;
  rec.key = {text_of(r, static_cast<size_t>(C::kRecordType)),
             text_of(r, static_cast<size_t>(C::kRecordId))};
  rec.version = static_cast<uint64_t>(to_int(column(r, C::kVersion)));
  auto state = canonical(column(r, C::kState), "record state");
  auto versions = canonical(column(r, C::kFieldVersions), "record field_versions");
  if (!state.ok()) return state.error();
  if (!versions.ok()) return versions.error();
  rec.state = std::move(*state);
  rec.field_versions = std::move(*versions);
  rec.updated_at = Timestamp::from_micros(to_int(column(r, C::kUpdatedAt)));
  return rec;
}

}  // namespace backbone::sql
