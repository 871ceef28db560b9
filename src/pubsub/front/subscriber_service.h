// The google.pubsub.v1 Subscriber service of the Pub/Sub front, on the Broker port:
// subscriptions (create, get, list, update, delete, with ack deadline, ordering, retry policy,
// dead-letter policy, retention and labels), Pull, StreamingPull (streaming_pull.h),
// Acknowledge and ModifyAckDeadline, with the access rules of FrontAccess. An Acknowledge that
// answers OK is durable.
//
// Snapshots (create, get, list, update, delete) and Seek, to a time or a snapshot: the caller's
// own subscriptions (admin); the topology's are refused (FAILED_PRECONDITION), since a seek
// there is a replay of the pipeline's work.
//
// Not served: push, BigQuery and Cloud Storage delivery, filters, exactly-once delivery.
// Expiration policies are accepted and kept as "never expires".
//
// Thread-safety: thread-safe; gRPC calls it from many threads.
#pragma once

#include "google/pubsub/v1/pubsub.grpc.pb.h"
#include "pubsub/front/front_access.h"
#include "pubsub/front/stream_registry.h"

namespace backbone::pubsub {

class SubscriberService final : public google::pubsub::v1::Subscriber::Service {
 public:
  explicit SubscriberService(const FrontAccess& access) : a_(access) {}

  using Sub = google::pubsub::v1::Subscription;
  grpc::Status CreateSubscription(grpc::ServerContext* ctx, const Sub* req, Sub* resp) override;
  grpc::Status GetSubscription(grpc::ServerContext* ctx,
                               const google::pubsub::v1::GetSubscriptionRequest* req,
                               Sub* resp) override;
  grpc::Status UpdateSubscription(grpc::ServerContext* ctx,
                                  const google::pubsub::v1::UpdateSubscriptionRequest* req,
                                  Sub* resp) override;
  grpc::Status ListSubscriptions(grpc::ServerContext* ctx,
                                 const google::pubsub::v1::ListSubscriptionsRequest* req,
                                 google::pubsub::v1::ListSubscriptionsResponse* resp) override;
  grpc::Status DeleteSubscription(grpc::ServerContext* ctx,
                                  const google::pubsub::v1::DeleteSubscriptionRequest* req,
                                  google::protobuf::Empty* resp) override;
  grpc::Status ModifyAckDeadline(grpc::ServerContext* ctx,
                                 const google::pubsub::v1::ModifyAckDeadlineRequest* req,
                                 google::protobuf::Empty* resp) override;
  grpc::Status Acknowledge(grpc::ServerContext* ctx,
                           const google::pubsub::v1::AcknowledgeRequest* req,
                           google::protobuf::Empty* resp) override;
  grpc::Status Pull(grpc::ServerContext* ctx, const google::pubsub::v1::PullRequest* req,
                    google::pubsub::v1::PullResponse* resp) override;
  grpc::Status StreamingPull(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<google::pubsub::v1::StreamingPullResponse,
                               google::pubsub::v1::StreamingPullRequest>* stream) override;
  grpc::Status ModifyPushConfig(grpc::ServerContext* ctx,
                                const google::pubsub::v1::ModifyPushConfigRequest* req,
                                google::protobuf::Empty* resp) override;
  grpc::Status ListSnapshots(grpc::ServerContext* ctx,
                             const google::pubsub::v1::ListSnapshotsRequest* req,
                             google::pubsub::v1::ListSnapshotsResponse* resp) override;
  grpc::Status GetSnapshot(grpc::ServerContext* ctx,
                           const google::pubsub::v1::GetSnapshotRequest* req,
                           google::pubsub::v1::Snapshot* resp) override;
  grpc::Status CreateSnapshot(grpc::ServerContext* ctx,
                              const google::pubsub::v1::CreateSnapshotRequest* req,
                              google::pubsub::v1::Snapshot* resp) override;
  grpc::Status UpdateSnapshot(grpc::ServerContext* ctx,
                              const google::pubsub::v1::UpdateSnapshotRequest* req,
                              google::pubsub::v1::Snapshot* resp) override;
  grpc::Status DeleteSnapshot(grpc::ServerContext* ctx,
                              const google::pubsub::v1::DeleteSnapshotRequest* req,
                              google::protobuf::Empty* resp) override;
  grpc::Status Seek(grpc::ServerContext* ctx, const google::pubsub::v1::SeekRequest* req,
                    google::pubsub::v1::SeekResponse* resp) override;

 private:
  // For Acknowledge and ModifyAckDeadline: the caller's subscription, which it may consume, and
  // the request's ack ids (at least one).
  struct AckTarget {
    std::string subscription;
    std::vector<std::string> ack_ids;
  };
  Result<AckTarget> ack_target(
      const grpc::ServerContext& ctx, const std::string& path,
      const google::protobuf::RepeatedPtrField<std::string>& ack_ids) const;
  // The topic of a new or changed subscription (and its dead-letter topic) must be the
  // caller's.
  Result<void> check_topics(const auth::Principal& who, const SubscriptionConfig& config) const;
  const FrontAccess& a_;
  StreamRegistry streams_;  // the open StreamingPull calls
};

}  // namespace backbone::pubsub
