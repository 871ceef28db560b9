#include "store/store_checks.h"

namespace backbone {

Result<void> check_schema_version(const std::string& store, int have, int want) {
  if (have == want) return {};
  if (have < want) {
    return make_error(Errc::kUnavailable, "store " + store + " is at schema version " +
                                              std::to_string(have) + ", this build needs " +
                                              std::to_string(want) + ": run `backbone migrate`");
  }
  return make_error(Errc::kUnavailable, "store " + store + " is at schema version " +
                                            std::to_string(have) + ", newer than this build (" +
                                            std::to_string(want) + ")");
}

Result<void> require_migrator(Role role, const char* what) {
  if (role == Role::kMigrator) return {};
  return make_error(Errc::kPermissionDenied, std::string("access denied for role ") +
                                                 role_name(role) + ": " + what +
                                                 " the migrator role");
}

}  // namespace backbone
