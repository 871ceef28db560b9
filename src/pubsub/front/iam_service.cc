#include "pubsub/front/iam_service.h"

#include <charconv>

#include "pubsub/pubsub_convert.h"
#include "pubsub/pubsub_names.h"

namespace backbone::pubsub {
namespace {

namespace iam = google::iam::v1;
using auth::Permission;

grpc::Status no_iam() {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "IAM policies are served by `backbone serve`, over the environments' stores");
}

// The IAM resource ("topics/T", "subscriptions/S") of a request's full name, once the caller
// may see it (NOT_FOUND, PERMISSION_DENIED as for Get).
Result<std::string> resource_of(const FrontAccess& a, const auth::Principal& who,
                                const std::string& path) {
  if (path.find("/topics/") != std::string::npos) {
    auto id = parse_resource_path(path, a.project(), ResourceKind::kTopic, "resource");
    if (!id.ok()) return id.error();
    BACKBONE_TRY(a.topic(who, *id));
    return iam_topic(*id);
  }
  if (path.find("/subscriptions/") != std::string::npos) {
    auto id = parse_resource_path(path, a.project(), ResourceKind::kSubscription, "resource");
    if (!id.ok()) return id.error();
    BACKBONE_TRY(a.subscription(who, *id));
    return iam_subscription(*id);
  }
  return make_error(Errc::kInvalidArgument,
                    "IAM policies are kept on topics and subscriptions "
                    "(projects/P/topics/T, projects/P/subscriptions/S)",
                    "resource");
}

// The caller of `ctx` and the IAM resource of `path`, once it may see it and, when `need` is
// given, may do that there.
struct Caller {
  auth::Principal who;
  std::string resource;
};
Result<Caller> caller_on(const FrontAccess& a, const grpc::ServerContext& ctx,
                         const std::string& path, std::optional<Permission> need) {
  auto who = a.authenticate(ctx);
  if (!who.ok()) return who.error();
  auto resource = resource_of(a, *who, path);
  if (!resource.ok()) return resource.error();
  if (need && !a.may(*who, *need, *resource)) BACKBONE_TRY(auth::require(*who, *need));
  return Caller{std::move(*who), std::move(*resource)};
}

void policy_to_proto(const auth::IamPolicy& policy, iam::Policy* out) {
  out->set_version(policy.version == 0 ? 0 : 1);
  out->set_etag(std::to_string(policy.version));
  for (const auth::IamBinding& b : policy.bindings) {
    auto* pb = out->add_bindings();
    pb->set_role(b.role);
    for (const std::string& m : b.members) pb->add_members(m);
  }
}

// The stored version an etag names (Pub/Sub's read-modify-write); nullopt when none is given.
Result<std::optional<int64_t>> etag_version(const std::string& etag) {
  if (etag.empty()) return std::optional<int64_t>();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(etag.data(), etag.data() + etag.size(), v);
  if (ec != std::errc() || end != etag.data() + etag.size() || v < 0) {
    return make_error(Errc::kInvalidArgument, "is not an etag of GetIamPolicy's", "policy.etag");
  }
  return std::optional(v);
}

}  // namespace

grpc::Status IamService::GetIamPolicy(grpc::ServerContext* ctx, const iam::GetIamPolicyRequest* req,
                                      iam::Policy* resp) {
  if (!a_.iam()) return no_iam();
  auto c = caller_on(a_, *ctx, req->resource(), Permission::kRead);
  if (!c.ok()) return to_status(c.error());
  auto policy = a_.iam()->get(c->who.env, c->resource);
  if (!policy.ok()) return to_status(policy.error());
  policy_to_proto(*policy, resp);
  return grpc::Status::OK;
}

grpc::Status IamService::SetIamPolicy(grpc::ServerContext* ctx, const iam::SetIamPolicyRequest* req,
                                      iam::Policy* resp) {
  if (!a_.iam()) return no_iam();
  auto c = caller_on(a_, *ctx, req->resource(), Permission::kAdmin);
  if (!c.ok()) return to_status(c.error());
  std::vector<auth::IamBinding> bindings;
  for (const iam::Binding& b : req->policy().bindings()) {
    if (b.has_condition()) {
      return to_status(make_error(Errc::kInvalidArgument,
                                  "conditions are not supported by backbone",
                                  "policy.bindings.condition"));
    }
    bindings.push_back({b.role(), {b.members().begin(), b.members().end()}});
  }
  auto expected = etag_version(req->policy().etag());
  if (!expected.ok()) return to_status(expected.error());
  auto set =
      a_.iam()->set(c->who.env, c->resource, bindings, *expected, c->who.actor(), a_.clock().now());
  if (!set.ok()) return to_status(set.error());  // a stale etag: kConflict, ABORTED
  policy_to_proto(*set, resp);
  return grpc::Status::OK;
}

grpc::Status IamService::TestIamPermissions(grpc::ServerContext* ctx,
                                            const iam::TestIamPermissionsRequest* req,
                                            iam::TestIamPermissionsResponse* resp) {
  if (!a_.iam()) return no_iam();
  auto c = caller_on(a_, *ctx, req->resource(), std::nullopt);
  if (!c.ok()) return to_status(c.error());
  for (const std::string& name : req->permissions()) {
    auto need = auth::iam_permission_need(name);
    if (!need) {
      return to_status(make_error(Errc::kInvalidArgument,
                                  "\"" + name.substr(0, 80) + "\" is not a Pub/Sub permission",
                                  "permissions"));
    }
    if (a_.may(c->who, *need, c->resource)) resp->add_permissions(name);
  }
  return grpc::Status::OK;
}

}  // namespace backbone::pubsub
