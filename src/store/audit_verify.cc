// verify_audit_chain: recomputes the audit chains over the EventStore port, so that every
// backend is verified by the same code.
#include <unordered_map>

#include "backbone/event_store.h"

namespace backbone {

Result<AuditVerifyReport> verify_audit_chain(EventStore& store,
                                             const AuditVerifyProgress& progress) {
  constexpr size_t kPage = 1000;
  AuditVerifyReport report;
  // The heads first: every entry up to them exists when the log is read after; an entry
  // appended meanwhile lies beyond its head.
  auto heads = store.audit_heads();
  if (!heads.ok()) return heads.error();
  if (heads->empty()) return make_error(Errc::kDataLoss, "the store records no audit chain heads");
  report.heads = std::move(*heads);
  const std::optional<EventId> legacy_until = report.heads.front().legacy_until;
  struct Chain {
    std::string previous{kAuditGenesis};
    const AuditHead* head = nullptr;
    bool passed_head = false;
  };
  std::unordered_map<uint32_t, Chain> chains;
  for (const AuditHead& h : report.heads) {
    chains[h.slot].head = &h;
    chains[h.slot].passed_head = h.empty();
  }
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
      const uint32_t slot = AuditHead::slot_of(e.id, legacy_until);
      auto chain = chains.find(slot);
      if (chain == chains.end()) {
        return fail(e, "its id names writer slot " + std::to_string(slot) +
                           ", which the store"
                           " does not have");
      }
      Chain& c = chain->second;
      const std::string expected = audit_chain_hash(c.previous, e);
      if (expected != e.chain_hash) {
        return fail(e, "chain_hash " + e.chain_hash + " does not match the recomputed " + expected +
                           " (slot " + std::to_string(slot) + ")");
      }
      if (e.id == c.head->id) {
        if (e.chain_hash != c.head->chain_hash) {
          return fail(e, "slot " + std::to_string(slot) + "'s recorded head has chain_hash " +
                             c.head->chain_hash + ", not this entry's");
        }
        c.passed_head = true;
      } else if (!c.passed_head && c.head->id < e.id) {
        return fail(e, "slot " + std::to_string(slot) + "'s chain passes its recorded head " +
                           c.head->id.str() + " without reaching it: that entry was removed");
      }
      c.previous = e.chain_hash;
      ++report.entries_checked;
    }
    after = page->back().id;
    if (progress && !progress(report, *after)) {
      return make_error(Errc::kUnavailable, "the audit verification was stopped");
    }
  }
  for (const auto& [slot, c] : chains) {
    if (!c.passed_head) {
      report.ok = false;
      report.first_bad_entry = c.head->id;
      report.first_bad_position = report.entries_checked;
      report.problem = "slot " + std::to_string(slot) + "'s chain ends before its recorded head " +
                       c.head->id.str() + ": entries were removed from its end";
      return report;
    }
  }
  return report;
}

}  // namespace backbone
