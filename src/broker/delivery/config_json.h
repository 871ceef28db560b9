// The JSON form of topic, subscription and snapshot configs and of schemas, as the broker catalogs
// keep them (the embedded broker's catalog.json, the NATS backend's catalog bucket). Durations are
// in microseconds.
//
// Thread-safety: plain functions. The from_json functions throw nlohmann::json::exception on a
// malformed document; callers catch it and report kDataLoss.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "backbone/broker.h"

namespace backbone::delivery {

nlohmann::json topic_config_to_json(const TopicConfig& c);
TopicConfig topic_config_from_json(const nlohmann::json& j);
nlohmann::json subscription_config_to_json(const SubscriptionConfig& c);
SubscriptionConfig subscription_config_from_json(const nlohmann::json& j);
nlohmann::json snapshot_config_to_json(const SnapshotConfig& c);
SnapshotConfig snapshot_config_from_json(const nlohmann::json& j);
// A schema's revisions, newest first (never none).
nlohmann::json schema_revisions_to_json(const std::vector<SchemaConfig>& revisions);
std::vector<SchemaConfig> schema_revisions_from_json(const nlohmann::json& j);

}  // namespace backbone::delivery
