#include "pubsub/pubsub_convert.h"

#include "backbone/error.h"
#include "pubsub/pubsub_names.h"

namespace backbone::pubsub {
namespace {

Error unsupported(const char* field, const char* what) {
  return make_error(Errc::kInvalidArgument, std::string(what) + " is not supported by backbone",
                    field);
}

// A client's schema settings name their encoding (as Pub/Sub requires).
Result<void> check_schema_encoding(const v1::Topic& topic) {
  if (topic.has_schema_settings() && topic.schema_settings().encoding() != v1::JSON &&
      topic.schema_settings().encoding() != v1::BINARY) {
    return make_error(Errc::kInvalidArgument, "must be JSON or BINARY", "schema_settings.encoding");
  }
  return {};
}

constexpr int kDefaultAckDeadlineSeconds = 10;
constexpr int64_t kDefaultRetentionUs = 7 * kDay;
constexpr int kDefaultMaxDeliveryAttempts = 5;

Result<std::optional<DeadLetterPolicy>> dead_letter_from_proto(const v1::Subscription& sub,
                                                               std::string_view project) {
  if (!sub.has_dead_letter_policy()) return std::optional<DeadLetterPolicy>();
  const auto& p = sub.dead_letter_policy();
  if (p.dead_letter_topic().empty()) return std::optional<DeadLetterPolicy>();
  auto topic = parse_resource_path(p.dead_letter_topic(), project, ResourceKind::kTopic,
                                   "dead_letter_policy.dead_letter_topic");
  if (!topic.ok()) return topic.error();
  DeadLetterPolicy out;
  out.topic = *topic;
  out.max_delivery_attempts =
      p.max_delivery_attempts() == 0 ? kDefaultMaxDeliveryAttempts : p.max_delivery_attempts();
  return std::optional<DeadLetterPolicy>(out);
}

std::optional<RetryPolicy> retry_from_proto(const v1::Subscription& sub) {
  if (!sub.has_retry_policy()) return std::nullopt;
  RetryPolicy out;  // 10 s .. 600 s unless given
  if (sub.retry_policy().has_minimum_backoff()) {
    out.min_backoff_us = duration_us(sub.retry_policy().minimum_backoff());
  }
  if (sub.retry_policy().has_maximum_backoff()) {
    out.max_backoff_us = duration_us(sub.retry_policy().maximum_backoff());
  }
  return out;
}

int64_t retention_from_proto(const v1::Subscription& sub) {
  return sub.has_message_retention_duration() ? duration_us(sub.message_retention_duration())
                                              : kDefaultRetentionUs;
}

int64_t ack_deadline_from_proto(const v1::Subscription& sub) {
  const int s =
      sub.ack_deadline_seconds() == 0 ? kDefaultAckDeadlineSeconds : sub.ack_deadline_seconds();
  return static_cast<int64_t>(s) * kSecond;
}

}  // namespace

int64_t duration_us(const google::protobuf::Duration& d) {
  return d.seconds() * kSecond + d.nanos() / 1000;
}

void set_duration(google::protobuf::Duration* d, int64_t us) {
  d->set_seconds(us / kSecond);
  d->set_nanos(static_cast<int32_t>(us % kSecond) * 1000);
}

void set_timestamp(google::protobuf::Timestamp* t, Timestamp at) {
  const int64_t us = at.micros();
  int64_t s = us / kSecond, rem = us % kSecond;
  if (rem < 0) {
    rem += kSecond;
    --s;
  }
  t->set_seconds(s);
  t->set_nanos(static_cast<int32_t>(rem) * 1000);
}

Timestamp timestamp_of(const google::protobuf::Timestamp& t) {
  return Timestamp::from_micros(t.seconds() * kSecond + t.nanos() / 1000);
}

Result<TopicConfig> topic_from_proto(const v1::Topic& topic, std::string_view project) {
  BACKBONE_TRY(check_schema_encoding(topic));
  if (!topic.kms_key_name().empty()) return unsupported("kms_key_name", "a KMS key");
  if (topic.has_message_storage_policy()) {
    return unsupported("message_storage_policy", "a storage policy");
  }
  if (topic.has_ingestion_data_source_settings()) {
    return unsupported("ingestion_data_source_settings", "an ingestion source");
  }
  return topic_of(topic, project);
}

Result<TopicConfig> topic_of(const v1::Topic& topic, std::string_view project) {
  auto name = parse_resource_path(topic.name(), project, ResourceKind::kTopic, "name");
  if (!name.ok()) return name.error();
  TopicConfig out;
  out.name = *name;
  out.labels.insert(topic.labels().begin(), topic.labels().end());
  if (topic.has_message_retention_duration()) {
    out.retention_us = duration_us(topic.message_retention_duration());
  }
  auto schema = schema_settings_of(topic, project);
  if (!schema.ok()) return schema.error();
  out.schema = std::move(*schema);
  return out;
}

Result<std::optional<TopicSchemaSettings>> schema_settings_of(const v1::Topic& topic,
                                                              std::string_view project) {
  if (!topic.has_schema_settings()) return std::optional<TopicSchemaSettings>();
  const v1::SchemaSettings& s = topic.schema_settings();
  TopicSchemaSettings out;
  if (s.schema() == kDeletedSchema) {
    out.schema = std::string(kDeletedSchema);
  } else {
    auto name =
        parse_resource_path(s.schema(), project, ResourceKind::kSchema, "schema_settings.schema");
    if (!name.ok()) return name.error();
    out.schema = *name;
  }
  out.encoding = s.encoding() == v1::BINARY ? SchemaEncoding::kBinary : SchemaEncoding::kJson;
  out.first_revision_id = s.first_revision_id();
  out.last_revision_id = s.last_revision_id();
  return std::optional(out);
}

void schema_settings_to_proto(const TopicSchemaSettings& settings, std::string_view project,
                              v1::SchemaSettings* out) {
  out->set_schema(settings.schema == kDeletedSchema ? std::string(kDeletedSchema)
                                                    : schema_path(project, settings.schema));
  out->set_encoding(settings.encoding == SchemaEncoding::kBinary ? v1::BINARY : v1::JSON);
  out->set_first_revision_id(settings.first_revision_id);
  out->set_last_revision_id(settings.last_revision_id);
}

Result<SchemaType> schema_type_of(v1::Schema::Type type) {
  if (type == v1::Schema::AVRO) return SchemaType::kAvro;
  if (type == v1::Schema::PROTOCOL_BUFFER) return SchemaType::kProtocolBuffer;
  return make_error(Errc::kInvalidArgument, "must be AVRO or PROTOCOL_BUFFER", "schema.type");
}

Result<SchemaConfig> schema_of(const v1::Schema& schema, std::string_view project) {
  auto name = parse_resource_path(schema.name(), project, ResourceKind::kSchema, "name");
  if (!name.ok()) return name.error();
  auto type = schema_type_of(schema.type());
  if (!type.ok()) return type.error();
  return SchemaConfig{*name, *type, schema.definition(), schema.revision_id(),
                      timestamp_of(schema.revision_create_time())};
}

void schema_to_proto(const SchemaConfig& config, std::string_view project, bool full,
                     v1::Schema* out) {
  out->set_name(schema_path(project, config.name));
  out->set_type(config.type == SchemaType::kAvro ? v1::Schema::AVRO : v1::Schema::PROTOCOL_BUFFER);
  if (full) out->set_definition(config.definition);
  out->set_revision_id(config.revision_id);
  set_timestamp(out->mutable_revision_create_time(), config.revision_create_time);
}

void topic_to_proto(const TopicConfig& config, std::string_view project, v1::Topic* out) {
  out->set_name(topic_path(project, config.name));
  out->mutable_labels()->insert(config.labels.begin(), config.labels.end());
  if (config.retention_us) {
    set_duration(out->mutable_message_retention_duration(), *config.retention_us);
  }
  if (config.schema)
    schema_settings_to_proto(*config.schema, project, out->mutable_schema_settings());
  out->set_state(v1::Topic::ACTIVE);
}

Result<TopicConfig> apply_topic_update(const TopicConfig& config, const v1::Topic& update,
                                       const google::protobuf::FieldMask& mask,
                                       std::string_view project) {
  if (mask.paths_size() == 0) {
    return make_error(Errc::kInvalidArgument, "names no field to update", "update_mask");
  }
  TopicConfig out = config;
  for (const std::string& path : mask.paths()) {
    if (path == "labels") {
      out.labels.clear();
      out.labels.insert(update.labels().begin(), update.labels().end());
    } else if (path == "message_retention_duration") {
      out.retention_us = update.has_message_retention_duration()
                             ? std::optional(duration_us(update.message_retention_duration()))
                             : std::nullopt;
    } else if (path == "schema_settings") {
      BACKBONE_TRY(check_schema_encoding(update));
      auto schema = schema_settings_of(update, project);  // none: the topic's is removed
      if (!schema.ok()) return schema.error();
      out.schema = std::move(*schema);
    } else if (path == "kms_key_name") {
      return unsupported("kms_key_name", "a KMS key");
    } else if (path == "message_storage_policy") {
      return unsupported("message_storage_policy", "a storage policy");
    } else if (path == "ingestion_data_source_settings") {
      return unsupported("ingestion_data_source_settings", "an ingestion source");
    } else if (path == "name") {
      return make_error(Errc::kInvalidArgument, "\"name\" cannot change", "update_mask");
    } else {
      return make_error(Errc::kInvalidArgument, "\"" + path + "\" is not a field backbone updates",
                        "update_mask");
    }
  }
  return out;
}

Result<SubscriptionConfig> subscription_from_proto(const v1::Subscription& sub,
                                                   std::string_view project) {
  if (sub.has_push_config() && !sub.push_config().push_endpoint().empty()) {
    return unsupported("push_config", "push delivery");
  }
  if (sub.has_bigquery_config()) return unsupported("bigquery_config", "BigQuery delivery");
  if (sub.has_cloud_storage_config()) {
    return unsupported("cloud_storage_config", "Cloud Storage delivery");
  }
  if (!sub.filter().empty()) return unsupported("filter", "a filter");
  if (sub.enable_exactly_once_delivery()) {
    return unsupported("enable_exactly_once_delivery", "exactly-once delivery");
  }
  if (sub.retain_acked_messages()) {
    return unsupported("retain_acked_messages", "keeping acked messages (seek)");
  }
  if (sub.detached()) return unsupported("detached", "a detached subscription");
  if (auto topic = parse_resource_path(sub.topic(), project, ResourceKind::kTopic, "topic");
      !topic.ok()) {
    return topic.error();
  }
  return subscription_of(sub, project, KeyDelivery::kStreamed);
}

Result<SubscriptionConfig> subscription_of(const v1::Subscription& sub, std::string_view project,
                                           KeyDelivery unlabeled) {
  auto name = parse_resource_path(sub.name(), project, ResourceKind::kSubscription, "name");
  if (!name.ok()) return name.error();
  std::string topic(kDetachedTopic);
  if (sub.topic() != kDetachedTopic) {
    auto t = parse_resource_path(sub.topic(), project, ResourceKind::kTopic, "topic");
    if (!t.ok()) return t.error();
    topic = *t;
  }
  auto dead_letter = dead_letter_from_proto(sub, project);
  if (!dead_letter.ok()) return dead_letter.error();
  SubscriptionConfig out;
  out.name = *name;
  out.topic = topic;
  out.ack_deadline_us = ack_deadline_from_proto(sub);
  out.ordered = sub.enable_message_ordering();
  out.retry = retry_from_proto(sub);
  out.dead_letter = *dead_letter;
  out.retention_us = retention_from_proto(sub);
  out.labels.insert(sub.labels().begin(), sub.labels().end());
  out.detached = sub.detached();
  out.key_delivery = unlabeled;
  if (auto it = out.labels.find(std::string(kKeyDeliveryLabel)); it != out.labels.end()) {
    auto d = key_delivery_from_name(it->second);
    if (!d) {
      return make_error(Errc::kInvalidArgument,
                        "must be \"one-at-a-time\" or \"streamed\", not \"" + it->second + "\"",
                        "labels." + std::string(kKeyDeliveryLabel));
    }
    out.key_delivery = *d;
    out.labels.erase(it);
  }
  return out;
}

void subscription_to_proto(const SubscriptionConfig& config, std::string_view project,
                           bool topic_exists, v1::Subscription* out) {
  out->set_name(subscription_path(project, config.name));
  out->set_topic(topic_exists ? topic_path(project, config.topic) : std::string(kDetachedTopic));
  out->set_ack_deadline_seconds(static_cast<int32_t>(config.ack_deadline_us / kSecond));
  out->set_enable_message_ordering(config.ordered);
  if (config.retry) {
    set_duration(out->mutable_retry_policy()->mutable_minimum_backoff(),
                 config.retry->min_backoff_us);
    set_duration(out->mutable_retry_policy()->mutable_maximum_backoff(),
                 config.retry->max_backoff_us);
  }
  if (config.dead_letter) {
    out->mutable_dead_letter_policy()->set_dead_letter_topic(
        topic_path(project, config.dead_letter->topic));
    out->mutable_dead_letter_policy()->set_max_delivery_attempts(
        config.dead_letter->max_delivery_attempts);
  }
  set_duration(out->mutable_message_retention_duration(), config.retention_us);
  out->mutable_expiration_policy();  // present without a ttl: it never expires
  out->mutable_labels()->insert(config.labels.begin(), config.labels.end());
  if (config.ordered) {
    (*out->mutable_labels())[std::string(kKeyDeliveryLabel)] =
        std::string(key_delivery_name(config.key_delivery));
  }
  out->set_detached(config.detached);
  out->set_state(v1::Subscription::ACTIVE);
}

Result<SubscriptionConfig> apply_subscription_update(const SubscriptionConfig& config,
                                                     const v1::Subscription& update,
                                                     const google::protobuf::FieldMask& mask,
                                                     std::string_view project) {
  if (mask.paths_size() == 0) {
    return make_error(Errc::kInvalidArgument, "names no field to update", "update_mask");
  }
  SubscriptionConfig out = config;
  for (const std::string& path : mask.paths()) {
    if (path == "ack_deadline_seconds") {
      out.ack_deadline_us = ack_deadline_from_proto(update);
    } else if (path == "retry_policy") {
      out.retry = retry_from_proto(update);
    } else if (path == "dead_letter_policy") {
      auto dead_letter = dead_letter_from_proto(update, project);
      if (!dead_letter.ok()) return dead_letter.error();
      out.dead_letter = *dead_letter;
    } else if (path == "message_retention_duration") {
      out.retention_us = retention_from_proto(update);
    } else if (path == "labels") {
      out.labels.clear();
      out.labels.insert(update.labels().begin(), update.labels().end());
      out.labels.erase(std::string(kKeyDeliveryLabel));  // shown, not set
    } else if (path == "expiration_policy") {
      // Accepted and kept as "never expires", as on creation.
    } else if (path == "enable_message_ordering" || path == "topic" || path == "name") {
      return make_error(Errc::kInvalidArgument, "\"" + path + "\" cannot change", "update_mask");
    } else {
      return make_error(Errc::kInvalidArgument, "\"" + path + "\" is not a field backbone updates",
                        "update_mask");
    }
  }
  return out;
}

Result<SnapshotConfig> snapshot_of(const v1::Snapshot& snapshot, std::string_view project) {
  auto name = parse_resource_path(snapshot.name(), project, ResourceKind::kSnapshot, "name");
  if (!name.ok()) return name.error();
  SnapshotConfig out;
  out.name = *name;
  out.topic = std::string(kDetachedTopic);
  if (snapshot.topic() != kDetachedTopic) {
    auto t = parse_resource_path(snapshot.topic(), project, ResourceKind::kTopic, "topic");
    if (!t.ok()) return t.error();
    out.topic = *t;
  }
  out.expire_time = timestamp_of(snapshot.expire_time());
  out.labels.insert(snapshot.labels().begin(), snapshot.labels().end());
  return out;
}

void snapshot_to_proto(const SnapshotConfig& config, std::string_view project, v1::Snapshot* out) {
  out->set_name(snapshot_path(project, config.name));
  out->set_topic(topic_path(project, config.topic));
  set_timestamp(out->mutable_expire_time(), config.expire_time);
  out->mutable_labels()->insert(config.labels.begin(), config.labels.end());
}

Result<SnapshotConfig> apply_snapshot_update(const SnapshotConfig& config,
                                             const v1::Snapshot& update,
                                             const google::protobuf::FieldMask& mask) {
  if (mask.paths_size() == 0) {
    return make_error(Errc::kInvalidArgument, "names no field to update", "update_mask");
  }
  SnapshotConfig out = config;
  for (const std::string& path : mask.paths()) {
    if (path == "labels") {
      out.labels.clear();
      out.labels.insert(update.labels().begin(), update.labels().end());
    } else if (path == "expire_time") {
      out.expire_time = timestamp_of(update.expire_time());
    } else if (path == "name" || path == "topic") {
      return make_error(Errc::kInvalidArgument, "\"" + path + "\" cannot change", "update_mask");
    } else {
      return make_error(Errc::kInvalidArgument, "\"" + path + "\" is not a field backbone updates",
                        "update_mask");
    }
  }
  return out;
}

size_t wire_bytes(const std::string& data, const Attributes& attributes,
                  const std::string& ordering_key) {
  size_t n = data.size() + ordering_key.size();
  for (const auto& [k, v] : attributes) n += k.size() + v.size();
  return n;
}

OutgoingMessage message_from_proto(const v1::PubsubMessage& m) {
  OutgoingMessage out;
  out.data = m.data();
  out.attributes.insert(m.attributes().begin(), m.attributes().end());
  out.ordering_key = m.ordering_key();
  return out;
}

void message_to_proto(const OutgoingMessage& m, v1::PubsubMessage* out) {
  out->set_data(m.data);
  out->mutable_attributes()->insert(m.attributes.begin(), m.attributes.end());
  out->set_ordering_key(m.ordering_key);
}

void message_to_proto(const Message& m, v1::PubsubMessage* out) {
  out->set_data(m.data);
  out->mutable_attributes()->insert(m.attributes.begin(), m.attributes.end());
  out->set_ordering_key(m.ordering_key);
  out->set_message_id(m.id);
  set_timestamp(out->mutable_publish_time(), m.publish_time);
}

Message message_of(const v1::PubsubMessage& m) {
  Message out;
  out.id = m.message_id();
  out.data = m.data();
  out.attributes.insert(m.attributes().begin(), m.attributes().end());
  out.ordering_key = m.ordering_key();
  out.publish_time = timestamp_of(m.publish_time());
  return out;
}

void received_to_proto(const ReceivedMessage& m, bool with_attempt, v1::ReceivedMessage* out) {
  out->set_ack_id(m.ack_id);
  message_to_proto(m.message, out->mutable_message());
  out->set_delivery_attempt(with_attempt ? m.delivery_attempt : 0);
}

grpc::Status to_status(const Error& error) {
  return grpc::Status(static_cast<grpc::StatusCode>(grpc_code(error.code)), error.describe());
}

Error from_status(const grpc::Status& status, std::string_view what) {
  Errc code = Errc::kInternal;
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      code = Errc::kInvalidArgument;
      break;
    case grpc::StatusCode::NOT_FOUND:
      code = Errc::kNotFound;
      break;
    case grpc::StatusCode::ALREADY_EXISTS:
      code = Errc::kAlreadyExists;
      break;
    case grpc::StatusCode::PERMISSION_DENIED:
      code = Errc::kPermissionDenied;
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      code = Errc::kUnauthenticated;
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      code = Errc::kImmutable;
      break;
    case grpc::StatusCode::ABORTED:
      code = Errc::kConflict;
      break;
    case grpc::StatusCode::DATA_LOSS:
      code = Errc::kDataLoss;
      break;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
      code = Errc::kUnavailable;
      break;
    default:
      code = Errc::kInternal;
  }
  return make_error(code, std::string(what) + ": " + status.error_message());
}

}  // namespace backbone::pubsub
