#include "broker/delivery/config_json.h"

#include <nlohmann/json.hpp>

namespace backbone::delivery {

using nlohmann::json;

namespace {

// What a name read back names; a name of none is a damaged document.
template <typename T>
T named(std::optional<T> value, const char* what, const json& at) {
  if (!value) throw json::other_error::create(501, std::string("unknown ") + what, &at);
  return *value;
}

}  // namespace

json topic_config_to_json(const TopicConfig& c) {
  json j = {{"name", c.name}, {"labels", c.labels}};
  if (c.retention_us) j["retention_us"] = *c.retention_us;
  if (c.schema) {
    j["schema"] = {{"name", c.schema->schema},
                   {"encoding", schema_encoding_name(c.schema->encoding)},
                   {"first_revision_id", c.schema->first_revision_id},
                   {"last_revision_id", c.schema->last_revision_id}};
  }
  return j;
}

TopicConfig topic_config_from_json(const json& j) {
  TopicConfig c{j.at("name").get<std::string>(), j.at("labels").get<Attributes>(), std::nullopt};
  if (j.contains("retention_us")) c.retention_us = j["retention_us"].get<int64_t>();
  if (j.contains("schema")) {
    const json& s = j["schema"];
    c.schema = TopicSchemaSettings{
        s.at("name").get<std::string>(),
        named(schema_encoding_from_name(s.at("encoding").get<std::string>()), "encoding", j),
        s.at("first_revision_id").get<std::string>(), s.at("last_revision_id").get<std::string>()};
  }
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

json snapshot_config_to_json(const SnapshotConfig& c) {
  return {{"name", c.name},
          {"topic", c.topic},
          {"expire_time_us", c.expire_time.micros()},
          {"labels", c.labels}};
}

SnapshotConfig snapshot_config_from_json(const json& j) {
  SnapshotConfig c;
  c.name = j.at("name").get<std::string>();
  c.topic = j.at("topic").get<std::string>();
  c.expire_time = Timestamp::from_micros(j.at("expire_time_us").get<int64_t>());
  c.labels = j.at("labels").get<Attributes>();
  return c;
}

json schema_revisions_to_json(const std::vector<SchemaConfig>& revisions) {
  json out = json::array();
  for (const SchemaConfig& r : revisions) {
    out.push_back({{"name", r.name},
                   {"type", schema_type_name(r.type)},
                   {"definition", r.definition},
                   {"revision_id", r.revision_id},
                   {"revision_create_time_us", r.revision_create_time.micros()}});
  }
  return out;
}

std::vector<SchemaConfig> schema_revisions_from_json(const json& j) {
  std::vector<SchemaConfig> out;
  for (const json& r : j) {
    out.push_back(SchemaConfig{
        r.at("name").get<std::string>(),
        named(schema_type_from_name(r.at("type").get<std::string>()), "schema type", r),
        r.at("definition").get<std::string>(), r.at("revision_id").get<std::string>(),
        Timestamp::from_micros(r.at("revision_create_time_us").get<int64_t>())});
  }
  if (out.empty()) throw json::other_error::create(501, "a schema has no revision", &j);
  return out;
}

}  // namespace backbone::delivery
