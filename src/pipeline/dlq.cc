#include "pipeline/dlq.h"

#include <algorithm>
#include <optional>
#include <unordered_set>

namespace backbone::pipeline {
namespace {

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
  if (!last || last->action != AuditAction::kDeadLettered) return std::optional<DlqEntry>();
  auto e = store.get(id);
  if (!e.ok()) return e.error();
  return std::optional<DlqEntry>(DlqEntry{*e, *last, *history});
}

}  // namespace

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
