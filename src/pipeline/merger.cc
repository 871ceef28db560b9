#include "pipeline/merger.h"

#include <algorithm>

#include "core/json_internal.h"
#include "pipeline/messages.h"

namespace backbone::pipeline {
namespace {

using nlohmann::json;

std::string canonical(const json& j) {
  std::string out;
  BACKBONE_ASSERT(json_internal::write_canonical(j, out).ok());
  return out;
}

bool transient(Errc code) { return code == Errc::kUnavailable || code == Errc::kConflict; }

AuditDraft draft(const Event& e, AuditAction action, std::string detail) {
  return AuditDraft{e.id(), e.record_key(), action, e.fingerprint(), std::move(detail)};
}

}  // namespace

std::mutex& Merger::record_lock(const std::string& ordering_key) {
  return record_locks_[std::hash<std::string>{}(ordering_key) % record_locks_.size()];
}

void Merger::count(const char* name, const char* help, Labels labels) {
  if (!d_.metrics) return;
  labels["env"] = d_.env;
  d_.metrics->counter(name, help, labels).inc();
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
  return canonical(history);
}

void Merger::audit_retry(const Event& event, const std::string& failure, const std::string& reason,
                         int attempt) {
  AuditDraft a =
      draft(event, AuditAction::kRetryScheduled,
            canonical(json{
                {"failure", failure}, {"reason", reason.substr(0, 500)}, {"attempt", attempt}}));
  (void)d_.store->append_audit(std::span(&a, 1));  // best effort: the store may be what failed
}

Result<void> Merger::publish_dlq(const Event& event, const std::string& reason,
                                 const std::string& history) {
  OutgoingMessage m = dlq_message(event, "merge", reason, history);
  auto published = d_.publisher->publish(TopicFamily::kDlq, std::span(&m, 1));
  if (!published.ok()) return published.error();
  published_.add(event.id());
  return {};
}

Result<void> Merger::dead_letter(const Event& event, Stage stage, const std::string& reason,
                                 std::vector<AuditDraft> audit, bool replay,
                                 uint64_t record_version) {
  const std::string history = failure_history(event, reason);
  audit.push_back(draft(event, AuditAction::kDeadLettered,
                        canonical(json{{"reason", reason.substr(0, 500)},
                                       {"stage", stage == Stage::kRaw ? "merge" : "retry"},
                                       {"failure_history", json::parse(history)}})));
  MergeCommit c;
  c.event_id = event.id();
  c.record = event.record_key();
  c.expected_version = record_version;
  c.audit = std::move(audit);
  c.replay = replay;
  auto committed = d_.store->commit_merge(c);
  if (!committed.ok()) return committed.error();
  count("backbone_dead_lettered_events_total", "Events dead-lettered");
  if (stage == Stage::kRaw) return publish_dlq(event, reason, history);
  return {};
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
        if (d->contains("failure_history")) history = canonical((*d)["failure_history"]);
      }
    }
    out.reason = reason;
    if (out.emit && stage == Stage::kRaw) {
      if (auto r = publish_dlq(ev, reason, history); !r.ok()) {
        out.kind = Outcome::Kind::kTransient;
        out.reason = r.error().describe();
      }
      out.emit = false;
    }
    return out;
  }
  // Merged earlier. Only the record's latest version can lack its merged message (every merge
  // first makes sure its predecessor's went out), so publish that one if need be; repeating
  // an older version would put it after a newer one.
  if (auto r = ensure_current_published(ev.record_key()); !r.ok()) {
    out.kind = Outcome::Kind::kTransient;
    out.reason = r.error().describe();
  }
  return out;
}

