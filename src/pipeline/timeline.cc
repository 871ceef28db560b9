#include "pipeline/timeline.h"

#include <map>

#include "backbone/canonical_json.h"
#include "backbone/event_json.h"
#include "core/json_internal.h"
#include "pipeline/dlq.h"

namespace backbone::pipeline {
namespace {

using nlohmann::json;

// The entry's detail as an object (empty when it has none or is not one).
json detail_of(const AuditEntry& a) {
  if (!a.detail) return json::object();
  json d = json::parse(*a.detail, nullptr, false);
  return d.is_object() ? d : json::object();
}

void decide(TimelineEntry& t) {
  t.decision = "pending";
  for (const AuditEntry& a : t.audit) {
    const json d = detail_of(a);
    switch (a.action) {
      case AuditAction::kIngested:
        break;
      case AuditAction::kDuplicate:
        ++t.duplicates;
        continue;  // decides nothing
      case AuditAction::kMerged:
      case AuditAction::kRebased: {
        const std::string kind = d.value("kind", "");
        t.decision = kind == "rebased" || a.action == AuditAction::kRebased ? "rebased"
                     : kind == "resolved"                                   ? "resolved"
                     : kind == "accepted"                                   ? "accepted"
                                                                            : "fast-forward";
        if (d.contains("version") && d["version"].is_number_unsigned()) {
          t.version = d["version"].get<uint64_t>();
        }
        break;
      }
      case AuditAction::kConflict:
        // A conflict resolved into a new version is followed by its `merged` entry.
        t.decision = "conflict";
        break;
      case AuditAction::kRetryScheduled:
        t.decision = d.value("failure", "") == "gap" ? "parked" : "retrying";
        break;
      case AuditAction::kDeadLettered:
        t.decision = is_discard(a) ? "discarded" : "dead-lettered";
        break;
      case AuditAction::kReplayed:
        t.decision = "replayed";
        t.version.reset();
        break;
    }
    if (a.action != AuditAction::kIngested) {
      t.reason =
          d.contains("reason") && d["reason"].is_string() ? d["reason"].get<std::string>() : "";
    }
  }
}

}  // namespace

Result<std::vector<TimelineEntry>> record_timeline(EventStore& store, const RecordKey& record) {
  auto events = store.history(record);
  if (!events.ok()) return events.error();
  auto audit = store.audit_for_record(record);
  if (!audit.ok()) return audit.error();
  std::map<std::string, std::vector<AuditEntry>> by_event;
  for (AuditEntry& a : *audit) by_event[a.event_id.str()].push_back(std::move(a));
  std::vector<TimelineEntry> out;
  out.reserve(events->size());
  for (StoredEvent& e : *events) {
    TimelineEntry t{.event = std::move(e)};
    if (auto it = by_event.find(t.event.event.id().str()); it != by_event.end()) {
      t.audit = std::move(it->second);
    }
    decide(t);
    out.push_back(std::move(t));
  }
  return out;
}

std::string timeline_to_json(const RecordKey& record, const std::vector<TimelineEntry>& timeline) {
  std::string out = "{\"record_type\":";
  append_canonical_string(out, record.record_type);
  out += ",\"record_id\":";
  append_canonical_string(out, record.record_id);
  out += ",\"events\":[";
  for (size_t i = 0; i < timeline.size(); ++i) {
    const TimelineEntry& t = timeline[i];
    if (i) out += ",";
    out += "{\"event\":" + event_to_json(t.event.event, t.event.processed);
    out += ",\"decision\":\"" + t.decision + "\",\"reason\":";
    append_canonical_string(out, t.reason);
    out += ",\"version\":" + (t.version ? std::to_string(*t.version) : std::string("null"));
    out += ",\"duplicates\":" + std::to_string(t.duplicates) + ",\"audit\":[";
    for (size_t j = 0; j < t.audit.size(); ++j) {
      if (j) out += ",";
      out += audit_entry_to_json(t.audit[j]);
    }
    out += "]}";
  }
  return out + "]}";
}

}  // namespace backbone::pipeline
