// The google.pubsub.v1 Publisher service of the Pub/Sub front, on the Broker port: topics
// (create, get, list, update their labels and retention, delete, list their subscriptions and
// snapshots), Publish, and DetachSubscription, with the access rules of FrontAccess (the
// topology's topics and subscriptions are not changed or detached here). Publish answers once
// the broker has made the messages durable.
//
// Thread-safety: thread-safe; gRPC calls it from many threads.
#pragma once

#include "google/pubsub/v1/pubsub.grpc.pb.h"
#include "pubsub/front/front_access.h"

namespace backbone::pubsub {

class PublisherService final : public google::pubsub::v1::Publisher::Service {
 public:
  explicit PublisherService(const FrontAccess& access) : a_(access) {}

  grpc::Status CreateTopic(grpc::ServerContext* ctx, const google::pubsub::v1::Topic* req,
                           google::pubsub::v1::Topic* resp) override;
  grpc::Status UpdateTopic(grpc::ServerContext* ctx,
                           const google::pubsub::v1::UpdateTopicRequest* req,
                           google::pubsub::v1::Topic* resp) override;
  grpc::Status Publish(grpc::ServerContext* ctx, const google::pubsub::v1::PublishRequest* req,
                       google::pubsub::v1::PublishResponse* resp) override;
  grpc::Status GetTopic(grpc::ServerContext* ctx, const google::pubsub::v1::GetTopicRequest* req,
                        google::pubsub::v1::Topic* resp) override;
  grpc::Status ListTopics(grpc::ServerContext* ctx,
                          const google::pubsub::v1::ListTopicsRequest* req,
                          google::pubsub::v1::ListTopicsResponse* resp) override;
  grpc::Status ListTopicSubscriptions(
      grpc::ServerContext* ctx, const google::pubsub::v1::ListTopicSubscriptionsRequest* req,
      google::pubsub::v1::ListTopicSubscriptionsResponse* resp) override;
  grpc::Status ListTopicSnapshots(grpc::ServerContext* ctx,
                                  const google::pubsub::v1::ListTopicSnapshotsRequest* req,
                                  google::pubsub::v1::ListTopicSnapshotsResponse* resp) override;
  grpc::Status DeleteTopic(grpc::ServerContext* ctx,
                           const google::pubsub::v1::DeleteTopicRequest* req,
                           google::protobuf::Empty* resp) override;
  grpc::Status DetachSubscription(grpc::ServerContext* ctx,
                                  const google::pubsub::v1::DetachSubscriptionRequest* req,
                                  google::pubsub::v1::DetachSubscriptionResponse* resp) override;

 private:
  const FrontAccess& a_;
};

}  // namespace backbone::pubsub
