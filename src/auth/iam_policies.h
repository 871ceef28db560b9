// IamPolicies: the IAM policies of the topics and subscriptions of the environments a process
// serves, kept in each environment's store (doc/tokens.md, "IAM policies"), and what they grant,
// in backbone's tokens and roles:
//
//  - A binding's role is one of Pub/Sub's five: roles/pubsub.viewer grants "read",
//    roles/pubsub.publisher "publish", roles/pubsub.subscriber "subscribe", roles/pubsub.editor
//    and roles/pubsub.admin "admin". Any other role, and a binding with a condition, is refused
//    (kInvalidArgument).
//  - A member "token:<name>" is every token of that name in the resource's environment;
//    "allAuthenticatedUsers" is every token of it. Other members (Google's "user:",
//    "serviceAccount:", "group:", ...) are kept as given and grant nothing here.
//  - What a token may do on a resource is what its own roles allow, and what the resource's
//    bindings give it there.
//
// Policies are read into memory, and again by refresh(): `serve` calls it every second, so that
// a policy set through any process holds on every process within about a second; set() holds at
// once on the process that set it.
//
// Thread-safety: thread-safe. The stores must outlive it.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/principal.h"
#include "backbone/event_store.h"

namespace backbone::auth {

struct IamBinding {
  std::string role;  // "roles/pubsub.publisher", ...
  std::vector<std::string> members;
  bool operator==(const IamBinding&) const = default;
};

struct IamPolicy {
  std::vector<IamBinding> bindings;
  int64_t version = 0;  // the stored version: 0 while none was ever set (the etag)
  bool operator==(const IamPolicy&) const = default;
};

// The permission a binding role grants; kInvalidArgument naming the five for any other.
Result<Permission> iam_role_permission(std::string_view role);
// The permission that a Pub/Sub permission name needs ("pubsub.topics.publish" -> publish,
// "pubsub.subscriptions.consume" -> subscribe, "...get"/"...list" -> read, others -> admin);
// nullopt for a name that is not Pub/Sub's ("pubsub.<kind>.<verb>").
std::optional<Permission> iam_permission_need(std::string_view name);

class IamPolicies {
 public:
  // Serves `env`'s policies from `reader` (any role); `admin`, if given (kMigrator), is where
  // set() writes them, with the act in the admin audit. Before the first use.
  void add_env(const std::string& env, EventStore& reader, EventStore* admin);
  // Reads every environment's policies again; the first error is returned.
  Result<void> refresh();

  // The policy of `resource` ("topics/T", "subscriptions/S") in `env` (none set: no bindings).
  Result<IamPolicy> get(const std::string& env, const std::string& resource) const;
  // Replaces it. `expected_version` (Pub/Sub's etag): kConflict unless it is the stored one.
  // The act goes to the admin audit as "iam.set" by `actor`. kInvalidArgument for a role or a
  // condition not taken; kNotFound for an environment not served here; kPermissionDenied when
  // the environment's admin store is not given.
  Result<IamPolicy> set(const std::string& env, const std::string& resource,
                        const std::vector<IamBinding>& bindings,
                        std::optional<int64_t> expected_version, const std::string& actor,
                        Timestamp now);
  // Whether `who` may do `p` on `resource` of its own environment: by its roles, or by a binding.
  bool may(const Principal& who, Permission p, const std::string& resource) const;

 private:
  struct Env {
    EventStore* reader = nullptr;
    EventStore* admin = nullptr;
    std::map<std::string, IamPolicy> by_resource;
  };
  Result<void> reload(const std::string& env);
  mutable std::mutex mu_;
  std::map<std::string, Env> envs_;  // GUARDED_BY(mu_)
};

// The JSON text the store keeps, and back (kDataLoss for a damaged one).
std::string bindings_json(const std::vector<IamBinding>& bindings);
Result<std::vector<IamBinding>> bindings_of_json(const std::string& text);

}  // namespace backbone::auth
