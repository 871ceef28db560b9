// Conversions between google.pubsub.v1 messages and the Broker port's values, with Pub/Sub's
// defaults and limits, and between backbone errors and gRPC statuses. Shared by the gRPC front
// (src/pubsub/front) and the pubsub:// backend, so that both read a Subscription the same way.
//
// Only files of src/pubsub include this header: it pulls in the generated protobuf code.
//
// Thread-safety: plain functions.
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

#include "backbone/broker.h"
#include "google/pubsub/v1/pubsub.pb.h"

namespace backbone::pubsub {

namespace v1 = google::pubsub::v1;

int64_t duration_us(const google::protobuf::Duration& d);
void set_duration(google::protobuf::Duration* d, int64_t us);
void set_timestamp(google::protobuf::Timestamp* t, Timestamp at);
Timestamp timestamp_of(const google::protobuf::Timestamp& t);

// A Topic as the port sees it. kInvalidArgument for what the port does not keep (a KMS key,
// storage policies, ingestion sources), naming the field.
Result<TopicConfig> topic_from_proto(const v1::Topic& topic, std::string_view project);
// The same, for a server's answer: what the port does not keep is left out, not refused.
Result<TopicConfig> topic_of(const v1::Topic& topic, std::string_view project);
void topic_to_proto(const TopicConfig& config, std::string_view project, v1::Topic* out);
// `config` with the fields of `update` named by `mask` (UpdateTopicRequest's): labels,
// message_retention_duration and schema_settings. kInvalidArgument for an empty mask, an unknown
// path, or one the port does not keep (as topic_from_proto).
Result<TopicConfig> apply_topic_update(const TopicConfig& config, const v1::Topic& update,
                                       const google::protobuf::FieldMask& mask,
                                       std::string_view project);

// Schemas. A topic's schema settings (none when it has none); Pub/Sub names a deleted schema
// kDeletedSchema there. In a server's answer an unspecified encoding reads as JSON; a client's
// request (topic_from_proto, apply_topic_update) must name one.
inline constexpr std::string_view kDeletedSchema = "_deleted-schema_";
Result<std::optional<TopicSchemaSettings>> schema_settings_of(const v1::Topic& topic,
                                                              std::string_view project);
void schema_settings_to_proto(const TopicSchemaSettings& settings, std::string_view project,
                              v1::SchemaSettings* out);
// kInvalidArgument for TYPE_UNSPECIFIED.
Result<SchemaType> schema_type_of(v1::Schema::Type type);
Result<SchemaConfig> schema_of(const v1::Schema& schema, std::string_view project);
// `full`: with the definition (SchemaView FULL); BASIC leaves it out.
void schema_to_proto(const SchemaConfig& config, std::string_view project, bool full,
                     v1::Schema* out);

// A Subscription as the port sees it, with Pub/Sub's defaults: ack deadline 10 s,
// retention 7 days, at most 5 delivery attempts, backoff 10 s to 600 s. kInvalidArgument for
// what the port does not do (push, BigQuery or Cloud Storage delivery, filters, exactly-once,
// retained acked messages, detached), naming the field.
//
// An ordered subscription's KeyDelivery travels as the label kKeyDeliveryLabel ("one-at-a-time"
// or "streamed"), which the port's config does not show among its labels. Without the label it
// is `unlabeled`: the front takes a client's request by Google's rule (kStreamed); the pubsub://
// backend reads what a server says of its own subscriptions as backbone's (kOneAtATime).
inline constexpr std::string_view kKeyDeliveryLabel = "backbone-key-delivery";
Result<SubscriptionConfig> subscription_from_proto(const v1::Subscription& sub,
                                                   std::string_view project);
// The same, for a server's answer: what the port does not keep is left out, not refused; the
// topic of a detached subscription reads kDetachedTopic.
Result<SubscriptionConfig> subscription_of(const v1::Subscription& sub, std::string_view project,
                                           KeyDelivery unlabeled = KeyDelivery::kOneAtATime);
// `topic_exists` false writes the topic as kDetachedTopic. An ordered one gets kKeyDeliveryLabel.
void subscription_to_proto(const SubscriptionConfig& config, std::string_view project,
                           bool topic_exists, v1::Subscription* out);
// `config` with the fields of `update` named by `paths` (UpdateSubscriptionRequest's mask).
// kInvalidArgument for an empty mask, an unknown path, or one that cannot change
// (enable_message_ordering, topic, name).
Result<SubscriptionConfig> apply_subscription_update(const SubscriptionConfig& config,
                                                     const v1::Subscription& update,
                                                     const google::protobuf::FieldMask& mask,
                                                     std::string_view project);

// A Snapshot as the port sees it (a server's answer; its topic as kDetachedTopic when deleted).
Result<SnapshotConfig> snapshot_of(const v1::Snapshot& snapshot, std::string_view project);
void snapshot_to_proto(const SnapshotConfig& config, std::string_view project, v1::Snapshot* out);
// `config` with the fields of `update` named by `mask` (UpdateSnapshotRequest's): labels and
// expire_time.
Result<SnapshotConfig> apply_snapshot_update(const SnapshotConfig& config,
                                             const v1::Snapshot& update,
                                             const google::protobuf::FieldMask& mask);

// What a message weighs on the wire: its data, attributes and ordering key, in bytes (for
// request sizes and flow control).
size_t wire_bytes(const std::string& data, const Attributes& attributes,
                  const std::string& ordering_key);

OutgoingMessage message_from_proto(const v1::PubsubMessage& m);
void message_to_proto(const OutgoingMessage& m, v1::PubsubMessage* out);
void message_to_proto(const Message& m, v1::PubsubMessage* out);
Message message_of(const v1::PubsubMessage& m);
// `with_attempt`: Pub/Sub fills delivery_attempt only on subscriptions with a dead-letter
// policy (0 otherwise).
void received_to_proto(const ReceivedMessage& m, bool with_attempt, v1::ReceivedMessage* out);

// The gRPC status of an error (error.h's grpc_code), its message "where: message".
grpc::Status to_status(const Error& error);
inline grpc::Status to_status(const Result<void>& r) {
  return r.ok() ? grpc::Status::OK : to_status(r.error());
}
// The error of a failed gRPC status; `what` starts its message ("Publish: ...").
Error from_status(const grpc::Status& status, std::string_view what);

}  // namespace backbone::pubsub
