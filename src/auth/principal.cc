#include "auth/principal.h"

namespace backbone::auth {

const char* permission_name(Permission p) {
  switch (p) {
    case Permission::kPublish:
      return "publish";
    case Permission::kSubscribe:
      return "subscribe";
    case Permission::kRead:
      return "read";
    case Permission::kAdmin:
      return "admin";
    case Permission::kPipeline:
      return "pipeline";
  }
  BACKBONE_ASSERT(false);
}

Result<Permission> parse_permission(std::string_view name) {
  for (Permission p : kPermissions) {
    if (name == permission_name(p)) return p;
  }
  return make_error(Errc::kInvalidArgument,
                    "unknown role \"" + std::string(name) +
                        "\" (want publish, subscribe, read, admin or pipeline)",
                    "roles");
}

std::vector<std::string> Permissions::names() const {
  std::vector<std::string> out;
  for (Permission p : kPermissions) {
    if (has(p)) out.emplace_back(permission_name(p));
  }
  return out;
}

Result<void> require(const Principal& who, Permission p) {
  if (who.may(p)) return {};
  return make_error(Errc::kPermissionDenied,
                    std::string("this token lacks the \"") + permission_name(p) + "\" role");
}

Result<void> require(const Principal& who, std::string_view env, Permission p) {
  if (who.env != env) {
    return make_error(Errc::kPermissionDenied, "this token is for environment \"" + who.env +
                                                   "\", not \"" + std::string(env) + "\"");
  }
  return require(who, p);
}

}  // namespace backbone::auth
