#include "pubsub/front/front_access.h"

#include <grpcpp/server_context.h>

#include "pubsub/pubsub_convert.h"

namespace backbone::pubsub {
namespace {

constexpr const char* kExternalRole = "sync";

// What the caller's environment puts before its schemas' names in the broker.
std::string schema_prefix(const auth::Principal& who) {
  return who.env + "~";
}  // the managed subscription others may consume

Error other_env(const char* what, std::string_view id, std::string_view env) {
  return make_error(Errc::kPermissionDenied, std::string(what) + " \"" + std::string(id) +
                                                 "\" belongs to environment \"" + std::string(env) +
                                                 "\"");
}

}  // namespace

FrontAccess::FrontAccess(Broker& broker, const Topology& topology,
                         const auth::Authenticator& tokens, FrontOptions options)
    : broker_(broker), topology_(topology), tokens_(tokens), o_(std::move(options)) {}

Result<auth::Principal> FrontAccess::authenticate(const grpc::ServerContext& ctx) const {
  const auto& metadata = ctx.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end() && o_.anonymous && is_loopback_peer(ctx.peer())) {
    auth::Principal anonymous;
    anonymous.name = "anonymous";
    anonymous.env = *o_.anonymous;
    anonymous.permissions = {auth::Permission::kAdmin};
    return anonymous;
  }
  const std::string_view header = it == metadata.end()
                                      ? std::string_view()
                                      : std::string_view(it->second.data(), it->second.size());
  return tokens_.authenticate_bearer(header);
}

Result<auth::Principal> FrontAccess::authorize(const grpc::ServerContext& ctx,
                                               auth::Permission permission,
                                               const std::string& resource) const {
  auto who = authenticate(ctx);
  if (!who.ok()) return who.error();
  if (!may(*who, permission, resource)) BACKBONE_TRY(auth::require(*who, permission));
  return who;
}

Result<void> FrontAccess::forget_policy(const auth::Principal& who,
                                        const std::string& resource) const {
  if (!o_.iam) return {};
  auto held = o_.iam->get(who.env, resource);
  if (!held.ok() || held->bindings.empty()) return {};
  auto gone = o_.iam->set(who.env, resource, {}, held->version, who.actor(), clock().now());
  if (!gone.ok()) return gone.error();
  return {};
}

bool FrontAccess::may(const auth::Principal& who, auth::Permission permission,
                      const std::string& resource) const {
  if (o_.iam && !resource.empty()) return o_.iam->may(who, permission, resource);
  return who.may(permission);
}

std::optional<std::string> FrontAccess::env_of(std::string_view id, const Attributes& labels,
                                               bool* managed) const {
  auto env = topology_.environment_of(id, o_.envs);
  if (managed) *managed = env.has_value();
  if (env) return env;
  const auto it = labels.find(std::string(kLabelEnv));
  if (it == labels.end()) return std::nullopt;
  return it->second;
}

Result<void> FrontAccess::not_another_envs(const auth::Principal& who, std::string_view id,
                                           const char* what) const {
  if (auto env = topology_.environment_of(id, o_.envs); env && *env != who.env) {
    return other_env(what, id, *env);
  }
  return {};
}

Result<Owned> FrontAccess::check_owner(const auth::Principal& who, std::string_view id,
                                       const Attributes& labels, const char* what) const {
  Owned out;
  const auto env = env_of(id, labels, &out.managed);
  if (!env) {
    return make_error(Errc::kPermissionDenied,
                      std::string(what) + " \"" + std::string(id) + "\" belongs to no environment");
  }
  if (*env != who.env) return other_env(what, id, *env);
  return out;
}

Result<TopicConfig> FrontAccess::topic(const auth::Principal& who, std::string_view id,
                                       Owned* owned) const {
  BACKBONE_TRY(not_another_envs(who, id, "topic"));
  auto t = broker_.get_topic(id);
  if (!t.ok()) return t.error();
  auto o = check_owner(who, id, t->labels, "topic");
  if (!o.ok()) return o.error();
  if (owned) *owned = *o;
  return t;
}

