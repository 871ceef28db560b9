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
// straight to the raw topic) stays too: only an operator can judge it.
//
// Thread-safety: the handlers are thread-safe (they only read the store).
#pragma once

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

class DlqInspector {
 public:
  static constexpr int64_t kRecheckUs = 30'000'000;
  explicit DlqInspector(EventStore& store) : store_(store) {}
  ConsumerDecision on_message(const ReceivedMessage& m);

 private:
  EventStore& store_;
};

}  // namespace backbone::pipeline
