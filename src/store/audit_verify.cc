// verify_audit_chain: recomputes the audit chain over the EventStore port, so that every
// backend is verified by the same code.
#include <unordered_map>

#include "backbone/event_store.h"

namespace backbone {

Result<AuditVerifyReport> verify_audit_chain(EventStore& store) {
  constexpr size_t kPage = 1000;
  AuditVerifyReport report;
  std::string previous{kAuditGenesis};
  std::optional<EventId> after;
  struct Known {
    std::string fingerprint;
    RecordKey record;
  };
  std::unordered_map<std::string, Known> events;  // event id -> what the entry must match
  auto fail = [&](const AuditEntry& e, std::string problem) {
    report.ok = false;
    report.first_bad_entry = e.id;
    report.first_bad_position = report.entries_checked;
    report.problem = std::move(problem);
    return report;
  };
  for (;;) {
    auto page = store.scan_audit(after, kPage);
    if (!page.ok()) return page.error();
    if (page->empty()) break;
    if (events.size() > 4 * kPage) events.clear();
    for (const AuditEntry& e : *page) {
      const std::string key = e.event_id.str();
      auto it = events.find(key);
      if (it == events.end()) {
        auto ev = store.get(e.event_id);
        if (!ev.ok()) {
          if (ev.code() == Errc::kNotFound) {
            return fail(e, "its event " + key + " does not exist");
          }
          if (ev.code() == Errc::kDataLoss) return fail(e, ev.error().message);
          return ev.error();
        }
        it = events.emplace(key, Known{ev->event.fingerprint(), ev->event.record_key()}).first;
      }
      if (it->second.record != e.record) {
        return fail(e, "record " + e.record.record_type + "/" + e.record.record_id +
                           " differs from its event's record");
      }
      if (it->second.fingerprint != e.fingerprint) {
        return fail(e, "fingerprint " + e.fingerprint + " does not match its event's " +
                           it->second.fingerprint);
      }
      const std::string expected = audit_chain_hash(previous, e);
      if (expected != e.chain_hash) {
        return fail(e, "chain_hash " + e.chain_hash + " does not match the recomputed " + expected);
      }
      previous = e.chain_hash;
      ++report.entries_checked;
    }
    after = page->back().id;
  }
  return report;
}

}  // namespace backbone
