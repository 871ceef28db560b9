#include "cli/topology_view.h"

namespace backbone::cli {

std::string policy_text(const SubscriptionConfig& c) {
  std::string s = c.ordered ? "ordered" : "unordered";
  s += ", ack " + format_duration(c.ack_deadline_us);
  s += ", retry " + (c.retry ? format_duration(c.retry->min_backoff_us) + ".." +
                                   format_duration(c.retry->max_backoff_us)
                             : std::string("at once"));
  s += ", dead-letter " + (c.dead_letter ? c.dead_letter->topic + " after " +
                                               std::to_string(c.dead_letter->max_delivery_attempts)
                                         : std::string("none"));
  s += ", retention " + format_duration(c.retention_us);
  return s;
}

nlohmann::json subscription_json(const SubscriptionConfig& c) {
  nlohmann::json j = {{"name", c.name},
                      {"topic", c.topic},
                      {"ordered", c.ordered},
                      {"ack_deadline_seconds", static_cast<double>(c.ack_deadline_us) / kSecond},
                      {"retention_seconds", static_cast<double>(c.retention_us) / kSecond},
                      {"labels", c.labels},
                      {"retry", nullptr},
                      {"dead_letter", nullptr}};
  if (c.retry) {
    j["retry"] = {{"min_backoff_seconds", static_cast<double>(c.retry->min_backoff_us) / kSecond},
                  {"max_backoff_seconds", static_cast<double>(c.retry->max_backoff_us) / kSecond}};
  }
  if (c.dead_letter) {
    j["dead_letter"] = {{"topic", c.dead_letter->topic},
                        {"max_delivery_attempts", c.dead_letter->max_delivery_attempts}};
  }
  return j;
}

nlohmann::json item_json(const ProvisionItem& item) {
  nlohmann::json j;
  if (item.subscription) {
    j = subscription_json(*item.subscription);
  } else {
    j = {{"name", item.name}, {"labels", item.topic ? item.topic->labels : Attributes{}}};
  }
  j["kind"] = item.kind == ProvisionItem::Kind::kTopic ? "topic" : "subscription";
  j["state"] = provision_state_name(item.state);
  j["differences"] = item.differences;
  return j;
}

}  // namespace backbone::cli
