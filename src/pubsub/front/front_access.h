// FrontAccess: who calls the Pub/Sub front, and what they may see and touch.
//
//  - The caller comes from the call's "authorization: Bearer <token>" metadata (a token of
//    `backbone token create`), or, for a call without one from a loopback address, from the
//    anonymous environment of `serve --pubsub-anonymous ENV` (the emulator workflow: clients
//    send no credentials to PUBSUB_EMULATOR_HOST). Otherwise UNAUTHENTICATED.
//  - Roles: "read" for Get and List, "publish" for Publish, "subscribe" for Pull,
//    StreamingPull, Acknowledge and ModifyAckDeadline, "admin" to create, update and delete.
//    A topic's or subscription's IAM policy can grant publish (on a topic) or subscribe (on a
//    subscription) to a token that lacks the role (iam_policies.h).
//    The anonymous caller has every role, in its one environment.
//  - Every topic and subscription belongs to one environment: the topology's by their names,
//    the others by their "env" label, set at creation from the caller's environment. Another
//    environment's resource is PERMISSION_DENIED; a caller's lists hold only its own.
//  - Schemas are the caller's environment's: each environment has its own names
//    (stored_schema).
//  - The topology's resources are backbone's: the front does not delete or change them, nor
//    publish to their topics (events enter through the HTTP ingest, which stores them first),
//    and of their subscriptions it serves only the one for external consumers (role "sync");
//    the others feed backbone's own stages. FAILED_PRECONDITION says so.
//
// Thread-safety: thread-safe (it only reads, and asks the Broker, which is thread-safe).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/authenticator.h"
#include "auth/iam_policies.h"
#include "backbone/broker.h"
#include "backbone/clock.h"
#include "backbone/metrics.h"
#include "backbone/topology.h"

namespace grpc {
class ServerContext;
}

namespace backbone::pubsub {

struct FrontOptions {
  std::string project;                   // the topology's project
  std::vector<std::string> envs;         // every configured environment
  std::optional<std::string> anonymous;  // --pubsub-anonymous: loopback calls without a token
  const Clock* clock = nullptr;          // nullptr: the system clock
  Metrics* metrics = nullptr;            // where the front counts its calls (front_metrics.h)
  // TLS: a PEM certificate chain and its key, watched for changes (read again within a second
  // of a change); both empty for plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  // The environments' IAM policies (GetIamPolicy, SetIamPolicy, TestIamPermissions, and what
  // they grant); nullptr: the IAM calls answer UNIMPLEMENTED and tokens' roles alone decide.
  auth::IamPolicies* iam = nullptr;
};

// The IAM resource names of a topic and a subscription ("topics/T", "subscriptions/S").
inline std::string iam_topic(std::string_view id) { return "topics/" + std::string(id); }
inline std::string iam_subscription(std::string_view id) {
  return "subscriptions/" + std::string(id);
}

// About a resource that the caller may use: whether the topology manages it.
struct Owned {
  bool managed = false;
};

class FrontAccess {
 public:
  // All must outlive the FrontAccess.
  FrontAccess(Broker& broker, const Topology& topology, const auth::Authenticator& tokens,
              FrontOptions options);

  const std::string& project() const { return o_.project; }
  Broker& broker() const { return broker_; }
  const Clock& clock() const { return o_.clock ? *o_.clock : SystemClock::instance(); }

  // The caller of `ctx`, checked for `permission`: by its token's roles, or, when `resource`
  // ("topics/T", "subscriptions/S") is named and the front has IAM policies, by what the
  // resource's policy grants it (iam_policies.h).
  Result<auth::Principal> authorize(const grpc::ServerContext& ctx, auth::Permission permission,
                                    const std::string& resource = {}) const;
  // The caller of `ctx`, whatever it may do (kUnauthenticated as above).
  Result<auth::Principal> authenticate(const grpc::ServerContext& ctx) const;
  // Whether the caller may do `permission` on `resource` (as authorize).
  bool may(const auth::Principal& who, auth::Permission permission,
           const std::string& resource) const;
  // After `resource` was deleted: its IAM policy goes with it (as on Pub/Sub), so that a
  // resource made again under its name grants nothing it did not grant itself. Kept in the
  // admin audit as an "iam.set" to no bindings.
  Result<void> forget_policy(const auth::Principal& who, const std::string& resource) const;
  // The IAM policies, if this front has them (`serve`'s do).
  auth::IamPolicies* iam() const { return o_.iam; }

  // The topic `id` as the caller may use it: PERMISSION_DENIED when it is another
  // environment's, NOT_FOUND when it does not exist.
  Result<TopicConfig> topic(const auth::Principal& who, std::string_view id,
                            Owned* owned = nullptr) const;
  Result<SubscriptionConfig> subscription(const auth::Principal& who, std::string_view id,
                                          Owned* owned = nullptr) const;
  Result<SnapshotConfig> snapshot(const auth::Principal& who, std::string_view id) const;
  // The same for a subscription that the caller wants to pull from or ack on: also
  // FAILED_PRECONDITION for a managed one that backbone's own stages consume, unless the
  // caller has the pipeline role (another backbone process running those stages).
  Result<SubscriptionConfig> consumable(const auth::Principal& who, std::string_view id) const;

  // Checks a name for a new resource of the caller's: PERMISSION_DENIED when the topology
  // names it for another environment, FAILED_PRECONDITION when for the caller's (provision
  // makes those). Returns `labels` with the caller's "env" label (PERMISSION_DENIED if they
  // name another environment).
  Result<Attributes> new_resource(const auth::Principal& who, std::string_view id,
                                  Attributes labels) const;
  // A label set for an update of the caller's resource: the "env" label kept, as above.
  Result<Attributes> keep_env_label(const auth::Principal& who, Attributes labels) const;

  // Schemas have no labels: the caller's schema "S" is kept in the broker as "<env>~S", so
  // that each environment has its own schema names (an environment's name has no '~').
  std::string stored_schema(const auth::Principal& who, std::string_view id) const;
  // The caller's name of a schema kept as `stored`; nullopt when it is another environment's.
  std::optional<std::string> caller_schema(const auth::Principal& who,
                                           std::string_view stored) const;
  // A topic with the name of its schema (if any) as kept, or as the caller knows it.
  TopicConfig stored_topic(const auth::Principal& who, TopicConfig topic) const;
  TopicConfig caller_topic(const auth::Principal& who, TopicConfig topic) const;

  // Whether the caller sees this resource in lists.
  bool visible(const auth::Principal& who, std::string_view id, const Attributes& labels) const;

 private:
  // The environment of a resource named `id` with `labels`; nullopt when it has none.
  // `managed`, when given, says whether the topology names it.
  std::optional<std::string> env_of(std::string_view id, const Attributes& labels,
                                    bool* managed = nullptr) const;
  // kPermissionDenied when the topology names `id` for another environment than the caller's
  // (checked before the broker is asked, so that a refusal says nothing about what exists).
  Result<void> not_another_envs(const auth::Principal& who, std::string_view id,
                                const char* what) const;
  Result<Owned> check_owner(const auth::Principal& who, std::string_view id,
                            const Attributes& labels, const char* what) const;
  Broker& broker_;
  const Topology& topology_;
  const auth::Authenticator& tokens_;
  FrontOptions o_;
};

// FAILED_PRECONDITION for a change of the topology's topic or subscription `id` (`what`).
Error managed_by_topology(const char* what, std::string_view id);

// Whether a gRPC peer ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:...") is this machine.
bool is_loopback_peer(std::string_view peer);

}  // namespace backbone::pubsub
