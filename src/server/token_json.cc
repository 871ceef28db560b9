#include "server/token_json.h"

#include "auth/authenticator.h"

namespace backbone::server {

nlohmann::json token_json(const StoredToken& t) {
  auto at = [](const std::optional<Timestamp>& v) {
    return v ? nlohmann::json(v->to_rfc3339()) : nlohmann::json(nullptr);
  };
  return {{"id", auth::token_id(t.sha256)},
          {"name", t.name},
          {"roles", t.roles},
          {"created_at", t.created_at.to_rfc3339()},
          {"expires_at", at(t.expires_at)},
          {"last_used_at", at(t.last_used_at)},
          {"revoked_at", at(t.revoked_at)}};
}

nlohmann::json admin_action_json(const AdminAction& a) {
  return {{"id", a.id.str()},
          {"at", a.at.to_rfc3339()},
          {"actor", a.actor},
          {"action", a.action},
          {"target", a.target},
          {"detail",
           a.detail ? nlohmann::json::parse(*a.detail, nullptr, false) : nlohmann::json(nullptr)}};
}

}  // namespace backbone::server
