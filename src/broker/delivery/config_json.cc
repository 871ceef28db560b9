#include "broker/delivery/config_json.h"

#include <nlohmann/json.hpp>

namespace backbone::delivery {

using nlohmann::json;

json topic_config_to_json(const TopicConfig& c) {
  json j = {{"name", c.name}, {"labels", c.labels}};
  if (c.retention_us) j["retention_us"] = *c.retention_us;
  return j;
}

TopicConfig topic_config_from_json(const json& j) {
  TopicConfig c{j.at("name").get<std::string>(), j.at("labels").get<Attributes>(), std::nullopt};
  if (j.contains("retention_us")) c.retention_us = j["retention_us"].get<int64_t>();
  return c;
}

json subscription_config_to_json(const SubscriptionConfig& c) {
  json j = {{"name", c.name},
            {"topic", c.topic},
            {"ack_deadline_us", c.ack_deadline_us},
            {"ordered", c.ordered},
            {"key_delivery", key_delivery_name(c.key_delivery)},
            {"retention_us", c.retention_us},
            {"labels", c.labels}};
  if (c.detached) j["detached"] = true;
  if (c.retry)
    j["retry"] = {{"min_us", c.retry->min_backoff_us}, {"max_us", c.retry->max_backoff_us}};
  if (c.dead_letter) {
    j["dead_letter"] = {{"topic", c.dead_letter->topic},
                        {"max_delivery_attempts", c.dead_letter->max_delivery_attempts}};
  }
  return j;
}

SubscriptionConfig subscription_config_from_json(const json& j) {
  SubscriptionConfig c;
  c.name = j.at("name").get<std::string>();
  c.topic = j.at("topic").get<std::string>();
  c.ack_deadline_us = j.at("ack_deadline_us").get<int64_t>();
  c.ordered = j.at("ordered").get<bool>();
  // Absent in what was written before there was a choice: one at a time, as it was.
  c.key_delivery = key_delivery_from_name(j.value("key_delivery", std::string()))
                       .value_or(KeyDelivery::kOneAtATime);
  c.retention_us = j.at("retention_us").get<int64_t>();
  c.labels = j.at("labels").get<Attributes>();
  c.detached = j.value("detached", false);
  if (j.contains("retry")) {
    c.retry =
        RetryPolicy{j["retry"].at("min_us").get<int64_t>(), j["retry"].at("max_us").get<int64_t>()};
  }
  if (j.contains("dead_letter")) {
    c.dead_letter = DeadLetterPolicy{j["dead_letter"].at("topic").get<std::string>(),
                                     j["dead_letter"].at("max_delivery_attempts").get<int>()};
  }
  return c;
}

}  // namespace backbone::delivery
