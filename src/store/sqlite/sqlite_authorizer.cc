#include "store/sqlite/sqlite_authorizer.h"

#include <string>
#include <string_view>

#include "store/sqlite/sqlite_db.h"

namespace backbone::sqlite {
namespace {

bool is_data_table(std::string_view t) { return t == "events" || t == "event_audit_log"; }
// The merge stages' bookkeeping of who serves which bucket (doc/scale_out.md).
bool is_lease_table(std::string_view t) { return t == "bucket_leases" || t == "cluster_members"; }

// SELECT and INSERT go together for every role but reader (SPEC §2).
bool may_insert(Role role, std::string_view table) {
  switch (role) {
    case Role::kMigrator:
      return true;
    case Role::kSyncWorker:
      return is_data_table(table) || table == "event_outbox";
    case Role::kMergeWorker:
      return is_data_table(table) || table == "records" || is_lease_table(table);
    case Role::kReader:
      return false;
  }
  return false;
}

bool allowed(Role role, int action, std::string_view table, std::string_view column) {
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      return true;
    case SQLITE_READ:
      // The schema itself is visible to all; reader may read every table.
      return table.starts_with("sqlite_") || role == Role::kReader || may_insert(role, table) ||
             ((table == "audit_heads" || table == "api_tokens" || table == "iam_policies") &&
              role != Role::kReader);
    case SQLITE_INSERT:
      return may_insert(role, table);
    case SQLITE_UPDATE:
      if (role == Role::kMigrator) return true;
      // Every role that appends to the audit log moves its chain's head (doc/audit_chain.md).
      if (table == "audit_heads") return role != Role::kReader;
      // The serving processes record when a token was last used; only the migrator revokes.
      if (table == "api_tokens") return role == Role::kSyncWorker && column == "last_used_at_us";
      return role == Role::kMergeWorker && ((table == "events" && column == "processed") ||
                                            table == "records" || is_lease_table(table));
    case SQLITE_DELETE:
      return may_delete(role, table);
    default:
      return role == Role::kMigrator;  // DDL, PRAGMA, ATTACH, ...
  }
}

}  // namespace

bool may_delete(Role role, std::string_view table) {
  // The outbox is bookkeeping, not history: ingest takes out what it published.
  return role == Role::kMigrator || (role == Role::kSyncWorker && table == "event_outbox") ||
         (role == Role::kMergeWorker && table == "cluster_members");
}

namespace {

const char* action_name(int action) {
  switch (action) {
    case SQLITE_READ:
      return "SELECT";
    case SQLITE_INSERT:
      return "INSERT";
    case SQLITE_UPDATE:
      return "UPDATE";
    case SQLITE_DELETE:
      return "DELETE";
    case SQLITE_PRAGMA:
      return "PRAGMA";
    case SQLITE_ATTACH:
      return "ATTACH";
    case SQLITE_DETACH:
      return "DETACH";
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_VTABLE:
      return "CREATE";
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_VTABLE:
      return "DROP";
    case SQLITE_ALTER_TABLE:
      return "ALTER";
    default:
      return "this statement";
  }
}

int authorize(void* user, int action, const char* a1, const char* a2, const char* /*db*/,
              const char* /*trigger*/) {
  auto* db = static_cast<SqliteDb*>(user);
  std::string_view table = a1 ? a1 : "";
  std::string_view column = a2 ? a2 : "";
  // For DDL on indexes and triggers, a1 names the object and a2 the table.
  if (action == SQLITE_UPDATE || action == SQLITE_READ || action == SQLITE_INSERT ||
      action == SQLITE_DELETE) {
    // a1 is the table for these
  } else if (!column.empty()) {
    table = column;
  }
  if (allowed(db->role(), action, table, column)) return SQLITE_OK;
  std::string what = action_name(action);
  if (!table.empty()) what += " on " + std::string(table);
  if (action == SQLITE_UPDATE && !column.empty()) what += "(" + std::string(column) + ")";
  db->last_denial = what;
  return SQLITE_DENY;
}

}  // namespace

void install_authorizer(SqliteDb* db) { sqlite3_set_authorizer(db->handle(), authorize, db); }

}  // namespace backbone::sqlite
