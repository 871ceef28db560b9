// Role: the database roles of SPEC §2. Every store connection acts as exactly one role, and the
// database itself (grants on PostgreSQL and MariaDB, an authorizer on SQLite) refuses what the
// role may not do.
//
//   migrator      DDL (and everything else)
//   sync_worker   SELECT, INSERT on events and event_audit_log; nothing else
//   merge_worker  sync_worker's rights, UPDATE(processed) on events, SELECT/INSERT/UPDATE records
//   reader        SELECT
//
// Thread-safety: plain values.
#pragma once

#include <string_view>

#include "backbone/result.h"

namespace backbone {

enum class Role { kMigrator, kSyncWorker, kMergeWorker, kReader };

const char* role_name(Role role);  // "migrator", "sync_worker", ...
Result<Role> parse_role(std::string_view name);

}  // namespace backbone
