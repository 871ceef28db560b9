#include "backbone/role.h"

#include <string>

namespace backbone {

const char* role_name(Role role) {
  switch (role) {
    case Role::kMigrator:
      return "migrator";
    case Role::kSyncWorker:
      return "sync_worker";
    case Role::kMergeWorker:
      return "merge_worker";
    case Role::kReader:
      return "reader";
  }
  return "reader";
}

Result<Role> parse_role(std::string_view name) {
  for (Role r : {Role::kMigrator, Role::kSyncWorker, Role::kMergeWorker, Role::kReader}) {
    if (name == role_name(r)) return r;
  }
  return make_error(Errc::kInvalidArgument,
                    "unknown role \"" + std::string(name) +
                        "\" (want migrator, sync_worker, merge_worker or reader)");
}

}  // namespace backbone
