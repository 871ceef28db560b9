#include "server/stats_json.h"

namespace backbone::server {

nlohmann::json backlog_json(const Result<SubscriptionStats>& stats) {
  const SubscriptionStats s = stats.ok() ? *stats : SubscriptionStats{};
  nlohmann::json j = nlohmann::json::object();
  nlohmann::json unknown = nlohmann::json::array();
  auto put = [&](const char* name, const auto& figure, double scale) {
    if (figure) {
      j[name] = scale == 1 ? nlohmann::json(*figure)
                           : nlohmann::json(static_cast<double>(*figure) / scale);
    } else {
      j[name] = nullptr;
      unknown.push_back(name);
    }
  };
  put("undelivered", s.undelivered, 1);
  put("in_flight", s.in_flight, 1);
  put("oldest_unacked_age_seconds", s.oldest_unacked_age_us, kSecond);
  put("dead_lettered", s.dead_lettered, 1);
  j["unknown"] = unknown;
  if (s.client) {
    j["client"] = {{"in_flight", s.client->in_flight},
                   {"held", s.client->held},
                   {"dead_lettered", s.client->dead_lettered}};
  }
  if (!stats.ok()) j["error"] = stats.error().describe();
  return j;
}

}  // namespace backbone::server
