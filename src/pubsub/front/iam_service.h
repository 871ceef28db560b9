// The google.iam.v1 IAMPolicy service of the Pub/Sub front, for topics and subscriptions, over
// the environments' IAM policies (auth/iam_policies.h): bindings of Pub/Sub's roles to tokens.
//  - GetIamPolicy (read): the bindings, none while none were set (version 0); the etag is the
//    stored version.
//  - SetIamPolicy (admin on the resource): replaces the bindings, refusing a role backbone does
//    not map and a condition (INVALID_ARGUMENT); a stale etag is ABORTED. Kept in the admin
//    audit ("iam.set").
//  - TestIamPermissions (any caller): which of the Pub/Sub permissions asked for the caller holds
//    on the resource, by its token's roles and the resource's bindings.
// A front without IAM policies (FrontOptions::iam) answers UNIMPLEMENTED.
//
// Thread-safety: thread-safe; gRPC calls it from many threads.
#pragma once

#include "google/iam/v1/iam_policy.grpc.pb.h"
#include "pubsub/front/front_access.h"

namespace backbone::pubsub {

class IamService final : public google::iam::v1::IAMPolicy::Service {
 public:
  explicit IamService(const FrontAccess& access) : a_(access) {}

  grpc::Status SetIamPolicy(grpc::ServerContext* ctx,
                            const google::iam::v1::SetIamPolicyRequest* req,
                            google::iam::v1::Policy* resp) override;
  grpc::Status GetIamPolicy(grpc::ServerContext* ctx,
                            const google::iam::v1::GetIamPolicyRequest* req,
                            google::iam::v1::Policy* resp) override;
  grpc::Status TestIamPermissions(grpc::ServerContext* ctx,
                                  const google::iam::v1::TestIamPermissionsRequest* req,
                                  google::iam::v1::TestIamPermissionsResponse* resp) override;

 private:
  const FrontAccess& a_;
};

}  // namespace backbone::pubsub
