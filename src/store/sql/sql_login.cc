#include "store/sql/sql_login.h"

#include <cctype>
#include <charconv>
#include <cstdlib>

namespace backbone::sql {
namespace {

Result<int64_t> positive(const std::string& key, const std::string& value, int64_t max) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v < 1 || v > max) {
    return make_error(
        Errc::kInvalidArgument,
        "store URL parameter " + key + "=" + value + ": want 1.." + std::to_string(max), "store");
  }
  return v;
}

}  // namespace

Result<ServerStoreSettings> server_store_settings(const StoreUrl& url) {
  ServerStoreSettings s;
  for (const auto& [key, value] : url.params) {
    if (key == "role_prefix") {
      for (char c : value) {
        if (!(std::islower(static_cast<unsigned char>(c)) ||
              std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
          return make_error(Errc::kInvalidArgument,
                            "store URL parameter role_prefix: only a-z, 0-9 and _", "store");
        }
      }
      s.role_prefix = value;
    } else if (key == "pool_size") {
      auto v = positive(key, value, 256);
      if (!v.ok()) return v.error();
      s.pool_size = static_cast<size_t>(*v);
    } else if (key == "connect_timeout_s") {
      auto v = positive(key, value, 3600);
      if (!v.ok()) return v.error();
      s.connect_timeout_s = static_cast<int>(*v);
    } else if (key == "reconnect_timeout_ms") {
      auto v = positive(key, value, 3'600'000);
      if (!v.ok()) return v.error();
      s.reconnect_timeout_ms = *v;
    } else if (key == "stall_timeout_ms") {
      auto v = positive(key, value, 3'600'000);
      if (!v.ok()) return v.error();
      s.stall_timeout_ms = *v;
    } else {
      return make_error(Errc::kInvalidArgument,
                        "unknown store URL parameter \"" + key +
                            "\" (want role_prefix, pool_size, connect_timeout_s, "
                            "reconnect_timeout_ms or stall_timeout_ms)",
                        "store");
    }
  }
  return s;
}

std::string role_login_name(Role role, const ServerStoreSettings& settings) {
  return settings.role_prefix + role_name(role);
}

std::string role_password_variable(Role role) {
  std::string name = "BACKBONE_ROLE_PASSWORD_";
  for (const char* c = role_name(role); *c; ++c) {
    name += static_cast<char>(std::toupper(static_cast<unsigned char>(*c)));
  }
  return name;
}

SqlLogin role_login(const StoreUrl& url, const ServerStoreSettings& settings, Role role) {
  SqlLogin login = admin_login(url, settings, url.database);
  login.user = role_login_name(role, settings);
  const char* password = std::getenv(role_password_variable(role).c_str());
  login.password = password ? password : "";
  return login;
}

SqlLogin admin_login(const StoreUrl& url, const ServerStoreSettings& settings,
                     const std::string& database) {
  SqlLogin login;
  login.host = url.host;
  login.port = url.port;
  login.database = database;
  login.user = url.user;
  login.password = url.password;
  login.connect_timeout_s = settings.connect_timeout_s;
  login.stall_timeout_ms = settings.stall_timeout_ms;
  return login;
}

}  // namespace backbone::sql
