#include "pipeline/messages.h"

#include "backbone/event_json.h"
#include "core/json_internal.h"

namespace backbone::pipeline {

OutgoingMessage raw_message(const Event& event) {
  return {event_to_json(event),
          {{kAttrEventId, event.id().str()}},
          OrderingKey(event.record_key()).str()};
}

OutgoingMessage merged_message(const Event& event, const MergeDecision& d) {
  nlohmann::json body = {{"event_id", event.id().str()},
                         {"record_type", event.record_type()},
                         {"record_id", event.record_id()},
                         {"source", event.source()},
                         {"timestamp", event.timestamp().to_rfc3339()},
                         {"version", d.next.version},
                         {"kind", merge_kind_name(d.kind)},
                         {"changes", nlohmann::json::parse(d.effective_changes)}};
  std::string data;
  BACKBONE_ASSERT(json_internal::write_canonical(body, data).ok());
  return {std::move(data),
          {{kAttrEventId, event.id().str()}, {kAttrVersion, std::to_string(d.next.version)}},
          OrderingKey(event.record_key()).str()};
}

OutgoingMessage error_message(const Event& event, const std::string& failure,
                              const std::string& reason) {
  return {event_to_json(event),
          {{kAttrEventId, event.id().str()},
           {kAttrFailure, failure},
           {kAttrReason, reason.substr(0, kMaxAttributeValueBytes)}},
          OrderingKey(event.record_key()).str()};
}

OutgoingMessage dlq_message(const Event& event, const std::string& stage, const std::string& reason,
                            const std::string& failure_history) {
  return {event_to_json(event),
          {{kAttrEventId, event.id().str()},
           {kAttrStage, stage},
           {kAttrReason, reason.substr(0, kMaxAttributeValueBytes)},
           {kAttrFailureHistory, failure_history.substr(0, kMaxAttributeValueBytes)}},
          OrderingKey(event.record_key()).str()};
}

Result<EventId> message_event_id(const Message& m) {
  auto it = m.attributes.find(kAttrEventId);
  if (it == m.attributes.end()) {
    return make_error(Errc::kInvalidArgument, "the message has no event_id attribute");
  }
  auto id = EventId::parse(it->second);
  if (!id.ok()) return make_error(Errc::kInvalidArgument, "event_id: " + id.error().message);
  return *id;
}

}  // namespace backbone::pipeline
