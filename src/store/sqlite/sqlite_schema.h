// The versioned schema of the SQLite backend (SPEC §2). Each migration runs in its own
// transaction, records itself in `schema_migrations` and mirrors its version in
// PRAGMA user_version, so that a connection of any role can check the version at open time.
#pragma once

#include "backbone/result.h"
#include "store/sqlite/sqlite_db.h"

namespace backbone::sqlite {

// The version this build needs.
int current_schema_version();

// Applies pending migrations; returns how many were applied. REQUIRES: db->role() == kMigrator.
Result<int> migrate(SqliteDb& db, int64_t now_micros);

}  // namespace backbone::sqlite
