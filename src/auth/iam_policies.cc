#include "auth/iam_policies.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "auth/token_registry.h"

namespace backbone::auth {
namespace {

using nlohmann::json;

constexpr std::pair<std::string_view, Permission> kRoles[] = {
    {"roles/pubsub.viewer", Permission::kRead},
    {"roles/pubsub.publisher", Permission::kPublish},
    {"roles/pubsub.subscriber", Permission::kSubscribe},
    {"roles/pubsub.editor", Permission::kAdmin},
    {"roles/pubsub.admin", Permission::kAdmin},
};

constexpr std::string_view kTokenMember = "token:";
constexpr std::string_view kEveryToken = "allAuthenticatedUsers";

bool names(const std::string& member, const Principal& who) {
  if (member == kEveryToken) return true;
  return member.size() > kTokenMember.size() && member.starts_with(kTokenMember) &&
         std::string_view(member).substr(kTokenMember.size()) == who.name;
}

}  // namespace

Result<Permission> iam_role_permission(std::string_view role) {
  for (const auto& [name, p] : kRoles) {
    if (name == role) return p;
  }
  return make_error(Errc::kInvalidArgument,
                    "\"" + std::string(role.substr(0, 80)) +
                        "\" is not a role backbone maps; use roles/pubsub.viewer, "
                        "roles/pubsub.publisher, roles/pubsub.subscriber, roles/pubsub.editor "
                        "or roles/pubsub.admin",
                    "policy.bindings.role");
}

std::optional<Permission> iam_permission_need(std::string_view name) {
  if (!name.starts_with("pubsub.")) return std::nullopt;
  const size_t dot = name.rfind('.');
  if (dot <= 7) return std::nullopt;
  const std::string_view verb = name.substr(dot + 1);
  if (verb == "publish") return Permission::kPublish;
  if (verb == "consume") return Permission::kSubscribe;
  if (verb == "get" || verb == "list" || verb == "getIamPolicy") return Permission::kRead;
  return Permission::kAdmin;
}

namespace {

json bindings_array(const std::vector<IamBinding>& bindings) {
  json out = json::array();
  for (const IamBinding& b : bindings) out.push_back({{"role", b.role}, {"members", b.members}});
  return out;
}

}  // namespace

std::string bindings_json(const std::vector<IamBinding>& bindings) {
  return bindings_array(bindings).dump();
}

Result<std::vector<IamBinding>> bindings_of_json(const std::string& text) {
  try {
    std::vector<IamBinding> out;
    for (const json& b : json::parse(text)) {
      out.push_back(
          {b.at("role").get<std::string>(), b.at("members").get<std::vector<std::string>>()});
    }
    return out;
  } catch (const json::exception& e) {
    return make_error(Errc::kDataLoss, std::string("a stored IAM policy is damaged: ") + e.what());
  }
}

void IamPolicies::add_env(const std::string& env, EventStore& reader, EventStore* admin) {
  std::lock_guard lock(mu_);
  envs_[env].reader = &reader;
  envs_[env].admin = admin;
}

Result<void> IamPolicies::reload(const std::string& env) {
  EventStore* reader = nullptr;
  {
    std::lock_guard lock(mu_);
    reader = envs_.at(env).reader;
  }
  auto rows = reader->iam_policies();
  if (!rows.ok()) return rows.error();
  std::map<std::string, IamPolicy> by_resource;
  for (const StoredPolicy& row : *rows) {
    auto bindings = bindings_of_json(row.bindings);
    if (!bindings.ok()) return bindings.error();
    by_resource[row.resource] = {std::move(*bindings), row.version};
  }
  std::lock_guard lock(mu_);
  envs_.at(env).by_resource = std::move(by_resource);
  return {};
}

Result<void> IamPolicies::refresh() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    for (const auto& [env, e] : envs_) names.push_back(env);
  }
  Result<void> first;
  for (const std::string& env : names) {
    auto r = reload(env);
    if (!r.ok() && first.ok()) first = r;
  }
  return first;
}

Result<IamPolicy> IamPolicies::get(const std::string& env, const std::string& resource) const {
  std::lock_guard lock(mu_);
  auto e = envs_.find(env);
  if (e == envs_.end()) {
    return make_error(Errc::kNotFound, "environment " + env + " is not served here");
  }
  auto p = e->second.by_resource.find(resource);
  return p == e->second.by_resource.end() ? IamPolicy{} : p->second;
}

Result<IamPolicy> IamPolicies::set(const std::string& env, const std::string& resource,
                                   const std::vector<IamBinding>& bindings,
                                   std::optional<int64_t> expected_version,
                                   const std::string& actor, Timestamp now) {
  for (const IamBinding& b : bindings) {
    BACKBONE_TRY(iam_role_permission(b.role));
    if (b.members.empty()) {
      return make_error(Errc::kInvalidArgument, "a binding names one member at least",
                        "policy.bindings.members");
    }
  }
  EventStore* admin = nullptr;
  {
    std::lock_guard lock(mu_);
    auto e = envs_.find(env);
    if (e == envs_.end()) {
      return make_error(Errc::kNotFound, "environment " + env + " is not served here");
    }
    admin = e->second.admin;
  }
  if (!admin) {
    return make_error(Errc::kPermissionDenied,
                      "this process cannot set IAM policies (no administrator's store)");
  }
  json array = bindings_array(bindings);
  const std::string text = array.dump();
  auto row = admin->set_iam_policy(resource, text, expected_version, now);
  if (!row.ok()) return row.error();
  IamPolicy out{bindings, row->version};
  {
    std::lock_guard lock(mu_);
    envs_.at(env).by_resource[resource] = out;
  }
  json detail = {{"version", row->version}, {"bindings", std::move(array)}};
  BACKBONE_TRY(record_admin_act(*admin, {now, actor, "iam.set", resource, detail.dump()},
                                "the policy was set"));
  return out;
}

bool IamPolicies::may(const Principal& who, Permission p, const std::string& resource) const {
  if (who.may(p)) return true;
  std::lock_guard lock(mu_);
  auto e = envs_.find(who.env);
  if (e == envs_.end()) return false;
  auto policy = e->second.by_resource.find(resource);
  if (policy == e->second.by_resource.end()) return false;
  for (const IamBinding& b : policy->second.bindings) {
    auto granted = iam_role_permission(b.role);
    if (!granted.ok()) continue;
    Principal as_role = who;
    as_role.permissions = {*granted};
    if (!as_role.may(p)) continue;
    if (std::any_of(b.members.begin(), b.members.end(),
                    [&](const std::string& m) { return names(m, who); })) {
      return true;
    }
  }
  return false;
}

}  // namespace backbone::auth
