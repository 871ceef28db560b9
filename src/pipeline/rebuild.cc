#include "pipeline/rebuild.h"

#include <map>

#include "core/json_internal.h"
#include "pipeline/merge_rules.h"

namespace backbone::pipeline {
namespace {

Error inconsistent(const AuditEntry& entry, const std::string& what) {
  return make_error(Errc::kDataLoss, "audit entry " + entry.id.str() + " (" +
                                         audit_action_name(entry.action) + " of event " +
                                         entry.event_id.str() + "): " + what);
}

bool makes_version(const AuditEntry& entry) {
  return entry.action == AuditAction::kMerged || entry.action == AuditAction::kRebased;
}

// Applies the version that `entry` (merged or rebased) made to `row`, after checking it against
// its event and the row's version.
Result<void> fold_entry(EventStore& store, const AuditEntry& entry, StoredRecord& row) {
  if (!entry.detail) return inconsistent(entry, "has no detail");
  auto detail = json_internal::parse_strict(*entry.detail);
  if (!detail.ok() || !detail->is_object() || !detail->contains("version") ||
      !(*detail)["version"].is_number_unsigned() || !detail->contains("changes") ||
      !(*detail)["changes"].is_object()) {
    return inconsistent(entry, "its detail lacks the version or the changes");
  }
  const auto version = (*detail)["version"].get<uint64_t>();
  const nlohmann::json& changes = (*detail)["changes"];
  auto event = store.get(entry.event_id);
  if (!event.ok()) return inconsistent(entry, "its event: " + event.error().message);
  auto sent = json_internal::parse_strict(event->event.changes());
  if (!sent.ok()) return inconsistent(entry, "its event's changes are not JSON");
  for (auto it = changes.begin(); it != changes.end(); ++it) {
    if (!sent->contains(it.key()) || (*sent)[it.key()] != it.value()) {
      return inconsistent(entry, "field \"" + it.key() + "\" is not the event's value");
    }
  }
  if (event->event.record_key() != entry.record) {
    return inconsistent(entry, "names another record than its event");
  }
  if (version != row.version + 1) {
    return inconsistent(entry, "makes version " + std::to_string(version) +
                                   " of a record at version " + std::to_string(row.version));
  }
  std::string effective;
  BACKBONE_TRY(json_internal::write_canonical(changes, effective));
  auto next =
      apply_effective(RecordState{row.version, row.state, row.field_versions}, effective, version);
  if (!next.ok()) return inconsistent(entry, next.error().message);
  row.version = next->version;
  row.state = std::move(next->state);
  row.field_versions = std::move(next->field_versions);
  row.updated_at = entry.created_at;
  return {};
}

}  // namespace

Result<std::optional<StoredRecord>> record_as_of(EventStore& store, const RecordKey& record,
                                                 uint64_t version) {
  auto audit = store.audit_for_record(record);
  if (!audit.ok()) return audit.error();
  StoredRecord row;
  row.key = record;
  for (const AuditEntry& entry : *audit) {
    if (row.version >= version) break;
    if (makes_version(entry)) BACKBONE_TRY(fold_entry(store, entry, row));
  }
  if (row.version < version) return std::optional<StoredRecord>();
  return std::optional<StoredRecord>(std::move(row));
}

Result<RebuiltRecords> fold_records(EventStore& store) {
  RebuiltRecords out;
  // The heads first: entries appended while the log is read move one, which replace_records sees.
  auto heads = store.audit_heads();
  if (!heads.ok()) return heads.error();
  out.heads = std::move(*heads);
  std::map<RecordKey, StoredRecord> rows;
  std::optional<EventId> after;
  for (;;) {
    auto page = store.scan_audit(after, 1000);
    if (!page.ok()) return page.error();
    if (page->empty()) break;
    for (const AuditEntry& entry : *page) {
      if (!makes_version(entry)) continue;
      StoredRecord& row = rows[entry.record];
      row.key = entry.record;
      BACKBONE_TRY(fold_entry(store, entry, row));
      ++out.merges;
    }
    after = page->back().id;
  }
  out.rows.reserve(rows.size());
  for (auto& [key, row] : rows) out.rows.push_back(std::move(row));
  return out;
}

Result<RebuildReport> rebuild_records(EventStore& store, bool apply) {
  auto rebuilt = fold_records(store);
  if (!rebuilt.ok()) return rebuilt.error();
  RebuildReport report;
  report.merges = rebuilt->merges;
  report.records = rebuilt->rows.size();
  // Both sides are ordered by key: walk them together.
  size_t i = 0;
  std::optional<RecordKey> after;
  for (;;) {
    auto page = store.scan_records(after, 1000);
    if (!page.ok()) return page.error();
    if (page->empty()) break;
    for (const StoredRecord& have : *page) {
      for (; i < rebuilt->rows.size() && rebuilt->rows[i].key < have.key; ++i) ++report.missing;
      if (i < rebuilt->rows.size() && rebuilt->rows[i].key == have.key) {
        if (!(rebuilt->rows[i] == have)) ++report.differing;
        ++i;
      } else {
        ++report.extra;
      }
    }
    after = page->back().key;
  }
  report.missing += rebuilt->rows.size() - i;
  if (apply && !report.matches()) {
    BACKBONE_TRY(store.replace_records(rebuilt->rows, rebuilt->heads));
    report.replaced = true;
  }
  return report;
}

}  // namespace backbone::pipeline
