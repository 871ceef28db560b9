// The pipeline's messages on the topology's topics (doc/pipeline.md):
//
//   raw     data: the event (event_json.h)        attributes: event_id
//   merged  data: {"event_id","record_type","record_id","source","timestamp","version",
//                  "kind","changes"}              attributes: event_id, version
//   error   data: the event                       attributes: event_id, failure, reason
//   dlq     data: the event                       attributes: event_id, reason, stage,
//                                                 failure_history (JSON)
//
// Every message of a raw, merged or error topic carries the ordering key
// "{record_type}:{record_id}".
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>

#include "backbone/broker.h"
#include "backbone/event.h"
#include "pipeline/merge_rules.h"

namespace backbone::pipeline {

inline constexpr const char* kAttrEventId = "event_id";
inline constexpr const char* kAttrVersion = "version";
inline constexpr const char* kAttrFailure = "failure";  // "transient" or "gap"
inline constexpr const char* kAttrReason = "reason";
inline constexpr const char* kAttrStage = "stage";
inline constexpr const char* kAttrFailureHistory = "failure_history";

OutgoingMessage raw_message(const Event& event);
// `detail` is the audit detail of the merge (it holds version, kind and the applied changes).
Result<OutgoingMessage> merged_message(const Event& event, const std::string& detail);
// The same from its parts; `changes` is the applied patch in canonical JSON.
OutgoingMessage merged_message(const Event& event, uint64_t version, const std::string& kind,
                               const std::string& changes);
OutgoingMessage error_message(const Event& event, const std::string& failure,
                              const std::string& reason);
OutgoingMessage dlq_message(const Event& event, const std::string& stage, const std::string& reason,
                            const std::string& failure_history);

// The event id a pipeline message is about: kInvalidArgument when it has none (a poison
// message).
Result<EventId> message_event_id(const Message& message);

}  // namespace backbone::pipeline