Result<SubscriptionConfig> FrontAccess::subscription(const auth::Principal& who,
                                                     std::string_view id, Owned* owned) const {
  BACKBONE_TRY(not_another_envs(who, id, "subscription"));
  auto s = broker_.get_subscription(id);
  if (!s.ok()) return s.error();
  auto o = check_owner(who, id, s->labels, "subscription");
  if (!o.ok()) return o.error();
  if (owned) *owned = *o;
  return s;
}

Result<SnapshotConfig> FrontAccess::snapshot(const auth::Principal& who,
                                             std::string_view id) const {
  auto s = broker_.get_snapshot(id);
  if (!s.ok()) return s.error();
  auto o = check_owner(who, id, s->labels, "snapshot");
  if (!o.ok()) return o.error();
  return s;
}

Result<SubscriptionConfig> FrontAccess::consumable(const auth::Principal& who,
                                                   std::string_view id) const {
  Owned owned;
  auto s = subscription(who, id, &owned);
  if (!s.ok()) return s;
  // A backbone process whose broker is this front runs the stages: the pipeline role.
  if (owned.managed && !who.permissions.has(auth::Permission::kPipeline)) {
    auto external = topology_.subscription_for(kExternalRole, who.env);
    if (!external.ok() || external->name != id) {
      return make_error(Errc::kImmutable,
                        "subscription \"" + std::string(id) +
                            "\" feeds backbone's own stages; external consumers pull " +
                            (external.ok() ? "\"" + external->name + "\"" : "their own"));
    }
  }
  return s;
}

Result<Attributes> FrontAccess::keep_env_label(const auth::Principal& who,
                                               Attributes labels) const {
  const std::string key(kLabelEnv);
  if (auto it = labels.find(key); it != labels.end() && it->second != who.env) {
    return make_error(Errc::kPermissionDenied,
                      "the \"env\" label must be the caller's environment \"" + who.env + "\"",
                      "labels");
  }
  labels[key] = who.env;
  return labels;
}

Result<Attributes> FrontAccess::new_resource(const auth::Principal& who, std::string_view id,
                                             Attributes labels) const {
  if (auto env = topology_.environment_of(id, o_.envs)) {
    if (*env != who.env) return other_env("name", id, *env);
    return make_error(Errc::kImmutable, "\"" + std::string(id) +
                                            "\" is the topology's: `backbone provision` makes it");
  }
  return keep_env_label(who, std::move(labels));
}

bool FrontAccess::visible(const auth::Principal& who, std::string_view id,
                          const Attributes& labels) const {
  const auto env = env_of(id, labels);
  return env && *env == who.env;
}

Error managed_by_topology(const char* what, std::string_view id) {
  return make_error(Errc::kImmutable, std::string(what) + " \"" + std::string(id) +
                                          "\" is the topology's: change the topology and run "
                                          "`backbone provision`");
}

bool is_loopback_peer(std::string_view peer) {
  if (peer.starts_with("unix:")) return true;
  if (peer.starts_with("ipv4:127.")) return true;
  return peer.starts_with("ipv6:[::1]:") || peer.starts_with("ipv6:%5B::1%5D:") ||
         peer.starts_with("ipv6:[::ffff:127.");
}

std::string FrontAccess::stored_schema(const auth::Principal& who, std::string_view id) const {
  return schema_prefix(who) + std::string(id);
}

std::optional<std::string> FrontAccess::caller_schema(const auth::Principal& who,
                                                      std::string_view stored) const {
  const std::string prefix = schema_prefix(who);
  if (!stored.starts_with(prefix)) return std::nullopt;
  return std::string(stored.substr(prefix.size()));
}

TopicConfig FrontAccess::stored_topic(const auth::Principal& who, TopicConfig topic) const {
  if (topic.schema && topic.schema->schema != kDeletedSchema) {
    topic.schema->schema = stored_schema(who, topic.schema->schema);
  }
  return topic;
}

TopicConfig FrontAccess::caller_topic(const auth::Principal& who, TopicConfig topic) const {
  if (topic.schema) {
    topic.schema->schema = caller_schema(who, topic.schema->schema).value_or(topic.schema->schema);
  }
  return topic;
}

}  // namespace backbone::pubsub
