#include "stress/verify.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json_internal.h"
#include "stress/generator.h"

namespace backbone::stress {

Result<VerifyReport> verify_stress(const VerifyInput& in) {
  VerifyReport r;
  EventStore& store = *in.store;
  std::vector<Event> stored;
  std::set<std::string> unique;
  size_t lost = 0;
  for (const EventId& id : in.sent) {
    if (!unique.insert(id.str()).second) continue;
    auto e = store.get(id);
    if (!e.ok()) return e.error();
    if (!e->processed && ++lost <= 5)
      r.violations.push_back("lost: " + id.str() + " was never processed");
    stored.push_back(e->event);
  }
  if (lost > 5) r.violations.push_back(std::to_string(lost) + " events lost in all");
  auto expected = Workload::fold(stored, in.settings);
  if (!expected.ok()) return expected.error();
  r.rejected = expected->rejected;
  size_t mismatches = 0;
  for (const auto& [key, want] : expected->records) {
    auto have = store.get_record(key);
    if (!have.ok()) return have.error();
    const bool same = want.version == 0 ? !*have
                                        : (*have && (*have)->version == want.version &&
                                           (*have)->state == want.state &&
                                           (*have)->field_versions == want.field_versions);
    if (!same && ++mismatches <= 5) {
      r.violations.push_back("record " + key.record_type + "/" + key.record_id +
                             ": the fold has version " + std::to_string(want.version) +
                             ", the store " + (*have ? std::to_string((*have)->version) : "none"));
    }
  }
  if (mismatches > 5) r.violations.push_back(std::to_string(mismatches) + " records differ in all");
  std::set<std::string> ordering_keys;
  for (const auto& [key, want] : expected->records) ordering_keys.insert(OrderingKey(key).str());
  std::map<std::string, int> merges;
  std::optional<EventId> after;
  for (;;) {
    auto page = store.scan_audit(after, 5000);
    if (!page.ok()) return page.error();
    if (page->empty()) break;
    for (const auto& a : *page) {
      if ((a.action == AuditAction::kMerged || a.action == AuditAction::kRebased) &&
          expected->records.count(a.record)) {
        ++merges[a.event_id.str()];
      }
    }
    after = page->back().id;
  }
  size_t twice = 0;
  for (const auto& [id, n] : merges) twice += n > 1;
  if (twice) r.violations.push_back(std::to_string(twice) + " events applied twice");
  r.merged = merges.size();
  if (r.merged != expected->merged) {
    r.violations.push_back("merged " + std::to_string(r.merged) + " events; the fold merges " +
                           std::to_string(expected->merged));
  }
  std::map<std::string, uint64_t> last;
  std::set<std::pair<std::string, uint64_t>> seen;
  size_t disorder = 0, malformed = 0;
  for (;;) {
    auto got = in.next_merged();
    if (!got.ok()) return got.error();
    if (got->empty()) break;
    for (const MergedSeen& m : *got) {
      if (!ordering_keys.count(m.ordering_key)) continue;  // another workload's record
      // A merged message of the workload's records that cannot be read is a violation.
      const std::string what = "a merged message of " + m.ordering_key;
      auto body = json_internal::parse_strict(m.data);
      auto version = body.ok() ? json_internal::field<uint64_t>(*body, "version", what)
                               : Result<uint64_t>(body.error());
      auto event_id = body.ok() ? json_internal::field<std::string>(*body, "event_id", what)
                                : Result<std::string>(body.error());
      if (!version.ok() || !event_id.ok()) {
        if (++malformed <= 3) {
          r.violations.push_back((version.ok() ? event_id.error() : version.error()).describe());
        }
        continue;
      }
      const uint64_t v = *version;
      if (!seen.insert({*event_id, v}).second) continue;
      uint64_t& l = last[m.ordering_key];
      if (v <= l) ++disorder;
      l = v;
      auto stamp = json_internal::optional_field<std::string>(*body, "timestamp", what);
      auto ts = Timestamp::parse_rfc3339(stamp.ok() && *stamp ? **stamp : "");
      if (ts.ok()) r.latency_ms.push_back((m.publish_time.micros() - ts->micros()) / 1000.0);
    }
  }
  if (disorder) r.violations.push_back(std::to_string(disorder) + " per-record order violations");
  if (malformed) r.violations.push_back(std::to_string(malformed) + " merged messages unreadable");
  // The DLQ: distinct dead letters (a crash may repeat a message; poison has no event id, so
  // each poison message counts). The messages are handed back when counted.
  std::set<std::string> dead;
  size_t anonymous = 0;
  auto letters = in.dead_letters();
  if (!letters.ok()) return letters.error();
  for (const auto& id : *letters) {
    if (!id) {
      ++anonymous;
    } else if (unique.count(*id)) {  // one of this workload's events
      dead.insert(*id);
    }
  }
  r.dlq = dead.size() + anonymous;
  const size_t want_dlq = in.poison + expected->rejected;
  if (r.dlq != want_dlq) {
    r.violations.push_back("the DLQ holds " + std::to_string(r.dlq) + " dead letters, expected " +
                           std::to_string(want_dlq) + " (" + std::to_string(in.poison) +
                           " poison + " + std::to_string(expected->rejected) + " conflicts)");
  }
  auto audit = verify_audit_chain(store);
  if (!audit.ok()) return audit.error();
  r.audit_entries = audit->entries_checked;
  if (!audit->ok) r.violations.push_back("audit chain broken: " + audit->problem);
  return r;
}

void use_broker(VerifyInput& in, Broker& broker, const std::string& order_subscription,
                const std::string& dlq_subscription) {
  in.next_merged = [&broker, order_subscription]() -> Result<std::vector<MergedSeen>> {
    auto got = broker.pull(order_subscription, 1000);
    if (!got.ok()) return got.error();
    std::vector<MergedSeen> out;
    std::vector<std::string> acks;
    for (const auto& m : *got) {
      acks.push_back(m.ack_id);
      out.push_back({m.message.ordering_key, m.message.data, m.message.publish_time});
    }
    if (!acks.empty()) BACKBONE_TRY(broker.ack(order_subscription, acks));
    return out;
  };
  in.dead_letters = [&broker,
                     dlq_subscription]() -> Result<std::vector<std::optional<std::string>>> {
    std::vector<std::optional<std::string>> out;
    std::vector<std::string> held;
    for (;;) {
      auto got = broker.pull(dlq_subscription, 1000);
      if (!got.ok()) return got.error();
      if (got->empty()) break;
      for (const auto& m : *got) {
        held.push_back(m.ack_id);
        auto id = m.message.attributes.find("event_id");
        out.push_back(id == m.message.attributes.end() ? std::nullopt
                                                       : std::optional<std::string>(id->second));
      }
    }
    if (!held.empty()) BACKBONE_TRY(broker.nack(dlq_subscription, held, 0, "counted"));
    return out;
  };
}

}  // namespace backbone::stress
