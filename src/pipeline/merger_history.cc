// Merger: what the audit log says about earlier work (terminal entries, the merge behind a
// version, failure histories), re-emission after a crash, and the Merger's own bookkeeping.
#include "core/json_internal.h"
#include "pipeline/merger.h"

#include <chrono>
#include "pipeline/messages.h"

namespace backbone::pipeline {
namespace {

using nlohmann::json;

}  // namespace

void Merger::log_decision(std::string_view what, const Event& event,
                          std::initializer_list<log::Field> more) {
  if (!log::enabled(log::Level::kDebug)) return;
  // The common fields first, then `more`, in one line.
  const std::string record = event.record_type() + "/" + event.record_id();
  const std::string id = event.id().str();
  std::vector<log::Field> fields = {{"env", d_.env}, {"event", id}, {"record", record}};
  fields.insert(fields.end(), more.begin(), more.end());
  log::write_fields(log::Level::kDebug, what, fields);
}

void Merger::count(const char* name, const char* help, Labels labels, double n) {
  if (!d_.metrics || n == 0) return;
  labels["env"] = d_.env;
  d_.metrics->counter(name, help, labels).inc(n);
}

bool Merger::PublishedSet::contains(const EventId& id) {
  std::lock_guard lk(mu_);
  return ids_.count(id.str()) > 0;
}

void Merger::PublishedSet::add(const EventId& id) {
  constexpr size_t kCapacity = 200'000;
  std::lock_guard lk(mu_);
  if (!ids_.insert(id.str()).second) return;
  order_.push_back(id.str());
  if (order_.size() > kCapacity) {
    ids_.erase(order_.front());
    order_.pop_front();
  }
}

void Merger::note_published(const RecordKey& record, uint64_t version) {
  {
    std::lock_guard lk(bookkeeping_mu_);
    uint64_t& v = published_version_[OrderingKey(record).str()];
    v = std::max(v, version);
  }
  note_decided();
}

void Merger::note_decided() {
  {
    std::lock_guard lk(bookkeeping_mu_);
    ++merges_;
  }
  merged_.notify_all();
}

template <typename Read, typename Done>
auto Merger::wait_for_decisions(int64_t timeout_us, const Read& read, const Done& done)
    -> decltype(read()) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(std::max<int64_t>(0, timeout_us));
  for (;;) {
    uint64_t seen;
    {
      std::lock_guard lk(bookkeeping_mu_);
      seen = merges_;  // before the read, so that a decision after it wakes the wait below
    }
    auto r = read();
    if (!r.ok() || done(*r)) return r;
    std::unique_lock lk(bookkeeping_mu_);
    if (!merged_.wait_until(lk, deadline, [&] { return merges_ != seen; })) return r;
  }
}

Result<std::optional<StoredRecord>> Merger::wait_for_version(const RecordKey& record,
                                                             uint64_t version, int64_t timeout_us) {
  return wait_for_decisions(
      timeout_us, [&] { return d_.store->get_record(record); },
      [&](const std::optional<StoredRecord>& r) { return r && r->version >= version; });
}

Result<StoredEvent> Merger::wait_for_processed(const EventId& id, int64_t timeout_us) {
  return wait_for_decisions(
      timeout_us, [&] { return d_.store->get(id); },
      [](const StoredEvent& e) { return e.processed; });
}

void Merger::note_parked(const std::string& key, const Event& event) {
  std::lock_guard lk(bookkeeping_mu_);
  parked_[key][event.base_version()] = event.id();
}

bool Merger::maybe_parked(const std::string& key) {
  std::lock_guard lk(bookkeeping_mu_);
  return parked_.count(key) > 0;
}

std::optional<EventId> Merger::take_parked(const std::string& key, uint64_t version) {
  std::lock_guard lk(bookkeeping_mu_);
  auto it = parked_.find(key);
  if (it == parked_.end()) return std::nullopt;
  std::map<uint64_t, EventId>& by_base = it->second;
  by_base.erase(by_base.begin(), by_base.lower_bound(version));  // merged meanwhile
  std::optional<EventId> next;
  if (auto e = by_base.find(version); e != by_base.end()) {
    next = e->second;
    by_base.erase(e);
  }
  if (by_base.empty()) parked_.erase(it);
  return next;
}

Result<std::optional<AuditEntry>> Merger::terminal_entry(const EventId& id) {
  auto entries = d_.store->audit_for_event(id);
  if (!entries.ok()) return entries.error();
  for (auto it = entries->rbegin(); it != entries->rend(); ++it) {
    switch (it->action) {
      case AuditAction::kReplayed:
      case AuditAction::kMerged:
      case AuditAction::kRebased:
      case AuditAction::kConflict:
      case AuditAction::kDeadLettered:
        return std::optional<AuditEntry>(*it);
      default:
        break;
    }
  }
  return std::optional<AuditEntry>();
}

Result<std::optional<Merger::VersionMerge>> Merger::merge_of_version(const RecordKey& record,
                                                                     uint64_t version) {
  auto entries = d_.store->audit_for_record(record);
  if (!entries.ok()) return entries.error();
  for (auto it = entries->rbegin(); it != entries->rend(); ++it) {
    if ((it->action != AuditAction::kMerged && it->action != AuditAction::kRebased) ||
        !it->detail) {
      continue;
    }
    auto detail = json_internal::parse_strict(*it->detail);
    if (!detail.ok() || !detail->contains("version") || (*detail)["version"] != version) continue;
    auto e = d_.store->get(it->event_id);
    if (!e.ok()) return e.error();
    return std::optional<VersionMerge>(VersionMerge{std::move(e->event), *it->detail});
  }
  return std::optional<VersionMerge>();
}

