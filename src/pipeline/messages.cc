#include "pipeline/messages.h"

#include "backbone/event_json.h"
#include "core/json_internal.h"

namespace backbone::pipeline {

OutgoingMessage raw_message(const Event& event) {
  return {event_to_json(event),
          {{kAttrEventId, event.id().str()}},
          OrderingKey(event.record_key()).str()};
}

Result<OutgoingMessage> merged_message(const Event& event, const std::string& detail) {
  auto d = json_internal::parse_strict(detail);
  if (!d.ok() || !d->contains("version") || !d->contains("changes")) {
    return make_error(Errc::kDataLoss,
                      "merge detail of " + event.id().str() + " lacks version or changes");
  }
  const uint64_t version = (*d)["version"].get<uint64_t>();
  nlohmann::json body = {{"event_id", event.id().str()},
                         {"record_type", event.record_type()},
                         {"record_id", event.record_id()},
                         {"source", event.source()},
                         {"timestamp", event.timestamp().to_rfc3339()},
                         {"version", version},
                         {"kind", d->value("kind", "")},
                         {"changes", (*d)["changes"]}};
  std::string data;
  BACKBONE_ASSERT(json_internal::write_canonical(body, data).ok());
  return OutgoingMessage{
      std::move(data),
      {{kAttrEventId, event.id().str()}, {kAttrVersion, std::to_string(version)}},
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
