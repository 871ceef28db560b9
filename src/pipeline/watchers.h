// The consumers of the two subscriptions that no stage reads (SPEC §3), so that every
// subscription of the topology has one and its backlog means something:
//
// AuditProjector (`events.merged.E.audit`): checks each merged message against the store's audit
// log: the event's `merged` or `rebased` entry that made this version exists, and the message's
// fingerprint-bearing event and changes are the ones the entry records. A mismatch is counted
// (backbone_audit_projection_mismatches_total), logged as a warning, and acked: it is a finding
// for an operator, not something a retry repairs. A store that fails is retried (nack).
//
// DlqInspector (`events.dlq.E.inspect`): acks a dead letter's message once its event has left
// the DLQ (replayed, accepted, discarded, or merged after all). While it is open, the message is
// nacked to come back after kRecheckUs, so the subscription's backlog counts the open dead
// letters: a gauge worth alerting on. A message that names no stored event (poison published
// straight to the raw topic) stays too: only an operator can judge it. The inspector lists the
// poison it holds (poison()); an operator discards one with the admin act kDiscardPoison (target:
// the message id, in the store's admin audit, so that every process's inspector sees it), and it
// is acked at its next delivery.
//
// Thread-safety: the handlers are thread-safe (they only read the store).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "backbone/event_store.h"
#include "backbone/metrics.h"
#include "backbone/streaming_consumer.h"

namespace backbone::pipeline {

class AuditProjector {
 public:
  AuditProjector(EventStore& store, Metrics* metrics, std::string env)
      : store_(store), metrics_(metrics), env_(std::move(env)) {}
  ConsumerDecision on_message(const ReceivedMessage& m);
  // What is wrong with the merged message, or "" when the audit log agrees; an error when the
  // store cannot say.
  Result<std::string> mismatch(const Message& m);

 private:
  EventStore& store_;
  Metrics* metrics_;
  std::string env_;
};

// A message of the DLQ that names no stored event, as the inspector last saw it.
struct PoisonLetter {
  std::string message_id;
  std::string data;  // its first 4 KiB
  std::map<std::string, std::string> attributes;
  Timestamp published_at;
  std::string reason;  // why it names no event
};

class DlqInspector {
 public:
  static constexpr int64_t kRecheckUs = 30'000'000;
  static constexpr const char* kDiscardPoison = "dlq.discard_poison";  // the admin act
  // `open_reader` opens a store connection as reader, which may read the admin audit (the
  // merge worker's may not); it is opened at the first poison message.
  using OpenReader = std::function<Result<std::unique_ptr<EventStore>>()>;
  DlqInspector(EventStore& store, OpenReader open_reader)
      : store_(store), open_reader_(std::move(open_reader)) {}
  ConsumerDecision on_message(const ReceivedMessage& m);
  // The poison messages held at their last delivery here, by message id.
  std::vector<PoisonLetter> poison() const;

 private:
  ConsumerDecision poison_message(const Message& m, std::string reason);
  // Whether an operator discarded the poison message `id` (read from the admin audit).
  Result<bool> discarded(const std::string& id);
  EventStore& store_;
  OpenReader open_reader_;
  mutable std::mutex mu_;
  std::unique_ptr<EventStore> reader_;        // GUARDED_BY(mu_)
  std::optional<EventId> admin_cursor_;       // GUARDED_BY(mu_): the last admin act read
  std::set<std::string> discarded_;           // GUARDED_BY(mu_)
  std::map<std::string, PoisonLetter> held_;  // GUARDED_BY(mu_)
};

}  // namespace backbone::pipeline
