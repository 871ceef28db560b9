#include "pipeline/messages.h"

#include "backbone/canonical_json.h"
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
  if (!d.ok() || !d->contains("version") || !(*d)["version"].is_number_unsigned() ||
      !d->contains("changes") || !(*d)["changes"].is_object()) {
    return make_error(Errc::kDataLoss,
                      "merge detail of " + event.id().str() + " lacks version or changes");
  }
  std::string changes;
  BACKBONE_ASSERT(json_internal::write_canonical((*d)["changes"], changes).ok());
  return merged_message(event, (*d)["version"].get<uint64_t>(), d->value("kind", ""), changes);
}

OutgoingMessage merged_message(const Event& event, uint64_t version, const std::string& kind,
                               const std::string& changes) {
  // Written directly in canonical form (RFC 8785: keys in code-unit order), without a DOM.
  std::string data;
  data.reserve(changes.size() + 256);
  data += "{\"changes\":" + changes + ",\"event_id\":\"" + event.id().str() + "\",\"kind\":";
  append_canonical_string(data, kind);
  data += ",\"record_id\":";
  append_canonical_string(data, event.record_id());
  data += ",\"record_type\":";
  append_canonical_string(data, event.record_type());
  data += ",\"source\":";
  append_canonical_string(data, event.source());
  data += ",\"timestamp\":\"" + event.timestamp().to_rfc3339() +
          "\",\"version\":" + std::to_string(version) + "}";
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
