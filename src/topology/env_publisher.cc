#include "backbone/topology.h"

namespace backbone {

EnvPublisher::EnvPublisher(Broker& broker, const Topology& topology, std::string env,
                           std::vector<std::string> all_envs)
    : broker_(broker), topology_(topology), env_(std::move(env)), all_envs_(std::move(all_envs)) {}

Result<std::vector<std::string>> EnvPublisher::publish(TopicFamily family,
                                                       std::span<const OutgoingMessage> messages) {
  if (family == TopicFamily::kRaw || family == TopicFamily::kMerged) {
    for (size_t i = 0; i < messages.size(); ++i) {
      if (messages[i].ordering_key.empty()) {
        return make_error(Errc::kInvalidArgument,
                          std::string("every message to the ") + topic_family_name(family) +
                              " topic needs the ordering key {record_type}:{record_id}",
                          "ordering_key")
            .at_item("messages", i);
      }
    }
  }
  return broker_.publish(topology_.topic_name(family, env_), messages);
}

Result<std::string> EnvPublisher::publish_record(TopicFamily family, const RecordKey& record,
                                                 std::string data, Attributes attributes) {
  OutgoingMessage m{std::move(data), std::move(attributes), OrderingKey(record).str()};
  auto ids = publish(family, std::span(&m, 1));
  if (!ids.ok()) return ids.error();
  return ids->front();
}

Result<std::vector<std::string>> EnvPublisher::publish_to(
    std::string_view topic, std::span<const OutgoingMessage> messages) {
  const auto owner = topology_.environment_of(topic, all_envs_);
  if (owner != std::optional<std::string>(env_)) {
    return make_error(
        Errc::kPermissionDenied,
        "a publisher bound to " + env_ + " may not publish to " + std::string(topic) +
            (owner ? " (it belongs to " + *owner + ")" : " (not a topic of " + env_ + ")"),
        "topic");
  }
  for (TopicFamily family :
       {TopicFamily::kRaw, TopicFamily::kMerged, TopicFamily::kError, TopicFamily::kDlq}) {
    if (topic == topology_.topic_name(family, env_)) return publish(family, messages);
  }
  return make_error(Errc::kPermissionDenied,
                    std::string(topic) + " is a subscription of " + env_ + ", not a topic",
                    "topic");
}

}  // namespace backbone
