#include "cli/topology_view.h"

namespace backbone::cli {

std::string policy_text(const SubscriptionConfig& c) {
  std::string s =
      c.ordered ? "ordered (" + std::string(key_delivery_name(c.key_delivery)) + ")" : "unordered";
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

std::string backlog_text(const Result<SubscriptionStats>& stats) {
  if (!stats.ok()) return "backlog unknown: " + stats.error().describe();
  auto n = [](const std::optional<uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("unknown");
  };
  std::string s = "backlog " + n(stats->undelivered) + ", in flight " + n(stats->in_flight) +
                  ", oldest unacked " +
                  (stats->oldest_unacked_age_us ? format_duration(*stats->oldest_unacked_age_us)
                                                : std::string("unknown")) +
                  ", dead-lettered " + n(stats->dead_lettered);
  if (stats->client) {
    s += "; this process: in flight " + std::to_string(stats->client->in_flight) + ", held " +
         std::to_string(stats->client->held) + ", dead-lettered " +
         std::to_string(stats->client->dead_lettered);
  }
  return s;
}

nlohmann::json subscription_json(const SubscriptionConfig& c) {
  nlohmann::json j = {{"name", c.name},
                      {"topic", c.topic},
                      {"ordered", c.ordered},
                      {"key_delivery", c.ordered ? nlohmann::json(key_delivery_name(c.key_delivery))
                                                 : nlohmann::json(nullptr)},
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
  j["warnings"] = item.warnings;
  return j;
}

}  // namespace backbone::cli
