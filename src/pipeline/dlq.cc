#include "pipeline/dlq.h"

#include <algorithm>
#include <optional>
#include <unordered_set>

#include "backbone/canonical_json.h"
#include "backbone/event_json.h"
#include "core/json_internal.h"

namespace backbone::pipeline {
namespace {

// A field of the entry's detail ("" when absent).
std::string detail_field(const AuditEntry& a, const char* field) {
  if (!a.detail) return "";
  auto d = nlohmann::json::parse(*a.detail, nullptr, false);
  if (!d.is_object() || !d.contains(field) || !d[field].is_string()) return "";
  return d[field].get<std::string>();
}

bool terminal(AuditAction a) {
  return a == AuditAction::kMerged || a == AuditAction::kRebased || a == AuditAction::kConflict ||
         a == AuditAction::kDeadLettered || a == AuditAction::kReplayed;
}

Result<std::optional<DlqEntry>> entry_of(EventStore& store, const EventId& id) {
  auto history = store.audit_for_event(id);
  if (!history.ok()) return history.error();
  const AuditEntry* last = nullptr;
  for (const AuditEntry& a : *history) {
    if (terminal(a.action)) last = &a;
  }
  if (!last || last->action != AuditAction::kDeadLettered || is_discard(*last)) {
    return std::optional<DlqEntry>();
  }
  auto e = store.get(id);
  if (!e.ok()) return e.error();
  return std::optional<DlqEntry>(DlqEntry{*e, *last, *history});
}

}  // namespace

bool is_discard(const AuditEntry& entry) {
  return entry.action == AuditAction::kDeadLettered &&
         detail_field(entry, "resolution") == "discarded";
}

std::string dlq_reason(const DlqEntry& e) { return detail_field(e.dead_lettered, "reason"); }
std::string dlq_stage(const DlqEntry& e) { return detail_field(e.dead_lettered, "stage"); }

bool DlqFilter::matches(const DlqEntry& e) const {
  const Timestamp at = e.dead_lettered.created_at;
  return (record_type.empty() || e.event.event.record_type() == record_type) &&
         (reason.empty() || dlq_reason(e).find(reason) != std::string::npos) &&
         (stage.empty() || dlq_stage(e) == stage) && (!since || !(at < *since)) &&
         (!until || at < *until);
}

Result<DlqFilter> DlqFilter::from(
    const std::function<std::optional<std::string>(const char* name)>& get) {
  DlqFilter f;
  f.record_type = get("record_type").value_or("");
  f.reason = get("reason").value_or("");
  f.stage = get("stage").value_or("");
  if (!f.stage.empty() && f.stage != "merge" && f.stage != "retry") {
    return make_error(Errc::kInvalidArgument, "must be merge or retry, got \"" + f.stage + "\"",
                      "stage");
  }
  for (auto [name, into] : {std::pair{"since", &f.since}, std::pair{"until", &f.until}}) {
    auto text = get(name);
    if (!text || text->empty()) continue;
    auto t = Timestamp::parse_rfc3339(*text);
    if (!t.ok()) return make_error(Errc::kInvalidArgument, t.error().message, name);
    *into = *t;
  }
  return f;
}

std::string dlq_entry_to_json(const DlqEntry& e, bool history) {
  std::string out = "{\"event\":" + event_to_json(e.event.event, e.event.processed);
  out += ",\"dead_lettered_at\":\"" + e.dead_lettered.created_at.to_rfc3339() + "\"";
  out += ",\"reason\":";
  append_canonical_string(out, dlq_reason(e));
  out += ",\"stage\":";
  append_canonical_string(out, dlq_stage(e));
  out += ",\"detail\":" + e.dead_lettered.detail.value_or("null");
  if (history) {
    out += ",\"audit\":[";
    for (size_t i = 0; i < e.history.size(); ++i) {
      out += (i ? "," : "") + audit_entry_to_json(e.history[i]);
    }
    out += "]";
  }
  return out + "}";
}

Result<std::vector<DlqEntry>> select_dead_letters(EventStore& store, const DlqFilter& filter) {
  auto all = list_dead_letters(store);
  if (!all.ok()) return all.error();
  std::vector<DlqEntry> out;
  for (DlqEntry& e : *all) {
    if (filter.matches(e)) out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const DlqEntry& a, const DlqEntry& b) {
    const Event& x = a.event.event;
    const Event& y = b.event.event;
    return std::make_pair(x.timestamp(), x.id()) < std::make_pair(y.timestamp(), y.id());
  });
  return out;
}

Result<std::vector<DlqEntry>> list_dead_letters(EventStore& store) {
  std::vector<EventId> order;
  std::unordered_set<std::string> seen;
  std::optional<EventId> after;
  for (;;) {
    auto page = store.scan_audit(after, 1000);
    if (!page.ok()) return page.error();
    if (page->empty()) break;
    for (const AuditEntry& a : *page) {
      if (a.action == AuditAction::kDeadLettered && seen.insert(a.event_id.str()).second) {
        order.push_back(a.event_id);
      }
    }
    after = page->back().id;
  }
  std::vector<DlqEntry> out;
  for (const EventId& id : order) {
    auto e = entry_of(store, id);
    if (!e.ok()) return e.error();
    if (*e) out.push_back(std::move(**e));
  }
  return out;
}

Result<DlqEntry> show_dead_letter(EventStore& store, const EventId& id) {
  auto e = store.get(id);
  if (!e.ok()) return e.error();
  auto entry = entry_of(store, id);
  if (!entry.ok()) return entry.error();
  if (!*entry) {
    return make_error(Errc::kNotFound, "event " + id.str() + " is not in the dead-letter queue");
  }
  return std::move(**entry);
}

}  // namespace backbone::pipeline
