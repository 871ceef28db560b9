#include "pipeline/watchers.h"

#include "backbone/log.h"
#include "core/json_internal.h"
#include "pipeline/dlq.h"
#include "pipeline/messages.h"

namespace backbone::pipeline {

using nlohmann::json;

Result<std::string> AuditProjector::mismatch(const Message& m) {
  auto id = message_event_id(m);
  if (!id.ok()) return "it names no event: " + id.error().message;
  auto v = m.attributes.find(kAttrVersion);
  if (v == m.attributes.end()) return std::string("it has no version attribute");
  const json data = json::parse(m.data, nullptr, false);
  if (!data.is_object() || !data.contains("changes") || !data["changes"].is_object()) {
    return std::string("its data is not a merged record version");
  }
  auto event = store_.get(*id);
  if (!event.ok()) {
    if (event.code() == Errc::kNotFound) return "its event " + id->str() + " is not stored";
    return event.error();
  }
  auto entries = store_.audit_for_event(*id);
  if (!entries.ok()) return entries.error();
  for (const AuditEntry& a : *entries) {
    if ((a.action != AuditAction::kMerged && a.action != AuditAction::kRebased) || !a.detail) {
      continue;
    }
    const json d = json::parse(*a.detail, nullptr, false);
    if (!d.is_object() || !d.contains("version") ||
        std::to_string(d.value("version", 0ull)) != v->second) {
      continue;
    }
    if (a.fingerprint != event->event.fingerprint()) {
      return "the audit entry of version " + v->second + " has another fingerprint";
    }
    if (d.value("changes", json::object()) != data["changes"]) {
      return "its changes differ from those the audit log records for version " + v->second;
    }
    return std::string();
  }
  return "the audit log has no merge of " + id->str() + " at version " + v->second;
}

ConsumerDecision AuditProjector::on_message(const ReceivedMessage& m) {
  auto wrong = mismatch(m.message);
  if (!wrong.ok()) return ConsumerDecision::nack(wrong.error().describe());
  if (!wrong->empty()) {
    if (metrics_) {
      metrics_
          ->counter("backbone_audit_projection_mismatches_total",
                    "Merged messages that the audit log does not bear out", {{"env", env_}})
          .inc();
    }
    log::warn("audit.mismatch", {{"env", env_}, {"message", m.message.id}, {"why", *wrong}});
  }
  return ConsumerDecision::ack();
}

ConsumerDecision DlqInspector::on_message(const ReceivedMessage& m) {
  auto id = message_event_id(m.message);
  if (!id.ok()) return poison_message(m.message, id.error().message);
  auto open = show_dead_letter(store_, *id);
  if (open.ok()) {
    // A message of an earlier dead-lettering (replayed meanwhile, and dead-lettered again) is
    // superseded by the latest one's.
    if (m.message.publish_time < open->dead_lettered.created_at) return ConsumerDecision::ack();
    return ConsumerDecision::nack("an open dead letter", kRecheckUs);
  }
  if (open.code() != Errc::kNotFound) return ConsumerDecision::nack(open.error().describe());
  // Out of the DLQ, or never stored (poison naming an unknown event): stored or not, decide.
  auto stored = store_.get(*id);
  if (!stored.ok() && stored.code() == Errc::kNotFound) {
    return poison_message(m.message, "names event " + id->str() + ", which was never stored");
  }
  if (!stored.ok()) return ConsumerDecision::nack(stored.error().describe());
  return ConsumerDecision::ack();
}

ConsumerDecision DlqInspector::poison_message(const Message& m, std::string reason) {
  auto gone = discarded(m.id);
  if (!gone.ok()) return ConsumerDecision::nack(gone.error().describe());
  std::lock_guard lk(mu_);
  if (*gone) {
    held_.erase(m.id);
    return ConsumerDecision::ack();
  }
  PoisonLetter& p = held_[m.id];
  p.message_id = m.id;
  p.data = m.data.substr(0, 4096);
  p.attributes = m.attributes;
  p.published_at = m.publish_time;
  p.reason = reason;
  return ConsumerDecision::nack("poison: " + reason, kRecheckUs);
}

Result<bool> DlqInspector::discarded(const std::string& id) {
  std::lock_guard lk(mu_);
  if (discarded_.count(id)) return true;
  if (!reader_) {
    if (!open_reader_) return false;
    auto r = open_reader_();
    if (!r.ok()) return r.error();
    reader_ = std::move(*r);
  }
  for (;;) {
    auto acts = reader_->admin_actions(admin_cursor_, 1000);
    if (!acts.ok()) return acts.error();
    for (const AdminAction& a : *acts) {
      if (a.action == kDiscardPoison) discarded_.insert(a.target);
    }
    if (acts->empty()) break;
    admin_cursor_ = acts->back().id;
    if (acts->size() < 1000) break;
  }
  return discarded_.count(id) > 0;
}

std::vector<PoisonLetter> DlqInspector::poison() const {
  std::lock_guard lk(mu_);
  std::vector<PoisonLetter> out;
  for (const auto& [id, p] : held_) out.push_back(p);
  return out;
}

}  // namespace backbone::pipeline