Result<void> Merger::ensure_current_published(const RecordKey& record) {
  auto rec = d_.store->get_record(record);
  if (!rec.ok()) return rec.error();
  if (!*rec) return {};
  const uint64_t version = (*rec)->version;
  const std::string key = OrderingKey(record).str();
  {
    std::lock_guard lk(parked_mu_);
    auto it = published_version_.find(key);
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
  std::lock_guard lk(parked_mu_);
  published_version_[key] = version;
  return {};
}

Merger::Outcome Merger::process(const EventId& id, Stage stage, const ReceivedMessage* /*m*/) {
  Outcome out;
  auto fail = [&](const Error& e) {
    out.kind = Outcome::Kind::kTransient;
    out.reason = e.describe();
    return out;
  };
  auto stored = d_.store->get(id);
  if (!stored.ok()) {
    if (stored.code() == Errc::kNotFound || stored.code() == Errc::kDataLoss) {
      out.kind = Outcome::Kind::kDeadLettered;
      out.reason = "poison: " + stored.error().message;
      return out;
    }
    return fail(stored.error());
  }
  out.event = stored->event;
  const Event& ev = stored->event;
  std::optional<AuditEntry> terminal;
  if (stored->processed) {
    auto t = terminal_entry(id);
    if (!t.ok()) return fail(t.error());
    terminal = *t;
    // Done already (a duplicate delivery, or one after a crash): publish its outcome again
    // unless this Merger did.
    if (terminal && terminal->action != AuditAction::kReplayed) return reemit(ev, *terminal, stage);
    if (!terminal) return out;
  }
  const bool replay = stored->processed;

  auto record = d_.store->get_record(ev.record_key());
  if (!record.ok()) return fail(record.error());
  RecordState current;
  if (*record) current = {(*record)->version, (*record)->state, (*record)->field_versions};
  auto decision = decide_merge(ev, current, d_.settings,
                               [&](uint64_t v) { return origin_of(ev.record_key(), v); });
  if (!decision.ok()) {
    if (!transient(decision.code())) {
      auto dl = dead_letter(ev, stage, "invariant broken: " + decision.error().message, {}, replay,
                            current.version);
      if (!dl.ok()) return fail(dl.error());
      out.kind = Outcome::Kind::kDeadLettered;
      out.reason = decision.error().message;
      return out;
    }
    return fail(decision.error());
  }
  const MergeDecision& d = *decision;
  switch (d.kind) {
    case MergeDecision::Kind::kGap: {
      out.kind = Outcome::Kind::kGap;
      out.reason = "gap: base_version " + std::to_string(ev.base_version()) + ", record at " +
                   std::to_string(current.version);
      return out;
    }
    case MergeDecision::Kind::kRejected: {
      const std::string reason = "conflict: fields changed since base_version " +
                                 std::to_string(ev.base_version()) + " (policy reject)";
      auto dl = dead_letter(ev, stage, reason, {draft(ev, AuditAction::kConflict, d.detail)},
                            replay, current.version);
      if (!dl.ok()) return fail(dl.error());
      out.kind = Outcome::Kind::kDeadLettered;
      out.reason = reason;
      return out;
    }
    default:
      break;
  }
  const bool advances = d.new_version(current.version);
  if (advances) {
    // The previous version's merged message must be out before this one (after a crash it may
    // not be).
    if (auto r = ensure_current_published(ev.record_key()); !r.ok()) return fail(r.error());
  }
  MergeCommit c;
  c.event_id = ev.id();
  c.record = ev.record_key();
  c.expected_version = current.version;
  c.replay = replay;
  if (advances) {
    c.next = StoredRecord{ev.record_key(), d.next.version, d.next.state, d.next.field_versions,
                          d_.clock->now()};
  }
  switch (d.kind) {
    case MergeDecision::Kind::kFastForward:
      c.audit.push_back(draft(ev, AuditAction::kMerged, d.detail));
      break;
    case MergeDecision::Kind::kRebased:
      c.audit.push_back(draft(ev, AuditAction::kRebased, d.detail));
      break;
    default:  // resolved by policy
      c.audit.push_back(draft(ev, AuditAction::kConflict, d.detail));
      if (advances) c.audit.push_back(draft(ev, AuditAction::kMerged, d.detail));
      break;
  }
  auto committed = d_.store->commit_merge(c);
  if (!committed.ok()) return fail(committed.error());
  if (advances) {
    auto merged = merged_message(ev, d.detail);
    if (!merged.ok()) return fail(merged.error());
    auto published = d_.publisher->publish(TopicFamily::kMerged, std::span(&*merged, 1));
    // Committed but not published: the delivery comes again and publishes it then.
    if (!published.ok()) return fail(published.error());
    std::lock_guard lk(parked_mu_);
    published_version_[OrderingKey(ev.record_key()).str()] = d.next.version;
  }
  published_.add(ev.id());
  count("backbone_merged_events_total", "Events merged, by how",
        {{"kind", merge_kind_name(d.kind)}});
  return out;
}

void Merger::note_parked(const RecordKey& record, bool parked) {
  const std::string key = OrderingKey(record).str();
  std::lock_guard lk(parked_mu_);
  if (parked) {
    parked_records_.insert(key);
  } else {
    parked_records_.erase(key);
  }
}

Result<size_t> Merger::apply_parked(const RecordKey& record) {
  {
    // Most records have nothing parked: skip the reads. A restart loses this set, but the relay
    // and the retry copies park every parked event again.
    std::lock_guard lk(parked_mu_);
    if (!parked_records_.count(OrderingKey(record).str())) return size_t{0};
  }
  size_t merged = 0;
  for (int guard = 0; guard < 10'000; ++guard) {
    auto rec = d_.store->get_record(record);
    if (!rec.ok()) return rec.error();
    const uint64_t version = *rec ? (*rec)->version : 0;
    auto pending = d_.store->unprocessed_for_record(record, 100);
    if (!pending.ok()) return pending.error();
    // A parked event's base is ahead of the record; when none is, nothing is parked any more.
    if (std::none_of(pending->begin(), pending->end(),
                     [&](const StoredEvent& p) { return p.event.base_version() >= version; })) {
      note_parked(record, false);
      break;
    }
    std::optional<EventId> next;
    for (const StoredEvent& p : *pending) {
      if (p.event.base_version() != version) continue;
      auto entries = d_.store->audit_for_event(p.event.id());
      if (!entries.ok()) return entries.error();
      for (const AuditEntry& a : *entries) {
        if (a.action == AuditAction::kRetryScheduled && a.detail &&
            a.detail->find("\"failure\":\"gap\"") != std::string::npos) {
          next = p.event.id();
        }
      }
      if (next) break;
    }
    if (!next) break;
    Outcome o = process(*next, Stage::kRaw, nullptr);
    if (o.kind != Outcome::Kind::kDone) break;  // its retry copy takes it from here
    ++merged;
  }
  return merged;
}

ConsumerDecision Merger::on_raw(const ReceivedMessage& m) {
  std::lock_guard record(record_lock(m.message.ordering_key));
  auto id = message_event_id(m.message);
  const int64_t backoff = retry_backoff_us(d_.retry_policy, m.delivery_attempt);
  if (!id.ok()) {
    OutgoingMessage poison{m.message.data, m.message.attributes, m.message.ordering_key};
    poison.attributes[kAttrStage] = "merge";
    poison.attributes[kAttrReason] = "poison: " + id.error().message;
    if (poison.data.empty() && poison.attributes.empty()) poison.data = "(empty)";
    auto r = d_.publisher->publish(TopicFamily::kDlq, std::span(&poison, 1));
    if (!r.ok()) return ConsumerDecision::nack(r.error().describe(), backoff);
    return ConsumerDecision::ack();
  }
  Outcome o = process(*id, Stage::kRaw, &m);
  switch (o.kind) {
    case Outcome::Kind::kDone:
      if (d_.metrics) {
        d_.metrics
            ->histogram("backbone_ingest_to_merged_seconds",
                        "From the raw publish to the merge commit", {{"env", d_.env}})
            .observe(
                static_cast<double>(d_.clock->now().micros() - m.message.publish_time.micros()) /
                kSecond);
      }
      if (o.event) (void)apply_parked(o.event->record_key());
      return ConsumerDecision::ack();
    case Outcome::Kind::kDeadLettered:
      if (!o.event) {  // no stored event: forward the message itself
        OutgoingMessage poison{m.message.data, m.message.attributes, m.message.ordering_key};
        poison.attributes[kAttrStage] = "merge";
        poison.attributes[kAttrReason] = o.reason.substr(0, kMaxAttributeValueBytes);
        auto r = d_.publisher->publish(TopicFamily::kDlq, std::span(&poison, 1));
        if (!r.ok()) return ConsumerDecision::nack(r.error().describe(), backoff);
      }
      return ConsumerDecision::ack();
    case Outcome::Kind::kGap: {
      note_parked(o.event->record_key(), true);
      audit_retry(*o.event, "gap", o.reason, 0);
      OutgoingMessage e = error_message(*o.event, "gap", o.reason);
      auto r = d_.publisher->publish(TopicFamily::kError, std::span(&e, 1));
      if (!r.ok()) return ConsumerDecision::nack(r.error().describe(), backoff);
      return ConsumerDecision::ack();  // parked: the record's later events pass it
    }
    case Outcome::Kind::kTransient:
      if (m.delivery_attempt == 1 && o.event) {
        audit_retry(*o.event, "transient", o.reason, 1);
        OutgoingMessage e = error_message(*o.event, "transient", o.reason);
        (void)d_.publisher->publish(TopicFamily::kError, std::span(&e, 1));
      }
      // Keep the record's key busy: its later events wait behind this one, in order.
      return ConsumerDecision::nack(o.reason, backoff);
  }
  return ConsumerDecision::ack();
}

ConsumerDecision Merger::on_retry(const ReceivedMessage& m) {
  std::lock_guard record(record_lock(m.message.ordering_key));
  auto id = message_event_id(m.message);
  if (!id.ok()) return ConsumerDecision::dead_letter("poison: " + id.error().message);
  Outcome o = process(*id, Stage::kRetry, &m);
  switch (o.kind) {
    case Outcome::Kind::kDone:
      if (o.event) (void)apply_parked(o.event->record_key());
      return ConsumerDecision::ack();
    case Outcome::Kind::kDeadLettered:
      if (!o.emit) return ConsumerDecision::ack();
      if (o.event) published_.add(o.event->id());
      return ConsumerDecision::dead_letter(o.reason);
    case Outcome::Kind::kGap:
    case Outcome::Kind::kTransient: {
      const std::string failure = o.kind == Outcome::Kind::kGap ? "gap" : "transient";
      if (o.kind == Outcome::Kind::kGap && o.event) note_parked(o.event->record_key(), true);
      if (m.delivery_attempt >= d_.max_attempts) {
        if (o.event) {
          auto record = d_.store->get_record(o.event->record_key());
          const uint64_t version = record.ok() && *record ? (*record)->version : 0;
          auto dl =
              dead_letter(*o.event, Stage::kRetry,
                          o.reason + " (after " + std::to_string(m.delivery_attempt) + " attempts)",
                          {}, false, version);
          (void)dl;  // when the store is down, the broker's dead letter still carries it
          published_.add(o.event->id());
        }
        return ConsumerDecision::dead_letter(o.reason);
      }
      if (o.event) audit_retry(*o.event, failure, o.reason, m.delivery_attempt);
      return ConsumerDecision::nack(o.reason);
    }
  }
  return ConsumerDecision::ack();
}

}  // namespace backbone::pipeline