Result<FieldOrigin> Merger::origin_of(const RecordKey& record, uint64_t version) {
  auto m = merge_of_version(record, version);
  if (!m.ok()) return m.error();
  if (!*m) {
    return make_error(Errc::kDataLoss, "no merge of version " + std::to_string(version) + " of " +
                                           record.record_type + "/" + record.record_id +
                                           " in the audit log");
  }
  return FieldOrigin{(*m)->event.timestamp(), (*m)->event.source()};
}

std::string Merger::failure_history(const Event& event, const std::string& last_reason) {
  json history = json::array();
  if (auto entries = d_.store->audit_for_event(event.id()); entries.ok()) {
    for (const AuditEntry& e : *entries) {
      if (e.action != AuditAction::kRetryScheduled || !e.detail) continue;
      auto detail = json_internal::parse_strict(*e.detail);
      if (!detail.ok()) continue;
      history.push_back({{"at", e.created_at.to_rfc3339()},
                         {"failure", detail->value("failure", "")},
                         {"error", detail->value("reason", "").substr(0, 100)}});
    }
  }
  history.push_back({{"at", d_.clock->now().to_rfc3339()},
                     {"failure", "final"},
                     {"error", last_reason.substr(0, 100)}});
  while (history.size() > 5) history.erase(history.begin());  // fits an attribute
  return json_internal::canonical_text(history);
}

AuditDraft Merger::retry_entry(const Event& event, const std::string& failure,
                               const std::string& reason, int attempt) {
  return AuditDraft{
      event.id(), event.record_key(), AuditAction::kRetryScheduled, event.fingerprint(),
      json_internal::canonical_text(
          json{{"failure", failure}, {"reason", reason.substr(0, 500)}, {"attempt", attempt}})};
}

void Merger::plan_dead_letter(Plan& plan, const Event& event, Stage stage,
                              const std::string& reason, std::vector<AuditDraft> audit, bool replay,
                              uint64_t record_version) {
  const std::string history = failure_history(event, reason);
  audit.push_back(AuditDraft{
      event.id(), event.record_key(), AuditAction::kDeadLettered, event.fingerprint(),
      json_internal::canonical_text(json{{"reason", reason.substr(0, 500)},
                                         {"stage", stage == Stage::kRaw ? "merge" : "retry"},
                                         {"failure_history", json::parse(history)}})});
  MergeCommit c;
  c.event_id = event.id();
  c.record = event.record_key();
  c.expected_version = record_version;
  c.audit = std::move(audit);
  c.replay = replay;
  plan.commit = std::move(c);
  plan.dead_letter = true;
  if (stage == Stage::kRaw) plan.dlq = dlq_message(event, "merge", reason, history);
}

Merger::Outcome Merger::reemit(const Event& ev, const AuditEntry& terminal, Stage stage) {
  Outcome out;
  out.event = ev;
  const bool ours = published_.contains(ev.id());
  if (terminal.action == AuditAction::kDeadLettered) {
    out.kind = Outcome::Kind::kDeadLettered;
    out.emit = !ours;
    std::string reason = "dead-lettered", history = "[]";
    if (terminal.detail) {
      if (auto d = json_internal::parse_strict(*terminal.detail); d.ok()) {
        reason = d->value("reason", reason);
        if (d->contains("failure_history"))
          history = json_internal::canonical_text((*d)["failure_history"]);
      }
    }
    out.reason = reason;
    if (out.emit && stage == Stage::kRaw) {
      OutgoingMessage m = dlq_message(ev, "merge", reason, history);
      if (auto r = d_.publisher->publish(TopicFamily::kDlq, std::span(&m, 1)); !r.ok()) {
        out.kind = Outcome::Kind::kTransient;
        out.reason = r.error().describe();
      } else {
        published_.add(ev.id());
      }
      out.emit = false;
    }
    return out;
  }
  // Merged earlier. Only the record's latest version can lack its merged message (every merge
  // first makes sure its predecessor's went out), so publish that one if need be; repeating
  // an older version would put it after a newer one.
  auto rec = d_.store->get_record(ev.record_key());
  Result<void> r = rec.ok() ? Result<void>() : Result<void>(rec.error());
  if (r.ok() && *rec) r = ensure_published(ev.record_key(), (*rec)->version);
  if (!r.ok()) {
    out.kind = Outcome::Kind::kTransient;
    out.reason = r.error().describe();
  }
  return out;
}

Result<void> Merger::ensure_published(const RecordKey& record, uint64_t version) {
  if (version == 0) return {};
  {
    std::lock_guard lk(bookkeeping_mu_);
    auto it = published_version_.find(OrderingKey(record).str());
    if (it != published_version_.end() && it->second >= version) return {};
  }
  auto merge = merge_of_version(record, version);
  if (!merge.ok()) return merge.error();
  if (*merge) {
    auto m = merged_message((*merge)->event, (*merge)->detail);
    if (!m.ok()) return m.error();
    auto published = d_.publisher->publish(TopicFamily::kMerged, std::span(&*m, 1));
    if (!published.ok()) return published.error();
  }
  note_published(record, version);
  return {};
}

}  // namespace backbone::pipeline
