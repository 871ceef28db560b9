// The SQLite authorizer that enforces a Role (role.h) on one connection: SQLite has no users or
// grants, so every statement is checked when it is prepared, including statements inside
// triggers. A refused statement fails with SQLITE_AUTH, which SqliteDb maps to kPermissionDenied
// with a message naming the role, the operation and the table.
#pragma once

#include <sqlite3.h>

#include <string_view>

#include "backbone/role.h"

namespace backbone::sqlite {

class SqliteDb;

// Whether `role` may DELETE rows of `table` (the rule the authorizer applies).
bool may_delete(Role role, std::string_view table);

// Installs the authorizer for db->role(). REQUIRES: db outlives the connection's use.
void install_authorizer(SqliteDb* db);

}  // namespace backbone::sqlite
